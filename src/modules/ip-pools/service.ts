// IP pools: an organisation's groups of the installation's sending IPs (MAILROOM_OUTBOUND_IPS), assigned
// to its domains and mailboxes; the warmup of each IP; and each IP's reverse DNS (PTR, FCrDNS, HELO) and
// blocklist status. Delivery asks `sources` which local addresses a message leaves from.
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.ts';
import { forEachLimit } from '../../core/concurrency.ts';
import type { Db } from '../../core/db.ts';
import type { DnsServer } from '../../core/dns.ts';
import { AppError, conflict, notFound, validationFailed } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { offsetOf, type PageRequest, toPage } from '../../core/pagination.ts';
import type { BlocklistsService } from '../blocklists/service.ts';
import type { DomainsService } from '../domains/service.ts';
import { eventOf, type EventsService } from '../events/service.ts';
import type { HealthInput, HealthInputProvider } from '../health/inputs/types.ts';
import type { MailboxesService } from '../mailboxes/service.ts';
import { canonicalIp, familyOf, isLocalAddress } from './addresses.ts';
import { type Curve, type CurveKind, type CurveName, capOn, curveOf, namedCurve } from './curves.ts';
import {
  ipPoolAssigned,
  ipPoolCapped,
  ipPoolCreated,
  ipPoolDeleted,
  ipPoolUnassigned,
  ipPoolUpdated,
  sendingIpPtrFailed,
  sendingIpPtrPassed,
} from './events.ts';
import { ptrInput } from './health.ts';
import { utcDay, WarmupLedger, warmupDay } from './ledger.ts';
import { checkPtr } from './ptr.ts';
import { type CappedNotice, SourceSelector } from './selector.ts';
import * as store from './store.ts';
import type { PtrFinding, PtrStatus } from './tables.ts';

export type { Assignment } from './store.ts';

export interface IpPoolsOptions {
  db: Db;
  events: EventsService;
  domains: DomainsService;
  mailboxes: MailboxesService;
  blocklists: BlocklistsService;
  clock: Clock;
  log: Logger;
  /** MAILROOM_DNS_SERVERS, one resolver each (PTR and forward lookups). */
  dns: DnsServer[];
  /** MAILROOM_OUTBOUND_IPS. */
  ips: string[];
  /** MAILROOM_HOSTNAME: the HELO name of IPs without one of their own. */
  hostname: string;
  /** MAILROOM_OUTBOUND_IP_HELO. */
  heloNames: Record<string, string>;
  /** MAILROOM_OUTBOUND_IP_WARMUP: the curve of IPs used with no pool. */
  warmup: { curve: CurveName | 'custom'; caps: number[] | null };
  /** MAILROOM_OUTBOUND_IP_CHECK_INTERVAL. */
  checkIntervalMs: number;
}

/** A warmup curve as the API takes it: a name, or the daily caps. */
export type WarmupInput = CurveName | number[];

export interface PoolInput {
  name: string;
  ips: string[];
  warmup?: WarmupInput;
  is_default?: boolean;
}

export interface PoolChanges {
  name?: string;
  ips?: string[];
  warmup?: WarmupInput;
  is_default?: boolean;
}

export interface PoolDetail extends store.PoolRecord {
  curve: Curve;
  /** Members no longer in MAILROOM_OUTBOUND_IPS: kept, never used. */
  unconfigured: string[];
  domains: number;
  mailboxes: number;
}

