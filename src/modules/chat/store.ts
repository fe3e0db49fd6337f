// The queries of mail chat. Chat reads the message store (messages, their copies in hosted mailboxes'
// folders and in external accounts' folders) and never writes it; it writes its own turns and the
// organisation's token count. Every query is scoped by organisation, and every query over mail by the
// caller's scope (the mailboxes and accounts it may read), which the service works out.
//
// A scope has two halves that are queried apart and joined with UNION ALL: hosted mail is in scope
// through a copy in one of the scope's mailboxes (mailbox_messages), synced mail through its account
// (messages.account_id, a synced message is never filed in a hosted mailbox). Each half is a plain
// "newest first" query the planner can drive from whichever index fits (a sender's mail, the full-text
// index, a folder's unread copies, the organisation's newest messages) — an OR across the halves would
// leave it only a scan.
import type { SQL } from 'drizzle-orm';
import type { Db } from '../../core/db.ts';
import { and, desc, eq, sql } from '../../core/orm.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import { type ChatTurnRow, chatTurns } from './tables.ts';

async function rowsOf<T>(db: Db, query: SQL): Promise<T[]> {
  return ((await db.execute(query)) as unknown as { rows: T[] }).rows;
}

const uuids = (ids: string[]) => sql`${sql.param(ids)}::uuid[]`;
const texts = (values: string[]) => sql`${sql.param(values)}::text[]`;
const instant = (d: Date) => sql`${d.toISOString()}::timestamptz`;

// ---- whose mail ------------------------------------------------------------------------------------

export interface ScopeMailbox {
  id: string;
  address: string;
  display_name: string;
}

export interface ScopeAccount {
  id: string;
  address: string;
  name: string;
  created_by: string | null;
}

export interface ScopeFolder {
  id: string;
  /** The mailbox's or the account's id. */
  owner_id: string;
  kind: 'mailbox' | 'account';
  name: string;
  special_use: string | null;
}

export interface ScopeRows {
  /** The asking user (null for an API key). */
  user: { email: string; name: string } | null;
  mailboxes: ScopeMailbox[];
  accounts: ScopeAccount[];
  /** The folders of those mailboxes and accounts. */
  folders: ScopeFolder[];
}

/**
 * In one statement (a turn's first read): the asking user, and either the mailboxes at the user's own
 * address and the accounts they connected (`own`), or the mailbox and account named by id — each with
 * its folders. Whether the caller may read what is named is the service's decision.
 */
export async function scope(
  db: Db,
  organizationId: string,
  ask: { userId: string | null; own: boolean; mailboxId: string | null; accountId: string | null },
): Promise<ScopeRows> {
  const userId = ask.userId ?? '00000000-0000-0000-0000-000000000000';
  const mailboxWhere = ask.own
    ? sql`lower(address) = (select lower(email) from u)`
    : sql`id = ${ask.mailboxId ?? userId}::uuid`;
  const accountWhere = ask.own
    ? sql`created_by = ${userId}::uuid`
    : sql`id = ${ask.accountId ?? userId}::uuid`;
  const [row] = await rowsOf<ScopeRows>(
    db,
    sql`with u as (select email, name from users where id = ${userId}::uuid),
        b as (select id, address, display_name from mailboxes
               where organization_id = ${organizationId} and ${mailboxWhere}),
        a as (select id, address, name, created_by from mail_accounts
               where organization_id = ${organizationId} and ${accountWhere}),
        f as (select id, mailbox_id as owner_id, 'mailbox' as kind, name, special_use from mailbox_folders
               where organization_id = ${organizationId} and mailbox_id in (select id from b)
              union all
              select id, account_id, 'account', path, special_use from account_folders
               where organization_id = ${organizationId} and account_id in (select id from a))
        select (select row_to_json(u) from u) as user,
               (select coalesce(json_agg(b order by address, id), '[]') from b) as mailboxes,
               (select coalesce(json_agg(a order by address, id), '[]') from a) as accounts,
               (select coalesce(json_agg(f), '[]') from f) as folders`,
  );
  const json = <T>(v: unknown): T => (typeof v === 'string' ? JSON.parse(v) : v) as T;
  return {
    user: json(row!.user),
    mailboxes: json(row!.mailboxes),
    accounts: json(row!.accounts),
    folders: json(row!.folders),
  };
}

// ---- which mail ------------------------------------------------------------------------------------

/** Addresses (lower case) and whole domains (every address at them or their subdomains). */
export interface AddressSet {
  addresses: string[];
  domains: string[];
}

