// Where mail for a domain goes (RFC 5321 section 5.1): its MX hosts by preference, equal preferences
// in random order; the domain's own address when it has no MX (implicit MX); nowhere when it publishes
// a null MX (RFC 7505) or does not exist. DNS failures are temporary, never a bounce.
import { isIP } from 'node:net';
import type { MailauthResolver } from '../../../core/resolver.ts';
import { type Verdict, verdict } from './results.ts';

export interface MxHost {
  name: string;
  /** Already known for an implicit MX (looked up to decide that the domain takes mail); else null. */
  addresses: string[] | null;
}

export type Route = { ok: true; hosts: MxHost[]; implicit: boolean } | { ok: false; failure: Verdict };

interface MxRecord {
  exchange: string;
  priority: number;
}

/** No such name (NXDOMAIN) or no records of the type asked (NODATA): an answer, not a failure. */
const NO_ANSWER = new Set(['ENOTFOUND', 'ENODATA']);

export async function resolveRoute(resolver: MailauthResolver, domain: string): Promise<Route> {
  let records: MxRecord[];
  try {
    records = ((await resolver(domain, 'MX')) as MxRecord[] | undefined) ?? [];
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (code === 'ENOTFOUND') return noSuchDomain(domain);
    if (code === 'ENODATA') return implicitMx(resolver, domain);
    return dnsFailure(`MX lookup for ${domain} failed`, err);
  }
  if (!records.length) return implicitMx(resolver, domain);
  return explicitMx(domain, records);
}

function explicitMx(domain: string, records: MxRecord[]): Route {
  const usable = records
    .map((r) => ({ name: normalName(r.exchange), priority: r.priority }))
    .filter((r) => r.name !== '');
  if (!usable.length) {
    return {
      ok: false,
      failure: verdict('bounced', 550, '5.1.10', `${domain} accepts no mail (null MX, RFC 7505)`),
    };
  }
  // An MX naming an IP address is not valid (RFC 5321 5.1, RFC 7505): skipped.
  const names = byPreference(usable.filter((r) => !isIP(r.name)));
  if (!names.length) {
    return {
      ok: false,
      failure: verdict(
        'deferred',
        null,
        '4.4.4',
        `no valid MX host for ${domain} (MX records name IP addresses)`,
      ),
    };
  }
  return { ok: true, implicit: false, hosts: names.map((name) => ({ name, addresses: null })) };
}

async function implicitMx(resolver: MailauthResolver, domain: string): Promise<Route> {
  const found = await resolveAddresses(resolver, domain);
  if (found.addresses.length)
    return { ok: true, implicit: true, hosts: [{ name: domain, addresses: found.addresses }] };
  if (found.error) return dnsFailure(`address lookup for ${domain} failed`, found.error);
  return noSuchDomain(domain);
}

/**
 * IPv4 first: most MX hosts are reachable over it, while many networks (containers among them) have
 * no IPv6 route, which costs a connection timeout per address.
 */
export async function resolveAddresses(
  resolver: MailauthResolver,
  name: string,
): Promise<{ addresses: string[]; error: unknown }> {
  const [v4, v6] = await Promise.all([lookup(resolver, name, 'A'), lookup(resolver, name, 'AAAA')]);
  return { addresses: [...v4.addresses, ...v6.addresses], error: v4.error ?? v6.error };
}

async function lookup(
  resolver: MailauthResolver,
  name: string,
  rrtype: 'A' | 'AAAA',
): Promise<{ addresses: string[]; error: unknown }> {
  try {
    const answer = (await resolver(name, rrtype)) as string[] | undefined;
    return { addresses: (answer ?? []).filter((a) => typeof a === 'string'), error: null };
  } catch (err) {
    if (NO_ANSWER.has((err as NodeJS.ErrnoException).code ?? '')) return { addresses: [], error: null };
    return { addresses: [], error: err };
  }
}

/** Sorted by preference; equal preferences shuffled so that load spreads as the domain intends. */
function byPreference(records: { name: string; priority: number }[]): string[] {
  const shuffled = [...records];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
  }
  // Array.prototype.sort is stable: the shuffle survives among equal priorities.
  shuffled.sort((a, b) => a.priority - b.priority);
  return [...new Set(shuffled.map((r) => r.name))];
}

function normalName(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, '');
}

function noSuchDomain(domain: string): Route {
  return {
    ok: false,
    failure: verdict('bounced', 550, '5.1.2', `${domain} does not exist or has no mail host`),
  };
}

function dnsFailure(what: string, err: unknown): Route {
  const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message ?? String(err);
  return { ok: false, failure: verdict('deferred', null, '4.4.3', `${what}: ${reason}`) };
}
