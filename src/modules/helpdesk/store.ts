import type { Db } from '../../core/db.ts';
import { uuidArrayLiteral } from '../../core/ids.ts';
import { and, asc, count, desc, eq, gte, inArray, lt, sql } from '../../core/orm.ts';
import type { SQL } from 'drizzle-orm';
import type { PageRequest } from '../../core/pagination.ts';
import {
  type CommentRow,
  type ContactRow,
  type DeskAddressRow,
  type DeskRow,
  helpdeskComments as c,
  helpdeskContacts,
  helpdeskCustomers,
  helpdeskDeskAddresses as da,
  helpdeskDesks,
  helpdeskIntake,
  helpdeskTicketMessages as tm,
  helpdeskTickets as t,
  type TicketRow,
  type TicketStatus,
} from './tables.ts';

type Rows<T> = { rows: T[] };

// ---- desks ---------------------------------------------------------------------------------------------

export function deskAddresses(db: Db, organizationId: string, deskIds: string[]): Promise<DeskAddressRow[]> {
  if (!deskIds.length) return Promise.resolve([]);
  return db
    .select()
    .from(da)
    .where(and(eq(da.organizationId, organizationId), inArray(da.deskId, deskIds)))
    .orderBy(asc(da.position));
}

export async function deskOf(db: Db, organizationId: string, id: string): Promise<DeskRow | undefined> {
  const [row] = await db
    .select()
    .from(helpdeskDesks)
    .where(and(eq(helpdeskDesks.organizationId, organizationId), eq(helpdeskDesks.id, id)));
  return row;
}

/**
 * Inside the transaction that files received mail: one intake row per (message, desk) whose address the
 * message was sent to. One statement for a whole batch of messages.
 */
export async function recordIntake(
  tx: Db,
  received: { organizationId: string; messageId: string; rcptTo: string[] }[],
): Promise<number> {
  if (!received.length) return 0;
  const { rows } = (await tx.execute(sql`
    insert into helpdesk_intake (message_id, desk_id, organization_id)
    select distinct r.message_id, a.desk_id, a.organization_id
      from jsonb_to_recordset(${JSON.stringify(
        received.flatMap((r) =>
          r.rcptTo.map((rcpt) => ({
            organization_id: r.organizationId,
            message_id: r.messageId,
            address: rcpt.toLowerCase(),
          })),
        ),
      )}::jsonb) as r(organization_id uuid, message_id uuid, address text)
      join helpdesk_desk_addresses a on a.organization_id = r.organization_id and a.address = r.address
    on conflict do nothing
    returning message_id`)) as Rows<{ message_id: string }>;
  return rows.length;
}

/** Pending intake taken for filing; the row locks keep other workers off them until commit. */
export async function claimIntake(
  tx: Db,
  limit: number,
): Promise<{ messageId: string; deskId: string; organizationId: string }[]> {
  return tx
    .select({
      messageId: helpdeskIntake.messageId,
      deskId: helpdeskIntake.deskId,
      organizationId: helpdeskIntake.organizationId,
    })
    .from(helpdeskIntake)
    .where(eq(helpdeskIntake.status, 'pending'))
    .orderBy(asc(helpdeskIntake.createdAt))
    .limit(limit)
    .for('update', { skipLocked: true });
}

export async function finishIntake(
  tx: Db,
  done: {
    messageId: string;
    deskId: string;
    status: 'filed' | 'ignored';
    reason: string | null;
    ticketId: string | null;
    sender: string | null;
  }[],
): Promise<void> {
  if (!done.length) return;
  await tx.execute(sql`
    update helpdesk_intake i
       set status = d.status, reason = d.reason, ticket_id = d.ticket_id, sender = d.sender, processed_at = now()
      from jsonb_to_recordset(${JSON.stringify(
        done.map((d) => ({
          message_id: d.messageId,
          desk_id: d.deskId,
          status: d.status,
          reason: d.reason,
          ticket_id: d.ticketId,
          sender: d.sender,
        })),
      )}::jsonb) as d(message_id uuid, desk_id uuid, status text, reason text, ticket_id uuid, sender text)
     where i.message_id = d.message_id and i.desk_id = d.desk_id`);
}

export async function intakeOf(db: Db, organizationId: string, messageId: string) {
  return db
    .select()
    .from(helpdeskIntake)
    .where(and(eq(helpdeskIntake.organizationId, organizationId), eq(helpdeskIntake.messageId, messageId)));
}

