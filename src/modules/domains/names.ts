// Domain names as Mailroom keeps them: lower case, punycode (IDN converted), no trailing dot, and
// never a public suffix. The Public Suffix List (ICANN and private sections, through tldts) decides
// what a suffix is, so `co.uk` and `github.io` are refused while `example.co.uk` is accepted.
import { domainToASCII, domainToUnicode } from 'node:url';
import { isIP } from 'node:net';
import { parse } from 'tldts';

export interface DomainName {
  /** ASCII (punycode) form, used everywhere internally. */
  name: string;
  /** The same name for people (IDN shown in Unicode). */
  unicode: string;
}

export class InvalidDomainName extends Error {}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

const suffixRefusal = (name: string) =>
  `${name} is a public suffix (Public Suffix List); add a domain registered under it instead`;

export function normaliseDomainName(input: string): DomainName {
  const trimmed = input.trim().replace(/\.$/, '');
  if (!trimmed) throw new InvalidDomainName('a domain name is required');
  if (isIP(trimmed.replace(/^\[|\]$/g, '')))
    throw new InvalidDomainName('an IP address is not a domain name');
  const name = domainToASCII(trimmed.toLowerCase());
  if (!name) throw new InvalidDomainName(`"${input}" is not a valid domain name`);
  const labels = name.split('.');
  const parsed = parse(name, { allowPrivateDomains: true });
  if (
    parsed.publicSuffix === name &&
    (parsed.isIcann || parsed.isPrivate) &&
    labels.every((l) => LABEL.test(l))
  ) {
    throw new InvalidDomainName(suffixRefusal(name));
  }
  if (name.length > 253 || labels.length < 2 || !labels.every((l) => LABEL.test(l))) {
    throw new InvalidDomainName(
      `"${input}" is not a valid domain name (letters, digits and hyphens in dot-separated labels)`,
    );
  }
  if (/^\d+$/.test(labels.at(-1)!)) throw new InvalidDomainName('a top-level domain cannot be all digits');
  if (parsed.publicSuffix === name || !parsed.domain) throw new InvalidDomainName(suffixRefusal(name));
  return { name, unicode: domainToUnicode(name) || name };
}
