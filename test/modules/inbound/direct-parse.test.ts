// The direct parser (src/modules/inbound/direct-parse.ts) against mailparser: for every message of a shape
// it takes, the fields processing reads must be what mailparser gives; every other shape is left to
// mailparser (null).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import { type MailFields, parseDirect } from '../../../src/modules/inbound/direct-parse.ts';
import { parseMessage } from '../../../src/modules/inbound/parse.ts';

const LONG = Array.from({ length: 40 }, (_, i) => `line ${i} with words, commas; and dots. end`).join('\n');
const UTF8 = 'Grüße aus Köln — naïve café, 中文 and 🎉 emoji';

const headerSets: Record<string, string> = {
  plain:
    'From: Alice Example <alice@example.com>\nTo: bob@example.net\nSubject: Hello there\nDate: Mon, 7 Dec 2026 10:00:00 +0000\nMessage-ID: <a1@example.com>\n',
  folded:
    'From: "Example, Alice" <alice@example.com>\nTo: Bob <bob@example.net>,\n carol@example.org\nCc: Team: dan@example.org, eve@example.org;\nSubject: A long subject\n\tthat is folded\nIn-Reply-To: <parent@example.com>\nReferences: <r1@example.com>\n <r2@example.com>  <r3@example.com>\nMessage-ID: no-brackets@example.com\n',
  encoded:
    'From: alice@example.com\nTo: bob@example.net\nSubject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?= and =?utf-8?q?caf=C3=A9?=\nDate: not a date at all\n',
  raw8bit: `From: Zoë <zoe@example.com>\nTo: bob@example.net\nSubject: ${UTF8}\n`,
  repeated:
    'From: first@example.com\nFrom: second@example.com\nTo: a@example.net\nTo: b@example.net\nSubject: first\nSubject: second\nReferences: <x@y>\nReferences: <z@y>\nX-Custom : spaced key\n',
  sparse: 'Subject:\nTo:\nX-Empty:\n',
  references1: 'From: a@example.com\nReferences: <only@example.com>\nMessage-ID: <>\n',
};

function qp(text: string): string {
  const bytes = Buffer.from(text);
  let out = '';
  let line = 0;
  for (const b of bytes) {
    const piece =
      b === 0x0a
        ? '\n'
        : b >= 33 && b <= 126 && b !== 61
          ? String.fromCharCode(b)
          : `=${b.toString(16).toUpperCase().padStart(2, '0')}`;
    if (piece === '\n') {
      out += '\n';
      line = 0;
      continue;
    }
    if (line + piece.length > 72) {
      out += '=\n';
      line = 0;
    }
    out += piece;
    line += piece.length;
  }
  return out;
}

const base64 = (text: string) =>
  (
    Buffer.from(text)
      .toString('base64')
      .match(/.{1,76}/g) ?? []
  ).join('\n');

/** A text part's headers and encoded body in each transfer encoding. */
function encodings(text: string, type: string): { headers: string; body: string }[] {
  return [
    { headers: `Content-Type: ${type}\n`, body: text },
    { headers: `Content-Type: ${type}; charset=utf-8\nContent-Transfer-Encoding: 8bit\n`, body: text },
    {
      headers: `Content-Type: ${type}; charset="UTF-8"\nContent-Transfer-Encoding: quoted-printable\n`,
      body: qp(text),
    },
    {
      headers: `Content-Type: ${type}; charset=us-ascii\nContent-Transfer-Encoding: base64\n`,
      body: base64(text),
    },
    {
      headers: `Content-Type: ${type}; charset=utf-8\nContent-Transfer-Encoding: BASE64\n`,
      body: base64(text),
    },
  ];
}

const bodies = [
  LONG,
  UTF8,
  '',
  '\n\n',
  'no newline at the end',
  `${LONG}\n\n\n`,
  'trailing spaces   \nhere  \n',
];

