// Live checks of each required record against each resolver, with a diagnosis a person can act on:
// what was expected, what was found, and which resolvers see it.
import type { DnsAnswer, DnsFailure, DnsServer } from '../../core/dns.ts';
import { type DkimAlgorithm, samePublicKey } from './dkim.ts';
import { type RecordPurpose, type RequiredRecord, TXT_KIND } from './records.ts';
import { SPF_LOOKUP_LIMIT, analyseSpf, isSpf, parseSpf, withTerm } from './spf.ts';
import { parseDkim, parseDmarc } from './tags.ts';

export type FindingStatus = 'verified' | 'missing' | 'mismatch' | 'error';
export type CheckStatus = FindingStatus | 'propagating';

/** What one resolver showed for one record. */
export interface Finding {
  status: FindingStatus;
  found: string[];
  diagnosis: string;
  warnings: string[];
  error: DnsFailure | null;
}

export interface RecordCheck {
  purpose: RecordPurpose;
  type: RequiredRecord['type'];
  host: string;
  expected: string;
  required: boolean;
  selector: string | null;
  status: CheckStatus;
  diagnosis: string;
  found: string[];
  warnings: string[];
  error: DnsFailure | null;
  resolvers: { server: string; status: FindingStatus; found: string[]; error: DnsFailure | null }[];
}

export interface CheckContext {
  hostname: string;
  spfTerm: string;
  /** Algorithm of the key each DKIM selector publishes. */
  dkimAlgorithms: Map<string, DkimAlgorithm>;
}

const verified = (found: string[], warnings: string[] = []): Finding => ({
  status: 'verified',
  found,
  diagnosis: 'Published as expected',
  warnings,
  error: null,
});
const wrong = (found: string[], diagnosis: string, warnings: string[] = []): Finding => ({
  status: 'mismatch',
  found,
  diagnosis,
  warnings,
  error: null,
});
const missing = (diagnosis: string, error: DnsFailure | null = null): Finding => ({
  status: 'missing',
  found: [],
  diagnosis,
  warnings: [],
  error,
});

/** What each record is called in a diagnosis. */
const KIND: Record<RecordPurpose, string> = {
  ownership: 'verification TXT',
  mx: 'MX',
  spf: 'SPF',
  dkim: 'DKIM',
  dmarc: 'DMARC',
  return_path: 'CNAME',
  mta_sts: 'MTA-STS',
  mta_sts_policy: 'CNAME',
  tls_rpt: 'TLS-RPT',
};

const notThere = (r: RequiredRecord) =>
  `No ${KIND[r.purpose]} record at ${r.host}. Publish: ${describeExpected(r)}`;

/** NXDOMAIN and NODATA are answers (the record is not there); anything else means we do not know. */
function failed(error: DnsFailure, r: RequiredRecord): Finding {
  if (error.code === 'NXDOMAIN' || error.code === 'NODATA') {
    return missing(notThere(r), error.code === 'NXDOMAIN' ? error : null);
  }
  return { status: 'error', found: [], diagnosis: error.reason, warnings: [], error };
}

function describeExpected(r: RequiredRecord): string {
  return r.type === 'MX' ? `MX ${r.priority} ${r.value}` : `${r.type} ${r.value}`;
}

async function txtFinding(
  r: RequiredRecord,
  server: DnsServer,
  judge: (txts: string[]) => Finding | Promise<Finding>,
): Promise<Finding> {
  const answer = await server.txt(r.host);
  return answer.ok ? judge(answer.records) : failed(answer.error, r);
}

