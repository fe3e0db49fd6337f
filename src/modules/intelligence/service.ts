// Mail intelligence's rules: queueing what was filed, the organisation's settings, what users report
// (the API, moves into and out of Junk, $Junk/$NotJunk), custom categories trained by example, and
// re-analysis as a job a person can watch.
import type { Db } from '../../core/db.ts';
import { notFound, validationFailed } from '../../core/errors.ts';
import type { Jobs } from '../../core/jobs.ts';
import type { MailChange } from '../imap/service.ts';
import type { JobRow, RunningJob, TrackedJobsService } from '../jobs/service.ts';
import type { AnalysisScope, MessagesService } from '../messages/service.ts';
import { analysisInputFromRaw } from './input.ts';
import * as store from './store.ts';
import type { IntelligenceSettingsRow, Verdict } from './tables.ts';
import { BUILT_IN_CATEGORIES, trainCustomCategories } from './understanding/index.ts';

export const ANALYZE_QUEUE = 'intelligence.analyze';
export const REANALYZE_JOB = 'intelligence.reanalyze';

export interface IntelligenceOptions {
  db: Db;
  jobs: Jobs;
  trackedJobs: TrackedJobsService;
  messages: MessagesService;
  /** The installation's defaults. */
  spamThreshold: number;
  llmDailyTokens: number;
}

export interface SettingsView {
  spam_threshold: number;
  spam_threshold_default: boolean;
  junk_filing: boolean;
  quarantine_malware: boolean;
  llm_daily_tokens: number;
  custom_categories: string[];
}

/** IMAP keywords that say what a person thinks of a message (RFC 5788 registry; Thunderbird's, Apple's). */
export const JUNK_KEYWORDS = ['$Junk', 'Junk'];
export const NOT_JUNK_KEYWORDS = ['$NotJunk', 'NonJunk', 'NotJunk'];

/** Messages a re-analysis queues per step (each step's progress is written with its rows). */
const REANALYZE_STEP = 1_000;
/** Examples a custom category needs before it is trained. */
const MIN_EXAMPLES = 3;

interface ReanalyzeInput {
  scope: { mailbox_id?: string; folder_id?: string; account_id?: string; since?: string; until?: string };
  /** The last message id queued: a resumed job continues after it. */
}

export class IntelligenceService {
  readonly #o: IntelligenceOptions;

  constructor(options: IntelligenceOptions) {
    this.#o = options;
  }

  // ---- queueing ------------------------------------------------------------------------------------

  /** In the filing transaction: these messages are analysed after it commits, and acted on. */
  async filed(tx: Db, messages: Array<{ id: string; organizationId: string }>): Promise<void> {
    if (!messages.length) return;
    await store.enqueue(
      tx,
      messages.map((m) => ({ messageId: m.id, organizationId: m.organizationId, act: true })),
    );
    await this.#o.jobs.send(ANALYZE_QUEUE, {}, { tx, singletonKey: 'analyze' });
  }

  // ---- settings ------------------------------------------------------------------------------------

  async settings(organizationId: string): Promise<SettingsView> {
    return this.#view((await store.settingsOf(this.#o.db, [organizationId])).get(organizationId));
  }

