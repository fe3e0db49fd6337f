// Composition: opens the database, applies migrations, and runs each module's phases (create, jobs,
// start, HTTP) in the order of MODULES, for the roles asked for. Modules plug in through core/module.ts.
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import type { Config } from './config.ts';
import { DatabaseBlobStore } from './core/blobs.ts';
import { type Clock, systemClock } from './core/clock.ts';
import { loadSecretKey, Secrets } from './core/crypto.ts';
import { type Database, openDatabase } from './core/db.ts';
import { createHttp } from './core/http.ts';
import { Jobs } from './core/jobs.ts';
import { listen } from './core/listen.ts';
import { type Mailer, OutboxMailer } from './core/mailer.ts';
import { Metrics } from './core/metrics.ts';
import { migrate } from './core/migrate.ts';
import type { MailroomModule, ModuleContext, Roles, Services } from './core/module.ts';
import { createRateLimiter } from './core/ratelimit.ts';
import { cachedResolver } from './core/resolver.ts';
import { loadTls, type TlsMaterial } from './core/tls.ts';
import { accountsModule } from './modules/accounts/index.ts';
import { aliasesModule } from './modules/aliases/index.ts';
import { apiKeysModule } from './modules/api-keys/index.ts';
import { auditModule } from './modules/audit/index.ts';
import { backupsModule } from './modules/backups/index.ts';
import { blocklistsModule } from './modules/blocklists/index.ts';
import { chatModule } from './modules/chat/index.ts';
import { deliveryModule } from './modules/delivery/index.ts';
import { domainsModule } from './modules/domains/index.ts';
import type { EventBus } from './modules/events/bus.ts';
import { eventsModule } from './modules/events/index.ts';
import { eventOpenApi } from './modules/events/openapi.ts';
import { exportsModule } from './modules/exports/index.ts';
import { feedbackModule } from './modules/feedback/index.ts';
import { healthModule } from './modules/health/index.ts';
import { helpdeskModule } from './modules/helpdesk/index.ts';
import { helpdeskSlaModule } from './modules/helpdesk-sla/index.ts';
import { helpdeskAutomationModule } from './modules/helpdesk-automation/index.ts';
import { helpdeskKbModule } from './modules/helpdesk-kb/index.ts';
import { helpdeskInsightsModule } from './modules/helpdesk-insights/index.ts';
import { identityModule } from './modules/identity/index.ts';
import { imapModule, type ImapServer, type Pop3Server } from './modules/imap/index.ts';
import { inboundModule } from './modules/inbound/index.ts';
import { inboxesModule } from './modules/inboxes/index.ts';
import { intelligenceModule } from './modules/intelligence/index.ts';
import { ipPoolsModule } from './modules/ip-pools/index.ts';
import type { MxServer } from './modules/inbound/server.ts';
import { jobsModule } from './modules/jobs/index.ts';
import { mailboxesModule } from './modules/mailboxes/index.ts';
import { messagesModule } from './modules/messages/index.ts';
import { organizationsModule } from './modules/organizations/index.ts';
import { providerAccountsModule } from './modules/provider-accounts/index.ts';
import { provisioningModule } from './modules/provisioning/index.ts';
import { rulesModule } from './modules/rules/index.ts';
import { smsModule } from './modules/sms/index.ts';
import { smsCampaignsModule } from './modules/sms-campaigns/index.ts';
import { submissionModule } from './modules/submission/index.ts';
import type { SubmissionServer } from './modules/submission/server.ts';
import { suppressionsModule } from './modules/suppressions/index.ts';
import { webhooksModule } from './modules/webhooks/index.ts';
import { warmupModule } from './modules/warmup/index.ts';
import packageJson from '../package.json' with { type: 'json' };

/** Every module, each after the modules whose services it uses. */
const MODULES: MailroomModule[] = [
  eventsModule,
  auditModule,
  identityModule,
  apiKeysModule,
  organizationsModule,
  webhooksModule,
  providerAccountsModule,
  domainsModule,
  blocklistsModule,
  mailboxesModule,
  aliasesModule,
  rulesModule,
  suppressionsModule,
  ipPoolsModule,
  deliveryModule,
  messagesModule,
  feedbackModule,
  inboundModule,
  submissionModule,
  jobsModule,
  inboxesModule,
  provisioningModule,
  exportsModule,
  imapModule,
  accountsModule,
  warmupModule,
  healthModule,
  helpdeskModule,
  helpdeskSlaModule,
  helpdeskAutomationModule,
  helpdeskKbModule,
  helpdeskInsightsModule,
  smsModule,
  smsCampaignsModule,
  intelligenceModule,
  chatModule,
  backupsModule,
];

