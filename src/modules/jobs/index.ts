// Jobs: long work with progress a person can watch, cancel, and that resumes after a restart.
import type { MailroomModule } from '../../core/module.ts';
import { jobRoutes } from './routes.ts';
import { RUN_QUEUE, TrackedJobsService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    trackedJobs: TrackedJobsService;
  }
}

export const jobsModule: MailroomModule = {
  name: 'jobs',
  create: ({ db, jobs, log, config }) => ({
    trackedJobs: new TrackedJobsService({
      db,
      jobs,
      log: log.child({ component: 'tracked-jobs' }),
      leaseMs: config.jobLeaseMs,
    }),
  }),
  jobs({ jobs, services }) {
    // Only a wake-up: the job's lease, not the queue, decides who runs it (see service.ts).
    jobs.define<{ id: string }>(RUN_QUEUE, {
      retryLimit: 0,
      concurrency: 2,
      handler: async ({ id }) => services.trackedJobs.wake(id),
    });
  },
  async start({ roles, services, onClose }) {
    if (!roles.workers) return;
    services.trackedJobs.startWorking();
    onClose(() => services.trackedJobs.stop());
  },
  routes: async (app, { services }) => app.register(jobRoutes(services.trackedJobs)),
};
