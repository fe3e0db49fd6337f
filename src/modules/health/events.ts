import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';

const subject = z.object({
  kind: z.enum(['domain', 'mailbox']),
  subject_id: z.uuid().describe('The domain or mailbox'),
  domain_id: z.uuid(),
  name: z.string().describe('The domain name or the mailbox address'),
});
const band = z.enum(['good', 'fair', 'poor', 'critical']);

export const healthChanged = defineEvent(
  'health.changed',
  "A domain's or mailbox's health score moved into another band, or its findings changed",
  subject.extend({
    score: z.number().int(),
    band,
    previous_score: z.number().int().nullable(),
    previous_band: band.nullable(),
    findings: z.array(z.string()).describe('The codes of every current finding'),
    added: z.array(z.string()).describe('Codes of findings that appeared'),
    removed: z.array(z.string()).describe('Codes of findings that went away'),
  }),
);

export const healthRepair = defineEvent(
  'health.repair',
  'A repair action was taken (applied or failed) or undone: a sender paused or resumed, its warmup slowed or restored, DNS re-published, DKIM rotated',
  subject.extend({
    action_id: z.uuid(),
    action: z.enum(['pause', 'slow_warmup', 'dns_republish', 'dkim_rotate']),
    state: z.enum(['applied', 'failed', 'undone']),
    automatic: z.boolean().describe('Taken by the policy (true) or asked for (false)'),
    reason: z.string(),
    score: z.number().int().nullable(),
    detail: z.string().nullable().describe('What it did (or why it failed, or why it was undone)'),
  }),
);
