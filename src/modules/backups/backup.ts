// Reading an organisation for its archive: inside one snapshot (a REPEATABLE READ transaction), count
// each table's rows for the header, then read each table's rows in PostgreSQL's binary COPY format and
// pass them on as they are: no work per row or value in JavaScript. The archive's own thread
// (archive-thread.ts) cuts, checks, hashes and compresses them, and sends the compressed bytes back to be
// written here. PostgreSQL: that thread streams each table through one COPY … TO STDOUT on a connection
// of its own, in the snapshot exported here. The embedded engine (one session, on its own thread) is read
// here through a BINARY cursor, a batch of rows per FETCH, whose answer comes as the protocol's bytes and
// goes on to the archive's thread unparsed; the next batch is fetched meanwhile.
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { Secrets } from '../../core/crypto.ts';
import type { Db } from '../../core/db.ts';
import type { EmbeddedTransaction } from '../../core/pglite-client.ts';
import { sql } from '../../core/orm.ts';
import {
  ARCHIVE_FORMAT,
  ARCHIVE_VERSION,
  type ArchiveHeader,
  type ArchiveTable,
  type ArchiveTrailer,
  type WriterStats,
} from './archive.ts';
import type { ThreadControl, ThreadMessage, ThreadRequest, ThreadTable } from './archive-thread.ts';
import type { TablePlan } from './catalogue.ts';
import { ENCRYPTED_COLUMNS } from './registry.ts';
import { rowsOf } from './store.ts';

/** Bytes a batch aims at. */
const BATCH_BYTES = 4 * 1024 * 1024;
/** Rows per FETCH on the embedded engine, at most. */
const MAX_BATCH_ROWS = 20_000;
/** zstd's level: 1 compresses this data nearly as well as 3, at twice the speed. */
const LEVEL = 1;
const CURSOR = 'mailroom_backup_rows';

export class BackupCancelled extends Error {
  constructor() {
    super('the backup was cancelled');
  }
}

export interface BackupSource {
  hostname: string;
  version: string;
  engine: string;
  migrations: string[];
  secrets: Secrets;
}

export interface BackupResult {
  header: ArchiveHeader;
  trailer: ArchiveTrailer;
  stats: WriterStats;
}

/** Tells which key sealed an archive's secrets without revealing anything of it. */
export function keyFingerprint(secrets: Secrets): string {
  return createHash('sha256')
    .update('mailroom/backup/key-fingerprint/v1')
    .update(secrets.verpKey)
    .digest('hex')
    .slice(0, 32);
}

/** Reads a table's rows in order into the archive. */
export type TableReader = (plan: TablePlan) => Promise<void>;

/**
 * Writes the organisation's archive through `thread` from `tx` (a snapshot) with `readTable`.
 * `tableDone` runs after each table.
 */
export async function writeOrganization(
  tx: Db,
  plans: TablePlan[],
  organization: { id: string; name: string; slug: string },
  source: BackupSource,
  thread: ArchiveThread,
  readTable: TableReader,
  hooks: { tableDone?(table: string): Promise<void> } = {},
): Promise<BackupResult> {
  // Every table's count in one statement (one round trip rather than one per table); an array, as a
  // function takes at most 100 arguments.
  const [counts] = await rowsOf<{ j: string }>(
    tx,
    sql.raw(`select array_to_json(array[${plans.map((p) => `(${p.count})`).join(', ')}])::text as j`),
  );
  const rowCounts = JSON.parse(counts.j) as number[];
  const tables: ArchiveTable[] = plans.map((plan, i) => ({
    name: plan.name,
    columns: plan.columns.map((c) => ({ name: c.name, type: c.type })),
    binary: plan.binary.map((c) => ({ name: c.name, type: c.type })),
    rows: Number(rowCounts[i]),
  }));
  const included = new Set(plans.map((p) => p.name));
  const header: ArchiveHeader = {
    type: 'header',
    format: ARCHIVE_FORMAT,
    version: ARCHIVE_VERSION,
    created_at: new Date().toISOString(),
    source: {
      hostname: source.hostname,
      version: source.version,
      engine: source.engine,
      key_fingerprint: keyFingerprint(source.secrets),
      migrations: source.migrations,
    },
    organization,
    tables,
    secrets: {
      sealed_under: 'source_key',
      columns: Object.fromEntries(
        Object.entries(ENCRYPTED_COLUMNS)
          .filter(([t]) => included.has(t))
          .map(([t, c]) => [t, [...c]]),
      ),
    },
  };
  await thread.call({ op: 'header', header, level: LEVEL });
  for (const [index, plan] of plans.entries()) {
    if (tables[index].rows > 0) await readTable(plan);
    await hooks.tableDone?.(plan.name);
  }
  const { trailer, stats } = (await thread.call({ op: 'end' })) as {
    trailer: ArchiveTrailer;
    stats: WriterStats;
  };
  await thread.finish();
  return { header, trailer, stats };
}

