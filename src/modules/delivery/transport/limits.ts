// Per-destination limits that hold for the whole installation, not per worker: with N workers a remote
// domain must still see at most MAILROOM_OUTBOUND_CONNECTIONS_PER_DOMAIN connections and
// MAILROOM_OUTBOUND_DOMAIN_RATE_PER_MINUTE messages a minute. Kept in PostgreSQL, or in Redis when
// REDIS_URL is set; never a round trip per message:
// - connections: a worker takes one of the destination's slots when it opens a connection and gives it
//   back when the connection closes (a connection carries many messages). Slots are leases renewed
//   while held, so a dead worker's slots come free by themselves.
// - rate: a worker reserves message starts in blocks (a sixtieth of the minute's budget at a time) and
//   uses them within useMs; a reservation counts against the budget for the window plus useMs, so no
//   window of the configured length ever sees more starts than the budget, whoever made them.
// The embedded engine has a single worker, whose in-process pool and rate gate are exact: no shared
// limits are used there.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Db } from '../../../core/db.ts';
import { sql } from '../../../core/orm.ts';

export interface SharedLimits {
  /**
   * One of `limit` connection slots to `destination`, waiting while all are taken; resolves with the
   * function that gives it back (safe to call more than once). Rejects with the signal's reason.
   */
  takeSlot(destination: string, limit: number, signal: AbortSignal): Promise<() => void>;
  /**
   * Reserves starts towards `destination` out of `perWindow` per window, waiting while none are left;
   * resolves with how many were granted (at least 1, at most `want`), to be used within useMs.
   */
  reserveStarts(destination: string, perWindow: number, want: number, signal: AbortSignal): Promise<number>;
  /** How long reserved starts stay usable. */
  readonly useMs: number;
  close(): Promise<void>;
}

export interface SharedLimitOptions {
  /** How long a slot lease lasts without renewal (renewed every third of it while held). */
  leaseMs?: number;
  /** The rate window (a minute; shorter in tests). */
  windowMs?: number;
  log: Logger;
}

/** Reserved starts are used within this (2 s of a minute), or lapse. */
const useMsOf = (windowMs: number) => Math.min(2_000, Math.ceil(windowMs / 30));
const LEASE_MS = 30_000;
const MINUTE = 60_000;
/** While every slot or start is taken: look again after about this long. */
const POLL_MS = 100;

