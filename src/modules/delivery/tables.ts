import { boolean, integer, jsonb, pgTable, primaryKey, text, timestamptz, uuid } from '../../core/orm.ts';

export type DeliveryStatus = 'queued' | 'held' | 'sending' | 'delivered' | 'bounced' | 'failed' | 'cancelled';
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = [
  'queued',
  'held',
  'sending',
  'delivered',
  'bounced',
  'failed',
  'cancelled',
];
export type HoldReason = 'suppressed' | 'mailbox_daily_limit' | 'organization_hourly_limit' | 'sender_paused';
export type AttemptOutcome = 'delivered' | 'deferred' | 'bounced';

export const deliveries = pgTable('deliveries', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  messageId: uuid('message_id').notNull(),
  recipient: text('recipient').notNull(),
  domain: text('domain').notNull(),
  status: text('status').$type<DeliveryStatus>().notNull(),
  holdReason: text('hold_reason').$type<HoldReason>(),
  holdDetail: text('hold_detail'),
  attempts: integer('attempts').notNull().default(0),
  nextAttemptAt: timestamptz('next_attempt_at').notNull().defaultNow(),
  lockedUntil: timestamptz('locked_until'),
  lastCode: integer('last_code'),
  lastResponse: text('last_response'),
  dsnMessageId: uuid('dsn_message_id'),
  /** The sending address whose limits counted this recipient, and when (null: not counted). */
  countedSubject: text('counted_subject'),
  countedAt: timestamptz('counted_at'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
  finishedAt: timestamptz('finished_at'),
});
export type DeliveryRow = typeof deliveries.$inferSelect;

export interface AttemptTls {
  version: string;
  cipher: string;
  authorized: boolean;
}

export const deliveryAttempts = pgTable('delivery_attempts', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  deliveryId: uuid('delivery_id').notNull(),
  messageId: uuid('message_id').notNull(),
  attemptedAt: timestamptz('attempted_at').notNull(),
  durationMs: integer('duration_ms').notNull(),
  outcome: text('outcome').$type<AttemptOutcome>().notNull(),
  mxHost: text('mx_host'),
  ip: text('ip'),
  /** The local address the attempt left from; null: the system chose. */
  sourceIp: text('source_ip'),
  port: integer('port'),
  tls: jsonb('tls').$type<AttemptTls>(),
  mtaSts: text('mta_sts'),
  code: integer('code'),
  enhancedCode: text('enhanced_code'),
  response: text('response').notNull(),
});
export type DeliveryAttemptRow = typeof deliveryAttempts.$inferSelect;

export const bounces = pgTable('bounces', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  deliveryId: uuid('delivery_id').notNull(),
  messageId: uuid('message_id').notNull(),
  reportMessageId: uuid('report_message_id'),
  recipient: text('recipient').notNull(),
  kind: text('kind').$type<'dsn' | 'heuristic'>().notNull(),
  permanent: boolean('permanent').notNull(),
  status: text('status'),
  action: text('action'),
  diagnostic: text('diagnostic'),
  remoteMta: text('remote_mta'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});
export type BounceRow = typeof bounces.$inferSelect;

/**
 * A sender whose mail is held (hold reason 'sender_paused') until it is resumed: a domain (all its mail)
 * or an address (mail whose From is that address). The health module pauses and resumes senders.
 */
export const sendingPauses = pgTable('sending_pauses', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  domainId: uuid('domain_id'),
  address: text('address'),
  reason: text('reason').notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});
export type SendingPauseRow = typeof sendingPauses.$inferSelect;

export const sendRequests = pgTable(
  'send_requests',
  {
    organizationId: uuid('organization_id').notNull(),
    idempotencyKey: text('idempotency_key').notNull(),
    requestHash: text('request_hash').notNull(),
    messageId: uuid('message_id').notNull(),
    response: jsonb('response').notNull(),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.idempotencyKey] })],
);
