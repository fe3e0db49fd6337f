// The CPU half of analysing a batch (analyzer.ts), as tasks for the analysis threads (analysis-thread.ts,
// core/threads.ts). `prepare` parses a part of the batch and extracts what the database must be asked
// about (spam features' token hashes, the terms for keyword statistics), and keeps the parsed messages;
// `finish`, on the same thread once the worker has read the organisation's counts, scores, checks and
// understands them. Nothing here reads or writes the database or the network.
import type { SpamCheck } from '../../providers/spam/types.ts';
import type { NewMessageAnalysis } from '../messages/service.ts';
import { type AnalysisInput, analysisInputFromRaw } from './input.ts';
import {
  DOCUMENT_COUNT_HASH,
  type LearnedRow,
  learnedCountsFromRows,
  loadShippedModel,
  scoreSpam,
  tokenHash,
} from './spam/classifier.ts';
import { extractSpamFeatures } from './spam/features.ts';
import { detectThreats, type ThreatReport } from './threats/index.ts';
import type { CustomCategoryModel } from './understanding/category.ts';
import { messageTermSets, understand } from './understanding/index.ts';

export interface Analysis {
  row: NewMessageAnalysis;
  /** Terms this message adds to its organisation's statistics. */
  terms: string[];
  threats: ThreatReport;
}

export interface PrepareInput {
  /** Names this part of the batch for `finish`. */
  part: string;
  messages: Array<{ id: string; raw: Uint8Array; dmarc: string | null }>;
  /** Hand back the attachments' bytes (for clamd, which the calling thread reaches). */
  attachments: boolean;
}

export interface PrepareOutput {
  /** Messages that could not be parsed, with why; they are left out of the analysis. */
  failed: Array<{ id: string; error: string }>;
  tokens: number[];
  /** The terms whose document frequencies `finish` will look up. */
  terms: string[];
  attachments: Array<{ id: string; contents: Uint8Array[] }>;
}

export interface FinishInput {
  part: string;
  organizationId: string;
  threshold: number;
  domains: string[];
  customCategories: CustomCategoryModel | undefined;
  learned: LearnedRow[];
  documents: number;
  frequency: Map<string, number>;
  /** rspamd's answer per message id, when it was asked and answered. */
  rspamd: Map<string, SpamCheck>;
  /** clamd's signature per message id, for infected ones. */
  malware: Map<string, string>;
}

interface Parsed {
  id: string;
  input: AnalysisInput;
  features: string[];
  terms: string[];
}

/**
 * Parts prepared and not finished yet, with when. The worker finishes each part it prepares (a batch
 * holds a part per organisation); one it gave up on (its database reads failed, or it died) is dropped
 * once it is older than a batch's lease, by when its messages are another worker's.
 */
const waiting = new Map<string, { parsed: Parsed[]; at: number }>();
const ABANDONED_MS = 10 * 60_000;

const SYMBOLS_KEPT = 20;

/** Milliseconds of analysis between turns of the event loop. */
const SLICE_MS = 10;

/**
 * A pause between messages once SLICE_MS have gone by since the last. On a thread of its own it costs a
 * clock read; run inline (a pool of no threads), the event loop then takes the database's answers and the
 * API's requests, which otherwise waited for a whole batch's analysis, about half a second.
 */
function timeSlice(): () => Promise<void> {
  let since = performance.now();
  return async () => {
    if (performance.now() - since < SLICE_MS) return;
    await new Promise((resolve) => setImmediate(resolve));
    since = performance.now();
  };
}

