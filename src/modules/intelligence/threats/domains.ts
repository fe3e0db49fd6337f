// Host names as the threat checks compare them: registrable domains, IP literals, and the lists of
// services whose domains mean something on their own (shorteners, click trackers, free mail).
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { getDomain } from 'tldts';
import { brandOwning } from './brands.ts';

const PLAIN_HOST = /^[a-z0-9.-]*[a-z0-9-]$/;

/** Lower-case ASCII (punycode) form of a host, without a trailing dot or IPv6 brackets. */
export function normalizeHost(host: string): string {
  if (PLAIN_HOST.test(host)) return host; // the common case, already in shape
  let value = host.trim().toLowerCase().replace(/\.$/, '');
  if (value.startsWith('[') && value.endsWith(']')) value = value.slice(1, -1);
  if (/^[\x21-\x7e]*$/.test(value)) return value;
  return domainToASCII(value) || value;
}

function looksLikeIp(host: string): boolean {
  return (host.includes(':') || /^[\d.]+$/.test(host)) && isIP(host) !== 0;
}

// Every check asks for the same few senders' and links' domains; the public-suffix walk is kept.
const registrables = new Map<string, string | null>();
const REGISTRABLES_KEPT = 20_000;

/** example.co.uk for mail.example.co.uk; null for IPs, single labels and unknown shapes. */
export function registrableDomain(host: string): string | null {
  if (!host) return null;
  let registrable = registrables.get(host);
  if (registrable === undefined) {
    registrable = looksLikeIp(host) ? null : getDomain(host);
    if (registrables.size >= REGISTRABLES_KEPT) registrables.clear();
    registrables.set(host, registrable);
  }
  return registrable;
}

/** An IPv4 or IPv6 literal (without brackets). */
export function isIpHost(host: string): boolean {
  return looksLikeIp(host);
}

export function domainOfAddress(address: string | null | undefined): string | null {
  if (!address) return null;
  const at = address.lastIndexOf('@');
  return at < 0 ? null : normalizeHost(address.slice(at + 1));
}

/** Two registrable domains of one sender: equal, or both owned by the same brand (microsoft.com, live.com). */
export function sameParty(a: string | null, b: string | null, organization: ReadonlySet<string>): boolean {
  if (!a || !b) return false;
  if (a === b) return true;
  if (organization.has(a) && organization.has(b)) return true;
  const brand = brandOwning(a);
  return brand !== null && brand === brandOwning(b);
}

/**
 * The organisation's or a well-known brand's own registrable domain. A free-mail domain counts only as
 * the brand's when `freemailCounts`: gmail.com in a link is Google's, gmail.com in a From is anyone's.
 */
export function isProtectedDomain(
  registrable: string | null,
  organization: ReadonlySet<string>,
  freemailCounts = true,
): boolean {
  if (registrable === null) return false;
  if (organization.has(registrable)) return true;
  if (!freemailCounts && FREEMAIL.has(registrable)) return false;
  return brandOwning(registrable) !== null;
}

export function isPrivateIp(ip: string): boolean {
  if (isIP(ip) === 4) {
    const [a, b] = ip.split('.').map(Number);
    return a === 10 || a === 127 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || a === 0;
  }
  const lower = ip.toLowerCase();
  return lower === '::1' || lower.startsWith('fc') || lower.startsWith('fd') || lower.startsWith('fe80');
}

export const URL_SHORTENERS = new Set([
  'bit.ly',
  'bitly.com',
  'tinyurl.com',
  't.co',
  'goo.gl',
  'ow.ly',
  'is.gd',
  'buff.ly',
  'rebrand.ly',
  'cutt.ly',
  'shorturl.at',
  'tiny.cc',
  'rb.gy',
  't.ly',
  'v.gd',
  'bl.ink',
  'short.io',
  'shorte.st',
  'adf.ly',
  's.id',
  'lnkd.in',
  'qrco.de',
  'clck.ru',
  'u.to',
  'tiny.one',
  'urlz.fr',
  'surl.li',
]);

/**
 * Email service providers' click-tracking hosts: a newsletter's links go through them, so link text
 * naming the sender's site over such a target is routine, not deception.
 */
export const CLICK_TRACKERS = new Set([
  'sendgrid.net',
  'list-manage.com',
  'mailchimp.com',
  'mandrillapp.com',
  'mcsv.net',
  'hubspotlinks.com',
  'hs-sites.com',
  'exacttarget.com',
  'rs6.net',
  'sparkpostmail.com',
  'klclick.com',
  'klclick1.com',
  'awstrack.me',
  'ct.sendgrid.net',
  'mailgun.org',
  'mjt.lu',
  'cmail19.com',
  'cmail20.com',
  'createsend1.com',
  'postmarkapp.com',
  'sailthru.com',
  'braze.com',
  'customer.io',
]);

/** Mail security gateways that wrap every link; the wrapped target is what the reader reaches. */
export const LINK_REWRITERS = new Set([
  'safelinks.protection.outlook.com',
  'urldefense.com',
  'urldefense.proofpoint.com',
  'mimecast.com',
  'cudasvc.com',
]);

export const FREEMAIL = new Set([
  'gmail.com',
  'googlemail.com',
  'outlook.com',
  'hotmail.com',
  'live.com',
  'msn.com',
  'yahoo.com',
  'ymail.com',
  'aol.com',
  'icloud.com',
  'me.com',
  'mail.com',
  'gmx.com',
  'gmx.de',
  'gmx.net',
  'web.de',
  'proton.me',
  'protonmail.com',
  'zoho.com',
  'yandex.com',
  'yandex.ru',
  'mail.ru',
  'qq.com',
  '163.com',
]);
