// Long work a person can watch (GET /v1/jobs/:id): state, done/total, per-item errors, result; it can
// be cancelled and survives a restart. A module registers a runner per kind; `create` writes the job
// (in the caller's transaction when given one) and wakes a worker.
//
// Who runs a job is decided by a lease on its row, not by the queue: a worker takes the lease, renews
// it while it works (every progress write, and a timer between), and each step's progress is written in
// the same transaction as the step's own writes, so a step is done exactly once. When a worker dies its
// lease runs out and any worker takes the job over from `done` (each worker looks for such jobs every
// few seconds). The queue only carries the wake-up.
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { randomToken, sha256 } from '../../core/crypto.ts';
import type { Db } from '../../core/db.ts';
import { AppError, conflict, notFound } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { Jobs } from '../../core/jobs.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import * as store from './store.ts';
import type { ItemError, JobRow } from './tables.ts';

export type { ItemError, JobRow, JobState } from './tables.ts';

export const RUN_QUEUE = 'jobs.run';

/** A job as its runner sees it while running. */
export interface RunningJob<Input> {
  readonly id: string;
  readonly organizationId: string;
  readonly input: Input;
  /** Items done when this run began (a resumed job skips them). */
  readonly done: number;
  /**
   * Inside the transaction that did a step's work: counts its items and records their errors. Throws
   * (rolling the step back) when this worker lost the job to another.
   */
  progress(tx: Db, done: number, errors?: ItemError[]): Promise<void>;
  /** Whether someone asked to cancel (checked between steps; the runner then returns what it has). */
  cancelRequested(): boolean;
}

export interface JobRunner<Input> {
  /** Runs or resumes the job; its return value is the job's result. */
  run(job: RunningJob<Input>): Promise<Record<string, unknown>>;
}

export interface NewJobInput {
  /** The job's id, when the caller needs it before (rows of its own that name the job). */
  id?: string;
  kind: string;
  input: unknown;
  total: number;
  createdBy: string | null;
  /** The request's Idempotency-Key and a hash of its body: the same pair finds the same job. */
  idempotency?: { key: string; requestHash: string };
}

class LeaseLost extends Error {
  constructor() {
    super('another worker took this job over');
  }
}

/** Who reads the jobs: a platform administrator sees the installation's jobs filed under the organisation too. */
export interface JobViewer {
  platform: boolean;
}

export interface JobsServiceOptions {
  db: Db;
  jobs: Jobs;
  log: Logger;
  /**
   * How long a job stays with a worker that stopped renewing (MAILROOM_JOB_LEASE): how soon a dead
   * worker's job resumes elsewhere. Renewed every third of it; workers look for lapsed ones as often.
   */
  leaseMs: number;
}

export class TrackedJobsService {
  readonly #o: JobsServiceOptions;
  readonly #runners = new Map<string, JobRunner<any>>();
  readonly #platformKinds = new Set<string>();
  readonly #owner = `${hostname()}:${process.pid}:${randomToken(6)}`;
  /** Jobs this process runs now (a wake-up and the sweep may both name one). */
  readonly #running = new Map<string, Promise<void>>();
  #sweep: NodeJS.Timeout | null = null;
  #stopping = false;

  constructor(options: JobsServiceOptions) {
    this.#o = options;
  }

  /**
   * `platform`: the kind's jobs are the installation's, not the organisation's they are filed under (a
   * backup of another organisation, filed under its administrator's): only platform administrators see
   * or cancel them; to the organisation's other members they do not exist.
   */
  register<Input>(kind: string, runner: JobRunner<Input>, options: { platform?: boolean } = {}): void {
    this.#runners.set(kind, runner);
    if (options.platform) this.#platformKinds.add(kind);
  }

  // ---- creating and reading -----------------------------------------------------------------------

