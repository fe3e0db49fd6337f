// Message search (issue: messages read API): BENCH_MESSAGES (1,000,000) messages of one organisation
// on PostgreSQL (BENCH_PGLITE_MESSAGES, 50,000, on PGlite), then `GET /v1/messages/search?q=` over
// real HTTP to `mailroom start` in its own process, one request at a time, with a mix of
// BENCH_SEARCHES (600) queries: common words, mid-frequency words, rare words, sender addresses,
// two-word queries, unique order numbers and words that match nothing.
//
// The messages are written with set-based SQL straight into the database (the server stopped, so
// PGlite's single-process data dir is free): subjects and bodies drawn from a vocabulary of 4,000
// words with a Zipf distribution (word k drawn with probability ∝ 1/k, so the top words are in most
// messages and the tail in a few thousand), bodies of 20 to 320 words (120 on average, most short),
// 20,000 senders (also Zipf), 500 recipients, and a unique order number per message. The `search`
// column is computed as the inbound pipeline does: to_tsvector('simple', subject, from, to, body).
// Indexes are dropped for the load and rebuilt after it (the bulk-load recipe), then VACUUM ANALYZE,
// as autovacuum would do on a live table.
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

const COUNTS: Record<Engine, number> = {
  postgres: Number(process.env.BENCH_MESSAGES ?? 1_000_000),
  pglite: Number(process.env.BENCH_PGLITE_MESSAGES ?? 50_000),
};
const SEARCHES = Number(process.env.BENCH_SEARCHES ?? 600);
const WARMUP = 60;
const BATCH = 50_000;
const VOCABULARY = 4000;
const SENDERS = 20_000;
const TARGET_P95_MS = 50;

const COMMON = `the and to of a in for is on that with you it this be are from at as your have we will
not or by our can an all please if more about invoice order meeting report account update payment
team project today new time would get one there has was me thank thanks week review schedule call
attached contract shipping delivery price quote support ticket request customer service product
monday tuesday wednesday thursday friday next last client budget plan draft final approved office
password login security alert newsletter offer sale discount free subscribe unsubscribe event
invitation agenda notes minutes follow question answer issue problem solution release version
server database backup error warning notice reminder deadline signature document file folder
link share access confirm confirmation receipt statement balance transfer bank card renewal`
  .split(/\s+/)
  .filter(Boolean);

/** COMMON first (the head of the distribution), then made-up words to VOCABULARY. */
function vocabulary(): string[] {
  const random = prng(42);
  const onsets = ['b', 'c', 'd', 'f', 'g', 'h', 'j', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'w', 'z'];
  const onsets2 = ['br', 'ch', 'cl', 'dr', 'fl', 'gr', 'kr', 'pl', 'pr', 'sh', 'st', 'th', 'tr'];
  const vowels = ['a', 'e', 'i', 'o', 'u', 'ai', 'ea', 'io', 'ou'];
  const codas = ['', '', '', 'n', 'r', 's', 'l', 'm', 'x', 'nd', 'st'];
  const pick = (list: string[]) => list[Math.floor(random() * list.length)];
  const words = new Set(COMMON);
  while (words.size < VOCABULARY) {
    const syllables = 2 + Math.floor(random() * 3);
    let w = '';
    for (let i = 0; i < syllables; i++) w += (random() < 0.2 ? pick(onsets2) : pick(onsets)) + pick(vowels);
    words.add(w + pick(codas));
  }
  return [...words];
}

/** Word k of n drawn with probability ∝ 1/k: floor((n+1)^U) for U uniform in [0, 1). */
const zipf = (n: number) => `floor(power(${n + 1}, random()))::int`;

