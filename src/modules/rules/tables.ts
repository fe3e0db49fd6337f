import { bigint, boolean, integer, jsonb, pgTable, text, timestamptz, uuid } from '../../core/orm.ts';

export type RuleAction = 'forward' | 'redirect' | 'store' | 'block' | 'drop';

/** One test on an incoming message; a rule matches when all of its conditions hold. */
export type RuleCondition =
  | { field: 'sender'; op: 'equals' | 'contains'; value: string }
  | { field: 'sender_domain'; op: 'equals'; value: string }
  | { field: 'subject'; op: 'contains'; value: string }
  | { field: 'size'; op: 'above'; value: number }
  | { field: 'has_attachments'; op: 'equals'; value: boolean };

export const rules = pgTable('rules', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  domainId: uuid('domain_id').notNull(),
  name: text('name').notNull(),
  recipient: text('recipient'),
  priority: integer('priority').notNull().default(100),
  conditions: jsonb('conditions').$type<RuleCondition[]>().notNull().default([]),
  action: text('action').$type<RuleAction>().notNull(),
  targets: text('targets').array().notNull().default([]),
  folder: text('folder'),
  isEnabled: boolean('is_enabled').notNull().default(true),
  matchCount: bigint('match_count', { mode: 'number' }).notNull().default(0),
  lastMatchedAt: timestamptz('last_matched_at'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});
export type RuleRow = typeof rules.$inferSelect;
