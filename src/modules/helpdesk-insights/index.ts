// Helpdesk insights: Microsoft Teams notifications of ticket events (Adaptive Cards posted to a channel's
// Workflows webhook), reports over the tickets, and customer satisfaction from one-click links in the
// resolution mail. Runs after the helpdesk module, whose services and events it uses.
import type { MailroomModule } from '../../core/module.ts';
import { DestinationGuard } from '../../core/ssrf.ts';
import { WebhookSender } from '../../core/webhook-sender.ts';
import { CsatService } from './csat-service.ts';
import { ReportsService } from './reports-service.ts';
import { insightsRoutes } from './routes.ts';
import { TEAMS_QUEUE, TEAMS_SWEEP_QUEUE, TeamsService } from './teams-service.ts';

declare module '../../core/module.ts' {
  interface Services {
    helpdeskTeams: TeamsService;
    helpdeskReports: ReportsService;
    helpdeskCsat: CsatService;
  }
}

const RETENTION_QUEUE = 'helpdesk-teams.retention';

export const helpdeskInsightsModule: MailroomModule = {
  name: 'helpdesk-insights',
  create({ db, secrets, jobs, clock, limiter, log, config, services, onClose }) {
    // Its own agents (the webhooks module keeps its sender to itself), with the same SSRF guard settings.
    const sender = new WebhookSender(
      new DestinationGuard({ allowHosts: config.webhooks.allowHosts, dnsServers: config.dnsServers }),
      config.webhooks.timeoutMs,
    );
    onClose(async () => sender.close());
    const template = config.helpdesk.ticketUrl;
    const helpdeskTeams = new TeamsService({
      db,
      secrets,
      jobs,
      clock,
      sender,
      helpdesk: services.helpdesk,
      log: log.child({ component: 'helpdesk-teams' }),
      retryScheduleMs: config.webhooks.retryScheduleMs,
      ticketUrl: (ticket) =>
        template.replaceAll('{id}', ticket.id).replaceAll('{number}', String(ticket.number)),
    });
    services.events.onEmit(helpdeskTeams.fanOut);
    const helpdeskReports = new ReportsService({
      db,
      clock,
      helpdesk: services.helpdesk,
      exportPageSize: config.exports.pageSize,
    });
    const helpdeskCsat = new CsatService({
      db,
      secrets,
      clock,
      limiter,
      events: services.events,
      helpdesk: services.helpdesk,
      log: log.child({ component: 'helpdesk-csat' }),
      publicUrl: config.publicUrl,
    });
    services.helpdeskMailer.onResolution(helpdeskCsat.resolutionLines);
    return { helpdeskTeams, helpdeskReports, helpdeskCsat };
  },
  jobs: ({ jobs, services, config }) => {
    jobs.define<{ delivery_id: string }>(TEAMS_QUEUE, {
      concurrency: config.webhooks.concurrency,
      // Retries of a card are scheduled by the service (with its attempt log); these cover crashes.
      retryLimit: 3,
      retryDelay: 30,
      expireInSeconds: 300,
      handler: ({ delivery_id }) => services.helpdeskTeams.post(delivery_id),
    });
    jobs.define(TEAMS_SWEEP_QUEUE, { retryLimit: 1, handler: () => services.helpdeskTeams.sweep() });
    jobs.schedule(TEAMS_SWEEP_QUEUE, '*/5 * * * *');
    jobs.define(RETENTION_QUEUE, {
      retryLimit: 3,
      handler: async () => {
        await services.helpdeskTeams.deleteOlderThan(new Date(Date.now() - config.eventRetentionMs));
      },
    });
    jobs.schedule(RETENTION_QUEUE, '53 3 * * *');
  },
  async start({ roles, runtime, jobs }) {
    if (!roles.workers || !runtime.bus) return;
    // A committed ticket event may have queued cards: this process's workers post them now.
    runtime.bus.on((event) => {
      if (event.type.startsWith('ticket.')) jobs.wake(TEAMS_QUEUE);
    });
  },
  routes: async (app, { services }) =>
    app.register(insightsRoutes(services.helpdeskTeams, services.helpdeskReports, services.helpdeskCsat)),
};
