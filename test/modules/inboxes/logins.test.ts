// Generated inboxes work: each one, with the password its credential export carries, logs in to the
// submission server and sends through it over real SMTP; a suspended one is refused.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engine, type Org, orgMaker, startTestApp, type TestApp } from '../../support/app.ts';
import { parseCsv } from '../../support/csv.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';
import { smtpLogin, submitMail } from '../../support/smtp.ts';
import { startSmtpSink, type SmtpSink } from '../../support/smtp-sink.ts';
import { until } from '../../support/until.ts';

const COUNT = 20;

describe(`generated inboxes log in and send on ${engine}`, () => {
  const freshOrg = orgMaker('logins');
  let t: TestApp;
  let dns: TestDnsServer;
  let sink: SmtpSink;
  let org: Org;

  before(async () => {
    dns = await startDnsServer();
    sink = await startSmtpSink();
    dns.set('remote.test', { MX: [{ exchange: 'mx.remote.test', priority: 10 }] });
    dns.set('mx.remote.test', { A: ['127.0.0.1'] });
    t = await startTestApp({
      workers: true,
      submission: true,
      env: {
        MAILROOM_HOSTNAME: 'mx.logins.test',
        MAILROOM_DNS_SERVERS: dns.address,
        MAILROOM_DNS_TIMEOUT: '300ms',
        MAILROOM_DNS_TRIES: '1',
        MAILROOM_OUTBOUND_PORT: String(sink.port),
        MAILROOM_SUBMISSION_AUTH_FAILURES_PER_HOUR: '1000',
        MAILROOM_EXPORT_SMTP_HOST: 'smtp.logins.test',
      },
    });
    org = await freshOrg(t);
  });
  after(async () => {
    await t?.close();
    await sink?.close();
    await dns?.close();
  });

  test('every generated inbox logs in with its exported password and sends; a suspended one is refused', async () => {
    const domain = await verifiedDomain(t, org.token, 'logins.test', [dns]);
    const started = await t.call('POST', '/v1/inboxes/generate', {
      token: org.token,
      body: {
        domains: [{ domain_id: domain.id, count: COUNT }],
        password_policy: { length: 24, symbols: true },
      },
    });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    await until(
      async () => (await t.call('GET', `/v1/jobs/${started.body.id}`, { token: org.token })).body.state,
      (state) => state === 'succeeded',
      60_000,
    );
    const exported = await t.call('GET', `/v1/exports/inboxes.csv?domain_id=${domain.id}`, {
      token: org.token,
    });
    assert.equal(exported.status, 200, String(exported.body));
    const [header, ...rows] = parseCsv(exported.body);
    const column = (name: string) => header.indexOf(name);
    assert.equal(rows.length, COUNT);
    for (const row of rows) {
      const address = row[column('email')];
      const password = row[column('smtp_password')];
      assert.equal(row[column('smtp_host')], 'smtp.logins.test');
      assert.equal(row[column('smtp_username')], address);
      assert.equal(password.length, 24);
      const sent = await submitMail(t.submissionPort, address, password, {
        from: address,
        to: 'reader@remote.test',
        subject: `from ${address}`,
      });
      assert.equal(sent.ok, true, `${address}: ${sent.response}`);
    }
    await until(
      async () => sink.messages.filter((m) => m.raw.toString().includes('Subject: from ')).length,
      (n) => n === COUNT,
      30_000,
    );

    const [first] = rows;
    const mailboxes = await t.call(
      'GET',
      `/v1/mailboxes?domain_id=${domain.id}&q=${first[column('email')]}`,
      {
        token: org.token,
      },
    );
    const suspended = await t.call('PATCH', `/v1/mailboxes/${mailboxes.body.items[0].id}`, {
      token: org.token,
      body: { status: 'suspended' },
    });
    assert.equal(suspended.status, 200);
    const refused = await smtpLogin(t.submissionPort, first[column('email')], first[column('smtp_password')]);
    assert.deepEqual([refused.ok, refused.code], [false, 535]);
  });
});