async function seed(query: (text: string, params?: unknown[]) => Promise<unknown>, orgId: string, n: number) {
  const words = vocabulary();
  const indexes = (await query(
    "select indexname, indexdef from pg_indexes where tablename = 'messages' and indexname <> 'messages_pkey'",
  )) as { rows: { indexname: string; indexdef: string }[] };
  for (const { indexname } of indexes.rows) await query(`drop index ${indexname}`);
  const statuses = `(array['delivered','delivered','delivered','delivered','delivered','delivered','delivered','delivered','failed','rejected','quarantined','bounced'])`;
  const start = Date.now() - n * 30_000;
  for (let from = 1; from <= n; from += BATCH) {
    const to = Math.min(n, from + BATCH - 1);
    await query(
      `insert into messages (id, organization_id, direction, status, blob_id, size, mail_from, rcpt_to,
         from_address, from_name, to_addresses, subject, body_text, search, thread_id, message_id_header,
         has_attachments, received_at, processed_at)
       select gen_random_uuid(), $1, case when g % 5 = 0 then 'outbound' else 'inbound' end,
         ${statuses}[1 + g % 12], gen_random_uuid(), 1200 + length(body) * 2, sender, array[rcpt],
         sender, initcap(split_part(sender, '@', 1)), array[rcpt], subject, body,
         to_tsvector('simple', subject || ' ' || sender || ' ' || rcpt || ' ' || body),
         gen_random_uuid(), '<' || g || '@bench.example>', g % 7 = 0,
         to_timestamp(($4::bigint + g::bigint * 30000) / 1000.0), to_timestamp(($4::bigint + g::bigint * 30000) / 1000.0)
       from (
         select g,
           (select string_agg(($2::text[])[${zipf(words.length)}], ' ')
              from generate_series(1, 3 + g % 6)) as subject,
           (select string_agg(($2::text[])[${zipf(words.length)}], ' ')
              from generate_series(1, 20 + floor(power(random(), 2) * 300)::int + 0 * g))
             || ' order ' || (1000000 + g) as body,
           'user' || s || '@' || (array['gmail.example','corp.example','mail.example','shop.example'])[1 + s % 4]
             as sender,
           'r' || (g % 500) || '@acme.example' as rcpt
         from generate_series($3::int, $5::int) g,
           lateral (select ${zipf(SENDERS)} + 0 * g as s) x
       ) m`,
      [orgId, words, from, start, to],
    );
    process.stderr.write(
      `\rmessages-search: inserted ${to.toLocaleString('en')} / ${n.toLocaleString('en')}`,
    );
  }
  process.stderr.write('\n');
  await query("set maintenance_work_mem = '256MB'").catch(() => {});
  for (const { indexdef } of indexes.rows) await query(indexdef);
  await query('vacuum analyze messages');
  return words;
}

interface Query {
  q: string;
  kind: string;
}

function queries(words: string[], n: number): Query[] {
  const random = prng(7);
  const between = (lo: number, hi: number) => words[lo + Math.floor(random() * (hi - lo))];
  const sender = () => {
    const s = Math.floor((SENDERS + 1) ** random());
    return `user${s}@${['gmail.example', 'corp.example', 'mail.example', 'shop.example'][s % 4]}`;
  };
  const kinds: [number, string, () => string][] = [
    [0.25, 'common word', () => between(0, 100)], // in 10–99 % of messages
    [0.15, 'mid word', () => between(100, 1500)], // 0.9–10 %
    [0.25, 'rare word', () => between(1500, words.length)], // 0.35–0.9 %
    [0.1, 'sender', sender],
    [0.15, 'two words', () => `${between(0, words.length)} ${between(0, 1500)}`],
    [0.05, 'order number', () => String(1000000 + 1 + Math.floor(random() * COUNTS.pglite))], // one message
    [0.05, 'no match', () => `zzq${Math.floor(random() * 1e6)}`],
  ];
  const out: Query[] = [];
  for (let i = 0; i < n; i++) {
    let r = random();
    let kind = kinds[0];
    for (const k of kinds) {
      kind = k;
      r -= k[0];
      if (r < 0) break;
    }
    out.push({ q: kind[2](), kind: kind[1] });
  }
  return out;
}

