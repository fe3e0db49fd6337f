import { jsonb, pgTable, text, timestamptz, uuid } from '../../core/orm.ts';
import type { Security } from './diagnose.ts';

export type AccountProvider = 'imap' | 'google' | 'microsoft';
export type AccountState = 'connecting' | 'syncing' | 'ready' | 'paused' | 'auth_failed' | 'error';
export const ACCOUNT_STATES: readonly AccountState[] = [
  'connecting',
  'syncing',
  'ready',
  'paused',
  'auth_failed',
  'error',
];

/** Where a server is and how to reach it, as stored (snake_case: it is JSON the API shows as it is). */
export interface StoredServer {
  host: string;
  port: number;
  security: Security;
  verify_tls: boolean;
}

export const mailAccounts = pgTable('mail_accounts', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  provider: text('provider').$type<AccountProvider>().notNull(),
  address: text('address').notNull(),
  name: text('name').notNull().default(''),
  username: text('username').notNull(),
  imap: jsonb('imap').$type<StoredServer>().notNull(),
  smtp: jsonb('smtp').$type<StoredServer | null>(),
  /** Sealed JSON (Secrets): `{ "password": … }`. */
  secret: text('secret').notNull(),
  state: text('state').$type<AccountState>().notNull().default('connecting'),
  lastError: text('last_error'),
  lastErrorAt: timestamptz('last_error_at'),
  createdBy: uuid('created_by'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});
export type MailAccountRow = typeof mailAccounts.$inferSelect;
export type NewMailAccount = typeof mailAccounts.$inferInsert;
