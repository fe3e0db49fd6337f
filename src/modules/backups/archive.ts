// The archive format: a Zstandard stream of lines, each a JSON object, where a batch of rows with binary
// columns (raw messages) is followed by those values' bytes as they are, not as text:
//
//   {"type":"header", format, version, created_at, source, organization, tables: [{name, columns,
//     binary, rows}], secrets}
//   {"type":"rows","table":"messages","rows":[["<text of column 1>", null, …], …]}
//   {"type":"rows","table":"blobs","lengths":[[123],[-1]],"rows":[[…], …]}   then 123 bytes
//   …
//   {"type":"end", rows, binary_bytes, tables: {name: {rows, sha256}}}
//
// Every value is PostgreSQL's text form of it (exact for every type, bigints and jsonb included), or null;
// `lengths` gives, per row, each binary column's byte count (-1 for null). A table's rows come in one run
// of batches, tables in the header's order. The header counts each table's rows (read in the same
// snapshot); the trailer adds a SHA-256 per table over its lines and bytes, which only the end of a
// stream can know. A reader checks both, and takes gzip as well as Zstandard.
import { createHash, type Hash } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, pipeline, Readable, type Writable } from 'node:stream';
import zlib from 'node:zlib';

export const ARCHIVE_FORMAT = 'mailroom-backup';
export const ARCHIVE_VERSION = 1;
/** A file name's extension for an archive. */
export const ARCHIVE_EXTENSION = 'mrbackup.zst';

export interface ArchiveColumn {
  name: string;
  /** PostgreSQL's name for the type, e.g. `uuid`, `text[]`, `timestamp with time zone`. */
  type: string;
}

export interface ArchiveTable {
  name: string;
  /** Columns whose values are in each row's JSON array, in order. */
  columns: ArchiveColumn[];
  /** bytea columns, whose bytes follow the batch's line, in order. */
  binary: ArchiveColumn[];
  rows: number;
}

export interface ArchiveHeader {
  type: 'header';
  format: typeof ARCHIVE_FORMAT;
  version: number;
  created_at: string;
  source: {
    hostname: string;
    version: string;
    engine: string;
    /** Tells which installation key sealed the secrets (a hash of a key derived from it, not the key). */
    key_fingerprint: string;
    /** The migrations the source had applied: a target needs every one of them. */
    migrations: string[];
  };
  organization: { id: string; name: string; slug: string };
  tables: ArchiveTable[];
  secrets: { sealed_under: 'source_key'; columns: Record<string, string[]> };
}

export interface ArchiveTrailer {
  type: 'end';
  rows: number;
  binary_bytes: number;
  tables: Record<string, { rows: number; sha256: string }>;
}

/** Something wrong with an archive given to a restore or an upload (a 422 for the caller). */
export class ArchiveError extends Error {}

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const NEWLINE = 0x0a;
const NEWLINE_BYTE = Buffer.from([NEWLINE]);
/** The longest line a reader takes (a batch is a few MB): longer is not an archive of ours. */
const MAX_LINE = 256 * 1024 * 1024;
/** The most binary bytes one batch may announce. */
const MAX_BATCH_BINARY = 2 * 1024 * 1024 * 1024;

// ---- writing ------------------------------------------------------------------------------------------

export interface WriterStats {
  /** Bytes before compression. */
  streamBytes: number;
  /** Bytes written to the destination. */
  archiveBytes: number;
  /** SHA-256 of the bytes written to the destination. */
  archiveSha256: string;
}

/**
 * Writes an archive to `out`, compressing as it goes and waiting whenever the destination is behind,
 * so memory holds about one batch whatever the archive's size.
 */
export class ArchiveWriter {
  readonly #zstd: zlib.ZstdCompress;
  readonly #done: Promise<void>;
  readonly #archiveHash = createHash('sha256');
  readonly #tables = new Map<string, { rows: number; hash: Hash }>();
  #archiveBytes = 0;
  #streamBytes = 0;
  #binaryBytes = 0;
  #rows = 0;
  #failure: Error | null = null;

