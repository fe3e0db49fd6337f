// What the threat detector reports: named findings with the evidence seen, and the verdict they add up to.

export const THREAT_FINDING_CODES = [
  /** The display name names a brand or the organisation, but the address is elsewhere. */
  'display_name_brand_mismatch',
  /** The display name is (or holds) an email address or domain other than the real one. */
  'display_name_address_mismatch',
  /** A domain that reads like a protected one through homoglyphs, punycode or rn→m, 0→o, 1→l. */
  'confusable_domain',
  /** A domain one or two edits from a protected one, or the same name under another suffix. */
  'lookalike_domain',
  /** A protected name inside an unrelated domain: paypal-secure.com, paypal.com.evil.xyz. */
  'brand_embedded_domain',
  /** A link whose visible text shows one domain while its target is another. */
  'link_text_mismatch',
  'ip_address_link',
  'url_shortener_link',
  /** A form in the message body; with a password field it harvests credentials in the mail itself. */
  'html_form',
  'reply_to_misaligned',
  'return_path_misaligned',
  'dmarc_fail',
  'credential_request',
  'urgency_pressure',
  'security_alert_lure',
  /** Credential-request wording together with links that leave the sender's own domains. */
  'credential_request_offsite_link',
  'executable_attachment',
  'html_attachment',
  'macro_document',
  'double_extension',
  'archive_risky_content',
  'encrypted_archive',
  'uninspectable_archive',
] as const;

export type ThreatFindingCode = (typeof THREAT_FINDING_CODES)[number];
export type ThreatSeverity = 'low' | 'medium' | 'high';
export type ThreatVerdict = 'phishing' | 'suspicious' | 'clean';

export interface ThreatFinding {
  code: ThreatFindingCode;
  severity: ThreatSeverity;
  /** What was seen, quoted, for a person reading the report. */
  evidence: string;
  detail?: Record<string, string | number>;
}

export interface ThreatReport {
  verdict: ThreatVerdict;
  score: number;
  findings: ThreatFinding[];
}

/**
 * Points per finding code, by its strongest severity. A high finding is decisive on its own; a medium
 * one makes a message suspicious and needs a second to make it phishing; low findings only add up.
 */
export const SEVERITY_POINTS: Record<ThreatSeverity, number> = { low: 1, medium: 3, high: 6 };
export const PHISHING_SCORE = 6;
export const SUSPICIOUS_SCORE = 3;

const SEVERITY_ORDER: Record<ThreatSeverity, number> = { high: 0, medium: 1, low: 2 };
// Newsletters can hold dozens of shortened links: the report keeps a few of each kind.
const MAX_FINDINGS_PER_CODE = 5;

/**
 * The score counts each code once, at its strongest severity, so fifty shortened links weigh what one
 * does; the verdict is the score against the two thresholds.
 */
export function scoreFindings(findings: ThreatFinding[]): ThreatReport {
  const strongest = new Map<ThreatFindingCode, number>();
  for (const finding of findings) {
    const points = SEVERITY_POINTS[finding.severity];
    if (points > (strongest.get(finding.code) ?? 0)) strongest.set(finding.code, points);
  }
  let score = 0;
  for (const points of strongest.values()) score += points;
  const verdict: ThreatVerdict =
    score >= PHISHING_SCORE ? 'phishing' : score >= SUSPICIOUS_SCORE ? 'suspicious' : 'clean';
  return { verdict, score, findings: tidy(findings) };
}

/** Strongest first, each code and evidence once, at most a few of each code. */
function tidy(findings: ThreatFinding[]): ThreatFinding[] {
  const sorted = [...findings].sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity]);
  const seen = new Set<string>();
  const perCode = new Map<string, number>();
  const out: ThreatFinding[] = [];
  for (const finding of sorted) {
    const key = `${finding.code}\u0000${finding.evidence}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const count = perCode.get(finding.code) ?? 0;
    if (count >= MAX_FINDINGS_PER_CODE) continue;
    perCode.set(finding.code, count + 1);
    out.push(finding);
  }
  return out;
}