export interface SendingIpView {
  ip: string;
  family: 4 | 6;
  heloName: string;
  pools: { id: string; name: string; isDefault: boolean; warmup: CurveKind; capToday: number | null }[];
  /** Mail with no pool of its own leaves from it (the default pool has it, or there is no default pool). */
  usedWithoutPool: boolean;
  warmup: {
    firstUsedOn: string | null;
    day: number | null;
    usedToday: number;
    /** Today's cap for mail with no pool (MAILROOM_OUTBOUND_IP_WARMUP); null: unlimited. */
    capToday: number | null;
  };
  ptr: {
    status: PtrStatus | 'unchecked';
    names: string[];
    confirmed: string[];
    heloMatches: boolean;
    findings: PtrFinding[];
    checkedAt: Date | null;
  };
  blocklists: {
    listed: boolean;
    listings: {
      list: string;
      code: string | null;
      meaning: string | null;
      listedSince: Date | null;
      delistUrl: string | null;
    }[];
    errors: number;
    checkedAt: Date | null;
  };
}

const CHECK_CONCURRENCY = 8;
const CHECK_LEASE_MS = 10 * 60_000;
/** Daily usage is kept this long; cap notices a week. */
const USAGE_KEPT_DAYS = 400;
const NOTICES_KEPT_DAYS = 7;
const DAY_MS = 86_400_000;

export class IpPoolsService implements HealthInputProvider {
  readonly #o: IpPoolsOptions;
  readonly #ledger: WarmupLedger;
  readonly #selector: SourceSelector;
  readonly #installationCurve: Curve;
  #ensured: Promise<void> | null = null;

