import type { SQL } from 'drizzle-orm';
import type { Db } from '../../core/db.ts';
import { and, count, desc, eq, gte, inArray, isNull, lt, or, sql } from '../../core/orm.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import { deliveries } from '../delivery/tables.ts';
import { domains } from '../domains/tables.ts';
import { messages } from '../messages/tables.ts';
import { COMPLAINING_TYPES, type ComplaintRow, complaints, type NewComplaint } from './tables.ts';

async function rowsOf<T>(db: Db, query: SQL): Promise<T[]> {
  return ((await db.execute(query)) as unknown as { rows: T[] }).rows;
}

/** An outbound message of the organisation, as matching needs it. */
export interface OutboundRef {
  id: string;
  domainId: string | null;
  domain: string | null;
  fromAddress: string | null;
}

/** One recipient of an outbound message. */
export interface DeliveryRef {
  id: string;
  recipient: string;
  status: string;
  countedSubject: string | null;
}

const outboundColumns = {
  id: messages.id,
  domainId: messages.domainId,
  domain: domains.name,
  fromAddress: messages.fromAddress,
};

/** The organisation's outbound messages that `where` picks, with their domain. */
function outboundWhere(db: Db, organizationId: string, where: SQL | undefined) {
  return db
    .select(outboundColumns)
    .from(messages)
    .leftJoin(domains, eq(domains.id, messages.domainId))
    .where(and(eq(messages.organizationId, organizationId), eq(messages.direction, 'outbound'), where));
}

export async function outboundMessage(
  db: Db,
  organizationId: string,
  id: string,
): Promise<OutboundRef | null> {
  const [row] = await outboundWhere(db, organizationId, eq(messages.id, id));
  return row ?? null;
}

/** Outbound messages with one of these Message-ID values (the messages_message_id index), newest first. */
export function outboundByMessageIdHeader(
  db: Db,
  organizationId: string,
  values: string[],
  limit: number,
): Promise<OutboundRef[]> {
  return outboundWhere(db, organizationId, inArray(messages.messageIdHeader, values))
    .orderBy(desc(messages.receivedAt), desc(messages.id))
    .limit(limit);
}

export function deliveriesOf(db: Db, organizationId: string, messageId: string): Promise<DeliveryRef[]> {
  return db
    .select({
      id: deliveries.id,
      recipient: deliveries.recipient,
      status: deliveries.status,
      countedSubject: deliveries.countedSubject,
    })
    .from(deliveries)
    .where(and(eq(deliveries.messageId, messageId), eq(deliveries.organizationId, organizationId)));
}

/** Inserts a complaint; null when a matched one about the same message and recipient exists. */
export async function insertComplaint(tx: Db, row: NewComplaint): Promise<ComplaintRow | null> {
  const [inserted] = await tx.insert(complaints).values(row).onConflictDoNothing().returning();
  return inserted ?? null;
}

/** The matched complaint about this recipient of this message. */
export async function matchedComplaint(
  db: Db,
  organizationId: string,
  messageId: string,
  recipient: string,
): Promise<ComplaintRow | null> {
  const [row] = await db
    .select()
    .from(complaints)
    .where(
      and(
        eq(complaints.organizationId, organizationId),
        eq(complaints.messageId, messageId),
        eq(complaints.recipient, recipient),
        eq(complaints.matched, true),
      ),
    );
  return row ?? null;
}

export interface ComplaintFilter {
  /** Lower case. */
  recipient?: string;
  /** The hosted domain, lower case. */
  domain?: string;
  since?: Date;
  matched?: boolean;
}

export async function listComplaints(
  db: Db,
  organizationId: string,
  filter: ComplaintFilter,
  page: PageRequest,
): Promise<{ rows: ComplaintRow[]; total: number }> {
  const conditions: SQL[] = [eq(complaints.organizationId, organizationId)];
  if (filter.recipient) conditions.push(eq(complaints.recipient, filter.recipient));
  if (filter.domain) conditions.push(eq(complaints.domain, filter.domain));
  if (filter.since) conditions.push(gte(complaints.createdAt, filter.since));
  if (filter.matched !== undefined) conditions.push(eq(complaints.matched, filter.matched));
  const where = and(...conditions);
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(complaints)
      .where(where)
      .orderBy(desc(complaints.createdAt), desc(complaints.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(complaints).where(where),
  ]);
  return { rows, total };
}

export async function complaintById(
  db: Db,
  organizationId: string,
  id: string,
): Promise<ComplaintRow | null> {
  const [row] = await db
    .select()
    .from(complaints)
    .where(and(eq(complaints.organizationId, organizationId), eq(complaints.id, id)));
  return row ?? null;
}

/** Counts per sending domain and sending mailbox. */
export interface RateRow {
  domain_id: string | null;
  domain: string | null;
  sender: string | null;
  n: number;
}

/**
 * Recipients delivered in [since, until), by sending domain and mailbox: the deliveries_org_status
 * index (organisation, status, created_at) finds them, each joined to its message by primary key.
 */
export async function deliveredCounts(
  db: Db,
  organizationId: string,
  since: Date,
  until: Date,
): Promise<RateRow[]> {
  const rows = await rowsOf<RateRow>(
    db,
    sql`select m.domain_id, dm.name as domain,
               coalesce(d.counted_subject, lower(m.from_address)) as sender, count(*)::int as n
          from ${deliveries} d
          join ${messages} m on m.id = d.message_id
          left join ${domains} dm on dm.id = m.domain_id
         where d.organization_id = ${organizationId} and d.status = 'delivered'
           and d.created_at >= ${since.toISOString()}::timestamptz
           and d.created_at < ${until.toISOString()}::timestamptz
         group by 1, 2, 3`,
  );
  return rows.map((r) => ({ ...r, n: Number(r.n) }));
}

/**
 * Matched complaints of a complaining type (abuse, fraud, virus or none given) recorded in
 * [since, until), by sending domain and mailbox (the complaints_org_created index).
 */
export async function complaintCounts(
  db: Db,
  organizationId: string,
  since: Date,
  until: Date,
): Promise<RateRow[]> {
  const rows = await db
    .select({
      domain_id: complaints.domainId,
      domain: complaints.domain,
      sender: complaints.sender,
      n: count(),
    })
    .from(complaints)
    .where(
      and(
        eq(complaints.organizationId, organizationId),
        gte(complaints.createdAt, since),
        lt(complaints.createdAt, until),
        eq(complaints.matched, true),
        or(isNull(complaints.feedbackType), inArray(complaints.feedbackType, COMPLAINING_TYPES)),
      ),
    )
    .groupBy(complaints.domainId, complaints.domain, complaints.sender);
  return rows.map((r) => ({ ...r, n: Number(r.n) }));
}
