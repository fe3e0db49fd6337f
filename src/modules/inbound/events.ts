import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';

export const messageReceived = defineEvent(
  'message.received',
  'An incoming message was processed: routed to mailboxes, aliases, rules or forwards, or refused by a rule',
  z.object({
    message_id: z.uuid(),
    domain_id: z.uuid().nullable(),
    status: z.enum(['delivered', 'failed', 'rejected', 'quarantined']),
    mail_from: z.string(),
    rcpt_to: z.array(z.string()),
    from: z.string().nullable(),
    subject: z.string().nullable(),
    size: z.number().int(),
    forwarded: z.number().int().describe('Forwarded copies queued for outbound delivery'),
  }),
);
