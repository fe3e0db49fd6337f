// Health: scores and findings per domain and mailbox, recomputed on a schedule and on change, and the
// auto-repair an organisation's policy asks for (pause and resume senders, slow warmup, publish drifted
// DNS again, rotate DKIM on request).
import type { MailroomModule } from '../../core/module.ts';
import { blocklistsInput } from './inputs/blocklists.ts';
import { bouncesInput } from './inputs/bounces.ts';
import { dnsInput } from './inputs/dns.ts';
import { isHealthInputProvider } from './inputs/types.ts';
import { unsubscribeInput } from './inputs/unsubscribe.ts';
import { registerHealthJobs } from './jobs.ts';
import { healthRoutes } from './routes.ts';
import { HealthService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    /** Health scores and auto-repair; other modules `register` inputs and read `repairState`. */
    health: HealthService;
  }
}

export const healthModule: MailroomModule = {
  name: 'health',
  create({ db, jobs, mailer, clock, log, config, services }) {
    const o = config.health;
    // Inputs of modules listed earlier: services that offer `healthInputs()`.
    const provided = Object.values(services).flatMap((s) =>
      isHealthInputProvider(s) ? s.healthInputs() : [],
    );
    const health = new HealthService({
      db,
      events: services.events,
      jobs,
      clock,
      mailer,
      log: log.child({ component: 'health' }),
      domains: services.domains,
      mailboxes: services.mailboxes,
      outbound: services.outbound,
      adminEmails: (organizationId) => services.organizations.adminEmails(organizationId),
      inputs: [
        dnsInput(services.domains),
        blocklistsInput(services.blocklists),
        bouncesInput({ db, windowMs: o.windowMs, minSample: o.minSample }),
        unsubscribeInput({ db, windowMs: o.windowMs, bulkDaily: o.bulkDaily }),
        ...provided,
      ],
      intervalMs: o.intervalMs,
      dirtyDelayMs: o.triggerDelayMs,
      historyRetentionMs: o.historyRetentionMs,
    });
    // New and deleted subjects, and inputs' triggers, in the transaction of the change.
    services.events.onEmit((tx, records) => health.onEmitted(tx, records));
    return { health };
  },
  jobs: ({ jobs, services }) => registerHealthJobs(jobs, services.health),
  async start({ roles, runtime, services, onClose }) {
    const bus = runtime.bus;
    if (!bus) return;
    bus.on((event) => {
      // A sender paused or resumed in another process: queueing here reads the pauses again.
      if (event.type === 'health.repair') services.outbound.forgetPauses();
      if (roles.workers) services.health.noteCommitted(event);
    });
    if (roles.workers) onClose(() => services.health.stop());
  },
  routes: async (app, { services }) => app.register(healthRoutes(services.health)),
};
