// Many rows in one INSERT with a single JSON parameter. Drizzle builds one bound parameter per value,
// and for batches of thousands of rows building them costs more CPU than the database spends on the
// insert; one JSON document expanded by json_to_recordset costs almost nothing to build.
import type { SQL } from 'drizzle-orm';
import type { Db } from './db.ts';
import { sql } from './orm.ts';
import { binaryTextArray } from './pg-binary.ts';

/**
 * The insert as a statement (null for no rows). `columns` maps each column to its SQL type; each row
 * carries those keys (Dates become ISO strings, objects become JSON). `texts` are text columns whose
 * values (row by row) go as binary arrays beside the JSON: long texts, such as message bodies, that would
 * otherwise be escaped into it and parsed out again. Table and column names come from code, never from
 * input.
 */
export function bulkInsertStatement(
  table: string,
  columns: Record<string, string>,
  rows: Record<string, unknown>[],
  texts: Record<string, (string | null)[]> = {},
): SQL | null {
  if (rows.length === 0) return null;
  const textColumns = Object.keys(texts);
  const names = [...Object.keys(columns), ...textColumns].join(', ');
  const definitions = Object.entries(columns)
    .map(([name, type]) => `${name} ${type}`)
    .join(', ');
  // With texts, each row's position (`bulk_n`) picks its values out of the text arrays.
  const json = textColumns.length ? rows.map((row, i) => ({ ...row, bulk_n: i + 1 })) : rows;
  const values = [
    sql.raw(Object.keys(columns).join(', ')),
    ...textColumns.map((name) => sql`(${binaryTextArray(texts[name])}::text[])[bulk_n]`),
  ];
  return sql`insert into ${sql.raw(table)} (${sql.raw(names)}) select ${sql.join(values, sql`, `)} from json_to_recordset(${JSON.stringify(json)}::json) as v(${sql.raw(definitions)}, bulk_n integer)`;
}

/** The rows in one statement (see bulkInsertStatement). */
export async function bulkInsert(
  db: Db,
  table: string,
  columns: Record<string, string>,
  rows: Record<string, unknown>[],
  texts: Record<string, (string | null)[]> = {},
): Promise<void> {
  await executeTogether(db, [bulkInsertStatement(table, columns, rows, texts)]);
}

/**
 * Writes that need no answer (inserts, updates and deletes without RETURNING) as one statement, each a
 * data-modifying WITH query: one round trip instead of one each. They run as one statement does, so a
 * row may refer to another written beside it (foreign keys are checked at its end), and one failure
 * fails them all. Nulls (nothing to write) are left out, so one write or none is simply executed (or
 * not). `last`, a SELECT that needs no answer either (pg_notify's), ends the statement.
 */
export async function executeTogether(
  db: Db,
  writes: (SQL | null)[],
  last: SQL | null = null,
): Promise<void> {
  const statements = writes.filter((w): w is SQL => w !== null);
  if (statements.length + (last ? 1 : 0) <= 1) {
    const only = statements[0] ?? last;
    if (only) await db.execute(only);
    return;
  }
  const queries = statements.map((w, i) => sql`${sql.raw(`w${i}`)} as (${w})`);
  await db.execute(sql`with ${sql.join(queries, sql`, `)} ${last ?? sql`select`}`);
}
