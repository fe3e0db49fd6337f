import { Resolver } from 'node:dns/promises';
import net from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { dkimVerify } from 'mailauth';
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
  serverSet,
  forkDnsServer,
} from './support.ts';
import { LoadConnection } from './http-load.ts';
import { describeUsage, watchUsage } from './usage.ts';

const CONCURRENCY = Number(process.env.BENCH_OUTBOUND_CONCURRENCY ?? 50);
const DOMAINS = Number(process.env.BENCH_OUTBOUND_DOMAINS ?? 10);
/** No new message at the sink for this long: the phase is reported as it stands. */
const STALL_MS = Number(process.env.BENCH_OUTBOUND_STALL_MS ?? 60_000);
const PROFILE_DIR = '/tmp/prof-outbound';
const DRAIN_WORKERS = Number(process.env.BENCH_OUTBOUND_DRAIN_WORKERS ?? 1);
const PHASES = new Set((process.env.BENCH_OUTBOUND_PHASES ?? 'steady,batch,drain').split(','));
/** Messages per request, and requests at once, in the batch phase. */
const BATCH = Number(process.env.BENCH_OUTBOUND_BATCH ?? 500);
const BATCH_CONCURRENCY = Number(process.env.BENCH_OUTBOUND_BATCH_CONCURRENCY ?? 4);
const HOST = 'mx.mailroom.bench.example';
const SENDER_DOMAIN = 'sender.bench.example';
const REMOTE_MX = 'mx.remote.bench.example';
const remoteDomain = (i: number) => `r${i}.remote.bench.example`;

function messagesFor(engine: Engine): number {
  const n = process.env.BENCH_OUTBOUND_MESSAGES;
  return n ? Number(n) : engine === 'postgres' ? 10_000 : 2_000;
}

/** A text body of words, about 20 KB once composed, like a newsletter-sized mail. */
const BODY = (() => {
  const words = ['delivery', 'invoice', 'meeting', 'report', 'quarter', 'update', 'schedule', 'team'];
  let body = '';
  for (let line = 0; body.length < 19_600; line++) {
    body += `${Array.from({ length: 10 }, (_, i) => words[(line + i * 7) % words.length]).join(' ')}\r\n`;
  }
  return body;
})();
const BODY_JSON = JSON.stringify(BODY);

function requestBody(phase: string, n: number): string {
  const to = `user${n % 100}@${remoteDomain(n % DOMAINS)}`;
  return (
    `{"from":{"address":"news@${SENDER_DOMAIN}","name":"Bench News"},"to":["${to}"],` +
    `"subject":"bench ${phase} ${n}","text":${BODY_JSON},"headers":{"X-Bench-Seq":"${phase}-${n}"}}`
  );
}

// ---- the remote MX: a minimal SMTP server that takes everything -----------------------------------

interface Received {
  at: number;
  bytes: number;
  rcpt: string[];
  signed: boolean;
}

interface Sink {
  port: number;
  /** By X-Bench-Seq. */
  received: Map<string, Received>;
  total: number;
  duplicates: number;
  unsigned: number;
  unknown: number;
  connections: number;
  maxOpen: number;
  first: number;
  last: number;
  /** The first message's bytes, to verify its signature. */
  sample: Buffer | null;
  reset(): void;
  close(): Promise<void>;
}

const TERMINATOR = Buffer.from('\r\n.\r\n');
const SEQ = /^X-Bench-Seq:[ \t]*(\S+)/im;
const DKIM = /^DKIM-Signature:/im;

/**
 * Greets at once, advertises PIPELINING and 8BITMIME, answers every command 250 and takes DATA until
 * the terminating dot. Cheap enough to share this process with the HTTP client.
 */
