// Mail chat search (issue 21): POST /v1/chat with search requests over real HTTP to `mailroom start` in its
// own process, one at a time, against the bench user's own mailbox of BENCH_CHAT_MESSAGES (100,000)
// messages spread over two years, in an organisation that holds a colleague's mailbox of 20,000 more
// (chat must not read it, and must not be slowed by it). BENCH_CHAT_REQUESTS (120) timed requests after a
// warm-up of WARMUP, in four forms: a person and a date ("what did Alice Moreau send me last month?"), a
// topic ("show emails about the contract"), a topic and a date, and a folder with unread mail.
//
// The mail is written with set-based SQL straight into the database (the server stopped, so PGlite's
// single-process data dir is free), as the pipeline stores it: messages with their search vector
// (to_tsvector('simple', subject, sender, recipients, body)), and each message's copy in a folder of the
// mailbox (mailbox_messages) with IMAP flags. 2,000 correspondents with first and last names, drawn with a
// Zipf distribution (a few write most of the mail); subjects and bodies drawn from a vocabulary of
// business words (Zipf too) with a made-up tail; one message in twelve sent by the user (in Sent), the rest
// received: 70 % in INBOX, 25 % in Archive, 5 % in Junk; recent mail more often unread, 3 % flagged.
// Indexes are dropped for the load and rebuilt after it, then VACUUM ANALYZE, as in messages-search.
import { openDatabase } from '../src/core/db.ts';
import {
  BENCH_CREDENTIALS,
  benchAccount,
  benchEngines,
  benchInstallation,
  type Engine,
  json,
  peakRssMb,
  percentile,
  prng,
  type Row,
  startServer,
} from './support.ts';

const MESSAGES = Number(process.env.BENCH_CHAT_MESSAGES ?? 100_000);
const COLLEAGUE_MESSAGES = Number(process.env.BENCH_CHAT_COLLEAGUE_MESSAGES ?? 20_000);
const REQUESTS = Number(process.env.BENCH_CHAT_REQUESTS ?? 120);
const WARMUP = 12;
const BATCH = 20_000;
const PEOPLE = 2000;
const TARGET_P95_MS = 200;
const DAY_MS = 86_400_000;
const DOMAIN = 'example.com';

const FIRST_NAMES =
  `Alice Bruno Carla Daniel Elena Felix Greta Hugo Irene Jonas Karin Lukas Maria Nils Olga Pavel
Quinn Rosa Sven Tara Umberto Vera Walter Xenia Yusuf Zoe Amira Boris Chloe Diego Emma Farid Gina Henrik Ines Jakob
Lena Marco Nora Oscar Paula Rafael Sofia Tomas Ulla Viktor Wanda Yara Anton Beatrix`
    .split(/\s+/)
    .filter(Boolean);
const LAST_NAMES = `Moreau Schmidt Rossi Novak Garcia Jensen Kowalski Dubois Silva Fischer Costa Larsen Weber
Romano Horvat Martin Berg Nielsen Keller Ferrari Bauer Lopez Meyer Conti Petrov Laine Vogel Marino Duarte Lind
Brandt Greco Wolff Santos Hansen Ricci Frank Moller Rocha Koch`
  .split(/\s+/)
  .filter(Boolean);
const DOMAINS = [
  'acme-supply.example',
  'northwind.example',
  'globex.example',
  'initech.example',
  'umbrella.example',
  'hooli.example',
  'stark.example',
  'wayne.example',
];

/** Business words first (the head of the distribution), then a made-up tail. */
const COMMON = `invoice order meeting report account update payment team project review schedule call contract
shipping delivery price quote support ticket customer service product budget plan draft final approved office
password login security alert newsletter offer discount event invitation agenda notes minutes question issue
problem solution release version server database backup error warning reminder deadline signature document
file folder receipt statement balance transfer renewal proposal forecast hiring onboarding training workshop
conference travel expenses reimbursement audit compliance legal partnership launch campaign marketing sales
pipeline roadmap milestone sprint feedback survey warehouse inventory supplier vendor logistics customs tax
payroll benefits holiday vacation offsite quarterly annual board investor funding migration outage incident`
  .split(/\s+/)
  .filter(Boolean);
const FILLER =
  `the and to of a in for is on that with you it this be are from at as your have we will not or by
our can all please if more about would get one there has was me thanks week today new time next last`
    .split(/\s+/)
    .filter(Boolean);

