// Bounce rate: recipients that bounced out of those that finished (delivered or bounced) over the window,
// from the delivery tables, per domain (all its mail) and per mailbox (mail whose From is its address).
// Thresholds follow what mailbox providers and ESPs act on: under 2 % is normal, 5 % gets an account
// reviewed (Amazon SES), 10 % gets sending stopped. Fewer finished recipients than the minimum sample
// say nothing either way.
import type { Db } from '../../../core/db.ts';
import * as store from '../store.ts';
import type { Finding, HealthInput } from './types.ts';

export const BOUNCE_TIERS = [
  { from: 0.1, code: 'bounces.rate_critical', severity: 'critical', penalty: 45, label: '10 %' },
  { from: 0.05, code: 'bounces.rate_high', severity: 'critical', penalty: 30, label: '5 %' },
  { from: 0.02, code: 'bounces.rate_elevated', severity: 'warning', penalty: 15, label: '2 %' },
] as const;

export interface BounceOptions {
  db: Db;
  windowMs: number;
  /** Fewest finished recipients in the window for a rate to count. */
  minSample: number;
}

export function bounceFinding(
  bounced: number,
  finished: number,
  options: { windowMs: number; minSample: number },
): Finding | null {
  if (finished < options.minSample || finished === 0) return null;
  const rate = bounced / finished;
  const tier = BOUNCE_TIERS.find((t) => rate >= t.from);
  if (!tier) return null;
  const percent = Math.round(rate * 1000) / 10;
  return {
    code: tier.code,
    severity: tier.severity,
    title: `${percent} % of recipients bounced (at or above ${tier.label})`,
    evidence: {
      bounced,
      delivered: finished - bounced,
      rate: Math.round(rate * 10_000) / 10_000,
      threshold: tier.from,
      window_days: Math.round(options.windowMs / 86_400_000),
      min_sample: options.minSample,
    },
    fix: 'Stop sending to addresses that bounce (hard bounces are suppressed already), check lists before importing them, and read the bounce diagnostics of GET /v1/messages?status=bounced: a policy refusal (5.7.x) means the receiver blocks the mail, not the address',
    penalty: tier.penalty,
  };
}

export function bouncesInput(o: BounceOptions): HealthInput {
  return {
    name: 'bounces',
    title: 'Bounce rate',
    kinds: ['domain', 'mailbox'],
    weight: 45,
    async evaluate(batch) {
      const rows = await batch.memo(`bounces:${batch.organizationId}`, () =>
        store.bounceCounts(o.db, batch.organizationId, new Date(batch.now.getTime() - o.windowMs)),
      );
      // Per domain, or per From address: summed once per run and kind.
      const sums = await batch.memo(`bounces:${batch.organizationId}:${batch.kind}`, async () => {
        const sums = new Map<string, { bounced: number; finished: number }>();
        for (const r of rows) {
          const key = batch.kind === 'domain' ? r.domainId : r.address;
          if (!key) continue;
          const sum = sums.get(key) ?? { bounced: 0, finished: 0 };
          sum.bounced += r.bounced;
          sum.finished += r.finished;
          sums.set(key, sum);
        }
        return sums;
      });
      const findings = new Map<string, Finding[]>();
      for (const s of batch.subjects) {
        const sum = sums.get(batch.kind === 'domain' ? s.id : s.name);
        const f = sum && bounceFinding(sum.bounced, sum.finished, o);
        if (f) findings.set(s.id, [f]);
      }
      return findings;
    },
    // A bounce names its message; the message's domain and From mailbox are due again.
    triggers: { 'message.bounced': (e) => [{ message: e.data.message_id }] },
    afterCommit: ['message.bounced'],
  };
}
