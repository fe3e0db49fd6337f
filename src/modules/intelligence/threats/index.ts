// Phishing and risky-attachment detection: named findings with the evidence seen, added up to a verdict.
// The steps: sender fields, links, wording, attachments; then the score (findings.ts).
import type { AnalysisInput } from '../input.ts';
import { attachmentFindings } from './attachments.ts';
import { brandOwning } from './brands.ts';
import { domainOfAddress, FREEMAIL, normalizeHost, registrableDomain } from './domains.ts';
import { scoreFindings, type ThreatFinding, type ThreatReport } from './findings.ts';
import { headerFindings } from './headers.ts';
import { languageFindings } from './language.ts';
import { extractLinks, linkFindings, offsiteDomains } from './links.ts';
import { type ProtectedDomains, protectedDomains } from './lookalike.ts';

export {
  PHISHING_SCORE,
  SEVERITY_POINTS,
  SUSPICIOUS_SCORE,
  THREAT_FINDING_CODES,
  type ThreatFinding,
  type ThreatFindingCode,
  type ThreatReport,
  type ThreatSeverity,
  type ThreatVerdict,
} from './findings.ts';

export interface ThreatContext {
  /** The receiving organisation's own domains: mail imitating them is the costliest kind. */
  organizationDomains: string[];
}

const guards = new Map<string, ProtectedDomains>();
const GUARDS_KEPT = 1000;

function guardFor(organizationDomains: string[]): ProtectedDomains {
  const key = organizationDomains.join(',');
  let guard = guards.get(key);
  if (!guard) {
    guard = protectedDomains(organizationDomains);
    if (guards.size >= GUARDS_KEPT) guards.clear();
    guards.set(key, guard);
  }
  return guard;
}

/**
 * The sender's own domains: the From domain and, for mailing-list mail, the list's (its List-Id and
 * its Return-Path), where a list's password reminders and archives live.
 */
function senderDomains(input: AnalysisInput, senderRegistrable: string | null): string[] {
  const own = senderRegistrable ? [senderRegistrable] : [];
  const listId = input.headers.find((h) => h.name === 'list-id')?.value;
  if (!listId) return own;
  const listHost = /<([^>]+)>/.exec(listId)?.[1] ?? listId.trim();
  for (const host of [normalizeHost(listHost), domainOfAddress(input.returnPath)]) {
    const registrable = host ? registrableDomain(host) : null;
    if (registrable) own.push(registrable);
  }
  return own;
}

const CREDENTIAL_WORDING = new Set(['credential_request', 'security_alert_lure', 'urgency_pressure']);

export async function detectThreats(input: AnalysisInput, context: ThreatContext): Promise<ThreatReport> {
  const guard = guardFor(context.organizationDomains);
  const fromDomain = domainOfAddress(input.from?.address);
  const senderRegistrable = fromDomain ? registrableDomain(fromDomain) : null;
  // The organisation's or a brand's own domain, proven by DMARC: its security notices and "confirm your
  // account" mail are what they look like, so their wording weighs little. Free mail is nobody's own.
  const authenticatedKnownSender =
    input.authentication.dmarc === 'pass' &&
    senderRegistrable !== null &&
    !FREEMAIL.has(fromDomain!) &&
    (guard.organization.has(senderRegistrable) || brandOwning(senderRegistrable) !== null);

  const findings: ThreatFinding[] = headerFindings(input, guard);
  const links = extractLinks(input);
  findings.push(...linkFindings(links, guard, senderRegistrable));

  for (const finding of languageFindings(input)) {
    if (authenticatedKnownSender && CREDENTIAL_WORDING.has(finding.code)) {
      finding.severity = 'low';
      finding.evidence += ` (sent by the authenticated domain ${senderRegistrable})`;
    }
    findings.push(finding);
    if (finding.code !== 'credential_request') continue;
    const offsite = offsiteDomains(links, guard, senderDomains(input, senderRegistrable));
    if (offsite.length === 0) continue;
    findings.push({
      code: 'credential_request_offsite_link',
      severity: authenticatedKnownSender ? 'low' : 'medium',
      evidence: `Asks for credentials and links to ${offsite
        .slice(0, 3)
        .join(', ')}, not the sender's own domain ${senderRegistrable ?? '(none)'}`,
      detail: { sender: senderRegistrable ?? '', offsite: offsite.slice(0, 10).join(' ') },
    });
  }

  if (input.attachments.length) {
    // Macro workbooks passed around inside a company are routine; from outside they are the classic dropper.
    const internal = authenticatedKnownSender && guard.organization.has(senderRegistrable!);
    for (const finding of await attachmentFindings(input.attachments)) {
      if (internal && finding.code === 'macro_document' && finding.severity === 'high') {
        finding.severity = 'medium';
        finding.evidence += ` (sent internally by the authenticated domain ${senderRegistrable})`;
      }
      findings.push(finding);
    }
  }
  return scoreFindings(findings);
}
