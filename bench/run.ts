// `npm run bench`: runs every bench/*.bench.ts (or those named) and prints one table.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { hostReference, printTable, type Row } from './support.ts';

const named = process.argv.slice(2);
const files = readdirSync(path.resolve('bench'))
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => named.length === 0 || named.some((n) => f.includes(n)))
  .sort();
const rows: Row[] = [];
const before = hostReference();
for (const file of files) {
  const mod = (await import(path.resolve('bench', file))) as { run: () => Promise<Row[]> };
  rows.push(...(await mod.run()));
}
printTable(rows);
// The same work timed before and after: how fast this host was while the benchmarks ran.
console.log(
  `host reference: ${before.toFixed(0)} ms before, ${hostReference().toFixed(0)} ms after (lower is faster; compare runs only at similar values)`,
);
