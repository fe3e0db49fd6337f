// The analysis worker: drains the queue in batches (any number of workers share it), and first learns
// what users reported, so that a report counts for the next message. A batch, in steps:
//   take      due messages claimed under a lease (they come back if this worker dies), and read
//   analyse   per organisation (analyzer.ts): parsed on the analysis threads, the organisation's counts
//             read, scored on the threads; nothing is written yet
//   act       for mail that came in from outside: malware is quarantined (every copy taken out, the
//             message marked quarantined), spam at or above the threshold is moved from INBOX to Junk
//             (each idempotent: a batch redone after a crash finds nothing left to move)
//   record    one transaction: the analyses, the events, the queue rows removed; the term statistics
//             are counted in memory and written every few seconds (term-statistics.ts)
import type { Logger } from 'pino';
import type { Db } from '../../core/db.ts';
import type { DomainsService } from '../domains/service.ts';
import type { EventInput, EventsService } from '../events/service.ts';
import type { MailStore } from '../imap/service.ts';
import type { AnalysisSource, MessagesService } from '../messages/service.ts';
import type { Analysis, Analyzer, ParsedBatch, PreparedBatch } from './analyzer.ts';
import { messageAnalyzed, messageMalwareDetected, messagePhishingDetected } from './events.ts';
import { analysisInputFromRaw } from './input.ts';
import { learn } from './spam/classifier.ts';
import { extractSpamFeatures } from './spam/features.ts';
import * as store from './store.ts';
import { TermStatistics } from './term-statistics.ts';
import type { IntelligenceSettingsRow } from './tables.ts';

export interface WorkerOptions {
  db: Db;
  messages: MessagesService;
  domains: DomainsService;
  mailstore: MailStore;
  events: EventsService;
  analyzer: Analyzer;
  batchSize: number;
  /** A claim lasts this long; a batch takes well under it. */
  leaseMs: number;
  log: Logger;
}

/** Attempts before a message that keeps failing is dropped from the queue (and logged). */
const MAX_ATTEMPTS = 5;
/** Reports learned per step. */
const LEARN_BATCH = 500;

export class AnalysisWorker {
  readonly #o: WorkerOptions;
  readonly #terms = new TermStatistics();

  constructor(options: WorkerOptions) {
    this.#o = options;
  }