/** A worker's identity in the shared tables: host, process and a random part. */
const holderId = () => `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;

/** Slot bookkeeping common to both stores: what this worker holds, renewed until given back. */
abstract class Slots implements SharedLimits {
  protected readonly holder = holderId();
  protected readonly leaseMs: number;
  protected readonly windowMs: number;
  readonly useMs: number;
  protected readonly log: Logger;
  /** Slots held: `destination\nslot`. */
  protected readonly held = new Set<string>();
  readonly #renewer: NodeJS.Timeout;
  #closed = false;
  /** Releases sent and not yet answered (close waits for them). */
  readonly #freeing = new Set<Promise<void>>();

  constructor(options: SharedLimitOptions) {
    this.leaseMs = options.leaseMs ?? LEASE_MS;
    this.windowMs = options.windowMs ?? MINUTE;
    this.useMs = useMsOf(this.windowMs);
    this.log = options.log;
    this.#renewer = setInterval(() => void this.#renew(), this.leaseMs / 3);
    this.#renewer.unref();
  }

  protected abstract claim(destination: string, limit: number): Promise<number | null>;
  protected abstract free(destination: string, slot: number): Promise<void>;
  protected abstract extend(slots: { destination: string; slot: number }[]): Promise<void>;
  protected abstract reserve(destination: string, perWindow: number, want: number): Promise<number>;
  protected abstract freeAll(): Promise<void>;

  async takeSlot(destination: string, limit: number, signal: AbortSignal): Promise<() => void> {
    for (;;) {
      signal.throwIfAborted();
      const slot = await this.claim(destination, limit).catch((err) => {
        this.log.warn({ err, destination }, 'could not claim a connection slot; trying again');
        return null;
      });
      if (slot !== null) {
        const key = `${destination}\n${slot}`;
        this.held.add(key);
        let released = false;
        return () => {
          if (released) return;
          released = true;
          this.held.delete(key);
          const freeing = this.free(destination, slot)
            .catch((err) =>
              this.log.warn({ err, destination }, 'could not give a connection slot back; it expires'),
            )
            .finally(() => this.#freeing.delete(freeing));
          this.#freeing.add(freeing);
        };
      }
      await sleep(POLL_MS + Math.random() * POLL_MS, undefined, { signal });
    }
  }

  async reserveStarts(destination: string, perWindow: number, want: number, signal: AbortSignal) {
    for (;;) {
      signal.throwIfAborted();
      const granted = await this.reserve(destination, perWindow, want).catch((err) => {
        this.log.warn({ err, destination }, 'could not reserve message starts; trying again');
        return 0;
      });
      if (granted > 0) return granted;
      await sleep(POLL_MS + Math.random() * POLL_MS, undefined, { signal });
    }
  }

  async #renew(): Promise<void> {
    if (!this.held.size || this.#closed) return;
    const slots = [...this.held].map((key) => {
      const [destination, slot] = key.split('\n');
      return { destination, slot: Number(slot) };
    });
    await this.extend(slots).catch((err) => this.log.error({ err }, 'could not renew connection slots'));
  }

  /**
   * Gives back every slot: those still held, and those whose release is on its way. A stopping worker
   * closes its database right after this, and a release still in flight then would be lost, its slot
   * held by nobody until the lease ran out (30 s in which the next worker had fewer connections).
   */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#renewer);
    await Promise.all([...this.#freeing]);
    if (this.held.size) await this.freeAll().catch(() => {});
    this.held.clear();
  }
}

/** Slots and reservations in PostgreSQL (migration 0006: outbound_slots, outbound_rate). */
export class PostgresLimits extends Slots {
  readonly #db: Db;

  constructor(db: Db, options: SharedLimitOptions) {
    super(options);
    this.#db = db;
  }

  protected async claim(destination: string, limit: number): Promise<number | null> {
    await this.#db.execute(sql`
      insert into outbound_slots (destination, slot)
      select ${destination}, g from generate_series(0, ${limit - 1}::int) g
      on conflict do nothing`);
    const result = (await this.#db.execute(sql`
      update outbound_slots s set holder = ${this.holder},
             expires_at = now() + make_interval(secs => ${this.leaseMs / 1000})
        from (select destination, slot from outbound_slots
               where destination = ${destination} and slot < ${limit}
                 and (holder is null or expires_at < now())
               order by slot limit 1 for update skip locked) free
       where s.destination = free.destination and s.slot = free.slot
      returning s.slot`)) as unknown as { rows: { slot: number }[] };
    return result.rows[0]?.slot ?? null;
  }

  protected async free(destination: string, slot: number): Promise<void> {
    await this.#db.execute(sql`
      update outbound_slots set holder = null, expires_at = null
       where destination = ${destination} and slot = ${slot} and holder = ${this.holder}`);
  }

  protected async extend(slots: { destination: string; slot: number }[]): Promise<void> {
    await this.#db.execute(sql`
      update outbound_slots s set expires_at = now() + make_interval(secs => ${this.leaseMs / 1000})
        from jsonb_to_recordset(${JSON.stringify(slots)}::jsonb) as r(destination text, slot integer)
       where s.destination = r.destination and s.slot = r.slot and s.holder = ${this.holder}`);
  }

  protected async freeAll(): Promise<void> {
    await this.#db.execute(
      sql`update outbound_slots set holder = null, expires_at = null where holder = ${this.holder}`,
    );
  }

  /** One destination's reservations are counted and added under a transaction-scoped advisory lock. */
  protected async reserve(destination: string, perWindow: number, want: number): Promise<number> {
    const span = (this.windowMs + this.useMs) / 1000;
    return this.#db.transaction(async (tx) => {
      await tx.execute(
        sql`select pg_advisory_xact_lock(hashtext(${`mailroom.outbound_rate:${destination}`}))`,
      );
      // The clock now, not the transaction's start: a reservation made after waiting for the lock counts
      // from when it was made.
      await tx.execute(sql`
        delete from outbound_rate
         where destination = ${destination}
           and reserved_at < clock_timestamp() - make_interval(secs => ${span})`);
      const used = (await tx.execute(sql`
        select coalesce(sum(n), 0)::int as n from outbound_rate where destination = ${destination}`)) as unknown as {
        rows: { n: number }[];
      };
      const granted = Math.min(want, perWindow - (used.rows[0]?.n ?? 0));
      if (granted <= 0) return 0;
      await tx.execute(
        sql`insert into outbound_rate (destination, reserved_at, n) values (${destination}, clock_timestamp(), ${granted})`,
      );
      return granted;
    });
  }
}

// Redis: a slot is a key that names its holder and expires with its lease; a destination's
// reservations are a sorted set by time, each member carrying its count.
const CLAIM = `
for i = 0, tonumber(ARGV[1]) - 1 do
  if redis.call('SET', KEYS[1] .. i, ARGV[2], 'NX', 'PX', ARGV[3]) then return i end
