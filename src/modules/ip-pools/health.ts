// Reverse DNS of the sending IPs as a health input: for each domain, the IPs its mail leaves from (its
// pool, else the organisation's default pool, else every IP of MAILROOM_OUTBOUND_IPS: the selection rules
// of selector.ts) and their last PTR check (kept in `sending_ips`, checked hourly and on demand). Gmail
// and Outlook refuse or junk mail from an IP without a PTR record, whose PTR name does not resolve back
// to it (FCrDNS), or whose HELO name is not that PTR name; each is a critical finding per IP.
//
// A mailbox is scored only when it has a pool of its own (its mail leaves from other IPs than its
// domain's); otherwise its domain's findings say it, and a mailbox's score does not repeat them. With no
// sending IPs configured the system picks the source address and there is nothing to check: no findings.
// A check no resolver could answer settles nothing (info, no penalty); an IP not checked yet neither.
import type { Finding, HealthInput, SubjectSelector } from '../health/inputs/types.ts';
import type { PoolSnapshot, SendingIpRecord } from './store.ts';

export interface PtrInputOptions {
  /** MAILROOM_OUTBOUND_IPS. */
  ips: readonly string[];
  /** The HELO name delivery greets with from an IP. */
  heloFor(ip: string): string;
  /** The organisation's pools and assignments. */
  pools(organizationId: string): Promise<PoolSnapshot>;
  /** The last PTR check of each IP (installation-wide). */
  records(ips: string[]): Promise<Map<string, SendingIpRecord>>;
}

interface Rule {
  code: string;
  severity: Finding['severity'];
  penalty: number;
  title: (ip: string, r: SendingIpRecord, helo: string) => string;
  fix: (ip: string, r: SendingIpRecord, helo: string) => string;
}

const RECHECK = 'then check again with POST /v1/ip-pools/ips/check';

/** By the ip-pools check's finding code (ptr.ts). */
const RULES: Record<string, Rule> = {
  ptr_missing: {
    code: 'ptr.missing',
    severity: 'critical',
    penalty: 20,
    title: (ip) => `Sending IP ${ip} has no PTR record (reverse DNS)`,
    fix: (ip, _r, helo) =>
      `Ask whoever holds ${ip} (the hosting provider, in its control panel or by ticket) to set its PTR record to ${helo}, and publish A ${helo} → ${ip}; ${RECHECK}`,
  },
  ptr_forward_mismatch: {
    code: 'ptr.forward_mismatch',
    severity: 'critical',
    penalty: 20,
    title: (ip, r) =>
      `The PTR name of sending IP ${ip} (${r.ptrNames.join(', ')}) does not resolve back to it (forward-confirmed reverse DNS fails)`,
    fix: (ip, r) =>
      `Point the ${ip.includes(':') ? 'AAAA' : 'A'} record of ${r.ptrNames[0] ?? 'the PTR name'} at ${ip}, or have the PTR changed to a name that resolves to ${ip}; ${RECHECK}`,
  },
  helo_mismatch: {
    code: 'ptr.helo_mismatch',
    severity: 'critical',
    penalty: 15,
    title: (ip, r, helo) =>
      `Mail from ${ip} greets with HELO ${helo}, which is not its PTR name (${r.ptrConfirmed.join(', ')})`,
    fix: (ip, r, helo) =>
      `Have the PTR of ${ip} set to ${helo}, or name its PTR name for it in MAILROOM_OUTBOUND_IP_HELO (${ip}=${r.ptrConfirmed[0] ?? 'host.name'}); ${RECHECK}`,
  },
  ptr_multiple: {
    code: 'ptr.multiple',
    severity: 'warning',
    penalty: 5,
    title: (ip, r) => `Sending IP ${ip} has ${r.ptrNames.length} PTR records (${r.ptrNames.join(', ')})`,
    fix: (ip, _r, helo) =>
      `Receivers may read any one of them: ask whoever holds ${ip} to keep one PTR record, ${helo}; ${RECHECK}`,
  },
  dns_error: {
    code: 'ptr.lookup_failed',
    severity: 'info',
    penalty: 0,
    title: (ip) => `The last reverse DNS check of sending IP ${ip} got no answer from any resolver`,
    fix: () =>
      'Nothing if the next check settles it (the last verdict is not counted meanwhile); if it keeps failing, make sure the resolvers of MAILROOM_DNS_SERVERS answer reverse lookups, then check again with POST /v1/ip-pools/ips/check',
  },
};

