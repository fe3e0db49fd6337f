// Recipient addresses as the MX accepts them. Anything that a mail server somewhere might read as a
// route to another host (percent hack, bang paths, source routes, quoted local parts holding `@`, IP
// literals) is refused here, before any lookup: Mailroom delivers to plain `local@domain` only.

import { domainToASCII } from 'node:url';

export interface Recipient {
  /** Lower-cased local part, without any `+tag`. */
  localPart: string;
  /** The `+tag` part, if any (kept for the record; routing ignores it). */
  tag: string | null;
  /** Lower-cased ASCII domain, no trailing dot. */
  domain: string;
  /** `localPart@domain`. */
  address: string;
}

// RFC 5321 dot-atom, less the characters that relays have historically treated as routing (`%`, `!`).
const LOCAL_PART = /^[a-z0-9#$&'*+\-/=?^_`{|}~]+(\.[a-z0-9#$&'*+\-/=?^_`{|}~]+)*$/;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$/;

/** The recipient, or null when the address is not a plain hosted-mail address. */
export function parseRecipient(raw: string): Recipient | null {
  const at = raw.lastIndexOf('@');
  if (at <= 0 || at === raw.length - 1) return null;
  const local = raw.slice(0, at).toLowerCase();
  // SMTPUTF8 senders may write an internationalised domain in Unicode: we host it under its A-label.
  const written = raw.slice(at + 1).toLowerCase();
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the test is for ASCII itself
  const domain = /^[\x00-\x7f]*$/.test(written) ? written : domainToASCII(written);
  if (local.length > 64 || !LOCAL_PART.test(local)) return null;
  // A trailing dot, an IP literal or a bare IP is not a name we host.
  if (!DOMAIN.test(domain) || /^[0-9.]+$/.test(domain)) return null;
  // SRS return addresses carry the original sender's local part, `+` and all.
  const plus = isSrsLocalPart(local) ? -1 : local.indexOf('+');
  const localPart = plus > 0 ? local.slice(0, plus) : local;
  return {
    localPart,
    tag: plus > 0 ? local.slice(plus + 1) : null,
    domain,
    address: `${localPart}@${domain}`,
  };
}

/** Lower-cases a target address for comparison (`User@Example.COM` and `user@example.com` are one). */
export function normalizeAddress(address: string): string {
  return address.trim().toLowerCase();
}

export function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

export function isSrsLocalPart(local: string): boolean {
  return /^srs[01][=+-]/i.test(local);
}