  async updateSettings(
    organizationId: string,
    changes: {
      spam_threshold?: number | null;
      junk_filing?: boolean;
      quarantine_malware?: boolean;
      llm_daily_tokens?: number | null;
    },
  ): Promise<SettingsView> {
    const row = await this.#o.db.transaction((tx) =>
      store.upsertSettings(tx, organizationId, {
        ...(changes.spam_threshold !== undefined && { spamThreshold: changes.spam_threshold }),
        ...(changes.junk_filing !== undefined && { junkFiling: changes.junk_filing }),
        ...(changes.quarantine_malware !== undefined && { quarantineMalware: changes.quarantine_malware }),
        ...(changes.llm_daily_tokens !== undefined && { llmDailyTokens: changes.llm_daily_tokens }),
      }),
    );
    return this.#view(row);
  }

  #view(row: IntelligenceSettingsRow | undefined): SettingsView {
    return {
      spam_threshold: row?.spamThreshold ?? this.#o.spamThreshold,
      spam_threshold_default: row?.spamThreshold == null,
      junk_filing: row?.junkFiling ?? true,
      quarantine_malware: row?.quarantineMalware ?? true,
      llm_daily_tokens: row?.llmDailyTokens ?? this.#o.llmDailyTokens,
      custom_categories: [...new Set(row?.customCategories?.classes.map((c) => c.name) ?? [])]
        .filter((n) => n !== '(other)')
        .sort(),
    };
  }

  // ---- reports -------------------------------------------------------------------------------------

  /** A person's verdict on a message: learned by the spam filter before the next analysis. */
  async report(
    organizationId: string,
    messageId: string,
    verdict: 'spam' | 'not_spam' | 'phishing',
    userId: string | null,
  ): Promise<void> {
    await this.#o.messages.get(organizationId, messageId); // 404 for another organisation's message
    await this.#o.db.transaction(async (tx) => {
      await store.report(tx, {
        messageId,
        organizationId,
        verdict: verdict === 'not_spam' ? 'ham' : 'spam',
        phishing: verdict === 'phishing',
        source: 'api',
        userId,
      });
      await this.#o.jobs.send(ANALYZE_QUEUE, {}, { tx, singletonKey: 'analyze' });
    });
  }

  /** In the IMAP change's transaction: a move into or out of Junk, or a junk keyword, is a report. */
  async mailChanged(tx: Db, change: MailChange): Promise<void> {
    const verdict = verdictOf(change);
    if (!verdict) return;
    await store.reportMany(
      tx,
      change.organizationId,
      change.messageIds,
      verdict,
      change.kind === 'moved' ? 'imap_move' : 'imap_keyword',
    );
    await this.#o.jobs.send(ANALYZE_QUEUE, {}, { tx, singletonKey: 'analyze' });
  }

  // ---- custom categories ---------------------------------------------------------------------------

  /** Adds example messages to a category and retrains the organisation's custom categories. */
  async addExamples(organizationId: string, category: string, messageIds: string[]): Promise<SettingsView> {
    const name = category.trim().toLowerCase();
    if ((BUILT_IN_CATEGORIES as readonly string[]).includes(name))
      throw validationFailed('category', `${name} is a built-in category; custom ones need another name`);
    const found = await this.#o.messages.analysisSources(messageIds);
    const missing = messageIds.filter(
      (id) => !found.some((f) => f.id === id && f.organization_id === organizationId),
    );
    if (missing.length) throw notFound(`Message ${missing[0]}`);
    await this.#o.db.transaction((tx) => store.addExamples(tx, organizationId, name, messageIds));
    return this.#retrain(organizationId);
  }

  async removeCategory(organizationId: string, category: string): Promise<SettingsView> {
    const removed = await this.#o.db.transaction((tx) =>
      store.removeCategory(tx, organizationId, category.trim().toLowerCase()),
    );
    if (!removed) throw notFound('Category');
    return this.#retrain(organizationId);
  }

  /** Trains from every example (categories with too few examples wait), and stores the model. */
  async #retrain(organizationId: string): Promise<SettingsView> {
    const examples = await store.examplesOf(this.#o.db, organizationId);
    const counts = new Map<string, number>();
    for (const e of examples) counts.set(e.category, (counts.get(e.category) ?? 0) + 1);
    const usable = examples.filter((e) => (counts.get(e.category) ?? 0) >= MIN_EXAMPLES);
    const sources = new Map(
      (await this.#o.messages.analysisSources(usable.map((e) => e.messageId))).map((s) => [s.id, s]),
    );
    const training = [];
    for (const example of usable) {
      const source = sources.get(example.messageId);
      if (source)
        training.push({ category: example.category, input: await analysisInputFromRaw(source.raw) });
    }
    const model = training.length ? trainCustomCategories(training) : null;
    const row = await this.#o.db.transaction((tx) =>
      store.upsertSettings(tx, organizationId, { customCategories: model }),
    );
    return this.#view(row);
  }

  // ---- re-analysis ---------------------------------------------------------------------------------

  /** Re-analyses a mailbox, a folder, an account or a time range as a job; nothing is moved by it. */
  async reanalyze(
    organizationId: string,
    scope: ReanalyzeInput['scope'],
    createdBy: string | null,
    idempotency?: { key: string; requestHash: string },
  ): Promise<{ job: JobRow; replayed: boolean }> {
    const total = await this.#o.messages.countInScope(organizationId, scopeOf(scope));
    return this.#o.trackedJobs.create(organizationId, {
      kind: REANALYZE_JOB,
      input: { scope } satisfies ReanalyzeInput,
      total,
      createdBy,
      idempotency,
    });
  }

  registerRunners(): void {
    this.#o.trackedJobs.register<ReanalyzeInput>(REANALYZE_JOB, { run: (job) => this.#runReanalysis(job) });
  }

  /**
   * Queues the scope's messages step by step (each step's progress in its own transaction with its
   * queue rows), then waits while the worker analyses them: done counts queued-and-analysed messages.
   */
  async #runReanalysis(job: RunningJob<ReanalyzeInput>): Promise<Record<string, unknown>> {
    const scope = scopeOf(job.input.scope);
    let queued = job.done;
    let after: string | null = null;
    if (queued > 0) {
      // Resumed: skip what an earlier run queued (the walk is in id order).
      const skipped = await this.#o.messages.idsInScope(job.organizationId, scope, null, queued);
      after = skipped.at(-1) ?? null;
    }
    for (;;) {
      if (job.cancelRequested()) return { queued, cancelled: true };
      const ids = await this.#o.messages.idsInScope(job.organizationId, scope, after, REANALYZE_STEP);
      if (!ids.length) break;
      await this.#o.db.transaction(async (tx) => {
        await store.enqueue(
          tx,
          ids.map((messageId) => ({
            messageId,
            organizationId: job.organizationId,
            act: false,
            jobId: job.id,
          })),
        );
        await job.progress(tx, queued + ids.length);
        await this.#o.jobs.send(ANALYZE_QUEUE, {}, { tx, singletonKey: 'analyze' });
      });
      queued += ids.length;
      after = ids.at(-1)!;
    }
    // The worker removes each queue row as it stores the analysis: wait until this job's are gone.
    for (let left = await store.queuedForJob(this.#o.db, job.id); left > 0; ) {
      if (job.cancelRequested()) return { queued, cancelled: true };
      await new Promise((r) => setTimeout(r, 200));
      left = await store.queuedForJob(this.#o.db, job.id);
    }
    return { analysed: queued };
  }
}

function verdictOf(change: MailChange): Verdict | null {
  const isJunk = (f: { name: string; specialUse: string | null }) =>
    f.specialUse === '\\Junk' || f.name.toLowerCase() === 'junk';
  if (change.kind === 'moved') {
    if (isJunk(change.to) && !isJunk(change.from)) return 'spam';
    if (isJunk(change.from) && !isJunk(change.to) && change.to.specialUse !== '\\Trash') return 'ham';
    return null;
  }
  if (change.mode === 'remove') return null;
  const flags = change.flags.map((f) => f.toLowerCase());
  if (JUNK_KEYWORDS.some((k) => flags.includes(k.toLowerCase()))) return 'spam';
  if (NOT_JUNK_KEYWORDS.some((k) => flags.includes(k.toLowerCase()))) return 'ham';
  return null;
}

function scopeOf(scope: ReanalyzeInput['scope']): AnalysisScope {
  return {
    mailboxId: scope.mailbox_id,
    folderId: scope.folder_id,
    accountId: scope.account_id,
    since: scope.since ? new Date(scope.since) : undefined,
    until: scope.until ? new Date(scope.until) : undefined,
  };
}
