// External mail accounts: an organisation's mailboxes at other providers (a company IMAP server, an
// ISP, Gmail or Microsoft 365 with an app password), reached over IMAP and SMTP. An account is saved
// only after its servers were reached and its login accepted; a failure says which step failed and
// what to do. The password is sealed at rest and never shown again.
import type { BlobStore } from '../../core/blobs.ts';
import type { Secrets } from '../../core/crypto.ts';
import type { Db } from '../../core/db.ts';
import { AppError, conflict, notFound, validationFailed } from '../../core/errors.ts';
import { type DestinationGuard, DestinationRefused } from '../../core/ssrf.ts';
import { newId } from '../../core/ids.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import type { EventsService } from '../events/service.ts';
import { normaliseEmail } from '../mailboxes/service.ts';
import {
  type Credentials,
  type Diagnosis,
  diagnoseImap,
  diagnoseSmtp,
  type Security,
  type ServerSettings,
} from './diagnose.ts';
import { accountConnected, accountDeleted, accountRef, accountUpdated } from './events.ts';
import { type AccountOAuth, isOAuthAccount } from './oauth.ts';
import * as store from './store.ts';
import * as syncStore from './sync/store.ts';
import type { AccountState, MailAccountRow, NewMailAccount, StoredServer } from './tables.ts';

export interface ServerInput {
  host: string;
  port: number;
  security: Security;
  /** Default true; false accepts the server's certificate whatever it is (a server you run yourself). */
  verify_tls?: boolean | null;
}

export interface AccountInput {
  address: string;
  name?: string | null;
  /** Default: the address. */
  username?: string | null;
  password: string;
  imap: ServerInput;
  /** Absent or null: the account does not send. */
  smtp?: ServerInput | null;
  /** How many days back the first sync reaches (default 30). */
  sync_days?: number | null;
}

export interface AccountChanges {
  name?: string | null;
  /** How many days back the first sync of a folder reaches (a folder synced already keeps what it has). */
  sync_days?: number | null;
  username?: string | null;
  password?: string | null;
  imap?: ServerInput | null;
  smtp?: ServerInput | null;
}

/** What a connection test checks: the servers, and the login. */
export type ConnectionInput = Pick<AccountInput, 'address' | 'username' | 'password' | 'imap' | 'smtp'>;

/** The first sync reaches this many days back unless the account says otherwise. */
export const DEFAULT_SYNC_DAYS = 30;

export interface AccountsOptions {
  db: Db;
  /** Synced messages' bytes, deleted with the account. */
  blobs: BlobStore;
  secrets: Secrets;
  events: EventsService;
  /** Access tokens of Google and Microsoft accounts (oauth.ts). */
  oauth: AccountOAuth;
  /** Refuses servers on this server's own network unless the operator allows them. */
  guard: DestinationGuard;
}

/** A failed connection test, answered 422 with the diagnosis as a problem's extension. */
export const connectionFailed = (diagnosis: Diagnosis & { ok: false }) =>
  new AppError(422, 'connection_failed', `${diagnosis.protocol.toUpperCase()}: ${diagnosis.message}`, {
    extensions: { diagnosis },
  });

const stored = (server: ServerInput): StoredServer => ({
  host: server.host.trim().toLowerCase(),
  port: server.port,
  security: server.security,
  verify_tls: server.verify_tls ?? true,
});
/** A stored server as the clients (clients.ts) take it. */
export const serverSettings = (server: StoredServer): ServerSettings => ({
  host: server.host,
  port: server.port,
  security: server.security,
  verifyTls: server.verify_tls,
});

export class AccountsService {
  readonly #o: AccountsOptions;

  constructor(options: AccountsOptions) {
    this.#o = options;
  }

