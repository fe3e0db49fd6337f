import type { SQL } from 'drizzle-orm';
import type { Db } from '../../core/db.ts';
import { type PageRequest, offsetOf } from '../../core/pagination.ts';
import { and, asc, count, desc, eq, sql } from '../../core/orm.ts';
import {
  type SmsConversationRow,
  type SmsInboundRow,
  type SmsKeyword,
  type SmsMessageRow,
  type SmsOptOutRow,
  type SmsRouteRow,
  type SmsSettingsRow,
  type SmsStatus,
  type SmsThrottleRow,
  smsAccountThrottles,
  smsConversations,
  smsMessages,
  smsOptOuts,
  smsRoutes,
  smsSettings,
} from './tables.ts';

type Rows<T> = { rows: T[] };

const json = (value: unknown) => JSON.stringify(value);

/** How far along a status is: a receipt only ever moves a message forward. */
const rank = (column: SQL) =>
  sql`(case ${column} when 'queued' then 0 when 'scheduled' then 0 when 'sending' then 1 when 'sent' then 2 else 3 end)`;

/** Every column of a message, as the raw statements return them (snake_case). */
const MESSAGE_COLUMNS = sql.raw(
  [
    'id',
    'organization_id',
    'kind',
    'to_number',
    'country',
    'sender',
    'body',
    'encoding',
    'characters',
    'parts',
    'tags',
    'status',
    'route_id',
    'provider_account_id',
    'failover_account_id',
    'on_failover',
    'campaign_id',
    'campaign_recipient_id',
    'send_at',
    'attempts',
    'next_attempt_at',
    'locked_until',
    'submitted_at',
    'provider',
    'provider_id',
    'error_code',
    'error_message',
    'price_amount::text as price_amount',
    'price_currency',
    'idempotency_key',
    'request_hash',
    'created_at',
    'updated_at',
    'sent_at',
    'delivered_at',
    'failed_at',
  ]
    .map((c) => `m.${c}`)
    .join(', '),
);

const date = (v: unknown) => (v === null || v === undefined ? null : new Date(v as string));

/** A message row from a raw statement. */
export function messageOf(r: Record<string, any>): SmsMessageRow {
  return {
    id: r.id,
    organizationId: r.organization_id,
    kind: r.kind,
    toNumber: r.to_number,
    country: r.country,
    sender: r.sender,
    body: r.body,
    encoding: r.encoding,
    characters: Number(r.characters),
    parts: Number(r.parts),
    tags: r.tags ?? [],
    status: r.status,
    routeId: r.route_id,
    providerAccountId: r.provider_account_id,
    failoverAccountId: r.failover_account_id,
    onFailover: r.on_failover,
    campaignId: r.campaign_id,
    campaignRecipientId: r.campaign_recipient_id,
    sendAt: date(r.send_at),
    attempts: Number(r.attempts),
    nextAttemptAt: date(r.next_attempt_at)!,
    lockedUntil: date(r.locked_until),
    submittedAt: date(r.submitted_at),
    provider: r.provider,
    providerId: r.provider_id,
    errorCode: r.error_code,
    errorMessage: r.error_message,
    priceAmount: r.price_amount === null || r.price_amount === undefined ? null : String(r.price_amount),
    priceCurrency: r.price_currency,
    idempotencyKey: r.idempotency_key,
    requestHash: r.request_hash,
    createdAt: date(r.created_at)!,
    updatedAt: date(r.updated_at)!,
    sentAt: date(r.sent_at),
    deliveredAt: date(r.delivered_at),
    failedAt: date(r.failed_at),
  };
}

// ---- settings, throttles, routes --------------------------------------------------------------------------

export async function settingsOf(db: Db, organizationId: string): Promise<SmsSettingsRow | undefined> {
  const [row] = await db.select().from(smsSettings).where(eq(smsSettings.organizationId, organizationId));
  return row;
}

export async function upsertSettings(
  db: Db,
  row: Omit<SmsSettingsRow, 'updatedAt'>,
): Promise<SmsSettingsRow> {
  const { organizationId, ...values } = row;
  const [saved] = await db
    .insert(smsSettings)
    .values(row)
    .onConflictDoUpdate({ target: smsSettings.organizationId, set: { ...values, updatedAt: sql`now()` } })
    .returning();
  return saved;
}

export function throttlesOf(db: Db, organizationId: string): Promise<SmsThrottleRow[]> {
  return db
    .select()
    .from(smsAccountThrottles)
    .where(eq(smsAccountThrottles.organizationId, organizationId))
    .orderBy(asc(smsAccountThrottles.providerAccountId));
}

export async function throttleOf(db: Db, providerAccountId: string): Promise<SmsThrottleRow | undefined> {
  const [row] = await db
    .select()
    .from(smsAccountThrottles)
    .where(eq(smsAccountThrottles.providerAccountId, providerAccountId));
  return row;
}

