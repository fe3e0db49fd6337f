// The outbound queue's queries. The queue itself is the deliveries table (one row per recipient):
// workers claim due rows with SKIP LOCKED, so any number of them share it without a broker, and the
// results of many attempts are written back in one statement each.
import { uuidArrayLiteral } from '../../core/ids.ts';
import type { SQL } from 'drizzle-orm';
import type { Db } from '../../core/db.ts';
import { and, asc, count, desc, eq, inArray, sql } from '../../core/orm.ts';
import { bulkInsertStatement, executeTogether } from '../../core/bulk.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import { aliases } from '../aliases/tables.ts';
import { dkimKeys, domains } from '../domains/tables.ts';
import { messages } from '../messages/tables.ts';
import {
  type AttemptOutcome,
  type AttemptTls,
  bounces,
  type DeliveryRow,
  type DeliveryStatus,
  deliveries,
  deliveryAttempts,
  type HoldReason,
  type SendingPauseRow,
  sendingPauses,
  sendRequests,
} from './tables.ts';

type Rows<T> = { rows: T[] };

// ---- sending: who may send what -------------------------------------------------------------------

/** The organisation's domain of this name when it may send: active and its ownership proven. */
export async function sendingDomain(db: Db, organizationId: string, name: string) {
  const [row] = await db
    .select({ id: domains.id, name: domains.name })
    .from(domains)
    .where(
      and(
        eq(domains.organizationId, organizationId),
        eq(domains.name, name),
        eq(domains.isActive, true),
        eq(domains.ownershipVerified, true),
      ),
    );
  return row ?? null;
}

/** Whether an enabled alias at `address` delivers to `target` (a mailbox may send as such aliases). */
export async function aliasTargets(db: Db, organizationId: string, address: string, target: string) {
  const [row] = await db
    .select({ id: aliases.id })
    .from(aliases)
    .where(
      and(
        eq(aliases.organizationId, organizationId),
        eq(aliases.address, address),
        eq(aliases.isEnabled, true),
        sql`${target} = any(${aliases.targets})`,
      ),
    );
  return Boolean(row);
}

export async function signingKeysOf(db: Db, domainId: string) {
  return db
    .select({ selector: dkimKeys.selector, algorithm: dkimKeys.algorithm, privateKey: dkimKeys.privateKey })
    .from(dkimKeys)
    .where(and(eq(dkimKeys.domainId, domainId), eq(dkimKeys.state, 'active')))
    .orderBy(desc(dkimKeys.algorithm));
}

/** Whether `name` is a domain this installation receives mail for (any organisation). */
export async function isHostedDomain(db: Db, name: string): Promise<boolean> {
  const result = (await db.execute(sql`
    select exists (select 1 from domains where name = ${name} and is_active and ownership_verified) as hosted`)) as unknown as Rows<{
    hosted: boolean;
  }>;
  return result.rows[0]?.hosted ?? false;
}

// ---- send limits ------------------------------------------------------------------------------------

export interface CounterHit {
  organizationId: string;
  scope: 'mailbox_day' | 'organization_hour';
  subject: string;
  windowStart: Date;
  limit: number;
  n: number;
}

export const counterKey = (h: CounterHit) =>
  `${h.organizationId}\n${h.scope}\n${h.subject}\n${h.windowStart.toISOString()}`;

const counterJson = (hits: CounterHit[], withLimit = false) =>
  JSON.stringify(
    hits.map((h) => ({
      organization_id: h.organizationId,
      scope: h.scope,
      subject: h.subject,
      window_start: h.windowStart.toISOString(),
      n: h.n,
      ...(withLimit ? { limit: h.limit } : {}),
    })),
  );

/**
 * Locks the counters of `hits` (creating missing ones at zero) in key order, so that concurrent batches
 * wait for each other instead of deadlocking; their counts by counterKey. Inside a short transaction.
 */
