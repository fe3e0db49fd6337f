// The helpdesk at scale.
// - mail to tickets: customers write to a desk address through the real MX (pipelined SMTP over 32
//   connections, SPF-passing senders, each a new requester); timed from the first message until the
//   intake worker has opened a ticket for every one. Acknowledgements are off (they would be outbound
//   mail to domains that do not exist here). Measured twice: in one process (the MX, the inbound
//   worker and the intake share one thread, as `mailroom start` runs them), and on PostgreSQL as an
//   installation at scale runs it, `mailroom smtp` and one `mailroom worker` side by side.
//   BENCH_PROF=smtp,worker writes their V8 CPU profiles to /tmp/prof-helpdesk/.
// - list and search: 100,000 tickets with 500,000 comments (written with SQL: the API would measure ticket
//   creation), then GET /v1/tickets with filters, sorts, pages and full-text queries over HTTP.
import net from 'node:net';
import pg from 'pg';
import { createMailroom } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { startDnsServer, type TestDnsServer } from '../test/support/dns-server.ts';
import { zoneOf } from '../test/support/domains.ts';
import {
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
  withBenchApp,
} from './support.ts';

const MAILS = Number(process.env.BENCH_HELPDESK_MAILS ?? 2_000);
const TICKETS = Number(process.env.BENCH_HELPDESK_TICKETS ?? 100_000);
const COMMENTS_PER_TICKET = 5;
const CONNECTIONS = Number(process.env.BENCH_HELPDESK_CONNECTIONS ?? 32);
const DOMAIN = 'support.bench.example';
const SENDERS = 'customers.bench.example';

async function helpdesk(engine: Engine): Promise<Row[]> {
  const dns = await startDnsServer();
  try {
    return await withBenchApp(
      engine,
      SETTINGS(dns),
      { workers: true, smtp: true },
      async ({ app, port, token, org, smtpPort }) => {
        const desk = await setUpDesk(dns, port, token);
        const rows = [await mailToTickets(engine, app, smtpPort!)];
        if (engine === 'postgres') rows.push(await mailToTicketsAtScale(dns));
        rows.push(...(await listAndSearch(engine, app, port, token, org.id, desk.id)));
        return rows;
      },
    );
  } finally {
    await dns.close();
  }
}

const SETTINGS = (dns: TestDnsServer): Record<string, string> => ({
  MAILROOM_DNS_SERVERS: dns.address,
  MAILROOM_HOSTNAME: `mx.${DOMAIN}`,
  MAILROOM_SMTP_MAX_CONNECTIONS_PER_IP: String(CONNECTIONS * 2),
  MAILROOM_SMTP_MESSAGES_PER_IP_PER_MINUTE: String(MAILS * 10),
  MAILROOM_HELPDESK_LOOP_LIMIT: '100000',
});

/** A verified domain, the desk's mailbox and the desk (no acknowledgements), through the API. */
async function setUpDesk(dns: TestDnsServer, port: number, token: string): Promise<{ id: string }> {
  const domain = await json(
    port,
    'POST',
    '/v1/domains',
    { name: DOMAIN, dkim: { algorithm: 'ed25519' } },
    token,
  );
  const { records } = await json(port, 'GET', `/v1/domains/${domain.id}/dns-records`, undefined, token);
  for (const [name, r] of zoneOf(records)) dns.set(name, r);
  dns.set(SENDERS, { TXT: ['v=spf1 ip4:127.0.0.1 -all'] });
  const verified = await json(port, 'POST', `/v1/domains/${domain.id}/verify`, {}, token);
  if (verified.status !== 'verified') throw new Error(`domain not verified: ${JSON.stringify(verified)}`);
  await json(port, 'POST', '/v1/mailboxes', { address: `help@${DOMAIN}` }, token);
  return json(
    port,
    'POST',
    '/v1/helpdesk/desks',
    { name: 'Support', addresses: [`help@${DOMAIN}`], auto_reply: false },
    token,
  );
}