end
return -1`;
const FREE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
const EXTEND = `
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
end
return 0`;
const RESERVE = `
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms - tonumber(ARGV[1]))
local used = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  used = used + tonumber(string.match(member, ':(%d+)$'))
end
local granted = math.min(tonumber(ARGV[3]), tonumber(ARGV[2]) - used)
if granted <= 0 then return 0 end
redis.call('ZADD', KEYS[1], ms, ARGV[4] .. ':' .. granted)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return granted`;

export class RedisLimits extends Slots {
  readonly #redis: Redis;

  constructor(redis: Redis, options: SharedLimitOptions) {
    super(options);
    this.#redis = redis;
  }

  #key(destination: string) {
    return `mailroom:outbound:slot:${destination}:`;
  }

  protected async claim(destination: string, limit: number): Promise<number | null> {
    const slot = Number(
      await this.#redis.eval(CLAIM, 1, this.#key(destination), limit, this.holder, this.leaseMs),
    );
    return slot >= 0 ? slot : null;
  }

  protected async free(destination: string, slot: number): Promise<void> {
    await this.#redis.eval(FREE, 1, `${this.#key(destination)}${slot}`, this.holder);
  }

  protected async extend(slots: { destination: string; slot: number }[]): Promise<void> {
    const keys = slots.map((s) => `${this.#key(s.destination)}${s.slot}`);
    await this.#redis.eval(EXTEND, keys.length, ...keys, this.holder, this.leaseMs);
  }

  protected async freeAll(): Promise<void> {
    for (const key of this.held) {
      const [destination, slot] = key.split('\n');
      await this.free(destination, Number(slot));
    }
  }

  protected async reserve(destination: string, perWindow: number, want: number): Promise<number> {
    const member = `${this.holder}:${randomBytes(4).toString('hex')}`;
    return Number(
      await this.#redis.eval(
        RESERVE,
        1,
        `mailroom:outbound:rate:${destination}`,
        this.windowMs + this.useMs,
        perWindow,
        want,
        member,
      ),
    );
  }

  override async close(): Promise<void> {
    await super.close();
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}

/** The shared limits for an installation of several processes: Redis when configured, else PostgreSQL. */
export async function sharedLimits(
  db: Db,
  redisUrl: string | undefined,
  options: SharedLimitOptions,
): Promise<SharedLimits> {
  if (!redisUrl) return new PostgresLimits(db, options);
  const { Redis } = await import('ioredis');
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
  redis.on('error', () => {});
  return new RedisLimits(redis, options);
}
