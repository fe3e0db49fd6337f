import { boolean, integer, jsonb, pgTable, primaryKey, text, timestamptz, uuid } from '../../core/orm.ts';
import type { Finding, SubjectKind } from './inputs/types.ts';

export type Band = 'good' | 'fair' | 'poor' | 'critical';
export type ActionKind = 'pause' | 'slow_warmup' | 'dns_republish' | 'dkim_rotate';
export type ActionState = 'applied' | 'failed' | 'undone';

/** A finding as stored: which input found it. */
export type StoredFinding = Finding & { input: string };

export const healthScores = pgTable(
  'health_scores',
  {
    kind: text('kind').$type<SubjectKind>().notNull(),
    subjectId: uuid('subject_id').notNull(),
    organizationId: uuid('organization_id').notNull(),
    domainId: uuid('domain_id').notNull(),
    mailboxId: uuid('mailbox_id'),
    name: text('name').notNull(),
    score: integer('score'),
    band: text('band').$type<Band>(),
    findings: jsonb('findings').$type<StoredFinding[]>().notNull().default([]),
    computedAt: timestamptz('computed_at'),
    changedAt: timestamptz('changed_at'),
    historyAt: timestamptz('history_at'),
    belowSince: timestamptz('below_since'),
    acknowledgedAt: timestamptz('acknowledged_at'),
    pausedActionId: uuid('paused_action_id'),
    slowedActionId: uuid('slowed_action_id'),
    dueAt: timestamptz('due_at').notNull().defaultNow(),
    leasedUntil: timestamptz('leased_until'),
    marks: integer('marks').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.kind, t.subjectId] })],
);
export type HealthScoreRow = typeof healthScores.$inferSelect;

export const healthHistory = pgTable('health_history', {
  id: uuid('id').primaryKey(),
  kind: text('kind').$type<SubjectKind>().notNull(),
  subjectId: uuid('subject_id').notNull(),
  organizationId: uuid('organization_id').notNull(),
  at: timestamptz('at').notNull(),
  score: integer('score').notNull(),
  band: text('band').$type<Band>().notNull(),
  codes: text('codes').array().notNull(),
});
export type HealthHistoryRow = typeof healthHistory.$inferSelect;

export const healthPolicies = pgTable('health_policies', {
  organizationId: uuid('organization_id').primaryKey(),
  enabled: boolean('enabled').notNull(),
  pauseBelow: integer('pause_below').notNull(),
  slowWarmupBelow: integer('slow_warmup_below').notNull(),
  autoResume: boolean('auto_resume').notNull(),
  resumeAt: integer('resume_at').notNull(),
  republishDns: boolean('republish_dns').notNull(),
  notifyEmail: boolean('notify_email').notNull(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
  updatedBy: uuid('updated_by'),
});
export type HealthPolicyRow = typeof healthPolicies.$inferSelect;

export const healthActions = pgTable('health_actions', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  kind: text('kind').$type<SubjectKind>().notNull(),
  subjectId: uuid('subject_id').notNull(),
  domainId: uuid('domain_id').notNull(),
  name: text('name').notNull(),
  action: text('action').$type<ActionKind>().notNull(),
  automatic: boolean('automatic').notNull(),
  reason: text('reason').notNull(),
  score: integer('score'),
  details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
  state: text('state').$type<ActionState>().notNull(),
  error: text('error'),
  actorId: uuid('actor_id'),
  createdAt: timestamptz('created_at').notNull(),
  undoneAt: timestamptz('undone_at'),
  undoneBy: uuid('undone_by'),
  undoReason: text('undo_reason'),
});
export type HealthActionRow = typeof healthActions.$inferSelect;
