// The audit trail (who changed what) and security events (failed logins, MFA failures, key misuse...).
import type { Logger } from 'pino';
import type { SQL } from 'drizzle-orm';
import { executeTogether } from '../../core/bulk.ts';
import type { Db } from '../../core/db.ts';
import type { RequestMeta } from '../../core/http.ts';
import { newId } from '../../core/ids.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import type { EventsService } from '../events/service.ts';
import { securityEventRecorded } from './events.ts';
import * as store from './store.ts';
import type { AuditRow, SecurityEventRow } from './tables.ts';

export type SecurityEventKind =
  | 'login_failed'
  | 'login_succeeded'
  | 'mfa_failed'
  | 'mfa_enabled'
  | 'mfa_disabled'
  | 'recovery_code_used'
  | 'refresh_token_reuse'
  | 'password_changed'
  | 'password_reset'
  | 'api_key_invalid'
  | 'api_key_expired'
  | 'api_key_revoked'
  | 'api_key_misuse'
  | 'rate_limited'
  /** A refused SMTP submission login (no password in the details). */
  | 'smtp_auth_failed'
  /** The SMTP login failure that reached the hourly limit: the address or username is blocked. */
  | 'smtp_auth_rate_limited'
  /** The same for IMAP and POP3 logins (they share SMTP's limits: one budget per address and username). */
  | 'imap_auth_failed'
  | 'imap_auth_rate_limited'
  | 'pop3_auth_failed'
  | 'pop3_auth_rate_limited';

export interface SecurityEventInput {
  kind: SecurityEventKind;
  meta: RequestMeta;
  userId?: string | null;
  organizationId?: string | null;
  apiKeyId?: string | null;
  details?: Record<string, unknown>;
}

export interface AuditInput {
  organizationId: string | null;
  actorType: 'user' | 'api_key' | 'anonymous' | 'system';
  actorId: string | null;
  action: string;
  targetType: string | null;
  targetId: string | null;
  status: number;
  meta: RequestMeta;
  /** What the action alone does not say (an export's row count); never a secret. */
  details?: Record<string, unknown>;
}

export class AuditService {
  readonly #db: Db;
  readonly #log: Logger;
  readonly #events: EventsService;

  constructor(db: Db, log: Logger, events: EventsService) {
    this.#db = db;
    this.#log = log;
    this.#events = events;
  }

  async record(input: AuditInput): Promise<void> {
    await this.recordIn(this.#db, [input]);
  }

  /** Audit entries written inside `tx` (the change they record commits or rolls back with them). */
  async recordIn(tx: Db, inputs: AuditInput[]): Promise<void> {
    await executeTogether(tx, [this.insertStatement(inputs)]);
  }

  /** recordIn's insert as a statement, for a caller that writes the entries together with its own rows. */
  insertStatement(inputs: AuditInput[]): SQL | null {
    return store.auditInsert(
      inputs.map((input) => ({
        id: newId(),
        organizationId: input.organizationId,
        actorType: input.actorType,
        actorId: input.actorId,
        action: input.action,
        targetType: input.targetType,
        targetId: storable(input.targetId),
        status: input.status,
        ip: storable(input.meta.ip),
        requestId: storable(input.meta.requestId),
        details: input.details ?? null,
      })),
    );
  }

  /** Never throws: a failure to record must not turn a refused login into a 500. */
  async securityEvent(input: SecurityEventInput): Promise<void> {
    try {
      const row = {
        id: newId(),
        kind: input.kind,
        userId: input.userId ?? null,
        organizationId: input.organizationId ?? null,
        apiKeyId: input.apiKeyId ?? null,
        ip: input.meta.ip,
        requestId: input.meta.requestId,
        details: input.details ?? {},
      };
      // Events belong to an organisation: those about a person alone (a failed login) stay in the log,
      // written without a transaction.
      const organizationId = row.organizationId;
      if (!organizationId) {
        await store.insertSecurityEvent(this.#db, row);
        return;
      }
      await this.#db.transaction(async (tx) => {
        await store.insertSecurityEvent(tx, row);
        await this.#events.emit(tx, securityEventRecorded, organizationId, {
          security_event_id: row.id,
          kind: row.kind,
          ip: row.ip,
          user_id: row.userId,
          api_key_id: row.apiKeyId,
          details: row.details,
        });
      });
    } catch (err) {
      this.#log.error({ err, kind: input.kind }, 'could not record security event');
    }
  }

  async list(filter: store.AuditFilter, page: PageRequest) {
    const { rows, total } = await store.listAudit(this.#db, filter, page);
    return toPage(rows.map(auditView), total, page);
  }

  async listSecurityEvents(filter: store.SecurityEventFilter, page: PageRequest) {
    const { rows, total } = await store.listSecurityEvents(this.#db, filter, page);
    return toPage(rows.map(securityEventView), total, page);
  }
}

/**
 * What the audit trail keeps of a value taken from a request: PostgreSQL text holds neither NUL nor an
 * unpaired surrogate, so those are written escaped (`\u0000`, `\ud800`) and the attempt is recorded.
 */
export function storable<T extends string | null>(value: T): T {
  if (value === null || (value.isWellFormed() && !value.includes('\0'))) return value;
  let out = '';
  for (const ch of value as string) {
    const code = ch.codePointAt(0)!;
    out += code === 0 || (code >= 0xd800 && code <= 0xdfff) ? `\\u${code.toString(16).padStart(4, '0')}` : ch;
  }
  return out as T;
}

export function auditView(r: AuditRow) {
  return {
    id: r.id,
    organization_id: r.organizationId,
    actor_type: r.actorType,
    actor_id: r.actorId,
    action: r.action,
    target_type: r.targetType,
    target_id: r.targetId,
    status: r.status,
    ip: r.ip,
    request_id: r.requestId,
    details: r.details,
    created_at: r.createdAt.toISOString(),
  };
}

export function securityEventView(r: SecurityEventRow) {
  return {
    id: r.id,
    kind: r.kind,
    organization_id: r.organizationId,
    user_id: r.userId,
    api_key_id: r.apiKeyId,
    ip: r.ip,
    request_id: r.requestId,
    details: r.details,
    created_at: r.createdAt.toISOString(),
  };
}
