// ENVELOPE, BODY and BODYSTRUCTURE as written on the wire, compared with RFC 3501's own examples and
// with hand-written expectations; and how fast stored structures render.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { renderBodyStructure, renderEnvelope } from '../../../../src/modules/imap/mime/render.ts';
import { analyseMessage } from '../../../../src/modules/imap/mime/structure.ts';
import { at, crlf, MIXED, NESTED } from './fixtures.ts';

/** A body of `lines` lines and `size` bytes whose last line has no line break (a boundary's CRLF follows). */
function linesOf(size: number, lines: number): string {
  const width = Math.floor(size / lines) - 2;
  const full = `${'A'.repeat(width)}\r\n`.repeat(lines - 1);
  return full + 'A'.repeat(size - full.length);
}

describe('renderEnvelope', () => {
  test('RFC 3501 7.4.2’s example, sender and reply-to defaulting to from', () => {
    const raw = crlf(
      'Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)',
      'From: Terry Gray <gray@cac.washington.edu>',
      'Subject: IMAP4rev1 WG mtg summary and minutes',
      'To: imap@cac.washington.edu',
      'cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>',
      'Message-Id: <B27397-0100000@cac.washington.edu>',
      'MIME-Version: 1.0',
      'Content-Type: TEXT/PLAIN; CHARSET=US-ASCII',
      '',
      `${'A'.repeat(31)}\r\n`.repeat(91) + `${'A'.repeat(23)}\r\n`,
    );
    const node = analyseMessage(raw);
    assert.equal(
      renderEnvelope(node),
      '("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes" ' +
        '(("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) ' +
        '(("Terry Gray" NIL "gray" "cac.washington.edu")) ((NIL NIL "imap" "cac.washington.edu")) ' +
        '((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL ' +
        '"<B27397-0100000@cac.washington.edu>")',
    );
    // RFC 3501 6.4.5's FETCH BODY of the same message.
    assert.equal(
      renderBodyStructure(node, false),
      '("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92)',
    );
  });

  test('groups, a missing From and Date, quoted names with commas, encoded words as they are', () => {
    const raw = crlf(
      'Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe?=',
      'Reply-To: "Support, Tier 2" <support@example.com>',
      'To: undisclosed-recipients:;',
      'Cc: =?utf-8?B?SsO2cmc=?= <j@example.com>, friends: "O\'Brien, Pat" <pat@example.com>;',
      '',
      '',
    );
    assert.equal(
      renderEnvelope(analyseMessage(raw)),
      '(NIL "=?utf-8?Q?Gr=C3=BC=C3=9Fe?=" NIL NIL (("Support, Tier 2" NIL "support" "example.com")) ' +
        '((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) ' +
        '(("=?utf-8?B?SsO2cmc=?=" NIL "j" "example.com")(NIL NIL "friends" NIL)' +
        '("O\'Brien, Pat" NIL "pat" "example.com")(NIL NIL NIL NIL)) NIL NIL NIL)',
    );
  });

  test('quotes and backslashes are escaped; CR, LF and NUL, and 8-bit text for non-UTF-8 clients, go as literals', () => {
    const raw = Buffer.from(
      'Subject: say "hi" \\ there\r\nFrom: Jörg <j@example.com>\r\nMessage-ID: <a\rb>\r\n\r\n',
    );
    const node = analyseMessage(raw);
    assert.equal(
      renderEnvelope(node),
      '(NIL "say \\"hi\\" \\\\ there" (({5}\r\nJörg NIL "j" "example.com")) (({5}\r\nJörg NIL "j" "example.com")) ' +
        '(({5}\r\nJörg NIL "j" "example.com")) NIL NIL NIL NIL {5}\r\n<a\rb>)',
    );
    assert.equal(
      renderEnvelope(node, { utf8: true }),
      '(NIL "say \\"hi\\" \\\\ there" (("Jörg" NIL "j" "example.com")) (("Jörg" NIL "j" "example.com")) ' +
        '(("Jörg" NIL "j" "example.com")) NIL NIL NIL NIL {5}\r\n<a\rb>)',
    );
  });

  test('a UTF-8 subject: a literal counting bytes, or quoted once UTF8=ACCEPT is enabled', () => {
    const node = analyseMessage(Buffer.from('Subject: Grüße ☃\r\n\r\nbody'));
    assert.equal(renderEnvelope(node), '(NIL {11}\r\nGrüße ☃ NIL NIL NIL NIL NIL NIL NIL NIL)');
    assert.equal(renderEnvelope(node, { utf8: true }), '(NIL "Grüße ☃" NIL NIL NIL NIL NIL NIL NIL NIL)');
  });
});

