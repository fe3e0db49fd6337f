// The reverse DNS of the sending IPs in health scores, through the public surface: the PTR records of
// 127.0.0.1 and 127.0.0.2 come from a loopback DNS server, the ip-pools checks read them (at start and
// on demand), and a domain's (or a mailbox's own) pool decides which IPs its score looks at. Pool
// assignments and the PTR events mark the subjects due; the sweep they wake recomputes them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engine, orgMaker, type Org, startTestApp, type TestApp } from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';
import { until } from '../../support/until.ts';

const HOST = 'mx.mailroom.test';
const HELO_2 = 'mta2.mailroom.test';
const IP_1 = '127.0.0.1';
const IP_2 = '127.0.0.2';
const REVERSE_2 = '2.0.0.127.in-addr.arpa';

describe(`reverse DNS of the sending IPs in health scores on ${engine}`, () => {
  let t: TestApp;
  let dns: TestDnsServer;
  const newOrg = orgMaker('ptrhealth');

  before(async () => {
    // 127.0.0.1 passes (PTR mx.mailroom.test, which resolves back); 127.0.0.2 has no PTR yet.
    dns = await startDnsServer({
      [HOST]: { A: [IP_1] },
      '1.0.0.127.in-addr.arpa': { PTR: [HOST] },
      [HELO_2]: { A: [IP_2] },
    });
    t = await startTestApp({
      workers: true,
      env: {
        MAILROOM_HOSTNAME: HOST,
        MAILROOM_DNS_SERVERS: dns.address,
        // Long enough for a loaded host: a PTR look-up that times out is an error, not the finding asked.
        MAILROOM_DNS_TIMEOUT: '3s',
        MAILROOM_DNS_TRIES: '1',
        MAILROOM_INBOUND_DNS_CACHE: '1ms',
        MAILROOM_OUTBOUND_IPS: `${IP_1},${IP_2}`,
        MAILROOM_OUTBOUND_IP_HELO: `${IP_2}=${HELO_2}`,
        MAILROOM_BLOCKLISTS_TIMEOUT: '300ms',
        MAILROOM_HEALTH_TRIGGER_DELAY: '50ms',
      },
    });
  });
  after(async () => {
    await t?.close();
    await dns?.close();
  });

  const ok = async (as: Org, method: string, url: string, body?: unknown, status = 200) => {
    const res = await t.call(method, url, { token: as.token, body });
    assert.equal(res.status, status, `${method} ${url}: ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const detail = (as: Org, kind: 'domains' | 'mailboxes', id: string) =>
    ok(as, 'GET', `/v1/health/${kind}/${id}`);
  /** Recomputes now (the API's check), for a subject nothing marked due. */
  const check = (as: Org, kind: 'domains' | 'mailboxes', id: string) =>
    ok(as, 'POST', `/v1/health/${kind}/${id}/check`);
  const ptr = (d: { findings: any[] }): any[] => d.findings.filter((f) => f.input === 'ptr');
  const ptrCodes = (d: { findings: any[] }) => ptr(d).map((f) => [f.code, f.evidence.ip]);
  /** Waits until a sweep has computed the subject and its ptr findings are `codes`. */
  const settled = (as: Org, kind: 'domains' | 'mailboxes', id: string, codes: string[][]) =>
    until(
      () => detail(as, kind, id),
      (d) => d.score !== null && JSON.stringify(ptrCodes(d)) === JSON.stringify(codes),
    );
  const pool = (as: Org, name: string, ips: string[], isDefault = false) =>
    ok(as, 'POST', '/v1/ip-pools', { name, ips, warmup: 'none', is_default: isDefault }, 201);
  const checkIp = async (as: Org, ip: string) => {
    const body = await ok(as, 'POST', '/v1/ip-pools/ips/check', { ips: [ip] });
    return body.items.find((i: any) => i.ip === ip).ptr;
  };

  test('a domain whose pool’s IP fails its PTR check has the ptr finding; one whose IP passes has none', async () => {
    const org = await newOrg(t);
    // The check queued at start has looked at both IPs.
    await until(
      () => ok(org, 'GET', '/v1/ip-pools/ips'),
      (b) => b.items.every((i: any) => i.ptr.status !== 'unchecked'),
    );

    // No pool at all: the domain's mail may leave from every sending IP, 127.0.0.2 among them.
    const domain = await verifiedDomain(t, org.token, 'pooled.test', [dns]);
    const before = await settled(org, 'domains', domain.id, [['ptr.missing', IP_2]]);
    const [missing] = ptr(before) as any[];
    assert.equal(missing.severity, 'critical');
    assert.equal(missing.penalty, 20);
    assert.equal(missing.title, `Sending IP ${IP_2} has no PTR record (reverse DNS)`);
    assert.deepEqual(
      {
        ...missing.evidence,
        checked_at: typeof missing.evidence.checked_at,
        detail: typeof missing.evidence.detail,
      },
      {
        target: IP_2,
        ip: IP_2,
        pool: null,
        ptr_names: [],
        forward_confirmed: [],
        helo: HELO_2,
        status: 'fail',
        checked_at: 'string',
        detail: 'string',
      },
    );
    assert.match(missing.fix, new RegExp(`set its PTR record to ${HELO_2.replaceAll('.', '\\.')}`));
    assert.equal(before.inputs.find((i: any) => i.name === 'ptr').penalty, 20);

    // Its own pool of the passing IP: ip_pool.assigned marks it due, and the finding goes.
    const good = await pool(org, 'Good', [IP_1]);
    await ok(org, 'PUT', `/v1/ip-pools/${good.id}/domains/${domain.id}`);
    const after = await settled(org, 'domains', domain.id, []);
    assert.equal(after.inputs.find((i: any) => i.name === 'ptr').penalty, 0);

    // Another domain on a pool of the failing IP.
    const bad = await pool(org, 'Bad', [IP_2]);
    const other = await verifiedDomain(t, org.token, 'failing.test', [dns]);
    await ok(org, 'PUT', `/v1/ip-pools/${bad.id}/domains/${other.id}`);
    const failing = await settled(org, 'domains', other.id, [['ptr.missing', IP_2]]);
    assert.deepEqual(
      ptr(failing).map((f: any) => f.evidence.pool),
      [{ id: bad.id, name: 'Bad' }],
    );

    // A mailbox with a pool of its own is scored on it; one without is its domain's business.
    const author = await ok(
      org,
      'POST',
      '/v1/mailboxes',
      { address: 'author@pooled.test', password: 'mailbox password 123' },
      201,
    );
    const plain = await ok(
      org,
      'POST',
      '/v1/mailboxes',
      { address: 'plain@pooled.test', password: 'mailbox password 123' },
      201,
    );
    await ok(org, 'PUT', `/v1/ip-pools/${bad.id}/mailboxes/${author.id}`);
    await settled(org, 'mailboxes', author.id, [['ptr.missing', IP_2]]);
    assert.deepEqual(ptr(await check(org, 'mailboxes', plain.id)), []);
    assert.deepEqual(ptr(await check(org, 'domains', domain.id)), []);
  });

  test('each kind of PTR failure is a critical finding; the PTR events recompute the domains', async () => {
    const org = await newOrg(t);
    const bad = await pool(org, 'Checked', [IP_2]);
    const domain = await verifiedDomain(t, org.token, 'checked.test', [dns]);
    await ok(org, 'PUT', `/v1/ip-pools/${bad.id}/domains/${domain.id}`);
    assert.equal((await checkIp(org, IP_2)).status, 'fail');
    await settled(org, 'domains', domain.id, [['ptr.missing', IP_2]]);

    // The PTR resolves back, but to a name other than the HELO: still failing (no event), seen on a check.
    dns.set(REVERSE_2, { PTR: ['other.mailroom.test'] });
    dns.set('other.mailroom.test', { A: [IP_2] });
    assert.equal((await checkIp(org, IP_2)).status, 'fail');
    const helo = ptr(await check(org, 'domains', domain.id)) as any[];
    assert.deepEqual(
      helo.map((f) => [f.code, f.severity, f.penalty, f.evidence.helo, f.evidence.forward_confirmed]),
      [['ptr.helo_mismatch', 'critical', 15, HELO_2, ['other.mailroom.test']]],
    );
    assert.match(helo[0].fix, /MAILROOM_OUTBOUND_IP_HELO \(127\.0\.0\.2=other\.mailroom\.test\)/);

    // A PTR name that resolves elsewhere.
    dns.set(REVERSE_2, { PTR: [HELO_2] });
    dns.set(HELO_2, { A: ['127.0.0.9'] });
    await checkIp(org, IP_2);
    const forward = ptr(await check(org, 'domains', domain.id)) as any[];
    assert.deepEqual(
      forward.map((f) => [f.code, f.severity, f.evidence.ptr_names]),
      [['ptr.forward_mismatch', 'critical', [HELO_2]]],
    );

    // Fixed: sending_ip.ptr_passed marks the organisation's domains due, and the finding goes.
    dns.set(HELO_2, { A: [IP_2] });
    assert.equal((await checkIp(org, IP_2)).status, 'pass');
    await settled(org, 'domains', domain.id, []);

    // Broken again: sending_ip.ptr_failed brings it back without asking.
    dns.delete(REVERSE_2);
    assert.equal((await checkIp(org, IP_2)).status, 'fail');
    await settled(org, 'domains', domain.id, [['ptr.missing', IP_2]]);

    // A resolver failure settles nothing: shown, not deducted.
    dns.set(REVERSE_2, { servfail: true });
    assert.equal((await checkIp(org, IP_2)).status, 'error');
    const error = await check(org, 'domains', domain.id);
    assert.deepEqual(
      ptr(error).map((f: any) => [f.code, f.severity, f.penalty]),
      [['ptr.lookup_failed', 'info', 0]],
    );
    dns.set(REVERSE_2, { PTR: [HELO_2] });
    assert.equal((await checkIp(org, IP_2)).status, 'pass');
  });

  test('with no pool of its own, a domain is scored on the organisation’s default pool', async () => {
    const org = await newOrg(t);
    dns.delete(REVERSE_2);
    assert.equal((await checkIp(org, IP_2)).status, 'fail');
    const domain = await verifiedDomain(t, org.token, 'defaulted.test', [dns]);
    await settled(org, 'domains', domain.id, [['ptr.missing', IP_2]]);
    // A default pool of the passing IP: ip_pool.created (a default) marks every domain due.
    await pool(org, 'Default', [IP_1], true);
    await settled(org, 'domains', domain.id, []);
    dns.set(REVERSE_2, { PTR: [HELO_2] });
    assert.equal((await checkIp(org, IP_2)).status, 'pass');
  });
});
