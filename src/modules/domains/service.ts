// Domains: names an organisation sends and receives mail for, their DKIM keys, the DNS records they
// need, and live verification of those records.
//
// Verification of one domain:
//   records   the exact set the domain needs now (ownership, MX, SPF, each published DKIM key, DMARC,
//             return path, and the optional MTA-STS and TLS-RPT records);
//   ask       every record of every configured resolver, outside any transaction;
//   settle    under the domain's row lock: ownership (an explicit check may take the name over from
//             another organisation), per-record flags (a resolver that could not answer keeps the
//             old flag), DKIM rotation steps, and the status;
//   announce  domain.dns_changed / verified / failed / dkim_activated, in the same transaction.
import type { Logger } from 'pino';
import { forEachLimit } from '../../core/concurrency.ts';
import { randomToken, type Secrets } from '../../core/crypto.ts';
import { databaseErrorCode, type Db } from '../../core/db.ts';
import type { DnsServer } from '../../core/dns.ts';
import { conflict, limitReached, notFound, validationFailed } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import type { EventInput, EventsService } from '../events/service.ts';
import { eventOf } from '../events/service.ts';
import { type ProviderAccountsService, viaProvider } from '../provider-accounts/service.ts';
import type { DomainAvailability, RegistrantContact, Registration } from '../../providers/registrar/types.ts';
import { type ApplyResult, applyRecords, type DnsChange, revertChanges } from './apply.ts';
import { type CheckContext, checkRecord, type RecordCheck } from './checks.ts';
import { type DkimAlgorithm, dkimSelector, generateDkimKey, type RsaKeySize } from './dkim.ts';
import {
  domainCreated,
  domainDeleted,
  domainDkimActivated,
  domainDkimRotated,
  domainDkimRotationUndone,
  domainDnsChanged,
  domainFailed,
  domainUpdated,
  domainVerified,
} from './events.ts';
import { InvalidDomainName, normaliseDomainName } from './names.ts';
import {
  DEFAULT_SETTINGS,
  type DomainSettings,
  mtaStsPolicy,
  type PublishedKey,
  REQUIRED_PURPOSES,
  type RequiredPurpose,
  type RequiredRecord,
  requiredRecords,
} from './records.ts';
import * as store from './store.ts';
import type { DkimKeyRow, DomainRow, DomainStatus } from './tables.ts';

const UNIQUE_VIOLATION = '23505';
const SWEEP_BATCH = 100;
/** How long a sweeper holds the domains it claimed before another may take them. */
const SWEEP_LEASE_MS = 10 * 60_000;

export interface DomainsOptions {
  db: Db;
  secrets: Secrets;
  events: EventsService;
  providers: ProviderAccountsService;
  log: Logger;
  dns: DnsServer[];
  hostname: string;
  spfTerm: string;
  verifyConcurrency: number;
  recheckIntervalMs: number;
  pendingRecheckIntervalMs: number;
  verifyWindowMs: number;
  dkimRotationGraceMs: number;
  /** Most domains an organisation may have (0: no limit). */
  maxPerOrganization: number;
}

export interface DkimChoice {
  algorithm?: DkimAlgorithm;
  bits?: RsaKeySize;
}

export interface DomainInput {
  name: string;
  is_active?: boolean;
  catch_all_target?: string | null;
  settings?: Partial<DomainSettings>;
  dns_provider_account_id?: string | null;
  dkim?: DkimChoice;
}

export type DomainChanges = Omit<Partial<DomainInput>, 'name' | 'dkim'>;

export interface Verification {
  domain: DomainRow;
  records: RecordCheck[];
}

const FLAG_COLUMN = {
  ownership: 'ownershipVerified',
  mx: 'mxVerified',
  spf: 'spfVerified',
  dkim: 'dkimVerified',
  dmarc: 'dmarcVerified',
  return_path: 'returnPathVerified',
} as const satisfies Record<RequiredPurpose, keyof DomainRow>;

export const settingsOf = (d: DomainRow): DomainSettings => ({ ...DEFAULT_SETTINGS, ...d.settings });

export class DomainsService {
  readonly #o: DomainsOptions;

  constructor(options: DomainsOptions) {
    this.#o = options;
  }

  // ---- CRUD --------------------------------------------------------------------------------------

