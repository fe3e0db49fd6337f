// Provider accounts: credentials for DNS providers, registrars and SMS gateways, kept encrypted.
import type { MailroomModule } from '../../core/module.ts';
import { providerAccountRoutes } from './routes.ts';
import { ProviderAccountsService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    providerAccounts: ProviderAccountsService;
  }
}

export const providerAccountsModule: MailroomModule = {
  name: 'provider-accounts',
  create: ({ db, secrets, config }) => ({
    providerAccounts: new ProviderAccountsService(db, secrets, config.providers),
  }),
  routes: async (app, { services }) => app.register(providerAccountRoutes(services.providerAccounts)),
};
