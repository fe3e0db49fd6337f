// Aliases: addresses that forward to mailboxes or outside addresses.
import type { MailroomModule } from '../../core/module.ts';
import { aliasRoutes } from './routes.ts';
import { AliasesService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    aliases: AliasesService;
  }
}

export const aliasesModule: MailroomModule = {
  name: 'aliases',
  create: ({ db, services }) => ({
    aliases: new AliasesService({
      db,
      events: services.events,
      domains: services.domains,
      mailboxes: services.mailboxes,
    }),
  }),
  routes: async (app, { services }) => app.register(aliasRoutes(services.aliases)),
};
