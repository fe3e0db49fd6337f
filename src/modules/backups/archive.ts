// The archive format: a Zstandard stream of lines, each a JSON object, where a batch line is followed by
// its rows as bytes:
//
//   {"type":"header", format, version, created_at, source, organization, tables: [{name, columns,
//     binary, rows}], secrets}
//   {"type":"rows","table":"messages","rows":812,"bytes":4190212}   then 4190212 bytes: 812 rows
//   …
//   {"type":"end", rows, binary_bytes, tables: {name: {rows, sha256}}}
//
// A batch's rows are in PostgreSQL's binary COPY row format (what COPY … (FORMAT binary) writes between
// its header and its end mark): per row the number of fields (int16), then per field its length (int32,
// -1 for null) and its bytes. The fields are the table's `columns`, each as the UTF-8 of PostgreSQL's
// text form of the value (exact for every type, bigints and jsonb included), then its `binary` (bytea)
// columns as their bytes. So a backup passes what the database sends on as it is, with no work per row.
// A table's rows come in one run of batches, tables in the header's order. The header counts each
// table's rows (read in the same snapshot); the trailer adds a SHA-256 per table over its lines and
// bytes, which only the end of a stream can know. A reader checks both, and takes gzip as well as
// Zstandard.
import { createHash, type Hash } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, pipeline, Readable, type Writable } from 'node:stream';
import zlib from 'node:zlib';

export const ARCHIVE_FORMAT = 'mailroom-backup';
/** 2: rows in the binary COPY format (1, rows as JSON arrays, was never released). */
export const ARCHIVE_VERSION = 2;
/** A file name's extension for an archive. */
export const ARCHIVE_EXTENSION = 'mrbackup.zst';

export interface ArchiveColumn {
  name: string;
  /** PostgreSQL's name for the type, e.g. `uuid`, `text[]`, `timestamp with time zone`. */
  type: string;
}

export interface ArchiveTable {
  name: string;
  /** Columns whose values are given as their text, the first fields of each row. */
  columns: ArchiveColumn[];
  /** bytea columns, given as their bytes, the fields after `columns`. */
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
/** The longest line a reader takes (lines are short; a batch's rows follow it): longer is not ours. */
const MAX_LINE = 16 * 1024 * 1024;
/** The most bytes one batch may announce (a batch aims at a few MB; one row may be large). */
const MAX_BATCH_BYTES = 2 * 1024 * 1024 * 1024;

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

