// The delivery queue's worker loop. It claims due recipients in batches (SKIP LOCKED: any number of
// workers share the queue), groups them into one SMTP transaction per message and destination domain,
// sends through the transport (which pools connections per domain and applies per-domain limits), and
// writes results back in batches. Recipients on domains this installation hosts are delivered locally.
// When sending IPs are configured, each remote transaction first gets its local addresses from the IP
// pools (`sources`); when none has capacity left today it waits, untried, until one may have.
import type { Logger } from 'pino';
import type { BlobStore } from '../../core/blobs.ts';
import type { Db } from '../../core/db.ts';
import type { AttemptReport } from './outcomes.ts';
import * as store from './store.ts';
import type { AttemptResult, MessageSource, OutboundEnvelope } from './transport/types.ts';

export interface Sender {
  deliver(envelope: OutboundEnvelope): Promise<AttemptResult>;
}

export interface LocalDelivery extends Sender {
  /** Whether mail for this domain stays on this installation. */
  isLocal(domain: string): Promise<boolean>;
}

/** What a message's local addresses are chosen from: its organisation, domain and author. */
export interface SourceQuery {
  organizationId: string;
  /** The sending domain (the message's). */
  domainId: string | null;
  /** The From address, whose mailbox's pool comes first. */
  fromAddress: string | null;
  /** Recipients in the transaction: what it counts against daily caps. */
  recipients: number;
}

/** Local addresses granted for one transaction; handed back to `settle` after it. */
export interface SourceGrant {
  source: MessageSource;
}

/** No sending IP of the message may be used now: it waits, untried, until `until`. */
export interface SourceWait {
  wait: { until: Date; reason: string };
}

/** Chooses each remote transaction's local addresses (the IP pools module). */
export interface SourcePicker {
  /** null: no sending IPs are configured, and the system picks the address. */
  pick(query: SourceQuery): Promise<SourceGrant | SourceWait | null>;
  /** After the attempt: the address it left from (null: none, nothing was sent), so the rest goes back. */
  settle(grant: SourceGrant, used: string | null): void;
}

export interface DispatcherOptions {
  db: Db;
  blobs: BlobStore;
  remote: Sender;
  local: LocalDelivery;
  /** Local addresses for remote deliveries; absent: the system picks. */
  sources?: SourcePicker | null;
  record: (reports: AttemptReport[]) => Promise<void>;
  /** Due recipients the claim held because their sender is paused (their message.held events). */
  onHeld?: (held: store.HeldAtClaim[]) => Promise<void>;
  /** Transactions in flight at once (across all destinations). */
  concurrency: number;
  /**
   * How long a claim lasts without renewal. Claims of deliveries still in this worker are renewed every
   * third of it, so only a dead worker's claims expire.
   */
  lockMs: number;
  /** No other worker can exist (the embedded database): claims left from before are taken back at once. */
  soleWorker: boolean;
  log: Logger;
  /** Longest idle sleep between looks at the queue (another process may have queued mail). */
  pollMs?: number;
}

/** Results are written when this many are waiting, or after FLUSH_MS. */
const FLUSH_SIZE = 200;
const FLUSH_MS = 10;
const CLAIM_MAX = 500;
const RELEASE_CLAIMS_EVERY_MS = 5_000;
const GATHER_MS = 10;

interface Transaction {
  envelope: OutboundEnvelope;
  deliveries: store.ClaimedDelivery[];
}

export class DeliveryDispatcher {
  readonly #o: DispatcherOptions;
  #running = false;
  #loop: Promise<void> | null = null;
  #inFlight = 0;
  #wake: (() => void) | null = null;
  #woken = false;
  #pending: AttemptReport[] = [];
  #flushTimer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> = Promise.resolve();
  #lastClaimRelease = 0;
  /** Deliveries this worker holds (claimed, not yet reported), with their claim's attempt number. */
  readonly #held = new Map<string, number>();
  #renewer: NodeJS.Timeout | null = null;
  #wakeSoon: NodeJS.Timeout | null = null;
  /** The loop waits for a transaction to finish (every slot is taken). */
  #full = false;

  constructor(options: DispatcherOptions) {
    this.#o = options;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#renewer = setInterval(() => void this.#renewClaims(), Math.max(100, this.#o.lockMs / 3));
    this.#loop = this.#run().catch((err) => this.#o.log.error({ err }, 'delivery dispatcher stopped'));
  }