describe('renderBodyStructure', () => {
  test('RFC 3501 7.4.2’s BODYSTRUCTURE example', () => {
    const raw = crlf(
      'MIME-Version: 1.0',
      'Content-Type: MULTIPART/MIXED; BOUNDARY="-- boundary --"',
      '',
      '---- boundary --',
      'Content-Type: TEXT/PLAIN; CHARSET=US-ASCII',
      '',
      linesOf(1152, 23),
      '---- boundary --',
      'Content-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME=cc.diff',
      'Content-ID: <960723163407.20117h@cac.washington.edu>',
      'Content-Description: Compiler diff',
      'Content-Transfer-Encoding: BASE64',
      '',
      linesOf(4554, 73),
      '---- boundary ----',
      '',
    );
    assert.equal(
      renderBodyStructure(analyseMessage(raw), false),
      '(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23)("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" ' +
        '"cc.diff") "<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73) "MIXED")',
    );
  });

  test('BODY and BODYSTRUCTURE of nested multiparts with disposition, language, location and MD5', () => {
    const node = analyseMessage(MIXED);
    const html = '"TEXT" "HTML" ("CHARSET" "us-ascii") NIL NIL "7BIT" 22 1';
    const image = '"IMAGE" "PNG" NIL "<logo@x>" NIL "BASE64" 12';
    const pdf = '"APPLICATION" "PDF" ("NAME" "report.pdf") NIL "The report" "BASE64" 22';
    assert.equal(renderBodyStructure(node, false), `(((${html})(${image}) "RELATED")(${pdf}) "MIXED")`);
    assert.equal(
      renderBodyStructure(node, true),
      `(((${html} NIL NIL NIL NIL)(${image} NIL ("INLINE" ("FILENAME" "logo.png")) NIL NIL) "RELATED" ` +
        '("BOUNDARY" "rel" "TYPE" "text/html") NIL NIL NIL)' +
        `(${pdf} "Q2hlY2sgSW50ZWdyaXR5IQ==" ("ATTACHMENT" ("FILENAME" "report.pdf" "SIZE" "11")) ("en" "fr") ` +
        '"http://example.com/report.pdf") "MIXED" ("BOUNDARY" "mix") NIL NIL NIL)',
    );
  });

  test('message/rfc822: envelope, body structure and lines of the attached message', () => {
    const size = at(NESTED, '--inner--') + '--inner--\r\n'.length - at(NESTED, 'From: Carol');
    const envelope =
      '("Tue, 2 Jan 2024 11:00:00 +0100" "Inner" (("Carol" NIL "carol" "example.net")) ' +
      '(("Carol" NIL "carol" "example.net")) (("Carol" NIL "carol" "example.net")) ' +
      '((NIL NIL "dave" "example.net")) NIL NIL NIL "<inner@example.net>")';
    assert.equal(
      renderBodyStructure(analyseMessage(NESTED), false),
      '(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 13 1)' +
        `("MESSAGE" "RFC822" NIL NIL NIL "7BIT" ${size} ${envelope} ` +
        '(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 10 1)' +
        '("TEXT" "HTML" ("CHARSET" "us-ascii") NIL NIL "7BIT" 12 1) "ALTERNATIVE") 16) "MIXED")',
    );
  });

  test('message/global has the message form only for UTF-8 clients (IMAP4rev2); IMAP4rev1 has no room for it', () => {
    const raw = crlf(
      'Content-Type: message/global',
      'Content-Transfer-Encoding: 8bit',
      '',
      'Subject: Grüße',
      '',
      'Hallo',
    );
    const node = analyseMessage(raw);
    assert.equal(renderBodyStructure(node, false), '("MESSAGE" "GLOBAL" NIL NIL NIL "8BIT" 25)');
    assert.equal(
      renderBodyStructure(node, false, { utf8: true }),
      '("MESSAGE" "GLOBAL" NIL NIL NIL "8BIT" 25 (NIL "Grüße" NIL NIL NIL NIL NIL NIL NIL NIL) ' +
        '("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 5 1) 3)',
    );
  });

  test('a multipart without parts gets Dovecot’s empty text part; 8-bit parameters follow the utf8 option', () => {
    const empty = analyseMessage(crlf('Content-Type: multipart/mixed', '', 'no boundary'));
    assert.equal(
      renderBodyStructure(empty, false),
      '(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0) "MIXED")',
    );
    assert.equal(
      renderBodyStructure(empty, true),
      '(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0 NIL NIL NIL NIL) "MIXED" NIL NIL NIL NIL)',
    );
    const named = analyseMessage(crlf("Content-Type: application/pdf; name*=utf-8''%E2%82%AC.pdf", '', ''));
    assert.equal(
      renderBodyStructure(named, false),
      '("APPLICATION" "PDF" ("NAME" {7}\r\n€.pdf) NIL NIL "7BIT" 0)',
    );
    assert.equal(
      renderBodyStructure(named, false, { utf8: true }),
      '("APPLICATION" "PDF" ("NAME" "€.pdf") NIL NIL "7BIT" 0)',
    );
  });
});

