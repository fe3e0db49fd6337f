// The SMS queue's worker loop, one per worker process. It claims due messages in batches (SKIP LOCKED:
// any number of workers share the queue, each message is taken by one), holds each claim under a lease it
// renews, and works them in steps:
//   quiet     a message due in its recipient's quiet hours waits until they end (HELP replies do not)
//   gateway   the account's client (one per account per process), or a failure to open it
//   throttle  per account: messages a second (the shared rate limiter), a daily limit with random spacing
//             (a pacing row every worker shares), a gateway's Retry-After
//   begin     right before their submit, a batch is marked begun in one statement, and a number that
//             opted out meanwhile has its message cancelled instead
//   submit    up to the gateway's window of submits in flight per account
//   record    outcomes are written in batches (one statement), with their events
// A failed submit is retried on the retry schedule (a gateway's Retry-After first), then goes to the
// route's failover account, then fails.
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.ts';
import type { Db } from '../../core/db.ts';
import type { Limit, RateLimiter } from '../../core/ratelimit.ts';
import { AppError } from '../../core/errors.ts';
import { type SmsProvider, SmsSendError } from '../../providers/sms/types.ts';
import type { EventInput, EventsService } from '../events/service.ts';
import { IDEMPOTENT_SMS_PROVIDERS } from '../../providers/index.ts';
import type { SmsGateways } from './gateways.ts';
import type { SmsService, ReportTally } from './service.ts';
import * as store from './store.ts';
import type { SmsThrottleRow } from './tables.ts';
import { cancelledEvent, statusEvent } from './views.ts';
import { nextLocalMidnight } from '../../core/zoned-time.ts';
import { localDay, quietUntil, zoneOf } from './zones.ts';

export interface SmsCounters {
  record(tally: Partial<ReportTally>): void;
}

export interface DispatcherOptions {
  db: Db;
  clock: Clock;
  gateways: SmsGateways;
  sms: SmsService;
  events: EventsService;
  limiter: RateLimiter;
  counters: SmsCounters;
  log: Logger;
  /** A claim lasts this long unless renewed (renewed every third of it while held). */
  leaseMs: number;
  /** Delays before each retry on the same account. */
  retryScheduleMs: number[];
  /** Longest idle wait between looks at the queue. */
  pollMs: number;
  /** Messages claimed at once. */
  claimBatch: number;
  /** Messages this worker holds at most (claimed, waiting in a lane or in flight). */
  maxHeld: number;
  /** No other worker can exist (the embedded database): claims left from before are taken back at once. */
  soleWorker: boolean;
  random?: () => number;
}

interface Pending {
  claim: store.ClaimedSms;
  outcome: store.Outcome;
}

/** One gateway account's work in this process. */
interface Lane {
  accountId: string;
  organizationId: string;
  provider: SmsProvider | null;
  /** Claimed, not begun. */
  queue: store.ClaimedSms[];
  /** Begun, waiting for a slot in the window. */
  ready: store.ClaimedSms[];
  inFlight: number;
  /** Begin statements running for this lane, and the messages they hold. */
  starting: number;
  beginning: number;
  /** A throttle check is running for this lane. */
  waiting: boolean;
  /** Real time (ms) before which nothing is started: a rate limit or Retry-After. */
  pausedUntil: number;
  timer: NodeJS.Timeout | null;
}

const FLUSH_SIZE = 500;
const FLUSH_MS = 10;
const GATHER_MS = 5;
const RELEASE_EVERY_MS = 5_000;
const ORPHANS_EVERY_MS = 1_000;
const BIND_EVERY_MS = 60_000;
/** Begin statements one lane may have running at once, and windows it may have begun beyond its own. */
const BEGINS_AT_ONCE = 2;
const BEGUN_AHEAD = 2;
/** A lane waits in memory for a pause this short; a longer one sends its messages back to the queue. */
const HOLD_PAUSE_MS = 2_000;

