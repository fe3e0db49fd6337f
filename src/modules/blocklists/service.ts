// Blocklist monitoring: an organisation's targets (the installation's sending IPs from
// MAILROOM_OUTBOUND_IPS, the IPs it added, its domains, the domains its recent mail links to) are asked
// of every list of their kind, on a
// schedule and on demand. Each (target, list) keeps its current status; a change between listed and
// not listed is an event, written in the transaction that records it. An error (timeout, refused
// query, odd answer) is recorded but changes neither state: it says nothing about the listing.
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { BlobStore } from '../../core/blobs.ts';
import { forEachLimit } from '../../core/concurrency.ts';
import type { Db } from '../../core/db.ts';
import { conflict, notFound, validationFailed } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { DomainsService } from '../domains/service.ts';
import { type EventInput, type EventsService, eventOf } from '../events/service.ts';
import { type Outcome, type Prober, prober } from './dnsbl.ts';
import { blocklistDelisted, blocklistListed } from './events.ts';
import { linkDomains, messageLinkDomains } from './links.ts';
import type { Blocklist, TargetKind } from './lists.ts';
import * as store from './store.ts';
import type { BlocklistIpRow, BlocklistResultRow } from './tables.ts';

export interface BlocklistsOptions {
  db: Db;
  blobs: BlobStore;
  events: EventsService;
  domains: DomainsService;
  log: Logger;
  lists: Blocklist[];
  /** MAILROOM_OUTBOUND_IPS: monitored for every organisation (they all send through them). */
  outboundIps: string[];
  dnsServers: string[];
  timeoutMs: number;
  concurrency: number;
  intervalMs: number;
}

export interface Target {
  target: string;
  kind: TargetKind;
  source: 'settings' | 'api' | 'domain' | 'link';
}

export interface TargetStatus extends Target {
  results: (BlocklistResultRow & { status: 'listed' | 'clear' | 'error'; delistUrl: string | null })[];
}

const SWEEP_BATCH = 10;
/** Links are read from the organisation's outbound mail of the last week, the newest messages first. */
const LINK_WINDOW_MS = 7 * 86_400_000;
const LINK_MESSAGES = 500;
const MAX_LINK_DOMAINS = 200;
const LINK_READ_BATCH = 25;
const SWEEP_LEASE_MS = 15 * 60_000;

export class BlocklistsService {
  readonly #o: BlocklistsOptions;

  constructor(options: BlocklistsOptions) {
    this.#o = options;
  }

  get lists(): Blocklist[] {
    return this.#o.lists;
  }

