import { pgTable, text, timestamptz, uuid } from '../../core/orm.ts';
import type { ProviderKind, ProviderName } from '../../providers/index.ts';

export const providerAccounts = pgTable('provider_accounts', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  kind: text('kind').$type<ProviderKind>().notNull(),
  provider: text('provider').$type<ProviderName>().notNull(),
  name: text('name').notNull(),
  credentials: text('credentials').notNull(),
  hint: text('hint').notNull(),
  createdBy: uuid('created_by'),
  lastUsedAt: timestamptz('last_used_at'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});
export type ProviderAccountRow = typeof providerAccounts.$inferSelect;
