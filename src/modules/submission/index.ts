// Submission: authenticated SMTP (STARTTLS, and implicit TLS when configured) and SMTP credentials.
import type { MailroomModule } from '../../core/module.ts';
import { smtpCredentialRoutes } from './routes.ts';
import { type SubmissionBackend, SubmissionServer } from './server.ts';
import { SubmissionService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    submission: SubmissionService;
  }
  interface Runtime {
    submission?: SubmissionServer;
  }
}

export const submissionModule: MailroomModule = {
  name: 'submission',
  create: ({ db, limiter, config, services }) => ({
    submission: new SubmissionService({
      db,
      events: services.events,
      audit: services.audit,
      domains: services.domains,
      mailboxes: services.mailboxes,
      limiter,
      authFailuresPerHour: config.submission.authFailuresPerHour,
    }),
  }),
  async start(ctx) {
    const { roles, services, config, runtime, log, onClose } = ctx;
    if (!roles.submission) return;
    // The server is thin: it calls the services exactly as the routes do.
    const backend: SubmissionBackend = {
      authenticate: (username, password, ip, sessionId) =>
        services.submission.authenticate(username, password, ip, sessionId),
      checkSender: (identity, address) => services.outbound.checkSender(identity, address),
      submit: async (input) => {
        const result = await services.outbound.submit(input);
        // The sender's own copy, in its Sent folder (unless its mailbox keeps none).
        if (result.ok && input.identity.kind === 'mailbox') {
          const { organizationId, mailboxId } = input.identity;
          await services.mailstore
            .fileSentCopy(organizationId, mailboxId, result.messageId)
            .catch((err) => log.error({ err, message_id: result.messageId }, 'could not file the sent copy'));
        }
        return result;
      },
    };
    const server = new SubmissionServer(backend, log.child({ component: 'submission' }), {
      ...config.submission,
      hostname: config.hostname,
      tls: await ctx.tls(),
    });
    runtime.submission = server;
    onClose(() => server.close());
  },
  routes: async (app, { services }) => app.register(smtpCredentialRoutes(services.submission)),
};