function vocabulary(): string[] {
  const random = prng(42);
  const syllables = [
    'ka',
    'lo',
    'mi',
    'ven',
    'dra',
    'sto',
    'pel',
    'qui',
    'ran',
    'tes',
    'bor',
    'nul',
    'fex',
    'gai',
  ];
  const words = new Set(COMMON);
  while (words.size < 3000) {
    let w = '';
    for (let i = 2 + Math.floor(random() * 3); i > 0; i--)
      w += syllables[Math.floor(random() * syllables.length)];
    words.add(w);
  }
  return [...words];
}

/** Rank k of n drawn with probability ∝ 1/k: floor((n+1)^U) for U uniform in [0, 1). */
const zipf = (n: number) => `floor(power(${n + 1}, random()))::int`;

interface Setup {
  orgId: string;
  mailboxId: string;
  folders: Record<string, string>;
  colleagueId: string;
  colleagueFolders: Record<string, string>;
}

type Query = (text: string, params?: unknown[]) => Promise<{ rows: any[] }>;

/** A mailbox's copies of `n` messages from the people, over two years up to now. */
async function seedMailbox(
  query: Query,
  orgId: string,
  mailboxId: string,
  address: string,
  folders: Record<string, string>,
  words: string[],
  n: number,
  firstUid: number,
  label: string,
) {
  const now = Date.now();
  const span = 730 * DAY_MS;
  for (let from = 1; from <= n; from += BATCH) {
    const to = Math.min(n, from + BATCH - 1);
    await query(
      `with src as (
         select g, gen_random_uuid() as id, g % 12 = 0 as sent, p.name, p.address, x.at,
           (select string_agg(($1::text[])[${zipf(words.length)}], ' ') from generate_series(1, 3 + g % 5)) as subject,
           (select string_agg(case when random() < 0.45 then ($2::text[])[1 + floor(random() * array_length($2::text[], 1))::int]
                                   else ($1::text[])[${zipf(words.length)}] end, ' ')
              from generate_series(1, 25 + floor(power(random(), 2) * 180)::int + 0 * g)) as body,
           random() as r
         from generate_series($3::int, $4::int) g
         cross join lateral (select ${zipf(PEOPLE)} + 0 * g as rank,
                                    to_timestamp(($5::bigint - ($6::bigint - g::bigint) * $7::bigint / $6::bigint
                                                  - floor(random() * 3600000)::bigint) / 1000.0) as at) x
         join chat_bench_people p on p.rank = x.rank
       ), inserted as (
         insert into messages (id, organization_id, direction, status, blob_id, size, mail_from, rcpt_to, from_address,
             from_name, to_addresses, subject, body_text, search, thread_id, message_id_header, has_attachments,
             received_at, sent_at, processed_at)
         select id, $8::uuid, case when sent then 'outbound' else 'inbound' end, 'delivered', gen_random_uuid(),
           1500 + length(body) * 2,
           case when sent then $9 else p_address end, array[case when sent then p_address else $9 end],
           case when sent then $9 else p_address end, case when sent then $10 else name end,
           array[case when sent then p_address else $9 end],
           initcap(subject), body,
           to_tsvector('simple', initcap(subject) || ' ' || case when sent then $10 || ' ' || $9 || ' ' || p_address
                                                              else name || ' ' || p_address || ' ' || $9 end || ' ' || body),
           gen_random_uuid(), $11 || g || '@bench.example', r < 0.15, at, at, at
         from (select *, address as p_address from src) s
         returning id
       )
       insert into mailbox_messages (id, organization_id, mailbox_id, folder_id, message_id, uid, flags, size, delivered, created_at)
       select gen_random_uuid(), $8::uuid, $12::uuid,
         case when sent then $13::uuid when r < 0.70 then $14::uuid when r < 0.95 then $15::uuid else $16::uuid end,
         id, $17::int + g,
         case when sent then array['\\Seen']
              when at > now() - interval '30 days' and random() < 0.4
                then case when r < 0.03 then array['\\Flagged'] else array[]::text[] end
              when random() < 0.02 then array[]::text[]
              when r < 0.03 then array['\\Seen', '\\Flagged']
              else array['\\Seen'] end,
         1500 + length(body) * 2, not sent, at
       from src`,
      [
        words,
        FILLER,
        from,
        to,
        now,
        n,
        span,
        orgId,
        address,
        address === `bench@${DOMAIN}` ? 'Bench User' : 'Colleague',
        `${label}-`,
        mailboxId,
        folders.Sent,
        folders.INBOX,
        folders.Archive,
        folders.Junk,
        firstUid,
      ],
    );
    process.stderr.write(`\rchat: ${label} ${to.toLocaleString('en')} / ${n.toLocaleString('en')}`);
  }
  process.stderr.write('\n');
}

