// Credential export (issue 15): BENCH_EXPORT_MAILBOXES (10,000) export-enabled mailboxes of one
// organisation, then `GET /v1/exports/inboxes.csv` (the generic preset: every column, each password
// decrypted) over real HTTP from `mailroom start` in its own process, the whole stream read, BENCH_RUNS
// (3) times. Reports the time of each run, rows/s, and the server's RSS growth while it streamed
// (sampled every 5 ms from /proc, against its RSS just before the request; the largest of the runs).
//
// The mailboxes are made in-process through the mailboxes service's createMany, 1,000 at a time, with
// passwords generated under the default policy (so each is hashed with the cheap argon2id parameters of
// generated passwords), and the server is started on the same data dir or database afterwards.
import { createMailroom } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { DEFAULT_POLICY, generatePassword } from '../src/modules/mailboxes/service.ts';
import {
  BENCH_CREDENTIALS,
  benchAccount,
  benchEngines,
  benchInstallation,
  type Engine,
  json,
  percentile,
  type Row,
  rssMb,
  startServer,
} from './support.ts';

const MAILBOXES = Number(process.env.BENCH_EXPORT_MAILBOXES ?? 10_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CHUNK = 1000;
const TARGET_SECONDS = 2;
const TARGET_RSS_GROWTH_MB = 50;

/** The organisation with its mailboxes, made in this process; the server is not running after it. */
async function seed(env: Record<string, string>): Promise<{ orgId: string; seconds: number }> {
  const config = loadConfig({ ...env, MAILROOM_LOG_LEVEL: 'warn', MAILROOM_HTTP_PORT: '0' }, null);
  const app = await createMailroom(config, { http: true, workers: false });
  try {
    const { http: port } = await app.listen();
    const { token, org } = await benchAccount(port!);
    const created = await json(
      port!,
      'POST',
      '/v1/domains',
      { name: 'export.bench.example', dkim: { algorithm: 'ed25519' } },
      token,
    );
    const domain = await app.services.domains.get(org.id, created.id);
    const started = performance.now();
    for (let from = 0; from < MAILBOXES; from += CHUNK) {
      const specs = Array.from({ length: Math.min(CHUNK, MAILBOXES - from) }, (_, k) => {
        const i = from + k;
        return {
          domain,
          localPart: `sender${String(i).padStart(5, '0')}`,
          firstName: `First${i}`,
          lastName: `Last${i}`,
          password: generatePassword(DEFAULT_POLICY),
          generatedUnder: DEFAULT_POLICY,
          exportable: true,
        };
      });
      const results = await app.services.mailboxes.createMany(org.id, specs);
      const failed = results.find((r) => !r.ok);
      if (failed && !failed.ok) throw new Error(`createMany: ${failed.error.message}`);
    }
    return { orgId: org.id, seconds: (performance.now() - started) / 1000 };
  } finally {
    await app.close();
  }
}

interface Run {
  seconds: number;
  rows: number;
  bytes: number;
  rssGrowthMb: number;
  peakRssMb: number;
}

/** One export, read to its end, with the server's RSS sampled while it streams. */
async function exportOnce(port: number, pid: number, token: string, orgId: string): Promise<Run> {
  const before = rssMb(pid);
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssMb(pid));
  }, 5);
  try {
    const started = performance.now();
    const res = await fetch(`http://127.0.0.1:${port}/v1/exports/inboxes.csv`, {
      headers: { authorization: `Bearer ${token}`, 'x-organization-id': orgId },
    });
    if (res.status !== 200) throw new Error(`export: ${res.status} ${await res.text()}`);
    let bytes = 0;
    let lines = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      bytes += chunk.length;
      for (const byte of chunk) if (byte === 10) lines++;
    }
    const seconds = (performance.now() - started) / 1000;
    peak = Math.max(peak, rssMb(pid));
    return { seconds, rows: lines - 1, bytes, rssGrowthMb: peak - before, peakRssMb: peak };
  } finally {
    clearInterval(sampler);
  }
}

async function benchEngine(engine: Engine): Promise<Row> {
  const installation = await benchInstallation(engine);
  // Free ports for the mail listeners: other processes on this machine may hold the defaults.
  const env: Record<string, string> = {
    ...installation.env,
    MAILROOM_SMTP_PORT: '0',
    MAILROOM_SUBMISSION_PORT: '0',
    MAILROOM_IMAP_PORT: '0',
    MAILROOM_EXPORT_SMTP_HOST: 'mail.bench.example',
    MAILROOM_EXPORT_SMTP_PORT: '587',
    MAILROOM_EXPORT_IMAP_HOST: 'mail.bench.example',
    MAILROOM_EXPORT_IMAP_PORT: '993',
  };
  try {
    const seeded = await seed(env);
    const server = await startServer(env);
    try {
      const login = await json(server.port, 'POST', '/v1/auth/login', BENCH_CREDENTIALS);
      const runs: Run[] = [];
      for (let i = 0; i < RUNS; i++)
        runs.push(await exportOnce(server.port, server.child.pid!, login.access_token, seeded.orgId));
      for (const run of runs)
        if (run.rows !== MAILBOXES) throw new Error(`exported ${run.rows} rows of ${MAILBOXES}`);
      const times = runs.map((r) => r.seconds).sort((a, b) => a - b);
      const median = percentile(times, 50);
      const growth = Math.max(...runs.map((r) => r.rssGrowthMb));
      const peak = Math.max(...runs.map((r) => r.peakRssMb));
      const ok = times.at(-1)! < TARGET_SECONDS && growth < TARGET_RSS_GROWTH_MB;
      return {
        benchmark: `credential export (${engine})`,
        workload: `GET /v1/exports/inboxes.csv, ${MAILBOXES.toLocaleString('en')} mailboxes, 16 columns, passwords decrypted, ${(runs[0].bytes / 1_048_576).toFixed(1)} MB; ${RUNS} runs (first: ${runs[0].seconds.toFixed(2)} s); set-up ${seeded.seconds.toFixed(1)} s`,
        throughput: `${Math.round(MAILBOXES / median).toLocaleString('en')} rows/s`,
        p50: `${(median * 1000).toFixed(0)} ms`,
        p99: `${(times.at(-1)! * 1000).toFixed(0)} ms (slowest)`,
        peakRss: `+${growth.toFixed(1)} MB (peak ${peak.toFixed(0)} MB)`,
        target: `< 2 s, RSS growth < 50 MB ${ok ? '✔' : '✘'}`,
      };
    } finally {
      await server.stop();
    }
  } finally {
    await installation.cleanup();
  }
}

export async function run(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const engine of benchEngines()) rows.push(await benchEngine(engine));
  return rows;
}
