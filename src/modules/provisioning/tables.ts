import { integer, jsonb, pgTable, text, timestamptz, uuid } from '../../core/orm.ts';

export const provisions = pgTable('provisions', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  input: jsonb('input').$type<unknown>().notNull(),
  announcedAt: timestamptz('announced_at'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});
export type ProvisionRow = typeof provisions.$inferSelect;

export type DomainStepState = 'pending' | 'running' | 'waiting' | 'done' | 'stuck' | 'failed';

export const provisionDomains = pgTable('provision_domains', {
  id: uuid('id').primaryKey(),
  provisionId: uuid('provision_id').notNull(),
  organizationId: uuid('organization_id').notNull(),
  position: integer('position').notNull(),
  name: text('name').notNull(),
  step: text('step').notNull(),
  state: text('state').$type<DomainStepState>().notNull(),
  domainId: uuid('domain_id'),
  detail: jsonb('detail').$type<object>().notNull().default({}),
  timings: jsonb('timings').$type<StepTiming[]>().notNull().default([]),
  error: text('error'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});
export type ProvisionDomainRow = typeof provisionDomains.$inferSelect;

export interface StepTiming {
  step: string;
  started_at: string;
  finished_at: string | null;
}
