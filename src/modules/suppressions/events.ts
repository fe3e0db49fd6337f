import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';

const suppression = z.object({
  suppression_id: z.uuid(),
  address: z.string(),
  reason: z.enum(['hard_bounce', 'manual', 'complaint']),
});

export const suppressionCreated = defineEvent(
  'suppression.created',
  'An address was added to the suppression list: mail to it is held',
  suppression.extend({ detail: z.string().nullable(), message_id: z.uuid().nullable() }),
);
export const suppressionDeleted = defineEvent(
  'suppression.deleted',
  'An address was taken off the suppression list',
  suppression,
);
