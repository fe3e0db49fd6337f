// SMS events. Each outbound one carries the message's campaign and campaign recipient when it has them,
// so campaigns follow their progress from the event stream alone.
import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';

const price = z.object({ amount: z.string(), currency: z.string() });

const message = z.object({
  message_id: z.uuid(),
  to: z.string().describe('E.164'),
  sender: z.string().nullable(),
  provider_account_id: z.uuid(),
  parts: z.number().int(),
  tags: z.array(z.string()),
  kind: z.enum(['standard', 'help']).describe('`help`: the reply to a HELP keyword'),
  campaign_id: z.uuid().optional(),
  campaign_recipient_id: z.uuid().optional(),
});

export const smsQueued = defineEvent(
  'sms.queued',
  'An SMS was accepted and queued (status `scheduled` when it waits for its send_at)',
  message.extend({
    status: z.enum(['queued', 'scheduled']),
    encoding: z.enum(['gsm7', 'ucs2']),
    send_at: z.string().nullable(),
  }),
);
export const smsSent = defineEvent(
  'sms.sent',
  'The gateway took the SMS and handed it on to the network',
  message.extend({ provider: z.string(), provider_id: z.string(), price: price.nullable() }),
);
export const smsDelivered = defineEvent(
  'sms.delivered',
  'The gateway reported the SMS delivered to the handset (it was sent, whether or not sms.sent came first)',
  message.extend({ provider: z.string(), provider_id: z.string(), price: price.nullable() }),
);
export const smsFailed = defineEvent(
  'sms.failed',
  'The SMS was not delivered: `failed` (not sent: refused, or retries and failover used up) or `undelivered` (sent, the network did not deliver it)',
  message.extend({
    status: z.enum(['failed', 'undelivered']),
    provider: z.string().nullable(),
    provider_id: z.string().nullable(),
    error_code: z.string().nullable(),
    error: z.string().nullable(),
  }),
);
export const smsCancelled = defineEvent(
  'sms.cancelled',
  'A queued or scheduled SMS was cancelled before it was sent: by the API, or its number opted out',
  message.extend({ reason: z.enum(['cancelled', 'opted_out']) }),
);
export const smsReceived = defineEvent(
  'sms.received',
  'An SMS reached one of the organisation’s numbers; `keyword` when it was STOP, START or HELP (or a synonym)',
  z.object({
    inbound_id: z.uuid(),
    from: z.string().describe('E.164 of the sender'),
    to: z.string().describe('Our number or sender id'),
    body: z.string(),
    keyword: z.enum(['stop', 'start', 'help']).nullable(),
    provider_account_id: z.uuid(),
    received_at: z.string(),
  }),
);
export const smsOptedOut = defineEvent(
  'sms.opted_out',
  'A number opted out of the organisation’s SMS: by a STOP keyword, or through the API',
  z.object({
    number: z.string(),
    source: z.enum(['keyword', 'api']),
    keyword: z.string().nullable(),
    cancelled: z.number().int().describe('Queued messages to the number that were cancelled'),
  }),
);
export const smsOptedIn = defineEvent(
  'sms.opted_in',
  'A number that had opted out may be sent to again: by a START keyword, or through the API',
  z.object({ number: z.string(), source: z.enum(['keyword', 'api']), keyword: z.string().nullable() }),
);