export async function replaceThrottles(
  tx: Db,
  organizationId: string,
  rows: SmsThrottleRow[],
): Promise<void> {
  await tx.delete(smsAccountThrottles).where(eq(smsAccountThrottles.organizationId, organizationId));
  if (rows.length) await tx.insert(smsAccountThrottles).values(rows);
}

export function routesOf(db: Db, organizationId: string): Promise<SmsRouteRow[]> {
  return db
    .select()
    .from(smsRoutes)
    .where(eq(smsRoutes.organizationId, organizationId))
    .orderBy(asc(smsRoutes.prefix));
}

export async function routeById(
  db: Db,
  organizationId: string,
  id: string,
): Promise<SmsRouteRow | undefined> {
  const [row] = await db
    .select()
    .from(smsRoutes)
    .where(and(eq(smsRoutes.organizationId, organizationId), eq(smsRoutes.id, id)));
  return row;
}

export async function insertRoute(db: Db, row: Omit<SmsRouteRow, 'createdAt' | 'updatedAt'>) {
  const [saved] = await db.insert(smsRoutes).values(row).returning();
  return saved;
}

export async function updateRoute(
  db: Db,
  organizationId: string,
  id: string,
  changes: Partial<Pick<SmsRouteRow, 'name' | 'prefix' | 'providerAccountId' | 'failoverAccountId'>>,
): Promise<SmsRouteRow | undefined> {
  const [row] = await db
    .update(smsRoutes)
    .set({ ...changes, updatedAt: sql`now()` })
    .where(and(eq(smsRoutes.organizationId, organizationId), eq(smsRoutes.id, id)))
    .returning();
  return row;
}

export async function deleteRoute(db: Db, organizationId: string, id: string): Promise<boolean> {
  const rows = await db
    .delete(smsRoutes)
    .where(and(eq(smsRoutes.organizationId, organizationId), eq(smsRoutes.id, id)))
    .returning({ id: smsRoutes.id });
  return rows.length > 0;
}

// ---- queueing ---------------------------------------------------------------------------------------------

export type NewSmsMessage = Pick<
  SmsMessageRow,
  | 'id'
  | 'organizationId'
  | 'kind'
  | 'toNumber'
  | 'country'
  | 'sender'
  | 'body'
  | 'encoding'
  | 'characters'
  | 'parts'
  | 'tags'
  | 'status'
  | 'routeId'
  | 'providerAccountId'
  | 'failoverAccountId'
  | 'campaignId'
  | 'campaignRecipientId'
  | 'sendAt'
  | 'nextAttemptAt'
  | 'idempotencyKey'
  | 'requestHash'
>;

/**
 * Inserts messages in one statement; returns the rows inserted. A message whose idempotency key or
 * campaign recipient is already queued is left out (its earlier message stands).
 */
export async function insertMessages(tx: Db, rows: NewSmsMessage[]): Promise<SmsMessageRow[]> {
  if (!rows.length) return [];
  const data = rows.map((r) => ({
    id: r.id,
    organization_id: r.organizationId,
    kind: r.kind,
    to_number: r.toNumber,
    country: r.country,
    sender: r.sender,
    body: r.body,
    encoding: r.encoding,
    characters: r.characters,
    parts: r.parts,
    tags: r.tags,
    status: r.status,
    route_id: r.routeId,
    provider_account_id: r.providerAccountId,
    failover_account_id: r.failoverAccountId,
    campaign_id: r.campaignId,
    campaign_recipient_id: r.campaignRecipientId,
    send_at: r.sendAt?.toISOString() ?? null,
    next_attempt_at: r.nextAttemptAt.toISOString(),
    idempotency_key: r.idempotencyKey,
    request_hash: r.requestHash,
  }));
  const { rows: inserted } = (await tx.execute(sql`
    insert into sms_messages as m (id, organization_id, kind, to_number, country, sender, body, encoding,
           characters, parts, tags, status, route_id, provider_account_id, failover_account_id, campaign_id,
           campaign_recipient_id, send_at, next_attempt_at, idempotency_key, request_hash)
    select r.id, r.organization_id, r.kind, r.to_number, r.country, r.sender, r.body, r.encoding, r.characters,
           r.parts, array(select jsonb_array_elements_text(r.tags)), r.status, r.route_id, r.provider_account_id,
           r.failover_account_id, r.campaign_id, r.campaign_recipient_id, r.send_at, r.next_attempt_at,
           r.idempotency_key, r.request_hash
      from jsonb_to_recordset(${json(data)}::jsonb) as r(id uuid, organization_id uuid, kind text,
           to_number text, country text, sender text, body text, encoding text, characters integer,
           parts smallint, tags jsonb, status text, route_id uuid, provider_account_id uuid,
           failover_account_id uuid, campaign_id uuid, campaign_recipient_id uuid, send_at timestamptz,
           next_attempt_at timestamptz, idempotency_key text, request_hash text)
    on conflict do nothing
    returning ${MESSAGE_COLUMNS}`)) as Rows<Record<string, any>>;
  return inserted.map(messageOf);
}

