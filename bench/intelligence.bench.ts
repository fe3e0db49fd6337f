// Mail intelligence's analysis (issue 21): BENCH_INTELLIGENCE_MESSAGES (10,000) messages filed in one
// mailbox's INBOX of one organisation, analysed by one analysis worker (`services.analysisWorker`) in
// this process, built-in engines only (no rspamd, no ClamAV). Target: ≥ 500 messages/s on 2 cores.
//
// The messages are the held-out fifth of the SpamAssassin public corpus (corpus-split.ts: mail the
// shipped spam model never saw; about a third spam, with HTML, attachments and many charsets), cycled to
// the count: each carries the trace headers our MX adds (Authentication-Results and Received, a queue id
// of its own), and every copy after the first a Message-ID of its own. Line endings are CRLF, as SMTP
// delivers them. They are stored as the mail store's APPEND stores mail (blob, message parsed on the
// parsing threads, mailbox copy in INBOX, in batches of 500), then made `inbound` with an envelope, as
// the MX's mail is. Nothing queues them meanwhile (APPEND does not; the app runs no workers); then the
// queue rows are written in one statement, as the filing hook writes them (act: true), the tables are
// analysed (as autovacuum would after a bulk load), and `drain()` is timed from its call until it
// returns with the queue empty. The worker acts as it would in production: spam is moved to Junk.
//
// Reported: messages/s, the p50 and p99 of a batch (MAILROOM_INTELLIGENCE_BATCH, 200: from one batch's
// read of its messages to the next's), the peak RSS during the drain (the high-water mark is reset just
// before it; PGlite's database and the analysis threads live in this process too), and the CPU of each
// thread kind and of PostgreSQL's backends. BENCH_INTELLIGENCE_PROFILE=1 adds a V8 CPU profile of the
// worker's own thread (sampling, 1 ms), each sample put in the step of the innermost frame that names one;
// it slows the drain by a quarter, so its run's throughput is not the one to report. BENCH_PROF=intelligence
// also writes it to /tmp/prof-intelligence/<engine>.cpuprofile. The analysis threads' own profiles come
// from NODE_OPTIONS=--cpu-prof (one file per thread).
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Session } from 'node:inspector/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Mailroom } from '../src/app.ts';
import { DatabaseBlobStore } from '../src/core/blobs.ts';
import { newId } from '../src/core/ids.ts';
import { fileInMailboxes } from '../src/modules/inbound/store.ts';
import { loadSpamAssassinCorpus, splitCorpus } from '../src/modules/intelligence/spam/corpus-split.ts';
import {
  benchEngines,
  type Engine,
  json,
  peakRssMb,
  percentile,
  prng,
  type Row,
  rssMb,
  withBenchApp,
} from './support.ts';
import { describeUsage, watchUsage } from './usage.ts';

const MESSAGES = Number(process.env.BENCH_INTELLIGENCE_MESSAGES ?? 10_000);
const PROFILE = process.env.BENCH_INTELLIGENCE_PROFILE === '1';
const SAVE_PROFILE = (process.env.BENCH_PROF ?? '').split(',').includes('intelligence');
const PROFILE_DIR = '/tmp/prof-intelligence';
const TARGET = 500;
/** The Node flags of `npm start` (as bench/support.ts starts servers). */
const START_FLAGS = (JSON.parse(readFileSync('package.json', 'utf8')).scripts.start as string)
  .split(/\s+/)
  .filter((a) => a.startsWith('--'));
const DOMAIN = 'intelligence.bench.example';
const MAILBOX = `inbox@${DOMAIN}`;
const SEED_BATCH = 500;

