// The runner of a campaign: a tracked job (one worker holds its lease; another takes it over when that
// worker dies) that starts the campaign at its time, then hands its recipients to the sms module's queue
// a chunk per transaction. Each chunk's messages, the recipients marked queued, the day's count and the
// job's progress commit together, so after a crash no recipient is handed over twice and none is left
// out. Times come from the shared clock: outside the send window nothing is handed over (and what was
// queued but not sent is withdrawn), and past the daily limit the runner waits for the next local day.
import type { Template } from 'liquidjs';
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.ts';
import type { Db } from '../../core/db.ts';
import { newId } from '../../core/ids.ts';
import type { RunningJob } from '../jobs/service.ts';
import type { SmsSendInput, SmsService } from '../sms/service.ts';
import type { CampaignsService } from './campaigns.ts';
import { compile, render, renderError, variablesOf } from './liquid.ts';
import * as store from './store.ts';
import type { CampaignRow } from './tables.ts';
import { closing, isOpen, localDay, nextOpening, type SendWindow } from './window.ts';

export interface RunnerOptions {
  db: Db;
  clock: Clock;
  log: Logger;
  sms: SmsService;
  campaigns: CampaignsService;
  organizationName: (organizationId: string) => Promise<string>;
  /** Recipients handed over per transaction (at most sendBatch's 1,000). */
  chunk: number;
  /** Messages of a campaign queued and not yet sent, at most: the queue is fed as it drains. */
  inFlight: number;
  /** How often a waiting runner looks at the database again without being woken. */
  pollMs: number;
}

type Input = { campaign_id: string };

/** The shortest wait that an event ends (see #waitUntil). */
const MIN_WAIT_MS = 50;

/** How often a runner waiting only on queued messages looks for ones cancelled without an event. */
const RECONCILE_EVERY_MS = 10_000;

/** Why a wait ended early: something about the campaign changed. */
class Signals {
  readonly #waiters = new Map<string, Set<() => void>>();

