import {
  bigint,
  boolean,
  date,
  integer,
  jsonb,
  pgTable,
  real,
  smallint,
  text,
  timestamptz,
  uuid,
} from '../../core/orm.ts';
import type { Ramp } from './ramps.ts';

export type WarmupPool = 'organization' | 'shared';
export type EnrollmentStatus = 'active' | 'paused';
export type PausedReason = 'manual' | 'health';
export type Provider = 'gmail' | 'microsoft' | 'yahoo' | 'other';
export type Placement = 'inbox' | 'spam' | 'category' | 'missing';
export type WarmupMessageStatus = 'planned' | 'sending' | 'sent' | 'failed' | 'cancelled';

export const warmupEnrollments = pgTable('warmup_enrollments', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  mailboxId: uuid('mailbox_id'),
  accountId: uuid('account_id'),
  address: text('address').notNull(),
  name: text('name').notNull().default(''),
  pool: text('pool').$type<WarmupPool>().notNull(),
  status: text('status').$type<EnrollmentStatus>().notNull(),
  pausedReason: text('paused_reason').$type<PausedReason>(),
  slowed: boolean('slowed').notNull().default(false),
  ramp: jsonb('ramp').$type<Ramp>().notNull(),
  weekdays: smallint('weekdays').array().notNull(),
  startHour: smallint('start_hour').notNull(),
  endHour: smallint('end_hour').notNull(),
  timeZone: text('time_zone').notNull(),
  replyRate: real('reply_rate').notNull(),
  provider: text('provider').$type<Provider>().notNull(),
  warmDays: integer('warm_days').notNull().default(0),
  countedOn: date('counted_on'),
  plannedOn: date('planned_on'),
  nextPlanAt: timestamptz('next_plan_at').notNull(),
  planTimes: bigint('plan_times', { mode: 'number' }).array().notNull().default([]),
  nextSendAt: timestamptz('next_send_at'),
  leasedUntil: timestamptz('leased_until'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});
export type EnrollmentRow = typeof warmupEnrollments.$inferSelect;

export const warmupMessages = pgTable('warmup_messages', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  enrollmentId: uuid('enrollment_id').notNull(),
  recipientEnrollmentId: uuid('recipient_enrollment_id'),
  token: text('token').notNull(),
  threadId: uuid('thread_id').notNull(),
  parentId: uuid('parent_id'),
  depth: smallint('depth').notNull().default(0),
  template: text('template').notNull(),
  day: date('day').notNull(),
  dueAt: timestamptz('due_at').notNull(),
  claimedAt: timestamptz('claimed_at'),
  checkedAt: timestamptz('checked_at'),
  status: text('status').$type<WarmupMessageStatus>().notNull(),
  error: text('error'),
  provider: text('provider').$type<Provider>().notNull(),
  subject: text('subject'),
  messageIdHeader: text('message_id_header'),
  referencesHeader: text('references_header'),
  sentAt: timestamptz('sent_at'),
  placement: text('placement').$type<Placement>(),
  category: text('category'),
  receivedAt: timestamptz('received_at'),
  rescued: boolean('rescued').notNull().default(false),
  starred: boolean('starred').notNull().default(false),
  replyPlanned: boolean('reply_planned').notNull().default(false),
  archiveAt: timestamptz('archive_at'),
  archivedAt: timestamptz('archived_at'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});
export type WarmupMessageRow = typeof warmupMessages.$inferSelect;

export const warmupTemplates = pgTable('warmup_templates', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  kind: text('kind').$type<'opening' | 'reply'>().notNull(),
  subject: text('subject').notNull(),
  body: text('body').notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});
export type WarmupTemplateRow = typeof warmupTemplates.$inferSelect;