export interface MailFilter {
  organizationId: string;
  mailboxIds: string[];
  accountIds: string[];
  /** Only copies in these folders; null: any folder but the excluded ones. */
  folderIds: string[] | null;
  /** Folders whose copies do not count (Junk and Trash, unless asked for by name). */
  excludedFolderIds: string[];
  unread?: boolean;
  flagged?: boolean;
  /** Every set must match (people of different roles); within a set any address does. */
  senders: AddressSet[];
  recipients: AddressSet[];
  /** The person is the sender or a recipient. */
  participants: AddressSet[];
  /** The scope's own addresses (lower case): mail from them was sent, other mail received. */
  self: string[];
  direction?: 'received' | 'sent';
  after?: Date;
  before?: Date;
  /** A to_tsquery('simple', …) text over the search vector. */
  tsquery?: string;
  hasAttachment?: boolean;
  /** The category the analysis gave the message (promotions, social, …). */
  category?: string;
}

function domainMatch(column: SQL, domain: string): SQL {
  const escaped = domain.replace(/[\\%_]/g, (c) => `\\${c}`);
  return sql`(${column} like ${`%@${escaped}`} or ${column} like ${`%.${escaped}`})`;
}

function addressMatch(column: SQL, set: AddressSet): SQL {
  const alternatives: SQL[] = [];
  if (set.addresses.length) alternatives.push(sql`${column} = any(${texts(set.addresses)})`);
  for (const domain of set.domains) alternatives.push(domainMatch(column, domain));
  return alternatives.length ? sql`(${sql.join(alternatives, sql` or `)})` : sql`false`;
}

const senderMatch = (set: AddressSet) => addressMatch(sql`lower(m.from_address)`, set);
const recipientMatch = (set: AddressSet) =>
  sql`exists (select 1 from unnest(m.to_addresses || m.cc_addresses) as r(address)
               where ${addressMatch(sql`lower(r.address)`, set)})`;

/** What a message must be, whichever half of the scope holds it. */
function messageWhere(f: MailFilter): SQL {
  const parts: SQL[] = [sql`m.organization_id = ${f.organizationId}`];
  for (const set of f.senders) parts.push(senderMatch(set));
  for (const set of f.recipients) parts.push(recipientMatch(set));
  for (const set of f.participants) parts.push(sql`(${senderMatch(set)} or ${recipientMatch(set)})`);
  if (f.direction === 'sent') parts.push(sql`lower(m.from_address) = any(${texts(f.self)})`);
  if (f.direction === 'received')
    parts.push(sql`not (lower(coalesce(m.from_address, '')) = any(${texts(f.self)}))`);
  if (f.after) parts.push(sql`m.received_at >= ${instant(f.after)}`);
  if (f.before) parts.push(sql`m.received_at < ${instant(f.before)}`);
  if (f.tsquery) parts.push(sql`m.search @@ to_tsquery('simple', ${f.tsquery})`);
  if (f.hasAttachment) parts.push(sql`m.has_attachments`);
  if (f.category)
    parts.push(
      sql`exists (select 1 from message_analyses a where a.message_id = m.id and a.category = ${f.category})`,
    );
  return sql.join(parts, sql` and `);
}

/** Conditions on a copy (alias `c`): its folder and flags. */
function copyConditions(f: MailFilter): SQL[] {
  const parts: SQL[] = [];
  if (f.folderIds) parts.push(sql`c.folder_id = any(${uuids(f.folderIds)})`);
  else if (f.excludedFolderIds.length) parts.push(sql`c.folder_id <> all(${uuids(f.excludedFolderIds)})`);
  // The same predicate as the partial index mailbox_messages_unread.
  if (f.unread) parts.push(sql`not ('\\Seen' = any (c.flags))`);
  if (f.flagged) parts.push(sql`'\\Flagged' = any (c.flags)`);
  return parts;
}

/**
 * Whether the copy's conditions pick few copies by themselves (unread or flagged mail: the partial index
 * mailbox_messages_unread, or few rows), so that a query is best started from the copies.
 */
const selectiveCopies = (f: MailFilter) => Boolean(f.unread || f.flagged);

/**
 * The test for a copy in scope. When the copies are the selective side it is a semi-join the planner
 * may start from; otherwise `offset 0` keeps it a per-message probe of mailbox_messages_message (or
 * account_messages_message), so the messages' own indexes (sender, full text, date) drive the query. As
 * a semi-join the planner would hash every copy of the mailbox to test a few hundred matches: a
 * sequential read of 100,000 copies (0.4 s on the embedded engine) where the probes take a few ms.
 */
