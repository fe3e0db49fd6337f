// Health's queries: the scored subjects (claimed by sweeps under a lease), their history, the
// organisations' policies, the repair actions, and the aggregates the bounce and unsubscribe inputs read
// from the delivery tables.
import type { SQL } from 'drizzle-orm';
import { executeTogether } from '../../core/bulk.ts';
import type { Db } from '../../core/db.ts';
import { uuidArrayLiteral } from '../../core/ids.ts';
import { and, asc, count, desc, eq, isNull, or, sql } from '../../core/orm.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import type { SubjectKind, SubjectSelector } from './inputs/types.ts';
import {
  type ActionKind,
  type ActionState,
  type Band,
  type HealthActionRow,
  type HealthHistoryRow,
  type HealthPolicyRow,
  type HealthScoreRow,
  healthActions,
  healthHistory,
  healthPolicies,
  healthScores,
  type StoredFinding,
} from './tables.ts';

type Rows<T> = { rows: T[] };
const iso = (d: Date) => d.toISOString();

// ---- subjects -------------------------------------------------------------------------------------

export interface NewSubject {
  kind: SubjectKind;
  subjectId: string;
  organizationId: string;
  domainId: string;
  mailboxId: string | null;
  name: string;
}

/** Registers subjects (due at once); ones already registered are left as they are. */
export async function insertSubjects(tx: Db, rows: NewSubject[], dueAt: Date): Promise<void> {
  if (!rows.length) return;
  await tx
    .insert(healthScores)
    .values(rows.map((r) => ({ ...r, dueAt })))
    .onConflictDoNothing();
}

export async function deleteSubjects(tx: Db, kind: SubjectKind, ids: string[]): Promise<void> {
  if (!ids.length) return;
  await tx.execute(
    sql`delete from health_scores where kind = ${kind} and subject_id = any(${uuidArrayLiteral(ids)}::uuid[])`,
  );
}

/** Registers every domain and mailbox that has no row yet (one anti-join each); how many. */
export async function discoverSubjects(db: Db, dueAt: Date): Promise<number> {
  const result = (await db.execute(sql`
    with domains_added as (
      insert into health_scores (kind, subject_id, organization_id, domain_id, mailbox_id, name, due_at)
      select 'domain', d.id, d.organization_id, d.id, null, d.name, ${iso(dueAt)}::timestamptz
        from domains d
       where not exists (select 1 from health_scores s where s.kind = 'domain' and s.subject_id = d.id)
      on conflict do nothing
      returning 1
    ), mailboxes_added as (
      insert into health_scores (kind, subject_id, organization_id, domain_id, mailbox_id, name, due_at)
      select 'mailbox', m.id, m.organization_id, m.domain_id, m.id, m.address, ${iso(dueAt)}::timestamptz
        from mailboxes m
       where not exists (select 1 from health_scores s where s.kind = 'mailbox' and s.subject_id = m.id)
      on conflict do nothing
      returning 1
    )
    select (select count(*) from domains_added)::int + (select count(*) from mailboxes_added)::int as n`)) as unknown as Rows<{
    n: number;
  }>;
  return Number(result.rows[0]?.n ?? 0);
}

function selectorCondition(s: Exclude<SubjectSelector, { message: string }>): SQL {
  if ('id' in s) return sql`(s.kind = ${s.kind} and s.subject_id = ${s.id})`;
  if ('name' in s) return sql`(s.kind = ${s.kind} and s.name = ${s.name.toLowerCase()})`;
  return sql`s.kind = ${s.kind}`;
}

/**
 * Makes the selected subjects of an organisation due at `at` (or earlier, if they were), and counts the
 * mark, so a computation that was under way when it came does not push them back. Rows are locked in
 * key order, as the results' update locks them, so the two never deadlock.
 */
