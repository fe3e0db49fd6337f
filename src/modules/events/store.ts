import type { SQL } from 'drizzle-orm';
import { bulkInsertStatement } from '../../core/bulk.ts';
import type { Db } from '../../core/db.ts';
import { and, asc, count, desc, eq, gt, gte, inArray, like, lt, lte, or, sql } from '../../core/orm.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import { type EventRow, events } from './tables.ts';

export const NOTIFY_CHANNEL = 'mailroom_events';

export interface EventFilter {
  /** Exact types or `family.*`; empty means every type. */
  types: string[];
  /** Only events after this one (by id, which is time-ordered). */
  after?: string;
  since?: Date;
  until?: Date;
}

/** The insert of events, as a statement. */
export function eventsInsert(rows: EventRow[]): SQL | null {
  return bulkInsertStatement(
    'events',
    { id: 'uuid', organization_id: 'uuid', type: 'text', data: 'jsonb', created_at: 'timestamptz' },
    rows.map((r) => ({
      id: r.id,
      organization_id: r.organizationId,
      type: r.type,
      data: r.data,
      created_at: r.createdAt,
    })),
  );
}

/**
 * The notifications as one SELECT (null for none), to run alone or to end a statement of writes; they
 * are sent when the transaction commits, and never if it rolls back.
 */
export function notifyStatement(payloads: string[]): SQL | null {
  if (payloads.length === 0) return null;
  if (payloads.length === 1) return sql`select pg_notify(${NOTIFY_CHANNEL}, ${payloads[0]})`;
  return sql`select pg_notify(${NOTIFY_CHANNEL}, p) from json_array_elements_text(${JSON.stringify(payloads)}::json) as p`;
}

function typeCondition(types: string[]): SQL | undefined {
  if (types.length === 0) return undefined;
  const exact = types.filter((t) => !t.endsWith('.*'));
  const prefixes = types.filter((t) => t.endsWith('.*')).map((t) => `${t.slice(0, -1)}%`);
  return or(
    ...(exact.length ? [inArray(events.type, exact)] : []),
    ...prefixes.map((p) => like(events.type, p)),
  );
}

function conditions(organizationId: string, filter: EventFilter): SQL | undefined {
  const where: (SQL | undefined)[] = [eq(events.organizationId, organizationId), typeCondition(filter.types)];
  if (filter.after) where.push(gt(events.id, filter.after));
  if (filter.since) where.push(gte(events.createdAt, filter.since));
  if (filter.until) where.push(lte(events.createdAt, filter.until));
  return and(...where);
}

/** Newest first, for people browsing. */
export async function listEvents(db: Db, organizationId: string, filter: EventFilter, page: PageRequest) {
  const where = conditions(organizationId, filter);
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(events)
      .where(where)
      .orderBy(desc(events.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(events).where(where),
  ]);
  return { rows, total };
}

/** Oldest first after a cursor, for replay. */
export function eventsAfter(db: Db, organizationId: string, filter: EventFilter, limit: number) {
  return db
    .select()
    .from(events)
    .where(conditions(organizationId, filter))
    .orderBy(asc(events.id))
    .limit(limit);
}

export async function eventById(db: Db, organizationId: string, id: string): Promise<EventRow | null> {
  const [row] = await db
    .select()
    .from(events)
    .where(and(eq(events.organizationId, organizationId), eq(events.id, id)));
  return row ?? null;
}

export function eventsByIds(db: Db, ids: string[]): Promise<EventRow[]> {
  return db.select().from(events).where(inArray(events.id, ids)).orderBy(asc(events.id));
}

/** Deletes up to `limit` events older than `before`; returns how many went. */
export async function deleteEventsBefore(db: Db, before: Date, limit: number): Promise<number> {
  const oldest = db.select({ id: events.id }).from(events).where(lt(events.createdAt, before)).limit(limit);
  const deleted = await db.delete(events).where(inArray(events.id, oldest)).returning({ id: events.id });
  return deleted.length;
}
