import type { SQL } from 'drizzle-orm';
import type { Db } from '../../core/db.ts';
import { and, asc, count, desc, eq, inArray, sql } from '../../core/orm.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import { helpdeskTickets, type TicketRow } from '../helpdesk/tables.ts';
import type { TimeColumn } from './conditions.ts';
import {
  type AutomationRow,
  helpdeskAutomationFires as fires,
  helpdeskAutomationRuns as runs,
  helpdeskAutomations as rules,
  helpdeskTemplates as templates,
  type RunOutcome,
  type RunRow,
  type TemplateRow,
  type Trigger,
} from './tables.ts';

type Rows<T> = { rows: T[] };

// ---- templates -------------------------------------------------------------------------------------------

export async function insertTemplate(db: Db, row: typeof templates.$inferInsert): Promise<TemplateRow> {
  const [created] = await db.insert(templates).values(row).returning();
  return created!;
}

export async function listTemplates(db: Db, organizationId: string, page: PageRequest) {
  const where = eq(templates.organizationId, organizationId);
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(templates)
      .where(where)
      .orderBy(asc(templates.name), asc(templates.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(templates).where(where),
  ]);
  return { rows, total };
}

export async function templateOf(db: Db, organizationId: string, id: string): Promise<TemplateRow | null> {
  const [row] = await db
    .select()
    .from(templates)
    .where(and(eq(templates.organizationId, organizationId), eq(templates.id, id)));
  return row ?? null;
}

export async function updateTemplate(
  db: Db,
  organizationId: string,
  id: string,
  changes: Partial<typeof templates.$inferInsert>,
): Promise<TemplateRow | null> {
  const [row] = await db
    .update(templates)
    .set(changes)
    .where(and(eq(templates.organizationId, organizationId), eq(templates.id, id)))
    .returning();
  return row ?? null;
}

export async function deleteTemplate(db: Db, organizationId: string, id: string): Promise<boolean> {
  const rows = await db
    .delete(templates)
    .where(and(eq(templates.organizationId, organizationId), eq(templates.id, id)))
    .returning({ id: templates.id });
  return rows.length > 0;
}

/** Names of the organisation's rules that reply with this template. */
export async function rulesUsingTemplate(
  db: Db,
  organizationId: string,
  templateId: string,
): Promise<string[]> {
  const rows = await db
    .select({ name: rules.name })
    .from(rules)
    .where(
      and(
        eq(rules.organizationId, organizationId),
        sql`${rules.actions} @> ${JSON.stringify([{ type: 'reply_template', template_id: templateId }])}::jsonb`,
      ),
    )
    .orderBy(asc(rules.name));
  return rows.map((r) => r.name);
}

// ---- rules -----------------------------------------------------------------------------------------------

export async function insertRule(db: Db, row: typeof rules.$inferInsert): Promise<AutomationRow> {
  const [created] = await db.insert(rules).values(row).returning();
  return created!;
}

export async function listRules(
  db: Db,
  organizationId: string,
  filter: { trigger?: Trigger; enabled?: boolean },
  page: PageRequest,
) {
  const conditions: SQL[] = [eq(rules.organizationId, organizationId)];
  if (filter.trigger) conditions.push(eq(rules.trigger, filter.trigger));
  if (filter.enabled !== undefined) conditions.push(eq(rules.enabled, filter.enabled));
  const where = and(...conditions);
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(rules)
      .where(where)
      .orderBy(asc(rules.trigger), asc(rules.position), asc(rules.createdAt), asc(rules.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(rules).where(where),
  ]);
  return { rows, total };
}

export async function ruleOf(db: Db, organizationId: string, id: string): Promise<AutomationRow | null> {
  const [row] = await db
    .select()
    .from(rules)
    .where(and(eq(rules.organizationId, organizationId), eq(rules.id, id)));
  return row ?? null;
}

export async function updateRule(
  db: Db,
  organizationId: string,
  id: string,
  changes: Partial<typeof rules.$inferInsert>,
): Promise<AutomationRow | null> {
  const [row] = await db
    .update(rules)
    .set(changes)
    .where(and(eq(rules.organizationId, organizationId), eq(rules.id, id)))
    .returning();
  return row ?? null;
}

