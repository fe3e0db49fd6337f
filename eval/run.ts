// `npm run eval`: runs every eval/*.eval.ts (or those named) and prints precision, recall and F1.
// Evaluations score labelled data the models were never trained on; none of them is a timed test.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import type { EvalRow, Evaluation } from './metrics.ts';

const named = process.argv.slice(2);
const files = readdirSync(path.resolve('eval'))
  .filter((f) => f.endsWith('.eval.ts'))
  .filter((f) => named.length === 0 || named.some((n) => f.includes(n)))
  .sort();
const rows: EvalRow[] = [];
for (const file of files) {
  const mod = (await import(path.resolve('eval', file))) as Evaluation;
  rows.push(...(await mod.run()));
}
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
console.log('| set | label | n | precision | recall | F1 | note |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${r.set} | ${r.label} | ${r.n} | ${pct(r.precision)} | ${pct(r.recall)} | ${pct(r.f1)} | ${r.note ?? ''} |`,
  );
}
