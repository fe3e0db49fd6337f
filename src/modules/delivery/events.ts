import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';

const recipient = z.object({
  message_id: z.uuid(),
  delivery_id: z.uuid(),
  recipient: z.string(),
});

export const messageQueued = defineEvent(
  'message.queued',
  'An outbound message was accepted (send API or SMTP submission) and queued for delivery',
  z.object({
    message_id: z.uuid(),
    message_id_header: z.string(),
    from: z.string(),
    recipients: z.array(z.string()),
    held: z.number().int().describe('Recipients held (suppressed or over a send limit)'),
    send_at: z.string().nullable().describe('When a scheduled message becomes due'),
    tags: z.array(z.string()),
  }),
);

export const messageHeld = defineEvent(
  'message.held',
  'A recipient of an outbound message is held: suppressed, over a send limit, or its sender is paused (released when the sender is resumed). Release it via /v1/queue',
  recipient.extend({
    reason: z.enum(['suppressed', 'mailbox_daily_limit', 'organization_hourly_limit', 'sender_paused']),
    detail: z.string().nullable(),
  }),
);

const attempt = recipient.extend({
  attempt: z.number().int(),
  mx: z.string().nullable(),
  code: z.number().int().nullable(),
  response: z.string(),
});

export const messageDelivered = defineEvent(
  'message.delivered',
  "The recipient's mail server accepted the message",
  attempt.extend({ tls: z.boolean() }),
);

export const messageDeferred = defineEvent(
  'message.deferred',
  'A delivery attempt failed temporarily; it is retried later',
  attempt.extend({ next_attempt_at: z.string() }),
);

export const messageBounced = defineEvent(
  'message.bounced',
  'Delivery failed for good: the remote server refused the recipient (smtp), a bounce report arrived later (report), or retries ran out (expired)',
  attempt.extend({
    source: z.enum(['smtp', 'report', 'expired']),
    status: z.string().nullable().describe('Enhanced status code, e.g. 5.1.1'),
    suppressed: z.boolean().describe('The address was added to the suppression list'),
  }),
);

export const messageCancelled = defineEvent(
  'message.cancelled',
  'A queued or held recipient was cancelled through /v1/queue',
  recipient,
);
