// Provisioning through the public surface, against the local Namecheap and Cloudflare servers and a
// loopback DNS server that answers for a zone only once the registration points at Cloudflare's name
// servers (as delegation works): names registered, zones made and delegated, records published and
// verified, inboxes generated; a name that is not available fails alone; DNS that never propagates
// leaves its domain stuck with a diagnosis.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engine, type Org, orgMaker, startTestApp, type TestApp } from '../../support/app.ts';
import { type CloudflareServer, startCloudflareServer } from '../../support/cloudflare-server.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { type NamecheapServer, startNamecheapServer } from '../../support/namecheap-server.ts';
import { CONTACT, delegatedDns } from '../../support/provisioning.ts';
import { until } from '../../support/until.ts';

const HOST = 'mx.provision.test';
describe(`provisioning on ${engine}`, () => {
  const freshOrg = orgMaker('provision');
  let t: TestApp;
  let cf: CloudflareServer;
  let nc: NamecheapServer;
  let dns: TestDnsServer;
  let org: Org;
  let registrarId: string;
  let cloudflareId: string;

  const api = (method: string, url: string, body?: unknown, headers?: Record<string, string>, as = org) =>
    t.call(method, url, { token: as.token, body, headers });
  const provision = async (body: Record<string, unknown>, headers?: Record<string, string>) => {
    const res = await api('POST', '/v1/provision', body, headers);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.headers.location, `/v1/provision/${res.body.id}`);
    return res.body;
  };
  const ended = (id: string) =>
    until(
      async () => (await api('GET', `/v1/provision/${id}`)).body,
      (p) => !['queued', 'running'].includes(p.state),
      60_000,
    );
  const eventsOf = async (type: string) =>
    (await api('GET', `/v1/events?types=${type}&page_size=200`)).body.items as any[];

  before(async () => {
    cf = await startCloudflareServer();
    nc = await startNamecheapServer();
    dns = await startDnsServer({}, delegatedDns(cf, nc, new Set()));
    t = await startTestApp({
      workers: true,
      env: {
        MAILROOM_HOSTNAME: HOST,
        MAILROOM_DNS_SERVERS: dns.address,
        MAILROOM_DNS_TIMEOUT: '300ms',
        MAILROOM_DNS_TRIES: '1',
        MAILROOM_CLOUDFLARE_API_URL: cf.baseURL,
        MAILROOM_NAMECHEAP_API_URL: nc.apiUrl,
        MAILROOM_PROVIDER_TIMEOUT: '5s',
        MAILROOM_PROVISION_VERIFY_BACKOFF: '200ms',
      },
    });
    org = await freshOrg(t);
    const registrar = await api('POST', '/v1/provider-accounts', {
      provider: 'namecheap',
      name: 'Registrar',
      credentials: { api_user: nc.apiUser, api_key: nc.apiKey, client_ip: nc.clientIp },
    });
    assert.equal(registrar.status, 201, JSON.stringify(registrar.body));
    registrarId = registrar.body.id;
    const cloudflare = await api('POST', '/v1/provider-accounts', {
      provider: 'cloudflare',
      name: 'DNS',
      credentials: { api_token: cf.token },
    });
    assert.equal(cloudflare.status, 201, JSON.stringify(cloudflare.body));
    cloudflareId = cloudflare.body.id;
  });
  after(async () => {
    await t?.close();
    await dns?.close();
    await cf?.close();
    await nc?.close();
  });

  test('two names to working inboxes: registered, zone made and delegated, published, verified, inboxes made', async () => {
    const job = await provision({
      domains: ['Alpha-Mail.com', 'beta-mail.net'],
      register: { provider_account_id: registrarId, years: 1, contact: CONTACT },
      dns_provider_account_id: cloudflareId,
      inboxes: { count_per_domain: 5, pattern: 'first.last', daily_send_limit: 30 },
    });
    assert.equal(job.kind, 'provision');
    assert.equal(job.total, 2);
    const done = await ended(job.id);
    assert.equal(done.state, 'succeeded', JSON.stringify(done));
    assert.equal(done.done, 2);
    for (const [i, name] of ['alpha-mail.com', 'beta-mail.net'].entries()) {
      const d = done.domains[i];
      assert.equal(d.name, name);
      assert.deepEqual([d.step, d.state, d.error], ['done', 'done', null]);
      assert.ok(d.registration.order_id);
      assert.deepEqual(d.zone, {
        name,
        nameservers: ['ada.ns.cloudflare.com', 'bob.ns.cloudflare.com'],
        created: true,
      });
      assert.ok(d.dns.created >= 5, JSON.stringify(d.dns));
      assert.equal(d.verification.status, 'verified');
      assert.deepEqual(d.inboxes, { planned: 5, created: 5 });
      assert.deepEqual(
        d.timings.map((s: any) => s.step),
        ['register', 'domain', 'zone', 'nameservers', 'dns', 'verify', 'inboxes'],
      );
      assert.ok(d.timings.every((s: any) => s.finished_at >= s.started_at));
      // Registered once, pointed at the zone's name servers.
      assert.equal(nc.registrations.filter((r) => r.name === name).length, 1);
      assert.deepEqual(nc.nameservers.get(name), ['ada.ns.cloudflare.com', 'bob.ns.cloudflare.com']);
      const mailboxes = await api('GET', `/v1/mailboxes?domain_id=${d.domain_id}&page_size=100`);
      assert.equal(mailboxes.body.total, 5);
      assert.ok(mailboxes.body.items.every((m: any) => m.daily_send_limit === 30 && m.password_exportable));
      const domain = await api('GET', `/v1/domains/${d.domain_id}`);
      assert.equal(domain.body.status, 'verified');
    }
    assert.deepEqual(
      [...cf.createdZones].sort(),
      ['alpha-mail.com', 'beta-mail.net'],
      'one zone each, made once',
    );
    const steps = (await eventsOf('provision.step_completed')).filter((e) => e.data.provision_id === job.id);
    assert.equal(steps.length, 14, 'seven steps for each of two domains');
    const completed = (await eventsOf('provision.completed')).filter((e) => e.data.provision_id === job.id);
    assert.equal(completed.length, 1);
    assert.deepEqual(
      completed[0].data.domains.map((d: any) => [d.name, d.inboxes]),
      [
        ['alpha-mail.com', 5],
        ['beta-mail.net', 5],
      ],
    );
  });

  test('a name that is not available fails alone; the others go on', async () => {
    nc.taken.add('taken-mail.com');
    const job = await provision({
      domains: ['taken-mail.com', 'gamma-mail.com'],
      register: { provider_account_id: registrarId, contact: CONTACT },
      dns_provider_account_id: cloudflareId,
    });
    const done = await ended(job.id);
    assert.equal(done.state, 'failed');
    assert.match(done.failure, /1 of 2 domains did not finish: taken-mail\.com failed at register/);
    const [taken, gamma] = done.domains;
    assert.deepEqual([taken.step, taken.state], ['register', 'failed']);
    assert.match(taken.error, /not available for registration/);
    assert.equal(taken.domain_id, null, 'nothing made for it');
    assert.deepEqual([gamma.step, gamma.state], ['done', 'done']);
    assert.deepEqual(done.errors, [
      { item: 'taken-mail.com', message: taken.error ? `register: ${taken.error}` : '' },
    ]);
    const failed = (await eventsOf('provision.failed')).filter((e) => e.data.provision_id === job.id);
    assert.deepEqual(failed[0].data.domains, [
      { name: 'taken-mail.com', state: 'failed', step: 'register', error: taken.error },
    ]);
  });

  test('DNS that never propagates leaves the domain stuck with a diagnosis, after a bounded number of checks', async () => {
    // Registered elsewhere: nothing here points it at Cloudflare, so resolvers never see its records.
    const job = await provision({
      domains: ['never-mail.com'],
      dns_provider_account_id: cloudflareId,
      inboxes: { count_per_domain: 3 },
      verify_timeout_seconds: 2,
    });
    const done = await ended(job.id);
    assert.equal(done.state, 'failed');
    const [d] = done.domains;
    assert.deepEqual([d.step, d.state], ['verify', 'stuck']);
    assert.match(d.error, /DNS did not verify within 2 s/);
    assert.ok(d.verification.diagnosis.length > 0);
    assert.ok(
      d.verification.diagnosis.some(
        (x: any) => x.purpose === 'mx' && /Publish: MX 10 mx\.provision\.test/.test(x.diagnosis),
      ),
      JSON.stringify(d.verification.diagnosis),
    );
    // Checked with backoff (200 ms here), not in a loop: a handful of attempts in two seconds.
    assert.ok(d.verification.attempts >= 2 && d.verification.attempts <= 15, String(d.verification.attempts));
    assert.equal(d.inboxes, null, 'no inboxes for a domain that does not work');
    const mailboxes = await api('GET', `/v1/mailboxes?domain_id=${d.domain_id}`);
    assert.equal(mailboxes.body.total, 0);
  });

  test('cancelling a provisioning that waits for DNS stops it at once; what it made stays', async () => {
    const job = await provision({
      domains: ['waiting-mail.com'],
      dns_provider_account_id: cloudflareId,
      inboxes: { count_per_domain: 3 },
      verify_timeout_seconds: 3600,
    });
    const waiting = await until(
      async () => (await api('GET', `/v1/provision/${job.id}`)).body,
      (p) => p.domains[0].step === 'verify' && p.domains[0].verification?.attempts >= 2,
      30_000,
    );
    assert.equal(waiting.domains[0].state, 'waiting');
    const cancelled = await api('DELETE', `/v1/jobs/${job.id}`);
    assert.equal(cancelled.status, 202, JSON.stringify(cancelled.body));
    const done = await ended(job.id);
    assert.equal(done.state, 'cancelled');
    assert.deepEqual([done.domains[0].step, done.domains[0].state], ['verify', 'waiting']);
    const domain = await api('GET', `/v1/domains/${done.domains[0].domain_id}`);
    assert.equal(domain.status, 200, 'the domain it added stays');
    assert.equal(
      (await eventsOf('provision.failed')).filter((e) => e.data.provision_id === job.id).length,
      0,
    );
  });

  test('requests that cannot work are refused before anything is bought; idempotency; isolation', async () => {
    const refusals: [Record<string, unknown>, number, RegExp][] = [
      [{ domains: ['not a domain'] }, 422, /domains\.0/],
      [{ domains: ['twice.com', 'TWICE.com'] }, 422, /named twice/],
      [{ domains: ['x-mail.com'], dns_provider_account_id: registrarId }, 422, /./],
      [
        { domains: ['x-mail.com'], register: { provider_account_id: cloudflareId, contact: CONTACT } },
        422,
        /./,
      ],
      [{ domains: ['x-mail.com'], inboxes: { count_per_domain: 1, locale: 'zz' } }, 422, /not a locale/],
      [{ domains: [] }, 400, /domains/],
    ];
    for (const [body, status, detail] of refusals) {
      const res = await api('POST', '/v1/provision', body);
      assert.equal(res.status, status, `${JSON.stringify(body)} → ${JSON.stringify(res.body)}`);
      assert.match(res.body.detail, detail);
    }
    assert.equal(nc.registrations.filter((r) => r.name === 'x-mail.com').length, 0);

    const body = {
      domains: ['delta-mail.com'],
      dns_provider_account_id: cloudflareId,
      verify_timeout_seconds: 1,
    };
    const first = await provision(body, { 'idempotency-key': 'prov-1' });
    const again = await api('POST', '/v1/provision', body, { 'idempotency-key': 'prov-1' });
    assert.equal(again.status, 200);
    assert.equal(again.body.id, first.id);
    await ended(first.id);
    const other = await freshOrg(t);
    assert.equal((await api('GET', `/v1/provision/${first.id}`, undefined, undefined, other)).status, 404);
  });
});
