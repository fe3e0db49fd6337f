import { date, integer, jsonb, pgTable, smallint, text, timestamptz, uuid } from '../../core/orm.ts';

export const CAMPAIGN_STATUSES = [
  'draft',
  'scheduled',
  'active',
  'paused',
  'completed',
  'cancelled',
] as const;
export type CampaignStatus = (typeof CAMPAIGN_STATUSES)[number];

export const RECIPIENT_STATUSES = [
  'pending',
  'queued',
  'sent',
  'delivered',
  'failed',
  'undelivered',
  'skipped',
  'cancelled',
] as const;
export type RecipientStatus = (typeof RECIPIENT_STATUSES)[number];

/** What an import does with a number that is already a contact (or twice in the file). */
export type OnDuplicate = 'update' | 'skip';

/** Which CSV column fills which contact field; `fields` maps custom field keys to columns. */
export interface ColumnMapping {
  phone: string;
  name?: string | null;
  tags?: string | null;
  fields?: Record<string, string>;
}

export interface ImportOptions {
  mapping: ColumnMapping;
  onDuplicate: OnDuplicate;
  listId: string | null;
  defaultRegion: string | null;
  tags: string[];
  delimiter: string;
}

export const smsTemplates = pgTable('sms_templates', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  name: text('name').notNull(),
  body: text('body').notNull(),
  description: text('description'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});

export const smsContacts = pgTable('sms_contacts', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  phone: text('phone').notNull(),
  name: text('name'),
  fields: jsonb('fields').$type<Record<string, string>>().notNull(),
  tags: text('tags').array().notNull(),
  listIds: uuid('list_ids').array().notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});

export const smsLists = pgTable('sms_lists', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  name: text('name').notNull(),
  description: text('description'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});

export const smsContactImports = pgTable('sms_contact_imports', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  jobId: uuid('job_id').notNull(),
  blobId: uuid('blob_id').notNull(),
  filename: text('filename'),
  size: integer('size').notNull(),
  sha256: text('sha256').notNull(),
  options: jsonb('options').$type<ImportOptions>().notNull(),
  rows: integer('rows').notNull().default(0),
  created: integer('created').notNull().default(0),
  updated: integer('updated').notNull().default(0),
  skipped: integer('skipped').notNull().default(0),
  failed: integer('failed').notNull().default(0),
  createdBy: text('created_by'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});

export const smsCampaigns = pgTable('sms_campaigns', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  name: text('name').notNull(),
  status: text('status').$type<CampaignStatus>().notNull(),
  templateId: uuid('template_id'),
  listId: uuid('list_id'),
  body: text('body'),
  sender: text('sender'),
  providerAccountId: uuid('provider_account_id'),
  routeId: uuid('route_id'),
  tags: text('tags').array().notNull(),
  timeZone: text('time_zone').notNull(),
  windowDays: smallint('window_days').array().notNull(),
  windowStart: smallint('window_start').notNull(),
  windowEnd: smallint('window_end').notNull(),
  dailyLimit: integer('daily_limit'),
  startAt: timestamptz('start_at'),
  jobId: uuid('job_id'),
  snapshotAt: timestamptz('snapshot_at'),
  total: integer('total').notNull().default(0),
  excluded: integer('excluded').notNull().default(0),
  day: date('day'),
  dayCount: integer('day_count').notNull().default(0),
  startedAt: timestamptz('started_at'),
  pausedAt: timestamptz('paused_at'),
  completedAt: timestamptz('completed_at'),
  cancelledAt: timestamptz('cancelled_at'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});

export const smsCampaignRecipients = pgTable('sms_campaign_recipients', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  campaignId: uuid('campaign_id').notNull(),
  seq: integer('seq').notNull(),
  contactId: uuid('contact_id'),
  phone: text('phone').notNull(),
  status: text('status').$type<RecipientStatus>().notNull(),
  messageId: uuid('message_id'),
  errorCode: text('error_code'),
  error: text('error'),
  attempts: smallint('attempts').notNull().default(0),
  queuedAt: timestamptz('queued_at'),
  sentAt: timestamptz('sent_at'),
  deliveredAt: timestamptz('delivered_at'),
  failedAt: timestamptz('failed_at'),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});

export type TemplateRow = typeof smsTemplates.$inferSelect;
export type ContactRow = typeof smsContacts.$inferSelect;
export type ListRow = typeof smsLists.$inferSelect;
export type ImportRow = typeof smsContactImports.$inferSelect;
export type CampaignRow = typeof smsCampaigns.$inferSelect;
export type RecipientRow = typeof smsCampaignRecipients.$inferSelect;
