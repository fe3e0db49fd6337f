import { boolean, integer, jsonb, pgTable, primaryKey, text, timestamptz, uuid } from '../../core/orm.ts';
import type { CurveKind } from './curves.ts';

export const ipPools = pgTable('ip_pools', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  name: text('name').notNull(),
  warmup: text('warmup').$type<CurveKind>().notNull(),
  /** The custom curve's daily caps; null for a named curve. */
  warmupCaps: integer('warmup_caps').array(),
  isDefault: boolean('is_default').notNull().default(false),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});
export type IpPoolRow = typeof ipPools.$inferSelect;

export const ipPoolIps = pgTable(
  'ip_pool_ips',
  {
    poolId: uuid('pool_id').notNull(),
    organizationId: uuid('organization_id').notNull(),
    ip: text('ip').notNull(),
    addedAt: timestamptz('added_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.poolId, t.ip] })],
);

export const ipPoolDomains = pgTable('ip_pool_domains', {
  domainId: uuid('domain_id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  poolId: uuid('pool_id').notNull(),
  name: text('name').notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});

export const ipPoolMailboxes = pgTable('ip_pool_mailboxes', {
  mailboxId: uuid('mailbox_id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  poolId: uuid('pool_id').notNull(),
  address: text('address').notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});

export type PtrStatus = 'pass' | 'fail' | 'error';

export interface PtrFinding {
  code: string;
  severity: 'error' | 'warning';
  message: string;
}

/** Installation-wide; dates are read as text (YYYY-MM-DD) by the store's own queries. */
export const sendingIps = pgTable('sending_ips', {
  ip: text('ip').primaryKey(),
  ptrStatus: text('ptr_status').$type<PtrStatus>(),
  ptrNames: text('ptr_names').array().notNull(),
  ptrConfirmed: text('ptr_confirmed').array().notNull(),
  heloName: text('helo_name'),
  ptrFindings: jsonb('ptr_findings').$type<PtrFinding[]>().notNull(),
  ptrCheckedAt: timestamptz('ptr_checked_at'),
  ptrPassed: boolean('ptr_passed'),
  leasedUntil: timestamptz('leased_until'),
});
