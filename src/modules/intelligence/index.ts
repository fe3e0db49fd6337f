// Mail intelligence (docs/intelligence.md): every message filed from outside is analysed after filing —
// spam (built-in model, rspamd when configured), phishing and risky attachments, malware (clamd when
// configured), language, sentiment, keywords, entities, category, priority, summary — by a worker
// that drains a queue; what users report teaches the spam filter.
import type { MailroomModule } from '../../core/module.ts';
import { ThreadPool, threadsFor } from '../../core/threads.ts';
import { ClamdScanner } from '../../providers/antivirus/clamd.ts';
import { RspamdSpamEngine } from '../../providers/spam/rspamd.ts';
import { Analyzer } from './analyzer.ts';
import { intelligenceRoutes } from './routes.ts';
import { ANALYZE_QUEUE, IntelligenceService, JUNK_KEYWORDS, NOT_JUNK_KEYWORDS } from './service.ts';
import { AnalysisWorker } from './worker.ts';

declare module '../../core/module.ts' {
  interface Services {
    intelligence: IntelligenceService;
    analysisWorker: AnalysisWorker;
  }
}

/** A batch is analysed well within this; a dead worker's batch is taken over after it. */
const LEASE_MS = 120_000;

export const intelligenceModule: MailroomModule = {
  name: 'intelligence',
  create: ({ db, jobs, config, log, services, onClose }) => {
    const settings = config.intelligence;
    const intelligence = new IntelligenceService({
      db,
      jobs,
      trackedJobs: services.trackedJobs,
      messages: services.messages,
      spamThreshold: settings.spamThreshold,
      llmDailyTokens: config.llm?.dailyTokens ?? 0,
    });
    // Every core (up to 4), a batch split between them: the worker's own thread mostly waits for the
    // database meanwhile. Threads start on first use: a process that analyses nothing starts none.
    const threads = new ThreadPool(
      new URL('./analysis-thread.ts', import.meta.url),
      threadsFor(config.threads, true),
      async () => (await import('./analysis.ts')).analysisTasks,
    );
    onClose(() => threads.close());
    const analyzer = new Analyzer({
      threads,
      rspamd: settings.rspamd
        ? new RspamdSpamEngine({ url: settings.rspamd.url, password: settings.rspamd.password })
        : null,
      scanner: settings.clamd ? new ClamdScanner({ address: settings.clamd }) : null,
      spamThreshold: settings.spamThreshold,
      log: log.child({ component: 'intelligence' }),
    });
    const analysisWorker = new AnalysisWorker({
      db,
      messages: services.messages,
      domains: services.domains,
      mailstore: services.mailstore,
      events: services.events,
      analyzer,
      batchSize: settings.batchSize,
      leaseMs: LEASE_MS,
      log: log.child({ component: 'intelligence' }),
    });
    // Mail filed from outside is queued in its filing transaction; what people do in their mail
    // clients (Junk moves, junk keywords) is a report in the transaction of the change.
    services.inbound.onFiled((tx, messages) => intelligence.filed(tx, messages));
    services.mailstore.onChange({
      flags: [...JUNK_KEYWORDS, ...NOT_JUNK_KEYWORDS],
      listener: (tx, change) => intelligence.mailChanged(tx, change),
    });
    return { intelligence, analysisWorker };
  },
  jobs: ({ jobs, services }) => {
    jobs.define(ANALYZE_QUEUE, {
      policy: 'stately',
      retryLimit: 5,
      retryDelay: 5,
      expireInSeconds: 900,
      handler: () => services.analysisWorker.drain().then(() => {}),
    });
    // A safety net: a wake-up lost, or a dead worker's lease run out, is picked up within a minute.
    jobs.schedule(ANALYZE_QUEUE, '* * * * *');
    services.intelligence.registerRunners();
  },
  routes: async (app, { services }) => {
    await app.register(intelligenceRoutes(services.intelligence));
  },
};