function copyExists(table: SQL, conditions: SQL[], f: MailFilter): SQL {
  const where = sql.join(conditions, sql` and `);
  return selectiveCopies(f)
    ? sql`exists (select 1 from ${table} c where ${where})`
    : sql`exists (select 1 from ${table} c where ${where} offset 0)`;
}

/** Hosted mail in scope: a copy in one of the mailboxes that meets the folder and flag conditions. */
function mailboxHalf(f: MailFilter): SQL {
  return copyExists(
    sql`mailbox_messages`,
    [
      sql`c.message_id = m.id`,
      sql`c.organization_id = ${f.organizationId}`,
      sql`c.mailbox_id = any(${uuids(f.mailboxIds)})`,
      ...copyConditions(f),
    ],
    f,
  );
}

/** Synced mail in scope: its account, and a copy in the account's folders when folders or flags matter. */
function accountHalf(f: MailFilter): SQL {
  const conditions = copyConditions(f);
  const inAccount = sql`m.account_id = any(${uuids(f.accountIds)})`;
  if (!conditions.length) return inAccount;
  return sql`${inAccount} and ${copyExists(
    sql`account_messages`,
    [sql`c.message_id = m.id`, sql`c.account_id = any(${uuids(f.accountIds)})`, ...conditions],
    f,
  )}`;
}

/** The scope's halves, each `select <columns> from messages m where …` (nothing when the scope is empty). */
function halves(f: MailFilter, columns: SQL, extra?: SQL, tail?: SQL): SQL[] {
  const where = extra ? sql`${messageWhere(f)} and ${extra}` : messageWhere(f);
  const out: SQL[] = [];
  if (f.mailboxIds.length)
    out.push(sql`select ${columns} from messages m where ${where} and ${mailboxHalf(f)} ${tail ?? sql``}`);
  if (f.accountIds.length)
    out.push(sql`select ${columns} from messages m where ${where} and ${accountHalf(f)} ${tail ?? sql``}`);
  return out;
}

const unionAll = (parts: SQL[]) =>
  parts.length === 1
    ? parts[0]!
    : sql.join(
        parts.map((p) => sql`(${p})`),
        sql` union all `,
      );

export interface MessageRow {
  id: string;
  subject: string | null;
  from_address: string | null;
  from_name: string | null;
  to_addresses: string[];
  cc_addresses: string[];
  received_at: Date;
  thread_id: string | null;
  message_id_header: string | null;
  has_attachments: boolean;
  /** The start of the text body (enough for snippets, summaries and sentiment). */
  body: string;
}

/** Characters of each body read for snippets, summaries and sentiment. */
const BODY_CHARS = 4000;

const messageColumns = sql`m.id, m.subject, m.from_address, m.from_name, m.to_addresses, m.cc_addresses,
  m.received_at, m.thread_id, m.message_id_header, m.has_attachments,
  coalesce(left(m.body_text, ${BODY_CHARS}), '') as body`;

const messageOf = (r: MessageRow & { received_at: Date | string }): MessageRow => ({
  ...r,
  received_at: new Date(r.received_at),
});

/**
 * The newest `limit` messages that match, and how many match, counted up to `cap` (past it the count
 * is `cap`): each half stops after `cap` matches, newest first, so a broad question costs no more than
 * a narrow one.
 */
export async function matches(
  db: Db,
  f: MailFilter,
  limit: number,
  cap: number,
): Promise<{ rows: MessageRow[]; total: number }> {
  const parts = halves(
    f,
    sql`m.id, m.received_at`,
    undefined,
    sql`order by m.received_at desc, m.id desc limit ${cap}`,
  );
  if (!parts.length) return { rows: [], total: 0 };
  const rows = await rowsOf<MessageRow & { total: number }>(
    db,
    sql`with hits as materialized (
          select id, received_at from (${unionAll(parts)}) u order by received_at desc, id desc limit ${cap}
        ), top as (
          select id, received_at from hits order by received_at desc, id desc limit ${limit}
        )
        select ${messageColumns}, (select count(*) from hits)::int as total
          from top join messages m on m.id = top.id
         order by top.received_at desc, top.id desc`,
  );
  return { rows: rows.map(messageOf), total: rows[0]?.total ?? 0 };
}

