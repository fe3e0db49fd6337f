// The inbound pipeline's queries. The directory reads the routing tables (domains, mailboxes, aliases,
// rules) in one statement per recipient, because the MX asks it at RCPT time for every address.
import { uuidArrayLiteral } from '../../core/ids.ts';
import type { SQL } from 'drizzle-orm';
import { bulkInsert } from '../../core/bulk.ts';
import type { Db } from '../../core/db.ts';
import { binaryTextArray } from '../../core/pg-binary.ts';
import { and, asc, desc, eq, inArray, isNull, or, sql } from '../../core/orm.ts';
import { aliases } from '../aliases/tables.ts';
import { dkimKeys, domains } from '../domains/tables.ts';
import { notifyFolders } from '../mailboxes/changes.ts';
import { mailboxes } from '../mailboxes/tables.ts';
import { type MessageAuth, type MessageDetails, type MessageStatus, messages } from '../messages/tables.ts';
import { rules } from '../rules/tables.ts';
import { SEARCH_VECTOR_SQL, type SearchPiece, searchParameters } from '../messages/search-vector.ts';
import type { PreparedMessage } from './parse.ts';

type Rows<T> = { rows: T[] };

/** What a hosted address resolves to, as far as the RCPT check needs to know. */
export interface DirectoryEntry {
  organizationId: string;
  domainId: string;
  domain: string;
  catchAllTarget: string | null;
  dmarcRejectAction: 'reject' | 'quarantine' | null;
  mailbox: { id: string; isActive: boolean; quotaBytes: number; usedBytes: number } | null;
  aliasId: string | null;
  hasRule: boolean;
}

/** The hosted domain (active, its ownership proven) and what `localPart` resolves to there. */
export async function directoryEntry(
  db: Db,
  domain: string,
  localPart: string,
): Promise<DirectoryEntry | null> {
  const result = (await db.execute(sql`
    select d.id as domain_id, d.organization_id, d.name, d.catch_all_target,
           d.settings->>'inbound_dmarc_reject' as dmarc_reject_action,
           m.id as mailbox_id, m.is_active as mailbox_active, m.quota_bytes, m.used_bytes,
           (select a.id from aliases a
             where a.domain_id = d.id and a.local_part = ${localPart} and a.is_enabled
               and (a.expires_at is null or a.expires_at > now())) as alias_id,
           exists (select 1 from rules r
             where r.domain_id = d.id and r.is_enabled
               and (r.recipient is null or r.recipient = ${localPart})) as has_rule
      from domains d
      left join mailboxes m on m.domain_id = d.id and m.local_part = ${localPart}
     where d.name = ${domain} and d.ownership_verified and d.is_active`)) as unknown as {
    rows: Record<string, any>[];
  };
  const row = result.rows[0];
  if (!row) return null;
  return {
    organizationId: row.organization_id,
    domainId: row.domain_id,
    domain: row.name,
    catchAllTarget: row.catch_all_target,
    dmarcRejectAction: row.dmarc_reject_action,
    mailbox: row.mailbox_id
      ? {
          id: row.mailbox_id,
          isActive: row.mailbox_active,
          quotaBytes: Number(row.quota_bytes),
          usedBytes: Number(row.used_bytes),
        }
      : null,
    aliasId: row.alias_id,
    hasRule: row.has_rule,
  };
}

export type NewMessage = typeof messages.$inferInsert;

export async function insertMessages(tx: Db, rows: NewMessage[]): Promise<void> {
  if (rows.length) await tx.insert(messages).values(rows);
}

/** A message as the MX accepted it: the envelope and the authentication verdicts. */
export interface AcceptedMessage {
  id: string;
  organizationId: string;
  domainId: string;
  blobId: string;
  size: number;
  mailFrom: string;
  rcptTo: string[];
  remoteIp: string;
  helo: string;
  tls: boolean;
  auth: MessageAuth;
}

/**
 * Inserts accepted messages and their places in the processing queue in one statement whose single
 * parameter is the rows as JSON (the MX's hot path, where building a many-row insert column by column
 * costs more than the insert), after `blobs` (an insert of their raw bytes) when given: the one
 * statement is then the whole commit.
 */
