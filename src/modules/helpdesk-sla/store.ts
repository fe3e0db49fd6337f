// Queries for calendars, policies, the SLA's view of tickets and their timers, and the sweep's claim.
import type { SQL } from 'drizzle-orm';
import { bulkInsertStatement, executeTogether } from '../../core/bulk.ts';
import type { Db } from '../../core/db.ts';
import { and, asc, count, eq, inArray, sql } from '../../core/orm.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import type { TicketSnapshot } from '../helpdesk/events.ts';
import {
  type CalendarRow,
  type EscalationStep,
  type PolicyRow,
  type SlaTicketRow,
  slaCalendars,
  slaPolicies,
  slaTickets,
  slaTimers,
  type Target,
  type TimerRow,
} from './tables.ts';

type Rows<T> = { rows: T[] };

// ---- calendars ------------------------------------------------------------------------------------------

export async function insertCalendar(tx: Db, row: typeof slaCalendars.$inferInsert) {
  const [inserted] = await tx.insert(slaCalendars).values(row).onConflictDoNothing().returning();
  return inserted;
}

export async function updateCalendar(
  tx: Db,
  organizationId: string,
  id: string,
  changes: Partial<CalendarRow>,
): Promise<CalendarRow | null | undefined> {
  const [row] = await tx
    .update(slaCalendars)
    .set(changes)
    .where(and(eq(slaCalendars.organizationId, organizationId), eq(slaCalendars.id, id)))
    .returning();
  return row;
}

export async function calendarOf(db: Db, organizationId: string, id: string, lock = false) {
  const query = db
    .select()
    .from(slaCalendars)
    .where(and(eq(slaCalendars.organizationId, organizationId), eq(slaCalendars.id, id)));
  const [row] = lock ? await query.for('update') : await query;
  return row;
}

export async function calendarNamed(db: Db, organizationId: string, name: string) {
  const [row] = await db
    .select({ id: slaCalendars.id })
    .from(slaCalendars)
    .where(and(eq(slaCalendars.organizationId, organizationId), eq(slaCalendars.name, name)));
  return row;
}

export function calendarsOf(db: Db, organizationIds: string[]): Promise<CalendarRow[]> {
  if (!organizationIds.length) return Promise.resolve([]);
  return db.select().from(slaCalendars).where(inArray(slaCalendars.organizationId, organizationIds));
}

export async function listCalendars(db: Db, organizationId: string, page: PageRequest) {
  const where = eq(slaCalendars.organizationId, organizationId);
  const [rows, [total]] = await Promise.all([
    db
      .select()
      .from(slaCalendars)
      .where(where)
      .orderBy(asc(slaCalendars.name))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ n: count() }).from(slaCalendars).where(where),
  ]);
  return { rows, total: total?.n ?? 0 };
}

export async function calendarInUse(db: Db, calendarId: string): Promise<boolean> {
  const [row] = await db
    .select({ id: slaPolicies.id })
    .from(slaPolicies)
    .where(eq(slaPolicies.calendarId, calendarId))
    .limit(1);
  return Boolean(row);
}

export async function deleteCalendar(tx: Db, organizationId: string, id: string): Promise<boolean> {
  const rows = await tx
    .delete(slaCalendars)
    .where(and(eq(slaCalendars.organizationId, organizationId), eq(slaCalendars.id, id)))
    .returning({ id: slaCalendars.id });
  return rows.length > 0;
}

// ---- policies -------------------------------------------------------------------------------------------

export async function insertPolicy(tx: Db, row: typeof slaPolicies.$inferInsert) {
  const [inserted] = await tx.insert(slaPolicies).values(row).onConflictDoNothing().returning();
  return inserted;
}

export async function updatePolicy(tx: Db, organizationId: string, id: string, changes: Partial<PolicyRow>) {
  const [row] = await tx
    .update(slaPolicies)
    .set(changes)
    .where(and(eq(slaPolicies.organizationId, organizationId), eq(slaPolicies.id, id)))
    .returning();
  return row;
}

export async function policyOf(db: Db, organizationId: string, id: string) {
  const [row] = await db
    .select()
    .from(slaPolicies)
    .where(and(eq(slaPolicies.organizationId, organizationId), eq(slaPolicies.id, id)));
  return row;
}

export async function policyNamed(db: Db, organizationId: string, name: string) {
  const [row] = await db
    .select({ id: slaPolicies.id })
    .from(slaPolicies)
    .where(and(eq(slaPolicies.organizationId, organizationId), eq(slaPolicies.name, name)));
  return row;
}

export async function nextPosition(db: Db, organizationId: string): Promise<number> {
  const [row] = await db
    .select({ max: sql<number | null>`max(${slaPolicies.position})` })
    .from(slaPolicies)
    .where(eq(slaPolicies.organizationId, organizationId));
  return row?.max === null || row?.max === undefined ? 0 : Number(row.max) + 1;
}

