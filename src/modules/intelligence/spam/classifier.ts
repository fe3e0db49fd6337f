// The built-in spam classifier: naive Bayes over the presence of features (src/modules/intelligence/spam/
// features.ts), in the form Gary Robinson proposed and SpamBayes ships. Each feature's spam probability is
// its share of spam documents against its share of ham documents, shrunk towards "unknown" (0.5) when few
// documents had it; the message's score is the sum of the log-odds of its most telling features, and a
// logistic calibration fitted on held-out folds of the training data turns that score into a probability.
//
// Counting documents rather than fitting weights is what makes per-organisation learning simple: a user's
// report adds one document's counts to the organisation's own table, and scoring adds those counts to the
// shipped model's. Counts are keyed by a 32-bit hash of the feature so the table is compact rows of
// (organization_id, token_hash integer, spam integer, ham integer); the row with token_hash 0
// (DOCUMENT_COUNT_HASH) holds the organisation's document counts.
import { readFileSync } from 'node:fs';

/** The probability above which a message is spam, chosen on cross-validation inside the training split. */
export const DEFAULT_SPAM_THRESHOLD = 0.7;

/** Features whose smoothed probability is this close to 0.5 say nothing and are skipped. */
const MIN_FEATURE_STRENGTH = 0.1;
/** How strongly an unseen or rarely seen feature is held at 0.5 (Robinson's s; SpamBayes uses 0.45). */
const UNKNOWN_FEATURE_STRENGTH = 0.45;
/** Only the most telling features are summed, so a long message is not judged by its volume. */
const MAX_DISCRIMINATORS = 50;
const TOP_FEATURES_REPORTED = 10;
/** Longer features (rare, long link domains) are not kept: one feature a line stays within the line width. */
const MAX_FEATURE_NAME_LENGTH = 80;

export const DOCUMENT_COUNT_HASH = 0;

export interface TokenCounts {
  spam: number;
  ham: number;
}

export interface SpamCalibration {
  slope: number;
  intercept: number;
}

/**
 * The model as plain data: document counts per feature, and the score calibration. Treated as immutable
 * once scored with (scoring indexes it once); a changed model is a new object.
 */
export interface SpamModel {
  format: 'mailroom-spam-nb';
  version: 1;
  spamDocuments: number;
  hamDocuments: number;
  calibration: SpamCalibration;
  /** Feature → [spam documents with it, ham documents with it]. */
  features: Record<string, [number, number]>;
}

/** An organisation's own counts from its users' reports, added to the shipped model's at scoring time. */
export interface LearnedCounts {
  spamDocuments: number;
  hamDocuments: number;
  tokens: Map<number, TokenCounts>;
}

/** One row of an organisation's learned counts, or one increment of it. */
export interface LearnedRow {
  tokenHash: number;
  spam: number;
  ham: number;
}

export interface SpamScore {
  /** Calibrated probability that the message is spam, 0..1. */
  probability: number;
  /** The sum of the log-odds of the features weighed (positive: spam-like). */
  score: number;
  /** The features that weighed most, strongest first; a positive weight pushes towards spam. */
  topFeatures: Array<{ feature: string; weight: number }>;
}

export interface TrainingExample {
  features: string[];
  spam: boolean;
  /** Examples with the same key share a cross-validation fold (e.g. a hash of the body, so copies do). */
  key?: string;
}

export interface TrainOptions {
  /** Features seen in fewer documents than this are left out of the model. */
  minDocuments?: number;
  /** Folds of the cross-validation that fits the calibration. */
  folds?: number;
}

/** FNV-1a over the UTF-16 code units, as a signed 32-bit integer (a Postgres `integer`); never 0. */
export function tokenHash(feature: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < feature.length; i++) {
    hash ^= feature.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash === DOCUMENT_COUNT_HASH ? 1 : hash | 0;
}

/**
 * The model's counts in an open-addressing hash table keyed by token hash, each slot three numbers
 * (hash, spam, ham) side by side so a probe reads one cache line; hash 0 marks an empty slot (no feature
 * hashes to 0). Several times faster to probe than a Map, and scoring is mostly probing.
 */
interface CompiledModel {
  spamDocuments: number;
  hamDocuments: number;
  calibration: SpamCalibration;
  slots: Float64Array;
  shift: number;
  /** Per slot, the scoring call that last weighed it: a feature listed twice counts once. */
  weighedIn: Uint32Array;
  call: number;
}

function slotOf(slots: Float64Array, shift: number, hash: number): number {
  const mask = slots.length / 3 - 1;
  let slot = Math.imul(hash, 0x9e3779b1) >>> shift;
  while (slots[3 * slot] !== hash && slots[3 * slot] !== 0) slot = (slot + 1) & mask;
  return slot;
}

