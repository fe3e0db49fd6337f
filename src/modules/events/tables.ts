import { jsonb, pgTable, text, timestamptz, uuid } from '../../core/orm.ts';

export const events = pgTable('events', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  type: text('type').notNull(),
  data: jsonb('data').notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});

export type EventRow = typeof events.$inferSelect;
