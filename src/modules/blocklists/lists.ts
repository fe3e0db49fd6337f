// The DNS blocklists Mailroom asks, and how each one's answers read. A list answers a listed name with
// one or more A records in 127.0.0.0/8 whose value carries the reason; a name it does not list does
// not exist (NXDOMAIN). Some answers are errors, never listings: Spamhaus's 127.255.255.x (refused
// query), SURBL's and URIBL's 127.0.0.1 (access blocked), and anything outside 127/8 (a resolver that
// rewrites NXDOMAIN to an advertising page).

export type TargetKind = 'ip' | 'domain';

export interface Blocklist {
  /** The DNS zone queried; also the list's name in the API and events. */
  zone: string;
  name: string;
  kind: TargetKind;
  /** Whether the list answers IPv6 (nibble) queries; IPv6 targets skip the others. */
  ipv6: boolean;
  delistUrl: string | null;
  /** Reads one answer (an IPv4 address in 127/8): the listing's meaning, or an error. */
  read(code: string): Reading;
}

export type Reading = { meaning: string } | { error: string };

const octets = (code: string) => code.split('.').map(Number);

const SPAMHAUS_ERRORS: Record<string, string> = {
  '127.255.255.252': 'typo in the query name (Spamhaus error, not a listing)',
  '127.255.255.254': 'query through a public or open resolver refused (Spamhaus error, not a listing)',
  '127.255.255.255': 'excessive number of queries (Spamhaus error, not a listing)',
};

/** One meaning per known code; `fallback` reads the others (undefined: an unknown code is an error). */
function byCode(codes: Record<string, string>, errors: Record<string, string> = {}) {
  return (code: string): Reading => {
    if (errors[code]) return { error: errors[code] };
    if (codes[code]) return { meaning: codes[code] };
    return { error: `unrecognised return code ${code}` };
  };
}

/** SURBL and URIBL: the last octet is a bitmask of sublists; 127.0.0.1 means the query was refused. */
function bitmask(bits: [number, string][], refused: string) {
  return (code: string): Reading => {
    const [a, b, c, d] = octets(code);
    if (a !== 127 || b !== 0 || c !== 0) return { error: `unrecognised return code ${code}` };
    if (d === 1) return { error: refused };
    const meanings = bits.filter(([bit]) => d & bit).map(([, meaning]) => meaning);
    return meanings.length ? { meaning: meanings.join(', ') } : { error: `unrecognised return code ${code}` };
  };
}

/** Lists named in MAILROOM_BLOCKLISTS_EXTRA: 127.0.0.2–127.0.0.255 is a listing, anything else an error. */
function generic(code: string): Reading {
  const [a, b, c, d] = octets(code);
  if (a === 127 && b === 0 && c === 0 && d >= 2) return { meaning: `listed (${code})` };
  return { error: `unrecognised return code ${code}` };
}

const range = (from: number, to: number, prefix: string, meaning: string) =>
  Object.fromEntries(Array.from({ length: to - from + 1 }, (_, i) => [`${prefix}${from + i}`, meaning]));

export const BUILT_IN: Blocklist[] = [
  {
    zone: 'zen.spamhaus.org',
    name: 'Spamhaus ZEN',
    kind: 'ip',
    ipv6: true,
    delistUrl: 'https://check.spamhaus.org/',
    read: byCode(
      {
        '127.0.0.2': 'SBL: Spamhaus Block List (spam source or operation)',
        '127.0.0.3': 'SBL CSS: snowshoe spam source',
        ...range(4, 7, '127.0.0.', 'XBL: exploited host (malware, botnet, open proxy)'),
        '127.0.0.9': 'DROP: hijacked or criminal network',
        '127.0.0.10': 'PBL: end-user range that should not send directly (ISP maintained)',
        '127.0.0.11': 'PBL: end-user range that should not send directly (Spamhaus maintained)',
      },
      SPAMHAUS_ERRORS,
    ),
  },
  {
    zone: 'b.barracudacentral.org',
    name: 'Barracuda',
    kind: 'ip',
    ipv6: false,
    delistUrl: 'https://www.barracudacentral.org/rbl/removal-request',
    read: byCode({ '127.0.0.2': 'listed in the Barracuda Reputation Block List' }),
  },
  {
    zone: 'bl.spamcop.net',
    name: 'SpamCop',
    kind: 'ip',
    ipv6: false,
    delistUrl: 'https://www.spamcop.net/bl.shtml',
    read: byCode({ '127.0.0.2': 'listed in the SpamCop Blocking List (reported spam source)' }),
  },
  {
    zone: 'dbl.spamhaus.org',
    name: 'Spamhaus DBL',
    kind: 'domain',
    ipv6: false,
    delistUrl: 'https://check.spamhaus.org/',
    read: byCode(
      {
        '127.0.1.2': 'spam domain',
        '127.0.1.4': 'phishing domain',
        '127.0.1.5': 'malware domain',
        '127.0.1.6': 'botnet command and control domain',
        '127.0.1.102': 'abused legitimate domain: spam',
        '127.0.1.103': 'abused legitimate domain: spammed redirector or URL shortener',
        '127.0.1.104': 'abused legitimate domain: phishing',
        '127.0.1.105': 'abused legitimate domain: malware',
        '127.0.1.106': 'abused legitimate domain: botnet command and control',
      },
      SPAMHAUS_ERRORS,
    ),
  },
  {
    zone: 'multi.surbl.org',
    name: 'SURBL',
    kind: 'domain',
    ipv6: false,
    delistUrl: 'https://surbl.org/surbl-analysis',
    read: bitmask(
      [
        [8, 'PH: phishing'],
        [16, 'MW: malware'],
        [64, 'ABUSE: spam and abuse'],
        [128, 'CR: cracked site'],
      ],
      'access to SURBL blocked (127.0.0.1: error, not a listing)',
    ),
  },
  {
    zone: 'multi.uribl.com',
    name: 'URIBL',
    kind: 'domain',
    ipv6: false,
    delistUrl: 'https://admin.uribl.com/',
    read: bitmask(
      [
        [2, 'black: actively used by spammers'],
        [4, 'grey: seen in unsolicited bulk mail'],
        [8, 'red: in spam in the last days, not yet confirmed'],
      ],
      'query refused by URIBL (127.0.0.1: error, not a listing)',
    ),
  },
];

/** The built-in lists plus the extra ones (`ip:zone` or `domain:zone` entries), de-duplicated by zone. */
export function catalogue(extra: { kind: TargetKind; zone: string }[]): Blocklist[] {
  const lists = [...BUILT_IN];
  for (const e of extra) {
    if (lists.some((l) => l.zone === e.zone)) continue;
    lists.push({ zone: e.zone, name: e.zone, kind: e.kind, ipv6: true, delistUrl: null, read: generic });
  }
  return lists;
}

/** All of a query's answers read together: a listing with every meaning, or the first error. */
export function readAnswers(list: Blocklist, answers: string[]): Reading & { code: string } {
  const code = [...answers].sort().join(',');
  const meanings: string[] = [];
  for (const answer of answers) {
    // Outside 127/8 no list ever answers: this is a resolver rewriting NXDOMAIN, not a listing.
    if (!answer.startsWith('127.'))
      return { code, error: `answer ${answer} is outside 127.0.0.0/8 (resolver rewrites NXDOMAIN?)` };
    const reading = list.read(answer);
    if ('error' in reading) return { code, error: reading.error };
    meanings.push(reading.meaning);
  }
  return { code, meaning: [...new Set(meanings)].join('; ') };
}
