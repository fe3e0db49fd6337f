// Provisioning survives a crash: a real `mailroom start` is killed with SIGKILL while its domains wait
// for DNS, then started again; each domain resumes from the step it was in and ends with nothing made
// twice: one registration, one zone and one set of records per name, and exactly the inboxes asked for.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { engine, signUpWithOrg, startTestApp } from '../../support/app.ts';
import { type CloudflareServer, startCloudflareServer } from '../../support/cloudflare-server.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { type NamecheapServer, startNamecheapServer } from '../../support/namecheap-server.ts';
import { callServed, exited, serve, takeoverEnv } from '../../support/process.ts';
import { CONTACT, delegatedDns } from '../../support/provisioning.ts';
import { until } from '../../support/until.ts';

const cleanups: (() => Promise<void>)[] = [];
const NAMES = ['kill-one.com', 'kill-two.net'];

describe(`provisioning crash safety on ${engine}`, () => {
  let cf: CloudflareServer | undefined;
  let nc: NamecheapServer | undefined;
  let dns: TestDnsServer | undefined;
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    await dns?.close();
    await cf?.close();
    await nc?.close();
  });

  test('SIGKILL while domains wait for DNS: after a restart each resumes from its step, nothing made twice', async () => {
    cf = await startCloudflareServer();
    nc = await startNamecheapServer();
    let propagated = false;
    dns = await startDnsServer(
      {},
      delegatedDns(cf, nc, new Set(), () => propagated),
    );
    const env: Record<string, string> = {
      MAILROOM_SECRET_KEY: randomBytes(32).toString('hex'),
      MAILROOM_HOSTNAME: 'mx.kill.test',
      MAILROOM_DNS_SERVERS: dns.address,
      MAILROOM_DNS_TIMEOUT: '300ms',
      MAILROOM_DNS_TRIES: '1',
      MAILROOM_CLOUDFLARE_API_URL: cf.baseURL,
      MAILROOM_NAMECHEAP_API_URL: nc.apiUrl,
      MAILROOM_PROVISION_VERIFY_BACKOFF: '300ms',
      // A short lease: the killed process's job is taken over within seconds.
      MAILROOM_JOB_LEASE: '3s',
    };
    const setup = await startTestApp({ env });
    const org = await signUpWithOrg(setup, 'kill-provision@example.com', 'Crash provisioning');
    const account = async (body: Record<string, unknown>) => {
      const res = await setup.call('POST', '/v1/provider-accounts', { token: org.token, body });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body.id as string;
    };
    const registrarId = await account({
      provider: 'namecheap',
      name: 'Registrar',
      credentials: { api_user: nc.apiUser, api_key: nc.apiKey, client_ip: nc.clientIp },
    });
    const cloudflareId = await account({
      provider: 'cloudflare',
      name: 'DNS',
      credentials: { api_token: cf.token },
    });
    const processEnv = takeoverEnv(setup.env);
    await setup.app.close();

    const call = (port: number, method: string, path: string, body?: unknown) =>
      callServed(port, org.token, method, path, body);

    const first = await serve(['start'], processEnv, cleanups);
    const started = await call(first.port!, 'POST', '/v1/provision', {
      domains: NAMES,
      register: { provider_account_id: registrarId, contact: CONTACT },
      dns_provider_account_id: cloudflareId,
      inboxes: { count_per_domain: 40 },
    });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const id = started.body.id;
    // Both domains bought, delegated and published, and checking a DNS that does not answer yet.
    await until(
      async () => (await call(first.port!, 'GET', `/v1/provision/${id}`)).body,
      (p) => p.domains.every((d: any) => d.step === 'verify' && d.verification?.attempts >= 1),
      60_000,
    );
    process.kill(-first.child.pid!, 'SIGKILL');
    await exited(first.child, setup.env.MAILROOM_DATA_DIR);
    const recordsBefore = cf.records().length;

    propagated = true;
    const second = await serve(['start'], processEnv, cleanups);
    const done = await until(
      async () => (await call(second.port!, 'GET', `/v1/provision/${id}`)).body,
      (p) => !['queued', 'running'].includes(p.state),
      120_000,
    );
    assert.equal(done.state, 'succeeded', JSON.stringify(done));
    for (const [i, name] of NAMES.entries()) {
      const d = done.domains[i];
      assert.deepEqual([d.name, d.step, d.state], [name, 'done', 'done']);
      assert.equal(nc.registrations.filter((r) => r.name === name).length, 1, `${name} bought once`);
      assert.deepEqual(d.inboxes, { planned: 40, created: 40 });
      const mailboxes = await call(second.port!, 'GET', `/v1/mailboxes?domain_id=${d.domain_id}&page_size=1`);
      assert.equal(mailboxes.body.total, 40);
    }
    assert.deepEqual([...cf.createdZones].sort(), [...NAMES].sort(), 'each zone made once');
    assert.equal(cf.records().length, recordsBefore, 'no record published twice');
    const steps = await call(second.port!, 'GET', '/v1/events?types=provision.step_completed&page_size=100');
    const register = steps.body.items.filter((e: any) => e.data.step === 'register');
    assert.equal(register.length, 2, 'one register step each');
    const completed = await call(second.port!, 'GET', '/v1/events?types=provision.completed');
    assert.equal(completed.body.total, 1);
    process.kill(-second.child.pid!, 'SIGKILL');
    await exited(second.child, setup.env.MAILROOM_DATA_DIR);
  });
});
