import type { SQL } from 'drizzle-orm';
import type { Db } from '../../core/db.ts';
import { and, asc, count, desc, eq, gt, gte, inArray, lt, sql } from '../../core/orm.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import { aliases } from '../aliases/tables.ts';
import { domains } from '../domains/tables.ts';
import { notifyFolders } from '../mailboxes/changes.ts';
import { mailboxes, mailboxMessages } from '../mailboxes/tables.ts';
import {
  type Direction,
  type MessageAnalysisRow,
  type MessageAuth,
  type MessageDetails,
  messageAnalyses,
  type MessageRouteRow,
  type MessageRow,
  type MessageStatus,
  messageRoutes,
  messages,
} from './tables.ts';

async function rowsOf<T>(db: Db, query: SQL): Promise<T[]> {
  return ((await db.execute(query)) as unknown as { rows: T[] }).rows;
}

/** A received message's envelope, headers, text and verdicts, as mail-reading modules need them. */
export interface ReceivedMessage {
  id: string;
  organization_id: string;
  mail_from: string;
  from_address: string | null;
  from_name: string | null;
  subject: string | null;
  message_id_header: string | null;
  in_reply_to: string | null;
  references: string[];
  body_text: string | null;
  details: MessageDetails | null;
  auth: { dmarc?: { result?: string } } | null;
}

export function receivedByIds(db: Db, ids: string[]): Promise<ReceivedMessage[]> {
  return rowsOf<ReceivedMessage>(
    db,
    sql`select id, organization_id, mail_from, from_address, from_name, subject, message_id_header, in_reply_to,
               "references", body_text, details, auth
          from messages where id = any(${sql.param(ids)}::uuid[])`,
  );
}

/** Every column but the large ones (body text, MIME details, authentication verdicts). */
export const summaryColumns = {
  id: messages.id,
  organizationId: messages.organizationId,
  domainId: messages.domainId,
  direction: messages.direction,
  status: messages.status,
  blobId: messages.blobId,
  size: messages.size,
  mailFrom: messages.mailFrom,
  rcptTo: messages.rcptTo,
  remoteIp: messages.remoteIp,
  helo: messages.helo,
  tls: messages.tls,
  messageIdHeader: messages.messageIdHeader,
  inReplyTo: messages.inReplyTo,
  references: messages.references,
  threadId: messages.threadId,
  fromAddress: messages.fromAddress,
  fromName: messages.fromName,
  toAddresses: messages.toAddresses,
  ccAddresses: messages.ccAddresses,
  subject: messages.subject,
  sentAt: messages.sentAt,
  hasAttachments: messages.hasAttachments,
  parentId: messages.parentId,
  accountId: messages.accountId,
  tags: messages.tags,
  error: messages.error,
  receivedAt: messages.receivedAt,
  processedAt: messages.processedAt,
  updatedAt: messages.updatedAt,
};
export type MessageSummaryRow = Omit<MessageRow, 'bodyText' | 'details' | 'auth' | 'structure'>;

const newestFirst = [desc(messages.receivedAt), desc(messages.id)];

export interface MessageFilter {
  status?: MessageStatus;
  direction?: Direction;
  domainId?: string;
  /** Messages with a copy in this mailbox. */
  mailboxId?: string;
  /** Messages synced from this external account. */
  accountId?: string;
  /** The envelope sender or the From address (case-insensitive). */
  sender?: string;
  /** An envelope recipient or a To address (case-insensitive). */
  recipient?: string;
  /** received_at ≥ since */
  since?: Date;
  /** received_at < until */
  until?: Date;
  /** What mail intelligence found (messages not analysed yet match none of these). */
  analysis?: AnalysisFilter;
}

export interface AnalysisFilter {
  spam?: boolean;
  phishing?: 'clean' | 'suspicious' | 'phishing';
  sentiment?: 'negative' | 'neutral' | 'positive';
  category?: string;
  language?: string;
}

