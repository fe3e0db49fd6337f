// Inboxes: sending infrastructure in bulk — generated mailboxes on many domains, as jobs.
import type { MailroomModule } from '../../core/module.ts';
import { inboxRoutes } from './routes.ts';
import { InboxesService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    inboxes: InboxesService;
  }
}

export const inboxesModule: MailroomModule = {
  name: 'inboxes',
  create: ({ services }) => ({
    inboxes: new InboxesService({
      domains: services.domains,
      mailboxes: services.mailboxes,
      jobs: services.trackedJobs,
    }),
  }),
  routes: async (app, { services }) => app.register(inboxRoutes(services.inboxes)),
};
