// The warmup ledger: what each sending IP has used today against its caps, kept cheap on the hot path.
//   capped IPs    capacity is reserved from the database in blocks (a fiftieth of the cap, 1–200 at a
//                 time, atomically across workers: no day sees more than the cap) and spent from the
//                 block in memory; a message that did not leave from the IP gives its share back
//   uncapped IPs  nothing is reserved; what they send is counted in memory
//   counters      what was sent (and the uncapped use, which counts against other pools' caps) is
//                 written once a second for every IP in one statement
// A day is a UTC day of the clock (tests run simulated days). Day 1 of an IP is the day it first sent.
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.ts';
import type { Db } from '../../core/db.ts';
import * as store from './store.ts';

const FLUSH_MS = 1_000;
/** First-use dates set by other workers are read again this often. */
const REFRESH_MS = 60_000;
const DAY_MS = 86_400_000;

/** `YYYY-MM-DD` of a time, in UTC. */
export function utcDay(at: Date): string {
  return at.toISOString().slice(0, 10);
}

/** Warmup day of `today` for an IP first used on `first` (1 on the first day, and before any use). */
export function warmupDay(first: string | null, today: string): number {
  if (!first) return 1;
  return Math.max(1, Math.round((Date.parse(today) - Date.parse(first)) / DAY_MS) + 1);
}

/** How long from `at` until the next UTC day begins. */
export function untilNextDay(at: Date): number {
  return DAY_MS - (at.getTime() % DAY_MS);
}

/** Units a worker reserves at once under a cap. */
function blockFor(cap: number): number {
  return Math.min(200, Math.max(1, Math.floor(cap / 50)));
}

interface Block {
  ip: string;
  day: string;
  left: number;
  /** The database had nothing more under this cap today. */
  exhaustedAt: number | null;
  asking: Promise<void> | null;
}

export class WarmupLedger {
  readonly #db: Db;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #ips: string[];
  readonly #firstUse = new Map<string, string | null>();
  readonly #marking = new Set<string>();
  /**
   * Reserved capacity per IP and cap (an IP in pools on different curves has a block under each cap,
   * so capacity reserved under a high cap never lets mail past a lower one).
   */
  readonly #blocks = new Map<string, Block>();
  /** Not yet written: per `ip day`, uncapped use (taken) and everything sent. */
  readonly #pending = new Map<string, { ip: string; day: string; taken: number; sent: number }>();
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> = Promise.resolve();
  #refreshedAt = 0;
  #loaded: Promise<void> | null = null;

  constructor(options: { db: Db; clock: Clock; log: Logger; ips: string[] }) {
    this.#db = options.db;
    this.#clock = options.clock;
    this.#log = options.log;
    this.#ips = options.ips;
  }

