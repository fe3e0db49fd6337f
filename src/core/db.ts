// The database: embedded PGlite in the data dir by default, PostgreSQL when DATABASE_URL is set.
// Both speak the same SQL, so modules see one Drizzle handle and never ask which engine it is.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import pg from 'pg';

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
  /** The raw client, for libraries that bring their own adapter (pg-boss). */
  readonly raw: { kind: 'pglite'; pglite: PGlite } | { kind: 'postgres'; pool: pg.Pool; url: string };
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** postgres:// URL; when absent the embedded engine is used. */
  url?: string;
  /** Directory for the embedded engine; `null` keeps it in memory (tests). */
  dataDir?: string | null;
  poolSize?: number;
}

// Postgres returns int8 and numeric as strings by default; our counters fit in a JS number.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  return options.url
    ? openPostgres(options.url, options.poolSize ?? 10)
    : openPglite(options.dataDir ?? null);
}

async function openPostgres(url: string, poolSize: number): Promise<Database> {
  const pool = new pg.Pool({ connectionString: url, max: poolSize, application_name: 'mailroom' });
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
    raw: { kind: 'postgres', pool, url },
    close: () => pool.end(),
  };
}

async function openPglite(dataDir: string | null): Promise<Database> {
  let dir: string | undefined;
  if (dataDir) {
    dir = path.join(dataDir, 'pgdata');
    mkdirSync(dir, { recursive: true });
  }
  const pglite = await PGlite.create(dir);
  let chain: Promise<unknown> = Promise.resolve();
  return {
    engine: 'pglite',
    db: drizzlePglite(pglite) as unknown as Db,
    query: async (text, params) => pglite.query(text, params) as Promise<QueryResult<any>>,
    // One process owns an embedded database, so an in-process queue is the lock.
    async withAdvisoryLock(_key, fn) {
      const run = chain.then(() => fn(async (script) => void (await pglite.exec(script))));
      chain = run.catch(() => {});
      return run;
    },
    raw: { kind: 'pglite', pglite },
    close: () => pglite.close(),
  };
}
