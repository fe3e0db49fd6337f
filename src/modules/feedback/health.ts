// The complaint rate as a health input: matched complaints of a complaining type (abuse, fraud, virus or
// none given) out of the recipients delivered to, over the health window (MAILROOM_HEALTH_WINDOW, the
// bounce rate's), per domain (all its mail) and per mailbox (the address whose send limits counted the
// mail: the submission login, else the From address). The thresholds are the large mailbox providers'
// published ones for bulk senders (Gmail and Yahoo, 2024): keep the user-reported spam rate below 0.1 %
// (the target), never reach 0.3 % (the ceiling: mail is refused or junked from there). Fewer delivered
// recipients than MAILROOM_HEALTH_MIN_SAMPLE (the bounce rate's minimum, 100) make no rate: complaints
// among them are shown (info, no penalty), nothing is deducted.
import type { Finding, HealthInput, SubjectSelector } from '../health/inputs/types.ts';
import type { ComplaintRates, RateCount } from './tables.ts';
import { COMPLAINING_TYPES } from './tables.ts';

/** Gmail's and Yahoo's target: below this a sender is fine. */
export const COMPLAINT_TARGET = 0.001;
/** Their ceiling: at or above this a sender's mail is refused or junked. */
export const COMPLAINT_CEILING = 0.003;

const TIERS = [
  {
    from: COMPLAINT_CEILING,
    code: 'complaints.rate_high',
    severity: 'critical',
    penalty: 50,
    label: 'at or above the 0.3 % ceiling of Gmail and Yahoo: their filters refuse or junk mail from here',
  },
  {
    from: COMPLAINT_TARGET,
    code: 'complaints.rate_elevated',
    severity: 'warning',
    penalty: 15,
    label: 'not below the 0.1 % target of Gmail and Yahoo',
  },
] as const;

export interface ComplaintsInputOptions {
  /** The feedback module's complaint and delivered counts over a window (`FeedbackService.rates`). */
  rates(organizationId: string, window: { since: Date; until?: Date }): Promise<ComplaintRates>;
  /** MAILROOM_HEALTH_WINDOW. */
  windowMs: number;
  /** MAILROOM_HEALTH_MIN_SAMPLE: fewest delivered recipients for a complaint rate to count. */
  minSample: number;
}

const percent = (rate: number) => `${Math.round(rate * 10_000) / 100} %`;

/** What to do, for a sender whose complaints are found at `/v1/complaints?domain=`. */
function fixFor(domain: string, over: boolean): string {
  return [
    over
      ? 'Stop sending bulk mail from this sender until the cause is found, then send only to recipients who asked for it.'
      : 'Bring the rate under 0.1 % before it reaches 0.3 %.',
    `See who complained and about which messages at GET /v1/complaints?domain=${encodeURIComponent(domain)} (each complainer is suppressed already).`,
    'Check list hygiene: never import bought, rented or old lists, and drop addresses that have not opened or clicked for months.',
    'Confirm opt-in: send only to people who signed up for this mail (double opt-in for new sign-ups), and say who is writing and why.',
    'Give every bulk message a one-click unsubscribe (List-Unsubscribe with an https URI and List-Unsubscribe-Post: List-Unsubscribe=One-Click) and a visible unsubscribe link, so that leaving is easier than reporting spam.',
  ].join(' ');
}

/** The finding for one sender's counts, or null when there is nothing to say. */
export function complaintFinding(
  count: Pick<RateCount, 'complaints' | 'delivered'>,
  o: { windowMs: number; minSample: number; domain: string },
): Finding | null {
  const { complaints, delivered } = count;
  if (complaints === 0) return null;
  const evidence = {
    complaints,
    delivered,
    rate: delivered > 0 ? Math.round((complaints / delivered) * 1_000_000) / 1_000_000 : null,
    window_days: Math.round(o.windowMs / 86_400_000),
    target: COMPLAINT_TARGET,
    ceiling: COMPLAINT_CEILING,
    min_sample: o.minSample,
  };
  if (delivered < o.minSample) {
    return {
      code: 'complaints.low_volume',
      severity: 'info',
      title: `${complaints} ${complaints === 1 ? 'complaint' : 'complaints'} about ${delivered} delivered ${delivered === 1 ? 'recipient' : 'recipients'}: too few delivered (under ${o.minSample}) for a complaint rate that counts`,
      evidence,
      fix: fixFor(o.domain, false),
      penalty: 0,
    };
  }
  const rate = complaints / delivered;
  const tier = TIERS.find((t) => rate >= t.from);
  if (!tier) return null;
  return {
    code: tier.code,
    severity: tier.severity,
    title: `${percent(rate)} of delivered recipients reported the mail as spam (${complaints} of ${delivered}), ${tier.label}`,
    evidence: { ...evidence, threshold: tier.from },
    fix: fixFor(o.domain, tier.from === COMPLAINT_CEILING),
    penalty: tier.penalty,
  };
}

/** Whether a `complaint.received` counts in the rate (matched, of a complaining type). */
function counts(data: { matched?: boolean; feedback_type?: string | null }): boolean {
  return (
    data.matched === true && (data.feedback_type == null || COMPLAINING_TYPES.includes(data.feedback_type))
  );
}

export function complaintsInput(o: ComplaintsInputOptions): HealthInput {
  return {
    name: 'complaints',
    title: 'Complaint rate',
    kinds: ['domain', 'mailbox'],
    weight: 50,
    async evaluate(batch) {
      // The window ends now: rows written since the clock's time (a test's clock) are in it, as in the
      // bounce count.
      const rates = await batch.memo(`complaints:${batch.organizationId}`, () =>
        o.rates(batch.organizationId, { since: new Date(batch.now.getTime() - o.windowMs) }),
      );
      // By domain id, or by mailbox address: once per run and kind.
      const byKey = await batch.memo(
        `complaints:${batch.organizationId}:${batch.kind}`,
        async (): Promise<Map<string, RateCount>> =>
          batch.kind === 'domain'
            ? new Map(rates.domains.flatMap((d) => (d.domainId ? [[d.domainId, d] as const] : [])))
            : new Map(rates.mailboxes.map((m) => [m.address, m] as const)),
      );
      const findings = new Map<string, Finding[]>();
      for (const s of batch.subjects) {
        const count = byKey.get(batch.kind === 'domain' ? s.id : s.name);
        if (!count) continue;
        const domain = batch.kind === 'domain' ? s.name : s.name.slice(s.name.lastIndexOf('@') + 1);
        const f = complaintFinding(count, { ...o, domain });
        if (f) findings.set(s.id, [f]);
      }
      return findings;
    },
    // A complaint names its message: the message's domain and From mailbox are due again, and the
    // mailbox it was counted for (a submission login may differ from the From address).
    triggers: {
      'complaint.received': (e): SubjectSelector[] => {
        if (!counts(e.data) || !e.data.message_id) return [];
        const selectors: SubjectSelector[] = [{ message: e.data.message_id }];
        if (e.data.sender) selectors.push({ kind: 'mailbox', name: String(e.data.sender).toLowerCase() });
        return selectors;
      },
    },
  };
}