  wait(id: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const set = this.#waiters.get(id) ?? new Set();
      this.#waiters.set(id, set);
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (!set.size) this.#waiters.delete(id);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
    });
  }

  wake(id: string): void {
    for (const done of [...(this.#waiters.get(id) ?? [])]) done();
  }
}

export class CampaignRunner {
  readonly #o: RunnerOptions;
  readonly #signals = new Signals();

  constructor(options: RunnerOptions) {
    this.#o = options;
  }

  /** Campaigns whose runner is in this process. */
  readonly #running = new Set<string>();

  async run(job: RunningJob<Input>): Promise<Record<string, unknown>> {
    const id = job.input.campaign_id;
    this.#running.add(id);
    try {
      return await this.#drive(job);
    } finally {
      this.#running.delete(id);
      this.#changes.delete(id);
    }
  }

  async #drive(job: RunningJob<Input>): Promise<Record<string, unknown>> {
    const { organizationId } = job;
    const id = job.input.campaign_id;
    const compiled = new Map<string, Template[]>();
    const orgName = await this.#o.organizationName(organizationId);
    let handedOver = 0;
    // What a pause or a closing window withdrew before this runner (or its crashed predecessor) began.
    await this.#o.campaigns.reconcile(organizationId, id);
    let reconciledAt = Date.now();
    for (;;) {
      // Stopping this process, or a cancelled job: another runner goes on (the supervisor makes one).
      if (job.cancelRequested()) return { campaign_id: id, handed_over: handedOver, stopped: true };
      const row = await this.#o.campaigns.current(organizationId, id);
      if (!row || row.jobId !== job.id || !['scheduled', 'active'].includes(row.status))
        return { campaign_id: id, handed_over: handedOver, status: row?.status ?? 'deleted' };
      const now = this.#o.clock.now();
      if (row.status === 'scheduled') {
        if (row.startAt && row.startAt > now) {
          await this.#waitUntil(id, row.startAt);
          continue;
        }
        // Opt-outs are read before the snapshot's transaction; one added between is refused at hand-over.
        const optedOut = await this.#o.campaigns.optedOut(organizationId);
        await this.#step(job, row, async (tx, locked) => {
          if (locked.status === 'scheduled') await this.#o.campaigns.activate(tx, locked, optedOut);
        });
        continue;
      }
      const window = windowOf(row);
      if (!isOpen(now, window)) {
        await this.#withdraw(job, row);
        const opens = nextOpening(now, window);
        await this.#waitUntil(id, opens);
        continue;
      }
      const day = localDay(now, row.timeZone);
      const usedToday = row.day === day.date ? row.dayCount : 0;
      const allowed = row.dailyLimit === null ? Number.POSITIVE_INFINITY : row.dailyLimit - usedToday;
      const { pending, queued } = await store.unfinishedRecipients(this.#o.db, id, this.#o.inFlight);
      if (pending === 0 && queued === 0) {
        await this.#step(job, row, async (tx, locked) => {
          const left = await store.unfinishedRecipients(tx, id, 1);
          if (locked.status === 'active' && left.pending === 0 && left.queued === 0)
            await this.#o.campaigns.complete(tx, locked);
        });
        continue;
      }
      if (pending === 0 && Date.now() - reconciledAt > RECONCILE_EVERY_MS) {
        // Waiting only on queued messages: one cancelled by other hands without an event is released.
        reconciledAt = Date.now();
        if (await this.#o.campaigns.reconcile(organizationId, id)) continue;
      }
      // Fed in whole chunks (half of one at least) as the queue drains, not a few messages per event.
      const room = this.#o.inFlight - queued;
      if (pending === 0 || allowed <= 0 || room < Math.min(this.#o.chunk, this.#o.inFlight) / 2) {
        // Waiting for sends (events wake it), the next local day, or the window to close.
        const until = allowed <= 0 ? day.ends : closing(now, window);
        await this.#waitUntil(id, until);
        continue;
      }
      const size = Math.min(this.#o.chunk, allowed, room);
      handedOver += await this.#handOver(job, row, size, day.date, now, compiled, orgName);
    }
  }

  /** One step in a transaction that holds the campaign's row lock and carries the job's progress. */
  async #step(
    job: RunningJob<Input>,
    row: CampaignRow,
    work: (tx: Db, locked: CampaignRow) => Promise<unknown>,
  ): Promise<number> {
    return this.#o.db.transaction(async (tx) => {
      const locked = await this.#o.campaigns.lock(tx, row.organizationId, row.id);
      if (!locked || locked.jobId !== job.id) return 0;
      const done = await work(tx, locked);
      const n = typeof done === 'number' ? done : 0;
      await job.progress(tx, n);
      return n;
    });
  }

  /** The next `size` pending recipients, rendered and handed to the sms queue; how many went. */
  async #handOver(
    job: RunningJob<Input>,
    row: CampaignRow,
    size: number,
    day: string,
    now: Date,
    compiled: Map<string, Template[]>,
    orgName: string,
  ): Promise<number> {
    const body = row.body ?? '';
    let template = compiled.get(body);
    if (!template) {
      template = compile('body', body);
      compiled.set(body, template);
    }
    const organization = { id: row.organizationId, name: orgName };
    return this.#step(job, row, async (tx, locked) => {
      if (locked.status !== 'active') return 0;
      const due = await store.nextPending(tx, row.id, size);
      if (!due.length) return 0;
      const outcomes: store.RecipientOutcome[] = [];
      const inputs: SmsSendInput[] = [];
      const sent: store.DueRecipient[] = [];
      for (const r of due) {
        let text: string;
        try {
          text = render(
            template,
            variablesOf(
              { id: r.contact_id, phone: r.phone, name: r.name, tags: r.tags ?? [], fields: r.fields ?? {} },
              organization,
            ),
          );
        } catch (err) {
          outcomes.push({
            id: r.id,
            status: 'failed',
            message_id: null,
            error_code: 'render_failed',
            error: renderError(err),
          });
          continue;
        }
        if (!text.trim()) {
          outcomes.push({
            id: r.id,
            status: 'failed',
            message_id: null,
            error_code: 'empty_body',
            error: 'the template rendered no text',
          });
          continue;
        }
        sent.push(r);
        inputs.push({
          to: r.phone,
          body: text,
          ...(locked.sender && { sender: locked.sender }),
          ...(locked.providerAccountId && { providerAccountId: locked.providerAccountId }),
          ...(locked.routeId && { routeId: locked.routeId }),
          tags: locked.tags,
          campaignId: locked.id,
          // The sms module keeps one message per campaign recipient id: a recipient handed back (a pause,
          // a closing window) goes again under a new one. The first hand-over uses the recipient's id.
          campaignRecipientId: r.attempts === 0 ? r.id : newId(),
        });
      }
      const result = inputs.length
        ? await this.#o.sms.sendBatch(row.organizationId, inputs, { tx })
        : { accepted: [], rejected: [] };
      const rejected = new Map(result.rejected.map((x) => [x.index, x]));
      const accepted = new Map(result.accepted.map((m) => [m.campaign_recipient_id ?? '', m]));
      for (const [i, r] of sent.entries()) {
        const refusal = rejected.get(i);
        const message = refusal ? undefined : accepted.get(inputs[i].campaignRecipientId!);
        if (message)
          outcomes.push({
            id: r.id,
            status: 'queued',
            message_id: message.id,
            error_code: null,
            error: null,
          });
        else
          outcomes.push({
            id: r.id,
            status: refusal?.code === 'opted_out' ? 'skipped' : 'failed',
            message_id: null,
            error_code: refusal?.code ?? 'not_queued',
            error: refusal?.detail ?? 'the sms queue did not take the message',
          });
      }
      await store.recordHandOver(tx, outcomes, now);
      const queued = outcomes.filter((o) => o.status === 'queued').length;
      if (queued) await store.countForDay(tx, row.id, day, queued);
      return due.length;
    });
  }

  /** Outside the window: the queued messages not yet sent go back to pending, to be sent in the next one. */
  async #withdraw(job: RunningJob<Input>, row: CampaignRow): Promise<void> {
    if ((await store.queuedCount(this.#o.db, row.id)) === 0) return;
    await this.#step(job, row, async (tx, locked) => {
      if (locked.status === 'active') await this.#o.campaigns.withdraw(tx, locked.organizationId, locked.id);
    });
    await this.#o.campaigns.reconcile(row.organizationId, row.id);
  }

  /**
   * Waits until the clock reaches `until` (never, for null) or the campaign changes (a move, its
   * messages' events), at most the poll interval: then the runner looks at the database again.
   */
  async #waitUntil(id: string, until: Date | null): Promise<void> {
    const began = Date.now();
    const deadline = began + this.#o.pollMs;
    const seen = this.#changes.get(id) ?? 0;
    for (;;) {
      const left = until ? until.getTime() - this.#o.clock.now().getTime() : Number.POSITIVE_INFINITY;
      const remaining = deadline - Date.now();
      if (left <= 0 || remaining <= 0) return;
      // The clock may be moved by hand (tests): it is read again at least every 100 ms.
      await this.#signals.wait(id, Math.min(left, remaining, 100));
      if ((this.#changes.get(id) ?? 0) !== seen) {
        // A busy campaign's messages bring events by the thousand a second: it looks again at most
        // every MIN_WAIT_MS, not at each.
        const early = began + MIN_WAIT_MS - Date.now();
        if (early > 0) await new Promise((resolve) => setTimeout(resolve, early));
        return;
      }
    }
  }

  /** Changes seen per campaign, so that a wait notices one that came between two of its looks. */
  readonly #changes = new Map<string, number>();

  /** Something about the campaign changed: a runner waiting on it here looks again now. */
  changed(campaignId: string): void {
    if (!this.#running.has(campaignId)) return;
    this.#changes.set(campaignId, (this.#changes.get(campaignId) ?? 0) + 1);
    this.#signals.wake(campaignId);
  }
}

export function windowOf(row: CampaignRow): SendWindow {
  return { timeZone: row.timeZone, days: row.windowDays, start: row.windowStart, end: row.windowEnd };
}