/** `mailroom smtp` and one `mailroom worker` on a fresh PostgreSQL installation, as it runs at scale. */
async function mailToTicketsAtScale(dns: TestDnsServer): Promise<Row> {
  const { env, cleanup } = await benchInstallation('postgres');
  const settings: Record<string, string> = {
    ...env,
    ...SETTINGS(dns),
    MAILROOM_HTTP_PORT: '0',
    MAILROOM_SMTP_PORT: '0',
    MAILROOM_SUBMISSION_PORT: '0',
  };
  const { start, stopAll } = serverSet('/tmp/prof-helpdesk');
  const db = new pg.Client({ connectionString: settings.DATABASE_URL });
  try {
    const setup = await createMailroom(loadConfig({ ...settings, MAILROOM_LOG_LEVEL: 'warn' }, null), {
      http: true,
      workers: false,
    });
    try {
      const { http: port } = await setup.listen();
      const { token } = await benchAccount(port!);
      await setUpDesk(dns, port!, token);
    } finally {
      await setup.close();
    }
    await logStatements(settings.DATABASE_URL);
    await db.connect();
    const smtp = await start(settings, 'smtp', 'scale');
    const worker = await start(settings, 'worker', 'scale');
    const tickets = async () =>
      (await db.query('select count(*)::int as n from helpdesk_tickets')).rows[0].n as number;
    const { seconds, accepted } = await sendAndWait(smtp.port, tickets);
    const rate = MAILS / seconds;
    const rss = [peakRssMb(smtp.child.pid!), peakRssMb(worker.child.pid!)].map(Math.round);
    return {
      benchmark: 'mail to tickets, mailroom smtp + worker (postgres)',
      workload: `${MAILS.toLocaleString('en')} customer mails through \`mailroom smtp\` over ${CONNECTIONS} connections (accepted in ${accepted.toFixed(1)} s), one \`mailroom worker\`; each a new ticket`,
      throughput: `${Math.round(rate).toLocaleString('en')} tickets/s`,
      p50: '–',
      p99: '–',
      peakRss: `${rss[0]} MB (smtp), ${rss[1]} MB (worker)`,
      target: `≥ 300/s ${rate >= 300 ? '✔' : '✘'}`,
    };
  } finally {
    await stopAll();
    await db.end().catch(() => {});
    await cleanup();
  }
}

/** Sends MAILS mails and waits until each is a ticket: the seconds in all, and until the last was accepted. */
async function sendAndWait(
  smtpPort: number,
  tickets: () => Promise<number>,
): Promise<{ seconds: number; accepted: number }> {
  let handedOut = 0;
  const next = () => (handedOut < MAILS ? handedOut++ : null);
  const began = performance.now();
  await Promise.all(Array.from({ length: CONNECTIONS }, () => sendOver(smtpPort, next)));
  const accepted = (performance.now() - began) / 1000;
  while ((await tickets()) < MAILS) await new Promise((r) => setTimeout(r, 20));
  return { seconds: (performance.now() - began) / 1000, accepted };
}

async function ticketCount(app: { database: { query: (q: string) => Promise<any> } }): Promise<number> {
  const result = await app.database.query('select count(*)::int as n from helpdesk_tickets');
  return (result.rows ?? result)[0].n;
}

async function mailToTickets(engine: Engine, app: any, smtpPort: number): Promise<Row> {
  const { seconds, accepted } = await sendAndWait(smtpPort, () => ticketCount(app));
  const rate = MAILS / seconds;
  return {
    benchmark: `mail to tickets, one process (${engine})`,
    workload: `${MAILS.toLocaleString('en')} customer mails through the MX over ${CONNECTIONS} connections (accepted in ${accepted.toFixed(1)} s), each a new ticket`,
    throughput: `${Math.round(rate).toLocaleString('en')} tickets/s`,
    p50: '–',
    p99: '–',
    peakRss: `${Math.round(peakRssMb(process.pid))} MB`,
    target: `≥ 300/s ${rate >= 300 ? '✔' : '✘'}`,
  };
}

function messageOf(n: number): string {
  return (
    `From: Customer ${n} <c${n}@${SENDERS}>\r\nTo: help@${DOMAIN}\r\nSubject: Order ${n} has not arrived\r\n` +
    `Message-ID: <hd-${n}@${SENDERS}>\r\nDate: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\n` +
    `Content-Type: text/plain; charset=utf-8\r\n\r\nHello, my order ${n} has not arrived yet. Could you look?\r\n`
  );
}

