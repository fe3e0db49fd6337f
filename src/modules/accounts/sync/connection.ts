// One external account's connection, held by the worker that owns the account's lease: it logs in, syncs
// every folder (INBOX first), then waits in IDLE on INBOX, syncing INBOX when the server announces a
// change and every folder each poll. A dropped connection or a failed sync is retried with backoff
// (1 s doubling to the maximum); a refused login stops the account in auth_failed.
import { ImapFlow, type ListResponse } from 'imapflow';
import { newId } from '../../../core/ids.ts';
import { imapOptions } from '../clients.ts';
import { AccountAuthError } from '../errors.ts';
import { serverSettings } from '../service.ts';
import type { MailAccountRow } from '../tables.ts';
import type { SyncContext } from './context.ts';
import { type FolderSession, removeOrphans, syncFolder } from './folder.ts';
import { markAuthFailed, markError, markReady, markSyncing } from './state.ts';
import * as store from './store.ts';
import type { AccountFolderRow } from './tables.ts';

const INBOX = 'INBOX';
const FIRST_BACKOFF_MS = 1000;
const LOGOUT_WAIT_MS = 5000;

/** What decides whether a running connection must start over: servers, login, window. */
export const connectionKey = (a: MailAccountRow) =>
  // An OAuth account's secret changes with every token refresh, which needs no new connection.
  JSON.stringify([a.imap, a.username, a.provider === 'imap' ? a.secret : null, a.syncDays, a.provider]);

export class AccountConnection {
  readonly #ctx: SyncContext;
  #account: MailAccountRow;
  #client: ImapFlow | null = null;
  #stopped = false;
  #running: Promise<void> | null = null;
  /** What waits to be synced: INBOX alone (IDLE said so) or every folder (a poll). */
  #pending: 'inbox' | 'all' | null = 'all';
  #wake: (() => void) | null = null;
  #sleepTimer: NodeJS.Timeout | null = null;
  /** The OAuth access token this session logged in with (to refuse it if the server does). */
  #sessionToken: string | null = null;
  #retriedWithNewToken = false;

  constructor(ctx: SyncContext, account: MailAccountRow) {
    this.#ctx = ctx;
    this.#account = account;
  }

