// Queries for the organisation of the helpdesk's work: agents, teams, departments, categories, customer
// organisations, desks' own rows, approvals, and the look-ups assignment and mentions need.
import type { Db } from '../../core/db.ts';
import { and, asc, count, eq, inArray, sql } from '../../core/orm.ts';
import type { PageRequest } from '../../core/pagination.ts';
import {
  type AgentRow,
  type ApprovalRow,
  type DeskRow,
  helpdeskAgents as agents,
  helpdeskApprovals,
  helpdeskCategories,
  helpdeskCustomers,
  helpdeskDepartments,
  helpdeskDeskAddresses,
  helpdeskDesks,
  helpdeskTeamMembers as members,
  helpdeskTeams as teams,
  helpdeskTickets,
} from './tables.ts';

type Rows<T> = { rows: T[] };

/** The three simple named lists (departments, categories, customers) share these queries. */
export const NAMED = {
  departments: helpdeskDepartments,
  categories: helpdeskCategories,
  customers: helpdeskCustomers,
  teams,
} as const;
export type NamedKind = keyof typeof NAMED;

export async function insertNamed(tx: Db, kind: NamedKind, row: Record<string, unknown>) {
  const table = NAMED[kind];
  const [inserted] = await tx
    .insert(table)
    .values(row as never)
    .onConflictDoNothing()
    .returning();
  return inserted as Record<string, unknown> | undefined;
}

export async function namedOf(db: Db, kind: NamedKind, organizationId: string, id: string) {
  const table = NAMED[kind];
  const [row] = await db
    .select()
    .from(table)
    .where(and(eq(table.organizationId, organizationId), eq(table.id, id)));
  return row as Record<string, unknown> | undefined;
}

export async function listNamed(db: Db, kind: NamedKind, organizationId: string, page: PageRequest) {
  const table = NAMED[kind];
  const where = eq(table.organizationId, organizationId);
  const [rows, [total]] = await Promise.all([
    db
      .select()
      .from(table)
      .where(where)
      .orderBy(asc(table.name))
      .limit(page.page_size)
      .offset((page.page - 1) * page.page_size),
    db.select({ n: count() }).from(table).where(where),
  ]);
  return { rows: rows as Record<string, unknown>[], total: total!.n };
}

/** null when the new name is taken. */
export async function updateNamed(
  tx: Db,
  kind: NamedKind,
  organizationId: string,
  id: string,
  changes: Record<string, unknown>,
): Promise<Record<string, unknown> | null | undefined> {
  const table = NAMED[kind];
  try {
    const [row] = await tx
      .update(table)
      .set(changes as never)
      .where(and(eq(table.organizationId, organizationId), eq(table.id, id)))
      .returning();
    return row as Record<string, unknown> | undefined;
  } catch (err) {
    if ((err as { code?: string }).code === '23505') return null;
    throw err;
  }
}

export async function deleteNamed(
  tx: Db,
  kind: NamedKind,
  organizationId: string,
  id: string,
): Promise<boolean> {
  const table = NAMED[kind];
  const rows = await tx
    .delete(table)
    .where(and(eq(table.organizationId, organizationId), eq(table.id, id)))
    .returning({ id: table.id });
  return rows.length > 0;
}

// ---- agents and teams ---------------------------------------------------------------------------------

export async function upsertAgent(tx: Db, row: typeof agents.$inferInsert): Promise<AgentRow> {
  const [saved] = await tx
    .insert(agents)
    .values(row)
    .onConflictDoUpdate({
      target: [agents.organizationId, agents.userId],
      set: { role: row.role, active: row.active ?? true },
    })
    .returning();
  return saved!;
}

export async function agentsOf(
  db: Db,
  organizationId: string,
  userIds?: string[],
): Promise<(AgentRow & { email: string; name: string })[]> {
  const only = userIds ? sql` and a.user_id = any(${sql.param(userIds)}::uuid[])` : sql``;
  const { rows } = (await db.execute(sql`
    select a.organization_id as "organizationId", a.user_id as "userId", a.role, a.active,
           a.created_at as "createdAt", u.email, u.name
      from helpdesk_agents a join users u on u.id = a.user_id
     where a.organization_id = ${organizationId}${only}
     order by u.email`)) as Rows<AgentRow & { email: string; name: string }>;
  return rows.map((r) => ({ ...r, createdAt: new Date(r.createdAt) }));
}

