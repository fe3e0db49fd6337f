// The archive's own thread: it cuts what the database sends into batches, checks and hashes them,
// compresses the stream and hands the compressed bytes back (backup.ts holds the other end). On the
// main thread the bytes counted against the whole application's heap: collecting its garbage took a
// third of a backup's time there, more than hashing and compressing.
// On PostgreSQL this thread reads each table itself, through a COPY on a connection of its own that
// imports the backup's snapshot; from the embedded engine it gets each FETCH's answer from a binary
// cursor as the protocol's bytes, moved (not copied) from the database's thread through the main one.
import { Writable } from 'node:stream';
import { parentPort } from 'node:worker_threads';
import type pg from 'pg';
import { type ArchiveHeader, ArchiveWriter, CopyCutter, dataRows, type RowBatch } from './archive.ts';

/** Bytes of a batch of rows; compressed output is handed back in pieces of about a quarter of it. */
const BATCH_BYTES = 4 * 1024 * 1024;
const OUT_BYTES = 1024 * 1024;

/** A table as this thread reads it. */
export interface ThreadTable {
  name: string;
  /** Fields per row, the last `binaryFields` of them bytea. */
  width: number;
  binaryFields: number;
}

export type ThreadRequest =
  | { id: number; op: 'header'; header: ArchiveHeader; level: number }
  /** PostgreSQL: connect and read in the snapshot that `snapshot` names (pg_export_snapshot). */
  | { id: number; op: 'snapshot'; url: string; applicationName: string; snapshot: string }
  | { id: number; op: 'copy'; table: ThreadTable; select: string }
  /** The embedded engine: one FETCH's answer, the protocol messages moved here (`rows` DataRows). */
  | { id: number; op: 'fetched'; table: ThreadTable; buffer: ArrayBuffer; length: number; rows: number }
  | { id: number; op: 'end' };

export type ThreadControl = { op: 'written' } | { op: 'cancel' };

export type ThreadMessage =
  | { id: number; result: unknown }
  | { id: number; error: string; cancelled?: boolean }
  | { out: ArrayBuffer };

const port = parentPort;
if (!port) throw new Error('archive-thread runs as a worker thread');

/** Compressed bytes, gathered into pieces and sent back; each piece waits until the main thread wrote it. */
class ToMain extends Writable {
  #held: Buffer[] = [];
  #heldBytes = 0;
  readonly #waiting: (() => void)[] = [];

  constructor() {
    super({ highWaterMark: OUT_BYTES });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.#held.push(chunk);
    this.#heldBytes += chunk.length;
    if (this.#heldBytes < OUT_BYTES) done();
    else this.#send(done);
  }

  override _final(done: (err?: Error | null) => void): void {
    if (this.#heldBytes) this.#send(done);
    else done();
  }

  /** The main thread wrote the oldest piece sent. */
  written(): void {
    this.#waiting.shift()?.();
  }

  #send(done: () => void): void {
    // A copy of its own: zlib's output pieces share one allocation, which must not be moved away.
    const piece = new Uint8Array(this.#heldBytes);
    let at = 0;
    for (const part of this.#held) {
      piece.set(part, at);
      at += part.length;
    }
    this.#held = [];
    this.#heldBytes = 0;
    this.#waiting.push(done);
    port!.postMessage({ out: piece.buffer } satisfies ThreadMessage, [piece.buffer]);
  }
}

class Cancelled extends Error {}

/** One archive's state; the thread writes one archive after another (backup.ts keeps it for the next). */
class Session {
  readonly toMain = new ToMain();
  writer: ArchiveWriter | null = null;
  client: pg.Client | null = null;
  cancelled = false;

  archive(): ArchiveWriter {
    if (!this.writer) throw new Error('the archive has no header yet');
    return this.writer;
  }

  async write(table: ThreadTable, batch: RowBatch): Promise<void> {
    if (this.cancelled) throw new Cancelled();
    await this.archive().rows(table.name, batch.rows, batch.tuples, batch.binaryBytes);
  }

  async copyTable(table: ThreadTable, select: string): Promise<number> {
    const client = this.client;
    if (!client) throw new Error('no snapshot to read in');
    const { to: copyTo } = await import('pg-copy-streams');
    const cutter = new CopyCutter(table.width, table.binaryFields, BATCH_BYTES);
    // The server goes on producing about a batch ahead (64 pieces of what the socket reads) while this
    // one is compressed; as objects, so that each piece comes as it is rather than joined to the rest.
    const stream = client.query(
      copyTo(`copy (${select}) to stdout with (format binary)`, { objectMode: true, highWaterMark: 64 }),
    );
    let rows = 0;
    try {
      for await (const chunk of stream)
        for (const batch of cutter.push(chunk as Buffer)) {
          rows += batch.rows;
          await this.write(table, batch);
        }
    } catch (err) {
      // A COPY broken off leaves the connection mid-statement: it is closed, not reused.
      stream.destroy();
      throw err;
    }
    const last = cutter.end();
    if (last) {
      rows += last.rows;
      await this.write(table, last);
    }
    return rows;
  }

  async handle(request: ThreadRequest): Promise<unknown> {
    switch (request.op) {
      case 'header':
        this.writer = new ArchiveWriter(this.toMain, request.level);
        await this.writer.header(request.header);
        return null;
      case 'snapshot': {
        const { default: pgModule } = await import('pg');
        this.client = new pgModule.Client({
          connectionString: request.url,
          application_name: request.applicationName,
        });
        await this.client.connect();
        await this.client.query('begin isolation level repeatable read read only');
        await this.client.query(`set transaction snapshot '${request.snapshot.replace(/'/g, "''")}'`);
        return null;
      }
      case 'copy':
        return this.copyTable(request.table, request.select);
      case 'fetched': {
        const { table } = request;
        const batch = dataRows(
          Buffer.from(request.buffer, 0, request.length),
          table.width,
          table.binaryFields,
        );
        if (batch.rows !== request.rows)
          throw new Error(`${table.name}: read ${batch.rows} rows of ${request.rows}`);
        if (batch.rows) await this.write(table, batch);
        return batch.rows;
      }
      case 'end': {
        const result = await this.archive().end();
        await this.close();
        return result;
      }
    }
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = null;
    // Read only: ending the connection ends its transaction.
    await client?.end().catch(() => {});
  }
}

let session = new Session();

// One request at a time, in order: the archive is one stream. After a failure the main thread stops
// this thread (nothing of a broken archive is reused).
let queue: Promise<unknown> = Promise.resolve();
port.on('message', (message: ThreadRequest | ThreadControl) => {
  if (message.op === 'written') return session.toMain.written();
  if (message.op === 'cancel') {
    session.cancelled = true;
    return;
  }
  const request = message;
  queue = queue.then(async () => {
    const current = session;
    try {
      const result = await current.handle(request);
      // The archive is done: the next request begins another.
      if (request.op === 'end') session = new Session();
      port.postMessage({ id: request.id, result } satisfies ThreadMessage);
    } catch (err) {
      current.writer?.abort(err as Error);
      await current.close();
      port.postMessage({
        id: request.id,
        error: (err as Error).message ?? String(err),
        cancelled: err instanceof Cancelled,
      } satisfies ThreadMessage);
    }
  });
});
