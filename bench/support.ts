// Shared pieces for benchmarks: a server process of our own, RSS readings and the result table.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

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
  stop(): Promise<void>;
}

/** Starts `mailroom start` as an operator would and waits until /ready answers 200. */
export async function startServer(env: Record<string, string>): Promise<Server> {
  const began = performance.now();
  const child = spawn(process.execPath, START_ARGS, {
    env: { ...process.env, MAILROOM_HTTP_PORT: '0', MAILROOM_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let buffer = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const match = /"port":(\d+),"msg":"HTTP API listening"/.exec(buffer);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  child.stdout!.resume();
  for (;;) {
    const res = await fetch(`http://127.0.0.1:${port}/ready`).catch(() => null);
    if (res?.status === 200) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  const readyMs = performance.now() - began;
  return {
    child,
    port,
    readyMs,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
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