async function seed(query: Query, setup: Setup): Promise<string[]> {
  const words = vocabulary();
  await query('create table chat_bench_people (rank int primary key, name text, address text)');
  await query(
    `insert into chat_bench_people
     select g, ($1::text[])[1 + g % 50] || ' ' || ($2::text[])[1 + (g / 50) % 40],
            lower(($1::text[])[1 + g % 50]) || '.' || lower(($2::text[])[1 + (g / 50) % 40]) || '@' || ($3::text[])[1 + g % 8]
       from generate_series(1, ${PEOPLE}) g`,
    [FIRST_NAMES, LAST_NAMES, DOMAINS],
  );
  const indexes = await query(
    `select indexname, indexdef from pg_indexes
      where tablename in ('messages', 'mailbox_messages') and indexname not in (select conname from pg_constraint)`,
  );
  for (const { indexname } of indexes.rows) await query(`drop index ${indexname}`);
  await seedMailbox(
    query,
    setup.orgId,
    setup.mailboxId,
    `bench@${DOMAIN}`,
    setup.folders,
    words,
    MESSAGES,
    0,
    'own',
  );
  await seedMailbox(
    query,
    setup.orgId,
    setup.colleagueId,
    `colleague@${DOMAIN}`,
    setup.colleagueFolders,
    words,
    COLLEAGUE_MESSAGES,
    0,
    'colleague',
  );
  await query("set maintenance_work_mem = '256MB'").catch(() => {});
  for (const { indexdef } of indexes.rows) await query(indexdef);
  await query('drop table chat_bench_people');
  await query('vacuum analyze messages');
  await query('vacuum analyze mailbox_messages');
  return words;
}

interface Request {
  text: string;
  form: 'person + date' | 'topic' | 'topic + date' | 'folder + unread';
}

function requests(words: string[], n: number): Request[] {
  const random = prng(7);
  const pick = <T>(list: T[]) => list[Math.floor(random() * list.length)]!;
  // Names of frequent and of occasional correspondents, as the seed made them.
  const person = () => {
    const rank = random() < 0.6 ? 1 + Math.floor(random() * 40) : 40 + Math.floor(random() * 600);
    return `${FIRST_NAMES[rank % 50]} ${LAST_NAMES[Math.floor(rank / 50) % 40]}`;
  };
  const month = () =>
    pick([
      'January',
      'February',
      'March',
      'April',
      'May',
      'June',
      'July',
      'September',
      'October',
      'November',
    ]);
  const topic = () => (random() < 0.6 ? pick(COMMON.slice(0, 60)) : pick(COMMON.slice(60)));
  const forms: [Request['form'], () => string][] = [
    [
      'person + date',
      () =>
        pick([
          () => `what did ${person()} send me last month?`,
          () => `emails from ${person()} last week`,
          () => `show me mail from ${person()} in ${month()}`,
          () => `what did ${person()} send me this year?`,
          () => `messages from ${person()} since ${month()}`,
        ])(),
    ],
    [
      'topic',
      () =>
        pick([
          () => `show emails about the ${topic()}`,
          () => `find messages about ${topic()}`,
          () => `emails about ${topic()} and ${topic()}`,
          () => `anything about ${pick(words.slice(200, 2000))}?`,
        ])(),
    ],
    [
      'topic + date',
      () =>
        pick([
          () => `emails about the ${topic()} from last month`,
          () => `show messages about ${topic()} in ${month()}`,
          () => `${topic()} emails from last week`,
          () => `find mail about ${topic()} since ${month()}`,
        ])(),
    ],
    [
      'folder + unread',
      () =>
        pick([
          () => 'show unread emails in my inbox',
          () => 'unread mail in Archive',
          () => `unread messages in my inbox from ${person()}`,
          () => 'unread emails in the inbox from last week',
          () => `unread mail in Archive about ${topic()}`,
        ])(),
    ],
  ];
  return Array.from({ length: n }, (_, i) => {
    const [form, make] = forms[i % forms.length]!;
    return { text: make(), form };
  });
}

