import type { Jobs } from '../../core/jobs.ts';
import type { BlocklistsService } from './service.ts';

export const SWEEP_QUEUE = 'blocklists.sweep';

export function registerBlocklistJobs(jobs: Jobs, blocklists: BlocklistsService): void {
  // Every five minutes, organisations not checked for MAILROOM_BLOCKLISTS_INTERVAL are claimed (leased)
  // and checked; overlapping sweeps on several workers claim different ones.
  jobs.define(SWEEP_QUEUE, {
    retryLimit: 1,
    expireInSeconds: 3_600,
    handler: () => blocklists.checkDue().then(() => {}),
  });
  jobs.schedule(SWEEP_QUEUE, '*/5 * * * *');
}
