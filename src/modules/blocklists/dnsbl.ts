// Asking a DNS blocklist about one target: the query name (reversed octets, reversed IPv6 nibbles, or the
// domain itself under the list's zone) and the answer, read. NXDOMAIN (or a name without A records)
// means not listed; every other failure is an error, recorded as such and never read as a listing.
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { type Blocklist, readAnswers, type TargetKind } from './lists.ts';

export type Outcome =
  | { listed: true; code: string; meaning: string }
  | { listed: false }
  | { error: string; code: string | null };

/** The name to ask `zone` about `target`. */
export function queryName(target: string, kind: TargetKind, zone: string): string {
  if (kind === 'domain') return `${target}.${zone}`;
  if (isIP(target) === 4) return `${target.split('.').reverse().join('.')}.${zone}`;
  return `${expandIpv6(target).split('').reverse().join('.')}.${zone}`;
}

/** The 32 hex nibbles of an IPv6 address. */
export function expandIpv6(ip: string): string {
  let address = ip.toLowerCase();
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (v4) {
    const [a, b, c, d] = v4[1].split('.').map(Number);
    address = address.replace(v4[1], `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`);
  }
  const [head, tail] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups =
    tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  return groups.map((g) => g.padStart(4, '0')).join('');
}

export interface Prober {
  probe(list: Blocklist, target: string, kind: TargetKind): Promise<Outcome>;
}

/** A prober over MAILROOM_DNS_SERVERS; identical questions within one prober are asked once. */
export function prober(options: { servers: string[]; timeoutMs: number }): Prober {
  const resolver = new Resolver({ timeout: options.timeoutMs, tries: 1 });
  if (options.servers.length) resolver.setServers(options.servers);
  const asked = new Map<string, Promise<Outcome>>();
  const ask = async (list: Blocklist, name: string): Promise<Outcome> => {
    let answers: string[];
    try {
      answers = await resolver.resolve4(name);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'ENOTFOUND' || code === 'ENODATA') return { listed: false };
      return {
        error: `${name}: ${code === 'ETIMEOUT' ? 'no answer in time' : (code ?? String(error))}`,
        code: null,
      };
    }
    const reading = readAnswers(list, answers);
    return 'error' in reading
      ? { error: reading.error, code: reading.code }
      : { listed: true, code: reading.code, meaning: reading.meaning };
  };
  return {
    probe(list, target, kind) {
      const name = queryName(target, kind, list.zone);
      let answer = asked.get(name);
      if (!answer) {
        answer = ask(list, name);
        asked.set(name, answer);
      }
      return answer;
    },
  };
}
