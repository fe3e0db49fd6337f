// Delivery: the send API, submission's pipeline, the outbound queue, DKIM signing, the SMTP transport
// to remote MX hosts, bounces and delivery events.
import type { MailroomModule, ModuleContext } from '../../core/module.ts';
import { ThreadPool, threadsFor } from '../../core/threads.ts';
import { ROUTING_EVENT } from '../inbound/service.ts';
import { DeliveryDispatcher } from './dispatcher.ts';
import { registerDeliveryJobs } from './jobs.ts';
import { deliveryRoutes } from './routes.ts';
import { OutboundService } from './service.ts';
import { sharedLimits } from './transport/limits.ts';
import { Transport } from './transport/transport.ts';
import { Verp } from './verp.ts';

declare module '../../core/module.ts' {
  interface Services {
    /** Outbound mail: the send API, submission's pipeline, the delivery queue's rules, bounces. */
    outbound: OutboundService;
  }
}

export const deliveryModule: MailroomModule = {
  name: 'delivery',
  create({ db, blobs, secrets, config, roles, log, services, onClose }) {
    const signer = new ThreadPool(
      new URL('./sign-thread.ts', import.meta.url),
      threadsFor(config.threads, !roles.smtp && !roles.submission && !roles.imap),
      async () => (await import('./signing.ts')).signingTasks,
    );
    onClose(() => signer.close());
    const outbound = new OutboundService({
      db,
      blobs,
      events: services.events,
      audit: services.audit,
      suppressions: services.suppressions,
      secrets,
      verp: new Verp({ key: secrets.verpKey }),
      signer,
      hostname: config.hostname,
      feedbackSenderId: config.feedback.senderId,
      limits: {
        mailboxPerDay: config.outbound.mailboxPerDay,
        organizationPerHour: config.outbound.organizationPerHour,
      },
      senderPolicy: (organizationId, address) => services.mailboxes.senderPolicy(organizationId, address),
      maxMessageSize: config.inbound.maxMessageSize,
      retryScheduleMs: config.outbound.retryScheduleMs,
      maxAgeMs: config.outbound.maxAgeMs,
      log: log.child({ component: 'outbound' }),
    });
    // Hosted domains and signing keys are cached: forget them when routing changes here (at once).
    services.events.onEmit(async (_tx, records) => {
      if (records.some((r) => ROUTING_EVENT.test(r.type))) outbound.forgetDomains();
    });
    return { outbound };
  },
  jobs: ({ jobs, services }) => registerDeliveryJobs(jobs, services.outbound),
  async start(ctx) {
    const { services, runtime } = ctx;
    const dispatcher = ctx.roles.workers ? await startDispatcher(ctx) : null;
    // Routing changed, or mail was queued, in another process (an API or submission node).
    runtime.bus?.on((event) => {
      if (ROUTING_EVENT.test(event.type)) services.outbound.forgetDomains();
      if (event.type === 'message.queued') dispatcher?.wake();
    });
    runtime.bus?.onResync(() => {
      services.outbound.forgetDomains();
      dispatcher?.wake();
    });
  },
  routes: async (app, { services, config }) =>
    app.register(
      deliveryRoutes(services.outbound, {
        maxMessageSize: config.inbound.maxMessageSize,
        batchBodyLimit: config.outbound.batchBodyLimit,
      }),
    ),
};

async function startDispatcher(ctx: ModuleContext): Promise<DeliveryDispatcher> {
  const { config, db, blobs, resolver, services, log, onClose } = ctx;
  const o = config.outbound;
  // Several processes share the destinations' limits; the embedded engine's one worker keeps its own.
  const shared = config.databaseUrl
    ? await sharedLimits(db, config.redisUrl, { log: log.child({ component: 'limits' }) })
    : null;
  const transport = new Transport({
    resolver,
    port: o.port,
    heloName: config.hostname,
    heloNames: new Map(Object.entries(config.sendingIps.heloNames)),
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
  const dispatcher = new DeliveryDispatcher({
    db,
    blobs,
    remote: transport,
    local: {
      isLocal: (domain) => services.outbound.isHosted(domain),
      deliver: (envelope) => services.inbound.deliverLocally(envelope),
    },
    // The local address of each remote message (IP pools); null when no sending IPs are configured.
    sources: services.ipPools.sources,
    record: (reports) => services.outbound.record(reports),
    onHeld: (held) => services.outbound.recordHeld(held),
    concurrency: o.concurrency,
    // Renewed while held, so it only bounds how long a dead worker's mail waits to be taken over.
    lockMs: Math.min(60_000, Math.max(5_000, 2 * o.connectTimeoutMs)),
    soleWorker: !config.databaseUrl,
    log: log.child({ component: 'delivery' }),
  });
  services.outbound.onQueued(() => dispatcher.wake());
  dispatcher.start();
  onClose(async () => {
    await dispatcher.stop();
    await transport.close();
    await shared?.close();
  });
  return dispatcher;
}