export class SmsDispatcher {
  readonly #o: DispatcherOptions;
  readonly #random: () => number;
  readonly #lanes = new Map<string, Lane>();
  /** Claims this worker holds (claimed, not yet recorded), with their attempt number. */
  readonly #held = new Map<string, number>();
  #running = false;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #woken = false;
  #wakeSoon: NodeJS.Timeout | null = null;
  #renewer: NodeJS.Timeout | null = null;
  #pending: Pending[] = [];
  #flushTimer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> = Promise.resolve();
  /** Outcomes handed to #result, and written, since start: flush() waits for a count, not for quiet. */
  #queued = 0;
  #written = 0;
  #flushWaiters: { target: number; resolve: () => void }[] = [];
  #lastRelease = 0;
  #lastOrphans = 0;
  #lastBind = 0;
  #inFlight = 0;

  constructor(options: DispatcherOptions) {
    this.#o = options;
    this.#random = options.random ?? Math.random;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#renewer = setInterval(() => void this.#renew(), Math.max(100, this.#o.leaseMs / 3));
    this.#loop = this.#run().catch((err) => this.#o.log.error({ err }, 'SMS dispatcher stopped'));
  }

  /** Look at the queue soon (messages were queued); wake-ups close together become one look. */
  wake(): void {
    this.#wakeSoon ??= setTimeout(() => {
      this.#wakeSoon = null;
      this.#woken = true;
      this.#wake?.();
    }, GATHER_MS);
  }

  /**
   * Resolves once the outcomes waiting now are written (receipts for them may be about to arrive); not
   * those that come after, which would keep a busy queue's receipts waiting.
   */
  flush(): Promise<void> {
    if (this.#written >= this.#queued || !this.#running) return Promise.resolve();
    const target = this.#queued;
    const done = new Promise<void>((resolve) => this.#flushWaiters.push({ target, resolve }));
    void this.#flush();
    return done;
  }

  /** Stops claiming, gives back what has not begun, lets submits in flight finish and records them. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    if (this.#wakeSoon) clearTimeout(this.#wakeSoon);
    this.#wake?.();
    await this.#loop;
    for (const lane of this.#lanes.values()) {
      if (lane.timer) clearTimeout(lane.timer);
      lane.timer = null;
      // What was begun but not submitted goes back too (a postponed message is no longer begun).
      this.#postpone([...lane.ready.splice(0), ...lane.queue.splice(0)], this.#o.clock.now());
    }
    while (this.#inFlight > 0 || [...this.#lanes.values()].some((l) => l.starting > 0)) await sleep(10);
    await this.#flush();
    if (this.#renewer) clearInterval(this.#renewer);
  }

  async #run(): Promise<void> {
    while (this.#running) {
      const room = this.#o.maxHeld - this.#held.size;
      if (room < Math.min(this.#o.claimBatch, this.#o.maxHeld) / 4) {
        await this.#sleep(this.#o.pollMs);
        continue;
      }
      this.#woken = false;
      let claimed: store.ClaimedSms[];
      try {
        await this.#housekeeping();
        const now = this.#o.clock.now();
        claimed = await store.claimDue(
          this.#o.db,
          now,
          Math.min(room, this.#o.claimBatch),
          new Date(now.getTime() + this.#o.leaseMs),
        );
      } catch (err) {
        this.#o.log.error({ err }, 'could not claim due SMS');
        await this.#sleep(1_000);
        continue;
      }
      if (!claimed.length) {
        if (!this.#woken) await this.#sleep(await this.#idleFor());
        continue;
      }
      for (const c of claimed) this.#held.set(c.id, c.attempts);
      try {
        await this.#place(claimed);
      } catch (err) {
        // Claims not placed expire and are taken again.
        this.#o.log.error({ err }, 'could not place claimed SMS');
      }
    }
  }

  async #idleFor(): Promise<number> {
    const next = await store.nextDueAt(this.#o.db).catch(() => null);
    if (!next) return this.#o.pollMs;
    return Math.max(20, Math.min(this.#o.pollMs, next.getTime() - this.#o.clock.now().getTime()));
  }

  async #housekeeping(): Promise<void> {
    const now = Date.now();
    if (now - this.#lastRelease >= Math.min(RELEASE_EVERY_MS, this.#o.leaseMs / 2)) {
      const first = this.#lastRelease === 0;
      this.#lastRelease = now;
      const { requeued, failed } = await store.releaseExpired(
        this.#o.db,
        this.#o.clock.now(),
        [...this.#held.keys()],
        IDEMPOTENT_SMS_PROVIDERS,
        first && this.#o.soleWorker,
      );
      if (requeued)
        this.#o.log.warn({ requeued }, 'requeued SMS whose worker stopped before submitting them');
      if (failed.length) {
        this.#o.log.warn(
          { failed: failed.length },
          'failed SMS whose worker stopped mid-submit (outcome unknown)',
        );
        await this.#o.db.transaction((tx) =>
          this.#o.events.emitMany(
            tx as unknown as Db,
            failed.flatMap((m) => statusEvent(m, 'failed') ?? []),
          ),
        );
        this.#o.counters.record({ failed: tally(failed.map((m) => m.provider ?? 'unknown')) });
      }
    }
    if (now - this.#lastOrphans >= ORPHANS_EVERY_MS) {
      this.#lastOrphans = now;
      const applied = await this.#o.sms.reconcileOrphans();
      if (applied) this.#o.counters.record(applied);
    }
    if (now - this.#lastBind >= BIND_EVERY_MS) {
      this.#lastBind = now;
      void this.bindSmpp();
    }
  }

  /**
   * Keeps a bind open for every SMPP account in this process (what is sent to their numbers arrives over
   * it), made anew when its credentials changed, and closes the binds of accounts that are gone.
   */
  async bindSmpp(): Promise<void> {
    try {
      const accounts = await this.#o.sms.smppAccounts();
      for (const account of accounts) {
        await this.#o.gateways
          .get(account.organizationId, account.id)
          .catch((err) => this.#o.log.warn({ err, account: account.id }, 'could not bind SMPP account'));
      }
      this.#o.gateways.closeOthers('smpp', new Set(accounts.map((a) => a.id)));
    } catch (err) {
      this.#o.log.warn({ err }, 'could not list SMPP accounts');
    }
  }

  /** The claimed messages' steps up to their lanes: quiet hours, the account's client, its limits. */
  async #place(claimed: store.ClaimedSms[]): Promise<void> {
    const now = this.#o.clock.now();
    const byAccount = new Map<string, store.ClaimedSms[]>();
    for (const c of claimed) {
      if (c.kind === 'standard') {
        const settings = await this.#o.sms.settingsFor(c.organizationId);
        if (settings.quietHours) {
          const zone = zoneOf(c.toNumber, c.country) ?? settings.timeZone;
          const until = quietUntil(now, zone, settings.quietHours.start, settings.quietHours.end);
          if (until) {
            this.#postpone([c], until);
            continue;
          }
        }
      }
      const list = byAccount.get(c.providerAccountId) ?? [];
      list.push(c);
      byAccount.set(c.providerAccountId, list);
    }
    for (const [accountId, messages] of byAccount) {
      const organizationId = messages[0].organizationId;
      let provider: SmsProvider;
      try {
        provider = await this.#o.gateways.get(organizationId, accountId);
      } catch (err) {
        // The account is gone or not an SMS gateway (for good), or could not be opened (for now).
        const permanent = err instanceof AppError && err.status < 500;
        const reason = new SmsSendError(`the gateway account could not be used: ${(err as Error).message}`, {
          retryable: !permanent,
          code: permanent ? 'account_unavailable' : 'gateway_unavailable',
        });
        for (const m of messages) this.#afterFailure(m, reason, null, permanent);
        continue;
      }
      const lane = this.#lane(accountId, organizationId);
      lane.provider = provider;
      for (const m of messages) {
        if (m.parts > provider.capabilities.maxParts) {
          const reason = new SmsSendError(
            `${m.parts} parts; the gateway takes at most ${provider.capabilities.maxParts}`,
            { retryable: false, code: 'too_many_parts' },
          );
          this.#afterFailure(m, reason, provider, true);
        } else lane.queue.push(m);
      }
      void this.#pump(lane);
    }
  }

  #lane(accountId: string, organizationId: string): Lane {
    let lane = this.#lanes.get(accountId);
    if (!lane) {
      lane = {
        accountId,
        organizationId,
        provider: null,
        queue: [],
        ready: [],
        inFlight: 0,
        starting: 0,
        beginning: 0,
        waiting: false,
        pausedUntil: 0,
        timer: null,
      };
      this.#lanes.set(accountId, lane);
    }
    return lane;
  }

  /**
   * Submits begun messages as the gateway's window allows, and begins the next batches (one statement
   * each, two at a time) while those are in flight: at most two windows are begun ahead, so a killed
   * worker leaves at most three windows whose outcome is unknown.
   */
  async #pump(lane: Lane): Promise<void> {
    const provider = lane.provider;
    if (!provider || !this.#running) return;
    const window = Math.max(1, provider.capabilities.window);
    const wait = lane.pausedUntil - Date.now();
    if (wait > 0) {
      lane.timer ??= setTimeout(() => {
        lane.timer = null;
        void this.#pump(lane);
      }, wait);
      return;
    }
    while (lane.inFlight < window && lane.ready.length) this.#start(lane, provider, lane.ready.shift()!);
    if (lane.starting >= BEGINS_AT_ONCE || lane.waiting || !lane.queue.length) return;
    const room = (1 + BEGUN_AHEAD) * window - lane.inFlight - lane.ready.length - lane.beginning;
    if (room <= 0) return;
    lane.starting++;
    let batch: store.ClaimedSms[] = [];
    try {
      // One throttle check at a time: its answer decides how many the batch takes.
      lane.waiting = true;
      const n = await this.#allowance(lane, Math.min(room, lane.queue.length)).finally(() => {
        lane.waiting = false;
      });
      if (n === 0) return;
      batch = lane.queue.splice(0, n);
      lane.beginning += batch.length;
      // The next batch may begin while this one's statement waits for the database.
      queueMicrotask(() => void this.#pump(lane));
      const events: EventInput[] = [];
      const { ready, optedOut } = await this.#o.db.transaction(async (tx) => {
        const begun = await store.beginSubmits(
          tx as unknown as Db,
          batch.map((m) => ({ id: m.id, attempts: m.attempts, provider: provider.name })),
          this.#o.clock.now(),
        );
        for (const m of batch) if (begun.optedOut.has(m.id)) events.push(cancelledEvent(m, 'opted_out'));
        if (events.length) await this.#o.events.emitMany(tx as unknown as Db, events);
        return begun;
      });
      for (const m of batch) {
        if (ready.has(m.id)) {
          m.provider = provider.name;
          lane.ready.push(m);
          continue;
        }
        // Cancelled (opted out), or no longer this worker's claim.
        if (!optedOut.has(m.id)) this.#o.log.debug({ sms: m.id }, 'an SMS was cancelled before its submit');
        this.#held.delete(m.id);
      }
    } catch (err) {
      this.#o.log.error({ err, account: lane.accountId }, 'could not begin SMS submits');
      lane.queue.unshift(...batch);
      lane.pausedUntil = Date.now() + 1_000;
    } finally {
      lane.beginning -= batch.length;
      lane.starting--;
      // Submit what was begun; begin more, or wait out a pause (the next call sets its timer).
      queueMicrotask(() => void this.#pump(lane));
    }
  }

  #start(lane: Lane, provider: SmsProvider, m: store.ClaimedSms): void {
    lane.inFlight++;
    this.#inFlight++;
    void this.#submit(lane, provider, m).finally(() => {
      lane.inFlight--;
      this.#inFlight--;
      void this.#pump(lane);
    });
  }

  /**
   * How many of `wanted` messages the account's throttle lets start now. When it lets none, the lane
   * waits in memory for a short pause, or its messages go back to the queue until the pause ends
   * (spread over the account's spacing, so they come back one slot each).
   */
  async #allowance(lane: Lane, wanted: number): Promise<number> {
    const throttle = await this.#o.sms.throttleFor(lane.accountId);
    if (!throttle) return wanted;
    let allowed = wanted;
    const paced = throttle.dailyLimit !== null || throttle.maxIntervalMs > 0;
    if (paced) allowed = 1;
    if (throttle.perSecond) {
      const limit = perSecondLimit(throttle.perSecond);
      let granted = 0;
      while (granted < allowed) {
        const hit = await this.#o.limiter.hit(limit, lane.accountId);
        if (!hit.allowed) {
          this.#pause(lane, hit.retryAfterSeconds * 1000);
          break;
        }
        granted++;
      }
      allowed = granted;
    }
    if (!paced || allowed === 0) return allowed;
    const now = this.#o.clock.now();
    const settings = await this.#o.sms.settingsFor(lane.organizationId);
    const spacing =
      throttle.minIntervalMs + this.#random() * (throttle.maxIntervalMs - throttle.minIntervalMs);
    const slot = await store.takePacingSlot(this.#o.db, {
      accountId: lane.accountId,
      organizationId: lane.organizationId,
      now,
      day: localDay(now, settings.timeZone),
      dailyLimit: throttle.dailyLimit,
      nextAt: new Date(now.getTime() + spacing),
    });
    if (slot.ok) return 1;
    const until = slot.dayFull ? nextLocalMidnight(now, settings.timeZone) : slot.nextAt;
    this.#pause(lane, until.getTime() - now.getTime(), { until, throttle });
    return 0;
  }

  /**
   * Nothing starts on the lane for `ms`; for long pauses its messages return to the queue until `until`
   * (by default `ms` from now), spread over the throttle's spacing.
   */
  #pause(lane: Lane, ms: number, long: { until?: Date; throttle?: SmsThrottleRow } = {}): void {
    // In memory for a short pause (a long one is counted on the clock, in the queue).
    lane.pausedUntil = Math.max(lane.pausedUntil, Date.now() + Math.min(ms, HOLD_PAUSE_MS));
    if (ms <= HOLD_PAUSE_MS) return;
    const throttle = long.throttle;
    const start = long.until?.getTime() ?? this.#o.clock.now().getTime() + ms;
    const step = throttle ? (throttle.minIntervalMs + throttle.maxIntervalMs) / 2 : 0;
    const waiting = [...lane.ready.splice(0), ...lane.queue.splice(0)];
    waiting.forEach((m, i) => {
      this.#postpone([m], new Date(start + i * step));
    });
  }

  async #submit(lane: Lane, provider: SmsProvider, m: store.ClaimedSms): Promise<void> {
    try {
      const result = await provider.send({
        id: m.id,
        to: m.toNumber,
        ...(m.sender ? { from: m.sender } : {}),
        body: m.body,
        encoding: m.encoding,
      });
      this.#result(m, {
        id: m.id,
        attempts: m.attempts,
        outcome: 'accepted',
        status: result.status,
        provider: provider.name,
        providerId: result.providerId,
        price: result.price ?? null,
      });
    } catch (err) {
      const reason =
        err instanceof SmsSendError
          ? err
          : new SmsSendError(`the gateway client failed: ${(err as Error)?.message ?? String(err)}`, {
              retryable: true,
              code: 'client_error',
            });
      if (reason.options.retryAfterMs) this.#pause(lane, reason.options.retryAfterMs);
      this.#afterFailure(m, reason, provider, false);
    }
  }

  /** A failed submit: retried on schedule, then failed over to the route's second account, then failed. */
  #afterFailure(
    m: store.ClaimedSms,
    reason: SmsSendError,
    provider: SmsProvider | null,
    permanent: boolean,
  ): void {
    const now = this.#o.clock.now();
    const base = {
      id: m.id,
      attempts: m.attempts,
      provider: provider?.name ?? null,
      errorCode: reason.options.code ?? null,
      errorMessage: reason.message.slice(0, 1_000),
    };
    // A submit the gateway may have taken is not sent again (nor elsewhere) unless the gateway dedupes
    // by our id: nothing is sent twice.
    if (reason.options.maybeTaken && !provider?.capabilities.idempotentSubmit) {
      this.#result(m, { ...base, errorCode: 'unknown_outcome', outcome: 'failed', status: 'failed' });
      return;
    }
    const schedule = this.#o.retryScheduleMs;
    if (reason.options.retryable && !permanent && m.attempts <= schedule.length) {
      const delay = reason.options.retryAfterMs ?? schedule[m.attempts - 1];
      this.#result(m, {
        ...base,
        outcome: 'retry',
        status: 'queued',
        nextAttemptAt: new Date(now.getTime() + delay),
      });
      return;
    }
    if ((reason.options.retryable || permanent) && m.failoverAccountId && !m.onFailover) {
      this.#result(m, {
        ...base,
        outcome: 'failover',
        status: 'queued',
        nextAttemptAt: now,
        account: m.failoverAccountId,
      });
      return;
    }
    this.#result(m, { ...base, outcome: 'failed', status: 'failed' });
  }

  /** Back to the queue until `at`, the attempt uncounted. */
  #postpone(messages: store.ClaimedSms[], at: Date): void {
    for (const m of messages)
      this.#result(m, {
        id: m.id,
        attempts: m.attempts,
        outcome: 'postpone',
        status: 'queued',
        nextAttemptAt: at,
      });
  }

  #result(claim: store.ClaimedSms, outcome: store.Outcome): void {
    this.#pending.push({ claim, outcome });
    this.#queued++;
    if (this.#pending.length >= FLUSH_SIZE) void this.#flush();
    else this.#flushTimer ??= setTimeout(() => void this.#flush(), FLUSH_MS);
  }

  /** Writes waiting outcomes a batch at a time, with their events; a failed write is retried. */
  #flush(): Promise<void> {
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    this.#flushing = this.#flushing.then(async () => {
      while (this.#pending.length) {
        const batch = this.#pending.splice(0, FLUSH_SIZE);
        try {
          const written = await this.#o.db.transaction(async (tx) => {
            const ids = await store.recordOutcomes(
              tx as unknown as Db,
              batch.map((b) => b.outcome),
            );
            const events = batch.flatMap((b) => {
              if (!ids.has(b.claim.id)) return [];
              const after = withOutcome(b.claim, b.outcome);
              return statusEvent(after, b.outcome.status) ?? [];
            });
            if (events.length) await this.#o.events.emitMany(tx as unknown as Db, events);
            return ids;
          });
          for (const b of batch) this.#held.delete(b.claim.id);
          this.#written += batch.length;
          const count = this.#written;
          for (const w of this.#flushWaiters) if (w.target <= count) w.resolve();
          this.#flushWaiters = this.#flushWaiters.filter((w) => w.target > count);
          // Room to hold more: the loop may be waiting for it.
          if (this.#held.size < this.#o.maxHeld / 2) this.#wake?.();
          const provider = (b: Pending) => b.outcome.provider ?? 'unknown';
          const done = batch.filter((b) => written.has(b.claim.id));
          this.#o.counters.record({
            sent: tally(done.filter((b) => b.outcome.status === 'sent').map(provider)),
            failed: tally(done.filter((b) => b.outcome.status === 'failed').map(provider)),
          });
        } catch (err) {
          // Unwritten outcomes are not lost messages: their claims expire and they are taken again.
          this.#o.log.error({ err, outcomes: batch.length }, 'could not record SMS outcomes');
          if (!this.#running) {
            for (const w of this.#flushWaiters.splice(0)) w.resolve();
            return;
          }
          this.#pending.unshift(...batch);
          await sleep(1_000);
        }
      }
    });
    return this.#flushing;
  }

  async #renew(): Promise<void> {
    if (!this.#held.size) return;
    const claims = [...this.#held].map(([id, attempts]) => ({ id, attempts }));
    const until = new Date(this.#o.clock.now().getTime() + this.#o.leaseMs);
    await store
      .extendClaims(this.#o.db, claims, until)
      .catch((err) => this.#o.log.error({ err }, 'could not renew SMS claims'));
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = null;
        done();
      };
    });
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Counts by provider name. */
function tally(providers: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const p of providers) counts.set(p, (counts.get(p) ?? 0) + 1);
  return counts;
}

/** The shared limiter counts fixed windows: N a second, or one per window for rates below one. */
function perSecondLimit(perSecond: number): Limit {
  return perSecond >= 1
    ? { name: 'sms:account', limit: Math.floor(perSecond), windowSeconds: 1 }
    : { name: 'sms:account', limit: 1, windowSeconds: Math.max(1, Math.round(1 / perSecond)) };
}

/** The claim as its outcome leaves it (for the outcome's event). */
function withOutcome(claim: store.ClaimedSms, o: store.Outcome): store.ClaimedSms {
  return {
    ...claim,
    status: o.status,
    provider: o.provider ?? claim.provider,
    providerId: o.providerId ?? claim.providerId,
    priceAmount: o.price?.amount ?? claim.priceAmount,
    priceCurrency: o.price?.currency ?? claim.priceCurrency,
    errorCode: o.errorCode ?? null,
    errorMessage: o.errorMessage ?? null,
  };
}
