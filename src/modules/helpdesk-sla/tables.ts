import {
  bigint,
  boolean,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  real,
  text,
  timestamptz,
  uuid,
} from '../../core/orm.ts';
import type { Priority, TicketStatus } from '../helpdesk/tables.ts';
import type { TicketSnapshot } from '../helpdesk/events.ts';
import type { BusinessInterval } from './business-hours.ts';

export const TARGETS = ['first_response', 'next_response', 'resolution'] as const;
export type Target = (typeof TARGETS)[number];
export type TimerState = 'running' | 'paused' | 'met' | 'stopped';

export type EscalationAction =
  | { type: 'reassign'; assignee_id?: string | null; team_id?: string | null }
  | { type: 'raise_priority' }
  | { type: 'notify_email'; to: string[] }
  | { type: 'notify_teams' };

export interface EscalationStep {
  at: 'warning' | 'breach';
  target: Target | 'any';
  actions: EscalationAction[];
}

export const slaCalendars = pgTable('helpdesk_sla_calendars', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  name: text('name').notNull(),
  timeZone: text('time_zone').notNull(),
  hours: jsonb('hours').$type<BusinessInterval[]>().notNull(),
  holidays: text('holidays').array().notNull().default([]),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});

export const slaPolicies = pgTable('helpdesk_sla_policies', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  name: text('name').notNull(),
  position: integer('position').notNull(),
  enabled: boolean('enabled').notNull().default(true),
  priorities: text('priorities').array().$type<Priority[]>().notNull().default([]),
  categoryIds: uuid('category_ids').array().notNull().default([]),
  customerIds: uuid('customer_ids').array().notNull().default([]),
  firstResponseMinutes: integer('first_response_minutes'),
  nextResponseMinutes: integer('next_response_minutes'),
  resolutionMinutes: integer('resolution_minutes'),
  calendarId: uuid('calendar_id'),
  warnAt: real('warn_at'),
  escalations: jsonb('escalations').$type<EscalationStep[]>().notNull().default([]),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});

export const slaTickets = pgTable('helpdesk_sla_tickets', {
  ticketId: uuid('ticket_id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  policyId: uuid('policy_id'),
  status: text('status').$type<TicketStatus>().notNull(),
  responded: boolean('responded').notNull().default(false),
  awaitingSince: timestamptz('awaiting_since'),
  createdAt: timestamptz('created_at').notNull(),
  snapshot: jsonb('snapshot').$type<TicketSnapshot>().notNull(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});

export const slaTimers = pgTable(
  'helpdesk_sla_timers',
  {
    ticketId: uuid('ticket_id').notNull(),
    target: text('target').$type<Target>().notNull(),
    organizationId: uuid('organization_id').notNull(),
    policyId: uuid('policy_id'),
    calendarId: uuid('calendar_id'),
    targetMinutes: integer('target_minutes').notNull(),
    warnShare: real('warn_share'),
    state: text('state').$type<TimerState>().notNull(),
    startedAt: timestamptz('started_at').notNull(),
    countedFrom: timestamptz('counted_from'),
    elapsedMs: bigint('elapsed_ms', { mode: 'number' }).notNull().default(0),
    warnAt: timestamptz('warn_at'),
    dueAt: timestamptz('due_at'),
    warned: boolean('warned').notNull().default(false),
    breached: boolean('breached').notNull().default(false),
    warnedAt: timestamptz('warned_at'),
    breachedAt: timestamptz('breached_at'),
    metAt: timestamptz('met_at'),
  },
  (t) => [primaryKey({ columns: [t.ticketId, t.target] })],
);

export type CalendarRow = typeof slaCalendars.$inferSelect;
export type PolicyRow = typeof slaPolicies.$inferSelect;
export type SlaTicketRow = typeof slaTickets.$inferSelect;
export type TimerRow = typeof slaTimers.$inferSelect;
