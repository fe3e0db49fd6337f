import type { Db } from '../../core/db.ts';
import { and, count, desc, eq, inArray, notInArray, sql } from '../../core/orm.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import { type ItemError, type JobRow, type JobState, trackedJobs } from './tables.ts';

export type NewJob = typeof trackedJobs.$inferInsert;

/** Item errors kept per job (all are counted). */
const KEPT_ERRORS = 1_000;

export async function insertJob(db: Db, row: NewJob): Promise<JobRow> {
  const [created] = await db.insert(trackedJobs).values(row).returning();
  return created;
}

export async function jobById(db: Db, organizationId: string, id: string): Promise<JobRow | null> {
  const [row] = await db
    .select()
    .from(trackedJobs)
    .where(and(eq(trackedJobs.organizationId, organizationId), eq(trackedJobs.id, id)));
  return row ?? null;
}

export async function jobByKey(
  db: Db,
  organizationId: string,
  kind: string,
  key: string,
): Promise<JobRow | null> {
  const [row] = await db
    .select()
    .from(trackedJobs)
    .where(
      and(
        eq(trackedJobs.organizationId, organizationId),
        eq(trackedJobs.kind, kind),
        eq(trackedJobs.idempotencyKey, key),
      ),
    );
  return row ?? null;
}

export async function listJobs(
  db: Db,
  organizationId: string,
  filter: { kind?: string; hidden?: string[] },
  page: PageRequest,
) {
  const where = and(
    eq(trackedJobs.organizationId, organizationId),
    filter.kind ? eq(trackedJobs.kind, filter.kind) : undefined,
    filter.hidden?.length ? notInArray(trackedJobs.kind, filter.hidden) : undefined,
  );
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(trackedJobs)
      .where(where)
      .orderBy(desc(trackedJobs.createdAt), desc(trackedJobs.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(trackedJobs).where(where),
  ]);
  return { rows, total: Number(total) };
}

/**
 * Takes the job's lease for `owner` when it is unfinished and nobody else holds a live lease (a queued
 * job, or one whose worker died); a queued job becomes running. Null when it is not to be run here.
 */
export async function claimJob(db: Db, id: string, owner: string, leaseMs: number): Promise<JobRow | null> {
  const [row] = await db
    .update(trackedJobs)
    .set({
      leaseOwner: owner,
      leaseUntil: sql`now() + ${leaseMs} * interval '1 millisecond'`,
      state: sql`case when ${trackedJobs.state} = 'queued' then 'running' else ${trackedJobs.state} end`,
      startedAt: sql`coalesce(${trackedJobs.startedAt}, now())`,
      updatedAt: sql`now()`,
    })
    .where(
      and(
        eq(trackedJobs.id, id),
        inArray(trackedJobs.state, ['queued', 'running']),
        sql`(${trackedJobs.leaseUntil} is null or ${trackedJobs.leaseUntil} < now())`,
      ),
    )
    .returning();
  return row ?? null;
}

/** Unfinished jobs nobody holds: lease run out, or queued a while ago and never taken. */
export async function orphanedJobs(db: Db, limit: number): Promise<string[]> {
  const rows = await db
    .select({ id: trackedJobs.id })
    .from(trackedJobs)
    .where(
      and(
        inArray(trackedJobs.state, ['queued', 'running']),
        sql`(${trackedJobs.leaseUntil} < now() or (${trackedJobs.leaseUntil} is null and ${trackedJobs.createdAt} < now() - interval '5 seconds'))`,
      ),
    )
    .orderBy(trackedJobs.createdAt)
    .limit(limit);
  return rows.map((r) => r.id);
}

/**
 * Inside the transaction that did the work: counts `done` more items and records their errors, and
 * renews the lease. Null when `owner` no longer holds it (the transaction must not commit); else
 * whether a cancel was asked.
 */
