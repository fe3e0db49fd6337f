// Sending IPs and IP pools through the public surface: delivery binds to the loopback addresses
// 127.0.0.1 and 127.0.0.2 (Linux answers for all of 127/8) and the remote MX, an SMTP sink on 127.0.0.1,
// sees which one each message came from and the HELO it was greeted with. Pools, their assignment to
// domains and mailboxes, warmup caps on simulated days (a ManualClock), and the reverse DNS checks
// against a loopback DNS server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../../src/config.ts';
import { ManualClock } from '../../../src/core/clock.ts';
import { engine, eventsOf, orgMaker, startTestApp, type Org, type TestApp } from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';
import { type SinkMessage, type SmtpSink, startSmtpSink } from '../../support/smtp-sink.ts';
import { until } from '../../support/until.ts';

const HOST = 'mx.mailroom.test';
const HELO_2 = 'mta2.mailroom.test';
const IP_1 = '127.0.0.1';
const IP_2 = '127.0.0.2';
const REVERSE_1 = '1.0.0.127.in-addr.arpa';
const REVERSE_2 = '2.0.0.127.in-addr.arpa';

interface Sender {
  org: Org;
  domain: { id: string; name: string };
  mailboxes: Record<string, string>;
}

/** Shared set-up of both suites: DNS with the remote MX and the IPs' reverse zones, the sink, an app. */
async function environment(clock?: ManualClock) {
  const dns = await startDnsServer({
    'remote.test': { MX: [{ exchange: 'mx.remote.test', priority: 10 }] },
    'mx.remote.test': { A: [IP_1] },
    'busy.test': { MX: [{ exchange: 'mx.remote.test', priority: 10 }] },
    'v6only.test': { MX: [{ exchange: 'mx.v6only.test', priority: 10 }] },
    'mx.v6only.test': { AAAA: ['::1'] },
    [HOST]: { A: [IP_1] },
    [REVERSE_1]: { PTR: [HOST] },
    [HELO_2]: { A: [IP_2] },
    [REVERSE_2]: { PTR: [HELO_2] },
    // 127.0.0.2 is on Spamhaus ZEN (SBL); 127.0.0.1 is on no list.
    '2.0.0.127.zen.spamhaus.org': { A: ['127.0.0.2'] },
  });
  const sink = await startSmtpSink();
  const t = await startTestApp({
    workers: true,
    clock,
    env: {
      MAILROOM_HOSTNAME: HOST,
      MAILROOM_DNS_SERVERS: dns.address,
      // Long enough for a loaded host: a PTR look-up that times out is an error, not the verdict asked.
      MAILROOM_DNS_TIMEOUT: '3s',
      MAILROOM_DNS_TRIES: '1',
      MAILROOM_INBOUND_DNS_CACHE: '1ms',
      MAILROOM_OUTBOUND_PORT: String(sink.port),
      MAILROOM_OUTBOUND_IPS: `${IP_1},${IP_2}`,
      MAILROOM_OUTBOUND_IP_HELO: `${IP_2}=${HELO_2}`,
      MAILROOM_OUTBOUND_RETRY_SCHEDULE: '1s,2s',
      MAILROOM_OUTBOUND_CONNECT_TIMEOUT: '2s',
      MAILROOM_OUTBOUND_CONNECTIONS_PER_DOMAIN: '2',
      MAILROOM_OUTBOUND_COMMAND_TIMEOUT: '5s',
      MAILROOM_BLOCKLISTS_TIMEOUT: '300ms',
    },
  });
  return { dns, sink, t };
}

