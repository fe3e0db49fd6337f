import type { Jobs } from '../../core/jobs.ts';
import type { OutboundService } from './service.ts';

export const CLEANUP_QUEUE = 'delivery.cleanup';

export function registerDeliveryJobs(jobs: Jobs, outbound: OutboundService): void {
  jobs.define(CLEANUP_QUEUE, {
    retryLimit: 1,
    handler: async () => {
      await outbound.forgetOldSendRequests();
    },
  });
  jobs.schedule(CLEANUP_QUEUE, '17 * * * *');
}
