// Analysing a batch of filed messages, in named steps; nothing here writes. Per message:
//   parse        the raw message, once, into the shape every analyser reads
//   spam         the built-in model (the shipped counts plus what the organisation taught it), and rspamd
//                when configured (its symbols kept)
//   threats      phishing and risky-attachment findings with their evidence
//   malware      each attachment through clamd, when configured
//   understand   language, sentiment, keywords (against the organisation's term statistics), entities,
//                category (custom categories first), priority, summary
// The CPU work runs on the analysis threads (analysis.ts), the batch split between them; this thread
// reads what the organisation knows and talks to rspamd and clamd. The worker (worker.ts) stores the
// results and acts on them.
import type { Logger } from 'pino';
import type { ThreadPool } from '../../core/threads.ts';
import type { VirusScanner } from '../../providers/antivirus/types.ts';
import type { SpamCheck, SpamEngine } from '../../providers/spam/types.ts';
import type { AnalysisSource } from '../messages/service.ts';
import type { Analysis, analysisTasks, PrepareOutput } from './analysis.ts';
import type { LearnedRow } from './spam/classifier.ts';
import type { IntelligenceSettingsRow } from './tables.ts';

export type { Analysis } from './analysis.ts';

export interface AnalyzerOptions {
  threads: ThreadPool<typeof analysisTasks>;
  rspamd: SpamEngine | null;
  scanner: VirusScanner | null;
  /** The installation's spam threshold; an organisation's setting wins. */
  spamThreshold: number;
  log: Logger;
}

/** What the batch's organisations bring: settings, domains, learned spam counts, term statistics. */
export interface OrganizationContext {
  settings: IntelligenceSettingsRow | undefined;
  domains: string[];
  learned: (tokens: number[]) => Promise<LearnedRow[]>;
  terms: (terms: string[]) => Promise<{ documents: number; frequency: Map<string, number> }>;
}

/** One organisation's batch, parsed on the threads (`Analyzer.parse`), its counts not read yet. */
export interface ParsedBatch {
  sources: Array<AnalysisSource & { raw: Buffer }>;
  /** The batch's parts, part i on thread slot i. */
  parts: string[];
  prepared: PrepareOutput[];
}

/** One organisation's batch, parsed and its counts read (`Analyzer.read`), waiting to be scored. */
export interface PreparedBatch {
  organizationId: string;
  org: OrganizationContext;
  /** The batch's parts, part i on thread slot i. */
  parts: string[];
  learned: LearnedRow[];
  stats: { documents: number; frequency: Map<string, number> };
  rspamd: Map<string, SpamCheck>;
  malware: Map<string, string>;
}

let lastBatch = 0;

export class Analyzer {
  readonly #o: AnalyzerOptions;

  constructor(options: AnalyzerOptions) {
    this.#o = options;
  }

  threshold(settings: IntelligenceSettingsRow | undefined): number {
    return settings?.spamThreshold ?? this.#o.spamThreshold;
  }

  /** One organisation's messages; those that cannot be parsed are left out (and logged). */
  async analyze(
    sources: Array<AnalysisSource & { raw: Buffer }>,
    org: OrganizationContext,
  ): Promise<Analysis[]> {
    return this.finish(await this.read(await this.parse(sources), org));
  }

