// Outbound mail end to end: Mailroom sends through its queue to a remote MX (an SMTP sink on loopback)
// found through MX records in real DNS servers on loopback. Messages come in through the send API and
// SMTP submission; results, retries, bounces (synchronous and reported later to the VERP address),
// DSNs, suppression, the queue API and forwarding are followed through the public surface.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dkimVerify } from 'mailauth';
import { simpleParser } from 'mailparser';
import nodemailer from 'nodemailer';
import { engine, eventsOf, orgMaker, startTestApp, type Org, type TestApp } from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { publish, requiredRecords, verifiedDomain } from '../../support/domains.ts';
import { startSmtpSink, type SmtpSink } from '../../support/smtp-sink.ts';
import { SmtpDialogue, sendMail } from '../../support/smtp.ts';
import { until } from '../../support/until.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../../support/webhook-receiver.ts';

const HOST = 'mx.mailroom.test';

describe(`outbound mail on ${engine}`, () => {
  let t: TestApp;
  let dns: TestDnsServer[];
  let sink: SmtpSink;
  let org: Org;
  let domain: { id: string; name: string };
  let receiver: WebhookReceiver;
  const newOrg = orgMaker('outbound');

  before(async () => {
    dns = [await startDnsServer(), await startDnsServer()];
    sink = await startSmtpSink();
    for (const d of dns) {
      d.set('remote.test', { MX: [{ exchange: 'mx.remote.test', priority: 10 }] });
      d.set('mx.remote.test', { A: ['127.0.0.1'] });
      d.set('nullmx.test', { MX: [{ exchange: '', priority: 0 }] });
    }
    t = await startTestApp({
      workers: true,
      smtp: true,
      submission: true,
      env: {
        MAILROOM_HOSTNAME: HOST,
        MAILROOM_DNS_SERVERS: dns.map((d) => d.address).join(','),
        MAILROOM_DNS_TIMEOUT: '300ms',
        MAILROOM_DNS_TRIES: '1',
        MAILROOM_INBOUND_DNS_CACHE: '1ms',
        MAILROOM_OUTBOUND_PORT: String(sink.port),
        MAILROOM_OUTBOUND_RETRY_SCHEDULE: '1s,2s',
        MAILROOM_OUTBOUND_CONNECT_TIMEOUT: '2s',
        MAILROOM_OUTBOUND_COMMAND_TIMEOUT: '5s',
        MAILROOM_SEND_LIMIT_MAILBOX_PER_DAY: '30',
        MAILROOM_SUBMISSION_ALLOW_INSECURE_AUTH: 'false',
        MAILROOM_WEBHOOK_ALLOW_HOSTS: 'receiver.test',
      },
    });
    receiver = await startWebhookReceiver();
    dns[0].set('receiver.test', { A: ['127.0.0.1'] });
    org = await newOrg(t);
    domain = await verifiedDomain(t, org.token, 'hosted.test', dns);
    // A second key, Ed25519, signs alongside the RSA one once its record is published and verified.
    const rotated = await api('POST', `/v1/domains/${domain.id}/dkim/rotate`, { algorithm: 'ed25519' });
    assert.equal(rotated.status, 201, JSON.stringify(rotated.body));
    publish(dns, await requiredRecords(t, org.token, domain.id));
    assert.equal((await api('POST', `/v1/domains/${domain.id}/verify`)).status, 200);
    const created = await api('POST', '/v1/mailboxes', {
      address: 'sender@hosted.test',
      password: 'sender password 123',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
  });
  after(async () => {
    await t?.close();
    await receiver?.close();
    await sink?.close();
    for (const d of dns ?? []) await d.close();
  });

  function api(method: string, url: string, body?: unknown, headers?: Record<string, string>) {
    return t.call(method, url, { token: org.token, body, headers });
  }
  async function send(body: Record<string, unknown>, headers?: Record<string, string>) {
    const res = await api(
      'POST',
      '/v1/messages/send',
      { from: 'sender@hosted.test', subject: 'Hi', text: 'Hello', ...body },
      headers,
    );
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body;
  }
  /** The sink's messages to `rcpt`, once there are `n`. */
  const received = (rcpt: string, n = 1) =>
    until(
      async () => sink.messages.filter((m) => m.rcptTo.includes(rcpt)),
      (list) => list.length >= n,
      20_000,
    );
  const message = (id: string) => api('GET', `/v1/messages/${id}`).then((r) => r.body);
  const settled = (id: string, status: string) =>
    until(
      () => message(id),
      (m) => m.status === status,
      20_000,
    );

  test('the send API delivers through the MX found in DNS, signed with RSA and Ed25519, every attempt recorded', async () => {
    const sent = await send({
      from: { address: 'sender@hosted.test', name: 'Sender Person' },
      to: ['alice@remote.test'],
      cc: ['bob@remote.test'],
      bcc: ['carol@remote.test'],
      reply_to: ['replies@hosted.test'],
      subject: 'Quarterly report ✓',
      text: 'The plain text',
      html: '<p>The <b>html</b></p>',
      attachments: [{ filename: 'data.csv', content: Buffer.from('a,b\n1,2\n').toString('base64') }],
      headers: { 'X-Campaign': 'q3', 'List-Unsubscribe': '<mailto:unsub@hosted.test>' },
      tags: ['report', 'q3'],
    });
    assert.equal(sent.status, 'queued');
    assert.equal(sent.recipients.length, 3);
    const [copy] = await received('alice@remote.test');
    // One transaction carries every recipient at the domain; the envelope sender is the VERP address.
    assert.deepEqual(copy.rcptTo.sort(), ['alice@remote.test', 'bob@remote.test', 'carol@remote.test']);
    assert.match(copy.mailFrom, /^b\+[a-z2-7]+@bounces\.hosted\.test$/);

    const parsed = await simpleParser(copy.raw);
    assert.equal(parsed.subject, 'Quarterly report ✓');
    assert.equal(parsed.messageId, sent.message_id);
    assert.equal(parsed.headers.get('x-campaign'), 'q3');
    assert.equal(parsed.headers.get('bcc'), undefined);
    assert.equal(parsed.attachments[0].content.toString(), 'a,b\n1,2\n');
    assert.ok(parsed.date);

    const verified = await dkimVerify(copy.raw, {
      resolver: async (name: string, type: string) => {
        const records = await import('node:dns/promises');
        const r = new records.Resolver();
        r.setServers([dns[0].address]);
        return r.resolve(name, type as 'TXT');
      },
    } as never);
    const results = verified.results.map((r: any) => [r.signingDomain, r.algo, r.status.result]).sort();
    assert.deepEqual(results, [
      ['hosted.test', 'ed25519-sha256', 'pass'],
      ['hosted.test', 'rsa-sha256', 'pass'],
    ]);

    const detail = await settled(sent.id, 'delivered');
    assert.equal(detail.direction, 'outbound');
    assert.deepEqual(detail.tags, ['report', 'q3']);
    assert.equal(detail.text, 'The plain text');
    assert.equal(detail.recipients.length, 3);
    for (const r of detail.recipients) {
      assert.equal(r.status, 'delivered');
      assert.equal(r.attempts_detail.length, 1);
      const attempt = r.attempts_detail[0];
      assert.equal(attempt.outcome, 'delivered');
      assert.equal(attempt.mx, 'mx.remote.test');
      assert.equal(attempt.ip, '127.0.0.1');
      assert.equal(attempt.code, 250);
      assert.equal(attempt.mta_sts, 'none');
    }
    const delivered = (await eventsOf(t, org, 'message.delivered')).filter(
      (e) => e.data.message_id === sent.id,
    );
    assert.equal(delivered.length, 3);
    const queued = (await eventsOf(t, org, 'message.queued')).find((e) => e.data.message_id === sent.id);
    assert.deepEqual(queued.data.recipients.sort(), [
      'alice@remote.test',
      'bob@remote.test',
      'carol@remote.test',
    ]);
  });

  test('the send API refuses what it cannot send: foreign sender, bad addresses, reserved headers', async () => {
    const refused = async (body: Record<string, unknown>, field: RegExp) => {
      const res = await api('POST', '/v1/messages/send', {
        from: 'sender@hosted.test',
        to: ['x@remote.test'],
        subject: 's',
        text: 't',
        ...body,
      });
      assert.ok([400, 422].includes(res.status), `${JSON.stringify(body)} → ${res.status}`);
      assert.match(JSON.stringify(res.body), field);
    };
    await refused({ from: 'someone@gmail.test' }, /from/);
    await refused({ from: 'sender@unverified.test' }, /from/);
    await refused({ to: ['not an address'] }, /to/);
    await refused({ to: ['a@[127.0.0.1]'] }, /to/);
    await refused({ to: [] }, /recipient/);
    await refused({ text: null }, /text/);
    await refused({ headers: { From: 'evil@x.test' } }, /headers/);
    await refused({ headers: { 'X-Bad': 'a\r\nBcc: x@y.test' } }, /headers/);
    await refused({ attachments: [{ filename: 'a', content: '***' }] }, /base64/);
    // Another organisation cannot send as this one's domain.
    const other = await newOrg(t);
    const res = await t.call('POST', '/v1/messages/send', {
      token: other.token,
      body: { from: 'sender@hosted.test', to: ['x@remote.test'], subject: 's', text: 't' },
    });
    assert.equal(res.status, 422);
  });

  test('an Idempotency-Key makes a retried request send once', async () => {
    const body = { to: ['idem@remote.test'], subject: 'Once only' };
    const first = await send(body, { 'idempotency-key': 'order-42' });
    const again = await api(
      'POST',
      '/v1/messages/send',
      { from: 'sender@hosted.test', text: 'Hello', ...body },
      { 'idempotency-key': 'order-42' },
    );
    assert.equal(again.status, 200);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.equal(again.body.id, first.id);
    const changed = await api(
      'POST',
      '/v1/messages/send',
      { from: 'sender@hosted.test', text: 'Other', ...body },
      { 'idempotency-key': 'order-42' },
    );
    assert.equal(changed.status, 422);
    await settled(first.id, 'delivered');
    assert.equal((await received('idem@remote.test')).length, 1);
  });

  test('a 4xx is retried on the backoff schedule until the server takes the message', async () => {
    sink.onRecipient('busy@remote.test', { code: 451, message: '4.7.1 try again later' });
    const sent = await send({ to: ['busy@remote.test'], subject: 'Greylisted' });
    const deferred = await until(
      () => message(sent.id),
      (m) => m.recipients[0].attempts_detail.length >= 2,
      20_000,
    );
    assert.equal(deferred.status, 'pending');
    const [a1, a2] = deferred.recipients[0].attempts_detail;
    assert.equal(a1.outcome, 'deferred');
    assert.equal(a1.code, 451);
    assert.equal(a1.enhanced_code, '4.7.1');
    // The second attempt waited for the first step of the schedule (1 s).
    assert.ok(Date.parse(a2.attempted_at) - Date.parse(a1.attempted_at) >= 900);
    const events = (await eventsOf(t, org, 'message.deferred')).filter((e) => e.data.message_id === sent.id);
    assert.ok(events.length >= 2);
    sink.onRecipient('busy@remote.test', null);
    const done = await settled(sent.id, 'delivered');
    assert.equal(done.recipients[0].attempts_detail.at(-1).outcome, 'delivered');
    assert.equal((await received('busy@remote.test')).length, 1);
  });

  test('a 5xx fails for good: DSN to the sender’s mailbox, the address suppressed, later mail held until released', async () => {
    sink.onRecipient('gone@remote.test', { code: 550, message: '5.1.1 <gone@remote.test>: no such user' });
    const sent = await send({ to: ['gone@remote.test', 'fine@remote.test'], subject: 'To a missing user' });
    const detail = await settled(sent.id, 'bounced');
    const gone = detail.recipients.find((r: any) => r.address === 'gone@remote.test');
    assert.equal(gone.status, 'bounced');
    assert.equal(gone.attempts_detail[0].code, 550);
    assert.equal(detail.recipients.find((r: any) => r.address === 'fine@remote.test').status, 'delivered');

    // The DSN was delivered locally to the sender's INBOX (a hosted mailbox).
    const dsn = await until(
      () =>
        t.app.database.query<any>(
          `select m.* from messages m where m.direction = 'inbound' and m.subject = 'Undelivered Mail Returned to Sender'
             and m.rcpt_to = '{sender@hosted.test}' and m.processed_at is not null`,
        ),
      (r) => r.rows.length >= 1,
      20_000,
    );
    const raw = await t.call('GET', `/v1/messages/${dsn.rows[0].id}/raw`, { token: org.token });
    assert.match(raw.body, /^Content-Type: multipart\/report; report-type=delivery-status/im);
    assert.match(raw.body, /Final-Recipient: rfc822;\s*gone@remote\.test/i);
    assert.match(raw.body, /Status: 5\.1\.1/);
    assert.equal(dsn.rows[0].mail_from, '');

    const suppression = await api('GET', '/v1/suppressions/gone@remote.test');
    assert.equal(suppression.status, 200);
    assert.equal(suppression.body.reason, 'hard_bounce');
    assert.equal(suppression.body.message_id, sent.id);
    const bounced = (await eventsOf(t, org, 'message.bounced')).find((e) => e.data.message_id === sent.id);
    assert.equal(bounced.data.source, 'smtp');
    assert.equal(bounced.data.suppressed, true);

    // The next message to the address is held with the reason, not sent and not dropped.
    const later = await send({ to: ['gone@remote.test'], subject: 'Held for suppression' });
    assert.equal(later.status, 'held');
    assert.equal(later.recipients[0].hold_reason, 'suppressed');
    const queue = await api('GET', '/v1/queue?status=held');
    const item = queue.body.items.find((i: any) => i.message_id === later.id);
    assert.equal(item.hold_reason, 'suppressed');

    // The user exists again; releasing the held message delivers it and lifts the suppression.
    sink.onRecipient('gone@remote.test', null);
    const released = await api('POST', `/v1/queue/${item.id}/release`);
    assert.equal(released.status, 200, JSON.stringify(released.body));
    await settled(later.id, 'delivered');
    assert.equal((await api('GET', '/v1/suppressions/gone@remote.test')).status, 404);
  });

  test('a bounce report that arrives later at the VERP address marks the recipient bounced', async () => {
    const sent = await send({ to: ['later@remote.test'], subject: 'Accepted, then bounced' });
    await settled(sent.id, 'delivered');
    const [copy] = await received('later@remote.test');
    const dsn = [
      'From: Mail Delivery System <MAILER-DAEMON@mx.remote.test>',
      `To: ${copy.mailFrom}`,
      'Subject: Undelivered Mail Returned to Sender',
      'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"',
      '',
      '--b1',
      'Content-Type: text/plain',
      '',
      'Your message could not be delivered.',
      '--b1',
      'Content-Type: message/delivery-status',
      '',
      'Reporting-MTA: dns; mx.remote.test',
      '',
      'Final-Recipient: rfc822; later@remote.test',
      'Action: failed',
      'Status: 5.1.1',
      'Remote-MTA: dns; store.remote.test',
      'Diagnostic-Code: smtp; 550 5.1.1 mailbox unknown',
      '--b1',
      'Content-Type: text/rfc822-headers',
      '',
      `Message-ID: ${sent.message_id}`,
      '--b1--',
      '',
    ].join('\r\n');
    await sendMail(t.smtpPort, {
      from: '',
      to: copy.mailFrom,
      raw: dsn,
      envelope: { from: '', to: [copy.mailFrom] },
    });
    const detail = await settled(sent.id, 'bounced');
    const r = detail.recipients[0];
    assert.equal(r.status, 'bounced');
    assert.equal(r.bounces.length, 1);
    assert.deepEqual(
      [r.bounces[0].kind, r.bounces[0].permanent, r.bounces[0].status, r.bounces[0].diagnostic],
      ['dsn', true, '5.1.1', '550 5.1.1 mailbox unknown'],
    );
    assert.equal((await api('GET', '/v1/suppressions/later@remote.test')).body.reason, 'hard_bounce');
    const event = (await eventsOf(t, org, 'message.bounced')).find((e) => e.data.message_id === sent.id);
    assert.equal(event.data.source, 'report');

    // A forged return address (a token we never signed) is refused at RCPT.
    const forged = copy.mailFrom.replace(/b\+([a-z2-7])/, (_m, c) => `b+${c === 'a' ? 'b' : 'a'}`);
    const { dialogue } = await SmtpDialogue.open(t.smtpPort);
    await dialogue.command('EHLO remote.test');
    await dialogue.command('MAIL FROM:<>');
    assert.match(await dialogue.command(`RCPT TO:<${forged}>`), /^550/);
    await dialogue.close();
  });

  test('a null MX (RFC 7505) fails at once with 5.1.10', async () => {
    const sent = await send({ to: ['anyone@nullmx.test'], subject: 'Nowhere' });
    const detail = await settled(sent.id, 'bounced');
    const attempt = detail.recipients[0].attempts_detail[0];
    assert.equal(attempt.outcome, 'bounced');
    assert.equal(attempt.enhanced_code, '5.1.10');
  });

  test('submission: a mailbox sends as itself; a foreign envelope sender or From is refused', async () => {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: t.submissionPort,
      secure: false,
      requireTLS: true,
      tls: { rejectUnauthorized: false },
      auth: { user: 'sender@hosted.test', pass: 'sender password 123' },
    });
    try {
      const info = await transport.sendMail({
        from: 'sender@hosted.test',
        to: 'sub@remote.test',
        subject: 'Through submission',
        text: 'hello',
      });
      assert.match(info.response, /^250 /);
      const [copy] = await received('sub@remote.test');
      const verified = await dkimVerify(copy.raw, {
        resolver: async (name: string, type: string) => {
          const { Resolver } = await import('node:dns/promises');
          const r = new Resolver();
          r.setServers([dns[0].address]);
          return r.resolve(name, type as 'TXT');
        },
      } as never);
      assert.ok(verified.results.some((r: any) => r.status.result === 'pass'));

      await assert.rejects(
        transport.sendMail({ from: 'boss@hosted.test', to: 'x@remote.test', subject: 's', text: 't' }),
        (err: any) => err.responseCode === 553,
      );
      await assert.rejects(
        transport.sendMail({ from: 'ceo@bank.test', to: 'x@remote.test', subject: 's', text: 't' }),
        (err: any) => err.responseCode === 553,
      );
      // An allowed envelope sender with someone else in From: refused after DATA.
      await assert.rejects(
        transport.sendMail({
          envelope: { from: 'sender@hosted.test', to: ['x@remote.test'] },
          from: 'ceo@bank.test',
          to: 'x@remote.test',
          subject: 's',
          text: 't',
        }),
        (err: any) => err.responseCode >= 500,
      );
    } finally {
      transport.close();
    }
  });

  test('the queue API: scheduled mail is listed and sent on demand, cancelled mail never leaves', async () => {
    const inAnHour = new Date(Date.now() + 3_600_000).toISOString();
    const later = await send({ to: ['sched@remote.test'], subject: 'Scheduled', send_at: inAnHour });
    assert.equal(later.status, 'scheduled');
    const cancelled = await send({ to: ['cancel@remote.test'], subject: 'Cancelled', send_at: inAnHour });
    const queue = await api('GET', '/v1/queue?status=queued');
    const item = queue.body.items.find((i: any) => i.message_id === later.id);
    assert.equal(item.scheduled, true);
    assert.equal(
      item.next_attempt_at,
      inAnHour.replace(/\.\d+Z$/, (m) => m),
    );

    const retried = await api('POST', '/v1/queue/retry', { message_id: later.id });
    assert.equal(retried.status, 200);
    await settled(later.id, 'delivered');

    const cancel = await api('POST', '/v1/queue/cancel', { message_id: cancelled.id });
    assert.equal(cancel.status, 200);
    assert.equal(cancel.body.items[0].status, 'cancelled');
    assert.equal((await message(cancelled.id)).status, 'failed');
    assert.equal((await api('POST', '/v1/queue/cancel', { message_id: cancelled.id })).status, 409);

    // Another organisation sees none of it.
    const other = await newOrg(t);
    const theirs = await t.call('GET', '/v1/queue', { token: other.token });
    assert.equal(theirs.body.total, 0);
    const foreign = await t.call('POST', `/v1/queue/${item.id}/retry`, { token: other.token });
    assert.equal(foreign.status, 404);
  });

  test('over the per-mailbox daily limit mail is held, not dropped, and a release sends it', async () => {
    // The limit here is 30 recipients a day per sending address.
    const addresses = Array.from({ length: 31 }, (_, i) => `limit${i}@remote.test`);
    await api('POST', '/v1/aliases', { address: 'news@hosted.test', targets: ['sender@hosted.test'] });
    const held = await send({ from: 'news@hosted.test', to: addresses, subject: 'Too many' });
    assert.equal(held.status, 'held');
    assert.ok(held.recipients.every((r: any) => r.hold_reason === 'mailbox_daily_limit'));
    const released = await api('POST', '/v1/queue/release', { message_id: held.id });
    assert.equal(released.body.items.length, 31);
    await settled(held.id, 'delivered');
  });

  test('concurrent sends racing for the last of a daily limit: exactly as many as fit are queued', async () => {
    // 30 a day: 7 messages of 4 recipients fit (28), the other 3 are held whole, however the
    // concurrent requests fall into batches (a batch that fits whole, or one decided message by message).
    await api('POST', '/v1/aliases', { address: 'race@hosted.test', targets: ['sender@hosted.test'] });
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        send({
          from: 'race@hosted.test',
          to: Array.from({ length: 4 }, (_, j) => `race${i}-${j}@remote.test`),
          subject: `Race ${i}`,
        }),
      ),
    );
    const queued = results.filter((r) => r.status === 'queued');
    assert.equal(queued.length, 7);
    for (const r of results.filter((r) => r.status !== 'queued')) {
      assert.equal(r.status, 'held');
      assert.ok(r.recipients.every((x: any) => x.hold_reason === 'mailbox_daily_limit'));
    }
  });

  test('with a webhook endpoint, every queued message reaches it (the send commit fans out)', async () => {
    const endpoint = await api('POST', '/v1/webhooks', {
      url: receiver.url('receiver.test'),
      event_types: ['message.queued'],
    });
    assert.equal(endpoint.status, 201, JSON.stringify(endpoint.body));
    receiver.secrets = [endpoint.body.secret];
    const sent = await Promise.all(
      Array.from({ length: 5 }, (_, i) => send({ to: [`hooked${i}@remote.test`], subject: `Hooked ${i}` })),
    );
    const ids = new Set(sent.map((m) => m.id));
    await until(
      async () => receiver.received.filter((m) => ids.has(m.json?.data?.message_id)).length,
      (n) => n === ids.size,
    );
    assert.ok(receiver.received.every((m) => m.verifiedWith !== null));
    assert.equal((await api('DELETE', `/v1/webhooks/${endpoint.body.id}`)).status, 204);
  });

  test('inbound forwarding leaves through the queue with an SRS sender', async () => {
    await api('POST', '/v1/aliases', { address: 'fwd@hosted.test', targets: ['outside@remote.test'] });
    await sendMail(t.smtpPort, {
      from: 'someone@elsewhere.test',
      to: 'fwd@hosted.test',
      subject: 'Forward me',
      text: 'hi',
    });
    const [copy] = await received('outside@remote.test');
    assert.match(copy.mailFrom, /^srs0=/i);
    assert.match(copy.raw.toString(), /^ARC-Seal:/m);
  });
});

