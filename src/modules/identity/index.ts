// Identity: accounts, sessions, mailed tokens and MFA.
import type { MailroomModule } from '../../core/module.ts';
import { registerIdentityJobs } from './jobs.ts';
import { identityRoutes } from './routes.ts';
import { IdentityService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    identity: IdentityService;
  }
}

export const identityModule: MailroomModule = {
  name: 'identity',
  create: ({ db, secrets, mailer, limiter, jobs, config, services }) => ({
    identity: new IdentityService({
      db,
      secrets,
      mailer,
      limiter,
      audit: services.audit,
      jobs,
      publicUrl: config.publicUrl,
      accessTokenTtl: config.accessTokenTtl,
      refreshTokenTtl: config.refreshTokenTtl,
    }),
  }),
  jobs: ({ jobs, db, services }) => registerIdentityJobs(jobs, db, services.identity),
  async routes(app, { services, config }) {
    const { identity, audit, organizations } = services;
    await app.register(
      identityRoutes({
        identity,
        audit,
        registration: config.registration,
        invitations: {
          isValid: (token, email) => organizations.invitationIsValid(token, email),
          acceptIn: (tx, token, user) => organizations.acceptInvitationIn(tx, token, user),
        },
      }),
    );
  },
};