export async function insertAccepted(db: Db, rows: AcceptedMessage[], blobs?: SQL): Promise<void> {
  const json = JSON.stringify(
    rows.map((r) => ({
      id: r.id,
      organization_id: r.organizationId,
      domain_id: r.domainId,
      blob_id: r.blobId,
      size: r.size,
      mail_from: r.mailFrom,
      rcpt_to: r.rcptTo,
      remote_ip: r.remoteIp,
      helo: r.helo,
      tls: r.tls,
      auth: r.auth,
    })),
  );
  // Workers in other processes look at the queue when this commits (identical notifications of one
  // transaction are delivered once).
  await db.execute(sql`
    with ${blobs ? sql`stored as (${blobs}), ` : sql``}accepted as (
      insert into messages (id, organization_id, domain_id, direction, status, blob_id, size, mail_from, rcpt_to,
                            remote_ip, helo, tls, auth)
      select id, organization_id, domain_id, 'inbound', 'pending', blob_id, size, mail_from, rcpt_to,
             remote_ip, helo, tls, auth
        from jsonb_to_recordset(${json}::jsonb) as r(id uuid, organization_id uuid, domain_id uuid, blob_id uuid,
             size integer, mail_from text, rcpt_to text[], remote_ip text, helo text, tls boolean, auth jsonb)
      returning id, organization_id
    ), queued as (
      insert into inbound_queue (message_id, organization_id) select id, organization_id from accepted
    )
    select pg_notify(${INBOUND_CHANNEL}, '')`);
}

// ---- the processing queue ------------------------------------------------------------------------------

/** NOTIFY channel: accepted messages were committed to the processing queue. */
export const INBOUND_CHANNEL = 'mailroom_inbound';

/** A claimed message: what processing needs of its row, and which attempt this is. */
export interface ClaimedMessage {
  id: string;
  organizationId: string;
  domainId: string | null;
  blobId: string;
  size: number;
  mailFrom: string;
  rcptTo: string[];
  auth: MessageAuth | null;
  attempts: number;
}

/**
 * Claims up to `limit` due messages for `leaseMs` (counting an attempt), oldest first. A claim that
 * is neither finished nor given back falls due again when its lease runs out.
 */
export async function claimQueued(db: Db, limit: number, leaseMs: number): Promise<ClaimedMessage[]> {
  const result = (await db.execute(sql`
    with due as (
      select message_id from inbound_queue where due_at <= now() order by due_at limit ${limit}
      for update skip locked
    ), claimed as (
      update inbound_queue q
         set due_at = now() + make_interval(secs => ${leaseMs / 1000}), attempts = q.attempts + 1
        from due where q.message_id = due.message_id
      returning q.message_id, q.attempts
    )
    select m.id, m.organization_id, m.domain_id, m.blob_id, m.size, m.mail_from, m.rcpt_to, m.auth, c.attempts
      from claimed c join messages m on m.id = c.message_id
     order by m.received_at, m.id`)) as unknown as Rows<Record<string, any>>;
  return result.rows.map((r) => ({
    id: r.id,
    organizationId: r.organization_id,
    domainId: r.domain_id,
    blobId: r.blob_id,
    size: r.size,
    mailFrom: r.mail_from,
    rcptTo: r.rcpt_to,
    auth: r.auth,
    attempts: r.attempts,
  }));
}

/** When the next queued message falls due (null: none), so an idle processor sleeps just that long. */
export async function nextQueuedAt(db: Db): Promise<Date | null> {
  const result = (await db.execute(sql`select min(due_at) as at from inbound_queue`)) as unknown as Rows<{
    at: string | Date | null;
  }>;
  const at = result.rows[0]?.at;
  return at ? new Date(at) : null;
}

/** Keeps the claims of messages still being processed from expiring. */
export async function extendClaims(db: Db, ids: string[], leaseMs: number): Promise<void> {
  if (!ids.length) return;
  await db.execute(sql`
    update inbound_queue set due_at = now() + make_interval(secs => ${leaseMs / 1000})
     where message_id = any(${uuidArrayLiteral(ids)}::uuid[])`);
}

