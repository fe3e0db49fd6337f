// Suppressions: addresses an organisation does not send to (hard bounces, manual entries).
import type { MailroomModule } from '../../core/module.ts';
import { suppressionRoutes } from './routes.ts';
import { SuppressionsService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    suppressions: SuppressionsService;
  }
}

export const suppressionsModule: MailroomModule = {
  name: 'suppressions',
  create: ({ db, services }) => ({ suppressions: new SuppressionsService({ db, events: services.events }) }),
  routes: async (app, { services }) => app.register(suppressionRoutes(services.suppressions)),
};