async function startSink(): Promise<Sink> {
  let open = 0;
  const sink: Sink = {
    port: 0,
    received: new Map(),
    total: 0,
    duplicates: 0,
    unsigned: 0,
    unknown: 0,
    connections: 0,
    maxOpen: 0,
    first: 0,
    last: 0,
    sample: null,
    reset() {
      sink.received = new Map();
      sink.total = sink.duplicates = sink.unsigned = sink.unknown = 0;
      sink.connections = sink.maxOpen = sink.first = sink.last = 0;
      sink.sample = null;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };

  const accept = (raw: Buffer, rcpt: string[]) => {
    const at = performance.now();
    const end = raw.indexOf('\r\n\r\n');
    const header = raw.toString('latin1', 0, end < 0 ? Math.min(raw.length, 8192) : end);
    const seq = SEQ.exec(header)?.[1];
    const signed = DKIM.test(header);
    sink.total++;
    if (!signed) sink.unsigned++;
    if (!sink.first) sink.first = at;
    sink.last = at;
    sink.sample ??= raw;
    if (!seq) {
      sink.unknown++;
      return;
    }
    if (sink.received.has(seq)) sink.duplicates++;
    else sink.received.set(seq, { at, bytes: raw.length, rcpt, signed });
  };

  const server = net.createServer((socket) => {
    sink.connections++;
    sink.maxOpen = Math.max(sink.maxOpen, ++open);
    socket.setNoDelay(true);
    socket.once('close', () => open--);
    socket.on('error', () => {});
    let line = '';
    let inData = false;
    let chunks: Buffer[] = [];
    let tail: Buffer = Buffer.alloc(0);
    let rcpt: string[] = [];

    const command = (text: string) => {
      const verb = text.slice(0, 4).toUpperCase();
      if (verb === 'EHLO')
        socket.write('250-sink.bench\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 104857600\r\n');
      else if (verb === 'HELO') socket.write('250 sink.bench\r\n');
      else if (verb === 'MAIL') {
        rcpt = [];
        socket.write('250 2.1.0 Ok\r\n');
      } else if (verb === 'RCPT') {
        rcpt.push(/<([^>]*)>/.exec(text)?.[1] ?? '');
        socket.write('250 2.1.5 Ok\r\n');
      } else if (verb === 'DATA') {
        inData = true;
        chunks = [];
        tail = Buffer.alloc(0);
        socket.write('354 End data with <CR><LF>.<CR><LF>\r\n');
      } else if (verb === 'RSET' || verb === 'NOOP') socket.write('250 2.0.0 Ok\r\n');
      else if (verb === 'QUIT') {
        socket.end('221 2.0.0 Bye\r\n');
      } else socket.write('502 5.5.2 Command not recognized\r\n');
    };

    /** Feeds message bytes; returns what follows the terminating dot (commands again), or null. */
    const data = (chunk: Buffer): Buffer | null => {
      // The terminator may straddle the previous chunk and this one.
      let end = -1;
      if (tail.length) {
        const joint = Buffer.concat([tail, chunk.subarray(0, TERMINATOR.length)]);
        const at = joint.indexOf(TERMINATOR);
        if (at >= 0) end = at + TERMINATOR.length - tail.length;
      }
      if (end < 0) {
        const at = chunk.indexOf(TERMINATOR);
        if (at >= 0) end = at + TERMINATOR.length;
      }
      if (end < 0) {
        chunks.push(chunk);
        tail = (chunk.length >= 4 ? chunk : Buffer.concat([tail, chunk])).subarray(-4);
        return null;
      }
      chunks.push(chunk.subarray(0, end));
      const all = Buffer.concat(chunks);
      // The message ends with its last CRLF; ".\r\n" is the terminator's own.
      accept(all.subarray(0, all.length - 3), rcpt);
      inData = false;
      chunks = [];
      socket.write('250 2.0.0 Ok: queued\r\n');
      return chunk.subarray(end);
    };

    socket.on('data', (input: Buffer) => {
      socket.cork();
      let chunk: Buffer | null = input;
      while (chunk?.length) {
        if (inData) {
          chunk = data(chunk);
          continue;
        }
        const text = chunk.toString('latin1');
        let at = 0;
        let rest: Buffer | null = null;
        for (;;) {
          const eol = text.indexOf('\r\n', at);
          if (eol < 0) {
            line += text.slice(at);
            break;
          }
          command(line + text.slice(at, eol));
          line = '';
          at = eol + 2;
          if (inData) {
            rest = chunk.subarray(at);
            break;
          }
        }
        chunk = rest;
      }
      socket.uncork();
    });
    socket.write('220 sink.bench ESMTP\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  sink.port = (server.address() as net.AddressInfo).port;
  return sink;
}

// ---- the client: POST /v1/messages/send ------------------------------------------------------------

interface Sent {
  /** performance.now() of each message's 202, by X-Bench-Seq. */
  accepted: Map<string, number>;
  /** performance.now() of each request's start. */
  requested: Map<string, number>;
  requestMs: number[];
  began: number;
  lastAccepted: number;
}

function startSending(): Sent {
  return {
    accepted: new Map(),
    requested: new Map(),
    requestMs: [],
    began: performance.now(),
    lastAccepted: 0,
  };
}

/** Records one request, begun at `began` and answered at `at`, for the messages `seqs` of `phase`. */
function recordRequest(sent: Sent, phase: string, seqs: number[], began: number, at: number): void {
  for (const i of seqs) {
    sent.accepted.set(`${phase}-${i}`, at);
    sent.requested.set(`${phase}-${i}`, began);
  }
  sent.requestMs.push(at - began);
  sent.lastAccepted = Math.max(sent.lastAccepted, at);
}

async function sendAll(port: number, key: string, phase: string, n: number): Promise<Sent> {
  const sent = startSending();
  let next = 0;
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${key}` };
  const client = async () => {
    const connection = new LoadConnection(port);
    try {
      for (let i = next++; i < n; i = next++) {
        const began = performance.now();
        const res = await connection.request('POST', '/v1/messages/send', headers, requestBody(phase, i));
        if (res.status !== 202) throw new Error(`send ${i}: ${res.status} ${res.body}`);
        recordRequest(sent, phase, [i], began, performance.now());
      }
    } finally {
      connection.close();
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, client));
  sent.requestMs.sort((a, b) => a - b);
  return sent;
}

/** The same messages through POST /v1/messages/send/batch: BATCH a request, BATCH_CONCURRENCY at once. */
async function sendBatches(port: number, key: string, phase: string, n: number): Promise<Sent> {
  const sent = startSending();
  let next = 0;
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${key}` };
  const client = async () => {
    const connection = new LoadConnection(port);
    try {
      for (let from = next; from < n; from = next) {
        next = Math.min(n, from + BATCH);
        const seqs = Array.from({ length: next - from }, (_, i) => from + i);
        const began = performance.now();
        const body = `{"messages":[${seqs.map((i) => requestBody(phase, i)).join(',')}]}`;
        const res = await connection.request('POST', '/v1/messages/send/batch', headers, body);
        const at = performance.now();
        const answer = JSON.parse(res.body);
        if (res.status !== 200 || answer.queued !== seqs.length)
          throw new Error(`batch ${from}: ${res.status} ${res.body.slice(0, 500)}`);
        recordRequest(sent, phase, seqs, began, at);
      }
    } finally {
      connection.close();
    }
  };
  await Promise.all(Array.from({ length: BATCH_CONCURRENCY }, client));
  sent.requestMs.sort((a, b) => a - b);
  return sent;
}

/** Until the sink has `n` distinct messages of the phase (or nothing new came for STALL_MS). */
async function arrivals(sink: Sink, n: number): Promise<boolean> {
  let seen = -1;
  let progress = performance.now();
  while (sink.received.size < n) {
    if (sink.total !== seen) {
      seen = sink.total;
      progress = performance.now();
    } else if (performance.now() - progress > STALL_MS) {
      return false;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  // Late duplicates (a claim that expired and was sent again) would come within moments.
  await new Promise((r) => setTimeout(r, 500));
  return true;
}

// ---- the benchmark ------------------------------------------------------------------------------------

function check(sink: Sink, phase: string, n: number): string {
  let missing = 0;
  for (let i = 0; i < n; i++) if (!sink.received.has(`${phase}-${i}`)) missing++;
  const parts = [`${n - missing}/${n} arrived`];
  if (sink.duplicates) parts.push(`${sink.duplicates} DUPLICATES`);
  else parts.push('each once');
  parts.push(sink.unsigned ? `${sink.unsigned} UNSIGNED` : 'all DKIM-signed');
  if (sink.unknown) parts.push(`${sink.unknown} unknown`);
  return parts.join(', ');
}

async function verifySample(sink: Sink, dnsAddress: string): Promise<string> {
  if (!sink.sample) return 'no message to verify';
  const resolver = new Resolver();
  resolver.setServers([dnsAddress]);
  const verified = await dkimVerify(sink.sample, {
    resolver: (name: string, type: string) => resolver.resolve(name, type as 'TXT'),
  } as never);
  return verified.results.map((r: any) => `${r.signingDomain} ${r.algo} ${r.status.result}`).join(', ');
}

async function outbound(engine: Engine): Promise<Row[]> {
  const messages = messagesFor(engine);
  const { env, cleanup } = await benchInstallation(engine);
  const { dns, address } = await forkDnsServer();
  const sink = await startSink();
  const settings: Record<string, string> = {
    ...env,
    MAILROOM_HTTP_PORT: '0',
    MAILROOM_SMTP_PORT: '0',
    MAILROOM_SUBMISSION_PORT: '0',
    MAILROOM_IMAP_PORT: '0',
    MAILROOM_HOSTNAME: HOST,
    MAILROOM_DNS_SERVERS: address,
    MAILROOM_OUTBOUND_PORT: String(sink.port),
    // Raised, not off: the counters are still kept, as in production.
    MAILROOM_SEND_LIMIT_MAILBOX_PER_DAY: process.env.BENCH_OUTBOUND_SEND_LIMITS === 'off' ? '0' : '100000000',
    MAILROOM_SEND_LIMIT_ORGANIZATION_PER_HOUR:
      process.env.BENCH_OUTBOUND_SEND_LIMITS === 'off' ? '0' : '100000000',
  };
  const servers = serverSet(PROFILE_DIR);
  const start = (role: string, phase: string) => servers.start(settings, role, phase);
  const stop = servers.stop;
  let db: pg.Client | null = null;
  const notes: string[] = [];
  try {
    // Set-up through the API: a verified sending domain with its DKIM key, an API key to send with, and
    // remote domains whose MX is the sink.
    const app = await createMailroom(loadConfig({ ...settings, MAILROOM_LOG_LEVEL: 'warn' }, null), {
      http: true,
      workers: false,
    });
    let key: string;
    try {
      const { http: port } = await app.listen();
      const { token, org } = await benchAccount(port!);
      const domain = await json(port!, 'POST', '/v1/domains', { name: SENDER_DOMAIN }, token);
      const { records } = await json(port!, 'GET', `/v1/domains/${domain.id}/dns-records`, undefined, token);
      const zone: [string, TestRecords][] = [
        ...zoneOf(records),
        [REMOTE_MX, { A: ['127.0.0.1'] }],
        ...Array.from({ length: DOMAINS }, (_, i): [string, TestRecords] => [
          remoteDomain(i),
          { MX: [{ exchange: REMOTE_MX, priority: 10 }] },
        ]),
      ];
      await ask(dns, { zone });
      const verified = await json(port!, 'POST', `/v1/domains/${domain.id}/verify`, {}, token);
      if (verified.status !== 'verified') throw new Error(`domain not verified: ${JSON.stringify(verified)}`);
      const created = await json(
        port!,
        'POST',
        `/v1/organizations/${org.id}/api-keys`,
        { name: 'bench sender', scopes: ['messages:write'] },
        token,
      );
      if (!created.key) throw new Error(`no API key: ${JSON.stringify(created)}`);
      key = created.key;
    } finally {
      await app.close();
    }
    if (engine === 'postgres') {
      db = new pg.Client({ connectionString: settings.DATABASE_URL });
      await db.connect();
      await logStatements(settings.DATABASE_URL);
    }
    const lag = monitorEventLoopDelay({ resolution: 10 });
    const rows: Row[] = [];

    // ---- steady and batch: API and worker together, one message a request or BATCH ----
    for (const phase of ['steady', 'batch'].filter((p) => PHASES.has(p))) {
      const batched = phase === 'batch';
      const separate = engine === 'postgres';
      const api = await start(separate ? 'api' : 'start', phase);
      const worker = separate ? await start('worker', phase) : null;
      sink.reset();
      lag.reset();
      lag.enable();
      const usage = watchUsage(
        db,
        worker ? { api: api.child.pid!, worker: worker.child.pid! } : { start: api.child.pid! },
      );
      const sent = batched
        ? await sendBatches(api.port, key, phase, messages)
        : await sendAll(api.port, key, phase, messages);
      const complete = await arrivals(sink, messages);
      const used = await usage.stop();
      lag.disable();
      const recorded = db ? await recordedAfter(db, sink.last, messages) : null;
      const latencies: number[] = [];
      const endToEnd: number[] = [];
      for (const [seq, r] of sink.received) {
        const accepted = sent.accepted.get(seq);
        if (accepted !== undefined) latencies.push(r.at - accepted);
        const requested = sent.requested.get(seq);
        if (requested !== undefined) endToEnd.push(r.at - requested);
      }
      latencies.sort((a, b) => a - b);
      endToEnd.sort((a, b) => a - b);
      const early = latencies.filter((l) => l < 0).length;
      // Queued → delivered: from the queueing transaction (the message row's received_at, on the database's
      // clock, which is this machine's) to the sink's receipt. The 202 is no stand-in for "queued": the API
      // answers only after writing its audit entry, by when the worker has usually delivered the message.
      const queued = db ? await queuedToSink(db, sink, phase) : [];
      const apiRss = peakRssMb(api.child.pid!);
      const workerRss = worker ? peakRssMb(worker.child.pid!) : 0;
      const seconds = (sink.last - sent.began) / 1000;
      const acceptSeconds = (sent.lastAccepted - sent.began) / 1000;
      const dkim = await verifySample(sink, address);
      if (worker) await stop(worker);
      await stop(api);
      const how = batched
        ? `batch endpoint (${BATCH} a request, ${BATCH_CONCURRENCY} at once)`
        : `send API (${CONCURRENCY} concurrent)`;
      rows.push({
        benchmark: `${batched ? 'batch send' : 'send'} end to end (${engine})`,
        workload:
          `${messages} × ${kb(sink)} via ${how} to ${DOMAINS} domains, ${worker ? 'api + worker' : 'start'}, ` +
          `first request → last at sink; latency ${queued.length ? 'queued' : '202'} → sink; ` +
          `accepted at ${rate(messages, acceptSeconds)}; ${check(sink, phase, messages)}${complete ? '' : ' (STALLED)'}`,
        throughput: rate(sink.received.size, seconds),
        p50: ms(percentile(queued.length ? queued : latencies, 50)),
        p99: ms(percentile(queued.length ? queued : latencies, 99)),
        peakRss: worker
          ? `${Math.round(apiRss)} MB (api), ${Math.round(workerRss)} MB (worker)`
          : `${Math.round(apiRss)} MB (start)`,
        target:
          engine === 'postgres' ? (batched ? '≥ 1,000 msg/s' : '≥ 800 msg/s') : batched ? '–' : '≥ 300 msg/s',
      });
      notes.push(
        `outbound ${phase} (${engine}): request p50 ${ms(percentile(sent.requestMs, 50))}, p99 ${ms(percentile(sent.requestMs, 99))}; accepted in ${acceptSeconds.toFixed(1)} s, last at sink ${seconds.toFixed(1)} s` +
          (recorded !== null ? `, all recorded delivered +${recorded} ms after the last receipt` : '') +
          `; sink: ${sink.connections} connections (${sink.maxOpen} at once); ` +
          `202 → sink p50 ${ms(percentile(latencies, 50))}, p99 ${ms(percentile(latencies, 99))}, ` +
          `${early} of ${latencies.length} arrived before their 202; ` +
          `request start → sink p50 ${ms(percentile(endToEnd, 50))}, p99 ${ms(percentile(endToEnd, 99))}; ` +
          `bench event-loop delay p99 ${(lag.percentile(99) / 1e6).toFixed(1)} ms; DKIM of the first: ${dkim}`,
        describeUsage(`CPU during the ${phase} phase`, used),
      );
    }

    // ---- drain: queue with no worker, then deliver ----
    if (PHASES.has('drain')) {
      const api = await start('api', 'drain');
      sink.reset();
      const acceptUsage = watchUsage(db, { api: api.child.pid! });
      const sent = await sendAll(api.port, key, 'drain', messages);
      const accepting = await acceptUsage.stop();
      const acceptSeconds = (sent.lastAccepted - sent.began) / 1000;
      const apiRss = peakRssMb(api.child.pid!);
      await stop(api);
      if (sink.total) throw new Error('mail was delivered with no worker running');
      rows.push({
        benchmark: `send API accept, delivery paused (${engine})`,
        workload: `${messages} × 20 KB through the send API (${CONCURRENCY} concurrent), \`mailroom api\` alone: 202 once signed and queued`,
        throughput: rate(messages, acceptSeconds),
        p50: ms(percentile(sent.requestMs, 50)),
        p99: ms(percentile(sent.requestMs, 99)),
        peakRss: `${Math.round(apiRss)} MB (api)`,
        target: engine === 'postgres' ? '≥ 1,000 msg/s' : '–',
      });
      const before = db
        ? (await db.query(`select count(*)::int as n from deliveries where status = 'delivered'`)).rows[0].n
        : 0;
      const spawned = performance.now();
      // More than one worker process shares the queue (SKIP LOCKED); the embedded engine allows one.
      const count = engine === 'postgres' ? DRAIN_WORKERS : 1;
      const workers = await Promise.all(Array.from({ length: count }, () => start('worker', 'drain')));
      const names = workers.map((_, i) => (count === 1 ? 'worker' : `worker ${i + 1}`));
      const usage = watchUsage(db, Object.fromEntries(workers.map((w, i) => [names[i], w.child.pid!])));
      const complete = await arrivals(sink, messages);
      const used = await usage.stop();
      const recorded = db ? await recordedAfter(db, sink.last, before + messages) : null;
      const workerRss = workers.map((w) => Math.round(peakRssMb(w.child.pid!)));
      for (const w of workers) await stop(w);
      const seconds = (sink.last - spawned) / 1000;
      const delivering = (sink.last - sink.first) / 1000;
      rows.push({
        benchmark: `outbound delivery, drain (${engine})`,
        workload: `${messages} queued with no worker (the row above), then ${count === 1 ? 'worker' : `${count} workers`} spawn → last at sink; ${check(sink, 'drain', messages)}${complete ? '' : ' (STALLED)'}`,
        throughput:
          `${Math.round(sink.received.size / seconds).toLocaleString('en')} msg/s ` +
          `(${Math.round(sink.received.size / delivering).toLocaleString('en')} once delivering)`,
        p50: '–',
        p99: '–',
        peakRss: `${workerRss.join(', ')} MB (${count === 1 ? 'worker' : `${count} workers`})`,
        target: engine === 'postgres' ? '≥ 1,000 msg/s' : '–',
      });
      notes.push(
        `outbound drain (${engine}): worker ready in ${Math.round(Math.max(...workers.map((w) => w.readyMs)))} ms, first at sink after ` +
          `${Math.round(sink.first - spawned)} ms; first → last ${Math.round(sink.received.size / delivering)} msg/s` +
          (recorded !== null ? `; all recorded delivered +${recorded} ms after the last receipt` : '') +
          `; sink: ${sink.connections} connections (${sink.maxOpen} at once); api peak RSS ${Math.round(apiRss)} MB`,
        describeUsage('CPU while the API accepted (delivery paused)', accepting),
        describeUsage('CPU during the drain (from worker ready)', used),
      );
    }
    console.log(notes.join('\n'));
    return rows;
  } finally {
    await servers.stopAll();
    await db?.end();
    await sink.close();
    dns.kill();
    await cleanup();
  }
}

/** Per message of the phase: the sink's receipt minus its message row's received_at (when queueing began), in ms. */
async function queuedToSink(db: pg.Client, sink: Sink, phase: string): Promise<number[]> {
  const { rows } = await db.query(
    `select subject, extract(epoch from received_at) * 1000 as at from messages where subject like $1`,
    [`bench ${phase} %`],
  );
  const latencies: number[] = [];
  for (const r of rows) {
    const got = sink.received.get(`${phase}-${r.subject.slice(`bench ${phase} `.length)}`);
    if (got) latencies.push(performance.timeOrigin + got.at - Number(r.at));
  }
  return latencies.sort((a, b) => a - b);
}

/** Milliseconds from `last` (the last receipt) until the database shows `n` deliveries delivered. */
async function recordedAfter(db: pg.Client, last: number, n: number): Promise<number | null> {
  for (;;) {
    const { rows } = await db.query(`select count(*)::int as n from deliveries where status = 'delivered'`);
    if (rows[0].n >= n) return Math.max(0, Math.round(performance.now() - last));
    if (performance.now() - last > 60_000) return null;
    await new Promise((r) => setTimeout(r, 10));
  }
}

const rate = (n: number, s: number) => `${Math.round(n / s).toLocaleString('en')} msg/s`;

function ms(value: number): string {
  if (!Number.isFinite(value)) return '–';
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(1)} ms`;
}

function kb(sink: Sink): string {
  const first = sink.received.values().next().value;
  return first ? `${(first.bytes / 1024).toFixed(1)} KB` : '20 KB';
}

export async function run(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const engine of benchEngines()) rows.push(...(await outbound(engine)));
  return rows;
}