const judges: Record<RecordPurpose, (r: RequiredRecord, s: DnsServer, c: CheckContext) => Promise<Finding>> =
  {
    ownership: (r, s) =>
      txtFinding(r, s, (txts) => {
        if (txts.includes(r.value)) return verified([r.value]);
        const tokens = txts.filter((t) => t.startsWith('mailroom-verification='));
        if (tokens.length) {
          return wrong(
            tokens,
            `${r.host} holds ${tokens.join(', ')}, not this domain's token. Publish: TXT ${r.value}`,
          );
        }
        return missing(notThere(r));
      }),

    mx: async (r, s) => {
      const answer = await s.mx(r.host);
      if (!answer.ok) return failed(answer.error, r);
      const found = answer.records.map((mx) => `${mx.priority} ${mx.exchange}`);
      if (answer.records.length === 0) return missing(notThere(r));
      if (answer.records.some((mx) => mx.exchange === '' || mx.exchange === '.')) {
        return wrong(
          found,
          `${r.host} publishes a null MX (RFC 7505): it says it accepts no mail. Replace it with MX ${r.priority} ${r.value}`,
        );
      }
      const ours = answer.records.find((mx) => mx.exchange === r.value);
      if (!ours) {
        return wrong(
          found,
          `MX points to ${found.join(', ')} instead of ${r.value}. Publish: MX ${r.priority} ${r.value}`,
        );
      }
      const preferred = answer.records.filter((mx) => mx.priority < ours.priority);
      return verified(
        found,
        preferred.length
          ? [
              `mail goes first to ${preferred.map((mx) => `${mx.exchange} (${mx.priority})`).join(', ')}, preferred over ${r.value} (${ours.priority})`,
            ]
          : [],
      );
    },

    spf: (r, s, c) =>
      txtFinding(r, s, async (txts) => {
        const spfs = txts.filter(isSpf);
        if (spfs.length === 0) return missing(notThere(r));
        if (spfs.length > 1) {
          return wrong(
            spfs,
            `${spfs.length} SPF records at ${r.host}; RFC 7208 allows one, and receivers answer permerror. Merge them into one that includes ${c.spfTerm}`,
          );
        }
        const spf = parseSpf(spfs[0]);
        const analysis = await analyseSpf(spf, c.spfTerm, (name) => s.txt(name));
        if (analysis.errors.length)
          return wrong(spfs, `SPF error: ${analysis.errors.join('; ')}`, analysis.warnings);
        if (analysis.lookups > SPF_LOOKUP_LIMIT) {
          return wrong(
            spfs,
            `SPF needs ${analysis.lookups} DNS lookups; RFC 7208 allows ${SPF_LOOKUP_LIMIT}, and receivers answer permerror. Remove or flatten includes`,
            analysis.warnings,
          );
        }
        if (!analysis.authorizes) {
          return wrong(
            spfs,
            `SPF does not authorise Mailroom. Publish instead: TXT ${withTerm(spfs[0], c.spfTerm)}`,
            analysis.warnings,
          );
        }
        return verified(spfs, analysis.warnings);
      }),

    dkim: (r, s, c) =>
      txtFinding(r, s, (txts) => {
        if (txts.length === 0) return missing(notThere(r));
        if (txts.length > 1)
          return wrong(txts, `${txts.length} TXT records at ${r.host}; a DKIM selector holds exactly one`);
        const dkim = parseDkim(txts[0]);
        const algorithm = c.dkimAlgorithms.get(r.selector ?? '') ?? 'rsa';
        const ours = /p=([A-Za-z0-9+/=]+)/.exec(r.value)?.[1] ?? '';
        const warnings = dkim.testing
          ? ['t=y marks the key as testing: receivers may treat failures leniently']
          : [];
        if (dkim.errors.length) return wrong(txts, `DKIM syntax error: ${dkim.errors.join('; ')}`);
        if (!dkim.publicKey)
          return wrong(txts, `The DKIM record at ${r.host} has an empty p=: the key is revoked`);
        if (dkim.algorithm !== algorithm) {
          return wrong(
            txts,
            `The record publishes a k=${dkim.algorithm} key; selector ${r.selector} is an ${algorithm} key. Publish: TXT ${r.value}`,
          );
        }
        if (!samePublicKey(algorithm, dkim.publicKey, ours)) {
          return wrong(
            txts,
            `The DKIM key at ${r.host} differs from Mailroom's key for selector ${r.selector} (cut short, or from another service?). Publish: TXT ${r.value}`,
          );
        }
        return verified(txts, warnings);
      }),

    dmarc: (r, s) =>
      txtFinding(r, s, (txts) => {
        const records = txts.filter(TXT_KIND.dmarc);
        if (records.length === 0) {
          if (txts.length)
            return wrong(txts, `TXT at ${r.host} does not start with "v=DMARC1". Publish: TXT ${r.value}`);
          return missing(notThere(r));
        }
        if (records.length > 1) {
          return wrong(
            records,
            `${records.length} DMARC records at ${r.host}; receivers ignore DMARC when there is more than one`,
          );
        }
        const dmarc = parseDmarc(records[0]);
        if (dmarc.errors.length) {
          return wrong(records, `DMARC syntax error: ${dmarc.errors.join('; ')}`, dmarc.warnings);
        }
        return verified(records, dmarc.warnings);
      }),

    return_path: (r, s) => cnameFinding(r, s),
    mta_sts_policy: (r, s) => cnameFinding(r, s),

    mta_sts: (r, s) =>
      txtFinding(r, s, (txts) => {
        const records = txts.filter(TXT_KIND.mta_sts);
        if (records.length === 0) return missing(notThere(r));
        if (records.length > 1)
          return wrong(records, `${records.length} MTA-STS records at ${r.host}; senders ignore all of them`);
        if (records[0].replace(/\s+/g, '') !== r.value.replace(/\s+/g, '')) {
          return wrong(records, `The MTA-STS id differs from the current policy's. Publish: TXT ${r.value}`);
        }
        return verified(records);
      }),

    tls_rpt: (r, s) =>
      txtFinding(r, s, (txts) => {
        const records = txts.filter(TXT_KIND.tls_rpt);
        if (records.length === 0) return missing(notThere(r));
        if (records.length > 1)
          return wrong(records, `${records.length} TLS-RPT records at ${r.host}; senders ignore all of them`);
        if (!/;\s*rua=(mailto:|https:)/i.test(records[0]))
          return wrong(records, `The TLS-RPT record has no rua= report address. Publish: TXT ${r.value}`);
        return verified(records);
      }),
  };