/** The messages with these ids, in scope, oldest first. */
export async function byIds(db: Db, f: MailFilter, ids: string[]): Promise<MessageRow[]> {
  const parts = halves(f, messageColumns, sql`m.id = any(${uuids(ids)})`);
  if (!parts.length || !ids.length) return [];
  const rows = await rowsOf<MessageRow>(
    db,
    sql`select * from (${unionAll(parts)}) x order by received_at, id`,
  );
  return rows.map(messageOf);
}

/** How many messages match, exactly. */
export async function count(db: Db, f: MailFilter): Promise<number> {
  const parts = halves(f, sql`count(*)::int as n`);
  if (!parts.length) return 0;
  const rows = await rowsOf<{ n: number }>(db, unionAll(parts));
  return rows.reduce((sum, r) => sum + Number(r.n), 0);
}

/** Subjects without their reply and forward prefixes (Re:, Fwd:, AW:, SV: …), lower case. */
export const BASE_SUBJECT_PATTERN = '^(\\s*(re|fwd?|aw|wg|sv|vs|antw|tr|rif)\\s*(\\[\\d+\\])?\\s*:\\s*)+';
const baseSubject = (column: SQL) =>
  sql`lower(btrim(regexp_replace(coalesce(${column}, ''), ${BASE_SUBJECT_PATTERN}, '', 'i')))`;

/**
 * A thread in scope, oldest first: the messages of `threadId`, and the scope's own messages whose base
 * subject is `subject` (a reply sent through submission, or filed by a mail client, starts a thread of
 * its own; its subject still names the thread). `words` is a tsquery of the subject's words, which
 * narrows the subject comparison to the messages that hold them.
 */
export async function thread(
  db: Db,
  f: MailFilter,
  threadId: string | null,
  subject: string,
  words: string | null,
  limit: number,
): Promise<MessageRow[]> {
  const sameThread = threadId ? sql`m.thread_id = ${threadId}` : sql`false`;
  const sameSubject =
    subject && words
      ? sql`(m.search @@ to_tsquery('simple', ${words}) and ${baseSubject(sql`m.subject`)} = ${subject})`
      : sql`false`;
  const parts = halves(f, messageColumns, sql`(${sameThread} or ${sameSubject})`);
  if (!parts.length) return [];
  const rows = await rowsOf<MessageRow>(
    db,
    sql`select * from (${unionAll(parts)}) x order by received_at desc, id desc limit ${limit}`,
  );
  return rows.map(messageOf).reverse();
}

export interface SenderCount {
  address: string;
  name: string | null;
  messages: number;
  last_message_id: string;
}

/** The senders of most matching messages, with the newest message of each. */
export async function topSenders(db: Db, f: MailFilter, limit: number): Promise<SenderCount[]> {
  const parts = halves(
    f,
    sql`m.id, lower(m.from_address) as address, nullif(m.from_name, '') as name, m.received_at`,
    sql`m.from_address is not null`,
  );
  if (!parts.length) return [];
  return rowsOf<SenderCount>(
    db,
    sql`select address, (array_agg(name order by received_at desc) filter (where name is not null))[1] as name,
               count(*)::int as messages, (array_agg(id order by received_at desc, id desc))[1] as last_message_id
          from (${unionAll(parts)}) x
         group by address
         order by messages desc, address
         limit ${limit}`,
  );
}

/** Matching messages per local date (YYYY-MM-DD in `timeZone`); days without mail are absent. */
export function volumeByDay(
  db: Db,
  f: MailFilter,
  timeZone: string,
): Promise<{ date: string; messages: number }[]> {
  const parts = halves(f, sql`m.received_at`);
  if (!parts.length) return Promise.resolve([]);
  return rowsOf(
    db,
    sql`select to_char(received_at at time zone ${timeZone}, 'YYYY-MM-DD') as date, count(*)::int as messages
          from (${unionAll(parts)}) x group by 1 order by 1`,
  );
}

export interface ResponsePair {
  received_id: string;
  reply_id: string;
  received_at: Date;
  seconds: number;
}

/**
 * Each received message that matches `received` with the first of the scope's own messages (`sent`)
 * that answers it: a later message in its thread, one whose In-Reply-To names it, or one to its sender
 * under the same base subject (replies sent through submission or filed by a client are threads of
 * their own). Unanswered messages are absent. Set-based: both sides are read once and joined by hash.
 */
