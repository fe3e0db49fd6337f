import type { Jobs } from '../../core/jobs.ts';
import {
  type AutomationJob,
  COMMENT_QUEUE,
  type CommentJob,
  type HelpdeskAutomationService,
  RUN_QUEUE,
  SWEEP_QUEUE,
} from './service.ts';

export function registerAutomationJobs(jobs: Jobs, automation: HelpdeskAutomationService): void {
  // One job per helpdesk event that an enabled rule may react to, queued in the event's transaction.
  jobs.define<AutomationJob>(RUN_QUEUE, {
    retryLimit: 5,
    retryDelay: 5,
    retryBackoff: true,
    concurrency: 4,
    batchSize: 10,
    handler: (job) => automation.runEvent(job),
  });
  jobs.define<CommentJob>(COMMENT_QUEUE, {
    retryLimit: 8,
    retryDelay: 10,
    retryBackoff: true,
    handler: (job) => automation.runComments(job),
  });
  // Time rules, every minute; `stately` keeps it to one sweep running (and one waiting) across all
  // workers, and each ticket's window is claimed in the transaction that acts on it.
  jobs.define(SWEEP_QUEUE, {
    policy: 'stately',
    retryLimit: 0,
    expireInSeconds: 600,
    handler: () => automation.sweep().then(() => {}),
  });
  jobs.schedule(SWEEP_QUEUE, '* * * * *');
}
