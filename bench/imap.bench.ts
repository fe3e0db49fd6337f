// IMAP (issue 16), against `mailroom start` in its own process, over implicit TLS as clients connect:
//   idle     BENCH_IMAP_SESSIONS (500) sessions, each logged in to a mailbox of its own and IDLE in
//            its INBOX; the server's RSS growth for them; then BENCH_IMAP_IDLE_MESSAGES (1,000) messages
//            through the MX at BENCH_IMAP_RATE (200/s), spread over the mailboxes: the time from the
//            MX's 250 to the `* n EXISTS` in the mailbox's session (p50, p99; includes processing)
//   headers  UID FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE) of BENCH_IMAP_FETCH_MESSAGES (10,000)
//            messages in one folder: the first fetch (which computes and stores each structure) and
//            the next (read from the stored structures)
//   bodies   UID FETCH 1:* BODY.PEEK[] of 1,000 messages of 20 KB
//   search   SEARCH TEXT <word> over BENCH_IMAP_SEARCH_MESSAGES (100,000) messages, 40 different words
//            matching about 100 messages each (p50, p95)
// Set-up is in-process before the server starts: mailboxes by the mailboxes service (generated
// passwords, cheap to check), the fetch folders by the mail store's APPEND (parsed and indexed as
// IMAP APPEND does), and the search folder by one SQL statement (messages with search vectors).
import { type ChildProcess, fork } from 'node:child_process';
import path from 'node:path';
import tls from 'node:tls';
import net from 'node:net';
import { createMailroom } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { sql } from '../src/core/orm.ts';
import { DEFAULT_POLICY, generatePassword } from '../src/modules/mailboxes/service.ts';
import { zoneOf } from '../test/support/domains.ts';
import {
  ask,
  benchAccount,
  benchEngines,
  benchInstallation,
  type Engine,
  json,
  percentile,
  profiled,
  type Row,
  rssMb,
  startServer,
} from './support.ts';

const SESSIONS = Number(process.env.BENCH_IMAP_SESSIONS ?? 500);
const IDLE_MESSAGES = Number(process.env.BENCH_IMAP_IDLE_MESSAGES ?? 1_000);
const RATE = Number(process.env.BENCH_IMAP_RATE ?? 200);
const FETCH_MESSAGES = Number(process.env.BENCH_IMAP_FETCH_MESSAGES ?? 10_000);
const BODY_MESSAGES = 1_000;
const SEARCH_MESSAGES = Number(process.env.BENCH_IMAP_SEARCH_MESSAGES ?? 100_000);
const SEARCH_RUNS = 40;
const HOST = 'mx.imap.bench.example';
const DOMAIN = 'imap.bench.example';
const SMTP_CONNECTIONS = 10;
/** Messages delivered (to another mailbox) before the measured ones. */
const WARM_UP = 50;
const PROFILE_DIR = '/tmp/prof-imap';
const PHASES = new Set((process.env.BENCH_IMAP_PHASES ?? 'idle,headers,bodies,search').split(','));

/** A 20 KB text body of words. */
const BODY_20K = (() => {
  const words = ['delivery', 'invoice', 'meeting', 'report', 'quarter', 'update', 'schedule', 'team'];
  let body = '';
  for (let line = 0; body.length < 19_600; line++)
    body += `${Array.from({ length: 10 }, (_, i) => words[(line + i * 7) % words.length]).join(' ')}\r\n`;
  return body;
})();

/** A newsletter-like message: multipart/alternative, about 2 KB. */
function headerMessage(n: number): Buffer {
  return Buffer.from(
    `From: "News Desk" <news@sender.bench.example>\r\nTo: bulk@${DOMAIN}\r\nCc: team@${DOMAIN}\r\n` +
      `Subject: Weekly update ${n}\r\nMessage-ID: <w${n}@sender.bench.example>\r\n` +
      `Date: Mon, 7 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n` +
      `Content-Type: multipart/alternative; boundary="b${n}"\r\n\r\n` +
      `--b${n}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${BODY_20K.slice(0, 700)}\r\n` +
      `--b${n}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>${BODY_20K.slice(0, 700)}</p>\r\n--b${n}--\r\n`,
  );
}

