// Hosted mailboxes: an address of one of the organisation's domains that stores mail in folders (IMAP),
// logs in to submission (and IMAP) with its password or an app password, and sends within its limit.
//
// Addresses are shared out per domain: a local part is held by one mailbox or one alias, never both.
// Claims in a domain serialise on a transaction-level advisory lock, so two concurrent creations
// cannot both pass the check; the unique (domain_id, local_part) index backs each table on its own.
// The organisation's mailbox limit is counted under a lock of its own, taken first.
import { randomToken, type Secrets, sha256 } from '../../core/crypto.ts';
import { databaseErrorCode, type Db } from '../../core/db.ts';
import { type AppError, conflict, limitReached, notFound, validationFailed } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import { hashPassword } from '../../core/passwords.ts';
import type { DomainsService } from '../domains/service.ts';
import type { DomainRow } from '../domains/tables.ts';
import { type EventInput, eventOf, type EventsService } from '../events/service.ts';
import { hostedAddress, reservedLocalPartProblem } from './addresses.ts';
import {
  appPasswordCreated,
  appPasswordRevoked,
  mailboxCreated,
  mailboxDeleted,
  mailboxUpdated,
} from './events.ts';
import { DEFAULT_POLICY, generatePassword, hashGeneratedPassword, type PasswordPolicy } from './passwords.ts';
import * as store from './store.ts';
import type { AppPasswordRow, MailboxRow, MailboxStatus } from './tables.ts';

export {
  type HostedAddress,
  hostedAddress,
  localPartProblem,
  normaliseEmail,
  normaliseLocalPart,
  reservedLocalPartProblem,
} from './addresses.ts';
export {
  DEFAULT_POLICY,
  generatePassword,
  MAX_GENERATED_LENGTH,
  MIN_GENERATED_LENGTH,
  type PasswordPolicy,
  passwordPolicySchema,
} from './passwords.ts';
export type { MailboxRow, MailboxStatus } from './tables.ts';

const UNIQUE_VIOLATION = '23505';

export const MIB = 1024 * 1024;
export const DEFAULT_QUOTA_BYTES = 1024 * MIB;
export const MIN_QUOTA_BYTES = MIB;
export const MIN_PASSWORD_LENGTH = 10;
export const MAX_PASSWORD_LENGTH = 256;
/** App passwords a mailbox may hold at once. */
export const MAX_APP_PASSWORDS = 50;
/** Mailboxes one bulk request may name by id. */
export const MAX_BULK_IDS = 5_000;

/** The folders every mailbox starts with, and their RFC 6154 special uses. */
export const FOLDER_NAMES = ['INBOX', 'Sent', 'Drafts', 'Junk', 'Trash', 'Archive'] as const;
export type FolderName = (typeof FOLDER_NAMES)[number];
const SPECIAL_USE: Record<FolderName, string> = {
  INBOX: '\\Inbox',
  Sent: '\\Sent',
  Drafts: '\\Drafts',
  Junk: '\\Junk',
  Trash: '\\Trash',
  Archive: '\\Archive',
};

export interface MailboxesOptions {
  db: Db;
  events: EventsService;
  domains: DomainsService;
  secrets: Secrets;
  /** Most mailboxes an organisation may have (0: no limit). */
  maxPerOrganization: number;
}

export interface MailboxInput {
  address: string;
  first_name?: string | null;
  last_name?: string | null;
  /** Absent: first and last name. */
  display_name?: string | null;
  /** Null or absent: the mailbox cannot log in until one is set. */
  password?: string | null;
  quota_bytes?: number | null;
  /** Recipients a day; absent: the installation's limit. */
  daily_send_limit?: number | null;
  status?: MailboxStatus | null;
  /** Keep the password, sealed, so credential exports can carry it. */
  export_password?: boolean | null;
  /** Copy mail sent through submission into the Sent folder (default true). */
  save_sent?: boolean | null;
}

/** One mailbox of a batch (generation): its address decided, its password in clear or none. */
export interface NewMailboxSpec {
  domain: Pick<DomainRow, 'id' | 'name'>;
  localPart: string;
  firstName: string;
  lastName: string;
  displayName?: string;
  password: string | null;
  /** Set when the password was generated under this policy (it decides the hash's cost). */
  generatedUnder?: PasswordPolicy;
  exportable: boolean;
  quotaBytes?: number;
  dailySendLimit?: number | null;
  status?: MailboxStatus;
  saveSent?: boolean;
}

