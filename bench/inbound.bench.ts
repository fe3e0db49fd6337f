// Inbound (issue 5): BENCH_INBOUND_MESSAGES (10,000) messages of 20 KB sent to a `mailroom smtp` process
// over BENCH_INBOUND_CONNECTIONS (50) concurrent SMTP connections. Each message is authenticated (SPF and
// DMARC against a loopback DNS server in its own process) and answered 250 only once its raw bytes, its
// envelope and its processing job are committed. Reports accepted messages/s and the per-message latency
// from MAIL FROM to the 250. A second row runs a `mailroom worker` afterwards and reports how fast it
// processes (parses, threads, routes into a mailbox) what was accepted.
import { fork } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { createMailroom } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import type { TestRecords } from '../test/support/dns-server.ts';
import { zoneOf } from '../test/support/domains.ts';
import {
  ask,
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

const MESSAGES = Number(process.env.BENCH_INBOUND_MESSAGES ?? 10_000);
const CONNECTIONS = Number(process.env.BENCH_INBOUND_CONNECTIONS ?? 50);
const HOST = 'mx.bench.example';
const DOMAIN = 'inbound.bench.example';

/** A text body of words, about 20 KB with the headers, like a newsletter-sized mail. */
const BODY = (() => {
  const words = ['delivery', 'invoice', 'meeting', 'report', 'quarter', 'update', 'schedule', 'team'];
  let body = '';
  for (let line = 0; body.length < 19_600; line++) {
    body += `${Array.from({ length: 10 }, (_, i) => words[(line + i * 7) % words.length]).join(' ')}\r\n`;
  }
  return body;
})();

function messageOf(n: number): string {
  return (
    `From: Sender <news@sender.bench.example>\r\nTo: inbox@${DOMAIN}\r\nSubject: bench message ${n}\r\n` +
    `Message-ID: <bench-${n}@sender.bench.example>\r\nDate: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\n` +
    `Content-Type: text/plain; charset=utf-8\r\n\r\n${BODY}`
  );
}

/** One SMTP connection that sends its share of messages, pipelining MAIL, RCPT and DATA. */
async function sendOver(port: number, next: () => number | null, latencies: number[]): Promise<void> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  let buffer = '';
  const waiters: ((line: string) => void)[] = [];
  socket.on('data', (chunk) => {
    buffer += chunk.toString('latin1');
    let at = buffer.indexOf('\r\n');
    while (at !== -1) {
      const line = buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
      if (/^\d{3} /.test(line)) waiters.shift()?.(line);
      at = buffer.indexOf('\r\n');
    }
  });
  const reply = () => new Promise<string>((resolve) => waiters.push(resolve));
  const expect = async (pattern: RegExp) => {
    const line = await reply();
    if (!pattern.test(line)) throw new Error(`unexpected reply: ${line}`);
  };
  await expect(/^220/);
  socket.write('EHLO bench-client.example\r\n');
  await expect(/^250/);
  for (let n = next(); n !== null; n = next()) {
    const began = performance.now();
    const replies = Promise.all([reply(), reply(), reply()]);
    socket.write(`MAIL FROM:<news@sender.bench.example>\r\nRCPT TO:<inbox@${DOMAIN}>\r\nDATA\r\n`);
    const [mail, rcpt, data] = await replies;
    if (!/^250/.test(mail) || !/^250/.test(rcpt) || !/^354/.test(data)) {
      throw new Error(`refused: ${mail} / ${rcpt} / ${data}`);
    }
    socket.write(`${messageOf(n)}.\r\n`);
    await expect(/^250/);
    latencies.push(performance.now() - began);
  }
  socket.write('QUIT\r\n');
  socket.end();
}