/** The raw messages: the held-out corpus cycled to `n`, as our MX would have stored them. */
async function corpusMessages(n: number): Promise<{ raw: Buffer[]; distinct: number }> {
  const { heldOut } = splitCorpus(await loadSpamAssassinCorpus());
  // Shuffled (the same way every run): the corpus is grouped, ham before spam; an inbox is mixed.
  const random = prng(21);
  for (let i = heldOut.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [heldOut[i], heldOut[j]] = [heldOut[j]!, heldOut[i]!];
  }
  const date = new Date().toUTCString().replace('GMT', '+0000');
  const raw = Array.from({ length: n }, (_, i) => {
    const copy = Math.floor(i / heldOut.length);
    let text = heldOut[i % heldOut.length]!.text.replace(/\r?\n/g, '\r\n');
    if (copy > 0) {
      const headerEnd = text.indexOf('\r\n\r\n');
      const header = headerEnd < 0 ? text : text.slice(0, headerEnd);
      const rest = headerEnd < 0 ? '' : text.slice(headerEnd);
      const id = `<copy${copy}.${i}@senders.bench.example>`;
      text = /^message-id:/im.test(header)
        ? header.replace(/^message-id:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*/im, `Message-ID: ${id}`) + rest
        : `Message-ID: ${id}\r\n${text}`;
    }
    const from = /^from:[^\r\n]*?([\w.+-]+@[\w.-]+)/im.exec(text)?.[1]?.toLowerCase() ?? 'unknown@invalid';
    const queueId = `bench${i.toString(36)}`;
    const trace =
      `Authentication-Results: mx.${DOMAIN}; spf=none smtp.mailfrom=${from}; dkim=none; dmarc=none header.from=${from.split('@')[1]}\r\n` +
      `Received: from relay.senders.bench.example ([192.0.2.${1 + (i % 250)}])\r\n\tby mx.${DOMAIN} (Mailroom) with ESMTPS id ${queueId}\r\n\tfor <${MAILBOX}>;\r\n\t${date}\r\n`;
    return Buffer.from(trace + text, 'latin1');
  });
  return { raw, distinct: heldOut.length };
}

async function seed(app: Mailroom, orgId: string, mailboxId: string, raw: Buffer[]): Promise<void> {
  const { inbound } = app.services;
  const blobs = new DatabaseBlobStore(app.database.db);
  for (let from = 0; from < raw.length; from += SEED_BATCH) {
    const batch = raw.slice(from, from + SEED_BATCH).map((content) => ({
      id: newId(),
      blobId: newId(),
      content,
    }));
    const prepared = await Promise.all(batch.map((m) => inbound.prepareStored(m.content)));
    await app.database.db.transaction(async (tx) => {
      await blobs.put(
        tx,
        batch.map((m) => ({ organizationId: orgId, id: m.blobId, data: m.content })),
      );
      await inbound.insertStored(
        tx,
        batch.map((m, i) => ({
          id: m.id,
          organizationId: orgId,
          blobId: m.blobId,
          size: m.content.length,
          receivedAt: new Date(),
          prepared: prepared[i]!,
        })),
      );
      await fileInMailboxes(
        tx,
        batch.map((m) => ({
          id: newId(),
          organizationId: orgId,
          mailboxId,
          folder: 'INBOX',
          messageId: m.id,
          size: m.content.length,
        })),
      );
    });
    process.stderr.write(`\rintelligence: filed ${Math.min(raw.length, from + SEED_BATCH)} / ${raw.length}`);
  }
  process.stderr.write('\n');
  // What the MX's processing records besides: mail from outside, with its envelope.
  await app.database.query(
    `update messages set direction = 'inbound', mail_from = coalesce(from_address, ''), rcpt_to = array[$2],
            remote_ip = '192.0.2.1', helo = 'relay.senders.bench.example', tls = true,
            domain_id = (select id from domains where organization_id = $1 and name = $3)
      where organization_id = $1`,
    [orgId, MAILBOX, DOMAIN],
  );
}