function helpers(
  get: () => { t: TestApp; dns: TestDnsServer; sink: SmtpSink },
  newOrg: (t: TestApp) => Promise<Org>,
) {
  const call = (as: Org, method: string, url: string, body?: unknown) =>
    get().t.call(method, url, { token: as.token, body });

  /** A new organisation with a verified domain and mailboxes on it. */
  async function sender(domainName: string, locals: string[]): Promise<Sender> {
    const { t, dns } = get();
    const org = await newOrg(t);
    const domain = await verifiedDomain(t, org.token, domainName, [dns]);
    const mailboxes: Record<string, string> = {};
    for (const local of locals) {
      const res = await call(org, 'POST', '/v1/mailboxes', {
        address: `${local}@${domainName}`,
        password: 'mailbox password 123',
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      mailboxes[local] = res.body.id;
    }
    return { org, domain, mailboxes };
  }

  async function send(as: Org, from: string, to: string): Promise<string> {
    const res = await call(as, 'POST', '/v1/messages/send', {
      from,
      to: [to],
      subject: `To ${to}`,
      text: 'Hello',
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.id;
  }

  /** What the sink received for these recipients, once it has all of them. */
  async function received(recipients: string[]): Promise<Map<string, SinkMessage>> {
    const { sink } = get();
    const found = await until(
      async () => sink.messages.filter((m) => m.rcptTo.some((r) => recipients.includes(r))),
      (list) => list.length >= recipients.length,
    );
    return new Map(found.map((m) => [m.rcptTo[0], m]));
  }

  async function pool(as: Org, body: Record<string, unknown>): Promise<any> {
    const res = await call(as, 'POST', '/v1/ip-pools', body);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  }

  const message = (as: Org, id: string) => call(as, 'GET', `/v1/messages/${id}`).then((r) => r.body);

  const sendingIps = async (as: Org) => {
    const res = await call(as, 'GET', '/v1/ip-pools/ips');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return new Map<string, any>(res.body.items.map((i: any) => [i.ip, i]));
  };

  return { call, sender, send, received, pool, message, sendingIps };
}

test('settings: HELO names belong to sending IPs; a warmup curve is named or a list of daily caps', () => {
  const ips = { MAILROOM_OUTBOUND_IPS: '127.0.0.1, 2001:DB8::1' };
  const config = loadConfig(
    {
      ...ips,
      MAILROOM_OUTBOUND_IP_HELO: '2001:db8:0::1=MTA6.Example.NET',
      MAILROOM_OUTBOUND_IP_WARMUP: '10,20',
    },
    null,
  );
  assert.deepEqual(config.sendingIps.addresses, ['127.0.0.1', '2001:db8::1']);
  assert.deepEqual(config.sendingIps.heloNames, { '2001:db8::1': 'mta6.example.net' });
  assert.deepEqual(config.sendingIps.warmup, { curve: 'custom', caps: [10, 20] });
  assert.deepEqual(loadConfig(ips, null).sendingIps.warmup, { curve: 'none', caps: null });
  assert.throws(
    () => loadConfig({ ...ips, MAILROOM_OUTBOUND_IP_HELO: '10.0.0.1=mta.example.net' }, null),
    /10\.0\.0\.1 not in MAILROOM_OUTBOUND_IPS/,
  );
  assert.throws(() => loadConfig({ ...ips, MAILROOM_OUTBOUND_IP_HELO: '127.0.0.1' }, null), /ip=host\.name/);
  assert.throws(
    () => loadConfig({ ...ips, MAILROOM_OUTBOUND_IP_WARMUP: 'quick' }, null),
    /none, slow, normal/,
  );
  assert.throws(() => loadConfig({ ...ips, MAILROOM_OUTBOUND_IP_WARMUP: '10,0' }, null), /daily caps/);
});

describe(`sending IPs and IP pools on ${engine}`, () => {
  let t: TestApp;
  let dns: TestDnsServer;
  let sink: SmtpSink;
  const newOrg = orgMaker('ippools');
  const h = helpers(() => ({ t, dns, sink }), newOrg);

  before(async () => {
    ({ dns, sink, t } = await environment());
  });
  after(async () => {
    await t?.close();
    await sink?.close();
    await dns?.close();
  });

  test('with no pool, mail leaves from every sending IP in turn, greeting with each IP’s HELO name', async () => {
    const { org } = await h.sender('turns.test', ['author']);
    const to = [1, 2, 3, 4].map((n) => `turns${n}@remote.test`);
    const ids: string[] = [];
    for (const rcpt of to) ids.push(await h.send(org, 'author@turns.test', rcpt));
    const got = await h.received(to);
    const from = [...got.values()].map((m) => m.remoteAddress);
    assert.deepEqual([...new Set(from)].sort(), [IP_1, IP_2]);
    for (const m of got.values()) assert.equal(m.helo, m.remoteAddress === IP_2 ? HELO_2 : HOST);
    // Each attempt records the address it left from.
    for (const [i, id] of ids.entries()) {
      const detail = await until(
        () => h.message(org, id),
        (m) => m.status === 'delivered',
      );
      assert.equal(detail.recipients[0].attempts_detail[0].source_ip, got.get(to[i])!.remoteAddress);
    }
  });

  test('under load a connection from any IP of the pool is reused, not closed for another', async () => {
    const { org } = await h.sender('load.test', ['author']);
    const to = Array.from({ length: 30 }, (_, n) => `load${n}@busy.test`);
    const before = sink.connections;
    const res = await h.call(org, 'POST', '/v1/messages/send/batch', {
      messages: to.map((rcpt) => ({ from: 'author@load.test', to: [rcpt], subject: 'Load', text: 'Hello' })),
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const got = await h.received(to);
    // Two connections (the limit per destination), one opened from each IP; every message reused one.
    assert.equal(sink.connections - before, 2);
    assert.deepEqual([...new Set([...got.values()].map((m) => m.remoteAddress))].sort(), [IP_1, IP_2]);
  });

  test('a domain’s pool, and a mailbox’s pool over it', async () => {
    const { org, domain, mailboxes } = await h.sender('assigned.test', ['plain', 'special']);
    const secondary = await h.pool(org, { name: 'Secondary', ips: [IP_2], warmup: 'none' });
    const primary = await h.pool(org, { name: 'Primary', ips: [IP_1], warmup: 'none' });
    const onDomain = await h.call(org, 'PUT', `/v1/ip-pools/${secondary.id}/domains/${domain.id}`);
    assert.equal(onDomain.status, 200, JSON.stringify(onDomain.body));
    assert.deepEqual([onDomain.body.target, onDomain.body.name], ['domain', 'assigned.test']);
    const onMailbox = await h.call(org, 'PUT', `/v1/ip-pools/${primary.id}/mailboxes/${mailboxes.special}`);
    assert.equal(onMailbox.status, 200, JSON.stringify(onMailbox.body));
    assert.equal(onMailbox.body.name, 'special@assigned.test');

    const plain = ['plain1@remote.test', 'plain2@remote.test', 'plain3@remote.test'];
    const special = ['special1@remote.test', 'special2@remote.test', 'special3@remote.test'];
    for (const rcpt of plain) await h.send(org, 'plain@assigned.test', rcpt);
    for (const rcpt of special) await h.send(org, 'special@assigned.test', rcpt);
    const got = await h.received([...plain, ...special]);
    for (const rcpt of plain) {
      assert.equal(got.get(rcpt)!.remoteAddress, IP_2, rcpt);
      assert.equal(got.get(rcpt)!.helo, HELO_2);
    }
    for (const rcpt of special) {
      assert.equal(got.get(rcpt)!.remoteAddress, IP_1, rcpt);
      assert.equal(got.get(rcpt)!.helo, HOST);
    }

    const detail = await h.call(org, 'GET', `/v1/ip-pools/${secondary.id}`);
    assert.deepEqual([detail.body.domains, detail.body.mailboxes, detail.body.ips], [1, 0, [IP_2]]);
    const listed = await h.call(org, 'GET', `/v1/ip-pools/${primary.id}/mailboxes`);
    assert.deepEqual(
      listed.body.items.map((a: any) => a.name),
      ['special@assigned.test'],
    );
    const assigned = await eventsOf(t, org, 'ip_pool.assigned');
    assert.equal(assigned.length, 2);

    // Without its own pool the mailbox follows its domain's.
    const removed = await h.call(org, 'DELETE', `/v1/ip-pools/${primary.id}/mailboxes/${mailboxes.special}`);
    assert.equal(removed.status, 204);
    assert.equal(
      (await h.call(org, 'DELETE', `/v1/ip-pools/${primary.id}/mailboxes/${mailboxes.special}`)).status,
      404,
    );
    await h.send(org, 'special@assigned.test', 'special4@remote.test');
    const after = await h.received(['special4@remote.test']);
    assert.equal(after.get('special4@remote.test')!.remoteAddress, IP_2);
  });

  test('with no pool assigned, the organisation’s default pool is used', async () => {
    const { org } = await h.sender('defaults.test', ['author']);
    const first = await h.pool(org, { name: 'First', ips: [IP_1], is_default: true });
    assert.equal(first.is_default, true);
    assert.equal(first.warmup, 'normal');
    assert.deepEqual(first.warmup_caps.slice(0, 3), [50, 100, 200]);
    // A second default takes the place of the first.
    const second = await h.pool(org, { name: 'Second', ips: [IP_2], is_default: true });
    assert.equal((await h.call(org, 'GET', `/v1/ip-pools/${first.id}`)).body.is_default, false);
    const to = ['default1@remote.test', 'default2@remote.test'];
    for (const rcpt of to) await h.send(org, 'author@defaults.test', rcpt);
    const got = await h.received(to);
    for (const rcpt of to) assert.equal(got.get(rcpt)!.remoteAddress, IP_2);

    const ips = await h.sendingIps(org);
    assert.equal(ips.get(IP_1).used_without_pool, false);
    assert.equal(ips.get(IP_2).used_without_pool, true);
    // Its cap today is the normal curve's on the IP's warmup day.
    const day = ips.get(IP_2).warmup.day ?? 1;
    assert.deepEqual(
      ips.get(IP_2).pools.map((p: any) => [p.name, p.is_default, p.cap_today]),
      [['Second', true, second.warmup_caps[day - 1]]],
    );
    assert.equal((await h.call(org, 'DELETE', `/v1/ip-pools/${second.id}`)).status, 204);
    assert.equal((await h.call(org, 'GET', `/v1/ip-pools/${second.id}`)).status, 404);
  });

  test('an MX with only IPv6 addresses is not reached from IPv4 sending IPs: deferred, never bounced', async () => {
    const { org } = await h.sender('family.test', ['author']);
    const id = await h.send(org, 'author@family.test', 'someone@v6only.test');
    const detail = await until(
      () => h.message(org, id),
      (m) => m.recipients[0].attempts >= 1 && m.recipients[0].last_response !== null,
    );
    const [recipient] = detail.recipients;
    assert.equal(recipient.status, 'queued');
    assert.match(recipient.last_response, /only IPv6 addresses/);
    assert.equal(recipient.attempts_detail[0].outcome, 'deferred');
    assert.equal((await h.call(org, 'POST', '/v1/queue/cancel', { message_id: id })).status, 200);
  });

  test('pools take only the installation’s sending IPs, and stay within their organisation', async () => {
    const { org, domain, mailboxes } = await h.sender('rules.test', ['author']);
    const other = await h.sender('others.test', ['someone']);

    const foreign = await h.call(org, 'POST', '/v1/ip-pools', { name: 'Bad', ips: [IP_1, '10.9.9.9'] });
    assert.equal(foreign.status, 422, JSON.stringify(foreign.body));
    assert.equal(foreign.body.errors[0].field, 'ips');
    assert.match(foreign.body.detail, /10\.9\.9\.9 is not a sending IP/);
    assert.equal(
      (await h.call(org, 'POST', '/v1/ip-pools', { name: 'Bad', ips: ['not-an-ip'] })).status,
      422,
    );
    assert.equal((await h.call(org, 'POST', '/v1/ip-pools', { name: 'Bad', ips: [] })).status, 400);
    assert.equal(
      (await h.call(org, 'POST', '/v1/ip-pools', { name: 'Bad', ips: [IP_1], warmup: [0] })).status,
      400,
    );
    assert.equal(
      (await h.call(org, 'POST', '/v1/ip-pools', { name: 'Bad', ips: [IP_1], warmup: 'sometimes' })).status,
      400,
    );

    const mine = await h.pool(org, { name: 'Mine', ips: [IP_1, IP_1, IP_2], warmup: [10, 20] });
    assert.deepEqual(mine.ips, [IP_1, IP_2]);
    assert.deepEqual([mine.warmup, mine.warmup_caps], ['custom', [10, 20]]);
    assert.equal((await h.call(org, 'POST', '/v1/ip-pools', { name: 'Mine', ips: [IP_1] })).status, 409);
    const patched = await h.call(org, 'PATCH', `/v1/ip-pools/${mine.id}`, { ips: ['10.9.9.9'] });
    assert.equal(patched.status, 422);
    const renamed = await h.call(org, 'PATCH', `/v1/ip-pools/${mine.id}`, {
      name: 'Renamed',
      warmup: 'fast',
    });
    assert.equal(renamed.status, 200, JSON.stringify(renamed.body));
    assert.deepEqual(
      [renamed.body.name, renamed.body.warmup, renamed.body.ips],
      ['Renamed', 'fast', [IP_1, IP_2]],
    );

    // Another organisation sees nothing of it, and neither side can assign across.
    for (const [method, url] of [
      ['GET', `/v1/ip-pools/${mine.id}`],
      ['PATCH', `/v1/ip-pools/${mine.id}`],
      ['DELETE', `/v1/ip-pools/${mine.id}`],
      ['GET', `/v1/ip-pools/${mine.id}/domains`],
      ['PUT', `/v1/ip-pools/${mine.id}/domains/${other.domain.id}`],
      ['PUT', `/v1/ip-pools/${mine.id}/mailboxes/${other.mailboxes.someone}`],
    ]) {
      const res = await h.call(other.org, method, url, method === 'PATCH' ? { name: 'Taken' } : undefined);
      assert.equal(res.status, 404, `${method} ${url}: ${JSON.stringify(res.body)}`);
    }
    assert.equal((await h.call(other.org, 'GET', '/v1/ip-pools')).body.total, 0);
    assert.equal(
      (await h.call(org, 'PUT', `/v1/ip-pools/${mine.id}/domains/${other.domain.id}`)).status,
      404,
    );
    assert.equal(
      (await h.call(org, 'PUT', `/v1/ip-pools/${mine.id}/mailboxes/${other.mailboxes.someone}`)).status,
      404,
    );

    // A pool in use is not deleted.
    assert.equal((await h.call(org, 'PUT', `/v1/ip-pools/${mine.id}/domains/${domain.id}`)).status, 200);
    assert.equal(
      (await h.call(org, 'PUT', `/v1/ip-pools/${mine.id}/mailboxes/${mailboxes.author}`)).status,
      200,
    );
    const refused = await h.call(org, 'DELETE', `/v1/ip-pools/${mine.id}`);
    assert.equal(refused.status, 409);
    assert.equal(refused.body.code, 'pool_in_use');
    assert.equal((await h.call(org, 'DELETE', `/v1/ip-pools/${mine.id}/domains/${domain.id}`)).status, 204);
    assert.equal(
      (await h.call(org, 'DELETE', `/v1/ip-pools/${mine.id}/mailboxes/${mailboxes.author}`)).status,
      204,
    );
    assert.equal((await h.call(org, 'DELETE', `/v1/ip-pools/${mine.id}`)).status, 204);
    const types = (await eventsOf(t, org, 'ip_pool.*')).map((e) => e.type).sort();
    assert.deepEqual(types, [
      'ip_pool.assigned',
      'ip_pool.assigned',
      'ip_pool.created',
      'ip_pool.deleted',
      'ip_pool.unassigned',
      'ip_pool.unassigned',
      'ip_pool.updated',
    ]);
  });

  test('reverse DNS of every sending IP: PTR, forward confirmation and HELO name; blocklist status', async () => {
    const { org } = await h.sender('checks.test', ['author']);
    await h.pool(org, { name: 'Checked', ips: [IP_1, IP_2], warmup: 'none' });
    // The check queued at start (the job queue) has looked at both.
    const checked = await until(
      () => h.sendingIps(org),
      (ips) => ips.get(IP_1).ptr.status !== 'unchecked' && ips.get(IP_2).ptr.status !== 'unchecked',
    );
    assert.deepEqual(
      [checked.get(IP_1).ptr.status, checked.get(IP_1).ptr.names, checked.get(IP_1).helo_name],
      ['pass', [HOST], HOST],
    );

    const check = async () => {
      const res = await h.call(org, 'POST', '/v1/ip-pools/ips/check', { ips: [IP_2] });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body.items.find((i: any) => i.ip === IP_2);
    };

    const matching = await check();
    assert.deepEqual(
      [matching.ptr.status, matching.ptr.forward_confirmed, matching.ptr.helo_matches, matching.helo_name],
      ['pass', [HELO_2], true, HELO_2],
    );
    assert.deepEqual(matching.ptr.findings, []);
    // Its blocklist status comes from the blocklists module's check.
    assert.equal(matching.blocklists.listed, true);
    assert.equal(matching.blocklists.listings[0].list, 'zen.spamhaus.org');
    assert.match(matching.blocklists.listings[0].meaning, /SBL/);
    assert.ok(matching.blocklists.checked_at);

    dns.delete(REVERSE_2);
    const missing = await check();
    assert.equal(missing.ptr.status, 'fail');
    assert.deepEqual(
      missing.ptr.findings.map((f: any) => f.code),
      ['ptr_missing'],
    );

    dns.set(REVERSE_2, { PTR: [HELO_2] });
    dns.set(HELO_2, { A: ['127.0.0.9'] });
    const elsewhere = await check();
    assert.equal(elsewhere.ptr.status, 'fail');
    assert.deepEqual(elsewhere.ptr.names, [HELO_2]);
    assert.deepEqual(elsewhere.ptr.forward_confirmed, []);
    assert.equal(elsewhere.ptr.findings[0].code, 'ptr_forward_mismatch');
    assert.match(elsewhere.ptr.findings[0].message, /127\.0\.0\.9/);

    dns.set(HELO_2, { A: [IP_2] });
    dns.set(REVERSE_2, { PTR: ['other.mailroom.test'] });
    dns.set('other.mailroom.test', { A: [IP_2] });
    const otherName = await check();
    assert.equal(otherName.ptr.status, 'fail');
    assert.deepEqual(otherName.ptr.forward_confirmed, ['other.mailroom.test']);
    assert.equal(otherName.ptr.helo_matches, false);
    assert.equal(otherName.ptr.findings[0].code, 'helo_mismatch');

    // A resolver failure is an error that settles nothing: the names last seen stay.
    dns.set(REVERSE_2, { servfail: true });
    const failing = await check();
    assert.equal(failing.ptr.status, 'error');
    assert.equal(failing.ptr.findings[0].code, 'dns_error');
    assert.deepEqual(failing.ptr.names, ['other.mailroom.test']);
    assert.deepEqual(failing.ptr.forward_confirmed, ['other.mailroom.test']);

    dns.set(REVERSE_2, { PTR: [HELO_2] });
    assert.equal((await check()).ptr.status, 'pass');

    // The organisation whose pool has the IP hears of the failure once, and of the recovery.
    assert.equal((await eventsOf(t, org, 'sending_ip.ptr_failed')).length, 1);
    const passed = await eventsOf(t, org, 'sending_ip.ptr_passed');
    assert.equal(passed.length, 1);
    assert.equal(passed[0].data.ip, IP_2);

    const unknown = await h.call(org, 'POST', '/v1/ip-pools/ips/check', { ips: ['10.9.9.9'] });
    assert.equal(unknown.status, 422);
    const ips = await h.sendingIps(org);
    assert.equal(ips.get(IP_1).blocklists.listed, false);
    assert.equal(ips.get(IP_1).family, 4);
  });
});

describe(`warmup caps of sending IPs on ${engine}`, () => {
  let t: TestApp;
  let dns: TestDnsServer;
  let sink: SmtpSink;
  const clock = new ManualClock('2031-03-10T08:00:00Z');
  const newOrg = orgMaker('ipwarmup');
  const h = helpers(() => ({ t, dns, sink }), newOrg);

  before(async () => {
    ({ dns, sink, t } = await environment(clock));
  });
  after(async () => {
    await t?.close();
    await sink?.close();
    await dns?.close();
  });

  test('an IP that used its cap gives way to the other; when both did, mail waits for the next day', async () => {
    const { org } = await h.sender('warm.test', ['author']);
    // 2 recipients a day per IP on day 1, 4 on day 2, then unlimited.
    await h.pool(org, { name: 'Warming', ips: [IP_1, IP_2], warmup: [2, 4], is_default: true });
    const to = [1, 2, 3, 4, 5, 6].map((n) => `warm${n}@remote.test`);
    const ids = new Map<string, string>();
    for (const rcpt of to) ids.set(rcpt, await h.send(org, 'author@warm.test', rcpt));

    // Four go, two from each IP; two wait, untried, with the reason.
    const settled = await until(
      async () => Promise.all([...ids.values()].map((id) => h.message(org, id))),
      (list) =>
        list.every(
          (m) =>
            m.recipients[0].status === 'delivered' ||
            (m.recipients[0].status === 'queued' && m.recipients[0].last_response !== null),
        ),
    );
    const delivered = settled.filter((m) => m.recipients[0].status === 'delivered');
    const waiting = settled.filter((m) => m.recipients[0].status === 'queued');
    assert.equal(delivered.length, 4);
    assert.equal(waiting.length, 2);
    const arrived = sink.messages.filter((m) => to.includes(m.rcptTo[0]));
    assert.equal(arrived.length, 4);
    assert.equal(arrived.filter((m) => m.remoteAddress === IP_1).length, 2);
    assert.equal(arrived.filter((m) => m.remoteAddress === IP_2).length, 2);
    for (const m of waiting) {
      const [r] = m.recipients;
      assert.equal(m.status, 'pending');
      assert.equal(r.attempts, 0);
      assert.deepEqual(r.attempts_detail, []);
      assert.match(r.last_response, /waiting for warmup capacity/);
      assert.match(r.last_response, /day 1: 2/);
    }
    const queue = await h.call(org, 'GET', '/v1/queue?status=queued');
    assert.equal(queue.body.items.length, 2);
    assert.ok(queue.body.items.every((i: any) => i.scheduled));

    const capped = await until(
      () => eventsOf(t, org, 'ip_pool.capped'),
      (events) => events.length > 0,
    );
    assert.equal(capped.length, 1);
    assert.equal(capped[0].data.day, '2031-03-10');
    assert.deepEqual(
      capped[0].data.ips.map((i: any) => [i.ip, i.warmup_day, i.cap]),
      [
        [IP_1, 1, 2],
        [IP_2, 1, 2],
      ],
    );
    const today = await until(
      () => h.sendingIps(org),
      (ips) => ips.get(IP_1).warmup.used_today === 2 && ips.get(IP_2).warmup.used_today === 2,
    );
    assert.deepEqual(
      [today.get(IP_1).warmup.first_used_on, today.get(IP_1).warmup.day, today.get(IP_1).pools[0].cap_today],
      ['2031-03-10', 1, 2],
    );

    // The next (simulated) day the caps are 4: the waiting mail goes.
    clock.advance(86_400_000);
    for (const m of waiting) {
      assert.equal((await h.call(org, 'POST', '/v1/queue/retry', { message_id: m.id })).status, 200);
    }
    for (const m of waiting) {
      const done = await until(
        () => h.message(org, m.id),
        (d) => d.status === 'delivered',
      );
      assert.equal(done.recipients[0].attempts, 1);
    }
    assert.equal(sink.messages.filter((m) => to.includes(m.rcptTo[0])).length, 6);
    const nextDay = await until(
      () => h.sendingIps(org),
      (ips) => ips.get(IP_1).warmup.used_today + ips.get(IP_2).warmup.used_today === 2,
    );
    assert.deepEqual([nextDay.get(IP_1).warmup.day, nextDay.get(IP_1).pools[0].cap_today], [2, 4]);
    assert.equal(
      nextDay.get(IP_1).warmup.cap_today,
      null,
      'mail with no pool: MAILROOM_OUTBOUND_IP_WARMUP none',
    );
  });
});
