import type { Jobs } from '../../core/jobs.ts';
import type { EventsService } from '../events/service.ts';
import { DELIVER_QUEUE, SWEEP_QUEUE, type WebhooksService } from './service.ts';

export const RETENTION_QUEUE = 'events.retention';

export function registerWebhookJobs(
  jobs: Jobs,
  webhooks: WebhooksService,
  events: EventsService,
  options: { concurrency: number; retentionMs: number },
): void {
  // Per endpoint, at most one wake-up waits and one runs; the lease inside keeps order regardless.
  jobs.define<{ endpointId: string }>(DELIVER_QUEUE, {
    policy: 'stately',
    concurrency: options.concurrency,
    retryLimit: 10,
    retryDelay: 5,
    expireInSeconds: 900,
    handler: ({ endpointId }) => webhooks.drain(endpointId),
  });
  jobs.define(SWEEP_QUEUE, { retryLimit: 1, handler: () => webhooks.sweep() });
  jobs.schedule(SWEEP_QUEUE, '* * * * *');

  // Daily: events and finished deliveries older than MAILROOM_EVENT_RETENTION.
  jobs.define(RETENTION_QUEUE, {
    retryLimit: 3,
    handler: async () => {
      const before = new Date(Date.now() - options.retentionMs);
      await webhooks.deleteOlderThan(before);
      await events.deleteOlderThan(before);
    },
  });
  jobs.schedule(RETENTION_QUEUE, '41 3 * * *');
}
