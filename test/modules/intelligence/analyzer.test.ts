// The analyzer on real analysis threads: a batch split between two threads, each part kept on its
// thread between parsing and scoring, many organisations' parts in flight at once (as one worker batch
// holds them), the same answers as without threads, and a part finished on a thread that never parsed it
// refused rather than answered wrongly.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import { ThreadPool } from '../../../src/core/threads.ts';
import {
  type Analysis,
  Analyzer,
  type OrganizationContext,
} from '../../../src/modules/intelligence/analyzer.ts';
import { meetingAgenda, moneySpam, paypalPhish, weekendPlans } from '../../support/intelligence-mail.ts';

const thread = new URL('../../../src/modules/intelligence/analysis-thread.ts', import.meta.url);
const inline = async () => (await import('../../../src/modules/intelligence/analysis.ts')).analysisTasks;

function analyzerWith(threads: number) {
  const pool = new ThreadPool(thread, threads, inline);
  const analyzer = new Analyzer({
    threads: pool,
    rspamd: null,
    scanner: null,
    spamThreshold: 0.7,
    log: pino({ level: 'silent' }),
  });
  return { pool, analyzer };
}

const context: OrganizationContext = {
  settings: undefined,
  domains: ['example.org'],
  learned: async () => [],
  terms: async (terms) => ({ documents: 100, frequency: new Map(terms.map((t) => [t, 1])) }),
};

/** An organisation's messages: a meeting, a private note, spam and a phish. */
function sourcesOf(org: number) {
  const organizationId = `00000000-0000-7000-8000-${String(org).padStart(12, '0')}`;
  const mails = [
    meetingAgenda(`a${org}@example.org`, `m${org}@x`),
    weekendPlans(`a${org}@example.org`, `w${org}@x`),
    moneySpam(`a${org}@example.org`, `s${org}@x`),
    paypalPhish(`a${org}@example.org`, `p${org}@x`),
  ];
  return mails.map((m, i) => ({
    id: `00000000-0000-7000-9${String(org).padStart(3, '0')}-${String(i).padStart(12, '0')}`,
    organization_id: organizationId,
    direction: 'inbound' as const,
    blob_id: organizationId,
    auth: null,
    raw: Buffer.from(m.raw),
  }));
}

const essence = (analyses: Analysis[]) =>
  analyses.map((a) => ({
    id: a.row.messageId,
    organization: a.row.organizationId,
    spam: a.row.spam,
    phishing: a.row.phishing,
    category: a.row.category,
    keywords: a.row.keywords,
    summary: a.row.summary,
  }));

describe('analyzer on analysis threads', () => {
  const threaded = analyzerWith(2);
  const direct = analyzerWith(0);
  after(() => Promise.all([threaded.pool.close(), direct.pool.close()]));

  test('many organisations parsed at once, each scored on the threads that parsed it, as without threads', async () => {
    const orgs = Array.from({ length: 20 }, (_, i) => sourcesOf(i + 1));
    // Every part is parsed before any is finished: more parts wait on each thread than a batch has organisations.
    const parsed = await Promise.all(orgs.map((sources) => threaded.analyzer.parse(sources)));
    const analysed: Analysis[][] = [];
    for (const batch of parsed.reverse())
      analysed.push(await threaded.analyzer.finish(await threaded.analyzer.read(batch, context)));
    analysed.reverse();
    for (const [i, sources] of orgs.entries()) {
      const got = essence(analysed[i]!);
      assert.deepEqual(
        got.map((a) => a.id),
        sources.map((s) => s.id),
        'every message, in order',
      );
      assert.ok(got.every((a) => a.organization === sources[0]!.organization_id));
      assert.deepEqual(essence(await direct.analyzer.analyze(sources, context)), got);
    }
    const [meeting, note, spam, phish] = essence(analysed[0]!);
    assert.equal(meeting!.spam, false);
    assert.equal(note!.spam, false);
    assert.equal(spam!.spam, true);
    assert.equal(phish!.phishing, 'phishing');
  });

  test('a part is finished only where it was parsed', async () => {
    const batch = await threaded.analyzer.parse(sourcesOf(99));
    const read = await threaded.analyzer.read(batch, context);
    await threaded.analyzer.finish(read);
    await assert.rejects(threaded.analyzer.finish(read), /was not prepared on this thread/);
  });

  test('an empty message does not stop the rest of its part', async () => {
    const sources = sourcesOf(7);
    sources[1]!.raw = Buffer.alloc(0);
    const analysed = new Set((await threaded.analyzer.analyze(sources, context)).map((a) => a.row.messageId));
    for (const i of [0, 2, 3]) assert.ok(analysed.has(sources[i]!.id), `message ${i} analysed`);
  });
});
