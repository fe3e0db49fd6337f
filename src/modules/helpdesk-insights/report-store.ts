// The reports' queries: aggregates over the helpdesk's tickets (read-only) and the CSAT surveys. Merged
// tickets (closed into another) are left out everywhere: their work is counted on the ticket they joined.
// A ticket is "done" when resolved, or closed without being resolved first.
import type { SQL } from 'drizzle-orm';
import type { Db } from '../../core/db.ts';
import { sql } from '../../core/orm.ts';

type Rows<T> = { rows: T[] };

export interface Scope {
  organizationId: string;
  deskId?: string;
}

export interface Window extends Scope {
  from: Date;
  to: Date;
}

const DONE_AT = sql`coalesce(t.resolved_at, t.closed_at)`;

function scoped(scope: Scope): SQL {
  return sql`t.organization_id = ${scope.organizationId} and t.merged_into_id is null${
    scope.deskId ? sql` and t.desk_id = ${scope.deskId}` : sql``
  }`;
}

const createdIn = (w: Window) => sql`${scoped(w)} and t.created_at >= ${w.from} and t.created_at < ${w.to}`;

export interface Bucket {
  key: string | null;
  label: string | null;
  count: number;
}

/** Tickets created in the window, counted by one dimension (with the name of what it points at). */
export async function breakdown(
  db: Db,
  w: Window,
  by: 'status' | 'priority' | 'assignee' | 'team' | 'category',
): Promise<Bucket[]> {
  const dims: Record<typeof by, { key: SQL; label: SQL; join: SQL }> = {
    status: { key: sql`t.status`, label: sql`null::text`, join: sql`` },
    priority: { key: sql`t.priority`, label: sql`null::text`, join: sql`` },
    assignee: {
      key: sql`t.assignee_id::text`,
      label: sql`u.email`,
      join: sql`left join users u on u.id = t.assignee_id`,
    },
    team: {
      key: sql`t.team_id::text`,
      label: sql`x.name`,
      join: sql`left join helpdesk_teams x on x.id = t.team_id`,
    },
    category: {
      key: sql`t.category_id::text`,
      label: sql`x.name`,
      join: sql`left join helpdesk_categories x on x.id = t.category_id`,
    },
  };
  const d = dims[by];
  const { rows } = (await db.execute(sql`
    select ${d.key} as key, ${d.label} as label, count(*)::int as count
      from helpdesk_tickets t ${d.join}
     where ${createdIn(w)}
     group by 1, 2
     order by 3 desc, 1 nulls last`)) as Rows<Bucket>;
  return rows.map((r) => ({ key: r.key, label: r.label, count: Number(r.count) }));
}

/** Tickets created, and tickets done, per bucket (`day` or ISO `week`, in UTC). */
export async function series(
  db: Db,
  w: Window,
  unit: 'day' | 'week',
): Promise<{ start: string; created: number; resolved: number }[]> {
  const { rows } = (await db.execute(sql`
    select to_char(b at time zone 'UTC', 'YYYY-MM-DD') as start, sum(c)::int as created, sum(r)::int as resolved from (
      select date_trunc(${unit}::text, t.created_at, 'UTC') as b, 1 as c, 0 as r
        from helpdesk_tickets t where ${createdIn(w)}
      union all
      select date_trunc(${unit}::text, ${DONE_AT}, 'UTC'), 0, 1
        from helpdesk_tickets t
       where ${scoped(w)} and ${DONE_AT} >= ${w.from} and ${DONE_AT} < ${w.to}
    ) e group by b order by b`)) as Rows<{ start: string; created: number; resolved: number }>;
  return rows.map((r) => ({ start: r.start, created: Number(r.created), resolved: Number(r.resolved) }));
}

export interface Durations {
  count: number;
  p50: number | null;
  p90: number | null;
  average: number | null;
}

/**
 * First response (tickets created in the window that have one) and resolution (tickets done in the
 * window) times in seconds, wall-clock.
 */