  /**
   * Learns pending reports and analyses every due message; how many were analysed. Two batches overlap, so
   * that the database works while the analysis threads do: a batch is parsed on the threads while the last
   * one is recorded (its moves to Junk, analyses and statistics written), then its counts are read, and it
   * is scored on the threads while the next batch is claimed and read. As with two workers, a batch's term
   * statistics may not count the batch before it; reports are still learned before every claim.
   */
  async drain(): Promise<number> {
    let analysed = 0;
    let scored: Analysed | null = null;
    let taking: Promise<Taken | null> | null = this.#take();
    try {
      for (;;) {
        const taken: Taken | null = await taking;
        taking = null;
        if (!taken) break;
        const recording = scored ? this.#record(scored) : null;
        scored = null;
        const [parsed, recorded] = await both(this.#parse(taken), recording);
        analysed += recorded ?? 0;
        const prepared = await this.#read(parsed);
        taking = this.#take();
        scored = await this.#score(prepared);
      }
    } finally {
      // A batch claimed and not analysed comes back when its lease runs out.
      await taking?.catch(() => {});
      // The last batch analysed is recorded, also when the next one failed; then every count is written.
      if (scored) analysed += await this.#record(scored);
      if (this.#terms.due(true)) await this.#o.db.transaction((tx) => this.#terms.flush(tx, true));
    }
    return analysed;
  }

  /** Applies up to LEARN_BATCH reports to their organisations' spam counts; how many it looked at. */
  async learnReports(): Promise<number> {
    const reports = await store.unlearned(this.#o.db, LEARN_BATCH);
    if (!reports.length) return 0;
    const sources = new Map(
      (await this.#o.messages.analysisSources(reports.map((r) => r.messageId))).map((s) => [s.id, s]),
    );
    const features = new Map<string, string[]>();
    for (const report of reports) {
      const source = sources.get(report.messageId);
      if (!source) continue;
      try {
        features.set(report.messageId, extractSpamFeatures(await analysisInputFromRaw(source.raw)));
      } catch (error) {
        this.#o.log.warn(
          { message: report.messageId, err: error },
          'intelligence: reported message unreadable',
        );
      }
    }
    await this.#o.db.transaction(async (tx) => {
      const settled = await store.settleReports(tx, reports);
      const counts = new Map<string, store.TokenRow>();
      const add = (organizationId: string, rows: ReturnType<typeof learn>, times: number) => {
        for (const row of rows) {
          const key = `${organizationId}:${row.tokenHash}`;
          const entry = counts.get(key) ?? { organizationId, token: row.tokenHash, spam: 0, ham: 0 };
          entry.spam += times * row.spam;
          entry.ham += times * row.ham;
          counts.set(key, entry);
        }
      };
      for (const report of reports) {
        const list = features.get(report.messageId);
        if (!list || !settled.has(report.messageId)) continue;
        add(report.organizationId, learn(list, report.verdict), 1);
        // A changed mind: what was learned the other way is taken back.
        if (report.learned) add(report.organizationId, learn(list, report.learned), -1);
      }
      await store.addTokens(
        tx,
        [...counts.values()].filter((c) => c.spam || c.ham),
      );
    });
    return reports.length;
  }

  /** Learns what was reported, then claims due messages and reads them; null when none is due. */
  async #take(): Promise<Taken | null> {
    const { db, log } = this.#o;
    while ((await this.learnReports()) === LEARN_BATCH);
    const claimed = await store.claim(db, this.#o.batchSize, this.#o.leaseMs);
    if (!claimed.length) return null;
    const given = claimed.filter((c) => c.attempts > MAX_ATTEMPTS);
    for (const c of given)
      log.error({ message: c.messageId }, 'intelligence: analysis kept failing; dropped');
    const live = claimed.filter((c) => c.attempts <= MAX_ATTEMPTS);
    const byId = new Map(live.map((c) => [c.messageId, c]));
    const sources = await this.#o.messages.analysisSources(live.map((c) => c.messageId));
    const byOrg = new Map<string, Array<AnalysisSource & { raw: Buffer }>>();
    for (const source of sources) {
      const list = byOrg.get(source.organization_id) ?? [];
      list.push(source);
      byOrg.set(source.organization_id, list);
    }
    const organizations = [...byOrg.keys()];
    const [settings, domains] = await Promise.all([
      store.settingsOf(db, organizations),
      this.#o.domains.namesByOrganization(organizations),
    ]);
    return { claimed, byId, settings, domains, byOrg, count: sources.length };
  }

  /** A taken batch parsed on the analysis threads, per organisation. */
  async #parse({ byOrg, ...rest }: Taken): Promise<Parsed> {
    const parsed = await Promise.all(
      [...byOrg].map(async ([organizationId, list]) => ({
        organizationId,
        batch: await this.#o.analyzer.parse(list),
      })),
    );
    return { ...rest, parsed };
  }

  /** What the batch's organisations know of its messages' spam features and terms (Analyzer.read). */
  async #read({ parsed, domains, ...rest }: Parsed): Promise<Prepared> {
    const { db } = this.#o;
    const batches: Prepared['batches'] = [];
    for (const { organizationId, batch } of parsed) {
      const prepared = await this.#o.analyzer.read(batch, {
        settings: rest.settings.get(organizationId),
        domains: domains.get(organizationId) ?? [],
        learned: (tokens) =>
          store
            .learnedTokens(db, organizationId, tokens)
            .then((rows) => rows.map((r) => ({ tokenHash: r.token, spam: r.spam, ham: r.ham }))),
        terms: (terms) => this.#terms.read(db, organizationId, terms),
      });
      batches.push({ organizationId, batch: prepared });
    }
    return { ...rest, batches };
  }

  /** Analyses a read batch on the threads; nothing is written yet. */
  async #score({ batches, ...rest }: Prepared): Promise<Analysed> {
    const results = await Promise.all(
      batches.map(async ({ organizationId, batch }) => ({
        organizationId,
        analyses: await this.#o.analyzer.finish(batch),
        documents: batch.stats.documents,
      })),
    );
    return { ...rest, results };
  }

  /** Acts on a batch's analyses (Junk, quarantine) and records them; how many messages it held. */
  async #record({ claimed, byId, settings, results, count }: Analysed): Promise<number> {
    const { db, log } = this.#o;
    const junked = new Set<string>();
    const quarantined = new Set<string>();
    for (const { organizationId, analyses } of results) {
      const orgSettings = settings.get(organizationId);
      const acting = analyses.filter((a) => byId.get(a.row.messageId)?.act);
      const infected = acting.filter((a) => a.row.malware).map((a) => a.row.messageId);
      if (infected.length && (orgSettings?.quarantineMalware ?? true)) {
        await this.#o.mailstore.removeEverywhere(organizationId, infected);
        for (const id of infected) {
          await this.#o.messages.setStatus(organizationId, id, 'quarantined').catch((error) => {
            log.warn({ message: id, err: error }, 'intelligence: could not mark a message quarantined');
          });
          quarantined.add(id);
        }
      }
      const spam = acting
        .filter((a) => a.row.spam && !quarantined.has(a.row.messageId))
        .map((a) => a.row.messageId);
      if (spam.length && (orgSettings?.junkFiling ?? true)) {
        const copies = await this.#o.mailstore.fileAsJunk(organizationId, spam);
        if (copies) for (const id of spam) junked.add(id);
      }
    }
    await db.transaction(async (tx) => {
      const all = results.flatMap((r) => r.analyses);
      await this.#o.messages.saveAnalyses(
        tx,
        all.map((a) => a.row),
      );
      await this.#o.events.emitMany(tx, eventsOf(all, junked, quarantined));
      await store.dequeue(
        tx,
        claimed.map((c) => c.messageId),
      );
    });
    // Counted once the batch is recorded: a batch that failed comes back and is counted then.
    for (const { organizationId, analyses, documents } of results) {
      const counted = analyses.filter((a) => countsTerms(a.row.messageId, documents));
      const counts = new Map<string, number>();
      for (const a of counted) for (const term of a.terms) counts.set(term, (counts.get(term) ?? 0) + 1);
      this.#terms.add(organizationId, counted.length, counts);
    }
    // In a transaction of its own, only when due: most batches write none.
    if (this.#terms.due()) await db.transaction((tx) => this.#terms.flush(tx));
    return count;
  }
}

