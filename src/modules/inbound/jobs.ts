import type { Jobs } from '../../core/jobs.ts';
import { PROCESS_QUEUE } from './commit-queue.ts';
import type { InboundService } from './service.ts';

export const RECOVER_QUEUE = 'inbound.recover';
const PROCESS_RETRIES = 5;
/** An accepted message whose job has not finished it after this long is queued again. */
const STALE_MS = 5 * 60_000;

export function registerInboundJobs(jobs: Jobs, inbound: InboundService): void {
  jobs.define<{ message_id: string }>(PROCESS_QUEUE, {
    // Two fetchers of 16, each batch's jobs side by side: enough in flight to keep the pool's
    // connections busy while parsing runs on the CPU.
    concurrency: 2,
    batchSize: 16,
    retryLimit: PROCESS_RETRIES,
    retryDelay: 10,
    expireInSeconds: 120,
    handler: async ({ message_id }, job) => {
      try {
        await inbound.process(message_id);
      } catch (err) {
        // The last attempt records the failure, so the message shows as failed rather than stuck.
        if (job.retryCount >= PROCESS_RETRIES) {
          await inbound.markFailed(message_id, err instanceof Error ? err.message : String(err));
          return;
        }
        throw err;
      }
    },
  });
  jobs.define(RECOVER_QUEUE, {
    retryLimit: 1,
    handler: async () => {
      await inbound.recover(new Date(Date.now() - STALE_MS));
    },
  });
  jobs.schedule(RECOVER_QUEUE, '*/5 * * * *');
}
