import type { Jobs } from '../../core/jobs.ts';
import type { DomainsService } from './service.ts';

export const RECHECK_QUEUE = 'domains.recheck';

export function registerDomainJobs(jobs: Jobs, domains: DomainsService): void {
  // Each minute, domains whose next check is due are claimed in batches and re-verified; sweeps that
  // overlap claim different domains.
  jobs.define(RECHECK_QUEUE, {
    retryLimit: 1,
    expireInSeconds: 3_600,
    handler: () => domains.recheckDue().then(() => {}),
  });
  jobs.schedule(RECHECK_QUEUE, '* * * * *');
}
