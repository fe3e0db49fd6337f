// SMTP submission (RFC 6409): who may log in, and the organisation's SMTP credentials.
//
// Two kinds of login:
//   local@domain   a hosted mailbox (active, with a password, on an active domain whose ownership is proven)
//   smtp_…         an SMTP credential of the organisation (enabled), for applications, printers and CRMs
// What each identity may then send as is OutboundService.checkSender's business (see identity.ts).
//
// Failed logins are limited per client address and per username (MAILROOM_SUBMISSION_AUTH_FAILURES_PER_HOUR,
// one-hour windows that start at the first failure). The failure that reaches the limit blocks both keys
// until its window ends: even the right password is refused meanwhile, so a guesser gets that many
// guesses an hour and no more. Blocked attempts cost no password check and write nothing.
import { randomBytes } from 'node:crypto';
import { randomToken } from '../../core/crypto.ts';
import type { Db } from '../../core/db.ts';
import { notFound } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import { burnPasswordCheck, hashPassword, verifyPassword } from '../../core/passwords.ts';
import type { Limit, RateLimiter } from '../../core/ratelimit.ts';
import type { AuditService, SecurityEventKind } from '../audit/service.ts';
import type { SenderIdentity } from '../delivery/identity.ts';
import type { DomainsService } from '../domains/service.ts';
import type { EventsService } from '../events/service.ts';
import { type MailboxesService, normaliseEmail } from '../mailboxes/service.ts';
import { smtpCredentialCreated, smtpCredentialDeleted, smtpCredentialUpdated } from './events.ts';
import * as store from './store.ts';
import type { SmtpCredentialRow } from './tables.ts';

export const USERNAME_PREFIX = 'smtp_';
/** last_used_at and last_used_ip are written at most this often per credential (unless the address changes). */
const TOUCH_EVERY_MS = 60_000;
const FAILURE_WINDOW_SECONDS = 3600;
/** The shared block marker (see #block), and how long a probe's own window lasts when there is no block. */
const BLOCK = 'smtp_auth_block';
const PROBE_WINDOW_SECONDS = 0.001;
/** Longer usernames are never ours: they are refused without a lookup, and cut to this in counters and logs. */
const MAX_USERNAME_LENGTH = 320;

export interface SubmissionOptions {
  db: Db;
  events: EventsService;
  audit: AuditService;
  domains: DomainsService;
  mailboxes: MailboxesService;
  limiter: RateLimiter;
  /** Failed logins per client address and per username per hour; the last one blocks both. */
  authFailuresPerHour: number;
}

/** The protocols a mailbox logs in with; IMAP and POP3 take mailbox logins only. */
export type MailProtocol = 'smtp' | 'imap' | 'pop3';

export type AuthResult = { ok: true; identity: SenderIdentity } | { ok: false; limited: boolean };

export interface CredentialInput {
  name: string;
  /** Null or absent: any domain of the organisation. */
  domain_id?: string | null;
}

export interface CredentialChanges {
  name?: string | null;
  is_enabled?: boolean | null;
}

/** A credential with its password, which exists in this answer only. */
export interface IssuedCredential {
  row: SmtpCredentialRow;
  password: string;
}

type Failure = {
  reason: 'unknown_user' | 'password' | 'disabled' | 'suspended' | 'no_password';
  organizationId: string | null;
  details: Record<string, unknown>;
};

export class SubmissionService {
  readonly #o: SubmissionOptions;
  readonly #failuresPerIp: Limit;
  readonly #failuresPerUser: Limit;
  /** Blocks this process already knows of (key → until, ms): skips the password check at once. */
  readonly #blocked = new Map<string, number>();
  readonly #touched = new Map<string, { at: number; ip: string }>();

  constructor(options: SubmissionOptions) {
    this.#o = options;
    const limit = options.authFailuresPerHour;
    this.#failuresPerIp = { name: 'smtp_auth_failures:ip', limit, windowSeconds: FAILURE_WINDOW_SECONDS };
    this.#failuresPerUser = { name: 'smtp_auth_failures:user', limit, windowSeconds: FAILURE_WINDOW_SECONDS };
  }

  // ---- credentials ------------------------------------------------------------------------------------

