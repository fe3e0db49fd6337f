// Helpers for domain tests: publish a domain's required records in the loopback DNS servers, as an
// operator would in their DNS console.
import assert from 'node:assert/strict';
import type { TestApp } from './app.ts';
import type { TestDnsServer, TestRecords } from './dns-server.ts';

export interface DnsRecordView {
  purpose: string;
  type: 'TXT' | 'MX' | 'CNAME';
  host: string;
  value: string;
  strings: string[] | null;
  zone_value: string;
  priority: number | null;
  selector: string | null;
  required: boolean;
}

export async function requiredRecords(t: TestApp, token: string, domainId: string): Promise<DnsRecordView[]> {
  const res = await t.call('GET', `/v1/domains/${domainId}/dns-records`, { token });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.records;
}

/** The records grouped per host, in the test DNS server's form. */
export function zoneOf(records: DnsRecordView[]): Map<string, TestRecords> {
  const zone = new Map<string, TestRecords>();
  for (const r of records) {
    const at = zone.get(r.host) ?? {};
    if (r.type === 'TXT') at.TXT = [...(at.TXT ?? []), r.strings ?? r.value];
    if (r.type === 'MX') at.MX = [...(at.MX ?? []), { exchange: r.value, priority: r.priority ?? 10 }];
    if (r.type === 'CNAME') at.CNAME = r.value;
    zone.set(r.host, at);
  }
  return zone;
}

/** Publishes `records` (after `change` edits them per host) on every server. */
export function publish(
  servers: TestDnsServer[],
  records: DnsRecordView[],
  change: (host: string, records: TestRecords) => TestRecords | null = (_, r) => r,
) {
  for (const [host, at] of zoneOf(records)) {
    const changed = change(host, at);
    for (const server of servers) {
      if (changed) server.set(host, changed);
      else server.delete(host);
    }
  }
}

/** Adds `name`, publishes its records on `servers` and verifies it: a domain that receives mail. */
export async function verifiedDomain(
  t: TestApp,
  token: string,
  name: string,
  servers: TestDnsServer[],
): Promise<{ id: string; name: string }> {
  const created = await t.call('POST', '/v1/domains', { token, body: { name } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  publish(servers, await requiredRecords(t, token, created.body.id));
  const verified = await t.call('POST', `/v1/domains/${created.body.id}/verify`, { token });
  assert.equal(verified.status, 200, JSON.stringify(verified.body));
  assert.equal(verified.body.status, 'verified', JSON.stringify(verified.body));
  return { id: created.body.id, name: created.body.name };
}
