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
