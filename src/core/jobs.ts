// Background jobs: pg-boss on the same database (embedded PGlite or PostgreSQL).
// Modules declare queues with `define`, enqueue with `send` (inside their transaction when they
// pass one, so a job exists exactly when the change that caused it commits) and recurring work
// with `schedule`. Only processes started with workers run handlers; any process may enqueue.
import { sql } from './orm.ts';
import { fromDrizzle, fromPglite, PgBoss, type Job, type QueuePolicy, type SendOptions } from 'pg-boss';
import type { Logger } from 'pino';
import type { Database, Db } from './db.ts';

export interface QueueDefinition<T> {
  /** Attempts after the first failure. */
  retryLimit?: number;
  /** Seconds before the first retry; doubled each time when `retryBackoff` is on. */
  retryDelay?: number;
  retryBackoff?: boolean;
  retryDelayMax?: number;
  /** A job running longer than this is failed and retried. */
  expireInSeconds?: number;
  /** Jobs a single process runs at once for this queue. */
  concurrency?: number;
  /**
   * Jobs each worker fetches at once. Above 1, a worker that fetched a full batch fetches again at once
   * instead of waiting for the next poll: for queues that get many small jobs in bursts.
   */
  batchSize?: number;
  /**
   * `stately`: per singleton key, at most one job waiting and one running; a send that would add a
   * second waiting one is dropped (`send` returns null). Default `standard`.
   */
  policy?: QueuePolicy;
  handler: (data: T, job: Job<T>) => Promise<void>;
}

export interface EnqueueOptions {
  /** Enqueue within this open transaction. */
  tx?: Db;
  startAfter?: Date | number;
  singletonKey?: string;
  id?: string;
}

export class Jobs {
  readonly boss: PgBoss;
  readonly #definitions = new Map<string, QueueDefinition<any>>();
  readonly #schedules: { name: string; cron: string; data: object }[] = [];
  readonly #workerIds = new Map<string, string>();
  readonly #log: Logger;
  #started = false;

  constructor(database: Database, log: Logger) {
    this.#log = log;
    const raw = database.raw;
    this.boss =
      raw.kind === 'pglite'
        ? new PgBoss({ db: fromPglite(raw.pglite), backend: 'pglite', schema: 'pgboss' })
        : new PgBoss({
            connectionString: raw.url,
            max: 4,
            schema: 'pgboss',
            application_name: `mailroom-jobs ${process.pid}`,
          });
    this.boss.on('error', (err) => this.#log.error({ err }, 'job queue error'));
  }

  define<T extends object>(name: string, definition: QueueDefinition<T>): void {
    if (this.#started) throw new Error(`queue ${name} defined after start`);
    this.#definitions.set(name, definition);
  }

  /** Recurring work, cron syntax; pg-boss runs each occurrence once across all processes. */
  schedule(name: string, cron: string, data: object = {}): void {
    this.#schedules.push({ name, cron, data });
  }

  async start({ work }: { work: boolean }): Promise<void> {
    await this.boss.start();
    for (const [name, d] of this.#definitions) {
      await this.boss.createQueue(name, {
        retryLimit: d.retryLimit ?? 5,
        retryDelay: d.retryDelay ?? 5,
        retryBackoff: d.retryBackoff ?? true,
        ...(d.retryDelayMax === undefined ? {} : { retryDelayMax: d.retryDelayMax }),
        expireInSeconds: d.expireInSeconds ?? 300,
        ...(d.policy ? { policy: d.policy } : {}),
      });
    }
    // createQueue drops pg-boss's cached queue entry, and the first send or insert would then look it up
    // outside the caller's transaction: on the embedded engine (one connection) that waits for the
    // transaction forever. An empty insert refills the cache before anything is sent.
    for (const name of this.#definitions.keys()) await this.boss.insert(name, []);
    for (const s of this.#schedules) await this.boss.schedule(s.name, s.cron, s.data);
    this.#started = true;
    if (!work) return;
    for (const [name, d] of this.#definitions) {
      const id = await this.boss.work<object>(
        name,
        {
          localConcurrency: d.concurrency ?? 1,
          pollingIntervalSeconds: 1,
          batchSize: d.batchSize ?? 1,
          burstWhenBatchFull: (d.batchSize ?? 1) > 1,
          perJobResults: true,
        },
        // A batch's jobs run side by side, and each succeeds or fails (and is retried) on its own.
        (jobs) =>
          Promise.all(
            jobs.map(async (job) => {
              try {
                await d.handler(job.data, job);
                return { id: job.id, status: 'completed' as const };
              } catch (err) {
                this.#log.warn({ err, queue: name, job: job.id }, 'job failed');
                const message = err instanceof Error ? err.message : String(err);
                return { id: job.id, status: 'failed' as const, output: { message } };
              }
            }),
          ),
      );
      this.#workerIds.set(name, id);
    }
  }

  /** The job id; null only when a singleton key's job is already waiting (the send was a duplicate). */
  async send<T extends object>(name: string, data: T, options: EnqueueOptions = {}): Promise<string | null> {
    if (!this.#definitions.has(name)) throw new Error(`unknown queue ${name}`);
    const sendOptions: SendOptions = {
      startAfter: options.startAfter,
      singletonKey: options.singletonKey,
      id: options.id,
    };
    if (options.tx) sendOptions.db = fromDrizzle(options.tx as never, sql as never);
    const id = await this.boss.send(name, data, sendOptions);
    if (!id) {
      if (options.singletonKey) return null;
      throw new Error(`queue ${name} refused the job`);
    }
    if (!options.tx) this.wake(name);
    return id;
  }

  /** Enqueues one job per entry of `data` in a single statement (inside `tx` when given). */
  async sendMany<T extends object>(name: string, data: T[], options: { tx?: Db } = {}): Promise<void> {
    if (!this.#definitions.has(name)) throw new Error(`unknown queue ${name}`);
    if (!data.length) return;
    await this.boss.insert(
      name,
      data.map((d) => ({ data: d })),
      options.tx ? { db: fromDrizzle(options.tx as never, sql as never) } : {},
    );
    if (!options.tx) this.wake(name);
  }

  /** Wakes this process's worker for `name` now instead of at its next poll (after a commit). */
  wake(name: string): void {
    const id = this.#workerIds.get(name);
    if (id) this.boss.notifyWorker(id);
  }

  /** True when the queue's tables answer. */
  async ping(): Promise<boolean> {
    try {
      await this.boss.getDb().executeSql('select 1 from pgboss.version limit 1');
      return true;
    } catch {
      return false;
    }
  }

  /** Stops taking jobs and waits up to `timeoutSeconds` for running ones; unfinished ones expire and retry. */
  async stop(timeoutSeconds: number): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    await this.boss.stop({ graceful: true, timeout: timeoutSeconds * 1000, close: true });
  }
}