export async function lockSendCounters(tx: Db, hits: CounterHit[]): Promise<Map<string, number>> {
  const json = counterJson([...new Map(hits.map((h) => [counterKey(h), h])).values()]);
  await tx.execute(sql`
    insert into send_counters (organization_id, scope, subject, window_start, count)
    select organization_id, scope, subject, window_start, 0
      from jsonb_to_recordset(${json}::jsonb) as r(organization_id uuid, scope text, subject text,
           window_start timestamptz)
    on conflict do nothing`);
  const result = (await tx.execute(sql`
    select c.organization_id, c.scope, c.subject, c.window_start, c.count
      from send_counters c
      join jsonb_to_recordset(${json}::jsonb) as r(organization_id uuid, scope text, subject text,
           window_start timestamptz)
        on (c.organization_id, c.scope, c.subject, c.window_start) = (r.organization_id, r.scope, r.subject, r.window_start)
     order by c.organization_id, c.scope, c.subject, c.window_start
       for update of c`)) as unknown as Rows<Record<string, any>>;
  return new Map(
    result.rows.map((r) => [
      counterKey({
        organizationId: r.organization_id,
        scope: r.scope,
        subject: r.subject,
        windowStart: new Date(r.window_start),
        limit: 0,
        n: 0,
      }),
      Number(r.count),
    ]),
  );
}

/**
 * The common case in one statement: when every counter exists and has room for its hit's n (the sum of a
 * batch's counts), adds them all and returns true; otherwise changes nothing and returns false, and the
 * caller decides message by message (lockSendCounters). The counters are locked in key order for the
 * statement alone, so batches queue behind one another for no longer than it runs, not for the round
 * trips of a transaction.
 */
export async function addIfAllFit(db: Db, hits: CounterHit[]): Promise<boolean> {
  const json = counterJson(hits, true);
  const result = (await db.execute(sql`
    with r as materialized (
      select * from jsonb_to_recordset(${json}::jsonb) as r(organization_id uuid, scope text, subject text,
             window_start timestamptz, n integer, "limit" bigint)
    ),
    locked as (
      select c.count::bigint + r.n <= r."limit" as fits
        from send_counters c
        join r on (c.organization_id, c.scope, c.subject, c.window_start) = (r.organization_id, r.scope, r.subject, r.window_start)
       order by c.organization_id, c.scope, c.subject, c.window_start
         for update of c
    ),
    verdict as materialized (
      select count(*) = (select count(*) from r) and coalesce(bool_and(fits), true) as ok from locked
    ),
    added as (
      update send_counters c set count = c.count + r.n
        from r
       where (c.organization_id, c.scope, c.subject, c.window_start) = (r.organization_id, r.scope, r.subject, r.window_start)
         and (select ok from verdict)
    )
    select ok from verdict`)) as unknown as Rows<{ ok: boolean }>;
  return result.rows[0]?.ok === true;
}

/** Adds each hit's n to its (locked) counter. */
export async function addToSendCounters(tx: Db, hits: CounterHit[]): Promise<void> {
  if (!hits.length) return;
  await tx.execute(sql`
    update send_counters c set count = c.count + r.n
      from jsonb_to_recordset(${counterJson(hits)}::jsonb) as r(organization_id uuid, scope text, subject text,
           window_start timestamptz, n integer)
     where (c.organization_id, c.scope, c.subject, c.window_start) = (r.organization_id, r.scope, r.subject, r.window_start)`);
}

/** Takes back counts of sends that did not happen (never below zero). */
export async function giveBackSendCounts(db: Db, hits: CounterHit[]): Promise<void> {
  if (!hits.length) return;
  const sums = new Map<string, CounterHit>();
  for (const h of hits) {
    const key = counterKey(h);
    const sum = sums.get(key);
    sums.set(key, sum ? { ...sum, n: sum.n + h.n } : { ...h });
  }
  await db.execute(sql`
    update send_counters c set count = greatest(0, c.count - r.n)
      from jsonb_to_recordset(${counterJson([...sums.values()])}::jsonb) as r(organization_id uuid, scope text,
           subject text, window_start timestamptz, n integer)
     where (c.organization_id, c.scope, c.subject, c.window_start) = (r.organization_id, r.scope, r.subject, r.window_start)`);
}

// ---- idempotency --------------------------------------------------------------------------------------

export async function sendRequest(db: Db, organizationId: string, key: string) {
  const [row] = await db
    .select()
    .from(sendRequests)
    .where(and(eq(sendRequests.organizationId, organizationId), eq(sendRequests.idempotencyKey, key)));
  return row ?? null;
}

