// Warmup: pools of hosted mailboxes and external accounts that send each other natural mail on a ramp,
// rescue it from spam, answer and archive it, and report where it landed.
import type { MailroomModule } from '../../core/module.ts';
import { WarmupEngine } from './engine.ts';
import { registerWarmupJobs } from './jobs.ts';
import { warmupRoutes } from './routes.ts';
import { WarmupService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    warmup: WarmupService;
  }
}

/** A tick stops taking new work after this; what is left waits for the next minute's tick. */
const TICK_BUDGET_MS = 45_000;

export const warmupModule: MailroomModule = {
  name: 'warmup',
  create: ({ db, log, config, clock, resolver, services }) => {
    const settings = { ...config.warmup, tickBudgetMs: TICK_BUDGET_MS };
    const engine = new WarmupEngine({
      db,
      clock,
      log: log.child({ component: 'warmup' }),
      events: services.events,
      outbound: services.outbound,
      accountMail: services.accountMail,
      mailstore: services.mailstore,
      settings,
    });
    const warmup = new WarmupService({
      db,
      clock,
      events: services.events,
      mailboxes: services.mailboxes,
      accounts: services.accounts,
      outbound: services.outbound,
      resolver,
      engine,
      sharedPool: settings.sharedPool,
    });
    // Health's repairs (pause, slow warmup) reach warmup in the transaction that makes them.
    services.events.onEmit((tx, records) => warmup.followHealth(tx, records));
    return { warmup };
  },
  jobs: ({ jobs, services }) => registerWarmupJobs(jobs, services.warmup),
  routes: async (app, { services }) => app.register(warmupRoutes(services.warmup)),
};
