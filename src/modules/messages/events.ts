import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';
import { MESSAGE_STATUSES } from './tables.ts';

const status = z.enum(MESSAGE_STATUSES);
const message = z.object({
  message_id: z.uuid(),
  direction: z.enum(['inbound', 'outbound', 'stored', 'synced']),
  status,
});

export const messageStatusChanged = defineEvent(
  'message.status_changed',
  "A message's status was changed by hand (to delivered, failed, rejected or quarantined)",
  message.extend({ previous_status: status }),
);
export const messageDeleted = defineEvent(
  'message.deleted',
  'A message was deleted with its routing record, its mailbox copies and its raw content',
  message,
);
