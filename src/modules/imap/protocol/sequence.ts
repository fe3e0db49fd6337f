// Sequence sets (RFC 3501 `sequence-set`): `1:5`, `*`, `3:*`, `2,4:7,9`. Ranges may be written backwards
// (`5:1` is `1:5`) and `*` stands for the largest number in use, so `UID FETCH 900:*` with 500 as the
// largest UID is `500:900`.
import type { SequenceRange, SequenceSet } from '../types.ts';
import { ImapSyntaxError, printable } from './errors.ts';

const MAX_NUMBER = 0xffff_ffff;

export function parseSequenceSet(text: string): SequenceSet {
  return text.split(',').map((part) => parseRange(part, text));
}

export function sequenceContains(set: SequenceSet, n: number, max: number): boolean {
  return set.some((range) => {
    const [low, high] = resolve(range, max);
    return n >= low && n <= high;
  });
}

/** The set as ascending, non-overlapping, non-adjacent `[first, last]` ranges with `*` as `max`. */
export function sequenceRanges(set: SequenceSet, max: number): [number, number][] {
  const ranges = set
    .map((range) => resolve(range, max))
    .map(([low, high]): [number, number] => [Math.max(low, 1), high])
    .filter(([low, high]) => low <= high)
    .sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const range of ranges) {
    const last = merged[merged.length - 1];
    if (last && range[0] <= last[1] + 1) last[1] = Math.max(last[1], range[1]);
    else merged.push(range);
  }
  return merged;
}

function resolve(range: SequenceRange, max: number): [number, number] {
  const start = range.start === '*' ? max : range.start;
  const end = range.end === '*' ? max : range.end;
  return start <= end ? [start, end] : [end, start];
}

function parseRange(part: string, text: string): SequenceRange {
  const colon = part.indexOf(':');
  if (colon < 0) {
    const n = parseNumber(part, text);
    return { start: n, end: n };
  }
  return { start: parseNumber(part.slice(0, colon), text), end: parseNumber(part.slice(colon + 1), text) };
}

function parseNumber(part: string, text: string): number | '*' {
  if (part === '*') return '*';
  const n = /^[1-9]\d{0,9}$/.test(part) ? Number(part) : 0;
  if (n < 1 || n > MAX_NUMBER) throw new ImapSyntaxError(`Invalid sequence set ${printable(text)}`);
  return n;
}