// Scoring looks features up by hash (the learned counts' key); the table is built once per model object.
const compiled = new WeakMap<SpamModel, CompiledModel>();
function compile(model: SpamModel): CompiledModel {
  let table = compiled.get(model);
  if (table === undefined) {
    const entries = Object.entries(model.features);
    let bits = 4;
    while (1 << bits < entries.length * 2) bits++;
    const slots = new Float64Array(3 << bits);
    for (const [feature, counts] of entries) {
      const hash = tokenHash(feature);
      const slot = slotOf(slots, 32 - bits, hash);
      // Two features with one hash share a row, exactly as they do in an organisation's learned table.
      slots[3 * slot] = hash;
      slots[3 * slot + 1] += counts[0];
      slots[3 * slot + 2] += counts[1];
    }
    table = {
      spamDocuments: model.spamDocuments,
      hamDocuments: model.hamDocuments,
      calibration: model.calibration,
      slots,
      shift: 32 - bits,
      weighedIn: new Uint32Array(1 << bits),
      call: 0,
    };
    compiled.set(model, table);
  }
  return table;
}

function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** The smoothed spam probability of a feature seen in `spam` of `spamDocuments` and `ham` of `hamDocuments`. */
function featureProbability(spam: number, ham: number, spamDocuments: number, hamDocuments: number): number {
  const spamRatio = spamDocuments > 0 ? spam / spamDocuments : 0;
  const hamRatio = hamDocuments > 0 ? ham / hamDocuments : 0;
  const seen = spam + ham;
  const raw = spamRatio + hamRatio === 0 ? 0.5 : spamRatio / (spamRatio + hamRatio);
  return (UNKNOWN_FEATURE_STRENGTH * 0.5 + seen * raw) / (UNKNOWN_FEATURE_STRENGTH + seen);
}

/**
 * The sum of the `MAX_DISCRIMINATORS` weights of largest magnitude, and the strongest few of them.
 * Equal magnitudes are taken in feature-name order, so the same features give the same score whatever
 * order they come in (a spam and a ham feature seen once each have equal and opposite weights, so which
 * one is taken matters).
 */
function combine(weights: number[], names: string[]): { score: number; top: number[] } {
  const count = weights.length;
  const magnitudes = new Float64Array(count);
  for (let i = 0; i < count; i++) magnitudes[i] = Math.abs(weights[i]);
  // Cut-offs from a numeric typed-array sort: no comparator calls, and no full sort of the features.
  const ascending = magnitudes.slice().sort();
  const cutoff = count > MAX_DISCRIMINATORS ? ascending[count - MAX_DISCRIMINATORS] : 0;
  const topCutoff = count > TOP_FEATURES_REPORTED ? ascending[count - TOP_FEATURES_REPORTED] : 0;
  const byName = (a: number, b: number) => (names[a] < names[b] ? -1 : names[a] > names[b] ? 1 : 0);
  let score = 0;
  let taken = 0;
  const tied: number[] = [];
  const top: number[] = [];
  for (let i = 0; i < count; i++) {
    if (magnitudes[i] > cutoff) {
      score += weights[i];
      taken++;
    } else if (magnitudes[i] === cutoff) tied.push(i);
    if (magnitudes[i] >= topCutoff) top.push(i);
  }
  tied.sort(byName);
  for (let i = 0; i < tied.length && taken < MAX_DISCRIMINATORS; i++, taken++) score += weights[tied[i]];
  top.sort((a, b) => magnitudes[b] - magnitudes[a] || byName(a, b));
  return { score, top: top.slice(0, TOP_FEATURES_REPORTED) };
}

function scoreCompiled(model: CompiledModel, features: string[], learned?: LearnedCounts): SpamScore {
  const spamDocuments = model.spamDocuments + (learned?.spamDocuments ?? 0);
  const hamDocuments = model.hamDocuments + (learned?.hamDocuments ?? 0);
  const weighedFeatures: string[] = [];
  const weights: number[] = [];
  model.call = (model.call + 1) >>> 0 || 1;
  const call = model.call;
  // Features the shipped model lacks count only through learned counts; those are deduplicated here.
  const learnedOnly = learned === undefined ? null : new Set<number>();
  for (const feature of features) {
    const hash = tokenHash(feature);
    const slot = slotOf(model.slots, model.shift, hash);
    let spam = 0;
    let ham = 0;
    if (model.slots[3 * slot] === hash) {
      // A feature counts once however often it is listed (counts are of documents that have it).
      if (model.weighedIn[slot] === call) continue;
      model.weighedIn[slot] = call;
      spam = model.slots[3 * slot + 1];
      ham = model.slots[3 * slot + 2];
    } else if (learnedOnly === null || learnedOnly.size === learnedOnly.add(hash).size) {
      continue;
    }
    const own = learned?.tokens.get(hash);
    if (own !== undefined) {
      spam += own.spam;
      ham += own.ham;
    }
    if (spam + ham <= 0) continue;
    const p = featureProbability(spam, ham, spamDocuments, hamDocuments);
    if (Math.abs(p - 0.5) < MIN_FEATURE_STRENGTH) continue;
    weighedFeatures.push(feature);
    weights.push(Math.log(p / (1 - p)));
  }
  const { score, top } = combine(weights, weighedFeatures);
  const probability = sigmoid(model.calibration.slope * score + model.calibration.intercept);
  const topFeatures = top.map((i) => ({ feature: weighedFeatures[i], weight: weights[i] }));
  return { probability, score, topFeatures };
}