export async function markDue(tx: Db, organizationId: string, selectors: SubjectSelector[], at: Date) {
  if (!selectors.length) return;
  const messages = selectors.filter((s): s is { message: string } => 'message' in s).map((s) => s.message);
  const conditions: SQL[] = selectors
    .filter((s): s is Exclude<SubjectSelector, { message: string }> => !('message' in s))
    .map(selectorCondition);
  if (messages.length) {
    conditions.push(sql`exists (select 1 from messages m
                         where m.id = any(${uuidArrayLiteral(messages)}::uuid[]) and m.organization_id = s.organization_id
                           and ((s.kind = 'domain' and s.subject_id = m.domain_id)
                             or (s.kind = 'mailbox' and s.name = m.from_address)))`);
  }
  await tx.execute(sql`
    update health_scores t set due_at = least(t.due_at, ${iso(at)}::timestamptz), marks = t.marks + 1
     where (t.kind, t.subject_id) in (
       select s.kind, s.subject_id from health_scores s
        where s.organization_id = ${organizationId} and (${sql.join(conditions, sql` or `)})
        order by s.kind, s.subject_id
          for update)`);
}

/** Leases up to `limit` subjects due at `now` until `leaseUntil` (SKIP LOCKED: sweeps never share one). */
export function claimDue(db: Db, now: Date, leaseUntil: Date, limit: number): Promise<HealthScoreRow[]> {
  return db
    .update(healthScores)
    .set({ leasedUntil: leaseUntil })
    .where(
      sql`(${healthScores.kind}, ${healthScores.subjectId}) in (
        select kind, subject_id from health_scores
         where due_at <= ${iso(now)}::timestamptz
           and (leased_until is null or leased_until < ${iso(now)}::timestamptz)
         order by due_at
         limit ${limit}
         for update skip locked)`,
    )
    .returning();
}

/** Leases one subject if no sweep holds it; null while one does. */
export async function claimOne(
  db: Db,
  kind: SubjectKind,
  id: string,
  now: Date,
  leaseUntil: Date,
): Promise<HealthScoreRow | null> {
  const [row] = await db
    .update(healthScores)
    .set({ leasedUntil: leaseUntil })
    .where(
      and(
        eq(healthScores.kind, kind),
        eq(healthScores.subjectId, id),
        sql`(${healthScores.leasedUntil} is null or ${healthScores.leasedUntil} < ${iso(now)}::timestamptz)`,
      ),
    )
    .returning();
  return row ?? null;
}

export async function subjectOf(
  db: Db,
  organizationId: string,
  kind: SubjectKind,
  id: string,
): Promise<HealthScoreRow | null> {
  const [row] = await db
    .select()
    .from(healthScores)
    .where(
      and(
        eq(healthScores.organizationId, organizationId),
        eq(healthScores.kind, kind),
        eq(healthScores.subjectId, id),
      ),
    );
  return row ?? null;
}

/** The subject and, for a mailbox, its domain's row. */
export async function subjectsOfMailbox(db: Db, organizationId: string, mailboxId: string) {
  return db
    .select()
    .from(healthScores)
    .where(
      and(
        eq(healthScores.organizationId, organizationId),
        or(
          and(eq(healthScores.kind, 'mailbox'), eq(healthScores.subjectId, mailboxId)),
          and(
            eq(healthScores.kind, 'domain'),
            sql`${healthScores.subjectId} = (select domain_id from mailboxes where id = ${mailboxId})`,
          ),
        ),
      ),
    );
}

export async function lockSubject(tx: Db, kind: SubjectKind, id: string): Promise<HealthScoreRow | null> {
  const [row] = await tx
    .select()
    .from(healthScores)
    .where(and(eq(healthScores.kind, kind), eq(healthScores.subjectId, id)))
    .for('update');
  return row ?? null;
}

export async function updateSubject(
  tx: Db,
  kind: SubjectKind,
  id: string,
  changes: Partial<typeof healthScores.$inferInsert>,
): Promise<void> {
  await tx
    .update(healthScores)
    .set(changes)
    .where(and(eq(healthScores.kind, kind), eq(healthScores.subjectId, id)));
}

export interface ComputedRow {
  kind: SubjectKind;
  subjectId: string;
  score: number;
  band: Band;
  findings: StoredFinding[];
  computedAt: Date;
  changed: boolean;
  history: boolean;
  belowSince: Date | null;
  /** The marks the claim saw: a newer mark keeps the subject due. */
  marks: number;
  dueAt: Date;
}

