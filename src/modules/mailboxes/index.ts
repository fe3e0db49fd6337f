// Mailboxes: hosted addresses that receive and keep mail.
import type { MailroomModule } from '../../core/module.ts';
import { mailboxRoutes } from './routes.ts';
import { MailboxesService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    mailboxes: MailboxesService;
  }
}

export const mailboxesModule: MailroomModule = {
  name: 'mailboxes',
  create: ({ db, secrets, config, services }) => ({
    mailboxes: new MailboxesService({
      db,
      secrets,
      events: services.events,
      domains: services.domains,
      maxPerOrganization: config.organizationLimits.mailboxes,
    }),
  }),
  routes: async (app, { services }) => app.register(mailboxRoutes(services.mailboxes)),
};
