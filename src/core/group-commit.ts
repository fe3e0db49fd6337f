// Group commit: callers hand over an item and wait until the batch that holds it is written. Items that
// arrive while a batch is being written go together in the next one, so one transaction carries what
// many concurrent callers (SMTP sessions, API requests) brought.

/** An item waiting for its batch, and how its caller is answered. */
export interface Pending<T, R> {
  item: T;
  resolve(result: R): void;
  reject(err: unknown): void;
}

export interface GroupCommitOptions<T, R> {
  /** Most items one batch carries. */
  maxBatch: number;
  /** Batches written at once (the next can fill, or do its first steps, while one commits). */
  maxFlushes: number;
  /** Writes a batch and answers each of its items; whatever it leaves unanswered when it throws fails. */
  write(batch: Pending<T, R>[]): Promise<void>;
}

export class GroupCommit<T, R> {
  readonly #o: GroupCommitOptions<T, R>;
  #waiting: Pending<T, R>[] = [];
  #flushing = 0;
  #scheduled = false;

  constructor(options: GroupCommitOptions<T, R>) {
    this.#o = options;
  }

  /** Resolves with what `write` answers for the item. */
  add(item: T): Promise<R> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
      // Not at once but after the I/O callbacks of this turn of the event loop, so that the callers whose
      // work ended in it share the batch (on the embedded engine batches were otherwise of one).
      if (this.#flushing < this.#o.maxFlushes && !this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => {
          this.#scheduled = false;
          void this.#flush();
        });
      }
    });
  }

  async #flush(): Promise<void> {
    if (!this.#waiting.length) return;
    this.#flushing++;
    try {
      while (this.#waiting.length) {
        const batch = this.#waiting.splice(0, this.#o.maxBatch);
        await this.#o.write(batch).catch((err) => {
          for (const p of batch) p.reject(err); // a promise already answered keeps its answer
        });
      }
    } finally {
      this.#flushing--;
    }
  }
}
