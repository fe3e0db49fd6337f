// The queries of backups: the database catalogue, the archives the installation keeps and their chunks.
// The rows of a backup and a restore are read and written by statements built from the catalogue
// (catalogue.ts, restore.ts); their names come from the catalogue, never from input.
import type { SQL } from 'drizzle-orm';
import type { Db } from '../../core/db.ts';
import { and, count, desc, eq, sql } from '../../core/orm.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import { type ArchiveRow, backupArchives } from './tables.ts';

export async function rowsOf<T>(db: Db, query: SQL): Promise<T[]> {
  return ((await db.execute(query)) as unknown as { rows: T[] }).rows;
}

// ---- the catalogue -------------------------------------------------------------------------------------

export interface CatalogueColumn {
  table: string;
  name: string;
  /** format_type: `uuid`, `text[]`, `timestamp with time zone` … */
  type: string;
  /** The element type's name for arrays (`_uuid`), else the type's (`uuid`, `bytea`, `jsonb`). */
  typname: string;
  notNull: boolean;
  /** Generated (computed) columns are never written. */
  generated: boolean;
  /** `a` for GENERATED ALWAYS AS IDENTITY (a restore then overrides it), else ''. */
  identity: string;
}

export interface CatalogueConstraint {
  name: string;
  table: string;
  columns: string[];
  /** Foreign keys: the table and columns referenced. */
  refTable?: string;
  refColumns?: string[];
}

export interface UniqueIndex {
  name: string;
  table: string;
  columns: string[];
  predicate: string | null;
}

/** Every column of every table in the public schema (other schemas, pg-boss's, are never read). */
export async function catalogueColumns(db: Db): Promise<CatalogueColumn[]> {
  const rows = await rowsOf<{ j: string }>(
    db,
    sql`select json_build_object(
        'table', c.relname::text, 'name', a.attname::text, 'type', format_type(a.atttypid, a.atttypmod),
        'typname', t.typname::text, 'notNull', a.attnotnull, 'generated', a.attgenerated::text <> '',
        'identity', a.attidentity::text)::text as j
      from pg_class c
      join pg_namespace n on n.oid = c.relnamespace
      join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
      join pg_type t on t.oid = a.atttypid
      where n.nspname = 'public' and c.relkind in ('r', 'p')
      order by c.relname, a.attnum`,
  );
  return rows.map((r) => JSON.parse(r.j) as CatalogueColumn);
}

/** Primary keys and foreign keys of the public schema. */
export async function catalogueConstraints(
  db: Db,
): Promise<{ primaryKeys: CatalogueConstraint[]; foreignKeys: CatalogueConstraint[] }> {
  const rows = await rowsOf<{ j: string }>(
    db,
    sql`select json_build_object(
        'kind', con.contype::text, 'name', con.conname::text, 'table', cl.relname::text,
        'columns', (select json_agg(a.attname::text order by k.ord)
                      from unnest(con.conkey) with ordinality k(n, ord)
                      join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.n),
        'refTable', fcl.relname::text,
        'refColumns', (select json_agg(a.attname::text order by k.ord)
                         from unnest(con.confkey) with ordinality k(n, ord)
                         join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.n))::text as j
      from pg_constraint con
      join pg_class cl on cl.oid = con.conrelid
      join pg_namespace n on n.oid = cl.relnamespace
      left join pg_class fcl on fcl.oid = con.confrelid
      where n.nspname = 'public' and con.contype in ('p', 'f')
      order by cl.relname, con.conname`,
  );
  const all = rows.map(
    (r) => JSON.parse(r.j) as CatalogueConstraint & { kind: string; refTable: string | null },
  );
  const clean = ({ kind: _kind, ...c }: CatalogueConstraint & { kind: string; refTable: string | null }) =>
    ({
      ...c,
      refTable: c.refTable ?? undefined,
      refColumns: c.refColumns ?? undefined,
    }) as CatalogueConstraint;
  return {
    primaryKeys: all.filter((c) => c.kind === 'p').map(clean),
    foreignKeys: all.filter((c) => c.kind === 'f').map(clean),
  };
}

/** Unique indexes of the public schema, with their columns (null for an expression) and predicate. */
export async function uniqueIndexes(db: Db): Promise<UniqueIndex[]> {
  const rows = await rowsOf<{ j: string }>(
    db,
    sql`select json_build_object(
        'name', ic.relname::text, 'table', c.relname::text,
        'columns', (select json_agg(a.attname::text order by k.ord)
                      from unnest(i.indkey) with ordinality k(n, ord)
                      left join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.n),
        'predicate', pg_get_expr(i.indpred, i.indrelid))::text as j
      from pg_index i
      join pg_class c on c.oid = i.indrelid
      join pg_class ic on ic.oid = i.indexrelid
      join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and i.indisunique
      order by c.relname, ic.relname`,
  );
  return rows.map((r) => JSON.parse(r.j) as UniqueIndex);
}