const threadTable = (plan: TablePlan): ThreadTable => ({
  name: plan.name,
  width: plan.columns.length + plan.binary.length,
  binaryFields: plan.binary.length,
});

type Request = ThreadRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

/** How long a finished backup's thread waits for the next backup before it stops. */
const THREAD_IDLE_MS = 60_000;
/** A thread that finished a backup cleanly, kept for the next: starting one costs a tenth of a second. */
let idleThread: { worker: Worker; timer: NodeJS.Timeout } | null = null;

/** Starts a thread for the backup about to begin while it reads the catalogue (unless one waits idle). */
export function prewarmThread(): void {
  if (idleThread) return;
  keepThread(new Worker(new URL('./archive-thread.ts', import.meta.url)));
}

function takeThread(): Worker {
  if (idleThread) {
    const { worker, timer } = idleThread;
    idleThread = null;
    clearTimeout(timer);
    worker.ref();
    return worker;
  }
  return new Worker(new URL('./archive-thread.ts', import.meta.url));
}

function keepThread(worker: Worker): void {
  if (idleThread) {
    void worker.terminate();
    return;
  }
  worker.unref();
  const timer = setTimeout(() => {
    if (idleThread?.worker === worker) idleThread = null;
    void worker.terminate();
  }, THREAD_IDLE_MS);
  timer.unref();
  idleThread = { worker, timer };
}

/**
 * The archive's thread, from here: requests answered in order, and the compressed bytes it sends
 * written to `out` (the next piece asked for once `out` takes more). A failure anywhere ends it.
 */
export class ArchiveThread {
  readonly #worker: Worker;
  readonly #out: Writable;
  readonly #cancelled: () => boolean;
  readonly #pending = new Map<number, { resolve(value: unknown): void; reject(err: Error): void }>();
  #nextId = 1;
  #failure: Error | null = null;
  #cancelSent = false;

  constructor(out: Writable, cancelled: () => boolean = () => false) {
    this.#out = out;
    this.#cancelled = cancelled;
    this.#worker = takeThread();
    this.#worker.on('message', this.#onMessage);
    this.#worker.on('error', this.#onError);
    this.#worker.on('exit', this.#onExit);
    out.on('error', (err) => this.#fail(err));
  }

  call(request: Request, transfer: ArrayBuffer[] = []): Promise<unknown> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...request, id } as ThreadRequest, transfer);
    });
  }

  /** Ends `out` once the thread has sent everything; the thread is kept for the next backup. */
  async finish(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#out.once('error', reject);
      this.#out.end(() => resolve());
    });
    this.#release();
    keepThread(this.#worker);
  }

  readonly #onMessage = (message: ThreadMessage) => this.#receive(message);
  readonly #onError = (err: Error) => this.#fail(err);
  readonly #onExit = (code: number) =>
    this.#fail(new Error(`the archive thread stopped (exit code ${code})`));

  /** Lets go of the thread: nothing more of this backup comes from it. */
  #release(): void {
    this.#failure ??= new Error('the archive thread has ended');
    this.#worker.off('message', this.#onMessage);
    this.#worker.off('error', this.#onError);
    this.#worker.off('exit', this.#onExit);
  }

  /** Stops everything (the backup failed): `out` is destroyed with `error`. */
  abort(error: Error): void {
    this.#fail(error);
    this.#out.destroy(error);
  }

  #receive(message: ThreadMessage): void {
    if ('out' in message) {
      const written = () => this.#control({ op: 'written' });
      if (this.#out.write(Buffer.from(message.out))) written();
      else this.#out.once('drain', written);
      if (!this.#cancelSent && this.#cancelled()) {
        this.#cancelSent = true;
        this.#control({ op: 'cancel' });
      }
      return;
    }
    const pending = this.#pending.get(message.id);
    if (!pending) return;
    this.#pending.delete(message.id);
    if ('error' in message)
      pending.reject(message.cancelled ? new BackupCancelled() : new Error(message.error));
    else pending.resolve(message.result);
  }

  #control(message: ThreadControl): void {
    if (!this.#failure) this.#worker.postMessage(message);
  }

  #fail(err: Error): void {
    if (this.#failure) return;
    this.#failure = err;
    for (const pending of this.#pending.values()) pending.reject(err);
    this.#pending.clear();
    this.#release();
    // Whatever it was doing is of no use now.
    void this.#worker.terminate();
  }
}

