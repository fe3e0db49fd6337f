// Hosted mailboxes: an address of one of the organisation's domains that stores mail in folders (IMAP).
//
// Addresses are shared out per domain: a local part is held by one mailbox or one alias, never both.
// Claims in a domain serialise on a transaction-level advisory lock, so two concurrent creations
// cannot both pass the check; the unique (domain_id, local_part) index backs each table on its own.
import { domainToASCII } from 'node:url';
import { databaseErrorCode, type Db } from '../../core/db.ts';
import { conflict, notFound, validationFailed } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import { hashPassword } from '../../core/passwords.ts';
import type { DomainsService } from '../domains/service.ts';
import type { DomainRow } from '../domains/tables.ts';
import type { EventsService } from '../events/service.ts';
import { mailboxCreated, mailboxDeleted, mailboxUpdated } from './events.ts';
import * as store from './store.ts';
import type { MailboxRow } from './tables.ts';

const UNIQUE_VIOLATION = '23505';

export const MIB = 1024 * 1024;
export const DEFAULT_QUOTA_BYTES = 1024 * MIB;
export const MIN_QUOTA_BYTES = MIB;
export const MIN_PASSWORD_LENGTH = 10;
export const MAX_PASSWORD_LENGTH = 256;

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

// ---- addresses ---------------------------------------------------------------------------------------

