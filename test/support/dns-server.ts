// An authoritative DNS server on loopback (UDP and TCP) serving test zones, so Mailroom's resolver
// asks a real server over real sockets. Names not in the zone get NXDOMAIN; a name with records of
// other types gets an empty answer (NODATA). A name can also be made to fail: SERVFAIL, no answer at
// all (the resolver times out), or a truncated UDP answer whose full form only TCP carries.
import type { Socket } from 'node:net';
import dns2 from 'dns2';
import { splitTxt } from '../../src/core/txt.ts';

const { Packet } = dns2;
// dns2's types omit RCODE and type answers as class instances; the wire encoder takes plain objects.
const NXDOMAIN = 3;
const SERVFAIL = 2;

export interface TestRecords {
  A?: string[];
  AAAA?: string[];
  MX?: { exchange: string; priority: number }[];
  /** Each entry is one TXT record: a string (split into 255-byte strings as a zone would) or its strings. */
  TXT?: (string | string[])[];
  CNAME?: string;
  /** PTR names (at a reverse name such as `2.0.0.127.in-addr.arpa`). */
  PTR?: string[];
  /** Answer SERVFAIL. */
  servfail?: boolean;
  /** Never answer, so the resolver times out. */
  timeout?: boolean;
  /** Over UDP answer with the TC bit and no records; only TCP carries the answer. */
  truncate?: boolean;
}

export interface TestDnsServer {
  /** `127.0.0.1:<port>`, for MAILROOM_DNS_SERVERS. */
  address: string;
  /** Sets (or replaces) a name's records. */
  set(name: string, records: TestRecords): void;
  delete(name: string): void;
  /** Questions answered so far, by transport. */
  queries: { udp: number; tcp: number };
  close(): Promise<void>;
}

const normal = (name: string) => name.toLowerCase().replace(/\.$/, '');

/**
 * `zone` holds the names served; `lookup`, when given, answers names the zone does not hold (a test
 * can serve what a fake DNS provider stores, so records published through it really resolve).
 */
export async function startDnsServer(
  zone: Record<string, TestRecords> = {},
  lookup: (name: string) => TestRecords | undefined = () => undefined,
): Promise<TestDnsServer> {
  const records = new Map<string, TestRecords>();
  const find = (name: string) => records.get(normal(name)) ?? lookup(normal(name));
  const set = (name: string, r: TestRecords) => records.set(normal(name), r);
  for (const [name, r] of Object.entries(zone)) set(name, r);
  const queries = { udp: 0, tcp: 0 };

  /** The records answering `type` at `name`, following CNAMEs inside the zone as an authority does. */
  const answer = (name: string, type: number, depth = 0): object[] => {
    const found = find(name);
    if (!found) return [];
    const base = { name, class: Packet.CLASS.IN, ttl: 1 };
    if (found.CNAME && type !== Packet.TYPE.CNAME) {
      const alias = { ...base, type: Packet.TYPE.CNAME, domain: found.CNAME };
      return depth > 8 ? [alias] : [alias, ...answer(found.CNAME, type, depth + 1)];
    }
    switch (type) {
      case Packet.TYPE.A:
        return (found.A ?? []).map((address) => ({ ...base, type, address }));
      case Packet.TYPE.AAAA:
        return (found.AAAA ?? []).map((address) => ({ ...base, type, address }));
      case Packet.TYPE.MX:
        return (found.MX ?? []).map((mx) => ({ ...base, type, ...mx }));
      case Packet.TYPE.TXT:
        return (found.TXT ?? []).map((t) => ({ ...base, type, data: Array.isArray(t) ? t : splitTxt(t) }));
      case Packet.TYPE.CNAME:
        return found.CNAME ? [{ ...base, type, domain: found.CNAME }] : [];
      case Packet.TYPE.PTR:
        return (found.PTR ?? []).map((domain) => ({ ...base, type, domain }));
      default:
        return [];
    }
  };

  const handle = (request: any, send: (response: any) => void, client: unknown) => {
    const overTcp = typeof (client as Socket | undefined)?.setTimeout === 'function';
    queries[overTcp ? 'tcp' : 'udp']++;
    const response = Packet.createResponseFromRequest(request);
    const [question] = request.questions;
    const found = find(question.name);
    if (found?.timeout) return;
    if (!found) {
      response.header.rcode = NXDOMAIN;
    } else if (found.servfail) {
      response.header.rcode = SERVFAIL;
    } else if (found.truncate && !overTcp) {
      response.header.tc = 1;
    } else {
      response.answers.push(...(answer(question.name, question.type) as never[]));
    }
    send(response);
  };
  const { server, port } = await listenOnOnePort(handle);
  return {
    address: `127.0.0.1:${port}`,
    set,
    delete: (name) => records.delete(normal(name)),
    queries,
    close: () => server.close(),
  };
}

/**
 * UDP on a free port, then TCP on the same one (resolvers retry truncated answers over TCP there).
 * The TCP port may already be taken by something else on this machine (suites run in parallel): then
 * the whole server starts again on another port.
 */
async function listenOnOnePort(handle: (request: any, send: (r: any) => void, client: unknown) => void) {
  for (let attempt = 1; ; attempt++) {
    const server = dns2.createServer({ udp: true, tcp: true, handle });
    const servers = (server as unknown as { servers: Record<'udp' | 'tcp', any> }).servers;
    const udpListening = new Promise((resolve) => servers.udp.once('listening', resolve));
    servers.udp.listen(0, '127.0.0.1');
    await udpListening;
    const port = servers.udp.address().port as number;
    // dns2 re-emits its sockets' errors on the server itself (an error with no listener would throw).
    const tcpListening = new Promise<Error | null>((resolve) => {
      servers.tcp.once('listening', () => resolve(null));
      server.once('error', resolve);
    });
    servers.tcp.listen(port, '127.0.0.1');
    const failed = await tcpListening;
    if (!failed) return { server, port };
    servers.udp.close();
    if (attempt >= 20) throw failed;
  }
}