export type NewSendRequest = Omit<typeof sendRequests.$inferInsert, 'createdAt'>;

/**
 * Records the answers to keyed requests; returns the keys recorded now (`organization\nkey`). A key
 * that a concurrent request is recording waits for it, and is not recorded again if it commits.
 */
export async function recordSendRequests(tx: Db, rows: NewSendRequest[]): Promise<Set<string>> {
  if (!rows.length) return new Set();
  const json = JSON.stringify(
    rows.map((r) => ({
      organization_id: r.organizationId,
      idempotency_key: r.idempotencyKey,
      request_hash: r.requestHash,
      message_id: r.messageId,
      response: r.response,
    })),
  );
  const result = (await tx.execute(sql`
    insert into send_requests (organization_id, idempotency_key, request_hash, message_id, response)
    select organization_id, idempotency_key, request_hash, message_id, response
      from jsonb_to_recordset(${json}::jsonb) as r(organization_id uuid, idempotency_key text, request_hash text,
           message_id uuid, response jsonb)
    on conflict do nothing
    returning organization_id, idempotency_key`)) as unknown as Rows<{
    organization_id: string;
    idempotency_key: string;
  }>;
  return new Set(result.rows.map((r) => `${r.organization_id}\n${r.idempotency_key}`));
}

export async function forgetSendRequests(db: Db, before: Date): Promise<number> {
  const result = (await db.execute(
    sql`delete from send_requests where created_at < ${before.toISOString()}`,
  )) as unknown as { affectedRows?: number; rowCount?: number };
  return result.affectedRows ?? result.rowCount ?? 0;
}

// ---- queueing ---------------------------------------------------------------------------------------

export interface NewOutboundMessage {
  id: string;
  organizationId: string;
  domainId: string;
  blobId: string;
  size: number;
  mailFrom: string;
  rcptTo: string[];
  remoteIp: string | null;
  helo: string | null;
  tls: boolean;
  messageIdHeader: string;
  fromAddress: string;
  fromName: string | null;
  toAddresses: string[];
  ccAddresses: string[];
  subject: string | null;
  sentAt: Date;
  hasAttachments: boolean;
  bodyText: string | null;
  tags: string[];
  /** List mail by its headers (Precedence: bulk or list, List-Id, List-Unsubscribe). */
  bulk: boolean;
  /** A valid RFC 8058 one-click unsubscribe (an https List-Unsubscribe and List-Unsubscribe-Post). */
  oneClickUnsubscribe: boolean;
}

/** The insert of outbound messages as the queue takes them (pending; a thread of their own). */
export function outboundMessagesInsert(rows: NewOutboundMessage[]): SQL | null {
  return bulkInsertStatement(
    'messages',
    {
      id: 'uuid',
      organization_id: 'uuid',
      domain_id: 'uuid',
      direction: 'text',
      status: 'text',
      blob_id: 'uuid',
      size: 'integer',
      mail_from: 'text',
      rcpt_to: 'text[]',
      remote_ip: 'text',
      helo: 'text',
      tls: 'boolean',
      message_id_header: 'text',
      thread_id: 'uuid',
      from_address: 'text',
      from_name: 'text',
      to_addresses: 'text[]',
      cc_addresses: 'text[]',
      subject: 'text',
      sent_at: 'timestamptz',
      has_attachments: 'boolean',
      tags: 'text[]',
      bulk: 'boolean',
      one_click_unsubscribe: 'boolean',
    },
    rows.map((r) => ({
      id: r.id,
      organization_id: r.organizationId,
      domain_id: r.domainId,
      direction: 'outbound',
      status: 'pending',
      blob_id: r.blobId,
      size: r.size,
      mail_from: r.mailFrom,
      rcpt_to: r.rcptTo,
      remote_ip: r.remoteIp,
      helo: r.helo,
      tls: r.tls,
      message_id_header: r.messageIdHeader,
      thread_id: r.id,
      from_address: r.fromAddress,
      from_name: r.fromName,
      to_addresses: r.toAddresses,
      cc_addresses: r.ccAddresses,
      subject: r.subject,
      sent_at: r.sentAt,
      has_attachments: r.hasAttachments,
      tags: r.tags,
      bulk: r.bulk,
      one_click_unsubscribe: r.oneClickUnsubscribe,
    })),
    { body_text: rows.map((r) => r.bodyText) },
  );
}

