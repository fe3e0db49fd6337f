import type { Db } from '../../core/db.ts';
import type { Jobs } from '../../core/jobs.ts';
import { type IdentityService, PASSWORD_RESET_QUEUE } from './service.ts';
import { deleteExpired } from './store.ts';

export const CLEANUP_QUEUE = 'identity.cleanup';

export function registerIdentityJobs(jobs: Jobs, db: Db, identity: IdentityService): void {
  // Daily: forget sessions and mailed tokens a week after they expired (refresh tokens go with their session).
  jobs.define(CLEANUP_QUEUE, {
    retryLimit: 3,
    handler: async () => {
      await deleteExpired(db, 7);
    },
  });
  jobs.schedule(CLEANUP_QUEUE, '17 3 * * *');

  jobs.define<{ email: string }>(PASSWORD_RESET_QUEUE, {
    retryLimit: 5,
    retryDelay: 10,
    handler: async ({ email }) => identity.mailPasswordReset(email),
  });
}
