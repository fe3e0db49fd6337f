// Reading an organisation for its archive: inside one snapshot (a REPEATABLE READ transaction), count
// each table's rows for the header, then read each table through a cursor in batches of about 4 MB,
// the next batch's FETCH running while this one is compressed and written.
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import type { Secrets } from '../../core/crypto.ts';
import type { Db } from '../../core/db.ts';
import { sql } from '../../core/orm.ts';
import {
  ARCHIVE_FORMAT,
  ARCHIVE_VERSION,
  type ArchiveHeader,
  type ArchiveTable,
  type ArchiveTrailer,
  type ArchiveWriter,
  type WriterStats,
} from './archive.ts';
import type { TablePlan } from './catalogue.ts';
import { ENCRYPTED_COLUMNS } from './registry.ts';
import { rowsOf } from './store.ts';

/** Bytes a batch aims at: rows per FETCH follow the table's average row size. */
const BATCH_BYTES = 4 * 1024 * 1024;
const MAX_BATCH_ROWS = 2000;
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

/**
 * Writes the organisation's archive to `writer` from `tx` (a snapshot). `tableDone` runs after each
 * table; `cancelled` is asked between batches.
 */
export async function writeOrganization(
  tx: Db,
  plans: TablePlan[],
  organization: { id: string; name: string; slug: string },
  source: BackupSource,
  writer: ArchiveWriter,
  hooks: { tableDone?(table: string): Promise<void>; cancelled?(): boolean } = {},
  fetchRows: FetchRows = (text) => rowsOf<FetchedRow>(tx, sql.raw(text)),
): Promise<BackupResult> {
  // Every table's count in one statement (one round trip rather than one per table).
  const [counts] = await rowsOf<{ j: string }>(
    tx,
    sql.raw(`select json_build_array(${plans.map((p) => `(${p.count})`).join(', ')})::text as j`),
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
  await writer.header(header);
  for (const [index, plan] of plans.entries()) {
    if (tables[index].rows > 0) await writeTable(tx, plan, writer, hooks, fetchRows);
    await hooks.tableDone?.(plan.name);
  }
  const { trailer, stats } = await writer.end();
  return { header, trailer, stats };
}

/** A row as a FETCH gives it: the JSON array text `j`, and the binary values b0, b1, … */
export type FetchedRow = { j: string } & Record<string, unknown>;
/** Runs a FETCH in the snapshot (PostgreSQL: in the binary format, so bytes cross as themselves). */
export type FetchRows = (text: string) => Promise<FetchedRow[]>;

async function writeTable(
  tx: Db,
  plan: TablePlan,
  writer: ArchiveWriter,
  hooks: { cancelled?(): boolean },
  fetchRows: FetchRows,
): Promise<void> {
  type Row = FetchedRow;
  await tx.execute(sql.raw(`declare ${CURSOR} no scroll cursor for ${plan.select}`));
  const fetch = (n: number) => fetchRows(`fetch forward ${n} from ${CURSOR}`);
  let size = plan.binary.length ? 16 : 256;
  let pending: Promise<Row[]> | null = fetch(size);
  try {
    while (pending) {
      const rows: Row[] = await pending;
      if (!rows.length) break;
      const binary = plan.binary.length
        ? rows.map((r) => plan.binary.map((_, i) => asBuffer(r[`b${i}`])))
        : undefined;
      let bytes = 0;
      for (const r of rows) bytes += r.j.length;
      for (const r of binary ?? []) for (const b of r) bytes += b?.length ?? 0;
      const asked = size;
      size = Math.max(
        1,
        Math.min(MAX_BATCH_ROWS, Math.floor(BATCH_BYTES / Math.max(1, bytes / rows.length))),
      );
      pending = rows.length < asked ? null : fetch(size);
      await writer.rows(
        plan.name,
        rows.map((r) => r.j),
        binary,
      );
      if (hooks.cancelled?.()) throw new BackupCancelled();
    }
  } finally {
    await pending?.catch(() => {});
  }
  await tx.execute(sql.raw(`close ${CURSOR}`));
}

function asBuffer(value: unknown): Buffer | null {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw new Error('a binary column was not read as bytes');
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