/** Every desk address of these organisations, as `organization:address`. */
export async function deskAddressesOf(db: Db, organizationIds: string[]): Promise<Set<string>> {
  if (!organizationIds.length) return new Set();
  const rows = await db
    .select({ org: da.organizationId, address: da.address })
    .from(da)
    .where(inArray(da.organizationId, organizationIds));
  return new Set(rows.map((r) => `${r.org}:${r.address}`));
}

/**
 * Mail filed since `since` per (organisation, desk, sender), as `organization:desk:sender`, for these
 * senders (loop protection counts it).
 */
export async function recentFiledCounts(
  db: Db,
  keys: { organizationId: string; deskId: string; sender: string }[],
  since: Date,
): Promise<Map<string, number>> {
  if (!keys.length) return new Map();
  const { rows } = (await db.execute(sql`
    select i.organization_id, i.desk_id, k.sender, count(*)::int as n
      from (select distinct * from jsonb_to_recordset(${JSON.stringify(
        keys.map((k) => ({ organization_id: k.organizationId, desk_id: k.deskId, sender: k.sender })),
      )}::jsonb) as k(organization_id uuid, desk_id uuid, sender text)) k
      join helpdesk_intake i on i.organization_id = k.organization_id and i.desk_id = k.desk_id
                            and i.sender = k.sender and i.status = 'filed' and i.processed_at >= ${since}
     group by 1, 2, 3`)) as Rows<{ organization_id: string; desk_id: string; sender: string; n: number }>;
  return new Map(rows.map((r) => [`${r.organization_id}:${r.desk_id}:${r.sender}`, r.n]));
}

/** Which of these Message-IDs belong to a ticket's mail, as `organization:id`. */
export async function knownMessageIds(
  db: Db,
  ids: { organizationId: string; id: string }[],
): Promise<Set<string>> {
  if (!ids.length) return new Set();
  const { rows } = (await db.execute(sql`
    select m.organization_id, m.message_id_header
      from jsonb_to_recordset(${JSON.stringify(
        ids.map((x) => ({ organization_id: x.organizationId, id: x.id })),
      )}::jsonb) as k(organization_id uuid, id text)
      join helpdesk_ticket_messages m on m.organization_id = k.organization_id and m.message_id_header = k.id`)) as Rows<{
    organization_id: string;
    message_id_header: string;
  }>;
  return new Set(rows.map((r) => `${r.organization_id}:${r.message_id_header}`));
}

// ---- contacts and customers -------------------------------------------------------------------------

/**
 * The contacts with these addresses (lower case), each created on first sight and then matched to the
 * customer organisation of its domain; one statement.
 */
export async function contactsFor(
  tx: Db,
  organizationId: string,
  people: { id: string; email: string; name: string | null }[],
): Promise<ContactRow[]> {
  if (!people.length) return [];
  const { rows } = (await tx.execute(sql`
    insert into helpdesk_contacts (id, organization_id, email, name, customer_id)
    select p.id, ${organizationId}, p.email, p.name,
           (select c.id from helpdesk_customers c where c.organization_id = ${organizationId}
               and c.domains @> array[split_part(p.email, '@', 2)] order by c.created_at limit 1)
      from jsonb_to_recordset(${JSON.stringify(people)}::jsonb) as p(id uuid, email text, name text)
    on conflict (organization_id, email) do update set name = coalesce(helpdesk_contacts.name, excluded.name)
    returning id, organization_id as "organizationId", email, name, customer_id as "customerId",
              created_at as "createdAt"`)) as Rows<ContactRow>;
  return rows.map((r) => ({ ...r, createdAt: new Date(r.createdAt) }));
}

export async function contactsByIds(db: Db, organizationId: string, ids: string[]): Promise<ContactRow[]> {
  if (!ids.length) return [];
  return db
    .select()
    .from(helpdeskContacts)
    .where(and(eq(helpdeskContacts.organizationId, organizationId), inArray(helpdeskContacts.id, ids)));
}

export async function customerOf(db: Db, organizationId: string, id: string) {
  const [row] = await db
    .select()
    .from(helpdeskCustomers)
    .where(and(eq(helpdeskCustomers.organizationId, organizationId), eq(helpdeskCustomers.id, id)));
  return row;
}

// ---- tickets -------------------------------------------------------------------------------------------

