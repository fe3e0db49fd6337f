import { bulkInsert } from '../../core/bulk.ts';
import type { Db } from '../../core/db.ts';
import { and, asc, count, desc, eq, inArray, sql } from '../../core/orm.ts';
import type { PageRequest } from '../../core/pagination.ts';
import {
  type EnrollmentRow,
  type Placement,
  type WarmupMessageRow,
  type WarmupTemplateRow,
  warmupEnrollments as e,
  warmupMessages as m,
  warmupTemplates,
} from './tables.ts';

type Rows<T> = { rows: T[] };

// ---- enrolments --------------------------------------------------------------------------------------

export async function insertEnrollment(tx: Db, row: typeof e.$inferInsert): Promise<EnrollmentRow | null> {
  const [inserted] = await tx.insert(e).values(row).onConflictDoNothing().returning();
  return inserted ?? null;
}

/** The enrolment of a mailbox or an account (the API names either by its id). */
export async function enrollmentOf(db: Db, organizationId: string, mailboxOrAccountId: string) {
  const [row] = await db
    .select()
    .from(e)
    .where(
      and(
        eq(e.organizationId, organizationId),
        sql`(${e.mailboxId} = ${mailboxOrAccountId} or ${e.accountId} = ${mailboxOrAccountId})`,
      ),
    );
  return row ?? null;
}

export async function listEnrollments(db: Db, organizationId: string, page: PageRequest) {
  const where = eq(e.organizationId, organizationId);
  const [items, [{ total }]] = await Promise.all([
    db
      .select()
      .from(e)
      .where(where)
      .orderBy(asc(e.id))
      .limit(page.page_size)
      .offset((page.page - 1) * page.page_size),
    db.select({ total: count() }).from(e).where(where),
  ]);
  return { items, total };
}

export async function updateEnrollment(tx: Db, id: string, changes: Partial<typeof e.$inferInsert>) {
  const [row] = await tx
    .update(e)
    .set({ ...changes, updatedAt: sql`now()` })
    .where(eq(e.id, id))
    .returning();
  return row;
}

export async function deleteEnrollment(tx: Db, id: string): Promise<void> {
  await tx.delete(e).where(eq(e.id, id));
}

export function enrollmentsByIds(db: Db, ids: string[]): Promise<EnrollmentRow[]> {
  return ids.length ? db.select().from(e).where(inArray(e.id, ids)) : Promise.resolve([]);
}

/** Active enrolments whose next local day has begun, leased to this planner for `leaseMs`. */
export async function claimDueForPlanning(db: Db, now: Date, leaseMs: number, limit: number) {
  return db
    .update(e)
    .set({ leasedUntil: sql`now() + ${`${leaseMs} milliseconds`}::interval` })
    .where(
      inArray(
        e.id,
        db
          .select({ id: e.id })
          .from(e)
          .where(
            and(
              eq(e.status, 'active'),
              sql`${e.nextPlanAt} <= ${now}`,
              sql`(${e.leasedUntil} is null or ${e.leasedUntil} < now())`,
            ),
          )
          .orderBy(asc(e.nextPlanAt))
          .limit(limit)
          .for('update', { skipLocked: true }),
      ),
    )
    .returning();
}

export interface PoolMember {
  id: string;
  organizationId: string;
  address: string;
  provider: EnrollmentRow['provider'];
}

/**
 * The active members of the shared pool, or of an organisation's pool (with its shared members too when
 * the installation's shared pool is off: they fall back to their own organisation).
 */
export async function poolMembers(
  db: Db,
  pool: { shared: true } | { organizationId: string; includeShared: boolean },
): Promise<PoolMember[]> {
  const where =
    'shared' in pool
      ? and(eq(e.status, 'active'), eq(e.pool, 'shared'))
      : pool.includeShared
        ? and(eq(e.status, 'active'), eq(e.organizationId, pool.organizationId))
        : and(eq(e.status, 'active'), eq(e.pool, 'organization'), eq(e.organizationId, pool.organizationId));
  return db
    .select({ id: e.id, organizationId: e.organizationId, address: e.address, provider: e.provider })
    .from(e)
    .where(where);
}

export interface PlannedDay {
  id: string;
  warmDays: number;
  plannedOn: string;
  nextPlanAt: Date;
  countedOn: string | null;
  /** Today's openings: send times, epoch ms, ascending. */
  planTimes: number[];
}