  /** Every target of the organisation: settings IPs, API IPs, then its domains. */
  async targets(organizationId: string): Promise<Target[]> {
    const targets: Target[] = this.#o.outboundIps.map((ip) => ({
      target: ip,
      kind: 'ip',
      source: 'settings',
    }));
    for (const row of await store.ipsOf(this.#o.db, organizationId)) {
      targets.push({ target: row.ip, kind: 'ip', source: 'api' });
    }
    const own = new Set<string>();
    for (let after: string | null = null; ; ) {
      const page = await this.#o.domains.page(organizationId, after, 500);
      for (const d of page) {
        targets.push({ target: d.name, kind: 'domain', source: 'domain' });
        own.add(d.name);
      }
      if (page.length < 500) break;
      after = page[page.length - 1].name;
    }
    for (const { domain } of await store.linksOf(this.#o.db, organizationId))
      if (!own.has(domain)) targets.push({ target: domain, kind: 'domain', source: 'link' });
    return targets;
  }

  /** Every target, with the link domains read afresh first: what a check asks about. */
  async #targetsToCheck(organizationId: string): Promise<Target[]> {
    await this.refreshLinks(organizationId);
    return this.targets(organizationId);
  }

  /**
   * Reads the link domains of the organisation's recent outbound mail afresh (before each check): the
   * URLs of each message's text and HTML (its stored text when the message itself is gone).
   */
  async refreshLinks(organizationId: string): Promise<void> {
    const since = new Date(Date.now() - LINK_WINDOW_MS);
    const messages = await store.recentOutbound(this.#o.db, organizationId, since, LINK_MESSAGES);
    const links = new Map<string, Date>();
    // Each message whole (text and HTML), a few at a time: raw messages can be large.
    for (let i = 0; i < messages.length && links.size < MAX_LINK_DOMAINS; i += LINK_READ_BATCH) {
      const batch = messages.slice(i, i + LINK_READ_BATCH);
      const raws = await this.#o.blobs.getMany(batch.map((m) => ({ organizationId, id: m.blobId })));
      for (const m of batch) {
        const found = new Set<string>();
        const raw = raws.get(m.blobId);
        if (raw) await messageLinkDomains(raw, found).catch(() => found);
        else if (m.bodyText !== null) linkDomains(m.bodyText, found);
        // Newest first: the first sighting is the newest.
        for (const domain of found) {
          if (links.size >= MAX_LINK_DOMAINS) break;
          if (!links.has(domain)) links.set(domain, m.receivedAt);
        }
      }
    }
    // A domain no longer linked to takes its results with it (its listing is no longer this sender's).
    await this.#o.db.transaction((tx) => store.replaceLinks(tx, organizationId, links));
  }

  async status(organizationId: string, only?: Set<string>): Promise<TargetStatus[]> {
    const [targets, results] = await Promise.all([
      this.targets(organizationId),
      store.resultsOf(this.#o.db, organizationId),
    ]);
    const byTarget = Map.groupBy(results, (r) => r.target);
    const delist = new Map(this.#o.lists.map((l) => [l.zone, l.delistUrl]));
    return targets
      .filter((t) => !only || only.has(t.target))
      .map((t) => ({
        ...t,
        results: (byTarget.get(t.target) ?? []).map((r) => ({
          ...r,
          status: r.error ? ('error' as const) : r.listed ? ('listed' as const) : ('clear' as const),
          delistUrl: delist.get(r.list) ?? null,
        })),
      }));
  }

  /** Checks now (every target, or those named) and answers their status. */
  async check(organizationId: string, names?: string[]): Promise<TargetStatus[]> {
    const targets = await this.#targetsToCheck(organizationId);
    let only: Set<string> | undefined;
    if (names?.length) {
      only = new Set(names.map((n) => normaliseTarget(n)));
      const monitored = new Set(targets.map((t) => t.target));
      const unknown = [...only].filter((n) => !monitored.has(n));
      if (unknown.length) throw validationFailed('targets', `not monitored: ${unknown.join(', ')}`);
    }
    await store.ensureOrganization(this.#o.db, organizationId);
    await this.#check(organizationId, targets, only, this.#prober());
    return this.status(organizationId, only);
  }

  /** The IPs the organisation added through the API (MAILROOM_OUTBOUND_IPS are in `status`). */
  ips(organizationId: string): Promise<BlocklistIpRow[]> {
    return store.ipsOf(this.#o.db, organizationId);
  }

  async addIp(organizationId: string, input: string): Promise<BlocklistIpRow> {
    const ip = normaliseIp(input);
    if (!ip) throw validationFailed('ip', 'must be an IPv4 or IPv6 address');
    if (this.#o.outboundIps.includes(ip))
      throw conflict(`${ip} is already monitored (MAILROOM_OUTBOUND_IPS)`);
    return this.#o.db.transaction(async (tx) => {
      const row = await store.insertIp(tx, { id: newId(), organizationId, ip });
      if (!row) throw conflict(`${ip} is already monitored`);
      await store.ensureOrganization(tx, organizationId);
      return row;
    });
  }

  async removeIp(organizationId: string, input: string): Promise<void> {
    const ip = normaliseIp(input);
    if (!ip) throw notFound('Monitored IP');
    await this.#o.db.transaction(async (tx) => {
      if (!(await store.deleteIp(tx, organizationId, ip))) throw notFound('Monitored IP');
    });
  }

  /** Starts monitoring an organisation's targets on the schedule (a domain was added), inside `tx`. */
  monitorIn(tx: Db, organizationId: string): Promise<void> {
    return store.ensureOrganization(tx, organizationId);
  }

  /** The scheduled sweep: checks every organisation not checked for an interval; one DNS cache for all. */
  async checkDue(): Promise<number> {
    const dns = this.#prober();
    let checked = 0;
    for (;;) {
      const due = new Date(Date.now() - this.#o.intervalMs);
      const ids = await store.claimDue(this.#o.db, due, SWEEP_LEASE_MS, SWEEP_BATCH);
      for (const id of ids) {
        try {
          await this.#check(id, await this.#targetsToCheck(id), undefined, dns);
          checked++;
        } catch (err) {
          // Its lease runs out and a later sweep tries again.
          this.#o.log.warn({ err, organizationId: id }, 'blocklist check failed');
        }
      }
      if (ids.length < SWEEP_BATCH) return checked;
    }
  }

  #prober(): Prober {
    return prober({ servers: this.#o.dnsServers, timeoutMs: this.#o.timeoutMs });
  }

  async #check(organizationId: string, targets: Target[], only: Set<string> | undefined, dns: Prober) {
    const pairs = targets
      .filter((t) => !only || only.has(t.target))
      .flatMap((t) =>
        this.#o.lists
          .filter((l) => l.kind === t.kind && (l.ipv6 || isIP(t.target) !== 6))
          .map((list) => ({ ...t, list, outcome: null as Outcome | null })),
      );
    await forEachLimit(pairs, this.#o.concurrency, async (p) => {
      p.outcome = await dns.probe(p.list, p.target, p.kind);
    });
    await this.#record(organizationId, targets, pairs, !only);
  }

  async #record(
    organizationId: string,
    targets: Target[],
    checked: { target: string; kind: TargetKind; list: Blocklist; outcome: Outcome | null }[],
    complete: boolean,
  ): Promise<void> {
    const now = new Date();
    await this.#o.db.transaction(async (tx) => {
      await store.lockOrganization(tx, organizationId);
      const previousRows = await store.resultsOf(tx, organizationId);
      const previous = new Map(previousRows.map((r) => [`${r.target} ${r.list}`, r]));
      const rows: BlocklistResultRow[] = [];
      const events: EventInput[] = [];
      for (const { target, kind, list, outcome } of checked) {
        if (!outcome) continue;
        const prev = previous.get(`${target} ${list.zone}`);
        const base = { organizationId, target, kind, list: list.zone, checkedAt: now };
        const event = { target, kind, list: list.zone, delist_url: list.delistUrl };
        if ('error' in outcome) {
          rows.push({
            ...base,
            listed: prev?.listed ?? false,
            code: prev?.listed ? prev.code : outcome.code,
            meaning: prev?.listed ? prev.meaning : null,
            error: outcome.error,
            listedSince: prev?.listedSince ?? null,
          });
        } else if (outcome.listed) {
          rows.push({
            ...base,
            listed: true,
            code: outcome.code,
            meaning: outcome.meaning,
            error: null,
            listedSince: prev?.listed ? prev.listedSince : now,
          });
          if (!prev?.listed) {
            events.push(
              eventOf(blocklistListed, organizationId, {
                ...event,
                code: outcome.code,
                meaning: outcome.meaning,
              }),
            );
          }
        } else {
          rows.push({ ...base, listed: false, code: null, meaning: null, error: null, listedSince: null });
          if (prev?.listed) {
            events.push(
              eventOf(blocklistDelisted, organizationId, {
                ...event,
                code: prev.code,
                meaning: prev.meaning,
              }),
            );
          }
        }
      }
      await store.upsertResults(tx, rows);
      const monitored = new Set(targets.map((t) => t.target));
      await store.deleteResults(
        tx,
        organizationId,
        [...new Set(previousRows.map((r) => r.target))].filter((t) => !monitored.has(t)),
      );
      if (events.length) await this.#o.events.emitMany(tx, events);
      if (complete) await store.markChecked(tx, organizationId, now);
    });
  }
}

/** An IP address in canonical form (IPv6 compressed, lower case), or null. */
export function normaliseIp(input: string): string | null {
  const ip = input.trim();
  const version = isIP(ip);
  if (version === 4) return ip;
  if (version === 6) return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  return null;
}

function normaliseTarget(input: string): string {
  return normaliseIp(input) ?? input.trim().toLowerCase().replace(/\.$/, '');
}