/** The results of a batch, and their history points, in one statement; leases end. */
export function resultsUpdate(rows: ComputedRow[]): SQL | null {
  if (!rows.length) return null;
  const json = JSON.stringify(
    rows.map((r) => ({
      kind: r.kind,
      subject_id: r.subjectId,
      score: r.score,
      band: r.band,
      findings: r.findings,
      computed_at: iso(r.computedAt),
      changed: r.changed,
      history: r.history,
      below_since: r.belowSince ? iso(r.belowSince) : null,
      marks: r.marks,
      due_at: iso(r.dueAt),
    })),
  );
  return sql`
    with r as materialized (
      select * from jsonb_to_recordset(${json}::jsonb) as r(kind text, subject_id uuid, score smallint,
             band text, findings jsonb, computed_at timestamptz, changed boolean, history boolean,
             below_since timestamptz, marks integer, due_at timestamptz)
    ), locked as (
      select s.kind, s.subject_id from health_scores s join r on s.kind = r.kind and s.subject_id = r.subject_id
       order by s.kind, s.subject_id
         for update of s
    )
    update health_scores s
       set score = r.score, band = r.band, findings = r.findings, computed_at = r.computed_at,
           changed_at = case when r.changed then r.computed_at else s.changed_at end,
           history_at = case when r.history then r.computed_at else s.history_at end,
           below_since = r.below_since, leased_until = null,
           due_at = case when s.marks = r.marks then r.due_at else s.due_at end
      from r
     where s.kind = r.kind and s.subject_id = r.subject_id
       and (s.kind, s.subject_id) in (select kind, subject_id from locked)`;
}

/** History points, for subjects that still exist (one deleted meanwhile has none). */
export function historyInsert(rows: (typeof healthHistory.$inferInsert)[]): SQL | null {
  if (!rows.length) return null;
  const json = JSON.stringify(
    rows.map((r) => ({
      id: r.id,
      kind: r.kind,
      subject_id: r.subjectId,
      organization_id: r.organizationId,
      at: iso(r.at),
      score: r.score,
      band: r.band,
      codes: r.codes,
    })),
  );
  return sql`
    insert into health_history (id, kind, subject_id, organization_id, at, score, band, codes)
    select r.id, r.kind, r.subject_id, r.organization_id, r.at, r.score, r.band, r.codes
      from jsonb_to_recordset(${json}::jsonb) as r(id uuid, kind text, subject_id uuid, organization_id uuid,
           at timestamptz, score smallint, band text, codes text[])
      join health_scores s on s.kind = r.kind and s.subject_id = r.subject_id`;
}

export async function writeResults(
  tx: Db,
  rows: ComputedRow[],
  history: (typeof healthHistory.$inferInsert)[],
) {
  await executeTogether(tx, [resultsUpdate(rows), historyInsert(history)]);
}

/** Subjects whose computation failed: their leases end and they are due again at `at`. */
export async function deferSubjects(
  db: Db,
  rows: { kind: SubjectKind; subjectId: string }[],
  at: Date,
): Promise<void> {
  if (!rows.length) return;
  const json = JSON.stringify(rows.map((r) => ({ kind: r.kind, subject_id: r.subjectId })));
  await db.execute(sql`
    update health_scores t set leased_until = null, due_at = ${iso(at)}::timestamptz
     where (t.kind, t.subject_id) in (
       select s.kind, s.subject_id from health_scores s
         join jsonb_to_recordset(${json}::jsonb) as r(kind text, subject_id uuid)
           on s.kind = r.kind and s.subject_id = r.subject_id
        order by s.kind, s.subject_id
          for update of s)`);
}

export type ScoreSort = 'score' | '-score' | 'name' | '-name' | 'computed_at' | '-computed_at';

export interface ScoreFilter {
  band?: Band;
  paused?: boolean;
  domainId?: string;
}

