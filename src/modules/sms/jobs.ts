import type { Jobs } from '../../core/jobs.ts';
import type { SmsService } from './service.ts';

export const CLEANUP_QUEUE = 'sms.cleanup';

export function registerSmsJobs(jobs: Jobs, sms: SmsService): void {
  // Receipts whose message never got its provider id (a gateway's report for something not sent from
  // here) are dropped after a day; the dispatchers apply the others as soon as they match.
  jobs.define(CLEANUP_QUEUE, {
    retryLimit: 1,
    handler: async () => {
      await sms.forgetOldOrphans();
    },
  });
  jobs.schedule(CLEANUP_QUEUE, '41 * * * *');
}
