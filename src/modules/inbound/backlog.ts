// Back-pressure: how much accepted mail waits for processing, and how much queued mail is due for
// delivery, with the age of the oldest of each. Read from the database every few moments by each
// process that runs the MX (which answers `451 4.3.1` to new mail while a backlog is over its limit,
// rather than accept mail it cannot file in time) or the HTTP API (which shows it at /ready and
// /metrics). Each read is two counts over small partial indexes.
import type { Logger } from 'pino';

export interface QueueDepth {
  depth: number;
  oldest: Date | null;
}

export interface BacklogOptions {
  /** Accepted messages not yet processed. */
  processing: () => Promise<QueueDepth>;
  /** Queued recipients whose delivery is due. */
  delivery: () => Promise<QueueDepth>;
  /** Depths above which the MX refuses new mail (0: no limit). */
  maxProcessing: number;
  maxDelivery: number;
  checkMs: number;
  log: Logger;
}

export interface QueueState {
  depth: number;
  oldest_age_seconds: number | null;
  limit: number | null;
  over: boolean;
}

export interface BacklogState {
  processing: QueueState;
  delivery: QueueState;
  /** False while either backlog is over its limit: the MX answers 451 4.3.1. */
  accepting_mail: boolean;
  checked_at: string | null;
}

export class Backlog {
  readonly #o: BacklogOptions;
  #processing: QueueDepth = { depth: 0, oldest: null };
  #delivery: QueueDepth = { depth: 0, oldest: null };
  #checkedAt: Date | null = null;
  #timer: NodeJS.Timeout | null = null;
  #reading: Promise<void> | null = null;

  constructor(options: BacklogOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {
    await this.refresh();
    this.#timer = setInterval(() => void this.refresh(), this.#o.checkMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Reads both depths now (one read at a time; a failed read keeps the last known state). */
  refresh(): Promise<void> {
    this.#reading ??= (async () => {
      try {
        [this.#processing, this.#delivery] = await Promise.all([this.#o.processing(), this.#o.delivery()]);
        this.#checkedAt = new Date();
      } catch (err) {
        this.#o.log.warn({ err }, 'could not read the backlog');
      } finally {
        this.#reading = null;
      }
    })();
    return this.#reading;
  }

  /** Whether the MX takes new mail: no backlog over its limit at the last reading. */
  get acceptingMail(): boolean {
    return !over(this.#processing, this.#o.maxProcessing) && !over(this.#delivery, this.#o.maxDelivery);
  }

  get state(): BacklogState {
    return {
      processing: stateOf(this.#processing, this.#o.maxProcessing),
      delivery: stateOf(this.#delivery, this.#o.maxDelivery),
      accepting_mail: this.acceptingMail,
      checked_at: this.#checkedAt?.toISOString() ?? null,
    };
  }
}

const over = (q: QueueDepth, limit: number) => limit > 0 && q.depth > limit;

function stateOf(q: QueueDepth, limit: number): QueueState {
  return {
    depth: q.depth,
    oldest_age_seconds: q.oldest ? Math.max(0, Math.round((Date.now() - q.oldest.getTime()) / 1000)) : null,
    limit: limit > 0 ? limit : null,
    over: over(q, limit),
  };
}