/** Writes what planning decided for each enrolment, and releases their leases, in one statement. */
export async function recordPlannedDays(tx: Db, days: PlannedDay[]): Promise<void> {
  if (!days.length) return;
  await tx.execute(sql`
    update warmup_enrollments w
       set warm_days = v.warm_days, counted_on = v.counted_on, planned_on = v.planned_on,
           next_plan_at = v.next_plan_at,
           plan_times = v.plan_times, next_send_at = to_timestamp(v.plan_times[1] / 1000.0),
           leased_until = null, updated_at = now()
      from json_to_recordset(${JSON.stringify(
        days.map((d) => ({
          id: d.id,
          warm_days: d.warmDays,
          counted_on: d.countedOn,
          planned_on: d.plannedOn,
          next_plan_at: d.nextPlanAt,
          plan_times: d.planTimes,
        })),
      )}::json) as v(id uuid, warm_days integer, counted_on date, planned_on date, next_plan_at timestamptz, plan_times bigint[])
     where w.id = v.id`);
}

export interface DueOpenings {
  id: string;
  organizationId: string;
  address: string;
  timeZone: string;
  pool: EnrollmentRow['pool'];
  times: number[];
}

/**
 * Takes the send times that came (up to `now`) off active enrolments' plans, in the caller's
 * transaction (which writes the messages made from them): each time is taken exactly once.
 */
export async function takeDueOpenings(tx: Db, now: Date, limit: number): Promise<DueOpenings[]> {
  const at = now.getTime();
  const rows = (await tx.execute(sql`
    with due as (
      select id, plan_times from warmup_enrollments
       where status = 'active' and next_send_at <= ${now}
       order by next_send_at
       limit ${limit}
         for update skip locked)
    update warmup_enrollments w
       set plan_times = array(select t from unnest(due.plan_times) t where t > ${at} order by t),
           next_send_at = (select to_timestamp(min(t) / 1000.0) from unnest(due.plan_times) t where t > ${at})
      from due
     where w.id = due.id
    returning w.id, w.organization_id, w.address, w.time_zone, w.pool,
              array(select t from unnest(due.plan_times) t where t <= ${at} order by t) as times`)) as unknown as Rows<
    Record<string, any>
  >;
  return rows.rows.map((r) => ({
    id: r.id,
    organizationId: r.organization_id,
    address: r.address,
    timeZone: r.time_zone,
    pool: r.pool,
    times: (r.times as (string | number)[]).map(Number),
  }));
}

/** Openings made per enrolment and local day, from `since` on (a day planned again counts them). */
export async function openedSince(db: Db, ids: string[], since: string): Promise<Map<string, number>> {
  if (!ids.length) return new Map();
  const rows = await db
    .select({ id: m.enrollmentId, day: m.day, n: count() })
    .from(m)
    .where(
      and(
        inArray(m.enrollmentId, ids),
        sql`${m.day} >= ${since}::date`,
        eq(m.depth, 0),
        sql`${m.status} <> 'cancelled'`,
      ),
    )
    .groupBy(m.enrollmentId, m.day);
  return new Map(rows.map((r) => [`${r.id} ${r.day}`, Number(r.n)]));
}

// ---- messages -----------------------------------------------------------------------------------------

/** The columns planning writes (the others start at their defaults: planned, nothing sent yet). */
export const MESSAGE_COLUMNS = {
  id: 'uuid',
  organization_id: 'uuid',
  enrollment_id: 'uuid',
  recipient_enrollment_id: 'uuid',
  token: 'text',
  thread_id: 'uuid',
  parent_id: 'uuid',
  depth: 'smallint',
  template: 'text',
  day: 'date',
  due_at: 'timestamptz',
  provider: 'text',
};

export function insertMessages(tx: Db, rows: Record<string, unknown>[]): Promise<void> {
  return bulkInsert(tx, 'warmup_messages', MESSAGE_COLUMNS, rows);
}

/** Planned messages due by `now`, taken for sending (status sending) so no other tick takes them. */
export async function claimDueMessages(db: Db, now: Date, limit: number): Promise<WarmupMessageRow[]> {
  return db
    .update(m)
    .set({ status: 'sending', claimedAt: sql`now()` })
    .where(
      inArray(
        m.id,
        db
          .select({ id: m.id })
          .from(m)
          .where(and(eq(m.status, 'planned'), sql`${m.dueAt} <= ${now}`))
          .orderBy(asc(m.dueAt))
          .limit(limit)
          .for('update', { skipLocked: true }),
      ),
    )
    .returning();
}

/**
 * Messages a process took for sending more than `staleMs` ago and never finished (it stopped): those of
 * hosted mailboxes go back to planned (their send repeats idempotently under the message's key); those of
 * external accounts fail, as their SMTP server may have taken them and a second try would send twice.
 */