export type NewDelivery = typeof deliveries.$inferInsert;

/** Deliveries in one statement. */
export async function insertDeliveries(tx: Db, rows: NewDelivery[]): Promise<void> {
  await executeTogether(tx, [deliveriesInsert(rows)]);
}

/** The insert of deliveries (the queue's hot path: one row per recipient), as a statement. */
export function deliveriesInsert(rows: NewDelivery[]): SQL | null {
  return bulkInsertStatement(
    'deliveries',
    {
      id: 'uuid',
      organization_id: 'uuid',
      message_id: 'uuid',
      recipient: 'text',
      domain: 'text',
      status: 'text',
      hold_reason: 'text',
      hold_detail: 'text',
      next_attempt_at: 'timestamptz',
      counted_subject: 'text',
      counted_at: 'timestamptz',
    },
    rows.map((r) => ({
      id: r.id,
      organization_id: r.organizationId,
      message_id: r.messageId,
      recipient: r.recipient,
      domain: r.domain,
      status: r.status,
      hold_reason: r.holdReason ?? null,
      hold_detail: r.holdDetail ?? null,
      next_attempt_at: r.nextAttemptAt ?? new Date(),
      counted_subject: r.countedSubject ?? null,
      counted_at: r.countedAt ?? null,
    })),
  );
}

// ---- the dispatcher's side ---------------------------------------------------------------------------

/** A claimed delivery with what sending it needs from its message. */
export interface ClaimedDelivery {
  id: string;
  organizationId: string;
  messageId: string;
  recipient: string;
  domain: string;
  attempts: number;
  createdAt: Date;
  mailFrom: string;
  blobId: string;
  messageIdHeader: string | null;
  parentId: string | null;
  fromAddress: string | null;
  domainId: string | null;
  receivedAt: Date;
}

/** A due delivery the claim held instead of claiming: its sender is paused. */
export interface HeldAtClaim {
  id: string;
  organizationId: string;
  messageId: string;
  recipient: string;
  detail: string | null;
}

/**
 * Claims up to `limit` due deliveries for `lockMs`: their status becomes 'sending' and their attempt
 * count goes up, so a crash mid-attempt shows as an attempt and the claim expires by itself. Due
 * deliveries of a paused sender (sending_pauses: its domain, or its From address) are held instead
 * ('sender_paused'), whatever queued them (queued before the pause committed, a retry after a deferral):
 * the pause holds at the moment of sending. While nothing is paused that part is one look at an empty
 * table (a one-time filter).
 */