/** The messages whose analysis meets the filter; undefined when it asks nothing. */
export function analysisWhere(filter: AnalysisFilter | undefined): SQL | undefined {
  if (!filter) return undefined;
  const a = messageAnalyses;
  const conditions = [
    filter.spam === undefined ? undefined : eq(a.spam, filter.spam),
    filter.phishing ? eq(a.phishing, filter.phishing) : undefined,
    filter.sentiment ? eq(a.sentimentLabel, filter.sentiment) : undefined,
    filter.category ? eq(a.category, filter.category) : undefined,
    filter.language ? eq(a.language, filter.language) : undefined,
  ].filter((c) => c !== undefined);
  if (!conditions.length) return undefined;
  return sql`exists (select 1 from ${a} where ${a.messageId} = ${messages.id} and ${and(...conditions)})`;
}

/** Where the message log meets the filter (within the organisation). */
function filterWhere(organizationId: string, filter: MessageFilter) {
  const sender = filter.sender?.toLowerCase();
  const recipient = filter.recipient?.toLowerCase();
  return and(
    eq(messages.organizationId, organizationId),
    filter.status ? eq(messages.status, filter.status) : undefined,
    filter.direction ? eq(messages.direction, filter.direction) : undefined,
    filter.accountId ? eq(messages.accountId, filter.accountId) : undefined,
    filter.domainId ? eq(messages.domainId, filter.domainId) : undefined,
    filter.mailboxId
      ? sql`exists (select 1 from ${mailboxMessages} where ${mailboxMessages.messageId} = ${messages.id}
          and ${mailboxMessages.mailboxId} = ${filter.mailboxId}
          and ${mailboxMessages.organizationId} = ${organizationId})`
      : undefined,
    sender
      ? sql`(lower(${messages.mailFrom}) = ${sender} or lower(${messages.fromAddress}) = ${sender})`
      : undefined,
    recipient
      ? sql`exists (select 1 from unnest(${messages.rcptTo} || ${messages.toAddresses}) as r(address)
          where lower(r.address) = ${recipient})`
      : undefined,
    filter.since ? gte(messages.receivedAt, filter.since) : undefined,
    filter.until ? lt(messages.receivedAt, filter.until) : undefined,
    analysisWhere(filter.analysis),
  );
}

export async function listMessages(
  db: Db,
  organizationId: string,
  filter: MessageFilter,
  page: PageRequest,
): Promise<{ rows: MessageSummaryRow[]; total: number }> {
  const where = filterWhere(organizationId, filter);
  const [rows, [{ total }]] = await Promise.all([
    db
      .select(summaryColumns)
      .from(messages)
      .where(where)
      .orderBy(...newestFirst)
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(messages).where(where),
  ]);
  return { rows, total };
}

/**
 * Where a keyset page of the log (newest first) resumes: the last message of the page before, its time
 * as PostgreSQL's text (microseconds: a JavaScript Date keeps milliseconds, and resuming from a
 * truncated time would skip the messages within that millisecond).
 */
export interface LogCursor {
  receivedAt: string;
  id: string;
}

/**
 * The filtered log newest first, after `cursor` (keyset pages along messages_org_received: each page
 * costs the same however deep an export has gone, where OFFSET would read every row before it), and
 * the cursor of the page after it (null after the last).
 */
export async function messagesBefore(
  db: Db,
  organizationId: string,
  filter: MessageFilter,
  cursor: LogCursor | null,
  limit: number,
): Promise<{ rows: MessageSummaryRow[]; next: LogCursor | null }> {
  const where = and(
    filterWhere(organizationId, filter),
    cursor
      ? sql`(${messages.receivedAt}, ${messages.id}) < (${cursor.receivedAt}::timestamptz, ${cursor.id}::uuid)`
      : undefined,
  );
  const found = await db
    .select({ ...summaryColumns, exactReceivedAt: sql<string>`${messages.receivedAt}::text` })
    .from(messages)
    .where(where)
    .orderBy(...newestFirst)
    .limit(limit);
  const last = found.at(-1);
  const rows = found.map(({ exactReceivedAt: _, ...row }) => row);
  return {
    rows,
    next: last && found.length === limit ? { receivedAt: last.exactReceivedAt, id: last.id } : null,
  };
}

export function recentMessages(db: Db, organizationId: string, limit: number): Promise<MessageSummaryRow[]> {
  return db
    .select(summaryColumns)
    .from(messages)
    .where(eq(messages.organizationId, organizationId))
    .orderBy(...newestFirst)
    .limit(limit);
}