/**
 * PostgreSQL: the thread reads each table through one COPY on a connection of its own, in the snapshot
 * of `tx`'s transaction (exported here: the thread's reads see exactly what the counts saw).
 */
export async function postgresReader(
  tx: Db,
  thread: ArchiveThread,
  url: string,
  cancelled: () => boolean = () => false,
): Promise<TableReader> {
  const [{ snapshot }] = await rowsOf<{ snapshot: string }>(tx, sql`select pg_export_snapshot() as snapshot`);
  await thread.call({ op: 'snapshot', url, applicationName: 'mailroom-backup', snapshot });
  return async (plan) => {
    if (cancelled()) throw new BackupCancelled();
    await thread.call({ op: 'copy', table: threadTable(plan), select: plan.select });
  };
}

/**
 * The embedded engine (one session, `tx`): a BINARY cursor over the table's rows, fetched a batch at a
 * time as the protocol's bytes (no row objects, no hex), which go on to the thread without a copy and
 * unread here but for counting their rows. Rows per batch follow the table's average row size; the
 * next batch is fetched while the thread takes this one.
 */
export function embeddedReader(
  tx: EmbeddedTransaction,
  thread: ArchiveThread,
  cancelled: () => boolean = () => false,
): TableReader {
  return async (plan) => {
    const table = threadTable(plan);
    await tx.query(`declare ${CURSOR} binary no scroll cursor for ${plan.select}`);
    // Bytes per row as the last batch had them: the next answer's size, told ahead to the database.
    let rowBytes = 0;
    const fetch = async (n: number) => {
      const bytes = await tx.raw(`fetch forward ${n} from ${CURSOR}`, Math.ceil(n * rowBytes * 1.25));
      return { asked: n, bytes, rows: dataRowCount(bytes) };
    };
    let pending: ReturnType<typeof fetch> | null = fetch(plan.binary.length ? 16 : 256);
    let taking: Promise<unknown> | null = null;
    try {
      while (pending) {
        const { asked, bytes, rows } = await pending;
        pending = null;
        if (!rows) break;
        rowBytes = bytes.length / rows;
        if (rows === asked)
          pending = fetch(Math.max(1, Math.min(MAX_BATCH_ROWS, Math.floor(BATCH_BYTES / rowBytes))));
        // One batch with the thread at a time, one being fetched.
        await taking;
        if (cancelled()) throw new BackupCancelled();
        taking = thread.call(
          { op: 'fetched', table, buffer: bytes.buffer as ArrayBuffer, length: bytes.length, rows },
          [bytes.buffer as ArrayBuffer],
        );
        taking.catch(() => {});
      }
      await taking;
    } finally {
      await pending?.catch(() => {});
    }
    await tx.query(`close ${CURSOR}`);
  };
}

/** DataRow messages among a FETCH's answer (their heads only are read). */
function dataRowCount(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let rows = 0;
  for (let at = 0; at + 5 <= bytes.length; at += 1 + Math.max(4, view.getInt32(at + 1)))
    if (bytes[at] === 0x44) rows++;
  return rows;
}

/**
 * A destination that keeps what it is given in chunks of `size` bytes through `put` (the database's
 * archive chunks), waiting for each before taking more.
 */
export function chunkSink(size: number, put: (seq: number, data: Buffer) => Promise<void>): Writable {
  let parts: Buffer[] = [];
  let held = 0;
  let seq = 0;
  const flush = async () => {
    if (!held) return;
    const data = Buffer.concat(parts, held);
    parts = [];
    held = 0;
    await put(seq++, data);
  };
  return new Writable({
    highWaterMark: size,
    write(chunk: Buffer, _encoding, done) {
      parts.push(chunk);
      held += chunk.length;
      if (held < size) return done();
      flush().then(() => done(), done);
    },
    final(done) {
      flush().then(() => done(), done);
    },
  });
}
