// Inbound: the MX (SMTP, authentication at accept), the processing queue that parses, routes, files
// and indexes accepted mail, and the back-pressure that makes the MX refuse mail it cannot file in time.
import type { MailroomModule, ModuleContext } from '../../core/module.ts';
import { ThreadPool, threadsFor } from '../../core/threads.ts';
import { Backlog } from './backlog.ts';
import { InboundProcessor } from './processing.ts';
import { MxServer } from './server.ts';
import { InboundService, ROUTING_EVENT } from './service.ts';
import { Srs } from './srs.ts';
import { INBOUND_CHANNEL } from './store.ts';

declare module '../../core/module.ts' {
  interface Services {
    inbound: InboundService;
  }
  interface Runtime {
    /** The processing and delivery backlogs, where mail is accepted or the API shows them. */
    backlog?: Backlog;
    mx?: MxServer;
  }
}

export const inboundModule: MailroomModule = {
  name: 'inbound',
  create({ db, blobs, secrets, resolver, config, log, services, onClose }) {
    // Threads start on first use: a process that never parses starts none.
    const parser = new ThreadPool(
      new URL('./parse-thread.ts', import.meta.url),
      threadsFor(config.threads, false),
      async () => (await import('./parse.ts')).parseTasks,
    );
    onClose(() => parser.close());
    const inbound = new InboundService({
      parser,
      db,
      blobs,
      outbound: services.outbound,
      feedback: services.feedback,
      srs: new Srs({ key: secrets.srsKey, maxAgeDays: config.inbound.srsMaxAgeDays }),
      resolver,
      hostname: config.hostname,
      log: log.child({ component: 'inbound' }),
    });
    // RCPT answers are cached: forget them when routing changes here (at once) or elsewhere (the bus).
    services.events.onEmit(async (_tx, records) => {
      if (records.some((r) => ROUTING_EVENT.test(r.type))) inbound.forgetRecipients();
    });
    return { inbound };
  },
  async start(ctx) {
    const { roles, runtime, services } = ctx;
    runtime.bus?.on((event) => {
      if (ROUTING_EVENT.test(event.type)) services.inbound.forgetRecipients();
    });
    runtime.bus?.onResync(() => services.inbound.forgetRecipients());
    if (roles.workers) await startProcessing(ctx);
    if (roles.smtp || roles.http) await startBacklog(ctx);
    if (roles.smtp) await startMx(ctx);
  },
  ready: ({ roles, runtime }) =>
    roles.smtp && runtime.backlog ? { mail: () => runtime.backlog!.state } : {},
};

async function startProcessing(ctx: ModuleContext): Promise<void> {
  const { config, db, blobs, secrets, services, listener, log, onClose } = ctx;
  if (!listener) return;
  const p = config.processing;
  const processor = new InboundProcessor({
    db,
    blobs,
    outbound: services.outbound,
    feedback: services.inbound.feedback,
    events: services.events,
    secrets,
    srs: services.inbound.srs,
    hostname: config.hostname,
    lookups: services.inbound.lookups,
    parser: services.inbound.parser,
    batchSize: p.batchSize,
    concurrency: p.concurrency,
    soleWorker: !config.databaseUrl,
    log: log.child({ component: 'processing' }),
    filed: (tx, messages) => services.inbound.filed(tx, messages),
  });
  services.inbound.onCommitted(() => processor.wake());
  await listener.subscribe(INBOUND_CHANNEL, () => processor.wake());
  listener.onReconnect(() => processor.wake());
  await processor.start();
  onClose(() => processor.stop());
}

/** Back-pressure: read where mail is accepted (the MX refuses while behind) or the API shows it. */
async function startBacklog(ctx: ModuleContext): Promise<void> {
  const { config, services, metrics, runtime, log, onClose } = ctx;
  const backlog = new Backlog({
    processing: () => services.inbound.queueDepth(),
    delivery: () => services.outbound.dueDepth(),
    ...config.backlog,
    log: log.child({ component: 'backlog' }),
  });
  await backlog.start();
  runtime.backlog = backlog;
  onClose(async () => backlog.stop());
  metrics.gauge(
    'mailroom_backlog_depth',
    'Accepted messages waiting for processing, and queued recipients due for delivery',
    ['queue'],
    (gauge) => {
      gauge.set({ queue: 'processing' }, backlog.state.processing.depth);
      gauge.set({ queue: 'delivery' }, backlog.state.delivery.depth);
    },
  );
  metrics.gauge(
    'mailroom_backlog_oldest_seconds',
    'How long the oldest message waiting for processing, and the longest-due recipient, have waited',
    ['queue'],
    (gauge) => {
      gauge.set({ queue: 'processing' }, backlog.state.processing.oldest_age_seconds ?? 0);
      gauge.set({ queue: 'delivery' }, backlog.state.delivery.oldest_age_seconds ?? 0);
    },
  );
}

async function startMx(ctx: ModuleContext): Promise<void> {
  const { config, services, limiter, runtime, log, onClose } = ctx;
  const mx = new MxServer(services.inbound, limiter, log.child({ component: 'mx' }), {
    ...config.inbound,
    hostname: config.hostname,
    port: config.smtpPort,
    tls: await ctx.tls(),
    backlog: runtime.backlog ?? null,
  });
  runtime.mx = mx;
  onClose(() => mx.close());
}
