// The one interface through which a capability plugs into the application. `app.ts` lists the
// modules in dependency order and runs each phase over all of them in that order: create every
// service, register every queue handler, start what runs, then add HTTP hooks and routes. A module
// adds its services (and anything it starts that others use) to `Services` and `Runtime` by
// declaration merging in its own index.ts, so this file names no module.
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { BlobStore } from './blobs.ts';
import type { Clock } from './clock.ts';
import type { Secrets } from './crypto.ts';
import type { Database, Db } from './db.ts';
import type { MailReadiness } from './http.ts';
import type { Jobs } from './jobs.ts';
import type { Listener } from './listen.ts';
import type { Mailer } from './mailer.ts';
import type { Metrics } from './metrics.ts';
import type { RateLimiter } from './ratelimit.ts';
import type { MailauthResolver } from './resolver.ts';
import type { TlsMaterial } from './tls.ts';

/** What this process does: serve the API, run the queues' work, run the MX, submission, IMAP and POP3. */
export interface Roles {
  http: boolean;
  workers: boolean;
  smtp: boolean;
  submission: boolean;
  imap: boolean;
}

/** Every module's services, by name; each module's index.ts adds its own. */
// biome-ignore lint/suspicious/noEmptyInterface: filled by declaration merging in the modules
export interface Services {}

/** What modules start that the application or other modules use (the event bus, servers). */
// biome-ignore lint/suspicious/noEmptyInterface: filled by declaration merging in the modules
export interface Runtime {}

export interface ModuleContext {
  config: Config;
  log: Logger;
  roles: Roles;
  database: Database;
  db: Db;
  secrets: Secrets;
  limiter: RateLimiter;
  jobs: Jobs;
  mailer: Mailer;
  metrics: Metrics;
  /** Raw message bytes, shared by every module that stores or reads mail. */
  blobs: BlobStore;
  /** The DNS resolver for mail (SPF, DKIM, DMARC, MX, MTA-STS), with a short cache. */
  resolver: MailauthResolver;
  /** What time it is for anything scheduled (tests drive it; rows keep the database's now()). */
  clock: Clock;
  /** The data dir, or null when the database is kept in memory. */
  dataDir: string | null;
  /** Services of the modules created so far (all of them once creation is over). */
  services: Services;
  /** Set by modules as they start. */
  runtime: Runtime;
  /** The LISTEN connection (committed events, wake-ups); null in one-shot command processes. */
  listener: Listener | null;
  /** The mail servers' certificate, loaded (or generated) on first use. */
  tls(): Promise<TlsMaterial>;
  /** Runs at shutdown: what was registered last closes first. */
  onClose(close: () => Promise<void>): void;
}

export interface ReadyContribution {
  /** In a process that runs the MX: whether it takes new mail, shown at /ready and /ready/mail. */
  mail?: () => MailReadiness;
}

export interface MailroomModule {
  name: string;
  /** Builds the module's services; those of modules listed earlier are in `ctx.services`. */
  create?(ctx: ModuleContext): Partial<Services>;
  /** Registers queue handlers (in every process: any process enqueues, workers run them). */
  jobs?(ctx: ModuleContext): void;
  /** Starts what runs in this process's roles, after the job queue and the LISTEN connection. */
  start?(ctx: ModuleContext): Promise<void>;
  /** What /ready shows for this module. */
  ready?(ctx: ModuleContext): ReadyContribution;
  /** HTTP hooks (auth, audit), added before any module's routes. */
  hooks?(app: FastifyInstance, ctx: ModuleContext): void;
  /** HTTP routes. */
  routes?(app: FastifyInstance, ctx: ModuleContext): Promise<void>;
}