/** One SMTP connection sending its share, MAIL/RCPT/DATA pipelined. */
async function sendOver(port: number, next: () => number | null): Promise<void> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  let buffer = '';
  const waiters: ((line: string) => void)[] = [];
  socket.on('data', (chunk) => {
    buffer += chunk.toString('latin1');
    for (let at = buffer.indexOf('\r\n'); at !== -1; at = buffer.indexOf('\r\n')) {
      const line = buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
      if (/^\d{3} /.test(line)) waiters.shift()?.(line);
    }
  });
  const reply = () => new Promise<string>((resolve) => waiters.push(resolve));
  if (!/^220/.test(await reply())) throw new Error('no greeting');
  socket.write('EHLO bench-client.example\r\n');
  await reply();
  for (let n = next(); n !== null; n = next()) {
    const replies = Promise.all([reply(), reply(), reply()]);
    socket.write(`MAIL FROM:<c${n}@${SENDERS}>\r\nRCPT TO:<help@${DOMAIN}>\r\nDATA\r\n`);
    const answers = await replies;
    if (!/^250/.test(answers[0]!) || !/^250/.test(answers[1]!) || !/^354/.test(answers[2]!))
      throw new Error(`refused: ${answers.join(' / ')}`);
    socket.write(`${messageOf(n)}.\r\n`);
    const done = await reply();
    if (!/^250/.test(done)) throw new Error(`refused: ${done}`);
  }
  socket.write('QUIT\r\n');
  socket.end();
}

const WORDS =
  'invoice refund delivery password login printer laptop screen battery shipping order account billing upgrade ' +
  'license renewal contract warranty keyboard mouse network vpn email calendar meeting report export import ' +
  'database backup restore server outage latency timeout error crash update install permission access ' +
  'token certificate domain dns mailbox quota storage upload download sync mobile tablet desktop browser';

/** Tickets, requesters and comments with SQL, the search vectors as the service writes them. */
async function seed(app: any, orgId: string, deskId: string): Promise<void> {
  const q = (text: string, params: unknown[] = []) => app.database.query(text, params);
  await q(
    `insert into helpdesk_contacts (id, organization_id, email, name)
     select gen_random_uuid(), $1::uuid, 'person' || n || '@customers.bench.example', 'Person ' || n
       from generate_series(1, 20000) n`,
    [orgId],
  );
  await q(`create table bench_words as select string_to_array($1, ' ') as w`, [WORDS]);
  await q(
    `create table bench_contacts as
     select row_number() over (order by id) as rn, id, email from helpdesk_contacts where organization_id = $1::uuid`,
    [orgId],
  );
  await q('create index on bench_contacts (rn)');
  await q(
    `insert into helpdesk_tickets (id, organization_id, number, desk_id, subject, requester_id, priority, status,
                                   tags, custom_fields, source, comments, created_at, updated_at, search)
     select gen_random_uuid(), $1::uuid, n + 1000000, $2::uuid,
            initcap(w[1 + n % array_length(w, 1)]) || ' ' || w[1 + (n * 7) % array_length(w, 1)] || ' problem ' || n,
            c.id, (array['low','normal','high','urgent'])[1 + n % 4],
            (array['open','in-progress','pending','resolved','closed','open','pending','resolved'])[1 + n % 8],
            array[w[1 + (n * 3) % array_length(w, 1)]], '{}'::jsonb, 'mail', $3::int,
            now() - make_interval(mins => n), now() - make_interval(mins => n / 2),
            to_tsvector('simple', w[1 + n % array_length(w, 1)] || ' ' || w[1 + (n * 7) % array_length(w, 1)] || ' problem ' || n || ' ' || c.email)
       from generate_series(1, $4::int) n cross join bench_words
       join bench_contacts c on c.rn = 1 + n % 20000`,
    [orgId, deskId, COMMENTS_PER_TICKET, TICKETS],
  );
  await q(
    `insert into helpdesk_comments (id, organization_id, ticket_id, visibility, author_type, body, attachments, created_at)
     select gen_random_uuid(), t.organization_id, t.id, case when k % 2 = 0 then 'public' else 'internal' end,
            case when k % 2 = 0 then 'customer' else 'agent' end,
            'About the ' || w[1 + (t.number * k) % array_length(w, 1)] || ' and the ' || w[1 + (t.number + k * 13) % array_length(w, 1)] ||
            ': it still shows ' || w[1 + (t.number * 11 + k) % array_length(w, 1)] || ' after the ' || w[1 + (k * 17) % array_length(w, 1)],
            '[]'::jsonb, t.created_at + make_interval(mins => k)
       from helpdesk_tickets t, generate_series(1, $2::int) k, bench_words
      where t.organization_id = $1::uuid`,
    [orgId, COMMENTS_PER_TICKET],
  );
  await q(
    `update helpdesk_tickets t set search = t.search || to_tsvector('simple', c.body)
       from (select ticket_id, string_agg(body, ' ') as body from helpdesk_comments group by ticket_id) c
      where c.ticket_id = t.id`,
  );
  await q('drop table bench_words, bench_contacts');
  // What autovacuum does to a table this size after a bulk load (the visibility map lets counts skip the heap).
  await q('vacuum analyze helpdesk_tickets');
  await q('vacuum analyze helpdesk_comments');
}

