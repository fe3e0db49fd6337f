// How many messages may start towards one destination domain per window (a sliding window log, in
// process). Over the limit a caller waits for its turn, first come first served; nobody fails.
import { setTimeout as sleep } from 'node:timers/promises';

export class RateGate {
  readonly #limit: number;
  readonly #windowMs: number;
  /** Start times inside the current window, oldest first. */
  readonly #starts: number[] = [];
  #tail: Promise<void> = Promise.resolve();
  #waiting = 0;
  readonly #closed = new AbortController();

  /** `limit` 0 lets everything through. */
  constructor(limit: number, windowMs: number) {
    this.#limit = limit;
    this.#windowMs = windowMs;
  }

  /** Resolves when the caller may start a message (and counts it); rejects once the gate is closed. */
  take(): Promise<void> {
    if (this.#closed.signal.aborted) return Promise.reject(this.#closed.signal.reason);
    if (!this.#limit) return Promise.resolve();
    this.#waiting++;
    const turn = this.#tail.then(() => this.#next());
    this.#tail = turn;
    return turn.finally(() => this.#waiting--);
  }

  /** Nobody waits and nothing inside the window counts any more: the gate can be forgotten. */
  get idle(): boolean {
    this.#expire(Date.now());
    return this.#waiting === 0 && this.#starts.length === 0;
  }

  async #next(): Promise<void> {
    for (;;) {
      const now = Date.now();
      this.#expire(now);
      if (this.#starts.length < this.#limit) {
        this.#starts.push(now);
        return;
      }
      await sleep(this.#starts[0] + this.#windowMs - now, undefined, { signal: this.#closed.signal });
    }
  }

  /** Everyone waiting gives up (shutting down): their messages were not started. */
  close(reason: Error): void {
    this.#closed.abort(reason);
  }

  #expire(now: number): void {
    while (this.#starts.length && this.#starts[0] <= now - this.#windowMs) this.#starts.shift();
  }
}

/**
 * The rate per destination for the whole installation (several workers): starts come from blocks
 * reserved in the shared store (transport/limits.ts), used within their time or let lapse. Waiting
 * callers go first come first served, as with RateGate.
 */
export class SharedRateGate {
  readonly #reserve: (want: number, signal: AbortSignal) => Promise<number>;
  readonly #block: number;
  readonly #useMs: number;
  #tokens = 0;
  #until = 0;
  #tail: Promise<void> = Promise.resolve();
  #waiting = 0;
  readonly #closed = new AbortController();

  /** `reserve` asks the shared store for up to `want` starts; `block` is how many to ask for at a time. */
  constructor(reserve: (want: number, signal: AbortSignal) => Promise<number>, block: number, useMs: number) {
    this.#reserve = reserve;
    this.#block = Math.max(1, block);
    this.#useMs = useMs;
  }

  take(): Promise<void> {
    if (this.#closed.signal.aborted) return Promise.reject(this.#closed.signal.reason);
    this.#waiting++;
    const turn = this.#tail.then(() => this.#next());
    this.#tail = turn.catch(() => {});
    return turn.finally(() => this.#waiting--);
  }

  get idle(): boolean {
    return this.#waiting === 0 && (this.#tokens === 0 || Date.now() >= this.#until);
  }

  async #next(): Promise<void> {
    if (this.#tokens > 0 && Date.now() < this.#until) {
      this.#tokens--;
      return;
    }
    const granted = await this.#reserve(this.#block, this.#closed.signal);
    this.#tokens = granted - 1;
    this.#until = Date.now() + this.#useMs;
  }

  close(reason: Error): void {
    this.#closed.abort(reason);
  }
}