  /**
   * First, on the threads (a part of the batch each): the messages parsed, their spam features and terms
   * extracted. The threads keep them for `finish`.
   */
  async parse(sources: Array<AnalysisSource & { raw: Buffer }>): Promise<ParsedBatch> {
    const batch = `${process.pid}.${++lastBatch}`;
    const parts = split(sources, Math.max(1, this.#o.threads.size));
    const names = parts.map((_, i) => `${batch}.${i}`);
    const prepared = await Promise.all(
      parts.map((part, i) => {
        // Copies of their own, moved to the thread: a Buffer may be a view of a larger one (a whole result
        // set), which would be copied whole; the originals stay here for rspamd.
        const messages = part.map((s) => ({
          id: s.id,
          raw: new Uint8Array(s.raw),
          dmarc: s.auth?.dmarc?.result ?? null,
        }));
        return this.#o.threads.runOn(
          i,
          'prepare',
          { part: names[i]!, messages, attachments: this.#o.scanner !== null },
          messages.map((m) => m.raw.buffer as ArrayBuffer),
        );
      }),
    );
    for (const { failed } of prepared)
      for (const f of failed)
        this.#o.log.warn({ message: f.id, err: f.error }, 'intelligence: message could not be parsed');
    return { sources, parts: names, prepared };
  }

  /**
   * Then, here: what the organisation knows of those features and terms read, as rspamd and clamd are
   * asked. The worker reads the next batch so before it writes the last.
   */
  async read({ sources, parts, prepared }: ParsedBatch, org: OrganizationContext): Promise<PreparedBatch> {
    const unparsed = new Set(prepared.flatMap((p) => p.failed.map((f) => f.id)));
    const tokens = new Set<number>();
    const terms = new Set<string>();
    for (const p of prepared) {
      for (const t of p.tokens) tokens.add(t);
      for (const t of p.terms) terms.add(t);
    }
    const [learned, stats, rspamd, malware] = await Promise.all([
      org.learned([...tokens]),
      org.terms([...terms]),
      this.#rspamdAll(sources.filter((s) => !unparsed.has(s.id))),
      this.#scanAll(prepared),
    ]);
    const organizationId = sources[0]?.organization_id ?? '';
    return { organizationId, org, parts, learned, stats, rspamd, malware };
  }

  /** The second half: each message scored, checked and understood on the thread that parsed it. */
  async finish(batch: PreparedBatch): Promise<Analysis[]> {
    const { org } = batch;
    const results = await Promise.all(
      batch.parts.map((part, i) =>
        this.#o.threads.runOn(i, 'finish', {
          part,
          organizationId: batch.organizationId,
          threshold: this.threshold(org.settings),
          domains: org.domains,
          customCategories: org.settings?.customCategories ?? undefined,
          learned: batch.learned,
          documents: batch.stats.documents,
          frequency: batch.stats.frequency,
          rspamd: batch.rspamd,
          malware: batch.malware,
        }),
      ),
    );
    return results.flat();
  }

  async #rspamdAll(sources: Array<AnalysisSource & { raw: Buffer }>): Promise<Map<string, SpamCheck>> {
    const checks = new Map<string, SpamCheck>();
    const engine = this.#o.rspamd;
    if (!engine) return checks;
    for (const source of sources) {
      try {
        checks.set(source.id, await engine.check(source.raw, { queueId: source.id }));
      } catch (error) {
        // rspamd down or slow: the built-in verdict stands; the message is not held back.
        this.#o.log.warn({ message: source.id, err: error }, 'intelligence: rspamd did not answer');
      }
    }
    return checks;
  }

  /** Per infected message, the first signature the scanner names in its attachments. */
  async #scanAll(prepared: PrepareOutput[]): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    const scanner = this.#o.scanner;
    if (!scanner) return found;
    for (const { attachments } of prepared) {
      for (const { id, contents } of attachments) {
        for (const content of contents) {
          const bytes = Buffer.from(content.buffer, content.byteOffset, content.byteLength);
          const result = await scanner.scan(bytes).catch((error) => {
            this.#o.log.warn({ message: id, err: error }, 'intelligence: clamd did not scan an attachment');
            return null;
          });
          if (result?.infected) {
            found.set(id, result.signature ?? 'unknown');
            break;
          }
        }
      }
    }
    return found;
  }
}

/** `list` in `n` contiguous parts of nearly equal size (fewer when it is shorter). */
function split<T>(list: T[], n: number): T[][] {
  const parts: T[][] = [];
  const size = Math.ceil(list.length / n);
  for (let at = 0; at < list.length; at += size) parts.push(list.slice(at, at + size));
  return parts;
}
