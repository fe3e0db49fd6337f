// The suppression list: addresses an organisation does not send to. A hard bounce adds the address;
// operators add and remove addresses by API. Mail to a suppressed address is held (with the reason),
// never dropped, so a release can still send it.
import type { Db } from '../../core/db.ts';
import { conflict, notFound, validationFailed } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import type { EventsService } from '../events/service.ts';
import { suppressionCreated, suppressionDeleted } from './events.ts';
import * as store from './store.ts';
import type { SuppressionReason, SuppressionRow } from './tables.ts';

const ADDRESS = /^[^\s@<>()",;:\\]{1,64}@[a-z0-9.-]{1,253}$/;

export interface SuppressionsServiceOptions {
  db: Db;
  events: EventsService;
}

export interface HardBounce {
  address: string;
  detail: string | null;
  messageId: string;
}

export class SuppressionsService {
  readonly #o: SuppressionsServiceOptions;

  constructor(options: SuppressionsServiceOptions) {
    this.#o = options;
  }

  list(organizationId: string, filter: store.SuppressionFilter, page: PageRequest) {
    return store
      .listSuppressions(this.#o.db, organizationId, { ...filter, q: filter.q?.toLowerCase() }, page)
      .then(({ rows, total }) => toPage(rows, total, page));
  }

  async get(organizationId: string, address: string): Promise<SuppressionRow> {
    const row = await store.suppressionByAddress(this.#o.db, organizationId, suppressionKey(address));
    if (!row) throw notFound('Suppression');
    return row;
  }

  async add(
    organizationId: string,
    input: { address: string; reason?: SuppressionReason | null; detail?: string | null },
  ): Promise<SuppressionRow> {
    const address = suppressionKey(input.address);
    if (!ADDRESS.test(address)) throw validationFailed('address', 'must be an email address');
    return this.#o.db.transaction(async (tx) => {
      const [row] = await this.#insert(tx, organizationId, [
        { address, reason: input.reason ?? 'manual', detail: input.detail ?? null, messageId: null },
      ]);
      if (!row) throw conflict(`${address} is already suppressed`);
      return row;
    });
  }

  async remove(organizationId: string, address: string): Promise<void> {
    await this.#o.db.transaction(async (tx) => {
      const removed = await this.removeIn(tx, organizationId, [address]);
      if (!removed.length) throw notFound('Suppression');
    });
  }

  /** Takes addresses off the list inside the caller's transaction (a released message was delivered). */
  async removeIn(tx: Db, organizationId: string, addresses: string[]): Promise<SuppressionRow[]> {
    const removed = await store.deleteSuppressions(tx, organizationId, addresses.map(suppressionKey));
    for (const row of removed) {
      await this.#o.events.emit(tx, suppressionDeleted, organizationId, {
        suppression_id: row.id,
        address: row.address,
        reason: row.reason,
      });
    }
    return removed;
  }

  /** Adds hard-bounced addresses inside the caller's transaction; already suppressed ones stay as they are. */
  addHardBouncesIn(tx: Db, organizationId: string, bounces: HardBounce[]): Promise<SuppressionRow[]> {
    return this.#insert(
      tx,
      organizationId,
      bounces.map((b) => ({ ...b, reason: 'hard_bounce' as const })),
    );
  }

  /**
   * Adds recipients who complained (feedback-loop reports matched to a message sent to them) inside the
   * caller's transaction; already suppressed ones stay as they are.
   */
  addComplaintsIn(
    tx: Db,
    organizationId: string,
    complaints: { address: string; detail: string | null; messageId: string }[],
  ): Promise<SuppressionRow[]> {
    return this.#insert(
      tx,
      organizationId,
      complaints.map((c) => ({ ...c, reason: 'complaint' as const })),
    );
  }

  /** The suppressed addresses among `addresses`, by lower-cased address. */
  async suppressedAmong(
    db: Db,
    organizationId: string,
    addresses: string[],
  ): Promise<Map<string, SuppressionRow>> {
    const rows = await store.suppressedAmong(db, organizationId, [...new Set(addresses.map(suppressionKey))]);
    return new Map(rows.map((r) => [r.address, r]));
  }

  async #insert(
    tx: Db,
    organizationId: string,
    entries: {
      address: string;
      reason: SuppressionReason;
      detail: string | null;
      messageId: string | null;
    }[],
  ): Promise<SuppressionRow[]> {
    const inserted = await store.insertSuppressions(
      tx,
      entries.map((e) => ({ id: newId(), organizationId, ...e, address: suppressionKey(e.address) })),
    );
    for (const row of inserted) {
      await this.#o.events.emit(tx, suppressionCreated, organizationId, {
        suppression_id: row.id,
        address: row.address,
        reason: row.reason,
        detail: row.detail,
        message_id: row.messageId,
      });
    }
    return inserted;
  }
}

/** Suppression matches addresses case-insensitively: mailbox providers treat local parts so. */
export function suppressionKey(address: string): string {
  return address.trim().toLowerCase();
}