/** A failed attempt: the message is tried again after `delayMs`. */
export async function deferQueued(db: Db, id: string, delayMs: number, error: string): Promise<void> {
  await db.execute(sql`
    update inbound_queue set due_at = now() + make_interval(secs => ${delayMs / 1000}), last_error = ${error}
     where message_id = ${id}`);
}

/** Takes every message off the queue (inside the transaction that finishes them). */
export async function dequeue(tx: Db, ids: string[]): Promise<void> {
  if (!ids.length) return;
  await tx.execute(sql`delete from inbound_queue where message_id = any(${uuidArrayLiteral(ids)}::uuid[])`);
}

/** Every claim made due at once: a single-process installation starting up, where no other worker can hold one. */
export async function releaseClaims(db: Db): Promise<number> {
  const result = (await db.execute(
    sql`update inbound_queue set due_at = now() where due_at > now() returning message_id`,
  )) as unknown as Rows<unknown>;
  return result.rows.length;
}

/** How many accepted messages wait for processing, and since when the oldest has waited. */
export async function queueDepth(db: Db): Promise<{ depth: number; oldest: Date | null }> {
  const result = (await db.execute(
    sql`select count(*)::int as depth, min(queued_at) as oldest from inbound_queue`,
  )) as unknown as Rows<{ depth: number; oldest: string | Date | null }>;
  const row = result.rows[0];
  return { depth: row?.depth ?? 0, oldest: row?.oldest ? new Date(row.oldest) : null };
}

export interface ProcessedFields {
  id: string;
  status: MessageStatus;
  error: string | null;
  messageIdHeader: string | null;
  inReplyTo: string | null;
  references: string[];
  threadId: string;
  fromAddress: string | null;
  fromName: string | null;
  toAddresses: string[];
  ccAddresses: string[];
  subject: string | null;
  sentAt: Date | null;
  hasAttachments: boolean;
  /** UTF-8, without NUL (parse.ts makes every text storable). */
  bodyText: Uint8Array;
  details: MessageDetails;
  /** The search vector's pieces (messages/search-vector.ts). */
  search: SearchPiece[];
}

/** What processing records of a parsed message, with the outcome decided for it. */
export function processedFieldsOf(
  id: string,
  prepared: PreparedMessage,
  outcome: { status: MessageStatus; error: string | null; threadId: string },
): ProcessedFields {
  const { parsed } = prepared;
  return {
    id,
    ...outcome,
    messageIdHeader: parsed.messageId,
    inReplyTo: parsed.inReplyTo,
    references: parsed.references,
    fromAddress: parsed.fromAddress,
    fromName: parsed.fromName,
    toAddresses: parsed.to,
    ccAddresses: parsed.cc,
    subject: parsed.subject,
    sentAt: parsed.date,
    hasAttachments: parsed.hasAttachments,
    bodyText: prepared.text,
    details: parsed.details,
    search: prepared.search,
  };
}

/**
 * Records the outcome of processing for a batch, in one statement; the search vector is built in the
 * same statement. Returns the ids it finished: a message that another run finished first is not among
 * them, and the caller must leave it alone (nothing is delivered twice).
 */
