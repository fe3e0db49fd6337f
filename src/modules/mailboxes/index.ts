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
  create: ({ db, services }) => ({
    mailboxes: new MailboxesService({ db, events: services.events, domains: services.domains }),
  }),
  routes: async (app, { services }) => app.register(mailboxRoutes(services.mailboxes)),
};
