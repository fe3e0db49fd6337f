import type { SQL } from 'drizzle-orm';
import { bulkInsert } from '../../core/bulk.ts';
import type { Db } from '../../core/db.ts';
import { and, asc, count, desc, eq, gt, inArray, isNull, lt, lte, or, sql } from '../../core/orm.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import { events } from '../events/tables.ts';
import {
  type AttemptRow,
  type DeliveryRow,
  type DeliveryStatus,
  type EndpointRow,
  type NewDelivery,
  webhookAttempts,
  webhookDeliveries,
  webhookEndpoints,
} from './tables.ts';

// ---- endpoints -----------------------------------------------------------------------------------

export async function insertEndpoint(
  db: Db,
  row: typeof webhookEndpoints.$inferInsert,
): Promise<EndpointRow> {
  const [created] = await db.insert(webhookEndpoints).values(row).returning();
  return created;
}

export async function listEndpoints(db: Db, organizationId: string, page: PageRequest) {
  const where = eq(webhookEndpoints.organizationId, organizationId);
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(webhookEndpoints)
      .where(where)
      .orderBy(asc(webhookEndpoints.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(webhookEndpoints).where(where),
  ]);
  return { rows, total };
}

export async function endpointById(db: Db, organizationId: string, id: string): Promise<EndpointRow | null> {
  const [row] = await db
    .select()
    .from(webhookEndpoints)
    .where(and(eq(webhookEndpoints.organizationId, organizationId), eq(webhookEndpoints.id, id)));
  return row ?? null;
}

export async function updateEndpoint(
  db: Db,
  organizationId: string,
  id: string,
  changes: Partial<typeof webhookEndpoints.$inferInsert>,
): Promise<EndpointRow | null> {
  const [row] = await db
    .update(webhookEndpoints)
    .set({ ...changes, updatedAt: new Date() })
    .where(and(eq(webhookEndpoints.organizationId, organizationId), eq(webhookEndpoints.id, id)))
    .returning();
  return row ?? null;
}

export async function deleteEndpoint(db: Db, organizationId: string, id: string): Promise<boolean> {
  const deleted = await db
    .delete(webhookEndpoints)
    .where(and(eq(webhookEndpoints.organizationId, organizationId), eq(webhookEndpoints.id, id)))
    .returning({ id: webhookEndpoints.id });
  return deleted.length > 0;
}

/** Enabled endpoints of these organisations, for fan-out inside an emitting transaction. */
export function enabledEndpoints(db: Db, organizationIds: string[]) {
  return db
    .select({
      id: webhookEndpoints.id,
      organizationId: webhookEndpoints.organizationId,
      eventTypes: webhookEndpoints.eventTypes,
    })
    .from(webhookEndpoints)
    .where(
      and(inArray(webhookEndpoints.organizationId, organizationIds), eq(webhookEndpoints.enabled, true)),
    );
}

// ---- the drain lease: one worker at a time sends an endpoint's messages, in order ----------------

/** Takes (or renews) the lease; returns the endpoint when this owner holds it. */
export async function takeLease(
  db: Db,
  endpointId: string,
  owner: string,
  ms: number,
): Promise<EndpointRow | null> {
  const [row] = await db
    .update(webhookEndpoints)
    .set({ leaseOwner: owner, leaseUntil: sql`now() + ${`${ms} milliseconds`}::interval` })
    .where(
      and(
        eq(webhookEndpoints.id, endpointId),
        or(
          isNull(webhookEndpoints.leaseUntil),
          lt(webhookEndpoints.leaseUntil, sql`now()`),
          eq(webhookEndpoints.leaseOwner, owner),
        ),
      ),
    )
    .returning();
  return row ?? null;
}

export async function releaseLease(db: Db, endpointId: string, owner: string): Promise<void> {
  await db
    .update(webhookEndpoints)
    .set({ leaseOwner: null, leaseUntil: null })
    .where(and(eq(webhookEndpoints.id, endpointId), eq(webhookEndpoints.leaseOwner, owner)));
}

