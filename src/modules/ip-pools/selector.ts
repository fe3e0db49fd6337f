// Delivery's hot path: which local addresses a message leaves from. Its pool is its mailbox's (the
// mailbox at its From address), else its domain's, else the organisation's default pool, else every
// sending IP of the installation (under MAILROOM_OUTBOUND_IP_WARMUP). Within the pool the preferred
// address of each family is taken in turn (round robin), skipping those that used today's warmup cap;
// when every one has, the message waits. The pool's other addresses follow, so that under load the
// transport may reuse a connection from one of them (taking its capacity then) rather than close it and
// open another. An organisation's pools and assignments are cached (a minute, cleared at once by their
// events), so choosing costs no query; warmup capacity comes from the ledger's blocks.
import type { Logger } from 'pino';
import { TtlCache } from '../../core/cache.ts';
import type { Clock } from '../../core/clock.ts';
import { familyOf } from './addresses.ts';
import { type Curve, capOn, curveOf } from './curves.ts';
import { untilNextDay, type WarmupLedger } from './ledger.ts';
import type { PoolSnapshot } from './store.ts';

/** What a message's addresses are chosen from (delivery's SourceQuery). */
export interface SourceQuery {
  organizationId: string;
  domainId: string | null;
  fromAddress: string | null;
  recipients: number;
}

/** The addresses a message may leave from, per family, the preferred first (delivery's MessageSource). */
export interface MessageSource {
  ipv4: readonly string[];
  ipv6: readonly string[];
  /** Takes the address's warmup capacity for the message; false when it has none left today. */
  take(ip: string): Promise<boolean>;
}

export interface SourceGrant {
  source: MessageSource;
  day: string;
  units: number;
  /** The capacity taken for it, per address, with the cap it was taken under. */
  taken: { ip: string; cap: number }[];
}

export interface SourceWait {
  wait: { until: Date; reason: string };
}

/** A pool as delivery uses it: its configured members by family, and its curve. */
export interface ResolvedPool {
  /** The pool's id, or 'default' for the installation's IPs. */
  key: string;
  id: string | null;
  name: string | null;
  curve: Curve;
  v4: string[];
  v6: string[];
  /** Members no longer in MAILROOM_OUTBOUND_IPS (never used). */
  unconfigured: string[];
}

interface OrganizationPools {
  byId: Map<string, ResolvedPool>;
  domains: Map<string, string>;
  mailboxes: Map<string, string>;
  fallback: ResolvedPool;
}

export interface CappedNotice {
  organizationId: string;
  pool: ResolvedPool;
  day: string;
  ips: { ip: string; warmupDay: number; cap: number }[];
}

export interface SelectorOptions {
  /** MAILROOM_OUTBOUND_IPS. */
  ips: string[];
  /** The curve of IPs used with no pool (MAILROOM_OUTBOUND_IP_WARMUP). */
  installationCurve: Curve;
  ledger: WarmupLedger;
  clock: Clock;
  load: (organizationId: string) => Promise<PoolSnapshot>;
  /** Every IP of a pool reached its cap today (called once per organisation, pool and day here). */
  capped: (notice: CappedNotice) => void;
  log: Logger;
}

const CACHE_MS = 60_000;
/** Mail that waits for capacity is looked at again at least this often (a pool may have changed). */
const RELOOK_MS = 3_600_000;

export class SourceSelector {
  readonly #o: SelectorOptions;
  readonly #configured: Set<string>;
  readonly #cache = new TtlCache<OrganizationPools>(CACHE_MS);
  readonly #turns = new Map<string, number>();
  readonly #noticed = new Set<string>();

  constructor(options: SelectorOptions) {
    this.#o = options;
    this.#configured = new Set(options.ips);
  }

  /** Assignments or pools changed: read them again. */
  forget(): void {
    this.#cache.clear();
  }

  /** The pool a message of this organisation, domain and author leaves from. */
  async poolFor(
    organizationId: string,
    domainId: string | null,
    fromAddress: string | null,
  ): Promise<ResolvedPool> {
    const pools = await this.#cache.get(organizationId, () => this.#load(organizationId));
    const mailboxPool = fromAddress ? pools.mailboxes.get(fromAddress.toLowerCase()) : undefined;
    const domainPool = domainId ? pools.domains.get(domainId) : undefined;
    return (
      (mailboxPool && pools.byId.get(mailboxPool)) ||
      (domainPool && pools.byId.get(domainPool)) ||
      pools.fallback
    );
  }