export async function releaseStaleSending(db: Db, staleMs: number): Promise<void> {
  await db.execute(sql`
    update warmup_messages wm
       set status = case when e.mailbox_id is not null then 'planned' else 'failed' end,
           error = case when e.mailbox_id is not null then null
                        else 'interrupted mid-send; not tried again (the account''s server may have sent it)' end
      from warmup_enrollments e
     where e.id = wm.enrollment_id and wm.status = 'sending'
       and wm.claimed_at < now() - make_interval(secs => ${staleMs / 1000})`);
}

export async function markSent(
  db: Db,
  id: string,
  sent: { sentAt: Date; messageIdHeader: string; subject: string; referencesHeader: string | null },
): Promise<void> {
  await db
    .update(m)
    .set({ status: 'sent', ...sent })
    .where(eq(m.id, id));
}

export async function markFailed(db: Db, id: string, error: string): Promise<void> {
  await db.update(m).set({ status: 'failed', error }).where(eq(m.id, id));
}

export async function cancelPlanned(tx: Db, enrollmentId: string): Promise<number> {
  const rows = await tx
    .update(m)
    .set({ status: 'cancelled' })
    .where(and(eq(m.enrollmentId, enrollmentId), inArray(m.status, ['planned'])))
    .returning({ id: m.id });
  return rows.length;
}

export function messagesByIds(db: Db, ids: string[]): Promise<WarmupMessageRow[]> {
  return ids.length ? db.select().from(m).where(inArray(m.id, ids)) : Promise.resolve([]);
}

/** Sent messages not yet found, for recipients of one kind (hosted mailboxes or external accounts). */
export async function awaiting(db: Db, kind: 'mailbox' | 'account', limit: number) {
  const rows = (await db.execute(sql`
    select wm.*, r.organization_id as recipient_org, r.mailbox_id, r.account_id
      from warmup_messages wm
      join warmup_enrollments r on r.id = wm.recipient_enrollment_id
     where wm.status = 'sent' and wm.placement is null
       and ${kind === 'mailbox' ? sql`r.mailbox_id is not null` : sql`r.account_id is not null`}
     order by wm.checked_at nulls first, wm.sent_at
     limit ${limit}`)) as unknown as Rows<Record<string, any>>;
  return rows.rows.map((r) => ({
    id: r.id as string,
    token: r.token as string,
    depth: Number(r.depth),
    threadId: r.thread_id as string,
    enrollmentId: r.enrollment_id as string,
    recipientEnrollmentId: r.recipient_enrollment_id as string,
    recipientOrg: r.recipient_org as string,
    mailboxId: r.mailbox_id as string | null,
    accountId: r.account_id as string | null,
    messageIdHeader: r.message_id_header as string,
    sentAt: new Date(r.sent_at),
  }));
}
export type Awaiting = Awaited<ReturnType<typeof awaiting>>[number];

export interface HostedCopy {
  warmupId: string;
  folderId: string;
  folder: string;
  specialUse: string | null;
  uid: number;
}

/** The copies of warmup messages in their recipients' hosted mailboxes (found by Message-ID). */
export async function hostedCopies(
  db: Db,
  items: { id: string; recipientOrg: string; mailboxId: string | null; messageIdHeader: string }[],
): Promise<HostedCopy[]> {
  const wanted = items
    .filter((i) => i.mailboxId)
    .map((i) => ({ w: i.id, o: i.recipientOrg, b: i.mailboxId, h: i.messageIdHeader }));
  if (!wanted.length) return [];
  const rows = (await db.execute(sql`
    select v.w as warmup_id, f.id as folder_id, f.name as folder, f.special_use, mm.uid
      from json_to_recordset(${JSON.stringify(wanted)}::json) as v(w uuid, o uuid, b uuid, h text)
      join messages msg on msg.organization_id = v.o and msg.message_id_header = v.h
      join mailbox_messages mm on mm.message_id = msg.id and mm.mailbox_id = v.b
      join mailbox_folders f on f.id = mm.folder_id`)) as unknown as Rows<Record<string, any>>;
  return rows.rows.map((r) => ({
    warmupId: r.warmup_id,
    folderId: r.folder_id,
    folder: r.folder,
    specialUse: r.special_use,
    uid: Number(r.uid),
  }));
}

export interface Found {
  id: string;
  placement: Placement;
  category: string | null;
  receivedAt: Date;
  rescued: boolean;
  starred: boolean;
  replyPlanned: boolean;
  archiveAt: Date | null;
}

