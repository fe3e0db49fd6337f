import { pgTable, text, timestamptz, uuid } from '../../core/orm.ts';

export type SuppressionReason = 'hard_bounce' | 'manual' | 'complaint';

export const suppressions = pgTable('suppressions', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  address: text('address').notNull(),
  reason: text('reason').$type<SuppressionReason>().notNull(),
  detail: text('detail'),
  messageId: uuid('message_id'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});
export type SuppressionRow = typeof suppressions.$inferSelect;
