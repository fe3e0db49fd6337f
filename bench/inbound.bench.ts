// Inbound mail: BENCH_INBOUND_MESSAGES (10,000) messages of 20 KB over BENCH_INBOUND_CONNECTIONS (50)
// concurrent SMTP connections, each pipelining MAIL, RCPT and DATA. Each message is authenticated (SPF
// and DMARC against a loopback DNS server in its own process) and answered 250 only once its raw bytes
// and envelope are committed. Phases (BENCH_INBOUND_PHASES, all by default), each on a fresh installation:
// - accept: `mailroom smtp` alone: accepted messages/s and the per-message latency from MAIL FROM to 250.
// - drain (PostgreSQL): then one `mailroom worker` processes (parses, threads, routes, files and indexes)
//   what was accepted: messages/s from its spawn until the last is filed.
// - e2e (PostgreSQL): `mailroom smtp` and one `mailroom worker` side by side, timed from the first
//   connection until the last message is filed in its mailbox and searchable.
// - start: the same end to end against one `mailroom start` (all roles in one process, as a small
//   installation runs it), BENCH_INBOUND_START_MESSAGES (5,000); on the embedded engine progress is read
//   through the API, as the database belongs to that process.
// On PostgreSQL the notes give the CPU time of each process and of the database backends serving it.
// BENCH_PG_LOG=1 logs every statement with its duration to the PostgreSQL server log.
// BENCH_PROF=smtp,worker,start writes V8 CPU profiles of those roles to /tmp/prof-inbound/<phase>-<role>/.
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import pg from 'pg';
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
  logStatements,
  peakRssMb,
  percentile,
  type Row,
  type Server,
  serverSet,
  forkDnsServer,
} from './support.ts';
import { describeUsage, watchUsage } from './usage.ts';

const MESSAGES = Number(process.env.BENCH_INBOUND_MESSAGES ?? 10_000);
const START_MESSAGES = Number(process.env.BENCH_INBOUND_START_MESSAGES ?? 5_000);
const CONNECTIONS = Number(process.env.BENCH_INBOUND_CONNECTIONS ?? 50);
const PHASES = new Set((process.env.BENCH_INBOUND_PHASES ?? 'accept,drain,e2e,start').split(','));
const PROFILE_DIR = '/tmp/prof-inbound';
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

/** Sends `n` messages over CONNECTIONS connections; the seconds it took and the sorted latencies. */
async function sendAll(
  port: number,
  n: number,
): Promise<{ began: number; seconds: number; latencies: number[] }> {
  const latencies: number[] = [];
  let handedOut = 0;
  const next = () => (handedOut < n ? handedOut++ : null);
  const began = performance.now();
  await Promise.all(Array.from({ length: CONNECTIONS }, () => sendOver(port, next, latencies)));
  latencies.sort((a, b) => a - b);
  return { began, seconds: (performance.now() - began) / 1000, latencies };
}

interface Installation {
  settings: Record<string, string>;
  /** How many inbound messages are filed (PostgreSQL). */
  filed(): Promise<number>;
  /** How many inbound messages are processed with a search vector (PostgreSQL). */
  indexed(): Promise<number>;
  /** The token and mailbox, for reading progress through the API. */
  token: string;
  cleanup(): Promise<void>;
}

/** A fresh installation with a verified domain and one mailbox; the sender publishes SPF and DMARC. */
async function install(engine: Engine, dns: ChildProcess, dnsAddress: string): Promise<Installation> {
  const { env, cleanup } = await benchInstallation(engine);
  const settings: Record<string, string> = {
    ...env,
    MAILROOM_HTTP_PORT: '0',
    MAILROOM_SMTP_PORT: '0',
    MAILROOM_SUBMISSION_PORT: '0',
    MAILROOM_HOSTNAME: HOST,
    MAILROOM_DNS_SERVERS: dnsAddress,
    MAILROOM_SMTP_MAX_CONNECTIONS_PER_IP: String(CONNECTIONS * 2),
    MAILROOM_SMTP_MESSAGES_PER_IP_PER_MINUTE: String(MESSAGES * 10),
  };
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
  let db: pg.Client | null = null;
  if (engine === 'postgres') {
    await logStatements(settings.DATABASE_URL);
    db = new pg.Client({ connectionString: settings.DATABASE_URL });
    await db.connect();
  }
  return {
    settings,
    token,
    // Filed: the UIDs given out (gap-free, one per message); the search vector is written in the same
    // transaction. Cheap enough to ask every 20 ms; `indexed` checks the vectors at the end.
    async filed() {
      if (!db) throw new Error('progress of the embedded engine is read through the API');
      const { rows } = await db.query(
        `select coalesce(sum(uid_next - 1), 0)::int as filed from mailbox_folders`,
      );
      return rows[0].filed;
    },
    async indexed() {
      if (!db) throw new Error('progress of the embedded engine is read through the API');
      const { rows } = await db.query(
        `select count(*)::int as n from messages where direction = 'inbound' and search is not null and processed_at is not null`,
      );
      return rows[0].n;
    },
    async cleanup() {
      await db?.end();
      await cleanup();
    },
  };
}