  today(): string {
    return utcDay(this.#clock.now());
  }

  /** Reads every IP's first day of use (once; later reads happen with the flushes). */
  ready(): Promise<void> {
    this.#loaded ??= this.#refresh().catch((err) => {
      this.#loaded = null;
      throw err;
    });
    return this.#loaded;
  }

  /** The IP's warmup day today (1 before it was ever used). */
  dayOf(ip: string, today: string): number {
    return warmupDay(this.#firstUse.get(ip) ?? null, today);
  }

  firstUseOf(ip: string): string | null {
    return this.#firstUse.get(ip) ?? null;
  }

  /**
   * Takes `units` of the IP's capacity for today under `cap`; false when the cap is reached. An
   * uncapped IP (cap Infinity) always has capacity; its use is counted when it is reported.
   */
  async take(ip: string, day: string, cap: number, units: number): Promise<boolean> {
    if (!Number.isFinite(cap)) return true;
    if (units > cap) return false;
    const key = `${ip} ${cap}`;
    for (;;) {
      let block = this.#blocks.get(key);
      if (!block || block.day !== day) {
        // A block of an earlier day is gone with its day.
        block = { ip, day, left: 0, exhaustedAt: null, asking: null };
        this.#blocks.set(key, block);
      }
      if (block.left >= units) {
        block.left -= units;
        return true;
      }
      if (block.asking) {
        await block.asking;
        continue;
      }
      if (block.exhaustedAt !== null && cap <= block.exhaustedAt) return false;
      const want = Math.max(units - block.left, blockFor(cap));
      const current = block;
      current.asking = store
        .reserve(this.#db, ip, day, cap, want)
        .then((granted) => {
          current.left += granted;
          current.exhaustedAt = granted < want ? cap : null;
        })
        .finally(() => {
          current.asking = null;
        });
      await current.asking;
      if (current.left < units && current.exhaustedAt !== null) return false;
    }
  }

  /** Capacity taken for a message that did not leave from the IP goes back (to this worker's block). */
  giveBack(ip: string, day: string, cap: number, units: number): void {
    if (!Number.isFinite(cap)) return;
    const block = this.#blocks.get(`${ip} ${cap}`);
    if (block && block.day === day) block.left += units;
  }

  /** A message left from the IP: counted (written with the next flush); its first use is recorded. */
  used(ip: string, day: string, cap: number, units: number): void {
    const key = `${ip} ${day}`;
    const entry = this.#pending.get(key) ?? { ip, day, taken: 0, sent: 0 };
    entry.sent += units;
    if (!Number.isFinite(cap)) entry.taken += units;
    this.#pending.set(key, entry);
    this.#timer ??= setTimeout(() => void this.flush(), FLUSH_MS);
    if (!this.#firstUse.get(ip) && !this.#marking.has(ip)) {
      this.#marking.add(ip);
      store
        .markFirstUse(this.#db, ip, day)
        .then((first) => this.#firstUse.set(ip, first))
        .catch((err) => this.#log.error({ err, ip }, 'could not record the first use of a sending IP'))
        .finally(() => this.#marking.delete(ip));
    }
  }

  /** Writes the counters (one statement for every IP); a failed write is kept for the next one. */
  flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#flushing = this.#flushing.then(async () => {
      const rows = [...this.#pending.values()];
      this.#pending.clear();
      if (rows.length) {
        try {
          await store.addUsage(this.#db, rows);
        } catch (err) {
          this.#log.error({ err }, 'could not write sending IP usage; kept for the next write');
          for (const r of rows) {
            const key = `${r.ip} ${r.day}`;
            const entry = this.#pending.get(key) ?? { ip: r.ip, day: r.day, taken: 0, sent: 0 };
            entry.taken += r.taken;
            entry.sent += r.sent;
            this.#pending.set(key, entry);
          }
          this.#timer ??= setTimeout(() => void this.flush(), FLUSH_MS);
        }
      }
      if (Date.now() - this.#refreshedAt > REFRESH_MS)
        await this.#refresh().catch((err) => this.#log.warn({ err }, 'could not read sending IPs'));
    });
    return this.#flushing;
  }

  /** Writes what is counted and gives back today's unspent reservations (shutting down). */
  async close(): Promise<void> {
    const today = this.today();
    const unspent = [...this.#blocks]
      .filter(([, block]) => block.day === today && block.left > 0)
      .map(([, block]) => ({ ip: block.ip, day: today, units: block.left }));
    this.#blocks.clear();
    await this.flush();
    await store
      .returnCapacity(this.#db, unspent)
      .catch((err) => this.#log.warn({ err }, 'could not give back unspent warmup capacity'));
  }

  async #refresh(): Promise<void> {
    this.#refreshedAt = Date.now();
    const found = await store.firstUses(this.#db, this.#ips);
    for (const ip of this.#ips) {
      const first = found.get(ip) ?? null;
      // A date this process recorded stays, whatever an older read says.
      if (first || !this.#firstUse.get(ip)) this.#firstUse.set(ip, first);
    }
  }
}