/** Reserves `count` consecutive ticket numbers of the organisation; the first of them. */
export async function reserveTicketNumbers(tx: Db, organizationId: string, count: number): Promise<number> {
  const { rows } = (await tx.execute(sql`
    insert into helpdesk_ticket_numbers (organization_id, last_number) values (${organizationId}, ${count})
    on conflict (organization_id) do update set last_number = helpdesk_ticket_numbers.last_number + ${count}
    returning last_number`)) as Rows<{ last_number: number }>;
  return rows[0]!.last_number - count + 1;
}

export const nextTicketNumber = (tx: Db, organizationId: string) =>
  reserveTicketNumbers(tx, organizationId, 1);

/** Tickets with their search vectors, in one statement; returned in the order given. */
/** The columns a new ticket is written with, and their types for `jsonb_to_recordset`. */
const NEW_TICKET_COLUMNS = {
  id: 'uuid',
  organization_id: 'uuid',
  number: 'int',
  desk_id: 'uuid',
  subject: 'text',
  requester_id: 'uuid',
  customer_id: 'uuid',
  category_id: 'uuid',
  department_id: 'uuid',
  team_id: 'uuid',
  assignee_id: 'uuid',
  priority: 'text',
  status: 'text',
  tags: 'text[]',
  custom_fields: 'jsonb',
  due_at: 'timestamptz',
  source: 'text',
  comments: 'int',
  last_customer_at: 'timestamptz',
  created_at: 'timestamptz',
  updated_at: 'timestamptz',
} as const;
const NEW_TICKET_LIST = sql.raw(Object.keys(NEW_TICKET_COLUMNS).join(', '));
const NEW_TICKET_RECORD = sql.raw(
  [...Object.entries(NEW_TICKET_COLUMNS).map(([k, v]) => `${k} ${v}`), 'search_text text'].join(', '),
);

/**
 * Tickets with their search vectors, in one statement (the vector is written with the row, not by a
 * second pass over it); returned in the order given.
 */
export async function insertTickets(
  tx: Db,
  tickets: { row: typeof t.$inferInsert & { id: string }; searchText: string }[],
): Promise<TicketRow[]> {
  if (!tickets.length) return [];
  const iso = (d: Date | null | undefined) => d?.toISOString() ?? null;
  const records = tickets.map(({ row: r, searchText }) => ({
    id: r.id,
    organization_id: r.organizationId,
    number: r.number,
    desk_id: r.deskId,
    subject: r.subject,
    requester_id: r.requesterId,
    customer_id: r.customerId ?? null,
    category_id: r.categoryId ?? null,
    department_id: r.departmentId ?? null,
    team_id: r.teamId ?? null,
    assignee_id: r.assigneeId ?? null,
    priority: r.priority,
    status: r.status,
    tags: r.tags ?? [],
    custom_fields: r.customFields,
    due_at: iso(r.dueAt),
    source: r.source,
    comments: r.comments ?? 0,
    last_customer_at: iso(r.lastCustomerAt),
    created_at: iso(r.createdAt as Date | undefined) ?? new Date().toISOString(),
    updated_at: iso(r.updatedAt as Date | undefined) ?? new Date().toISOString(),
    search_text: searchText,
  }));
  await tx.execute(sql`
    insert into helpdesk_tickets (${NEW_TICKET_LIST}, search)
    select ${NEW_TICKET_LIST}, to_tsvector('simple', search_text)
      from jsonb_to_recordset(${JSON.stringify(records)}::jsonb) as r(${NEW_TICKET_RECORD})`);
  const inserted = await tx
    .select()
    .from(t)
    .where(
      inArray(
        t.id,
        tickets.map((d) => d.row.id),
      ),
    );
  const byId = new Map(inserted.map((r) => [r.id, r]));
  return tickets.map((d) => byId.get(d.row.id)!);
}

export async function insertComments(tx: Db, rows: (typeof c.$inferInsert)[]): Promise<void> {
  if (rows.length) await tx.insert(c).values(rows);
}

export async function desksOf(db: Db, organizationId: string, ids: string[]): Promise<Map<string, DeskRow>> {
  const rows = await db
    .select()
    .from(helpdeskDesks)
    .where(and(eq(helpdeskDesks.organizationId, organizationId), inArray(helpdeskDesks.id, ids)));
  return new Map(rows.map((r) => [r.id, r]));
}

export async function insertTicket(tx: Db, row: typeof t.$inferInsert & { id: string }, searchText: string) {
  const [inserted] = await insertTickets(tx, [{ row, searchText }]);
  return inserted!;
}

