// The database: embedded PGlite in the data dir by default, PostgreSQL when DATABASE_URL is set.
// Both speak the same SQL, so modules see one Drizzle handle and never ask which engine it is.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type pg from 'pg';
import { loadNodePostgresDriver, loadPgliteDriver, sql } from './orm.ts';
import { binaryCopyRows } from './pg-binary.ts';
import { EmbeddedClient } from './pglite-client.ts';

/** A Drizzle handle: the database itself or an open transaction. */
export type Db = PgDatabase<PgQueryResultHKT>;

export interface QueryResult<T = Record<string, unknown>> {
  rows: T[];
}

export interface Database {
  readonly engine: 'pglite' | 'postgres';
  readonly db: Db;
  /** One parameterised statement. */
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<QueryResult<T>>;
  /** Runs `fn` while holding a session-level advisory lock (serialises work across processes). */
  withAdvisoryLock<T>(key: number, fn: (exec: (script: string) => Promise<void>) => Promise<T>): Promise<T>;
  /**
   * PostgreSQL only: the rows of a query as raw bytes per value, through COPY … TO STDOUT in the binary
   * format. A bytea crosses as itself rather than as hex text of twice its size that both sides encode
   * and decode (the processing worker's largest read). The query takes no parameters.
   */
  readonly copyRows?: (query: string) => Promise<(Buffer | null)[][]>;
  /** The raw client, for libraries that bring their own adapter (pg-boss). */
  readonly raw: { kind: 'pglite'; pglite: EmbeddedClient } | { kind: 'postgres'; pool: pg.Pool; url: string };
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** postgres:// URL; when absent the embedded engine is used. */
  url?: string;
  /** Directory for the embedded engine; `null` keeps it in memory (tests). */
  dataDir?: string | null;
  /** The embedded engine's shared_buffers (e.g. `128MB`). */
  sharedBuffers?: string;
  poolSize?: number;
  /** How PostgreSQL's pg_stat_activity names this process's sessions. */
  applicationName?: string;
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  return options.url
    ? openPostgres(options.url, options.poolSize ?? 10, options.applicationName ?? 'mailroom')
    : openPglite(options.dataDir ?? null, options.sharedBuffers ?? '128MB');
}

// Each engine's driver is loaded only when used: start-up time is mostly module loading.
async function openPostgres(url: string, poolSize: number, applicationName: string): Promise<Database> {
  const { default: pg } = await import('pg');
  const { drizzle: drizzleNodePg } = loadNodePostgresDriver();
  const { to: copyTo } = await import('pg-copy-streams');
  // Postgres returns int8 as a string by default; our counters fit in a JS number.
  pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));
  const pool = new pg.Pool({ connectionString: url, max: poolSize, application_name: applicationName });
  // An idle client's network error must not crash the process; the pool replaces the client.
  pool.on('error', () => {});
  await pool.query('select 1');
  return {
    engine: 'postgres',
    db: drizzleNodePg(pool) as unknown as Db,
    query: async (text, params) =>
      (await pool.query(text, params as unknown[])) as unknown as QueryResult<any>,
    async withAdvisoryLock(key, fn) {
      const client = await pool.connect();
      try {
        await client.query('select pg_advisory_lock($1)', [key]);
        try {
          return await fn(async (script) => {
            await client.query(script);
          });
        } finally {
          await client.query('select pg_advisory_unlock($1)', [key]);
        }
      } finally {
        client.release();
      }
    },
    async copyRows(query) {
      const client = await pool.connect();
      const chunks: Buffer[] = [];
      try {
        for await (const chunk of client.query(copyTo(`copy (${query}) to stdout with (format binary)`)))
          chunks.push(chunk as Buffer);
      } catch (err) {
        // A COPY broken off midway leaves the connection in an unknown state: not back into the pool.
        client.release(err as Error);
        throw err;
      }
      client.release();
      return binaryCopyRows(Buffer.concat(chunks));
    },
    raw: { kind: 'postgres', pool, url },
    close: () => pool.end(),
  };
}

