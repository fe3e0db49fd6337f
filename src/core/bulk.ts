// Many rows in one INSERT with a single JSON parameter. Drizzle builds one bound parameter per value,
// and for batches of thousands of rows building them costs more CPU than the database spends on the
// insert; one JSON document expanded by json_to_recordset costs almost nothing to build.
import type { Db } from './db.ts';
import { sql } from './orm.ts';
import { binaryTextArray } from './pg-binary.ts';

/**
 * `columns` maps each column to its SQL type; each row carries those keys (Dates become ISO strings,
 * objects become JSON). `texts` are text columns whose values (row by row) go as binary arrays beside
 * the JSON: long texts, such as message bodies, that would otherwise be escaped into it and parsed out
 * again. Table and column names come from code, never from input.
 */
export async function bulkInsert(
  db: Db,
  table: string,
  columns: Record<string, string>,
  rows: Record<string, unknown>[],
  texts: Record<string, (string | null)[]> = {},
): Promise<void> {
  if (rows.length === 0) return;
  const textColumns = Object.keys(texts);
  const names = [...Object.keys(columns), ...textColumns].join(', ');
  const definitions = Object.entries(columns)
    .map(([name, type]) => `${name} ${type}`)
    .join(', ');
  if (!textColumns.length) {
    await db.execute(
      sql`insert into ${sql.raw(table)} (${sql.raw(names)}) select ${sql.raw(names)} from json_to_recordset(${JSON.stringify(rows)}::json) as v(${sql.raw(definitions)})`,
    );
    return;
  }
  // Each row's position (`bulk_n`) picks its values out of the text arrays.
  const numbered = rows.map((row, i) => ({ ...row, bulk_n: i + 1 }));
  const values = [
    ...Object.keys(columns).map((name) => sql.raw(`v.${name}`)),
    ...textColumns.map((name) => sql`(${binaryTextArray(texts[name])}::text[])[v.bulk_n]`),
  ];
  await db.execute(
    sql`insert into ${sql.raw(table)} (${sql.raw(names)}) select ${sql.join(values, sql`, `)} from json_to_recordset(${JSON.stringify(numbered)}::json) as v(${sql.raw(definitions)}, bulk_n integer)`,
  );
}