/** Every policy of the organisations, in the order they are tried. */
export function policiesOf(db: Db, organizationIds: string[]): Promise<PolicyRow[]> {
  if (!organizationIds.length) return Promise.resolve([]);
  return db
    .select()
    .from(slaPolicies)
    .where(inArray(slaPolicies.organizationId, organizationIds))
    .orderBy(asc(slaPolicies.position), asc(slaPolicies.createdAt), asc(slaPolicies.id));
}

export async function listPolicies(db: Db, organizationId: string, page: PageRequest) {
  const where = eq(slaPolicies.organizationId, organizationId);
  const [rows, [total]] = await Promise.all([
    db
      .select()
      .from(slaPolicies)
      .where(where)
      .orderBy(asc(slaPolicies.position), asc(slaPolicies.createdAt), asc(slaPolicies.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ n: count() }).from(slaPolicies).where(where),
  ]);
  return { rows, total: total?.n ?? 0 };
}

/** Deletes the policy and the timers it set; the tickets it applied to have no policy until re-evaluated. */
export async function deletePolicy(tx: Db, organizationId: string, id: string): Promise<boolean> {
  const rows = await tx
    .delete(slaPolicies)
    .where(and(eq(slaPolicies.organizationId, organizationId), eq(slaPolicies.id, id)))
    .returning({ id: slaPolicies.id });
  if (!rows.length) return false;
  // The foreign keys set policy_id to null; timers without a policy have no targets left to keep.
  await tx.execute(
    sql`delete from helpdesk_sla_timers where organization_id = ${organizationId} and policy_id is null`,
  );
  return true;
}

// ---- tickets and timers ---------------------------------------------------------------------------------

export async function slaTicketsByIds(tx: Db, ids: string[]): Promise<SlaTicketRow[]> {
  if (!ids.length) return [];
  return tx.select().from(slaTickets).where(inArray(slaTickets.ticketId, ids));
}

export async function slaTicketOf(db: Db, organizationId: string, ticketId: string) {
  const [row] = await db
    .select()
    .from(slaTickets)
    .where(and(eq(slaTickets.organizationId, organizationId), eq(slaTickets.ticketId, ticketId)));
  return row;
}

export async function timersOfTickets(tx: Db, ids: string[]): Promise<TimerRow[]> {
  if (!ids.length) return [];
  return tx.select().from(slaTimers).where(inArray(slaTimers.ticketId, ids));
}

export async function runningTimersOfCalendar(tx: Db, calendarId: string): Promise<TimerRow[]> {
  return tx
    .select()
    .from(slaTimers)
    .where(and(eq(slaTimers.calendarId, calendarId), eq(slaTimers.state, 'running')))
    .for('update');
}

const TICKET_COLUMNS = {
  ticket_id: 'uuid',
  organization_id: 'uuid',
  policy_id: 'uuid',
  status: 'text',
  responded: 'boolean',
  awaiting_since: 'timestamptz',
  created_at: 'timestamptz',
  snapshot: 'jsonb',
  updated_at: 'timestamptz',
};

const TIMER_COLUMNS = {
  ticket_id: 'uuid',
  target: 'text',
  organization_id: 'uuid',
  policy_id: 'uuid',
  calendar_id: 'uuid',
  target_minutes: 'integer',
  warn_share: 'real',
  state: 'text',
  started_at: 'timestamptz',
  counted_from: 'timestamptz',
  elapsed_ms: 'bigint',
  warn_at: 'timestamptz',
  due_at: 'timestamptz',
  warned: 'boolean',
  breached: 'boolean',
  warned_at: 'timestamptz',
  breached_at: 'timestamptz',
  met_at: 'timestamptz',
};

const iso = (d: Date | null) => d?.toISOString() ?? null;

function upsert(
  table: string,
  columns: Record<string, string>,
  key: string,
  rows: Record<string, unknown>[],
) {
  const insert = bulkInsertStatement(table, columns, rows);
  if (!insert) return null;
  const sets = Object.keys(columns)
    .filter((c) => !key.split(', ').includes(c))
    .map((c) => `${c} = excluded.${c}`)
    .join(', ');
  return sql`${insert} on conflict (${sql.raw(key)}) do update set ${sql.raw(sets)}`;
}

