// Links in the message: where each one goes against what its text shows, links to bare IP addresses,
// through URL shorteners, or to lookalike domains (a URL carried in a link's query, as open redirects
// do, is checked as a link of its own), and forms in the body.
import { Parser } from 'htmlparser2';
import { parse } from 'tldts';
import type { AnalysisInput } from '../input.ts';
import {
  CLICK_TRACKERS,
  isIpHost,
  isPrivateIp,
  isProtectedDomain,
  LINK_REWRITERS,
  normalizeHost,
  registrableDomain,
  sameParty,
  URL_SHORTENERS,
} from './domains.ts';
import type { ThreatFinding } from './findings.ts';
import { findLookalike, lookalikeFinding, type ProtectedDomains } from './lookalike.ts';

export interface MessageLink {
  /** The URL as written. */
  href: string;
  /** Lower-case ASCII host; an IP literal without brackets. */
  host: string;
  registrable: string | null;
  /** The visible text of an HTML anchor; null for a URL in plain text. */
  text: string | null;
  /** http(s) URLs carried in the query (redirectors, link-protection wrappers). */
  carried: URL[];
}

export interface BodyForm {
  action: string;
  hasPassword: boolean;
  /** Fields named for card numbers, security codes or identity numbers. */
  sensitiveFields: string[];
}

export interface ExtractedLinks {
  links: MessageLink[];
  forms: BodyForm[];
}