export async function setFailingSince(db: Db, endpointId: string, since: Date | null): Promise<void> {
  await db.update(webhookEndpoints).set({ failingSince: since }).where(eq(webhookEndpoints.id, endpointId));
}

/** Enabled endpoints with messages due and nobody draining them (the sweeper's safety net). */
export async function endpointsWithDueDeliveries(db: Db, limit: number): Promise<string[]> {
  const rows = await db
    .selectDistinct({ id: webhookDeliveries.endpointId })
    .from(webhookDeliveries)
    .innerJoin(webhookEndpoints, eq(webhookEndpoints.id, webhookDeliveries.endpointId))
    .where(
      and(
        eq(webhookDeliveries.status, 'pending'),
        lte(webhookDeliveries.nextAttemptAt, sql`now()`),
        eq(webhookEndpoints.enabled, true),
        or(isNull(webhookEndpoints.leaseUntil), lt(webhookEndpoints.leaseUntil, sql`now()`)),
      ),
    )
    .limit(limit);
  return rows.map((r) => r.id);
}

// ---- deliveries ----------------------------------------------------------------------------------

export interface QueuedDelivery {
  id: string;
  organizationId: string;
  endpointId: string;
  eventId: string;
  eventType: string;
  nextAttemptAt: Date;
}

/** Event deliveries queued by the fan-out (many per emitting transaction). */
export async function insertDeliveries(db: Db, rows: QueuedDelivery[]): Promise<void> {
  await bulkInsert(
    db,
    'webhook_deliveries',
    {
      id: 'uuid',
      organization_id: 'uuid',
      endpoint_id: 'uuid',
      event_id: 'uuid',
      event_type: 'text',
      next_attempt_at: 'timestamptz',
    },
    rows.map((r) => ({
      id: r.id,
      organization_id: r.organizationId,
      endpoint_id: r.endpointId,
      event_id: r.eventId,
      event_type: r.eventType,
      next_attempt_at: r.nextAttemptAt,
    })),
  );
}

export async function insertDelivery(db: Db, row: NewDelivery): Promise<DeliveryRow> {
  const [created] = await db.insert(webhookDeliveries).values(row).returning();
  return created;
}

export interface DueDelivery {
  delivery: DeliveryRow;
  event: { id: string; type: string; organizationId: string; createdAt: Date; data: unknown } | null;
}

/**
 * Pending deliveries whose time has come, oldest first, with their events; `after` continues from the
 * last one seen (the index then skips the entries of rows already sent, not yet vacuumed away).
 */
export async function dueDeliveries(
  db: Db,
  endpointId: string,
  limit: number,
  after?: string,
): Promise<DueDelivery[]> {
  const rows = await db
    .select({ delivery: webhookDeliveries, event: events })
    .from(webhookDeliveries)
    .leftJoin(events, eq(events.id, webhookDeliveries.eventId))
    .where(
      and(
        eq(webhookDeliveries.endpointId, endpointId),
        eq(webhookDeliveries.status, 'pending'),
        lte(webhookDeliveries.nextAttemptAt, sql`now()`),
        after ? gt(webhookDeliveries.id, after) : undefined,
      ),
    )
    .orderBy(asc(webhookDeliveries.id))
    .limit(limit);
  return rows;
}

export async function earliestPending(db: Db, endpointId: string): Promise<Date | null> {
  const [row] = await db
    .select({ at: sql<Date | string | null>`min(${webhookDeliveries.nextAttemptAt})` })
    .from(webhookDeliveries)
    .where(and(eq(webhookDeliveries.endpointId, endpointId), eq(webhookDeliveries.status, 'pending')));
  return row?.at ? new Date(row.at) : null;
}

export interface DeliveryOutcome {
  id: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date | null;
  lastAttemptAt: Date;
  lastStatusCode: number | null;
  lastError: string | null;
}