export function scoreSpam(model: SpamModel, features: string[], learned?: LearnedCounts): SpamScore {
  return scoreCompiled(compile(model), features, learned);
}

export function isSpam(result: SpamScore, threshold: number = DEFAULT_SPAM_THRESHOLD): boolean {
  return result.probability >= threshold;
}

function countDocuments(examples: TrainingExample[]): {
  spamDocuments: number;
  hamDocuments: number;
  features: Map<string, [number, number]>;
} {
  const features = new Map<string, [number, number]>();
  let spamDocuments = 0;
  let hamDocuments = 0;
  for (const example of examples) {
    if (example.spam) spamDocuments++;
    else hamDocuments++;
    for (const feature of new Set(example.features)) {
      let counts = features.get(feature);
      if (counts === undefined) {
        counts = [0, 0];
        features.set(feature, counts);
      }
      counts[example.spam ? 0 : 1]++;
    }
  }
  return { spamDocuments, hamDocuments, features };
}

/** Logistic regression of the label on one score (Platt scaling), by Newton's method. */
export function fitCalibration(scored: Array<{ score: number; spam: boolean }>): SpamCalibration {
  // Platt's targets keep the fit finite when the scores separate the classes perfectly.
  const positives = scored.filter((s) => s.spam).length;
  const negatives = scored.length - positives;
  const high = (positives + 1) / (positives + 2);
  const low = 1 / (negatives + 2);
  let slope = 0.1;
  let intercept = 0;
  for (let iteration = 0; iteration < 100; iteration++) {
    let gSlope = 0;
    let gIntercept = 0;
    let hSS = 1e-9;
    let hSI = 0;
    let hII = 1e-9;
    for (const { score, spam } of scored) {
      const p = sigmoid(slope * score + intercept);
      const error = p - (spam ? high : low);
      const w = p * (1 - p);
      gSlope += error * score;
      gIntercept += error;
      hSS += w * score * score;
      hSI += w * score;
      hII += w;
    }
    const det = hSS * hII - hSI * hSI;
    if (det <= 0) break;
    const dSlope = (hII * gSlope - hSI * gIntercept) / det;
    const dIntercept = (hSS * gIntercept - hSI * gSlope) / det;
    slope -= dSlope;
    intercept -= dIntercept;
    if (Math.abs(dSlope) < 1e-10 && Math.abs(dIntercept) < 1e-8) break;
  }
  return { slope, intercept };
}

function buildModel(
  counted: ReturnType<typeof countDocuments>,
  calibration: SpamCalibration,
  minDocuments: number,
): SpamModel {
  const features: Record<string, [number, number]> = {};
  // Sorted so the same examples always serialise to the same bytes.
  const names = [...counted.features.keys()].sort();
  for (const name of names) {
    const [spam, ham] = counted.features.get(name)!;
    if (spam + ham >= minDocuments && name.length <= MAX_FEATURE_NAME_LENGTH) features[name] = [spam, ham];
  }
  return {
    format: 'mailroom-spam-nb',
    version: 1,
    spamDocuments: counted.spamDocuments,
    hamDocuments: counted.hamDocuments,
    calibration,
    features,
  };
}

function foldOf(example: TrainingExample, index: number, folds: number): number {
  return example.key === undefined ? index % folds : (tokenHash(example.key) >>> 0) % folds;
}

/** Scores of every example from a model trained on the other folds (the data the calibration is fitted on). */
export function crossValidatedScores(
  examples: TrainingExample[],
  options: TrainOptions = {},
): Array<{ score: number; spam: boolean }> {
  const folds = options.folds ?? 5;
  const out: Array<{ score: number; spam: boolean }> = new Array(examples.length);
  for (let fold = 0; fold < folds; fold++) {
    const inFold = (example: TrainingExample, i: number) => foldOf(example, i, folds) === fold;
    const training = examples.filter((example, i) => !inFold(example, i));
    const model = compile(
      buildModel(countDocuments(training), { slope: 1, intercept: 0 }, options.minDocuments ?? 2),
    );
    examples.forEach((example, i) => {
      if (inFold(example, i))
        out[i] = { score: scoreCompiled(model, example.features).score, spam: example.spam };
    });
  }
  return out;
}

