// SMS: the send API and its queue through gateway accounts (SMS Gateway for Android, Twilio, SMPP) with
// routing, failover, throttles and quiet hours; receipts and received messages (webhooks, SMPP binds),
// keywords and the opt-out list; conversations, statistics and metrics. docs/sms.md.
import { createHash } from 'node:crypto';
import { Counter } from 'prom-client';
import type { MailroomModule, ModuleContext } from '../../core/module.ts';
import type { Metrics } from '../../core/metrics.ts';
import { type SmsCounters, SmsDispatcher } from './dispatcher.ts';
import { type SmsAccountSource, SmsGateways } from './gateways.ts';
import { registerSmsJobs } from './jobs.ts';
import { SmsReports } from './reports.ts';
import { smsRoutes, smsWebhookRoutes } from './routes.ts';
import { SmsService } from './service.ts';

declare module '../../core/module.ts' {
  interface Services {
    /** SMS: sending (the API and campaigns), settings, routes, opt-outs, conversations, statistics. */
    sms: SmsService;
    /** What gateways report (receipts, received messages), from webhooks and SMPP binds. */
    smsReports: SmsReports;
    /** This process's gateway clients, one per provider account. */
    smsGateways: SmsGateways;
  }
  interface Runtime {
    /** The SMS queue's worker loop, in processes that run workers. */
    smsDispatcher?: SmsDispatcher;
  }
}

/** How far ahead an SMS may be scheduled. */
const MAX_SCHEDULE_MS = 30 * 86_400_000;

export const smsModule: MailroomModule = {
  name: 'sms',
  create({ db, clock, config, log, services, metrics, onClose }) {
    const sms = new SmsService({
      db,
      accounts: services.providerAccounts,
      clock,
      events: services.events,
      log: log.child({ component: 'sms' }),
      defaults: { region: config.sms.defaultRegion, helpText: config.sms.helpText, maxParts: 10 },
      maxScheduleMs: MAX_SCHEDULE_MS,
    });
    const accounts = services.providerAccounts;
    // The sealed credentials are the account's version: each change seals them anew (a fresh IV), and
    // using the account (which moves its updated_at) does not.
    const accountOf = (a: { id: string; organizationId: string; provider: string; credentials: string }) => ({
      id: a.id,
      organizationId: a.organizationId,
      provider: a.provider,
      version: createHash('sha256').update(a.credentials).digest('base64url'),
    });
    const source: SmsAccountSource = {
      get: async (organizationId, id) => accountOf(await accounts.get(organizationId, id)),
      open: async (organizationId, id) => {
        const { account, provider } = await accounts.smsProvider(organizationId, id);
        return { account: accountOf(account), provider };
      },
    };
    const smsGateways = new SmsGateways({
      source,
      log: log.child({ component: 'sms-gateways' }),
      revalidateMs: config.sms.gatewayRecheckMs,
    });
    const smsReports = new SmsReports({
      db,
      sms,
      gateways: smsGateways,
      counters: smsCounters(metrics),
      log: log.child({ component: 'sms' }),
    });
    // What a gateway reports over its own connection (SMPP deliver_sm) is acknowledged once stored.
    smsGateways.onEvent((account, event) => smsReports.report(account, event));
    onClose(() => smsGateways.close());
    return { sms, smsReports, smsGateways };
  },
  jobs: ({ jobs, services }) => registerSmsJobs(jobs, services.sms),
  async start(ctx) {
    const { runtime, services } = ctx;
    const dispatcher = ctx.roles.workers ? startDispatcher(ctx) : null;
    // Messages queued in another process (an API node, a campaign's transaction) are taken at once.
    runtime.bus?.on((event) => {
      if (event.type === 'sms.queued') dispatcher?.wake();
    });
    runtime.bus?.onResync(() => dispatcher?.wake());
    services.sms.onQueued(() => dispatcher?.wake());
    services.smsReports.onQueued(() => dispatcher?.wake());
  },
  routes: async (app, { services, config }) => {
    await app.register(smsRoutes(services.sms));
    await app.register(
      smsWebhookRoutes(services.smsReports, { publicUrl: config.publicUrl, bodyLimit: config.bodyLimit }),
    );
  },
};

function startDispatcher(ctx: ModuleContext): SmsDispatcher {
  const { config, db, clock, services, limiter, metrics, log, onClose, runtime } = ctx;
  const dispatcher = new SmsDispatcher({
    db,
    clock,
    gateways: services.smsGateways,
    sms: services.sms,
    events: services.events,
    limiter,
    counters: smsCounters(metrics),
    log: log.child({ component: 'sms-dispatcher' }),
    leaseMs: config.sms.leaseMs,
    retryScheduleMs: config.sms.retryScheduleMs,
    pollMs: config.sms.pollMs,
    claimBatch: config.sms.claimBatch,
    maxHeld: config.sms.maxHeld,
    soleWorker: !config.databaseUrl,
  });
  // Receipts for submits this process made wait for their outcomes to be written.
  services.smsReports.beforeReceipts(() => dispatcher.flush());
  dispatcher.start();
  void dispatcher.bindSmpp();
  runtime.smsDispatcher = dispatcher;
  onClose(() => dispatcher.stop());
  return dispatcher;
}

const countersOf = new WeakMap<Metrics, SmsCounters>();

/** Prometheus counters by provider: sent, delivered, failed (with undelivered) and received SMS. */
function smsCounters(metrics: Metrics): SmsCounters {
  const existing = countersOf.get(metrics);
  if (existing) return existing;
  const counter = (name: string, help: string) =>
    new Counter({ name, help, labelNames: ['provider'], registers: [metrics.registry] });
  const sent = counter('mailroom_sms_sent_total', 'SMS a gateway handed on, by provider');
  const delivered = counter('mailroom_sms_delivered_total', 'SMS reported delivered, by provider');
  const failed = counter('mailroom_sms_failed_total', 'SMS failed or undelivered, by provider');
  const received = counter('mailroom_sms_received_total', 'SMS received, by provider');
  const counters: SmsCounters = {
    record(tally) {
      for (const [map, c] of [
        [tally.sent, sent],
        [tally.delivered, delivered],
        [tally.failed, failed],
        [tally.received, received],
      ] as const) {
        for (const [provider, n] of map ?? []) if (n) c.inc({ provider }, n);
      }
    },
  };
  countersOf.set(metrics, counters);
  return counters;
}
