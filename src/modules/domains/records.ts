// The DNS records a domain needs, exactly: what to publish, where, and why. The same list feeds the
// API, the BIND zone snippet, the live checks and the DNS provider automation.
import { createHash } from 'node:crypto';
import { quoteTxt, splitTxt } from '../../core/txt.ts';
import { type DkimAlgorithm, dkimRecordValue } from './dkim.ts';

export const RECORD_TTL = 3600;
export const MX_PRIORITY = 10;
/** The return-path (bounce) host under each domain: `bounces.example.com`. */
export const RETURN_PATH_LABEL = 'bounces';
const OWNERSHIP_LABEL = '_mailroom-verification';

export type RecordPurpose =
  | 'ownership'
  | 'mx'
  | 'spf'
  | 'dkim'
  | 'dmarc'
  | 'return_path'
  | 'mta_sts'
  | 'mta_sts_policy'
  | 'tls_rpt';

/** Purposes whose verification decides the domain's status; the others are recommended extras. */
export const REQUIRED_PURPOSES = ['ownership', 'mx', 'spf', 'dkim', 'dmarc', 'return_path'] as const;
export type RequiredPurpose = (typeof REQUIRED_PURPOSES)[number];

export interface RequiredRecord {
  purpose: RecordPurpose;
  type: 'TXT' | 'MX' | 'CNAME';
  /** Fully qualified, without the trailing dot. */
  host: string;
  value: string;
  ttl: number;
  priority: number | null;
  required: boolean;
  /** The DKIM key this record publishes. */
  selector: string | null;
  description: string;
}

export interface DomainSettings {
  dmarc_policy: 'none' | 'quarantine' | 'reject';
  dmarc_rua: string | null;
  mta_sts_mode: 'testing' | 'enforce';
  tls_rpt_email: string | null;
  /** What the MX does with incoming mail that fails DMARC under the sender's p=reject. */
  inbound_dmarc_reject: 'reject' | 'quarantine';
}

export const DEFAULT_SETTINGS: DomainSettings = {
  dmarc_policy: 'quarantine',
  dmarc_rua: null,
  mta_sts_mode: 'testing',
  tls_rpt_email: null,
  inbound_dmarc_reject: 'reject',
};

export interface PublishedKey {
  selector: string;
  algorithm: DkimAlgorithm;
  publicKey: string;
  state: 'pending' | 'active' | 'retiring';
}

export interface RecordContext {
  /** This server's public mail host name (MAILROOM_HOSTNAME). */
  hostname: string;
  /** The SPF term that authorises Mailroom's senders. */
  spfTerm: string;
}

/** How each kind of TXT record starts, to tell ours from other TXT records at the same host. */
export const TXT_KIND = {
  spf: (txt: string) => /^v=spf1(\s|$)/i.test(txt),
  dmarc: (txt: string) => /^v\s*=\s*dmarc1/i.test(txt),
  mta_sts: (txt: string) => /^v=STSv1/i.test(txt),
  tls_rpt: (txt: string) => /^v=TLSRPTv1/i.test(txt),
} satisfies Partial<Record<RecordPurpose, (txt: string) => boolean>>;

export const ownershipValue = (token: string) => `mailroom-verification=${token}`;
export const ownershipHost = (domain: string) => `${OWNERSHIP_LABEL}.${domain}`;
export const spfValue = (term: string) => `v=spf1 ${term} ~all`;

/** The MTA-STS policy Mailroom serves at https://mta-sts.<domain>/.well-known/mta-sts.txt. */
export function mtaStsPolicy(hostname: string, mode: DomainSettings['mta_sts_mode']): string {
  return `version: STSv1\nmode: ${mode}\nmx: ${hostname}\nmax_age: 604800\n`;
}

export function dmarcValue(settings: DomainSettings): string {
  const rua = settings.dmarc_rua ? `; rua=mailto:${settings.dmarc_rua}` : '';
  return `v=DMARC1; p=${settings.dmarc_policy}; adkim=r; aspf=r${rua}`;
}

