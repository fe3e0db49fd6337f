import { boolean, pgTable, primaryKey, text, timestamptz, uuid } from '../../core/orm.ts';
import type { TargetKind } from './lists.ts';

export const blocklistOrganizations = pgTable('blocklist_organizations', {
  organizationId: uuid('organization_id').primaryKey(),
  checkedAt: timestamptz('checked_at'),
  leasedUntil: timestamptz('leased_until'),
});

export const blocklistIps = pgTable('blocklist_ips', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  ip: text('ip').notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});
export type BlocklistIpRow = typeof blocklistIps.$inferSelect;

export const blocklistLinks = pgTable(
  'blocklist_links',
  {
    organizationId: uuid('organization_id').notNull(),
    domain: text('domain').notNull(),
    seenAt: timestamptz('seen_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.domain] })],
);

export const blocklistResults = pgTable(
  'blocklist_results',
  {
    organizationId: uuid('organization_id').notNull(),
    target: text('target').notNull(),
    kind: text('kind').$type<TargetKind>().notNull(),
    list: text('list').notNull(),
    listed: boolean('listed').notNull(),
    code: text('code'),
    meaning: text('meaning'),
    error: text('error'),
    checkedAt: timestamptz('checked_at').notNull(),
    listedSince: timestamptz('listed_since'),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.target, t.list] })],
);
export type BlocklistResultRow = typeof blocklistResults.$inferSelect;
