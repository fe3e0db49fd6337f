// The connections to one destination domain: at most `limit` open at once (busy, idle, being opened or
// still closing), idle ones reused for the next message and closed after `idleMs`; callers beyond the
// limit wait in line, first come first served. A connection carries a key (how it was secured, and the
// local address it is bound to); only a caller asking for that key may reuse it. A caller names the keys
// it prefers (its own local addresses) and those it also takes (other addresses of its IP pool): an idle
// connection with a preferred key is reused, else a free slot is taken to open one, else an idle
// connection with another accepted key is reused, else the caller waits for one.

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
  readonly #waiters: {
    keys: ReadonlySet<string>;
    grant: (lease: Lease<T>) => void;
    refuse: (err: Error) => void;
  }[] = [];

  constructor(limit: number, idleMs: number, track: (quit: Promise<void>) => void) {
    this.#limit = Math.max(1, limit);
    this.#idleMs = idleMs;
    this.#track = track;
  }

  /** Nothing open and nobody waiting: the pool can be forgotten. */
  get empty(): boolean {
    return this.#open === 0 && this.#waiters.length === 0;
  }

  /**
   * A connection with one of the `preferred` keys, or a slot to open one; failing both, a connection with
   * one of the keys `also` accepted. An idle connection no waiter could use (waiters are served first)
   * goes to this caller at once.
   */
  acquire(preferred: string | readonly string[], also: readonly string[] = []): Promise<Lease<T>> {
    const first = typeof preferred === 'string' ? [preferred] : preferred;
    const idle = this.#reusable(first);
    if (idle) return Promise.resolve(idle);
    if (!this.#waiters.length && this.#open < this.#limit) {
      this.#open++;
      return Promise.resolve(null);
    }
    const other = this.#reusable(also);
    if (other) return Promise.resolve(other);
    return new Promise((grant, refuse) => {
      this.#waiters.push({ keys: new Set([...first, ...also]), grant, refuse });
      this.#serve();
    });
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

  /** Takes the longest-idle connection with one of the keys out of the pool. */
  #reusable(keys: readonly string[]): T | null {
    if (!keys.length) return null;
    const at = this.#idle.findIndex((i) => keys.includes(i.session.key));
    if (at < 0) return null;
    const [idle] = this.#idle.splice(at, 1);
    clearTimeout(idle.timer);
    return idle.session;
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

  /**
   * Idle connections go to the first waiter that can use them; then a free slot to the first waiter;
   * then, at the limit, an idle connection that no waiter can use is closed for the slot it frees.
   */
  #serve(): void {
    for (let i = 0; i < this.#idle.length && this.#waiters.length; ) {
      const { session, timer } = this.#idle[i];
      const w = this.#waiters.findIndex((waiter) => waiter.keys.has(session.key));
      if (w < 0) {
        i++;
        continue;
      }
      this.#idle.splice(i, 1);
      clearTimeout(timer);
      this.#waiters.splice(w, 1)[0].grant(session);
    }
    while (this.#waiters.length && this.#open < this.#limit) {
      this.#open++;
      this.#waiters.shift()!.grant(null);
    }
    if (!this.#waiters.length) return;
    const other = this.#idle.shift();
    if (other) {
      clearTimeout(other.timer);
      this.#retire(other.session);
    }
  }
}
