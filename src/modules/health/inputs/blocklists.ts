// Blacklist status: the blocklists module's last results for the domain itself and for every sending IP
// the organisation sends through (the installation's and its own). A listing on Spamhaus costs the most
// (most providers consult it); Spamhaus PBL only says an address is dynamic and should not send direct.
// Lookups that failed are no listings (the blocklists module keeps the last known state).
import type { BlocklistsService, TargetStatus } from '../../blocklists/service.ts';
import type { Finding, HealthInput, SubjectSelector } from './types.ts';

const PBL_CODES = new Set(['127.0.0.10', '127.0.0.11']);

interface Penalty {
  severity: Finding['severity'];
  penalty: number;
}

function penaltyOf(kind: 'ip' | 'domain', list: string, code: string | null): Penalty {
  const codes = (code ?? '').split(',').filter(Boolean);
  if (list.endsWith('spamhaus.org')) {
    if (kind === 'ip' && codes.length && codes.every((c) => PBL_CODES.has(c)))
      return { severity: 'warning', penalty: 10 };
    return { severity: 'critical', penalty: kind === 'domain' ? 50 : 40 };
  }
  if (list === 'multi.surbl.org' || list === 'multi.uribl.com') return { severity: 'critical', penalty: 35 };
  if (list === 'b.barracudacentral.org' || list === 'bl.spamcop.net')
    return { severity: 'critical', penalty: 25 };
  return { severity: 'warning', penalty: 20 };
}

function listings(target: TargetStatus): Finding[] {
  return target.results
    .filter((r) => r.listed)
    .map((r) => {
      const { severity, penalty } = penaltyOf(target.kind, r.list, r.code);
      const what = target.kind === 'ip' ? `Sending IP ${target.target}` : `The domain ${target.target}`;
      return {
        code: target.kind === 'ip' ? 'blocklist.ip_listed' : 'blocklist.domain_listed',
        severity,
        title: `${what} is listed on ${r.list}${r.meaning ? ` (${r.meaning})` : ''}`,
        evidence: {
          target: target.target,
          kind: target.kind,
          source: target.source,
          list: r.list,
          code: r.code,
          meaning: r.meaning,
          listed_since: r.listedSince?.toISOString() ?? null,
          checked_at: r.checkedAt.toISOString(),
        },
        fix: r.delistUrl
          ? `Find and stop the cause (a compromised account, a bought list, an open relay), then ask for removal at ${r.delistUrl}`
          : `Find and stop the cause, then ask ${r.list}'s operator for removal`,
        penalty,
      };
    });
}

export function blocklistsInput(blocklists: BlocklistsService): HealthInput {
  const selectors = (e: { data: { kind: string; target: string } }): SubjectSelector[] =>
    e.data.kind === 'domain'
      ? [{ kind: 'domain', name: e.data.target }]
      : [{ kind: 'domain', organization: true }];
  return {
    name: 'blocklists',
    title: 'Blacklist status of the domain and the sending IPs',
    kinds: ['domain'],
    weight: 70,
    async evaluate(batch) {
      const status = await batch.memo(`blocklists:${batch.organizationId}`, () =>
        blocklists.status(batch.organizationId),
      );
      const ips = status.filter((t) => t.kind === 'ip').flatMap(listings);
      const domains = new Map(status.filter((t) => t.kind === 'domain').map((t) => [t.target, t]));
      return new Map(
        batch.subjects.map((s) => {
          const own = domains.get(s.name);
          return [s.id, [...(own ? listings(own) : []), ...ips]];
        }),
      );
    },
    triggers: { 'blocklist.listed': selectors, 'blocklist.delisted': selectors },
  };
}
