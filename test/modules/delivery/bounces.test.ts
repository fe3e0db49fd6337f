// Bounces on their own: VERP return paths, the DSNs we write, and reading the bounces other mail
// systems send (fixtures in test/fixtures/bounces, written after the formats of Postfix, Gmail, Exim,
// qmail and sendmail).
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import { parseBounce } from '../../../src/modules/delivery/bounce-parse.ts';
import { buildDsn, type DsnInput } from '../../../src/modules/delivery/dsn.ts';
import { isVerpLocalPart, Verp } from '../../../src/modules/delivery/verp.ts';

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/bounces/${name}`, import.meta.url));
const crlf = (text: string) => Buffer.from(text.replace(/\r?\n/g, '\r\n'));

describe('VERP addresses', () => {
  const verp = new Verp({ key: randomBytes(32) });
  const id = '0193a4c2-7d1e-7b3a-8c4d-5e6f7a8b9c0d';
  const localOf = (address: string) => address.slice(0, address.lastIndexOf('@'));

  test('round trip, in any case', () => {
    const address = verp.address(id, 'example.com');
    assert.match(address, /^b\+[a-z2-7]+@bounces\.example\.com$/);
    assert.equal(Verp.LABEL, 'bounces');
    assert.deepEqual(verp.parse(address), { deliveryId: id, domain: 'example.com' });
    assert.deepEqual(verp.parse(address.toUpperCase()), { deliveryId: id, domain: 'example.com' });
    assert.deepEqual(verp.parse(` ${address} `), { deliveryId: id, domain: 'example.com' });
    assert.deepEqual(verp.parse(verp.address(id.toUpperCase(), 'mail.example.co.uk')), {
      deliveryId: id,
      domain: 'mail.example.co.uk',
    });
  });

  test('local parts fit in 64 characters and have the VERP shape', () => {
    for (let i = 0; i < 50; i++) {
      const local = localOf(verp.address(randomUUID(), 'example.com'));
      assert.ok(local.length <= 64, local);
      assert.ok(isVerpLocalPart(local));
      assert.ok(isVerpLocalPart(local.toUpperCase()));
    }
    for (const local of [
      'alice',
      'b+',
      'b+abc',
      'c+' + 'a'.repeat(42),
      `b+${'a'.repeat(41)}1`,
      `b-${'a'.repeat(42)}`,
    ])
      assert.equal(isVerpLocalPart(local), false, local);
  });

  test('forged, tampered and foreign tokens are refused', () => {
    const address = verp.address(id, 'example.com');
    const local = localOf(address);
    for (let i = 2; i < local.length; i++) {
      const flipped = local.slice(0, i) + (local[i] === 'a' ? 'b' : 'a') + local.slice(i + 1);
      assert.equal(verp.parse(`${flipped}@bounces.example.com`), null, `changed character ${i}`);
    }
    assert.equal(new Verp({ key: randomBytes(32) }).parse(address), null, 'another key');
    assert.equal(verp.parse(`${local}@bounces.example.net`), null, 'moved to another domain');
    const other = localOf(verp.address('0193a4c2-7d1e-7b3a-8c4d-5e6f7a8b9c0e', 'example.com'));
    assert.equal(verp.parse(`${local.slice(0, 28)}${other.slice(28)}@bounces.example.com`), null, 'spliced');
  });

  test('addresses of the wrong shape are refused', () => {
    const local = localOf(verp.address(id, 'example.com'));
    for (const address of [
      `${local}@example.com`,
      `${local}@bounces.`,
      `${local}@bounces`,
      `${local}@bouncesexample.com`,
      `${local}@bounces.exa mple.com`,
      `${local}@bounces.-example.com`,
      `${local}x@bounces.example.com`,
      `${local.slice(0, -1)}@bounces.example.com`,
      `x${local.slice(1)}@bounces.example.com`,
      `${local}`,
      '@bounces.example.com',
      '',
      'MAILER-DAEMON@bounces.example.com',
    ])
      assert.equal(verp.parse(address), null, address);
  });

  test('bad input to address() and a short key are programming errors', () => {
    assert.throws(() => verp.address('not-a-uuid', 'example.com'), TypeError);
    assert.throws(() => verp.address(id, 'Example.com'), TypeError);
    assert.throws(() => verp.address(id, 'bücher.example'), TypeError);
    assert.throws(() => new Verp({ key: randomBytes(16) }), RangeError);
  });
});

describe('DSNs we write', () => {
  const original = crlf(
    [
      'Return-Path: <b+token@bounces.example.com>',
      'From: Alice Example <alice@example.com>',
      'To: nobody@example.org, later@example.net, here@example.org',
      'Subject: Quarterly report',
      'Message-ID: <0193a4c2-7d1e-7b3a-8c4d-5e6f7a8b9c0d@example.com>',
      'Date: Tue, 01 Dec 2026 10:15:39 +0000',
      '',
      'The body is private and must not come back.',
      '',
    ].join('\n'),
  );
  const longReply = `550 5.1.1 <nobody@example.org>: Recipient address rejected: ${'very '.repeat(60)}unknown`;
  const input = (overrides: Partial<DsnInput> = {}): DsnInput => ({
    reportingMta: 'mail.example.com',
    from: 'MAILER-DAEMON@mail.example.com',
    to: 'alice@example.com',
    originalMessageId: '<0193a4c2-7d1e-7b3a-8c4d-5e6f7a8b9c0d@example.com>',
    originalEnvelopeId: '0193a4c2-7d1e-7b3a-8c4d-5e6f7a8b9c0d',
    arrivalDate: new Date(Date.UTC(2026, 11, 1, 10, 15, 40)),
    recipients: [
      {
        address: 'nobody@example.org',
        action: 'failed',
        status: '5.1.1',
        remoteMta: 'mx.example.org',
        diagnostic: longReply,
        lastAttemptAt: new Date(Date.UTC(2026, 11, 1, 10, 15, 42)),
      },
      { address: 'full@example.org', action: 'failed', status: '', diagnostic: '552 5.2.2 Mailbox full' },
      { address: 'gone@example.org', action: 'failed', status: 'unknown', diagnostic: null },
    ],
    original,
    messageId: '<0193a4c2-9999-7b3a-8c4d-5e6f7a8b9c0d@mail.example.com>',
    ...overrides,
  });

  test('parseBounce reads back addresses, statuses, diagnostics and the original ids', async () => {
    const parsed = await parseBounce(buildDsn(input()));
    assert.ok(parsed);
    assert.equal(parsed.kind, 'dsn');
    assert.equal(parsed.permanent, true);
    assert.equal(parsed.originalMessageId, '0193a4c2-7d1e-7b3a-8c4d-5e6f7a8b9c0d@example.com');
    assert.equal(parsed.originalEnvelopeId, '0193a4c2-7d1e-7b3a-8c4d-5e6f7a8b9c0d');
    assert.deepEqual(parsed.recipients, [
      {
        address: 'nobody@example.org',
        action: 'failed',
        status: '5.1.1',
        diagnostic: longReply.replace(/\s+/g, ' '),
        remoteMta: 'mx.example.org',
      },
      // Status derived from the reply, then from the action.
      {
        address: 'full@example.org',
        action: 'failed',
        status: '5.2.2',
        diagnostic: '552 5.2.2 Mailbox full',
        remoteMta: null,
      },
      { address: 'gone@example.org', action: 'failed', status: '5.0.0', diagnostic: null, remoteMta: null },
    ]);
  });

  test('mailparser sees the three parts of a multipart/report', async () => {
    const raw = buildDsn(input());
    const mail = await simpleParser(raw, { keepDeliveryStatus: true });
    const contentType = mail.headers.get('content-type') as { value: string; params: Record<string, string> };
    assert.equal(contentType.value, 'multipart/report');
    assert.equal(contentType.params['report-type'], 'delivery-status');
    assert.equal(mail.subject, 'Undelivered Mail Returned to Sender');
    assert.equal(mail.from?.value[0].address, 'MAILER-DAEMON@mail.example.com');
    assert.equal(mail.to && !Array.isArray(mail.to) ? mail.to.value[0].address : null, 'alice@example.com');
    assert.equal(mail.messageId, '<0193a4c2-9999-7b3a-8c4d-5e6f7a8b9c0d@mail.example.com>');
    assert.equal(mail.inReplyTo, '<0193a4c2-7d1e-7b3a-8c4d-5e6f7a8b9c0d@example.com>');
    assert.equal(mail.headers.get('auto-submitted'), 'auto-replied');
    assert.deepEqual(
      mail.attachments.map((a) => a.contentType),
      ['message/delivery-status', 'text/rfc822-headers'],
    );
    assert.match(mail.text ?? '', /could not be delivered/);
    assert.match(mail.text ?? '', /<nobody@example\.org>\s+The address does not exist\. \(5\.1\.1\)/);
    assert.match(mail.text ?? '', /The mailbox is full/);
    const status = mail.attachments[0].content.toString();
    assert.match(
      status,
      /^Original-Envelope-Id: 0193a4c2-7d1e-7b3a-8c4d-5e6f7a8b9c0d\r\nReporting-MTA: dns; mail\.example\.com\r\n/,
    );
    assert.match(
      status,
      /\r\n\r\nFinal-Recipient: rfc822; nobody@example\.org\r\nAction: failed\r\nStatus: 5\.1\.1\r\n/,
    );
    assert.match(status, /Remote-MTA: dns; mx\.example\.org\r\nDiagnostic-Code: smtp; 550 5\.1\.1/);
    assert.match(status, /Last-Attempt-Date: Tue, 01 Dec 2026 10:15:42 \+0000/);
    const headers = mail.attachments[1].content.toString();
    assert.match(headers, /^Return-Path: .*\r\n[\s\S]*Date: Tue, 01 Dec 2026 10:15:39 \+0000\r\n$/);
    assert.doesNotMatch(raw.toString(), /The body is private/);

    // The raw structure: three parts in order, CRLF only, no line over 998 and header lines folded.
    const text = raw.toString();
    const boundary = contentType.params.boundary;
    const parts = text.split(`--${boundary}`).slice(1, -1);
    assert.deepEqual(
      parts.map((p) => /Content-Type: ([^;\r\n]+)/.exec(p)?.[1]),
      ['text/plain', 'message/delivery-status', 'text/rfc822-headers'],
    );
    assert.ok(text.endsWith(`--${boundary}--\r\n`));
    assert.doesNotMatch(text, /[^\r]\n|\r(?!\n)/);
    for (const line of text.split('\r\n')) assert.ok(line.length <= 998, line);
    const head = text.slice(0, text.indexOf('\r\n\r\n'));
    for (const line of head.split('\r\n')) assert.ok(line.length <= 78, line);
  });

  test('a delay notification says so and is not permanent', async () => {
    const raw = buildDsn(
      input({
        recipients: [
          {
            address: 'later@example.net',
            action: 'delayed',
            status: '',
            diagnostic: 'connect to mx.example.net: timed out',
          },
        ],
      }),
    );
    const mail = await simpleParser(raw, { keepDeliveryStatus: true });
    assert.equal(mail.subject, 'Delivery Status Notification (Delay)');
    assert.match(mail.text ?? '', /will be retried/);
    assert.match(mail.attachments[0].content.toString(), /Diagnostic-Code: X-Mailroom; connect to/);
    const parsed = await parseBounce(raw);
    assert.equal(parsed?.permanent, false);
    assert.deepEqual(
      parsed?.recipients.map((r) => [r.action, r.status]),
      [['delayed', '4.0.0']],
    );
  });

  test('non-ASCII names, addresses and diagnostics are encoded for a 7-bit message', async () => {
    const raw = buildDsn(
      input({
        from: 'Système de messagerie <MAILER-DAEMON@mail.example.com>',
        to: 'alice@bücher.example',
        recipients: [
          {
            address: 'jörg@example.de',
            action: 'failed',
            status: '5.1.1',
            diagnostic: '550 5.1.1 Benutzer unbekannt: jörg\r\nbye',
          },
        ],
        original: crlf('Subject: Grüße\nMessage-ID: <x@example.com>\n\nbody'),
      }),
    );
    const head = raw.toString().slice(0, raw.indexOf('\r\n\r\n'));
    assert.match(head, /^From: =\?UTF-8\?B\?/m);
    assert.match(head, /^To: alice@xn--bcher-kva\.example$/m);
    assert.ok(
      raw.every((b) => b < 0x80),
      'the whole message is 7-bit',
    );
    const mail = await simpleParser(raw, { keepDeliveryStatus: true });
    assert.equal(mail.from?.value[0].name, 'Système de messagerie');
    assert.match(mail.text ?? '', /<jörg@example\.de>/);
    assert.match(mail.attachments[0].content.toString(), /Final-Recipient: utf-8; j\\x\{F6\}rg@example\.de/);
    assert.match(mail.attachments[1].content.toString(), /Subject: Grüße/);
    const parsed = await parseBounce(raw);
    assert.equal(parsed?.recipients[0].address, 'jörg@example.de');
    assert.equal(parsed?.recipients[0].diagnostic, '550 5.1.1 Benutzer unbekannt: j?rg bye');
    assert.equal(parsed?.originalMessageId, 'x@example.com');
  });

  test('a DSN without recipients is a programming error', () => {
    assert.throws(() => buildDsn(input({ recipients: [] })), RangeError);
  });
});

describe('bounces from other mail systems', () => {
  test('Postfix DSN', async () => {
    assert.deepEqual(await parseBounce(fixture('postfix-dsn.eml')), {
      kind: 'dsn',
      permanent: true,
      recipients: [
        {
          address: 'nobody@example.org',
          action: 'failed',
          status: '5.1.1',
          diagnostic:
            '550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in virtual mailbox table',
          remoteMta: 'mail.example.org',
        },
      ],
      originalMessageId: '0193a4c2-7d1e-7b3a-8c4d-5e6f7a8b9c0d@example.com',
      originalEnvelopeId: null,
    });
  });

  test('Gmail DSN: nested human part, folded multi-line reply, commented Remote-MTA, returned message', async () => {
    const parsed = await parseBounce(fixture('gmail-dsn.eml'));
    assert.equal(parsed?.kind, 'dsn');
    assert.equal(parsed?.permanent, true);
    assert.equal(parsed?.originalMessageId, '0193a4c2-8e2f-7c4b-9d5e-6f7a8b9c0d1e@example.com');
    assert.equal(parsed?.recipients.length, 1);
    const [r] = parsed!.recipients;
    assert.equal(r.address, 'nosuchuser@gmail.com');
    assert.equal(r.status, '5.1.1');
    assert.equal(r.remoteMta, 'gmail-smtp-in.l.google.com');
    assert.match(
      r.diagnostic ?? '',
      /^550-5\.1\.1 The email account that you tried to reach does not exist\. /,
    );
    assert.match(r.diagnostic ?? '', /NoSuchUser a1si123456wra\.42 - gsmtp$/);
  });

  test('Exim text bounce: two addresses, one without a reply code', async () => {
    assert.deepEqual(await parseBounce(fixture('exim-text.eml')), {
      kind: 'heuristic',
      permanent: true,
      recipients: [
        {
          address: 'ghost@example.net',
          action: 'failed',
          status: '5.1.1',
          diagnostic:
            '550 5.1.1 <ghost@example.net>: Recipient address rejected: User unknown in local recipient table',
          remoteMta: 'mx1.example.net',
        },
        {
          address: 'nobody@nonexistent.invalid',
          action: 'failed',
          status: '5.0.0',
          diagnostic: 'Unrouteable address',
          remoteMta: null,
        },
      ],
      originalMessageId: '0193a4c3-1a2b-7c3d-8e4f-5a6b7c8d9e0f@example.com',
      originalEnvelopeId: null,
    });
  });

  test('qmail failure notice', async () => {
    assert.deepEqual(await parseBounce(fixture('qmail-failure.eml')), {
      kind: 'heuristic',
      permanent: true,
      recipients: [
        {
          address: 'nobody@example.net',
          action: 'failed',
          status: '5.1.1',
          diagnostic: '550 5.1.1 <nobody@example.net>... User unknown',
          remoteMta: null,
        },
      ],
      originalMessageId: '0193a4c3-5f6e-7d8c-9b0a-1c2d3e4f5a6b@example.com',
      originalEnvelopeId: null,
    });
  });

  test('Postfix delay notification is not permanent', async () => {
    const parsed = await parseBounce(fixture('postfix-delay.eml'));
    assert.equal(parsed?.kind, 'dsn');
    assert.equal(parsed?.permanent, false);
    assert.deepEqual(parsed?.recipients, [
      {
        address: 'slow@example.net',
        action: 'delayed',
        status: '4.4.1',
        diagnostic: 'connect to mx.example.net[192.0.2.50]:25: Connection timed out',
        remoteMta: null,
      },
    ]);
  });

  test('sendmail DSN with one failed and one delivered recipient, upper-case types, envelope id', async () => {
    const parsed = await parseBounce(fixture('sendmail-mixed.eml'));
    assert.equal(parsed?.permanent, true);
    assert.equal(parsed?.originalEnvelopeId, '0193a4c5-2b3c-7d4e-8f5a-6b7c8d9e0f1a');
    assert.equal(parsed?.originalMessageId, '0193a4c5-1f2e-7a3b-9c4d-5e6f7a8b9c0d@example.com');
    assert.deepEqual(
      parsed?.recipients.map((r) => [r.address, r.action, r.status, r.remoteMta]),
      [
        ['gone@example.org', 'failed', '5.1.1', 'mail.example.org'],
        ['here@example.org', 'delivered', '2.0.0', 'mail.example.org'],
      ],
    );
    assert.equal(parsed?.recipients[0].diagnostic, '550 5.1.1 <gone@example.org>... User unknown');
  });

  test('only delivered recipients: a report, but nothing permanent', async () => {
    const raw = report(['Final-Recipient: rfc822; here@example.org', 'Action: delivered', 'Status: 2.0.0']);
    const parsed = await parseBounce(raw);
    assert.equal(parsed?.permanent, false);
    assert.equal(parsed?.recipients[0].action, 'delivered');
  });

  test('field names in any case, folded values, a failed 4.x.x (expired), no Action', async () => {
    const parsed = await parseBounce(
      report([
        'final-recipient: RFC822;<Expired@Example.org>',
        'ACTION: Failed',
        'status: 4.4.7 (delivery time expired)',
        '',
        'Final-Recipient: rfc822; nostatus@example.org',
        'Diagnostic-Code: smtp;',
        '  554 5.7.1 Rejected by policy',
      ]),
    );
    assert.equal(parsed?.permanent, true);
    assert.deepEqual(parsed?.recipients, [
      {
        address: 'expired@example.org',
        action: 'failed',
        status: '4.4.7',
        diagnostic: null,
        remoteMta: null,
      },
      {
        address: 'nostatus@example.org',
        action: null,
        status: '5.7.1',
        diagnostic: '554 5.7.1 Rejected by policy',
        remoteMta: null,
      },
    ]);
  });

  test('RFC 6533 message/global-delivery-status with a UTF-8 address', async () => {
    const parsed = await parseBounce(
      report(
        ['Final-Recipient: utf-8; j\\x{F6}rg@b\\x{FC}cher.example', 'Action: failed', 'Status: 5.1.1'],
        'message/global-delivery-status',
      ),
    );
    assert.equal(parsed?.recipients[0].address, 'jörg@bücher.example');
    assert.equal(parsed?.permanent, true);
  });

  test('a base64-encoded status part is decoded', async () => {
    const fields =
      'Reporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; b64@example.org\r\nAction: failed\r\nStatus: 5.2.2\r\n';
    const raw = crlf(
      [
        'From: MAILER-DAEMON@mx.example.org',
        'Subject: Undeliverable',
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"',
        '',
        '--b',
        'Content-Type: message/delivery-status',
        'Content-Transfer-Encoding: base64',
        '',
        Buffer.from(fields).toString('base64'),
        '--b--',
        '',
      ].join('\n'),
    );
    const parsed = await parseBounce(raw);
    assert.deepEqual(
      parsed?.recipients.map((r) => [r.address, r.status]),
      [['b64@example.org', '5.2.2']],
    );
  });

  test('old Postfix and Gmail text bounces', async () => {
    const postfix = await parseBounce(
      textBounce('MAILER-DAEMON@mx.example.org', 'Undelivered Mail Returned to Sender', [
        'This is the mail system at host mx.example.org.',
        '',
        '<nobody@example.org>: host mail.example.org[192.0.2.25] said: 550 5.1.1',
        '    <nobody@example.org>: Recipient address rejected: User unknown in virtual',
        '    mailbox table (in reply to RCPT TO command)',
      ]),
    );
    assert.deepEqual(postfix?.recipients, [
      {
        address: 'nobody@example.org',
        action: 'failed',
        status: '5.1.1',
        diagnostic:
          '550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command)',
        remoteMta: 'mail.example.org',
      },
    ]);
    const gmail = await parseBounce(
      textBounce(
        'Mail Delivery Subsystem <mailer-daemon@googlemail.com>',
        'Delivery Status Notification (Failure)',
        [
          'Delivery to the following recipient failed permanently:',
          '',
          '     gone@example.org',
          '',
          'Technical details of permanent failure:',
          'Google tried to deliver your message, but it was rejected by the server for the recipient domain example.org by mx.example.org. [192.0.2.1].',
          '',
          'The error that the other server returned was:',
          '550-5.1.1 The email account that you tried to reach does not exist.',
          '550 5.1.1 Please check the address.',
          '',
          '----- Original message -----',
          '',
          'Message-ID: <orig@example.com>',
          'Subject: hi',
          '',
          'body naming other@example.net',
        ],
      ),
    );
    assert.deepEqual(gmail, {
      kind: 'heuristic',
      permanent: true,
      recipients: [
        {
          address: 'gone@example.org',
          action: 'failed',
          status: '5.1.1',
          diagnostic:
            '550-5.1.1 The email account that you tried to reach does not exist. 550 5.1.1 Please check the address.',
          remoteMta: 'mx.example.org',
        },
      ],
      originalMessageId: 'orig@example.com',
      originalEnvelopeId: null,
    });
  });

  test('a text bounce with a temporary error is not permanent', async () => {
    const parsed = await parseBounce(
      textBounce('postmaster@mx.example.org', 'Delivery Status Notification (Delay)', [
        'Delivery to the following recipient has been delayed:',
        '',
        '  later@example.net',
        '    451 4.7.1 Greylisted, please try again later',
      ]),
    );
    assert.equal(parsed?.permanent, false);
    assert.deepEqual(
      parsed?.recipients.map((r) => [r.address, r.action, r.status]),
      [['later@example.net', 'delayed', '4.7.1']],
    );
  });

  test('out-of-office replies, ordinary mail and other reports are not bounces', async () => {
    assert.equal(await parseBounce(fixture('out-of-office.eml')), null);
    assert.equal(await parseBounce(fixture('normal-reply.eml')), null);
    // An autoresponder with a bounce-like subject and text, from a person's address.
    assert.equal(
      await parseBounce(
        textBounce(
          'bob@example.org',
          'Mail delivery failed',
          ['  carol@example.org', '    550 5.1.1 gone'],
          ['Auto-Submitted: auto-replied'],
        ),
      ),
      null,
    );
    // A person forwarding a bounce: the report is inside the forwarded message.
    const forwarded = crlf(
      [
        'From: Alice <alice@example.com>',
        'Subject: Fwd: Undelivered Mail Returned to Sender',
        'Content-Type: multipart/mixed; boundary="f"',
        '',
        '--f',
        'Content-Type: text/plain',
        '',
        'Any idea why this bounced?',
        '--f',
        'Content-Type: message/rfc822',
        '',
        fixture('postfix-dsn.eml').toString(),
        '--f--',
        '',
      ].join('\n'),
    );
    assert.equal(await parseBounce(forwarded), null);
    // A read receipt is a report, but not about delivery.
    const receipt = crlf(
      [
        'From: bob@example.org',
        'Subject: Read: Quarterly report',
        'Content-Type: multipart/report; report-type=disposition-notification; boundary="r"',
        '',
        '--r',
        'Content-Type: message/disposition-notification',
        '',
        'Final-Recipient: rfc822; bob@example.org',
        'Disposition: manual-action/MDN-sent-manually; displayed',
        '--r--',
        '',
      ].join('\n'),
    );
    assert.equal(await parseBounce(receipt), null);
    // A bounce-looking message that names no address with a reply.
    assert.equal(
      await parseBounce(
        textBounce('MAILER-DAEMON@mx.example.org', 'failure notice', ['Something went wrong.']),
      ),
      null,
    );
  });

  test('garbage is not a bounce and does not throw', async () => {
    assert.equal(await parseBounce(Buffer.alloc(0)), null);
    assert.equal(await parseBounce(Buffer.from([0, 1, 2, 255, 13, 10, 13, 10, 5])), null);
    for (let i = 0; i < 20; i++) assert.equal(await parseBounce(randomBytes(4096)), null);
    assert.equal(
      await parseBounce(
        crlf('Content-Type: multipart/report; report-type=delivery-status; boundary="x"\n\n--x\n'),
      ),
      null,
    );
    const broken = report([
      'Final-Recipient: rfc822;',
      'Action: failed',
      '',
      ': no name',
      '\t folded nowhere',
    ]);
    assert.equal(await parseBounce(broken), null);
  });
});

/** A minimal multipart/report around the given per-recipient field lines. */
function report(recipientLines: string[], statusType = 'message/delivery-status'): Buffer {
  return crlf(
    [
      'From: MAILER-DAEMON@mx.example.org',
      'To: b+x@bounces.example.com',
      'Subject: Undelivered Mail Returned to Sender',
      'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=delivery-status; boundary="rb"',
      '',
      '--rb',
      'Content-Type: text/plain',
      '',
      'Delivery report.',
      '--rb',
      `Content-Type: ${statusType}`,
      '',
      'Reporting-MTA: dns; mx.example.org',
      '',
      ...recipientLines,
      '',
      '--rb--',
      '',
    ].join('\n'),
  );
}

/** A single-part text message from `from` with `subject`. */
function textBounce(from: string, subject: string, body: string[], headers: string[] = []): Buffer {
  return crlf(
    [`From: ${from}`, 'To: b+x@bounces.example.com', `Subject: ${subject}`, ...headers, '', ...body, ''].join(
      '\n',
    ),
  );
}