export async function listScores(
  db: Db,
  organizationId: string,
  kind: SubjectKind,
  filter: ScoreFilter,
  sort: ScoreSort,
  page: PageRequest,
) {
  const where = and(
    eq(healthScores.organizationId, organizationId),
    eq(healthScores.kind, kind),
    filter.band ? eq(healthScores.band, filter.band) : undefined,
    filter.paused === undefined
      ? undefined
      : filter.paused
        ? sql`${healthScores.pausedActionId} is not null`
        : isNull(healthScores.pausedActionId),
    filter.domainId ? eq(healthScores.domainId, filter.domainId) : undefined,
  );
  const column = {
    score: sql`${healthScores.score} asc nulls last`,
    '-score': sql`${healthScores.score} desc nulls last`,
    name: sql`${healthScores.name} asc`,
    '-name': sql`${healthScores.name} desc`,
    computed_at: sql`${healthScores.computedAt} asc nulls last`,
    '-computed_at': sql`${healthScores.computedAt} desc nulls last`,
  }[sort];
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(healthScores)
      .where(where)
      .orderBy(column, asc(healthScores.name), asc(healthScores.subjectId))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(healthScores).where(where),
  ]);
  return { rows, total: Number(total) };
}

export function historyOf(db: Db, kind: SubjectKind, id: string, since: Date): Promise<HealthHistoryRow[]> {
  return db
    .select()
    .from(healthHistory)
    .where(
      and(
        eq(healthHistory.kind, kind),
        eq(healthHistory.subjectId, id),
        sql`${healthHistory.at} >= ${iso(since)}::timestamptz`,
      ),
    )
    .orderBy(asc(healthHistory.at), asc(healthHistory.id));
}

/** Drops history older than `before`, a batch at a time; how many. */
export async function pruneHistory(db: Db, before: Date, limit: number): Promise<number> {
  const result = (await db.execute(sql`
    delete from health_history where id in (
      select id from health_history where at < ${iso(before)}::timestamptz limit ${limit})
    returning 1`)) as unknown as Rows<unknown>;
  return result.rows.length;
}

/** Whether the mailbox (or, without one, the domain) or its domain is paused or slowed, and by what. */
export async function repairRows(
  db: Db,
  organizationId: string,
  subject: { mailboxId: string } | { domainId: string },
): Promise<HealthScoreRow[]> {
  if ('domainId' in subject) {
    const row = await subjectOf(db, organizationId, 'domain', subject.domainId);
    return row ? [row] : [];
  }
  return subjectsOfMailbox(db, organizationId, subject.mailboxId);
}

// ---- policies -------------------------------------------------------------------------------------

export async function policyOf(db: Db, organizationId: string): Promise<HealthPolicyRow | null> {
  const [row] = await db
    .select()
    .from(healthPolicies)
    .where(eq(healthPolicies.organizationId, organizationId));
  return row ?? null;
}

export async function upsertPolicy(
  db: Db,
  row: typeof healthPolicies.$inferInsert,
): Promise<HealthPolicyRow> {
  const { organizationId: _, ...set } = row;
  const [saved] = await db
    .insert(healthPolicies)
    .values(row)
    .onConflictDoUpdate({ target: healthPolicies.organizationId, set })
    .returning();
  return saved;
}

// ---- actions --------------------------------------------------------------------------------------

export async function insertAction(tx: Db, row: typeof healthActions.$inferInsert): Promise<HealthActionRow> {
  const [created] = await tx.insert(healthActions).values(row).returning();
  return created;
}

export async function actionById(
  db: Db,
  organizationId: string,
  id: string,
): Promise<HealthActionRow | null> {
  const [row] = await db
    .select()
    .from(healthActions)
    .where(and(eq(healthActions.organizationId, organizationId), eq(healthActions.id, id)));
  return row ?? null;
}

export async function lockAction(
  tx: Db,
  organizationId: string,
  id: string,
): Promise<HealthActionRow | null> {
  const [row] = await tx
    .select()
    .from(healthActions)
    .where(and(eq(healthActions.organizationId, organizationId), eq(healthActions.id, id)))
    .for('update');
  return row ?? null;
}

export async function updateAction(
  tx: Db,
  id: string,
  changes: Partial<typeof healthActions.$inferInsert>,
): Promise<HealthActionRow> {
  const [row] = await tx.update(healthActions).set(changes).where(eq(healthActions.id, id)).returning();
  return row;
}

