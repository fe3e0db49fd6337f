// Addresses of hosted mailboxes and aliases: what a local part may be, which ones are reserved, and
// how an address is normalised (lower case, the domain in punycode).
import { domainToASCII } from 'node:url';
import { validationFailed } from '../../core/errors.ts';
import type { DomainsService } from '../domains/service.ts';
import type { DomainRow } from '../domains/tables.ts';

// RFC 5321 dot-atom, minus the characters that route mail elsewhere: `%` (source routing, `a%b@relay`)
// and `!` (UUCP bang paths). Quoted local parts and `@` never pass. Compared in lower case.
const ATOM = "[a-z0-9#$&'*+\\-/=?^_`{|}~]+";
const DOT_ATOM = new RegExp(`^${ATOM}(\\.${ATOM})*$`);
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** Why `localPart` (already lower case) cannot be a Mailroom local part, or null when it can. */
export function localPartProblem(localPart: string): string | null {
  if (localPart === '') return 'the local part (before @) is empty';
  if (localPart.length > 64) return 'the local part (before @) is longer than 64 characters';
  if (localPart.includes('%')) return 'the local part must not contain % (source routing, a relay trick)';
  if (localPart.includes('!')) return 'the local part must not contain ! (bang paths, a relay trick)';
  if (/["@\\\s]/.test(localPart)) return 'quoted local parts, @, backslashes and spaces are not accepted';
  if (localPart.startsWith('.') || localPart.endsWith('.'))
    return 'the local part must not start or end with a dot';
  if (localPart.includes('..')) return 'the local part must not contain two dots in a row';
  if (!DOT_ATOM.test(localPart)) {
    return "the local part may hold only letters, digits, dots and #$&'*+-/=?^_`{|}~";
  }
  return null;
}

/** The local part, lower case, or a 422 naming `field`. */
export function normaliseLocalPart(input: string, field: string): string {
  const localPart = input.trim().toLowerCase();
  const problem = localPartProblem(localPart);
  if (problem) throw validationFailed(field, problem);
  return localPart;
}

/** Splits at the last @. */
function split(input: string, field: string): { local: string; domain: string } {
  const trimmed = input.trim();
  const at = trimmed.lastIndexOf('@');
  if (at < 0) throw validationFailed(field, `"${input}" is not an address (local-part@domain)`);
  return { local: trimmed.slice(0, at), domain: trimmed.slice(at + 1) };
}

/**
 * Any mailbox's address (hosted or external), normalised: lower case, the domain in punycode. The
 * local part follows the same rules as Mailroom's own (no relay tricks).
 */
export function normaliseEmail(input: string, field: string): string {
  const { local, domain } = split(input, field);
  const localPart = normaliseLocalPart(local, field);
  const ascii = domainToASCII(domain.toLowerCase().replace(/\.$/, ''));
  const labels = ascii.split('.');
  if (
    !ascii ||
    ascii.length > 253 ||
    labels.length < 2 ||
    !labels.every((l) => LABEL.test(l)) ||
    /^\d+$/.test(labels.at(-1)!)
  ) {
    throw validationFailed(field, `"${domain}" is not a valid domain name`);
  }
  return `${localPart}@${ascii}`;
}

export interface HostedAddress {
  domain: DomainRow;
  localPart: string;
  /** local part @ domain name, lower case. */
  address: string;
}

/** An address of one of the organisation's domains; 422 when malformed or the domain is not theirs. */
export async function hostedAddress(
  domains: DomainsService,
  organizationId: string,
  input: string,
  field = 'address',
): Promise<HostedAddress> {
  const { local, domain: domainName } = split(input, field);
  const localPart = normaliseLocalPart(local, field);
  const domain = domainName ? await domains.byName(organizationId, domainName) : null;
  if (!domain) {
    throw validationFailed(field, `${domainName || '(empty)'} is not one of this organisation's domains`);
  }
  return { domain, localPart, address: `${localPart}@${domain.name}` };
}

/**
 * Local parts no mailbox may take: the role addresses of RFC 2142 and the mail system's own, whose mail
 * an organisation routes with an alias to a person; and the shapes Mailroom's own bounce handling
 * answers to (VERP `b+…` on the bounce subdomain, SRS `srs0=…`/`srs1=…` for forwarding).
 */
const RESERVED_LOCAL_PARTS = new Set([
  'postmaster',
  'abuse',
  'hostmaster',
  'webmaster',
  'admin',
  'administrator',
  'root',
  'mailer-daemon',
  'noreply',
  'no-reply',
  'bounce',
  'bounces',
]);
const RESERVED_PREFIXES = [/^b\+/, /^srs[01][=+-]/];

/** Why a mailbox may not take `localPart` (lower case), or null when it may. */
export function reservedLocalPartProblem(localPart: string): string | null {
  if (RESERVED_LOCAL_PARTS.has(localPart))
    return `${localPart} is reserved for the mail system (route it to a person with an alias)`;
  if (RESERVED_PREFIXES.some((prefix) => prefix.test(localPart)))
    return 'local parts starting with b+, srs0= or srs1= are reserved for bounce and forwarding addresses';
  return null;
}
