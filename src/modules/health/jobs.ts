import type { Jobs } from '../../core/jobs.ts';
import { type HealthService, SOON_QUEUE, SWEEP_QUEUE } from './service.ts';

export const PRUNE_QUEUE = 'health.prune';

export function registerHealthJobs(jobs: Jobs, health: HealthService): void {
  // Each minute, due subjects are claimed in leased batches and recomputed; sweeps that overlap (on
  // several workers) claim different subjects.
  jobs.define(SWEEP_QUEUE, {
    retryLimit: 1,
    expireInSeconds: 3_600,
    handler: () => health.recomputeDue().then(() => {}),
  });
  jobs.schedule(SWEEP_QUEUE, '* * * * *');
  // Woken by triggers (an input's event marked subjects due): at most one waiting, so a burst of
  // events becomes one sweep a few seconds later.
  jobs.define(SOON_QUEUE, {
    retryLimit: 1,
    expireInSeconds: 3_600,
    policy: 'stately',
    handler: () => health.recomputeDue().then(() => {}),
  });
  jobs.define(PRUNE_QUEUE, {
    retryLimit: 2,
    expireInSeconds: 3_600,
    handler: () => health.pruneHistory().then(() => {}),
  });
  jobs.schedule(PRUNE_QUEUE, '23 4 * * *');
}