export interface ActionFilter {
  kind?: SubjectKind;
  subjectId?: string;
  action?: ActionKind;
  state?: ActionState;
}

export async function listActions(db: Db, organizationId: string, filter: ActionFilter, page: PageRequest) {
  const where = and(
    eq(healthActions.organizationId, organizationId),
    filter.kind ? eq(healthActions.kind, filter.kind) : undefined,
    filter.subjectId ? eq(healthActions.subjectId, filter.subjectId) : undefined,
    filter.action ? eq(healthActions.action, filter.action) : undefined,
    filter.state ? eq(healthActions.state, filter.state) : undefined,
  );
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(healthActions)
      .where(where)
      .orderBy(desc(healthActions.createdAt), desc(healthActions.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(healthActions).where(where),
  ]);
  return { rows, total: Number(total) };
}

/** The newest action of this kind on the subject since `since`. */
export async function lastActionSince(
  db: Db,
  kind: SubjectKind,
  subjectId: string,
  action: ActionKind,
  since: Date,
): Promise<HealthActionRow | null> {
  const [row] = await db
    .select()
    .from(healthActions)
    .where(
      and(
        eq(healthActions.kind, kind),
        eq(healthActions.subjectId, subjectId),
        eq(healthActions.action, action),
        sql`${healthActions.createdAt} >= ${iso(since)}::timestamptz`,
      ),
    )
    .orderBy(desc(healthActions.createdAt))
    .limit(1);
  return row ?? null;
}

// ---- what the bounce and unsubscribe inputs read ------------------------------------------------------

export interface SenderCounts {
  domainId: string | null;
  address: string | null;
}

/**
 * Recipients that finished (delivered or bounced) per sending domain and From address, of outbound mail
 * queued since `since` (DSNs left out), read through the deliveries' (organization, status, time) index.
 */
export async function bounceCounts(
  db: Db,
  organizationId: string,
  since: Date,
): Promise<(SenderCounts & { bounced: number; finished: number })[]> {
  const result = (await db.execute(sql`
    select m.domain_id, m.from_address,
           count(*) filter (where d.status = 'bounced')::int as bounced,
           count(*)::int as finished
      from deliveries d
      join messages m on m.id = d.message_id
     where d.organization_id = ${organizationId} and d.status in ('delivered', 'bounced')
       and d.created_at >= ${iso(since)}::timestamptz and m.parent_id is null
     group by m.domain_id, m.from_address`)) as unknown as Rows<Record<string, any>>;
  return result.rows.map((r) => ({
    domainId: r.domain_id,
    address: r.from_address,
    bounced: Number(r.bounced),
    finished: Number(r.finished),
  }));
}

/**
 * Outbound messages since `since` per sending domain, From address and UTC day: how many, their
 * recipients, how many are list mail, and how many lack a one-click unsubscribe (of the list mail, and
 * of all).
 */
export async function listMailCounts(
  db: Db,
  organizationId: string,
  since: Date,
): Promise<
  (SenderCounts & {
    day: string;
    messages: number;
    recipients: number;
    bulk: number;
    bulkMissing: number;
    missing: number;
  })[]
> {
  const result = (await db.execute(sql`
    select m.domain_id, m.from_address, to_char(m.received_at at time zone 'UTC', 'YYYY-MM-DD') as day,
           count(*)::int as messages,
           coalesce(sum(cardinality(m.rcpt_to)), 0)::int as recipients,
           count(*) filter (where m.bulk)::int as bulk,
           count(*) filter (where m.bulk and not m.one_click_unsubscribe)::int as bulk_missing,
           count(*) filter (where not m.one_click_unsubscribe)::int as missing
      from messages m
     where m.organization_id = ${organizationId} and m.direction = 'outbound'
       and m.received_at >= ${iso(since)}::timestamptz and m.parent_id is null
     group by 1, 2, 3`)) as unknown as Rows<Record<string, any>>;
  return result.rows.map((r) => ({
    domainId: r.domain_id,
    address: r.from_address,
    day: r.day,
    messages: Number(r.messages),
    recipients: Number(r.recipients),
    bulk: Number(r.bulk),
    bulkMissing: Number(r.bulk_missing),
    missing: Number(r.missing),
  }));
}
