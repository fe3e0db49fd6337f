import { boolean, integer, jsonb, pgTable, text, timestamptz, uuid } from '../../core/orm.ts';

export const webhookEndpoints = pgTable('webhook_endpoints', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  url: text('url').notNull(),
  description: text('description').notNull().default(''),
  eventTypes: text('event_types').array().notNull().default([]),
  enabled: boolean('enabled').notNull().default(true),
  secret: text('secret').notNull(),
  previousSecret: text('previous_secret'),
  previousSecretExpiresAt: timestamptz('previous_secret_expires_at'),
  failingSince: timestamptz('failing_since'),
  disabledAt: timestamptz('disabled_at'),
  disabledReason: text('disabled_reason'),
  leaseOwner: text('lease_owner'),
  leaseUntil: timestamptz('lease_until'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});

export const webhookDeliveries = pgTable('webhook_deliveries', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  endpointId: uuid('endpoint_id').notNull(),
  eventId: uuid('event_id'),
  eventType: text('event_type').notNull(),
  payload: jsonb('payload'),
  status: text('status').$type<DeliveryStatus>().notNull().default('pending'),
  attempts: integer('attempts').notNull().default(0),
  nextAttemptAt: timestamptz('next_attempt_at'),
  lastAttemptAt: timestamptz('last_attempt_at'),
  lastStatusCode: integer('last_status_code'),
  lastError: text('last_error'),
  replayOf: uuid('replay_of'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});

export const webhookAttempts = pgTable('webhook_attempts', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  deliveryId: uuid('delivery_id').notNull(),
  endpointId: uuid('endpoint_id').notNull(),
  attemptedAt: timestamptz('attempted_at').notNull().defaultNow(),
  durationMs: integer('duration_ms').notNull(),
  statusCode: integer('status_code'),
  responseBody: text('response_body'),
  error: text('error'),
});

export type DeliveryStatus = 'pending' | 'succeeded' | 'failed';
export type EndpointRow = typeof webhookEndpoints.$inferSelect;
export type DeliveryRow = typeof webhookDeliveries.$inferSelect;
export type NewDelivery = typeof webhookDeliveries.$inferInsert;
export type AttemptRow = typeof webhookAttempts.$inferSelect;