describe('speed', () => {
  test('analysing and rendering a typical 20 KB multipart message', (t) => {
    const raw = typicalMessage();
    assert.ok(raw.length > 19_000 && raw.length < 22_000);
    const analyses = opsPerSecond(() => analyseMessage(raw));
    const stored = JSON.parse(JSON.stringify(analyseMessage(raw)));
    const renders = opsPerSecond(() => renderEnvelope(stored) + renderBodyStructure(stored, true));
    t.diagnostic(`analyseMessage: ${Math.round(analyses)} ops/s on ${raw.length} bytes`);
    t.diagnostic(
      `renderEnvelope + renderBodyStructure of the stored structure: ${Math.round(renders)} ops/s`,
    );
    assert.ok(renders >= 20_000, `${Math.round(renders)} renders/s`);
  });
});

function opsPerSecond(run: () => unknown): number {
  for (let i = 0; i < 200; i++) run();
  let count = 0;
  const started = performance.now();
  while (performance.now() - started < 150) {
    for (let i = 0; i < 50; i++) run();
    count += 50;
  }
  return count / ((performance.now() - started) / 1000);
}

/** Trace headers, text and HTML alternatives in quoted-printable, and a small base64 attachment. */
function typicalMessage(): Buffer {
  const received = Array.from(
    { length: 6 },
    (_, i) =>
      `Received: from mx${i}.example.net (mx${i}.example.net [192.0.2.${i}])\r\n\tby mail.example.com with ESMTPS id ${i}abc\r\n\tfor <bob@example.com>; Mon, 1 Jan 2024 10:00:0${i} +0000`,
  );
  const text = 'Hello Bob, here is the quarterly report you asked for. Caf=C3=A9 at ten?\r\n'.repeat(60);
  const html =
    `<p>Hello Bob, here is the <b>quarterly report</b> you asked for. Caf=C3=A9 at ten?</p>\r\n`.repeat(70);
  const attachment =
    `${'JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFIvRmlsdGVyIC9GbGF0ZURlY29kZT4+'}\r\n`.repeat(80);
  return crlf(
    ...received,
    'DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.net; s=s1; h=from:to:subject:date;',
    '\tbh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZQ==',
    'From: "Alice Example" <alice@example.net>',
    'To: Bob Example <bob@example.com>, "Carol, C." <carol@example.com>',
    'Cc: team: dave@example.com, erin@example.com;',
    'Subject: =?utf-8?Q?Quarterly_report_=E2=80=93_Q4?=',
    'Date: Mon, 1 Jan 2024 10:00:00 +0000',
    'Message-ID: <report-q4@example.net>',
    'In-Reply-To: <request@example.com>',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="=_mixed_0123456789"',
    '',
    '--=_mixed_0123456789',
    'Content-Type: multipart/alternative; boundary="=_alt_0123456789"',
    '',
    '--=_alt_0123456789',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    text,
    '--=_alt_0123456789',
    'Content-Type: text/html; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    html,
    '--=_alt_0123456789--',
    '',
    '--=_mixed_0123456789',
    'Content-Type: application/pdf; name="report-q4.pdf"',
    'Content-Disposition: attachment; filename="report-q4.pdf"',
    'Content-Transfer-Encoding: base64',
    '',
    attachment,
    '--=_mixed_0123456789--',
    '',
  );
}
