// Restoring an archive: its tables in their order, each batch in one INSERT … SELECT over the batch's
// JSON (and its binary values as one bytea[] parameter), all inside the caller's transaction, so that a
// restore that fails at any point leaves nothing behind.
//
// Two ways: keeping every id (into an installation that does not have the organisation, e.g. an empty
// one), or as a new organisation, where every id is made anew, consistently: a uuid anywhere in the
// archive (uuid and uuid[] columns, a text value that is a uuid or `kind:uuid`, a JSON string that is a
// uuid) maps to the same new id, derived from it under a random key of this restore. The new id keeps the
// old one's 48-bit time prefix, so ids still sort by time (UUIDv7). Users are the installation's, not the
// organisation's: one whose email the target has is that user (the target's row stays as it is); the
// others are created (never as platform administrators).
import { createHmac, createSecretKey, type KeyObject, randomBytes } from 'node:crypto';
import type { SQL } from 'drizzle-orm';
import type { Secrets } from '../../core/crypto.ts';
import { databaseErrorCode, type Db } from '../../core/db.ts';
import { AppError, conflict } from '../../core/errors.ts';
import { sql } from '../../core/orm.ts';
import { binaryArray } from '../../core/pg-binary.ts';
import { ArchiveError, type ArchiveHeader, type ArchiveItem, type ArchiveTable } from './archive.ts';
import { type Catalogue, classify } from './catalogue.ts';
import { ENCRYPTED_COLUMNS, RELATED_TABLES, UNIQUE_POLICIES } from './registry.ts';
import {
  appliedMigrations,
  existingUserIds,
  organizationById,
  rowsOf,
  slugTaken,
  usersByEmail,
} from './store.ts';

export type RestoreMode = 'keep_ids' | 'new_organization';

export interface RestoreOptions {
  mode: RestoreMode;
  /** The restored organisation's name and slug (absent: the archive's; a taken slug gets a suffix). */
  name?: string;
  slug?: string;
  /** Opens the archive's sealed values when they were sealed under another key; null: the same key. */
  sourceSecrets: Secrets | null;
  targetSecrets: Secrets;
}

export interface RestoreResult {
  organization: { id: string; name: string; slug: string };
  mode: RestoreMode;
  rows: number;
  binary_bytes: number;
  tables: Record<string, number>;
  users: { created: number; matched: number };
  secrets: 'kept' | 'resealed';
}

export class RestoreCancelled extends Error {
  constructor() {
    super('the restore was cancelled');
  }
}

const BYTEA_OID = 17;
const UUID_IN_TEXT = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
const QUOTED_UUID = /"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"/gi;
const WHOLE_UUID = /^([a-z_]+:)?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;

/** Old ids to new: the users' by email, the rest derived (new organisation) or kept. */
class IdMap {
  readonly users = new Map<string, string>();
  /** A KeyObject: an HMAC from raw key bytes imports the key again for every id. */
  readonly #key: KeyObject | null;

  constructor(remap: boolean) {
    this.#key = remap ? createSecretKey(randomBytes(32)) : null;
  }