export async function finishProcessing(tx: Db, rows: ProcessedFields[]): Promise<Set<string>> {
  if (!rows.length) return new Set();
  const search = searchParameters(rows.map((f) => f.search));
  const json = JSON.stringify(
    rows.map((f, i) => ({
      n: i + 1,
      id: f.id,
      status: f.status,
      error: f.error,
      message_id_header: f.messageIdHeader,
      in_reply_to: f.inReplyTo,
      references: f.references,
      thread_id: f.threadId,
      from_address: f.fromAddress,
      from_name: f.fromName,
      to_addresses: f.toAddresses,
      cc_addresses: f.ccAddresses,
      subject: f.subject,
      sent_at: f.sentAt?.toISOString() ?? null,
      has_attachments: f.hasAttachments,
      details: f.details,
      search: search.pieces[i],
    })),
  );
  // The texts, most of the bytes, go as a binary array of their own rather than inside the JSON: neither
  // engine parses them.
  const texts = binaryTextArray(rows.map((f) => f.bodyText));
  // Written as SQL: the search vector is not a column the ORM knows (it is never read back).
  // The rows are read once (materialised: as the inner side of a join the function would parse the whole
  // document again for every message), and the messages are found through their primary key (`= any`)
  // whatever the planner guesses of how many are unprocessed.
  const result = (await tx.execute(sql`
    with v as materialized (select ${sql.param(search.vectors)}::tsvector[] as vectors),
    r as materialized (
      select r.*, (${sql.param(texts)}::text[])[r.n] as body_text
        from jsonb_to_recordset(${json}::jsonb) as r(n integer, id uuid, status text, error text,
             message_id_header text, in_reply_to text, "references" text[], thread_id uuid, from_address text,
             from_name text, to_addresses text[], cc_addresses text[], subject text, sent_at timestamptz,
             has_attachments boolean, details jsonb, search jsonb)
    )
    update messages m
       set status = r.status, error = r.error, message_id_header = r.message_id_header,
           in_reply_to = r.in_reply_to, "references" = r."references", thread_id = r.thread_id,
           from_address = r.from_address, from_name = r.from_name, to_addresses = r.to_addresses,
           cc_addresses = r.cc_addresses, subject = r.subject, sent_at = r.sent_at,
           has_attachments = r.has_attachments, body_text = r.body_text, details = r.details,
           search = ${sql.raw(SEARCH_VECTOR_SQL('r.search', '(select vectors from v)'))}, processed_at = now(), updated_at = now()
      from r
     where m.id = r.id and m.id = any(array(select id from r)) and m.processed_at is null
    returning m.id`)) as unknown as Rows<{ id: string }>;
  return new Set(result.rows.map((r) => r.id));
}

/** Gives up on a message whose processing failed every attempt, so it shows as failed, not stuck. */
export async function markFailed(tx: Db, id: string, error: string): Promise<boolean> {
  const result = (await tx.execute(sql`
    update messages set status = 'failed', error = ${error}, thread_id = coalesce(thread_id, id),
           search = ''::tsvector, processed_at = now(), updated_at = now()
     where id = ${id} and processed_at is null
    returning id`)) as unknown as Rows<unknown>;
  return result.rows.length === 1;
}

export interface ThreadQuestion {
  organizationId: string;
  messageIdHeader: string | null;
  /** In-Reply-To and References. */
  parents: string[];
}

/**
 * For each question, in one statement: the thread of a known message it replies to or cites, and the
 * thread of a known message that replies to or cites it (a reply that arrived first).
 */
export async function threadsOf(
  db: Db,
  questions: ThreadQuestion[],
): Promise<{ byParent: string | null; byReply: string | null }[]> {
  if (!questions.length) return [];
  const json = JSON.stringify(
    questions.map((q, i) => ({
      i,
      organization_id: q.organizationId,
      message_id_header: q.messageIdHeader,
      parents: q.parents,
    })),
  );
  // Each lookup has its own index (no OR across two indexes, which plans as a scan of every message).
  // The References lookup reads all its matches (a LIMIT 1 there plans as a scan that hopes to stop
  // early and, finding nothing, reads the whole table), and checks the organisation on what it found
  // (as a condition it can plan as reading all of the organisation's messages from another index).
  const result = (await db.execute(sql`
    select q.i,
           case when cardinality(q.parents) > 0 then
             (select m.thread_id from messages m
               where m.organization_id = q.organization_id and m.message_id_header = any(q.parents)
                 and m.thread_id is not null limit 1) end as by_parent,
           case when q.message_id_header is not null then coalesce(
             (select m.thread_id from messages m
               where m.organization_id = q.organization_id and m.in_reply_to = q.message_id_header
                 and m.thread_id is not null limit 1),
             (select (array_agg(m.thread_id) filter (where m.organization_id = q.organization_id))[1]
                from messages m
               where m."references" @> array[q.message_id_header] and m.thread_id is not null)) end as by_reply
      from jsonb_to_recordset(${json}::jsonb) as q(i integer, organization_id uuid, message_id_header text,
           parents text[])`)) as unknown as Rows<{
    i: number;
    by_parent: string | null;
    by_reply: string | null;
  }>;
  const answers = questions.map(() => ({ byParent: null as string | null, byReply: null as string | null }));
  for (const r of result.rows) answers[r.i] = { byParent: r.by_parent, byReply: r.by_reply };
  return answers;
}

