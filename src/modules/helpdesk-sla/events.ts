// SLA events: a target's warning share passed, or the target itself. Each carries the ticket as it is
// after the escalation steps ran, what a notification card shows (number, subject, target, due time,
// policy) and the steps taken, so the Teams module can post a card when `notify_teams` is set.
import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';
import { actorSchema, ticketSnapshot } from '../helpdesk/events.ts';
import { TARGETS } from './tables.ts';

const sla = z.object({
  policy_id: z.uuid().nullable(),
  policy_name: z.string().nullable(),
  target: z.enum(TARGETS),
  target_minutes: z.number().int(),
  started_at: z.string(),
  warn_at: z.string().nullable(),
  due_at: z.string().describe('When the target is (or was) breached'),
  calendar_id: z.uuid().nullable().describe('The business-hours calendar; null: 24/7'),
});

const escalation = z.object({
  actions: z
    .array(z.enum(['reassign', 'raise_priority', 'notify_email', 'notify_teams']))
    .describe('The escalation steps taken, in order'),
  notify_teams: z.boolean().describe('A step asked for a Teams notification'),
});

const payload = z.object({ ticket: ticketSnapshot, actor: actorSchema, sla, escalation });

export const ticketSlaWarning = defineEvent(
  'ticket.sla_warning',
  'An SLA target of a ticket passed its warning share (e.g. 80 % of the business time allowed)',
  payload,
);
export const ticketSlaBreached = defineEvent(
  'ticket.sla_breached',
  'An SLA target of a ticket was missed: its due time passed without a reply or resolution',
  payload,
);