export async function claimDue(
  db: Db,
  limit: number,
  lockMs: number,
): Promise<{ claimed: ClaimedDelivery[]; held: HeldAtClaim[] }> {
  const result = (await db.execute(sql`
    with due as (
      select id from deliveries
       where status = 'queued' and next_attempt_at <= now()
       order by next_attempt_at
       limit ${limit}
       for update skip locked
    ), paused as materialized (
      select distinct on (d.id) d.id, p.reason
        from due
        join deliveries d on d.id = due.id
        join messages m on m.id = d.message_id
        join sending_pauses p on p.organization_id = d.organization_id
                             and (p.domain_id = m.domain_id or p.address = m.from_address)
       where exists (select 1 from sending_pauses)
       order by d.id, p.created_at
    ), held as (
      update deliveries d
         set status = 'held', hold_reason = 'sender_paused', hold_detail = paused.reason, updated_at = now()
        from paused where d.id = paused.id
      returning d.id, d.organization_id, d.message_id, d.recipient, d.hold_detail
    ), claimed as (
      update deliveries d
         set status = 'sending', attempts = d.attempts + 1,
             locked_until = now() + make_interval(secs => ${lockMs / 1000}), updated_at = now()
        from due where d.id = due.id and not exists (select 1 from paused where paused.id = due.id)
      returning d.id, d.organization_id, d.message_id, d.recipient, d.domain, d.attempts, d.created_at
    )
    select false as held, c.*, null::text as hold_detail, m.mail_from, m.blob_id, m.message_id_header,
           m.parent_id, m.from_address, m.domain_id, m.received_at
      from claimed c join messages m on m.id = c.message_id
    union all
    select true, h.id, h.organization_id, h.message_id, h.recipient, null, null, null, h.hold_detail, null,
           null, null, null, null, null, null
      from held h`)) as unknown as Rows<Record<string, any>>;
  const claimed: ClaimedDelivery[] = [];
  const held: HeldAtClaim[] = [];
  for (const r of result.rows) {
    if (r.held) {
      held.push({
        id: r.id,
        organizationId: r.organization_id,
        messageId: r.message_id,
        recipient: r.recipient,
        detail: r.hold_detail,
      });
      continue;
    }
    claimed.push({
      id: r.id,
      organizationId: r.organization_id,
      messageId: r.message_id,
      recipient: r.recipient,
      domain: r.domain,
      attempts: r.attempts,
      createdAt: new Date(r.created_at),
      mailFrom: r.mail_from,
      blobId: r.blob_id,
      messageIdHeader: r.message_id_header,
      parentId: r.parent_id,
      fromAddress: r.from_address,
      domainId: r.domain_id,
      receivedAt: new Date(r.received_at),
    });
  }
  return { claimed, held };
}

/** Queued recipients whose delivery is due, and the longest any has been due (back-pressure). */
export async function dueDepth(db: Db): Promise<{ depth: number; oldest: Date | null }> {
  const result = (await db.execute(sql`
    select count(*)::int as depth, min(next_attempt_at) as oldest
      from deliveries where status = 'queued' and next_attempt_at <= now()`)) as unknown as Rows<{
    depth: number;
    oldest: string | Date | null;
  }>;
  const row = result.rows[0];
  return { depth: row?.depth ?? 0, oldest: row?.oldest ? new Date(row.oldest) : null };
}

/** When the next delivery falls due (null: none queued), so an idle dispatcher sleeps just that long. */
export async function nextDueAt(db: Db): Promise<Date | null> {
  const result = (await db.execute(
    sql`select min(next_attempt_at) as at from deliveries where status = 'queued'`,
  )) as unknown as Rows<{ at: string | Date | null }>;
  const at = result.rows[0]?.at;
  return at ? new Date(at) : null;
}

/**
 * Puts deliveries whose claim expired (their worker died mid-attempt) back in the queue; with `all`,
 * every claim (a single-process installation starting up: no other worker can hold one).
 */
export async function releaseExpiredClaims(db: Db, all = false): Promise<number> {
  const result = (await db.execute(sql`
    update deliveries set status = 'queued', locked_until = null, next_attempt_at = now(), updated_at = now()
     where status = 'sending' and (${all} or locked_until < now())
    returning id`)) as unknown as Rows<{ id: string }>;
  return result.rows.length;
}

/** Keeps claims alive while their deliveries wait in this worker (for a connection, or the rate limit). */
export async function extendClaims(db: Db, claims: { id: string; attempts: number }[], lockMs: number) {
  if (!claims.length) return;
  await db.execute(sql`
    update deliveries d set locked_until = now() + make_interval(secs => ${lockMs / 1000})
      from jsonb_to_recordset(${JSON.stringify(claims)}::jsonb) as c(id uuid, attempts integer)
     where d.id = c.id and d.status = 'sending' and d.attempts = c.attempts`);
}

/** Hands claims back untried (this worker stops before starting them): the attempt does not count. */
export async function returnClaims(db: Db, claims: { id: string; attempts: number }[]): Promise<void> {
  if (!claims.length) return;
  await db.execute(sql`
    update deliveries d
       set status = 'queued', attempts = d.attempts - 1, locked_until = null, updated_at = now()
      from jsonb_to_recordset(${JSON.stringify(claims)}::jsonb) as c(id uuid, attempts integer)
     where d.id = c.id and d.status = 'sending' and d.attempts = c.attempts`);
}

/**
 * Puts claimed deliveries back untried until `until`, with `reason` as their last response (none of
 * their sending IPs may be used before then): the attempt does not count.
 */