const bodyMessage = (n: number) =>
  Buffer.from(
    `From: news@sender.bench.example\r\nSubject: Body ${n}\r\nMIME-Version: 1.0\r\n\r\n${BODY_20K}`,
  );

interface Seeded {
  env: Record<string, string>;
  /** Each session's mailbox address and password. */
  logins: { address: string; password: string }[];
  bulk: { address: string; password: string };
}

async function seed(
  engine: Engine,
  dns: ChildProcess,
  dnsAddress: string,
): Promise<Seeded & { cleanup(): Promise<void> }> {
  const installation = await benchInstallation(engine);
  const env: Record<string, string> = {
    ...installation.env,
    MAILROOM_SMTP_PORT: '0',
    MAILROOM_SUBMISSION_PORT: '0',
    MAILROOM_IMAP_PORT: '0',
    MAILROOM_IMAP_TLS_PORT: '0',
    MAILROOM_POP3_PORT: '0',
    MAILROOM_HOSTNAME: HOST,
    MAILROOM_DNS_SERVERS: dnsAddress,
    MAILROOM_IMAP_MAX_CONNECTIONS_PER_IP: String(SESSIONS + 100),
    MAILROOM_SMTP_MESSAGES_PER_IP_PER_MINUTE: String(IDLE_MESSAGES * 10),
    MAILROOM_SUBMISSION_AUTH_FAILURES_PER_HOUR: '100000',
  };
  const app = await createMailroom(
    loadConfig({ ...env, MAILROOM_LOG_LEVEL: 'warn', MAILROOM_HTTP_PORT: '0' }, null),
    {
      http: true,
      workers: false,
    },
  );
  try {
    const { http: port } = await app.listen();
    const { token, org } = await benchAccount(port!);
    const created = await json(
      port!,
      'POST',
      '/v1/domains',
      { name: DOMAIN, dkim: { algorithm: 'ed25519' } },
      token,
    );
    const { records } = await json(port!, 'GET', `/v1/domains/${created.id}/dns-records`, undefined, token);
    await ask(dns, { zone: [...zoneOf(records)] });
    const verified = await json(port!, 'POST', `/v1/domains/${created.id}/verify`, {}, token);
    if (verified.status !== 'verified') throw new Error(`domain not verified: ${JSON.stringify(verified)}`);
    const domain = await app.services.domains.get(org.id, created.id);
    const logins = Array.from({ length: SESSIONS + 1 }, (_, i) => ({
      address: `${i === SESSIONS ? 'bulk' : `idle${i}`}@${DOMAIN}`,
      password: generatePassword(DEFAULT_POLICY),
    }));
    for (let from = 0; from < logins.length; from += 500) {
      const results = await app.services.mailboxes.createMany(
        org.id,
        logins.slice(from, from + 500).map((l) => ({
          domain,
          localPart: l.address.split('@')[0],
          firstName: 'Bench',
          lastName: 'User',
          password: l.password,
          generatedUnder: DEFAULT_POLICY,
          exportable: false,
          quotaBytes: 10 * 1024 ** 3,
        })),
      );
      const failed = results.find((r) => !r.ok);
      if (failed && !failed.ok) throw new Error(`createMany: ${failed.error.message}`);
    }
    const bulk = logins.pop()!;
    const store = app.services.mailstore;
    const mailboxId = (await app.services.mailboxes.list(org.id, { q: 'bulk@' }, { page: 1, page_size: 1 }))
      .items[0].id;
    const folder = async (name: string) => store.createFolder(org.id, mailboxId, name);
    const headers = await folder('Headers');
    for (let from = 0; from < FETCH_MESSAGES; from += 500) {
      const batch = Array.from({ length: Math.min(500, FETCH_MESSAGES - from) }, (_, k) => ({
        content: headerMessage(from + k),
        flags: (from + k) % 3 === 0 ? ['\\Seen'] : [],
        date: null,
      }));
      await store.append(org.id, headers, batch);
    }
    const bodies = await folder('Bodies');
    for (let from = 0; from < BODY_MESSAGES; from += 250) {
      const batch = Array.from({ length: 250 }, (_, k) => ({
        content: bodyMessage(from + k),
        flags: [],
        date: null,
      }));
      await store.append(org.id, bodies, batch);
    }
    // Mail delivered through the MX has no stored structure until its first FETCH: the same here.
    await app.database.db.execute(sql`update messages m set structure = null from mailbox_messages mm
                                        where mm.message_id = m.id and mm.folder_id = ${headers.id}`);
    const search = await folder('Search');
    await seedSearch(app.database.db, org.id, mailboxId, search.id);
    return { env, logins, bulk, cleanup: installation.cleanup };
  } catch (err) {
    await installation.cleanup();
    throw err;
  } finally {
    await app.close();
  }
}

