// Shared pieces for benchmarks: a server process of our own, RSS readings and the result table.
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createMailroom, type Mailroom } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import type { Clock } from '../src/core/clock.ts';

export interface Row {
  benchmark: string;
  workload: string;
  throughput: string;
  p50: string;
  p99: string;
  peakRss: string;
  target: string;
}

/** Exactly what `npm start` runs (its flags included), minus npm itself. */
const START_ARGS = (JSON.parse(readFileSync('package.json', 'utf8')).scripts.start as string)
  .split(/\s+/)
  .slice(1);

export interface Server {
  child: ChildProcess;
  port: number;
  /** Milliseconds from spawn to the first 200 from /ready. */
  readyMs: number;
  /** The first group of `pattern` in what the server logged until it was ready, or null. */
  logged(pattern: RegExp): string | null;
  stop(): Promise<void>;
}

/**
 * Starts `mailroom start` (or another role) as an operator would and waits until /ready answers 200
 * (for `worker`, until it logs that the workers run; `port` is then 0; for `smtp`, until the MX listens:
 * `port` is the MX's).
 */
export async function startServer(env: Record<string, string>, role = 'start'): Promise<Server> {
  const began = performance.now();
  const child = spawn(process.execPath, [...START_ARGS.slice(0, -1), role], {
    env: {
      ...process.env,
      MAILROOM_HTTP_PORT: '0',
      MAILROOM_IMAP_PORT: '0',
      MAILROOM_POP3_PORT: '0',
      MAILROOM_LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let buffer = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const match = /"port":(\d+),"msg":"HTTP API listening"/.exec(buffer);
      if (match) resolve(Number(match[1]));
      if (role === 'worker' && buffer.includes('"msg":"workers running"')) resolve(0);
      const mx = /"port":(\d+),"msg":"MX listening"/.exec(buffer);
      if (role === 'smtp' && mx) resolve(Number(mx[1]));
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  child.stdout!.removeAllListeners('data');
  child.stdout!.resume();
  for (; port !== 0 && role !== 'smtp'; ) {
    const res = await fetch(`http://127.0.0.1:${port}/ready`).catch(() => null);
    if (res?.status === 200) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  const readyMs = performance.now() - began;
  return {
    child,
    port,
    readyMs,
    logged: (pattern) => pattern.exec(buffer)?.[1] ?? null,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/**
 * The settings with Node's CPU profiler on when BENCH_PROF names `role` (a comma-separated list of roles,
 * or 1 for worker): a V8 profile of that process is written to `dir` when it exits.
 */
export function profiled(
  settings: Record<string, string>,
  role: string,
  dir: string,
): Record<string, string> {
  const roles = (process.env.BENCH_PROF ?? '').split(',').map((p) => (p === '1' ? 'worker' : p));
  return roles.includes(role) ? { ...settings, NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${dir}` } : settings;
}

/** The Mailroom processes a bench starts (profiled as BENCH_PROF says), so that all are stopped at the end. */
export function serverSet(profileDir: string) {
  const running: Server[] = [];
  return {
    async start(settings: Record<string, string>, role: string, phase: string): Promise<Server> {
      const s = await startServer(profiled(settings, role, `${profileDir}/${phase}-${role}`), role);
      running.push(s);
      return s;
    },
    async stop(s: Server): Promise<void> {
      running.splice(running.indexOf(s), 1);
      await s.stop();
    },
    async stopAll(): Promise<void> {
      for (const s of running.splice(0)) await s.stop();
    },
  };
}

/** Sends `message` to a forked helper process and resolves with its next reply. */
export function ask<T>(child: ChildProcess, message: unknown): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as T));
    child.send(message as object);
  });
}

export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

export function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

export function printTable(rows: Row[]): void {
  const header: Row = {
    benchmark: 'benchmark',
    workload: 'workload',
    throughput: 'throughput',
    p50: 'p50',
    p99: 'p99',
    peakRss: 'peak RSS',
    target: 'target',
  };
  const keys = Object.keys(header) as (keyof Row)[];
  const widths = keys.map((k) => Math.max(...[header, ...rows].map((r) => r[k].length)));
  const line = (r: Row) => `| ${keys.map((k, i) => r[k].padEnd(widths[i])).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
}

export type Engine = 'pglite' | 'postgres';

export function benchEngines(): Engine[] {
  return (process.env.BENCH_ENGINES ?? 'pglite,postgres').split(',') as Engine[];
}

/**
 * The machine's own PostgreSQL, over its Unix socket where there is one: as an installation with its
 * database on the same machine connects (docs/scaling.md); loopback TCP took a fifth of the send API's
 * event-loop time here.
 */
const LOCAL_POSTGRES = existsSync('/var/run/postgresql/.s.PGSQL.5432')
  ? 'postgres://postgres@localhost/test?host=/var/run/postgresql'
  : 'postgres://postgres@127.0.0.1:5432/test';

/** Settings for a fresh installation: its own data dir and, on PostgreSQL, its own database. */
export async function benchInstallation(
  engine: Engine,
): Promise<{ env: Record<string, string>; cleanup: () => Promise<void> }> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'mailroom-bench-'));
  const env: Record<string, string> = {
    MAILROOM_DATA_DIR: dataDir,
    MAILROOM_SECRET_KEY: randomBytes(32).toString('hex'),
    MAILROOM_RATE_LIMIT_PER_MINUTE: '100000000',
    DATABASE_URL: '',
  };
  let dropDb: (() => Promise<void>) | undefined;
  if (engine === 'postgres') {
    const admin = process.env.DATABASE_URL ?? LOCAL_POSTGRES;
    const name = `mailroom_bench_${randomBytes(4).toString('hex')}`;
    const c = new pg.Client({ connectionString: admin });
    await c.connect();
    await c.query(`create database ${name}`);
    await c.end();
    const url = new URL(admin);
    url.pathname = `/${name}`;
    env.DATABASE_URL = url.toString();
    dropDb = async () => {
      const d = new pg.Client({ connectionString: admin });
      await d.connect();
      await d.query(`drop database if exists ${name} with (force)`);
      await d.end();
    };
  }
  return {
    env,
    cleanup: async () => {
      rmSync(dataDir, { recursive: true, force: true });
      await dropDb?.();
    },
  };
}

/**
 * With BENCH_PG_LOG=1, every statement of the database at `url` is written with its duration to the
 * PostgreSQL server's log (needs a superuser), for finding where the database's time goes.
 */
export async function logStatements(url: string): Promise<void> {
  if (!process.env.BENCH_PG_LOG) return;
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`do $$ begin execute format('alter database %I set log_min_duration_statement = 0',
    current_database()); end $$`);
  await c.end();
}

export const BENCH_CREDENTIALS = { email: 'bench@example.com', password: 'benchmark passphrase' };

/** Registers the bench user with an organisation of its own; its access token and the organisation. */
export async function benchAccount(port: number): Promise<{ token: string; org: any }> {
  const user = await json(port, 'POST', '/v1/auth/register', BENCH_CREDENTIALS);
  const token: string = user.tokens.access_token;
  const org = await json(port, 'POST', '/v1/organizations', { name: 'Bench' }, token);
  return { token, org };
}

export async function json(port: number, method: string, url: string, body?: unknown, token?: string) {
  const res = await fetch(`http://127.0.0.1:${port}${url}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return (await res.json()) as any;
}

/** The p-th percentile (0–100) of ascending-sorted values. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/**
 * Milliseconds a fixed piece of JavaScript work takes on this host now (string building, word counting
 * and a JSON round trip, single-threaded). On a shared virtual machine the same code's CPU time varies
 * by a third or more from hour to hour; runs are comparable only at similar values of this reference
 * (the median of seven).
 */
export function hostReference(): number {
  const times = Array.from({ length: 7 }, referenceWork).sort((a, b) => a - b);
  return times[3];
}

function referenceWork(): number {
  const words = ['delivery', 'invoice', 'meeting', 'report', 'quarter', 'update', 'schedule', 'team'];
  const started = performance.now();
  let checksum = 0;
  for (let round = 0; round < 200; round++) {
    let text = '';
    for (let line = 0; text.length < 20_000; line++)
      text += `${words.map((_, i) => words[(line + i * 7 + round) % words.length]).join(' ')}\n`;
    const counts = new Map<string, number>();
    for (const word of text.split(/\s+/)) counts.set(word, (counts.get(word) ?? 0) + 1);
    checksum += JSON.parse(JSON.stringify({ text, counts: [...counts] })).counts.length;
  }
  if (checksum !== 200 * 9) throw new Error('host reference: unexpected result');
  return performance.now() - started;
}

/** bench/dns-server.ts in a process of its own (answering without stealing this one's event loop), and its address. */
export async function forkDnsServer(): Promise<{ dns: ChildProcess; address: string }> {
  const dns = fork(path.resolve('bench/dns-server.ts'), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { address } = await new Promise<{ address: string }>((resolve) =>
    dns.once('message', (m) => resolve(m as { address: string })),
  );
  return { dns, address };
}

export interface BenchApp {
  app: Mailroom;
  port: number;
  /** The bench user's access token and organisation. */
  token: string;
  org: any;
  /** The MX's port, when the app runs one. */
  smtpPort: number | null;
}

/**
 * A fresh installation running in this process (the API, no workers unless asked), with the bench user
 * signed up: `run` gets it, and it is closed and thrown away afterwards.
 */
export async function withBenchApp<T>(
  engine: Engine,
  settings: Record<string, string>,
  options: { workers?: boolean; clock?: Clock; smtp?: boolean },
  run: (bench: BenchApp) => Promise<T>,
): Promise<T> {
  const { env, cleanup } = await benchInstallation(engine);
  const config = loadConfig(
    { ...env, MAILROOM_LOG_LEVEL: 'warn', MAILROOM_HTTP_PORT: '0', MAILROOM_SMTP_PORT: '0', ...settings },
    null,
  );
  const app = await createMailroom(config, {
    http: true,
    workers: options.workers ?? false,
    smtp: options.smtp ?? false,
    clock: options.clock,
  });
  try {
    const { http: port, smtp } = await app.listen();
    const { token, org } = await benchAccount(port!);
    return await run({ app, port: port!, token, org, smtpPort: smtp ?? null });
  } finally {
    await app.close();
    await cleanup();
  }
}

/** A small seeded PRNG (mulberry32): the same data and requests on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
