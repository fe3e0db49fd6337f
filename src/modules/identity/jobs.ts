import type { Db } from '../../core/db.ts';
import type { Jobs } from '../../core/jobs.ts';
import { deleteExpired } from './store.ts';

export const CLEANUP_QUEUE = 'identity.cleanup';

/** Daily: forget sessions and mailed tokens a week after they expired (refresh tokens go with their session). */
export function registerIdentityJobs(jobs: Jobs, db: Db): void {
  jobs.define(CLEANUP_QUEUE, {
    retryLimit: 3,
    handler: async () => {
      await deleteExpired(db, 7);
    },
  });
  jobs.schedule(CLEANUP_QUEUE, '17 3 * * *');
}