export async function messageByKey(db: Db, organizationId: string, key: string) {
  const [row] = await db
    .select()
    .from(smsMessages)
    .where(and(eq(smsMessages.organizationId, organizationId), eq(smsMessages.idempotencyKey, key)));
  return row ?? null;
}

export async function messagesByRecipients(
  db: Db,
  organizationId: string,
  recipientIds: string[],
): Promise<SmsMessageRow[]> {
  if (!recipientIds.length) return [];
  const { rows } = (await db.execute(sql`
    select ${MESSAGE_COLUMNS} from sms_messages m
     where m.organization_id = ${organizationId}
       and m.campaign_recipient_id = any(${sql.param(recipientIds)}::uuid[])`)) as Rows<Record<string, any>>;
  return rows.map(messageOf);
}

export async function messageById(db: Db, organizationId: string, id: string) {
  const [row] = await db
    .select()
    .from(smsMessages)
    .where(and(eq(smsMessages.organizationId, organizationId), eq(smsMessages.id, id)));
  return row ?? null;
}

export interface MessageFilter {
  status?: SmsStatus[];
  to?: string;
  campaignId?: string;
  providerAccountId?: string;
  tag?: string;
  createdAfter?: Date;
  createdBefore?: Date;
}

export async function listMessages(db: Db, organizationId: string, filter: MessageFilter, page: PageRequest) {
  const where: SQL[] = [sql`m.organization_id = ${organizationId}`];
  if (filter.status?.length) where.push(sql`m.status = any(${sql.param(filter.status)}::text[])`);
  if (filter.to) where.push(sql`m.to_number = ${filter.to}`);
  if (filter.campaignId) where.push(sql`m.campaign_id = ${filter.campaignId}`);
  if (filter.providerAccountId) where.push(sql`m.provider_account_id = ${filter.providerAccountId}`);
  if (filter.tag) where.push(sql`m.tags @> array[${filter.tag}]::text[]`);
  if (filter.createdAfter) where.push(sql`m.created_at >= ${filter.createdAfter.toISOString()}`);
  if (filter.createdBefore) where.push(sql`m.created_at < ${filter.createdBefore.toISOString()}`);
  const condition = sql.join(where, sql` and `);
  const [{ rows }, totals] = await Promise.all([
    db.execute(sql`
      select ${MESSAGE_COLUMNS} from sms_messages m where ${condition}
       order by m.id desc limit ${page.page_size} offset ${offsetOf(page)}`) as Promise<
      Rows<Record<string, any>>
    >,
    db.execute(sql`select count(*)::int as n from sms_messages m where ${condition}`) as Promise<
      Rows<{ n: number }>
    >,
  ]);
  return { rows: rows.map(messageOf), total: totals.rows[0].n };
}

export type UnsentTarget = { id: string } | { campaignId: string } | { number: string; kind: 'standard' };

/**
 * Cancels the organisation's messages that have not been handed to a gateway: queued or scheduled, or
 * claimed by a worker that has not begun their submit. Returns them as they are now.
 */
export async function cancelUnsent(
  tx: Db,
  organizationId: string,
  target: UnsentTarget,
  reason: { code: string; message: string },
): Promise<SmsMessageRow[]> {
  const where =
    'id' in target
      ? sql`m.id = ${target.id}`
      : 'campaignId' in target
        ? sql`m.campaign_id = ${target.campaignId}`
        : sql`m.to_number = ${target.number} and m.kind = ${target.kind}`;
  const { rows } = (await tx.execute(sql`
    with target as (
      select m.id from sms_messages m
       where m.organization_id = ${organizationId} and ${where}
         and (m.status in ('queued', 'scheduled')
              or (m.status = 'sending' and m.provider_id is null and m.submitted_at is null))
       order by m.id
       for update
    )
    update sms_messages m
       set status = 'cancelled', error_code = ${reason.code}, error_message = ${reason.message},
           locked_until = null, updated_at = now()
      from target where m.id = target.id
    returning ${MESSAGE_COLUMNS}`)) as Rows<Record<string, any>>;
  return rows.map(messageOf);
}

// ---- provider accounts ------------------------------------------------------------------------------------
// ---- the dispatcher ---------------------------------------------------------------------------------------
// Batch statements name their rows twice: joined to the batch's records, and as `id = any(ids)` (or provider
// ids). The second is an index condition the planner can count: without fresh statistics (the embedded
// engine runs no autovacuum) it took the table for a row or two and compared every row with every record,
// 50 times slower at 400.

/** A claimed message: what a submit and its events need. */
export type ClaimedSms = SmsMessageRow;

