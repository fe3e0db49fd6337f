// DNS questions asked of each configured resolver separately (MAILROOM_DNS_SERVERS), so a check can
// say which resolvers see a record (propagation). Failures come back as values with a reason a
// person can act on, never as exceptions: NXDOMAIN, SERVFAIL, timeouts, refusals. Truncated UDP
// answers are retried over TCP by the resolver library (c-ares) itself.
import { Resolver } from 'node:dns/promises';

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
    };
  });
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
