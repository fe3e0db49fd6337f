import { boolean, integer, jsonb, pgTable, primaryKey, text, timestamptz, uuid } from '../../core/orm.ts';
import type { Priority, TicketStatus } from '../helpdesk/tables.ts';

export const TRIGGERS = ['ticket.created', 'ticket.updated', 'ticket.commented', 'time'] as const;
export type Trigger = (typeof TRIGGERS)[number];

export const OPS = [
  'equals',
  'not_equals',
  'in',
  'not_in',
  'contains',
  'not_contains',
  'is_empty',
  'is_not_empty',
  'gt',
  'gte',
  'lt',
  'lte',
  'changed',
  'changed_to',
  'changed_from',
] as const;
export type Op = (typeof OPS)[number];

/** One test on a ticket (or the comment or change that triggered the rule). */
export interface Condition {
  field: string;
  op: Op;
  value?: unknown;
}

export type Action =
  | { type: 'assign'; assignee_id?: string | null; team_id?: string | null }
  | {
      type: 'set_fields';
      status?: TicketStatus;
      priority?: Priority;
      subject?: string;
      category_id?: string | null;
      department_id?: string | null;
      customer_id?: string | null;
      team_id?: string | null;
      assignee_id?: string | null;
      due_at?: string | null;
      custom_fields?: Record<string, unknown>;
    }
  | { type: 'add_tags'; tags: string[] }
  | { type: 'remove_tags'; tags: string[] }
  | { type: 'reply_template'; template_id: string }
  | { type: 'note'; body: string }
  | { type: 'notify_teams'; message: string }
  | { type: 'close' };

export type RunOutcome = 'applied' | 'not_matched' | 'loop_stopped' | 'failed';

export const helpdeskTemplates = pgTable('helpdesk_templates', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  name: text('name').notNull(),
  subject: text('subject'),
  body: text('body').notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});

export const helpdeskAutomations = pgTable('helpdesk_automations', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  name: text('name').notNull(),
  enabled: boolean('enabled').notNull().default(true),
  position: integer('position').notNull().default(0),
  trigger: text('trigger').$type<Trigger>().notNull(),
  conditions: jsonb('conditions').$type<Condition[]>().notNull(),
  actions: jsonb('actions').$type<Action[]>().notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});

export const helpdeskAutomationRuns = pgTable('helpdesk_automation_runs', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  automationId: uuid('automation_id').notNull(),
  ticketId: uuid('ticket_id').notNull(),
  ticketNumber: integer('ticket_number').notNull(),
  trigger: text('trigger').$type<Trigger>().notNull(),
  eventId: uuid('event_id'),
  outcome: text('outcome').$type<RunOutcome>().notNull(),
  actions: jsonb('actions').$type<Record<string, unknown>[]>().notNull(),
  error: text('error'),
  depth: integer('depth').notNull(),
  chain: uuid('chain').array().notNull().default([]),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});

export const helpdeskAutomationFires = pgTable(
  'helpdesk_automation_fires',
  {
    automationId: uuid('automation_id').notNull(),
    ticketId: uuid('ticket_id').notNull(),
    ticketUpdatedAt: timestamptz('ticket_updated_at').notNull(),
    firedAt: timestamptz('fired_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.automationId, t.ticketId] })],
);

export type TemplateRow = typeof helpdeskTemplates.$inferSelect;
export type AutomationRow = typeof helpdeskAutomations.$inferSelect;
export type RunRow = typeof helpdeskAutomationRuns.$inferSelect;