export async function postponeClaims(
  db: Db,
  claims: { id: string; attempts: number }[],
  until: Date,
  reason: string,
): Promise<void> {
  if (!claims.length) return;
  await db.execute(sql`
    update deliveries d
       set status = 'queued', attempts = d.attempts - 1, locked_until = null,
           next_attempt_at = ${until.toISOString()}::timestamptz, last_code = null,
           last_response = ${reason}, updated_at = now()
      from jsonb_to_recordset(${JSON.stringify(claims)}::jsonb) as c(id uuid, attempts integer)
     where d.id = c.id and d.status = 'sending' and d.attempts = c.attempts`);
}

export interface AttemptRecord {
  id: string;
  organizationId: string;
  deliveryId: string;
  messageId: string;
  attemptedAt: Date;
  durationMs: number;
  outcome: AttemptOutcome;
  mxHost: string | null;
  ip: string | null;
  /** The local address the attempt left from (MAILROOM_OUTBOUND_IPS); null: the system chose. */
  sourceIp: string | null;
  port: number | null;
  tls: AttemptTls | null;
  mtaSts: string | null;
  code: number | null;
  enhancedCode: string | null;
  response: string;
}

export interface DeliveryUpdate {
  id: string;
  /** The claim's attempt number: a result only lands on the claim it belongs to. */
  attempts: number;
  status: DeliveryStatus;
  nextAttemptAt: Date | null;
  lastCode: number | null;
  lastResponse: string;
  finished: boolean;
}

/** Every attempt of a batch in one statement; the single parameter is the rows as JSON. */
export async function insertAttempts(tx: Db, rows: AttemptRecord[]): Promise<void> {
  if (!rows.length) return;
  const json = JSON.stringify(
    rows.map((r) => ({
      id: r.id,
      organization_id: r.organizationId,
      delivery_id: r.deliveryId,
      message_id: r.messageId,
      attempted_at: r.attemptedAt.toISOString(),
      duration_ms: r.durationMs,
      outcome: r.outcome,
      mx_host: r.mxHost,
      ip: r.ip,
      source_ip: r.sourceIp,
      port: r.port,
      tls: r.tls,
      mta_sts: r.mtaSts,
      code: r.code,
      enhanced_code: r.enhancedCode,
      response: r.response,
    })),
  );
  await tx.execute(sql`
    insert into delivery_attempts (id, organization_id, delivery_id, message_id, attempted_at, duration_ms,
                                   outcome, mx_host, ip, source_ip, port, tls, mta_sts, code, enhanced_code,
                                   response)
    select id, organization_id, delivery_id, message_id, attempted_at, duration_ms, outcome, mx_host, ip,
           source_ip, port, tls, mta_sts, code, enhanced_code, response
      from jsonb_to_recordset(${json}::jsonb) as r(id uuid, organization_id uuid, delivery_id uuid,
           message_id uuid, attempted_at timestamptz, duration_ms integer, outcome text, mx_host text,
           ip text, source_ip text, port integer, tls jsonb, mta_sts text, code integer, enhanced_code text,
           response text)`);
}

/** Writes a batch of results back; only rows still claimed ('sending') change. Returns those changed. */
export async function applyResults(tx: Db, updates: DeliveryUpdate[]): Promise<string[]> {
  if (!updates.length) return [];
  const json = JSON.stringify(
    updates.map((u) => ({
      id: u.id,
      attempts: u.attempts,
      status: u.status,
      next_attempt_at: u.nextAttemptAt?.toISOString() ?? null,
      last_code: u.lastCode,
      last_response: u.lastResponse,
      finished: u.finished,
    })),
  );
  const result = (await tx.execute(sql`
    update deliveries d
       set status = r.status, next_attempt_at = coalesce(r.next_attempt_at, d.next_attempt_at),
           last_code = r.last_code, last_response = r.last_response, locked_until = null,
           finished_at = case when r.finished then now() else null end, updated_at = now()
      from jsonb_to_recordset(${json}::jsonb) as r(id uuid, attempts integer, status text,
           next_attempt_at timestamptz, last_code integer, last_response text, finished boolean)
     where d.id = r.id and d.status = 'sending' and d.attempts = r.attempts
    returning d.id`)) as unknown as Rows<{ id: string }>;
  return result.rows.map((r) => r.id);
}

