// What automation tells others: a rule's notify_teams action. The Teams notifications module posts a card
// for it; webhooks may subscribe to it like any other event.
import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';
import { actorSchema, ticketSnapshot } from '../helpdesk/events.ts';

export const ticketAutomationNotify = defineEvent(
  'ticket.automation_notify',
  'An automation rule asked for a notification (Teams) about a ticket',
  z.object({
    ticket: ticketSnapshot,
    actor: actorSchema,
    rule_id: z.uuid(),
    rule_name: z.string(),
    ticket_number: z.number().int(),
    subject: z.string(),
    message: z.string().describe('The rule’s message, rendered (Liquid)'),
  }),
);
