// What a backup reads, discovered from the database catalogue: every table of the public schema with an
// organization_id column holds tenant rows; the few without one that those rows need are in
// registry.ts, as are the installation's own. Tables come in an order that puts every row after the
// rows it references (a topological order of the foreign keys), so a restore inserts them as they come.
import type { Db } from '../../core/db.ts';
import { isUuid } from '../../core/ids.ts';
import { EXCLUDED_TENANT_TABLES, INSTALLATION_TABLES, RELATED_TABLES } from './registry.ts';
import {
  type CatalogueColumn,
  type CatalogueConstraint,
  catalogueColumns,
  catalogueConstraints,
} from './store.ts';

export interface Catalogue {
  /** Columns by table, in column order. */
  tables: Map<string, CatalogueColumn[]>;
  primaryKeys: Map<string, string[]>;
  foreignKeys: CatalogueConstraint[];
}

export async function loadCatalogue(db: Db): Promise<Catalogue> {
  const [columns, { primaryKeys, foreignKeys }] = await Promise.all([
    catalogueColumns(db),
    catalogueConstraints(db),
  ]);
  const tables = new Map<string, CatalogueColumn[]>();
  for (const c of columns) {
    const list = tables.get(c.table) ?? [];
    list.push(c);
    tables.set(c.table, list);
  }
  return {
    tables,
    primaryKeys: new Map(primaryKeys.map((k) => [k.table, k.columns])),
    foreignKeys,
  };
}

export interface Classification {
  /** Tables with organization_id that backups hold. */
  tenant: string[];
  /** Tables with organization_id left out on purpose. */
  excluded: string[];
  related: string[];
  /**
   * Tables without organization_id whose every row belongs to a tenant row (a NOT NULL foreign key to a
   * tenant table): backed up with their parent's rows. The convention is an organization_id on every
   * tenant row; these are covered all the same.
   */
  children: { table: string; column: string; parent: string; parentColumn: string }[];
  installation: string[];
  /** Tables nobody decided about: a new table without organization_id needs a line in registry.ts. */
  unclassified: string[];
}

export function classify(catalogue: Catalogue): Classification {
  const out: Classification = {
    tenant: [],
    excluded: [],
    related: [],
    children: [],
    installation: [],
    unclassified: [],
  };
  const rest: string[] = [];
  for (const [name, columns] of [...catalogue.tables].sort(([a], [b]) => a.localeCompare(b))) {
    if ((RELATED_TABLES as readonly string[]).includes(name)) out.related.push(name);
    else if (name in INSTALLATION_TABLES) out.installation.push(name);
    else if (name in EXCLUDED_TENANT_TABLES) out.excluded.push(name);
    else if (columns.some((c) => c.name === 'organization_id')) out.tenant.push(name);
    else rest.push(name);
  }
  for (const name of rest) {
    const columns = catalogue.tables.get(name)!;
    const fk = catalogue.foreignKeys
      .filter(
        (f) => f.table === name && f.columns.length === 1 && f.refTable && out.tenant.includes(f.refTable),
      )
      .filter((f) => columns.find((c) => c.name === f.columns[0])?.notNull)
      .sort((a, b) => a.name.localeCompare(b.name))[0];
    if (fk)
      out.children.push({
        table: name,
        column: fk.columns[0],
        parent: fk.refTable!,
        parentColumn: fk.refColumns![0],
      });
    else out.unclassified.push(name);
  }
  return out;
}

/** One table as a backup reads it. */
export interface TablePlan {
  name: string;
  /** Columns read as their text. */
  columns: CatalogueColumn[];
  /** bytea columns, read as bytes. */
  binary: CatalogueColumn[];
  /** The SELECT of its rows in order: the text of each of `columns`, then the `binary` columns. */
  select: string;
  /** How many of its rows the organisation has (a scalar subquery). */
  count: string;
}

const quote = (identifier: string) => `"${identifier.replace(/"/g, '""')}"`;

/**
 * The tables of `organizationId`'s backup, in insert order: the organisation, its users and their
 * recovery codes, then every tenant table after the tables it references.
 */