export async function deleteRule(db: Db, organizationId: string, id: string): Promise<boolean> {
  const rows = await db
    .delete(rules)
    .where(and(eq(rules.organizationId, organizationId), eq(rules.id, id)))
    .returning({ id: rules.id });
  return rows.length > 0;
}

/** The enabled rules of a trigger, in the order they run. */
export function enabledRules(db: Db, organizationId: string, trigger: Trigger): Promise<AutomationRow[]> {
  return db
    .select()
    .from(rules)
    .where(and(eq(rules.organizationId, organizationId), eq(rules.trigger, trigger), eq(rules.enabled, true)))
    .orderBy(asc(rules.position), asc(rules.createdAt), asc(rules.id));
}

/** `organization:trigger` for every trigger with an enabled rule in these organisations. */
export async function activeTriggers(db: Db, organizationIds: string[]): Promise<Set<string>> {
  const rows = await db
    .selectDistinct({ organizationId: rules.organizationId, trigger: rules.trigger })
    .from(rules)
    .where(and(inArray(rules.organizationId, organizationIds), eq(rules.enabled, true)));
  return new Set(rows.map((r) => `${r.organizationId}:${r.trigger}`));
}

/** Every enabled time rule, of every organisation. */
export function timeRules(db: Db): Promise<AutomationRow[]> {
  return db
    .select()
    .from(rules)
    .where(and(eq(rules.trigger, 'time'), eq(rules.enabled, true)))
    .orderBy(asc(rules.organizationId), asc(rules.position), asc(rules.createdAt), asc(rules.id));
}

// ---- tickets, as the rules see them ----------------------------------------------------------------------

/** The ticket, locked for the rule's evaluation and actions. */
export async function lockTicket(tx: Db, organizationId: string, id: string): Promise<TicketRow | null> {
  const [row] = await tx
    .select()
    .from(helpdeskTickets)
    .where(and(eq(helpdeskTickets.organizationId, organizationId), eq(helpdeskTickets.id, id)))
    .for('update');
  return row ?? null;
}

/**
 * Tickets a time rule may fire on: the organisation's, not merged, past every elapsed-time bound, of the
 * allowed statuses, and not yet evaluated by the rule as they are now (their updated_at).
 */
export async function timeCandidates(
  db: Db,
  rule: { id: string; organizationId: string },
  bounds: { column: TimeColumn; before: Date; strict: boolean }[],
  statuses: string[] | null,
  limit: number,
): Promise<string[]> {
  const column = (c: TimeColumn) => sql.raw(`t.${c}`);
  const { rows } = (await db.execute(sql`
    select t.id from helpdesk_tickets t
     where t.organization_id = ${rule.organizationId}
       and t.merged_into_id is null
       ${sql.join(
         bounds.map(
           (b) =>
             sql`and ${column(b.column)} ${sql.raw(b.strict ? '<' : '<=')} ${b.before.toISOString()}::timestamptz`,
         ),
         sql` `,
       )}
       ${statuses ? sql`and t.status = any(${sql.param(statuses)}::text[])` : sql``}
       and not exists (select 1 from helpdesk_automation_fires f
                        where f.automation_id = ${rule.id} and f.ticket_id = t.id
                          and f.ticket_updated_at = t.updated_at)
     order by t.updated_at, t.id
     limit ${limit}`)) as Rows<{ id: string }>;
  return rows.map((r) => r.id);
}

/**
 * Marks the ticket's current window as evaluated by the time rule; false when it already was (another
 * sweep got there first).
 */
export async function claimWindow(
  tx: Db,
  ruleId: string,
  ticketId: string,
  ticketUpdatedAt: Date,
  now: Date,
): Promise<boolean> {
  const rows = await tx
    .insert(fires)
    .values({ automationId: ruleId, ticketId, ticketUpdatedAt, firedAt: now })
    .onConflictDoUpdate({
      target: [fires.automationId, fires.ticketId],
      set: { ticketUpdatedAt, firedAt: now },
      setWhere: sql`${fires.ticketUpdatedAt} <> excluded.ticket_updated_at`,
    })
    .returning({ id: fires.ticketId });
  return rows.length > 0;
}

