// Queries of the Teams channels, their delivery queue and the CSAT surveys. Every query that an API
// request reaches is scoped by organisation.
import type { Db } from '../../core/db.ts';
import { and, asc, count, desc, eq, inArray, isNull, lt, or, sql } from '../../core/orm.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import {
  type ChannelRow,
  csatSurveys,
  type DeliveryStatus,
  type SurveyRow,
  type TeamsDeliveryRow,
  teamsChannels,
  teamsDeliveries,
} from './tables.ts';

// ---- channels -----------------------------------------------------------------------------------------

/** Null when the organisation already has a channel of that name. */
export async function insertChannel(
  db: Db,
  row: typeof teamsChannels.$inferInsert,
): Promise<ChannelRow | null> {
  const [created] = await db.insert(teamsChannels).values(row).onConflictDoNothing().returning();
  return created ?? null;
}

export async function listChannels(db: Db, organizationId: string, page: PageRequest) {
  const where = eq(teamsChannels.organizationId, organizationId);
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(teamsChannels)
      .where(where)
      .orderBy(asc(teamsChannels.name), asc(teamsChannels.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(teamsChannels).where(where),
  ]);
  return { rows, total };
}

export async function channelById(db: Db, organizationId: string, id: string): Promise<ChannelRow | null> {
  const [row] = await db
    .select()
    .from(teamsChannels)
    .where(and(eq(teamsChannels.organizationId, organizationId), eq(teamsChannels.id, id)));
  return row ?? null;
}

/** The channel after the change; null when it does not exist; 'conflict' when the name is taken. */
export async function updateChannel(
  db: Db,
  organizationId: string,
  id: string,
  changes: Partial<typeof teamsChannels.$inferInsert>,
): Promise<ChannelRow | null | 'conflict'> {
  if (changes.name !== undefined) {
    const [taken] = await db
      .select({ id: teamsChannels.id })
      .from(teamsChannels)
      .where(and(eq(teamsChannels.organizationId, organizationId), eq(teamsChannels.name, changes.name)));
    if (taken && taken.id !== id) return 'conflict';
  }
  const [row] = await db
    .update(teamsChannels)
    .set({ ...changes, updatedAt: new Date() })
    .where(and(eq(teamsChannels.organizationId, organizationId), eq(teamsChannels.id, id)))
    .returning();
  return row ?? null;
}

export async function deleteChannel(db: Db, organizationId: string, id: string): Promise<boolean> {
  const rows = await db
    .delete(teamsChannels)
    .where(and(eq(teamsChannels.organizationId, organizationId), eq(teamsChannels.id, id)))
    .returning({ id: teamsChannels.id });
  return rows.length > 0;
}

/** Enabled channels of these organisations, for the fan-out inside an emitting transaction. */
export function enabledChannels(db: Db, organizationIds: string[]) {
  return db
    .select({
      id: teamsChannels.id,
      organizationId: teamsChannels.organizationId,
      deskIds: teamsChannels.deskIds,
      eventTypes: teamsChannels.eventTypes,
    })
    .from(teamsChannels)
    .where(and(inArray(teamsChannels.organizationId, organizationIds), eq(teamsChannels.enabled, true)));
}

export async function recordChannelOutcome(
  db: Db,
  channelId: string,
  ok: boolean,
  error: string | null,
): Promise<void> {
  await db
    .update(teamsChannels)
    .set(ok ? { lastSuccessAt: new Date() } : { lastFailureAt: new Date(), lastError: error })
    .where(eq(teamsChannels.id, channelId));
}

// ---- deliveries ---------------------------------------------------------------------------------------

export async function insertDeliveries(db: Db, rows: (typeof teamsDeliveries.$inferInsert)[]): Promise<void> {
  if (rows.length) await db.insert(teamsDeliveries).values(rows);
}

