import type { Jobs } from '../../core/jobs.ts';
import type { IpPoolsService } from './service.ts';

export const CHECK_QUEUE = 'ip_pools.check';

export function registerIpPoolJobs(jobs: Jobs, ipPools: IpPoolsService): void {
  // Every five minutes, sending IPs whose reverse DNS was not checked for
  // MAILROOM_OUTBOUND_IP_CHECK_INTERVAL are claimed (leased) and checked; overlapping runs on several
  // workers claim different ones.
  jobs.define(CHECK_QUEUE, {
    retryLimit: 1,
    expireInSeconds: 900,
    handler: () => ipPools.checkDue().then(() => {}),
  });
  jobs.schedule(CHECK_QUEUE, '*/5 * * * *');
}