async function openPglite(dataDir: string | null, sharedBuffers: string): Promise<Database> {
  const { drizzle: drizzlePglite } = loadPgliteDriver();
  let dir: string | undefined;
  let unlock = () => {};
  if (dataDir) {
    dir = path.join(dataDir, 'pgdata');
    mkdirSync(dir, { recursive: true });
    unlock = lockDataDir(dataDir);
  }
  // On a thread of its own: see pglite-thread.ts.
  const pglite = await EmbeddedClient.open({ dataDir: dir, sharedBuffers });
  let chain: Promise<unknown> = Promise.resolve();
  return {
    engine: 'pglite',
    // Drizzle's driver calls query and transaction, which the client answers as PGlite does.
    db: drizzlePglite(pglite as unknown as PGlite) as unknown as Db,
    query: async (text, params) => pglite.query(text, params) as Promise<QueryResult<any>>,
    // One process owns an embedded database, so an in-process queue is the lock.
    async withAdvisoryLock(_key, fn) {
      const run = chain.then(() => fn(async (script) => void (await pglite.exec(script))));
      chain = run.catch(() => {});
      return run;
    },
    raw: { kind: 'pglite', pglite },
    close: async () => {
      await pglite.close();
      unlock();
    },
  };
}

/**
 * Two processes on one embedded database would corrupt it: the first to open a data dir holds a lock
 * file with its pid; a later one is refused while that process lives (a stale lock is taken over).
 */
function lockDataDir(dataDir: string): () => void {
  const file = path.join(dataDir, 'pgdata.lock');
  try {
    writeFileSync(file, String(process.pid), { flag: 'wx' });
  } catch {
    const holder = Number(readFileSync(file, 'utf8'));
    if (holder && holder !== process.pid && isAlive(holder)) {
      throw new Error(
        `the embedded database in ${dataDir} is in use by process ${holder}; stop it first (or use DATABASE_URL for several processes)`,
      );
    }
    writeFileSync(file, String(process.pid));
  }
  return () => rmSync(file, { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A transaction whose statements carry a batch's data (bodies, raw messages, JSON rows), planned
 * generically on PostgreSQL. A statement's parameters are otherwise bound into a custom plan as
 * constants, and the planner copies each value into the plan, and that plan into its cache: for inbound
 * mail a third of the database's CPU went to those copies and their page faults, and a generic plan is
 * the same plan for these statements. Only for statements whose plan does not depend on their values
 * (no LIMIT or selectivity that a value decides). The embedded engine measured no gain from it, and a
 * round trip to its thread is dear: there this is a plain transaction.
 */
export function batchTransaction<T>(db: Db, fn: (tx: Db) => Promise<T>): Promise<T> {
  if (!onNodePostgres(db)) return db.transaction((tx) => fn(tx as unknown as Db));
  return db.transaction(async (tx) => {
    await tx.execute(sql`set local plan_cache_mode = force_generic_plan`);
    return fn(tx as unknown as Db);
  });
}

/**
 * One batch statement (atomic as any statement), planned as batchTransaction plans: in a transaction
 * of its own on PostgreSQL, for the setting; alone on the embedded engine.
 */
export function batchStatement(db: Db, run: (db: Db) => Promise<void>): Promise<void> {
  return onNodePostgres(db) ? batchTransaction(db, run) : run(db);
}

/** Whether `db` is Drizzle over a node-postgres pool (not the embedded engine, not a transaction). */
function onNodePostgres(db: Db): boolean {
  const client = (db as unknown as { $client?: unknown }).$client;
  return typeof client === 'object' && client !== null && 'totalCount' in client;
}

/** Drizzle wraps driver errors; the SQLSTATE is on the cause. */
export function databaseErrorCode(error: unknown): string | undefined {
  const e = error as { code?: unknown; cause?: { code?: unknown } };
  const code = e.cause?.code ?? e.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}