export async function recordFound(tx: Db, found: Found[]): Promise<void> {
  if (!found.length) return;
  await tx.execute(sql`
    update warmup_messages w
       set placement = v.placement, category = v.category, received_at = v.received_at,
           rescued = v.rescued, starred = v.starred, reply_planned = v.reply_planned, archive_at = v.archive_at
      from json_to_recordset(${JSON.stringify(
        found.map((f) => ({
          id: f.id,
          placement: f.placement,
          category: f.category,
          received_at: f.receivedAt,
          rescued: f.rescued,
          starred: f.starred,
          reply_planned: f.replyPlanned,
          archive_at: f.archiveAt,
        })),
      )}::json) as v(id uuid, placement text, category text, received_at timestamptz, rescued boolean,
                    starred boolean, reply_planned boolean, archive_at timestamptz)
     where w.id = v.id`);
}

/** Looked for and not found (yet): the next look starts with those looked for longest ago. */
export async function markChecked(db: Db, ids: string[], at: Date): Promise<void> {
  if (!ids.length) return;
  await db.update(m).set({ checkedAt: at }).where(inArray(m.id, ids));
}

/** Sent before `before` and never found anywhere: missing. */
export async function markMissing(db: Db, before: Date): Promise<number> {
  const rows = await db
    .update(m)
    .set({ placement: 'missing' })
    .where(and(eq(m.status, 'sent'), sql`${m.placement} is null`, sql`${m.sentAt} < ${before}`))
    .returning({ id: m.id });
  return rows.length;
}

/** Found messages whose time in the inbox is up. */
export async function dueForArchive(db: Db, now: Date, limit: number) {
  const rows = (await db.execute(sql`
    select wm.id, wm.token, wm.message_id_header, r.organization_id as recipient_org, r.mailbox_id, r.account_id
      from warmup_messages wm
      join warmup_enrollments r on r.id = wm.recipient_enrollment_id
     where wm.archived_at is null and wm.archive_at is not null and wm.archive_at <= ${now}
     order by wm.archive_at
     limit ${limit}`)) as unknown as Rows<Record<string, any>>;
  return rows.rows.map((r) => ({
    id: r.id as string,
    token: r.token as string,
    messageIdHeader: r.message_id_header as string,
    recipientOrg: r.recipient_org as string,
    mailboxId: r.mailbox_id as string | null,
    accountId: r.account_id as string | null,
  }));
}
export type ArchiveItem = Awaited<ReturnType<typeof dueForArchive>>[number];

/** Archived (`archived` true) or given up on (archive_at cleared: there is nowhere to archive to). */
export async function recordArchived(db: Db, ids: string[], archived: boolean, at: Date): Promise<void> {
  if (!ids.length) return;
  await db
    .update(m)
    .set(archived ? { archivedAt: at } : { archiveAt: null })
    .where(inArray(m.id, ids));
}

export async function listMessages(db: Db, enrollmentId: string, page: PageRequest) {
  const where = sql`${m.enrollmentId} = ${enrollmentId} or ${m.recipientEnrollmentId} = ${enrollmentId}`;
  const [items, [{ total }]] = await Promise.all([
    db
      .select()
      .from(m)
      .where(where)
      .orderBy(desc(m.dueAt))
      .limit(page.page_size)
      .offset((page.page - 1) * page.page_size),
    db.select({ total: count() }).from(m).where(where),
  ]);
  return { items, total };
}

export interface StatsRow {
  day: string;
  provider: string;
  planned: number;
  sent: number;
  replies_sent: number;
  failed: number;
  inbox: number;
  spam: number;
  category: number;
  missing: number;
  rescued: number;
  replies: number;
}

/** What the enrolment sent, by its local day and the recipient's provider; replies are those it received. */
export async function stats(db: Db, enrollmentId: string, from: string, to: string): Promise<StatsRow[]> {
  const rows = (await db.execute(sql`
    select s.day::text as day, s.provider,
           count(*) filter (where s.status in ('planned', 'sending'))::int as planned,
           count(*) filter (where s.status = 'sent')::int as sent,
           count(*) filter (where s.status = 'sent' and s.depth > 0)::int as replies_sent,
           count(*) filter (where s.status = 'failed')::int as failed,
           count(*) filter (where s.placement = 'inbox')::int as inbox,
           count(*) filter (where s.placement = 'spam')::int as spam,
           count(*) filter (where s.placement = 'category')::int as category,
           count(*) filter (where s.placement = 'missing')::int as missing,
           count(*) filter (where s.rescued)::int as rescued,
           coalesce(sum((select count(*) from warmup_messages r
                          where r.parent_id = s.id and r.status = 'sent')), 0)::int as replies
      from warmup_messages s
     where s.enrollment_id = ${enrollmentId} and s.day between ${from}::date and ${to}::date
       and s.status <> 'cancelled'
     group by s.day, s.provider
     order by s.day, s.provider`)) as unknown as Rows<StatsRow>;
  return rows.rows;
}