async function acceptMessages(engine: Engine): Promise<Row[]> {
  const { env, cleanup } = await benchInstallation(engine);
  const dns = fork(path.resolve('bench/dns-server.ts'), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { address } = await new Promise<{ address: string }>((r) =>
    dns.once('message', (m) => r(m as never)),
  );
  const settings: Record<string, string> = {
    ...env,
    MAILROOM_HTTP_PORT: '0',
    MAILROOM_SMTP_PORT: '0',
    MAILROOM_HOSTNAME: HOST,
    MAILROOM_DNS_SERVERS: address,
    MAILROOM_SMTP_MAX_CONNECTIONS_PER_IP: String(CONNECTIONS * 2),
    MAILROOM_SMTP_MESSAGES_PER_IP_PER_MINUTE: String(MESSAGES * 10),
  };
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  let worker: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    // Set-up through the API: a verified domain with a mailbox; the sender publishes SPF and DMARC.
    const app = await createMailroom(loadConfig({ ...settings, MAILROOM_LOG_LEVEL: 'warn' }, null), {
      http: true,
      workers: false,
    });
    let token: string;
    try {
      const { http: port } = await app.listen();
      ({ token } = await benchAccount(port!));
      const domain = await json(port!, 'POST', '/v1/domains', { name: DOMAIN }, token);
      const { records } = await json(port!, 'GET', `/v1/domains/${domain.id}/dns-records`, undefined, token);
      const zone: [string, TestRecords][] = [
        ...zoneOf(records),
        ['sender.bench.example', { TXT: ['v=spf1 ip4:127.0.0.1 -all'] }],
        ['_dmarc.sender.bench.example', { TXT: ['v=DMARC1; p=reject'] }],
      ];
      await ask(dns, { zone });
      const verified = await json(port!, 'POST', `/v1/domains/${domain.id}/verify`, {}, token);
      if (verified.status !== 'verified') throw new Error(`domain not verified: ${JSON.stringify(verified)}`);
      await json(port!, 'POST', '/v1/mailboxes', { address: `inbox@${DOMAIN}` }, token);
    } finally {
      await app.close();
    }

    server = await startServer(settings, 'smtp');
    const latencies: number[] = [];
    let handedOut = 0;
    const next = () => (handedOut < MESSAGES ? handedOut++ : null);
    const began = performance.now();
    await Promise.all(Array.from({ length: CONNECTIONS }, () => sendOver(server!.port, next, latencies)));
    const seconds = (performance.now() - began) / 1000;
    const mxRss = peakRssMb(server.child.pid!);
    await server.stop();
    server = undefined;
    latencies.sort((a, b) => a - b);

    const rows: Row[] = [
      {
        benchmark: `inbound SMTP accept (${engine})`,
        workload: `${MESSAGES} × 20 KB over ${CONNECTIONS} connections, SPF+DMARC checked, committed before 250`,
        throughput: `${Math.round(MESSAGES / seconds)} msg/s`,
        p50: `${percentile(latencies, 50).toFixed(1)} ms`,
        p99: `${percentile(latencies, 99).toFixed(1)} ms`,
        peakRss: `${Math.round(mxRss)} MB (mx)`,
        target: engine === 'postgres' ? '≥ 1,000 msg/s' : '–',
      },
    ];
    if (engine === 'postgres') {
      // Processing: a worker drains what the MX accepted (PostgreSQL only: the bench reads progress
      // from the database while the worker runs, which the embedded engine's single process cannot share).
      const processBegan = performance.now();
      worker = await startServer(settings, 'worker');
      const { default: pg } = await import('pg');
      const client = new pg.Client({ connectionString: settings.DATABASE_URL });
      await client.connect();
      for (;;) {
        const { rows: left } = await client.query(
          `select count(*)::int as n from messages where processed_at is null`,
        );
        if (left[0].n === 0) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      await client.end();
      const processSeconds = (performance.now() - processBegan) / 1000;
      const workerRss = peakRssMb(worker.child.pid!);
      await worker.stop();
      worker = undefined;
      rows.push({
        benchmark: `inbound processing (${engine})`,
        workload: `worker drains ${MESSAGES} accepted: parse, thread, route, file in mailbox`,
        throughput: `${Math.round(MESSAGES / processSeconds)} msg/s`,
        p50: '–',
        p99: '–',
        peakRss: `${Math.round(workerRss)} MB (worker)`,
        target: '–',
      });
    }
    return rows;
  } finally {
    await server?.stop();
    await worker?.stop();
    dns.kill();
    await cleanup();
  }
}

export async function run(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const engine of benchEngines()) rows.push(...(await acceptMessages(engine)));
  return rows;
}
