import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';

const enrollment = z.object({
  mailbox_id: z.string().nullable(),
  account_id: z.string().nullable(),
  address: z.string(),
});

export const warmupEnrolled = defineEvent(
  'warmup.enrolled',
  'A mailbox or an external account joined a warmup pool',
  enrollment.extend({ pool: z.enum(['organization', 'shared']), curve: z.string() }),
);
export const warmupPaused = defineEvent(
  'warmup.paused',
  'Warmup stopped sending for a mailbox: paused by a person (manual) or by its health (health)',
  enrollment.extend({ reason: z.enum(['manual', 'health']) }),
);
export const warmupResumed = defineEvent('warmup.resumed', 'Warmup sends again for a mailbox', enrollment);
export const warmupRemoved = defineEvent(
  'warmup.removed',
  'A mailbox or an account left warmup; its warmup history went with it',
  enrollment,
);
export const warmupRescued = defineEvent(
  'warmup.rescued',
  'A warmup message was found in the spam folder of the receiving mailbox and moved to its inbox',
  enrollment.extend({
    warmup_message_id: z.string(),
    from: z.string().describe('The sending address'),
    provider: z.string().describe("The receiving mailbox's provider: gmail, microsoft, yahoo or other"),
  }),
);
