import { boolean, integer, jsonb, pgTable, text, timestamptz, uuid } from '../../core/orm.ts';

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

/** One failed item of a job: which (an address, a domain) and why. */
export interface ItemError {
  item: string;
  message: string;
}

export const trackedJobs = pgTable('tracked_jobs', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  kind: text('kind').notNull(),
  state: text('state').$type<JobState>().notNull(),
  done: integer('done').notNull().default(0),
  total: integer('total').notNull().default(0),
  errors: jsonb('errors').$type<ItemError[]>().notNull().default([]),
  errorCount: integer('error_count').notNull().default(0),
  input: jsonb('input').$type<unknown>().notNull(),
  result: jsonb('result').$type<Record<string, unknown> | null>(),
  failure: text('failure'),
  cancelRequested: boolean('cancel_requested').notNull().default(false),
  leaseOwner: text('lease_owner'),
  leaseUntil: timestamptz('lease_until'),
  idempotencyKey: text('idempotency_key'),
  requestHash: text('request_hash'),
  createdBy: text('created_by'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  startedAt: timestamptz('started_at'),
  finishedAt: timestamptz('finished_at'),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});
export type JobRow = typeof trackedJobs.$inferSelect;
