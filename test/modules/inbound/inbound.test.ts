// Inbound mail through the public surface: a real SMTP client (nodemailer) talks to the MX over loopback,
// sender domains publish SPF/DKIM/DMARC in two real DNS servers, and every routing path is followed to
// its result in the database and the API.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dkimSign } from 'mailauth';
import { generateKeyPairSync } from 'node:crypto';
import { engine, signUpWithOrg, startTestApp, type TestApp } from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';
import { sendMail } from '../../support/smtp.ts';
import { until } from '../../support/until.ts';

const HOST = 'mx.inbound.test';

describe(`inbound mail on ${engine}`, () => {
  let t: TestApp;
  let dns: TestDnsServer[];
  let org: { token: string; orgId: string };
  let domain: { id: string; name: string };

  before(async () => {
    dns = [await startDnsServer(), await startDnsServer()];
    t = await startTestApp({
      workers: true,
      smtp: true,
      env: {
        MAILROOM_HOSTNAME: HOST,
        MAILROOM_DNS_SERVERS: dns.map((d) => d.address).join(','),
        MAILROOM_DNS_TIMEOUT: '300ms',
        MAILROOM_DNS_TRIES: '1',
      },
    });
    org = await signUpWithOrg(t, 'inbound@example.com', 'Inbound');
    domain = await verifiedDomain(t, org.token, 'hosted.test', dns);
  });
  after(async () => {
    await t?.close();
    for (const d of dns ?? []) await d.close();
  });

  const api = async (method: string, url: string, body?: unknown) => {
    const res = await t.call(method, url, { token: org.token, body });
    return res;
  };
  const created = async (url: string, body: unknown) => {
    const res = await api('POST', url, body);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };
  /** The processed inbound message whose subject is `subject`. */
  const processed = (subject: string) =>
    until(
      () =>
        t.app.database.query<any>(
          `select * from messages where subject = $1 and direction = 'inbound' and processed_at is not null`,
          [subject],
        ),
      (r) => r.rows.length === 1,
    ).then((r) => r.rows[0]);
  const routesOf = async (id: string) =>
    (
      await t.app.database.query<any>(
        'select * from message_routes where message_id = $1 order by recipient',
        [id],
      )
    ).rows;
  const forwardsOf = async (id: string) =>
    (await t.app.database.query<any>(`select * from messages where parent_id = $1 order by rcpt_to`, [id]))
      .rows;
  const inFolder = async (mailboxId: string, folder: string) =>
    (
      await t.app.database.query<any>(
        `select mm.* from mailbox_messages mm join mailbox_folders f on f.id = mm.folder_id
          where mm.mailbox_id = $1 and f.name = $2 order by mm.uid`,
        [mailboxId, folder],
      )
    ).rows;

  test('a message to a mailbox is stored in its INBOX with trace headers, and the reply waits for the commit', async () => {
    const box = await created('/v1/mailboxes', { address: 'alice@hosted.test', display_name: 'Alice' });
    const info = await sendMail(t.smtpPort, {
      from: 'bob@sender.test',
      to: 'Alice@Hosted.Test',
      subject: 'to alice',
    });
    assert.match(info.response, /^250 2\.0\.0 Ok: queued as /);
    const queueId = /queued as (\S+)/.exec(info.response)![1];
    // Durable at 250: the row exists the moment the client has its reply.
    const stored = await t.app.database.query<any>('select id, status from messages where id = $1', [
      queueId,
    ]);
    assert.equal(stored.rows.length, 1);
    const message = await processed('to alice');
    assert.equal(message.status, 'delivered');
    assert.equal(message.tls, true, 'nodemailer upgraded with STARTTLS');
    assert.deepEqual(message.rcpt_to, ['alice@hosted.test']);
    assert.equal(message.from_address, 'bob@sender.test');
    const copies = await inFolder(box.id, 'INBOX');
    assert.equal(copies.length, 1);
    assert.equal(Number(copies[0].uid), 1);
    const raw = await t.app.database.query<any>('select data from blobs where id = $1', [message.blob_id]);
    const text = Buffer.from(raw.rows[0].data).toString();
    assert.match(text, /^Authentication-Results: mx\.inbound\.test;/);
    assert.match(
      text,
      /Received: from client\.example\.net \(\[127\.0\.0\.1\]\)\r\n\tby mx\.inbound\.test \(Mailroom\) with ESMTPS/,
    );
    const [route] = await routesOf(message.id);
    assert.equal(route.route, 'mailbox');
    assert.equal(route.action, 'store');
    const box2 = await api('GET', `/v1/mailboxes/${box.id}`);
    assert.ok(box2.body.used_bytes >= message.size);
  });

  test('unknown recipients, unknown domains and relay attempts get 550 5.1.1 at RCPT', async () => {
    await assert.rejects(
      sendMail(t.smtpPort, { from: 'bob@sender.test', to: 'nobody@hosted.test' }),
      (err: any) => /^550 5\.1\.1/.test(err.response),
    );
    await assert.rejects(
      sendMail(t.smtpPort, { from: 'bob@sender.test', to: 'someone@elsewhere.test' }),
      (err: any) => /^550 5\.1\.1/.test(err.response),
    );
  });

  const publishEverywhere = (name: string, records: Parameters<TestDnsServer['set']>[1]) => {
    for (const d of dns) d.set(name, records);
  };
  const resolver = async (name: string, rrtype: string) => {
    const { Resolver } = await import('node:dns/promises');
    const r = new Resolver();
    r.setServers([dns[0].address]);
    return r.resolve(name, rrtype as 'TXT');
  };

  test('an alias expands to a hosted mailbox and an external address; the forward keeps DKIM, gets SRS and an ARC seal', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pub = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    publishEverywhere('s1._domainkey.signed.test', { TXT: [`v=DKIM1; k=rsa; p=${pub}`] });
    publishEverywhere('signed.test', { TXT: ['v=spf1 ip4:127.0.0.1 -all'] });
    publishEverywhere('_dmarc.signed.test', { TXT: ['v=DMARC1; p=reject'] });
    const box = await created('/v1/mailboxes', { address: 'carol@hosted.test' });
    await created('/v1/aliases', {
      address: 'team@hosted.test',
      targets: ['carol@hosted.test', 'Dave@Remote.test'],
    });
    const unsigned = Buffer.from(
      'From: Erin <erin@signed.test>\r\nTo: team@hosted.test\r\nSubject: signed forward\r\nMessage-ID: <signed-1@signed.test>\r\n' +
        'Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\nSigned body\r\n',
    );
    // mailauth's typings ask for more options than the signer needs.
    const signed = await dkimSign(unsigned, {
      signatureData: [
        {
          signingDomain: 'signed.test',
          selector: 's1',
          privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }),
        },
      ],
    } as never);
    const raw = Buffer.concat([Buffer.from(signed.signatures), unsigned]);
    await sendMail(t.smtpPort, {
      from: 'erin@signed.test',
      to: 'team@hosted.test',
      raw,
      envelope: { from: 'erin@signed.test', to: ['team@hosted.test'] },
    });
    const message = await processed('signed forward');
    assert.equal(message.status, 'delivered');
    assert.equal(message.auth.spf, 'pass');
    assert.equal(message.auth.dkim[0].result, 'pass');
    assert.equal(message.auth.dmarc.result, 'pass');
    assert.equal((await inFolder(box.id, 'INBOX')).length, 1);
    const routes = await routesOf(message.id);
    assert.deepEqual(routes.map((r: any) => [r.route, r.action, r.destination]).sort(), [
      ['alias', 'forward', 'dave@remote.test'],
      ['alias', 'store', 'carol@hosted.test/INBOX'],
    ]);
    const [copy] = await forwardsOf(message.id);
    assert.equal(copy.direction, 'outbound');
    assert.equal(copy.status, 'pending', 'queued for the outbound delivery queue');
    assert.deepEqual(copy.rcpt_to, ['dave@remote.test']);
    assert.match(copy.mail_from, /^SRS0=[a-z2-7]{4}=[a-z2-7]{2}=signed\.test=erin@hosted\.test$/);
    const copyRaw = Buffer.from(
      (await t.app.database.query<any>('select data from blobs where id = $1', [copy.blob_id])).rows[0].data,
    );
    const text = copyRaw.toString();
    assert.match(text, /^ARC-Seal: i=1; a=rsa-sha256; t=\d+; cv=none; d=hosted\.test;/);
    assert.match(text, /Delivered-To: team@hosted\.test/);
    assert.ok(text.includes(signed.signatures.trim()), 'the original DKIM signature is untouched');
    // The next hop verifies both the original signature and our seal.
    const { authenticate } = await import('mailauth');
    const verdict = await authenticate(copyRaw, {
      ip: '127.0.0.1',
      helo: HOST,
      sender: copy.mail_from,
      mta: 'next.test',
      resolver: resolver as never,
    });
    assert.equal((verdict.arc as any).status.result, 'pass');
    assert.ok(
      (verdict.dkim as any).results.some(
        (r: any) => r.signingDomain === 'signed.test' && r.status.result === 'pass',
      ),
    );
  });

  test('DKIM checks the body of signed mail: intact passes, altered on the way does not', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pub = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    publishEverywhere('s2._domainkey.altered.test', { TXT: [`v=DKIM1; k=rsa; p=${pub}`] });
    await created('/v1/mailboxes', { address: 'heidi@hosted.test' });
    const send = async (subject: string, body: string, sentBody: string) => {
      const header =
        `From: Ivan <ivan@altered.test>\r\nTo: heidi@hosted.test\r\nSubject: ${subject}\r\n` +
        `Message-ID: <${subject.replace(/ /g, '-')}@altered.test>\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\n`;
      const signed = await dkimSign(Buffer.from(`${header}${body}`), {
        signatureData: [
          {
            signingDomain: 'altered.test',
            selector: 's2',
            privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }),
          },
        ],
      } as never);
      // Written in lower case, as some signers do: field names are case-insensitive.
      const signature = signed.signatures.replace(/^DKIM-Signature:/, 'dkim-signature:');
      await sendMail(t.smtpPort, {
        from: 'ivan@altered.test',
        to: 'heidi@hosted.test',
        raw: Buffer.from(`${signature}${header}${sentBody}`),
        envelope: { from: 'ivan@altered.test', to: ['heidi@hosted.test'] },
      });
      return (await processed(subject)).auth.dkim;
    };
    const intact = await send('intact body', 'Original body\r\n', 'Original body\r\n');
    assert.deepEqual(
      intact.map((r: any) => [r.domain, r.result]),
      [['altered.test', 'pass']],
    );
    // mailauth reports a body hash that does not verify as neutral (RFC 6376 6.3).
    const altered = await send('altered body', 'Original body\r\n', 'Changed body\r\n');
    assert.deepEqual(
      altered.map((r: any) => [r.domain, r.result]),
      [['altered.test', 'neutral']],
    );
  });

  test('a bounce to an SRS address goes back to the original sender; a forged SRS address is refused', async () => {
    await created('/v1/aliases', { address: 'relay@hosted.test', targets: ['frank@remote.test'] });
    await sendMail(t.smtpPort, {
      from: 'grace@origin.test',
      to: 'relay@hosted.test',
      subject: 'srs original',
    });
    const original = await processed('srs original');
    const [copy] = await forwardsOf(original.id);
    assert.match(copy.mail_from, /^SRS0=.*=origin\.test=grace@hosted\.test$/);
    await sendMail(t.smtpPort, {
      from: 'mailer-daemon@remote.test',
      to: copy.mail_from,
      subject: 'srs bounce',
      envelope: { from: '', to: [copy.mail_from] },
    });
    const bounce = await processed('srs bounce');
    const [route] = await routesOf(bounce.id);
    assert.equal(route.route, 'srs');
    const [back] = await forwardsOf(bounce.id);
    assert.deepEqual(back.rcpt_to, ['grace@origin.test']);
    assert.equal(back.mail_from, '', 'bounces keep the null sender');
    const forged = copy.mail_from.replace(/^SRS0=[a-z2-7]{4}/, 'SRS0=aaaa');
    await assert.rejects(sendMail(t.smtpPort, { from: 'x@remote.test', to: forged }), (err: any) =>
      /^550 5\.1\.1/.test(err.response),
    );
  });

  test('forwarding loops are stopped: alias cycles and a Delivered-To that names the recipient', async () => {
    await created('/v1/aliases', { address: 'ping@hosted.test', targets: ['pong@hosted.test'] });
    await created('/v1/aliases', { address: 'pong@hosted.test', targets: ['ping@hosted.test'] });
    await sendMail(t.smtpPort, { from: 'h@origin.test', to: 'ping@hosted.test', subject: 'alias cycle' });
    const cycle = await processed('alias cycle');
    assert.equal(cycle.status, 'failed');
    assert.match(cycle.error, /loop/);
    assert.equal((await forwardsOf(cycle.id)).length, 0);

    await created('/v1/aliases', { address: 'echo@hosted.test', targets: ['ivan@remote.test'] });
    await sendMail(t.smtpPort, {
      from: 'h@origin.test',
      to: 'echo@hosted.test',
      subject: 'delivered-to loop',
      headers: { 'Delivered-To': 'echo@hosted.test' },
    });
    const looped = await processed('delivered-to loop');
    assert.equal(looped.status, 'failed');
    assert.equal((await routesOf(looped.id))[0].action, 'loop');
    assert.equal((await forwardsOf(looped.id)).length, 0);
  });

  test('rules: conditions pick the action (redirect, store, block, drop, forward) and count matches', async () => {
    const sales = await created('/v1/mailboxes', { address: 'sales@hosted.test' });
    const accounts = await created('/v1/mailboxes', { address: 'accounts@hosted.test' });
    const redirect = await created('/v1/rules', {
      domain_id: domain.id,
      name: 'invoices',
      recipient: 'sales',
      priority: 10,
      conditions: [{ field: 'subject', op: 'contains', value: 'invoice' }],
      action: 'redirect',
      targets: ['accounts@hosted.test'],
    });
    const block = await created('/v1/rules', {
      domain_id: domain.id,
      name: 'spammers',
      recipient: 'sales',
      priority: 20,
      conditions: [{ field: 'sender_domain', op: 'equals', value: 'spam.test' }],
      action: 'block',
    });
    const archive = await created('/v1/rules', {
      domain_id: domain.id,
      name: 'attachments',
      recipient: 'sales',
      priority: 30,
      conditions: [{ field: 'has_attachments', op: 'equals', value: true }],
      action: 'store',
      folder: 'Archive',
    });
    const drop = await created('/v1/rules', {
      domain_id: domain.id,
      name: 'huge',
      recipient: 'sales',
      priority: 40,
      conditions: [{ field: 'size', op: 'above', value: 200_000 }],
      action: 'drop',
    });
    const copy = await created('/v1/rules', {
      domain_id: domain.id,
      name: 'cc boss',
      recipient: 'sales',
      priority: 50,
      conditions: [{ field: 'sender', op: 'contains', value: 'vip' }],
      action: 'forward',
      targets: ['boss@remote.test'],
    });

    await sendMail(t.smtpPort, {
      from: 'client@origin.test',
      to: 'sales@hosted.test',
      subject: 'Your Invoice 42',
    });
    const redirected = await processed('Your Invoice 42');
    assert.equal((await inFolder(accounts.id, 'INBOX')).length, 1);
    assert.equal((await inFolder(sales.id, 'INBOX')).length, 0);
    assert.equal((await routesOf(redirected.id))[0].action, 'store');

    await sendMail(t.smtpPort, { from: 'bad@spam.test', to: 'sales@hosted.test', subject: 'buy now' });
    const blocked = await processed('buy now');
    assert.equal(blocked.status, 'rejected');

    await sendMail(t.smtpPort, {
      from: 'client@origin.test',
      to: 'sales@hosted.test',
      subject: 'with file',
      attachments: [{ filename: 'report.pdf', content: Buffer.alloc(2000, 1) }],
    });
    await processed('with file');
    assert.equal((await inFolder(sales.id, 'Archive')).length, 1);

    await sendMail(t.smtpPort, {
      from: 'client@origin.test',
      to: 'sales@hosted.test',
      subject: 'huge',
      text: 'x'.repeat(250_000),
    });
    const dropped = await processed('huge');
    assert.equal((await routesOf(dropped.id))[0].action, 'drop');
    assert.equal((await inFolder(sales.id, 'INBOX')).length, 0);

    await sendMail(t.smtpPort, { from: 'vip@origin.test', to: 'sales@hosted.test', subject: 'from vip' });
    const vip = await processed('from vip');
    assert.deepEqual((await routesOf(vip.id)).map((r: any) => r.action).sort(), ['forward', 'store']);
    assert.equal((await inFolder(sales.id, 'INBOX')).length, 1);
    assert.deepEqual(
      (await forwardsOf(vip.id)).map((f: any) => f.rcpt_to[0]),
      ['boss@remote.test'],
    );

    for (const rule of [redirect, block, archive, drop, copy]) {
      const res = await api('GET', `/v1/rules/${rule.id}`);
      assert.equal(res.body.match_count, 1, rule.name);
      assert.ok(res.body.last_matched_at);
    }
  });

  test('a catch-all takes mail for addresses nothing else claims', async () => {
    const box = await created('/v1/mailboxes', { address: 'catch@hosted.test' });
    await assert.rejects(
      sendMail(t.smtpPort, { from: 'a@origin.test', to: 'random1@hosted.test' }),
      (e: any) => /^550/.test(e.response),
    );
    const res = await api('PATCH', `/v1/domains/${domain.id}`, { catch_all_target: 'catch@hosted.test' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    await sendMail(t.smtpPort, { from: 'a@origin.test', to: 'random2@hosted.test', subject: 'caught' });
    const message = await processed('caught');
    assert.equal((await routesOf(message.id))[0].route, 'catch_all');
    assert.equal((await inFolder(box.id, 'INBOX')).length, 1);
    await api('PATCH', `/v1/domains/${domain.id}`, { catch_all_target: null });
  });

  test('DMARC p=reject failures are refused with 550 5.7.1, or quarantined in Junk when the domain says so', async () => {
    publishEverywhere('forged.test', { TXT: ['v=spf1 ip4:192.0.2.1 -all'] });
    publishEverywhere('_dmarc.forged.test', { TXT: ['v=DMARC1; p=reject'] });
    const box = await created('/v1/mailboxes', { address: 'victim@hosted.test' });
    await assert.rejects(
      sendMail(t.smtpPort, { from: 'ceo@forged.test', to: 'victim@hosted.test', subject: 'wire money' }),
      (err: any) => /^550 5\.7\.1/.test(err.response),
    );
    const res = await api('PATCH', `/v1/domains/${domain.id}`, {
      settings: { inbound_dmarc_reject: 'quarantine' },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    await sendMail(t.smtpPort, {
      from: 'ceo@forged.test',
      to: 'victim@hosted.test',
      subject: 'wire money 2',
    });
    const message = await processed('wire money 2');
    assert.equal(message.status, 'quarantined');
    assert.equal(message.auth.dmarc.result, 'fail');
    assert.equal((await inFolder(box.id, 'Junk')).length, 1);
    assert.equal((await inFolder(box.id, 'INBOX')).length, 0);
    await api('PATCH', `/v1/domains/${domain.id}`, { settings: { inbound_dmarc_reject: 'reject' } });
  });

  test('a forged Authentication-Results in our name is removed', async () => {
    await created('/v1/mailboxes', { address: 'trusting@hosted.test' });
    await sendMail(t.smtpPort, {
      from: 'x@origin.test',
      to: 'trusting@hosted.test',
      subject: 'forged results',
      headers: { 'Authentication-Results': `${HOST}; dkim=pass header.d=bank.test; dmarc=pass` },
    });
    const message = await processed('forged results');
    const raw = Buffer.from(
      (await t.app.database.query<any>('select data from blobs where id = $1', [message.blob_id])).rows[0]
        .data,
    ).toString();
    assert.equal(raw.match(/^Authentication-Results:/gm)?.length, 1);
    assert.doesNotMatch(raw, /header\.d=bank\.test/);
  });

  test('malformed MIME is stored and processed without crashing or hanging', async () => {
    await created('/v1/mailboxes', { address: 'robust@hosted.test' });
    const head = (subject: string, extra = '') =>
      `From: x@origin.test\r\nTo: robust@hosted.test\r\nSubject: ${subject}\r\n${extra}`;
    let nested = '';
    for (let i = 0; i < 300; i++)
      nested += `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n`;
    const cases: Record<string, string> = {
      'broken boundary': `${head('broken boundary', 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="nope"\r\n')}\r\n--other\r\nContent-Type: text/plain\r\n\r\nlost\r\n--other`,
      'bad encodings': `${head('bad encodings', 'Content-Type: text/plain; charset=x-unknown-charset\r\nContent-Transfer-Encoding: base64\r\n')}\r\n!!!not base64 at all ===\r\n`,
      'bad quoted-printable': `${head('bad quoted-printable', 'Content-Transfer-Encoding: quoted-printable\r\n')}\r\n=ZZ=4=\r\n=\r\n`,
      'deep nesting': `${head('deep nesting', 'MIME-Version: 1.0\r\n')}${nested}\r\ninnermost\r\n`,
      'huge header': `${head('huge header', `X-Huge: ${'h'.repeat(500_000)}\r\n`)}\r\nbody\r\n`,
      'many headers': `${head('many headers', Array.from({ length: 5_000 }, (_, i) => `X-H${i}: v`).join('\r\n') + '\r\n')}\r\nbody\r\n`,
      'no header end': `${head('no header end')}`,
      'binary junk': `${head('binary junk', 'Content-Type: application/octet-stream\r\n')}\r\n${String.fromCharCode(...Array.from({ length: 2000 }, (_, i) => (i * 37) % 256))}\r\n`,
    };
    for (const [subject, raw] of Object.entries(cases)) {
      const info = await sendMail(t.smtpPort, {
        from: 'x@origin.test',
        to: 'robust@hosted.test',
        raw: Buffer.from(raw, 'latin1'),
        envelope: { from: 'x@origin.test', to: ['robust@hosted.test'] },
      });
      assert.match(info.response, /^250 /, subject);
      const queueId = /queued as (\S+)/.exec(info.response)![1];
      const row = await until(
        () => t.app.database.query<any>('select status, processed_at from messages where id = $1', [queueId]),
        (r) => r.rows[0]?.processed_at != null,
      );
      assert.equal(row.rows[0].status, 'delivered', subject);
    }
    // Still serving.
    await sendMail(t.smtpPort, {
      from: 'x@origin.test',
      to: 'robust@hosted.test',
      subject: 'after the junk',
    });
    await processed('after the junk');
  });

  test('what arrived over SMTP is in the messages API: detail, raw, search, threads, statistics', async () => {
    await created('/v1/mailboxes', { address: 'reader@hosted.test' });
    await created('/v1/aliases', { address: 'readers@hosted.test', targets: ['reader@hosted.test'] });
    await sendMail(t.smtpPort, {
      from: 'Writer <writer@origin.test>',
      to: 'readers@hosted.test',
      subject: 'Quarterly pineapple report',
      text: 'The pineapple harvest was excellent.',
      messageId: '<first@origin.test>',
    });
    const first = await processed('Quarterly pineapple report');
    await sendMail(t.smtpPort, {
      from: 'Writer <writer@origin.test>',
      to: 'reader@hosted.test',
      subject: 'Re: Quarterly pineapple report',
      text: 'A follow-up.',
      messageId: '<second@origin.test>',
      inReplyTo: '<first@origin.test>',
      references: ['<first@origin.test>'],
    });
    const second = await processed('Re: Quarterly pineapple report');

    const detail = await api('GET', `/v1/messages/${first.id}`);
    assert.equal(detail.status, 200, JSON.stringify(detail.body));
    assert.equal(detail.body.status, 'delivered');
    assert.equal(detail.body.from_address, 'writer@origin.test');
    assert.equal(detail.body.authentication.spf, 'none');
    assert.match(detail.body.authentication.authentication_results, /^mx\.inbound\.test;/);
    assert.deepEqual(
      detail.body.routes.map((r: any) => [r.recipient, r.route, r.action]),
      [['readers@hosted.test', 'alias', 'store']],
    );
    const raw = await api('GET', `/v1/messages/${first.id}/raw`);
    assert.equal(raw.status, 200);
    assert.match(String(raw.headers['content-type']), /^message\/rfc822/);
    assert.match(raw.body, /^Authentication-Results: mx\.inbound\.test;/);
    assert.match(raw.body, /The pineapple harvest was excellent\./);

    const found = await api('GET', '/v1/messages/search?q=pineapple');
    assert.equal(found.status, 200);
    assert.deepEqual(found.body.items.map((m: any) => m.id).sort(), [first.id, second.id].sort());

    assert.equal(second.thread_id, first.thread_id);
    const thread = await api('GET', `/v1/messages/thread/${first.thread_id}`);
    assert.deepEqual(
      thread.body.items.map((m: any) => m.id),
      [first.id, second.id],
    );

    const stats = await api('GET', `/v1/domains/${domain.id}/stats`);
    assert.equal(stats.status, 200);
    assert.ok(stats.body.by_status.delivered >= 2);
    const statistics = await api('GET', '/v1/statistics');
    assert.equal(statistics.status, 200);
    assert.ok(
      statistics.body.top_aliases.some((a: any) => a.address === 'readers@hosted.test' && a.messages === 1),
    );
    assert.ok(statistics.body.top_domains.some((d: any) => d.name === 'hosted.test'));
  });
});