export function threadMessages(
  db: Db,
  organizationId: string,
  threadId: string,
  limit: number,
): Promise<MessageSummaryRow[]> {
  return db
    .select(summaryColumns)
    .from(messages)
    .where(and(eq(messages.organizationId, organizationId), eq(messages.threadId, threadId)))
    .orderBy(asc(messages.receivedAt), asc(messages.id))
    .limit(limit);
}

/** The organisation's messages with these ids, in the order of `ids`. */
export async function summariesByIds(
  db: Db,
  organizationId: string,
  ids: string[],
): Promise<MessageSummaryRow[]> {
  if (ids.length === 0) return [];
  const rows = await db
    .select(summaryColumns)
    .from(messages)
    .where(and(eq(messages.organizationId, organizationId), inArray(messages.id, ids)));
  const byId = new Map(rows.map((r) => [r.id, r]));
  return ids.flatMap((id) => byId.get(id) ?? []);
}

export async function messageById(db: Db, organizationId: string, id: string): Promise<MessageRow | null> {
  const [row] = await db
    .select()
    .from(messages)
    .where(and(eq(messages.organizationId, organizationId), eq(messages.id, id)));
  return row ?? null;
}

/** The message, locked for the rest of the transaction. */
export async function lockMessage(db: Db, organizationId: string, id: string): Promise<MessageRow | null> {
  const [row] = await db
    .select()
    .from(messages)
    .where(and(eq(messages.organizationId, organizationId), eq(messages.id, id)))
    .for('update');
  return row ?? null;
}

export function routesOf(db: Db, organizationId: string, messageId: string): Promise<MessageRouteRow[]> {
  return db
    .select()
    .from(messageRoutes)
    .where(and(eq(messageRoutes.organizationId, organizationId), eq(messageRoutes.messageId, messageId)))
    .orderBy(asc(messageRoutes.createdAt), asc(messageRoutes.id));
}

/** The outbound copies made from a message (forwards), oldest first. */
export function forwardsOf(db: Db, organizationId: string, messageId: string) {
  return db
    .select({
      id: messages.id,
      rcptTo: messages.rcptTo,
      mailFrom: messages.mailFrom,
      status: messages.status,
      error: messages.error,
      receivedAt: messages.receivedAt,
      updatedAt: messages.updatedAt,
    })
    .from(messages)
    .where(
      and(
        eq(messages.organizationId, organizationId),
        eq(messages.parentId, messageId),
        eq(messages.direction, 'outbound'),
      ),
    )
    .orderBy(asc(messages.receivedAt), asc(messages.id));
}

export async function updateStatus(db: Db, id: string, status: MessageStatus): Promise<MessageRow> {
  const [row] = await db
    .update(messages)
    .set({ status, updatedAt: new Date() })
    .where(eq(messages.id, id))
    .returning();
  return row;
}

/**
 * Locks the mailboxes holding copies of a message, in id order: every change to a mailbox's folders
 * takes its row first (IMAP, filing), so a deletion that takes them in the same order never deadlocks
 * with them.
 */
export async function lockMailboxesOf(db: Db, organizationId: string, messageId: string): Promise<void> {
  await db.execute(sql`
    select id from ${mailboxes}
     where id in (select mailbox_id from ${mailboxMessages}
                   where message_id = ${messageId} and organization_id = ${organizationId})
     order by id for update`);
}

/**
 * Deletes a message with its routes and its mailbox copies, giving the copies' bytes back to their
 * mailboxes' usage; the copies count as expunged from their folders, which are announced (IMAP).
 * Forwarded copies stay (their parent_id becomes null).
 */
