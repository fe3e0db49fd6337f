// Composition: opens the database, applies migrations, wires modules and starts the roles asked for.
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import type { Config } from './config.ts';
import { type AuthBackend, registerAuthHooks } from './core/auth.ts';
import { type BlobStore, DatabaseBlobStore } from './core/blobs.ts';
import { loadSecretKey, Secrets } from './core/crypto.ts';
import { dnsServers } from './core/dns.ts';
import { type Database, openDatabase } from './core/db.ts';
import { createHttp, metaOf } from './core/http.ts';
import { Jobs } from './core/jobs.ts';
import { listen } from './core/listen.ts';
import { ThreadPool } from './core/threads.ts';
import { type Mailer, OutboxMailer } from './core/mailer.ts';
import { Metrics } from './core/metrics.ts';
import { migrate } from './core/migrate.ts';
import { createRateLimiter, type RateLimiter } from './core/ratelimit.ts';
import { DestinationGuard } from './core/ssrf.ts';
import { loadTls, type TlsMaterial } from './core/tls.ts';
import { apiKeyRoutes } from './modules/api-keys/routes.ts';
import { ApiKeysService } from './modules/api-keys/service.ts';
import { registerAuditHooks } from './modules/audit/hooks.ts';
import { auditRoutes } from './modules/audit/routes.ts';
import { AuditService } from './modules/audit/service.ts';
import { EventBus } from './modules/events/bus.ts';
import { eventOpenApi } from './modules/events/openapi.ts';
import { eventRoutes } from './modules/events/routes.ts';
import { EventsService } from './modules/events/service.ts';
import { EventStreams } from './modules/events/stream.ts';
import { registerIdentityJobs } from './modules/identity/jobs.ts';
import { identityRoutes } from './modules/identity/routes.ts';
import { IdentityService } from './modules/identity/service.ts';
import { organizationRoutes } from './modules/organizations/routes.ts';
import { OrganizationsService } from './modules/organizations/service.ts';
import { registerDomainJobs } from './modules/domains/jobs.ts';
import { domainRoutes } from './modules/domains/routes.ts';
import { DomainsService } from './modules/domains/service.ts';
import { mailboxRoutes } from './modules/mailboxes/routes.ts';
import { MailboxesService } from './modules/mailboxes/service.ts';
import { aliasRoutes } from './modules/aliases/routes.ts';
import { AliasesService } from './modules/aliases/service.ts';
import { ruleRoutes } from './modules/rules/routes.ts';
import { RulesService } from './modules/rules/service.ts';
import { smtpCredentialRoutes } from './modules/submission/routes.ts';
import { type SubmissionBackend, SubmissionServer } from './modules/submission/server.ts';
import { SubmissionService } from './modules/submission/service.ts';
import { messagesRoutes } from './modules/messages/routes.ts';
import { MessagesService } from './modules/messages/service.ts';
import { DeliveryDispatcher } from './modules/delivery/dispatcher.ts';
import { registerDeliveryJobs } from './modules/delivery/jobs.ts';
import { deliveryRoutes } from './modules/delivery/routes.ts';
import { OutboundService } from './modules/delivery/service.ts';
import type { signingTasks } from './modules/delivery/signing.ts';
import { sharedLimits } from './modules/delivery/transport/limits.ts';
import { Transport } from './modules/delivery/transport/transport.ts';
import { Verp } from './modules/delivery/verp.ts';
import { suppressionRoutes } from './modules/suppressions/routes.ts';
import { SuppressionsService } from './modules/suppressions/service.ts';
import { cachedResolver } from './modules/inbound/resolver.ts';
import { MxServer } from './modules/inbound/server.ts';
import { Backlog } from './modules/inbound/backlog.ts';
import { InboundProcessor } from './modules/inbound/processing.ts';
import { InboundService, ROUTING_EVENT } from './modules/inbound/service.ts';
import { INBOUND_CHANNEL } from './modules/inbound/store.ts';
import { Srs } from './modules/inbound/srs.ts';
import { providerAccountRoutes } from './modules/provider-accounts/routes.ts';
import { ProviderAccountsService } from './modules/provider-accounts/service.ts';
import { registerWebhookJobs } from './modules/webhooks/jobs.ts';
import { webhookRoutes } from './modules/webhooks/routes.ts';
import { WebhookSender } from './modules/webhooks/sender.ts';
import { WebhooksService } from './modules/webhooks/service.ts';
import packageJson from '../package.json' with { type: 'json' };