async function searchBench(engine: Engine): Promise<Row> {
  const count = COUNTS[engine];
  const installation = await benchInstallation(engine);
  const { cleanup } = installation;
  // Free ports for the mail listeners too: other processes on this machine may hold the defaults.
  const env: Record<string, string> = {
    ...installation.env,
    MAILROOM_SMTP_PORT: '0',
    MAILROOM_SUBMISSION_PORT: '0',
    MAILROOM_IMAP_PORT: '0',
  };
  try {
    const first = await startServer(env);
    const { org } = await benchAccount(first.port);
    await first.stop();

    const database = await openDatabase({
      url: env.DATABASE_URL || undefined,
      dataDir: env.MAILROOM_DATA_DIR,
    });
    const loadStarted = performance.now();
    let words: string[];
    try {
      words = await seed((text, params) => database.query(text, params), org.id, count);
    } finally {
      await database.close();
    }
    const loadSeconds = (performance.now() - loadStarted) / 1000;

    const server = await startServer(env);
    try {
      const login = await json(server.port, 'POST', '/v1/auth/login', BENCH_CREDENTIALS);
      const headers = { authorization: `Bearer ${login.access_token}`, 'x-organization-id': org.id };
      const search = async (q: string) => {
        const began = performance.now();
        const res = await fetch(
          `http://127.0.0.1:${server.port}/v1/messages/search?q=${encodeURIComponent(q)}&page_size=50`,
          { headers },
        );
        const body = (await res.json()) as { items: unknown[]; total: number };
        if (res.status !== 200) throw new Error(`search ${q}: ${res.status} ${JSON.stringify(body)}`);
        return { ms: performance.now() - began, hits: body.total };
      };
      const mix = queries(words, WARMUP + SEARCHES);
      for (const { q } of mix.slice(0, WARMUP)) await search(q);
      const latencies: number[] = [];
      const byKind = new Map<string, number[]>();
      let empty = 0;
      const began = performance.now();
      for (const { q, kind } of mix.slice(WARMUP)) {
        const { ms, hits } = await search(q);
        latencies.push(ms);
        byKind.set(kind, [...(byKind.get(kind) ?? []), ms]);
        if (hits === 0) empty++;
      }
      const seconds = (performance.now() - began) / 1000;
      latencies.sort((a, b) => a - b);
      for (const [kind, values] of byKind) {
        values.sort((a, b) => a - b);
        const at = (p: number) => percentile(values, p).toFixed(1);
        process.stderr.write(
          `  ${engine} ${kind.padEnd(12)} ${String(values.length).padStart(3)} queries: p50 ${at(50)} ms, p95 ${at(95)} ms, max ${at(100)} ms\n`,
        );
      }
      const p95 = percentile(latencies, 95);
      const ms = (v: number) => `${v.toFixed(1)} ms`;
      return {
        benchmark: `message search (${engine})`,
        workload: `${count.toLocaleString('en')} messages (loaded in ${loadSeconds.toFixed(0)} s); ${SEARCHES} queries, 1 at a time, ${empty} without hits`,
        throughput: `${Math.round(latencies.length / seconds)} queries/s`,
        p50: ms(percentile(latencies, 50)),
        p99: `${ms(percentile(latencies, 99))} (p95 ${ms(p95)}, max ${ms(latencies.at(-1)!)})`,
        peakRss: `${Math.round(peakRssMb(server.child.pid!))} MB (server)`,
        target: `p95 < ${TARGET_P95_MS} ms ${p95 < TARGET_P95_MS ? '✔' : '✘'}`,
      };
    } finally {
      await server.stop();
    }
  } finally {
    await cleanup();
  }
}

export async function run(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const engine of benchEngines()) {
    const row = await searchBench(engine);
    process.stderr.write(`${row.benchmark}: ${row.throughput}, p50 ${row.p50}, p99 ${row.p99}\n`);
    rows.push(row);
  }
  return rows;
}