export async function deleteMessage(db: Db, organizationId: string, id: string): Promise<void> {
  await db.execute(sql`
    with gone as (
      delete from ${mailboxMessages} where message_id = ${id} and organization_id = ${organizationId}
      returning mailbox_id, folder_id, uid, size
    ), bump as (
      update mailbox_folders f set highest_modseq = f.highest_modseq + 1
        from (select distinct folder_id from gone) g where f.id = g.folder_id
      returning f.id, f.highest_modseq
    ), logged as (
      insert into mailbox_expunged (organization_id, folder_id, uid, modseq)
      select ${organizationId}, g.folder_id, g.uid, b.highest_modseq from gone g join bump b on b.id = g.folder_id
    ), freed as (
      update ${mailboxes} set used_bytes = greatest(0, ${mailboxes.usedBytes} - copies.bytes), updated_at = now()
        from (select mailbox_id, sum(size) as bytes from gone group by mailbox_id) copies
       where ${mailboxes.id} = copies.mailbox_id
    )
    ${notifyFolders(sql`select id from bump`)}`);
  await db
    .delete(messageRoutes)
    .where(and(eq(messageRoutes.organizationId, organizationId), eq(messageRoutes.messageId, id)));
  await db.delete(messages).where(and(eq(messages.organizationId, organizationId), eq(messages.id, id)));
}

/** Whether another message (a forwarded copy) still points at the blob. */
export async function blobSharedByCopies(db: Db, messageId: string, blobId: string): Promise<boolean> {
  const rows = await db
    .select({ id: messages.id })
    .from(messages)
    .where(and(eq(messages.parentId, messageId), eq(messages.blobId, blobId)))
    .limit(1);
  return rows.length > 0;
}

// ---- search --------------------------------------------------------------------------------------
// `search` is the tsvector the pipeline fills; queries are websearch_to_tsquery('simple', q). How the
// service combines these is explained in service.ts.

const matching = (q: string, column = sql`search`) => sql`${column} @@ websearch_to_tsquery('simple', ${q})`;

/**
 * The ids of the newest `limit` matches among the organisation's newest `window` messages, newest
 * first: a walk down messages_org_received that stops as soon as it has `limit` matches.
 */
export async function searchRecent(
  db: Db,
  organizationId: string,
  q: string,
  window: number,
  limit: number,
): Promise<string[]> {
  const rows = await rowsOf<{ id: string }>(
    db,
    sql`select id from (
          select id, received_at, search from messages
          where organization_id = ${organizationId}
          order by received_at desc, id desc
          limit ${window}
        ) w
        where ${matching(q, sql`w.search`)}
        order by w.received_at desc, w.id desc
        limit ${limit}`,
  );
  return rows.map((r) => r.id);
}

/**
 * One page of every match, newest first, and how many match: the GIN index finds the matches and
 * they are sorted. `offset 0` keeps the planner from walking the received_at index instead (its plan
 * for a LIMIT when it overestimates how common a rare word is). For queries that match few messages.
 */
export async function searchAll(
  db: Db,
  organizationId: string,
  q: string,
  page: PageRequest,
  analysis?: AnalysisFilter,
): Promise<{ ids: string[]; total: number | null }> {
  const analysed = analysisWhere(analysis);
  const rows = await rowsOf<{ id: string; total: number }>(
    db,
    sql`select id, (count(*) over ())::int as total from (
          select id, received_at from messages
          where organization_id = ${organizationId} and ${matching(q)}
            ${analysed ? sql`and ${analysed}` : sql``}
          offset 0
        ) s
        order by received_at desc, id desc
        limit ${page.page_size} offset ${offsetOf(page)}`,
  );
  return { ids: rows.map((r) => r.id), total: rows[0]?.total ?? null };
}

/** How many messages match, counting no further than `cap` when given. */
export async function searchCount(db: Db, organizationId: string, q: string, cap?: number): Promise<number> {
  const [row] = await rowsOf<{ n: number }>(
    db,
    sql`select count(*)::int as n from (
          select 1 from messages where organization_id = ${organizationId} and ${matching(q)}
          offset 0 ${cap === undefined ? sql`` : sql`limit ${cap}`}
        ) s`,
  );
  return row.n;
}

/** The planner's estimate of the rows a query returns (from the column statistics; nothing is read). */
async function estimatedRows(db: Db, query: SQL): Promise<number> {
  const [row] = await rowsOf<Record<string, unknown>>(db, sql`explain (format json) ${query}`);
  const value = Object.values(row)[0];
  const plan = (typeof value === 'string' ? JSON.parse(value) : value) as { Plan: { 'Plan Rows': number } }[];
  return Math.round(plan[0]?.Plan['Plan Rows'] ?? 0);
}

