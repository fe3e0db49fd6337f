// Audit: every API request and security event, recorded and listed.
import type { MailroomModule } from '../../core/module.ts';
import { registerAuditHooks } from './hooks.ts';
import { auditRoutes } from './routes.ts';
import { AuditService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    audit: AuditService;
  }
}

export const auditModule: MailroomModule = {
  name: 'audit',
  create: ({ db, log, services }) => ({ audit: new AuditService(db, log, services.events) }),
  hooks: (app, { services, metrics }) => registerAuditHooks(app, services.audit, metrics),
  routes: async (app, { services }) => app.register(auditRoutes(services.audit)),
};