async function listAndSearch(
  engine: Engine,
  app: any,
  port: number,
  token: string,
  orgId: string,
  deskId: string,
): Promise<Row[]> {
  const seeded = performance.now();
  await seed(app, orgId, deskId);
  const seedSeconds = (performance.now() - seeded) / 1000;
  const words = WORDS.split(' ');
  if (process.env.BENCH_HELPDESK_EXPLAIN) await explain(app, orgId);
  const queries: Record<string, (i: number) => string> = {
    'list: status filter, newest first, page 1–5': (i) =>
      `status=open,in-progress&page=${1 + (i % 5)}&page_size=50`,
    'list: priority + status, sorted by priority': (i) =>
      `status=pending&priority=${['high', 'urgent'][i % 2]}&sort=priority&order=desc&page_size=50`,
    'list: tag, oldest first, deep page': (i) =>
      `tag=${words[i % words.length]}&order=asc&page=${1 + (i % 20)}&page_size=50`,
    'search: one word': (i) => `q=${words[(i * 7) % words.length]}&page_size=50`,
    'search: two words + status filter': (i) =>
      `q=${encodeURIComponent(`${words[i % words.length]} ${words[(i * 3 + 1) % words.length]}`)}&status=open&page_size=50`,
  };
  const rows: Row[] = [];
  for (const [label, query] of Object.entries(queries)) {
    for (let i = 0; i < 5; i++) await json(port, 'GET', `/v1/tickets?${query(i)}`, undefined, token);
    const latencies: number[] = [];
    let total = 0;
    for (let i = 0; i < 100; i++) {
      const began = performance.now();
      const page = await json(port, 'GET', `/v1/tickets?${query(i)}`, undefined, token);
      latencies.push(performance.now() - began);
      total += page.total;
    }
    latencies.sort((a, b) => a - b);
    const p95 = percentile(latencies, 95);
    rows.push({
      benchmark: `tickets ${label.split(':')[0]} (${engine})`,
      workload: `${label}; ${TICKETS.toLocaleString('en')} tickets, ${(TICKETS * COMMENTS_PER_TICKET).toLocaleString('en')} comments (seeded in ${seedSeconds.toFixed(0)} s); ~${Math.round(total / 100).toLocaleString('en')} matches`,
      throughput: `p95 ${p95.toFixed(1)} ms`,
      p50: `${percentile(latencies, 50).toFixed(1)} ms`,
      p99: `${percentile(latencies, 99).toFixed(1)} ms`,
      peakRss: `${Math.round(peakRssMb(process.pid))} MB`,
      target: `p95 < 50 ms ${p95 < 50 ? '✔' : '✘'}`,
    });
  }
  return rows;
}

/** BENCH_HELPDESK_EXPLAIN=1: the plans of the list's statements, as the store writes them, to stderr. */
async function explain(app: any, orgId: string): Promise<void> {
  const statements = [
    `select * from helpdesk_tickets where organization_id = $1 and status in ('open','in-progress') order by created_at desc, id desc limit 50 offset 100`,
    `select count(*) from helpdesk_tickets where organization_id = $1 and status in ('open','in-progress')`,
    `select * from helpdesk_tickets where organization_id = $1 and status = 'pending' and priority in ('high') order by array_position(array['low','normal','high','urgent']::text[], priority) desc, id desc limit 50`,
    `select * from helpdesk_tickets where organization_id = $1 and tags @> array['refund']::text[] order by created_at asc, id asc limit 50 offset 500`,
    `select * from helpdesk_tickets where organization_id = $1 and search @@ websearch_to_tsquery('simple', 'printer') order by created_at desc, id desc limit 50`,
    `select count(*) from (select 1 from helpdesk_tickets where organization_id = $1 and search @@ websearch_to_tsquery('simple', 'printer') limit 1001) s`,
  ];
  for (const text of statements) {
    const result = await app.database.query(`explain (analyze, buffers) ${text}`, [orgId]);
    process.stderr.write(
      `\n${text}\n${(result.rows ?? result).map((r: any) => r['QUERY PLAN']).join('\n')}\n`,
    );
  }
}

export async function run(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const engine of benchEngines()) rows.push(...(await helpdesk(engine)));
  return rows;
}
