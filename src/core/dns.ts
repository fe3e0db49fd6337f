// DNS questions asked of each configured resolver separately (MAILROOM_DNS_SERVERS), so a check can
// say which resolvers see a record (propagation). Failures come back as values with a reason a
// person can act on, never as exceptions: NXDOMAIN, SERVFAIL, timeouts, refusals. Truncated UDP
// answers are retried over TCP by the resolver library (c-ares) itself.
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';

export type DnsErrorCode =
  | 'NXDOMAIN'
  | 'NODATA'
  | 'SERVFAIL'
  | 'TIMEOUT'
  | 'REFUSED'
  | 'UNREACHABLE'
  | 'BADRESP';

export interface DnsFailure {
  code: DnsErrorCode;
  reason: string;
}

export type DnsAnswer<T> = { ok: true; records: T } | { ok: false; error: DnsFailure };

export interface MxRecord {
  exchange: string;
  priority: number;
}

export interface DnsServer {
  /** `ip:port`, or `system` for the system's resolvers. */
  label: string;
  txt(name: string): Promise<DnsAnswer<string[]>>;
  mx(name: string): Promise<DnsAnswer<MxRecord[]>>;
  cname(name: string): Promise<DnsAnswer<string[]>>;
  /** A (family 4) or AAAA (family 6) records. */
  addresses(name: string, family: 4 | 6): Promise<DnsAnswer<string[]>>;
  /** The PTR names of an IP address (reverse DNS), lower case without the trailing dot. */
  ptr(ip: string): Promise<DnsAnswer<string[]>>;
}

export interface DnsOptions {
  /** `ip[:port]` entries; empty uses the system's resolvers as one. */
  servers: string[];
  timeoutMs: number;
  tries: number;
}

/** One DnsServer per configured resolver. */
export function dnsServers(options: DnsOptions): DnsServer[] {
  const entries = options.servers.length ? options.servers : [null];
  return entries.map((entry) => {
    const resolver = new Resolver({ timeout: options.timeoutMs, tries: options.tries });
    if (entry) resolver.setServers([entry]);
    const label = entry ?? 'system';
    const ask = async <T>(name: string, query: () => Promise<T>): Promise<DnsAnswer<T>> => {
      try {
        return { ok: true, records: await query() };
      } catch (error) {
        return { ok: false, error: describeFailure(error, name, label) };
      }
    };
    return {
      label,
      txt: (name) =>
        ask(name, async () => (await resolver.resolveTxt(name)).map((strings) => strings.join(''))),
      mx: (name) =>
        ask(name, async () =>
          (await resolver.resolveMx(name)).map((mx) => ({
            exchange: mx.exchange.toLowerCase().replace(/\.$/, ''),
            priority: mx.priority,
          })),
        ),
      cname: (name) =>
        ask(name, async () =>
          (await resolver.resolveCname(name)).map((c) => c.toLowerCase().replace(/\.$/, '')),
        ),
      addresses: (name, family) =>
        ask(name, () => (family === 4 ? resolver.resolve4(name) : resolver.resolve6(name))),
      // The PTR query itself: Resolver.reverse would answer from /etc/hosts first.
      ptr: (ip) =>
        ask(reverseName(ip), async () =>
          (await resolver.resolvePtr(reverseName(ip))).map((n) => n.toLowerCase().replace(/\.$/, '')),
        ),
    };
  });
}

/** The name of an IP address's PTR record: `4.3.2.1.in-addr.arpa`, or 32 reversed nibbles under `ip6.arpa`. */
export function reverseName(ip: string): string {
  if (isIP(ip) === 4) return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
  const [head, tail] = ip.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups =
    tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  const nibbles = groups.map((g) => g.padStart(4, '0')).join('');
  return `${[...nibbles].reverse().join('.')}.ip6.arpa`;
}

function describeFailure(error: unknown, name: string, server: string): DnsFailure {
  const code = (error as { code?: string }).code;
  switch (code) {
    case 'ENOTFOUND':
      return { code: 'NXDOMAIN', reason: `${name} does not exist (NXDOMAIN from ${server})` };
    case 'ENODATA':
      return { code: 'NODATA', reason: `${name} exists but has no record of this type` };
    case 'ESERVFAIL':
      return {
        code: 'SERVFAIL',
        reason: `${server} answered SERVFAIL for ${name}: the zone's name servers failed or its DNSSEC does not validate`,
      };
    case 'ETIMEOUT':
      return { code: 'TIMEOUT', reason: `${server} did not answer for ${name} in time` };
    case 'EREFUSED':
      return { code: 'REFUSED', reason: `${server} refused to answer for ${name}` };
    case 'ECONNREFUSED':
      return { code: 'UNREACHABLE', reason: `${server} could not be reached` };
    default:
      return {
        code: 'BADRESP',
        reason: `${server} gave no usable answer for ${name} (${code ?? (error as Error).message})`,
      };
  }
}
