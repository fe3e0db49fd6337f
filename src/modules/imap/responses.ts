// Small pieces of IMAP's response syntax the commands share.

/** A flag list: `(\Seen $Label)`. */
export function flagList(flags: readonly string[]): string {
  return `(${flags.join(' ')})`;
}

/** Sorted numbers as a compact sequence set: 1,2,3,5 → `1:3,5`. Empty for none. */
export function sequenceSetOf(numbers: readonly number[]): string {
  const sorted = [...numbers].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] <= sorted[j] + 1) j++;
    parts.push(sorted[i] === sorted[j] ? `${sorted[i]}` : `${sorted[i]}:${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** Where `value` is, or would go, in an ascending array (binary search). */
export function lowerBound(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The index of `value` in an ascending array, or -1. */
export function indexOf(sorted: readonly number[], value: number): number {
  const i = lowerBound(sorted, value);
  return sorted[i] === value ? i : -1;
}

/** An IMAP literal of these bytes: `{n}` CRLF bytes, or `~{n}` (literal8) for binary content. */
export function literal(bytes: Buffer, binary = false): Buffer[] {
  return [Buffer.from(`${binary ? '~' : ''}{${bytes.length}}\r\n`), bytes];
}

/** The largest of many numbers (spreading a large array into Math.max overflows the call stack). */
export function largest(values: Iterable<number>, from = Number.NEGATIVE_INFINITY): number {
  let max = from;
  for (const v of values) if (v > max) max = v;
  return max;
}

/** The smallest of many numbers. */
export function smallest(values: Iterable<number>): number {
  let min = Number.POSITIVE_INFINITY;
  for (const v of values) if (v < min) min = v;
  return min;
}

/** Whether `n` is in ascending, non-overlapping ranges (as sequenceRanges gives them), by binary search. */
export function inRanges(ranges: readonly [number, number][], n: number): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (n < ranges[mid][0]) hi = mid - 1;
    else if (n > ranges[mid][1]) lo = mid + 1;
    else return true;
  }
  return false;
}