/** Takes up to `limit` due messages for this worker until `until`, counting an attempt on each. */
export async function claimDue(db: Db, now: Date, limit: number, until: Date): Promise<ClaimedSms[]> {
  const { rows } = (await db.execute(sql`
    with due as (
      select id from sms_messages
       where status in ('queued', 'scheduled') and next_attempt_at <= ${now.toISOString()}
       order by next_attempt_at
       limit ${limit}
       for update skip locked
    )
    update sms_messages m
       set status = 'sending', attempts = m.attempts + 1, locked_until = ${until.toISOString()},
           submitted_at = null, updated_at = now()
      from due where m.id = due.id
    returning ${MESSAGE_COLUMNS}`)) as Rows<Record<string, any>>;
  return rows.map(messageOf);
}

export async function nextDueAt(db: Db): Promise<Date | null> {
  const { rows } = (await db.execute(
    sql`select min(next_attempt_at) as at from sms_messages where status in ('queued', 'scheduled')`,
  )) as Rows<{ at: string | Date | null }>;
  return date(rows[0]?.at ?? null);
}

export interface Claim {
  id: string;
  attempts: number;
}

export async function extendClaims(db: Db, claims: Claim[], until: Date): Promise<void> {
  if (!claims.length) return;
  await db.execute(sql`
    update sms_messages m set locked_until = ${until.toISOString()}
      from jsonb_to_recordset(${json(claims)}::jsonb) as c(id uuid, attempts integer)
     where m.id = any(${sql.param(claims.map((c) => c.id))}::uuid[])
       and m.id = c.id and m.status = 'sending' and m.attempts = c.attempts and m.provider_id is null`);
}

/**
 * Claims whose worker stopped renewing them (it died). Those whose submit had not begun go back to the
 * queue. Those whose submit had begun may have reached the gateway: they are retried only on gateways
 * that take our id as an idempotency key (`idempotent`); elsewhere they are failed as `unknown_outcome`
 * rather than risk sending them twice. Returns the failed ones. `all`: every claim (the embedded engine's
 * one process starting: any claim is a dead process's).
 */
export async function releaseExpired(
  db: Db,
  now: Date,
  keep: string[],
  idempotent: string[],
  all = false,
): Promise<{ requeued: number; failed: SmsMessageRow[] }> {
  const { rows } = (await db.execute(sql`
    with expired as (
      select id from sms_messages
       where status = 'sending' and provider_id is null and (${all} or locked_until < ${now.toISOString()})
         and id <> all(${sql.param(keep)}::uuid[])
       order by id
       for update skip locked
    )
    update sms_messages m
       set status = case when m.submitted_at is null or m.provider = any(${sql.param(idempotent)}::text[])
                         then 'queued' else 'failed' end,
           error_code = case when m.submitted_at is null or m.provider = any(${sql.param(idempotent)}::text[])
                             then m.error_code else 'unknown_outcome' end,
           error_message = case when m.submitted_at is null or m.provider = any(${sql.param(idempotent)}::text[])
                                then m.error_message
                                else 'The worker sending it stopped mid-submit: it may or may not have been sent' end,
           failed_at = case when m.submitted_at is null or m.provider = any(${sql.param(idempotent)}::text[])
                            then null else now() end,
           next_attempt_at = ${now.toISOString()}, locked_until = null, submitted_at = null, updated_at = now()
      from expired where m.id = expired.id
    returning ${MESSAGE_COLUMNS}`)) as Rows<Record<string, any>>;
  const released = rows.map(messageOf);
  return {
    requeued: released.filter((r) => r.status === 'queued').length,
    failed: released.filter((r) => r.status === 'failed'),
  };
}

/**
 * Right before their submit: marks claims as begun (with the gateway's name, which tells after a crash
 * whether resending is safe), and cancels those whose number opted out meanwhile. A claim this worker no
 * longer holds is in neither list.
 */
export async function beginSubmits(
  tx: Db,
  claims: (Claim & { provider: string })[],
  now: Date,
): Promise<{ ready: Set<string>; optedOut: Set<string> }> {
  if (!claims.length) return { ready: new Set(), optedOut: new Set() };
  const { rows } = (await tx.execute(sql`
    with c as (
      select * from jsonb_to_recordset(${json(claims)}::jsonb) as c(id uuid, attempts integer, provider text)
    ), mine as (
      select m.id, m.organization_id, m.to_number, m.kind, c.provider from sms_messages m join c on c.id = m.id
       where m.id = any(${sql.param(claims.map((c) => c.id))}::uuid[])
         and m.status = 'sending' and m.attempts = c.attempts and m.provider_id is null
       order by m.id
       for update of m
    ), opted as materialized (
      select mine.id from mine
        join sms_opt_outs o on o.organization_id = mine.organization_id and o.number = mine.to_number
       where mine.kind = 'standard'
    ), cancelled as (
      update sms_messages m
         set status = 'cancelled', error_code = 'opted_out', error_message = 'The number opted out',
             locked_until = null, updated_at = now()
        from opted where m.id = opted.id
      returning m.id
    ), begun as (
      update sms_messages m set submitted_at = ${now.toISOString()}, provider = mine.provider
        from mine where m.id = mine.id and not exists (select 1 from opted where opted.id = mine.id)
      returning m.id
    )
    select id, true as ready from begun union all select id, false from cancelled`)) as Rows<{
    id: string;
    ready: boolean;
  }>;
  return {
    ready: new Set(rows.filter((r) => r.ready).map((r) => r.id)),
    optedOut: new Set(rows.filter((r) => !r.ready).map((r) => r.id)),
  };
}

