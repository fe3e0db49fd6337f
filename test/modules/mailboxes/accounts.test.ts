// Mailboxes as accounts, through the public surface: names, status and send limits, app passwords on
// real SMTP submission (never on the API), suspension (no login, no sending, mail still filed), an
// administrator's password reset, bulk changes, and the organisation's limits.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engine, eventsOf, type Org, orgMaker, startTestApp, type TestApp } from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';
import { sendMail, smtpLogin, submitMail } from '../../support/smtp.ts';
import { startSmtpSink, type SmtpSink } from '../../support/smtp-sink.ts';
import { until } from '../../support/until.ts';

const HOST = 'mx.accounts.test';
const PASSWORD = 'a long mailbox password';

describe(`mailboxes as accounts on ${engine}`, () => {
  const freshOrg = orgMaker('accounts');
  let t: TestApp;
  let dns: TestDnsServer;
  let sink: SmtpSink;
  let org: Org;
  let other: Org;

  const api = (method: string, url: string, body?: unknown, as = org) =>
    t.call(method, url, { token: as.token, body });
  const create = async (body: Record<string, unknown>, as = org) => {
    const res = await api('POST', '/v1/mailboxes', body, as);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };
  const login = (user: string, pass: string) => smtpLogin(t.submissionPort, user, pass);

  before(async () => {
    dns = await startDnsServer();
    sink = await startSmtpSink();
    dns.set('remote.test', { MX: [{ exchange: 'mx.remote.test', priority: 10 }] });
    dns.set('mx.remote.test', { A: ['127.0.0.1'] });
    t = await startTestApp({
      workers: true,
      smtp: true,
      submission: true,
      env: {
        MAILROOM_HOSTNAME: HOST,
        MAILROOM_DNS_SERVERS: dns.address,
        MAILROOM_DNS_TIMEOUT: '300ms',
        MAILROOM_DNS_TRIES: '1',
        MAILROOM_INBOUND_DNS_CACHE: '1ms',
        MAILROOM_OUTBOUND_PORT: String(sink.port),
        MAILROOM_SUBMISSION_AUTH_FAILURES_PER_HOUR: '1000',
      },
    });
    org = await freshOrg(t);
    other = await freshOrg(t);
    await verifiedDomain(t, org.token, 'accounts.test', [dns]);
  });
  after(async () => {
    await t?.close();
    await sink?.close();
    await dns?.close();
  });

  test('names, status, a send limit of its own and an exportable password are kept', async () => {
    const mailbox = await create({
      address: 'Jane.Doe@accounts.test',
      first_name: ' Jane ',
      last_name: 'Doe',
      password: PASSWORD,
      daily_send_limit: 40,
      export_password: true,
    });
    assert.equal(mailbox.address, 'jane.doe@accounts.test');
    assert.equal(mailbox.first_name, 'Jane');
    assert.equal(mailbox.last_name, 'Doe');
    assert.equal(mailbox.display_name, 'Jane Doe', 'the display name defaults to the names');
    assert.equal(mailbox.status, 'active');
    assert.equal(mailbox.daily_send_limit, 40);
    assert.equal(mailbox.password_exportable, true);
    assert.ok(!JSON.stringify(mailbox).includes(PASSWORD));
    const plain = await create({ address: 'plain@accounts.test', password: PASSWORD });
    assert.equal(plain.password_exportable, false);
    assert.equal(plain.daily_send_limit, null);

    const changed = await api('PATCH', `/v1/mailboxes/${mailbox.id}`, {
      last_name: 'Roe',
      daily_send_limit: null,
    });
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    assert.equal(changed.body.last_name, 'Roe');
    assert.equal(changed.body.daily_send_limit, null, 'null is back to the installation default');
    const [updated] = (await eventsOf(t, org, 'mailbox.updated')).filter(
      (e) => e.data.mailbox_id === mailbox.id,
    );
    assert.deepEqual(updated.data.changes.sort(), ['daily_send_limit', 'last_name']);

    const refused = await api('POST', '/v1/mailboxes', { address: 'x@accounts.test', export_password: true });
    assert.equal(refused.status, 422);
    assert.match(refused.body.detail, /export_password: needs a password/);
  });

  test('reserved local parts cannot be taken by a mailbox, but an alias may route them', async () => {
    for (const local of [
      'postmaster',
      'ABUSE',
      'hostmaster',
      'webmaster',
      'admin',
      'root',
      'mailer-daemon',
      'noreply',
    ]) {
      const res = await api('POST', '/v1/mailboxes', {
        address: `${local}@accounts.test`,
        password: PASSWORD,
      });
      assert.equal(res.status, 422, local);
      assert.match(res.body.detail, /reserved for the mail system/);
    }
    for (const local of ['b+abc', 'srs0=hash=tt=example.com=user', 'SRS1=x']) {
      const res = await api('POST', '/v1/mailboxes', { address: `${local}@accounts.test` });
      assert.equal(res.status, 422, local);
      assert.match(res.body.detail, /reserved for bounce and forwarding addresses/);
    }
    const target = await create({ address: 'ops@accounts.test' });
    const alias = await api('POST', '/v1/aliases', {
      address: 'postmaster@accounts.test',
      targets: [target.address],
    });
    assert.equal(alias.status, 201, JSON.stringify(alias.body));
  });

  test('app passwords: shown once, log in to submission, never to the API, and stop at once when revoked', async () => {
    const mailbox = await create({ address: 'tools@accounts.test', password: PASSWORD });
    const made = await api('POST', `/v1/mailboxes/${mailbox.id}/app-passwords`, { label: 'Smartlead' });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const appPassword: string = made.body.password;
    assert.ok(appPassword.length >= 32);
    const listed = await api('GET', `/v1/mailboxes/${mailbox.id}/app-passwords`);
    assert.equal(listed.status, 200);
    assert.deepEqual(
      listed.body.items.map((i: any) => [i.id, i.label]),
      [[made.body.id, 'Smartlead']],
    );
    assert.ok(!JSON.stringify(listed.body).includes(appPassword), 'never shown again');
    // Another organisation sees neither the mailbox nor its app passwords.
    assert.equal(
      (await api('GET', `/v1/mailboxes/${mailbox.id}/app-passwords`, undefined, other)).status,
      404,
    );

    assert.equal((await login('tools@accounts.test', appPassword)).ok, true);
    assert.equal((await login('tools@accounts.test', PASSWORD)).ok, true, 'the own password still works');
    const sent = await submitMail(t.submissionPort, 'tools@accounts.test', appPassword, {
      from: 'tools@accounts.test',
      to: 'someone@remote.test',
      subject: 'through an app password',
    });
    assert.equal(sent.ok, true, sent.response);
    await until(
      async () => sink.messages.filter((m) => m.raw.toString().includes('through an app password')).length,
      (n) => n === 1,
    );
    const used = await api('GET', `/v1/mailboxes/${mailbox.id}/app-passwords`);
    assert.equal(used.body.items[0].last_used_ip, '127.0.0.1');

    // Never a credential for the API, as a bearer token or otherwise.
    const asBearer = await t.call('GET', '/v1/mailboxes', { token: appPassword });
    assert.equal(asBearer.status, 401);
    const asBasic = await t.call('GET', '/v1/mailboxes', {
      headers: {
        authorization: `Basic ${Buffer.from(`tools@accounts.test:${appPassword}`).toString('base64')}`,
      },
    });
    assert.equal(asBasic.status, 401);

    const revoked = await api('DELETE', `/v1/mailboxes/${mailbox.id}/app-passwords/${made.body.id}`);
    assert.equal(revoked.status, 204);
    const after = await login('tools@accounts.test', appPassword);
    assert.equal(after.ok, false);
    assert.equal(after.code, 535);
    const types = (await eventsOf(t, org, 'mailbox.app_password_created')).map((e) => e.data.label);
    assert.deepEqual(types, ['Smartlead']);
    assert.equal((await eventsOf(t, org, 'mailbox.app_password_revoked')).length, 1);
  });

  test('a suspended mailbox cannot log in or send, and its mail is still received and filed', async () => {
    const mailbox = await create({ address: 'paused@accounts.test', password: PASSWORD });
    const app = await api('POST', `/v1/mailboxes/${mailbox.id}/app-passwords`, { label: 'client' });
    assert.equal((await login('paused@accounts.test', PASSWORD)).ok, true);
    const suspended = await api('PATCH', `/v1/mailboxes/${mailbox.id}`, { status: 'suspended' });
    assert.equal(suspended.body.status, 'suspended');

    for (const password of [PASSWORD, app.body.password]) {
      const refused = await login('paused@accounts.test', password);
      assert.equal(refused.ok, false);
      assert.equal(refused.code, 535);
    }
    const viaApi = await api('POST', '/v1/messages/send', {
      from: 'paused@accounts.test',
      to: ['someone@remote.test'],
      subject: 'no',
      text: 'no',
    });
    assert.equal(viaApi.status, 422);
    assert.match(viaApi.body.detail, /the mailbox is suspended/);

    await sendMail(t.smtpPort, {
      from: 'friend@remote.test',
      to: 'paused@accounts.test',
      subject: 'still arrives',
    });
    const filed = await until(
      async () => (await api('GET', `/v1/mailboxes/${mailbox.id}`)).body.folders[0],
      (inbox) => inbox.messages === 1,
    );
    assert.equal(filed.name, 'INBOX');

    await api('PATCH', `/v1/mailboxes/${mailbox.id}`, { status: 'active' });
    assert.equal((await login('paused@accounts.test', PASSWORD)).ok, true);
  });

  test('an administrator’s reset: a generated password shown once; the old one and revoked app passwords stop', async () => {
    const mailbox = await create({
      address: 'reset@accounts.test',
      password: PASSWORD,
      export_password: true,
    });
    const app = await api('POST', `/v1/mailboxes/${mailbox.id}/app-passwords`, { label: 'client' });
    const reset = await api('POST', `/v1/mailboxes/${mailbox.id}/reset-password`, {
      password_policy: { length: 16, symbols: true },
      revoke_app_passwords: true,
    });
    assert.equal(reset.status, 200, JSON.stringify(reset.body));
    const generated: string = reset.body.password;
    assert.equal(generated.length, 16);
    assert.match(generated, /[a-z]/);
    assert.match(generated, /[A-Z]/);
    assert.match(generated, /[2-9]/);
    assert.match(generated, /[!#%*+\-=?@^_]/);
    assert.equal(reset.body.password_exportable, true, 'still exportable, with the new password');
    assert.equal((await login('reset@accounts.test', generated)).ok, true);
    assert.equal((await login('reset@accounts.test', PASSWORD)).ok, false);
    assert.equal((await login('reset@accounts.test', app.body.password)).ok, false);
    assert.deepEqual((await api('GET', `/v1/mailboxes/${mailbox.id}/app-passwords`)).body.items, []);

    const chosen = await api('POST', `/v1/mailboxes/${mailbox.id}/reset-password`, {
      password: 'another long password',
    });
    assert.equal(chosen.body.password, null, 'a given password is not echoed');
    assert.equal((await login('reset@accounts.test', 'another long password')).ok, true);
    const weak = await api('POST', `/v1/mailboxes/${mailbox.id}/reset-password`, {
      password_policy: { length: 4 },
    });
    assert.equal(weak.status, 400);
    const viewer = await api('POST', `/v1/mailboxes/${mailbox.id}/reset-password`, {}, other);
    assert.equal(viewer.status, 404);
  });

  test('bulk update and bulk suspend, by ids and by domain, one event each, within the organisation', async () => {
    const bulkDomain = await verifiedDomain(t, org.token, 'bulk.accounts.test', [dns]);
    const made: any[] = [];
    for (const name of ['a', 'b', 'c'])
      made.push(await create({ address: `${name}@bulk.accounts.test`, password: PASSWORD }));
    const outsider = await create({ address: 'keep@accounts.test', password: PASSWORD });
    const foreignDomain = await verifiedDomain(t, other.token, 'foreign.accounts.test', [dns]);
    const foreign = await create({ address: 'theirs@foreign.accounts.test', password: PASSWORD }, other);

    const byIds = await api('POST', '/v1/mailboxes/bulk-update', {
      mailboxes: { ids: [made[0].id, made[1].id, foreign.id] },
      changes: { daily_send_limit: 25 },
    });
    assert.equal(byIds.status, 200, JSON.stringify(byIds.body));
    assert.equal(byIds.body.matched, 2, 'the other organisation’s mailbox is not touched');
    assert.equal(
      (await api('GET', `/v1/mailboxes/${foreign.id}`, undefined, other)).body.daily_send_limit,
      null,
    );

    const suspended = await api('POST', '/v1/mailboxes/bulk-suspend', {
      mailboxes: { domain_id: bulkDomain.id },
    });
    assert.equal(suspended.body.matched, 3);
    assert.deepEqual(new Set(suspended.body.updated_ids), new Set(made.map((m) => m.id)));
    for (const m of made) {
      const now = (await api('GET', `/v1/mailboxes/${m.id}`)).body;
      assert.equal(now.status, 'suspended');
    }
    assert.equal((await api('GET', `/v1/mailboxes/${outsider.id}`)).body.status, 'active');
    assert.equal((await login('a@bulk.accounts.test', PASSWORD)).ok, false);
    const events = (await eventsOf(t, org, 'mailbox.updated')).filter((e) =>
      e.data.changes.includes('status'),
    );
    assert.equal(events.filter((e) => made.some((m) => m.id === e.data.mailbox_id)).length, 3);

    const foreignByDomain = await api('POST', '/v1/mailboxes/bulk-suspend', {
      mailboxes: { domain_id: foreignDomain.id },
    });
    assert.equal(foreignByDomain.status, 404);
    const resumed = await api('POST', '/v1/mailboxes/bulk-update', {
      mailboxes: { domain_id: bulkDomain.id },
      changes: { status: 'active' },
    });
    assert.equal(resumed.body.matched, 3);
    assert.equal((await login('a@bulk.accounts.test', PASSWORD)).ok, true);
    const nothing = await api('POST', '/v1/mailboxes/bulk-update', {
      mailboxes: { ids: [made[0].id] },
      changes: {},
    });
    assert.equal(nothing.status, 422);
    const both = await api('POST', '/v1/mailboxes/bulk-update', {
      mailboxes: { ids: [made[0].id], domain_id: bulkDomain.id },
      changes: { status: 'active' },
    });
    assert.equal(both.status, 400);
  });

  test('a mailbox’s own daily limit holds its mail beyond it, over the installation’s', async () => {
    const mailbox = await create({
      address: 'capped@accounts.test',
      password: PASSWORD,
      daily_send_limit: 2,
    });
    const send = (n: number) =>
      api('POST', '/v1/messages/send', {
        from: mailbox.address,
        to: [`capped${n}@remote.test`],
        subject: `capped ${n}`,
        text: 'hello',
      });
    assert.equal((await send(1)).body.status, 'queued');
    assert.equal((await send(2)).body.status, 'queued');
    const third = await send(3);
    assert.equal(third.status, 202);
    assert.equal(third.body.status, 'held');
    assert.equal(third.body.recipients[0].hold_reason, 'mailbox_daily_limit');
    // Through submission too: the mailbox's count is the same one.
    const submitted = await submitMail(t.submissionPort, mailbox.address, PASSWORD, {
      from: mailbox.address,
      to: 'capped4@remote.test',
      subject: 'capped 4',
    });
    assert.equal(submitted.ok, true, submitted.response);
    const held = await api('GET', '/v1/queue?status=held&page_size=100');
    assert.ok(
      held.body.items.some(
        (i: any) => i.recipient === 'capped4@remote.test' && i.hold_reason === 'mailbox_daily_limit',
      ),
    );
  });
});

describe(`organisation limits on ${engine}`, () => {
  const freshOrg = orgMaker('limits');
  let t: TestApp;

  before(async () => {
    t = await startTestApp({
      env: { MAILROOM_ORGANIZATION_MAX_MAILBOXES: '2', MAILROOM_ORGANIZATION_MAX_DOMAINS: '1' },
    });
  });
  after(async () => t?.close());

  test('domains and mailboxes past the organisation’s limit are refused with the limit, its value and usage', async () => {
    const org = await freshOrg(t);
    const api = (method: string, url: string, body?: unknown) =>
      t.call(method, url, { token: org.token, body });
    assert.equal((await api('POST', '/v1/domains', { name: 'one.limits.test' })).status, 201);
    const second = await api('POST', '/v1/domains', { name: 'two.limits.test' });
    assert.equal(second.status, 403);
    assert.equal(second.headers['content-type'], 'application/problem+json');
    assert.equal(second.body.code, 'limit_reached');
    assert.deepEqual([second.body.limit, second.body.value, second.body.usage], ['domains', 1, 1]);

    // Two at once for the last place: exactly one gets it.
    assert.equal((await api('POST', '/v1/mailboxes', { address: 'a@one.limits.test' })).status, 201);
    const racing = await Promise.all(
      ['b', 'c'].map((l) => api('POST', '/v1/mailboxes', { address: `${l}@one.limits.test` })),
    );
    assert.deepEqual(racing.map((r) => r.status).sort(), [201, 403]);
    const refused = racing.find((r) => r.status === 403)!;
    assert.deepEqual([refused.body.limit, refused.body.value, refused.body.usage], ['mailboxes', 2, 2]);
    assert.match(refused.body.detail, /may have 2 mailboxes and has 2/);
    // Each organisation has its own count.
    const another = await freshOrg(t);
    const theirs = await t.call('POST', '/v1/domains', {
      token: another.token,
      body: { name: 'three.limits.test' },
    });
    assert.equal(theirs.status, 201);
  });
});
