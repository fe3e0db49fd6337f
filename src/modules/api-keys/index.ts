// API keys: scoped keys for integrations.
import type { MailroomModule } from '../../core/module.ts';
import { apiKeyRoutes } from './routes.ts';
import { ApiKeysService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    apiKeys: ApiKeysService;
  }
}

export const apiKeysModule: MailroomModule = {
  name: 'api-keys',
  create: ({ db, limiter, services }) => ({
    apiKeys: new ApiKeysService(db, services.audit, limiter, services.events),
  }),
  routes: async (app, { services }) => app.register(apiKeyRoutes(services.apiKeys)),
};