export type OutcomeKind = 'accepted' | 'retry' | 'failover' | 'failed' | 'postpone';

export interface Outcome {
  id: string;
  attempts: number;
  outcome: OutcomeKind;
  status: SmsStatus;
  provider?: string | null;
  providerId?: string | null;
  price?: { amount: string; currency: string } | null;
  errorCode?: string | null;
  errorMessage?: string | null;
  nextAttemptAt?: Date | null;
  /** The account to go through from now on (failover). */
  account?: string | null;
}

/**
 * Writes a batch of submit outcomes in one statement; returns the ids written. An accepted submit is
 * recorded whenever the message has no provider id yet (the gateway has it, whatever became of the
 * claim); any other outcome only while this worker's claim holds.
 */
export async function recordOutcomes(tx: Db, outcomes: Outcome[]): Promise<Set<string>> {
  if (!outcomes.length) return new Set();
  const data = outcomes.map((o) => ({
    id: o.id,
    attempts: o.attempts,
    outcome: o.outcome,
    status: o.status,
    provider: o.provider ?? null,
    provider_id: o.providerId ?? null,
    price_amount: o.price?.amount ?? null,
    price_currency: o.price?.currency ?? null,
    error_code: o.errorCode ?? null,
    error_message: o.errorMessage ?? null,
    next_attempt_at: o.nextAttemptAt?.toISOString() ?? null,
    account: o.account ?? null,
  }));
  const { rows } = (await tx.execute(sql`
    with r as (
      select * from jsonb_to_recordset(${json(data)}::jsonb) as r(id uuid, attempts integer, outcome text,
             status text, provider text, provider_id text, price_amount numeric, price_currency text,
             error_code text, error_message text, next_attempt_at timestamptz, account uuid)
    ), target as (
      select m.id from sms_messages m join r on r.id = m.id
       where m.id = any(${sql.param(outcomes.map((o) => o.id))}::uuid[]) and m.provider_id is null
         and ((r.outcome = 'accepted' and m.status in ('queued', 'scheduled', 'sending'))
              or (r.outcome <> 'accepted' and m.status = 'sending' and m.attempts = r.attempts))
       order by m.id
       for update of m
    )
    update sms_messages m
       set status = r.status,
           provider = coalesce(r.provider, m.provider),
           provider_id = r.provider_id,
           price_amount = coalesce(r.price_amount, m.price_amount),
           price_currency = coalesce(r.price_currency, m.price_currency),
           error_code = case when r.outcome = 'postpone' then m.error_code else r.error_code end,
           error_message = case when r.outcome = 'postpone' then m.error_message else r.error_message end,
           attempts = case r.outcome when 'failover' then 0 when 'postpone' then m.attempts - 1
                                     else m.attempts end,
           next_attempt_at = coalesce(r.next_attempt_at, m.next_attempt_at),
           provider_account_id = coalesce(r.account, m.provider_account_id),
           on_failover = m.on_failover or r.outcome = 'failover',
           locked_until = null,
           submitted_at = case when r.outcome = 'accepted' or r.outcome = 'failed' then m.submitted_at end,
           sent_at = case when r.status = 'sent' then now() else m.sent_at end,
           failed_at = case when r.status = 'failed' then now() else m.failed_at end,
           updated_at = now()
      from r, target
     where m.id = r.id and target.id = r.id
    returning m.id`)) as Rows<{ id: string }>;
  return new Set(rows.map((r) => r.id));
}

