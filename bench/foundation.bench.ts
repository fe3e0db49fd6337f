// Foundation (issue 2): start-up time to /ready on an existing data dir, idle RSS of `mailroom start`,
// and authenticated reads at 50 connections, on PGlite and on PostgreSQL.
import autocannon from 'autocannon';
import {
  BENCH_CREDENTIALS,
  benchAccount,
  benchEngines,
  type Engine,
  benchInstallation,
  json,
  peakRssMb,
  type Row,
  rssMb,
  startServer,
} from './support.ts';

const READ_SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 10);

async function benchEngine(engine: Engine): Promise<Row[]> {
  const { env, cleanup } = await benchInstallation(engine);
  try {
    // First start creates the database; the measured start is the second, on existing data.
    const first = await startServer(env);
    const { org } = await benchAccount(first.port);
    await first.stop();

    const server = await startServer(env);
    await new Promise((r) => setTimeout(r, 3000));
    const idle = rssMb(server.child.pid!);
    const login = await json(server.port, 'POST', '/v1/auth/login', BENCH_CREDENTIALS);
    // Warm-up, not measured: V8 keeps optimising the request path for ~10 s (measured: 2 s windows
    // climb from ~4,000 to ~8,000 req/s), and every pool connection prepares its statements once.
    await autocannon({
      url: `http://127.0.0.1:${server.port}/v1/organizations/${org.id}`,
      connections: 50,
      duration: WARMUP_SECONDS,
      headers: { authorization: `Bearer ${login.access_token}` },
    });
    const result = await autocannon({
      url: `http://127.0.0.1:${server.port}/v1/organizations/${org.id}`,
      connections: 50,
      duration: READ_SECONDS,
      headers: { authorization: `Bearer ${login.access_token}` },
    });
    const peak = peakRssMb(server.child.pid!);
    await server.stop();
    const non2xx = result.non2xx + result.errors;
    return [
      {
        benchmark: `start-up to /ready (${engine})`,
        workload: 'existing data dir / database',
        throughput: '-',
        p50: `${server.readyMs.toFixed(0)} ms`,
        p99: '-',
        peakRss: '-',
        target: '< 1500 ms',
      },
      {
        benchmark: `idle RSS of start (${engine})`,
        workload: 'API + workers, 3 s after ready',
        throughput: '-',
        p50: '-',
        p99: '-',
        peakRss: `${idle.toFixed(0)} MB`,
        target: '< 200 MB',
      },
      {
        benchmark: `authenticated read (${engine})`,
        workload: `GET /v1/organizations/:id, JWT, 50 conns, ${READ_SECONDS} s${non2xx ? `, ${non2xx} non-2xx` : ''}`,
        throughput: `${result.requests.average.toFixed(0)} req/s`,
        p50: `${result.latency.p50} ms`,
        p99: `${result.latency.p99} ms`,
        peakRss: `${peak.toFixed(0)} MB`,
        target: engine === 'postgres' ? '>= 5000 req/s, p99 < 25 ms' : '-',
      },
    ];
  } finally {
    await cleanup();
  }
}

export async function run(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const engine of benchEngines()) rows.push(...(await benchEngine(engine)));
  return rows;
}