/** Writes a batch of outcomes in one statement. */
export async function updateDeliveries(db: Db, outcomes: DeliveryOutcome[]): Promise<void> {
  if (outcomes.length === 0) return;
  const json = JSON.stringify(
    outcomes.map((o) => ({
      id: o.id,
      status: o.status,
      attempts: o.attempts,
      next_attempt_at: o.nextAttemptAt?.toISOString() ?? null,
      last_attempt_at: o.lastAttemptAt.toISOString(),
      last_status_code: o.lastStatusCode,
      last_error: o.lastError,
    })),
  );
  await db.execute(sql`
    update webhook_deliveries as d set
      status = v.status, attempts = v.attempts, next_attempt_at = v.next_attempt_at,
      last_attempt_at = v.last_attempt_at, last_status_code = v.last_status_code, last_error = v.last_error
    from json_to_recordset(${json}::json) as v(id uuid, status text, attempts integer,
      next_attempt_at timestamptz, last_attempt_at timestamptz, last_status_code integer, last_error text)
    where d.id = v.id`);
}

/** Moves every message due now to a later time without counting an attempt (the receiver is down). */
export async function postponeDue(db: Db, endpointId: string, until: Date): Promise<void> {
  await db
    .update(webhookDeliveries)
    .set({ nextAttemptAt: until })
    .where(
      and(
        eq(webhookDeliveries.endpointId, endpointId),
        eq(webhookDeliveries.status, 'pending'),
        lte(webhookDeliveries.nextAttemptAt, sql`now()`),
      ),
    );
}

export async function insertAttempts(db: Db, rows: (typeof webhookAttempts.$inferSelect)[]): Promise<void> {
  await bulkInsert(
    db,
    'webhook_attempts',
    {
      id: 'uuid',
      organization_id: 'uuid',
      delivery_id: 'uuid',
      endpoint_id: 'uuid',
      attempted_at: 'timestamptz',
      duration_ms: 'integer',
      status_code: 'integer',
      response_body: 'text',
      error: 'text',
    },
    rows.map((r) => ({
      id: r.id,
      organization_id: r.organizationId,
      delivery_id: r.deliveryId,
      endpoint_id: r.endpointId,
      attempted_at: r.attemptedAt,
      duration_ms: r.durationMs,
      status_code: r.statusCode,
      response_body: r.responseBody,
      error: r.error,
    })),
  );
}

export interface DeliveryFilter {
  endpointId?: string;
  status?: DeliveryStatus;
  eventType?: string;
}

export async function listDeliveries(
  db: Db,
  organizationId: string,
  filter: DeliveryFilter,
  page: PageRequest,
) {
  const conditions: SQL[] = [eq(webhookDeliveries.organizationId, organizationId)];
  if (filter.endpointId) conditions.push(eq(webhookDeliveries.endpointId, filter.endpointId));
  if (filter.status) conditions.push(eq(webhookDeliveries.status, filter.status));
  if (filter.eventType) conditions.push(eq(webhookDeliveries.eventType, filter.eventType));
  const where = and(...conditions);
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(webhookDeliveries)
      .where(where)
      .orderBy(desc(webhookDeliveries.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(webhookDeliveries).where(where),
  ]);
  return { rows, total };
}

export async function deliveryById(db: Db, organizationId: string, id: string): Promise<DeliveryRow | null> {
  const [row] = await db
    .select()
    .from(webhookDeliveries)
    .where(and(eq(webhookDeliveries.organizationId, organizationId), eq(webhookDeliveries.id, id)));
  return row ?? null;
}

export function attemptsOf(db: Db, deliveryId: string): Promise<AttemptRow[]> {
  return db
    .select()
    .from(webhookAttempts)
    .where(eq(webhookAttempts.deliveryId, deliveryId))
    .orderBy(asc(webhookAttempts.attemptedAt), asc(webhookAttempts.id));
}

/** Deletes up to `limit` finished deliveries (and their attempts) older than `before`. */
export async function deleteDeliveriesBefore(db: Db, before: Date, limit: number): Promise<number> {
  const oldest = db
    .select({ id: webhookDeliveries.id })
    .from(webhookDeliveries)
    .where(and(lt(webhookDeliveries.createdAt, before), sql`${webhookDeliveries.status} <> 'pending'`))
    .limit(limit);
  const deleted = await db
    .delete(webhookDeliveries)
    .where(inArray(webhookDeliveries.id, oldest))
    .returning({ id: webhookDeliveries.id });
  return deleted.length;
}