export async function recordProgress(
  db: Db,
  id: string,
  owner: string,
  leaseMs: number,
  done: number,
  errors: ItemError[],
): Promise<{ cancelRequested: boolean } | null> {
  const [row] = await db
    .update(trackedJobs)
    .set({
      done: sql`${trackedJobs.done} + ${done}`,
      errors: errors.length
        ? sql`jsonb_path_query_array(${trackedJobs.errors} || ${JSON.stringify(errors)}::jsonb, ${`$[0 to ${KEPT_ERRORS - 1}]`}::jsonpath)`
        : sql`${trackedJobs.errors}`,
      errorCount: sql`${trackedJobs.errorCount} + ${errors.length}`,
      leaseUntil: sql`now() + ${leaseMs} * interval '1 millisecond'`,
      updatedAt: sql`now()`,
    })
    .where(and(eq(trackedJobs.id, id), eq(trackedJobs.leaseOwner, owner), eq(trackedJobs.state, 'running')))
    .returning({ cancelRequested: trackedJobs.cancelRequested });
  return row ?? null;
}

/** Renews the lease; false when `owner` lost it. Also tells whether a cancel was asked. */
export async function renewLease(
  db: Db,
  id: string,
  owner: string,
  leaseMs: number,
): Promise<{ cancelRequested: boolean } | null> {
  const [row] = await db
    .update(trackedJobs)
    .set({ leaseUntil: sql`now() + ${leaseMs} * interval '1 millisecond'` })
    .where(and(eq(trackedJobs.id, id), eq(trackedJobs.leaseOwner, owner), eq(trackedJobs.state, 'running')))
    .returning({ cancelRequested: trackedJobs.cancelRequested });
  return row ?? null;
}

/** Gives the lease up at once (this process is stopping): another worker resumes the job. */
export async function releaseLease(db: Db, id: string, owner: string): Promise<void> {
  await db
    .update(trackedJobs)
    .set({ leaseOwner: null, leaseUntil: sql`now() - interval '1 second'` })
    .where(and(eq(trackedJobs.id, id), eq(trackedJobs.leaseOwner, owner)));
}

/** Ends the job with `owner`'s lease: its state, result or failure. */
export async function finishJob(
  db: Db,
  id: string,
  owner: string,
  outcome: {
    state: Exclude<JobState, 'queued' | 'running'>;
    result?: Record<string, unknown> | null;
    failure?: string;
  },
): Promise<void> {
  await db
    .update(trackedJobs)
    .set({
      state: outcome.state,
      result: outcome.result ?? null,
      failure: outcome.failure ?? null,
      leaseOwner: null,
      leaseUntil: null,
      finishedAt: sql`now()`,
      updatedAt: sql`now()`,
    })
    .where(and(eq(trackedJobs.id, id), eq(trackedJobs.leaseOwner, owner)));
}

/**
 * Asks the job to stop: a queued one nobody holds is cancelled at once; a running one stops at its
 * next step. The row as it is now, or null when it is not the organisation's.
 */
export async function requestCancel(
  db: Db,
  organizationId: string,
  id: string,
): Promise<{ row: JobRow; asked: boolean } | null> {
  const [cancelled] = await db
    .update(trackedJobs)
    .set({ state: 'cancelled', cancelRequested: true, finishedAt: sql`now()`, updatedAt: sql`now()` })
    .where(
      and(
        eq(trackedJobs.organizationId, organizationId),
        eq(trackedJobs.id, id),
        eq(trackedJobs.state, 'queued'),
        sql`${trackedJobs.leaseOwner} is null`,
      ),
    )
    .returning();
  if (cancelled) return { row: cancelled, asked: true };
  const [asked] = await db
    .update(trackedJobs)
    .set({ cancelRequested: true, updatedAt: sql`now()` })
    .where(
      and(
        eq(trackedJobs.organizationId, organizationId),
        eq(trackedJobs.id, id),
        inArray(trackedJobs.state, ['queued', 'running']),
      ),
    )
    .returning();
  if (asked) return { row: asked, asked: true };
  const row = await jobById(db, organizationId, id);
  return row && { row, asked: false };
}