/** SEARCH_MESSAGES messages with search vectors: word wK (K < 1,000) in every thousandth. */
async function seedSearch(
  db: any,
  organizationId: string,
  mailboxId: string,
  folderId: string,
): Promise<void> {
  await db.execute(sql`
    with made as (
      insert into messages (id, organization_id, direction, status, blob_id, size, mail_from, rcpt_to, subject,
                            search, received_at, processed_at)
      select gen_random_uuid(), ${organizationId}, 'stored', 'delivered', gen_random_uuid(), 2000, '', '{}',
             'Message ' || i,
             to_tsvector('simple', 'message ' || i || ' w' || (i % 1000) || ' report quarter team update v' || (i % 37)),
             now(), now()
        from generate_series(1, ${SEARCH_MESSAGES}) i
      returning id, subject
    )
    insert into mailbox_messages (id, organization_id, mailbox_id, folder_id, message_id, uid, size, modseq)
    select gen_random_uuid(), ${organizationId}, ${mailboxId}, ${folderId}, id,
           substr(subject, 9)::bigint, 2000, 2
      from made`);
  await db.execute(
    sql`update mailbox_folders set uid_next = ${SEARCH_MESSAGES + 1}, highest_modseq = 2 where id = ${folderId}`,
  );
  await db.execute(sql`analyze messages`);
  await db.execute(sql`analyze mailbox_messages`);
}

/** A raw IMAP connection over TLS: tagged commands, untagged lines, literals skipped and counted. */
class Connection {
  readonly socket: tls.TLSSocket;
  #buffer: Buffer = Buffer.alloc(0);
  #literal = 0;
  #tag = 0;
  #waiting: { tag: string; resolve: (r: { lines: number; bytes: number }) => void } | null = null;
  #lines = 0;
  #bytes = 0;
  onLine: (line: string) => void = () => {};

  private constructor(socket: tls.TLSSocket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.#read(chunk));
    socket.on('error', () => {});
  }

  static async open(port: number): Promise<Connection> {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    const connection = new Connection(socket);
    await new Promise<void>((resolve, reject) => {
      connection.onLine = () => resolve();
      socket.once('error', reject);
    });
    return connection;
  }