async function chatBench(engine: Engine): Promise<Row> {
  const installation = await benchInstallation(engine);
  const env: Record<string, string> = {
    ...installation.env,
    MAILROOM_SMTP_PORT: '0',
    MAILROOM_SUBMISSION_PORT: '0',
    MAILROOM_IMAP_PORT: '0',
    MAILROOM_CHAT_PER_MINUTE: '100000',
  };
  try {
    const first = await startServer(env);
    let setup: Setup;
    try {
      const { token, org } = await benchAccount(first.port);
      await json(first.port, 'POST', '/v1/domains', { name: DOMAIN, dkim: { algorithm: 'ed25519' } }, token);
      const mailbox = async (address: string) => {
        const created = await json(first.port, 'POST', '/v1/mailboxes', { address }, token);
        const { items } = await json(
          first.port,
          'GET',
          `/v1/mailboxes/${created.id}/folders`,
          undefined,
          token,
        );
        return {
          id: created.id as string,
          folders: Object.fromEntries(items.map((f: any) => [f.name, f.id])),
        };
      };
      const own = await mailbox(BENCH_CREDENTIALS.email);
      const colleague = await mailbox(`colleague@${DOMAIN}`);
      setup = {
        orgId: org.id,
        mailboxId: own.id,
        folders: own.folders,
        colleagueId: colleague.id,
        colleagueFolders: colleague.folders,
      };
    } finally {
      await first.stop();
    }

    const database = await openDatabase({
      url: env.DATABASE_URL || undefined,
      dataDir: env.MAILROOM_DATA_DIR,
    });
    const loadStarted = performance.now();
    let words: string[];
    try {
      words = await seed((text, params) => database.query(text, params), setup);
    } finally {
      await database.close();
    }
    const loadSeconds = (performance.now() - loadStarted) / 1000;

    const server = await startServer(env);
    try {
      const login = await json(server.port, 'POST', '/v1/auth/login', BENCH_CREDENTIALS);
      const headers = {
        authorization: `Bearer ${login.access_token}`,
        'x-organization-id': setup.orgId,
        'content-type': 'application/json',
      };
      const ask = async (text: string) => {
        const began = performance.now();
        const res = await fetch(`http://127.0.0.1:${server.port}/v1/chat`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ text }),
        });
        const body = (await res.json()) as { intent: string; total: number | null; citations: unknown[] };
        const ms = performance.now() - began;
        if (res.status !== 200) throw new Error(`chat "${text}": ${res.status} ${JSON.stringify(body)}`);
        if (body.intent !== 'search') throw new Error(`chat "${text}" was read as ${body.intent}`);
        return { ms, hits: body.total ?? 0 };
      };
      const mix = requests(words, WARMUP + REQUESTS);
      // The first request of a scope loads the people it corresponds with (kept for five minutes).
      const cold = (await ask(mix[0]!.text)).ms;
      for (const { text } of mix.slice(1, WARMUP)) await ask(text);
      const latencies: number[] = [];
      const byForm = new Map<string, number[]>();
      let empty = 0;
      const began = performance.now();
      for (const { text, form } of mix.slice(WARMUP)) {
        const { ms, hits } = await ask(text);
        latencies.push(ms);
        byForm.set(form, [...(byForm.get(form) ?? []), ms]);
        if (hits === 0) empty++;
      }
      const seconds = (performance.now() - began) / 1000;
      latencies.sort((a, b) => a - b);
      for (const [form, values] of byForm) {
        values.sort((a, b) => a - b);
        const at = (p: number) => percentile(values, p).toFixed(1);
        process.stderr.write(
          `  ${engine} ${form.padEnd(16)} ${String(values.length).padStart(3)} requests: p50 ${at(50)} ms, p95 ${at(95)} ms, max ${at(100)} ms\n`,
        );
      }
      const p95 = percentile(latencies, 95);
      const ms = (v: number) => `${v.toFixed(1)} ms`;
      return {
        benchmark: `chat search (${engine})`,
        workload:
          `${REQUESTS} POST /v1/chat search requests (person + date, topic, topic + date, folder + unread), 1 at a time, ` +
          `${empty} without hits, over a ${MESSAGES.toLocaleString('en')}-message mailbox (+${COLLEAGUE_MESSAGES.toLocaleString('en')} ` +
          `in a colleague's; loaded in ${loadSeconds.toFixed(0)} s); first request ${ms(cold)}`,
        throughput: `${Math.round(latencies.length / seconds)} requests/s`,
        p50: ms(percentile(latencies, 50)),
        p99: `${ms(percentile(latencies, 99))} (p95 ${ms(p95)}, max ${ms(latencies.at(-1)!)})`,
        peakRss: `${Math.round(peakRssMb(server.child.pid!))} MB (server)`,
        target: `p95 < ${TARGET_P95_MS} ms ${p95 < TARGET_P95_MS ? '✔' : '✘'}`,
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
  for (const engine of benchEngines()) {
    const row = await chatBench(engine);
    process.stderr.write(`${row.benchmark}: ${row.throughput}, p50 ${row.p50}, p99 ${row.p99}\n`);
    rows.push(row);
  }
  return rows;
}
