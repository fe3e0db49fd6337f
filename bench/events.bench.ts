// Events and webhooks (issue 3):
// - webhook fan-out: BENCH_EVENTS (50,000) events, each delivered to 10 endpoints on a receiver in
//   another process; deliveries/s from the first emit to the last delivery, and event-to-delivery
//   latency (receipt minus the event's created_at). Events are emitted in transactions of 500, as fast
//   as the database takes them, by a Mailroom API in this process; a `mailroom worker` process
//   delivers (the API and worker roles as they run at scale). Then a steady 100 events/s (1,000
//   deliveries/s) for 20 s, for the latency of normal operation rather than of a backlog.
// - live stream: 1,000 WebSocket clients on `mailroom start` in its own process; events caused over
//   HTTP at 10/s; event-to-client latency over every message.
import { type ChildProcess, fork } from 'node:child_process';
import path from 'node:path';
import WebSocket from 'ws';
import { createMailroom } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { organizationUpdated } from '../src/modules/organizations/events.ts';
import { eventOf } from '../src/modules/events/service.ts';
import {
  benchAccount,
  benchEngines,
  benchInstallation,
  type Engine,
  json,
  peakRssMb,
  percentile,
  type Row,
  startServer,
} from './support.ts';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 50_000);
const ENDPOINTS = 10;
const BATCH = 500;
const PACED_EVENTS_PER_SECOND = 100;
const PACED_SECONDS = 20;
const CLIENTS = Number(process.env.BENCH_WS_CLIENTS ?? 1000);
const WS_EVENTS = Number(process.env.BENCH_WS_EVENTS ?? 100);

interface ReceiverReport {
  count: number;
  first: number;
  last: number;
  latencies: number[];
}

function startReceiver(): Promise<{
  child: ChildProcess;
  port: number;
  report: () => Promise<ReceiverReport>;
}> {
  const child = fork(path.resolve('bench/webhook-receiver.ts'), {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve) => {
    child.once('message', (m: { port: number }) =>
      resolve({
        child,
        port: m.port,
        report: () =>
          new Promise((r) => {
            child.once('message', (msg) => r(msg as ReceiverReport));
            child.send('report');
          }),
      }),
    );
  });
}