  async create(organizationId: string, input: CredentialInput): Promise<IssuedCredential> {
    const domainId = input.domain_id ?? null;
    if (domainId) await this.#o.domains.get(organizationId, domainId);
    const password = newPassword();
    const passwordHash = await hashPassword(password);
    const row = await this.#o.db.transaction(async (tx) => {
      const created = await store.insertCredential(tx, {
        id: newId(),
        organizationId,
        name: input.name.trim(),
        username: newUsername(),
        passwordHash,
        domainId,
      });
      await this.#o.events.emit(tx, smtpCredentialCreated, organizationId, eventData(created));
      return created;
    });
    return { row, password };
  }

  async list(organizationId: string, page: PageRequest) {
    const { rows, total } = await store.listCredentials(this.#o.db, organizationId, page);
    return toPage(rows, total, page);
  }

  async get(organizationId: string, id: string): Promise<SmtpCredentialRow> {
    const row = await store.credentialById(this.#o.db, organizationId, id);
    if (!row) throw notFound('SMTP credential');
    return row;
  }

  async update(organizationId: string, id: string, changes: CredentialChanges): Promise<SmtpCredentialRow> {
    const current = await this.get(organizationId, id);
    const set: Partial<store.NewSmtpCredential> = {};
    const changed: string[] = [];
    if (changes.name != null && changes.name.trim() !== current.name) {
      set.name = changes.name.trim();
      changed.push('name');
    }
    if (changes.is_enabled != null && changes.is_enabled !== current.isEnabled) {
      set.isEnabled = changes.is_enabled;
      changed.push('is_enabled');
    }
    if (changed.length === 0) return current;
    return this.#change(organizationId, id, set, changed);
  }

  /** A new password, shown once; the old one stops working at once. */
  async resetPassword(organizationId: string, id: string): Promise<IssuedCredential> {
    await this.get(organizationId, id);
    const password = newPassword();
    const row = await this.#change(organizationId, id, { passwordHash: await hashPassword(password) }, [
      'password',
    ]);
    return { row, password };
  }

  async delete(organizationId: string, id: string): Promise<void> {
    await this.#o.db.transaction(async (tx) => {
      const deleted = await store.deleteCredential(tx, organizationId, id);
      if (!deleted) throw notFound('SMTP credential');
      await this.#o.events.emit(tx, smtpCredentialDeleted, organizationId, eventData(deleted));
    });
    this.#touched.delete(id);
  }

  #change(
    organizationId: string,
    id: string,
    set: Partial<store.NewSmtpCredential>,
    changes: string[],
  ): Promise<SmtpCredentialRow> {
    return this.#o.db.transaction(async (tx) => {
      const row = await store.updateCredential(tx, organizationId, id, set);
      if (!row) throw notFound('SMTP credential');
      await this.#o.events.emit(tx, smtpCredentialUpdated, organizationId, { ...eventData(row), changes });
      return row;
    });
  }

  // ---- logins -----------------------------------------------------------------------------------------

  /**
   * Checks a login (submission, and IMAP and POP3 with `protocol`). Never throws for a refused one;
   * `limited` says the client or the username is over its failure limit (answered 454 rather than 535).
   * The password is never logged or stored. Every protocol counts against the same limits.
   */
  async authenticate(
    username: string,
    password: string,
    remoteIp: string,
    sessionId?: string,
    protocol: MailProtocol = 'smtp',
  ): Promise<AuthResult> {
    const login = username.trim().toLowerCase().slice(0, MAX_USERNAME_LENGTH);
    const keys = { ip: remoteIp, user: login };
    const now = Date.now();
    if (this.#knownBlock(keys, now)) return { ok: false, limited: true };

    const checked = await this.#check(username, password, remoteIp, protocol);
    const meta = { ip: remoteIp, requestId: sessionId ?? newId() };
    if ('reason' in checked) return this.#fail(keys, checked, meta, protocol);

    // The right password still fails while a block (set here or by another process) lasts.
    if (await this.#sharedBlock(keys)) return { ok: false, limited: true };
    if (checked.kind === 'credential') await this.#touch(checked.credentialId, remoteIp, now);
    return { ok: true, identity: checked };
  }

  async #check(
    username: string,
    password: string,
    remoteIp: string,
    protocol: MailProtocol,
  ): Promise<SenderIdentity | Failure> {
    const login = username.trim();
    if (login.length > MAX_USERNAME_LENGTH) return this.#unknown(password);
    // SMTP credentials send; only a mailbox has mail to read.
    if (protocol !== 'smtp' && !login.includes('@')) return this.#unknown(password);
    if (login.includes('@')) {
      let address: string;
      try {
        address = normaliseEmail(login, 'username');
      } catch {
        return this.#unknown(password);
      }
      const mailbox = await store.mailboxLogin(this.#o.db, address);
      if (!mailbox) return this.#unknown(password);
      const known = { organizationId: mailbox.organizationId, details: { mailbox_id: mailbox.mailboxId } };
      // An app password (generated, so found by its hash) or the mailbox's own.
      const appPassword = await this.#o.mailboxes.appPasswordLogin(mailbox.mailboxId, password, remoteIp);
      if (!appPassword) {
        if (!mailbox.passwordHash) {
          await burnPasswordCheck(password);
          return { reason: 'no_password', ...known };
        }
        if (!(await verifyPassword(mailbox.passwordHash, password))) return { reason: 'password', ...known };
      }
      if (!mailbox.isActive) return { reason: 'disabled', ...known };
      if (mailbox.status === 'suspended') return { reason: 'suspended', ...known };
      return {
        kind: 'mailbox',
        organizationId: mailbox.organizationId,
        mailboxId: mailbox.mailboxId,
        address: mailbox.address,
      };
    }
    const credential = await store.credentialByUsername(this.#o.db, login.toLowerCase());
    if (!credential) return this.#unknown(password);
    const known = {
      organizationId: credential.organizationId,
      details: { smtp_credential_id: credential.id },
    };
    if (!(await verifyPassword(credential.passwordHash, password))) return { reason: 'password', ...known };
    if (!credential.isEnabled) return { reason: 'disabled', ...known };
    return {
      kind: 'credential',
      organizationId: credential.organizationId,
      credentialId: credential.id,
      domainId: credential.domainId,
    };
  }

  /** Unknown accounts cost the same time as known ones, so timing tells nothing. */
  async #unknown(password: string): Promise<Failure> {
    await burnPasswordCheck(password);
    return { reason: 'unknown_user', organizationId: null, details: {} };
  }

  async #fail(
    keys: { ip: string; user: string },
    failure: Failure,
    meta: { ip: string; requestId: string },
    protocol: MailProtocol,
  ): Promise<AuthResult> {
    const [perIp, perUser] = await Promise.all([
      this.#o.limiter.hit(this.#failuresPerIp, keys.ip),
      this.#o.limiter.hit(this.#failuresPerUser, keys.user),
    ]);
    // The failure that reaches the limit blocks its key for the rest of the window.
    const reached = [
      { key: `ip:${keys.ip}`, by: 'ip', result: perIp },
      { key: `user:${keys.user}`, by: 'username', result: perUser },
    ].filter((r) => r.result.remaining === 0);
    for (const r of reached) await this.#block(r.key, r.result.retryAfterSeconds);
    // Only the failure that reached the limit is recorded; those after it (from other processes, or
    // racing) would only fill the table.
    const first = reached.filter((r) => r.result.allowed);
    if (reached.length > 0 && first.length === 0) return { ok: false, limited: true };
    const kind: SecurityEventKind =
      reached.length > 0 ? `${protocol}_auth_rate_limited` : `${protocol}_auth_failed`;
    await this.#o.audit.securityEvent({
      kind,
      meta,
      organizationId: failure.organizationId,
      details: {
        protocol,
        username: keys.user,
        reason: failure.reason,
        ...failure.details,
        ...(first.length > 0
          ? {
              limited_by: first.map((r) => r.by),
              retry_after_seconds: Math.max(...first.map((r) => r.result.retryAfterSeconds)),
            }
          : {}),
      },
    });
    return { ok: false, limited: reached.length > 0 };
  }

  /**
   * Blocks are written twice: in this process (checked before the password, so a blocked flood costs no
   * hashing) and in the shared limiter (so every process refuses the right password too). The shared
   * block is a limiter window of its own that lasts as long as the failure window has left. Reading it is
   * a hit too: a probe opens a one-millisecond window when there is none, so a window with more than a
   * second left means blocked.
   */
  async #block(key: string, seconds: number): Promise<void> {
    const now = Date.now();
    this.#blocked.set(key, now + seconds * 1000);
    if (this.#blocked.size > 10_000) {
      for (const [k, until] of this.#blocked) if (until <= now) this.#blocked.delete(k);
    }
    const block = { name: BLOCK, limit: 1, windowSeconds: seconds };
    const written = await this.#o.limiter.hit(block, key);
    // A probe's window (a millisecond) was open, so this one did not start: write it once it has gone.
    if (seconds > 1 && written.retryAfterSeconds <= 1) {
      await new Promise((resolve) => setTimeout(resolve, 2));
      await this.#o.limiter.hit(block, key);
    }
  }

  #knownBlock(keys: { ip: string; user: string }, now: number): boolean {
    return [`ip:${keys.ip}`, `user:${keys.user}`].some((key) => {
      const until = this.#blocked.get(key);
      if (until === undefined) return false;
      if (until > now) return true;
      this.#blocked.delete(key);
      return false;
    });
  }

  async #sharedBlock(keys: { ip: string; user: string }): Promise<boolean> {
    const probe = { name: BLOCK, limit: 1, windowSeconds: PROBE_WINDOW_SECONDS };
    const results = await Promise.all([
      this.#o.limiter.hit(probe, `ip:${keys.ip}`),
      this.#o.limiter.hit(probe, `user:${keys.user}`),
    ]);
    return results.some((r) => r.retryAfterSeconds > 1);
  }

  async #touch(credentialId: string, ip: string, now: number): Promise<void> {
    const last = this.#touched.get(credentialId);
    if (last && last.ip === ip && last.at + TOUCH_EVERY_MS > now) return;
    this.#touched.set(credentialId, { at: now, ip });
    if (this.#touched.size > 50_000) this.#touched.clear();
    // Best effort: a login does not fail for its bookkeeping; the next one tries again.
    await store
      .touchCredential(this.#o.db, credentialId, new Date(now), ip)
      .catch(() => this.#touched.delete(credentialId));
  }
}

/** `smtp_` and 24 hex digits (96 random bits): unique without a retry. */
function newUsername(): string {
  return `${USERNAME_PREFIX}${randomBytes(12).toString('hex')}`;
}

/** 32 characters of base64url (192 random bits). */
function newPassword(): string {
  return randomToken(24);
}

function eventData(row: SmtpCredentialRow) {
  return {
    smtp_credential_id: row.id,
    name: row.name,
    username: row.username,
    domain_id: row.domainId,
  };
}
