// BODY[section]<partial> and BINARY[section]: every kind of section checked byte for byte against
// hand-written expectations, and the transfer-encoding decoders on their awkward cases.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  applyPartial,
  binaryBytes,
  findPart,
  sectionBytes,
} from '../../../../src/modules/imap/mime/section.ts';
import { analyseMessage } from '../../../../src/modules/imap/mime/structure.ts';
import { decodeBase64, decodeQuotedPrintable } from '../../../../src/modules/imap/mime/transfer-encoding.ts';
import type { SectionSpec } from '../../../../src/modules/imap/types.ts';
import { ALTERNATIVE, crlf, MIXED, NESTED } from './fixtures.ts';

/** BODY[section] of a message as text. */
function section(raw: Buffer, spec: SectionSpec): string {
  return sectionBytes(raw, analyseMessage(raw), spec).toString();
}

describe('sectionBytes', () => {
  test('a multipart message: whole, HEADER, TEXT, parts and their MIME headers', () => {
    const header =
      'From: Alice <alice@example.com>\r\nTo: Bob <bob@example.org>\r\nSubject: Alternative\r\n' +
      'Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <alt@example.com>\r\nMIME-Version: 1.0\r\n' +
      'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n';
    const text =
      '--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello Bob.\r\n--alt\r\n' +
      'Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n' +
      '<p>Hello Bob=2E Caf=C3=A9 =\r\nand soft breaks.</p>\r\n--alt--\r\n';
    assert.equal(section(ALTERNATIVE, { part: [] }), header + text);
    assert.equal(section(ALTERNATIVE, { part: [], text: 'HEADER' }), header);
    assert.equal(section(ALTERNATIVE, { part: [], text: 'TEXT' }), text);
    assert.equal(section(ALTERNATIVE, { part: [1] }), 'Hello Bob.');
    assert.equal(
      section(ALTERNATIVE, { part: [1], text: 'MIME' }),
      'Content-Type: text/plain; charset=utf-8\r\n\r\n',
    );
    assert.equal(section(ALTERNATIVE, { part: [2] }), '<p>Hello Bob=2E Caf=C3=A9 =\r\nand soft breaks.</p>');
    assert.equal(
      section(ALTERNATIVE, { part: [2], text: 'MIME' }),
      'Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n',
    );
  });

  test('absent parts, and HEADER or TEXT of a part that is no message, are empty', () => {
    for (const spec of [
      { part: [3] },
      { part: [0] },
      { part: [1, 1] },
      { part: [1], text: 'HEADER' },
      { part: [1], text: 'TEXT' },
      { part: [], text: 'MIME' },
    ] satisfies SectionSpec[]) {
      assert.equal(section(ALTERNATIVE, spec), '', JSON.stringify(spec));
    }
  });

  test('nested multiparts are numbered depth first', () => {
    assert.equal(
      section(MIXED, { part: [1] }),
      '--rel\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n<img src="cid:logo@x">\r\n--rel\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <logo@x>\r\nContent-Disposition: inline; filename=logo.png\r\n\r\niVBORw0KGgo=\r\n--rel--',
    );
    assert.equal(section(MIXED, { part: [1, 1] }), '<img src="cid:logo@x">');
    assert.equal(section(MIXED, { part: [1, 2] }), 'iVBORw0KGgo=');
    assert.equal(section(MIXED, { part: [1, 2], text: 'MIME' }).split('\r\n')[2], 'Content-ID: <logo@x>');
    assert.equal(section(MIXED, { part: [2] }), 'JVBERi0xLjQK\r\naGVsbG8=');
    assert.equal(section(MIXED, { part: [1, 3] }), '');
  });

  test('a message/rfc822 part: its body is the attached message, addressed by HEADER, TEXT and its own parts', () => {
    const inner =
      'From: Carol <carol@example.net>\r\nTo: dave@example.net\r\nSubject: Inner\r\n' +
      'Date: Tue, 2 Jan 2024 11:00:00 +0100\r\nMessage-ID: <inner@example.net>\r\n' +
      'Content-Type: multipart/alternative; boundary="inner"\r\n\r\n';
    const innerText =
      '--inner\r\nContent-Type: text/plain\r\n\r\nInner text\r\n--inner\r\nContent-Type: text/html\r\n\r\n' +
      '<p>Inner</p>\r\n--inner--\r\n';
    assert.equal(section(NESTED, { part: [2] }), inner + innerText);
    assert.equal(
      section(NESTED, { part: [2], text: 'MIME' }),
      'Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n',
    );
    assert.equal(section(NESTED, { part: [2], text: 'HEADER' }), inner);
    assert.equal(section(NESTED, { part: [2], text: 'TEXT' }), innerText);
    assert.equal(
      section(NESTED, { part: [2], text: 'HEADER.FIELDS', fields: ['SUBJECT', 'TO'] }),
      'To: dave@example.net\r\nSubject: Inner\r\n\r\n',
    );
    assert.equal(section(NESTED, { part: [2, 1] }), 'Inner text');
    assert.equal(section(NESTED, { part: [2, 2] }), '<p>Inner</p>');
    assert.equal(section(NESTED, { part: [2, 2], text: 'MIME' }), 'Content-Type: text/html\r\n\r\n');
    assert.equal(section(NESTED, { part: [2, 3] }), '');
  });

  test('a message that is not multipart is its own part 1, also when it is a message/rfc822', () => {
    const plain = crlf('Subject: plain', '', 'body text', '');
    assert.equal(section(plain, { part: [1] }), 'body text\r\n');
    assert.equal(section(plain, { part: [1], text: 'MIME' }), 'Subject: plain\r\n\r\n');
    assert.equal(section(plain, { part: [2] }), '');
    assert.equal(section(plain, { part: [1, 1] }), '');

    const wrapper = crlf('Content-Type: message/rfc822', '', 'Subject: inner', '', 'inner body');
    assert.equal(section(wrapper, { part: [1] }), 'Subject: inner\r\n\r\ninner body');
    assert.equal(section(wrapper, { part: [1], text: 'HEADER' }), 'Subject: inner\r\n\r\n');
    assert.equal(section(wrapper, { part: [1], text: 'TEXT' }), 'inner body');
    assert.equal(section(wrapper, { part: [1, 1] }), 'inner body');
    assert.equal(section(wrapper, { part: [1, 2] }), '');
  });

  test('HEADER.FIELDS and HEADER.FIELDS.NOT keep folded lines and header order, match names case-insensitively', () => {
    const raw = crlf(
      'Received: from a',
      '\tby b',
      'Subject: Folded',
      '  subject line',
      'X-Empty:',
      'from: lower@example.com',
      'Subject : blank before the colon',
      'Received: from c',
      '',
      'body',
    );
    assert.equal(
      section(raw, { part: [], text: 'HEADER.FIELDS', fields: ['SUBJECT', 'RECEIVED'] }),
      'Received: from a\r\n\tby b\r\nSubject: Folded\r\n  subject line\r\nSubject : blank before the colon\r\n' +
        'Received: from c\r\n\r\n',
    );
    assert.equal(
      section(raw, { part: [], text: 'HEADER.FIELDS.NOT', fields: ['SUBJECT', 'RECEIVED'] }),
      'X-Empty:\r\nfrom: lower@example.com\r\n\r\n',
    );
    assert.equal(
      section(raw, { part: [], text: 'HEADER.FIELDS', fields: ['FROM'] }),
      'from: lower@example.com\r\n\r\n',
    );
    assert.equal(section(raw, { part: [], text: 'HEADER.FIELDS', fields: ['X-NONE'] }), '\r\n');
  });

  test('bare LF lines are kept as they are; a header ending the message gets its line break', () => {
    const lf = Buffer.from('Subject: a\nTo: b@example.com\n\nline\n');
    assert.equal(section(lf, { part: [], text: 'HEADER' }), 'Subject: a\nTo: b@example.com\n\n');
    assert.equal(section(lf, { part: [], text: 'HEADER.FIELDS', fields: ['TO'] }), 'To: b@example.com\n\r\n');
    assert.equal(section(lf, { part: [], text: 'TEXT' }), 'line\n');

    const headerOnly = crlf('Subject: only', 'From: a@example.com');
    assert.equal(section(headerOnly, { part: [], text: 'HEADER' }), 'Subject: only\r\nFrom: a@example.com');
    assert.equal(
      section(headerOnly, { part: [], text: 'HEADER.FIELDS', fields: ['FROM'] }),
      'From: a@example.com\r\n\r\n',
    );
    assert.equal(section(headerOnly, { part: [], text: 'TEXT' }), '');
  });

  test('offsets are bytes, with multi-byte UTF-8 in the header', () => {
    const raw = Buffer.from('Subject: Grüße ☃\r\n\r\nbody ✓\r\n');
    assert.equal(section(raw, { part: [], text: 'HEADER' }), 'Subject: Grüße ☃\r\n\r\n');
    assert.equal(section(raw, { part: [], text: 'TEXT' }), 'body ✓\r\n');
  });
});

