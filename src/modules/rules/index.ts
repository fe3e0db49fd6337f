// Rules: per-domain routing rules (forward, redirect, store in a folder, block, drop).
import type { MailroomModule } from '../../core/module.ts';
import { ruleRoutes } from './routes.ts';
import { RulesService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    rules: RulesService;
  }
}

export const rulesModule: MailroomModule = {
  name: 'rules',
  create: ({ db, services }) => ({
    rules: new RulesService({ db, events: services.events, domains: services.domains }),
  }),
  routes: async (app, { services }) => app.register(ruleRoutes(services.rules)),
};