// RFC 5321 dot-atom, minus the characters that route mail elsewhere: `%` (source routing, `a%b@relay`)
// and `!` (UUCP bang paths). Quoted local parts and `@` never pass. Compared in lower case.
const ATOM = "[a-z0-9#$&'*+\\-/=?^_`{|}~]+";
const DOT_ATOM = new RegExp(`^${ATOM}(\\.${ATOM})*$`);
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** Why `localPart` (already lower case) cannot be a Mailroom local part, or null when it can. */
export function localPartProblem(localPart: string): string | null {
  if (localPart === '') return 'the local part (before @) is empty';
  if (localPart.length > 64) return 'the local part (before @) is longer than 64 characters';
  if (localPart.includes('%')) return 'the local part must not contain % (source routing, a relay trick)';
  if (localPart.includes('!')) return 'the local part must not contain ! (bang paths, a relay trick)';
  if (/["@\\\s]/.test(localPart)) return 'quoted local parts, @, backslashes and spaces are not accepted';
  if (localPart.startsWith('.') || localPart.endsWith('.'))
    return 'the local part must not start or end with a dot';
  if (localPart.includes('..')) return 'the local part must not contain two dots in a row';
  if (!DOT_ATOM.test(localPart)) {
    return "the local part may hold only letters, digits, dots and #$&'*+-/=?^_`{|}~";
  }
  return null;
}

/** The local part, lower case, or a 422 naming `field`. */
export function normaliseLocalPart(input: string, field: string): string {
  const localPart = input.trim().toLowerCase();
  const problem = localPartProblem(localPart);
  if (problem) throw validationFailed(field, problem);
  return localPart;
}

/** Splits at the last @. */
function split(input: string, field: string): { local: string; domain: string } {
  const trimmed = input.trim();
  const at = trimmed.lastIndexOf('@');
  if (at < 0) throw validationFailed(field, `"${input}" is not an address (local-part@domain)`);
  return { local: trimmed.slice(0, at), domain: trimmed.slice(at + 1) };
}

/**
 * Any mailbox's address (hosted or external), normalised: lower case, the domain in punycode. The
 * local part follows the same rules as Mailroom's own (no relay tricks).
 */
export function normaliseEmail(input: string, field: string): string {
  const { local, domain } = split(input, field);
  const localPart = normaliseLocalPart(local, field);
  const ascii = domainToASCII(domain.toLowerCase().replace(/\.$/, ''));
  const labels = ascii.split('.');
  if (
    !ascii ||
    ascii.length > 253 ||
    labels.length < 2 ||
    !labels.every((l) => LABEL.test(l)) ||
    /^\d+$/.test(labels.at(-1)!)
  ) {
    throw validationFailed(field, `"${domain}" is not a valid domain name`);
  }
  return `${localPart}@${ascii}`;
}

export interface HostedAddress {
  domain: DomainRow;
  localPart: string;
  /** local part @ domain name, lower case. */
  address: string;
}

/** An address of one of the organisation's domains; 422 when malformed or the domain is not theirs. */
export async function hostedAddress(
  domains: DomainsService,
  organizationId: string,
  input: string,
  field = 'address',
): Promise<HostedAddress> {
  const { local, domain: domainName } = split(input, field);
  const localPart = normaliseLocalPart(local, field);
  const domain = domainName ? await domains.byName(organizationId, domainName) : null;
  if (!domain) {
    throw validationFailed(field, `${domainName || '(empty)'} is not one of this organisation's domains`);
  }
  return { domain, localPart, address: `${localPart}@${domain.name}` };
}

// ---- the service -------------------------------------------------------------------------------------

export interface MailboxesOptions {
  db: Db;
  events: EventsService;
  domains: DomainsService;
}

export interface MailboxInput {
  address: string;
  display_name?: string | null;
  /** Null or absent: the mailbox cannot log in until one is set. */
  password?: string | null;
  quota_bytes?: number | null;
}

export interface MailboxChanges {
  display_name?: string | null;
  /** Null removes the password (the mailbox can no longer log in). */
  password?: string | null;
  quota_bytes?: number | null;
  is_active?: boolean | null;
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

export type MailboxFilter = store.MailboxFilter;

export class MailboxesService {
  readonly #o: MailboxesOptions;

  constructor(options: MailboxesOptions) {
    this.#o = options;
  }

  /** Creates the mailbox and its standard folders. */
  async create(organizationId: string, input: MailboxInput): Promise<MailboxDetail> {
    const { domain, localPart, address } = await hostedAddress(
      this.#o.domains,
      organizationId,
      input.address,
    );
    const quotaBytes = quotaOf(input.quota_bytes ?? DEFAULT_QUOTA_BYTES);
    const passwordHash = input.password != null ? await hashPassword(passwordOf(input.password)) : null;
    const id = newId();
    try {
      await this.#o.db.transaction(async (tx) => {
        await this.claimAddress(tx, organizationId, domain.id, localPart, address);
        await store.insertMailbox(tx, {
          id,
          organizationId,
          domainId: domain.id,
          localPart,
          address,
          displayName: (input.display_name ?? '').trim(),
          passwordHash,
          quotaBytes,
        });
        const uidValidity = Math.floor(Date.now() / 1000);
        await store.insertFolders(
          tx,
          FOLDER_NAMES.map((name) => ({
            id: newId(),
            organizationId,
            mailboxId: id,
            name,
            specialUse: SPECIAL_USE[name],
            uidValidity,
            uidNext: 1,
          })),
        );
        await this.#o.events.emit(tx, mailboxCreated, organizationId, {
          mailbox_id: id,
          domain_id: domain.id,
          address,
        });
      });
    } catch (error) {
      if (databaseErrorCode(error) === UNIQUE_VIOLATION) throw conflict(`${address} already exists`);
      throw error;
    }
    return this.detail(organizationId, id);
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

  async update(organizationId: string, id: string, changes: MailboxChanges): Promise<MailboxDetail> {
    const mailbox = await this.get(organizationId, id);
    const set: Partial<store.NewMailbox> = {};
    if (changes.display_name != null) set.displayName = changes.display_name.trim();
    if (changes.quota_bytes != null) set.quotaBytes = quotaOf(changes.quota_bytes);
    if (changes.is_active != null) set.isActive = changes.is_active;
    if (changes.password !== undefined) {
      set.passwordHash = changes.password === null ? null : await hashPassword(passwordOf(changes.password));
    }
    const changed = Object.keys(set).map((k) =>
      k === 'passwordHash' ? 'password' : k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`),
    );
    if (changed.length > 0) {
      await this.#o.db.transaction(async (tx) => {
        if (!(await store.updateMailbox(tx, organizationId, id, set))) throw notFound('Mailbox');
        await this.#o.events.emit(tx, mailboxUpdated, organizationId, {
          mailbox_id: id,
          domain_id: mailbox.domainId,
          address: mailbox.address,
          changes: changed,
        });
      });
    }
    return this.detail(organizationId, id);
  }

  async delete(organizationId: string, id: string): Promise<void> {
    await this.#o.db.transaction(async (tx) => {
      const deleted = await store.deleteMailbox(tx, organizationId, id);
      if (!deleted) throw notFound('Mailbox');
      await this.#o.events.emit(tx, mailboxDeleted, organizationId, {
        mailbox_id: id,
        domain_id: deleted.domainId,
        address: deleted.address,
      });
    });
  }
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