/**
 * Sets each message's status from its recipients: pending while any is queued, held or sending;
 * delivered when all were; bounced when any bounced; failed otherwise (expired or cancelled).
 */
export async function refreshMessageStatus(tx: Db, messageIds: string[]): Promise<void> {
  if (!messageIds.length) return;
  // One array literal (drizzle would spread an array into parameters): planned for a handful of ids,
  // so both tables are read through their indexes.
  await tx.execute(sql`
    update messages m
       set status = s.status, processed_at = coalesce(m.processed_at, now()), updated_at = now(),
           error = s.error
      from (
        select d.message_id,
               case when bool_or(d.status in ('queued', 'held', 'sending')) then 'pending'
                    when bool_and(d.status = 'delivered') then 'delivered'
                    when bool_or(d.status = 'bounced') then 'bounced'
                    else 'failed' end as status,
               string_agg(case when d.status in ('bounced', 'failed')
                               then d.recipient || ': ' || coalesce(d.last_response, d.status) end, '; ') as error
          from deliveries d
         where d.message_id = any(${uuidArrayLiteral(messageIds)}::uuid[])
         group by d.message_id
      ) s
     where m.id = s.message_id and (m.status is distinct from s.status or m.error is distinct from s.error)`);
}

// ---- paused senders ---------------------------------------------------------------------------------

/** A sender to pause: a domain (all its mail) or an address (mail whose From is that address). */
export type PausedSender = { domainId: string } | { address: string };

const senderMatch = (sender: PausedSender) =>
  'domainId' in sender ? sql`m.domain_id = ${sender.domainId}` : sql`m.from_address = ${sender.address}`;

export function pausesOf(db: Db, organizationId: string): Promise<SendingPauseRow[]> {
  return db.select().from(sendingPauses).where(eq(sendingPauses.organizationId, organizationId));
}

/** Records the pause; false when the sender was paused already. */
export async function insertPause(
  tx: Db,
  row: { id: string; organizationId: string; sender: PausedSender; reason: string },
): Promise<boolean> {
  const inserted = await tx
    .insert(sendingPauses)
    .values({
      id: row.id,
      organizationId: row.organizationId,
      domainId: 'domainId' in row.sender ? row.sender.domainId : null,
      address: 'address' in row.sender ? row.sender.address : null,
      reason: row.reason,
    })
    .onConflictDoNothing()
    .returning({ id: sendingPauses.id });
  return inserted.length > 0;
}

/** Removes the pause; false when the sender was not paused. */
export async function deletePause(tx: Db, organizationId: string, sender: PausedSender): Promise<boolean> {
  const deleted = await tx
    .delete(sendingPauses)
    .where(
      and(
        eq(sendingPauses.organizationId, organizationId),
        'domainId' in sender
          ? eq(sendingPauses.domainId, sender.domainId)
          : eq(sendingPauses.address, sender.address),
      ),
    )
    .returning({ id: sendingPauses.id });
  return deleted.length > 0;
}

/** Holds the sender's queued recipients ('sender_paused'); returns them. */
export async function holdQueuedOf(
  tx: Db,
  organizationId: string,
  sender: PausedSender,
  detail: string,
): Promise<{ id: string; messageId: string; recipient: string }[]> {
  const result = (await tx.execute(sql`
    update deliveries d
       set status = 'held', hold_reason = 'sender_paused', hold_detail = ${detail}, updated_at = now()
      from messages m
     where d.organization_id = ${organizationId} and d.status = 'queued'
       and m.id = d.message_id and ${senderMatch(sender)}
    returning d.id, d.message_id, d.recipient`)) as unknown as Rows<{
    id: string;
    message_id: string;
    recipient: string;
  }>;
  return result.rows.map((r) => ({ id: r.id, messageId: r.message_id, recipient: r.recipient }));
}

/**
 * Queues again the sender's recipients held for its pause, unless another pause still covers them (the
 * domain of a resumed mailbox, say); a scheduled one keeps its time. Returns how many.
 */