  /** 403 when the organisation already has as many domains as it may (counted under its lock). */
  async #checkLimit(tx: Db, organizationId: string): Promise<void> {
    const limit = this.#o.maxPerOrganization;
    if (limit <= 0) return;
    const usage = await store.lockAndCountDomains(tx, organizationId);
    if (usage >= limit)
      throw limitReached(
        'domains',
        limit,
        usage,
        `This organisation may have ${limit} domains and has ${usage} (MAILROOM_ORGANIZATION_MAX_DOMAINS)`,
      );
  }

  async create(organizationId: string, input: DomainInput): Promise<DomainRow> {
    const { name, unicode } = nameOf(input.name);
    if (input.dns_provider_account_id)
      await this.#o.providers.get(organizationId, input.dns_provider_account_id);
    // Key generation (RSA 4096 takes a while) happens before the transaction holds anything.
    const key = await generateDkimKey(input.dkim?.algorithm ?? 'rsa', input.dkim?.bits ?? 2048);
    const now = new Date();
    try {
      return await this.#o.db.transaction(async (tx) => {
        if (await store.domainInOrganization(tx, organizationId, name)) {
          throw conflict(`${name} is already one of this organisation's domains`);
        }
        await this.#checkLimit(tx, organizationId);
        const domain = await store.insertDomain(tx, {
          id: newId(),
          organizationId,
          name,
          unicodeName: unicode,
          isActive: input.is_active ?? true,
          verificationToken: randomToken(18),
          catchAllTarget: input.catch_all_target ?? null,
          settings: input.settings ?? {},
          dnsProviderAccountId: input.dns_provider_account_id ?? null,
        });
        await store.insertKey(tx, {
          id: newId(),
          organizationId,
          domainId: domain.id,
          selector: dkimSelector(now, new Set()),
          algorithm: key.algorithm,
          bits: key.bits,
          publicKey: key.publicKey,
          privateKey: this.#o.secrets.encrypt(key.privateKeyPem),
          state: 'active',
          activatedAt: now,
        });
        await this.#o.events.emit(tx, domainCreated, organizationId, { domain_id: domain.id, name });
        return domain;
      });
    } catch (error) {
      if (databaseErrorCode(error) === UNIQUE_VIOLATION) {
        throw conflict(`${name} is already one of this organisation's domains`);
      }
      throw error;
    }
  }

  async list(organizationId: string, filter: store.DomainFilter, page: PageRequest) {
    const { rows, total } = await store.listDomains(this.#o.db, organizationId, filter, page);
    return toPage(rows, total, page);
  }

  /** Domains in name order after `after` (keyset pages, for exports that stream). */
  page(organizationId: string, after: string | null, limit: number): Promise<DomainRow[]> {
    return store.domainsAfter(this.#o.db, organizationId, after, limit);
  }

  /** A domain name as Mailroom stores it (lower case, punycode), or a 422 naming `field`. */
  normalisedName(input: string, field = 'name'): string {
    try {
      return normaliseDomainName(input).name;
    } catch (error) {
      if (error instanceof InvalidDomainName) throw validationFailed(field, error.message);
      throw error;
    }
  }

  async get(organizationId: string, id: string): Promise<DomainRow> {
    const domain = await store.domainById(this.#o.db, organizationId, id);
    if (!domain) throw notFound('Domain');
    return domain;
  }

  /** The names of every domain of these organisations, by organisation (mail intelligence's lookalikes). */
  namesByOrganization(organizationIds: string[]): Promise<Map<string, string[]>> {
    return store.domainNamesByOrganization(this.#o.db, organizationIds);
  }

  /** The organisation's domain called `name` (any case, IDN or punycode, trailing dot), or null. */
  async byName(organizationId: string, name: string): Promise<DomainRow | null> {
    let normalised: string;
    try {
      normalised = normaliseDomainName(name).name;
    } catch (error) {
      if (error instanceof InvalidDomainName) return null;
      throw error;
    }
    const found = await store.domainInOrganization(this.#o.db, organizationId, normalised);
    return found ? store.domainById(this.#o.db, organizationId, found.id) : null;
  }

  /** The domain's DKIM keys that are still published (pending, active, retiring). */
  keys(domainId: string): Promise<DkimKeyRow[]> {
    return store.keysOf(this.#o.db, domainId, ['pending', 'active', 'retiring']);
  }

  /** The organisation's domains among `ids` (others' and unknown ids are left out). */
  many(organizationId: string, ids: string[]): Promise<DomainRow[]> {
    return store.domainsByIds(this.#o.db, organizationId, ids);
  }

  /** The published DKIM keys of many domains, by domain id. */
  publishedKeys(domainIds: string[]): Promise<Map<string, DkimKeyRow[]>> {
    return store.publishedKeysOf(this.#o.db, domainIds);
  }

  async update(organizationId: string, id: string, changes: DomainChanges): Promise<DomainRow> {
    const domain = await this.get(organizationId, id);
    if (changes.dns_provider_account_id)
      await this.#o.providers.get(organizationId, changes.dns_provider_account_id);
    const set: Partial<store.NewDomain> = {};
    if (changes.is_active !== undefined) set.isActive = changes.is_active;
    if (changes.catch_all_target !== undefined) set.catchAllTarget = changes.catch_all_target;
    if (changes.settings) set.settings = { ...domain.settings, ...changes.settings };
    if (changes.dns_provider_account_id !== undefined)
      set.dnsProviderAccountId = changes.dns_provider_account_id;
    const changed = Object.keys(changes).filter((k) => changes[k as keyof DomainChanges] !== undefined);
    if (changed.length === 0) return domain;
    return this.#o.db.transaction(async (tx) => {
      const row = await store.updateDomain(tx, id, set);
      await this.#o.events.emit(tx, domainUpdated, organizationId, {
        domain_id: id,
        name: domain.name,
        changes: changed,
      });
      return row;
    });
  }

  async delete(organizationId: string, id: string): Promise<void> {
    await this.#o.db.transaction(async (tx) => {
      const domain = await store.domainById(tx, organizationId, id);
      if (!domain || !(await store.deleteDomain(tx, organizationId, id))) throw notFound('Domain');
      await this.#o.events.emit(tx, domainDeleted, organizationId, { domain_id: id, name: domain.name });
    });
  }

  // ---- records and DKIM ----------------------------------------------------------------------------

  async records(
    organizationId: string,
    id: string,
  ): Promise<{ domain: DomainRow; records: RequiredRecord[] }> {
    const domain = await this.get(organizationId, id);
    return { domain, records: this.#recordsOf(domain, await this.keys(domain.id)) };
  }

  #recordsOf(domain: DomainRow, keys: DkimKeyRow[]): RequiredRecord[] {
    return requiredRecords(
      { name: domain.name, verificationToken: domain.verificationToken, settings: settingsOf(domain) },
      keys.map((k) => ({
        selector: k.selector,
        algorithm: k.algorithm,
        publicKey: k.publicKey,
        state: k.state as PublishedKey['state'], // callers pass published keys only
      })),
      { hostname: this.#o.hostname, spfTerm: this.#o.spfTerm },
    );
  }

  /**
   * A new key, published alongside the current one. Signing switches to it once its record
   * verifies; the old key is then kept for the grace period and retired.
   */
  async rotateDkim(organizationId: string, id: string, choice: DkimChoice): Promise<DkimKeyRow> {
    await this.get(organizationId, id);
    const key = await generateDkimKey(choice.algorithm ?? 'rsa', choice.bits ?? 2048);
    return this.#o.db.transaction(async (tx) => {
      const domain = await store.lockDomain(tx, id);
      if (!domain || domain.organizationId !== organizationId) throw notFound('Domain');
      if ((await store.keysOf(tx, id, ['pending'])).length) {
        throw conflict(
          'a DKIM rotation is already waiting for its record to verify; publish it, or verify the domain',
        );
      }
      const row = await store.insertKey(tx, {
        id: newId(),
        organizationId,
        domainId: id,
        selector: dkimSelector(new Date(), await store.selectorsOf(tx, id)),
        algorithm: key.algorithm,
        bits: key.bits,
        publicKey: key.publicKey,
        privateKey: this.#o.secrets.encrypt(key.privateKeyPem),
        state: 'pending',
      });
      await this.#o.events.emit(tx, domainDkimRotated, organizationId, {
        domain_id: id,
        name: domain.name,
        selector: row.selector,
        algorithm: row.algorithm,
      });
      return row;
    });
  }

  /**
   * Undoes a rotation: the new key is retired, whether it still waits for its record (pending) or
   * already signs (active); in the second case the key it replaced signs again, if it is still in its
   * grace period. 409 when the key was replaced since, or is the domain's only signing key.
   */
  async undoDkimRotation(
    organizationId: string,
    id: string,
    selector: string,
  ): Promise<{ selector: string; restored: string | null }> {
    return this.#o.db.transaction(async (tx) => {
      const domain = await store.lockDomain(tx, id);
      if (!domain || domain.organizationId !== organizationId) throw notFound('Domain');
      const keys = await store.keysOf(tx, id, ['pending', 'active', 'retiring']);
      const key = keys.find((k) => k.selector === selector);
      if (!key || key.state === 'retiring') {
        throw conflict(`DKIM key ${selector} no longer signs or waits to: the rotation cannot be undone`);
      }
      let restored: DkimKeyRow | undefined;
      if (key.state === 'active') {
        restored = keys
          .filter((k) => k.state === 'retiring' && k.algorithm === key.algorithm)
          .sort((a, b) => (b.activatedAt?.getTime() ?? 0) - (a.activatedAt?.getTime() ?? 0))[0];
        if (!restored && !keys.some((k) => k.state === 'active' && k.id !== key.id)) {
          throw conflict(
            `DKIM key ${selector} is the domain's only signing key and the key it replaced is retired`,
          );
        }
      }
      // Retired first: one active key per algorithm.
      await store.updateKey(tx, key.id, { state: 'retired', retiredAt: new Date() });
      if (restored) await store.updateKey(tx, restored.id, { state: 'active', retireAfter: null });
      await this.#o.events.emit(tx, domainDkimRotationUndone, organizationId, {
        domain_id: id,
        name: domain.name,
        selector,
        restored_selector: restored?.selector ?? null,
      });
      return { selector, restored: restored?.selector ?? null };
    });
  }

  // ---- verification --------------------------------------------------------------------------------

  /** Checks every record now; `claim` lets a proven ownership take the name from another organisation. */
  async verify(organizationId: string, id: string): Promise<Verification> {
    const result = await this.#verify(await this.get(organizationId, id), { claim: true });
    if (!result) throw notFound('Domain');
    return result;
  }

  /** Checks every record now, as the scheduled re-check does: it never takes a name over. */
  async recheck(organizationId: string, id: string): Promise<Verification> {
    const result = await this.#verify(await this.get(organizationId, id), { claim: false });
    if (!result) throw notFound('Domain');
    return result;
  }

  /** Re-checks every domain that is due, `verifyConcurrency` at a time; returns how many were checked. */
  async recheckDue(): Promise<number> {
    let checked = 0;
    for (;;) {
      const due = await store.claimDueDomains(this.#o.db, SWEEP_BATCH, SWEEP_LEASE_MS);
      if (due.length === 0) return checked;
      const keys = await store.publishedKeysOf(
        this.#o.db,
        due.map((d) => d.id),
      );
      await forEachLimit(due, this.#o.verifyConcurrency, async (domain) => {
        try {
          await this.#verify(domain, { claim: false }, keys.get(domain.id));
        } catch (error) {
          this.#o.log.error({ err: error, domainId: domain.id }, 'domain re-check failed');
        }
      });
      checked += due.length;
    }
  }

  /** `current` as last read: the records to ask for; #settle re-reads it under lock to decide. */
  async #verify(
    current: DomainRow,
    options: { claim: boolean },
    published?: DkimKeyRow[],
  ): Promise<Verification | null> {
    const id = current.id;
    const keys = published ?? (await this.keys(id));
    const records = this.#recordsOf(current, keys);
    const context: CheckContext = {
      hostname: this.#o.hostname,
      spfTerm: this.#o.spfTerm,
      dkimAlgorithms: new Map(keys.map((k) => [k.selector, k.algorithm])),
    };
    const checks = await Promise.all(records.map((r) => checkRecord(r, this.#o.dns, context)));
    try {
      return await this.#o.db.transaction((tx) => this.#settle(tx, id, keys, checks, options));
    } catch (error) {
      if (databaseErrorCode(error) === UNIQUE_VIOLATION) {
        throw conflict(`another organisation took ${current.name} over at the same moment; verify again`);
      }
      throw error;
    }
  }

  async #settle(
    tx: Db,
    id: string,
    keys: DkimKeyRow[],
    checks: RecordCheck[],
    options: { claim: boolean },
  ): Promise<Verification | null> {
    const domain = await store.lockDomain(tx, id);
    if (!domain) return null;
    const now = new Date();
    const events: EventInput[] = [];
    const ref = { domain_id: domain.id, name: domain.name };

    await this.#settleOwnership(tx, domain, checks, options, events);
    const activated = await this.#settleDkim(tx, domain, keys, checks, now, events);

    const flags = {} as Record<RequiredPurpose, boolean>;
    const changes: { record: RequiredPurpose; verified: boolean; host: string; diagnosis: string }[] = [];
    for (const purpose of REQUIRED_PURPOSES) {
      const check =
        purpose === 'dkim'
          ? checks.find((c) => c.purpose === 'dkim' && c.selector === (activated ?? activeSelector(keys)))
          : checks.find((c) => c.purpose === purpose);
      const before = domain[FLAG_COLUMN[purpose]];
      // A resolver that could not answer, or a change still propagating, settles nothing.
      const after = !check
        ? false
        : check.status === 'verified'
          ? true
          : ['error', 'propagating'].includes(check.status)
            ? before
            : false;
      flags[purpose] = after;
      if (after !== before && check)
        changes.push({ record: purpose, verified: after, host: check.host, diagnosis: check.diagnosis });
    }

    const allVerified = REQUIRED_PURPOSES.every((p) => flags[p]);
    const overdue = now.getTime() - domain.createdAt.getTime() > this.#o.verifyWindowMs;
    const status: DomainStatus = allVerified
      ? 'verified'
      : domain.status === 'pending' && !overdue
        ? 'pending'
        : 'failed';
    if (changes.length)
      events.push(eventOf(domainDnsChanged, domain.organizationId, { ...ref, changes, status }));
    if (status === 'verified' && domain.status !== 'verified') {
      events.push(eventOf(domainVerified, domain.organizationId, ref));
    }
    if (status === 'failed' && domain.status !== 'failed') {
      const failing = REQUIRED_PURPOSES.filter((p) => !flags[p]);
      const reason =
        domain.status === 'pending'
          ? `not verified within ${Math.round(this.#o.verifyWindowMs / 3_600_000)} hours of being added`
          : `required records stopped verifying: ${failing.join(', ')}`;
      events.push(eventOf(domainFailed, domain.organizationId, { ...ref, reason, records: failing }));
    }

    const updated = await store.updateDomain(tx, id, {
      ...Object.fromEntries(REQUIRED_PURPOSES.map((p) => [FLAG_COLUMN[p], flags[p]])),
      status,
      dnsChecks: checks,
      lastCheckedAt: now,
      nextCheckAt: new Date(
        now.getTime() + (status === 'pending' ? this.#o.pendingRecheckIntervalMs : this.#o.recheckIntervalMs),
      ),
      verifiedAt: status === 'verified' && domain.status !== 'verified' ? now : domain.verifiedAt,
      failedAt: status === 'failed' && domain.status !== 'failed' ? now : domain.failedAt,
    });
    await this.#o.events.emitMany(tx, events);
    return { domain: updated, records: checks };
  }

  /**
   * Only one organisation holds a name. Proven ownership takes it from another organisation only on
   * an explicit check; scheduled re-checks never move a name.
   */
  async #settleOwnership(
    tx: Db,
    domain: DomainRow,
    checks: RecordCheck[],
    options: { claim: boolean },
    events: EventInput[],
  ): Promise<void> {
    const ownership = checks.find((c) => c.purpose === 'ownership')!;
    if (ownership.status !== 'verified' || domain.ownershipVerified) return;
    const holder = await store.lockOtherOwner(tx, domain.name, domain.organizationId);
    if (!holder) return;
    if (!options.claim) {
      ownership.status = 'mismatch';
      ownership.diagnosis = `Another organisation holds ${domain.name}. Your token is published: verify the domain (POST /v1/domains/${domain.id}/verify) to take it over`;
      return;
    }
    await store.updateDomain(tx, holder.id, {
      ownershipVerified: false,
      status: 'failed',
      failedAt: new Date(),
    });
    events.push(
      eventOf(domainFailed, holder.organizationId, {
        domain_id: holder.id,
        name: holder.name,
        reason: 'another organisation proved ownership of this domain with its own verification record',
        records: ['ownership'],
      }),
    );
  }

  /** A pending key whose record verified starts signing; retiring keys past their grace period go. */
  async #settleDkim(
    tx: Db,
    domain: DomainRow,
    keys: DkimKeyRow[],
    checks: RecordCheck[],
    now: Date,
    events: EventInput[],
  ): Promise<string | null> {
    for (const key of keys) {
      if (key.state === 'retiring' && key.retireAfter && key.retireAfter <= now) {
        await store.updateKey(tx, key.id, { state: 'retired', retiredAt: now });
      }
    }
    const pending = keys.find((k) => k.state === 'pending');
    const seen = pending && checks.find((c) => c.purpose === 'dkim' && c.selector === pending.selector);
    if (!pending || seen?.status !== 'verified') return null;
    // One active key per algorithm: a new key replaces its own kind, and a key of the other kind
    // signs alongside it (RSA and Ed25519 together, as RFC 8463 recommends while Ed25519 support grows).
    const previous = keys.find((k) => k.state === 'active' && k.algorithm === pending.algorithm);
    if (previous) {
      await store.updateKey(tx, previous.id, {
        state: 'retiring',
        retireAfter: new Date(now.getTime() + this.#o.dkimRotationGraceMs),
      });
    }
    await store.updateKey(tx, pending.id, { state: 'active', activatedAt: now });
    events.push(
      eventOf(domainDkimActivated, domain.organizationId, {
        domain_id: domain.id,
        name: domain.name,
        selector: pending.selector,
        previous_selector: previous?.selector ?? null,
      }),
    );
    return pending.selector;
  }

  /**
   * The MTA-STS policy for `mta-sts.<domain>`, served to senders at /.well-known/mta-sts.txt: only
   * for an active domain whose ownership is proven, so nobody can publish a policy for a name.
   */
  async mtaStsPolicy(policyHost: string): Promise<string | null> {
    const name = policyHost
      .toLowerCase()
      .replace(/:\d+$/, '')
      .replace(/^mta-sts\./, '');
    if (name === policyHost.toLowerCase()) return null;
    const domain = await store.ownedDomain(this.#o.db, name);
    if (!domain?.isActive) return null;
    return mtaStsPolicy(this.#o.hostname, settingsOf(domain).mta_sts_mode);
  }

  // ---- DNS automation ------------------------------------------------------------------------------

  /** Publishes every record through the domain's DNS provider, then verifies. */
  async applyDns(
    organizationId: string,
    id: string,
    providerAccountId: string | undefined,
  ): Promise<{
    provider_account_id: string;
    zone: string;
    results: ApplyResult[];
    verification: Verification;
  }> {
    const domain = await this.get(organizationId, id);
    const published = await this.#publish(domain, providerAccountId);
    return { ...published, verification: await this.verify(organizationId, id) };
  }

  /**
   * Publishes every record through the domain's own DNS provider account and re-checks them (as the
   * scheduled re-check does), keeping each write in `changes` so that `revertDns` can undo the run.
   */
  async republishDns(
    organizationId: string,
    id: string,
  ): Promise<{
    provider_account_id: string;
    zone: string;
    results: ApplyResult[];
    changes: DnsChange[];
    verification: Verification;
  }> {
    const domain = await this.get(organizationId, id);
    const changes: DnsChange[] = [];
    const published = await this.#publish(domain, undefined, changes);
    return { ...published, changes, verification: await this.recheck(organizationId, id) };
  }

  /** Undoes what a `republishDns` run wrote, through the same provider account. */
  async revertDns(
    organizationId: string,
    id: string,
    providerAccountId: string,
    changes: DnsChange[],
  ): Promise<{ reverted: number; skipped: number }> {
    const domain = await this.get(organizationId, id);
    const { provider } = await this.#o.providers.dnsProvider(organizationId, providerAccountId);
    return viaProvider(() => revertChanges(provider, domain.name, changes));
  }

  async #publish(
    domain: DomainRow,
    providerAccountId: string | undefined,
    journal?: DnsChange[],
  ): Promise<{ provider_account_id: string; zone: string; results: ApplyResult[] }> {
    const id = domain.id;
    const accountId = providerAccountId ?? domain.dnsProviderAccountId;
    if (!accountId) {
      throw validationFailed(
        'provider_account_id',
        'the domain has no DNS provider account; pass provider_account_id',
      );
    }
    const { provider } = await this.#o.providers.dnsProvider(domain.organizationId, accountId);
    const keys = await store.keysOf(this.#o.db, id, ['pending', 'active', 'retiring', 'retired']);
    const published = keys.filter((k) => k.state !== 'retired');
    const { zone, results } = await viaProvider(() =>
      applyRecords(provider, {
        domainId: id,
        domain: domain.name,
        records: this.#recordsOf(domain, published),
        retiredSelectors: keys.filter((k) => k.state === 'retired').map((k) => k.selector),
        spfTerm: this.#o.spfTerm,
        journal,
      }),
    );
    if (domain.dnsProviderAccountId !== accountId) {
      await store.updateDomain(this.#o.db, id, { dnsProviderAccountId: accountId });
    }
    return { provider_account_id: accountId, zone: zone.name, results };
  }

  // ---- registrar ------------------------------------------------------------------------------------

  async search(
    organizationId: string,
    accountId: string,
    candidates: string[],
  ): Promise<DomainAvailability[]> {
    const names = [...new Set(candidates.map((c) => nameOf(c).name))];
    const { registrar } = await this.#o.providers.registrar(organizationId, accountId);
    return viaProvider(() => registrar.check(names));
  }

  /** Registers the name if it is available, then adds it as a domain of the organisation. */
  async purchase(
    organizationId: string,
    input: PurchaseInput,
  ): Promise<{ registration: Registration; domain: DomainRow }> {
    const { name } = nameOf(input.name);
    if (await store.domainInOrganization(this.#o.db, organizationId, name)) {
      throw conflict(`${name} is already one of this organisation's domains`);
    }
    if (input.dns_provider_account_id)
      await this.#o.providers.get(organizationId, input.dns_provider_account_id);
    const registration = await this.register(organizationId, { ...input, name });
    const domain = await this.create(organizationId, {
      name,
      dns_provider_account_id: input.dns_provider_account_id,
    });
    return { registration, domain };
  }

  /** Registers the name through the registrar account when it is available (409 when it is not). */
  async register(
    organizationId: string,
    input: Omit<PurchaseInput, 'dns_provider_account_id'>,
  ): Promise<Registration> {
    const { name } = nameOf(input.name);
    const { registrar } = await this.#o.providers.registrar(organizationId, input.provider_account_id);
    const [availability] = await viaProvider(() => registrar.check([name]));
    if (!availability?.available) {
      throw conflict(
        `${name} is not available for registration${availability?.error ? `: ${availability.error}` : ''}`,
      );
    }
    const registration = await viaProvider(() =>
      registrar.register({
        name,
        years: input.years,
        contact: input.contact,
        nameservers: input.nameservers,
      }),
    );
    this.#o.log.info({ domain: name, orderId: registration.order_id }, 'domain registered');
    return registration;
  }

  /**
   * The domain's zone at its DNS provider (this account, or the domain's own), created when missing,
   * with the name servers the registrar must point to; the account becomes the domain's.
   */
  async ensureZone(
    organizationId: string,
    id: string,
    providerAccountId: string | undefined,
  ): Promise<{ zone: string; nameservers: string[]; created: boolean }> {
    const domain = await this.get(organizationId, id);
    const accountId = providerAccountId ?? domain.dnsProviderAccountId;
    if (!accountId)
      throw validationFailed(
        'provider_account_id',
        'the domain has no DNS provider account; pass provider_account_id',
      );
    const { provider } = await this.#o.providers.dnsProvider(organizationId, accountId);
    const { zone, nameservers, created } = await viaProvider(() => provider.ensureZone(domain.name));
    if (domain.dnsProviderAccountId !== accountId)
      await store.updateDomain(this.#o.db, id, { dnsProviderAccountId: accountId });
    return { zone: zone.name, nameservers, created };
  }

  /** Points the domain at other name servers through the registrar it was bought from. */
  async setNameservers(
    organizationId: string,
    id: string,
    accountId: string,
    nameservers: string[],
  ): Promise<void> {
    const domain = await this.get(organizationId, id);
    const { registrar } = await this.#o.providers.registrar(organizationId, accountId);
    await viaProvider(() => registrar.setNameservers(domain.name, nameservers));
  }
}

export type { DnsChange } from './apply.ts';
export type { RecordCheck } from './checks.ts';

export interface PurchaseInput {
  name: string;
  provider_account_id: string;
  years: number;
  contact: RegistrantContact;
  nameservers?: string[];
  dns_provider_account_id?: string;
}

function activeSelector(keys: DkimKeyRow[]): string | undefined {
  return keys.find((k) => k.state === 'active')?.selector;
}

function nameOf(input: string) {
  try {
    return normaliseDomainName(input);
  } catch (error) {
    if (error instanceof InvalidDomainName) throw validationFailed('name', error.message);
    throw error;
  }
}