  constructor(out: Writable, level = 1) {
    this.#zstd = zlib.createZstdCompress({
      // Large pieces: each one is a trip to the thread pool and back.
      chunkSize: 1024 * 1024,
      params: {
        [zlib.constants.ZSTD_c_compressionLevel]: level,
        [zlib.constants.ZSTD_c_checksumFlag]: 1,
      },
    });
    const counted = new PassThrough({ highWaterMark: 4 * 1024 * 1024 });
    counted.on('data', (chunk: Buffer) => {
      this.#archiveBytes += chunk.length;
      this.#archiveHash.update(chunk);
    });
    this.#done = new Promise((resolve, reject) =>
      pipeline(this.#zstd, counted, out, (err) => {
        if (err) {
          this.#failure = err;
          reject(err);
        } else resolve();
      }),
    );
    // Seen by whoever waits next (a write or `end`); never unhandled.
    this.#done.catch(() => {});
  }

  async header(header: ArchiveHeader): Promise<void> {
    for (const table of header.tables) this.#tables.set(table.name, { rows: 0, hash: createHash('sha256') });
    await this.#write(Buffer.from(`${JSON.stringify(header)}\n`));
  }

  /** A batch: each row as the JSON array text of its values, and each row's binary values. */
  async rows(table: string, jsonRows: string[], binary?: (Buffer | null)[][]): Promise<void> {
    const state = this.#tables.get(table);
    if (!state) throw new Error(`table ${table} is not in the header`);
    if (!jsonRows.length) return;
    const lengths = binary
      ? `,"lengths":${JSON.stringify(binary.map((r) => r.map((b) => (b ? b.length : -1))))}`
      : '';
    const line = Buffer.from(
      `{"type":"rows","table":${JSON.stringify(table)}${lengths},"rows":[${jsonRows.join(',')}]}\n`,
    );
    state.hash.update(line);
    state.rows += jsonRows.length;
    this.#rows += jsonRows.length;
    // One write per batch: each write to the compressor is a trip to its thread.
    const parts: Buffer[] = [line];
    for (const row of binary ?? [])
      for (const value of row) {
        if (!value?.length) continue;
        state.hash.update(value);
        this.#binaryBytes += value.length;
        parts.push(value);
      }
    await this.#write(parts.length === 1 ? line : Buffer.concat(parts));
  }

  /** Writes the trailer and waits until the destination has everything. */
  async end(): Promise<{ trailer: ArchiveTrailer; stats: WriterStats }> {
    const trailer: ArchiveTrailer = {
      type: 'end',
      rows: this.#rows,
      binary_bytes: this.#binaryBytes,
      tables: Object.fromEntries(
        [...this.#tables].map(([name, t]) => [name, { rows: t.rows, sha256: t.hash.digest('hex') }]),
      ),
    };
    await this.#write(Buffer.from(`${JSON.stringify(trailer)}\n`));
    this.#zstd.end();
    await this.#done;
    return {
      trailer,
      stats: {
        streamBytes: this.#streamBytes,
        archiveBytes: this.#archiveBytes,
        archiveSha256: this.#archiveHash.digest('hex'),
      },
    };
  }

  /** Stops writing (the backup failed): the destination is destroyed with `error`. */
  abort(error: Error): void {
    this.#zstd.destroy(error);
  }

  async #write(chunk: Buffer): Promise<void> {
    if (this.#failure) throw this.#failure;
    this.#streamBytes += chunk.length;
    if (!this.#zstd.write(chunk)) await Promise.race([once(this.#zstd, 'drain'), this.#done]);
    if (this.#failure) throw this.#failure;
  }
}

// ---- reading ------------------------------------------------------------------------------------------

export type ArchiveItem =
  | { type: 'header'; header: ArchiveHeader }
  | { type: 'rows'; table: ArchiveTable; rows: (string | null)[][]; binary: (Buffer | null)[][] | null }
  | { type: 'end'; trailer: ArchiveTrailer };

/**
 * The archive's header, batches and trailer from its compressed bytes, each batch checked against the
 * header (its table, the width of its rows) and each table's rows and checksum against the header and the
 * trailer. Throws ArchiveError at the first thing wrong; the trailer comes only once all is checked.
 */
export async function* readArchive(source: AsyncIterable<Buffer>): AsyncGenerator<ArchiveItem> {
  const input = new ByteQueue(decompress(source));
  try {
    const first = await input.line();
    if (first === null) throw new ArchiveError('the archive is empty');
    const header = parseHeader(first);
    yield { type: 'header', header };
    const tables = new Map(header.tables.map((t) => [t.name, t]));
    const seen = new Map<string, { rows: number; hash: Hash }>();
    let current: string | null = null;
    for (;;) {
      const line = await input.line();
      if (line === null) throw new ArchiveError('the archive ends before its trailer: it is cut short');
      const item = parseLine(line);
      if (item.type === 'end') {
        const trailer = checkTrailer(item as unknown as ArchiveTrailer, header, seen);
        if ((await input.line()) !== null) throw new ArchiveError('the archive goes on after its trailer');
        yield { type: 'end', trailer };
        return;
      }
      if (item.type !== 'rows') throw new ArchiveError(`unknown line type ${JSON.stringify(item.type)}`);
      const table = tables.get(item.table as string);
      if (!table) throw new ArchiveError(`rows of a table the header does not list: ${String(item.table)}`);
      if (current !== table.name) {
        if (seen.has(table.name)) throw new ArchiveError(`the rows of ${table.name} are not in one run`);
        const at = header.tables.indexOf(table);
        if (current !== null && header.tables.findIndex((t) => t.name === current) > at)
          throw new ArchiveError(`${table.name} comes out of the header's order`);
        seen.set(table.name, { rows: 0, hash: createHash('sha256') });
        current = table.name;
      }
      const state = seen.get(table.name)!;
      state.hash.update(line);
      state.hash.update(NEWLINE_BYTE);
      const rows = checkRows(item.rows, table);
      state.rows += rows.length;
      let binary: (Buffer | null)[][] | null = null;
      if (table.binary.length) {
        const lengths = checkLengths(item.lengths, rows.length, table);
        binary = [];
        for (const rowLengths of lengths) {
          const values: (Buffer | null)[] = [];
          for (const length of rowLengths) {
            if (length < 0) values.push(null);
            else {
              const bytes = await input.bytes(length);
              if (bytes === null) throw new ArchiveError('the archive ends inside a binary value');
              state.hash.update(bytes);
              values.push(bytes);
            }
          }
          binary.push(values);
        }
      } else if (item.lengths !== undefined) {
        throw new ArchiveError(`${table.name} has no binary columns, yet a batch gives lengths`);
      }
      yield { type: 'rows', table, rows, binary };
    }
  } finally {
    input.close();
  }
}

/** Reads only as far as the header (an upload's first check). */
export async function readHeader(source: AsyncIterable<Buffer>): Promise<ArchiveHeader> {
  const input = new ByteQueue(decompress(source));
  try {
    const first = await input.line();
    if (first === null) throw new ArchiveError('the archive is empty');
    return parseHeader(first);
  } finally {
    input.close();
  }
}

function parseLine(line: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(line.toString('utf8'));
  } catch {
    throw new ArchiveError('a line of the archive is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ArchiveError('a line of the archive is not a JSON object');
  return value as Record<string, unknown>;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
const TYPE_NAME = /^[a-z_][a-z0-9_ ]*(\([0-9, ]+\))?(\[\])*$/;

function parseHeader(line: Buffer): ArchiveHeader {
  let item: Record<string, unknown>;
  try {
    item = parseLine(line);
  } catch {
    throw new ArchiveError('not a Mailroom backup: its first line is not a header');
  }
  if (item.type !== 'header' || item.format !== ARCHIVE_FORMAT)
    throw new ArchiveError('not a Mailroom backup: its first line is not a header');
  if (item.version !== ARCHIVE_VERSION)
    throw new ArchiveError(
      `archive format version ${String(item.version)}; this installation reads version ${ARCHIVE_VERSION}`,
    );
  const h = item as unknown as ArchiveHeader;
  const org = h.organization;
  if (
    !org ||
    typeof org.id !== 'string' ||
    !/^[0-9a-f-]{36}$/i.test(org.id) ||
    typeof org.name !== 'string' ||
    typeof org.slug !== 'string'
  )
    throw new ArchiveError('the header names no organisation');
  if (
    !h.source ||
    typeof h.source.key_fingerprint !== 'string' ||
    !Array.isArray(h.source.migrations) ||
    !h.source.migrations.every((m) => typeof m === 'string')
  )
    throw new ArchiveError('the header does not describe its source');
  if (!Array.isArray(h.tables) || !h.tables.length) throw new ArchiveError('the header lists no tables');
  const names = new Set<string>();
  for (const t of h.tables) {
    if (!t || typeof t.name !== 'string' || !IDENTIFIER.test(t.name) || names.has(t.name))
      throw new ArchiveError('the header lists a table without a valid, unique name');
    names.add(t.name);
    if (!Number.isSafeInteger(t.rows) || t.rows < 0)
      throw new ArchiveError(`the header gives ${t.name} no row count`);
    for (const list of [t.columns, t.binary]) {
      if (!Array.isArray(list)) throw new ArchiveError(`the header lists no columns for ${t.name}`);
      for (const c of list)
        if (
          !c ||
          typeof c.name !== 'string' ||
          !IDENTIFIER.test(c.name) ||
          typeof c.type !== 'string' ||
          !TYPE_NAME.test(c.type)
        )
          throw new ArchiveError(`the header lists a column of ${t.name} without a valid name and type`);
    }
  }
  if (!names.has('organizations')) throw new ArchiveError('the archive holds no organisation row');
  return h;
}

function checkRows(value: unknown, table: ArchiveTable): (string | null)[][] {
  if (!Array.isArray(value) || !value.length) throw new ArchiveError(`a batch of ${table.name} has no rows`);
  const width = table.columns.length;
  for (const row of value) {
    if (!Array.isArray(row) || row.length !== width)
      throw new ArchiveError(`a row of ${table.name} does not have its ${width} columns`);
    for (const v of row)
      if (v !== null && typeof v !== 'string')
        throw new ArchiveError(`a row of ${table.name} holds a value that is neither text nor null`);
  }
  return value as (string | null)[][];
}

function checkLengths(value: unknown, rows: number, table: ArchiveTable): number[][] {
  if (!Array.isArray(value) || value.length !== rows)
    throw new ArchiveError(`a batch of ${table.name} does not give the lengths of its binary values`);
  let total = 0;
  for (const row of value) {
    if (!Array.isArray(row) || row.length !== table.binary.length)
      throw new ArchiveError(`a batch of ${table.name} does not give the lengths of its binary values`);
    for (const n of row) {
      if (!Number.isSafeInteger(n) || n < -1)
        throw new ArchiveError(`a batch of ${table.name} gives a binary value a bad length`);
      total += Math.max(0, n);
    }
  }
  if (total > MAX_BATCH_BINARY) throw new ArchiveError(`a batch of ${table.name} is too large`);
  return value as number[][];
}

function checkTrailer(
  trailer: ArchiveTrailer,
  header: ArchiveHeader,
  seen: Map<string, { rows: number; hash: Hash }>,
): ArchiveTrailer {
  if (typeof trailer.tables !== 'object' || trailer.tables === null)
    throw new ArchiveError('the trailer lists no tables');
  for (const table of header.tables) {
    const got = seen.get(table.name);
    const rows = got?.rows ?? 0;
    const sha256 = (got?.hash ?? createHash('sha256')).digest('hex');
    const claimed = trailer.tables[table.name];
    if (rows !== table.rows)
      throw new ArchiveError(
        `${table.name}: the header counts ${table.rows} rows, the archive holds ${rows}`,
      );
    if (!claimed || claimed.rows !== rows || claimed.sha256 !== sha256)
      throw new ArchiveError(
        `${table.name}: the rows do not match the trailer's checksum (the archive is damaged)`,
      );
  }
  return trailer;
}

/** The decompressed bytes of a Zstandard or gzip stream, told apart by their first bytes. */
async function* decompress(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const iterator = source[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  while (head.length < 4) {
    const next = await iterator.next();
    if (next.done) break;
    head = Buffer.concat([head, Buffer.from(next.value)]);
  }
  if (!head.length) return;
  let decompressor: zlib.ZstdDecompress | zlib.Gunzip;
  if (head.subarray(0, 4).equals(ZSTD_MAGIC)) decompressor = zlib.createZstdDecompress();
  else if (head.subarray(0, 2).equals(GZIP_MAGIC)) decompressor = zlib.createGunzip();
  else throw new ArchiveError('not a Mailroom backup: neither Zstandard nor gzip data');
  // What went wrong reading the source (an upload over its limit) is thrown as it is.
  let sourceError: unknown = null;
  async function* all(): AsyncGenerator<Buffer> {
    yield head;
    try {
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        yield Buffer.from(next.value);
      }
    } catch (err) {
      sourceError = err;
      throw err;
    }
  }
  const out = pipeline(Readable.from(all(), { objectMode: false }), decompressor, () => {});
  try {
    for await (const chunk of out) yield chunk as Buffer;
  } catch (err) {
    if (sourceError) throw sourceError;
    if (err instanceof ArchiveError) throw err;
    throw new ArchiveError(`the archive cannot be decompressed: ${(err as Error).message}`);
  } finally {
    out.destroy();
  }
}

/** Lines and byte runs from a stream of chunks, copying each only once. */
class ByteQueue {
  readonly #source: AsyncGenerator<Buffer>;
  #chunks: Buffer[] = [];
  #length = 0;
  #ended = false;

  constructor(source: AsyncGenerator<Buffer>) {
    this.#source = source;
  }

  /** The next line without its newline, or null at the end. */
  async line(): Promise<Buffer | null> {
    let scanned = 0;
    for (;;) {
      let at = 0;
      for (let i = 0; i < this.#chunks.length; i++) {
        const chunk = this.#chunks[i];
        if (at + chunk.length > scanned) {
          const found = chunk.indexOf(NEWLINE, Math.max(0, scanned - at));
          if (found >= 0) {
            const line = this.#take(at + found + 1);
            return line.subarray(0, line.length - 1);
          }
        }
        at += chunk.length;
      }
      scanned = at;
      if (scanned > MAX_LINE) throw new ArchiveError('a line of the archive is too long');
      if (!(await this.#pull())) {
        if (this.#length) throw new ArchiveError('the archive ends inside a line');
        return null;
      }
    }
  }

  /** The next `n` bytes, or null when the stream ends first. */
  async bytes(n: number): Promise<Buffer | null> {
    while (this.#length < n) if (!(await this.#pull())) return null;
    return this.#take(n);
  }

  close(): void {
    this.#source.return(undefined).catch(() => {});
  }

  async #pull(): Promise<boolean> {
    if (this.#ended) return false;
    const next = await this.#source.next();
    if (next.done) {
      this.#ended = true;
      return false;
    }
    this.#chunks.push(next.value);
    this.#length += next.value.length;
    return true;
  }

  #take(n: number): Buffer {
    const first = this.#chunks[0];
    if (first && first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      this.#length -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[0];
      const take = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, take);
      filled += take;
      if (take === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(take);
    }
    this.#length -= n;
    return out;
  }
}
