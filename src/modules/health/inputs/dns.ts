// Authentication records: the domain's last DNS verification (the domains module's checks, record by
// record; its scheduled re-check keeps them current, and a health check asks it to look again first),
// read as findings. Required records that stopped verifying cost the most; DMARC that only monitors,
// the return path and MX less; MTA-STS and TLS-RPT a little. A record no resolver could answer keeps
// the domain's last verdict on it, so a resolver outage does not swing scores.
import type { DomainsService, RecordCheck } from '../../domains/service.ts';
import type { DkimKeyRow, DomainRow } from '../../domains/tables.ts';
import type { Finding, HealthInput, SubjectSelector } from './types.ts';

const DOMAIN_EVENTS = [
  'domain.updated',
  'domain.verified',
  'domain.failed',
  'domain.dns_changed',
  'domain.dkim_rotated',
  'domain.dkim_activated',
  'domain.dkim_rotation_undone',
];

/** The flag each required record's verdict is kept in, when a check could not settle it. */
const FLAG = {
  ownership: 'ownershipVerified',
  mx: 'mxVerified',
  spf: 'spfVerified',
  dkim: 'dkimVerified',
  dmarc: 'dmarcVerified',
  return_path: 'returnPathVerified',
} as const;

interface Rule {
  code: string;
  severity: Finding['severity'];
  title: string;
  penalty: number;
}

/** Per record purpose: what it costs when it is not there, and when something else is there. */
const RULES: Record<keyof typeof FLAG, { missing: Rule; mismatch: Rule }> = {
  ownership: {
    missing: {
      code: 'dns.ownership_unverified',
      severity: 'critical',
      title: "The domain's ownership record is not published: it cannot send",
      penalty: 40,
    },
    mismatch: {
      code: 'dns.ownership_unverified',
      severity: 'critical',
      title: "The domain's ownership record does not hold this organisation's token: it cannot send",
      penalty: 40,
    },
  },
  spf: {
    missing: { code: 'dns.spf_missing', severity: 'critical', title: 'No SPF record', penalty: 30 },
    mismatch: {
      code: 'dns.spf_invalid',
      severity: 'critical',
      title: 'The SPF record does not authorise Mailroom, or receivers cannot use it',
      penalty: 25,
    },
  },
  dkim: {
    missing: {
      code: 'dns.dkim_missing',
      severity: 'critical',
      title: 'The DKIM key that signs is not published',
      penalty: 35,
    },
    mismatch: {
      code: 'dns.dkim_invalid',
      severity: 'critical',
      title: 'The published DKIM record does not match the key that signs',
      penalty: 35,
    },
  },
  dmarc: {
    missing: { code: 'dns.dmarc_missing', severity: 'warning', title: 'No DMARC record', penalty: 20 },
    mismatch: {
      code: 'dns.dmarc_invalid',
      severity: 'warning',
      title: 'The DMARC record is invalid: receivers ignore it',
      penalty: 20,
    },
  },
  mx: {
    missing: { code: 'dns.mx_missing', severity: 'warning', title: 'No MX record', penalty: 15 },
    mismatch: {
      code: 'dns.mx_wrong',
      severity: 'warning',
      title: 'MX records point elsewhere: replies and bounces do not reach Mailroom',
      penalty: 10,
    },
  },
  return_path: {
    missing: {
      code: 'dns.return_path_missing',
      severity: 'warning',
      title: 'The return-path CNAME is not published: SPF does not align, bounces are lost',
      penalty: 10,
    },
    mismatch: {
      code: 'dns.return_path_missing',
      severity: 'warning',
      title: 'The return-path CNAME points elsewhere: SPF does not align, bounces are lost',
      penalty: 10,
    },
  },
};

const PENALTY = { dmarcNone: 10, spfPassAll: 15, mtaSts: 3, tlsRpt: 2 };

const evidenceOf = (c: RecordCheck) => ({
  host: c.host,
  type: c.type,
  status: c.status,
  expected: c.expected,
  found: c.found,
  diagnosis: c.diagnosis,
  ...(c.selector ? { selector: c.selector } : {}),
});

/** The diagnosis's instruction, or the record to publish. */
function fixOf(c: RecordCheck): string {
  const publish = /Publish(?: instead)?: (.+)$/.exec(c.diagnosis);
  if (publish) return `Publish ${publish[1]} at ${c.host}`;
  if (c.status === 'mismatch') return c.diagnosis;
  return `Publish ${c.type} ${c.expected} at ${c.host}`;
}

const finding = (
  rule: Rule,
  c: RecordCheck,
  fix = fixOf(c),
  extra: Record<string, unknown> = {},
): Finding => ({
  ...rule,
  evidence: { ...evidenceOf(c), ...extra },
  fix,
});

