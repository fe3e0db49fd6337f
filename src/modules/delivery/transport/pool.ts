// The connections to one destination domain: at most `limit` open at once (busy, idle, being opened or
// still closing), idle ones reused for the next message and closed after `idleMs`; callers beyond the
// limit wait in line, first come first served. A connection carries a key (how it was secured); only a
// caller asking for the same key may reuse it.

export interface Poolable {
  readonly key: string;
  readonly gone: boolean;
  quit(): Promise<void>;
}

/** A connection to reuse, or null: the caller holds a slot and opens a new one in it. */
export type Lease<T> = T | null;

interface Idle<T> {
  session: T;
  timer: NodeJS.Timeout;
}

export class DomainPool<T extends Poolable> {
  readonly #limit: number;
  readonly #idleMs: number;
  /** QUITs that are under way, so that closing can wait for their sockets. */
  readonly #track: (quit: Promise<void>) => void;
  #open = 0;
  readonly #idle: Idle<T>[] = [];
  readonly #waiters: { key: string; grant: (lease: Lease<T>) => void; refuse: (err: Error) => void }[] = [];

  constructor(limit: number, idleMs: number, track: (quit: Promise<void>) => void) {
    this.#limit = Math.max(1, limit);
    this.#idleMs = idleMs;
    this.#track = track;
  }

  /** Nothing open and nobody waiting: the pool can be forgotten. */
  get empty(): boolean {
    return this.#open === 0 && this.#waiters.length === 0;
  }

  acquire(key: string): Promise<Lease<T>> {
    if (!this.#waiters.length) {
      const lease = this.#take(key);
      if (lease !== undefined) return Promise.resolve(lease);
    }
    return new Promise((grant, refuse) => this.#waiters.push({ key, grant, refuse }));
  }

  /**
   * Gives back what `acquire` lent: the connection, to park for reuse when `reusable`, otherwise to
   * close; or null when the slot holds no connection (opening one failed).
   */
  release(session: T | null, reusable: boolean): void {
    if (session && reusable && !session.gone) this.#park(session);
    else if (session) this.#retire(session);
    else this.#open--;
    this.#serve();
  }

  /** A parked connection that the server closed (or that failed) leaves the pool. */
  forget(session: T): void {
    const at = this.#idle.findIndex((i) => i.session === session);
    if (at < 0) return;
    clearTimeout(this.#idle[at].timer);
    this.#idle.splice(at, 1);
    this.#open--;
    this.#serve();
  }

  /** Everyone waiting for a connection gives up (shutting down): their messages were not started. */
  refuseWaiters(reason: Error): void {
    for (const waiter of this.#waiters.splice(0)) waiter.refuse(reason);
  }

  /** QUITs every idle connection. */
  closeIdle(): void {
    for (const { session, timer } of this.#idle.splice(0)) {
      clearTimeout(timer);
      this.#retire(session);
    }
  }

  /**
   * An idle connection with the key, else a free slot; else, when an idle connection of another key
   * holds the last slot, that one is closed and the caller waits for the slot it frees.
   */
  #take(key: string): Lease<T> | undefined {
    const at = this.#idle.findIndex((i) => i.session.key === key);
    if (at >= 0) {
      const [idle] = this.#idle.splice(at, 1);
      clearTimeout(idle.timer);
      return idle.session;
    }
    if (this.#open < this.#limit) {
      this.#open++;
      return null;
    }
    const other = this.#idle.shift();
    if (other) {
      clearTimeout(other.timer);
      this.#retire(other.session);
    }
    return undefined;
  }

  /** QUIT; the slot stays taken until the socket has closed, so the remote end never sees more than `limit`. */
  #retire(session: T): void {
    this.#track(
      session.quit().then(() => {
        this.#open--;
        this.#serve();
      }),
    );
  }

  #park(session: T): void {
    const timer = setTimeout(() => {
      const at = this.#idle.findIndex((i) => i.session === session);
      if (at < 0) return;
      this.#idle.splice(at, 1);
      this.#retire(session);
    }, this.#idleMs);
    this.#idle.push({ session, timer });
  }

  #serve(): void {
    while (this.#waiters.length) {
      const lease = this.#take(this.#waiters[0].key);
      if (lease === undefined) return;
      this.#waiters.shift()!.grant(lease);
    }
  }
}