// Enough for the largest newsletters; a message with more links is not read further.
const MAX_LINKS = 300;
const MAX_CARRIED_PER_LINK = 3;
const TEXT_URL = /\bhttps?:\/\/[^\s<>"'{}|\\^`[\]]+|\bwww\.[a-z0-9-]+(?:\.[a-z0-9-]+)+[^\s<>"'{}|\\^`[\]]*/gi;
const SHOWN_DOMAIN =
  /(?:https?:\/\/)?((?:[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?\.)+[\p{L}][\p{L}\p{N}-]*[\p{L}\p{N}])(?=[/:?#\s)\]>,;!]|\.?$|\.\s)/iu;

const SENSITIVE_FIELD =
  /^(?:cc|cc_?num(?:ber)?|card|card_?(?:no|num(?:ber)?)|cvv2?|cvc|ccv|exp(?:iry)?|ssn|sin|pin|passcode|iban|routing)$/i;
const WRITTEN_HOST = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(\[[^\]]*\]|[^/:?#]+)/i;

function httpUrl(raw: string): URL | null {
  let value = raw.trim();
  if (/^www\./i.test(value)) value = `http://${value}`;
  if (!/^https?:\/\//i.test(value)) return null;
  try {
    return new URL(value);
  } catch {
    return null;
  }
}

function carriedUrls(url: URL): URL[] {
  if (!url.search.includes('http')) return [];
  const carried: URL[] = [];
  for (const value of url.searchParams.values()) {
    if (carried.length >= MAX_CARRIED_PER_LINK) break;
    const inner = /^https?:\/\//i.test(value) ? httpUrl(value) : null;
    if (inner) carried.push(inner);
  }
  return carried;
}

type LinkTarget = Omit<MessageLink, 'text'>;

function linkTarget(href: string): LinkTarget | null {
  const url = httpUrl(href);
  if (!url?.hostname) return null;
  const host = normalizeHost(url.hostname);
  return { href: href.trim(), host, registrable: registrableDomain(host), carried: carriedUrls(url) };
}

// Style sheets, scripts and comments hold no links a reader follows; newsletters are often half CSS.
const INERT_HTML = /<(style|script)\b[\s\S]*?<\/\1\s*>|<!--[\s\S]*?-->/gi;

export function extractLinks(input: AnalysisInput): ExtractedLinks {
  const links: MessageLink[] = [];
  const forms: BodyForm[] = [];
  const seen = new Set<string>();
  // Each distinct URL is parsed once, however many anchors (and the plain-text part) repeat it.
  const targets = new Map<string, LinkTarget | null>();
  const add = (href: string, text: string | null) => {
    if (links.length >= MAX_LINKS) return;
    const key = `${href}\u0000${text ?? ''}`;
    if (seen.has(key)) return;
    seen.add(key);
    if (text === null && targets.has(href)) return; // a bare URL already seen as a link
    let target = targets.get(href);
    if (target === undefined) {
      target = linkTarget(href);
      targets.set(href, target);
    }
    if (target) links.push({ ...target, text });
  };

  if (input.html) {
    let anchor: { href: string; text: string } | null = null;
    let hidden = 0; // inside <script> or <style>
    const parser = new Parser(
      {
        onopentag(name, attribs) {
          if (name === 'script' || name === 'style') hidden++;
          else if (name === 'a' && attribs.href) anchor = { href: attribs.href, text: '' };
          else if (name === 'area' && attribs.href) add(attribs.href, null);
          else if (name === 'form')
            forms.push({ action: attribs.action ?? '', hasPassword: false, sensitiveFields: [] });
          else if (name === 'input') {
            if (forms.length === 0) forms.push({ action: '', hasPassword: false, sensitiveFields: [] });
            const form = forms[forms.length - 1];
            if (attribs.type?.toLowerCase() === 'password') form.hasPassword = true;
            const field = attribs.name ?? attribs.id ?? '';
            if (SENSITIVE_FIELD.test(field) && form.sensitiveFields.length < 5)
              form.sensitiveFields.push(field);
          }
        },
        ontext(text) {
          if (anchor && hidden === 0 && anchor.text.length < 500) anchor.text += text;
        },
        onclosetag(name) {
          if (name === 'script' || name === 'style') hidden = Math.max(0, hidden - 1);
          else if (name === 'a' && anchor) {
            add(anchor.href, anchor.text.replace(/\s+/g, ' ').trim());
            anchor = null;
          }
        },
      },
      { decodeEntities: true },
    );
    parser.write(input.html.length > 4096 ? input.html.replace(INERT_HTML, ' ') : input.html);
    parser.end();
  }
  for (const match of input.text.matchAll(TEXT_URL)) add(match[0].replace(/[.,;:!?)\]'"]+$/, ''), null);
  return { links, forms };
}

/**
 * The domain a link's visible text shows: text that is a URL or a domain name, or that holds one
 * written as a link (with http:// or www.). "News.com: Top CIOs" is a headline, not an address.
 */
export function shownDomain(text: string): string | null {
  if (text.length < 4 || text.length > 300 || !text.includes('.')) return null;
  const trimmed = text.trim().replace(/[.,;:!?)\]>]+$/, '');
  const match = SHOWN_DOMAIN.exec(trimmed);
  if (!match) return null;
  const whole = match.index === 0 && match[0].length === trimmed.length;
  const pathAfter = match.index === 0 && /^[/:?#]\S*$/.test(trimmed.slice(match[0].length));
  const written = /^(?:https?:\/\/|www\.)/i.test(match[0]);
  if (!whole && !pathAfter && !written) return null;
  const host = normalizeHost(match[1]);
  const parsed = parse(host);
  return parsed.isIcann && parsed.domain ? host : null;
}

function isProtected(registrable: string | null, guard: ProtectedDomains): boolean {
  return isProtectedDomain(registrable, guard.organization);
}

function isRewriter(host: string): boolean {
  for (const rewriter of LINK_REWRITERS) if (host === rewriter || host.endsWith(`.${rewriter}`)) return true;
  return false;
}

function textMismatch(
  link: MessageLink,
  guard: ProtectedDomains,
  senderRegistrable: string | null,
): ThreatFinding | null {
  if (!link.text) return null;
  const shown = shownDomain(link.text);
  if (!shown) return null;
  const shownRegistrable = registrableDomain(shown);
  // Behind a mail gateway's wrapper, the wrapped URL is where the reader lands.
  const target = isRewriter(link.host) && link.carried.length ? link.carried[0] : null;
  const targetHost = target ? normalizeHost(target.hostname) : link.host;
  const targetRegistrable = target ? registrableDomain(targetHost) : link.registrable;
  if (shownRegistrable && sameParty(shownRegistrable, targetRegistrable, guard.organization)) return null;
  if (!targetRegistrable && !isIpHost(targetHost)) return null;
  const ownRedirect =
    targetRegistrable !== null &&
    (CLICK_TRACKERS.has(targetRegistrable) ||
      sameParty(targetRegistrable, senderRegistrable, guard.organization));
  // Showing a protected domain while going elsewhere is deception whoever sends it; showing a third
  // party's site through the sender's own click tracking is how newsletters are built.
  const severity =
    isProtected(shownRegistrable, guard) || isIpHost(targetHost) ? 'high' : ownRedirect ? 'low' : 'medium';
  return {
    code: 'link_text_mismatch',
    severity,
    evidence: `Link text shows "${link.text.slice(0, 120)}" but the link goes to ${targetHost}`,
    detail: { shown: shown, target: targetHost, href: link.href.slice(0, 300) },
  };
}

function urlFindings(url: URL | MessageLink, where: string, guard: ProtectedDomains): ThreatFinding[] {
  const host = url instanceof URL ? normalizeHost(url.hostname) : url.host;
  const href = (url instanceof URL ? url.href : url.href).slice(0, 300);
  const findings: ThreatFinding[] = [];
  if (isIpHost(host)) {
    const internal = isPrivateIp(host);
    // Written as one number (http://3325256812/) it is disguised; behind button text it is at least
    // hidden; an intranet dashboard link is neither.
    const written = WRITTEN_HOST.exec(href)?.[1]
      ?.toLowerCase()
      .replace(/^\[|\]$/g, '');
    const obfuscated = written !== undefined && written !== host;
    const text = url instanceof URL ? null : url.text;
    const how = obfuscated
      ? ` written as "${written}"`
      : text === null || text.includes(host)
        ? ''
        : text
          ? ` behind the text "${text.slice(0, 80)}"`
          : ' behind an image or empty link';
    findings.push({
      code: 'ip_address_link',
      severity: internal ? 'low' : obfuscated ? 'high' : 'medium',
      evidence: `${where} to a bare IP address${internal ? ' on a private network' : ''}${how}: ${href}`,
      detail: { ip: host, href },
    });
    return findings;
  }
  const registrable = url instanceof URL ? registrableDomain(host) : url.registrable;
  if (registrable && (URL_SHORTENERS.has(host) || URL_SHORTENERS.has(registrable))) {
    findings.push({
      code: 'url_shortener_link',
      severity: 'low',
      evidence: `${where} through the URL shortener ${host}: ${href}`,
      detail: { shortener: host, href },
    });
  }
  const lookalike = findLookalike(host, guard);
  if (lookalike) findings.push(lookalikeFinding(lookalike, where, host));
  return findings;
}

export function linkFindings(
  extracted: ExtractedLinks,
  guard: ProtectedDomains,
  senderRegistrable: string | null,
): ThreatFinding[] {
  const findings: ThreatFinding[] = [];
  const checkedHosts = new Set<string>();
  for (const link of extracted.links) {
    const mismatch = textMismatch(link, guard, senderRegistrable);
    if (mismatch) findings.push(mismatch);
    if (!checkedHosts.has(link.href)) {
      checkedHosts.add(link.href);
      findings.push(...urlFindings(link, 'Link', guard));
      for (const carried of link.carried)
        findings.push(...urlFindings(carried, 'Redirect target in a link', guard));
    }
  }
  // Newsletters carry search boxes; a password or card field in the mail itself is a harvest.
  for (const form of extracted.forms) {
    const target = form.action ? ` sent to ${form.action.slice(0, 200)}` : '';
    const asks = form.hasPassword
      ? 'a password field'
      : form.sensitiveFields.length
        ? `fields for ${form.sensitiveFields.map((f) => `"${f}"`).join(', ')}`
        : null;
    findings.push({
      code: 'html_form',
      severity: form.hasPassword ? 'high' : asks ? 'medium' : 'low',
      evidence: `The message body holds a form${asks ? ` with ${asks}` : ''}${target}`,
      detail: {
        action: form.action.slice(0, 300),
        password_field: form.hasPassword ? 1 : 0,
        sensitive_fields: form.sensitiveFields.length,
      },
    });
  }
  return findings;
}

/**
 * Where a credential request's links lead when none of them leads home: the registrable domains of
 * links (and carried URLs) outside the sender's own domains. Empty when any link goes to the sender's
 * domain, since real services link to themselves and only add the odd footer link elsewhere.
 */
export function offsiteDomains(
  extracted: ExtractedLinks,
  guard: ProtectedDomains,
  senderDomains: string[],
): string[] {
  const offsite = new Set<string>();
  const home = (target: string) =>
    guard.organization.has(target) || senderDomains.some((own) => sameParty(target, own, guard.organization));
  for (const link of extracted.links) {
    const targets = [
      link.registrable ?? link.host,
      ...link.carried.map((u) => registrableDomain(normalizeHost(u.hostname)) ?? u.hostname),
    ];
    for (const target of targets) {
      if (home(target)) return [];
      offsite.add(target);
    }
  }
  return [...offsite];
}
