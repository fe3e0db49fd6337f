import type { Jobs } from '../../core/jobs.ts';
import type { WarmupService } from './service.ts';

export const TICK_QUEUE = 'warmup.tick';

export function registerWarmupJobs(jobs: Jobs, warmup: WarmupService): void {
  // Every minute; `stately` keeps it to one tick running (and one waiting) across all workers, so a long
  // tick is never overlapped by the next and no two workers send the same message.
  jobs.define(TICK_QUEUE, {
    policy: 'stately',
    retryLimit: 0,
    expireInSeconds: 600,
    handler: () => warmup.tick().then(() => {}),
  });
  jobs.schedule(TICK_QUEUE, '* * * * *');
}