export type BatchResult = { ok: true; mailbox: MailboxRow } | { ok: false; error: AppError };

export interface MailboxChanges {
  first_name?: string | null;
  last_name?: string | null;
  display_name?: string | null;
  /** Null removes the password (the mailbox can no longer log in). */
  password?: string | null;
  quota_bytes?: number | null;
  is_active?: boolean | null;
  status?: MailboxStatus | null;
  /** Null: back to the installation's limit. */
  daily_send_limit?: number | null;
  save_sent?: boolean | null;
}

/** Which mailboxes a bulk change applies to: these ids, or every mailbox of a domain. */
export type BulkSelector = { ids: string[] } | { domain_id: string };

export interface BulkChanges {
  status?: MailboxStatus;
  /** Null: back to the installation's limit. */
  daily_send_limit?: number | null;
  quota_bytes?: number;
  is_active?: boolean;
}

export interface MailboxFolder {
  id: string;
  name: string;
  specialUse: string | null;
  uidValidity: number;
  uidNext: number;
  messages: number;
}

export interface MailboxDetail {
  mailbox: MailboxRow;
  folders: MailboxFolder[];
}

/** What sending as an address of a mailbox is subject to (delivery asks for every sender). */
export interface SenderPolicy {
  /** The mailbox's id (outbound mail names it in its Feedback-ID header). */
  id: string;
  status: MailboxStatus;
  dailySendLimit: number | null;
}

export type MailboxFilter = store.MailboxFilter;

export class MailboxesService {
  readonly #o: MailboxesOptions;

  constructor(options: MailboxesOptions) {
    this.#o = options;
  }

  // ---- creation ----------------------------------------------------------------------------------------

  /** Creates the mailbox and its standard folders. */
  async create(organizationId: string, input: MailboxInput): Promise<MailboxDetail> {
    const { domain, localPart } = await hostedAddress(this.#o.domains, organizationId, input.address);
    const reserved = reservedLocalPartProblem(localPart);
    if (reserved) throw validationFailed('address', reserved);
    if (input.export_password && input.password == null)
      throw validationFailed('export_password', 'needs a password to export');
    const [result] = await this.createMany(organizationId, [
      {
        domain,
        localPart,
        firstName: (input.first_name ?? '').trim(),
        lastName: (input.last_name ?? '').trim(),
        displayName: input.display_name?.trim(),
        password: input.password != null ? passwordOf(input.password) : null,
        exportable: Boolean(input.export_password),
        quotaBytes: input.quota_bytes ?? undefined,
        dailySendLimit: input.daily_send_limit,
        status: input.status ?? undefined,
        saveSent: input.save_sent ?? undefined,
      },
    ]);
    if (!result.ok) throw result.error;
    return this.detail(organizationId, result.mailbox.id);
  }

  /**
   * Creates mailboxes in one transaction, each with its folders and its `mailbox.created` event. An
   * address already taken (or reserved), or one past the organisation's limit, is answered with its
   * problem and the rest are still created. Passwords are hashed first, off the event loop.
   */
  async createMany(
    organizationId: string,
    specs: NewMailboxSpec[],
    /** Runs in the same transaction once the batch is written (a job's progress). */
    alsoInTx?: (tx: Db, results: BatchResult[]) => Promise<void>,
  ): Promise<BatchResult[]> {
    const prepared = await Promise.all(specs.map((spec) => this.#prepare(organizationId, spec)));
    try {
      return await this.#o.db.transaction(async (tx) => {
        const results: (BatchResult | null)[] = prepared.map((p) => {
          const reserved = reservedLocalPartProblem(p.localPart);
          return reserved ? { ok: false, error: validationFailed('address', reserved) } : null;
        });
        await this.#admitWithinLimit(tx, organizationId, prepared, results);
        await this.#refuseTaken(tx, organizationId, prepared, results);
        const admitted = prepared.filter((_, i) => results[i] === null);
        const rows = admitted.length ? await store.insertMailboxes(tx, admitted) : [];
        if (rows.length) {
          await store.insertFolders(
            tx,
            rows.flatMap((row) => standardFolders(organizationId, row.id)),
          );
          await this.#o.events.emitMany(
            tx,
            rows.map((row) => eventOf(mailboxCreated, organizationId, eventData(row))),
          );
        }
        const byId = new Map(rows.map((row) => [row.id, row]));
        const answered = prepared.map(
          (p, i) => results[i] ?? { ok: true as const, mailbox: byId.get(p.id)! },
        );
        await alsoInTx?.(tx, answered);
        return answered;
      });
    } catch (error) {
      // Two creations that passed the lock's check cannot both insert (a mailbox created meanwhile).
      if (databaseErrorCode(error) === UNIQUE_VIOLATION)
        throw conflict('One of these addresses was taken meanwhile; try again');
      throw error;
    }
  }