export async function responsePairs(
  db: Db,
  received: MailFilter,
  sent: MailFilter,
  newest?: number,
): Promise<ResponsePair[]> {
  const r = halves(
    received,
    sql`m.id, m.received_at, m.thread_id, m.message_id_header, lower(m.from_address) as sender,
        ${baseSubject(sql`m.subject`)} as topic`,
    undefined,
    newest === undefined ? undefined : sql`order by m.received_at desc, m.id desc limit ${newest}`,
  );
  const o = halves(
    sent,
    sql`m.id, m.received_at, m.thread_id, m.in_reply_to, ${baseSubject(sql`m.subject`)} as topic,
        (select coalesce(array_agg(lower(a)), '{}') from unnest(m.to_addresses || m.cc_addresses) a) as rcpt`,
  );
  if (!r.length || !o.length) return [];
  const rows = await rowsOf<ResponsePair & { received_at: Date | string; seconds: number | string }>(
    db,
    sql`with r as materialized (${unionAll(r)}),
        o as materialized (${unionAll(o)}),
        answers as (
          select r.id, o.id as reply_id, o.received_at from r join o on o.thread_id = r.thread_id
           where o.received_at > r.received_at
          union all
          select r.id, o.id, o.received_at from r join o on o.in_reply_to = r.message_id_header
           where o.received_at > r.received_at
          union all
          select r.id, o.id, o.received_at from r join o on o.topic = r.topic
           where r.topic <> '' and o.received_at > r.received_at and r.sender = any (o.rcpt)
        ),
        firsts as (
          select id, (array_agg(reply_id order by received_at, reply_id))[1] as reply_id, min(received_at) as replied_at
            from answers group by id
        )
        select r.id as received_id, f.reply_id, r.received_at,
               extract(epoch from f.replied_at - r.received_at)::float8 as seconds
          from r join firsts f on f.id = r.id
         order by r.received_at desc, r.id desc`,
  );
  return rows.map((p) => ({ ...p, received_at: new Date(p.received_at), seconds: Number(p.seconds) }));
}

/**
 * Among the newest `sample` received messages that match `received`, the newest `limit` that no message
 * of `sent` answers.
 */
export async function unanswered(
  db: Db,
  received: MailFilter,
  sent: MailFilter,
  sample: number,
  limit: number,
): Promise<MessageRow[]> {
  const recent = await matches(db, received, sample, sample);
  if (!recent.rows.length) return [];
  const answered = new Set((await responsePairs(db, received, sent, sample)).map((p) => p.received_id));
  return recent.rows.filter((m) => !answered.has(m.id)).slice(0, limit);
}

export interface Correspondent {
  address: string;
  name: string | null;
  messages: number;
}

/**
 * The people who wrote the scope's newest mail (per folder its newest `perFolder` copies, per account
 * its newest `perFolder` messages), most frequent first: whom the user is likely to mention by name.
 */
export function correspondents(
  db: Db,
  organizationId: string,
  folderIds: string[],
  accountIds: string[],
  perFolder: number,
  limit: number,
): Promise<Correspondent[]> {
  return rowsOf<Correspondent>(
    db,
    // The ids as one array: the messages are then read by their primary key, where a join would have
    // the planner hash the whole messages table for a few thousand rows.
    sql`select lower(m.from_address) as address,
               (array_agg(nullif(m.from_name, '') order by m.received_at desc)
                  filter (where nullif(m.from_name, '') is not null))[1] as name,
               count(*)::int as messages
          from messages m
         where m.id = any(array(
                 select c.message_id from unnest(${uuids(folderIds)}) as f(id)
                  cross join lateral (select message_id from mailbox_messages c
                                       where c.folder_id = f.id order by c.uid desc limit ${perFolder}) c
                 union all
                 select a.id from unnest(${uuids(accountIds)}) as x(id)
                  cross join lateral (select id from messages m where m.account_id = x.id
                                       order by m.received_at desc limit ${perFolder}) a))
           and m.organization_id = ${organizationId} and m.from_address is not null
         group by 1 order by messages desc, address limit ${limit}`,
  );
}

/**
 * Who a name may be, among the senders and recipients of matching mail that holds the name's words
 * (`words`, a tsquery of prefixes: names and addresses are in every message's search vector): each
 * address with the name it wrote under and how many of the newest `sample` matches it is in.
 */
