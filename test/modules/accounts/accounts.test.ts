// External accounts through the API: connection tests that name the failing step, accounts saved only
// when their login works, sealed passwords, states, events and tenant isolation. The "other provider"
// is Mailroom's own IMAP and submission servers on loopback (a self-signed certificate, as a company
// server often has).
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { engine, eventsOf, type Org, orgMaker, startTestApp, type TestApp } from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';
import { DOVECOT_MISSING, type Dovecot, startDovecot } from '../../support/dovecot.ts';

const PASSWORD = 'the remote mailbox password';

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe(`external accounts on ${engine}`, () => {
  const freshOrg = orgMaker('accounts');
  let t: TestApp;
  let dns: TestDnsServer;
  let org: Org;
  const remote = 'remote@provider.test';
  let imap: { host: string; port: number; security: 'tls'; verify_tls: boolean };
  let smtp: { host: string; port: number; security: 'starttls'; verify_tls: boolean };
  const connection = (overrides: Record<string, unknown> = {}) => ({
    address: remote,
    password: PASSWORD,
    imap,
    smtp,
    ...overrides,
  });

  before(async () => {
    dns = await startDnsServer();
    t = await startTestApp({
      imap: true,
      submission: true,
      env: {
        MAILROOM_DNS_SERVERS: dns.address,
        MAILROOM_IMAP_TLS_PORT: '0',
        MAILROOM_HOSTNAME: 'mail.provider.test',
      },
    });
    org = await freshOrg(t);
    await verifiedDomain(t, org.token, 'provider.test', [dns]);
    const mailbox = await t.call('POST', '/v1/mailboxes', {
      token: org.token,
      body: { address: remote, password: PASSWORD },
    });
    assert.equal(mailbox.status, 201);
    imap = { host: '127.0.0.1', port: t.imapTlsPort, security: 'tls', verify_tls: false };
    smtp = { host: '127.0.0.1', port: t.submissionPort, security: 'starttls', verify_tls: false };
  });
  after(async () => {
    await t?.close();
    await dns?.close();
  });

  test('servers on this server’s own network are refused unless the operator allows them', async () => {
    const check = (body: unknown) => t.call('POST', '/v1/accounts/test', { token: org.token, body });
    // 127.0.0.1 is allowed in tests (MAILROOM_ACCOUNTS_ALLOW_HOSTS); the rest of the inside is not.
    for (const host of ['169.254.169.254', '10.1.2.3', 'localhost', '::1']) {
      const refused = await check(connection({ imap: { ...imap, host } }));
      assert.equal(refused.status, 422, `${host}: ${JSON.stringify(refused.body)}`);
      assert.equal(refused.body.errors[0].field, 'imap.host');
    }
    const smtpInside = await check(connection({ smtp: { ...smtp, host: '192.168.1.10' } }));
    assert.equal(smtpInside.status, 422);
    assert.equal(smtpInside.body.errors[0].field, 'smtp.host');
    const saved = await t.call('POST', '/v1/accounts', {
      token: org.token,
      body: connection({ address: 'inside@provider.test', imap: { ...imap, host: '172.16.0.1' } }),
    });
    assert.equal(saved.status, 422);
    const list = await t.call('GET', '/v1/accounts', { token: org.token });
    assert.ok(!list.body.items.some((a: { address: string }) => a.address === 'inside@provider.test'));
  });

  test('a connection test names the step that fails, and passes when all do', async () => {
    const check = (body: unknown) => t.call('POST', '/v1/accounts/test', { token: org.token, body });
    const ok = await check(connection());
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(ok.body, { ok: true });

    const unresolved = await check(connection({ imap: { ...imap, host: 'imap.nowhere.invalid' } }));
    assert.equal(unresolved.body.stage, 'dns', JSON.stringify(unresolved.body));
    assert.match(unresolved.body.message, /does not resolve/);

    const refused = await check(connection({ imap: { ...imap, port: await closedPort() } }));
    assert.equal(refused.body.stage, 'tcp', JSON.stringify(refused.body));

    const untrusted = await check(connection({ imap: { ...imap, verify_tls: true } }));
    assert.equal(untrusted.body.stage, 'tls', JSON.stringify(untrusted.body));
    assert.match(untrusted.body.message, /certificate/i);

    // TLS spoken to the STARTTLS port: the handshake meets an IMAP greeting.
    const tlsToPlain = await check(connection({ imap: { ...imap, port: t.imapPort } }));
    assert.equal(tlsToPlain.body.stage, 'tls', JSON.stringify(tlsToPlain.body));

    const wrong = await check(connection({ password: 'not the password' }));
    assert.equal(wrong.body.stage, 'login', JSON.stringify(wrong.body));
    assert.equal(wrong.body.protocol, 'imap');
    assert.ok(wrong.body.hint.length > 0);

    const smtpRefused = await check(connection({ smtp: { ...smtp, port: await closedPort() } }));
    assert.equal(smtpRefused.body.protocol, 'smtp', JSON.stringify(smtpRefused.body));
    assert.equal(smtpRefused.body.stage, 'tcp');
  });

  test('an account is saved only when its login works; its password is sealed; states and events', async () => {
    const refused = await t.call('POST', '/v1/accounts', {
      token: org.token,
      body: connection({ password: 'not the password' }),
    });
    assert.equal(refused.status, 422, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'connection_failed');
    assert.equal(refused.body.diagnosis.stage, 'login');

    const created = await t.call('POST', '/v1/accounts', {
      token: org.token,
      body: connection({ name: 'Support inbox' }),
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const account = created.body;
    assert.equal(account.address, remote);
    assert.equal(account.username, remote);
    assert.equal(account.state, 'connecting');
    assert.equal(account.provider, 'imap');
    assert.deepEqual(account.imap, imap);
    assert.ok(!JSON.stringify(account).includes(PASSWORD));
    const [row] = (
      (await t.app.database.query('select secret from mail_accounts where id = $1', [account.id])) as any
    ).rows;
    assert.ok(row.secret && !row.secret.includes(PASSWORD), 'the password is sealed at rest');

    const duplicate = await t.call('POST', '/v1/accounts', { token: org.token, body: connection() });
    assert.equal(duplicate.status, 409);

    const connected = await eventsOf(t, org, 'account.connected');
    assert.ok(connected.some((e) => e.data.account_id === account.id));

    const renamed = await t.call('PATCH', `/v1/accounts/${account.id}`, {
      token: org.token,
      body: { name: 'Support' },
    });
    assert.equal(renamed.body.name, 'Support');
    const badPassword = await t.call('PATCH', `/v1/accounts/${account.id}`, {
      token: org.token,
      body: { password: 'still wrong' },
    });
    assert.equal(badPassword.status, 422);
    const paused = await t.call('POST', `/v1/accounts/${account.id}/pause`, { token: org.token });
    assert.equal(paused.body.state, 'paused');
    const resumed = await t.call('POST', `/v1/accounts/${account.id}/resume`, { token: org.token });
    assert.equal(resumed.body.state, 'connecting');
    const listed = await t.call('GET', '/v1/accounts', { token: org.token });
    assert.equal(listed.body.total, 1);

    const other = await freshOrg(t);
    assert.equal((await t.call('GET', `/v1/accounts/${account.id}`, { token: other.token })).status, 404);
    assert.equal((await t.call('DELETE', `/v1/accounts/${account.id}`, { token: other.token })).status, 404);

    assert.equal((await t.call('DELETE', `/v1/accounts/${account.id}`, { token: org.token })).status, 204);
    assert.equal((await t.call('GET', `/v1/accounts/${account.id}`, { token: org.token })).status, 404);
    const deleted = await eventsOf(t, org, 'account.deleted');
    assert.ok(deleted.some((e) => e.data.account_id === account.id));
  });

  test('bad input is refused (400, 422) before any connection is tried', async () => {
    const bad = await t.call('POST', '/v1/accounts', {
      token: org.token,
      body: connection({ imap: { host: 'imap example.com', port: 993, security: 'tls' } }),
    });
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    const port = await t.call('POST', '/v1/accounts/test', {
      token: org.token,
      body: connection({ imap: { ...imap, port: 70_000 } }),
    });
    assert.equal(port.status, 400, JSON.stringify(port.body));
    const address = await t.call('POST', '/v1/accounts', {
      token: org.token,
      body: connection({ address: 'nobody' }),
    });
    assert.equal(address.status, 422);
    assert.equal(address.body.code, 'validation_failed');
  });
});

describe(`external accounts on a third-party server (Dovecot) on ${engine}`, () => {
  const freshOrg = orgMaker('dovecotaccounts');
  let t: TestApp;
  let dovecot: Dovecot | null = null;
  let org: Org;

  before(async () => {
    dovecot = await startDovecot();
    if (!dovecot) return;
    t = await startTestApp();
    org = await freshOrg(t);
    await dovecot.addUser('someone@company.test', PASSWORD);
  });
  after(async () => {
    await t?.close();
    await dovecot?.stop();
  });

  test('IMAP with STARTTLS and over TLS: the login is checked by the server, the account is kept', async (c) => {
    if (!dovecot) return c.skip(DOVECOT_MISSING);
    const imap = (security: 'tls' | 'starttls') => ({
      host: '127.0.0.1',
      port: security === 'tls' ? dovecot!.imapsPort : dovecot!.imapPort,
      security,
      verify_tls: false,
    });
    const body = { address: 'someone@company.test', password: PASSWORD, imap: imap('starttls') };
    const ok = await t.call('POST', '/v1/accounts/test', { token: org.token, body });
    assert.deepEqual(ok.body, { ok: true }, JSON.stringify(ok.body));
    const wrong = await t.call('POST', '/v1/accounts/test', {
      token: org.token,
      body: { ...body, password: 'wrong' },
    });
    assert.equal(wrong.body.stage, 'login', JSON.stringify(wrong.body));
    const created = await t.call('POST', '/v1/accounts', {
      token: org.token,
      body: { ...body, imap: imap('tls') },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.imap.port, dovecot.imapsPort);
  });
});