/** Estimates of how many of the organisation's messages match, and how many it has. */
export async function searchEstimate(
  db: Db,
  organizationId: string,
  q: string,
): Promise<{ matches: number; messages: number }> {
  const [matches, messages] = await Promise.all([
    estimatedRows(
      db,
      sql`select 1 from messages where organization_id = ${organizationId} and ${matching(q)}`,
    ),
    estimatedRows(db, sql`select 1 from messages where organization_id = ${organizationId}`),
  ]);
  return { matches, messages };
}

// ---- statistics ----------------------------------------------------------------------------------

export interface CountRow {
  status: MessageStatus;
  direction: Direction;
  messages: number;
  bytes: number;
}

/** Messages and bytes by status and direction, received in [since, until). */
export function countsByStatus(
  db: Db,
  organizationId: string,
  range: { since?: Date; until?: Date; domainId?: string },
): Promise<CountRow[]> {
  return rowsOf<CountRow>(
    db,
    sql`select status, direction, count(*)::int as messages, coalesce(sum(size), 0)::float8 as bytes
        from messages
        where organization_id = ${organizationId}
          ${range.domainId ? sql`and domain_id = ${range.domainId}` : sql``}
          ${range.since ? sql`and received_at >= ${range.since.toISOString()}::timestamptz` : sql``}
          ${range.until ? sql`and received_at < ${range.until.toISOString()}::timestamptz` : sql``}
        group by status, direction`,
  );
}

export interface DayRow {
  date: string;
  messages: number;
  inbound: number;
  outbound: number;
  delivered: number;
  failed: number;
  rejected: number;
  quarantined: number;
  bounced: number;
}

/** Counts per UTC day of the messages received in [since, until); days without messages are absent. */
export function countsByDay(
  db: Db,
  organizationId: string,
  range: { since: Date; until: Date; domainId?: string },
): Promise<DayRow[]> {
  const where = sql`organization_id = ${organizationId}
      ${range.domainId ? sql`and domain_id = ${range.domainId}` : sql``}
      and received_at >= ${range.since.toISOString()}::timestamptz
      and received_at < ${range.until.toISOString()}::timestamptz`;
  return rowsOf<DayRow>(
    db,
    sql`select to_char(received_at at time zone 'UTC', 'YYYY-MM-DD') as date,
          count(*)::int as messages,
          (count(*) filter (where direction = 'inbound'))::int as inbound,
          (count(*) filter (where direction = 'outbound'))::int as outbound,
          (count(*) filter (where status = 'delivered'))::int as delivered,
          (count(*) filter (where status = 'failed'))::int as failed,
          (count(*) filter (where status = 'rejected'))::int as rejected,
          (count(*) filter (where status = 'quarantined'))::int as quarantined,
          (count(*) filter (where status = 'bounced'))::int as bounced
        from messages where ${where}
        group by 1 order by 1`,
  );
}

/** The domains with most messages received in [since, until). */
export function topDomains(
  db: Db,
  organizationId: string,
  range: { since: Date; until: Date },
  limit: number,
): Promise<{ domain_id: string; name: string; messages: number }[]> {
  return rowsOf(
    db,
    sql`select m.domain_id, d.name, count(*)::int as messages
        from ${messages} m join ${domains} d on d.id = m.domain_id and d.organization_id = m.organization_id
        where m.organization_id = ${organizationId}
          and m.received_at >= ${range.since.toISOString()}::timestamptz
          and m.received_at < ${range.until.toISOString()}::timestamptz
        group by m.domain_id, d.name
        order by messages desc, d.name
        limit ${limit}`,
  );
}

/** The aliases that routed most messages received in [since, until). */
export function topAliases(
  db: Db,
  organizationId: string,
  range: { since: Date; until: Date },
  limit: number,
): Promise<{ alias_id: string; address: string | null; messages: number }[]> {
  return rowsOf(
    db,
    sql`select r.target_id as alias_id, a.address, count(distinct r.message_id)::int as messages
        from ${messageRoutes} r
        join ${messages} m on m.id = r.message_id
        left join ${aliases} a on a.id = r.target_id and a.organization_id = r.organization_id
        where r.organization_id = ${organizationId} and r.route = 'alias' and r.target_id is not null
          and m.received_at >= ${range.since.toISOString()}::timestamptz
          and m.received_at < ${range.until.toISOString()}::timestamptz
        group by r.target_id, a.address
        order by messages desc, a.address
        limit ${limit}`,
  );
}

