// The score: 100 minus what the inputs take. Each input's findings take the sum of their penalties, up to
// the input's weight, so one input that finds many things cannot take more than its share:
//
//   score = max(0, 100 - Σ_inputs min(weight_input, Σ penalty_findings))
//
// Weights (docs/health.md): dns 70, blocklists 70, bounces 45, unsubscribe 20; the inputs other modules
// plug in bring their own (complaints 50, ptr 20, warmup 30 as designed). Bands: good from 90, fair from
// 75, poor from 50, critical below.
import type { HealthInput } from './inputs/types.ts';
import type { Band, StoredFinding } from './tables.ts';

export const BANDS: { band: Band; from: number }[] = [
  { band: 'good', from: 90 },
  { band: 'fair', from: 75 },
  { band: 'poor', from: 50 },
  { band: 'critical', from: 0 },
];

export function bandOf(score: number): Band {
  return BANDS.find((b) => score >= b.from)!.band;
}

export interface InputShare {
  name: string;
  title: string;
  weight: number;
  /** Points taken: the sum of its findings' penalties, capped at its weight. */
  penalty: number;
  findings: number;
}

export interface Scored {
  score: number;
  band: Band;
  findings: StoredFinding[];
  inputs: InputShare[];
}

const SEVERITY_ORDER = { critical: 0, warning: 1, info: 2 } as const;

/** Combines the findings of each input into the score, its band and each input's share. */
export function score(inputs: readonly HealthInput[], findings: StoredFinding[]): Scored {
  const shares: InputShare[] = inputs.map((input) => {
    const own = findings.filter((f) => f.input === input.name);
    const sum = own.reduce((total, f) => total + Math.max(0, f.penalty), 0);
    return {
      name: input.name,
      title: input.title,
      weight: input.weight,
      penalty: Math.min(input.weight, sum),
      findings: own.length,
    };
  });
  const taken = shares.reduce((total, s) => total + s.penalty, 0);
  const value = Math.max(0, Math.min(100, Math.round(100 - taken)));
  const sorted = [...findings].sort(
    (a, b) =>
      SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] ||
      b.penalty - a.penalty ||
      a.code.localeCompare(b.code),
  );
  return { score: value, band: bandOf(value), findings: sorted, inputs: shares };
}

/**
 * What identifies a finding across computations (its code and what it is about), so that a change of
 * findings is told from a change of numbers in their evidence.
 */
export function fingerprint(findings: StoredFinding[]): string {
  return findings
    .map((f) => {
      const e = f.evidence;
      const about = ['target', 'list', 'host', 'selector'].map((k) => String(e[k] ?? '')).join('/');
      return `${f.code}:${about}`;
    })
    .sort()
    .join('\n');
}
