import { boolean, integer, jsonb, pgTable, text, timestamptz, uuid } from '../../core/orm.ts';

/** What a Teams channel can be told about; `ticket.assigned` is a `ticket.updated` that changed the assignee. */
export const TEAMS_EVENT_TYPES = [
  'ticket.created',
  'ticket.assigned',
  'ticket.sla_warning',
  'ticket.sla_breached',
  'ticket.automation_notify',
] as const;
export type TeamsEventType = (typeof TEAMS_EVENT_TYPES)[number];

export const teamsChannels = pgTable('helpdesk_teams_channels', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  name: text('name').notNull(),
  webhookUrl: text('webhook_url').notNull(),
  urlHint: text('url_hint').notNull(),
  deskIds: uuid('desk_ids').array().notNull().default([]),
  eventTypes: text('event_types').array().$type<TeamsEventType[]>().notNull(),
  enabled: boolean('enabled').notNull().default(true),
  lastSuccessAt: timestamptz('last_success_at'),
  lastFailureAt: timestamptz('last_failure_at'),
  lastError: text('last_error'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});

export type DeliveryStatus = 'pending' | 'succeeded' | 'failed';

export const teamsDeliveries = pgTable('helpdesk_teams_deliveries', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  channelId: uuid('channel_id').notNull(),
  eventId: uuid('event_id'),
  kind: text('kind').$type<TeamsEventType | 'test'>().notNull(),
  ticketId: uuid('ticket_id'),
  data: jsonb('data').$type<Record<string, unknown>>().notNull(),
  status: text('status').$type<DeliveryStatus>().notNull().default('pending'),
  attempts: integer('attempts').notNull().default(0),
  nextAttemptAt: timestamptz('next_attempt_at'),
  leaseUntil: timestamptz('lease_until'),
  lastAttemptAt: timestamptz('last_attempt_at'),
  lastStatusCode: integer('last_status_code'),
  lastError: text('last_error'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});

export const csatSurveys = pgTable('helpdesk_csat_surveys', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  ticketId: uuid('ticket_id').notNull(),
  resolvedAt: timestamptz('resolved_at').notNull(),
  tokenHash: text('token_hash').notNull(),
  tokenSealed: text('token_sealed').notNull(),
  rating: text('rating').$type<'good' | 'bad'>(),
  ratedAt: timestamptz('rated_at'),
  changedAt: timestamptz('changed_at'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});

export type ChannelRow = typeof teamsChannels.$inferSelect;
export type TeamsDeliveryRow = typeof teamsDeliveries.$inferSelect;
export type SurveyRow = typeof csatSurveys.$inferSelect;
