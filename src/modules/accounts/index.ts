// External mail accounts: mailboxes at other providers reached over IMAP and SMTP, tested before they
// are kept, their passwords sealed.
import type { MailroomModule } from '../../core/module.ts';
import { accountRoutes } from './routes.ts';
import { AccountsService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    accounts: AccountsService;
  }
}

export const accountsModule: MailroomModule = {
  name: 'accounts',
  create: ({ db, secrets, services }) => ({
    accounts: new AccountsService({ db, secrets, events: services.events }),
  }),
  routes: async (app, { services }) => app.register(accountRoutes(services.accounts)),
};