describe('applyPartial', () => {
  test('<start.length> slices, clamped to the end; a start past the end is empty', () => {
    const bytes = sectionBytes(ALTERNATIVE, analyseMessage(ALTERNATIVE), { part: [1] });
    assert.equal(applyPartial(bytes, undefined).toString(), 'Hello Bob.');
    assert.equal(applyPartial(bytes, { start: 0, length: 5 }).toString(), 'Hello');
    assert.equal(applyPartial(bytes, { start: 6, length: 100 }).toString(), 'Bob.');
    assert.equal(applyPartial(bytes, { start: 10, length: 1 }).toString(), '');
    assert.equal(applyPartial(bytes, { start: 100, length: 5 }).toString(), '');
  });
});

describe('binaryBytes', () => {
  test('base64 and quoted-printable decoded, identity encodings as they are, unknown ones null', () => {
    const mixed = analyseMessage(MIXED);
    assert.equal(binaryBytes(MIXED, mixed, [2])?.toString(), '%PDF-1.4\nhello');
    assert.deepEqual(binaryBytes(MIXED, mixed, [1, 2]), Buffer.from('iVBORw0KGgo=', 'base64'));
    assert.equal(binaryBytes(MIXED, mixed, [1, 1])?.toString(), '<img src="cid:logo@x">');
    assert.deepEqual(binaryBytes(MIXED, mixed, [3]), Buffer.alloc(0));
    assert.equal(binaryBytes(MIXED, mixed, [])?.length, MIXED.length);

    const alternative = analyseMessage(ALTERNATIVE);
    assert.equal(
      binaryBytes(ALTERNATIVE, alternative, [2])?.toString(),
      '<p>Hello Bob. Café and soft breaks.</p>',
    );

    const uuencoded = crlf('Content-Transfer-Encoding: x-uuencode', '', 'begin 644 a', '');
    assert.equal(binaryBytes(uuencoded, analyseMessage(uuencoded), [1]), null);
    const upperCase = crlf('Content-Transfer-Encoding: BASE64', '', 'aGk=');
    assert.equal(binaryBytes(upperCase, analyseMessage(upperCase), [1])?.toString(), 'hi');
  });

  test('found parts agree with sectionBytes', () => {
    const node = analyseMessage(NESTED);
    assert.equal(findPart(node, [2, 1])?.bs, NESTED.indexOf('Inner text'));
    assert.equal(findPart(node, [2, 1, 1]), null);
    assert.equal(binaryBytes(NESTED, node, [2, 1])?.toString(), 'Inner text');
  });
});

describe('transfer decoding', () => {
  test('quoted-printable: soft breaks (CRLF or LF), trailing blanks, stray and lower-case escapes, 8-bit bytes', () => {
    const decode = (text: string) => decodeQuotedPrintable(Buffer.from(text, 'latin1')).toString('latin1');
    assert.equal(decode('a=3Db=\r\nc  \r\nd\t\r\n=ZZ= x='), 'a=bc\r\nd\r\n=ZZ= x');
    assert.equal(decode('ab=\ncd=  \r\nef'), 'abcdef');
    assert.equal(decodeQuotedPrintable(Buffer.from('caf=c3=a9')).toString(), 'café');
    assert.equal(decode('raw \xe9 byte  and blanks inside'), 'raw \xe9 byte  and blanks inside');
    assert.equal(decode('='), '');
  });

  test('base64: line breaks, missing padding, concatenated encodings', () => {
    assert.equal(decodeBase64(Buffer.from('aGVs\r\nbG8=\r\n')).toString(), 'hello');
    assert.equal(decodeBase64(Buffer.from('aGVsbG8')).toString(), 'hello');
    assert.equal(decodeBase64(Buffer.from('aGVsbG8=\r\nd29ybGQ=\r\n')).toString(), 'helloworld');
  });
});
