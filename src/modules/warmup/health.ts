// Warmup's part of health (the `warmup` input, weight 30): where a mailbox's warmup mail lands, and how
// much other mail it sends while its ramp is still climbing. A mailbox whose warmup mail goes to spam
// has a reputation problem that the rest of its mail shares; a mailbox sending far more than its ramp
// undoes the warmup (providers judge the volume they see, not the intent). A domain is judged on the
// warmup mail of all its mailboxes together.
import type { Db } from '../../core/db.ts';
import type { Finding, HealthInput } from '../health/inputs/types.ts';
import { dailyQuota, phase } from './ramps.ts';
import * as store from './store.ts';

/** Placement is judged over the last week, once at least this many messages were found or missed. */
const PLACEMENT_WINDOW_DAYS = 7;
export const PLACEMENT_MIN_SAMPLE = 10;
export const SPAM_TIERS = [
  { from: 0.25, code: 'warmup.spam_rate_critical', severity: 'critical', penalty: 30, label: '25 %' },
  { from: 0.1, code: 'warmup.spam_rate_high', severity: 'warning', penalty: 15, label: '10 %' },
] as const;
const MISSING_FROM = 0.2;
/** Other mail in the last 24 hours against the ramp's quota today, while it is still climbing. */
export const VOLUME_TIERS = [
  { times: 5, code: 'warmup.volume_far_over_ramp', severity: 'critical', penalty: 20 },
  { times: 2, code: 'warmup.volume_over_ramp', severity: 'warning', penalty: 10 },
] as const;

interface Placement {
  found: number;
  spam: number;
  missing: number;
}

function placementFindings(p: Placement): Finding[] {
  const judged = p.found + p.missing;
  if (judged < PLACEMENT_MIN_SAMPLE) return [];
  const findings: Finding[] = [];
  const rate = p.spam / judged;
  const tier = SPAM_TIERS.find((t) => rate >= t.from);
  const evidence = {
    spam: p.spam,
    found: p.found,
    missing: p.missing,
    window_days: PLACEMENT_WINDOW_DAYS,
    min_sample: PLACEMENT_MIN_SAMPLE,
  };
  if (tier)
    findings.push({
      code: tier.code,
      severity: tier.severity,
      title: `${Math.round(rate * 1000) / 10} % of warmup mail landed in spam (at or above ${tier.label})`,
      evidence: { ...evidence, rate: Math.round(rate * 10_000) / 10_000, threshold: tier.from },
      fix: 'Slow the ramp (PATCH /v1/warmup/:mailbox with a slower curve) and hold back other sending until the spam rate falls; check the domain’s authentication and blocklist findings, which usually explain it, and the placement by provider at GET /v1/warmup/:mailbox/stats',
      penalty: tier.penalty,
    });
  const missingRate = p.missing / judged;
  if (missingRate >= MISSING_FROM)
    findings.push({
      code: 'warmup.missing_high',
      severity: 'warning',
      title: `${Math.round(missingRate * 1000) / 10} % of warmup mail never arrived`,
      evidence: { ...evidence, rate: Math.round(missingRate * 10_000) / 10_000, threshold: MISSING_FROM },
      fix: 'Mail that vanishes was refused or silently dropped: read the delivery attempts of the mailbox’s recent mail (GET /v1/messages?status=bounced) and the receiving accounts’ connection state',
      penalty: 10,
    });
  return findings;
}

export function warmupInput(db: Db): HealthInput {
  return {
    name: 'warmup',
    title: 'Warmup placement and volume',
    kinds: ['domain', 'mailbox'],
    weight: 30,
    async evaluate(batch) {
      const org = batch.organizationId;
      const since = new Date(batch.now.getTime() - PLACEMENT_WINDOW_DAYS * 86_400_000);
      const [placements, enrollments] = await Promise.all([
        batch.memo(`warmup:placement:${org}`, () => store.placementByMailbox(db, org, since)),
        batch.memo(`warmup:enrollments:${org}`, () => store.mailboxEnrollments(db, org)),
      ]);
      const findings = new Map<string, Finding[]>();
      if (batch.kind === 'domain') {
        const byDomain = new Map<string, Placement>();
        for (const p of placements) {
          const sum = byDomain.get(p.domainId) ?? { found: 0, spam: 0, missing: 0 };
          sum.found += p.found;
          sum.spam += p.spam;
          sum.missing += p.missing;
          byDomain.set(p.domainId, sum);
        }
        for (const s of batch.subjects) {
          const list = placementFindings(byDomain.get(s.id) ?? { found: 0, spam: 0, missing: 0 });
          if (list.length) findings.set(s.id, list);
        }
        return findings;
      }
      const volume = await batch.memo(`warmup:volume:${org}`, () =>
        store.otherMailByAddress(db, org, new Date(batch.now.getTime() - 86_400_000)),
      );
      const placementOf = new Map(placements.map((p) => [p.mailboxId, p]));
      const enrollmentOf = new Map(enrollments.map((e) => [e.mailboxId, e]));
      for (const s of batch.subjects) {
        const list = placementFindings(placementOf.get(s.id) ?? { found: 0, spam: 0, missing: 0 });
        const e = enrollmentOf.get(s.id);
        if (e) {
          const day = Math.max(1, e.warmDays);
          const quota = dailyQuota(e.ramp, day, e.slowed);
          const sent = volume.get(s.name) ?? 0;
          const tier = VOLUME_TIERS.find((t) => sent > quota * t.times);
          if (phase(e.ramp, day) === 'ramping' && tier)
            list.push({
              code: tier.code,
              severity: tier.severity,
              title: `${sent} recipients of other mail in 24 hours, over ${tier.times}× the warmup ramp’s ${quota} today`,
              evidence: {
                recipients: sent,
                ramp_quota: quota,
                warm_day: day,
                times: tier.times,
                curve: e.ramp.curve,
              },
              fix: 'Keep other sending near the ramp’s daily volume until the ramp reaches its target (GET /v1/warmup/:mailbox shows warm_day and daily_quota), or choose a faster curve if the mailbox’s placement allows it',
              penalty: tier.penalty,
            });
        }
        if (list.length) findings.set(s.id, list);
      }
      return findings;
    },
    triggers: {
      // A rescue is news about the sender's placement.
      'warmup.rescued': (event) => [{ kind: 'mailbox', name: String(event.data.from).toLowerCase() }],
    },
  };
}