/** A claimed batch: its messages per organisation, and what the worker knows of those. */
interface Taken {
  claimed: store.Claimed[];
  byId: Map<string, store.Claimed>;
  settings: Map<string, IntelligenceSettingsRow>;
  domains: Map<string, string[]>;
  byOrg: Map<string, Array<AnalysisSource & { raw: Buffer }>>;
  count: number;
}

/** A claimed batch, parsed on the threads. */
interface Parsed extends Omit<Taken, 'byOrg'> {
  parsed: Array<{ organizationId: string; batch: ParsedBatch }>;
}

/** A claimed batch, its organisations' counts read. */
interface Prepared extends Omit<Parsed, 'parsed' | 'domains'> {
  batches: Array<{ organizationId: string; batch: PreparedBatch }>;
}

/** A claimed batch, analysed, waiting to be acted on and recorded. */
interface Analysed extends Omit<Prepared, 'batches'> {
  /** Per organisation, its analyses and how many messages its term statistics held when read. */
  results: Array<{ organizationId: string; analyses: Analysis[]; documents: number }>;
}

/** An organisation's term statistics count every message until they hold this many. */
const TERMS_COUNTED_IN_FULL = 2000;
/** From then on, one message in this many: a sample (chosen by id) gives the same ratios as the whole. */
const TERM_SAMPLE = 4;

/**
 * Whether a message's terms go into its organisation's document frequencies. Keywords and summaries use
 * their ratio to the messages counted, which a sample estimates as well as the whole mail, at a quarter
 * of the writes (a batch's terms were the largest write the analysis made).
 */
function countsTerms(messageId: string, documents: number): boolean {
  return documents < TERMS_COUNTED_IN_FULL || Number.parseInt(messageId.slice(-4), 16) % TERM_SAMPLE === 0;
}

/** Both awaited, also when one fails (then the first failure is thrown): neither is left running. */
async function both<A, B>(a: Promise<A>, b: Promise<B> | null): Promise<[A, B | null]> {
  const [x, y] = await Promise.allSettled([a, b]);
  if (x.status === 'rejected') throw x.reason;
  if (y.status === 'rejected') throw y.reason;
  return [x.value, y.value];
}

function eventsOf(analyses: Analysis[], junked: Set<string>, quarantined: Set<string>): EventInput[] {
  const events: EventInput[] = [];
  for (const { row, threats } of analyses) {
    const organizationId = row.organizationId;
    events.push({
      definition: messageAnalyzed,
      organizationId,
      data: {
        message_id: row.messageId,
        spam: row.spam,
        spam_score: row.spamScore,
        phishing: row.phishing,
        malware: row.malware,
        language: row.language,
        sentiment: row.sentimentLabel,
        category: row.category,
        priority: row.priority,
        junked: junked.has(row.messageId),
      },
    });
    if (threats.verdict !== 'clean')
      events.push({
        definition: messagePhishingDetected,
        organizationId,
        data: {
          message_id: row.messageId,
          verdict: threats.verdict,
          score: threats.score,
          findings: threats.findings.map((f) => ({
            code: f.code,
            severity: f.severity,
            evidence: f.evidence,
          })),
        },
      });
    if (row.malware)
      events.push({
        definition: messageMalwareDetected,
        organizationId,
        data: {
          message_id: row.messageId,
          signature: row.malware,
          quarantined: quarantined.has(row.messageId),
        },
      });
  }
  return events;
}