export type { Services } from './core/module.ts';

export interface MailroomOptions {
  /** Serve the HTTP API. */
  http: boolean;
  /** Run job handlers (any process can enqueue). */
  workers: boolean;
  /** Run the MX (inbound SMTP) server. */
  smtp?: boolean;
  /** Run the submission server (authenticated SMTP, STARTTLS and, when configured, implicit TLS). */
  submission?: boolean;
  /** Run the IMAP and POP3 servers. */
  imap?: boolean;
  /** Keep the embedded database in memory instead of the data dir (tests, one-shot commands). */
  inMemory?: boolean;
  mailer?: Mailer;
  logger?: Logger;
  /** The clock scheduled work reads; tests pass a ManualClock. */
  clock?: Clock;
}

export interface Mailroom {
  config: Config;
  log: Logger;
  database: Database;
  jobs: Jobs;
  services: Services;
  /** Every committed event, from any process (absent in one-shot command processes). */
  bus: EventBus | null;
  http: FastifyInstance | null;
  smtp: MxServer | null;
  submission: SubmissionServer | null;
  imap: ImapServer | null;
  pop3: Pop3Server | null;
  /** Starts listening on the configured hosts and ports; returns the bound ports. */
  listen(): Promise<ListeningPorts>;
  close(): Promise<void>;
}

export interface ListeningPorts {
  http?: number;
  smtp?: number;
  submission?: number;
  /** Implicit TLS submission, when MAILROOM_SUBMISSION_TLS_PORT is set. */
  submissionTls?: number;
  imap?: number;
  /** Implicit TLS IMAP, when MAILROOM_IMAP_TLS_PORT is set. */
  imapTls?: number;
  pop3?: number;
  pop3Tls?: number;
}

export function createLogger(config: Config): Logger {
  return pino({
    level: config.logLevel,
    base: { service: 'mailroom' },
    redact: {
      paths: [
        'req.headers.authorization',
        '*.password',
        '*.new_password',
        '*.current_password',
        '*.refresh_token',
        '*.access_token',
        '*.mfa_token',
        '*.key',
      ],
      censor: '[redacted]',
    },
  });
}

/** Sessions named by role and process (`mailroom api+worker 4242`), so pg_stat_activity tells them apart. */
function applicationName(roles: Roles): string {
  const names = Object.entries({
    api: roles.http,
    worker: roles.workers,
    smtp: roles.smtp,
    submission: roles.submission,
    imap: roles.imap,
  }).flatMap(([role, on]) => (on ? [role] : []));
  return `mailroom ${names.join('+') || 'cli'} ${process.pid}`;
}