describe(`outbound retries running out on ${engine}`, () => {
  let t: TestApp;
  let dns: TestDnsServer[];
  let sink: SmtpSink;
  let org: Org;

  before(async () => {
    dns = [await startDnsServer()];
    sink = await startSmtpSink();
    dns[0].set('remote.test', { MX: [{ exchange: 'mx.remote.test', priority: 10 }] });
    dns[0].set('mx.remote.test', { A: ['127.0.0.1'] });
    t = await startTestApp({
      workers: true,
      env: {
        MAILROOM_HOSTNAME: HOST,
        MAILROOM_DNS_SERVERS: dns[0].address,
        MAILROOM_DNS_TIMEOUT: '300ms',
        MAILROOM_DNS_TRIES: '1',
        MAILROOM_OUTBOUND_PORT: String(sink.port),
        MAILROOM_OUTBOUND_RETRY_SCHEDULE: '200ms',
        MAILROOM_OUTBOUND_MAX_AGE: '1s',
      },
    });
    org = await orgMaker('expiry')(t);
    await verifiedDomain(t, org.token, 'expiry.test', dns);
    const created = await t.call('POST', '/v1/mailboxes', {
      token: org.token,
      body: { address: 'author@expiry.test', password: 'author password 123' },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
  });
  after(async () => {
    await t?.close();
    await sink?.close();
    for (const d of dns ?? []) await d.close();
  });

  test('a recipient still deferred at the maximum age fails, and the author gets a DSN', async () => {
    sink.onRecipient('never@remote.test', { code: 452, message: '4.2.2 mailbox over quota, try later' });
    const sent = await t.call('POST', '/v1/messages/send', {
      token: org.token,
      body: { from: 'author@expiry.test', to: ['never@remote.test'], subject: 'Will expire', text: 'x' },
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    const failed = await until(
      () => t.call('GET', `/v1/messages/${sent.body.id}`, { token: org.token }).then((r) => r.body),
      (m) => m.status === 'failed',
    );
    const r = failed.recipients[0];
    assert.equal(r.status, 'failed');
    assert.ok(r.attempts_detail.length >= 2, `${r.attempts_detail.length} attempts`);
    assert.ok(r.attempts_detail.every((a: any) => a.outcome === 'deferred' && a.code === 452));
    const event = (await eventsOf(t, org, 'message.bounced')).find((e) => e.data.message_id === sent.body.id);
    assert.equal(event.data.source, 'expired');
    assert.equal(event.data.suppressed, false);
    // The DSN reached the author's mailbox, reporting the last temporary status.
    const dsn = await until(
      () =>
        t.app.database.query<any>(
          `select id from messages where direction = 'inbound' and rcpt_to = '{author@expiry.test}' and processed_at is not null`,
        ),
      (res) => res.rows.length === 1,
    );
    const raw = await t.call('GET', `/v1/messages/${dsn.rows[0].id}/raw`, { token: org.token });
    assert.match(raw.body, /Action: failed/);
    assert.match(raw.body, /Status: 4\.2\.2/);
    assert.equal(
      (await t.call('GET', '/v1/suppressions/never@remote.test', { token: org.token })).status,
      404,
    );
  });
});