  constructor(options: IpPoolsOptions) {
    this.#o = options;
    this.#installationCurve = curveOf(options.warmup.curve, options.warmup.caps);
    this.#ledger = new WarmupLedger({
      db: options.db,
      clock: options.clock,
      log: options.log,
      ips: options.ips,
    });
    this.#selector = new SourceSelector({
      ips: options.ips,
      installationCurve: this.#installationCurve,
      ledger: this.#ledger,
      clock: options.clock,
      load: (organizationId) => store.snapshot(options.db, organizationId),
      capped: (notice) => void this.#announceCapped(notice),
      log: options.log,
    });
  }

  /** What delivery asks for each remote message's local addresses; null: no sending IPs configured. */
  get sources(): SourceSelector | null {
    return this.#o.ips.length ? this.#selector : null;
  }

  /** The sending IPs' reverse DNS, scored by the health module (health.ts). */
  healthInputs(): HealthInput[] {
    return [
      ptrInput({
        ips: this.#o.ips,
        heloFor: (ip) => this.heloFor(ip),
        pools: (organizationId) => store.snapshot(this.#o.db, organizationId),
        records: (ips) => store.sendingIpRecords(this.#o.db, ips),
      }),
    ];
  }

  /** The HELO name delivery uses from an IP. */
  heloFor(ip: string): string {
    return this.#o.heloNames[ip] ?? this.#o.hostname;
  }

  /** Pools or assignments changed (here or in another process): delivery reads them again. */
  forget(): void {
    this.#selector.forget();
  }

  /** In a process that delivers: every sending IP has its row, and the ledger knows their first use. */
  async start(): Promise<void> {
    await this.#ensure();
    for (const ip of this.#o.ips) {
      if (!isLocalAddress(ip)) {
        this.#o.log.warn(
          { ip },
          'MAILROOM_OUTBOUND_IPS names an address this machine does not have: delivery cannot bind to it, and mail for it waits',
        );
      }
    }
    await this.#ledger.ready();
  }

  /** Writes the usage counters and gives back unspent warmup reservations. */
  close(): Promise<void> {
    return this.#ledger.close();
  }

  #ensure(): Promise<void> {
    this.#ensured ??= store.ensureSendingIps(this.#o.db, this.#o.ips).catch((err) => {
      this.#ensured = null;
      throw err;
    });
    return this.#ensured;
  }

  // ---- pools ------------------------------------------------------------------------------------------

  async list(organizationId: string, page: PageRequest) {
    const { rows, total } = await store.listPools(this.#o.db, organizationId, page.page_size, offsetOf(page));
    return toPage(await this.#details(rows), total, page);
  }

  async get(organizationId: string, id: string): Promise<PoolDetail> {
    const pool = await store.getPool(this.#o.db, organizationId, id);
    if (!pool) throw notFound('IP pool');
    return (await this.#details([pool]))[0];
  }

  async create(organizationId: string, input: PoolInput): Promise<PoolDetail> {
    const name = this.#name(input.name);
    const ips = this.#ips(input.ips);
    const curve = this.#curve(input.warmup ?? 'normal');
    const id = newId();
    await this.#o.db.transaction(async (tx) => {
      if (await store.nameTaken(tx, organizationId, name))
        throw conflict(`An IP pool named "${name}" exists`);
      // One default pool per organisation: the new one takes the place of the old.
      if (input.is_default) await this.#clearDefault(tx, organizationId, id);
      const pool = await store.insertPool(
        tx,
        {
          id,
          organizationId,
          name,
          warmup: curve.kind,
          warmupCaps: curve.kind === 'custom' ? [...curve.caps] : null,
          isDefault: input.is_default ?? false,
        },
        ips,
      );
      if (!pool) throw conflict(`An IP pool named "${name}" exists`);
      // The pool's IPs are watched on the blocklists from now on (the organisation is on their schedule).
      await this.#o.blocklists.monitorIn(tx, organizationId);
      await this.#o.events.emit(tx, ipPoolCreated, organizationId, poolEvent(pool));
    });
    return this.get(organizationId, id);
  }

  async update(organizationId: string, id: string, changes: PoolChanges): Promise<PoolDetail> {
    const set: Parameters<typeof store.updatePool>[3] = {};
    if (changes.name !== undefined) set.name = this.#name(changes.name);
    const ips = changes.ips === undefined ? undefined : this.#ips(changes.ips);
    if (changes.warmup !== undefined) {
      const curve = this.#curve(changes.warmup);
      set.warmup = curve.kind;
      set.warmupCaps = curve.kind === 'custom' ? [...curve.caps] : null;
    }
    if (changes.is_default !== undefined) set.isDefault = changes.is_default;
    await this.#o.db.transaction(async (tx) => {
      if (!(await store.lockPool(tx, organizationId, id))) throw notFound('IP pool');
      if (set.name && (await store.nameTaken(tx, organizationId, set.name, id)))
        throw conflict(`An IP pool named "${set.name}" exists`);
      if (set.isDefault) await this.#clearDefault(tx, organizationId, id);
      const row = await store.updatePool(tx, organizationId, id, set);
      if (!row) throw notFound('IP pool');
      if (ips) await store.setPoolIps(tx, id, organizationId, ips);
      const pool = await store.getPool(tx, organizationId, id);
      await this.#o.events.emit(tx, ipPoolUpdated, organizationId, poolEvent(pool!));
    });
    return this.get(organizationId, id);
  }

  /** Refused (409) while domains or mailboxes are assigned to it. */
  async delete(organizationId: string, id: string): Promise<void> {
    await this.#o.db.transaction(async (tx) => {
      if (!(await store.lockPool(tx, organizationId, id))) throw notFound('IP pool');
      const counts = (await store.assignmentCounts(tx, [id])).get(id)!;
      if (counts.domains || counts.mailboxes) {
        throw new AppError(
          409,
          'pool_in_use',
          `The pool is assigned to ${plural(counts.domains, 'domain')} and ${plural(counts.mailboxes, 'mailbox', 'mailboxes')}; unassign them first`,
          { extensions: { domains: counts.domains, mailboxes: counts.mailboxes } },
        );
      }
      const pool = await store.getPool(tx, organizationId, id);
      await store.deletePool(tx, organizationId, id);
      await this.#o.events.emit(tx, ipPoolDeleted, organizationId, poolEvent(pool!));
    });
  }

  /** The organisation's default pool, other than `id`, stops being one (announced). */
  async #clearDefault(tx: Db, organizationId: string, id: string): Promise<void> {
    const previous = await store.clearDefault(tx, organizationId, id);
    if (!previous) return;
    const pool = await store.getPool(tx, organizationId, previous);
    await this.#o.events.emit(tx, ipPoolUpdated, organizationId, poolEvent(pool!));
  }

  async #details(pools: store.PoolRecord[]): Promise<PoolDetail[]> {
    const counts = await store.assignmentCounts(
      this.#o.db,
      pools.map((p) => p.id),
    );
    const configured = new Set(this.#o.ips);
    return pools.map((p) => ({
      ...p,
      curve: curveOf(p.warmup, p.warmupCaps),
      unconfigured: p.ips.filter((ip) => !configured.has(ip)),
      ...counts.get(p.id)!,
    }));
  }

  #name(input: string): string {
    const name = input.trim();
    if (!name) throw validationFailed('name', 'must not be empty');
    return name;
  }

  /** Canonical, unique, and each one of MAILROOM_OUTBOUND_IPS. */
  #ips(input: string[]): string[] {
    if (!input.length) throw validationFailed('ips', 'a pool needs at least one IP');
    const ips = input.map((raw) => {
      const ip = canonicalIp(raw);
      if (!ip) throw validationFailed('ips', `"${raw}" is not an IPv4 or IPv6 address`);
      return ip;
    });
    const configured = new Set(this.#o.ips);
    const unknown = ips.filter((ip) => !configured.has(ip));
    if (unknown.length) {
      throw validationFailed(
        'ips',
        `${unknown.join(', ')} ${unknown.length > 1 ? 'are not sending IPs' : 'is not a sending IP'} of this installation (MAILROOM_OUTBOUND_IPS: ${this.#o.ips.join(', ') || 'none'})`,
      );
    }
    return [...new Set(ips)].sort();
  }

  #curve(input: WarmupInput): Curve {
    return typeof input === 'string' ? namedCurve(input) : { kind: 'custom', caps: [...input] };
  }

  // ---- assignments ----------------------------------------------------------------------------------

  async assignDomain(organizationId: string, poolId: string, domainId: string): Promise<store.Assignment> {
    const domain = await this.#o.domains.get(organizationId, domainId);
    return this.#o.db.transaction(async (tx) => {
      if (!(await store.lockPool(tx, organizationId, poolId))) throw notFound('IP pool');
      const previous = await store.assignDomain(tx, { domainId, organizationId, poolId, name: domain.name });
      if (previous !== poolId) {
        await this.#o.events.emit(tx, ipPoolAssigned, organizationId, {
          pool_id: poolId,
          target: 'domain',
          target_id: domainId,
          name: domain.name,
          previous_pool_id: previous,
        });
      }
      return { id: domainId, name: domain.name, poolId, createdAt: new Date() };
    });
  }

  async assignMailbox(organizationId: string, poolId: string, mailboxId: string): Promise<store.Assignment> {
    const mailbox = await this.#o.mailboxes.get(organizationId, mailboxId);
    const address = mailbox.address.toLowerCase();
    return this.#o.db.transaction(async (tx) => {
      if (!(await store.lockPool(tx, organizationId, poolId))) throw notFound('IP pool');
      const previous = await store.assignMailbox(tx, { mailboxId, organizationId, poolId, address });
      if (previous !== poolId) {
        await this.#o.events.emit(tx, ipPoolAssigned, organizationId, {
          pool_id: poolId,
          target: 'mailbox',
          target_id: mailboxId,
          name: address,
          previous_pool_id: previous,
        });
      }
      return { id: mailboxId, name: address, poolId, createdAt: new Date() };
    });
  }

  async unassignDomain(organizationId: string, poolId: string, domainId: string): Promise<void> {
    await this.#o.db.transaction(async (tx) => {
      if (!(await store.lockPool(tx, organizationId, poolId))) throw notFound('IP pool');
      const name = await store.unassignDomain(tx, organizationId, poolId, domainId);
      if (name === null) throw notFound('Assignment of the domain to this pool');
      await this.#o.events.emit(tx, ipPoolUnassigned, organizationId, {
        pool_id: poolId,
        target: 'domain',
        target_id: domainId,
        name,
      });
    });
  }

  async unassignMailbox(organizationId: string, poolId: string, mailboxId: string): Promise<void> {
    await this.#o.db.transaction(async (tx) => {
      if (!(await store.lockPool(tx, organizationId, poolId))) throw notFound('IP pool');
      const address = await store.unassignMailbox(tx, organizationId, poolId, mailboxId);
      if (address === null) throw notFound('Assignment of the mailbox to this pool');
      await this.#o.events.emit(tx, ipPoolUnassigned, organizationId, {
        pool_id: poolId,
        target: 'mailbox',
        target_id: mailboxId,
        name: address,
      });
    });
  }

  async assignments(organizationId: string, poolId: string, target: 'domain' | 'mailbox', page: PageRequest) {
    await this.get(organizationId, poolId);
    const read = target === 'domain' ? store.domainAssignments : store.mailboxAssignments;
    const { rows, total } = await read(this.#o.db, poolId, page.page_size, offsetOf(page));
    return toPage(rows, total, page);
  }

  // ---- sending IPs --------------------------------------------------------------------------------------

  /** Every sending IP as this organisation sees it: pools, warmup, reverse DNS and blocklist status. */
  async sendingIps(organizationId: string): Promise<SendingIpView[]> {
    const ips = this.#o.ips;
    if (!ips.length) return [];
    await this.#ensure();
    const today = utcDay(this.#o.clock.now());
    const [records, usage, pools, blocklist] = await Promise.all([
      store.sendingIpRecords(this.#o.db, ips),
      store.usageOn(this.#o.db, ips, today),
      store.allPools(this.#o.db, organizationId),
      this.#o.blocklists.status(organizationId, new Set(ips)),
    ]);
    const defaultPool = pools.find((p) => p.isDefault);
    const listings = new Map(blocklist.map((t) => [t.target, t.results]));
    const finite = (n: number) => (Number.isFinite(n) ? n : null);
    return ips.map((ip) => {
      const record = records.get(ip);
      const first = record?.firstUsedOn ?? null;
      const day = warmupDay(first, today);
      const heloName = this.heloFor(ip);
      const results = listings.get(ip) ?? [];
      const checked = results.map((r) => r.checkedAt.getTime());
      return {
        ip,
        family: familyOf(ip),
        heloName,
        pools: pools
          .filter((p) => p.ips.includes(ip))
          .map((p) => ({
            id: p.id,
            name: p.name,
            isDefault: p.isDefault,
            warmup: p.warmup,
            capToday: finite(capOn(curveOf(p.warmup, p.warmupCaps), day)),
          })),
        usedWithoutPool: defaultPool ? defaultPool.ips.includes(ip) : true,
        warmup: {
          firstUsedOn: first,
          day: first ? day : null,
          usedToday: usage.get(ip)?.sent ?? 0,
          capToday: finite(capOn(this.#installationCurve, day)),
        },
        ptr: {
          status: record?.ptrStatus ?? 'unchecked',
          names: record?.ptrNames ?? [],
          confirmed: record?.ptrConfirmed ?? [],
          heloMatches: (record?.ptrConfirmed ?? []).includes(heloName),
          findings: record?.ptrFindings ?? [],
          checkedAt: record?.ptrCheckedAt ?? null,
        },
        blocklists: {
          listed: results.some((r) => r.listed),
          listings: results
            .filter((r) => r.listed)
            .map((r) => ({
              list: r.list,
              code: r.code,
              meaning: r.meaning,
              listedSince: r.listedSince,
              delistUrl: r.delistUrl,
            })),
          errors: results.filter((r) => r.status === 'error').length,
          checkedAt: checked.length ? new Date(Math.max(...checked)) : null,
        },
      };
    });
  }

  /**
   * Checks now, for this organisation: the reverse DNS of every sending IP (or those named) and their
   * blocklist status; answers as `sendingIps` does.
   */
  async check(organizationId: string, names?: string[]): Promise<SendingIpView[]> {
    let ips = this.#o.ips;
    if (names?.length) {
      const wanted = names.map((n) => canonicalIp(n) ?? n.trim());
      const unknown = wanted.filter((ip) => !ips.includes(ip));
      if (unknown.length)
        throw validationFailed('ips', `not sending IPs of this installation: ${unknown.join(', ')}`);
      ips = [...new Set(wanted)];
    }
    if (ips.length) {
      await this.#ensure();
      await forEachLimit(ips, CHECK_CONCURRENCY, (ip) => this.#checkOne(ip));
      await this.#o.blocklists.check(organizationId, ips);
    }
    return this.sendingIps(organizationId);
  }

  /** The scheduled check: IPs whose reverse DNS was not checked for an interval, claimed under a lease. */
  async checkDue(): Promise<number> {
    if (!this.#o.ips.length) return 0;
    await this.#ensure();
    const due = await store.claimDueChecks(
      this.#o.db,
      this.#o.ips,
      new Date(Date.now() - this.#o.checkIntervalMs),
      CHECK_LEASE_MS,
    );
    await forEachLimit(due, CHECK_CONCURRENCY, (ip) =>
      this.#checkOne(ip).catch((err) => this.#o.log.warn({ err, ip }, 'sending IP check failed')),
    );
    const now = this.#o.clock.now().getTime();
    await store.prune(
      this.#o.db,
      utcDay(new Date(now - USAGE_KEPT_DAYS * DAY_MS)),
      utcDay(new Date(now - NOTICES_KEPT_DAYS * DAY_MS)),
    );
    return due.length;
  }

  async #checkOne(ip: string): Promise<void> {
    const result = await checkPtr(this.#o.dns, ip, this.heloFor(ip));
    await this.#o.db.transaction(async (tx) => {
      const before = await store.lockSendingIp(tx, ip);
      await store.recordPtr(tx, ip, result);
      if (result.status === 'error') return;
      const passed = result.status === 'pass';
      // A change of the definite result is announced; a first check only when it fails.
      if (before === passed || (before === null && passed)) return;
      const organizations = await store.organizationsWithIp(tx, ip);
      if (!organizations.length) return;
      const data = { ip, helo_name: result.heloName, ptr_names: result.names, findings: result.findings };
      await this.#o.events.emitMany(
        tx,
        organizations.map((o) => eventOf(passed ? sendingIpPtrPassed : sendingIpPtrFailed, o, data)),
      );
    });
  }

  /** `ip_pool.capped`, once per organisation, pool and day across every worker. */
  async #announceCapped(notice: CappedNotice): Promise<void> {
    try {
      await this.#o.db.transaction(async (tx) => {
        if (!(await store.noteCapped(tx, notice.organizationId, notice.pool.key, notice.day))) return;
        await this.#o.events.emit(tx, ipPoolCapped, notice.organizationId, {
          pool_id: notice.pool.id,
          pool_name: notice.pool.name,
          day: notice.day,
          ips: notice.ips.map((i) => ({ ip: i.ip, warmup_day: i.warmupDay, cap: i.cap })),
        });
      });
    } catch (err) {
      this.#o.log.error(
        { err, organizationId: notice.organizationId },
        'could not announce a capped IP pool',
      );
    }
  }
}

function poolEvent(pool: store.PoolRecord) {
  return {
    pool_id: pool.id,
    name: pool.name,
    ips: pool.ips,
    warmup: pool.warmup,
    warmup_caps: [...curveOf(pool.warmup, pool.warmupCaps).caps],
    is_default: pool.isDefault,
  };
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
