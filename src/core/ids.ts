import { randomFillSync } from 'node:crypto';
import { v7 } from 'uuid';
import { z } from 'zod';

// uuid draws 16 random bytes from Web Crypto for every id (8 µs here under load, about 3 % of the send
// API's event loop at a few ids per message); these come from a pool filled 256 ids at a time.
const pool = Buffer.allocUnsafe(16 * 256);
let poolAt = pool.length;
/** The last id's millisecond and counter: ids made in one millisecond still sort in order of making. */
const clock = { msecs: -1, seq: 0 };

/** A new UUIDv7: time-ordered, so primary-key indexes stay compact. */
export function newId(): string {
  if (poolAt === pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const random = pool.subarray(poolAt, poolAt + 16);
  poolAt += 16;
  const now = Date.now();
  if (now > clock.msecs) {
    // As uuid does: a random 31-bit counter start for a new millisecond leaves room to count up.
    clock.msecs = now;
    clock.seq = ((random[6] & 0x7f) << 24) | (random[7] << 16) | (random[8] << 8) | random[9];
  } else {
    clock.seq = (clock.seq + 1) | 0;
    if (clock.seq === 0) clock.msecs++;
  }
  return v7({ random, msecs: clock.msecs, seq: clock.seq });
}

export const uuidParam = z.uuid({ error: 'must be a UUID' });

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (value: string): boolean => UUID.test(value);

/**
 * ids as one uuid[] literal (`{a,b}`), for a parameter read as `::uuid[]` (the ORM would spread a JS
 * array into a parameter list) or, quoted, inside statement text. Each id must be a UUID, so nothing
 * in it needs quoting.
 */
export function uuidArrayLiteral(ids: string[]): string {
  const bad = ids.find((id) => !isUuid(id));
  if (bad !== undefined) throw new Error(`not a UUID: ${JSON.stringify(bad)}`);
  return `{${ids.join(',')}}`;
}