export async function peopleNamed(
  db: Db,
  f: MailFilter,
  words: string,
  sample: number,
): Promise<{ address: string; name: string | null; side: 'from' | 'to'; messages: number }[]> {
  const parts = halves(
    { ...f, tsquery: words },
    sql`m.from_address, m.from_name, m.to_addresses || m.cc_addresses as recipients, m.received_at`,
    undefined,
    sql`order by m.received_at desc limit ${sample}`,
  );
  if (!parts.length) return [];
  return rowsOf(
    db,
    sql`with hits as materialized (select * from (${unionAll(parts)}) u)
        select lower(from_address) as address, max(nullif(from_name, '')) as name, 'from' as side,
               count(*)::int as messages
          from hits where from_address is not null group by 1
        union all
        select lower(r.address), null, 'to', count(*)::int
          from hits cross join unnest(hits.recipients) as r(address) group by 1`,
  );
}

export interface AnalysisRow {
  message_id: string;
  sentiment: number;
  sentiment_label: 'negative' | 'neutral' | 'positive';
  category: string;
}

/** What the analysis worker found in these messages (those it has analysed). */
export function analyses(db: Db, organizationId: string, ids: string[]): Promise<AnalysisRow[]> {
  if (!ids.length) return Promise.resolve([]);
  return rowsOf<AnalysisRow>(
    db,
    sql`select message_id, sentiment, sentiment_label, category from message_analyses
         where organization_id = ${organizationId} and message_id = any(${uuids(ids)})`,
  );
}

/** The categories of matching analysed messages, most common first. */
export function categories(
  db: Db,
  f: MailFilter,
  sample: number,
): Promise<{ category: string; messages: number }[]> {
  const parts = halves(f, sql`m.id`, undefined, sql`order by m.received_at desc, m.id desc limit ${sample}`);
  if (!parts.length) return Promise.resolve([]);
  return rowsOf(
    db,
    sql`select a.category, count(*)::int as messages
          from (${unionAll(parts)}) x join message_analyses a on a.message_id = x.id
         where a.organization_id = ${f.organizationId}
         group by 1 order by messages desc, a.category`,
  );
}

// ---- the organisation's model budget ---------------------------------------------------------------

/** The organisation's own daily token budget, or null for the installation's. */
export async function dailyTokenBudget(db: Db, organizationId: string): Promise<number | null> {
  const [row] = await rowsOf<{ llm_daily_tokens: number | null }>(
    db,
    sql`select llm_daily_tokens from intelligence_settings where organization_id = ${organizationId}`,
  );
  return row?.llm_daily_tokens ?? null;
}

/**
 * Takes `tokens` from the day's budget when they fit in what is left, atomically (two requests at once
 * cannot both take the last of it); false when they do not fit.
 */
export async function reserveTokens(
  db: Db,
  organizationId: string,
  day: string,
  tokens: number,
  budget: number,
): Promise<boolean> {
  if (tokens > budget) return false;
  const rows = await rowsOf<{ tokens: number }>(
    db,
    sql`insert into llm_usage (organization_id, day, tokens) values (${organizationId}, ${day}::date, ${tokens})
        on conflict (organization_id, day) do update set tokens = llm_usage.tokens + excluded.tokens
         where llm_usage.tokens + excluded.tokens <= ${budget}
        returning tokens`,
  );
  return rows.length > 0;
}

/** Corrects the day's count once the real cost is known (`delta` may be negative). */
export async function adjustTokens(
  db: Db,
  organizationId: string,
  day: string,
  delta: number,
): Promise<void> {
  if (delta === 0) return;
  await db.execute(
    sql`update llm_usage set tokens = greatest(0, tokens + ${delta})
         where organization_id = ${organizationId} and day = ${day}::date`,
  );
}

// ---- turns -----------------------------------------------------------------------------------------

export async function insertTurn(db: Db, row: typeof chatTurns.$inferInsert): Promise<ChatTurnRow> {
  const [inserted] = await db.insert(chatTurns).values(row).returning();
  return inserted!;
}

export type TurnOwner = { userId: string } | { apiKeyId: string };

/** The owner's turns in the organisation, newest first. */
export async function turns(
  db: Db,
  organizationId: string,
  owner: TurnOwner,
  page: PageRequest,
): Promise<{ rows: ChatTurnRow[]; total: number }> {
  const where = and(
    eq(chatTurns.organizationId, organizationId),
    'userId' in owner ? eq(chatTurns.userId, owner.userId) : eq(chatTurns.apiKeyId, owner.apiKeyId),
  );
  const [rows, [counted]] = await Promise.all([
    db
      .select()
      .from(chatTurns)
      .where(where)
      .orderBy(desc(chatTurns.createdAt), desc(chatTurns.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ n: sql<number>`count(*)::int` }).from(chatTurns).where(where),
  ]);
  return { rows, total: Number(counted?.n ?? 0) };
}