export interface RenderRow {
  requester_email: string;
  requester_name: string | null;
  desk_name: string;
  desk_signature: string | null;
  desk_address: string | null;
  agent_email: string | null;
  agent_name: string | null;
}

/** What a template says about a ticket besides the ticket itself: requester, desk, agent. */
export async function renderFacts(
  db: Db,
  organizationId: string,
  ticket: TicketRow,
  agentId: string | null,
): Promise<RenderRow> {
  const { rows } = (await db.execute(sql`
    select c.email as requester_email, c.name as requester_name,
           d.name as desk_name, d.signature as desk_signature,
           (select a.address from helpdesk_desk_addresses a where a.desk_id = d.id
             order by a.position limit 1) as desk_address,
           u.email as agent_email, u.name as agent_name
      from helpdesk_contacts c
      join helpdesk_desks d on d.id = ${ticket.deskId} and d.organization_id = ${organizationId}
      left join users u on u.id = ${agentId}::uuid
       and exists (select 1 from memberships m where m.user_id = u.id and m.organization_id = ${organizationId})
     where c.id = ${ticket.requesterId} and c.organization_id = ${organizationId}`)) as Rows<RenderRow>;
  return rows[0]!;
}

// ---- runs ------------------------------------------------------------------------------------------------

export type NewRun = typeof runs.$inferInsert;

/** Records a run; false when this rule already has one for this event (the job ran before). */
export async function insertRun(db: Db, row: NewRun): Promise<boolean> {
  const rows = await db
    .insert(runs)
    .values(row)
    .onConflictDoNothing({
      target: [runs.automationId, runs.eventId],
      where: sql`event_id is not null`,
    })
    .returning({ id: runs.id });
  return rows.length > 0;
}

export async function finishRun(
  db: Db,
  id: string,
  changes: { outcome: RunOutcome; actions: Record<string, unknown>[]; error: string | null },
): Promise<void> {
  await db.update(runs).set(changes).where(eq(runs.id, id));
}

/** The rules that already evaluated this event. */
export async function rulesDoneFor(db: Db, eventId: string): Promise<Set<string>> {
  const rows = await db.select({ id: runs.automationId }).from(runs).where(eq(runs.eventId, eventId));
  return new Set(rows.map((r) => r.id));
}

/** How often the rule acted on the ticket since `since`. */
export async function appliedSince(db: Db, ruleId: string, ticketId: string, since: Date): Promise<number> {
  const { rows } = (await db.execute(sql`
    select count(*)::int as n from helpdesk_automation_runs
     where automation_id = ${ruleId} and ticket_id = ${ticketId} and outcome = 'applied'
       and created_at >= ${since.toISOString()}::timestamptz`)) as Rows<{ n: number }>;
  return rows[0]!.n;
}

export async function listRuns(
  db: Db,
  organizationId: string,
  ruleId: string,
  filter: { ticket_id?: string; outcome?: RunOutcome },
  page: PageRequest,
): Promise<{ rows: RunRow[]; total: number }> {
  const conditions: SQL[] = [eq(runs.organizationId, organizationId), eq(runs.automationId, ruleId)];
  if (filter.ticket_id) conditions.push(eq(runs.ticketId, filter.ticket_id));
  if (filter.outcome) conditions.push(eq(runs.outcome, filter.outcome));
  const where = and(...conditions);
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(runs)
      .where(where)
      .orderBy(desc(runs.createdAt), desc(runs.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(runs).where(where),
  ]);
  return { rows, total };
}

/** Deletes up to `limit` runs older than `before`; how many went. */
export async function deleteRunsBefore(db: Db, before: Date, limit: number): Promise<number> {
  const { rows } = (await db.execute(sql`
    delete from helpdesk_automation_runs where id in (
      select id from helpdesk_automation_runs where created_at < ${before.toISOString()}::timestamptz limit ${limit})
    returning id`)) as Rows<{ id: string }>;
  return rows.length;
}