export async function releaseHeldOf(tx: Db, organizationId: string, sender: PausedSender): Promise<number> {
  const result = (await tx.execute(sql`
    update deliveries d
       set status = 'queued', hold_reason = null, hold_detail = null,
           next_attempt_at = greatest(d.next_attempt_at, now()), updated_at = now()
      from messages m
     where d.organization_id = ${organizationId} and d.hold_reason = 'sender_paused' and d.status = 'held'
       and m.id = d.message_id and ${senderMatch(sender)}
       and not exists (select 1 from sending_pauses p
                        where p.organization_id = d.organization_id
                          and (p.domain_id = m.domain_id or p.address = m.from_address))
    returning d.id`)) as unknown as Rows<{ id: string }>;
  return result.rows.length;
}

// ---- the queue API --------------------------------------------------------------------------------

export interface QueueFilter {
  status?: 'queued' | 'held' | 'sending';
  domain?: string;
  messageId?: string;
  holdReason?: HoldReason;
}

export async function listQueue(db: Db, organizationId: string, filter: QueueFilter, page: PageRequest) {
  const conditions: SQL[] = [
    eq(deliveries.organizationId, organizationId),
    filter.status
      ? eq(deliveries.status, filter.status)
      : inArray(deliveries.status, ['queued', 'held', 'sending']),
  ];
  if (filter.domain) conditions.push(eq(deliveries.domain, filter.domain));
  if (filter.messageId) conditions.push(eq(deliveries.messageId, filter.messageId));
  if (filter.holdReason) conditions.push(eq(deliveries.holdReason, filter.holdReason));
  const where = and(...conditions);
  const [rows, [{ total }]] = await Promise.all([
    db
      .select({
        delivery: deliveries,
        mailFrom: messages.mailFrom,
        subject: messages.subject,
        fromAddress: messages.fromAddress,
      })
      .from(deliveries)
      .innerJoin(messages, eq(messages.id, deliveries.messageId))
      .where(where)
      .orderBy(asc(deliveries.nextAttemptAt), asc(deliveries.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(deliveries).where(where),
  ]);
  return { rows, total };
}

export async function lockDeliveries(tx: Db, organizationId: string, ids: string[]): Promise<DeliveryRow[]> {
  if (!ids.length) return [];
  return tx
    .select()
    .from(deliveries)
    .where(and(eq(deliveries.organizationId, organizationId), inArray(deliveries.id, ids)))
    .for('update');
}

export async function deliveriesOfMessage(db: Db, organizationId: string, messageId: string) {
  return db
    .select()
    .from(deliveries)
    .where(and(eq(deliveries.organizationId, organizationId), eq(deliveries.messageId, messageId)))
    .orderBy(asc(deliveries.recipient));
}

export async function updateDeliveries(
  tx: Db,
  ids: string[],
  changes: Partial<typeof deliveries.$inferInsert>,
): Promise<void> {
  if (!ids.length) return;
  await tx
    .update(deliveries)
    .set({ ...changes, updatedAt: new Date() })
    .where(inArray(deliveries.id, ids));
}

export async function attemptsOf(db: Db, organizationId: string, messageId: string) {
  return db
    .select()
    .from(deliveryAttempts)
    .where(
      and(eq(deliveryAttempts.organizationId, organizationId), eq(deliveryAttempts.messageId, messageId)),
    )
    .orderBy(asc(deliveryAttempts.attemptedAt));
}

export async function bouncesOf(db: Db, organizationId: string, messageId: string) {
  return db
    .select()
    .from(bounces)
    .where(and(eq(bounces.organizationId, organizationId), eq(bounces.messageId, messageId)))
    .orderBy(asc(bounces.createdAt));
}

export async function insertBounces(tx: Db, rows: (typeof bounces.$inferInsert)[]): Promise<void> {
  if (rows.length) await tx.insert(bounces).values(rows);
}

/** The delivery a VERP bounce names (the message) for this recipient; the only one when unnamed. */
export async function deliveriesForBounce(tx: Db, messageId: string) {
  return tx.select().from(deliveries).where(eq(deliveries.messageId, messageId)).for('update');
}
