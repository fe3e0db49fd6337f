import { boolean, pgTable, text, timestamptz, uuid } from '../../core/orm.ts';

/** Logins for SMTP submission that are not a mailbox's own (applications, printers, CRMs). */
export const smtpCredentials = pgTable('smtp_credentials', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  name: text('name').notNull(),
  /** Generated, lower case, unique across the platform (a login names no organisation). */
  username: text('username').notNull(),
  /** argon2id. */
  passwordHash: text('password_hash').notNull(),
  /** Null: the credential may send as any address on any of the organisation's domains. */
  domainId: uuid('domain_id'),
  isEnabled: boolean('is_enabled').notNull().default(true),
  lastUsedAt: timestamptz('last_used_at'),
  lastUsedIp: text('last_used_ip'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});
export type SmtpCredentialRow = typeof smtpCredentials.$inferSelect;