/** An account's next pacing slot (daily limit, random spacing), shared by every worker. */
export async function takePacingSlot(
  db: Db,
  slot: {
    accountId: string;
    organizationId: string;
    now: Date;
    day: string;
    dailyLimit: number | null;
    nextAt: Date;
  },
): Promise<{ ok: true } | { ok: false; nextAt: Date; dayFull: boolean }> {
  const limit = slot.dailyLimit ?? 2_147_483_647;
  const { rows } = (await db.execute(sql`
    insert into sms_account_pacing as p (provider_account_id, organization_id, day, sent, next_at)
    values (${slot.accountId}, ${slot.organizationId}, ${slot.day}, 1, ${slot.nextAt.toISOString()})
    on conflict (provider_account_id) do update
       set sent = case when p.day = excluded.day then p.sent + 1 else 1 end,
           day = excluded.day, next_at = excluded.next_at
     where p.next_at <= ${slot.now.toISOString()} and (p.day <> excluded.day or p.sent < ${limit})
    returning true as ok`)) as Rows<{ ok: boolean }>;
  if (rows.length) return { ok: true };
  const { rows: state } = (await db.execute(sql`
    select day::text as day, sent, next_at from sms_account_pacing
     where provider_account_id = ${slot.accountId}`)) as Rows<{ day: string; sent: number; next_at: string }>;
  const s = state[0];
  if (!s) return { ok: false, nextAt: slot.now, dayFull: false };
  return {
    ok: false,
    nextAt: new Date(s.next_at),
    dayFull: s.day === slot.day && Number(s.sent) >= limit,
  };
}

// ---- receipts ---------------------------------------------------------------------------------------------

export interface Receipt {
  organizationId: string;
  accountId: string;
  providerId: string;
  status: 'sent' | 'delivered' | 'failed' | 'undelivered';
  errorCode: string | null;
  price: { amount: string; currency: string } | null;
  at: Date;
}

/** A message a receipt moved on, with the status it had. */
export interface Transition {
  before: SmsStatus;
  message: SmsMessageRow;
}

const receiptJson = (receipts: Receipt[]) =>
  json(
    receipts.map((r) => ({
      organization_id: r.organizationId,
      account: r.accountId,
      provider_id: r.providerId,
      status: r.status,
      error_code: r.errorCode,
      price_amount: r.price?.amount ?? null,
      price_currency: r.price?.currency ?? null,
      at: r.at.toISOString(),
    })),
  );

/**
 * Applies receipts (at most one per message: the caller keeps the furthest) in one statement. A status
 * never moves back; a receipt naming no known message yet is kept as an orphan until its message's
 * provider id is recorded. Returns the messages that moved.
 */
export async function applyReceipts(tx: Db, receipts: Receipt[]): Promise<Transition[]> {
  if (!receipts.length) return [];
  const { rows } = (await tx.execute(sql`
    with r as (
      select * from jsonb_to_recordset(${receiptJson(receipts)}::jsonb) as r(organization_id uuid, account uuid,
             provider_id text, status text, error_code text, price_amount numeric, price_currency text,
             at timestamptz)
    ), matched as (
      select m.id, m.status as before, r.* from sms_messages m
        join r on m.provider_account_id = r.account and m.provider_id = r.provider_id
       where m.provider_id = any(${sql.param([...new Set(receipts.map((r) => r.providerId))])}::text[])
         and m.provider_account_id = any(${sql.param([...new Set(receipts.map((r) => r.accountId))])}::uuid[])
         and m.organization_id = r.organization_id
       order by m.id
       for update of m
    ), orphans as (
      insert into sms_orphan_receipts (organization_id, provider_account_id, provider_id, status, error_code,
                                       price_amount, price_currency, reported_at)
      select r.organization_id, r.account, r.provider_id, r.status, r.error_code, r.price_amount,
             r.price_currency, r.at
        from r where not exists (select 1 from matched where matched.account = r.account
                                                          and matched.provider_id = r.provider_id)
      on conflict do nothing
    ), moved as (
      update sms_messages m
         set status = matched.status,
             error_code = coalesce(matched.error_code, m.error_code),
             price_amount = coalesce(matched.price_amount, m.price_amount),
             price_currency = coalesce(matched.price_currency, m.price_currency),
             sent_at = coalesce(m.sent_at, case when matched.status in ('sent', 'delivered', 'undelivered')
                                                then matched.at end),
             delivered_at = case when matched.status = 'delivered' then matched.at else m.delivered_at end,
             failed_at = case when matched.status in ('failed', 'undelivered') then matched.at
                              else m.failed_at end,
             updated_at = now()
        from matched
       where m.id = matched.id and ${rank(sql`matched.status`)} > ${rank(sql`m.status`)}
      returning m.id
    )
    select matched.before, ${MESSAGE_COLUMNS} from moved
      join matched on matched.id = moved.id
      join sms_messages m on m.id = moved.id`)) as Rows<Record<string, any>>;
  // The join reads the rows as they were before this statement moved them: apply the receipts' changes.
  const byKey = new Map(receipts.map((r) => [`${r.accountId}\n${r.providerId}`, r]));
  return rows.map((row) => {
    const message = messageOf(row);
    const receipt = byKey.get(`${message.providerAccountId}\n${message.providerId}`)!;
    message.status = receipt.status;
    if (receipt.errorCode) message.errorCode = receipt.errorCode;
    if (receipt.price) {
      message.priceAmount = receipt.price.amount;
      message.priceCurrency = receipt.price.currency;
    }
    return { before: row.before as SmsStatus, message };
  });
}