/** Findings of one domain from its last verification and its published keys. */
export function dnsFindings(domain: DomainRow, keys: DkimKeyRow[]): Finding[] {
  const checks = domain.dnsChecks;
  if (!checks) {
    return [
      {
        code: 'dns.unchecked',
        severity: 'info',
        title: "The domain's DNS records have not been checked yet",
        evidence: { created_at: domain.createdAt.toISOString() },
        fix: `Publish the records of GET /v1/domains/${domain.id}/dns-records and verify the domain`,
        penalty: 0,
      },
    ];
  }
  const findings: Finding[] = [];
  const unsettled: RecordCheck[] = [];
  const activeSelectors = new Set(keys.filter((k) => k.state === 'active').map((k) => k.selector));
  const pendingSelectors = new Set(keys.filter((k) => k.state === 'pending').map((k) => k.selector));

  for (const purpose of Object.keys(FLAG) as (keyof typeof FLAG)[]) {
    const candidates = checks.filter((c) => c.purpose === purpose);
    const relevant =
      purpose === 'dkim'
        ? candidates.filter((c) => c.selector && activeSelectors.has(c.selector))
        : candidates;
    for (const c of relevant) {
      if (c.status === 'verified') continue;
      if (c.status === 'error' || c.status === 'propagating') {
        unsettled.push(c);
        // The last definite verdict stands (the domain's flag).
        if (!domain[FLAG[purpose]]) {
          findings.push(finding(RULES[purpose].missing, c, fixOf(c), { kept_from_last_check: true }));
        }
        continue;
      }
      findings.push(finding(RULES[purpose][c.status as 'missing' | 'mismatch'], c));
    }
  }

  const dmarc = checks.find((c) => c.purpose === 'dmarc' && c.status === 'verified');
  if (dmarc?.found.some((r) => /(^|;)\s*p\s*=\s*none\s*(;|$)/i.test(r))) {
    findings.push(
      finding(
        {
          code: 'dns.dmarc_policy_none',
          severity: 'warning',
          title: 'DMARC only monitors (p=none): mail forged in the domain’s name is still delivered',
          penalty: PENALTY.dmarcNone,
        },
        dmarc,
        `Move the DMARC policy at ${dmarc.host} to p=quarantine (then p=reject) once aggregate reports show every legitimate sender passes`,
      ),
    );
  }
  const spf = checks.find((c) => c.purpose === 'spf' && c.status === 'verified');
  if (spf?.found.some((r) => /(^|\s)\+?all(\s|$)/i.test(r))) {
    findings.push(
      finding(
        {
          code: 'dns.spf_pass_all',
          severity: 'warning',
          title: 'SPF ends in +all: anyone may send as the domain',
          penalty: PENALTY.spfPassAll,
        },
        spf,
        `End the SPF record at ${spf.host} with ~all or -all`,
      ),
    );
  }

  const mtaSts = checks.filter(
    (c) =>
      (c.purpose === 'mta_sts' || c.purpose === 'mta_sts_policy') &&
      ['missing', 'mismatch'].includes(c.status),
  );
  if (mtaSts.length) {
    findings.push({
      code: 'dns.mta_sts_missing',
      severity: 'info',
      title: 'No MTA-STS: senders may deliver to the domain without TLS',
      evidence: { records: mtaSts.map(evidenceOf) },
      fix: mtaSts.map(fixOf).join('; '),
      penalty: PENALTY.mtaSts,
    });
  }
  const tlsRpt = checks.find((c) => c.purpose === 'tls_rpt' && ['missing', 'mismatch'].includes(c.status));
  if (tlsRpt) {
    findings.push(
      finding(
        {
          code: 'dns.tls_rpt_missing',
          severity: 'info',
          title: 'No TLS-RPT: nobody hears of failed TLS deliveries to the domain',
          penalty: PENALTY.tlsRpt,
        },
        tlsRpt,
      ),
    );
  }

  const pending = checks.filter(
    (c) => c.purpose === 'dkim' && c.selector && pendingSelectors.has(c.selector) && c.status !== 'verified',
  );
  for (const c of pending) {
    findings.push(
      finding(
        {
          code: 'dns.dkim_rotation_pending',
          severity: 'info',
          title: `The next DKIM key (${c.selector}) waits for its record; signing switches once it is seen`,
          penalty: 0,
        },
        c,
      ),
    );
  }
  if (unsettled.length) {
    findings.push({
      code: unsettled.some((c) => c.status === 'error') ? 'dns.lookup_failed' : 'dns.propagating',
      severity: 'info',
      title: unsettled.some((c) => c.status === 'error')
        ? 'Some records could not be checked: no resolver answered'
        : 'Some records are seen by some resolvers only (still propagating)',
      evidence: {
        records: unsettled.map(evidenceOf),
        checked_at: domain.lastCheckedAt?.toISOString() ?? null,
      },
      fix: 'Nothing to do if it passes: the next check settles it; otherwise check MAILROOM_DNS_SERVERS',
      penalty: 0,
    });
  }
  return findings;
}

/**
 * Findings that mean the zone drifted from the records Mailroom publishes, so publishing them again
 * through the domain's DNS provider repairs it (the optional MTA-STS and TLS-RPT records are published
 * with them, but their absence alone is a choice the owner may have made).
 */
export const DRIFT_CODES = new Set([
  'dns.ownership_unverified',
  'dns.spf_missing',
  'dns.dkim_missing',
  'dns.dkim_invalid',
  'dns.dmarc_missing',
  'dns.dmarc_invalid',
  'dns.mx_missing',
  'dns.mx_wrong',
  'dns.return_path_missing',
  'dns.dkim_rotation_pending',
]);

export function dnsInput(domains: DomainsService): HealthInput {
  const byId = (e: { data: { domain_id: string } }): SubjectSelector[] => [
    { kind: 'domain', id: e.data.domain_id },
  ];
  return {
    name: 'dns',
    title: 'Authentication records (SPF, DKIM, DMARC, MX, return path, MTA-STS, TLS-RPT)',
    kinds: ['domain'],
    weight: 70,
    async evaluate(batch) {
      const ids = batch.subjects.map((s) => s.id);
      const [rows, keys] = await Promise.all([
        domains.many(batch.organizationId, ids),
        ids.length ? domains.publishedKeys(ids) : new Map<string, DkimKeyRow[]>(),
      ]);
      return new Map(rows.map((d) => [d.id, dnsFindings(d, keys.get(d.id) ?? [])]));
    },
    triggers: Object.fromEntries(DOMAIN_EVENTS.map((type) => [type, byId])),
  };
}