/** Through the API: inbound messages delivered (filed and indexed in the same transaction). */
async function filedThroughApi(port: number, token: string): Promise<number> {
  const stats = await json(port, 'GET', '/v1/messages/stats', undefined, token);
  return stats.by_status.delivered;
}

async function checkIndexed(inst: Installation, n: number): Promise<void> {
  const indexed = await inst.indexed();
  if (indexed !== n) throw new Error(`${n} messages filed but ${indexed} indexed`);
}

async function until(n: number, count: () => Promise<number>): Promise<number> {
  for (;;) {
    const done = await count();
    if (done >= n) return performance.now();
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The last message is found by the search API (subject and body are indexed). */
async function searchable(port: number, token: string, n: number): Promise<void> {
  const found = await json(
    port,
    'GET',
    `/v1/messages/search?q=${encodeURIComponent(`"bench message ${n - 1}" invoice`)}`,
    undefined,
    token,
  );
  if (found.total !== 1) throw new Error(`the last message is not searchable: ${JSON.stringify(found)}`);
}

const rate = (n: number, seconds: number) => `${Math.round(n / seconds).toLocaleString('en')} msg/s`;
const ms = (v: number) => `${v.toFixed(1)} ms`;

async function inbound(engine: Engine, dns: ChildProcess, dnsAddress: string, notes: string[]) {
  const rows: Row[] = [];
  const { start, stop, stopAll } = serverSet(PROFILE_DIR);
  const admin = async (settings: Record<string, string>) => {
    if (engine !== 'postgres') return null;
    const c = new pg.Client({ connectionString: settings.DATABASE_URL });
    await c.connect();
    return c;
  };
  try {
    if (PHASES.has('accept') || PHASES.has('drain')) {
      const inst = await install(engine, dns, dnsAddress);
      try {
        const acceptDb = await admin(inst.settings);
        const smtp = await start(inst.settings, 'smtp', 'accept');
        const acceptUsage = watchUsage(acceptDb, { smtp: smtp.child.pid! });
        const sent = await sendAll(smtp.port, MESSAGES);
        notes.push(describeUsage(`inbound SMTP accept (${engine})`, await acceptUsage.stop()));
        await acceptDb?.end();
        const mxRss = peakRssMb(smtp.child.pid!);
        await stop(smtp);
        rows.push({
          benchmark: `inbound SMTP accept (${engine})`,
          workload: `${MESSAGES} × 20 KB over ${CONNECTIONS} connections, SPF+DMARC checked, committed before 250`,
          throughput: rate(MESSAGES, sent.seconds),
          p50: ms(percentile(sent.latencies, 50)),
          p99: ms(percentile(sent.latencies, 99)),
          peakRss: `${Math.round(mxRss)} MB (mx)`,
          target: '–',
        });
        if (engine === 'postgres' && PHASES.has('drain')) {
          const db = await admin(inst.settings);
          const spawned = performance.now();
          const worker = await start(inst.settings, 'worker', 'drain');
          const usage = watchUsage(db, { worker: worker.child.pid! });
          const done = await until(MESSAGES, () => inst.filed());
          const used = await usage.stop();
          await checkIndexed(inst, MESSAGES);
          const workerRss = peakRssMb(worker.child.pid!);
          await stop(worker);
          await db?.end();
          rows.push({
            benchmark: `inbound processing (${engine})`,
            workload: `worker spawn → ${MESSAGES} accepted messages parsed, threaded, routed, filed and indexed`,
            throughput: rate(MESSAGES, (done - spawned) / 1000),
            p50: '–',
            p99: '–',
            peakRss: `${Math.round(workerRss)} MB (worker)`,
            target: '–',
          });
          notes.push(describeUsage(`inbound processing (${engine})`, used));
        }
      } finally {
        await inst.cleanup();
      }
    }

    if (engine === 'postgres' && PHASES.has('e2e')) {
      const inst = await install(engine, dns, dnsAddress);
      try {
        const db = await admin(inst.settings);
        const smtp = await start(inst.settings, 'smtp', 'e2e');
        const worker = await start(inst.settings, 'worker', 'e2e');
        const usage = watchUsage(db, { smtp: smtp.child.pid!, worker: worker.child.pid! });
        const sent = await sendAll(smtp.port, MESSAGES);
        const done = await until(MESSAGES, () => inst.filed());
        const used = await usage.stop();
        await checkIndexed(inst, MESSAGES);
        const seconds = (done - sent.began) / 1000;
        const rss = [peakRssMb(smtp.child.pid!), peakRssMb(worker.child.pid!)].map(Math.round);
        await stop(worker);
        await stop(smtp);
        await db?.end();
        rows.push({
          benchmark: `inbound end to end (${engine})`,
          workload:
            `${MESSAGES} × 20 KB over ${CONNECTIONS} connections to \`mailroom smtp\`, one \`mailroom worker\`; ` +
            `first connection → last filed and searchable (accepted at ${rate(MESSAGES, sent.seconds)})`,
          throughput: rate(MESSAGES, seconds),
          p50: ms(percentile(sent.latencies, 50)),
          p99: ms(percentile(sent.latencies, 99)),
          peakRss: `${rss[0]} MB (smtp), ${rss[1]} MB (worker)`,
          target: '≥ 1,000 msg/s',
        });
        notes.push(describeUsage(`inbound end to end (${engine})`, used));
      } finally {
        await inst.cleanup();
      }
    }

    if (PHASES.has('start')) {
      const inst = await install(engine, dns, dnsAddress);
      try {
        const db = await admin(inst.settings);
        const server = await start({ ...inst.settings, MAILROOM_SMTP_PORT: '0' }, 'start', 'start');
        const mxPort = await mxPortOf(server);
        const usage = watchUsage(db, { start: server.child.pid! });
        const sent = await sendAll(mxPort, START_MESSAGES);
        const count = db ? () => inst.filed() : () => filedThroughApi(server.port, inst.token);
        const done = await until(START_MESSAGES, count);
        const used = await usage.stop();
        await searchable(server.port, inst.token, START_MESSAGES);
        const seconds = (done - sent.began) / 1000;
        const rss = Math.round(peakRssMb(server.child.pid!));
        await stop(server);
        await db?.end();
        rows.push({
          benchmark: `inbound end to end, mailroom start (${engine})`,
          workload:
            `${START_MESSAGES} × 20 KB over ${CONNECTIONS} connections to one \`mailroom start\`; ` +
            `first connection → last filed and searchable (accepted at ${rate(START_MESSAGES, sent.seconds)})`,
          throughput: rate(START_MESSAGES, seconds),
          p50: ms(percentile(sent.latencies, 50)),
          p99: ms(percentile(sent.latencies, 99)),
          peakRss: `${rss} MB (start)`,
          target: engine === 'postgres' ? '≥ 600 msg/s' : '≥ 300 msg/s',
        });
        notes.push(describeUsage(`inbound end to end, mailroom start (${engine})`, used));
      } finally {
        await inst.cleanup();
      }
    }
    return rows;
  } finally {
    await stopAll();
  }
}

/** `mailroom start` logs the MX's port once it listens. */
function mxPortOf(server: Server): number {
  const port = server.logged(/"port":(\d+),"msg":"MX listening"/);
  if (!port) throw new Error('the MX did not report its port');
  return Number(port);
}

export async function run(): Promise<Row[]> {
  const { dns, address } = await forkDnsServer();
  const rows: Row[] = [];
  const notes: string[] = [];
  try {
    for (const engine of benchEngines()) rows.push(...(await inbound(engine, dns, address, notes)));
  } finally {
    dns.kill();
  }
  console.log(notes.join('\n'));
  return rows;
}