export async function rulesFor(db: Db, domainIds: string[]) {
  if (!domainIds.length) return [];
  return db
    .select()
    .from(rules)
    .where(and(inArray(rules.domainId, domainIds), eq(rules.isEnabled, true)))
    .orderBy(asc(rules.priority), asc(rules.createdAt));
}

/** Counts rule matches (rule id → messages), locking the rules in id order so batches cannot deadlock. */
export async function countRuleMatches(tx: Db, matches: Map<string, number>): Promise<void> {
  if (!matches.size) return;
  const ids = [...matches.keys()].sort();
  await tx.execute(
    sql`select id from rules where id = any(${uuidArrayLiteral(ids)}::uuid[]) order by id for update`,
  );
  const json = JSON.stringify(ids.map((id) => ({ id, n: matches.get(id) })));
  await tx.execute(sql`
    update rules set match_count = match_count + r.n, last_matched_at = now()
      from jsonb_to_recordset(${json}::jsonb) as r(id uuid, n integer)
     where rules.id = r.id`);
}

export interface LocalTarget {
  domainId: string;
  catchAllTarget: string | null;
  mailboxId: string | null;
  mailboxActive: boolean | null;
  alias: { id: string; targets: string[] } | null;
}

/** A hosted address of the same organisation, for expanding alias and rule targets. */
export async function localTarget(
  db: Db,
  organizationId: string,
  domain: string,
  localPart: string,
): Promise<LocalTarget | null> {
  const [row] = await db
    .select({
      domainId: domains.id,
      catchAllTarget: domains.catchAllTarget,
      mailboxId: mailboxes.id,
      mailboxActive: mailboxes.isActive,
      aliasId: aliases.id,
      aliasTargets: aliases.targets,
    })
    .from(domains)
    .leftJoin(mailboxes, and(eq(mailboxes.domainId, domains.id), eq(mailboxes.localPart, localPart)))
    .leftJoin(
      aliases,
      and(
        eq(aliases.domainId, domains.id),
        eq(aliases.localPart, localPart),
        eq(aliases.isEnabled, true),
        or(isNull(aliases.expiresAt), sql`${aliases.expiresAt} > now()`),
      ),
    )
    .where(
      and(
        eq(domains.organizationId, organizationId),
        eq(domains.name, domain),
        eq(domains.ownershipVerified, true),
        eq(domains.isActive, true),
      ),
    );
  if (!row) return null;
  const { aliasId, aliasTargets, ...rest } = row;
  return { ...rest, alias: aliasId && aliasTargets ? { id: aliasId, targets: aliasTargets } : null };
}

/** The key ARC seals are made with: the domain's active DKIM key. */
export async function activeKeyOf(db: Db, domainId: string) {
  const [row] = await db
    .select()
    .from(dkimKeys)
    .where(and(eq(dkimKeys.domainId, domainId), eq(dkimKeys.state, 'active')))
    // RSA first: ARC verifiers widely support it; Ed25519 support is rare.
    .orderBy(desc(dkimKeys.algorithm))
    .limit(1);
  return row ?? null;
}

export interface NewRoute {
  id: string;
  organizationId: string;
  messageId: string;
  recipient: string;
  route: string;
  targetId: string | null;
  action: string;
  destination: string | null;
  detail: string | null;
}