/** Writes tickets' SLA rows and timers, and removes the timers a new policy no longer has, in one statement. */
export async function saveState(
  tx: Db,
  tickets: SlaTicketRow[],
  timers: TimerRow[],
  removed: { ticketId: string; target: Target }[],
): Promise<void> {
  const writes: (SQL | null)[] = [];
  if (removed.length)
    writes.push(
      sql`delete from helpdesk_sla_timers where (ticket_id, target) in (select * from json_to_recordset(${JSON.stringify(
        removed.map((r) => ({ ticket_id: r.ticketId, target: r.target })),
      )}::json) as v(ticket_id uuid, target text))`,
    );
  writes.push(
    upsert(
      'helpdesk_sla_tickets',
      TICKET_COLUMNS,
      'ticket_id',
      tickets.map((t) => ({
        ticket_id: t.ticketId,
        organization_id: t.organizationId,
        policy_id: t.policyId,
        status: t.status,
        responded: t.responded,
        awaiting_since: iso(t.awaitingSince),
        created_at: t.createdAt.toISOString(),
        snapshot: t.snapshot,
        updated_at: t.updatedAt.toISOString(),
      })),
    ),
  );
  writes.push(upsertTimers(timers));
  await executeTogether(tx, writes);
}

export function upsertTimers(timers: TimerRow[]): SQL | null {
  return upsert(
    'helpdesk_sla_timers',
    TIMER_COLUMNS,
    'ticket_id, target',
    timers.map((t) => ({
      ticket_id: t.ticketId,
      target: t.target,
      organization_id: t.organizationId,
      policy_id: t.policyId,
      calendar_id: t.calendarId,
      target_minutes: t.targetMinutes,
      warn_share: t.warnShare,
      state: t.state,
      started_at: t.startedAt.toISOString(),
      counted_from: iso(t.countedFrom),
      elapsed_ms: t.elapsedMs,
      warn_at: iso(t.warnAt),
      due_at: iso(t.dueAt),
      warned: t.warned,
      breached: t.breached,
      warned_at: iso(t.warnedAt),
      breached_at: iso(t.breachedAt),
      met_at: iso(t.metAt),
    })),
  );
}

// ---- the sweep ------------------------------------------------------------------------------------------

export interface DueTimer {
  ticketId: string;
  target: Target;
  organizationId: string;
  policyId: string | null;
  policyName: string | null;
  escalations: EscalationStep[];
  calendarId: string | null;
  targetMinutes: number;
  startedAt: Date;
  warnAt: Date | null;
  dueAt: Date | null;
  /** Which of the two instants passed without its flag set. */
  warn: boolean;
  breach: boolean;
  snapshot: TicketSnapshot;
}

/**
 * Claims up to `limit` running timers whose warning or due instant has passed and whose flag is not set,
 * skipping those another sweep holds, and sets the flags: the caller's transaction then emits the events
 * and runs the steps, and commits the flags with them (or neither).
 */
export async function claimDue(tx: Db, now: Date, limit: number): Promise<DueTimer[]> {
  const rows = (await tx.execute(sql`
    with due as (
      select ticket_id, target,
             (not warned and warn_at <= ${now}) as warn,
             (not breached and due_at <= ${now}) as breach
        from helpdesk_sla_timers
       where state = 'running'
         and ((not warned and warn_at <= ${now}) or (not breached and due_at <= ${now}))
       limit ${limit}
         for update skip locked),
    marked as (
      update helpdesk_sla_timers t
         set warned = t.warned or due.warn or due.breach,
             warned_at = case when due.warn and t.warned_at is null then ${now}::timestamptz else t.warned_at end,
             breached = t.breached or due.breach,
             breached_at = case when due.breach then ${now}::timestamptz else t.breached_at end
        from due
       where t.ticket_id = due.ticket_id and t.target = due.target
      returning t.ticket_id, t.target, t.organization_id, t.policy_id, t.calendar_id, t.target_minutes,
                t.started_at, t.warn_at, t.due_at, due.warn, due.breach)
    select m.*, p.name as policy_name, p.escalations, s.snapshot
      from marked m
      join helpdesk_sla_tickets s on s.ticket_id = m.ticket_id
      left join helpdesk_sla_policies p on p.id = m.policy_id`)) as unknown as Rows<Record<string, any>>;
  const date = (v: unknown) => (v === null || v === undefined ? null : new Date(v as string));
  return rows.rows.map((r) => ({
    ticketId: r.ticket_id,
    target: r.target,
    organizationId: r.organization_id,
    policyId: r.policy_id,
    policyName: r.policy_name ?? null,
    escalations: (typeof r.escalations === 'string' ? JSON.parse(r.escalations) : r.escalations) ?? [],
    calendarId: r.calendar_id,
    targetMinutes: Number(r.target_minutes),
    startedAt: date(r.started_at)!,
    warnAt: date(r.warn_at),
    dueAt: date(r.due_at),
    warn: r.warn === true || r.warn === 't',
    breach: r.breach === true || r.breach === 't',
    snapshot: typeof r.snapshot === 'string' ? JSON.parse(r.snapshot) : r.snapshot,
  }));
}

/** The tickets' snapshots as the SLA last saw them (after the steps' changes reached it). */
export async function snapshotsOf(tx: Db, ids: string[]): Promise<Map<string, TicketSnapshot>> {
  const rows = await slaTicketsByIds(tx, ids);
  return new Map(rows.map((r) => [r.ticketId, r.snapshot]));
}
