// Many rows in one INSERT with a single JSON parameter. Drizzle builds one bound parameter per value,
// and for batches of thousands of rows building them costs more CPU than the database spends on the
// insert; one JSON document expanded by json_to_recordset costs almost nothing to build.
import type { Db } from './db.ts';
import { sql } from './orm.ts';

/**
 * `columns` maps each column to its SQL type; each row carries those keys (Dates become ISO strings,
 * objects become JSON). Table and column names come from code, never from input.
 */
export async function bulkInsert(
  db: Db,
  table: string,
  columns: Record<string, string>,
  rows: Record<string, unknown>[],
): Promise<void> {
  if (rows.length === 0) return;
  const names = Object.keys(columns).join(', ');
  const definitions = Object.entries(columns)
    .map(([name, type]) => `${name} ${type}`)
    .join(', ');
  await db.execute(
    sql`insert into ${sql.raw(table)} (${sql.raw(names)}) select ${sql.raw(names)} from json_to_recordset(${JSON.stringify(rows)}::json) as v(${sql.raw(definitions)})`,
  );
}
