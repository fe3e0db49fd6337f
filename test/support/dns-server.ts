// An authoritative DNS server on loopback (UDP and TCP) serving test zones, so Mailroom's resolver
// asks a real server over real sockets. Names not in the zone get NXDOMAIN.
import dns2 from 'dns2';

const { Packet } = dns2;
// dns2's types omit RCODE and type answers as class instances; the wire encoder takes plain objects.
const NXDOMAIN = 3;

export interface TestRecords {
  A?: string[];
  AAAA?: string[];
}

export interface TestDnsServer {
  /** `127.0.0.1:<port>`, for MAILROOM_DNS_SERVERS. */
  address: string;
  /** Sets (or replaces) a name's records. */
  set(name: string, records: TestRecords): void;
  close(): Promise<void>;
}

export async function startDnsServer(zone: Record<string, TestRecords> = {}): Promise<TestDnsServer> {
  const records = new Map<string, TestRecords>();
  const set = (name: string, r: TestRecords) => records.set(name.toLowerCase().replace(/\.$/, ''), r);
  for (const [name, r] of Object.entries(zone)) set(name, r);

  const server = dns2.createServer({
    udp: true,
    tcp: true,
    handle: (request, send) => {
      const response = Packet.createResponseFromRequest(request);
      const [question] = request.questions;
      const found = records.get(question.name.toLowerCase());
      if (!found) {
        response.header.rcode = NXDOMAIN;
        send(response);
        return;
      }
      const answers =
        question.type === Packet.TYPE.A
          ? (found.A ?? []).map((address) => ({ type: Packet.TYPE.A, address }))
          : question.type === Packet.TYPE.AAAA
            ? (found.AAAA ?? []).map((address) => ({ type: Packet.TYPE.AAAA, address }))
            : [];
      for (const a of answers) {
        response.answers.push({ name: question.name, class: Packet.CLASS.IN, ttl: 1, ...a } as never);
      }
      send(response);
    },
  });
  // UDP on a free port, then TCP on the same one (resolvers retry truncated answers over TCP there).
  const servers = (server as unknown as { servers: Record<'udp' | 'tcp', any> }).servers;
  const udpListening = new Promise((resolve) => servers.udp.once('listening', resolve));
  servers.udp.listen(0, '127.0.0.1');
  await udpListening;
  const port = servers.udp.address().port as number;
  const tcpListening = new Promise((resolve) => servers.tcp.once('listening', resolve));
  servers.tcp.listen(port, '127.0.0.1');
  await tcpListening;
  return { address: `127.0.0.1:${port}`, set, close: () => server.close() };
}