export function requiredRecords(
  domain: { name: string; verificationToken: string; settings: DomainSettings },
  keys: PublishedKey[],
  context: RecordContext,
): RequiredRecord[] {
  const d = domain.name;
  const { hostname } = context;
  const record = (r: Omit<RequiredRecord, 'ttl' | 'priority' | 'selector'> & Partial<RequiredRecord>) => ({
    ttl: RECORD_TTL,
    priority: null,
    selector: null,
    ...r,
  });
  const policyId = createHash('sha256')
    .update(mtaStsPolicy(hostname, domain.settings.mta_sts_mode))
    .digest('hex')
    .slice(0, 20);
  return [
    record({
      purpose: 'ownership',
      type: 'TXT',
      host: ownershipHost(d),
      value: ownershipValue(domain.verificationToken),
      required: true,
      description: 'Proves this organisation controls the domain',
    }),
    record({
      purpose: 'mx',
      type: 'MX',
      host: d,
      value: hostname,
      priority: MX_PRIORITY,
      required: true,
      description: `Delivers the domain's mail to Mailroom (${hostname})`,
    }),
    record({
      purpose: 'spf',
      type: 'TXT',
      host: d,
      value: spfValue(context.spfTerm),
      required: true,
      description: 'Authorises Mailroom to send as the domain (SPF); merge into an existing SPF record',
    }),
    ...keys.map((key) =>
      record({
        purpose: 'dkim',
        type: 'TXT',
        host: `${key.selector}._domainkey.${d}`,
        value: dkimRecordValue(key.algorithm, key.publicKey),
        selector: key.selector,
        required: key.state === 'active',
        description:
          key.state === 'active'
            ? 'The DKIM key Mailroom signs with'
            : key.state === 'pending'
              ? 'The next DKIM key (rotation): signing switches to it once this record verifies'
              : 'The previous DKIM key, kept until its grace period ends',
      }),
    ),
    record({
      purpose: 'dmarc',
      type: 'TXT',
      host: `_dmarc.${d}`,
      value: dmarcValue(domain.settings),
      required: true,
      description: 'DMARC policy; any valid DMARC record verifies',
    }),
    record({
      purpose: 'return_path',
      type: 'CNAME',
      host: `${RETURN_PATH_LABEL}.${d}`,
      value: hostname,
      required: true,
      description: 'Return-path (bounce) host: SPF-aligned envelope sender and where bounces come back',
    }),
    record({
      purpose: 'mta_sts',
      type: 'TXT',
      host: `_mta-sts.${d}`,
      value: `v=STSv1; id=${policyId}`,
      required: false,
      description: 'Optional: MTA-STS (RFC 8461) tells senders to require TLS to the MX',
    }),
    record({
      purpose: 'mta_sts_policy',
      type: 'CNAME',
      host: `mta-sts.${d}`,
      value: hostname,
      required: false,
      description: 'Optional: the host that serves the MTA-STS policy (put HTTPS in front of Mailroom)',
    }),
    record({
      purpose: 'tls_rpt',
      type: 'TXT',
      host: `_smtp._tls.${d}`,
      value: `v=TLSRPTv1; rua=mailto:${domain.settings.tls_rpt_email ?? `postmaster@${d}`}`,
      required: false,
      description: 'Optional: SMTP TLS reporting (RFC 8460)',
    }),
  ];
}

/** The name relative to the domain, as DNS consoles ask for it (`@` for the domain itself). */
export function relativeName(host: string, domain: string): string {
  return host === domain ? '@' : host.slice(0, -(domain.length + 1));
}

/** API form: TXT values also as their 255-byte strings and in zone-file quoting. */
export function recordView(r: RequiredRecord, domain: string) {
  return {
    purpose: r.purpose,
    type: r.type,
    host: r.host,
    name: relativeName(r.host, domain),
    value: r.value,
    strings: r.type === 'TXT' ? splitTxt(r.value) : null,
    zone_value: zoneValue(r),
    ttl: r.ttl,
    priority: r.priority,
    required: r.required,
    selector: r.selector,
    description: r.description,
  };
}

function zoneValue(r: RequiredRecord): string {
  if (r.type === 'TXT') return quoteTxt(r.value);
  if (r.type === 'MX') return `${r.priority} ${r.value}.`;
  return `${r.value}.`;
}

/** A BIND zone-file snippet holding every record. */
export function zoneFile(records: RequiredRecord[], domain: string): string {
  const lines = [`; Mailroom DNS records for ${domain}`];
  for (const r of records) {
    lines.push(`; ${r.purpose}${r.required ? '' : ' (optional)'}: ${r.description}`);
    lines.push(`${r.host}.\t${r.ttl}\tIN\t${r.type}\t${zoneValue(r)}`);
  }
  return `${lines.join('\n')}\n`;
}
