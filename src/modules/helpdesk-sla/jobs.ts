import type { Jobs } from '../../core/jobs.ts';
import { type HelpdeskSlaService, NOTIFY_QUEUE, type SlaNotification } from './service.ts';

export const SWEEP_QUEUE = 'helpdesk-sla.sweep';

export function registerSlaJobs(jobs: Jobs, sla: HelpdeskSlaService): void {
  // Every minute; `stately` keeps one sweep running (and one waiting) across all workers. Two sweeps that
  // overlap anyway (a manual run, a retry) still fire each warning and breach once: they claim timers
  // with FOR UPDATE SKIP LOCKED and set the flags in the transaction that emits the events.
  jobs.define(SWEEP_QUEUE, {
    policy: 'stately',
    retryLimit: 0,
    expireInSeconds: 600,
    handler: () => sla.sweep().then(() => {}),
  });
  jobs.schedule(SWEEP_QUEUE, '* * * * *');
  jobs.define<SlaNotification>(NOTIFY_QUEUE, {
    retryLimit: 8,
    retryDelay: 30,
    retryBackoff: true,
    concurrency: 4,
    handler: (mail) => sla.notify(mail),
  });
}
