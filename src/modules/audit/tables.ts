import { integer, jsonb, pgTable, text, timestamptz, uuid } from '../../core/orm.ts';

export const auditLog = pgTable('audit_log', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id'),
  actorType: text('actor_type', { enum: ['user', 'api_key', 'anonymous', 'system'] }).notNull(),
  actorId: uuid('actor_id'),
  action: text('action').notNull(),
  targetType: text('target_type'),
  targetId: text('target_id'),
  status: integer('status').notNull(),
  ip: text('ip'),
  requestId: text('request_id'),
  /** What the action alone does not say (an export's row count and layout); never a secret. */
  details: jsonb('details').$type<Record<string, unknown>>(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});

export const securityEvents = pgTable('security_events', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id'),
  userId: uuid('user_id'),
  apiKeyId: uuid('api_key_id'),
  kind: text('kind').notNull(),
  ip: text('ip'),
  requestId: text('request_id'),
  details: jsonb('details').$type<Record<string, unknown>>().notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});

export type AuditRow = typeof auditLog.$inferSelect;
export type SecurityEventRow = typeof securityEvents.$inferSelect;
