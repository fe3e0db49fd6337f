// Organisations: tenants, memberships, invitations; and who a request acts as within one.
import { type AuthBackend, registerAuthHooks } from '../../core/auth.ts';
import { metaOf } from '../../core/http.ts';
import type { MailroomModule } from '../../core/module.ts';
import { ApiKeysService } from '../api-keys/service.ts';
import { organizationRoutes } from './routes.ts';
import { OrganizationsService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    organizations: OrganizationsService;
  }
}

export const organizationsModule: MailroomModule = {
  name: 'organizations',
  create: ({ db, mailer, config, services }) => ({
    organizations: new OrganizationsService({
      db,
      mailer,
      identity: services.identity,
      events: services.events,
      publicUrl: config.publicUrl,
      onDeleted: (organizationId) => services.apiKeys.forgetOrganization(organizationId),
    }),
  }),
  hooks(app, { services, limiter, config }) {
    // A bearer token is an API key or a session's access token; either acts within one organisation.
    const backend: AuthBackend = {
      authenticate: (token, request) =>
        ApiKeysService.looksLikeKey(token)
          ? services.apiKeys.authenticate(token, metaOf(request))
          : services.identity.authenticateAccessToken(token),
      membershipRole: (organizationId, userId) =>
        services.organizations.membershipRole(organizationId, userId),
      soleOrganization: (userId) => services.organizations.soleOrganization(userId),
      recordKeyMisuse: (principal, request, reason) =>
        services.apiKeys.recordMisuse(principal, metaOf(request), reason),
      mfaState: (principal) => services.identity.mfaState(principal),
    };
    registerAuthHooks(app, { backend, limiter, perMinute: config.rateLimitPerMinute });
  },
  routes: async (app, { services }) => app.register(organizationRoutes(services.organizations)),
};