async function cnameFinding(r: RequiredRecord, s: DnsServer): Promise<Finding> {
  const answer: DnsAnswer<string[]> = await s.cname(r.host);
  if (!answer.ok) return failed(answer.error, r);
  if (answer.records.includes(r.value)) return verified(answer.records);
  return wrong(
    answer.records,
    `${r.host} points to ${answer.records.join(', ')} instead of ${r.value}. Publish: CNAME ${r.value}`,
  );
}

/** Checks one record against every resolver and merges what they saw. */
export async function checkRecord(
  r: RequiredRecord,
  servers: DnsServer[],
  context: CheckContext,
): Promise<RecordCheck> {
  const findings = await Promise.all(servers.map((s) => judges[r.purpose](r, s, context)));
  const base = {
    purpose: r.purpose,
    type: r.type,
    host: r.host,
    expected: r.type === 'MX' ? `${r.priority} ${r.value}` : r.value,
    required: r.required,
    selector: r.selector,
    resolvers: findings.map((f, i) => ({
      server: servers[i].label,
      status: f.status,
      found: f.found,
      error: f.error,
    })),
  };
  const answered = findings.filter((f) => f.status !== 'error');
  const unanswered = servers.filter((_, i) => findings[i].status === 'error');
  const note = unanswered.length
    ? [
        `${unanswered.map((s) => s.label).join(', ')} could not answer: ${findings.find((f) => f.status === 'error')!.diagnosis}`,
      ]
    : [];
  if (answered.length === 0) {
    const first = findings[0];
    return {
      ...base,
      status: 'error',
      diagnosis: first.diagnosis,
      found: [],
      warnings: [],
      error: first.error,
    };
  }
  const seenBy = servers.filter((_, i) => findings[i].status === 'verified').map((s) => s.label);
  const lead = answered.find((f) => f.status !== 'verified') ?? answered[0];
  if (seenBy.length > 0 && seenBy.length < answered.length) {
    const notYet = servers
      .filter((_, i) => ['missing', 'mismatch'].includes(findings[i].status))
      .map((s) => s.label);
    return {
      ...base,
      status: 'propagating',
      diagnosis: `Seen by ${seenBy.join(', ')} but not yet by ${notYet.join(', ')} (${lead.diagnosis}). DNS changes take up to the old record's TTL to reach every resolver`,
      found: lead.found,
      warnings: [...lead.warnings, ...note],
      error: lead.error,
    };
  }
  return {
    ...base,
    status: lead.status,
    diagnosis: lead.diagnosis,
    found: lead.found,
    warnings: [...lead.warnings, ...note],
    error: lead.error,
  };
}