export async function ticketOf(db: Db, organizationId: string, id: string, lock = false) {
  const q = db
    .select()
    .from(t)
    .where(and(eq(t.organizationId, organizationId), eq(t.id, id)));
  const [row] = lock ? await q.for('update') : await q;
  return row;
}

export async function ticketByNumber(db: Db, organizationId: string, number: number) {
  const [row] = await db
    .select()
    .from(t)
    .where(and(eq(t.organizationId, organizationId), eq(t.number, number)));
  return row;
}

export async function ticketsByIds(db: Db, organizationId: string, ids: string[], lock = false) {
  if (!ids.length) return [];
  const q = db
    .select()
    .from(t)
    .where(and(eq(t.organizationId, organizationId), inArray(t.id, ids)))
    .orderBy(asc(t.id));
  return lock ? q.for('update') : q;
}

export async function updateTicket(
  tx: Db,
  id: string,
  changes: Partial<typeof t.$inferInsert>,
): Promise<TicketRow> {
  const [row] = await tx
    .update(t)
    .set({ updatedAt: sql`now()`, ...changes })
    .where(eq(t.id, id))
    .returning();
  return row!;
}

/** Adds words to a ticket's search vector (a comment's text). */
export async function extendSearch(tx: Db, ticketId: string, text: string): Promise<void> {
  await tx.execute(sql`
    update helpdesk_tickets set search = search || to_tsvector('simple', ${text.slice(0, 20_000)})
     where id = ${ticketId}`);
}

export interface TicketFilter {
  status?: TicketStatus[];
  priority?: string[];
  desk_id?: string;
  assignee_id?: string | null;
  team_id?: string;
  category_id?: string;
  department_id?: string;
  customer_id?: string;
  requester_id?: string;
  tag?: string;
  q?: string;
  created_after?: Date;
  created_before?: Date;
}

export type TicketSort = 'created_at' | 'updated_at' | 'number' | 'priority' | 'due_at';

const PRIORITY_RANK = sql`array_position(array['low','normal','high','urgent']::text[], ${t.priority})`;

export async function listTickets(
  db: Db,
  organizationId: string,
  filter: TicketFilter,
  sort: { by: TicketSort; order: 'asc' | 'desc' },
  page: PageRequest,
): Promise<{ rows: TicketRow[]; total: number; exact: boolean }> {
  const where: SQL[] = [eq(t.organizationId, organizationId)];
  if (filter.status?.length) where.push(inArray(t.status, filter.status));
  if (filter.priority?.length) where.push(inArray(t.priority, filter.priority as TicketRow['priority'][]));
  if (filter.desk_id) where.push(eq(t.deskId, filter.desk_id));
  if (filter.assignee_id === null) where.push(sql`${t.assigneeId} is null`);
  else if (filter.assignee_id) where.push(eq(t.assigneeId, filter.assignee_id));
  if (filter.team_id) where.push(eq(t.teamId, filter.team_id));
  if (filter.category_id) where.push(eq(t.categoryId, filter.category_id));
  if (filter.department_id) where.push(eq(t.departmentId, filter.department_id));
  if (filter.customer_id) where.push(eq(t.customerId, filter.customer_id));
  if (filter.requester_id) where.push(eq(t.requesterId, filter.requester_id));
  if (filter.tag) where.push(sql`${t.tags} @> array[${filter.tag}]::text[]`);
  if (filter.q) where.push(sql`search @@ websearch_to_tsquery('simple', ${filter.q})`);
  if (filter.created_after) where.push(gte(t.createdAt, filter.created_after));
  if (filter.created_before) where.push(lt(t.createdAt, filter.created_before));
  const column = {
    created_at: t.createdAt,
    updated_at: t.updatedAt,
    number: t.number,
    priority: PRIORITY_RANK,
    due_at: t.dueAt,
  }[sort.by];
  const direction = sort.order === 'asc' ? asc : desc;
  // Matches are counted up to a cap: a common word, or a status most tickets have, can match most of a
  // large desk, and counting them all reads every match (search engines report "10,000+" for the same
  // reason; a desk's exact counts by status are the insights' report).
  const cap = (filter.q ? SEARCH_COUNT_CAP : LIST_COUNT_CAP) + 1;
  const counted = db
    .select({ one: sql`1` })
    .from(t)
    .where(and(...where));
  const [rows, total] = await Promise.all([
    db
      .select()
      .from(t)
      .where(and(...where))
      .orderBy(direction(column), direction(t.id))
      .limit(page.page_size)
      .offset((page.page - 1) * page.page_size),
    db
      .select({ n: count() })
      .from(counted.limit(cap).as('matches'))
      .then(([r]) => r!.n),
  ]);
  return total >= cap ? { rows, total: cap - 1, exact: false } : { rows, total, exact: true };
}

