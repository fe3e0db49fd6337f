import { boolean, pgTable, text, timestamptz, uuid } from '../../core/orm.ts';

export const aliases = pgTable('aliases', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  domainId: uuid('domain_id').notNull(),
  localPart: text('local_part').notNull(),
  address: text('address').notNull(),
  targets: text('targets').array().notNull(),
  description: text('description').notNull().default(''),
  isEnabled: boolean('is_enabled').notNull().default(true),
  expiresAt: timestamptz('expires_at'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});
export type AliasRow = typeof aliases.$inferSelect;
