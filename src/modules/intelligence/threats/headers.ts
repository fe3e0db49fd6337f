// What the sender fields claim against what they are: display names that name a brand or show another
// address, Reply-To and Return-Path on other domains, lookalike sender domains, and DMARC failure.
import { parse } from 'tldts';
import type { AnalysisInput } from '../input.ts';
import { BRANDS, type Brand, brandOwning, SERVICE_WORDS } from './brands.ts';
import {
  domainOfAddress,
  FREEMAIL,
  isProtectedDomain,
  normalizeHost,
  registrableDomain,
  sameParty,
} from './domains.ts';
import type { ThreatFinding } from './findings.ts';
import { findLookalike, foldLetters, lookalikeFinding, type ProtectedDomains } from './lookalike.ts';

interface ClaimedName {
  tokens: string[];
  brand: Brand | null;
  /** Claims the brand only when every other word of the display name is a service word. */
  ambiguous: boolean;
}

const brandNamesByFirstToken = new Map<string, ClaimedName[]>();
for (const brand of BRANDS) {
  const names = [
    ...brand.names.map((name) => ({ name, ambiguous: false })),
    ...(brand.ambiguousNames ?? []).map((name) => ({ name, ambiguous: true })),
  ];
  for (const { name, ambiguous } of names) {
    const tokens = name.split(' ');
    const list = brandNamesByFirstToken.get(tokens[0]) ?? [];
    list.push({ tokens, brand, ambiguous });
    brandNamesByFirstToken.set(tokens[0], list);
  }
}

function startsAt(tokens: string[], at: number, name: string[]): boolean {
  for (let k = 0; k < name.length; k++) if (tokens[at + k] !== name[k]) return false;
  return true;
}

function claims(tokens: string[], at: number, name: ClaimedName, freemailSender: boolean): boolean {
  if (!startsAt(tokens, at, name.tokens)) return false;
  if (!name.ambiguous) return true;
  const others = tokens.filter((_, i) => i < at || i >= at + name.tokens.length);
  // "Chase <chase.miller@gmail.com>" is a person; "Chase Online Banking" is the bank.
  if (others.length === 0) return !freemailSender;
  return others.every((t) => SERVICE_WORDS.has(t));
}

const organizationNamesByGuard = new WeakMap<ProtectedDomains, ClaimedName[]>();

/** The organisation's own name as a display name would write it: northwind-traders.com → "northwind traders". */
function organizationNames(guard: ProtectedDomains): ClaimedName[] {
  let names = organizationNamesByGuard.get(guard);
  if (!names) {
    names = guard.organizationEntries
      .filter((e) => e.label.length >= 4)
      .map((e) => ({ tokens: e.label.split('-'), brand: null, ambiguous: e.label.length < 5 }));
    organizationNamesByGuard.set(guard, names);
  }
  return names;
}

const EMAIL_IN_TEXT = /([a-z0-9._%+-]+)@((?:[a-z0-9-]+\.)+[a-z]{2,63})/i;
const DOMAIN_IN_TEXT = /(?:^|[^a-z0-9@.-])((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63})(?![a-z0-9-])/i;

/** The organisation's or a brand's own domain; free mail belongs to whoever signs up, not to the brand. */
function isProtected(registrable: string | null, guard: ProtectedDomains): boolean {
  return isProtectedDomain(registrable, guard.organization, false);
}

