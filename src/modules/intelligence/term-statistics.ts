// The organisations' document frequencies (keywords and summaries weigh words by them), as one analysis
// worker sees them: what it read from the tables, remembered for a while, plus what it counted and has not
// written yet. Reading and writing every batch's thousands of terms was the largest part of the embedded
// engine's work in an analysis; most of a batch's words were read a moment before, and most of its counts
// add to rows the next batches add to again.
//
// What this costs: frequencies up to REMEMBER_MS old (they move slowly: a word's weight is the logarithm
// of a ratio over thousands of messages), and a crashed worker loses up to FLUSH_MS of counts. A drain
// writes what it counted before it ends.
import type { Db } from '../../core/db.ts';
import * as store from './store.ts';

/** A term's frequency read from the table is used for this long. */
const REMEMBER_MS = 120_000;
/** Counts are written at most this long after they were made (and when a drain ends). */
const FLUSH_MS = 5_000;
/** Terms remembered per process; past this the memory starts over. */
const MAX_REMEMBERED = 500_000;

interface Remembered {
  frequency: number;
  readAt: number;
}

interface Pending {
  documents: number;
  counts: Map<string, number>;
}

export class TermStatistics {
  readonly #remembered = new Map<string, Map<string, Remembered>>();
  #size = 0;
  #pending = new Map<string, Pending>();
  #pendingSince = 0;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** The organisation's frequencies of `terms`: the table's (remembered or read now) and this worker's unwritten counts. */
  async read(
    db: Db,
    organizationId: string,
    terms: string[],
  ): Promise<{ documents: number; frequency: Map<string, number> }> {
    const now = this.#now();
    if (this.#size + terms.length > MAX_REMEMBERED) this.#forget();
    let remembered = this.#remembered.get(organizationId);
    if (!remembered) {
      remembered = new Map();
      this.#remembered.set(organizationId, remembered);
    }
    const unknown: string[] = [];
    for (const term of terms) {
      const entry = remembered.get(term);
      if (!entry || now - entry.readAt > REMEMBER_MS) unknown.push(term);
    }
    const read = await store.termStats(db, organizationId, unknown);
    for (const term of unknown) {
      if (!remembered.has(term)) this.#size++;
      remembered.set(term, { frequency: read.frequency.get(term) ?? 0, readAt: now });
    }
    const pending = this.#pending.get(organizationId);
    const frequency = new Map<string, number>();
    for (const term of terms)
      frequency.set(term, (remembered.get(term)?.frequency ?? 0) + (pending?.counts.get(term) ?? 0));
    return { documents: read.documents + (pending?.documents ?? 0), frequency };
  }

  /** Counts `documents` messages holding, per term, `counts` of them: written by a later `flush`. */
  add(organizationId: string, documents: number, counts: Map<string, number>): void {
    if (!documents) return;
    if (!this.#pending.size) this.#pendingSince = this.#now();
    const pending = this.#pending.get(organizationId) ?? { documents: 0, counts: new Map() };
    pending.documents += documents;
    for (const [term, n] of counts) pending.counts.set(term, (pending.counts.get(term) ?? 0) + n);
    this.#pending.set(organizationId, pending);
  }

  /** Whether `flush` has counts to write: any with `force`, else once the oldest is FLUSH_MS old. */
  due(force = false): boolean {
    return this.#pending.size > 0 && (force || this.#now() - this.#pendingSince >= FLUSH_MS);
  }

  /** Writes the unwritten counts in `tx` when they are `due`. */
  async flush(tx: Db, force = false): Promise<void> {
    if (!this.due(force)) return;
    const writing = this.#pending;
    this.#pending = new Map();
    try {
      for (const [organizationId, { documents, counts }] of writing)
        await store.addTerms(tx, organizationId, documents, counts);
    } catch (error) {
      // Not written: counted again with whatever came meanwhile.
      for (const [organizationId, { documents, counts }] of writing)
        this.add(organizationId, documents, counts);
      throw error;
    }
    // What is remembered now holds them too (until it is read again).
    for (const [organizationId, { counts }] of writing) {
      const remembered = this.#remembered.get(organizationId);
      if (!remembered) continue;
      for (const [term, n] of counts) {
        const entry = remembered.get(term);
        if (entry) entry.frequency += n;
      }
    }
  }

  #forget(): void {
    this.#remembered.clear();
    this.#size = 0;
  }
}
