import { boolean, integer, jsonb, pgTable, text, timestamptz, uuid } from '../../core/orm.ts';
import type { RecordCheck } from './checks.ts';
import type { DkimAlgorithm } from './dkim.ts';
import type { DomainSettings } from './records.ts';

export type DomainStatus = 'pending' | 'verified' | 'failed';
export type DkimKeyState = 'pending' | 'active' | 'retiring' | 'retired';

export const domains = pgTable('domains', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  name: text('name').notNull(),
  unicodeName: text('unicode_name').notNull(),
  status: text('status').$type<DomainStatus>().notNull().default('pending'),
  isActive: boolean('is_active').notNull().default(true),
  verificationToken: text('verification_token').notNull(),
  ownershipVerified: boolean('ownership_verified').notNull().default(false),
  mxVerified: boolean('mx_verified').notNull().default(false),
  spfVerified: boolean('spf_verified').notNull().default(false),
  dkimVerified: boolean('dkim_verified').notNull().default(false),
  dmarcVerified: boolean('dmarc_verified').notNull().default(false),
  returnPathVerified: boolean('return_path_verified').notNull().default(false),
  catchAllTarget: text('catch_all_target'),
  settings: jsonb('settings').$type<Partial<DomainSettings>>().notNull().default({}),
  dnsProviderAccountId: uuid('dns_provider_account_id'),
  dnsChecks: jsonb('dns_checks').$type<RecordCheck[]>(),
  lastCheckedAt: timestamptz('last_checked_at'),
  nextCheckAt: timestamptz('next_check_at').notNull().defaultNow(),
  verifiedAt: timestamptz('verified_at'),
  failedAt: timestamptz('failed_at'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});
export type DomainRow = typeof domains.$inferSelect;

export const dkimKeys = pgTable('domain_dkim_keys', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  domainId: uuid('domain_id').notNull(),
  selector: text('selector').notNull(),
  algorithm: text('algorithm').$type<DkimAlgorithm>().notNull(),
  bits: integer('bits'),
  publicKey: text('public_key').notNull(),
  privateKey: text('private_key').notNull(),
  state: text('state').$type<DkimKeyState>().notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  activatedAt: timestamptz('activated_at'),
  retireAfter: timestamptz('retire_after'),
  retiredAt: timestamptz('retired_at'),
});
export type DkimKeyRow = typeof dkimKeys.$inferSelect;
