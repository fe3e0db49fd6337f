// Domains through the public surface: names, DKIM keys, required records, and verification against
// two real DNS servers on loopback (UDP and TCP) standing in for two public resolvers.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RECHECK_QUEUE } from '../../../src/modules/domains/jobs.ts';
import { engine, signUpWithOrg, startTestApp, type TestApp } from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { publish, requiredRecords } from '../../support/domains.ts';
import { until } from '../../support/until.ts';

const HOST = 'mx.mailroom.test';

interface Org {
  token: string;
  orgId: string;
}

let counter = 0;
const freshOrg = (t: TestApp): Promise<Org> => {
  counter++;
  return signUpWithOrg(t, `domains${counter}@example.com`, `Domains ${counter}`);
};

describe(`domains on ${engine}`, () => {
  let t: TestApp;
  let first: TestDnsServer;
  let second: TestDnsServer;
  let servers: TestDnsServer[];
  let org: Org;

  before(async () => {
    first = await startDnsServer();
    second = await startDnsServer();
    servers = [first, second];
    t = await startTestApp({
      workers: true,
      env: {
        MAILROOM_HOSTNAME: HOST,
        MAILROOM_DNS_SERVERS: `${first.address},${second.address}`,
        MAILROOM_DNS_TIMEOUT: '300ms',
        MAILROOM_DNS_TRIES: '1',
        MAILROOM_DKIM_ROTATION_GRACE: '1s',
      },
    });
    org = await freshOrg(t);
  });
  after(async () => {
    await t?.close();
    await first?.close();
    await second?.close();
  });

  const add = async (name: string, body: Record<string, unknown> = {}, as = org) => {
    const res = await t.call('POST', '/v1/domains', { token: as.token, body: { name, ...body } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };
  const verify = async (id: string, as = org) => {
    const res = await t.call('POST', `/v1/domains/${id}/verify`, { token: as.token });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body;
  };
  const check = (verification: any, purpose: string) =>
    verification.dns_checks.find((c: any) => c.purpose === purpose);
  const addPublished = async (name: string, body: Record<string, unknown> = {}) => {
    const domain = await add(name, body);
    publish(servers, await requiredRecords(t, org.token, domain.id));
    return domain;
  };
  const eventsOf = async (as: Org, type: string) => {
    const res = await t.call('GET', `/v1/events?types=${type}&page_size=200`, { token: as.token });
    assert.equal(res.status, 200);
    return res.body.items as any[];
  };

  test('names are normalised (case, IDN to punycode, trailing dot)', async () => {
    const domain = await add('BÜCHER.Example.');
    assert.equal(domain.name, 'xn--bcher-kva.example');
    assert.equal(domain.unicode_name, 'bücher.example');
    assert.equal(domain.status, 'pending');
    assert.deepEqual(domain.verified, {
      ownership: false,
      mx: false,
      spf: false,
      dkim: false,
      dmarc: false,
      return_path: false,
    });
    const again = await t.call('POST', '/v1/domains', {
      token: org.token,
      body: { name: 'xn--bcher-kva.example' },
    });
    assert.equal(again.status, 409);
  });

  test('public suffixes and invalid names are refused with a clear 422', async () => {
    for (const [name, why] of [
      ['com', /public suffix/],
      ['co.uk', /public suffix/],
      ['github.io', /public suffix/],
      ['-bad-.example', /not a valid domain name/],
      ['a..example', /not a valid domain name/],
      ['127.0.0.1', /IP address/],
      ['localhost', /not a valid domain name/],
      ['under_score.example', /not a valid domain name/],
      ['', /required/],
    ] as const) {
      const res = await t.call('POST', '/v1/domains', { token: org.token, body: { name } });
      assert.equal(res.status, 422, `${name}: ${JSON.stringify(res.body)}`);
      assert.match(res.body.detail, why, name);
    }
    assert.equal((await add('example.co.uk')).name, 'example.co.uk');
  });

  test('list filters by status and name and paginates; other organisations see 404', async () => {
    const mine = await freshOrg(t);
    for (const n of ['alpha', 'beta', 'gamma']) await add(`${n}-list.example`, {}, mine);
    const page = await t.call('GET', '/v1/domains?page_size=2&name=-list', { token: mine.token });
    assert.equal(page.status, 200);
    assert.equal(page.body.total, 3);
    assert.equal(page.body.total_pages, 2);
    assert.deepEqual(
      page.body.items.map((d: any) => d.name),
      ['alpha-list.example', 'beta-list.example'],
    );
    const verified = await t.call('GET', '/v1/domains?status=verified', { token: mine.token });
    assert.equal(verified.body.total, 0);
    const bad = await t.call('GET', '/v1/domains?status=bogus', { token: mine.token });
    assert.equal(bad.status, 400);

    const other = await freshOrg(t);
    const id = page.body.items[0].id;
    for (const [method, path] of [
      ['GET', `/v1/domains/${id}`],
      ['PATCH', `/v1/domains/${id}`],
      ['DELETE', `/v1/domains/${id}`],
      ['GET', `/v1/domains/${id}/dns-records`],
      ['POST', `/v1/domains/${id}/verify`],
      ['POST', `/v1/domains/${id}/dkim/rotate`],
    ]) {
      const res = await t.call(method, path, {
        token: other.token,
        body: method === 'PATCH' ? {} : undefined,
      });
      assert.equal(res.status, 404, `${method} ${path}`);
    }
    const unknown = await t.call('GET', '/v1/domains/01900000-0000-7000-8000-000000000000', {
      token: mine.token,
    });
    assert.equal(unknown.status, 404);
  });

  test('update and delete emit events; settings shape the recommended records', async () => {
    const domain = await add('settings.example');
    const res = await t.call('PATCH', `/v1/domains/${domain.id}`, {
      token: org.token,
      body: {
        is_active: false,
        catch_all_target: 'inbox@settings.example',
        settings: { dmarc_policy: 'reject', dmarc_rua: 'dmarc@settings.example' },
      },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.is_active, false);
    assert.equal(res.body.catch_all_target, 'inbox@settings.example');
    assert.equal(res.body.settings.dmarc_policy, 'reject');
    const dmarc = (await requiredRecords(t, org.token, domain.id)).find((r) => r.purpose === 'dmarc')!;
    assert.equal(dmarc.value, 'v=DMARC1; p=reject; adkim=r; aspf=r; rua=mailto:dmarc@settings.example');
    const refused = await t.call('PATCH', `/v1/domains/${domain.id}`, {
      token: org.token,
      body: { catch_all_target: 'not an address', settings: { dmarc_policy: 'maybe' } },
    });
    assert.equal(refused.status, 400);
    const deleted = await t.call('DELETE', `/v1/domains/${domain.id}`, { token: org.token });
    assert.equal(deleted.status, 204);
    assert.equal((await t.call('GET', `/v1/domains/${domain.id}`, { token: org.token })).status, 404);
    const types = [
      ...(await eventsOf(org, 'domain.updated')),
      ...(await eventsOf(org, 'domain.deleted')),
    ].filter((e) => e.data.domain_id === domain.id);
    assert.deepEqual(types.map((e) => e.type).sort(), ['domain.deleted', 'domain.updated']);
    assert.deepEqual(types.find((e) => e.type === 'domain.updated').data.changes.sort(), [
      'catch_all_target',
      'is_active',
      'settings',
    ]);
  });

  test('DKIM keys: RSA 1024/2048/4096 and Ed25519, split TXT strings, private keys sealed', async () => {
    const rsa = await add('rsa4096.example', { dkim: { algorithm: 'rsa', bits: 4096 } });
    const key = rsa.dkim_keys[0];
    assert.equal(key.algorithm, 'rsa');
    assert.equal(key.bits, 4096);
    assert.equal(key.state, 'active');
    assert.match(key.selector, /^mr\d{8}$/);
    const dkim = (await requiredRecords(t, org.token, rsa.id)).find((r) => r.purpose === 'dkim')!;
    assert.equal(dkim.host, `${key.selector}._domainkey.rsa4096.example`);
    assert.ok(dkim.value.length > 700);
    assert.ok(dkim.strings!.length >= 3);
    assert.ok(dkim.strings!.every((s) => Buffer.byteLength(s) <= 255));
    assert.equal(dkim.strings!.join(''), dkim.value);
    assert.equal(dkim.zone_value, dkim.strings!.map((s) => `"${s}"`).join(' '));

    const zone = await t.call('GET', `/v1/domains/${rsa.id}/dns-records?format=zone`, { token: org.token });
    assert.equal(zone.status, 200);
    assert.match(String(zone.headers['content-type']), /^text\/plain/);
    const text = zone.body as string;
    assert.ok(
      text.includes(`${key.selector}._domainkey.rsa4096.example.\t3600\tIN\tTXT\t${dkim.zone_value}`),
    );
    assert.ok(text.includes(`rsa4096.example.\t3600\tIN\tMX\t10 ${HOST}.`));
    assert.ok(text.includes(`bounces.rsa4096.example.\t3600\tIN\tCNAME\t${HOST}.`));
    assert.ok(
      text
        .split('\n')
        .every((line) => !line.includes('"') || /^(\S+)\t\d+\tIN\tTXT\t(".{0,255}"\s?)+$/.test(line)),
    );

    const ed = await add('ed25519.example', { dkim: { algorithm: 'ed25519' } });
    assert.equal(ed.dkim_keys[0].algorithm, 'ed25519');
    assert.equal(Buffer.from(ed.dkim_keys[0].public_key, 'base64').length, 32);
    const edRecord = (await requiredRecords(t, org.token, ed.id)).find((r) => r.purpose === 'dkim')!;
    assert.match(edRecord.value, /^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);

    assert.equal((await add('rsa1024.example', { dkim: { bits: 1024 } })).dkim_keys[0].bits, 1024);
    assert.equal((await add('rsa2048.example')).dkim_keys[0].bits, 2048);
    const odd = await t.call('POST', '/v1/domains', {
      token: org.token,
      body: { name: 'odd.example', dkim: { bits: 3072 } },
    });
    assert.equal(odd.status, 400);

    assert.doesNotMatch(JSON.stringify(rsa), /PRIVATE KEY/);
    const stored = await t.app.database.query<{ private_key: string }>(
      'select private_key from domain_dkim_keys where domain_id = $1',
      [rsa.id],
    );
    assert.match(stored.rows[0].private_key, /^v1\./);
    assert.doesNotMatch(stored.rows[0].private_key, /PRIVATE KEY/);
  });

  test('the required records: ownership, MX, SPF, DKIM, DMARC, return path, optional MTA-STS and TLS-RPT', async () => {
    const domain = await add('records.example');
    const records = await requiredRecords(t, org.token, domain.id);
    const by = (p: string) => records.find((r) => r.purpose === p)!;
    assert.deepEqual(
      records.map((r) => [r.purpose, r.type, r.host, r.required]),
      [
        ['ownership', 'TXT', '_mailroom-verification.records.example', true],
        ['mx', 'MX', 'records.example', true],
        ['spf', 'TXT', 'records.example', true],
        ['dkim', 'TXT', `${domain.dkim_keys[0].selector}._domainkey.records.example`, true],
        ['dmarc', 'TXT', '_dmarc.records.example', true],
        ['return_path', 'CNAME', 'bounces.records.example', true],
        ['mta_sts', 'TXT', '_mta-sts.records.example', false],
        ['mta_sts_policy', 'CNAME', 'mta-sts.records.example', false],
        ['tls_rpt', 'TXT', '_smtp._tls.records.example', false],
      ],
    );
    assert.match(by('ownership').value, /^mailroom-verification=[A-Za-z0-9_-]{24}$/);
    assert.equal(by('mx').value, HOST);
    assert.equal(by('mx').priority, 10);
    assert.equal(by('spf').value, `v=spf1 a:${HOST} ~all`);
    assert.equal(by('dmarc').value, 'v=DMARC1; p=quarantine; adkim=r; aspf=r');
    assert.match(by('mta_sts').value, /^v=STSv1; id=[0-9a-f]{20}$/);
    assert.equal(by('tls_rpt').value, 'v=TLSRPTv1; rua=mailto:postmaster@records.example');
  });

  test('a fully published domain verifies on every resolver and emits domain.verified', async () => {
    const domain = await addPublished('good.example');
    const result = await verify(domain.id);
    assert.equal(result.status, 'verified', JSON.stringify(result.dns_checks, null, 1));
    assert.ok(Object.values(result.verified).every(Boolean));
    for (const c of result.dns_checks) {
      assert.equal(c.status, 'verified', `${c.purpose}: ${c.diagnosis}`);
      assert.deepEqual(
        c.resolvers.map((r: any) => [r.server, r.status]),
        [
          [first.address, 'verified'],
          [second.address, 'verified'],
        ],
      );
    }
    assert.ok(result.verified_at);
    const verified = (await eventsOf(org, 'domain.verified')).filter((e) => e.data.domain_id === domain.id);
    assert.equal(verified.length, 1);
    const changed = (await eventsOf(org, 'domain.dns_changed')).find((e) => e.data.domain_id === domain.id);
    assert.equal(changed.data.changes.length, 6);
    assert.equal(changed.data.status, 'verified');
    // Verifying again changes nothing and says nothing.
    await verify(domain.id);
    assert.equal(
      (await eventsOf(org, 'domain.verified')).filter((e) => e.data.domain_id === domain.id).length,
      1,
    );
  });

  test('diagnoses: two SPF records, the ten-lookup limit, SPF without Mailroom, SPF syntax', async () => {
    const domain = await addPublished('spf.example');
    const root = (spf: string[]) => ({ MX: [{ exchange: HOST, priority: 10 }], TXT: spf });
    const spfCheck = async () => check(await verify(domain.id), 'spf');

    for (const s of servers)
      s.set('spf.example', root([`v=spf1 a:${HOST} ~all`, 'v=spf1 include:other.example -all']));
    let c = await spfCheck();
    assert.equal(c.status, 'mismatch');
    assert.match(c.diagnosis, /2 SPF records .* RFC 7208 allows one/);

    // Twelve lookups through nested includes: a, include, (include, a, a, mx), a, mx, ptr, exists, include, (mx).
    for (const s of servers) {
      s.set('spf.example', root([`v=spf1 a:${HOST} include:l1.spf.example ~all`]));
      s.set('l1.spf.example', {
        TXT: ['v=spf1 include:l2.spf.example a mx ptr exists:x.example include:l3.spf.example'],
      });
      s.set('l2.spf.example', { TXT: ['v=spf1 a:one.example a:two.example mx:three.example ~all'] });
      s.set('l3.spf.example', { TXT: ['v=spf1 mx ~all'] });
    }
    c = await spfCheck();
    assert.equal(c.status, 'mismatch');
    assert.match(c.diagnosis, /SPF needs 12 DNS lookups; RFC 7208 allows 10/);

    for (const s of servers) s.set('spf.example', root(['v=spf1 include:_spf.google.com -all']));
    for (const s of servers) s.set('_spf.google.com', { TXT: ['v=spf1 ip4:192.0.2.0/24 -all'] });
    c = await spfCheck();
    assert.equal(c.status, 'mismatch');
    assert.equal(
      c.diagnosis,
      `SPF does not authorise Mailroom. Publish instead: TXT v=spf1 include:_spf.google.com a:${HOST} -all`,
    );

    // Authorised through an include counts.
    for (const s of servers) s.set('spf.example', root(['v=spf1 include:relay.spf.example -all']));
    for (const s of servers) s.set('relay.spf.example', { TXT: [`v=spf1 a:${HOST} -all`] });
    assert.equal((await spfCheck()).status, 'verified');

    for (const s of servers) s.set('spf.example', root([`v=spf1 a:${HOST} ip4:999.1.1.1 bogus ~all`]));
    c = await spfCheck();
    assert.equal(c.status, 'mismatch');
    assert.match(c.diagnosis, /SPF error: "ip4:999.1.1.1" is not an IPv4 address; unknown term "bogus"/);

    for (const s of servers) s.set('spf.example', root([`v=spf1 a:${HOST} +all`]));
    c = await spfCheck();
    assert.equal(c.status, 'verified');
    assert.match(c.warnings.join(), /\+all/);
  });

  test('diagnoses: DKIM key that differs, wrong algorithm, revoked; DMARC syntax; MX elsewhere; wrong token', async () => {
    const domain = await addPublished('diag.example');
    const records = await requiredRecords(t, org.token, domain.id);
    const dkimHost = records.find((r) => r.purpose === 'dkim')!.host;
    const other = await add('other-key.example');
    const otherKey = other.dkim_keys[0].public_key;

    for (const s of servers) {
      s.set(dkimHost, { TXT: [`v=DKIM1; k=rsa; p=${otherKey}`] });
      s.set('_dmarc.diag.example', { TXT: ['v=DMARC1; p=bogus; pct=150; rua=dmarc@diag.example'] });
      s.set('diag.example', {
        MX: [
          { exchange: 'mx1.elsewhere.example', priority: 10 },
          { exchange: 'mx2.elsewhere.example', priority: 20 },
        ],
        TXT: [`v=spf1 a:${HOST} ~all`],
      });
      s.set('_mailroom-verification.diag.example', { TXT: ['mailroom-verification=someone-elses-token'] });
    }
    let result = await verify(domain.id);
    assert.match(check(result, 'dkim').diagnosis, /differs from Mailroom's key for selector/);
    assert.equal(check(result, 'dkim').status, 'mismatch');
    const dmarc = check(result, 'dmarc');
    assert.equal(dmarc.status, 'mismatch');
    assert.match(dmarc.diagnosis, /p=bogus is not one of none, quarantine, reject/);
    assert.match(dmarc.diagnosis, /pct=150/);
    assert.match(dmarc.diagnosis, /rua has "dmarc@diag.example", which is not a mailto: or https: URI/);
    const mx = check(result, 'mx');
    assert.equal(mx.status, 'mismatch');
    assert.equal(
      mx.diagnosis,
      `MX points to 10 mx1.elsewhere.example, 20 mx2.elsewhere.example instead of ${HOST}. Publish: MX 10 ${HOST}`,
    );
    assert.deepEqual(mx.found, ['10 mx1.elsewhere.example', '20 mx2.elsewhere.example']);
    assert.match(
      check(result, 'ownership').diagnosis,
      /holds mailroom-verification=someone-elses-token, not this domain's token/,
    );
    assert.equal(result.status, 'pending');

    for (const s of servers) {
      s.set(dkimHost, { TXT: [`v=DKIM1; k=ed25519; p=${otherKey}`] });
      s.set('_dmarc.diag.example', { TXT: ['v=DMARC1; p=none', 'v=DMARC1; p=reject'] });
    }
    result = await verify(domain.id);
    assert.match(check(result, 'dkim').diagnosis, /publishes a k=ed25519 key; selector .* is an rsa key/);
    assert.match(check(result, 'dmarc').diagnosis, /2 DMARC records/);

    for (const s of servers) s.set(dkimHost, { TXT: ['v=DKIM1; k=rsa; p='] });
    result = await verify(domain.id);
    assert.match(check(result, 'dkim').diagnosis, /empty p=: the key is revoked/);
  });

  test('NXDOMAIN, SERVFAIL and timeouts give a per-record error with its reason, never a 5xx', async () => {
    const nowhere = await add('nowhere.example');
    const result = await verify(nowhere.id);
    assert.equal(result.status, 'pending');
    const mx = check(result, 'mx');
    assert.equal(mx.status, 'missing');
    assert.equal(mx.error.code, 'NXDOMAIN');
    assert.match(mx.error.reason, /nowhere\.example does not exist \(NXDOMAIN/);
    assert.match(mx.diagnosis, new RegExp(`Publish: MX 10 ${HOST}`));

    // Published broken from the start, so the minutely recheck (workers run here) cannot verify the
    // domain before the resolvers fail.
    const domain = await add('broken.example');
    const records = await requiredRecords(t, org.token, domain.id);
    const dkimHost = records.find((r) => r.purpose === 'dkim')!.host;
    publish(servers, records, (host, at) =>
      host === '_dmarc.broken.example' ? { servfail: true } : host === dkimHost ? { timeout: true } : at,
    );
    const broken = await verify(domain.id);
    const dmarc = check(broken, 'dmarc');
    assert.equal(dmarc.status, 'error');
    assert.equal(dmarc.error.code, 'SERVFAIL');
    assert.match(dmarc.error.reason, /answered SERVFAIL for _dmarc\.broken\.example/);
    const dkim = check(broken, 'dkim');
    assert.equal(dkim.status, 'error');
    assert.equal(dkim.error.code, 'TIMEOUT');
    assert.match(dkim.error.reason, /did not answer for .*_domainkey\.broken\.example in time/);
    // The resolvers' failure settles nothing: those two records were never verified, so still pending.
    assert.equal(broken.status, 'pending');
    assert.equal(broken.verified.mx, true);
  });

  test('a truncated UDP answer is fetched again over TCP and verifies', async () => {
    const domain = await addPublished('truncated.example', { dkim: { bits: 4096 } });
    const records = await requiredRecords(t, org.token, domain.id);
    const dkim = records.find((r) => r.purpose === 'dkim')!;
    for (const s of servers) s.set(dkim.host, { TXT: [dkim.strings!], truncate: true });
    const tcpBefore = first.queries.tcp;
    const result = await verify(domain.id);
    assert.equal(check(result, 'dkim').status, 'verified', check(result, 'dkim').diagnosis);
    assert.ok(first.queries.tcp > tcpBefore, 'the resolver retried over TCP');
    assert.equal(result.status, 'verified');
  });

  test('propagation: a record one resolver sees and the other does not yet', async () => {
    const domain = await add('propagating.example');
    publish([first], await requiredRecords(t, org.token, domain.id));
    const result = await verify(domain.id);
    const dmarc = check(result, 'dmarc');
    assert.equal(dmarc.status, 'propagating');
    assert.match(dmarc.diagnosis, new RegExp(`Seen by ${first.address} but not yet by ${second.address}`));
    assert.deepEqual(
      dmarc.resolvers.map((r: any) => r.status),
      ['verified', 'missing'],
    );
    assert.equal(result.status, 'pending');
  });

  test('the scheduled re-check moves a domain whose record disappeared to failed, with events', async () => {
    const domain = await addPublished('watched.example');
    assert.equal((await verify(domain.id)).status, 'verified');
    for (const s of servers) s.delete('_dmarc.watched.example');
    // Make it due now, as the passing of MAILROOM_DOMAIN_RECHECK_INTERVAL would.
    await t.app.database.query('update domains set next_check_at = now() where id = $1', [domain.id]);
    await t.app.jobs.send(RECHECK_QUEUE, {});
    const failed = await until(
      async () => (await t.call('GET', `/v1/domains/${domain.id}`, { token: org.token })).body,
      (d) => d.status === 'failed',
    );
    assert.equal(failed.verified.dmarc, false);
    assert.ok(new Date(failed.next_check_at) > new Date(failed.last_checked_at));
    const changed = (await eventsOf(org, 'domain.dns_changed')).find(
      (e) => e.data.domain_id === domain.id && e.data.status === 'failed',
    );
    assert.deepEqual(changed.data.changes, [
      {
        record: 'dmarc',
        verified: false,
        host: '_dmarc.watched.example',
        diagnosis:
          'No DMARC record at _dmarc.watched.example. Publish: TXT v=DMARC1; p=quarantine; adkim=r; aspf=r',
      },
    ]);
    const failedEvent = (await eventsOf(org, 'domain.failed')).find((e) => e.data.domain_id === domain.id);
    assert.deepEqual(failedEvent.data.records, ['dmarc']);
    assert.match(failedEvent.data.reason, /stopped verifying: dmarc/);

    // Published again: the next check recovers it.
    publish(servers, await requiredRecords(t, org.token, domain.id));
    assert.equal((await verify(domain.id)).status, 'verified');
  });

  test('the MTA-STS policy is served for mta-sts.<domain> once the domain is proven', async () => {
    const domain = await addPublished('sts.example');
    const fetchPolicy = (host: string) => t.call('GET', '/.well-known/mta-sts.txt', { headers: { host } });
    assert.equal((await fetchPolicy('mta-sts.sts.example')).status, 404, 'not before ownership is proven');
    await verify(domain.id);
    const policy = await fetchPolicy('mta-sts.sts.example');
    assert.equal(policy.status, 200);
    assert.equal(policy.body, `version: STSv1\nmode: testing\nmx: ${HOST}\nmax_age: 604800\n`);
    await t.call('PATCH', `/v1/domains/${domain.id}`, {
      token: org.token,
      body: { settings: { mta_sts_mode: 'enforce' } },
    });
    assert.match((await fetchPolicy('mta-sts.sts.example')).body, /mode: enforce/);
    // The published id follows the policy, so senders refetch it.
    const ids = (await requiredRecords(t, org.token, domain.id)).find((r) => r.purpose === 'mta_sts')!.value;
    assert.ok(
      !(await verify(domain.id)).dns_checks.some((c: any) => c.purpose === 'mta_sts' && c.expected !== ids),
    );
    assert.equal(check(await verify(domain.id), 'mta_sts').status, 'mismatch');
    assert.equal((await fetchPolicy('sts.example')).status, 404);
    assert.equal((await fetchPolicy('mta-sts.unknown.example')).status, 404);
  });

  test('DKIM rotation: published alongside, switches once verified, the old key retires after the grace', async () => {
    const domain = await addPublished('rotate.example');
    assert.equal((await verify(domain.id)).status, 'verified');
    const oldSelector = domain.dkim_keys[0].selector;

    const rotated = await t.call('POST', `/v1/domains/${domain.id}/dkim/rotate`, {
      token: org.token,
      body: { algorithm: 'rsa', bits: 1024 },
    });
    assert.equal(rotated.status, 201, JSON.stringify(rotated.body));
    assert.equal(rotated.body.state, 'pending');
    assert.notEqual(rotated.body.selector, oldSelector);
    const twice = await t.call('POST', `/v1/domains/${domain.id}/dkim/rotate`, { token: org.token });
    assert.equal(twice.status, 409);

    let dkims = (await requiredRecords(t, org.token, domain.id)).filter((r) => r.purpose === 'dkim');
    assert.deepEqual(
      dkims.map((r) => [r.selector, r.required]),
      [
        [oldSelector, true],
        [rotated.body.selector, false],
      ],
    );
    // Not yet published: the old key keeps signing and the domain stays verified.
    let result = await verify(domain.id);
    assert.equal(result.status, 'verified');
    assert.equal(check(result, 'dkim').status, 'verified');
    assert.deepEqual(
      result.dkim_keys.map((k: any) => [k.selector, k.state]),
      [
        [oldSelector, 'active'],
        [rotated.body.selector, 'pending'],
      ],
    );

    publish(servers, await requiredRecords(t, org.token, domain.id));
    result = await verify(domain.id);
    const states = Object.fromEntries(result.dkim_keys.map((k: any) => [k.selector, k]));
    assert.equal(states[rotated.body.selector].state, 'active');
    assert.equal(states[oldSelector].state, 'retiring');
    assert.ok(states[oldSelector].retire_after);
    const activated = (await eventsOf(org, 'domain.dkim_activated')).find(
      (e) => e.data.domain_id === domain.id,
    );
    assert.deepEqual(activated.data, {
      domain_id: domain.id,
      name: 'rotate.example',
      selector: rotated.body.selector,
      previous_selector: oldSelector,
    });

    // After the grace period (1 s here) the next check retires the old key and its record goes.
    await until(
      () => Promise.resolve(Date.now()),
      (now) => now > new Date(states[oldSelector].retire_after).getTime(),
    );
    result = await verify(domain.id);
    assert.deepEqual(
      result.dkim_keys.map((k: any) => [k.selector, k.state]),
      [[rotated.body.selector, 'active']],
    );
    dkims = (await requiredRecords(t, org.token, domain.id)).filter((r) => r.purpose === 'dkim');
    assert.deepEqual(
      dkims.map((r) => r.selector),
      [rotated.body.selector],
    );
    assert.equal(result.status, 'verified');
  });

  test('a second organisation takes a domain over only by proving ownership with its own token', async () => {
    const a = await freshOrg(t);
    const b = await freshOrg(t);
    const mine = await add('contested.example', {}, a);
    const recordsA = await requiredRecords(t, a.token, mine.id);
    publish(servers, recordsA);
    assert.equal((await verify(mine.id, a)).status, 'verified');

    const theirs = await add('contested.example', {}, b);
    assert.equal(theirs.status, 'pending');
    let result = await verify(theirs.id, b);
    assert.equal(check(result, 'ownership').status, 'mismatch');
    assert.equal(result.verified.ownership, false);

    // B's token is published next to A's (both TXT records at the verification host).
    const tokenB = (await requiredRecords(t, b.token, theirs.id)).find(
      (r) => r.purpose === 'ownership',
    )!.value;
    const tokenA = recordsA.find((r) => r.purpose === 'ownership')!.value;
    for (const s of servers) s.set('_mailroom-verification.contested.example', { TXT: [tokenA, tokenB] });
    publish(
      servers,
      (await requiredRecords(t, b.token, theirs.id)).filter((r) => r.purpose === 'dkim'),
    );

    result = await verify(theirs.id, b);
    assert.equal(result.verified.ownership, true);
    assert.equal(result.status, 'verified');
    const lost = await t.call('GET', `/v1/domains/${mine.id}`, { token: a.token });
    assert.equal(lost.body.status, 'failed');
    assert.equal(lost.body.verified.ownership, false);
    const failed = (await eventsOf(a, 'domain.failed')).find((e) => e.data.domain_id === mine.id);
    assert.match(failed.data.reason, /another organisation proved ownership/);
    assert.equal((await eventsOf(b, 'domain.failed')).length, 0, 'B hears nothing of A');

    // A's scheduled re-check sees A's token still there but never moves the name back.
    await t.app.database.query('update domains set next_check_at = now() where id = $1', [mine.id]);
    await t.app.jobs.send(RECHECK_QUEUE, {});
    const rechecked = await until(
      async () => (await t.call('GET', `/v1/domains/${mine.id}`, { token: a.token })).body,
      (d) => d.last_checked_at !== lost.body.last_checked_at,
    );
    assert.equal(rechecked.verified.ownership, false);
    assert.match(check(rechecked, 'ownership').diagnosis, /Another organisation holds contested\.example/);
    assert.equal(
      (await t.call('GET', `/v1/domains/${theirs.id}`, { token: b.token })).body.verified.ownership,
      true,
    );
  });

  test('API keys need the domains scope', async () => {
    const key = await t.call('POST', `/v1/organizations/${org.orgId}/api-keys`, {
      token: org.token,
      body: { name: 'reader', scopes: ['domains:read'] },
    });
    assert.equal(key.status, 201, JSON.stringify(key.body));
    assert.equal((await t.call('GET', '/v1/domains', { token: key.body.key })).status, 200);
    const write = await t.call('POST', '/v1/domains', {
      token: key.body.key,
      body: { name: 'scoped.example' },
    });
    assert.equal(write.status, 403);
  });
});