export async function deleteAgent(tx: Db, organizationId: string, userId: string): Promise<boolean> {
  const rows = await tx
    .delete(agents)
    .where(and(eq(agents.organizationId, organizationId), eq(agents.userId, userId)))
    .returning({ id: agents.userId });
  await tx.delete(members).where(and(eq(members.organizationId, organizationId), eq(members.userId, userId)));
  return rows.length > 0;
}

/** Which of these users are members of the organisation. */
export async function organizationMembers(
  db: Db,
  organizationId: string,
  userIds: string[],
): Promise<string[]> {
  if (!userIds.length) return [];
  const { rows } = (await db.execute(sql`
    select user_id from memberships where organization_id = ${organizationId}
       and user_id = any(${sql.param(userIds)}::uuid[])`)) as Rows<{ user_id: string }>;
  return rows.map((r) => r.user_id);
}

export async function setTeamMembers(tx: Db, organizationId: string, teamId: string, userIds: string[]) {
  await tx.delete(members).where(eq(members.teamId, teamId));
  if (userIds.length)
    await tx.insert(members).values(userIds.map((userId) => ({ teamId, organizationId, userId })));
}

export async function teamMembers(db: Db, teamIds: string[]): Promise<{ teamId: string; userId: string }[]> {
  if (!teamIds.length) return [];
  return db
    .select({ teamId: members.teamId, userId: members.userId })
    .from(members)
    .where(inArray(members.teamId, teamIds))
    .orderBy(asc(members.userId));
}

/** The team locked for an assignment, with its active agents in a stable order. */
export async function teamForAssignment(tx: Db, organizationId: string, teamId: string) {
  const { rows } = (await tx.execute(sql`
    select t.assignment, t.last_assigned_user_id,
           coalesce(array_agg(m.user_id order by m.user_id) filter (where m.user_id is not null), '{}') as agents
      from (select * from helpdesk_teams where id = ${teamId} and organization_id = ${organizationId} for update) t
      left join helpdesk_team_members m on m.team_id = t.id
      left join helpdesk_agents a on a.organization_id = t.organization_id and a.user_id = m.user_id and a.active
     where m.user_id is null or a.user_id is not null
     group by t.assignment, t.last_assigned_user_id`)) as Rows<{
    assignment: string;
    last_assigned_user_id: string | null;
    agents: string[];
  }>;
  return rows[0];
}

/** Open work per agent (tickets not resolved or closed), for least-loaded assignment. */
export async function openLoad(
  tx: Db,
  organizationId: string,
  userIds: string[],
): Promise<Map<string, number>> {
  const { rows } = (await tx.execute(sql`
    select assignee_id, count(*)::int as n from helpdesk_tickets
     where organization_id = ${organizationId} and assignee_id = any(${sql.param(userIds)}::uuid[])
       and status not in ('resolved', 'closed', 'rejected')
     group by assignee_id`)) as Rows<{ assignee_id: string; n: number }>;
  return new Map(rows.map((r) => [r.assignee_id, r.n]));
}

export async function setLastAssigned(tx: Db, teamId: string, userId: string): Promise<void> {
  await tx.update(teams).set({ lastAssignedUserId: userId }).where(eq(teams.id, teamId));
}

/** Agents whose address appears as `@address` in a text. */
export async function agentsByEmail(db: Db, organizationId: string, emails: string[]): Promise<string[]> {
  if (!emails.length) return [];
  const { rows } = (await db.execute(sql`
    select a.user_id from helpdesk_agents a join users u on u.id = a.user_id
     where a.organization_id = ${organizationId} and lower(u.email) = any(${sql.param(emails)}::text[])`)) as Rows<{
    user_id: string;
  }>;
  return rows.map((r) => r.user_id);
}