  /**
   * A batch: `rows` rows in the binary COPY row format, as CopyCutter or dataRows give them (checked
   * there, so that a backup never writes what its reader would refuse). `binaryBytes` counts the bytea
   * values' bytes.
   */
  async rows(table: string, rows: number, tuples: Buffer, binaryBytes: number): Promise<void> {
    const state = this.#tables.get(table);
    if (!state) throw new Error(`table ${table} is not in the header`);
    if (!rows) return;
    const line = Buffer.from(
      `{"type":"rows","table":${JSON.stringify(table)},"rows":${rows},"bytes":${tuples.length}}\n`,
    );
    state.hash.update(line);
    state.hash.update(tuples);
    state.rows += rows;
    this.#rows += rows;
    this.#binaryBytes += binaryBytes;
    await this.#write(line);
    await this.#write(tuples);
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

// ---- cutting what the database sends -------------------------------------------------------------------

/** Whole rows in the binary COPY row format (no COPY header or end mark). */
export interface RowBatch {
  rows: number;
  tuples: Buffer;
  /** Bytes of the bytea values among them. */
  binaryBytes: number;
}

/** The binary COPY format's signature, which its 19-byte header starts with. */
const COPY_SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/**
 * Cuts binary COPY output into batches of whole rows of `width` fields (the last `binaryFields` of them
 * bytea), about `size` bytes each, checking every row's shape on the way (a row whose shape is wrong
 * would make an archive its reader refuses). Chunks are kept as they come and joined once per batch.
 */
export class CopyCutter {
  readonly #width: number;
  readonly #firstBinary: number;
  readonly #size: number;
  #parts: Buffer[] = [];
  #held = 0;
  /** Bytes a row cut short at the end of what is held needs before it can be whole. */
  #needed = 0;
  #header = true;
  #ended = false;

  constructor(width: number, binaryFields: number, size: number) {
    this.#width = width;
    this.#firstBinary = width - binaryFields;
    this.#size = size;
  }

  /** The batches that `chunk` completes (none until about `size` bytes are held). */
  push(chunk: Buffer): RowBatch[] {
    if (this.#ended) {
      if (chunk.length) throw new Error('COPY data goes on after its end');
      return [];
    }
    this.#parts.push(chunk);
    this.#held += chunk.length;
    if (this.#held < this.#size || this.#held < this.#needed) return [];
    const batch = this.#cut(false);
    return batch ? [batch] : [];
  }

  /** The last batch, once the COPY has sent everything. */
  end(): RowBatch | null {
    const batch = this.#held ? this.#cut(true) : null;
    if (!this.#ended) throw new Error('COPY data ends before its end mark');
    return batch;
  }

  #cut(last: boolean): RowBatch | null {
    const data = this.#parts.length === 1 ? this.#parts[0] : Buffer.concat(this.#parts, this.#held);
    let at = 0;
    if (this.#header) {
      if (data.length < 19) return this.#keep(data, 0, 19);
      if (!data.subarray(0, 11).equals(COPY_SIGNATURE)) throw new Error('not binary COPY data');
      at = 19 + data.readUInt32BE(15);
      if (data.length < at) return this.#keep(data, 0, at);
      this.#header = false;
    }
    const start = at;
    let rows = 0;
    let binaryBytes = 0;
    let whole = at;
    let needed = 0;
    scan: while (at + 2 <= data.length) {
      const fields = data.readInt16BE(at);
      if (fields === -1) {
        if (at + 2 !== data.length) throw new Error('COPY data goes on after its end mark');
        this.#ended = true;
        break;
      }
      if (fields !== this.#width) throw new Error(`a COPY row has ${fields} fields, not ${this.#width}`);
      let p = at + 2;
      let bytes = 0;
      for (let f = 0; f < fields; f++) {
        if (p + 4 > data.length) {
          needed = p + 4;
          break scan;
        }
        const length = data.readInt32BE(p);
        p += 4;
        if (length < -1) throw new Error('a COPY row gives a value a bad length');
        if (length > 0) {
          if (p + length > data.length) {
            needed = p + length;
            break scan;
          }
          p += length;
          if (f >= this.#firstBinary) bytes += length;
        }
      }
      at = p;
      whole = p;
      rows++;
      binaryBytes += bytes;
    }
    if (!this.#ended && last)
      throw new Error(`COPY data ends ${whole === data.length ? 'before its end mark' : 'inside a row'}`);
    const batch = rows ? { rows, tuples: data.subarray(start, whole), binaryBytes } : null;
    this.#keep(data, this.#ended ? data.length : whole, needed ? needed - whole : 0);
    return batch;
  }

  /** Keeps what follows `from` for the next cut, which waits until `needed` bytes of it are there. */
  #keep(data: Buffer, from: number, needed: number): null {
    const rest = data.subarray(from);
    this.#parts = rest.length ? [rest] : [];
    this.#held = rest.length;
    this.#needed = needed;
    return null;
  }
}

/** The protocol messages a FETCH answers with besides its DataRows ('T', 'C', 'Z', 'N', 'S'). */
const ROW_DESCRIPTION = 0x54;
const DATA_ROW = 0x44;
const OTHER_MESSAGES = new Set([0x43, 0x5a, 0x4e, 0x53]);

/**
 * The rows of a FETCH from a BINARY cursor, given as the server's protocol messages. A DataRow's body is
 * a row in the binary COPY row format, so the batch is those bodies end to end: each is moved down over
 * the messages' heads, in place. Every row is checked as CopyCutter checks them, and the answer must be
 * in the binary format.
 */
export function dataRows(messages: Buffer, width: number, binaryFields: number): RowBatch {
  const firstBinary = width - binaryFields;
  let at = 0;
  let to = 0;
  let rows = 0;
  let binaryBytes = 0;
  while (at < messages.length) {
    const end = at + 5 <= messages.length ? at + 1 + messages.readInt32BE(at + 1) : -1;
    if (end < at + 5 || end > messages.length) throw new Error('a protocol message is cut short');
    const type = messages[at];
    let p = at + 5;
    if (type === DATA_ROW) {
      if (p + 2 > end || messages.readInt16BE(p) !== width)
        throw new Error(`a fetched row does not have ${width} fields`);
      p += 2;
      for (let f = 0; f < width; f++) {
        const length = p + 4 <= end ? messages.readInt32BE(p) : -2;
        p += 4;
        if (length < -1 || p + Math.max(0, length) > end) throw new Error('a fetched row is cut short');
        if (length > 0) {
          p += length;
          if (f >= firstBinary) binaryBytes += length;
        }
      }
      if (p !== end) throw new Error('a fetched row is longer than its fields');
      messages.copyWithin(to, at + 5, end);
      to += end - at - 5;
      rows++;
    } else if (type === ROW_DESCRIPTION) {
      if (messages.readInt16BE(p) !== width) throw new Error(`the fetched rows do not have ${width} fields`);
      p += 2;
      for (let f = 0; f < width; f++) {
        p = messages.indexOf(0, p) + 1 + 16;
        if (p < 17 || p + 2 > end || messages.readInt16BE(p) !== 1)
          throw new Error('the fetched rows are not in the binary format');
        p += 2;
      }
    } else if (!OTHER_MESSAGES.has(type))
      throw new Error(`an unexpected protocol message (${String.fromCharCode(type)}) answers a FETCH`);
    at = end;
  }
  return { rows, tuples: messages.subarray(0, to), binaryBytes };
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
      const count = item.rows;
      const size = item.bytes;
      if (!Number.isSafeInteger(count) || (count as number) < 1)
        throw new ArchiveError(`a batch of ${table.name} has no rows`);
      if (!Number.isSafeInteger(size) || (size as number) < 0 || (size as number) > MAX_BATCH_BYTES)
        throw new ArchiveError(`a batch of ${table.name} does not give a valid size`);
      const tuples = await input.bytes(size as number);
      if (tuples === null) throw new ArchiveError('the archive ends inside a batch of rows');
      state.hash.update(tuples);
      const { rows, binary } = decodeRows(tuples, count as number, table);
      state.rows += rows.length;
      yield { type: 'rows', table, rows, binary: table.binary.length ? binary : null };
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

/**
 * A batch's rows: the text of each of `columns` (decoded from UTF-8) and the bytes of each `binary`
 * column (views into `tuples`). Exactly `count` rows of the table's width that fill `tuples` exactly.
 */
function decodeRows(
  tuples: Buffer,
  count: number,
  table: ArchiveTable,
): { rows: (string | null)[][]; binary: (Buffer | null)[][] } {
  const texts = table.columns.length;
  const width = texts + table.binary.length;
  const rows: (string | null)[][] = [];
  const binary: (Buffer | null)[][] = [];
  const end = tuples.length;
  let at = 0;
  for (let r = 0; r < count; r++) {
    if (at + 2 > end || tuples.readInt16BE(at) !== width)
      throw new ArchiveError(`a row of ${table.name} does not have its ${width} fields`);
    at += 2;
    const row: (string | null)[] = new Array(texts);
    const bytes: (Buffer | null)[] = new Array(width - texts);
    for (let f = 0; f < width; f++) {
      if (at + 4 > end) throw new ArchiveError(`a batch of ${table.name} ends inside a row`);
      const length = tuples.readInt32BE(at);
      at += 4;
      let value: Buffer | null = null;
      if (length >= 0) {
        if (at + length > end) throw new ArchiveError(`a batch of ${table.name} ends inside a value`);
        value = tuples.subarray(at, at + length);
        at += length;
      } else if (length !== -1) throw new ArchiveError(`a row of ${table.name} gives a value a bad length`);
      if (f < texts) row[f] = value ? value.toString('utf8') : null;
      else bytes[f - texts] = value;
    }
    rows.push(row);
    binary.push(bytes);
  }
  if (at !== end) throw new ArchiveError(`a batch of ${table.name} holds more than its ${count} rows`);
  return { rows, binary };
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
