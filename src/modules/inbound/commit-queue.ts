// Group commit for accepted messages. Each SMTP session waits for its message to be durable before it
// answers 250, and many sessions do so at once: rather than one transaction each, the messages that
// arrive while a commit is under way go together in the next one. With the blobs in the database that
// is a single statement (raw bytes, envelopes and places in the processing queue, atomic as any
// statement), on PostgreSQL in a transaction of its own only to be planned generically (core/db.ts
// batchStatement): the same few round trips however many messages it carries. A session's 250 still waits for the
// commit that holds its message, so the guarantee is unchanged.
import type { BlobStore, NewBlob } from '../../core/blobs.ts';
import { batchStatement, batchTransaction, type Db } from '../../core/db.ts';
import { GroupCommit } from '../../core/group-commit.ts';
import { type AcceptedMessage, insertAccepted } from './store.ts';

export interface Accepted {
  rows: AcceptedMessage[];
  raw: Buffer;
}

/** Most messages one transaction carries (bounds statement size and the blast radius of a failure). */
const MAX_BATCH = 64;
/** Transactions in flight at once: the next batch fills while one commits, without waiting for it. */
const MAX_FLUSHES = 1;

export class CommitQueue {
  readonly #db: Db;
  readonly #blobs: BlobStore;
  readonly #committed: () => void;
  readonly #batches = new GroupCommit<Accepted, void>({
    maxBatch: MAX_BATCH,
    maxFlushes: MAX_FLUSHES,
    write: async (batch) => {
      await this.#write(batch.map((p) => p.item));
      for (const p of batch) p.resolve();
      this.#committed();
    },
  });

  /** `committed` is called after each commit (processing in this process can start at once). */
  constructor(db: Db, blobs: BlobStore, committed: () => void) {
    this.#db = db;
    this.#blobs = blobs;
    this.#committed = committed;
  }

  /** Resolves once the message and its place in the processing queue are committed. */
  commit(accepted: Accepted): Promise<void> {
    return this.#batches.add(accepted);
  }

  async #write(batch: Accepted[]): Promise<void> {
    const rows = batch.flatMap((w) => w.rows);
    const blobs: NewBlob[] = batch.flatMap((w) =>
      w.rows.map((r) => ({ organizationId: r.organizationId, id: r.blobId, data: w.raw })),
    );
    const blobsInsert = this.#blobs.insertStatement?.(blobs);
    if (blobsInsert !== undefined) {
      await batchStatement(this.#db, (db) => insertAccepted(db, rows, blobsInsert ?? undefined));
      return;
    }
    await batchTransaction(this.#db, async (tx) => {
      await this.#blobs.put(tx, blobs);
      await insertAccepted(tx, rows);
    });
  }
}