async function prepare({ part, messages, attachments }: PrepareInput): Promise<PrepareOutput> {
  const failed: PrepareOutput['failed'] = [];
  // All at once: the parser's streams then share the event loop's turns (a tenth less CPU than one by one).
  const inputs = await Promise.all(
    messages.map((m) =>
      analysisInputFromRaw(Buffer.from(m.raw.buffer, m.raw.byteOffset, m.raw.byteLength)).catch((error) => {
        failed.push({ id: m.id, error: error instanceof Error ? error.message : String(error) });
        return null;
      }),
    ),
  );
  const parsed: Parsed[] = [];
  // The document counts are read with the features' counts.
  const tokens = new Set<number>([DOCUMENT_COUNT_HASH]);
  const terms = new Set<string>();
  const slice = timeSlice();
  for (let i = 0; i < messages.length; i++) {
    const input = inputs[i];
    if (!input) continue;
    await slice();
    // Our MX's own verdict, when the message carries no Authentication-Results of ours.
    const dmarc = messages[i]!.dmarc;
    if (dmarc && !input.authentication.dmarc) input.authentication.dmarc = dmarc.toLowerCase();
    const features = extractSpamFeatures(input);
    for (const f of features) tokens.add(tokenHash(f));
    const { counted, asked } = messageTermSets(input);
    for (const t of asked) terms.add(t);
    parsed.push({ id: messages[i]!.id, input, features, terms: counted });
  }
  const now = Date.now();
  for (const [key, { at }] of waiting) if (now - at > ABANDONED_MS) waiting.delete(key);
  waiting.set(part, { parsed, at: now });
  return {
    failed,
    tokens: [...tokens],
    terms: [...terms],
    attachments: attachments
      ? parsed
          .filter((p) => p.input.attachments.length)
          // Copies of their own: a parser's Buffer may be a view of a larger one, which would be copied whole.
          .map((p) => ({ id: p.id, contents: p.input.attachments.map((a) => new Uint8Array(a.content)) }))
      : [],
  };
}

async function finish(o: FinishInput): Promise<Analysis[]> {
  const parsed = waiting.get(o.part)?.parsed;
  if (!parsed) throw new Error(`analysis: part ${o.part} was not prepared on this thread`);
  waiting.delete(o.part);
  const model = loadShippedModel();
  const learned = learnedCountsFromRows(o.learned);
  const frequencies = { documents: o.documents, frequency: (term: string) => o.frequency.get(term) ?? 0 };
  const out: Analysis[] = [];
  const slice = timeSlice();
  for (const { id, input, features, terms } of parsed) {
    await slice();
    const builtin = scoreSpam(model, features, learned);
    const rspamd = o.rspamd.get(id);
    const threats = await detectThreats(input, { organizationDomains: o.domains });
    const understood = understand(input, { frequencies, customCategories: o.customCategories });
    const spamScore = rspamd ? Math.max(builtin.probability, rspamdProbability(rspamd)) : builtin.probability;
    out.push({
      terms,
      threats,
      row: {
        messageId: id,
        organizationId: o.organizationId,
        spam: spamScore >= o.threshold || Boolean(rspamd?.isSpam),
        spamScore: round(spamScore),
        spamEngine: rspamd ? 'rspamd' : 'builtin',
        // The strongest first; symbols of no weight are kept after them: GTUBE, for one, decides the
        // action with a score of 0.
        spamSymbols: rspamd
          ? [...rspamd.symbols]
              .sort((a, b) => Math.abs(b.score) - Math.abs(a.score))
              .slice(0, SYMBOLS_KEPT)
              .map((s) => ({ name: s.name, score: round(s.score) }))
          : builtin.topFeatures
              .slice(0, SYMBOLS_KEPT)
              .map((f) => ({ name: f.feature, score: round(f.weight) })),
        phishing: threats.verdict,
        phishingScore: threats.score,
        findings: threats.findings,
        malware: o.malware.get(id) ?? null,
        language: understood.language.code,
        sentiment: round(understood.sentiment.score),
        sentimentLabel: understood.sentiment.label,
        category: understood.category.category,
        priority: understood.priority.level,
        keywords: understood.keywords.map((k) => k.term),
        entities: understood.entities as unknown as Record<string, unknown>,
        summary: understood.summary,
      },
    });
  }
  return out;
}

/** rspamd's score against its own spam threshold as 0–1: 0.5 at the threshold, like the built-in one's. */
function rspamdProbability(check: SpamCheck): number {
  const required = check.requiredScore > 0 ? check.requiredScore : 15;
  return 1 / (1 + Math.exp(-(check.score - required) / (required / 4)));
}

const round = (x: number) => Math.round(x * 1000) / 1000;

export const analysisTasks = { prepare, finish };
