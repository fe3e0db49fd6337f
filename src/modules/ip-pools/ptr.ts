// Reverse DNS of a sending IP, as receiving servers check it (Gmail, Outlook, and most filters):
//   PTR       the IP has a PTR record (reverse DNS)
//   FCrDNS    a PTR name resolves forward (A for IPv4, AAAA for IPv6) to the same IP
//   HELO      the name the delivery greets with from that IP (MAILROOM_OUTBOUND_IP_HELO, else
//             MAILROOM_HOSTNAME) is one of the confirmed PTR names
// The configured resolvers (MAILROOM_DNS_SERVERS) are asked in order; one that fails (timeout, SERVFAIL)
// hands the question to the next. When none answers, the result is an error, which settles nothing.
import type { DnsAnswer, DnsServer } from '../../core/dns.ts';
import { canonicalIp, familyOf } from './addresses.ts';
import type { PtrFinding, PtrStatus } from './tables.ts';

export interface PtrResult {
  status: PtrStatus;
  names: string[];
  /** PTR names whose forward lookup gives the IP back. */
  confirmed: string[];
  heloName: string;
  findings: PtrFinding[];
}

type Definite<T> = { ok: true; records: T } | { ok: false; missing: true } | { ok: false; error: string };

/** The first definite answer among the resolvers (records, or NXDOMAIN/NODATA); else the last failure. */
async function firstDefinite<T>(
  servers: DnsServer[],
  ask: (server: DnsServer) => Promise<DnsAnswer<T>>,
): Promise<Definite<T>> {
  let error = 'no resolver configured';
  for (const server of servers) {
    const answer = await ask(server);
    if (answer.ok) return answer;
    if (answer.error.code === 'NXDOMAIN' || answer.error.code === 'NODATA')
      return { ok: false, missing: true };
    error = answer.error.reason;
  }
  return { ok: false, error };
}

export async function checkPtr(servers: DnsServer[], ip: string, heloName: string): Promise<PtrResult> {
  const helo = heloName.toLowerCase().replace(/\.$/, '');
  const base = { names: [] as string[], confirmed: [] as string[], heloName: helo };
  const ptr = await firstDefinite(servers, (s) => s.ptr(ip));
  if (!ptr.ok && 'error' in ptr) {
    return {
      ...base,
      status: 'error',
      findings: [
        { code: 'dns_error', severity: 'error', message: `reverse lookup of ${ip} failed: ${ptr.error}` },
      ],
    };
  }
  const names = ptr.ok ? [...new Set(ptr.records)] : [];
  if (!names.length) {
    return {
      ...base,
      status: 'fail',
      findings: [
        {
          code: 'ptr_missing',
          severity: 'error',
          message: `${ip} has no PTR record (reverse DNS): many receivers refuse or junk mail from such an IP. Ask whoever holds the address (the hosting provider) to set its PTR to ${helo}.`,
        },
      ],
    };
  }

  const family = familyOf(ip);
  const findings: PtrFinding[] = [];
  const confirmed: string[] = [];
  const forwardErrors: string[] = [];
  const elsewhere: string[] = [];
  for (const name of names) {
    const forward = await firstDefinite(servers, (s) => s.addresses(name, family));
    if (!forward.ok && 'error' in forward) {
      forwardErrors.push(`${name}: ${forward.error}`);
      continue;
    }
    const addresses = forward.ok ? forward.records.map((a) => canonicalIp(a) ?? a) : [];
    if (addresses.includes(ip)) confirmed.push(name);
    else
      elsewhere.push(
        `${name} → ${addresses.length ? addresses.join(', ') : `no ${family === 4 ? 'A' : 'AAAA'} record`}`,
      );
  }
  if (names.length > 1) {
    findings.push({
      code: 'ptr_multiple',
      severity: 'warning',
      message: `${ip} has ${names.length} PTR records (${names.join(', ')}): receivers may read any one of them; keep one.`,
    });
  }
  if (!confirmed.length) {
    if (forwardErrors.length && !elsewhere.length) {
      return {
        ...base,
        names,
        status: 'error',
        findings: [
          ...findings,
          {
            code: 'dns_error',
            severity: 'error',
            message: `forward lookup failed: ${forwardErrors.join('; ')}`,
          },
        ],
      };
    }
    findings.push({
      code: 'ptr_forward_mismatch',
      severity: 'error',
      message: `forward-confirmed reverse DNS fails: the PTR name does not resolve back to ${ip} (${elsewhere.join('; ')}). Point the name's ${family === 4 ? 'A' : 'AAAA'} record at ${ip}.`,
    });
    return { ...base, names, status: 'fail', findings };
  }
  if (!confirmed.includes(helo)) {
    findings.push({
      code: 'helo_mismatch',
      severity: 'error',
      message: `the HELO name ${helo} is not the PTR name of ${ip} (${confirmed.join(', ')}): set the PTR to ${helo}, or name ${confirmed[0]} for this IP in MAILROOM_OUTBOUND_IP_HELO.`,
    });
  }
  const failed = findings.some((f) => f.severity === 'error');
  return { ...base, names, confirmed, status: failed ? 'fail' : 'pass', findings };
}