export async function durations(
  db: Db,
  w: Window,
): Promise<{ firstResponse: Durations; resolution: Durations }> {
  const fr = sql`greatest(0, extract(epoch from (t.first_response_at - t.created_at))::float8)`;
  const rs = sql`greatest(0, extract(epoch from (${DONE_AT} - t.created_at))::float8)`;
  const stats = (value: SQL) => sql`
    count(*)::int as count,
    percentile_cont(0.5) within group (order by ${value}) as p50,
    percentile_cont(0.9) within group (order by ${value}) as p90,
    avg(${value})::float8 as average`;
  const [first, done] = await Promise.all([
    db.execute(sql`select ${stats(fr)} from helpdesk_tickets t
                    where ${createdIn(w)} and t.first_response_at is not null`) as Promise<Rows<Durations>>,
    db.execute(sql`select ${stats(rs)} from helpdesk_tickets t
                    where ${scoped(w)} and ${DONE_AT} >= ${w.from} and ${DONE_AT} < ${w.to}`) as Promise<
      Rows<Durations>
    >,
  ]);
  const shape = (r: Durations | undefined): Durations => ({
    count: Number(r?.count ?? 0),
    p50: r?.p50 == null ? null : Math.round(Number(r.p50)),
    p90: r?.p90 == null ? null : Math.round(Number(r.p90)),
    average: r?.average == null ? null : Math.round(Number(r.average)),
  });
  return { firstResponse: shape(first.rows[0]), resolution: shape(done.rows[0]) };
}

export interface DueDates {
  with_due_date: number;
  met: number;
  missed: number;
  open_overdue: number;
  open_on_time: number;
}

/** Tickets created in the window that have a due date: done by it, done late, or still open. */
export async function dueDates(db: Db, w: Window, now: Date): Promise<DueDates> {
  const { rows } = (await db.execute(sql`
    select count(*)::int as with_due_date,
           count(*) filter (where ${DONE_AT} is not null and ${DONE_AT} <= t.due_at)::int as met,
           count(*) filter (where ${DONE_AT} > t.due_at)::int as missed,
           count(*) filter (where ${DONE_AT} is null and t.due_at < ${now})::int as open_overdue,
           count(*) filter (where ${DONE_AT} is null and t.due_at >= ${now})::int as open_on_time
      from helpdesk_tickets t
     where ${createdIn(w)} and t.due_at is not null`)) as Rows<DueDates>;
  const r = rows[0]!;
  return {
    with_due_date: Number(r.with_due_date),
    met: Number(r.met),
    missed: Number(r.missed),
    open_overdue: Number(r.open_overdue),
    open_on_time: Number(r.open_on_time),
  };
}

export interface Backlog {
  total: number;
  under_1d: number;
  from_1d_to_3d: number;
  from_3d_to_7d: number;
  over_7d: number;
  oldest_created_at: string | null;
}

/** Tickets not done (nor rejected) now, by how long ago they were opened. */
export async function backlog(db: Db, scope: Scope, now: Date): Promise<Backlog> {
  const age = sql`(${now}::timestamptz - t.created_at)`;
  const { rows } = (await db.execute(sql`
    select count(*)::int as total,
           count(*) filter (where ${age} < interval '1 day')::int as under_1d,
           count(*) filter (where ${age} >= interval '1 day' and ${age} < interval '3 days')::int as from_1d_to_3d,
           count(*) filter (where ${age} >= interval '3 days' and ${age} < interval '7 days')::int as from_3d_to_7d,
           count(*) filter (where ${age} >= interval '7 days')::int as over_7d,
           to_char(min(t.created_at) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as oldest_created_at
      from helpdesk_tickets t
     where ${scoped(scope)} and t.status not in ('resolved', 'closed', 'rejected')`)) as Rows<Backlog>;
  const r = rows[0]!;
  return {
    total: Number(r.total),
    under_1d: Number(r.under_1d),
    from_1d_to_3d: Number(r.from_1d_to_3d),
    from_3d_to_7d: Number(r.from_3d_to_7d),
    over_7d: Number(r.over_7d),
    oldest_created_at: r.oldest_created_at,
  };
}

/** Surveys mailed (resolutions in the window) and ratings given in the window. */
export async function csat(db: Db, w: Window): Promise<{ sent: number; good: number; bad: number }> {
  const desk = w.deskId ? sql` and t.desk_id = ${w.deskId}` : sql``;
  const { rows } = (await db.execute(sql`
    select count(*) filter (where s.resolved_at >= ${w.from} and s.resolved_at < ${w.to})::int as sent,
           count(*) filter (where s.rating = 'good' and s.rated_at >= ${w.from} and s.rated_at < ${w.to})::int as good,
           count(*) filter (where s.rating = 'bad' and s.rated_at >= ${w.from} and s.rated_at < ${w.to})::int as bad
      from helpdesk_csat_surveys s join helpdesk_tickets t on t.id = s.ticket_id
     where s.organization_id = ${w.organizationId}${desk}`)) as Rows<{
    sent: number;
    good: number;
    bad: number;
  }>;
  const r = rows[0]!;
  return { sent: Number(r.sent), good: Number(r.good), bad: Number(r.bad) };
}