function displayNameFindings(input: AnalysisInput, guard: ProtectedDomains): ThreatFinding[] {
  const from = input.from;
  if (!from?.name) return [];
  const findings: ThreatFinding[] = [];
  const name = from.name.trim();
  const fromDomain = domainOfAddress(from.address);
  const fromRegistrable = fromDomain ? registrableDomain(fromDomain) : null;

  // An address or a domain written in the display name, unlike the real one. A display name that is
  // wholly an address always counts; one that merely mentions a domain ("CNET News.com") counts only
  // when the domain is the organisation's or a brand's.
  const email = EMAIL_IN_TEXT.exec(name);
  const shownDomain = email ? email[2] : DOMAIN_IN_TEXT.exec(name)?.[1];
  if (shownDomain && (email || parse(shownDomain).isIcann)) {
    const shownRegistrable = registrableDomain(normalizeHost(shownDomain));
    const shownAddress = email ? email[0].toLowerCase() : null;
    const wholeAddress =
      email !== null && name.replace(/^["'<\s]+|["'>\s]+$/g, '').length === email[0].length;
    const shownProtected = isProtected(shownRegistrable, guard);
    if (
      shownRegistrable &&
      (wholeAddress || shownProtected) &&
      shownAddress !== from.address &&
      !sameParty(shownRegistrable, fromRegistrable, guard.organization)
    ) {
      findings.push({
        code: 'display_name_address_mismatch',
        severity: shownProtected ? 'high' : 'medium',
        evidence: `Display name "${name}" shows ${shownAddress ?? shownDomain}, but the message is from ${from.address}`,
        detail: { display_name: name, shown: shownAddress ?? shownDomain, address: from.address },
      });
    }
  }

  // A brand's or the organisation's name, on an address that is not theirs.
  const tokens = foldLetters(name)
    .split(/[^a-z0-9]+/)
    .filter((t) => t.length > 0);
  // Free mailboxes sit at the provider's apex (x@yahoo.com); reply.yahoo.com is Yahoo's own mail.
  const freemailSender = fromDomain !== null && FREEMAIL.has(fromDomain);
  const ownNames = organizationNames(guard);
  const claimAt = (at: number): ClaimedName | undefined =>
    brandNamesByFirstToken.get(tokens[at])?.find((c) => claims(tokens, at, c, freemailSender)) ??
    ownNames.find((c) => claims(tokens, at, c, freemailSender));
  for (let at = 0; at < tokens.length; at++) {
    const candidate = claimAt(at);
    if (candidate) {
      // "Microsoft Support <x@outlook.com>" is not Microsoft: a free mailbox proves nothing.
      const legitimate = candidate.brand
        ? brandOwning(fromRegistrable) === candidate.brand && !freemailSender
        : fromRegistrable !== null && guard.organization.has(fromRegistrable);
      if (legitimate) return findings;
      const owner = candidate.brand?.name ?? 'your organisation';
      findings.push({
        code: 'display_name_brand_mismatch',
        severity: 'medium',
        evidence: `Display name "${name}" claims ${owner}, but the address ${from.address} is not on a domain of ${owner}`,
        detail: { display_name: name, claims: owner, address: from.address },
      });
      return findings;
    }
  }
  return findings;
}

function alignmentFindings(input: AnalysisInput, guard: ProtectedDomains): ThreatFinding[] {
  const fromDomain = domainOfAddress(input.from?.address);
  const fromRegistrable = fromDomain ? registrableDomain(fromDomain) : null;
  if (!fromRegistrable) return [];
  const findings: ThreatFinding[] = [];
  const fromIsKnown = isProtected(fromRegistrable, guard);
  for (const replyTo of input.replyTo) {
    const domain = domainOfAddress(replyTo.address);
    const registrable = domain ? registrableDomain(domain) : null;
    if (!registrable || sameParty(registrable, fromRegistrable, guard.organization)) continue;
    // Replies from a company's or a brand's mail steered to a free mailbox: the pattern of CEO fraud.
    const toFreemail = FREEMAIL.has(registrable) && !FREEMAIL.has(fromRegistrable) && fromIsKnown;
    findings.push({
      code: 'reply_to_misaligned',
      severity: toFreemail ? 'medium' : 'low',
      evidence: `Reply-To ${replyTo.address} is on ${registrable}, but From is on ${fromRegistrable}`,
      detail: { reply_to: replyTo.address, from: input.from!.address },
    });
  }
  const returnDomain = domainOfAddress(input.returnPath);
  const returnRegistrable = returnDomain ? registrableDomain(returnDomain) : null;
  if (returnRegistrable && !sameParty(returnRegistrable, fromRegistrable, guard.organization)) {
    findings.push({
      code: 'return_path_misaligned',
      severity: 'low',
      evidence: `Return-Path ${input.returnPath} is on ${returnRegistrable}, but From is on ${fromRegistrable}`,
      detail: { return_path: input.returnPath!, from: input.from!.address },
    });
  }
  return findings;
}

function dmarcFindings(input: AnalysisInput, guard: ProtectedDomains): ThreatFinding[] {
  if (input.authentication.dmarc !== 'fail') return [];
  const fromDomain = domainOfAddress(input.from?.address);
  const fromRegistrable = fromDomain ? registrableDomain(fromDomain) : null;
  // A failed DMARC on the organisation's or a brand's own domain is a forged From, not a misconfiguration.
  const forgedProtected = isProtected(fromRegistrable, guard);
  return [
    {
      code: 'dmarc_fail',
      severity: forgedProtected ? 'high' : 'medium',
      evidence: `DMARC failed for the From domain ${fromDomain ?? '(none)'}${forgedProtected ? ', a protected domain' : ''}`,
      detail: { from: input.from?.address ?? '', dmarc: 'fail' },
    },
  ];
}

function senderLookalikeFindings(input: AnalysisInput, guard: ProtectedDomains): ThreatFinding[] {
  const seen = new Set<string>();
  const findings: ThreatFinding[] = [];
  const check = (where: string, address: string | null | undefined) => {
    const host = domainOfAddress(address);
    if (!host || seen.has(host)) return;
    seen.add(host);
    const match = findLookalike(host, guard);
    if (match) findings.push(lookalikeFinding(match, where, host));
  };
  check('From', input.from?.address);
  for (const replyTo of input.replyTo) check('Reply-To', replyTo.address);
  check('Return-Path', input.returnPath);
  return findings;
}

export function headerFindings(input: AnalysisInput, guard: ProtectedDomains): ThreatFinding[] {
  return [
    ...displayNameFindings(input, guard),
    ...senderLookalikeFindings(input, guard),
    ...alignmentFindings(input, guard),
    ...dmarcFindings(input, guard),
  ];
}
