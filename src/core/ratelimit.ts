// Fixed-window rate limits: in process memory by default, shared through Redis when REDIS_URL is set
// (so several API processes count together).
import type { Redis } from 'ioredis';
import { tooManyRequests } from './errors.ts';

export interface Limit {
  /** Names the counter, e.g. `login:ip`. */
  name: string;
  limit: number;
  windowSeconds: number;
}

export interface LimitResult {
  allowed: boolean;
  /** This hit is the first one over the limit in its window (record it once, not per request). */
  firstRefusal: boolean;
  remaining: number;
  retryAfterSeconds: number;
}

export interface RateLimiter {
  hit(limit: Limit, key: string): Promise<LimitResult>;
  close(): Promise<void>;
}

export class MemoryRateLimiter implements RateLimiter {
  readonly #windows = new Map<string, { count: number; resetAt: number }>();
  readonly #sweeper: NodeJS.Timeout;

  constructor() {
    this.#sweeper = setInterval(() => this.#sweep(), 60_000);
    this.#sweeper.unref();
  }

  async hit(limit: Limit, key: string): Promise<LimitResult> {
    const now = Date.now();
    const id = `${limit.name}:${key}`;
    let w = this.#windows.get(id);
    if (!w || w.resetAt <= now) {
      w = { count: 0, resetAt: now + limit.windowSeconds * 1000 };
      this.#windows.set(id, w);
    }
    w.count++;
    return result(limit, w.count, w.resetAt - now);
  }

  #sweep(): void {
    const now = Date.now();
    for (const [id, w] of this.#windows) if (w.resetAt <= now) this.#windows.delete(id);
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
  }
}

// INCR, set the expiry on the first hit, and return the count with the time left, atomically.
const HIT_SCRIPT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}`;

export class RedisRateLimiter implements RateLimiter {
  readonly #redis: Redis;

  constructor(redis: Redis) {
    this.#redis = redis;
    this.#redis.on('error', () => {});
    this.#redis.defineCommand('mailroomHit', { numberOfKeys: 1, lua: HIT_SCRIPT });
  }

  async hit(limit: Limit, key: string): Promise<LimitResult> {
    const [count, ttl] = (await (this.#redis as any).mailroomHit(
      `mailroom:rl:${limit.name}:${key}`,
      limit.windowSeconds * 1000,
    )) as [number, number];
    return result(limit, count, ttl);
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}

function result(limit: Limit, count: number, msLeft: number): LimitResult {
  return {
    allowed: count <= limit.limit,
    firstRefusal: count === limit.limit + 1,
    remaining: Math.max(0, limit.limit - count),
    retryAfterSeconds: Math.max(1, Math.ceil(msLeft / 1000)),
  };
}

export async function createRateLimiter(redisUrl: string | undefined): Promise<RateLimiter> {
  if (!redisUrl) return new MemoryRateLimiter();
  const { Redis } = await import('ioredis');
  return new RedisRateLimiter(new Redis(redisUrl, { maxRetriesPerRequest: 2 }));
}

/** Counts a hit and throws 429 when over the limit. */
export async function enforce(limiter: RateLimiter, limit: Limit, key: string): Promise<void> {
  const r = await limiter.hit(limit, key);
  if (!r.allowed) throw tooManyRequests(r.retryAfterSeconds);
}
