import {
  boolean,
  integer,
  pgTable,
  primaryKey,
  real,
  smallint,
  text,
  timestamptz,
  uuid,
} from '../../core/orm.ts';

export const SMS_STATUSES = [
  'queued',
  'scheduled',
  'sending',
  'sent',
  'delivered',
  'failed',
  'undelivered',
  'cancelled',
] as const;
export type SmsStatus = (typeof SMS_STATUSES)[number];
export type SmsKind = 'standard' | 'help';
export type SmsKeyword = 'stop' | 'start' | 'help';

export const smsSettings = pgTable('sms_settings', {
  organizationId: uuid('organization_id').primaryKey(),
  defaultRegion: text('default_region').notNull(),
  defaultSender: text('default_sender'),
  maxParts: smallint('max_parts').notNull(),
  quietStart: text('quiet_start'),
  quietEnd: text('quiet_end'),
  timeZone: text('time_zone').notNull(),
  helpText: text('help_text').notNull(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});
export type SmsSettingsRow = typeof smsSettings.$inferSelect;

export const smsAccountThrottles = pgTable('sms_account_throttles', {
  providerAccountId: uuid('provider_account_id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  perSecond: real('per_second'),
  dailyLimit: integer('daily_limit'),
  minIntervalMs: integer('min_interval_ms').notNull(),
  maxIntervalMs: integer('max_interval_ms').notNull(),
});
export type SmsThrottleRow = typeof smsAccountThrottles.$inferSelect;

export const smsRoutes = pgTable('sms_routes', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  name: text('name').notNull(),
  prefix: text('prefix').notNull(),
  providerAccountId: uuid('provider_account_id').notNull(),
  failoverAccountId: uuid('failover_account_id'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});
export type SmsRouteRow = typeof smsRoutes.$inferSelect;

export const smsMessages = pgTable('sms_messages', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  kind: text('kind').$type<SmsKind>().notNull(),
  toNumber: text('to_number').notNull(),
  country: text('country'),
  sender: text('sender'),
  body: text('body').notNull(),
  encoding: text('encoding').$type<'gsm7' | 'ucs2'>().notNull(),
  characters: integer('characters').notNull(),
  parts: smallint('parts').notNull(),
  tags: text('tags').array().notNull(),
  status: text('status').$type<SmsStatus>().notNull(),
  routeId: uuid('route_id'),
  providerAccountId: uuid('provider_account_id').notNull(),
  failoverAccountId: uuid('failover_account_id'),
  onFailover: boolean('on_failover').notNull(),
  campaignId: uuid('campaign_id'),
  campaignRecipientId: uuid('campaign_recipient_id'),
  sendAt: timestamptz('send_at'),
  attempts: integer('attempts').notNull(),
  nextAttemptAt: timestamptz('next_attempt_at').notNull(),
  lockedUntil: timestamptz('locked_until'),
  submittedAt: timestamptz('submitted_at'),
  provider: text('provider'),
  providerId: text('provider_id'),
  errorCode: text('error_code'),
  errorMessage: text('error_message'),
  priceAmount: text('price_amount'),
  priceCurrency: text('price_currency'),
  idempotencyKey: text('idempotency_key'),
  requestHash: text('request_hash'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
  sentAt: timestamptz('sent_at'),
  deliveredAt: timestamptz('delivered_at'),
  failedAt: timestamptz('failed_at'),
});
export type SmsMessageRow = typeof smsMessages.$inferSelect;

export const smsInbound = pgTable('sms_inbound', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  providerAccountId: uuid('provider_account_id').notNull(),
  providerId: text('provider_id'),
  fromNumber: text('from_number').notNull(),
  toNumber: text('to_number').notNull(),
  body: text('body').notNull(),
  keyword: text('keyword').$type<SmsKeyword>(),
  receivedAt: timestamptz('received_at').notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});
export type SmsInboundRow = typeof smsInbound.$inferSelect;

export const smsConversations = pgTable(
  'sms_conversations',
  {
    organizationId: uuid('organization_id').notNull(),
    number: text('number').notNull(),
    lastInboundAt: timestamptz('last_inbound_at').notNull(),
    lastBody: text('last_body').notNull(),
    inboundCount: integer('inbound_count').notNull(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.number] })],
);
export type SmsConversationRow = typeof smsConversations.$inferSelect;

export const smsOptOuts = pgTable(
  'sms_opt_outs',
  {
    organizationId: uuid('organization_id').notNull(),
    number: text('number').notNull(),
    source: text('source').$type<'keyword' | 'api'>().notNull(),
    keyword: text('keyword'),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.number] })],
);
export type SmsOptOutRow = typeof smsOptOuts.$inferSelect;
