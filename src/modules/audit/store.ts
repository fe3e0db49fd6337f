import { and, count, desc, eq, gte, lte } from '../../core/orm.ts';
import type { SQL } from 'drizzle-orm';
import { bulkInsertStatement } from '../../core/bulk.ts';
import type { Db } from '../../core/db.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import { auditLog, securityEvents } from './tables.ts';

export type NewAuditEntry = typeof auditLog.$inferInsert;
export type NewSecurityEvent = typeof securityEvents.$inferInsert;

export interface AuditFilter {
  organizationId?: string | null;
  actorId?: string;
  action?: string;
  targetType?: string;
  targetId?: string;
  since?: Date;
  until?: Date;
}

export interface SecurityEventFilter {
  organizationId?: string;
  userId?: string;
  kind?: string;
  since?: Date;
  until?: Date;
}

/** The insert of entries, as one statement (the send API writes one per message it queues). */
export function auditInsert(entries: NewAuditEntry[]): SQL | null {
  return bulkInsertStatement(
    'audit_log',
    {
      id: 'uuid',
      organization_id: 'uuid',
      actor_type: 'text',
      actor_id: 'uuid',
      action: 'text',
      target_type: 'text',
      target_id: 'text',
      status: 'integer',
      ip: 'text',
      request_id: 'text',
      details: 'jsonb',
    },
    entries.map((e) => ({
      id: e.id,
      organization_id: e.organizationId ?? null,
      actor_type: e.actorType,
      actor_id: e.actorId ?? null,
      action: e.action,
      target_type: e.targetType ?? null,
      target_id: e.targetId ?? null,
      status: e.status,
      ip: e.ip ?? null,
      request_id: e.requestId ?? null,
      details: e.details ?? null,
    })),
  );
}

export async function listAudit(db: Db, filter: AuditFilter, page: PageRequest) {
  const conditions: SQL[] = [];
  if (filter.organizationId) conditions.push(eq(auditLog.organizationId, filter.organizationId));
  if (filter.actorId) conditions.push(eq(auditLog.actorId, filter.actorId));
  if (filter.action) conditions.push(eq(auditLog.action, filter.action));
  if (filter.targetType) conditions.push(eq(auditLog.targetType, filter.targetType));
  if (filter.targetId) conditions.push(eq(auditLog.targetId, filter.targetId));
  if (filter.since) conditions.push(gte(auditLog.createdAt, filter.since));
  if (filter.until) conditions.push(lte(auditLog.createdAt, filter.until));
  const where = and(...conditions);
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(auditLog)
      .where(where)
      .orderBy(desc(auditLog.createdAt), desc(auditLog.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(auditLog).where(where),
  ]);
  return { rows, total };
}

export async function insertSecurityEvent(db: Db, event: NewSecurityEvent): Promise<void> {
  await db.insert(securityEvents).values(event);
}

export async function listSecurityEvents(db: Db, filter: SecurityEventFilter, page: PageRequest) {
  const conditions: SQL[] = [];
  if (filter.organizationId) conditions.push(eq(securityEvents.organizationId, filter.organizationId));
  if (filter.userId) conditions.push(eq(securityEvents.userId, filter.userId));
  if (filter.kind) conditions.push(eq(securityEvents.kind, filter.kind));
  if (filter.since) conditions.push(gte(securityEvents.createdAt, filter.since));
  if (filter.until) conditions.push(lte(securityEvents.createdAt, filter.until));
  const where = and(...conditions);
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(securityEvents)
      .where(where)
      .orderBy(desc(securityEvents.createdAt), desc(securityEvents.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(securityEvents).where(where),
  ]);
  return { rows, total };
}