// ---- desks --------------------------------------------------------------------------------------------

export async function insertDesk(
  tx: Db,
  row: typeof helpdeskDesks.$inferInsert,
): Promise<DeskRow | undefined> {
  const [inserted] = await tx.insert(helpdeskDesks).values(row).onConflictDoNothing().returning();
  return inserted;
}

export async function updateDesk(tx: Db, id: string, changes: Partial<typeof helpdeskDesks.$inferInsert>) {
  try {
    const [row] = await tx
      .update(helpdeskDesks)
      .set({ ...changes, updatedAt: sql`now()` })
      .where(eq(helpdeskDesks.id, id))
      .returning();
    return row;
  } catch (err) {
    if ((err as { code?: string }).code === '23505') return null;
    throw err;
  }
}

export async function listDesks(db: Db, organizationId: string, page: PageRequest) {
  const where = eq(helpdeskDesks.organizationId, organizationId);
  const [rows, [total]] = await Promise.all([
    db
      .select()
      .from(helpdeskDesks)
      .where(where)
      .orderBy(asc(helpdeskDesks.name))
      .limit(page.page_size)
      .offset((page.page - 1) * page.page_size),
    db.select({ n: count() }).from(helpdeskDesks).where(where),
  ]);
  return { rows, total: total!.n };
}

export async function deskHasTickets(db: Db, organizationId: string, deskId: string): Promise<boolean> {
  const [row] = await db
    .select({ id: helpdeskTickets.id })
    .from(helpdeskTickets)
    .where(and(eq(helpdeskTickets.organizationId, organizationId), eq(helpdeskTickets.deskId, deskId)))
    .limit(1);
  return !!row;
}

export async function deleteDesk(tx: Db, organizationId: string, id: string): Promise<boolean> {
  const rows = await tx
    .delete(helpdeskDesks)
    .where(and(eq(helpdeskDesks.organizationId, organizationId), eq(helpdeskDesks.id, id)))
    .returning({ id: helpdeskDesks.id });
  return rows.length > 0;
}

export async function bindAddresses(
  tx: Db,
  rows: (typeof helpdeskDeskAddresses.$inferInsert)[],
): Promise<number> {
  const inserted = await tx
    .insert(helpdeskDeskAddresses)
    .values(rows)
    .onConflictDoNothing()
    .returning({ a: helpdeskDeskAddresses.address });
  return inserted.length;
}

export async function unbindAddresses(tx: Db, deskId: string): Promise<void> {
  await tx.delete(helpdeskDeskAddresses).where(eq(helpdeskDeskAddresses.deskId, deskId));
}

// ---- approvals and the conversation --------------------------------------------------------------------

export async function insertApproval(
  tx: Db,
  row: typeof helpdeskApprovals.$inferInsert,
): Promise<ApprovalRow> {
  const [inserted] = await tx.insert(helpdeskApprovals).values(row).returning();
  return inserted!;
}

export function approvalsOf(db: Db, organizationId: string, ticketId: string): Promise<ApprovalRow[]> {
  return db
    .select()
    .from(helpdeskApprovals)
    .where(
      and(eq(helpdeskApprovals.organizationId, organizationId), eq(helpdeskApprovals.ticketId, ticketId)),
    )
    .orderBy(asc(helpdeskApprovals.createdAt));
}

export async function approvalOf(db: Db, id: string): Promise<ApprovalRow | undefined> {
  const [row] = await db.select().from(helpdeskApprovals).where(eq(helpdeskApprovals.id, id));
  return row;
}

/** The Message-IDs of the ticket's public mail, oldest first (what a reply's References names). */
export async function conversationIds(db: Db, ticketId: string): Promise<string[]> {
  const { rows } = (await db.execute(sql`
    select message_id_header from helpdesk_comments
     where ticket_id = ${ticketId} and visibility = 'public' and message_id_header is not null
     order by created_at, id`)) as Rows<{ message_id_header: string }>;
  return rows.map((r) => r.message_id_header);
}