interface Profile {
  nodes: { id: number; callFrame: { functionName: string; url: string }; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}

const PARSE_LIBRARIES =
  /\/node_modules\/(mailparser|libmime|libqp|libbase64|iconv-lite|encoding-japanese|html-to-text|@selderee|selderee|parseley|leac|peberminta|linkify-it|@zone-eu|mailsplit)\//;

/** The step a frame names, or null (then its caller decides). */
function stepOf(functionName: string, url: string): string | null {
  if (functionName === '(garbage collector)') return 'garbage collection';
  if (functionName === '(idle)') return 'idle (awaiting the database, I/O)';
  if (functionName === '(program)') return 'V8/native, unattributed';
  if (url.includes('/src/modules/intelligence/input.ts') || PARSE_LIBRARIES.test(url)) return 'parse';
  if (url.includes('/src/modules/intelligence/spam/')) return 'spam';
  if (url.includes('/src/modules/intelligence/threats/')) return 'threats';
  if (url.includes('/src/modules/intelligence/understanding/')) return 'understanding';
  if (url.startsWith('wasm://') || url.includes('/node_modules/@electric-sql/'))
    return 'database: PGlite engine';
  if (/\/node_modules\/(drizzle-orm|pg|pg-protocol|pg-types|pg-pool|postgres-[a-z]+|pgpass)\//.test(url))
    return 'database: client (ORM, driver)';
  if (url.includes('/src/modules/imap/')) return 'junk filing (mail store)';
  if (url.includes('/src/modules/events/')) return 'record: events';
  if (/\/src\/modules\/(messages|intelligence)\/|\/src\/core\//.test(url))
    return 'worker, analyzer, store glue';
  return null;
}

/** Milliseconds per step (by the innermost frame naming one) and per file (self time). */
function summarise(profile: Profile): {
  steps: Map<string, number>;
  files: Map<string, number>;
  total: number;
} {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stepCache = new Map<number, string>();
  const stepOfNode = (id: number): string => {
    const cached = stepCache.get(id);
    if (cached) return cached;
    const node = byId.get(id)!;
    const own = stepOf(node.callFrame.functionName, node.callFrame.url);
    const up = parent.get(id);
    const step = own ?? (up === undefined ? 'other' : stepOfNode(up));
    stepCache.set(id, step);
    return step;
  };
  const steps = new Map<string, number>();
  const files = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    total += ms;
    const step = stepOfNode(id);
    steps.set(step, (steps.get(step) ?? 0) + ms);
    const { url, functionName } = byId.get(id)!.callFrame;
    const file = url
      ? url.replace(/^file:\/\/.*?\/(node_modules|src)\//, '$1/').replace(/^wasm:\/\/.*/, 'wasm (PGlite)')
      : functionName;
    files.set(file, (files.get(file) ?? 0) + ms);
  });
  return { steps, files, total };
}

const share = (ms: number, total: number) => `${((100 * ms) / total).toFixed(0)}%`;

async function analyse(engine: Engine): Promise<Row> {
  const raw = readMessages(process.env.BENCH_INTELLIGENCE_FILE!);
  const distinct = Number(process.env.BENCH_INTELLIGENCE_DISTINCT);
  const bytes = raw.reduce((sum, r) => sum + r.length, 0);
  return withBenchApp(engine, {}, {}, async ({ app, port, token, org }) => {
    const domain = await json(
      port,
      'POST',
      '/v1/domains',
      { name: DOMAIN, dkim: { algorithm: 'ed25519' } },
      token,
    );
    const mailbox = await json(
      port,
      'POST',
      '/v1/mailboxes',
      { address: MAILBOX, quota_bytes: 20 * 1024 ** 3 },
      token,
    );
    if (!domain.id || !mailbox.id) throw new Error(`seed: ${JSON.stringify({ domain, mailbox })}`);
    const seeded = performance.now();
    await seed(app, org.id, mailbox.id, raw);
    raw.length = 0;
    const seedSeconds = (performance.now() - seeded) / 1000;
    const q = async (text: string, params: unknown[] = []) => (await app.database.query(text, params)).rows;
    const [{ n: waiting }] = await q('select count(*)::int as n from intelligence_queue');
    if (waiting !== 0) throw new Error(`the queue should be empty before the bench; ${waiting} queued`);
    // As the filing hook queues mail from outside (act: true), the whole load in one statement.
    await q(
      `insert into intelligence_queue (message_id, organization_id, act)
       select id, organization_id, true from messages where organization_id = $1 and direction = 'inbound'`,
      [org.id],
    );
    for (const table of ['messages', 'mailbox_messages', 'intelligence_queue', 'blobs'])
      await q(`analyze ${table}`);

    // One batch: from the worker reading its messages to the next batch's read (or the drain's end).
    const messages = app.services.messages;
    const batchStarts: number[] = [];
    const read = messages.analysisSources;
    messages.analysisSources = (ids: string[]) => {
      batchStarts.push(performance.now());
      return read.call(messages, ids);
    };
    let session: Session | null = null;
    if (PROFILE) {
      session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: 1000 });
    }
    let monitor: pg.Client | null = null;
    if (engine === 'postgres') {
      monitor = new pg.Client({ connectionString: app.config.databaseUrl });
      await monitor.connect();
    }
    const usage = watchUsage(monitor, { worker: process.pid });
    global.gc?.();
    try {
      writeFileSync('/proc/self/clear_refs', '5'); // resets VmHWM: the peak is the drain's
    } catch {}
    const rssBefore = rssMb(process.pid);
    await session?.post('Profiler.start');
    const began = performance.now();
    const analysed = await app.services.analysisWorker.drain();
    const ended = performance.now();
    const profile = session ? ((await session.post('Profiler.stop')).profile as Profile) : null;
    const peakRss = peakRssMb(process.pid);
    const used = await usage.stop();
    await monitor?.end();
    session?.disconnect();
    messages.analysisSources = read;

    const seconds = (ended - began) / 1000;
    const rate = analysed / seconds;
    const batches = batchStarts.map((t, i) => (batchStarts[i + 1] ?? ended) - t).sort((a, b) => a - b);
    const [{ n: left }] = await q('select count(*)::int as n from intelligence_queue');
    const [outcome] = await q(
      `select count(*)::int as analyses, count(*) filter (where spam)::int as spam,
              count(*) filter (where phishing <> 'clean')::int as phishing
         from message_analyses where organization_id = $1`,
      [org.id],
    );
    const [{ n: junk }] = await q(
      `select count(*)::int as n from mailbox_messages mm join mailbox_folders f on f.id = mm.folder_id
        where mm.organization_id = $1 and f.name = 'Junk'`,
      [org.id],
    );
    if (left !== 0 || outcome.analyses !== MESSAGES)
      throw new Error(`drain left ${left} queued, ${outcome.analyses} of ${MESSAGES} analysed`);

    const notes = [
      `intelligence (${engine}): ${analysed} analysed in ${seconds.toFixed(1)} s = ${rate.toFixed(0)}/s; ` +
        `${batches.length} batches, p50 ${percentile(batches, 50).toFixed(0)} ms; ${outcome.spam} spam ` +
        `(${junk} moved to Junk), ${outcome.phishing} with phishing findings; peak RSS ${peakRss.toFixed(0)} MB (${rssBefore.toFixed(0)} MB when it began)`,
    ];
    if (profile) {
      const { steps, files, total } = summarise(profile);
      if (SAVE_PROFILE) {
        mkdirSync(PROFILE_DIR, { recursive: true });
        writeFileSync(`${PROFILE_DIR}/${engine}.cpuprofile`, JSON.stringify(profile));
      }
      notes.push(`  time by step (CPU profile of this process, ${(total / 1000).toFixed(1)} s sampled):`);
      for (const [step, ms] of [...steps].sort((a, b) => b[1] - a[1]))
        notes.push(
          `    ${step.padEnd(36)} ${(ms / 1000).toFixed(2).padStart(7)} s  ${share(ms, total).padStart(4)}`,
        );
      notes.push('  self time by file (top 15):');
      for (const [file, ms] of [...files].sort((a, b) => b[1] - a[1]).slice(0, 15))
        notes.push(
          `    ${file.padEnd(70)} ${(ms / 1000).toFixed(2).padStart(7)} s  ${share(ms, total).padStart(4)}`,
        );
    }
    if (used) {
      used.cpu.delete('bench process (load, sink)'); // the worker is this process
      notes.push(describeUsage('drain', used));
    }
    for (const [k, v] of [...((globalThis as any).__trace ?? new Map())]
      .sort((a: any, b: any) => b[1].ms - a[1].ms)
      .slice(0, 14))
      notes.push(`  ${(v.ms / 1000).toFixed(2)} s ${v.n}x ${k}`);
    process.stderr.write(`${notes.join('\n')}\n`);
    return {
      benchmark: `mail analysis, one worker (${engine})`,
      workload:
        `${MESSAGES.toLocaleString('en')} filed messages (${distinct} held-out SpamAssassin, cycled; ` +
        `${(bytes / 1024 ** 2).toFixed(0)} MB; seeded in ${seedSeconds.toFixed(0)} s), drain() in process, ` +
        `built-in engines; ${outcome.spam} spam → ${junk} moved to Junk${profile ? '; profiled' : ''}`,
      throughput: `${Math.round(rate).toLocaleString('en')} messages/s`,
      p50: `${percentile(batches, 50).toFixed(0)} ms/batch of ${app.config.intelligence.batchSize}`,
      p99: `${percentile(batches, 99).toFixed(0)} ms/batch`,
      peakRss: `${Math.round(peakRss)} MB`,
      target: `≥ ${TARGET}/s ${rate >= TARGET ? '✔' : '✘'}`,
    };
  });
}

