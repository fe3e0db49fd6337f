// Inbox generation (issue 15): `POST /v1/inboxes/generate` for BENCH_GENERATE_COUNT (1,000) inboxes on
// one domain, against `mailroom start` in its own process, timed from the request until its job has
// succeeded (GET /v1/jobs/:id polled every 50 ms): names planned, passwords generated and hashed, each
// mailbox with its six folders and its mailbox.created event. BENCH_RUNS (3) runs, each on a fresh
// domain; the server's RSS is sampled every 5 ms. The server runs on a database created beforehand.
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

const COUNT = Number(process.env.BENCH_GENERATE_COUNT ?? 1_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const TARGET_SECONDS = 10;

interface Run {
  seconds: number;
  peakRssMb: number;
}

async function generateOnce(port: number, pid: number, token: string, run: number): Promise<Run> {
  const domain = await json(
    port,
    'POST',
    '/v1/domains',
    { name: `gen${run}.bench.example`, dkim: { algorithm: 'ed25519' } },
    token,
  );
  let peak = rssMb(pid);
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssMb(pid));
  }, 5);
  try {
    const started = performance.now();
    const job = await json(
      port,
      'POST',
      '/v1/inboxes/generate',
      { domains: [{ domain_id: domain.id, count: COUNT }] },
      token,
    );
    if (!job.id) throw new Error(`generate: ${JSON.stringify(job)}`);
    for (;;) {
      const now = await json(port, 'GET', `/v1/jobs/${job.id}`, undefined, token);
      if (now.state === 'succeeded') {
        if (now.done !== COUNT || now.error_count !== 0) throw new Error(`generated: ${JSON.stringify(now)}`);
        break;
      }
      if (now.state !== 'queued' && now.state !== 'running')
        throw new Error(`generate job: ${JSON.stringify(now)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return { seconds: (performance.now() - started) / 1000, peakRssMb: Math.max(peak, rssMb(pid)) };
  } finally {
    clearInterval(sampler);
  }
}

async function benchEngine(engine: Engine): Promise<Row> {
  const installation = await benchInstallation(engine);
  const env = { ...installation.env, MAILROOM_SMTP_PORT: '0', MAILROOM_SUBMISSION_PORT: '0' };
  try {
    // A first start creates the database (on the embedded engine, initdb and migrations in the server's
    // own process, which leave its RSS high); the measured server is a second start on it, as an
    // installation runs day to day.
    const first = await startServer(env);
    await benchAccount(first.port);
    await first.stop();
    const server = await startServer(env);
    try {
      const token = (await json(server.port, 'POST', '/v1/auth/login', BENCH_CREDENTIALS)).access_token;
      const runs: Run[] = [];
      for (let i = 0; i < RUNS; i++) runs.push(await generateOnce(server.port, server.child.pid!, token, i));
      const times = runs.map((r) => r.seconds).sort((a, b) => a - b);
      const median = percentile(times, 50);
      const ok = times.at(-1)! < TARGET_SECONDS;
      return {
        benchmark: `inbox generation (${engine})`,
        workload: `POST /v1/inboxes/generate, ${COUNT.toLocaleString('en')} inboxes on one domain (faker names, first.last, 20-character passwords, argon2id), request → job succeeded; ${RUNS} runs (${runs.map((r) => r.seconds.toFixed(2)).join(', ')} s)`,
        throughput: `${Math.round(COUNT / median).toLocaleString('en')} inboxes/s`,
        p50: `${median.toFixed(2)} s`,
        p99: `${times.at(-1)!.toFixed(2)} s (slowest)`,
        peakRss: `${Math.max(...runs.map((r) => r.peakRssMb)).toFixed(0)} MB`,
        target: `< ${TARGET_SECONDS} s ${ok ? '✔' : '✘'}`,
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