  /** Tests IMAP (and SMTP when given) as saving would, without saving anything. */
  async test(input: ConnectionInput): Promise<Diagnosis> {
    const address = normaliseEmail(input.address, 'address');
    await this.#reachable('imap', input.imap.host);
    if (input.smtp) await this.#reachable('smtp', input.smtp.host);
    const credentials = { username: input.username?.trim() || address, password: input.password };
    const imap = await diagnoseImap(serverSettings(stored(input.imap)), credentials);
    if (!imap.ok || !input.smtp) return imap;
    return diagnoseSmtp(serverSettings(stored(input.smtp)), credentials);
  }

  async create(organizationId: string, userId: string | null, input: AccountInput): Promise<MailAccountRow> {
    const address = normaliseEmail(input.address, 'address');
    if (await store.accountByAddress(this.#o.db, organizationId, address))
      throw conflict(`The account ${address} is connected already`);
    const diagnosis = await this.test(input);
    if (!diagnosis.ok) throw connectionFailed(diagnosis);
    return this.#o.db.transaction(async (tx) => {
      const row = await store.insertAccount(tx, {
        id: newId(),
        organizationId,
        provider: 'imap',
        address,
        name: input.name?.trim() ?? '',
        username: input.username?.trim() || address,
        imap: stored(input.imap),
        smtp: input.smtp ? stored(input.smtp) : null,
        secret: this.#o.secrets.encrypt(JSON.stringify({ password: input.password })),
        state: 'connecting',
        syncDays: input.sync_days ?? DEFAULT_SYNC_DAYS,
        createdBy: userId,
      });
      await this.#o.events.emit(tx, accountConnected, organizationId, accountRef(row));
      return row;
    });
  }

  async list(organizationId: string, page: PageRequest) {
    const { rows, total } = await store.listAccounts(this.#o.db, organizationId, page);
    return toPage(rows, total, page);
  }

  async get(organizationId: string, id: string): Promise<MailAccountRow> {
    const row = await store.accountById(this.#o.db, organizationId, id);
    if (!row) throw notFound('Account');
    return row;
  }

  /** Changes names, login or servers; a change of login or servers is tested before it is kept. */
  async update(organizationId: string, id: string, changes: AccountChanges): Promise<MailAccountRow> {
    const current = await this.get(organizationId, id);
    if (
      isOAuthAccount(current) &&
      (changes.password != null || changes.username != null || changes.imap || changes.smtp !== undefined)
    )
      throw new AppError(
        409,
        'oauth_account',
        'This account signs in with OAuth: its login and servers come from the provider; authorise it again with POST /v1/accounts/{id}/oauth/start',
      );
    const set: Partial<NewMailAccount> = {};
    const changed: string[] = [];
    if (changes.sync_days != null && changes.sync_days !== current.syncDays) {
      set.syncDays = changes.sync_days;
      changed.push('sync_days');
    }
    if (changes.name != null && changes.name.trim() !== current.name) {
      set.name = changes.name.trim();
      changed.push('name');
    }
    if (changes.username != null && changes.username.trim() !== current.username) {
      set.username = changes.username.trim();
      changed.push('username');
    }
    if (changes.imap) {
      set.imap = stored(changes.imap);
      changed.push('imap');
    }
    if (changes.smtp !== undefined) {
      set.smtp = changes.smtp ? stored(changes.smtp) : null;
      changed.push('smtp');
    }
    if (changes.password != null) {
      set.secret = this.#o.secrets.encrypt(JSON.stringify({ password: changes.password }));
      changed.push('password');
    }
    if (!changed.length) return current;
    if (changed.some((c) => c !== 'name' && c !== 'sync_days')) {
      const diagnosis = await this.test({
        address: current.address,
        username: set.username ?? current.username,
        password: changes.password ?? this.#password(current),
        imap: serverInput(set.imap ?? current.imap),
        smtp: (set.smtp === undefined ? current.smtp : set.smtp)
          ? serverInput((set.smtp ?? current.smtp)!)
          : null,
      });
      if (!diagnosis.ok) throw connectionFailed(diagnosis);
      // A login that works again lifts the failure it caused.
      if (current.state === 'auth_failed' || current.state === 'error') {
        set.state = 'connecting';
        set.lastError = null;
      }
    }
    return this.#change(current, set, changed);
  }

  /** Stops syncing and sending through the account until it is resumed. */
  pause(organizationId: string, id: string): Promise<MailAccountRow> {
    return this.#setState(organizationId, id, 'paused');
  }

  resume(organizationId: string, id: string): Promise<MailAccountRow> {
    return this.#setState(organizationId, id, 'connecting');
  }

  async delete(organizationId: string, id: string): Promise<void> {
    await this.#o.db.transaction(async (tx) => {
      // Its synced messages go with it (cascade); their bytes are the blob store's to delete.
      const blobs = await syncStore.blobsOfAccount(tx, id);
      const row = await store.deleteAccount(tx, organizationId, id);
      if (row && blobs.length) await this.#o.blobs.delete(tx, organizationId, blobs);
      if (!row) throw notFound('Account');
      await this.#o.events.emit(tx, accountDeleted, organizationId, accountRef(row));
    });
  }

