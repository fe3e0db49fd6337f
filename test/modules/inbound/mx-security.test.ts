// The MX's protocol surface over raw sockets: extensions, open-relay tricks, SMTP smuggling, limits and
// the PROXY protocol. Every refusal is checked to leave nothing stored.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engine, signUpWithOrg, startTestApp, type TestApp } from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';
import { SmtpDialogue } from '../../support/smtp.ts';
import { until } from '../../support/until.ts';

const HOST = 'mx.security.test';

describe(`MX protocol and relay safety on ${engine}`, () => {
  let t: TestApp;
  let dns: TestDnsServer[];
  let org: { token: string; orgId: string };

  before(async () => {
    dns = [await startDnsServer()];
    t = await startTestApp({
      workers: true,
      smtp: true,
      env: {
        MAILROOM_HOSTNAME: HOST,
        MAILROOM_DNS_SERVERS: dns[0].address,
        MAILROOM_DNS_TIMEOUT: '300ms',
        MAILROOM_DNS_TRIES: '1',
        MAILROOM_SMTP_MAX_MESSAGE_SIZE: '20000',
        MAILROOM_SMTP_MAX_RECIPIENTS: '3',
        MAILROOM_SMTP_MAX_CONNECTIONS_PER_IP: '4',
        MAILROOM_SMTP_MESSAGES_PER_IP_PER_MINUTE: '40',
        MAILROOM_SMTP_PROXY: '127.0.0.1',
      },
    });
    org = await signUpWithOrg(t, 'relay@example.com', 'Relay');
    await verifiedDomain(t, org.token, 'ours.test', dns);
    const disabled = await verifiedDomain(t, org.token, 'disabled.test', dns);
    assert.equal(
      (await t.call('PATCH', `/v1/domains/${disabled.id}`, { token: org.token, body: { is_active: false } }))
        .status,
      200,
    );
    assert.equal(
      (await t.call('POST', '/v1/domains', { token: org.token, body: { name: 'unverified.test' } })).status,
      201,
    );
    for (const address of ['alice@ours.test', 'user@disabled.test', 'user@unverified.test']) {
      if (address.endsWith('unverified.test')) continue;
      const res = await t.call('POST', '/v1/mailboxes', { token: org.token, body: { address } });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
  });
  after(async () => {
    await t?.close();
    for (const d of dns ?? []) await d.close();
  });

  const messageCount = async () =>
    Number((await t.app.database.query<any>('select count(*)::int as n from messages')).rows[0].n);

  /** Opens a session through the PROXY header (each from its own address, so per-IP limits stay apart). */
  let nextIp = 1;
  const session = async () => {
    const ip = `198.51.100.${nextIp++}`;
    const { dialogue, greeting } = await SmtpDialogue.open(t.smtpPort, ip);
    return { dialogue, ip, greeting };
  };

  test('EHLO offers STARTTLS, SIZE, PIPELINING, 8BITMIME, SMTPUTF8 and ENHANCEDSTATUSCODES, and no AUTH', async () => {
    const { dialogue } = await session();
    const ehlo = await dialogue.command('EHLO client.test');
    for (const ext of [
      'STARTTLS',
      'SIZE 20000',
      'PIPELINING',
      '8BITMIME',
      'SMTPUTF8',
      'ENHANCEDSTATUSCODES',
    ]) {
      assert.match(ehlo, new RegExp(`250[- ]${ext}`), ext);
    }
    assert.doesNotMatch(ehlo, /AUTH/);
    dialogue.close();
  });

  const TRICKS: [string, string][] = [
    ['external to external', 'victim@external.test'],
    ['percent hack', 'victim%external.test@ours.test'],
    ['quoted percent hack', '"victim%external.test"@ours.test'],
    ['bang path', 'external.test!victim@ours.test'],
    ['bare bang path', 'external.test!victim'],
    ['quoted local part holding @', '"victim@external.test"@ours.test'],
    ['source route', '@ours.test:victim@external.test'],
    ['multi-hop source route', '@ours.test,@other.test:victim@external.test'],
    ['double @', 'victim@external.test@ours.test'],
    ['unverified hosted domain', 'user@unverified.test'],
    ['disabled domain', 'user@disabled.test'],
    ['trailing dot', 'alice@ours.test.'],
    ['mixed case external domain', 'Victim@External.TEST'],
    ['IPv4 literal', 'alice@[127.0.0.1]'],
    ['IPv6 literal', 'alice@[IPv6:::1]'],
    ['bare IP as domain', 'alice@127.0.0.1'],
    ['subdomain of a hosted domain', 'alice@sub.ours.test'],
    ['no domain', 'alice'],
    ['localhost', 'postmaster@localhost'],
    ['this server’s own name', `alice@${HOST}`],
    ['unknown user on a hosted domain', 'nobody@ours.test'],
  ];

  test(`the open-relay suite: ${TRICKS.length} classic tricks are all refused and nothing is stored`, async () => {
    const before = await messageCount();
    const { dialogue } = await session();
    await dialogue.command('EHLO relay-test.example');
    for (const [name, rcpt] of TRICKS) {
      assert.match(await dialogue.command('MAIL FROM:<spammer@external.test>'), /^250/, name);
      const reply = await dialogue.command(`RCPT TO:<${rcpt}>`);
      assert.match(reply, /^5\d\d /, `${name}: ${reply}`);
      if (!/^501/.test(reply)) assert.match(reply, /^550 5\.1\.1 /, `${name}: ${reply}`);
      assert.match(await dialogue.command('DATA'), /^5\d\d /, `${name}: DATA without a recipient`);
      assert.match(await dialogue.command('RSET'), /^250/);
    }
    assert.match(await dialogue.command('AUTH PLAIN AGFsaWNlAHNlY3JldA=='), /^5\d\d /, 'no AUTH on the MX');
    dialogue.close();
    assert.equal(await messageCount(), before);
    // The positive control: the same session shape, a real mailbox in mixed case, is accepted.
    const ok = await session();
    await ok.dialogue.command('EHLO relay-test.example');
    await ok.dialogue.command('MAIL FROM:<someone@external.test>');
    assert.match(await ok.dialogue.command('RCPT TO:<Alice@OURS.test>'), /^250/);
    ok.dialogue.close();
  });

  const SMUGGLING: [string, string][] = [
    ['<LF>.<CRLF>', '\n.\r\n'],
    ['<CRLF>.<LF>', '\r\n.\n'],
    ['<LF>.<LF>', '\n.\n'],
    ['<CR>.<CRLF>', '\r.\r\n'],
    ['<CRLF>.<CR>', '\r\n.\r'],
  ];

  for (const [name, sequence] of SMUGGLING) {
    test(`SMTP smuggling with ${name} is refused, and the hidden message is not accepted`, async () => {
      const before = await messageCount();
      const { dialogue } = await session();
      await dialogue.command('EHLO smuggler.example');
      await dialogue.command('MAIL FROM:<a@external.test>');
      await dialogue.command('RCPT TO:<alice@ours.test>');
      assert.match(await dialogue.command('DATA'), /^354/);
      const hidden =
        `Subject: outer\r\n\r\nfirst${sequence}MAIL FROM:<ceo@ours.test>\r\nRCPT TO:<alice@ours.test>\r\nDATA\r\n` +
        'Subject: smuggled\r\n\r\nsmuggled\r\n.\r\n';
      const reply = await dialogue.send(hidden);
      assert.match(reply, /^550 5\.5\.2 /);
      assert.match(
        await dialogue.command('NOOP'),
        /^250/,
        'the session is still in step: nothing was smuggled',
      );
      dialogue.close();
      assert.equal(await messageCount(), before);
    });
  }

  test('a lone dot line, dot-stuffed by the client, is content', async () => {
    const { dialogue } = await session();
    await dialogue.command('EHLO dots.example');
    await dialogue.command('MAIL FROM:<a@external.test>');
    await dialogue.command('RCPT TO:<alice@ours.test>');
    await dialogue.command('DATA');
    assert.match(
      await dialogue.send('Subject: dots\r\n\r\none\r\n..\r\ntwo\r\n...\r\nthree\r\n.\r\n'),
      /^250 /,
    );
    dialogue.close();
    const row = await until(
      () =>
        t.app.database.query<any>(
          `select body_text from messages where subject = 'dots' and processed_at is not null`,
        ),
      (r) => r.rows.length === 1,
    );
    assert.match(row.rows[0].body_text, /one\s+\.\s+two\s+\.\.\s+three/);
  });

  test('limits: SIZE, recipients per message, connections per IP, messages per IP', async () => {
    const { dialogue } = await session();
    await dialogue.command('EHLO limits.example');
    assert.match(await dialogue.command('MAIL FROM:<a@external.test> SIZE=50000'), /^552 /);
    await dialogue.command('MAIL FROM:<a@external.test>');
    await dialogue.command('RCPT TO:<alice@ours.test>');
    assert.match(await dialogue.command('DATA'), /^354/);
    const big = `Subject: big\r\n\r\n${'x'.repeat(76)}\r\n`.repeat(400);
    assert.match(await dialogue.send(`${big}.\r\n`), /^552 5\.3\.4 /);
    await dialogue.command('RSET');
    await dialogue.command('MAIL FROM:<a@external.test>');
    for (let i = 0; i < 3; i++)
      assert.match(
        await dialogue.command('RCPT TO:<alice@ours.test>'.replace('alice', i ? `alice+${i}` : 'alice')),
        /^250/,
      );
    assert.match(await dialogue.command('RCPT TO:<alice+9@ours.test>'), /^452 /);
    dialogue.close();

    // Connections from one address: the fifth is turned away with 421 while four are open.
    const ip = '203.0.113.77';
    const open: SmtpDialogue[] = [];
    for (let i = 0; i < 4; i++) {
      const { dialogue: d, greeting } = await SmtpDialogue.open(t.smtpPort, ip);
      assert.match(greeting, /^220 /);
      open.push(d);
    }
    const { dialogue: fifth, greeting } = await SmtpDialogue.open(t.smtpPort, ip);
    assert.match(greeting, /^421 4\.7\.0 /);
    fifth.close();
    for (const d of open) d.close();

    // Messages from one address per minute: MAIL is refused with 451 4.7.1 past the limit.
    const { dialogue: busy } = await session();
    await busy.command('EHLO busy.example');
    let refused = '';
    for (let i = 0; i < 45 && !refused; i++) {
      const reply = await busy.command('MAIL FROM:<a@external.test>');
      if (!/^250/.test(reply)) refused = reply;
      await busy.command('RSET');
    }
    assert.match(refused, /^451 4\.7\.1 /);
    busy.close();
  });

  test('the PROXY protocol gives the real client address, recorded on the message', async () => {
    const { dialogue, ip } = await session();
    await dialogue.command('EHLO proxied.example');
    // Pipelined: one write, four replies.
    const replies = dialogue.replies(4);
    dialogue.write(
      'MAIL FROM:<p@external.test>\r\nRCPT TO:<alice@ours.test>\r\nRCPT TO:<nobody@ours.test>\r\nDATA\r\n',
    );
    const [mail, rcpt, unknown, data] = await replies;
    assert.match(mail, /^250/);
    assert.match(rcpt, /^250/);
    assert.match(unknown, /^550 5\.1\.1/);
    assert.match(data, /^354/);
    assert.match(await dialogue.send('Subject: proxied\r\n\r\nhello\r\n.\r\n'), /^250 2\.0\.0 /);
    dialogue.close();
    const row = await until(
      () => t.app.database.query<any>(`select remote_ip from messages where subject = 'proxied'`),
      (r) => r.rows.length === 1,
    );
    assert.equal(row.rows[0].remote_ip, ip);
  });

  test('SMTPUTF8 and 8BITMIME: a Unicode sender and domain, and raw UTF-8 headers, arrive intact', async () => {
    await verifiedDomain(t, org.token, 'bücher-post.test', dns);
    const box = await t.call('POST', '/v1/mailboxes', {
      token: org.token,
      body: { address: 'info@bücher-post.test' },
    });
    assert.equal(box.status, 201, JSON.stringify(box.body));
    const { dialogue } = await session();
    await dialogue.command('EHLO utf8.example');
    assert.match(await dialogue.command('MAIL FROM:<jürgen@absender.test> SMTPUTF8 BODY=8BITMIME'), /^250/);
    assert.match(await dialogue.command('RCPT TO:<info@Bücher-Post.test>'), /^250/);
    assert.match(await dialogue.command('DATA'), /^354/);
    const message = Buffer.from(
      'From: Jürgen <jürgen@absender.test>\r\nTo: info@bücher-post.test\r\nSubject: Grüße aus Köln\r\n' +
        'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nSchöne Grüße\r\n.\r\n',
    ).toString('latin1');
    assert.match(await dialogue.send(message), /^250 /);
    dialogue.close();
    const row = await until(
      () =>
        t.app.database.query<any>(
          `select subject, rcpt_to, mail_from, body_text from messages where processed_at is not null and subject like 'Grüße%'`,
        ),
      (r) => r.rows.length === 1,
    );
    assert.equal(row.rows[0].subject, 'Grüße aus Köln');
    assert.deepEqual(row.rows[0].rcpt_to, ['info@xn--bcher-post-9db.test']);
    assert.equal(row.rows[0].mail_from, 'jürgen@absender.test');
    assert.match(row.rows[0].body_text, /Schöne Grüße/);
  });
});