  /**
   * Look at the queue soon (mail was queued, or a held recipient released). Wake-ups within
   * GATHER_MS become one look, so mail trickling in is claimed, sent and recorded in batches.
   */
  wake(): void {
    this.#wakeSoon ??= setTimeout(() => {
      this.#wakeSoon = null;
      this.#woken = true;
      this.#wake?.();
    }, GATHER_MS);
  }

  /** Stops claiming, lets every transaction in flight finish, and writes its results. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    if (this.#wakeSoon) clearTimeout(this.#wakeSoon);
    this.#wakeSoon = null;
    this.#wake?.();
    await this.#loop;
    while (this.#inFlight > 0) await this.#sleep(20);
    await this.#flush();
    if (this.#renewer) clearInterval(this.#renewer);
  }

  async #renewClaims(): Promise<void> {
    if (!this.#held.size) return;
    const claims = [...this.#held].map(([id, attempts]) => ({ id, attempts }));
    await store
      .extendClaims(this.#o.db, claims, this.#o.lockMs)
      .catch((err) => this.#o.log.error({ err }, 'could not renew delivery claims'));
  }

  async #run(): Promise<void> {
    while (this.#running) {
      const free = this.#o.concurrency - this.#inFlight;
      if (free <= 0) {
        this.#full = true;
        await this.#sleep(this.#o.pollMs ?? 1_000);
        this.#full = false;
        continue;
      }
      this.#woken = false;
      let claimed: store.ClaimedDelivery[];
      try {
        await this.#releaseExpiredClaims();
        const due = await store.claimDue(this.#o.db, Math.min(free, CLAIM_MAX), this.#o.lockMs);
        claimed = due.claimed;
        for (const c of claimed) this.#held.set(c.id, c.attempts);
        // Recipients of paused senders were held by the claim: announced, and the queue looked at again.
        if (due.held.length) {
          this.#o
            .onHeld?.(due.held)
            .catch((err) => this.#o.log.error({ err }, 'could not announce held mail'));
          if (!claimed.length) continue;
        }
      } catch (err) {
        this.#o.log.error({ err }, 'could not claim due deliveries');
        await this.#sleep(1_000);
        continue;
      }
      if (!claimed.length) {
        if (!this.#woken) await this.#sleep(await this.#idleFor());
        continue;
      }
      const transactions = await this.#transactionsOf(claimed);
      for (const t of transactions) {
        this.#inFlight++;
        this.#send(t).finally(() => {
          this.#inFlight--;
          if (this.#full) this.#wake?.();
        });
      }
    }
  }

  /** Until the next scheduled or retried recipient is due, within the poll interval. */
  async #idleFor(): Promise<number> {
    const poll = this.#o.pollMs ?? 1_000;
    const next = await store.nextDueAt(this.#o.db).catch(() => null);
    if (!next) return poll;
    return Math.max(5, Math.min(poll, next.getTime() - Date.now()));
  }

  async #releaseExpiredClaims(): Promise<void> {
    const now = Date.now();
    const first = this.#lastClaimRelease === 0;
    if (now - this.#lastClaimRelease < Math.min(RELEASE_CLAIMS_EVERY_MS, this.#o.lockMs / 2)) return;
    this.#lastClaimRelease = now;
    const released = await store.releaseExpiredClaims(this.#o.db, first && this.#o.soleWorker);
    if (released) this.#o.log.warn({ released }, 'requeued deliveries whose worker stopped mid-attempt');
  }

  /** One transaction per message and destination domain, with the message's bytes. */
  async #transactionsOf(claimed: store.ClaimedDelivery[]): Promise<Transaction[]> {
    const blobs = await this.#o.blobs.getMany([
      ...new Map(claimed.map((c) => [c.blobId, { organizationId: c.organizationId, id: c.blobId }])).values(),
    ]);
    const groups = new Map<string, Transaction>();
    for (const c of claimed) {
      const raw = blobs.get(c.blobId);
      if (!raw) {
        // The message was deleted while queued: nothing is left to send.
        this.#report([c], failure(`the message's content is gone`, 'bounced', 554, '5.3.0'), Buffer.alloc(0));
        continue;
      }
      const key = `${c.messageId}\n${c.domain}`;
      const group = groups.get(key);
      if (group) {
        group.deliveries.push(c);
        group.envelope.recipients.push(c.recipient);
      } else {
        groups.set(key, {
          envelope: { domain: c.domain, mailFrom: c.mailFrom, recipients: [c.recipient], raw },
          deliveries: [c],
        });
      }
    }
    return [...groups.values()];
  }

  async #send(t: Transaction): Promise<void> {
    let attempt: AttemptResult;
    let grant: SourceGrant | null = null;
    try {
      const local = await this.#o.local.isLocal(t.envelope.domain);
      if (!local && this.#o.sources) {
        const first = t.deliveries[0];
        const picked = await this.#o.sources.pick({
          organizationId: first.organizationId,
          domainId: first.domainId,
          fromAddress: first.fromAddress,
          recipients: t.deliveries.length,
        });
        if (picked && 'wait' in picked) {
          await this.#postpone(t.deliveries, picked.wait);
          return;
        }
        if (picked) {
          grant = picked;
          t.envelope.source = picked.source;
        }
      }
      attempt = await (local ? this.#o.local : this.#o.remote).deliver(t.envelope);
    } catch (err) {
      this.#o.log.error({ err, domain: t.envelope.domain }, 'delivery attempt failed unexpectedly');
      attempt = failure(`4.3.0 local error: ${(err as Error).message}`, 'deferred', null, '4.3.0');
      attempt.recipients = t.envelope.recipients.map((address) => ({ ...attempt.recipients[0], address }));
    }
    if (grant) this.#o.sources!.settle(grant, attempt.notAttempted ? null : (attempt.localAddress ?? null));
    this.#reportAttempt(t, attempt);
  }

  /**
   * Deliveries none of whose sending IPs may be used now go back to the queue until `until`, untried
   * (the attempt does not count), with the reason as their last response.
   */
  async #postpone(deliveries: store.ClaimedDelivery[], wait: SourceWait['wait']): Promise<void> {
    const claims = deliveries.map((d) => ({ id: d.id, attempts: d.attempts }));
    try {
      await store.postponeClaims(this.#o.db, claims, wait.until, wait.reason);
    } catch (err) {
      this.#o.log.error({ err }, 'could not postpone delivery claims; they expire instead');
    }
    for (const d of deliveries) this.#held.delete(d.id);
  }

  #reportAttempt(t: Transaction, attempt: AttemptResult): void {
    if (attempt.notAttempted) {
      void this.#giveBack(t.deliveries);
      return;
    }
    t.deliveries.forEach((delivery, i) => {
      const result = attempt.recipients[i];
      this.#pending.push({ delivery, result, attempt, raw: t.envelope.raw });
    });
    this.#scheduleFlush();
  }

  #report(deliveries: store.ClaimedDelivery[], attempt: AttemptResult, raw: Buffer): void {
    for (const delivery of deliveries) {
      this.#pending.push({
        delivery,
        result: { ...attempt.recipients[0], address: delivery.recipient },
        attempt,
        raw,
      });
    }
    this.#scheduleFlush();
  }

  /** Deliveries this worker will not start (it is stopping) go back to the queue, their attempt uncounted. */
  async #giveBack(deliveries: store.ClaimedDelivery[]): Promise<void> {
    const claims = deliveries.map((d) => ({ id: d.id, attempts: d.attempts }));
    try {
      await store.returnClaims(this.#o.db, claims);
    } catch (err) {
      this.#o.log.error({ err }, 'could not return delivery claims; they expire instead');
    }
    for (const d of deliveries) this.#held.delete(d.id);
  }

  #scheduleFlush(): void {
    if (this.#pending.length >= FLUSH_SIZE) {
      void this.#flush();
      return;
    }
    this.#flushTimer ??= setTimeout(() => void this.#flush(), FLUSH_MS);
  }

  /** Writes waiting results, one batch at a time; a failed write is retried, never dropped. */
  #flush(): Promise<void> {
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    this.#flushing = this.#flushing.then(async () => {
      while (this.#pending.length) {
        const batch = this.#pending.splice(0, FLUSH_SIZE);
        try {
          await this.#o.record(batch);
          for (const r of batch) this.#held.delete(r.delivery.id);
        } catch (err) {
          // Unrecorded results are not lost mail: the claims expire and the recipients are tried again.
          this.#o.log.error({ err, results: batch.length }, 'could not record delivery results');
          if (!this.#running) return;
          this.#pending.unshift(...batch);
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        }
      }
    });
    return this.#flushing;
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

/** An attempt that never reached a server. */
function failure(
  response: string,
  outcome: 'deferred' | 'bounced',
  code: number | null,
  enhanced: string,
): AttemptResult {
  return {
    recipients: [{ address: '', outcome, code, enhanced, response }],
    mx: null,
    ip: null,
    port: 0,
    tls: null,
    mtaSts: 'none',
    startedAt: new Date(),
    durationMs: 0,
  };
}