/** Matches of a full-text query counted exactly up to this many; beyond, the total says "at least". */
export const SEARCH_COUNT_CAP = 1_000;
/** The same for a list without a full-text query. */
export const LIST_COUNT_CAP = 10_000;

// ---- comments and mail threading ----------------------------------------------------------------------

export async function insertComment(tx: Db, row: typeof c.$inferInsert): Promise<CommentRow> {
  const [inserted] = await tx.insert(c).values(row).returning();
  await tx.execute(sql`update helpdesk_tickets set comments = comments + 1 where id = ${row.ticketId}`);
  return inserted!;
}

export function commentsOf(db: Db, organizationId: string, ticketId: string, page: PageRequest) {
  return db
    .select()
    .from(c)
    .where(and(eq(c.organizationId, organizationId), eq(c.ticketId, ticketId)))
    .orderBy(asc(c.createdAt), asc(c.id))
    .limit(page.page_size)
    .offset((page.page - 1) * page.page_size);
}

export async function commentsByIds(db: Db, organizationId: string, ticketId: string, ids: string[]) {
  if (!ids.length) return [];
  return db
    .select()
    .from(c)
    .where(and(eq(c.organizationId, organizationId), eq(c.ticketId, ticketId), inArray(c.id, ids)));
}

export async function firstComment(db: Db, ticketId: string): Promise<CommentRow | undefined> {
  const [row] = await db.select().from(c).where(eq(c.ticketId, ticketId)).orderBy(asc(c.createdAt)).limit(1);
  return row;
}

export async function recordTicketMessages(
  tx: Db,
  rows: {
    organizationId: string;
    messageIdHeader: string;
    ticketId: string;
    kind?: 'conversation' | 'approval';
    approverId?: string | null;
  }[],
): Promise<void> {
  if (!rows.length) return;
  await tx
    .insert(tm)
    .values(rows.map((r) => ({ kind: 'conversation' as const, ...r })))
    .onConflictDoNothing();
}

/** The ticket (and, for an approval request, its approver) one of these Message-IDs belongs to. */
export async function ticketByMessageIds(db: Db, organizationId: string, messageIds: string[]) {
  if (!messageIds.length) return undefined;
  const rows = await db
    .select()
    .from(tm)
    .where(and(eq(tm.organizationId, organizationId), inArray(tm.messageIdHeader, messageIds)));
  // The nearest reference wins: In-Reply-To comes first, then References from the newest.
  for (const id of messageIds) {
    const row = rows.find((r) => r.messageIdHeader === id);
    if (row) return row;
  }
  return undefined;
}

/** Moves comments (and the Message-IDs that thread to them) to another ticket, for merge and split. */
export async function moveComments(
  tx: Db,
  fromTicketId: string,
  toTicketId: string,
  commentIds: string[] | null,
) {
  const which = commentIds ? sql` and id = any(${uuidArrayLiteral(commentIds)}::uuid[])` : sql``;
  const { rows } = (await tx.execute(sql`
    update helpdesk_comments set ticket_id = ${toTicketId} where ticket_id = ${fromTicketId}${which}
    returning message_id_header, body`)) as Rows<{ message_id_header: string | null; body: string }>;
  const headers = rows.map((r) => r.message_id_header).filter((h): h is string => !!h);
  if (commentIds === null) {
    await tx.execute(
      sql`update helpdesk_ticket_messages set ticket_id = ${toTicketId} where ticket_id = ${fromTicketId}`,
    );
  } else if (headers.length) {
    await tx.execute(sql`
      update helpdesk_ticket_messages set ticket_id = ${toTicketId}
       where ticket_id = ${fromTicketId} and message_id_header = any(${sql.param(headers)}::text[])`);
  }
  await tx.execute(sql`
    update helpdesk_tickets set comments = (select count(*) from helpdesk_comments where ticket_id = helpdesk_tickets.id)
     where id in (${fromTicketId}, ${toTicketId})`);
  return rows;
}