/** Orphan receipts whose message now has its provider id: taken off the orphan list, to apply. */
export async function takeOrphans(tx: Db, limit = 5_000): Promise<Receipt[]> {
  const { rows } = (await tx.execute(sql`
    with found as (
      select o.provider_account_id, o.provider_id, o.status from sms_orphan_receipts o
       where exists (select 1 from sms_messages m
                      where m.provider_account_id = o.provider_account_id and m.provider_id = o.provider_id)
       limit ${limit}
       for update of o skip locked
    )
    delete from sms_orphan_receipts o using found
     where (o.provider_account_id, o.provider_id, o.status)
         = (found.provider_account_id, found.provider_id, found.status)
    returning o.organization_id, o.provider_account_id, o.provider_id, o.status, o.error_code,
              o.price_amount::text as price_amount, o.price_currency, o.reported_at`)) as Rows<
    Record<string, any>
  >;
  return rows.map((r) => ({
    organizationId: r.organization_id,
    accountId: r.provider_account_id,
    providerId: r.provider_id,
    status: r.status,
    errorCode: r.error_code,
    price: r.price_amount !== null ? { amount: String(r.price_amount), currency: r.price_currency } : null,
    at: new Date(r.reported_at),
  }));
}

export async function forgetOrphans(db: Db, before: Date): Promise<number> {
  const { rows } = (await db.execute(
    sql`delete from sms_orphan_receipts where created_at < ${before.toISOString()} returning 1`,
  )) as Rows<unknown>;
  return rows.length;
}

// ---- inbound, conversations, opt-outs ---------------------------------------------------------------------

export type NewInbound = Omit<SmsInboundRow, 'createdAt'>;

/** Stores received messages; one the gateway reported before (same provider id) is left out. */
export async function insertInbound(tx: Db, rows: NewInbound[]): Promise<Set<string>> {
  if (!rows.length) return new Set();
  const data = rows.map((r) => ({
    id: r.id,
    organization_id: r.organizationId,
    provider_account_id: r.providerAccountId,
    provider_id: r.providerId,
    from_number: r.fromNumber,
    to_number: r.toNumber,
    body: r.body,
    keyword: r.keyword,
    received_at: r.receivedAt.toISOString(),
  }));
  const { rows: inserted } = (await tx.execute(sql`
    insert into sms_inbound (id, organization_id, provider_account_id, provider_id, from_number, to_number, body,
                             keyword, received_at)
    select * from jsonb_to_recordset(${json(data)}::jsonb) as r(id uuid, organization_id uuid,
           provider_account_id uuid, provider_id text, from_number text, to_number text, body text,
           keyword text, received_at timestamptz)
    on conflict do nothing
    returning id`)) as Rows<{ id: string }>;
  return new Set(inserted.map((r) => r.id));
}

/** Each received message moves its number's conversation on (the rows of one number come in order). */
export async function touchConversations(tx: Db, rows: NewInbound[]): Promise<void> {
  if (!rows.length) return;
  const latest = new Map<
    string,
    { organization_id: string; number: string; at: string; body: string; n: number }
  >();
  for (const r of rows) {
    const key = `${r.organizationId}\n${r.fromNumber}`;
    const seen = latest.get(key);
    const at = r.receivedAt.toISOString();
    if (!seen)
      latest.set(key, { organization_id: r.organizationId, number: r.fromNumber, at, body: r.body, n: 1 });
    else {
      seen.n++;
      if (at >= seen.at) Object.assign(seen, { at, body: r.body });
    }
  }
  await tx.execute(sql`
    insert into sms_conversations as c (organization_id, number, last_inbound_at, last_body, inbound_count)
    select organization_id, number, at, body, n
      from jsonb_to_recordset(${json([...latest.values()])}::jsonb) as r(organization_id uuid, number text,
           at timestamptz, body text, n integer)
    on conflict (organization_id, number) do update
       set inbound_count = c.inbound_count + excluded.inbound_count,
           last_body = case when excluded.last_inbound_at >= c.last_inbound_at then excluded.last_body
                            else c.last_body end,
           last_inbound_at = greatest(c.last_inbound_at, excluded.last_inbound_at)`);
}

export async function listConversations(db: Db, organizationId: string, page: PageRequest) {
  const where = eq(smsConversations.organizationId, organizationId);
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(smsConversations)
      .where(where)
      .orderBy(desc(smsConversations.lastInboundAt), asc(smsConversations.number))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(smsConversations).where(where),
  ]);
  return { rows, total };
}

export async function conversationOf(
  db: Db,
  organizationId: string,
  number: string,
): Promise<SmsConversationRow | undefined> {
  const [row] = await db
    .select()
    .from(smsConversations)
    .where(and(eq(smsConversations.organizationId, organizationId), eq(smsConversations.number, number)));
  return row;
}

