// Back-pressure: while accepted mail waits for processing past a configured depth, the MX answers
// 451 4.3.1 to new mail (the sender tries again later) instead of taking mail it cannot file in time;
// /ready, /ready/mail and /metrics show the backlog. Once processing has caught up, mail is taken again.
// The first instance runs the MX without workers, so accepted mail waits; a second one on the same
// database runs the workers and drains it.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { engine, signUpWithOrg, startTestApp, type TestApp } from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';
import { sendMail } from '../../support/smtp.ts';
import { until } from '../../support/until.ts';

describe(`back-pressure on ${engine}`, () => {
  let dns: TestDnsServer | undefined;
  const apps: TestApp[] = [];
  after(async () => {
    for (const a of apps.reverse()) await a.close();
    await dns?.close();
  });

  test('a processing backlog over its limit makes the MX answer 451 4.3.1; drained, it accepts again', async () => {
    dns = await startDnsServer();
    const env = {
      MAILROOM_DNS_SERVERS: dns.address,
      MAILROOM_DNS_TIMEOUT: '300ms',
      MAILROOM_DNS_TRIES: '1',
      MAILROOM_BACKLOG_MAX_PROCESSING: '3',
      MAILROOM_BACKLOG_CHECK_INTERVAL: '50ms',
    };
    const behind = await startTestApp({ env, smtp: true });
    apps.push(behind);
    const org = await signUpWithOrg(behind, 'pressure@example.com', 'Pressure');
    await verifiedDomain(behind, org.token, 'pressure.test', [dns]);
    const box = await behind.call('POST', '/v1/mailboxes', {
      token: org.token,
      body: { address: 'box@pressure.test' },
    });
    assert.equal(box.status, 201);
    const mail = (n: number) => ({
      from: 'someone@origin.test',
      to: 'box@pressure.test',
      subject: `pressure ${n}`,
    });

    // Up to the limit and one past it are taken: the check is of what waits when a message begins.
    for (let n = 1; n <= 4; n++) await sendMail(behind.smtpPort, mail(n));
    const refusal = await until(
      () =>
        sendMail(behind.smtpPort, mail(5)).then(
          () => null,
          (err: { responseCode?: number; response?: string }) => err,
        ),
      (err) => err !== null,
      10_000,
    );
    assert.equal(refusal!.responseCode, 451);
    assert.match(refusal!.response ?? '', /4\.3\.1/);

    const ready = await behind.call('GET', '/ready');
    assert.equal(ready.status, 200, 'the API stays ready');
    assert.equal(ready.body.mail.accepting_mail, false);
    assert.deepEqual(
      [ready.body.mail.processing.depth, ready.body.mail.processing.limit, ready.body.mail.processing.over],
      [4, 3, true],
    );
    assert.ok(ready.body.mail.processing.oldest_age_seconds >= 0);
    assert.equal((await behind.call('GET', '/ready/mail')).status, 503);
    const metrics = await behind.call('GET', '/metrics');
    assert.match(metrics.body, /^mailroom_backlog_depth\{queue="processing"\} 4$/m);
    assert.match(metrics.body, /^mailroom_backlog_oldest_seconds\{queue="processing"\} \d+$/m);

    // Workers on the same database file the backlog; the MX takes mail again.
    await behind.app.close();
    const catchingUp = await startTestApp({
      env: behind.env,
      smtp: true,
      workers: true,
      ...(engine === 'postgres'
        ? { databaseUrl: behind.env.DATABASE_URL }
        : { dataDir: behind.env.MAILROOM_DATA_DIR }),
    });
    apps.push(catchingUp);
    await until(
      () =>
        sendMail(catchingUp.smtpPort, mail(6)).then(
          () => true,
          () => false,
        ),
      (sent) => sent,
      20_000,
    );
    const folders = await until(
      () => catchingUp.call('GET', `/v1/mailboxes/${box.body.id}`, { token: org.token }),
      (res) => res.body.folders?.find((f: any) => f.name === 'INBOX')?.messages === 5,
      20_000,
    );
    assert.ok(folders);
    const state = await catchingUp.call('GET', '/ready/mail');
    assert.equal(state.status, 200);
    assert.equal(state.body.mail.accepting_mail, true);
  });
});
