// Warmup curves: how many recipients a sending IP may take on each day since its first use. Day 1 is the
// UTC day the IP first sent anything; after the curve's last day there is no cap. The named curves grow
// geometrically (rounded to two significant digits); a custom curve is a list of daily caps.

export type CurveName = 'none' | 'slow' | 'normal' | 'fast';
export type CurveKind = CurveName | 'custom';
export const CURVE_NAMES: readonly CurveName[] = ['none', 'slow', 'normal', 'fast'];

export interface Curve {
  kind: CurveKind;
  /** Cap of day 1, day 2, …; unlimited from the day after the last. Empty: never capped. */
  caps: readonly number[];
}

/** Two significant digits: 1,281 → 1,300. */
function round2(n: number): number {
  const scale = 10 ** Math.max(0, Math.floor(Math.log10(n)) - 1);
  return Math.round(n / scale) * scale;
}

function geometric(first: number, factor: number, days: number): number[] {
  return Array.from({ length: days }, (_, d) => round2(first * factor ** d));
}

const NAMED: Record<CurveName, readonly number[]> = {
  none: [],
  /** 20 a day, ×1.5 a day for 30 days (the last ~2.6 million). */
  slow: geometric(20, 1.5, 30),
  /** 50 a day, doubling for 15 days (the last ~820,000). */
  normal: geometric(50, 2, 15),
  /** 200 a day, ×2.5 a day for 10 days (the last ~760,000). */
  fast: geometric(200, 2.5, 10),
};

export function namedCurve(name: CurveName): Curve {
  return { kind: name, caps: NAMED[name] };
}

/** A stored curve: a name, or 'custom' with its caps. */
export function curveOf(kind: CurveKind, caps: readonly number[] | null): Curve {
  return kind === 'custom' ? { kind, caps: caps ?? [] } : namedCurve(kind);
}

/** The cap on warmup day `day` (1 = the day of first use); Infinity once the curve is over. */
export function capOn(curve: Curve, day: number): number {
  const index = Math.max(1, Math.floor(day)) - 1;
  return index < curve.caps.length ? curve.caps[index] : Number.POSITIVE_INFINITY;
}
