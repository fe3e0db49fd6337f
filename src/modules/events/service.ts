// Events: written in the transaction of the change that caused them (the outbox), announced to every
// process when that transaction commits (NOTIFY), and read back by the API, live streams and webhooks.
import type { SQL } from 'drizzle-orm';
import { executeTogether } from '../../core/bulk.ts';
import type { Db } from '../../core/db.ts';
import { notFound } from '../../core/errors.ts';
import type { EventData, EventDefinition } from '../../core/events.ts';
import { newId } from '../../core/ids.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import * as store from './store.ts';
import type { EventRow } from './tables.ts';

export type { EventFilter } from './store.ts';
export type EventRecord = EventRow;

/** One event to emit; build it with `eventOf` to keep `data` typed. */
export interface EventInput {
  definition: EventDefinition;
  organizationId: string;
  data: unknown;
}

export function eventOf<D extends EventDefinition>(
  definition: D,
  organizationId: string,
  data: EventData<D>,
): EventInput {
  return { definition, organizationId, data };
}

/** Runs inside the emitting transaction (webhooks queue their deliveries here). */
export type FanOut = (tx: Db, events: EventRecord[]) => Promise<void>;

/** A NOTIFY payload is limited to 8000 bytes; bigger events are announced by reference. */
const NOTIFY_LIMIT = 7_500;
const RETENTION_BATCH = 5_000;

export class EventsService {
  readonly #db: Db;
  readonly #fanOuts: FanOut[] = [];

  constructor(db: Db) {
    this.#db = db;
  }

  /** Registers work that must happen in the same transaction as every emitted event. */
  onEmit(fanOut: FanOut): void {
    this.#fanOuts.push(fanOut);
  }

  emit<D extends EventDefinition>(
    tx: Db,
    definition: D,
    organizationId: string,
    data: EventData<D>,
  ): Promise<EventRecord[]> {
    return this.emitMany(tx, [{ definition, organizationId, data }]);
  }

  /** Validates each payload against its declaration, stores, fans out and announces, all in `tx`. */
  async emitMany(tx: Db, inputs: EventInput[]): Promise<EventRecord[]> {
    const { records, insert, notify } = this.prepare(inputs);
    // The announcement goes with the insert (NOTIFY is sent at commit, after the fan-outs' writes too).
    await executeTogether(tx, [insert], notify);
    await this.fanOut(tx, records);
    return records;
  }

  /**
   * emitMany in two steps, for a caller that writes the events together with rows of its own: the
   * validated records, their insert and their announcement (a SELECT), to execute in `tx`; then
   * `fanOut(tx, records)`.
   */
  prepare(inputs: EventInput[]): { records: EventRecord[]; insert: SQL | null; notify: SQL | null } {
    const now = new Date();
    const records: EventRecord[] = inputs.map((input) => ({
      id: newId(),
      organizationId: input.organizationId,
      type: input.definition.type,
      data: input.definition.schema.parse(input.data),
      createdAt: now,
    }));
    return {
      records,
      insert: store.eventsInsert(records),
      notify: store.notifyStatement(records.map(notification)),
    };
  }

  /** After the records' insert, in the same transaction: hands them to the fan-outs (webhooks). */
  async fanOut(tx: Db, records: EventRecord[]): Promise<void> {
    if (records.length === 0) return;
    for (const fanOut of this.#fanOuts) await fanOut(tx, records);
  }

  async list(organizationId: string, filter: store.EventFilter, page: PageRequest) {
    const { rows, total } = await store.listEvents(this.#db, organizationId, filter, page);
    return toPage(rows.map(eventView), total, page);
  }

  async get(organizationId: string, id: string) {
    const row = await store.eventById(this.#db, organizationId, id);
    if (!row) throw notFound('Event');
    return row;
  }

  async exists(organizationId: string, id: string): Promise<boolean> {
    return (await store.eventById(this.#db, organizationId, id)) !== null;
  }

  /** Up to `limit` events after the cursor, oldest first (replay). */
  after(organizationId: string, filter: store.EventFilter, limit: number): Promise<EventRecord[]> {
    return store.eventsAfter(this.#db, organizationId, filter, limit);
  }

  byIds(ids: string[]): Promise<EventRecord[]> {
    return store.eventsByIds(this.#db, ids);
  }

  async deleteOlderThan(before: Date): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await store.deleteEventsBefore(this.#db, before, RETENTION_BATCH);
      total += n;
      if (n < RETENTION_BATCH) return total;
    }
  }
}

/** The public shape of an event: the API, the live stream and webhook bodies all use it. */
export function eventView(e: EventRecord) {
  return {
    id: e.id,
    type: e.type,
    organization_id: e.organizationId,
    created_at: e.createdAt.toISOString(),
    data: e.data,
  };
}

export type EventView = ReturnType<typeof eventView>;

function notification(e: EventRecord): string {
  const full = JSON.stringify(eventView(e));
  if (Buffer.byteLength(full) <= NOTIFY_LIMIT) return full;
  return JSON.stringify({ id: e.id, type: e.type, organization_id: e.organizationId, ref: true });
}

/** Parses a NOTIFY payload back into an event, or the id to load when it was announced by reference. */
export function parseNotification(payload: string): EventRecord | { ref: string } | null {
  try {
    const v = JSON.parse(payload) as EventView & { ref?: boolean };
    if (v.ref) return { ref: v.id };
    return {
      id: v.id,
      type: v.type,
      organizationId: v.organization_id,
      createdAt: new Date(v.created_at),
      data: v.data,
    };
  } catch {
    return null;
  }
}
