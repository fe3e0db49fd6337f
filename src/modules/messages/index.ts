// Messages: the message store's API (list, search, read, raw, threads, statistics).
import type { MailroomModule } from '../../core/module.ts';
import { messagesRoutes } from './routes.ts';
import { MessagesService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    messages: MessagesService;
  }
}

export const messagesModule: MailroomModule = {
  name: 'messages',
  create: ({ db, blobs, services }) => ({
    messages: new MessagesService({
      db,
      blobs,
      events: services.events,
      domains: services.domains,
      recipientsOf: (organizationId, messageId) => services.outbound.recipientsOf(organizationId, messageId),
    }),
  }),
  routes: async (app, { services }) => app.register(messagesRoutes(services.messages)),
};
