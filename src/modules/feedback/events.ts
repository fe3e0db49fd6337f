import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';

export const complaintReceived = defineEvent(
  'complaint.received',
  'A feedback-loop report (ARF) arrived and was recorded. When `matched`, it names a message this organisation sent and a recipient it was delivered to; a complaining type (abuse, fraud, virus or none given) then suppresses that recipient. A repeated report about the same recipient of the same message is not announced again.',
  z.object({
    complaint_id: z.uuid(),
    matched: z.boolean(),
    match_method: z.enum(['verp', 'message_id']).nullable(),
    message_id: z.uuid().nullable().describe('The outbound message complained about'),
    recipient: z
      .string()
      .nullable()
      .describe('The complaining address; as the report named it when unmatched'),
    domain: z.string().describe('The hosted domain concerned'),
    sender: z.string().nullable().describe('The sending mailbox'),
    feedback_type: z
      .string()
      .nullable()
      .describe('Feedback-Type, lower case; null when the report gave none'),
    suppressed: z.boolean().describe('The recipient is on the suppression list because of this report'),
    received_via: z.enum(['verp', 'feedback_address']),
    user_agent: z.string().nullable().describe('The feedback loop that sent it'),
  }),
);
