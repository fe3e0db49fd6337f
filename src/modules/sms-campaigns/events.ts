// Campaign events. Each carries the campaign as it is after the change, with its progress, so a
// webhook receiver needs no second read.
import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';
import { CAMPAIGN_STATUSES } from './tables.ts';

export const campaignSnapshot = z.object({
  id: z.uuid(),
  name: z.string(),
  status: z.enum(CAMPAIGN_STATUSES),
  template_id: z.uuid().nullable(),
  list_id: z.uuid().nullable(),
  total: z.number().int().describe('Recipients taken from the list (0 until the campaign starts)'),
  progress: z
    .record(z.string(), z.number().int())
    .describe(
      'Recipients by status: pending, queued, sent, delivered, failed, undelivered, skipped, cancelled',
    ),
});
export type CampaignSnapshot = z.infer<typeof campaignSnapshot>;

const base = z.object({ campaign: campaignSnapshot });

export const campaignCreated = defineEvent('campaign.created', 'An SMS campaign was created (a draft)', base);
export const campaignStarted = defineEvent(
  'campaign.started',
  'An SMS campaign became active: its recipients were taken from its list and sending began',
  base.extend({ excluded: z.number().int().describe('List members left out because they opted out') }),
);
export const campaignPaused = defineEvent(
  'campaign.paused',
  'An SMS campaign was paused: nothing more is queued, and its queued messages not yet sent went back to pending',
  base.extend({ returned: z.number().int().describe('Queued messages taken back') }),
);
export const campaignResumed = defineEvent(
  'campaign.resumed',
  'A paused SMS campaign goes on from where it stopped',
  base,
);
export const campaignCompleted = defineEvent(
  'campaign.completed',
  'Every recipient of an SMS campaign reached a final status',
  base,
);
export const campaignCancelled = defineEvent(
  'campaign.cancelled',
  'An SMS campaign was cancelled: its queued messages not yet sent were withdrawn and its pending recipients will not be sent to',
  base,
);
