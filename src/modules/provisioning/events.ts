import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';

export const provisionStepCompleted = defineEvent(
  'provision.step_completed',
  'A domain of a provisioning finished one of its steps (register, domain, zone, nameservers, dns, verify, inboxes)',
  z.object({
    provision_id: z.uuid(),
    domain: z.string(),
    domain_id: z.uuid().nullable(),
    step: z.string(),
    next_step: z.string(),
  }),
);
export const provisionCompleted = defineEvent(
  'provision.completed',
  'Every domain of a provisioning has working inboxes',
  z.object({
    provision_id: z.uuid(),
    domains: z.array(
      z.object({ name: z.string(), domain_id: z.uuid().nullable(), inboxes: z.number().int() }),
    ),
  }),
);
export const provisionFailed = defineEvent(
  'provision.failed',
  'A provisioning ended with domains that failed, or are stuck waiting for DNS (each with its step and reason)',
  z.object({
    provision_id: z.uuid(),
    domains: z.array(
      z.object({ name: z.string(), state: z.string(), step: z.string(), error: z.string().nullable() }),
    ),
  }),
);