async function webhookFanOut(engine: Engine): Promise<Row[]> {
  const { env, cleanup } = await benchInstallation(engine);
  const receiver = await startReceiver();
  const config = loadConfig(
    {
      ...env,
      MAILROOM_LOG_LEVEL: 'warn',
      MAILROOM_WEBHOOK_ALLOW_HOSTS: '127.0.0.1',
      MAILROOM_HTTP_PORT: '0',
    },
    null,
  );
  // The embedded database belongs to one process: there, this process also delivers.
  const separateWorker = engine === 'postgres';
  const app = await createMailroom(config, { http: true, workers: !separateWorker });
  const worker = separateWorker
    ? await startServer(
        {
          ...env,
          MAILROOM_WEBHOOK_ALLOW_HOSTS: '127.0.0.1',
          ...(process.env.BENCH_PROF ? { NODE_OPTIONS: '--cpu-prof --cpu-prof-dir=/tmp/prof' } : {}),
        },
        'worker',
      )
    : null;
  try {
    const http = app.http!;
    const call = async (method: string, url: string, body: unknown, token?: string) => {
      const res = await http.inject({
        method: method as 'POST',
        url,
        payload: body as object,
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
      return res.json();
    };
    const reg = await call('POST', '/v1/auth/register', {
      email: 'bench@example.com',
      password: 'benchmark passphrase',
    });
    const token = reg.tokens.access_token as string;
    const org = await call('POST', '/v1/organizations', { name: 'Bench' }, token);
    for (let i = 0; i < ENDPOINTS; i++) {
      await call('POST', '/v1/webhooks', { url: `http://127.0.0.1:${receiver.port}/hook/${i}` }, token);
    }
    const emit = (count: number, from: number) =>
      app.database.db.transaction((tx) =>
        app.services.events.emitMany(
          tx,
          Array.from({ length: count }, (_, i) =>
            eventOf(organizationUpdated, org.id, {
              organization_id: org.id,
              name: `Bench ${from + i}`,
              slug: org.slug,
            }),
          ),
        ),
      );
    const waitFor = async (expected: number) => {
      let report = await receiver.report();
      const deadline = Date.now() + 30 * 60_000;
      while (report.count < expected && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        report = await receiver.report();
      }
      return { ...report, latencies: report.latencies.sort((a, b) => a - b) };
    };
    const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    const rssOf = () =>
      worker
        ? `${peakRssMb(worker.child.pid!).toFixed(0)} MB (worker)`
        : `${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB (bench + Mailroom)`;

    // A burst: everything at once, as fast as the database takes it. Latency here is mostly queueing.
    const started = Date.now();
    for (let sent = 0; sent < EVENTS; sent += BATCH) await emit(Math.min(BATCH, EVENTS - sent), sent);
    const emitted = Date.now();
    const burst = await waitFor(EVENTS * ENDPOINTS);
    const burstRow: Row = {
      benchmark: `webhook fan-out, burst (${engine})`,
      workload: `${EVENTS} events × ${ENDPOINTS} endpoints = ${burst.count}/${EVENTS * ENDPOINTS} deliveries; emitted in ${seconds(emitted - started)}`,
      throughput: `${(burst.count / ((burst.last - started) / 1000)).toFixed(0)} deliveries/s`,
      p50: seconds(percentile(burst.latencies, 50)),
      p99: seconds(percentile(burst.latencies, 99)),
      peakRss: rssOf(),
      target: '>= 2000 deliveries/s',
    };

    // Steady load below capacity: the latency a receiver sees in normal operation.
    receiver.child.send('reset');
    const perTick = PACED_EVENTS_PER_SECOND / 10;
    for (let tick = 0; tick < PACED_SECONDS * 10; tick++) {
      const at = Date.now();
      await emit(perTick, tick * perTick);
      await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - at))));
    }
    const paced = await waitFor(PACED_SECONDS * PACED_EVENTS_PER_SECOND * ENDPOINTS);
    const pacedRow: Row = {
      benchmark: `webhook fan-out, steady (${engine})`,
      workload: `${PACED_EVENTS_PER_SECOND} events/s × ${ENDPOINTS} endpoints for ${PACED_SECONDS} s, ${paced.count} deliveries`,
      throughput: `${(paced.count / PACED_SECONDS).toFixed(0)} deliveries/s offered`,
      p50: `${percentile(paced.latencies, 50)} ms`,
      p99: `${percentile(paced.latencies, 99)} ms`,
      peakRss: rssOf(),
      target: '-',
    };
    return [burstRow, pacedRow];
  } finally {
    await worker?.stop();
    await app.close();
    receiver.child.send('exit');
    await cleanup();
  }
}

async function liveStream(engine: Engine): Promise<Row> {
  const { env, cleanup } = await benchInstallation(engine);
  const server = await startServer(env);
  const sockets: WebSocket[] = [];
  try {
    const { token, org } = await benchAccount(server.port);
    const latencies: number[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      const socket = new WebSocket(`ws://127.0.0.1:${server.port}/v1/events/stream`, {
        headers: { authorization: `Bearer ${token}` },
      });
      socket.on('message', (data) => {
        latencies.push(Date.now() - Date.parse(JSON.parse(String(data)).created_at));
      });
      await new Promise((resolve, reject) => {
        socket.once('open', resolve);
        socket.once('error', reject);
      });
      sockets.push(socket);
    }
    for (let i = 0; i < WS_EVENTS; i++) {
      const tick = Date.now();
      await json(server.port, 'PATCH', `/v1/organizations/${org.id}`, { name: `Live ${i}` }, token);
      await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - tick))));
    }
    const expected = CLIENTS * WS_EVENTS;
    const deadline = Date.now() + 60_000;
    while (latencies.length < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const sorted = latencies.sort((a, b) => a - b);
    return {
      benchmark: `event to WebSocket (${engine})`,
      workload: `${CLIENTS} clients, ${WS_EVENTS} events at 10/s, ${latencies.length}/${expected} messages`,
      throughput: `${((WS_EVENTS * CLIENTS) / (WS_EVENTS / 10)).toFixed(0)} msgs/s`,
      p50: `${percentile(sorted, 50)} ms`,
      p99: `${percentile(sorted, 99)} ms`,
      peakRss: `${peakRssMb(server.child.pid!).toFixed(0)} MB`,
      target: 'p99 < 100 ms',
    };
  } finally {
    for (const s of sockets) s.terminate();
    await server.stop();
    await cleanup();
  }
}

export async function run(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const engine of benchEngines()) {
    rows.push(...(await webhookFanOut(engine)));
    rows.push(await liveStream(engine));
  }
  return rows;
}