export interface MailroomOptions {
  /** Serve the HTTP API. */
  http: boolean;
  /** Run job handlers (any process can enqueue). */
  workers: boolean;
  /** Run the MX (inbound SMTP) server. */
  smtp?: boolean;
  /** Run the submission server (authenticated SMTP, STARTTLS and, when configured, implicit TLS). */
  submission?: boolean;
  /** Keep the embedded database in memory instead of the data dir (tests, one-shot commands). */
  inMemory?: boolean;
  mailer?: Mailer;
  logger?: Logger;
}

export interface Services {
  events: EventsService;
  webhooks: WebhooksService;
  audit: AuditService;
  identity: IdentityService;
  organizations: OrganizationsService;
  apiKeys: ApiKeysService;
  providerAccounts: ProviderAccountsService;
  domains: DomainsService;
  mailboxes: MailboxesService;
  aliases: AliasesService;
  rules: RulesService;
  messages: MessagesService;
  submission: SubmissionService;
  suppressions: SuppressionsService;
  /** Outbound mail: the send API, submission's pipeline, the delivery queue's rules, bounces. */
  outbound: OutboundService;
  /** Raw message bytes, shared by the inbound pipeline and the messages API. */
  blobs: BlobStore;
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
  inbound: InboundService;
  smtp: MxServer | null;
  submission: SubmissionServer | null;
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
function applicationName(options: MailroomOptions): string {
  const roles = Object.entries({
    api: options.http,
    worker: options.workers,
    smtp: options.smtp,
    submission: options.submission,
  }).flatMap(([role, on]) => (on ? [role] : []));
  return `mailroom ${roles.join('+') || 'cli'} ${process.pid}`;
}

export async function createMailroom(config: Config, options: MailroomOptions): Promise<Mailroom> {
  const log = options.logger ?? createLogger(config);
  const metrics = new Metrics({ defaults: true });
  const dataDir = options.inMemory ? null : config.dataDir;
  const secrets = new Secrets(loadSecretKey(config.secretKey, dataDir));
  const database = await openDatabase({
    url: config.databaseUrl,
    dataDir,
    poolSize: config.dbPoolSize,
    applicationName: applicationName(options),
  });
  const closers: (() => Promise<void>)[] = [() => database.close()];
  try {
    await migrate(database);
    const limiter = await createRateLimiter(config.redisUrl);
    closers.unshift(() => limiter.close());
    const jobs = new Jobs(database, log.child({ component: 'jobs' }));
    const mailer = options.mailer ?? new OutboxMailer(path.join(config.dataDir, 'outbox'), log);
    const sender = new WebhookSender(
      new DestinationGuard({ allowHosts: config.webhooks.allowHosts, dnsServers: config.dnsServers }),
      config.webhooks.timeoutMs,
    );
    closers.unshift(async () => sender.close());
    const signer = new ThreadPool(
      new URL('./modules/delivery/sign-thread.ts', import.meta.url),
      config.threads,
      async () => (await import('./modules/delivery/signing.ts')).signingTasks,
    );
    closers.unshift(() => signer.close());
    const services = createServices(config, database, secrets, limiter, jobs, mailer, sender, signer, log);
    registerIdentityJobs(jobs, database.db, services.identity);
    registerDomainJobs(jobs, services.domains);
    registerWebhookJobs(jobs, services.webhooks, services.events, {
      concurrency: config.webhooks.concurrency,
      retentionMs: config.eventRetentionMs,
    });
    const resolver = cachedResolver({
      servers: config.dnsServers,
      ...config.dns,
      cacheMs: config.inbound.dnsCacheMs,
    });
    const srs = new Srs({ key: secrets.srsKey, maxAgeDays: config.inbound.srsMaxAgeDays });
    const inbound = new InboundService({
      db: database.db,
      outbound: services.outbound,
      blobs: services.blobs,
      srs,
      resolver,
      hostname: config.hostname,
      log: log.child({ component: 'inbound' }),
    });
    registerDeliveryJobs(jobs, services.outbound);
    // RCPT answers, hosted domains and signing keys are cached: forget them when routing changes here
    // (at once) or elsewhere (via the bus).
    const forgetRouting = () => {
      inbound.forgetRecipients();
      services.outbound.forgetDomains();
    };
    services.events.onEmit(async (_tx, records) => {
      if (records.some((r) => ROUTING_EVENT.test(r.type))) forgetRouting();
    });
    await jobs.start({ work: options.workers });
    closers.unshift(() => jobs.stop(config.shutdownTimeoutSeconds));

    // One LISTEN connection per process: committed events, and wake-ups for the processing queue.
    const listener =
      options.http || options.workers || options.smtp
        ? await listen(database, log.child({ component: 'listen' }))
        : null;
    if (listener) closers.unshift(() => listener.close());

    if (options.workers && listener) {
      const p = config.processing;
      const parser = new ThreadPool(
        new URL('./modules/inbound/parse-thread.ts', import.meta.url),
        config.threads,
        async () => (await import('./modules/inbound/parse.ts')).parseTasks,
      );
      const processor = new InboundProcessor({
        db: database.db,
        blobs: services.blobs,
        outbound: services.outbound,
        events: services.events,
        secrets,
        srs,
        hostname: config.hostname,
        lookups: inbound.lookups,
        parser,
        batchSize: p.batchSize,
        concurrency: p.concurrency,
        soleWorker: !config.databaseUrl,
        log: log.child({ component: 'processing' }),
      });
      inbound.onCommitted(() => processor.wake());
      await listener.subscribe(INBOUND_CHANNEL, () => processor.wake());
      listener.onReconnect(() => processor.wake());
      await processor.start();
      closers.unshift(async () => {
        await processor.stop();
        await parser.close();
      });
    }

    let dispatcher: DeliveryDispatcher | null = null;
    if (options.workers) {
      const o = config.outbound;
      // Several processes share the destinations' limits; the embedded engine's one worker keeps its own.
      const shared = config.databaseUrl
        ? await sharedLimits(database.db, config.redisUrl, { log: log.child({ component: 'limits' }) })
        : null;
      const transport = new Transport({
        resolver,
        port: o.port,
        heloName: config.hostname,
        mtaStsPort: o.mtaStsPort,
        ca: o.ca,
        connectionsPerDomain: o.connectionsPerDomain,
        messagesPerConnection: o.messagesPerConnection,
        ratePerDomainPerMinute: o.ratePerDomainPerMinute,
        connectTimeoutMs: o.connectTimeoutMs,
        commandTimeoutMs: o.commandTimeoutMs,
        idleTimeoutMs: o.idleTimeoutMs,
        shared,
        log: log.child({ component: 'transport' }),
      });
      const started = new DeliveryDispatcher({
        db: database.db,
        blobs: services.blobs,
        remote: transport,
        local: {
          isLocal: (domain) => services.outbound.isHosted(domain),
          deliver: (envelope) => inbound.deliverLocally(envelope),
        },
        record: (reports) => services.outbound.record(reports),
        concurrency: o.concurrency,
        // Renewed while held, so it only bounds how long a dead worker's mail waits to be taken over.
        lockMs: Math.min(60_000, Math.max(5_000, 2 * o.connectTimeoutMs)),
        soleWorker: !config.databaseUrl,
        log: log.child({ component: 'delivery' }),
      });
      dispatcher = started;
      services.outbound.onQueued(() => started.wake());
      started.start();
      closers.unshift(async () => {
        await started.stop();
        await transport.close();
        await shared?.close();
      });
    }

    let bus: EventBus | null = null;
    if (listener) {
      const started = await EventBus.start(listener, services.events, log.child({ component: 'events' }));
      bus = started;
      started.on((event) => {
        if (ROUTING_EVENT.test(event.type)) forgetRouting();
        // Mail queued by another process (an API or submission node): deliver it now.
        if (event.type === 'message.queued') dispatcher?.wake();
      });
      started.onResync(() => {
        forgetRouting();
        dispatcher?.wake();
      });
      // A committed event may have queued webhook deliveries: this process's workers send them now.
      if (options.workers) {
        closers.unshift(() => services.webhooks.stop());
        started.on((event) => {
          services.webhooks
            .nudge(event.organizationId)
            .catch((err) => log.error({ err }, 'webhook nudge failed'));
        });
      }
    }

    // Back-pressure: read where mail is accepted (the MX refuses while behind) or the API shows it.
    let backlog: Backlog | null = null;
    if (options.smtp || options.http) {
      const started = new Backlog({
        processing: () => inbound.queueDepth(),
        delivery: () => services.outbound.dueDepth(),
        ...config.backlog,
        log: log.child({ component: 'backlog' }),
      });
      await started.start();
      backlog = started;
      closers.unshift(async () => started.stop());
    }

    let http: FastifyInstance | null = null;
    if (options.http) {
      const streams = new EventStreams(bus!, services.events, log.child({ component: 'streams' }));
      const built = await buildHttp(config, log, metrics, database, jobs, services, limiter, streams, {
        backlog: backlog!,
        mx: Boolean(options.smtp),
      });
      http = built;
      closers.unshift(async () => {
        streams.close();
        await built.close();
      });
    }

    // One certificate for every mail server, loaded (or generated) once.
    let tlsMaterial: Promise<TlsMaterial> | undefined;
    const tls = () => {
      tlsMaterial ??= loadTls(config.tls, dataDir, config.hostname);
      return tlsMaterial;
    };

    let smtp: MxServer | null = null;
    if (options.smtp) {
      const mx = new MxServer(inbound, limiter, log.child({ component: 'mx' }), {
        ...config.inbound,
        hostname: config.hostname,
        port: config.smtpPort,
        tls: await tls(),
        backlog,
      });
      smtp = mx;
      closers.unshift(() => mx.close());
    }

    let submission: SubmissionServer | null = null;
    if (options.submission) {
      const backend: SubmissionBackend = {
        authenticate: (username, password, ip, sessionId) =>
          services.submission.authenticate(username, password, ip, sessionId),
        checkSender: (identity, address) => services.outbound.checkSender(identity, address),
        submit: (input) => services.outbound.submit(input),
      };
      const server = new SubmissionServer(backend, log.child({ component: 'submission' }), {
        ...config.submission,
        hostname: config.hostname,
        tls: await tls(),
      });
      submission = server;
      closers.unshift(() => server.close());
    }

    return {
      config,
      log,
      database,
      jobs,
      services,
      bus,
      http,
      inbound,
      smtp,
      submission,
      async listen() {
        const ports: ListeningPorts = {};
        if (smtp) ports.smtp = await smtp.listen();
        if (submission) {
          const bound = await submission.listen();
          ports.submission = bound.port;
          if (bound.tlsPort !== undefined) ports.submissionTls = bound.tlsPort;
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
    for (const close of closers.reverse()) await close().catch(() => {});
    throw err;
  }
}

function createServices(
  config: Config,
  database: Database,
  secrets: Secrets,
  limiter: RateLimiter,
  jobs: Jobs,
  mailer: Mailer,
  sender: WebhookSender,
  signer: ThreadPool<typeof signingTasks>,
  log: Logger,
): Services {
  const db = database.db;
  const events = new EventsService(db);
  const audit = new AuditService(db, log, events);
  const identity = new IdentityService({
    db,
    secrets,
    mailer,
    limiter,
    audit,
    jobs,
    publicUrl: config.publicUrl,
    accessTokenTtl: config.accessTokenTtl,
    refreshTokenTtl: config.refreshTokenTtl,
  });
  const apiKeys = new ApiKeysService(db, audit, limiter, events);
  const organizations = new OrganizationsService({
    db,
    mailer,
    identity,
    events,
    publicUrl: config.publicUrl,
    onDeleted: (organizationId) => apiKeys.forgetOrganization(organizationId),
  });
  const webhooks = new WebhooksService({
    db,
    secrets,
    events,
    jobs,
    sender,
    log: log.child({ component: 'webhooks' }),
    retryScheduleMs: config.webhooks.retryScheduleMs,
    disableAfterMs: config.webhooks.disableAfterMs,
    concurrency: config.webhooks.concurrency,
    notifyAdmins: async (organizationId, subject, text) => {
      for (const to of await organizations.adminEmails(organizationId))
        await mailer.send({ to, subject, text });
    },
  });
  events.onEmit(webhooks.fanOut);
  const providerAccounts = new ProviderAccountsService(db, secrets, config.providers);
  const domains = new DomainsService({
    db,
    secrets,
    events,
    providers: providerAccounts,
    log: log.child({ component: 'domains' }),
    dns: dnsServers({ servers: config.dnsServers, ...config.dns }),
    hostname: config.hostname,
    ...config.domains,
  });
  const mailboxes = new MailboxesService({ db, events, domains });
  const aliases = new AliasesService({ db, events, domains, mailboxes });
  const rules = new RulesService({ db, events, domains });
  const blobs = new DatabaseBlobStore(db, database.copyRows);
  const suppressions = new SuppressionsService({ db, events });
  const outbound = new OutboundService({
    db,
    blobs,
    events,
    audit,
    suppressions,
    secrets,
    verp: new Verp({ key: secrets.verpKey }),
    signer,
    hostname: config.hostname,
    limits: {
      mailboxPerDay: config.outbound.mailboxPerDay,
      organizationPerHour: config.outbound.organizationPerHour,
    },
    maxMessageSize: config.inbound.maxMessageSize,
    retryScheduleMs: config.outbound.retryScheduleMs,
    maxAgeMs: config.outbound.maxAgeMs,
    log: log.child({ component: 'outbound' }),
  });
  const messages = new MessagesService({
    db,
    blobs,
    events,
    domains,
    recipientsOf: (organizationId, messageId) => outbound.recipientsOf(organizationId, messageId),
  });
  const submission = new SubmissionService({
    db,
    events,
    audit,
    domains,
    limiter,
    authFailuresPerHour: config.submission.authFailuresPerHour,
  });
  return {
    events,
    webhooks,
    audit,
    identity,
    organizations,
    apiKeys,
    providerAccounts,
    domains,
    mailboxes,
    aliases,
    rules,
    messages,
    submission,
    suppressions,
    outbound,
    blobs,
  };
}

async function buildHttp(
  config: Config,
  log: Logger,
  metrics: Metrics,
  database: Database,
  jobs: Jobs,
  services: Services,
  limiter: RateLimiter,
  streams: EventStreams,
  mail: { backlog: Backlog; mx: boolean },
): Promise<FastifyInstance> {
  const catalogue = eventOpenApi();
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
    // A process that runs the MX shows at /ready whether it takes new mail, and why not.
    mail: mail.mx ? () => mail.backlog.state : undefined,
  });
  metrics.gauge(
    'mailroom_backlog_depth',
    'Accepted messages waiting for processing, and queued recipients due for delivery',
    ['queue'],
    (gauge) => {
      const state = mail.backlog.state;
      gauge.set({ queue: 'processing' }, state.processing.depth);
      gauge.set({ queue: 'delivery' }, state.delivery.depth);
    },
  );
  metrics.gauge(
    'mailroom_backlog_oldest_seconds',
    'How long the oldest message waiting for processing, and the longest-due recipient, have waited',
    ['queue'],
    (gauge) => {
      const state = mail.backlog.state;
      gauge.set({ queue: 'processing' }, state.processing.oldest_age_seconds ?? 0);
      gauge.set({ queue: 'delivery' }, state.delivery.oldest_age_seconds ?? 0);
    },
  );
  const backend: AuthBackend = {
    authenticate: (token, request) =>
      ApiKeysService.looksLikeKey(token)
        ? services.apiKeys.authenticate(token, metaOf(request))
        : services.identity.authenticateAccessToken(token),
    membershipRole: (organizationId, userId) => services.organizations.membershipRole(organizationId, userId),
    soleOrganization: (userId) => services.organizations.soleOrganization(userId),
    recordKeyMisuse: (principal, request, reason) =>
      services.apiKeys.recordMisuse(principal, metaOf(request), reason),
  };
  registerAuthHooks(app, { backend, limiter, perMinute: config.rateLimitPerMinute });
  registerAuditHooks(app, services.audit, metrics);
  await app.register(
    identityRoutes({
      identity: services.identity,
      audit: services.audit,
      registration: config.registration,
      invitations: {
        isValid: (token, email) => services.organizations.invitationIsValid(token, email),
        acceptIn: (tx, token, user) => services.organizations.acceptInvitationIn(tx, token, user),
      },
    }),
  );
  await app.register(organizationRoutes(services.organizations));
  await app.register(apiKeyRoutes(services.apiKeys));
  await app.register(auditRoutes(services.audit));
  await app.register(eventRoutes(services.events, streams));
  await app.register(webhookRoutes(services.webhooks));
  await app.register(providerAccountRoutes(services.providerAccounts));
  await app.register(domainRoutes(services.domains));
  await app.register(mailboxRoutes(services.mailboxes));
  await app.register(aliasRoutes(services.aliases));
  await app.register(ruleRoutes(services.rules));
  await app.register(messagesRoutes(services.messages));
  await app.register(
    deliveryRoutes(services.outbound, {
      maxMessageSize: config.inbound.maxMessageSize,
      batchBodyLimit: config.outbound.batchBodyLimit,
    }),
  );
  await app.register(suppressionRoutes(services.suppressions));
  await app.register(smtpCredentialRoutes(services.submission));
  await app.ready();
  return app;
}
