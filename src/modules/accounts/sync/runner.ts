// The worker side of external accounts: every tick (a sixth of a lease) it announces itself, renews its
// leases, hands back accounts above its share or no longer wanting a connection, takes free ones, and
// starts, restarts (servers or login changed) or stops their connections to match.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { MailAccountRow } from '../tables.ts';
import { AccountConnection, connectionKey } from './connection.ts';
import type { SyncContext } from './context.ts';
import * as leases from './leases.ts';

export class AccountSyncRunner {
  readonly #ctx: SyncContext;
  readonly workerId = `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  readonly #connections = new Map<string, AccountConnection>();
  #timer: NodeJS.Timeout | null = null;
  #ticking: Promise<void> | null = null;
  #stopped = false;

  constructor(ctx: SyncContext) {
    this.#ctx = ctx;
  }

  /** The accounts this worker holds a connection for. */
  get accounts(): string[] {
    return [...this.#connections.keys()];
  }

  start(): void {
    const every = Math.max(250, Math.floor(this.#ctx.settings.leaseMs / 6));
    const loop = () => {
      this.#ticking = this.tick()
        .catch((err) => this.#ctx.log.error({ err }, 'account leases: tick failed'))
        .finally(() => {
          this.#ticking = null;
          if (!this.#stopped) this.#timer = setTimeout(loop, every);
        });
    };
    loop();
  }

  /** Runs one tick now (a new account was connected, a test), after the one in flight. */
  tick(): Promise<void> {
    const next = this.#queue.then(() => this.#tick());
    this.#queue = next.catch(() => {});
    return next;
  }

  #queue: Promise<void> = Promise.resolve();

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    const { db, settings } = this.#ctx;
    const workers = await leases.heartbeat(db, this.workerId, settings.leaseMs);
    await leases.releaseUnwanted(db, this.workerId);
    const held = await leases.renew(db, this.workerId, settings.leaseMs);
    const share = Math.ceil((await leases.wantedCount(db)) / workers);
    const surplus = held.slice(share);
    await leases.release(
      db,
      this.workerId,
      surplus.map((a) => a.id),
    );
    const kept = held.slice(0, share);
    const taken = await leases.claim(db, this.workerId, settings.leaseMs, share - kept.length);
    await this.#match([...kept, ...taken]);
  }

  /** Connections for exactly these accounts; one whose servers or login changed starts over. */
  async #match(accounts: MailAccountRow[]): Promise<void> {
    const wanted = new Map(accounts.map((a) => [a.id, a]));
    const stopping: Promise<void>[] = [];
    for (const [id, connection] of this.#connections) {
      const account = wanted.get(id);
      if (account && connection.key === connectionKey(account)) continue;
      this.#connections.delete(id);
      stopping.push(connection.stop());
    }
    await Promise.all(stopping);
    if (this.#stopped) return;
    for (const account of accounts) {
      if (this.#connections.has(account.id)) continue;
      const connection = new AccountConnection(this.#ctx, account);
      this.#connections.set(account.id, connection);
      connection.start();
    }
  }

  /** Asks the connection of an account this worker holds to sync now; false when it holds none. */
  syncSoon(accountId: string): boolean {
    const connection = this.#connections.get(accountId);
    connection?.syncSoon('all');
    return !!connection;
  }

  /** Logs out of every account and gives the leases back, for another worker to take at once. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#ticking;
    await this.#queue;
    const ids = [...this.#connections.keys()];
    await Promise.all([...this.#connections.values()].map((c) => c.stop()));
    this.#connections.clear();
    await leases.release(this.#ctx.db, this.workerId, ids).catch(() => {});
  }
}
