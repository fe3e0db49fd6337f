// Helpdesk templates and automation: Liquid reply templates previewed against real tickets, and rules
// that act on tickets when they are created, updated or commented on, or when time conditions hold, with
// loop protection and a run log per rule. Rules react to the helpdesk's events through a job queued in
// the emitting transaction (the fan-out below), so each event is evaluated once, after it commits.
import type { MailroomModule } from '../../core/module.ts';
import { registerAutomationJobs } from './jobs.ts';
import { automationRoutes } from './routes.ts';
import { HelpdeskAutomationService, RUN_QUEUE } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    helpdeskAutomation: HelpdeskAutomationService;
  }
}

const TRIGGER_EVENTS = new Set(['ticket.created', 'ticket.updated', 'ticket.commented']);

export const helpdeskAutomationModule: MailroomModule = {
  name: 'helpdesk-automation',
  create: ({ db, clock, jobs, services }) => {
    const helpdeskAutomation = new HelpdeskAutomationService({
      db,
      clock,
      events: services.events,
      jobs,
      helpdesk: services.helpdesk,
    });
    services.events.onEmit((tx, records) => helpdeskAutomation.onEmitted(tx, records));
    return { helpdeskAutomation };
  },
  jobs: ({ jobs, services }) => registerAutomationJobs(jobs, services.helpdeskAutomation),
  async start({ roles, runtime, jobs }) {
    if (!roles.workers || !runtime.bus) return;
    // A committed ticket change may have queued an evaluation: this process's workers take it now.
    runtime.bus.on((event) => {
      if (TRIGGER_EVENTS.has(event.type)) jobs.wake(RUN_QUEUE);
    });
  },
  routes: async (app, { services }) => {
    await app.register(automationRoutes(services.helpdeskAutomation));
  },
};
