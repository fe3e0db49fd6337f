// Shared arithmetic for `npm run eval`: confusion counts to precision, recall and F1.

export interface EvalRow {
  /** What was measured, e.g. "spam (held-out SpamAssassin)". */
  set: string;
  /** The positive class whose precision and recall are reported. */
  label: string;
  /** Labelled examples scored. */
  n: number;
  precision: number;
  recall: number;
  f1: number;
  /** Anything else worth a column: accuracy, threshold, model size. */
  note?: string;
}

export interface Evaluation {
  run: () => Promise<EvalRow[]>;
}

export interface Confusion {
  tp: number;
  fp: number;
  fn: number;
  tn: number;
}

export function emptyConfusion(): Confusion {
  return { tp: 0, fp: 0, fn: 0, tn: 0 };
}

export function count(confusion: Confusion, predicted: boolean, actual: boolean): void {
  if (predicted && actual) confusion.tp++;
  else if (predicted) confusion.fp++;
  else if (actual) confusion.fn++;
  else confusion.tn++;
}

export function scores(c: Confusion): { precision: number; recall: number; f1: number } {
  const precision = c.tp + c.fp === 0 ? 1 : c.tp / (c.tp + c.fp);
  const recall = c.tp + c.fn === 0 ? 1 : c.tp / (c.tp + c.fn);
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return { precision, recall, f1 };
}

/** One row per label of a multi-class task: each label in turn is the positive class. */
export function perLabelRows(set: string, pairs: Array<{ predicted: string; actual: string }>): EvalRow[] {
  const labels = [...new Set(pairs.map((p) => p.actual))].sort();
  const rows = labels.map((label) => {
    const c = emptyConfusion();
    for (const p of pairs) count(c, p.predicted === label, p.actual === label);
    return { set, label, n: pairs.filter((p) => p.actual === label).length, ...scores(c) };
  });
  const correct = pairs.filter((p) => p.predicted === p.actual).length;
  const macro = (key: 'precision' | 'recall' | 'f1') =>
    rows.reduce((sum, r) => sum + r[key], 0) / rows.length;
  rows.push({
    set,
    label: '(macro average)',
    n: pairs.length,
    precision: macro('precision'),
    recall: macro('recall'),
    f1: macro('f1'),
    note: `accuracy ${((100 * correct) / pairs.length).toFixed(1)}%`,
  } as EvalRow);
  return rows;
}