export async function insertRoutes(tx: Db, rows: NewRoute[]): Promise<void> {
  await bulkInsert(
    tx,
    'message_routes',
    {
      id: 'uuid',
      organization_id: 'uuid',
      message_id: 'uuid',
      recipient: 'text',
      route: 'text',
      target_id: 'uuid',
      action: 'text',
      destination: 'text',
      detail: 'text',
    },
    rows.map((r) => ({
      id: r.id,
      organization_id: r.organizationId,
      message_id: r.messageId,
      recipient: r.recipient,
      route: r.route,
      target_id: r.targetId,
      action: r.action,
      destination: r.destination,
      detail: r.detail,
    })),
  );
}

/** A message to file in a mailbox folder. */
export interface Filing {
  id: string;
  organizationId: string;
  mailboxId: string;
  folder: string;
  messageId: string;
  size: number;
}

/**
 * Files a batch of messages: each folder's next UIDs and modseqs are taken in one step (gap-free: they
 * commit or roll back with the messages) and each mailbox's used bytes grow once. A folder that does
 * not exist (a rule's, deleted since) gives way to INBOX: accepted mail is never dropped. The mailbox
 * rows are locked first, in id order, and a folder's row only by a transaction that holds its mailbox:
 * two batches filing into the same mailboxes wait for each other instead of deadlocking. Called last in
 * its transaction, so the locks are held only until the commit right after. A message already in a
 * mailbox is not filed there again (one delivered copy per mailbox). The folders are announced at
 * commit (IMAP's IDLE).
 */
export async function fileInMailboxes(tx: Db, filings: Filing[]): Promise<void> {
  if (!filings.length) return;
  const seen = new Set<string>();
  const rows: (Filing & { o: number })[] = [];
  for (const f of filings) {
    if (seen.has(`${f.mailboxId}:${f.messageId}`)) continue;
    seen.add(`${f.mailboxId}:${f.messageId}`);
    rows.push({ ...f, o: rows.length });
  }
  const mailboxIds = [...new Set(rows.map((r) => r.mailboxId))].sort();
  await tx.execute(
    sql`select id from mailboxes where id = any(${uuidArrayLiteral(mailboxIds)}::uuid[]) order by id for update`,
  );
  const messagesJson = JSON.stringify(
    rows.map((r) => ({
      id: r.id,
      organization_id: r.organizationId,
      mailbox_id: r.mailboxId,
      name: r.folder,
      message_id: r.messageId,
      size: r.size,
      o: r.o,
    })),
  );
  await tx.execute(sql`
    with requested as (
      select r.*, coalesce(f.name, 'INBOX') as folder
        from jsonb_to_recordset(${messagesJson}::jsonb) as r(id uuid, organization_id uuid, mailbox_id uuid,
             name text, message_id uuid, size integer, o integer)
        left join mailbox_folders f on f.mailbox_id = r.mailbox_id and f.name = r.name
    ), numbered as (
      select q.*, (row_number() over (partition by q.mailbox_id, q.folder order by q.o) - 1)::int as k
        from requested q
    ), wanted as (
      select mailbox_id, folder as name, count(*)::int as n from numbered group by mailbox_id, folder
    ), taken as (
      update mailbox_folders f set uid_next = f.uid_next + w.n, highest_modseq = f.highest_modseq + w.n
        from wanted w where f.mailbox_id = w.mailbox_id and f.name = w.name
      returning f.id, f.mailbox_id, f.name, f.uid_next - w.n as first_uid, f.highest_modseq - w.n as first_modseq
    ), filed as (
      insert into mailbox_messages (id, organization_id, mailbox_id, folder_id, message_id, uid, modseq, size,
                                    delivered)
      select r.id, r.organization_id, r.mailbox_id, t.id, r.message_id, t.first_uid + r.k, t.first_modseq + r.k + 1,
             r.size, true
        from numbered r join taken t on t.mailbox_id = r.mailbox_id and t.name = r.folder
      on conflict (mailbox_id, message_id) where delivered do nothing
      returning mailbox_id, size
    ), used as (
      update mailboxes m set used_bytes = m.used_bytes + f.bytes
        from (select mailbox_id, sum(size) as bytes from filed group by mailbox_id) f
       where m.id = f.mailbox_id
    )
    ${notifyFolders(sql`select id from taken`)}`);
}