  async #prepare(organizationId: string, spec: NewMailboxSpec): Promise<store.NewMailbox & { id: string }> {
    const passwordHash =
      spec.password === null
        ? null
        : spec.generatedUnder
          ? await hashGeneratedPassword(spec.password, spec.generatedUnder)
          : await hashPassword(spec.password);
    const displayName = spec.displayName ?? `${spec.firstName} ${spec.lastName}`.trim();
    return {
      id: newId(),
      organizationId,
      domainId: spec.domain.id,
      localPart: spec.localPart,
      address: `${spec.localPart}@${spec.domain.name}`,
      firstName: spec.firstName,
      lastName: spec.lastName,
      displayName,
      passwordHash,
      exportPassword:
        spec.exportable && spec.password !== null ? this.#o.secrets.encrypt(spec.password) : null,
      quotaBytes: quotaOf(spec.quotaBytes ?? DEFAULT_QUOTA_BYTES),
      dailySendLimit: spec.dailySendLimit ?? null,
      status: spec.status ?? 'active',
      saveSent: spec.saveSent ?? true,
    };
  }

  /** Marks the mailboxes past the organisation's limit (counted under its lock). */
  async #admitWithinLimit(
    tx: Db,
    organizationId: string,
    prepared: store.NewMailbox[],
    results: (BatchResult | null)[],
  ): Promise<void> {
    const limit = this.#o.maxPerOrganization;
    if (limit <= 0) return;
    const usage = await store.lockAndCountMailboxes(tx, organizationId);
    let room = limit - usage;
    prepared.forEach((_, i) => {
      if (results[i]) return;
      if (room > 0) room--;
      else results[i] = { ok: false, error: mailboxLimitReached(limit, usage) };
    });
  }

  /** Marks the addresses a mailbox or an alias already holds (under each domain's address lock). */
  async #refuseTaken(
    tx: Db,
    organizationId: string,
    prepared: store.NewMailbox[],
    results: (BatchResult | null)[],
  ): Promise<void> {
    const domainIds = [...new Set(prepared.map((p) => p.domainId))].sort();
    for (const domainId of domainIds) await store.lockDomainAddresses(tx, domainId);
    const taken = await store.takenAddresses(
      tx,
      organizationId,
      prepared.map((p) => ({ domainId: p.domainId, localPart: p.localPart })),
    );
    const seen = new Set<string>();
    prepared.forEach((p, i) => {
      if (results[i]) return;
      const key = `${p.domainId}:${p.localPart}`;
      const holder = taken.get(key) ?? (seen.has(key) ? 'mailbox' : null);
      seen.add(key);
      if (holder)
        results[i] = {
          ok: false,
          error: conflict(`${p.address} is already ${holder === 'mailbox' ? 'a mailbox' : 'an alias'}`),
        };
    });
  }

  /**
   * Inside `tx`: takes the domain's address lock and refuses (409) a local part that a mailbox or an
   * alias already holds. Aliases call it too, so the two kinds never share an address.
   */
  async claimAddress(
    tx: Db,
    organizationId: string,
    domainId: string,
    localPart: string,
    address: string,
  ): Promise<void> {
    await store.lockDomainAddresses(tx, domainId);
    const holder = await store.addressHolder(tx, organizationId, domainId, localPart);
    if (holder) throw conflict(`${address} is already ${holder === 'mailbox' ? 'a mailbox' : 'an alias'}`);
  }

  /** The mailbox or alias holding each of these addresses (lower case) in the organisation. */
  addressOwners(db: Db, organizationId: string, addresses: string[]) {
    return store.addressOwners(db, organizationId, addresses);
  }

  /** The local parts of a domain that mailboxes and aliases hold (generation avoids them). */
  takenLocalParts(organizationId: string, domainId: string): Promise<Set<string>> {
    return store.localPartsOf(this.#o.db, organizationId, domainId);
  }

  /** How many mailboxes the organisation has, and how many it may have (0: no limit). */
  async usage(organizationId: string): Promise<{ count: number; limit: number }> {
    return {
      count: await store.countMailboxes(this.#o.db, organizationId),
      limit: this.#o.maxPerOrganization,
    };
  }

  /** 403 when `adding` more mailboxes would pass the organisation's limit (checked again at creation). */
  async checkRoomFor(organizationId: string, adding: number): Promise<void> {
    const { count, limit } = await this.usage(organizationId);
    if (limit > 0 && count + adding > limit) throw mailboxLimitReached(limit, count);
  }

  // ---- reading -----------------------------------------------------------------------------------------

  async list(organizationId: string, filter: MailboxFilter, page: PageRequest) {
    const { rows, total } = await store.listMailboxes(
      this.#o.db,
      organizationId,
      { ...filter, q: filter.q?.toLowerCase() },
      page,
    );
    return toPage(rows, total, page);
  }

  async get(organizationId: string, id: string): Promise<MailboxRow> {
    const mailbox = await store.mailboxById(this.#o.db, organizationId, id);
    if (!mailbox) throw notFound('Mailbox');
    return mailbox;
  }

  /** The mailbox with its folders (standard ones first) and their message counts. */
  async detail(organizationId: string, id: string): Promise<MailboxDetail> {
    const mailbox = await this.get(organizationId, id);
    const rows = await store.foldersOf(this.#o.db, organizationId, id);
    const rank = (name: string) => {
      const i = FOLDER_NAMES.indexOf(name as FolderName);
      return i < 0 ? FOLDER_NAMES.length : i;
    };
    const folders = rows
      .sort((a, b) => rank(a.name) - rank(b.name) || a.name.localeCompare(b.name))
      .map((f) => ({
        id: f.id,
        name: f.name,
        specialUse: f.specialUse,
        uidValidity: f.uidValidity,
        uidNext: f.uidNext,
        messages: f.messages,
      }));
    return { mailbox, folders };
  }

  /** Mailboxes in address order after `after` (keyset pages, for exports that stream). */
  page(
    organizationId: string,
    filter: { domainId?: string; status?: MailboxStatus },
    after: string | null,
    limit: number,
  ) {
    return store.mailboxesAfter(this.#o.db, organizationId, filter, after, limit);
  }

  /** The exportable password of a mailbox row, or null. */
  exportedPassword(mailbox: MailboxRow): string | null {
    return mailbox.exportPassword === null ? null : this.#o.secrets.decrypt(mailbox.exportPassword);
  }

  /** Status and send limit of the organisation's mailbox at `address`, or null when none is there. */
  senderPolicy(organizationId: string, address: string): Promise<SenderPolicy | null> {
    return store.senderPolicy(this.#o.db, organizationId, address.toLowerCase());
  }

  // ---- changes -----------------------------------------------------------------------------------------

  async update(organizationId: string, id: string, changes: MailboxChanges): Promise<MailboxDetail> {
    const mailbox = await this.get(organizationId, id);
    const set: Partial<store.NewMailbox> = {};
    if (changes.first_name != null) set.firstName = changes.first_name.trim();
    if (changes.last_name != null) set.lastName = changes.last_name.trim();
    if (changes.display_name != null) set.displayName = changes.display_name.trim();
    if (changes.quota_bytes != null) set.quotaBytes = quotaOf(changes.quota_bytes);
    if (changes.is_active != null) set.isActive = changes.is_active;
    if (changes.status != null) set.status = changes.status;
    if (changes.daily_send_limit !== undefined) set.dailySendLimit = changes.daily_send_limit;
    if (changes.save_sent != null) set.saveSent = changes.save_sent;
    if (changes.password !== undefined)
      Object.assign(set, await this.#passwordChange(mailbox, changes.password));
    await this.#change(organizationId, mailbox, set);
    return this.detail(organizationId, id);
  }

  /**
   * An administrator's reset: the given password, or one generated under `password_policy` and returned
   * once. Optionally revokes every app password too (a reset after a leak).
   */
  async resetPassword(
    organizationId: string,
    id: string,
    input: {
      password?: string | null;
      revoke_app_passwords?: boolean | null;
      password_policy?: PasswordPolicy;
    },
  ): Promise<{ detail: MailboxDetail; password: string | null }> {
    const mailbox = await this.get(organizationId, id);
    const policy = input.password == null ? (input.password_policy ?? DEFAULT_POLICY) : undefined;
    const password = policy ? generatePassword(policy) : input.password!;
    const set = await this.#passwordChange(mailbox, password, policy);
    await this.#change(organizationId, mailbox, set, async (tx) => {
      if (!input.revoke_app_passwords) return;
      for (const revoked of await store.deleteAppPasswords(tx, organizationId, id))
        await this.#o.events.emit(tx, appPasswordRevoked, organizationId, appPasswordData(mailbox, revoked));
    });
    return { detail: await this.detail(organizationId, id), password: policy ? password : null };
  }

  async #passwordChange(
    mailbox: MailboxRow,
    password: string | null,
    generatedUnder?: PasswordPolicy,
  ): Promise<Partial<store.NewMailbox>> {
    if (password === null) return { passwordHash: null, exportPassword: null };
    const checked = generatedUnder ? password : passwordOf(password);
    const passwordHash = generatedUnder
      ? await hashGeneratedPassword(checked, generatedUnder)
      : await hashPassword(checked);
    // A mailbox created with export enabled stays exportable with its new password.
    const exportPassword = mailbox.exportPassword === null ? null : this.#o.secrets.encrypt(checked);
    return { passwordHash, exportPassword };
  }

  async #change(
    organizationId: string,
    mailbox: MailboxRow,
    set: Partial<store.NewMailbox>,
    alsoInTx?: (tx: Db) => Promise<void>,
  ): Promise<void> {
    const changed = changedFields(set);
    if (!changed.length && !alsoInTx) return;
    await this.#o.db.transaction(async (tx) => {
      if (changed.length) {
        if (!(await store.updateMailbox(tx, organizationId, mailbox.id, set))) throw notFound('Mailbox');
        await this.#o.events.emit(tx, mailboxUpdated, organizationId, {
          ...eventData(mailbox),
          changes: changed,
        });
      }
      await alsoInTx?.(tx);
    });
  }

  /** One change to many mailboxes (by ids or a whole domain), one `mailbox.updated` event each. */
  async bulkUpdate(
    organizationId: string,
    selector: BulkSelector,
    changes: BulkChanges,
  ): Promise<{ matched: number; updated: string[] }> {
    const set: Partial<store.NewMailbox> = {};
    if (changes.status !== undefined) set.status = changes.status;
    if (changes.daily_send_limit !== undefined) set.dailySendLimit = changes.daily_send_limit;
    if (changes.quota_bytes !== undefined) set.quotaBytes = quotaOf(changes.quota_bytes);
    if (changes.is_active !== undefined) set.isActive = changes.is_active;
    const changed = changedFields(set);
    if (!changed.length) throw validationFailed('changes', 'name at least one change');
    if ('ids' in selector && selector.ids.length > MAX_BULK_IDS)
      throw validationFailed('ids', `at most ${MAX_BULK_IDS} ids a request`);
    if ('domain_id' in selector) await this.#o.domains.get(organizationId, selector.domain_id);
    return this.#o.db.transaction(async (tx) => {
      const target = 'ids' in selector ? { ids: selector.ids } : { domainId: selector.domain_id };
      const rows = await store.updateMailboxes(tx, organizationId, target, set);
      if (rows.length)
        await this.#o.events.emitMany(
          tx,
          rows.map(
            (row): EventInput =>
              eventOf(mailboxUpdated, organizationId, { ...eventData(row), changes: changed }),
          ),
        );
      return { matched: rows.length, updated: rows.map((r) => r.id) };
    });
  }

  async delete(organizationId: string, id: string): Promise<void> {
    await this.#o.db.transaction(async (tx) => {
      const deleted = await store.deleteMailbox(tx, organizationId, id);
      if (!deleted) throw notFound('Mailbox');
      await this.#o.events.emit(tx, mailboxDeleted, organizationId, eventData(deleted));
    });
  }

  // ---- app passwords -----------------------------------------------------------------------------------

  /** A new app password for one client or tool; the password exists in this answer only. */
  async createAppPassword(
    organizationId: string,
    mailboxId: string,
    label: string,
  ): Promise<{ row: AppPasswordRow; password: string }> {
    const mailbox = await this.get(organizationId, mailboxId);
    const password = randomToken(24);
    const row = await this.#o.db.transaction(async (tx) => {
      if ((await store.countAppPasswords(tx, mailboxId)) >= MAX_APP_PASSWORDS)
        throw conflict(`A mailbox may hold ${MAX_APP_PASSWORDS} app passwords; revoke one first`);
      const created = await store.insertAppPassword(tx, {
        id: newId(),
        organizationId,
        mailboxId,
        label: label.trim(),
        passwordHash: sha256(password),
      });
      await this.#o.events.emit(tx, appPasswordCreated, organizationId, appPasswordData(mailbox, created));
      return created;
    });
    return { row, password };
  }

  async listAppPasswords(organizationId: string, mailboxId: string): Promise<AppPasswordRow[]> {
    await this.get(organizationId, mailboxId);
    return store.appPasswordsOf(this.#o.db, organizationId, mailboxId);
  }

  async revokeAppPassword(organizationId: string, mailboxId: string, id: string): Promise<void> {
    const mailbox = await this.get(organizationId, mailboxId);
    await this.#o.db.transaction(async (tx) => {
      const revoked = await store.deleteAppPassword(tx, organizationId, mailboxId, id);
      if (!revoked) throw notFound('App password');
      await this.#o.events.emit(tx, appPasswordRevoked, organizationId, appPasswordData(mailbox, revoked));
    });
  }

  /**
   * The app password of `mailboxId` that `password` is, or null. A lookup by SHA-256 (they are 192
   * random bits), noted as used; a login (SMTP, IMAP) calls it, the API never does.
   */
  async appPasswordLogin(mailboxId: string, password: string, ip: string): Promise<AppPasswordRow | null> {
    const row = await store.appPasswordByHash(this.#o.db, mailboxId, sha256(password));
    if (row) await store.touchAppPassword(this.#o.db, row.id, new Date(), ip).catch(() => {});
    return row;
  }
}

function standardFolders(organizationId: string, mailboxId: string): store.NewFolder[] {
  const uidValidity = Math.floor(Date.now() / 1000);
  return FOLDER_NAMES.map((name) => ({
    id: newId(),
    organizationId,
    mailboxId,
    name,
    specialUse: SPECIAL_USE[name],
    uidValidity,
    uidNext: 1,
  }));
}

function eventData(row: Pick<MailboxRow, 'id' | 'domainId' | 'address'>) {
  return { mailbox_id: row.id, domain_id: row.domainId, address: row.address };
}

function appPasswordData(mailbox: MailboxRow, row: AppPasswordRow) {
  return { ...eventData(mailbox), app_password_id: row.id, label: row.label };
}

/** The API's names of the columns a change sets (the password's hash and seal are "password"). */
function changedFields(set: Partial<store.NewMailbox>): string[] {
  const names = Object.keys(set).map((k) =>
    k === 'passwordHash' || k === 'exportPassword'
      ? 'password'
      : k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`),
  );
  return [...new Set(names)];
}

function mailboxLimitReached(limit: number, usage: number): AppError {
  return limitReached(
    'mailboxes',
    limit,
    usage,
    `This organisation may have ${limit} mailboxes and has ${usage} (MAILROOM_ORGANIZATION_MAX_MAILBOXES)`,
  );
}

function quotaOf(bytes: number): number {
  if (!Number.isSafeInteger(bytes) || bytes < MIN_QUOTA_BYTES) {
    throw validationFailed(
      'quota_bytes',
      `must be a whole number of bytes, at least ${MIN_QUOTA_BYTES} (1 MiB)`,
    );
  }
  return bytes;
}

function passwordOf(password: string): string {
  if (password.length < MIN_PASSWORD_LENGTH || password.length > MAX_PASSWORD_LENGTH) {
    throw validationFailed(
      'password',
      `must be ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters long`,
    );
  }
  return password;
}