  async #setState(organizationId: string, id: string, state: AccountState): Promise<MailAccountRow> {
    const current = await this.get(organizationId, id);
    if (current.state === state) return current;
    if (state === 'connecting' && current.state !== 'paused') return current;
    return this.#change(current, { state }, ['state']);
  }

  #change(current: MailAccountRow, set: Partial<NewMailAccount>, changes: string[]): Promise<MailAccountRow> {
    return this.#o.db.transaction(async (tx) => {
      const row = await store.updateAccount(tx, current.organizationId, current.id, set);
      if (!row) throw notFound('Account');
      await this.#o.events.emit(tx, accountUpdated, row.organizationId, {
        ...accountRef(row),
        changes,
        state: row.state,
      });
      return row;
    });
  }

  /**
   * Refuses a server on this server's own network (loopback, private, link-local, metadata) unless
   * MAILROOM_ACCOUNTS_ALLOW_HOSTS names it: checked when servers are tested and again before each
   * connection, so a name that comes to resolve there later is refused too. The servers of Google and
   * Microsoft accounts come from the settings and are the operator's choice.
   */
  async checkServers(row: MailAccountRow): Promise<void> {
    if (isOAuthAccount(row)) return;
    await this.#reachable('imap', row.imap.host);
    if (row.smtp) await this.#reachable('smtp', row.smtp.host);
  }

  async #reachable(protocol: 'imap' | 'smtp', host: string): Promise<void> {
    try {
      await this.#o.guard.checkHost(host);
    } catch (err) {
      if (!(err instanceof DestinationRefused)) throw err;
      // A name that does not resolve is the connection test's to report (its dns step).
      if (!err.unresolved)
        throw validationFailed(`${protocol}.host`, `${err.message}; it cannot be reached from here`);
    }
  }

  /**
   * The login for the account's servers now: its password, or for an OAuth account an access token valid
   * for two more minutes at least (refreshed once across all processes when needed). Throws
   * AccountAuthError (errors.ts) once the grant is refused for good (the account is then auth_failed),
   * an OAuthError when the provider cannot refresh it just now.
   */
  async credentials(row: MailAccountRow): Promise<Credentials> {
    if (isOAuthAccount(row)) return this.#o.oauth.credentials(row);
    return { username: row.username, password: this.#password(row) };
  }

  /** An OAuth account's access token was refused at login: the next credentials() gets a new one. */
  refuseAccessToken(row: MailAccountRow, accessToken: string): Promise<void> {
    return this.#o.oauth.refuseAccessToken(row, accessToken);
  }

  #password(row: MailAccountRow): string {
    return (JSON.parse(this.#o.secrets.decrypt(row.secret)) as { password: string }).password;
  }
}

const serverInput = (s: StoredServer): ServerInput => ({
  host: s.host,
  port: s.port,
  security: s.security,
  verify_tls: s.verify_tls,
});