/** Trains a model: counts over all examples, calibration fitted on cross-validated scores. Deterministic. */
export function train(examples: TrainingExample[], options: TrainOptions = {}): SpamModel {
  const calibration = fitCalibration(crossValidatedScores(examples, options));
  return buildModel(countDocuments(examples), calibration, options.minDocuments ?? 2);
}

/**
 * JSON with one feature a line, in the layout the project's formatter (biome) writes, so the shipped
 * model.json is left alone by `npm run format` and a retrained model diffs feature by feature.
 */
export function serialiseModel(model: SpamModel): string {
  const features = Object.entries(model.features).map(
    ([feature, [spam, ham]]) => `    ${JSON.stringify(feature)}: [${spam}, ${ham}]`,
  );
  const { slope, intercept } = model.calibration;
  return [
    '{',
    `  "format": ${JSON.stringify(model.format)},`,
    `  "version": ${model.version},`,
    `  "spamDocuments": ${model.spamDocuments},`,
    `  "hamDocuments": ${model.hamDocuments},`,
    `  "calibration": { "slope": ${JSON.stringify(slope)}, "intercept": ${JSON.stringify(intercept)} },`,
    features.length === 0 ? '  "features": {}' : `  "features": {\n${features.join(',\n')}\n  }`,
    '}',
    '',
  ].join('\n');
}

export function deserialiseModel(json: string): SpamModel {
  const data = JSON.parse(json) as Partial<SpamModel>;
  if (data.format !== 'mailroom-spam-nb' || data.version !== 1) {
    throw new Error(
      `not a Mailroom spam model (format ${String(data.format)}, version ${String(data.version)})`,
    );
  }
  const finite = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x >= 0;
  if (!finite(data.spamDocuments) || !finite(data.hamDocuments))
    throw new Error('spam model: bad document counts');
  if (
    !data.calibration ||
    !Number.isFinite(data.calibration.slope) ||
    !Number.isFinite(data.calibration.intercept)
  ) {
    throw new Error('spam model: bad calibration');
  }
  if (!data.features || typeof data.features !== 'object') throw new Error('spam model: no features');
  for (const [feature, counts] of Object.entries(data.features)) {
    if (!Array.isArray(counts) || counts.length !== 2 || !finite(counts[0]) || !finite(counts[1])) {
      throw new Error(`spam model: bad counts for feature ${JSON.stringify(feature)}`);
    }
  }
  return data as SpamModel;
}

let shipped: SpamModel | null = null;

/** The model trained on the SpamAssassin public corpus (scripts/train-spam-model.ts), read once. */
export function loadShippedModel(): SpamModel {
  shipped ??= deserialiseModel(readFileSync(new URL('./model.json', import.meta.url), 'utf8'));
  return shipped;
}

export function emptyLearnedCounts(): LearnedCounts {
  return { spamDocuments: 0, hamDocuments: 0, tokens: new Map() };
}

/** The increments one report makes: +1 per distinct feature of the message, and +1 document. */
export function learn(features: string[], label: 'spam' | 'ham'): LearnedRow[] {
  const spam = label === 'spam' ? 1 : 0;
  const ham = 1 - spam;
  const rows: LearnedRow[] = [{ tokenHash: DOCUMENT_COUNT_HASH, spam, ham }];
  const hashes = new Set<number>();
  for (const feature of features) hashes.add(tokenHash(feature));
  for (const hash of hashes) rows.push({ tokenHash: hash, spam, ham });
  return rows;
}

/** Adds `rows` (from `learn`) to `counts`, `times` times: -1 takes a report back. Counts never go below 0. */
export function applyLearned(counts: LearnedCounts, rows: LearnedRow[], times = 1): LearnedCounts {
  for (const row of rows) {
    if (row.tokenHash === DOCUMENT_COUNT_HASH) {
      counts.spamDocuments = Math.max(0, counts.spamDocuments + times * row.spam);
      counts.hamDocuments = Math.max(0, counts.hamDocuments + times * row.ham);
      continue;
    }
    const existing = counts.tokens.get(row.tokenHash) ?? { spam: 0, ham: 0 };
    existing.spam = Math.max(0, existing.spam + times * row.spam);
    existing.ham = Math.max(0, existing.ham + times * row.ham);
    if (existing.spam === 0 && existing.ham === 0) counts.tokens.delete(row.tokenHash);
    else counts.tokens.set(row.tokenHash, existing);
  }
  return counts;
}

/** Learned counts from stored rows (`organization_id, token_hash, spam, ham`). */
export function learnedCountsFromRows(rows: Iterable<LearnedRow>): LearnedCounts {
  const counts = emptyLearnedCounts();
  for (const row of rows) applyLearned(counts, [row]);
  return counts;
}