// ---- analyses ------------------------------------------------------------------------------------
// Written by mail intelligence (modules/intelligence) through the service; a re-analysis replaces a row.

export type NewMessageAnalysis = Omit<MessageAnalysisRow, 'analyzedAt'>;

/** Writes (or replaces) the analyses of a batch of messages in one statement. */
export async function saveAnalyses(tx: Db, rows: NewMessageAnalysis[]): Promise<void> {
  if (!rows.length) return;
  const a = messageAnalyses;
  await tx
    .insert(a)
    .values(rows)
    .onConflictDoUpdate({
      target: a.messageId,
      set: {
        ...Object.fromEntries(
          (Object.keys(rows[0]!) as (keyof NewMessageAnalysis)[])
            .filter((k) => k !== 'messageId' && k !== 'organizationId')
            .map((k) => [k, sql.raw(`excluded.${a[k].name}`)]),
        ),
        analyzedAt: sql`now()`,
      },
    });
}

export async function analysisOf(
  db: Db,
  organizationId: string,
  messageId: string,
): Promise<MessageAnalysisRow | undefined> {
  const [row] = await db
    .select()
    .from(messageAnalyses)
    .where(and(eq(messageAnalyses.organizationId, organizationId), eq(messageAnalyses.messageId, messageId)));
  return row;
}

/** What analysing a message reads besides its content. */
export interface AnalysisSource {
  id: string;
  organization_id: string;
  direction: Direction;
  blob_id: string;
  auth: MessageAuth | null;
}

export function analysisSourcesByIds(db: Db, ids: string[]): Promise<AnalysisSource[]> {
  if (!ids.length) return Promise.resolve([]);
  return rowsOf<AnalysisSource>(
    db,
    sql`select id, organization_id, direction, blob_id, auth
          from messages where id = any(${sql.param(ids)}::uuid[])`,
  );
}

/** Which messages a re-analysis covers: a mailbox, one of its folders, an external account, a time range. */
export interface AnalysisScope {
  mailboxId?: string;
  folderId?: string;
  accountId?: string;
  since?: Date;
  until?: Date;
}

function scopeWhere(organizationId: string, scope: AnalysisScope): SQL | undefined {
  return and(
    eq(messages.organizationId, organizationId),
    sql`${messages.direction} in ('inbound', 'synced')`,
    scope.accountId ? eq(messages.accountId, scope.accountId) : undefined,
    scope.since ? gte(messages.receivedAt, scope.since) : undefined,
    scope.until ? lt(messages.receivedAt, scope.until) : undefined,
    scope.mailboxId || scope.folderId
      ? sql`exists (select 1 from ${mailboxMessages} where ${mailboxMessages.messageId} = ${messages.id}
          and ${mailboxMessages.organizationId} = ${organizationId}
          ${scope.mailboxId ? sql`and ${mailboxMessages.mailboxId} = ${scope.mailboxId}` : sql``}
          ${scope.folderId ? sql`and ${mailboxMessages.folderId} = ${scope.folderId}` : sql``})`
      : undefined,
  );
}

export async function countInScope(db: Db, organizationId: string, scope: AnalysisScope): Promise<number> {
  const [row] = await db.select({ n: count() }).from(messages).where(scopeWhere(organizationId, scope));
  return row?.n ?? 0;
}

/** The next ids in the scope after `after` (in id order: a resumed walk continues where it stopped). */
export async function idsInScope(
  db: Db,
  organizationId: string,
  scope: AnalysisScope,
  after: string | null,
  limit: number,
): Promise<string[]> {
  const rows = await db
    .select({ id: messages.id })
    .from(messages)
    .where(and(scopeWhere(organizationId, scope), after ? gt(messages.id, after) : undefined))
    .orderBy(asc(messages.id))
    .limit(limit);
  return rows.map((r) => r.id);
}
