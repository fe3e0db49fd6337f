// Helpdesk events. Each carries the ticket as it is after the change and the actor who made it, so the
// SLA, automation and notification modules (which react to them inside the emitting transaction) need
// no second read, and automation can tell its own changes from everyone else's.
import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';
import { PRIORITIES, STATUSES } from './tables.ts';

export const actorSchema = z.object({
  type: z.enum(['user', 'api_key', 'customer', 'system', 'automation']),
  id: z.string().nullable().describe('The user, API key, contact or automation rule'),
  /** How many automation rules led to this change (loop protection). */
  depth: z.number().int().min(0).default(0),
});
export type Actor = z.input<typeof actorSchema>;

export const ticketSnapshot = z.object({
  id: z.uuid(),
  number: z.number().int(),
  desk_id: z.uuid(),
  subject: z.string(),
  status: z.enum(STATUSES),
  priority: z.enum(PRIORITIES),
  requester_id: z.uuid(),
  requester_email: z.string(),
  customer_id: z.uuid().nullable(),
  category_id: z.uuid().nullable(),
  department_id: z.uuid().nullable(),
  team_id: z.uuid().nullable(),
  assignee_id: z.uuid().nullable(),
  tags: z.array(z.string()),
  custom_fields: z.record(z.string(), z.unknown()),
  due_at: z.string().nullable(),
  source: z.string(),
  // Absent from snapshots kept before they were added (the SLA module keeps the last one it saw).
  first_response_at: z.string().nullable().default(null),
  resolved_at: z.string().nullable().default(null),
  closed_at: z.string().nullable().default(null),
  created_at: z.string(),
  updated_at: z.string(),
});
export type TicketSnapshot = z.infer<typeof ticketSnapshot>;

const base = z.object({ ticket: ticketSnapshot, actor: actorSchema });

export const ticketCreated = defineEvent(
  'ticket.created',
  'A ticket was opened (by mail, API, chat or a split)',
  base,
);
export const ticketUpdated = defineEvent(
  'ticket.updated',
  'Fields of a ticket changed; `changes` holds each changed field as [before, after]',
  base.extend({ changes: z.record(z.string(), z.tuple([z.unknown(), z.unknown()])) }),
);
export const ticketCommented = defineEvent(
  'ticket.commented',
  'A comment was added: a customer’s mail, an agent’s public reply (sent by mail) or an internal note',
  base.extend({
    comment: z.object({
      id: z.uuid(),
      visibility: z.enum(['public', 'internal']),
      author_type: z.enum(['customer', 'agent', 'system']),
      author_user_id: z.uuid().nullable(),
      body: z.string().describe('The first 2,000 characters'),
    }),
  }),
);
export const ticketMentioned = defineEvent(
  'ticket.mentioned',
  'Agents were mentioned in a comment (they are told by mail)',
  base.extend({ comment_id: z.uuid(), user_ids: z.array(z.uuid()) }),
);
export const ticketMerged = defineEvent(
  'ticket.merged',
  'A ticket was merged into another: its comments moved there and it was closed',
  base.extend({ into: ticketSnapshot }),
);
export const ticketSplit = defineEvent(
  'ticket.split',
  'Comments of a ticket were moved to a new ticket',
  base.extend({ new_ticket: ticketSnapshot }),
);
export const ticketApprovalRequested = defineEvent(
  'ticket.approval_requested',
  'A ticket of a category that needs approval waits for its approvers (they are asked by mail)',
  base.extend({ approver_ids: z.array(z.uuid()) }),
);
export const ticketApprovalDecided = defineEvent(
  'ticket.approval_decided',
  'An approver approved or rejected a ticket, by API or by replying to the approval mail',
  base.extend({
    approval: z.object({
      id: z.uuid(),
      approver_id: z.uuid(),
      decision: z.enum(['approved', 'rejected']),
      comment: z.string().nullable(),
      via: z.enum(['api', 'mail']),
    }),
  }),
);
export const ticketMailIgnored = defineEvent(
  'ticket.mail_ignored',
  'Mail to a desk address opened no ticket: an auto-reply, a bounce, a loop or a sender over its limit',
  z.object({ desk_id: z.uuid(), message_id: z.uuid(), from: z.string().nullable(), reason: z.string() }),
);
