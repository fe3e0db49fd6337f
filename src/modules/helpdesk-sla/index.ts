// Helpdesk SLA: business-hours calendars, policies chosen by priority, category and customer
// organisation, and per ticket timers for first response, next response and resolution. The timers follow
// the helpdesk's events inside the transactions that emit them; a once-a-minute sweep (any number of
// workers, each warning and breach once) emits ticket.sla_warning / ticket.sla_breached and runs the
// policies' escalation steps.
import type { MailroomModule } from '../../core/module.ts';
import { registerSlaJobs } from './jobs.ts';
import { slaRoutes } from './routes.ts';
import { HelpdeskSlaService, NOTIFY_QUEUE } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    helpdeskSla: HelpdeskSlaService;
  }
}

export const helpdeskSlaModule: MailroomModule = {
  name: 'helpdesk-sla',
  create: ({ db, clock, jobs, log, services }) => {
    const helpdeskSla = new HelpdeskSlaService({
      db,
      clock,
      events: services.events,
      jobs,
      outbound: services.outbound,
      helpdesk: services.helpdesk,
      log: log.child({ component: 'helpdesk-sla' }),
    });
    // Ticket changes move their timers in the transaction that makes them.
    services.events.onEmit((tx, records) => helpdeskSla.react(tx, records));
    return { helpdeskSla };
  },
  jobs: ({ jobs, services }) => registerSlaJobs(jobs, services.helpdeskSla),
  async start({ roles, runtime, jobs }) {
    if (!roles.workers || !runtime.bus) return;
    // A committed escalation may have queued mail: this process's workers send it now.
    runtime.bus.on((event) => {
      if (event.type === 'ticket.sla_warning' || event.type === 'ticket.sla_breached')
        jobs.wake(NOTIFY_QUEUE);
    });
  },
  routes: async (app, { services }) => app.register(slaRoutes(services.helpdeskSla)),
};