export function backupPlan(catalogue: Catalogue, organizationId: string): TablePlan[] {
  if (!isUuid(organizationId)) throw new Error('not an organisation id');
  const org = `'${organizationId.toLowerCase()}'`;
  const { tenant, children } = classify(catalogue);
  // Users the organisation's rows need: its members, and those a NOT NULL reference names.
  const userSources = [`select user_id from memberships where organization_id = ${org}`];
  for (const fk of catalogue.foreignKeys) {
    if (fk.refTable !== 'users' || fk.columns.length !== 1 || !tenant.includes(fk.table)) continue;
    if (fk.table === 'memberships') continue;
    const column = catalogue.tables.get(fk.table)?.find((c) => c.name === fk.columns[0]);
    if (!column?.notNull) continue;
    userSources.push(`select ${quote(fk.columns[0])} from ${quote(fk.table)} where organization_id = ${org}`);
  }
  const users = userSources.join(' union ');
  const filters = new Map<string, string>([
    ['organizations', `id = ${org}`],
    ['users', `id in (${users})`],
    ['mfa_recovery_codes', `user_id in (${users})`],
  ]);
  for (const name of tenant) filters.set(name, `organization_id = ${org}`);
  for (const c of children)
    filters.set(
      c.table,
      `${quote(c.column)} in (select ${quote(c.parentColumn)} from ${quote(c.parent)} where organization_id = ${org})`,
    );
  return insertOrder(catalogue, [...filters.keys()]).map((name) =>
    tablePlan(catalogue, name, filters.get(name)!),
  );
}

function tablePlan(catalogue: Catalogue, name: string, where: string): TablePlan {
  const all = (catalogue.tables.get(name) ?? []).filter((c) => !c.generated);
  const binary = all.filter((c) => c.typname === 'bytea');
  const columns = all.filter((c) => c.typname !== 'bytea');
  const key = catalogue.primaryKeys.get(name);
  // Qualified: an output column of the same name (the key's text) would order as text.
  const order = key?.length ? ` order by ${key.map((k) => `t.${quote(k)}`).join(', ')}` : '';
  const fields = [
    ...columns.map((c) => (c.typname === 'text' ? `t.${quote(c.name)}` : `t.${quote(c.name)}::text`)),
    ...binary.map((c) => `t.${quote(c.name)}`),
  ].join(', ');
  const table = `${quote(name)} t`;
  return {
    name,
    columns,
    binary,
    select: `select ${fields} from ${table} where ${where}${order}`,
    count: `select count(*)::int from ${table} where ${where}`,
  };
}

/**
 * `names` ordered so that a table comes after every table it references (self-references aside): the
 * organisation and users first, then Kahn's algorithm, ties by name. Tables in a cycle of foreign keys
 * (there are none; a test checks) would come last, by name.
 */
export function insertOrder(catalogue: Catalogue, names: string[]): string[] {
  const first = RELATED_TABLES.filter((t) => names.includes(t));
  const rest = names.filter((n) => !first.includes(n as (typeof RELATED_TABLES)[number]));
  const parents = new Map<string, Set<string>>(rest.map((n) => [n, new Set()]));
  for (const fk of catalogue.foreignKeys) {
    if (!parents.has(fk.table) || !fk.refTable || fk.refTable === fk.table) continue;
    if (parents.has(fk.refTable)) parents.get(fk.table)!.add(fk.refTable);
  }
  const ordered: string[] = [];
  const remaining = new Set(rest);
  for (;;) {
    const ready = [...remaining]
      .filter((n) => [...parents.get(n)!].every((p) => !remaining.has(p)))
      .sort((a, b) => a.localeCompare(b));
    if (!ready.length) break;
    for (const n of ready) {
      ordered.push(n);
      remaining.delete(n);
    }
  }
  return [...first, ...ordered, ...[...remaining].sort((a, b) => a.localeCompare(b))];
}

/** Foreign-key cycles among `names` (self-references aside), for the tests. */
export function cyclicTables(catalogue: Catalogue, names: string[]): string[] {
  const ordered = insertOrder(catalogue, names);
  const position = new Map(ordered.map((n, i) => [n, i]));
  const late = new Set<string>();
  for (const fk of catalogue.foreignKeys) {
    if (!fk.refTable || fk.refTable === fk.table) continue;
    const child = position.get(fk.table);
    const parent = position.get(fk.refTable);
    if (child !== undefined && parent !== undefined && parent > child)
      late.add(`${fk.table} → ${fk.refTable}`);
  }
  return [...late];
}