  /** Whether any id changes (new organisation, or a user who already had another id here). */
  get active(): boolean {
    if (this.#key) return true;
    for (const [from, to] of this.users) if (from !== to) return true;
    return false;
  }

  /** Derived ids seen lately: the organisation's and its parents' ids come again in row after row. */
  readonly #recent = new Map<string, string>();

  id(value: string): string {
    const lower = value.toLowerCase();
    const user = this.users.get(lower);
    if (user !== undefined || !this.#key) return user ?? value;
    let id = this.#recent.get(lower);
    if (id === undefined) {
      if (this.#recent.size >= 100_000) this.#recent.clear();
      id = derive(this.#key, lower);
      this.#recent.set(lower, id);
    }
    return id;
  }

  derived(value: string): string {
    return derive(this.#key ?? createSecretKey(randomBytes(32)), value.toLowerCase());
  }
}

function derive(key: KeyObject, id: string): string {
  const hex = id.replace(/-/g, '');
  const mac = createHmac('sha256', key).update(hex).digest();
  const bytes = Buffer.alloc(16);
  Buffer.from(hex.slice(0, 12), 'hex').copy(bytes, 0);
  mac.copy(bytes, 6, 0, 10);
  bytes[6] = 0x70 | (bytes[6] & 0x0f);
  bytes[8] = 0x80 | (bytes[8] & 0x3f);
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

type Transform = (value: string) => string;

/** How one table's batches are written: the statement's fixed parts and each column's transform. */
interface TableWriter {
  table: ArchiveTable;
  statement(json: string, binary: (Buffer | null)[][] | null): SQL;
  /** Per JSON column: its transform when ids change, and its resealing when keys differ. */
  idTransforms: (Transform | null)[];
  seal: (Transform | null)[];
}

const quote = (identifier: string) => `"${identifier.replace(/"/g, '""')}"`;

/**
 * Checks, before anything is written, that the archive fits this installation: its migrations, its
 * tables and columns, the order of its tables under this installation's foreign keys, and (when ids are
 * kept) that the organisation is not here already.
 */
export async function checkFit(
  db: Db,
  catalogue: Catalogue,
  header: ArchiveHeader,
  options: Pick<RestoreOptions, 'mode' | 'slug'>,
): Promise<void> {
  const applied = new Set(await appliedMigrations(db));
  const missing = header.source.migrations.filter((m) => !applied.has(m));
  if (missing.length)
    throw new ArchiveError(
      `the archive comes from an installation with migrations this one lacks (${missing.join(', ')}): upgrade this installation first`,
    );
  for (const table of header.tables) {
    const columns = catalogue.tables.get(table.name);
    if (!columns) throw new ArchiveError(`this installation has no table ${table.name}`);
    for (const c of [...table.columns, ...table.binary]) {
      const target = columns.find((t) => t.name === c.name);
      if (!target || target.generated)
        throw new ArchiveError(`this installation has no column ${table.name}.${c.name} to restore into`);
      if ((target.typname === 'bytea') !== table.binary.includes(c))
        throw new ArchiveError(`${table.name}.${c.name} is binary on one side only`);
    }
  }
  // Only what a backup holds: a crafted archive must not write the installation's tables (sessions,
  // migrations) or rows that belong to no organisation.
  const { tenant, children } = classify(catalogue);
  const holdable = new Set<string>([...RELATED_TABLES, ...tenant, ...children.map((c) => c.table)]);
  for (const table of header.tables)
    if (!holdable.has(table.name))
      throw new ArchiveError(
        `the archive holds ${table.name}, which is no organisation's: a backup never holds it`,
      );
  const position = new Map(header.tables.map((t, i) => [t.name, i]));
  for (const fk of catalogue.foreignKeys) {
    if (!fk.refTable || fk.refTable === fk.table) continue;
    const child = position.get(fk.table);
    const parent = position.get(fk.refTable);
    if (child !== undefined && parent !== undefined && parent > child)
      throw new ArchiveError(`the archive has ${fk.table} before ${fk.refTable}, which it references`);
  }
  if (options.mode === 'keep_ids' && (await organizationById(db, header.organization.id)))
    throw conflict(
      'This installation already has the organisation: restore it as a new organisation, or delete it first',
    );
  if (options.slug && (await slugTaken(db, options.slug)))
    throw conflict(`The slug "${options.slug}" is taken`);
}

/**
 * Restores the archive's items (its header already read and checked with checkFit) inside `tx`. Calls
 * `progress` after each batch; `cancelled` is asked between batches.
 */
export async function restoreItems(
  tx: Db,
  catalogue: Catalogue,
  header: ArchiveHeader,
  items: AsyncIterator<ArchiveItem>,
  options: RestoreOptions,
  hooks: { progress?(rows: number): Promise<void>; cancelled?(): boolean } = {},
): Promise<RestoreResult> {
  const ids = new IdMap(options.mode === 'new_organization');
  const owners = childOwners(catalogue);
  const preexisting = new Set<string>();
  const writers = new Map<string, TableWriter>();
  const tables: Record<string, number> = {};
  const users = { created: 0, matched: 0 };
  let rows = 0;
  let binaryBytes = 0;
  for (;;) {
    const next = await items.next();
    if (next.done) throw new ArchiveError('the archive ends before its trailer');
    const item = next.value;
    if (item.type === 'end') break;
    if (item.type !== 'rows') continue;
    if (hooks.cancelled?.()) throw new RestoreCancelled();
    const { table } = item;
    let writer = writers.get(table.name);
    if (!writer) {
      writer = tableWriter(catalogue, table, ids, options);
      writers.set(table.name, writer);
    }
    let batch = item.rows;
    let binary = item.binary;
    const keep = (index: number) => index >= 0;
    checkOwnRows(table, batch, header.organization.id);
    if (table.name === 'users') {
      const kept = await matchUsers(tx, table, batch, ids, preexisting, options.mode);
      users.matched += batch.length - kept.length;
      users.created += kept.length;
      binary = binary && kept.map((i) => binary![i]);
      batch = kept.map((i) => batch[i]);
    } else if (table.name === 'mfa_recovery_codes') {
      // The codes of the archive's users only; those of a user the target has already stay the target's.
      const userAt = table.columns.findIndex((c) => c.name === 'user_id');
      const kept = batch.flatMap((row, i) => {
        const user = (keep(userAt) ? (row[userAt] ?? '') : '').toLowerCase();
        if (!ids.users.has(user))
          throw new ArchiveError('mfa_recovery_codes holds a code of a user the archive does not hold');
        return preexisting.has(ids.id(user)) ? [] : [i];
      });
      binary = binary && kept.map((i) => binary![i]);
      batch = kept.map((i) => batch[i]);
    } else if (table.name === 'organizations') {
      batch = batch.map((row) => organizationRow(table, row, options));
    }
    if (batch.length) {
      const changed = transformRows(writer, batch, ids.active);
      const owned = owners.get(table.name);
      if (owned) await checkChildRows(tx, table, changed, owned, ids.id(header.organization.id));
      try {
        await tx.execute(writer.statement(JSON.stringify(changed), binary));
      } catch (err) {
        throw restoreError(table.name, err);
      }
    }
    tables[table.name] = (tables[table.name] ?? 0) + item.rows.length;
    rows += item.rows.length;
    for (const row of binary ?? []) for (const b of row) binaryBytes += b?.length ?? 0;
    await hooks.progress?.(item.rows.length);
  }
  const organization = await organizationById(tx, ids.id(header.organization.id));
  if (!organization) throw new ArchiveError('the archive’s organisation row was not restored');
  return {
    organization,
    mode: options.mode,
    rows,
    binary_bytes: binaryBytes,
    tables,
    users,
    secrets: options.sourceSecrets ? 'resealed' : 'kept',
  };
}

/**
 * Users of the batch whose email the target has are that user (mapped, not restored); the others keep
 * their id (or get a derived one) and lose any platform administration. Returns the rows to insert.
 */
async function matchUsers(
  tx: Db,
  table: ArchiveTable,
  batch: (string | null)[][],
  ids: IdMap,
  preexisting: Set<string>,
  mode: RestoreMode,
): Promise<number[]> {
  const at = (name: string) => table.columns.findIndex((c) => c.name === name);
  const idAt = at('id');
  const emailAt = at('email');
  const adminAt = at('is_superadmin');
  if (idAt < 0 || emailAt < 0) throw new ArchiveError('the archive’s users have no id or email');
  const emails = batch.map((r) => (r[emailAt] ?? '').toLowerCase());
  const existing = await usersByEmail(tx, emails);
  const taken =
    mode === 'keep_ids'
      ? await existingUserIds(
          tx,
          batch.map((r) => r[idAt] ?? ''),
        )
      : new Set();
  const kept: number[] = [];
  batch.forEach((row, i) => {
    const archived = (row[idAt] ?? '').toLowerCase();
    const found = existing.get(emails[i]);
    if (found) {
      ids.users.set(archived, found);
      preexisting.add(found);
      return;
    }
    ids.users.set(archived, mode === 'keep_ids' && !taken.has(archived) ? archived : ids.derived(archived));
    if (adminAt >= 0) row[adminAt] = 'false';
    kept.push(i);
  });
  return kept;
}

function organizationRow(table: ArchiveTable, row: (string | null)[], options: RestoreOptions) {
  const copy = [...row];
  const nameAt = table.columns.findIndex((c) => c.name === 'name');
  const slugAt = table.columns.findIndex((c) => c.name === 'slug');
  if (options.name !== undefined && nameAt >= 0) copy[nameAt] = options.name;
  if (options.slug !== undefined && slugAt >= 0) copy[slugAt] = options.slug;
  return copy;
}

function transformRows(writer: TableWriter, batch: (string | null)[][], idsChange: boolean) {
  const { idTransforms, seal } = writer;
  const hasSeal = seal.some(Boolean);
  if (!idsChange && !hasSeal) return batch;
  return batch.map((row) =>
    row.map((value, i) => {
      if (value === null) return null;
      let v = value;
      if (idsChange) v = idTransforms[i]?.(v) ?? v;
      if (hasSeal) v = seal[i]?.(v) ?? v;
      return v;
    }),
  );
}

function tableWriter(
  catalogue: Catalogue,
  table: ArchiveTable,
  ids: IdMap,
  options: RestoreOptions,
): TableWriter {
  const targetColumns = catalogue.tables.get(table.name)!;
  const target = (name: string) => targetColumns.find((c) => c.name === name)!;
  const sealed = new Set(ENCRYPTED_COLUMNS[table.name] ?? []);
  const { sourceSecrets, targetSecrets } = options;
  const idTransforms = table.columns.map((c): Transform | null => {
    const t = target(c.name);
    if (t.typname === 'uuid') return (v) => ids.id(v);
    if (t.typname === '_uuid') return (v) => v.replace(UUID_IN_TEXT, (u) => ids.id(u));
    if (t.typname === 'json' || t.typname === 'jsonb')
      return (v) => v.replace(QUOTED_UUID, (_, u: string) => `"${ids.id(u)}"`);
    if (t.typname === 'text' || t.typname === 'varchar')
      return sealed.has(c.name)
        ? null
        : (v) => {
            const m = WHOLE_UUID.exec(v);
            return m ? `${m[1] ?? ''}${ids.id(m[2])}` : v;
          };
    return null;
  });
  const seal = table.columns.map((c): Transform | null => {
    if (!sealed.has(c.name) || !sourceSecrets) return null;
    return (v) => {
      let plain: string;
      try {
        plain = sourceSecrets.decrypt(v);
      } catch {
        throw new ArchiveError(`a sealed value of ${table.name}.${c.name} does not open with the source key`);
      }
      return targetSecrets.encrypt(plain);
    };
  });

  // The statement: cast each value from its text, override what a unique policy says on a clash, and
  // clear a nullable reference to a row that is not here (a user who left, another organisation's row).
  // The batch is read as jsonb: `->>` on json parses the row's array again up to the value each time
  // (30 times slower for the 37 columns of messages).
  const names = [...table.columns, ...table.binary].map((c) => c.name);
  const casts = table.columns.map((c, i) =>
    sql.raw(`(r.j->>${i})::${target(c.name).type} as ${quote(c.name)}`),
  );
  const policies = Object.values(UNIQUE_POLICIES).filter((p) => p.table === table.name);
  const finals = names.map((name) => {
    let expr = `v.${quote(name)}`;
    for (const p of policies)
      if (name in p.set) expr = `case when ${p.clash} then ${p.set[name]} else ${expr} end`;
    const fk = catalogue.foreignKeys.find(
      (f) =>
        f.table === table.name &&
        f.columns.length === 1 &&
        f.columns[0] === name &&
        f.refTable !== table.name,
    );
    if (fk?.refTable && !target(name).notNull)
      expr = `case when v.${quote(name)} is null or exists (select 1 from ${quote(fk.refTable)} p where p.${quote(fk.refColumns![0])} = v.${quote(name)}) then ${expr} end`;
    return `${expr} as ${quote(name)}`;
  });
  const overriding = targetColumns.some((c) => c.identity === 'a' && names.includes(c.name))
    ? ' overriding system value'
    : '';
  // Rows that outlive their organisation (no foreign key at all: events, the audit trail) may be here
  // already when ids are kept: a row with the same id is the same row.
  const hasForeignKey = catalogue.foreignKeys.some((f) => f.table === table.name);
  const onConflict = options.mode === 'keep_ids' && !hasForeignKey ? ' on conflict do nothing' : '';
  const head = sql.raw(
    `insert into ${quote(table.name)} (${names.map(quote).join(', ')})${overriding} select ${finals.join(', ')} from (select `,
  );
  return {
    table,
    idTransforms,
    seal,
    statement(json, binary) {
      const values = [
        ...casts,
        ...table.binary.map(
          (c, i) =>
            sql`(${binaryArray(
              BYTEA_OID,
              (binary ?? []).map((r) => r[i]),
            )}::bytea[])[r.n] as ${sql.raw(quote(c.name))}`,
        ),
      ];
      return sql`${head}${sql.join(values, sql.raw(', '))} from jsonb_array_elements(${json}::jsonb) with ordinality as r(j, n)) v${sql.raw(onConflict)}`;
    },
  };
}

/** A failed insert: a clash (409) or a value this installation refuses (422), named by its table. */
function restoreError(table: string, err: unknown): Error {
  const code = databaseErrorCode(err);
  const message = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
  if (code === '23505') return new AppError(409, 'restore_conflict', `${table}: ${message}`);
  if (code && (code.startsWith('23') || code.startsWith('22')))
    return new AppError(422, 'archive_invalid', `${table}: ${message}`);
  return err as Error;
}

/** A child table's references to tenant tables (helpdesk_automation_fires: its rule and its ticket). */
interface OwnerReference {
  column: string;
  refTable: string;
  refColumn: string;
  type: string;
}

/**
 * For each table without organization_id whose rows belong to tenant rows (classify's children), every
 * single-column foreign key of it to a tenant table: what makes its rows an organisation's.
 */
function childOwners(catalogue: Catalogue): Map<string, OwnerReference[]> {
  const { tenant, children } = classify(catalogue);
  const tenants = new Set(tenant);
  const out = new Map<string, OwnerReference[]>();
  for (const { table } of children) {
    const references = catalogue.foreignKeys
      .filter((f) => f.table === table && f.columns.length === 1 && f.refTable && tenants.has(f.refTable))
      .map((f) => ({
        column: f.columns[0],
        refTable: f.refTable!,
        refColumn: f.refColumns![0],
        type: catalogue.tables.get(f.refTable!)!.find((c) => c.name === f.refColumns![0])!.type,
      }));
    out.set(table, references);
  }
  return out;
}

/**
 * A row of a table without organization_id is the organisation's through the tenant rows it references:
 * each of those must be a row of the restored organisation (restored before it, as parents come first),
 * or a crafted archive could attach rows to another organisation's.
 */
async function checkChildRows(
  tx: Db,
  table: ArchiveTable,
  rows: (string | null)[][],
  references: OwnerReference[],
  organizationId: string,
): Promise<void> {
  for (const ref of references) {
    const at = table.columns.findIndex((c) => c.name === ref.column);
    const values = [...new Set(rows.map((r) => (at >= 0 ? r[at] : null)).filter((v) => v !== null))];
    if (!values.length) continue;
    let foreign: unknown[];
    try {
      foreign = await rowsOf(
        tx,
        sql`select 1 from jsonb_array_elements_text(${JSON.stringify(values)}::jsonb) as c(v)
          where not exists (select 1 from ${sql.raw(quote(ref.refTable))} p
            where p.${sql.raw(quote(ref.refColumn))} = c.v::${sql.raw(ref.type)} and p.organization_id = ${organizationId})
          limit 1`,
      );
    } catch (err) {
      throw restoreError(table.name, err);
    }
    if (foreign.length)
      throw new ArchiveError(
        `${table.name} holds a row whose ${ref.column} is no ${ref.refTable} row of the organisation`,
      );
  }
}

/**
 * Every row of a tenant table must be the archive's organisation's: the checksums prove an archive whole,
 * not who made it, and a row naming another organisation would write into that organisation here.
 */
function checkOwnRows(
  table: { name: string; columns: { name: string }[] },
  rows: unknown[][],
  organizationId: string,
) {
  const column = table.name === 'organizations' ? 'id' : 'organization_id';
  const at = table.columns.findIndex((c) => c.name === column);
  if (at < 0) return;
  const foreign = rows.find((row) => row[at] !== organizationId);
  if (foreign)
    throw new ArchiveError(`${table.name} holds a row of another organisation (${String(foreign[at])})`);
}
