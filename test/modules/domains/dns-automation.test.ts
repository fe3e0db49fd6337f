// DNS automation and registration through the public surface: provider accounts, publishing a
// domain's records through Cloudflare's API (the official SDK against a local server keeping its
// contract), and Namecheap search, purchase and name servers (its XML API, likewise). The loopback
// DNS server answers from what the Cloudflare server stores, so "publish, then verify" is real.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engine, signUpWithOrg, startTestApp, type TestApp } from '../../support/app.ts';
import { type CloudflareServer, servedBy, startCloudflareServer } from '../../support/cloudflare-server.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { startNamecheapServer, type NamecheapServer } from '../../support/namecheap-server.ts';

const HOST = 'mx.mailroom.test';

describe(`DNS automation and registration on ${engine}`, () => {
  let t: TestApp;
  let cf: CloudflareServer;
  let nc: NamecheapServer;
  let dns: TestDnsServer;
  let org: { token: string; orgId: string };

  before(async () => {
    cf = await startCloudflareServer();
    nc = await startNamecheapServer();
    dns = await startDnsServer({}, servedBy(cf));
    t = await startTestApp({
      env: {
        MAILROOM_HOSTNAME: HOST,
        MAILROOM_DNS_SERVERS: dns.address,
        MAILROOM_DNS_TIMEOUT: '500ms',
        MAILROOM_CLOUDFLARE_API_URL: cf.baseURL,
        MAILROOM_NAMECHEAP_API_URL: nc.apiUrl,
        MAILROOM_PROVIDER_TIMEOUT: '5s',
      },
    });
    org = await signUpWithOrg(t, 'automation@example.com', 'Automation');
  });
  after(async () => {
    await t?.close();
    await dns?.close();
    await cf?.close();
    await nc?.close();
  });

  const connect = async (body: Record<string, unknown>) =>
    t.call('POST', '/v1/provider-accounts', { token: org.token, body });
  const cloudflareAccount = async () => {
    const res = await connect({
      provider: 'cloudflare',
      name: 'Main zone',
      credentials: { api_token: cf.token },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };
  const namecheapAccount = async () => {
    const res = await connect({
      provider: 'namecheap',
      name: 'Registrar',
      credentials: { api_user: nc.apiUser, api_key: nc.apiKey, client_ip: nc.clientIp },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };
  const addDomain = async (name: string) => {
    const res = await t.call('POST', '/v1/domains', { token: org.token, body: { name } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };
  const apply = (id: string, body?: unknown) =>
    t.call('POST', `/v1/domains/${id}/dns/apply`, { token: org.token, body });
  const writes = () => cf.requests.filter((r) => r.method !== 'GET').length;

  test('provider accounts: credentials are checked, sealed at rest and never shown', async () => {
    const bad = await connect({
      provider: 'cloudflare',
      name: 'Bad',
      credentials: { api_token: 'x'.repeat(40) },
    });
    assert.equal(bad.status, 422);
    assert.equal(bad.body.code, 'provider_auth_failed');
    assert.doesNotMatch(JSON.stringify(bad.body), /x{40}/);
    const shape = await connect({ provider: 'cloudflare', name: 'Shape', credentials: { token: 'abc' } });
    assert.equal(shape.status, 422);
    assert.match(shape.body.detail, /credentials/);
    const wrongKey = await connect({
      provider: 'namecheap',
      name: 'Bad',
      credentials: { api_user: nc.apiUser, api_key: 'not-the-key', client_ip: nc.clientIp },
    });
    assert.equal(wrongKey.status, 422);
    assert.equal(wrongKey.body.code, 'provider_auth_failed');

    const account = await cloudflareAccount();
    assert.equal(account.kind, 'dns');
    assert.equal(account.credential_hint, `…${cf.token.slice(-4)}`);
    const listed = await t.call('GET', '/v1/provider-accounts', { token: org.token });
    assert.doesNotMatch(JSON.stringify(listed.body), new RegExp(cf.token));
    const stored = await t.app.database.query<{ credentials: string }>(
      'select credentials from provider_accounts where id = $1',
      [account.id],
    );
    assert.match(stored.rows[0].credentials, /^v1\./);
    assert.ok(!stored.rows[0].credentials.includes(cf.token));

    const other = await signUpWithOrg(t, 'automation-other@example.com', 'Other');
    assert.equal(
      (await t.call('GET', `/v1/provider-accounts/${account.id}`, { token: other.token })).status,
      404,
    );
    const domain = await addDomain('isolated.example');
    const borrowed = await t.call('POST', `/v1/domains/${domain.id}/dns/apply`, {
      token: other.token,
      body: { provider_account_id: account.id },
    });
    assert.equal(borrowed.status, 404);
  });

  test('apply publishes every record through Cloudflare, verifies, and a second run changes nothing', async () => {
    const account = await cloudflareAccount();
    cf.addZone('automated.example');
    cf.addRecord('automated.example', { type: 'TXT', name: '@', content: 'google-site-verification=abc123' });
    cf.addRecord('automated.example', { type: 'A', name: 'www', content: '192.0.2.10' });
    const before = cf.records('automated.example').map((r) => ({ ...r }));
    const domain = await addDomain('automated.example');

    const first = await apply(domain.id, { provider_account_id: account.id });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.zone, 'automated.example');
    assert.deepEqual(
      first.body.results.map((r: any) => [r.purpose, r.action]),
      [
        ['ownership', 'created'],
        ['mx', 'created'],
        ['spf', 'created'],
        ['dkim', 'created'],
        ['dmarc', 'created'],
        ['return_path', 'created'],
        ['mta_sts', 'created'],
        ['mta_sts_policy', 'created'],
        ['tls_rpt', 'created'],
      ],
    );
    assert.equal(first.body.domain.status, 'verified', JSON.stringify(first.body.domain.dns_checks, null, 1));
    assert.ok(first.body.domain.dns_checks.every((c: any) => c.status === 'verified'));
    assert.equal(first.body.domain.dns_provider_account_id, account.id);

    // The DKIM value went out as 255-byte strings; records that were not ours are untouched.
    const dkim = cf.records('automated.example').find((r) => r.name.includes('._domainkey.'))!;
    assert.match(dkim.content, /^"[^"]{1,255}" "[^"]{1,255}"/);
    for (const r of before) {
      assert.deepEqual(
        cf.records('automated.example').find((x) => x.id === r.id),
        r,
      );
    }

    const writesBefore = writes();
    const second = await apply(domain.id);
    assert.equal(second.status, 200);
    assert.ok(second.body.results.every((r: any) => r.action === 'unchanged'));
    assert.equal(writes(), writesBefore, 'the second run wrote nothing');

    // A record of ours edited in the console is put back; a rotation publishes the new key too.
    const mx = cf.records('automated.example').find((r) => r.type === 'MX')!;
    cf.addRecord('automated.example', { type: 'TXT', name: '_dmarc-unrelated', content: 'x' });
    const rotated = await t.call('POST', `/v1/domains/${domain.id}/dkim/rotate`, { token: org.token });
    assert.equal(rotated.status, 201);
    const third = await apply(domain.id);
    const actions = Object.fromEntries(
      third.body.results.map((r: any) => [`${r.purpose}:${r.host}`, r.action]),
    );
    assert.equal(actions[`dkim:${rotated.body.selector}._domainkey.automated.example`], 'created');
    assert.equal(actions['mx:automated.example'], 'unchanged');
    assert.ok(cf.records('automated.example').some((r) => r.id === mx.id));
    const keys = third.body.domain.dkim_keys.map((k: any) => [k.selector, k.state]);
    assert.deepEqual(
      keys.find((k: any) => k[0] === rotated.body.selector),
      [rotated.body.selector, 'active'],
    );
  });

  test('records that are not ours are reported, never overwritten: an existing SPF, DMARC, CNAME', async () => {
    const account = await cloudflareAccount();
    cf.addZone('shared.example');
    cf.addRecord('shared.example', {
      type: 'TXT',
      name: '@',
      content: 'v=spf1 include:_spf.google.com ~all',
    });
    cf.addRecord('shared.example', { type: 'TXT', name: '_dmarc', content: 'v=DMARC1; p=reject' });
    cf.addRecord('shared.example', { type: 'CNAME', name: 'bounces', content: 'bounce.other.example' });
    cf.addRecord('shared.example', { type: 'MX', name: '@', content: 'mx.legacy.example', priority: 5 });
    const before = cf.records('shared.example').map((r) => ({ ...r }));
    const domain = await addDomain('shared.example');
    const res = await apply(domain.id, { provider_account_id: account.id });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const by = Object.fromEntries(res.body.results.map((r: any) => [r.purpose, r]));
    assert.equal(by.spf.action, 'skipped');
    assert.equal(
      by.spf.detail,
      `an SPF record not managed by Mailroom exists; a domain may have only one, so merge by hand: v=spf1 include:_spf.google.com a:${HOST} ~all`,
    );
    assert.equal(by.dmarc.action, 'unchanged');
    assert.equal(by.return_path.action, 'skipped');
    assert.match(by.return_path.detail, /already has a CNAME to bounce\.other\.example/);
    assert.equal(by.mx.action, 'created');
    for (const r of before) {
      assert.deepEqual(
        cf.records('shared.example').find((x) => x.id === r.id),
        r,
      );
    }
    const checks = Object.fromEntries(res.body.domain.dns_checks.map((c: any) => [c.purpose, c]));
    assert.equal(checks.spf.status, 'mismatch');
    assert.equal(checks.dmarc.status, 'verified');
    assert.equal(checks.mx.status, 'verified');
    assert.match(checks.mx.warnings[0], /mail goes first to mx\.legacy\.example \(5\)/);
    assert.equal(res.body.domain.status, 'pending');
  });

  test('provider errors: no DNS account, zone missing, revoked token, rate limit, a registrar used as DNS', async () => {
    const domain = await addDomain('nozone.example');
    const none = await apply(domain.id);
    assert.equal(none.status, 422);
    assert.match(none.body.detail, /no DNS provider account/);

    const account = await cloudflareAccount();
    const missing = await apply(domain.id, { provider_account_id: account.id });
    assert.equal(missing.status, 422);
    assert.equal(missing.body.code, 'zone_not_found');
    assert.match(missing.body.detail, /no Cloudflare zone for nozone\.example/);

    cf.addZone('nozone.example');
    cf.rateLimitNext(1, 120);
    const limited = await apply(domain.id, { provider_account_id: account.id });
    assert.equal(limited.status, 429);
    assert.equal(limited.body.code, 'provider_rate_limited');
    assert.equal(limited.headers['retry-after'], '120');

    const registrar = await namecheapAccount();
    const wrongKind = await apply(domain.id, { provider_account_id: registrar.id });
    assert.equal(wrongKind.status, 422);
    assert.match(wrongKind.body.detail, /namecheap is not a DNS provider/);

    // Replacement credentials Cloudflare refuses are not kept: the account goes on working.
    const refused = await t.call('PATCH', `/v1/provider-accounts/${account.id}`, {
      token: org.token,
      body: { credentials: { api_token: 'y'.repeat(40) } },
    });
    assert.equal(refused.status, 422);
    assert.equal(refused.body.code, 'provider_auth_failed');
    const works = await apply(domain.id, { provider_account_id: account.id });
    assert.equal(works.status, 200, JSON.stringify(works.body));
    const unknown = await apply(domain.id, { provider_account_id: '01900000-0000-7000-8000-000000000000' });
    assert.equal(unknown.status, 404);
  });

  test('Namecheap: search with prices, purchase adds the domain, name servers, refusals', async () => {
    const account = await namecheapAccount();
    nc.taken.add('taken-name.com');
    nc.premium.set('premium.io', '2500.00');
    const search = await t.call('POST', '/v1/domains/search', {
      token: org.token,
      body: {
        provider_account_id: account.id,
        query: 'fresh-name',
        tlds: ['com', 'net'],
        names: ['taken-name.com', 'premium.io'],
      },
    });
    assert.equal(search.status, 200, JSON.stringify(search.body));
    const by = Object.fromEntries(search.body.results.map((r: any) => [r.name, r]));
    assert.deepEqual(
      [by['fresh-name.com'].available, by['fresh-name.com'].price, by['fresh-name.com'].currency],
      [true, nc.prices.get('com'), 'USD'],
    );
    assert.equal(by['fresh-name.net'].price, nc.prices.get('net'));
    assert.equal(by['taken-name.com'].available, false);
    assert.deepEqual([by['premium.io'].premium, by['premium.io'].price], [true, '2500.00']);
    const suffix = await t.call('POST', '/v1/domains/search', {
      token: org.token,
      body: { provider_account_id: account.id, names: ['co.uk'] },
    });
    assert.equal(suffix.status, 422);

    const contact = {
      first_name: 'Ada',
      last_name: 'Lovelace',
      address1: '12 St James Square',
      city: 'London',
      state_province: 'London',
      postal_code: 'SW1Y 4JH',
      country: 'GB',
      phone: '+44.2070000000',
      email: 'ada@example.com',
    };
    const bought = await t.call('POST', '/v1/domains/purchase', {
      token: org.token,
      body: {
        name: 'Fresh-Name.com',
        provider_account_id: account.id,
        years: 2,
        contact,
        nameservers: ['ns1.example.net', 'ns2.example.net'],
      },
    });
    assert.equal(bought.status, 201, JSON.stringify(bought.body));
    assert.equal(bought.body.domain.name, 'fresh-name.com');
    assert.equal(bought.body.domain.status, 'pending');
    assert.equal(bought.body.registration.registered, true);
    const registration = nc.registrations.find((r) => r.name === 'fresh-name.com')!;
    assert.equal(registration.years, 2);
    assert.deepEqual(registration.nameservers, ['ns1.example.net', 'ns2.example.net']);
    for (const role of ['Registrant', 'Tech', 'Admin', 'AuxBilling'] as const) {
      assert.equal(registration.contacts[role].EmailAddress, 'ada@example.com');
    }

    const again = await t.call('POST', '/v1/domains/purchase', {
      token: org.token,
      body: { name: 'taken-name.com', provider_account_id: account.id, contact },
    });
    assert.equal(again.status, 409);
    assert.match(again.body.detail, /taken-name\.com is not available/);
    const badContact = await t.call('POST', '/v1/domains/purchase', {
      token: org.token,
      body: {
        name: 'other-name.com',
        provider_account_id: account.id,
        contact: { ...contact, phone: '555-0100' },
      },
    });
    assert.equal(badContact.status, 400);

    const ns = await t.call('PUT', `/v1/domains/${bought.body.domain.id}/nameservers`, {
      token: org.token,
      body: {
        provider_account_id: account.id,
        nameservers: ['Ada.NS.Cloudflare.com.', 'bob.ns.cloudflare.com'],
      },
    });
    assert.equal(ns.status, 204, JSON.stringify(ns.body));
    assert.deepEqual(nc.nameservers.get('fresh-name.com'), [
      'ada.ns.cloudflare.com',
      'bob.ns.cloudflare.com',
    ]);

    nc.throttleNext(1);
    const throttled = await t.call('POST', '/v1/domains/search', {
      token: org.token,
      body: { provider_account_id: account.id, names: ['another.com'] },
    });
    assert.equal(throttled.status, 429);
    assert.equal(throttled.body.code, 'provider_rate_limited');
    const audit = await t.call('GET', `/v1/organizations/${org.orgId}/audit-log?action=domain.purchase`, {
      token: org.token,
    });
    assert.equal(audit.status, 200);
    assert.ok(audit.body.items.some((i: any) => i.target_id === bought.body.domain.id));
  });
});