// ---- templates ----------------------------------------------------------------------------------------

export function templatesOf(db: Db, organizationId: string): Promise<WarmupTemplateRow[]> {
  return db
    .select()
    .from(warmupTemplates)
    .where(eq(warmupTemplates.organizationId, organizationId))
    .orderBy(asc(warmupTemplates.createdAt));
}

export async function insertTemplate(db: Db, row: typeof warmupTemplates.$inferInsert) {
  const [inserted] = await db.insert(warmupTemplates).values(row).returning();
  return inserted;
}

export async function deleteTemplate(db: Db, organizationId: string, id: string): Promise<boolean> {
  const rows = await db
    .delete(warmupTemplates)
    .where(and(eq(warmupTemplates.organizationId, organizationId), eq(warmupTemplates.id, id)))
    .returning({ id: warmupTemplates.id });
  return rows.length > 0;
}

export function templatesByIds(db: Db, ids: string[]): Promise<WarmupTemplateRow[]> {
  return ids.length
    ? db.select().from(warmupTemplates).where(inArray(warmupTemplates.id, ids))
    : Promise.resolve([]);
}

// ---- health ---------------------------------------------------------------------------------------------

/** Warmup placement per enrolled hosted mailbox of the organisation, of messages it sent since `since`. */
export async function placementByMailbox(db: Db, organizationId: string, since: Date) {
  const rows = (await db.execute(sql`
    select e.mailbox_id, mb.domain_id,
           count(*) filter (where wm.placement in ('inbox', 'spam', 'category'))::int as found,
           count(*) filter (where wm.placement = 'spam')::int as spam,
           count(*) filter (where wm.placement = 'missing')::int as missing
      from warmup_enrollments e
      join mailboxes mb on mb.id = e.mailbox_id
      join warmup_messages wm on wm.enrollment_id = e.id and wm.day >= ${since.toISOString().slice(0, 10)}::date
     where e.organization_id = ${organizationId} and wm.sent_at >= ${since}
     group by e.mailbox_id, mb.domain_id`)) as unknown as Rows<Record<string, any>>;
  return rows.rows.map((r) => ({
    mailboxId: r.mailbox_id as string,
    domainId: r.domain_id as string,
    found: Number(r.found),
    spam: Number(r.spam),
    missing: Number(r.missing),
  }));
}

export function mailboxEnrollments(db: Db, organizationId: string) {
  return db
    .select({ mailboxId: e.mailboxId, ramp: e.ramp, warmDays: e.warmDays, slowed: e.slowed })
    .from(e)
    .where(and(eq(e.organizationId, organizationId), sql`${e.mailboxId} is not null`));
}

/** Recipients of the organisation's outbound mail since `since` that is not warmup, by From address. */
export async function otherMailByAddress(
  db: Db,
  organizationId: string,
  since: Date,
): Promise<Map<string, number>> {
  const rows = (await db.execute(sql`
    select lower(from_address) as address, sum(cardinality(rcpt_to))::int as recipients
      from messages
     where organization_id = ${organizationId} and direction = 'outbound' and received_at >= ${since}
       and from_address is not null and not ('warmup' = any(tags))
     group by 1`)) as unknown as Rows<{ address: string; recipients: number }>;
  return new Map(rows.rows.map((r) => [r.address, Number(r.recipients)]));
}

/** The organisation's enrolments of hosted mailboxes: of one mailbox, or of every mailbox of one domain. */
export async function enrollmentsOfSubject(
  tx: Db,
  organizationId: string,
  kind: 'domain' | 'mailbox',
  id: string,
): Promise<(EnrollmentRow & { domainId: string })[]> {
  const rows = (await tx.execute(sql`
    select e.id, mb.domain_id from warmup_enrollments e join mailboxes mb on mb.id = e.mailbox_id
     where e.organization_id = ${organizationId}
       and ${kind === 'mailbox' ? sql`e.mailbox_id = ${id}` : sql`mb.domain_id = ${id}`}`)) as unknown as Rows<{
    id: string;
    domain_id: string;
  }>;
  const domains = new Map(rows.rows.map((r) => [r.id, r.domain_id]));
  const list = await enrollmentsByIds(tx, [...domains.keys()]);
  return list.map((row) => ({ ...row, domainId: domains.get(row.id)! }));
}
