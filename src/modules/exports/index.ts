// Exports: mailbox credentials for sending tools, domains and the message log, as streamed CSV.
import type { MailroomModule } from '../../core/module.ts';
import { exportRoutes } from './routes.ts';
import { ExportsService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    exports: ExportsService;
  }
}

export const exportsModule: MailroomModule = {
  name: 'exports',
  create: ({ config, log, metrics, services }) => ({
    exports: new ExportsService({
      mailboxes: services.mailboxes,
      domains: services.domains,
      messages: services.messages,
      audit: services.audit,
      log: log.child({ component: 'exports' }),
      metrics,
      servers: { smtp: config.exports.smtp, imap: config.exports.imap },
      mailboxPerDay: config.outbound.mailboxPerDay,
      pageSize: config.exports.pageSize,
    }),
  }),
  routes: async (app, { services }) => app.register(exportRoutes(services.exports)),
};