/** Takes a pending delivery for one attempt; null when it is finished or another worker holds it. */
export async function claimDelivery(db: Db, id: string, leaseMs: number): Promise<TeamsDeliveryRow | null> {
  const [row] = await db
    .update(teamsDeliveries)
    .set({ leaseUntil: sql`now() + ${`${leaseMs} milliseconds`}::interval` })
    .where(
      and(
        eq(teamsDeliveries.id, id),
        eq(teamsDeliveries.status, 'pending'),
        or(isNull(teamsDeliveries.leaseUntil), lt(teamsDeliveries.leaseUntil, sql`now()`)),
      ),
    )
    .returning();
  return row ?? null;
}

export interface DeliveryOutcome {
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date | null;
  lastAttemptAt: Date;
  lastStatusCode: number | null;
  lastError: string | null;
}

export async function recordDelivery(db: Db, id: string, outcome: DeliveryOutcome): Promise<void> {
  await db
    .update(teamsDeliveries)
    .set({ ...outcome, leaseUntil: null })
    .where(eq(teamsDeliveries.id, id));
}

export async function listDeliveries(
  db: Db,
  organizationId: string,
  channelId: string,
  status: DeliveryStatus | undefined,
  page: PageRequest,
) {
  const where = and(
    eq(teamsDeliveries.organizationId, organizationId),
    eq(teamsDeliveries.channelId, channelId),
    status ? eq(teamsDeliveries.status, status) : undefined,
  );
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(teamsDeliveries)
      .where(where)
      .orderBy(desc(teamsDeliveries.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(teamsDeliveries).where(where),
  ]);
  return { rows, total };
}

/** Pending deliveries due and held by nobody (their wake-up was lost): the sweep's safety net. */
export async function strandedDeliveries(db: Db, limit: number): Promise<string[]> {
  const rows = await db
    .select({ id: teamsDeliveries.id })
    .from(teamsDeliveries)
    .where(
      and(
        eq(teamsDeliveries.status, 'pending'),
        lt(teamsDeliveries.nextAttemptAt, sql`now() - interval '2 minutes'`),
        or(isNull(teamsDeliveries.leaseUntil), lt(teamsDeliveries.leaseUntil, sql`now()`)),
      ),
    )
    .limit(limit);
  return rows.map((r) => r.id);
}

/** Deletes up to `limit` finished deliveries older than `before`. */
export async function deleteFinishedBefore(db: Db, before: Date, limit: number): Promise<number> {
  const oldest = db
    .select({ id: teamsDeliveries.id })
    .from(teamsDeliveries)
    .where(and(lt(teamsDeliveries.createdAt, before), sql`${teamsDeliveries.status} <> 'pending'`))
    .limit(limit);
  const deleted = await db
    .delete(teamsDeliveries)
    .where(inArray(teamsDeliveries.id, oldest))
    .returning({ id: teamsDeliveries.id });
  return deleted.length;
}

// ---- CSAT surveys -------------------------------------------------------------------------------------

/** The survey of this resolution, made on first use (a retried resolution mail finds the same one). */
export async function surveyFor(db: Db, row: typeof csatSurveys.$inferInsert): Promise<SurveyRow> {
  await db.insert(csatSurveys).values(row).onConflictDoNothing();
  const [survey] = await db
    .select()
    .from(csatSurveys)
    .where(and(eq(csatSurveys.ticketId, row.ticketId), eq(csatSurveys.resolvedAt, row.resolvedAt)));
  return survey!;
}

export async function surveyByTokenHash(db: Db, tokenHash: string): Promise<SurveyRow | null> {
  const [row] = await db.select().from(csatSurveys).where(eq(csatSurveys.tokenHash, tokenHash));
  return row ?? null;
}

export async function rateSurvey(
  db: Db,
  id: string,
  rating: 'good' | 'bad',
  at: Date,
  first: boolean,
): Promise<SurveyRow> {
  const [row] = await db
    .update(csatSurveys)
    .set(first ? { rating, ratedAt: at } : { rating, changedAt: at })
    .where(eq(csatSurveys.id, id))
    .returning();
  return row!;
}
