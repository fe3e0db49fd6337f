// Provisioning: from domain names to working inboxes in one call (registrar, DNS provider, verification,
// inbox generation), as a job that resumes after a restart.
import type { MailroomModule } from '../../core/module.ts';
import { provisioningRoutes } from './routes.ts';
import { ProvisioningService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    provisioning: ProvisioningService;
  }
}

export const provisioningModule: MailroomModule = {
  name: 'provisioning',
  create: ({ db, config, services }) => ({
    provisioning: new ProvisioningService({
      db,
      events: services.events,
      domains: services.domains,
      mailboxes: services.mailboxes,
      inboxes: services.inboxes,
      providers: services.providerAccounts,
      jobs: services.trackedJobs,
      ...config.provisioning,
    }),
  }),
  routes: async (app, { services }) => app.register(provisioningRoutes(services.provisioning)),
};
