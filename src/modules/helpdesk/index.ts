// Helpdesk: desks bound to the organisation's addresses, tickets opened and continued by mail or the API,
// public replies sent as threaded mail from the desk, approvals, and the organisation of the work (agents,
// teams with assignment, departments, categories, customer organisations). Mail reaches it through the
// events fan-out of the MX's filing transaction (intake.ts).
import type { MailroomModule } from '../../core/module.ts';
import { Directory } from './directory.ts';
import { INTAKE_QUEUE, MailIntake } from './intake.ts';
import { HelpdeskMailer } from './mail.ts';
import { type HelpdeskMail, MAIL_QUEUE } from './mail-queue.ts';
import { directoryRoutes } from './directory-routes.ts';
import { helpdeskRoutes } from './routes.ts';
import { HelpdeskService } from './service.ts';
import * as store from './store.ts';

declare module '../../core/module.ts' {
  interface Services {
    helpdesk: HelpdeskService;
    helpdeskMailer: HelpdeskMailer;
    helpdeskIntake: MailIntake;
  }
}

/** Intake rows one transaction files. */
const INTAKE_BATCH = 100;

export const helpdeskModule: MailroomModule = {
  name: 'helpdesk',
  create: ({ db, clock, jobs, log, config, services }) => {
    const directory = new Directory(db);
    const helpdesk = new HelpdeskService({
      db,
      clock,
      events: services.events,
      jobs,
      outbound: services.outbound,
      mailboxes: services.mailboxes,
      directory,
    });
    const helpdeskMailer = new HelpdeskMailer({
      db,
      outbound: services.outbound,
      directory,
      helpdesk: () => helpdesk,
    });
    const helpdeskIntake = new MailIntake({
      db,
      clock,
      events: services.events,
      helpdesk,
      messages: services.messages,
      log: log.child({ component: 'helpdesk' }),
      loopLimitPerHour: config.helpdesk.loopLimitPerHour,
      batchSize: INTAKE_BATCH,
    });
    // Mail filed by the MX that reached a desk address: an intake row in the same transaction, and a
    // wake-up for the worker that turns it into tickets.
    services.events.onEmit(async (tx, records) => {
      const received = records
        .filter((r) => r.type === 'message.received' && (r.data as { status: string }).status === 'delivered')
        .map((r) => {
          const data = r.data as { message_id: string; rcpt_to: string[] };
          return { organizationId: r.organizationId, messageId: data.message_id, rcptTo: data.rcpt_to };
        });
      if (received.length && (await store.recordIntake(tx, received)))
        await jobs.send(INTAKE_QUEUE, {}, { tx, singletonKey: 'intake' });
    });
    return { helpdesk, helpdeskMailer, helpdeskIntake };
  },
  jobs: ({ jobs, services }) => {
    jobs.define(INTAKE_QUEUE, {
      policy: 'stately',
      retryLimit: 5,
      retryDelay: 5,
      expireInSeconds: 600,
      handler: () => services.helpdeskIntake.drain().then(() => {}),
    });
    // A safety net: intake whose wake-up was lost is filed within a minute.
    jobs.schedule(INTAKE_QUEUE, '* * * * *');
    jobs.define<HelpdeskMail>(MAIL_QUEUE, {
      retryLimit: 8,
      retryDelay: 30,
      retryBackoff: true,
      concurrency: 4,
      handler: (mail) => services.helpdeskMailer.send(mail),
    });
  },
  async start({ roles, runtime, jobs }) {
    if (!roles.workers || !runtime.bus) return;
    // Committed mail to desks and ticket changes may have queued work: this process's workers take it now.
    runtime.bus.on((event) => {
      if (event.type === 'message.received') jobs.wake(INTAKE_QUEUE);
      else if (event.type.startsWith('ticket.')) jobs.wake(MAIL_QUEUE);
    });
  },
  routes: async (app, { services }) => {
    await app.register(helpdeskRoutes(services.helpdesk));
    await app.register(directoryRoutes(services.helpdesk.directory));
  },
};
