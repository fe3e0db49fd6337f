// Webhooks: endpoints, signed deliveries of committed events with retries, and event retention.
import type { MailroomModule } from '../../core/module.ts';
import { DestinationGuard } from '../../core/ssrf.ts';
import { registerWebhookJobs } from './jobs.ts';
import { webhookRoutes } from './routes.ts';
import { WebhookSender } from '../../core/webhook-sender.ts';
import { WebhooksService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    webhooks: WebhooksService;
  }
}

export const webhooksModule: MailroomModule = {
  name: 'webhooks',
  create({ db, secrets, jobs, mailer, log, config, services, onClose }) {
    const sender = new WebhookSender(
      new DestinationGuard({ allowHosts: config.webhooks.allowHosts, dnsServers: config.dnsServers }),
      config.webhooks.timeoutMs,
    );
    onClose(async () => sender.close());
    const webhooks = new WebhooksService({
      db,
      secrets,
      events: services.events,
      jobs,
      sender,
      log: log.child({ component: 'webhooks' }),
      retryScheduleMs: config.webhooks.retryScheduleMs,
      disableAfterMs: config.webhooks.disableAfterMs,
      concurrency: config.webhooks.concurrency,
      notifyAdmins: async (organizationId, subject, text) => {
        for (const to of await services.organizations.adminEmails(organizationId))
          await mailer.send({ to, subject, text });
      },
    });
    services.events.onEmit(webhooks.fanOut);
    return { webhooks };
  },
  jobs: ({ jobs, services, config }) =>
    registerWebhookJobs(jobs, services.webhooks, services.events, {
      concurrency: config.webhooks.concurrency,
      retentionMs: config.eventRetentionMs,
    }),
  async start({ roles, runtime, services, log, onClose }) {
    if (!roles.workers || !runtime.bus) return;
    onClose(() => services.webhooks.stop());
    // A committed event may have queued webhook deliveries: this process's workers send them now.
    runtime.bus.on((event) => {
      services.webhooks
        .nudge(event.organizationId)
        .catch((err) => log.error({ err }, 'webhook nudge failed'));
    });
  },
  routes: async (app, { services }) => app.register(webhookRoutes(services.webhooks)),
};