export async function createMailroom(config: Config, options: MailroomOptions): Promise<Mailroom> {
  const log = options.logger ?? createLogger(config);
  const roles: Roles = {
    http: options.http,
    workers: options.workers,
    smtp: Boolean(options.smtp),
    submission: Boolean(options.submission),
    imap: Boolean(options.imap),
  };
  const dataDir = options.inMemory ? null : config.dataDir;
  const database = await openDatabase({
    url: config.databaseUrl,
    dataDir,
    sharedBuffers: config.pgliteSharedBuffers,
    poolSize: config.dbPoolSize,
    applicationName: applicationName(roles),
  });
  const closers: (() => Promise<void>)[] = [() => database.close()];
  try {
    await migrate(database);
    const limiter = await createRateLimiter(config.redisUrl);
    closers.unshift(() => limiter.close());
    const jobs = new Jobs(database, log.child({ component: 'jobs' }));
    let tlsMaterial: Promise<TlsMaterial> | undefined;
    const ctx: ModuleContext = {
      config,
      log,
      roles,
      database,
      db: database.db,
      secrets: new Secrets(loadSecretKey(config.secretKey, dataDir)),
      limiter,
      jobs,
      mailer: options.mailer ?? new OutboxMailer(path.join(config.dataDir, 'outbox'), log),
      metrics: new Metrics({ defaults: true }),
      blobs: new DatabaseBlobStore(database.db, database.copyRows),
      resolver: cachedResolver({
        servers: config.dnsServers,
        ...config.dns,
        cacheMs: config.inbound.dnsCacheMs,
      }),
      clock: options.clock ?? systemClock,
      dataDir,
      services: {} as Services,
      runtime: {},
      listener: null,
      // One certificate for every mail server, loaded (or generated) once.
      tls: () => {
        tlsMaterial ??= loadTls(config.tls, dataDir, config.hostname);
        return tlsMaterial;
      },
      onClose: (close) => closers.unshift(close),
    };
    for (const module of MODULES) Object.assign(ctx.services, module.create?.(ctx));
    for (const module of MODULES) module.jobs?.(ctx);
    await jobs.start({ work: roles.workers });
    closers.unshift(() => jobs.stop(config.shutdownTimeoutSeconds));
    // One LISTEN connection per process: committed events, and wake-ups for the processing queue.
    if (roles.http || roles.workers || roles.smtp || roles.imap) {
      const listener = await listen(database, log.child({ component: 'listen' }));
      closers.unshift(() => listener.close());
      ctx.listener = listener;
    }
    for (const module of MODULES) await module.start?.(ctx);
    const http = roles.http ? await buildHttp(ctx) : null;
    if (http) closers.unshift(() => http.close());
    const { mx, submission, imap, pop3 } = ctx.runtime;

    return {
      config,
      log,
      database,
      jobs,
      services: ctx.services,
      bus: ctx.runtime.bus ?? null,
      http,
      smtp: mx ?? null,
      submission: submission ?? null,
      imap: imap ?? null,
      pop3: pop3 ?? null,
      async listen() {
        const ports: ListeningPorts = {};
        if (mx) ports.smtp = await mx.listen();
        if (submission) {
          const bound = await submission.listen();
          ports.submission = bound.port;
          if (bound.tlsPort !== undefined) ports.submissionTls = bound.tlsPort;
        }
        if (imap) {
          const bound = await imap.listen();
          ports.imap = bound.port;
          if (bound.tlsPort !== undefined) ports.imapTls = bound.tlsPort;
        }
        if (pop3) {
          const bound = await pop3.listen();
          ports.pop3 = bound.port;
          if (bound.tlsPort !== undefined) ports.pop3Tls = bound.tlsPort;
        }
        if (!http) return ports;
        await http.listen({ host: config.http.host, port: config.http.port });
        const port = (http.server.address() as AddressInfo).port;
        log.info({ host: config.http.host, port }, 'HTTP API listening');
        return { ...ports, http: port };
      },
      async close() {
        for (const close of closers.splice(0)) {
          await close().catch((err) => log.error({ err }, 'error during shutdown'));
        }
      },
    };
  } catch (err) {
    for (const close of closers.splice(0)) await close().catch(() => {});
    throw err;
  }
}

/** The HTTP API: core routes (health, readiness, metrics, docs), then every module's hooks and routes. */
async function buildHttp(ctx: ModuleContext): Promise<FastifyInstance> {
  const { config, log, metrics, database, jobs } = ctx;
  const catalogue = eventOpenApi();
  const contributions = MODULES.map((m) => m.ready?.(ctx) ?? {});
  const app = await createHttp({
    openapiWebhooks: catalogue.webhooks,
    openapiSchemas: catalogue.schemas,
    logger: log,
    metrics,
    bodyLimit: config.bodyLimit,
    headerTimeoutMs: config.headerTimeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
    corsOrigins: config.corsOrigins,
    trustProxy: config.trustProxy,
    version: packageJson.version,
    ready: async () => ({
      database: await database
        .query('select 1')
        .then(() => true)
        .catch(() => false),
      queue: await jobs.ping(),
    }),
    mail: contributions.find((c) => c.mail)?.mail,
  });
  for (const module of MODULES) module.hooks?.(app, ctx);
  for (const module of MODULES) await module.routes?.(app, ctx);
  await app.ready();
  return app;
}