  get key(): string {
    return connectionKey(this.#account);
  }

  start(): void {
    this.#running ??= this.#run();
  }

  /** Ends the connection (logging out) and waits for the sync in flight to stop. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wakeUp();
    const client = this.#client;
    // A server that does not answer LOGOUT must not hold the worker's ticks (and so its leases).
    if (client?.usable)
      await Promise.race([
        client.logout().catch(() => {}),
        new Promise((r) => setTimeout(r, LOGOUT_WAIT_MS)),
      ]);
    client?.close();
    await this.#running;
  }

  /** Syncs every folder now (a change made through the API, a test). */
  syncSoon(what: 'inbox' | 'all' = 'all'): void {
    this.#pending = this.#pending === 'all' ? 'all' : what;
    this.#wakeUp();
  }

  async #run(): Promise<void> {
    let attempt = 0;
    while (!this.#stopped) {
      try {
        await this.#session(() => {
          attempt = 0;
          this.#retriedWithNewToken = false;
        });
      } catch (err) {
        if (this.#stopped) break;
        const message = (err as Error).message || String(err);
        // A revoked OAuth grant: credentials() marked the account auth_failed and announced it.
        if (err instanceof AccountAuthError) return;
        const refused = (err as { authenticationFailed?: boolean }).authenticationFailed;
        // An OAuth token refused before its expiry gets one more try with a freshly refreshed token.
        if (refused && this.#sessionToken && !this.#retriedWithNewToken) {
          this.#retriedWithNewToken = true;
          await this.#ctx.accounts.refuseAccessToken(this.#account, this.#sessionToken).catch(() => {});
          // The row as stored now: its sealed tokens say the refused one is stale.
          this.#account = await this.#ctx.accounts
            .get(this.#account.organizationId, this.#account.id)
            .catch(() => this.#account);
          continue;
        }
        if (refused) {
          await markAuthFailed(this.#ctx, this.#account, `The login was refused: ${message}`).catch(() => {});
          this.#ctx.log.warn({ account: this.#account.id }, 'external account login refused');
          return;
        }
        attempt++;
        this.#ctx.log.warn(
          { account: this.#account.id, attempt, err: message },
          'external account sync failed',
        );
        await markError(this.#ctx, this.#account, message, attempt).catch(() => {});
        await this.#sleep(Math.min(FIRST_BACKOFF_MS * 2 ** (attempt - 1), this.#ctx.settings.maxBackoffMs));
      }
    }
  }

  /** One connection, from login to its end; `synced` is called after each complete sync. */
  async #session(synced: () => void): Promise<void> {
    await this.#ctx.accounts.checkServers(this.#account);
    const credentials = await this.#ctx.accounts.credentials(this.#account);
    this.#sessionToken = 'accessToken' in credentials ? credentials.accessToken : null;
    const client = new ImapFlow({
      ...imapOptions(serverSettings(this.#account.imap), credentials),
      // IDLE as soon as a sync ends, so arrivals are announced within a second or two.
      autoIdleDelay: 200,
      // Some servers end IDLE after 30 minutes; restarting it before keeps the session alive.
      maxIdleTime: 25 * 60_000,
      // Memory per idle account: a fetched literal is bounded, and so is what a hostile server can send.
      maxLiteralSize: 64 * 1024 * 1024,
    });
    this.#client = client;
    let closed: Error | null = null;
    client.on('error', (err: Error) => {
      closed ??= err;
    });
    client.on('close', () => {
      closed ??= new Error('the server closed the connection');
      this.#wakeUp();
    });
    client.on('exists', (e: { path: string }) => {
      if (e.path === INBOX) this.syncSoon('inbox');
    });
    client.on('flags', (e: { path: string }) => {
      if (e.path === INBOX) this.syncSoon('inbox');
    });
    client.on('expunge', (e: { path: string }) => {
      if (e.path === INBOX) this.syncSoon('inbox');
    });
    try {
      await client.connect();
      this.#ctx.log.info({ account: this.#account.id }, 'external account connected');
      const capabilities = [...client.capabilities.keys()].sort();
      const session: FolderSession = {
        ctx: this.#ctx,
        client,
        account: this.#account,
        gmail: client.capabilities.has('X-GM-EXT-1'),
        condstore: client.capabilities.has('CONDSTORE') || client.capabilities.has('QRESYNC'),
      };
      if (!this.#account.lastSyncedAt) await markSyncing(this.#ctx, this.#account);
      this.#pending = 'all';
      let nextPoll = 0;
      while (!this.#stopped) {
        if (closed) throw closed;
        if (Date.now() >= nextPoll) this.#pending = 'all';
        const what = this.#pending;
        this.#pending = null;
        if (what) {
          await this.#sync(session, what);
          if (what === 'all') {
            nextPoll = Date.now() + this.#ctx.settings.pollMs;
            this.#account = { ...this.#account, lastSyncedAt: new Date() };
            await markReady(this.#ctx, this.#account, capabilities);
            synced();
          }
          // INBOX stays selected between syncs, in IDLE (the client starts it when nothing else runs),
          // so the server tells of arrivals as they happen.
          if (client.mailbox && client.mailbox.path !== INBOX) {
            await client.mailboxOpen(INBOX);
            // What arrived since INBOX was synced is in this SELECT's counts, not announced by IDLE.
            if (await this.#inboxBehind(client)) this.#pending ??= 'inbox';
          }
        }
        if (!this.#pending && !closed) await this.#sleep(Math.max(0, nextPoll - Date.now()));
      }
    } finally {
      this.#client = null;
      if (this.#stopped && client.usable) await client.logout().catch(() => {});
      client.close();
    }
  }

  async #sync(session: FolderSession, what: 'inbox' | 'all'): Promise<void> {
    const folders = what === 'all' ? await this.#listFolders(session.client) : await this.#inboxOnly();
    for (const folder of folders) {
      if (this.#stopped) return;
      await syncFolder(session, folder);
    }
  }

  /** Whether the selected INBOX has mail or changes its last sync did not see. */
  async #inboxBehind(client: ImapFlow): Promise<boolean> {
    const box = client.mailbox;
    const [inbox] = await this.#inboxOnly();
    if (!box || !inbox) return false;
    if (Number(box.uidNext) > inbox.uidNext) return true;
    return !!box.highestModseq && inbox.highestModseq !== null && box.highestModseq > inbox.highestModseq;
  }

  async #inboxOnly(): Promise<AccountFolderRow[]> {
    const folders = await store.foldersOf(this.#ctx.db, this.#account.id);
    return folders.filter((f) => f.path === INBOX);
  }

  /** The server's selectable folders, kept in step with the server (new ones added, gone ones dropped). */
  async #listFolders(client: ImapFlow): Promise<AccountFolderRow[]> {
    const listed = (await client.list()).filter(
      (f: ListResponse) => !f.flags.has('\\Noselect') && !f.flags.has('\\NonExistent'),
    );
    const db = this.#ctx.db;
    const known = new Map((await store.foldersOf(db, this.#account.id)).map((f) => [f.path, f]));
    const fresh = listed.filter((f) => !known.has(f.path));
    await store.insertFolders(
      db,
      this.#account,
      fresh.map((f) => ({
        id: newId(),
        path: f.path,
        delimiter: f.delimiter ?? null,
        specialUse: f.specialUse ?? null,
      })),
    );
    for (const f of listed) {
      const k = known.get(f.path);
      if (k && (k.specialUse !== (f.specialUse ?? null) || k.delimiter !== (f.delimiter ?? null)))
        await store.updateFolderListing(db, k.id, {
          path: f.path,
          delimiter: f.delimiter ?? null,
          specialUse: f.specialUse ?? null,
        });
    }
    const gone = [...known.values()].filter((k) => !listed.some((f) => f.path === k.path));
    if (gone.length)
      await db.transaction(async (tx) => {
        const held = await store.deleteFolders(
          tx,
          gone.map((g) => g.id),
        );
        await removeOrphans(this.#ctx.blobs, this.#account, tx, held);
      });
    const folders = await store.foldersOf(db, this.#account.id);
    // INBOX first: it is what a person looks at.
    return [...folders.filter((f) => f.path === INBOX), ...folders.filter((f) => f.path !== INBOX)];
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#sleepTimer = setTimeout(resolve, ms);
    });
  }

  #wakeUp(): void {
    if (this.#sleepTimer) clearTimeout(this.#sleepTimer);
    this.#sleepTimer = null;
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}
