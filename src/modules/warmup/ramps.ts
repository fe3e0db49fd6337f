// Warmup ramps: how many warmup messages a mailbox sends on each of its warmup days. A ramp starts at
// `start` a day, adds `increase` each day up to `target`, and is over after `days`; after it the mailbox
// keeps sending `target` a day (maintenance), as warmup services do to hold a reputation.

export type CurveName = 'slow' | 'normal' | 'fast';

export interface Ramp {
  curve: CurveName | 'custom';
  start: number;
  increase: number;
  target: number;
  days: number;
}

export const CURVES: Record<CurveName, Ramp> = {
  slow: { curve: 'slow', start: 2, increase: 1, target: 20, days: 42 },
  normal: { curve: 'normal', start: 3, increase: 2, target: 40, days: 30 },
  fast: { curve: 'fast', start: 5, increase: 4, target: 80, days: 21 },
};

/** The most a ramp may ask for a day: warmup volume beyond it is bulk mail, not warmup. */
export const MAX_DAILY = 500;

/** Messages to send on warmup day `day` (1 = the first); halved (rounded up) when health slowed it. */
export function dailyQuota(ramp: Ramp, day: number, slowed = false): number {
  const full = Math.min(ramp.target, ramp.start + ramp.increase * Math.max(0, day - 1));
  return slowed ? Math.ceil(full / 2) : full;
}

/** Whether the ramp is still climbing on this day, or holding its target. */
export function phase(ramp: Ramp, day: number): 'ramping' | 'maintaining' {
  return day <= ramp.days && ramp.start + ramp.increase * (day - 1) < ramp.target ? 'ramping' : 'maintaining';
}