/** The IPs a subject's mail leaves from, with the pool they come from (null: the installation's). */
interface Source {
  pool: { id: string; name: string } | null;
  ips: string[];
}

export function ptrFindings(ip: string, record: SendingIpRecord | undefined, source: Source, helo: string) {
  const base = {
    target: ip,
    ip,
    pool: source.pool,
    ptr_names: record?.ptrNames ?? [],
    forward_confirmed: record?.ptrConfirmed ?? [],
    helo: record?.heloName ?? helo,
    status: record?.ptrStatus ?? 'unchecked',
    checked_at: record?.ptrCheckedAt?.toISOString() ?? null,
  };
  if (!record?.ptrStatus) {
    return [
      {
        code: 'ptr.unchecked',
        severity: 'info',
        title: `The reverse DNS of sending IP ${ip} was not checked yet`,
        evidence: base,
        fix: `Nothing: it is checked soon after a worker starts, and at once by POST /v1/ip-pools/ips/check`,
        penalty: 0,
      } satisfies Finding,
    ];
  }
  const used = base.helo;
  return record.ptrFindings.map((f): Finding => {
    const rule = RULES[f.code] ?? {
      code: `ptr.${f.code}`,
      severity: f.severity === 'error' ? 'critical' : 'warning',
      penalty: f.severity === 'error' ? 20 : 5,
      title: () => f.message,
      fix: () => `${f.message}; ${RECHECK}`,
    };
    return {
      code: rule.code,
      severity: rule.severity,
      title: rule.title(ip, record, used),
      evidence: { ...base, detail: f.message },
      fix: rule.fix(ip, record, used),
      penalty: rule.penalty,
    };
  });
}

export function ptrInput(o: PtrInputOptions): HealthInput {
  const configured = new Set(o.ips);
  const installation: Source = { pool: null, ips: [...o.ips] };
  const sourceOf = (p: PoolSnapshot['pools'][number]): Source => ({
    pool: { id: p.id, name: p.name },
    // Members taken out of MAILROOM_OUTBOUND_IPS are never used.
    ips: p.ips.filter((ip) => configured.has(ip)),
  });
  const everyone = (): SubjectSelector[] => [
    { kind: 'domain', organization: true },
    { kind: 'mailbox', organization: true },
  ];
  const assignment = (e: { data: { target: string; target_id: string } }): SubjectSelector[] => [
    { kind: e.data.target === 'mailbox' ? 'mailbox' : 'domain', id: e.data.target_id },
  ];
  return {
    name: 'ptr',
    title: 'Reverse DNS (PTR) of the sending IPs',
    kinds: ['domain', 'mailbox'],
    weight: 20,
    async evaluate(batch) {
      const findings = new Map<string, Finding[]>();
      if (!o.ips.length) return findings;
      const [snapshot, records] = await Promise.all([
        batch.memo(`ptr:${batch.organizationId}`, () => o.pools(batch.organizationId)),
        batch.memo('ptr:records', () => o.records([...o.ips])),
      ]);
      const pools = new Map(snapshot.pools.map((p) => [p.id, p]));
      const domainPools = new Map(snapshot.domains.map((d) => [d.domainId, d.poolId]));
      const mailboxPools = new Map(snapshot.mailboxes.map((m) => [m.address, m.poolId]));
      const fallback = snapshot.pools.find((p) => p.isDefault);
      for (const s of batch.subjects) {
        let source: Source | null;
        if (s.kind === 'mailbox') {
          // Only a pool of its own: otherwise it sends as its domain does, and the domain says so.
          const own = pools.get(mailboxPools.get(s.name) ?? '');
          source = own ? sourceOf(own) : null;
        } else {
          const own = pools.get(domainPools.get(s.id) ?? '') ?? fallback;
          source = own ? sourceOf(own) : installation;
        }
        if (!source) continue;
        const found = source.ips.flatMap((ip) => ptrFindings(ip, records.get(ip), source, o.heloFor(ip)));
        if (found.length) findings.set(s.id, found);
      }
      return findings;
    },
    triggers: {
      // An IP's check failed or passes again: every subject of an organisation with it in a pool.
      'sending_ip.ptr_failed': everyone,
      'sending_ip.ptr_passed': everyone,
      // Which IPs a subject's mail leaves from changed.
      'ip_pool.assigned': assignment,
      'ip_pool.unassigned': assignment,
      'ip_pool.created': (e) => (e.data.is_default ? everyone() : []),
      'ip_pool.updated': everyone,
      'ip_pool.deleted': (e) => (e.data.is_default ? everyone() : []),
    },
  };
}
