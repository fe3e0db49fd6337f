// `npm run bench`: runs every bench/*.bench.ts (or those named) and prints one table.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { printTable, type Row } from './support.ts';

const named = process.argv.slice(2);
const files = readdirSync(path.resolve('bench'))
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => named.length === 0 || named.some((n) => f.includes(n)))
  .sort();
const rows: Row[] = [];
for (const file of files) {
  const mod = (await import(path.resolve('bench', file))) as { run: () => Promise<Row[]> };
  rows.push(...(await mod.run()));
}
printTable(rows);