// ---- the tickets export -----------------------------------------------------------------------------------

export interface ExportRow {
  id: string;
  number: number;
  subject: string;
  status: string;
  priority: string;
  desk: string;
  requester: string;
  assignee: string | null;
  team: string | null;
  category: string | null;
  tags: string[];
  source: string;
  created_at: string;
  first_response_at: string | null;
  resolved_at: string | null;
  closed_at: string | null;
  due_at: string | null;
  first_response_seconds: number | null;
  resolution_seconds: number | null;
  csat: string | null;
}

export interface ExportCursor {
  createdAt: string;
  id: string;
}

const ISO = (column: SQL) => sql`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** A keyset page of tickets created in the window, oldest first, with the names they point at. */
export async function exportPage(
  db: Db,
  w: Window,
  after: ExportCursor | null,
  limit: number,
): Promise<{ rows: ExportRow[]; next: ExportCursor | null }> {
  const from = after
    ? sql` and (t.created_at, t.id) > (${after.createdAt}::timestamptz, ${after.id}::uuid)`
    : sql``;
  const { rows } = (await db.execute(sql`
    select t.id, t.number, t.subject, t.status, t.priority, d.name as desk, c.email as requester,
           u.email as assignee, tm.name as team, cat.name as category, t.tags, t.source,
           ${ISO(sql`t.created_at`)} as created_at, ${ISO(sql`t.first_response_at`)} as first_response_at,
           ${ISO(sql`t.resolved_at`)} as resolved_at, ${ISO(sql`t.closed_at`)} as closed_at,
           ${ISO(sql`t.due_at`)} as due_at,
           round(greatest(0, extract(epoch from (t.first_response_at - t.created_at))))::int as first_response_seconds,
           round(greatest(0, extract(epoch from (${DONE_AT} - t.created_at))))::int as resolution_seconds,
           (select s.rating from helpdesk_csat_surveys s
             where s.ticket_id = t.id and s.rating is not null order by s.resolved_at desc limit 1) as csat,
           t.created_at::text as cursor_at
      from helpdesk_tickets t
      join helpdesk_desks d on d.id = t.desk_id
      join helpdesk_contacts c on c.id = t.requester_id
      left join users u on u.id = t.assignee_id
      left join helpdesk_teams tm on tm.id = t.team_id
      left join helpdesk_categories cat on cat.id = t.category_id
     where ${createdIn(w)}${from}
     order by t.created_at, t.id
     limit ${limit}`)) as Rows<ExportRow & { cursor_at: string }>;
  const last = rows.at(-1);
  return {
    rows,
    next: rows.length === limit && last ? { createdAt: last.cursor_at, id: last.id } : null,
  };
}

export interface SlaTarget {
  target: string;
  total: number;
  met: number;
  breached: number;
  in_progress: number;
}

/**
 * The SLA module's timers (migration 0021) of the tickets created in the window, per target: met in
 * time, breached (met late or not at all), or still running or paused. Stopped timers (no longer
 * measured) count in `total` only.
 */
export async function slaTargets(db: Db, w: Window): Promise<SlaTarget[]> {
  const { rows } = (await db.execute(sql`
    select s.target, count(*)::int as total,
           count(*) filter (where s.state = 'met' and not s.breached)::int as met,
           count(*) filter (where s.breached)::int as breached,
           count(*) filter (where s.state in ('running', 'paused') and not s.breached)::int as in_progress
      from helpdesk_sla_timers s join helpdesk_tickets t on t.id = s.ticket_id
     where s.organization_id = ${w.organizationId} and ${createdIn(w)}
     group by s.target
     order by s.target`)) as Rows<SlaTarget>;
  return rows.map((r) => ({
    target: r.target,
    total: Number(r.total),
    met: Number(r.met),
    breached: Number(r.breached),
    in_progress: Number(r.in_progress),
  }));
}