export interface ThreadEntry {
  direction: 'inbound' | 'outbound';
  id: string;
  body: string;
  status: string | null;
  at: Date;
  keyword: SmsKeyword | null;
}

/** Both directions of one number's conversation, newest first. */
export async function thread(db: Db, organizationId: string, number: string, page: PageRequest) {
  const [{ rows }, totals] = await Promise.all([
    db.execute(sql`
      select * from (
        select 'outbound' as direction, id, body, status, created_at as at, null::text as keyword
          from sms_messages where organization_id = ${organizationId} and to_number = ${number}
        union all
        select 'inbound', id, body, null, received_at, keyword
          from sms_inbound where organization_id = ${organizationId} and from_number = ${number}
      ) t order by at desc, id desc limit ${page.page_size} offset ${offsetOf(page)}`) as Promise<
      Rows<Record<string, any>>
    >,
    db.execute(sql`
      select (select count(*) from sms_messages where organization_id = ${organizationId} and to_number = ${number})
           + (select count(*) from sms_inbound where organization_id = ${organizationId} and from_number = ${number})
           as n`) as Promise<Rows<{ n: number | string }>>,
  ]);
  const entries: ThreadEntry[] = rows.map((r) => ({
    direction: r.direction,
    id: r.id,
    body: r.body,
    status: r.status,
    at: new Date(r.at),
    keyword: r.keyword,
  }));
  return { rows: entries, total: Number(totals.rows[0].n) };
}

export async function optOut(
  tx: Db,
  row: { organizationId: string; number: string; source: 'keyword' | 'api'; keyword: string | null },
): Promise<boolean> {
  const inserted = await tx
    .insert(smsOptOuts)
    .values(row)
    .onConflictDoNothing()
    .returning({ n: smsOptOuts.number });
  return inserted.length > 0;
}

export async function optIn(tx: Db, organizationId: string, number: string): Promise<boolean> {
  const deleted = await tx
    .delete(smsOptOuts)
    .where(and(eq(smsOptOuts.organizationId, organizationId), eq(smsOptOuts.number, number)))
    .returning({ n: smsOptOuts.number });
  return deleted.length > 0;
}

export async function optedOutAmong(db: Db, organizationId: string, numbers: string[]): Promise<Set<string>> {
  if (!numbers.length) return new Set();
  const { rows } = (await db.execute(sql`
    select number from sms_opt_outs
     where organization_id = ${organizationId} and number = any(${sql.param(numbers)}::text[])`)) as Rows<{
    number: string;
  }>;
  return new Set(rows.map((r) => r.number));
}

export async function listOptOuts(db: Db, organizationId: string, page: PageRequest, number?: string) {
  const where = and(
    eq(smsOptOuts.organizationId, organizationId),
    number ? eq(smsOptOuts.number, number) : undefined,
  );
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(smsOptOuts)
      .where(where)
      .orderBy(desc(smsOptOuts.createdAt), asc(smsOptOuts.number))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(smsOptOuts).where(where),
  ]);
  return { rows: rows as SmsOptOutRow[], total };
}

// ---- statistics -------------------------------------------------------------------------------------------

export type StatsDimension = 'day' | 'provider_account' | 'campaign';

export interface StatsRow {
  day: string | null;
  provider_account_id: string | null;
  campaign_id: string | null;
  currency: string | null;
  queued: number;
  sent: number;
  delivered: number;
  failed: number;
  cancelled: number;
  parts: number;
  price: string | null;
}

export async function stats(
  db: Db,
  organizationId: string,
  window: { from: Date; to: Date },
  by: StatsDimension[],
): Promise<StatsRow[]> {
  const day = by.includes('day')
    ? sql`to_char(created_at at time zone 'UTC', 'YYYY-MM-DD')`
    : sql`null::text`;
  const account = by.includes('provider_account') ? sql`provider_account_id` : sql`null::uuid`;
  const campaign = by.includes('campaign') ? sql`campaign_id` : sql`null::uuid`;
  const { rows } = (await db.execute(sql`
    select ${day} as day, ${account} as provider_account_id, ${campaign} as campaign_id,
           price_currency as currency,
           count(*) filter (where status in ('queued', 'scheduled', 'sending'))::int as queued,
           count(*) filter (where status in ('sent', 'delivered', 'undelivered'))::int as sent,
           count(*) filter (where status = 'delivered')::int as delivered,
           count(*) filter (where status in ('failed', 'undelivered'))::int as failed,
           count(*) filter (where status = 'cancelled')::int as cancelled,
           coalesce(sum(parts) filter (where status in ('sent', 'delivered', 'undelivered')), 0)::int as parts,
           sum(price_amount)::text as price
      from sms_messages
     where organization_id = ${organizationId}
       and created_at >= ${window.from.toISOString()} and created_at < ${window.to.toISOString()}
     group by 1, 2, 3, 4
     order by 1, 2, 3, 4`)) as Rows<StatsRow>;
  return rows;
}