  async pick(query: SourceQuery): Promise<SourceGrant | SourceWait> {
    const { ledger } = this.#o;
    await ledger.ready();
    const pool = await this.poolFor(query.organizationId, query.domainId, query.fromAddress);
    const day = ledger.today();
    const units = Math.max(1, query.recipients);
    const taken: SourceGrant['taken'] = [];
    const take = async (ip: string): Promise<boolean> => {
      if (taken.some((t) => t.ip === ip)) return true;
      const cap = capOn(pool.curve, ledger.dayOf(ip, day));
      if (!(await ledger.take(ip, day, cap, units))) return false;
      taken.push({ ip, cap });
      return true;
    };
    const candidates = { 4: [] as string[], 6: [] as string[] };
    for (const family of [4, 6] as const) {
      const members = family === 4 ? pool.v4 : pool.v6;
      if (!members.length) continue;
      const start = this.#turn(`${pool.key}/${family}`, members.length);
      const turn = members.map((_, i) => members[(start + i) % members.length]);
      // The first with capacity is preferred (taken now); those after it stay possible.
      for (const [i, ip] of turn.entries()) {
        if (!(await take(ip))) continue;
        candidates[family] = turn.slice(i);
        break;
      }
    }
    if (!taken.length) return { wait: this.#wait(query.organizationId, pool, day, units) };
    return { source: { ipv4: candidates[4], ipv6: candidates[6], take }, day, units, taken };
  }

  /** After the attempt: the address it left from is counted; capacity taken on the others goes back. */
  settle(grant: SourceGrant, used: string | null): void {
    for (const { ip, cap } of grant.taken) {
      if (ip === used) this.#o.ledger.used(ip, grant.day, cap, grant.units);
      else this.#o.ledger.giveBack(ip, grant.day, cap, grant.units);
    }
  }

  #wait(organizationId: string, pool: ResolvedPool, day: string, units: number): SourceWait['wait'] {
    const now = this.#o.clock.now();
    const until = new Date(Date.now() + Math.min(untilNextDay(now), RELOOK_MS));
    const label = pool.id ? `pool "${pool.name}"` : 'the installation’s sending IPs';
    const members = [...pool.v4, ...pool.v6];
    if (!members.length) {
      const gone = pool.unconfigured.length
        ? ` (its IPs ${pool.unconfigured.join(', ')} are not in MAILROOM_OUTBOUND_IPS)`
        : '';
      return { until, reason: `4.3.5 waiting for a sending IP: ${label} has none that can be used${gone}` };
    }
    const ips = members.map((ip) => {
      const warmupDay = this.#o.ledger.dayOf(ip, day);
      return { ip, warmupDay, cap: capOn(pool.curve, warmupDay) };
    });
    const key = `${organizationId}|${pool.key}|${day}`;
    if (!this.#noticed.has(key)) {
      if (this.#noticed.size > 10_000) this.#noticed.clear();
      this.#noticed.add(key);
      this.#o.capped({ organizationId, pool, day, ips });
    }
    const caps = ips.map((i) => `${i.ip} day ${i.warmupDay}: ${i.cap}`).join(', ');
    const bigger = ips.every((i) => units > i.cap)
      ? `; it has ${units} recipients at one domain, more than any IP's cap, and waits for a day whose cap is that large`
      : '';
    return {
      until,
      reason: `4.7.0 waiting for warmup capacity: every IP of ${label} used today's cap (${caps} recipients a day)${bigger}; sent when a new UTC day (after ${day}) gives them capacity`,
    };
  }

  #turn(key: string, size: number): number {
    const turn = this.#turns.get(key) ?? 0;
    this.#turns.set(key, (turn + 1) % size);
    return turn % size;
  }

  async #load(organizationId: string): Promise<OrganizationPools> {
    const snapshot = await this.#o.load(organizationId);
    const resolve = (p: PoolSnapshot['pools'][number]): ResolvedPool =>
      this.resolve(p.id, p.name, curveOf(p.warmup, p.warmupCaps), p.ips);
    const byId = new Map(snapshot.pools.map((p) => [p.id, resolve(p)]));
    const preferred = snapshot.pools.find((p) => p.isDefault);
    return {
      byId,
      domains: new Map(snapshot.domains.map((d) => [d.domainId, d.poolId])),
      mailboxes: new Map(snapshot.mailboxes.map((m) => [m.address, m.poolId])),
      fallback: preferred ? byId.get(preferred.id)! : this.installation(),
    };
  }

  /** Every configured IP, under the installation's curve: mail with no pool. */
  installation(): ResolvedPool {
    return this.resolve(null, null, this.#o.installationCurve, this.#o.ips);
  }

  resolve(id: string | null, name: string | null, curve: Curve, ips: string[]): ResolvedPool {
    const usable = ips.filter((ip) => this.#configured.has(ip));
    return {
      key: id ?? 'default',
      id,
      name,
      curve,
      v4: usable.filter((ip) => familyOf(ip) === 4),
      v6: usable.filter((ip) => familyOf(ip) === 6),
      unconfigured: ips.filter((ip) => !this.#configured.has(ip)),
    };
  }
}