/** The migrations applied here. */
export async function appliedMigrations(db: Db): Promise<string[]> {
  const rows = await rowsOf<{ version: string }>(
    db,
    sql`select version from schema_migrations order by version`,
  );
  return rows.map((r) => r.version);
}

export async function organizationById(
  db: Db,
  id: string,
): Promise<{ id: string; name: string; slug: string } | null> {
  const [row] = await rowsOf<{ id: string; name: string; slug: string }>(
    db,
    sql`select id::text, name, slug from organizations where id = ${id}`,
  );
  return row ?? null;
}

export async function organizationBySlug(
  db: Db,
  slug: string,
): Promise<{ id: string; name: string; slug: string } | null> {
  const [row] = await rowsOf<{ id: string; name: string; slug: string }>(
    db,
    sql`select id::text, name, slug from organizations where slug = ${slug}`,
  );
  return row ?? null;
}

export async function slugTaken(db: Db, slug: string): Promise<boolean> {
  const rows = await rowsOf(db, sql`select 1 from organizations where slug = ${slug}`);
  return rows.length > 0;
}

/** Users of the target with these emails (lower case), by email. */
export async function usersByEmail(db: Db, emails: string[]): Promise<Map<string, string>> {
  if (!emails.length) return new Map();
  const rows = await rowsOf<{ id: string; email: string }>(
    db,
    sql`select id::text, email from users where email = any(${`{${emails.map(quoteArrayElement).join(',')}}`}::text[])`,
  );
  return new Map(rows.map((r) => [r.email, r.id]));
}

/** Which of these user ids the target already has. */
export async function existingUserIds(db: Db, ids: string[]): Promise<Set<string>> {
  if (!ids.length) return new Set();
  const rows = await rowsOf<{ id: string }>(
    db,
    sql`select id::text from users where id = any(${`{${ids.join(',')}}`}::uuid[])`,
  );
  return new Set(rows.map((r) => r.id));
}

function quoteArrayElement(value: string): string {
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}

// ---- archives ------------------------------------------------------------------------------------------

export type NewArchive = typeof backupArchives.$inferInsert;

export async function insertArchive(db: Db, row: NewArchive): Promise<ArchiveRow> {
  const [created] = await db.insert(backupArchives).values(row).returning();
  return created;
}

export async function archiveById(db: Db, id: string): Promise<ArchiveRow | null> {
  const [row] = await db.select().from(backupArchives).where(eq(backupArchives.id, id));
  return row ?? null;
}

export async function listArchives(db: Db, filter: { organizationId?: string }, page: PageRequest) {
  const where = filter.organizationId
    ? eq(backupArchives.sourceOrganizationId, filter.organizationId)
    : undefined;
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(backupArchives)
      .where(where)
      .orderBy(desc(backupArchives.createdAt), desc(backupArchives.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(backupArchives).where(where),
  ]);
  return { rows, total: Number(total) };
}

export async function updateArchive(db: Db, id: string, changes: Partial<NewArchive>): Promise<void> {
  await db.update(backupArchives).set(changes).where(eq(backupArchives.id, id));
}

/** Marks a writing archive failed (and drops what it had), unless it already ended. */
export async function failArchive(db: Db, id: string, failure: string): Promise<void> {
  await db
    .update(backupArchives)
    .set({ state: 'failed', failure, size: 0 })
    .where(and(eq(backupArchives.id, id), eq(backupArchives.state, 'writing')));
  await deleteChunks(db, id);
}

export async function deleteArchive(db: Db, id: string): Promise<boolean> {
  const deleted = await db
    .delete(backupArchives)
    .where(eq(backupArchives.id, id))
    .returning({ id: backupArchives.id });
  return deleted.length > 0;
}

export async function insertChunk(db: Db, archiveId: string, seq: number, data: Buffer): Promise<void> {
  await db.execute(
    sql`insert into backup_archive_chunks (archive_id, seq, data) values (${archiveId}, ${seq}, ${data})`,
  );
}

export async function deleteChunks(db: Db, archiveId: string): Promise<void> {
  await db.execute(sql`delete from backup_archive_chunks where archive_id = ${archiveId}`);
}

/** Up to `limit` chunks from `fromSeq` on, in order. */
export async function chunks(
  db: Db,
  archiveId: string,
  fromSeq: number,
  limit: number,
): Promise<{ seq: number; data: Buffer }[]> {
  const rows = await rowsOf<{ seq: number; data: Uint8Array }>(
    db,
    sql`select seq, data from backup_archive_chunks where archive_id = ${archiveId} and seq >= ${fromSeq}
        order by seq limit ${limit}`,
  );
  return rows.map((r) => ({
    seq: Number(r.seq),
    data: Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength),
  }));
}