/**
 * In a process of its own, with the Node flags `npm start` gives a worker (`--liftoff-only`: PGlite's
 * WebAssembly stays on V8's baseline tier, slower and smaller; 4 MB semi-spaces): in the bench process
 * the embedded engine ran faster and larger than it does in production.
 */
export async function run(): Promise<Row[]> {
  // The corpus is read here, so that the worker's process never holds it (its JSON is 40 MB).
  const { raw, distinct } = await corpusMessages(MESSAGES);
  const dir = mkdtempSync(path.join(tmpdir(), 'mailroom-intelligence-bench-'));
  const file = path.join(dir, 'messages');
  writeMessages(file, raw);
  try {
    const rows: Row[] = [];
    for (const engine of benchEngines()) rows.push(await inChild(engine, file, distinct));
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One engine's run in a fresh process (so that its RSS is its own). */
function inChild(engine: Engine, file: string, distinct: number): Promise<Row> {
  const child = fork(fileURLToPath(import.meta.url), [], {
    // --expose-gc only lets the bench collect garbage before the drain, so that its peak is the drain's.
    execArgv: [...START_FLAGS, '--expose-gc'],
    env: {
      ...process.env,
      BENCH_INTELLIGENCE_CHILD: engine,
      BENCH_INTELLIGENCE_FILE: file,
      BENCH_INTELLIGENCE_DISTINCT: String(distinct),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    let row: Row | null = null;
    child.once('message', (m) => {
      row = m as Row;
    });
    child.once('exit', (code) =>
      row ? resolve(row) : reject(new Error(`intelligence bench (${engine}) exited ${code}`)),
    );
  });
}

/** The messages in one file, each after its length (4 bytes). */
function writeMessages(file: string, raw: Buffer[]): void {
  const parts: Buffer[] = [];
  for (const r of raw) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(r.length);
    parts.push(length, r);
  }
  writeFileSync(file, Buffer.concat(parts));
}

function readMessages(file: string): Buffer[] {
  const all = readFileSync(file);
  const raw: Buffer[] = [];
  for (let at = 0; at < all.length; ) {
    const length = all.readUInt32BE(at);
    raw.push(Buffer.from(all.subarray(at + 4, at + 4 + length)));
    at += 4 + length;
  }
  return raw;
}

const childEngine = process.env.BENCH_INTELLIGENCE_CHILD as Engine | undefined;
if (childEngine && process.argv[1] === fileURLToPath(import.meta.url)) {
  process.send!(await analyse(childEngine));
  process.disconnect();
}