  /**
   * Writes the job and wakes a worker. With an idempotency key already used, the earlier job (and
   * `replayed`); the same key with another request is a 422.
   */
  async create(
    organizationId: string,
    job: NewJobInput,
    tx?: Db,
  ): Promise<{ job: JobRow; replayed: boolean }> {
    if (!this.#runners.has(job.kind)) throw new Error(`no runner for jobs of kind ${job.kind}`);
    // Inside the caller's transaction every read goes through it (the embedded engine has one connection).
    const db = tx ?? this.#o.db;
    const earlier = job.idempotency
      ? await this.findByKey(organizationId, job.kind, job.idempotency, db)
      : null;
    if (earlier) return { job: earlier, replayed: true };
    const write = async (db: Db) => {
      const row = await store.insertJob(db, {
        id: job.id ?? newId(),
        organizationId,
        kind: job.kind,
        state: 'queued',
        total: job.total,
        input: job.input,
        idempotencyKey: job.idempotency?.key ?? null,
        requestHash: job.idempotency?.requestHash ?? null,
        createdBy: job.createdBy,
      });
      await this.#o.jobs.send(RUN_QUEUE, { id: row.id }, { tx: db });
      return row;
    };
    if (tx) return { job: await write(tx), replayed: false };
    try {
      return { job: await this.#o.db.transaction(write), replayed: false };
    } catch (error) {
      // Two requests with one key at once: the second finds the first's job.
      const raced = job.idempotency && (await this.findByKey(organizationId, job.kind, job.idempotency));
      if (raced) return { job: raced, replayed: true };
      throw error;
    }
  }

  /**
   * A request's idempotency (its Idempotency-Key and a hash of its body) and the job the key already
   * made, when it did (422 when that was for another request). Callers answer `earlier` before they do
   * any work of their own.
   */
  async idempotencyOf(
    organizationId: string,
    kind: string,
    key: string | undefined,
    request: unknown,
  ): Promise<{ idempotency?: { key: string; requestHash: string }; earlier: JobRow | null }> {
    if (!key) return { earlier: null };
    const idempotency = { key, requestHash: sha256(JSON.stringify(request)) };
    return { idempotency, earlier: await this.findByKey(organizationId, kind, idempotency) };
  }

  /** The job an idempotency key already made (422 when it was for another request), or null. */
  async findByKey(
    organizationId: string,
    kind: string,
    idempotency: { key: string; requestHash: string },
    db: Db = this.#o.db,
  ): Promise<JobRow | null> {
    const earlier = await store.jobByKey(db, organizationId, kind, idempotency.key);
    if (!earlier) return null;
    if (earlier.requestHash !== idempotency.requestHash)
      throw new AppError(
        422,
        'idempotency_key_reused',
        'This Idempotency-Key was used with a different request',
      );
    return earlier;
  }

  /** A job of the organisation; `viewer.platform` when a platform administrator asks (register's `platform`). */
  async get(organizationId: string, id: string, viewer: JobViewer = { platform: true }): Promise<JobRow> {
    const row = await store.jobById(this.#o.db, organizationId, id);
    if (!row || (!viewer.platform && this.#platformKinds.has(row.kind))) throw notFound('Job');
    return row;
  }

  async list(organizationId: string, filter: { kind?: string }, page: PageRequest, viewer: JobViewer) {
    const hidden = viewer.platform ? [] : [...this.#platformKinds];
    const { rows, total } = await store.listJobs(this.#o.db, organizationId, { ...filter, hidden }, page);
    return toPage(rows, total, page);
  }

  /** Cancels a queued job at once, or asks a running one to stop at its next step; 409 when finished. */
  async cancel(organizationId: string, id: string, viewer: JobViewer): Promise<JobRow> {
    await this.get(organizationId, id, viewer);
    const found = await store.requestCancel(this.#o.db, organizationId, id);
    if (!found) throw notFound('Job');
    if (!found.asked) throw conflict(`The job has already ended (${found.row.state})`);
    return found.row;
  }

  // ---- running ------------------------------------------------------------------------------------

  /** In worker processes: the queue's wake-ups, and the sweep for jobs whose worker died. */
  startWorking(): void {
    this.#sweep = setInterval(() => {
      this.#adoptOrphans().catch((err) => this.#o.log.error({ err }, 'job sweep failed'));
    }, this.#o.leaseMs / 3);
    this.#sweep.unref();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#sweep) clearInterval(this.#sweep);
    await Promise.allSettled(this.#running.values());
  }

  async #adoptOrphans(): Promise<void> {
    if (this.#stopping) return;
    for (const id of await store.orphanedJobs(this.#o.db, 5)) this.wake(id);
  }

  /**
   * Starts the job here in the background (if nobody else holds it): a wake-up does not wait for a job
   * that may run for hours (a provisioning waiting for DNS).
   */
  wake(id: string): void {
    this.run(id).catch((err) => this.#o.log.error({ err, job: id }, 'job could not be started'));
  }

  /** Runs the job here if nobody else holds it; resolves when this process is done with it. */
  run(id: string): Promise<void> {
    if (this.#stopping) return Promise.resolve();
    const running = this.#running.get(id);
    if (running) return running;
    const run = this.#claimAndRun(id).finally(() => this.#running.delete(id));
    this.#running.set(id, run);
    return run;
  }

  async #claimAndRun(id: string): Promise<void> {
    const { leaseMs } = this.#o;
    const row = await store.claimJob(this.#o.db, id, this.#owner, leaseMs);
    if (!row) return;
    const log = this.#o.log.child({ job: id, kind: row.kind });
    const runner = this.#runners.get(row.kind);
    if (!runner) {
      await store.finishJob(this.#o.db, id, this.#owner, {
        state: 'failed',
        failure: `no runner for ${row.kind}`,
      });
      return;
    }
    let cancelRequested = row.cancelRequested;
    let lost = false;
    const owner = this.#owner;
    const db = this.#o.db;
    const job: RunningJob<unknown> = {
      id,
      organizationId: row.organizationId,
      input: row.input,
      done: row.done,
      async progress(tx, done, errors = []) {
        const recorded = await store.recordProgress(tx, id, owner, leaseMs, done, errors);
        if (!recorded) {
          lost = true;
          throw new LeaseLost();
        }
        cancelRequested = recorded.cancelRequested;
      },
      cancelRequested: () => cancelRequested || this.#stopping,
    };
    // Between progress writes (a slow step: a DNS wait, a registrar call) the lease is kept alive.
    const renewal = setInterval(() => {
      store
        .renewLease(db, id, owner, leaseMs)
        .then((renewed) => {
          if (!renewed) lost = true;
          else cancelRequested = renewed.cancelRequested;
        })
        .catch((err) => log.warn({ err }, 'job lease renewal failed'));
    }, this.#o.leaseMs / 3);
    try {
      if (cancelRequested) {
        await store.finishJob(db, id, owner, { state: 'cancelled' });
        return;
      }
      const result = await runner.run(job);
      // Stopping this process is not a cancel: the lease runs out and another worker resumes the job.
      if (lost) return;
      if (this.#stopping && !cancelRequested) {
        await store.releaseLease(db, id, owner);
        return;
      }
      await store.finishJob(db, id, owner, { state: cancelRequested ? 'cancelled' : 'succeeded', result });
    } catch (err) {
      if (err instanceof LeaseLost || lost) {
        log.warn('job taken over by another worker');
        return;
      }
      log.error({ err }, 'job failed');
      const failure = err instanceof Error ? err.message : String(err);
      await store.finishJob(db, id, owner, { state: 'failed', failure });
    } finally {
      clearInterval(renewal);
    }
  }
}
