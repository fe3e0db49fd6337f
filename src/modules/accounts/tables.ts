import { integer, jsonb, pgTable, text, timestamptz, uuid } from '../../core/orm.ts';
import type { Security } from './diagnose.ts';

export type AccountProvider = 'imap' | 'google' | 'microsoft';
/** The providers whose accounts sign in with OAuth (their secret holds tokens, not a password). */
export type OAuthAccountProvider = Exclude<AccountProvider, 'imap'>;
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
  /** Sealed JSON (Secrets): `{ "password": … }`; OAuth: `{ "refresh_token", "access_token", "expires_at" }`. */
  secret: text('secret').notNull(),
  state: text('state').$type<AccountState>().notNull().default('connecting'),
  /** The first sync reaches this many days back. */
  syncDays: integer('sync_days').notNull().default(30),
  /** The IMAP server's capabilities, as last seen. */
  capabilities: text('capabilities').array().notNull().default([]),
  lastSyncedAt: timestamptz('last_synced_at'),
  /** The worker that owns the account's connection (sync/leases.ts), until leaseUntil. */
  leaseOwner: text('lease_owner'),
  leaseUntil: timestamptz('lease_until'),
  lastError: text('last_error'),
  lastErrorAt: timestamptz('last_error_at'),
  createdBy: uuid('created_by'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});
export type MailAccountRow = typeof mailAccounts.$inferSelect;
export type NewMailAccount = typeof mailAccounts.$inferInsert;

/** An OAuth sign-in between its start and the provider's callback (migrations/0013_account_oauth.sql). */
export const accountOAuthRequests = pgTable('account_oauth_requests', {
  stateHash: text('state_hash').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  userId: uuid('user_id'),
  provider: text('provider').$type<OAuthAccountProvider>().notNull(),
  accountId: uuid('account_id'),
  /** Sealed (Secrets). */
  codeVerifier: text('code_verifier').notNull(),
  name: text('name'),
  redirectTo: text('redirect_to'),
  expiresAt: timestamptz('expires_at').notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});
export type AccountOAuthRequestRow = typeof accountOAuthRequests.$inferSelect;