function handled(): { name: string; raw: Buffer }[] {
  const out: { name: string; raw: Buffer }[] = [];
  for (const [h, headers] of Object.entries(headerSets))
    for (const [b, body] of bodies.entries()) {
      for (const [e, part] of encodings(body, 'text/plain').entries()) {
        out.push({
          name: `${h} text ${b} enc ${e}`,
          raw: Buffer.from(`${headers}${part.headers}\n${part.body}`),
        });
      }
      out.push({ name: `${h} bare ${b}`, raw: Buffer.from(`${headers}\n${body}`) });
      const html = `<html><body><p>${body.replace(/\n/g, '<br>')}</p></body></html>`;
      // An empty part is left to mailparser (below).
      if (!body) continue;
      for (const [e, part] of encodings(body, 'text/plain').entries()) {
        const htmlPart = encodings(html, 'text/html')[(e + b) % 5];
        const boundary = e % 2 ? '"=_quoted boundary_="' : 'simple-b0undary';
        const bare = boundary.replace(/"/g, '');
        out.push({
          name: `${h} alternative ${b} enc ${e}`,
          raw: Buffer.from(
            `${headers}MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=${boundary}\n\n` +
              `${e === 2 ? 'This is a preamble.\n' : ''}--${bare}\n${part.headers}\n${part.body}\n` +
              `--${bare}\n${htmlPart.headers}\n${htmlPart.body}\n--${bare}--\n${e === 3 ? '\n' : ''}`,
          ),
        });
      }
    }
  // Every message again with CRLF line ends, as SMTP delivers them.
  return [
    ...out,
    ...out.map((m) => ({
      name: `${m.name} crlf`,
      raw: Buffer.from(m.raw.toString('latin1').replace(/\n/g, '\r\n'), 'latin1'),
    })),
  ];
}

const leftToMailparser: Record<string, string> = {
  attachment:
    'From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: application/pdf; name=x.pdf\nContent-Transfer-Encoding: base64\n\nAAAA\n--b--\n',
  latin1: 'From: a@example.com\nContent-Type: text/plain; charset=iso-8859-1\n\ncaf\xe9\n',
  flowed: 'From: a@example.com\nContent-Type: text/plain; charset=utf-8; format=flowed\n\nsoft \nbreak\n',
  'encoded address': 'From: =?utf-8?q?Al=C3=AFce?= <alice@example.com>\n\nbody\n',
  'punycode address': 'From: a@xn--bcher-kva.example\n\nbody\n',
  'html only': 'From: a@example.com\nContent-Type: text/html\n\n<p>hi</p>\n',
  'no header end': 'From: a@example.com\nSubject: nothing after',
  mbox: 'From a@example.com Mon Dec  7 10:00:00 2026\nFrom: a@example.com\n\nbody\n',
  'named text part': 'From: a@example.com\nContent-Type: text/plain; name=notes.txt\n\nbody\n',
  'attachment disposition': 'From: a@example.com\nContent-Disposition: attachment\n\nbody\n',
  'bad base64': 'From: a@example.com\nContent-Transfer-Encoding: base64\n\n!!!not base64 ===\n',
  'bad quoted-printable': 'From: a@example.com\nContent-Transfer-Encoding: quoted-printable\n\n=ZZ=4=\n',
  'three alternatives':
    'From: a@example.com\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\na\n--b\nContent-Type: text/html\n\n<p>a</p>\n--b\nContent-Type: text/enriched\n\na\n--b--\n',
  'unclosed alternative':
    'From: a@example.com\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\na\n--b\nContent-Type: text/html\n\n<p>a</p>\n',
  'empty alternative':
    'From: a@example.com\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\n\n--b\nContent-Type: text/html\n\n<p>a</p>\n--b--\n',
  epilogue:
    'From: a@example.com\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\na\n--b\nContent-Type: text/html\n\n<p>a</p>\n--b--\nan epilogue\n',
};

/** What processing reads of a parse, in comparable form. */
function fields(mail: Pick<MailFields, keyof MailFields>) {
  const addresses = (f: unknown) =>
    ([] as { value: unknown[] }[]).concat((f as never) ?? []).map((x) => JSON.parse(JSON.stringify(x.value)));
  return {
    headerLines: mail.headerLines.map((h) => ({ key: h.key, line: h.line })),
    messageId: mail.messageId || undefined,
    inReplyTo: mail.inReplyTo || undefined,
    references: mail.references,
    subject: mail.subject,
    hasDate: mail.date instanceof Date,
    date: mail.date && Math.round(mail.date.getTime() / 60_000),
    from: addresses(mail.from),
    to: addresses(mail.to),
    cc: addresses(mail.cc),
    text: mail.text,
    html: typeof mail.html === 'string' ? mail.html : undefined,
    attachments: mail.attachments.length,
  };
}

describe('direct MIME parsing', () => {
  test('every shape it takes parses as mailparser parses it', async () => {
    const messages = handled();
    assert.ok(messages.length > 500);
    for (const { name, raw } of messages) {
      const direct = parseDirect(raw);
      assert.ok(direct, `${name}: parsed directly`);
      const reference = await simpleParser(raw, { skipImageLinks: true, skipTextToHtml: true });
      assert.deepEqual(fields(direct), fields(reference as never), name);
    }
  });

  test('other shapes are left to mailparser, and processing still reads them', async () => {
    for (const [name, text] of Object.entries(leftToMailparser)) {
      const raw = Buffer.from(text.replace(/\n/g, '\r\n'), 'latin1');
      assert.equal(parseDirect(raw), null, name);
      const parsed = await parseMessage(raw);
      assert.equal(typeof parsed.text, 'string', name);
    }
    const withAttachment = await parseMessage(
      Buffer.from(leftToMailparser.attachment.replace(/\n/g, '\r\n')),
    );
    assert.equal(withAttachment.hasAttachments, true);
    assert.equal(withAttachment.details.attachments[0].filename, 'x.pdf');
  });
});