  #read(chunk: Buffer): void {
    this.#bytes += chunk.length;
    this.#buffer = this.#buffer.length ? Buffer.concat([this.#buffer, chunk]) : chunk;
    for (;;) {
      if (this.#literal > 0) {
        const take = Math.min(this.#literal, this.#buffer.length);
        this.#literal -= take;
        this.#buffer = this.#buffer.subarray(take);
        if (this.#literal > 0) return;
      }
      const end = this.#buffer.indexOf('\r\n');
      if (end < 0) return;
      const line = this.#buffer.subarray(0, end).toString('latin1');
      this.#buffer = this.#buffer.subarray(end + 2);
      const literal = /\{(\d+)\}$/.exec(line);
      if (literal) this.#literal = Number(literal[1]);
      this.#lines++;
      this.onLine(line);
      const waiting = this.#waiting;
      if (waiting && line.startsWith(`${waiting.tag} `)) {
        this.#waiting = null;
        if (!line.startsWith(`${waiting.tag} OK`)) throw new Error(`IMAP: ${line}`);
        waiting.resolve({ lines: this.#lines, bytes: this.#bytes });
      }
    }
  }

  /** Sends a command; resolves at its tagged OK with the lines and bytes read since it was sent. */
  command(text: string): Promise<{ lines: number; bytes: number }> {
    const tag = `b${++this.#tag}`;
    const lines = this.#lines;
    const bytes = this.#bytes;
    return new Promise((resolve) => {
      this.#waiting = { tag, resolve: (r) => resolve({ lines: r.lines - lines, bytes: r.bytes - bytes }) };
      this.socket.write(`${tag} ${text}\r\n`);
    });
  }

  /** Starts IDLE; resolves once the server says it is idling. */
  idle(): Promise<void> {
    return new Promise((resolve) => {
      const previous = this.onLine;
      this.onLine = (line) => {
        if (line.startsWith('+')) {
          this.onLine = previous;
          resolve();
        }
      };
      this.socket.write(`i IDLE\r\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Sends `count` messages at RATE a second, message i to `recipient(i)`; `accepted(i)` at each 250. */
async function deliver(
  smtpPort: number,
  count: number,
  recipient: (i: number) => string,
  accepted: (i: number) => void,
): Promise<void> {
  const began = performance.now();
  let next = 0;
  const sender = async () => {
    const socket = net.connect(smtpPort, '127.0.0.1');
    let buffer = '';
    const waiters: ((line: string) => void)[] = [];
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      for (let at = buffer.indexOf('\r\n'); at >= 0; at = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        if (/^\d{3} /.test(line)) waiters.shift()?.(line);
      }
    });
    const reply = () => new Promise<string>((resolve) => waiters.push(resolve));
    await reply();
    socket.write('EHLO bench-client.example\r\n');
    await reply();
    for (let i = next++; i < count; i = next++) {
      const due = began + (i * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const to = recipient(i);
      const replies = Promise.all([reply(), reply(), reply()]);
      socket.write(`MAIL FROM:<news@sender.bench.example>\r\nRCPT TO:<${to}>\r\nDATA\r\n`);
      const [mail, rcpt, data] = await replies;
      if (!/^250/.test(mail) || !/^250/.test(rcpt) || !/^354/.test(data))
        throw new Error(`SMTP: ${mail} ${rcpt} ${data}`);
      const done = reply();
      socket.write(
        `From: news@sender.bench.example\r\nTo: ${to}\r\nSubject: idle ${i}\r\n\r\nhello ${i}\r\n.\r\n`,
      );
      const line = await done;
      if (!/^250/.test(line)) throw new Error(`SMTP DATA: ${line}`);
      accepted(i);
    }
    socket.end('QUIT\r\n');
  };
  await Promise.all(Array.from({ length: SMTP_CONNECTIONS }, sender));
}

const perSecond = (n: number, seconds: number, unit: string) =>
  `${Math.round(n / seconds).toLocaleString('en')} ${unit}`;

async function benchEngine(engine: Engine, dns: ChildProcess, dnsAddress: string): Promise<Row[]> {
  const seeded = await seed(engine, dns, dnsAddress);
  const server = await startServer(profiled(seeded.env, 'start', PROFILE_DIR));
  const connections: Connection[] = [];
  try {
    const tlsPort = Number(server.logged(/"tlsPort":(\d+)[^\n]*"msg":"IMAP listening"/));
    const smtpPort = Number(server.logged(/"port":(\d+)[^\n]*"msg":"MX listening"/));
    const pid = server.child.pid!;

    // ---- idle -------------------------------------------------------------------------------------
    const rows: Row[] = [];
    if (PHASES.has('idle')) {
      const rssBefore = rssMb(pid);
      const accepted: number[][] = Array.from({ length: SESSIONS }, () => []);
      const latencies: number[] = [];
      for (let from = 0; from < SESSIONS; from += 50) {
        await Promise.all(
          seeded.logins.slice(from, from + 50).map(async (login, k) => {
            const c = await Connection.open(tlsPort);
            connections.push(c);
            await c.command(`LOGIN ${login.address} "${login.password}"`);
            await c.command('SELECT INBOX');
            const index = from + k;
            // One EXISTS may announce several messages: each counts from its own 250.
            let announced = 0;
            c.onLine = (line) => {
              const exists = /^\* (\d+) EXISTS/.exec(line);
              if (!exists) return;
              const now = performance.now();
              for (; announced < Number(exists[1]); announced++) {
                const sentAt = accepted[index][announced];
                if (sentAt !== undefined) latencies.push(now - sentAt);
              }
            };
            await c.idle();
          }),
        );
      }
      // Let the sessions settle (TLS buffers, first GCs) before reading the RSS.
      await new Promise((r) => setTimeout(r, 1_000));
      const rssIdle = rssMb(pid);
      // Warm-up, not measured: the first mail starts the parsing threads and compiles the paths.
      await deliver(
        smtpPort,
        WARM_UP,
        () => `bulk@${DOMAIN}`,
        () => {},
      );
      await new Promise((r) => setTimeout(r, 2_000));
      const deliveredFrom = performance.now();
      await deliver(
        smtpPort,
        IDLE_MESSAGES,
        (i) => `idle${i % SESSIONS}@${DOMAIN}`,
        (i) => accepted[i % SESSIONS].push(performance.now()),
      );
      const deadline = performance.now() + 60_000;
      while (latencies.length < IDLE_MESSAGES && performance.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      if (latencies.length < IDLE_MESSAGES)
        throw new Error(`only ${latencies.length} of ${IDLE_MESSAGES} announced`);
      const deliverySeconds = (performance.now() - deliveredFrom) / 1000;
      latencies.sort((a, b) => a - b);
      for (const c of connections.splice(0)) c.close();
      const growth = rssIdle - rssBefore;
      const p99 = percentile(latencies, 99);
      rows.push({
        benchmark: `IMAP IDLE (${engine})`,
        workload: `${SESSIONS} TLS sessions IDLE in their INBOX; ${IDLE_MESSAGES.toLocaleString('en')} messages through the MX at ${RATE}/s after ${WARM_UP} not measured (${deliverySeconds.toFixed(1)} s); time from 250 to EXISTS`,
        throughput: perSecond(IDLE_MESSAGES, deliverySeconds, 'msg/s'),
        p50: `${percentile(latencies, 50).toFixed(0)} ms`,
        p99: `${p99.toFixed(0)} ms`,
        peakRss: `+${growth.toFixed(1)} MB for ${SESSIONS} sessions (${((growth * 1000) / SESSIONS).toFixed(0)} MB per 1,000)`,
        target: `p99 < 1 s, ${SESSIONS} sessions < 100 MB ${p99 < 1000 && growth < 100 ? '✔' : '✘'}`,
      });
    }

    // ---- headers, bodies, search --------------------------------------------------------------------
    const bulk = await Connection.open(tlsPort);
    connections.push(bulk);
    await bulk.command(`LOGIN ${seeded.bulk.address} "${seeded.bulk.password}"`);
    const timed = async (text: string) => {
      const began = performance.now();
      const result = await bulk.command(text);
      return { ...result, seconds: (performance.now() - began) / 1000 };
    };
    if (PHASES.has('headers')) await headerPhase(bulk, timed, engine, pid, rows);
    if (PHASES.has('bodies')) await bodyPhase(bulk, timed, engine, pid, rows);
    if (PHASES.has('search')) await searchPhase(bulk, timed, engine, pid, rows);
    return rows;
  } finally {
    for (const c of connections) c.close();
    await server.stop();
    await seeded.cleanup();
  }
}

type Timed = (text: string) => Promise<{ lines: number; bytes: number; seconds: number }>;

async function headerPhase(
  bulk: Connection,
  timed: Timed,
  engine: Engine,
  pid: number,
  rows: Row[],
): Promise<void> {
  await bulk.command('SELECT Headers');
  const cold = await timed('UID FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE)');
  const warm = await timed('UID FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE)');
  if (warm.lines - 1 !== FETCH_MESSAGES) throw new Error(`fetched ${warm.lines - 1} of ${FETCH_MESSAGES}`);
  rows.push({
    benchmark: `IMAP header fetch (${engine})`,
    workload: `UID FETCH 1:* (UID FLAGS ENVELOPE BODYSTRUCTURE), ${FETCH_MESSAGES.toLocaleString('en')} messages in one folder; first fetch (computes and stores the structures) ${cold.seconds.toFixed(2)} s = ${perSecond(FETCH_MESSAGES, cold.seconds, 'msg/s')}`,
    throughput: perSecond(FETCH_MESSAGES, warm.seconds, 'msg/s'),
    p50: `${(warm.seconds * 1000).toFixed(0)} ms`,
    p99: '',
    peakRss: `${rssMb(pid).toFixed(0)} MB`,
    target: `≥ 10,000 msg/s ${FETCH_MESSAGES / warm.seconds >= 10_000 ? '✔' : '✘'}`,
  });
}

async function bodyPhase(
  bulk: Connection,
  timed: Timed,
  engine: Engine,
  pid: number,
  rows: Row[],
): Promise<void> {
  await bulk.command('SELECT Bodies');
  const bodies = await timed('UID FETCH 1:* BODY.PEEK[]');
  const mb = bodies.bytes / 1_048_576;
  rows.push({
    benchmark: `IMAP body fetch (${engine})`,
    workload: `UID FETCH 1:* BODY.PEEK[], ${BODY_MESSAGES.toLocaleString('en')} messages of 20 KB (${mb.toFixed(1)} MB)`,
    throughput: `${(mb / bodies.seconds).toFixed(0)} MB/s`,
    p50: `${(bodies.seconds * 1000).toFixed(0)} ms`,
    p99: '',
    peakRss: `${rssMb(pid).toFixed(0)} MB`,
    target: `≥ 50 MB/s ${mb / bodies.seconds >= 50 ? '✔' : '✘'}`,
  });
}

async function searchPhase(
  bulk: Connection,
  timed: Timed,
  engine: Engine,
  pid: number,
  rows: Row[],
): Promise<void> {
  await bulk.command('EXAMINE Search');
  const times: number[] = [];
  for (let i = 0; i < SEARCH_RUNS; i++)
    times.push((await timed(`SEARCH TEXT w${(i * 97) % 1000}`)).seconds * 1000);
  times.sort((a, b) => a - b);
  rows.push({
    benchmark: `IMAP SEARCH TEXT (${engine})`,
    workload: `SEARCH TEXT <word> over ${SEARCH_MESSAGES.toLocaleString('en')} messages in one folder, ${SEARCH_RUNS} words of ~${Math.round(SEARCH_MESSAGES / 1000)} matches each (full-text index)`,
    throughput: `${Math.round(1000 / percentile(times, 50))} searches/s`,
    p50: `${percentile(times, 50).toFixed(1)} ms`,
    p99: `${percentile(times, 95).toFixed(1)} ms (p95)`,
    peakRss: `${rssMb(pid).toFixed(0)} MB`,
    target: 'p95 reported',
  });
}

export async function run(): Promise<Row[]> {
  const dns = fork(path.resolve('bench/dns-server.ts'), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const { address } = await new Promise<{ address: string }>((resolve) =>
      dns.once('message', resolve as never),
    );
    const rows: Row[] = [];
    for (const engine of benchEngines()) rows.push(...(await benchEngine(engine, dns, address)));
    return rows;
  } finally {
    dns.kill();
  }
}
