// SMTP submission through the public surface: logins over real SMTP (nodemailer and raw sockets), TLS
// before AUTH, failure limits and their security events, and the organisation's SMTP credentials API.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  addDomain,
  engine,
  eventsOf,
  type Org,
  orgMaker,
  signUp,
  startTestApp,
  type TestApp,
} from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';
import { SmtpDialogue, smtpLogin as login } from '../../support/smtp.ts';

const HOST = 'submit.mailroom.test';
const PASSWORD = 'a long mailbox password';

const plainAuth = (user: string, pass: string, authzid = '') =>
  Buffer.from(`${authzid}\0${user}\0${pass}`).toString('base64');

async function securityEvents(t: TestApp, as: Org, kind: string): Promise<any[]> {
  const res = await t.call(
    'GET',
    `/v1/organizations/${as.orgId}/security-events?kind=${kind}&page_size=200`,
    {
      token: as.token,
    },
  );
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.items;
}

describe(`SMTP submission on ${engine}`, () => {
  const freshOrg = orgMaker('submission');
  let t: TestApp;
  let dns: TestDnsServer;
  let org: Org;
  let domain: { id: string; name: string };

  const createMailbox = async (address: string, password: string | null) => {
    const res = await t.call('POST', '/v1/mailboxes', { token: org.token, body: { address, password } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };
  const createCredential = async (body: Record<string, unknown> = { name: 'CRM' }, as = org) => {
    const res = await t.call('POST', '/v1/smtp-credentials', { token: as.token, body });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };

  before(async () => {
    dns = await startDnsServer();
    t = await startTestApp({
      submission: true,
      env: {
        MAILROOM_HOSTNAME: HOST,
        MAILROOM_DNS_SERVERS: dns.address,
        MAILROOM_SUBMISSION_TLS_PORT: '0',
        MAILROOM_SUBMISSION_AUTH_FAILURES_PER_HOUR: '1000',
        MAILROOM_SMTP_MAX_RECIPIENTS: '2',
      },
    });
    org = await freshOrg(t);
    domain = await verifiedDomain(t, org.token, 'submit.test', [dns]);
    await createMailbox('alice@submit.test', PASSWORD);
  });
  after(async () => {
    await t?.close();
    await dns?.close();
  });

  test('EHLO offers AUTH PLAIN LOGIN and STARTTLS; AUTH before STARTTLS is refused 538 5.7.11', async () => {
    const { dialogue, greeting } = await SmtpDialogue.open(t.submissionPort);
    try {
      assert.match(greeting, /^220 /);
      const ehlo = await dialogue.command('EHLO client.test');
      assert.match(ehlo, /250[- ]AUTH PLAIN LOGIN/);
      assert.match(ehlo, /250[- ]STARTTLS/);
      assert.match(ehlo, /250[- ]ENHANCEDSTATUSCODES/);
      assert.match(
        await dialogue.command(`AUTH PLAIN ${plainAuth('alice@submit.test', PASSWORD)}`),
        /^538 5\.7\.11 Encryption required/,
      );
      assert.match(await dialogue.command('AUTH LOGIN'), /^538 5\.7\.11 /);
      // No login: no mail.
      assert.match(
        await dialogue.command('MAIL FROM:<alice@submit.test>'),
        /^530 5\.7\.0 Authentication required/,
      );
      assert.match(await dialogue.command('RCPT TO:<bob@example.com>'), /^530 5\.7\.0 /);
    } finally {
      dialogue.close();
    }
  });

  test('a hosted mailbox logs in by its address (any case) with PLAIN or LOGIN after STARTTLS', async () => {
    assert.deepEqual(await login(t.submissionPort, 'alice@submit.test', PASSWORD), {
      ok: true,
      code: 235,
      response: '',
    });
    assert.equal(
      (await login(t.submissionPort, 'Alice@SUBMIT.test', PASSWORD, { method: 'LOGIN' })).ok,
      true,
    );
    assert.equal(
      (await login(t.submissionPort, 'alice@submit.test', PASSWORD, { method: 'PLAIN' })).ok,
      true,
    );
  });

  test('implicit TLS port: AUTH at once, and the same refusals', async () => {
    assert.ok(t.submissionTlsPort > 0);
    assert.equal(
      (await login(t.submissionTlsPort, 'alice@submit.test', PASSWORD, { secure: true })).ok,
      true,
    );
    const wrong = await login(t.submissionTlsPort, 'alice@submit.test', 'not the password', { secure: true });
    assert.equal(wrong.code, 535);
    assert.match(wrong.response, /^535 5\.7\.8 /);

    const { dialogue, greeting } = await SmtpDialogue.openTls(t.submissionTlsPort);
    try {
      assert.match(greeting, /^220 /);
      const ehlo = await dialogue.command('EHLO client.test');
      assert.match(ehlo, /AUTH PLAIN LOGIN/);
      assert.doesNotMatch(ehlo, /STARTTLS/);
      assert.match(await dialogue.command('MAIL FROM:<alice@submit.test>'), /^530 5\.7\.0 /);
      assert.match(await dialogue.command(`AUTH PLAIN ${plainAuth('alice@submit.test', PASSWORD)}`), /^235 /);
      // Logged in once is enough: no second identity on one session.
      assert.match(await dialogue.command(`AUTH PLAIN ${plainAuth('alice@submit.test', PASSWORD)}`), /^503 /);
    } finally {
      dialogue.close();
    }
  });

  test('MAIL FROM:<> is refused from submission clients (553 5.7.1)', async () => {
    const { dialogue } = await SmtpDialogue.openTls(t.submissionTlsPort);
    try {
      await dialogue.command('EHLO client.test');
      assert.match(await dialogue.command(`AUTH PLAIN ${plainAuth('alice@submit.test', PASSWORD)}`), /^235 /);
      assert.match(await dialogue.command('MAIL FROM:<>'), /^553 5\.7\.1 /);
      // Still no transaction open.
      assert.match(await dialogue.command('RCPT TO:<bob@example.com>'), /^503 /);
    } finally {
      dialogue.close();
    }
  });

  test('AUTH PLAIN acting for another identity (authzid) is refused', async () => {
    const { dialogue } = await SmtpDialogue.openTls(t.submissionTlsPort);
    try {
      await dialogue.command('EHLO client.test');
      const reply = await dialogue.command(
        `AUTH PLAIN ${plainAuth('alice@submit.test', PASSWORD, 'boss@submit.test')}`,
      );
      assert.match(reply, /^535 5\.7\.8 /);
    } finally {
      dialogue.close();
    }
  });

  test('a wrong password gets 535 5.7.8 and a security event for the organisation, without the password', async () => {
    const secret = 'guessed-password-123';
    const res = await login(t.submissionPort, 'alice@submit.test', secret);
    assert.equal(res.ok, false);
    assert.equal(res.code, 535);
    assert.match(res.response, /^535 5\.7\.8 Authentication credentials invalid/);
    const events = await securityEvents(t, org, 'smtp_auth_failed');
    const event = events.find(
      (e) => e.details.username === 'alice@submit.test' && e.details.reason === 'password',
    );
    assert.ok(event, JSON.stringify(events));
    assert.equal(event.ip, '127.0.0.1');
    assert.equal(event.organization_id, org.orgId);
    assert.ok(!JSON.stringify(events).includes(secret));
    const stored = await t.app.database.query<{ details: unknown }>(
      "select details from security_events where kind like 'smtp_auth%'",
    );
    assert.ok(!JSON.stringify(stored.rows).includes(secret));
    // The webhook-facing event carries it too.
    const recorded = await eventsOf(t, org, 'security.event_recorded');
    assert.ok(recorded.some((e) => e.data.kind === 'smtp_auth_failed'));
  });

  test('unknown users, mailboxes without a password, inactive mailboxes and inactive domains are refused alike', async () => {
    await createMailbox('nopass@submit.test', null);
    const inactive = await createMailbox('inactive@submit.test', PASSWORD);
    const patched = await t.call('PATCH', `/v1/mailboxes/${inactive.id}`, {
      token: org.token,
      body: { is_active: false },
    });
    assert.equal(patched.status, 200);
    for (const [user, pass] of [
      ['nobody@submit.test', PASSWORD],
      ['nobody@elsewhere.test', PASSWORD],
      ['smtp_000000000000000000000000', PASSWORD],
      ['not an address@@', PASSWORD],
      ['nopass@submit.test', 'anything at all'],
      ['nopass@submit.test', PASSWORD],
      ['inactive@submit.test', PASSWORD],
    ]) {
      const res = await login(t.submissionPort, user, pass);
      assert.equal(res.code, 535, `${user}: ${res.response}`);
    }
    // Clients refuse to send an empty password; the server refuses it too.
    const { dialogue } = await SmtpDialogue.openTls(t.submissionTlsPort);
    await dialogue.command('EHLO client.test');
    assert.match(
      await dialogue.command(`AUTH PLAIN ${plainAuth('nopass@submit.test', '')}`),
      /^535 5\.7\.8 /,
    );
    dialogue.close();
    const reasons = (await securityEvents(t, org, 'smtp_auth_failed')).map((e) => [
      e.details.username,
      e.details.reason,
    ]);
    assert.deepEqual(
      reasons.filter(([u]) => u === 'nopass@submit.test' || u === 'inactive@submit.test').sort(),
      [
        ['inactive@submit.test', 'disabled'],
        ['nopass@submit.test', 'no_password'],
        ['nopass@submit.test', 'no_password'],
        ['nopass@submit.test', 'no_password'],
      ].sort(),
    );
    // Attempts on no known account belong to no organisation.
    assert.ok(!reasons.some(([u]) => u === 'nobody@submit.test'));
    const orphans = await t.app.database.query<{ n: number }>(
      "select count(*)::int as n from security_events where kind = 'smtp_auth_failed' and organization_id is null and details->>'reason' = 'unknown_user'",
    );
    assert.ok(orphans.rows[0].n >= 4);

    // A mailbox whose domain is switched off cannot log in.
    const off = await verifiedDomain(t, org.token, 'off.test', [dns]);
    await createMailbox('carol@off.test', PASSWORD);
    assert.equal((await login(t.submissionPort, 'carol@off.test', PASSWORD)).ok, true);
    const disabled = await t.call('PATCH', `/v1/domains/${off.id}`, {
      token: org.token,
      body: { is_active: false },
    });
    assert.equal(disabled.status, 200);
    assert.equal((await login(t.submissionPort, 'carol@off.test', PASSWORD)).code, 535);
  });

  test('a mailbox on a domain whose ownership is not proven cannot log in', async () => {
    const other = await freshOrg(t);
    // Another organisation claims the same name without proving it, and makes a mailbox there.
    await addDomain(t, other, 'submit.test');
    const res = await t.call('POST', '/v1/mailboxes', {
      token: other.token,
      body: { address: 'mallory@submit.test', password: PASSWORD },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal((await login(t.submissionPort, 'mallory@submit.test', PASSWORD)).code, 535);
  });

  test('an SMTP credential logs in with its generated username and password; last use is recorded', async () => {
    const cred = await createCredential({ name: ' Printer ', domain_id: domain.id });
    assert.match(cred.username, /^smtp_[0-9a-f]{24}$/);
    assert.equal(cred.password.length, 32);
    assert.equal(cred.name, 'Printer');
    assert.equal(cred.domain_id, domain.id);
    assert.equal(cred.is_enabled, true);
    assert.equal(cred.last_used_at, null);
    assert.equal((await login(t.submissionPort, cred.username, cred.password)).ok, true);
    assert.equal((await login(t.submissionPort, cred.username.toUpperCase(), cred.password)).ok, true);
    assert.equal(
      (await login(t.submissionTlsPort, cred.username, cred.password, { secure: true, method: 'LOGIN' })).ok,
      true,
    );
    const got = await t.call('GET', `/v1/smtp-credentials/${cred.id}`, { token: org.token });
    assert.equal(got.status, 200);
    assert.ok(got.body.last_used_at, JSON.stringify(got.body));
    assert.equal(got.body.last_used_ip, '127.0.0.1');
    assert.equal((await login(t.submissionPort, cred.username, `${cred.password}x`)).code, 535);
  });

  test('a disabled credential is refused; enabled again it works; a reset password replaces the old one; deleted it is gone', async () => {
    const cred = await createCredential({ name: 'App' });
    assert.equal(cred.domain_id, null);
    const disable = await t.call('PATCH', `/v1/smtp-credentials/${cred.id}`, {
      token: org.token,
      body: { is_enabled: false },
    });
    assert.equal(disable.status, 200);
    assert.equal(disable.body.is_enabled, false);
    assert.equal((await login(t.submissionPort, cred.username, cred.password)).code, 535);
    const failed = await securityEvents(t, org, 'smtp_auth_failed');
    assert.ok(
      failed.some((e) => e.details.smtp_credential_id === cred.id && e.details.reason === 'disabled'),
    );

    await t.call('PATCH', `/v1/smtp-credentials/${cred.id}`, {
      token: org.token,
      body: { is_enabled: true },
    });
    assert.equal((await login(t.submissionPort, cred.username, cred.password)).ok, true);

    const reset = await t.call('POST', `/v1/smtp-credentials/${cred.id}/reset-password`, {
      token: org.token,
    });
    assert.equal(reset.status, 200, JSON.stringify(reset.body));
    assert.equal(reset.body.username, cred.username);
    assert.notEqual(reset.body.password, cred.password);
    assert.equal((await login(t.submissionPort, cred.username, cred.password)).code, 535);
    assert.equal((await login(t.submissionPort, cred.username, reset.body.password)).ok, true);

    assert.equal(
      (await t.call('DELETE', `/v1/smtp-credentials/${cred.id}`, { token: org.token })).status,
      204,
    );
    assert.equal((await login(t.submissionPort, cred.username, reset.body.password)).code, 535);
  });

  describe('credentials API', () => {
    test('the password is shown once and stored as argon2id; reads never show it', async () => {
      const cred = await createCredential({ name: 'Once' });
      const stored = await t.app.database.query<{ password_hash: string }>(
        'select password_hash from smtp_credentials where id = $1',
        [cred.id],
      );
      assert.match(stored.rows[0].password_hash, /^\$argon2id\$/);
      const one = await t.call('GET', `/v1/smtp-credentials/${cred.id}`, { token: org.token });
      const list = await t.call('GET', '/v1/smtp-credentials?page_size=200', { token: org.token });
      for (const body of [one.body, list.body]) {
        const text = JSON.stringify(body);
        assert.ok(!text.includes(cred.password));
        assert.ok(!text.includes('argon2'));
        assert.ok(!text.includes('"password"'));
      }
      const { password: _, ...view } = cred;
      assert.deepEqual(one.body, view);
      assert.ok(list.body.items.some((c: any) => c.id === cred.id));
    });

    test('lists page by page', async () => {
      const other = await freshOrg(t);
      for (const name of ['one', 'two', 'three']) await createCredential({ name }, other);
      const first = await t.call('GET', '/v1/smtp-credentials?page=1&page_size=2', { token: other.token });
      assert.equal(first.status, 200);
      assert.deepEqual(
        {
          total: first.body.total,
          page: first.body.page,
          page_size: first.body.page_size,
          pages: first.body.total_pages,
        },
        { total: 3, page: 1, page_size: 2, pages: 2 },
      );
      assert.deepEqual(
        first.body.items.map((c: any) => c.name),
        ['one', 'two'],
      );
      const second = await t.call('GET', '/v1/smtp-credentials?page=2&page_size=2', { token: other.token });
      assert.deepEqual(
        second.body.items.map((c: any) => c.name),
        ['three'],
      );
    });

    test('rename and switch off; events for each change, never the password', async () => {
      const cred = await createCredential({ name: 'Before' });
      const renamed = await t.call('PATCH', `/v1/smtp-credentials/${cred.id}`, {
        token: org.token,
        body: { name: 'After', is_enabled: false },
      });
      assert.equal(renamed.status, 200);
      assert.equal(renamed.body.name, 'After');
      assert.equal(renamed.body.is_enabled, false);
      const reset = await t.call('POST', `/v1/smtp-credentials/${cred.id}/reset-password`, {
        token: org.token,
      });
      assert.equal(
        (await t.call('DELETE', `/v1/smtp-credentials/${cred.id}`, { token: org.token })).status,
        204,
      );
      assert.equal(
        (await t.call('GET', `/v1/smtp-credentials/${cred.id}`, { token: org.token })).status,
        404,
      );

      const created = (await eventsOf(t, org, 'smtp_credential.created')).filter(
        (e) => e.data.smtp_credential_id === cred.id,
      );
      assert.deepEqual(
        created.map((e) => e.data),
        [{ smtp_credential_id: cred.id, name: 'Before', username: cred.username, domain_id: null }],
      );
      const updated = (await eventsOf(t, org, 'smtp_credential.updated')).filter(
        (e) => e.data.smtp_credential_id === cred.id,
      );
      assert.deepEqual(
        updated.map((e) => e.data.changes).sort(),
        [['name', 'is_enabled'], ['password']].sort(),
      );
      const deleted = (await eventsOf(t, org, 'smtp_credential.deleted')).filter(
        (e) => e.data.smtp_credential_id === cred.id,
      );
      assert.equal(deleted.length, 1);
      const all = JSON.stringify([created, updated, deleted]);
      assert.ok(!all.includes(cred.password) && !all.includes(reset.body.password));
    });

    test('bad input is a 4xx: empty name, unknown fields, a domain of another organisation', async () => {
      for (const body of [
        { name: '' },
        { name: '   ' },
        { name: 'x', extra: 1 },
        { name: 'x', domain_id: 'nope' },
        {},
      ]) {
        const res = await t.call('POST', '/v1/smtp-credentials', { token: org.token, body });
        assert.equal(res.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
      }
      const other = await freshOrg(t);
      const theirs = await addDomain(t, other, 'theirs.test');
      const foreign = await t.call('POST', '/v1/smtp-credentials', {
        token: org.token,
        body: { name: 'x', domain_id: theirs.id },
      });
      assert.equal(foreign.status, 404, JSON.stringify(foreign.body));
      const count = await t.app.database.query<{ n: number }>(
        'select count(*)::int as n from smtp_credentials where domain_id = $1',
        [theirs.id],
      );
      assert.equal(count.rows[0].n, 0);
      const cred = await createCredential({ name: 'y' });
      const empty = await t.call('PATCH', `/v1/smtp-credentials/${cred.id}`, {
        token: org.token,
        body: { name: '' },
      });
      assert.equal(empty.status, 400);
    });

    test("another organisation's credentials answer 404 and are not listed", async () => {
      const cred = await createCredential({ name: 'Private' });
      const other = await freshOrg(t);
      for (const [method, path, body] of [
        ['GET', '', undefined],
        ['PATCH', '', { name: 'mine now' }],
        ['POST', '/reset-password', undefined],
        ['DELETE', '', undefined],
      ] as const) {
        const res = await t.call(method, `/v1/smtp-credentials/${cred.id}${path}`, {
          token: other.token,
          body,
        });
        assert.equal(res.status, 404, `${method} ${path}: ${JSON.stringify(res.body)}`);
      }
      const list = await t.call('GET', '/v1/smtp-credentials', { token: other.token });
      assert.equal(list.body.total, 0);
      const still = await t.call('GET', `/v1/smtp-credentials/${cred.id}`, { token: org.token });
      assert.equal(still.body.name, 'Private');
      assert.equal((await login(t.submissionPort, cred.username, cred.password)).ok, true);
    });

    test('members read, admins write; API keys need the smtp_credentials scope', async () => {
      const invite = await t.call('POST', `/v1/organizations/${org.orgId}/invitations`, {
        token: org.token,
        body: { email: 'member@submission.test', role: 'member' },
      });
      assert.equal(invite.status, 201, JSON.stringify(invite.body));
      const member = await signUp(t, 'member@submission.test');
      const accepted = await t.call('POST', '/v1/invitations/accept', {
        token: member.token,
        body: { token: t.mailer.tokenFor('member@submission.test', /invited/) },
      });
      assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
      const cred = await createCredential({ name: 'Roles' });
      const asMember = { token: member.token, headers: { 'x-organization-id': org.orgId } };
      assert.equal((await t.call('GET', '/v1/smtp-credentials', asMember)).status, 200);
      assert.equal((await t.call('GET', `/v1/smtp-credentials/${cred.id}`, asMember)).status, 200);
      assert.equal(
        (await t.call('POST', '/v1/smtp-credentials', { ...asMember, body: { name: 'x' } })).status,
        403,
      );
      assert.equal(
        (await t.call('POST', `/v1/smtp-credentials/${cred.id}/reset-password`, asMember)).status,
        403,
      );

      const key = async (scopes: string[]) => {
        const res = await t.call('POST', `/v1/organizations/${org.orgId}/api-keys`, {
          token: org.token,
          body: { name: scopes.join(' '), scopes },
        });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        return res.body.key as string;
      };
      const reader = await key(['smtp_credentials:read']);
      assert.equal((await t.call('GET', '/v1/smtp-credentials', { token: reader })).status, 200);
      assert.equal(
        (await t.call('POST', '/v1/smtp-credentials', { token: reader, body: { name: 'x' } })).status,
        403,
      );
      const writer = await key(['smtp_credentials:write']);
      assert.equal(
        (await t.call('POST', '/v1/smtp-credentials', { token: writer, body: { name: 'k' } })).status,
        201,
      );
      const unrelated = await key(['mailboxes:*']);
      assert.equal((await t.call('GET', '/v1/smtp-credentials', { token: unrelated })).status, 403);
    });

    test('mutations are audited', async () => {
      const cred = await createCredential({ name: 'Audited' });
      await t.call('POST', `/v1/smtp-credentials/${cred.id}/reset-password`, { token: org.token });
      await t.call('DELETE', `/v1/smtp-credentials/${cred.id}`, { token: org.token });
      const log = await t.call('GET', `/v1/organizations/${org.orgId}/audit-log?target_id=${cred.id}`, {
        token: org.token,
      });
      assert.equal(log.status, 200, JSON.stringify(log.body));
      assert.deepEqual(log.body.items.map((e: any) => e.action).sort(), [
        'smtp_credential.create',
        'smtp_credential.delete',
        'smtp_credential.reset_password',
      ]);
    });
  });
});

describe(`SMTP submission login limits on ${engine}`, () => {
  const freshOrg = orgMaker('sublimits');
  let t: TestApp;
  let dns: TestDnsServer;
  let org: Org;

  before(async () => {
    dns = await startDnsServer();
    t = await startTestApp({
      submission: true,
      env: {
        MAILROOM_HOSTNAME: HOST,
        MAILROOM_DNS_SERVERS: dns.address,
        MAILROOM_SUBMISSION_AUTH_FAILURES_PER_HOUR: '3',
        MAILROOM_SUBMISSION_ALLOW_INSECURE_AUTH: 'true',
      },
    });
    org = await freshOrg(t);
    await verifiedDomain(t, org.token, 'limits.test', [dns]);
    for (const address of ['alice@limits.test', 'bob@limits.test']) {
      const res = await t.call('POST', '/v1/mailboxes', {
        token: org.token,
        body: { address, password: PASSWORD },
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
  });
  after(async () => {
    await t?.close();
    await dns?.close();
  });

  test('successful logins are not counted', async () => {
    for (let i = 0; i < 8; i++) {
      const res = await login(t.submissionPort, 'bob@limits.test', PASSWORD, { from: '127.0.0.20' });
      assert.equal(res.ok, true, `login ${i}: ${res.response}`);
    }
  });

  test('the failure that reaches the limit blocks the address and the username, even for the right password', async () => {
    const wrong = (from: string) => login(t.submissionPort, 'alice@limits.test', 'wrong password', { from });
    assert.equal((await wrong('127.0.0.2')).code, 535);
    assert.equal((await wrong('127.0.0.2')).code, 535);
    const third = await wrong('127.0.0.2');
    assert.equal(third.code, 454, third.response);
    assert.match(third.response, /^454 4\.7\.0 /);

    // The username is blocked from any address, the right password included.
    const elsewhere = await login(t.submissionPort, 'alice@limits.test', PASSWORD, { from: '127.0.0.3' });
    assert.equal(elsewhere.code, 454, elsewhere.response);
    // The address is blocked for every username.
    const sameIp = await login(t.submissionPort, 'bob@limits.test', PASSWORD, { from: '127.0.0.2' });
    assert.equal(sameIp.code, 454, sameIp.response);
    // Others are not.
    assert.equal(
      (await login(t.submissionPort, 'bob@limits.test', PASSWORD, { from: '127.0.0.4' })).ok,
      true,
    );

    const failed = (await securityEvents(t, org, 'smtp_auth_failed')).filter(
      (e) => e.details.username === 'alice@limits.test',
    );
    assert.equal(failed.length, 2);
    const limited = await securityEvents(t, org, 'smtp_auth_rate_limited');
    assert.equal(limited.length, 1, JSON.stringify(limited));
    assert.equal(limited[0].ip, '127.0.0.2');
    assert.equal(limited[0].details.username, 'alice@limits.test');
    assert.deepEqual(limited[0].details.limited_by, ['ip', 'username']);
    assert.ok(limited[0].details.retry_after_seconds > 3000);
    assert.ok(!JSON.stringify(limited).includes('wrong password'));
  });

  test('failures of unknown usernames count against the address', async () => {
    for (const user of ['x1@limits.test', 'x2@limits.test']) {
      assert.equal((await login(t.submissionPort, user, 'whatever', { from: '127.0.0.5' })).code, 535);
    }
    assert.equal(
      (await login(t.submissionPort, 'x3@limits.test', 'whatever', { from: '127.0.0.5' })).code,
      454,
    );
    assert.equal(
      (await login(t.submissionPort, 'bob@limits.test', PASSWORD, { from: '127.0.0.5' })).code,
      454,
    );
  });

  test('with MAILROOM_SUBMISSION_ALLOW_INSECURE_AUTH, AUTH works without TLS', async () => {
    const res = await login(t.submissionPort, 'bob@limits.test', PASSWORD, {
      ignoreTLS: true,
      from: '127.0.0.6',
    });
    assert.equal(res.ok, true, res.response);
  });
});

describe(`SMTP submission login limits across processes (Redis) on ${engine}`, () => {
  const REDIS_URL = process.env.MAILROOM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const env = { REDIS_URL, MAILROOM_SUBMISSION_AUTH_FAILURES_PER_HOUR: '3' };
  let one: TestApp;
  let two: TestApp;
  /** A loopback address of its own per run: Redis keeps its counters between runs (so do usernames). */
  const freshIp = () => `127.${1 + randomInt(254)}.${randomInt(256)}.${1 + randomInt(254)}`;

  before(async () => {
    one = await startTestApp({ submission: true, env });
    // The second process shares the first one's Redis (and, on PostgreSQL, its database).
    two = await startTestApp({
      submission: true,
      env: { ...env, MAILROOM_SECRET_KEY: one.env.MAILROOM_SECRET_KEY },
      ...(one.env.DATABASE_URL ? { databaseUrl: one.env.DATABASE_URL } : {}),
    });
  });
  after(async () => {
    await two?.close();
    await one?.close();
  });

  test('a block set by one process refuses the right password on another', async () => {
    const org = await orgMaker('subredis')(two);
    const created = await two.call('POST', '/v1/smtp-credentials', {
      token: org.token,
      body: { name: 'shared' },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const { username, password } = created.body;

    // The address: failures on one, the right password on two.
    const ip = freshIp();
    const codes: (number | undefined)[] = [];
    for (let i = 0; i < 3; i++)
      codes.push((await login(one.submissionPort, `nobody${i}-${freshIp()}`, 'x', { from: ip })).code);
    assert.deepEqual(codes, [535, 535, 454]);
    assert.equal((await login(two.submissionPort, username, password, { from: ip })).code, 454);

    // The username: failures on one from several addresses, the right password on two from a new one.
    for (let i = 0; i < 3; i++) await login(one.submissionPort, username, 'wrong', { from: freshIp() });
    assert.equal((await login(two.submissionPort, username, password, { from: freshIp() })).code, 454);

    // Others are not affected.
    const other = await two.call('POST', '/v1/smtp-credentials', {
      token: org.token,
      body: { name: 'other' },
    });
    assert.equal(
      (await login(two.submissionPort, other.body.username, other.body.password, { from: freshIp() })).ok,
      true,
    );
  });
});
