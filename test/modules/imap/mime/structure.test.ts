// analyseMessage: every part's byte offsets, sizes and line counts checked against the raw message,
// the Content-* fields, RFC 2231 parameters, envelopes, and what it makes of malformed input.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { renderBodyStructure, renderEnvelope } from '../../../../src/modules/imap/mime/render.ts';
import { sectionBytes } from '../../../../src/modules/imap/mime/section.ts';
import { analyseMessage, type MimeNode } from '../../../../src/modules/imap/mime/structure.ts';
import { ALTERNATIVE, allNodes, at, crlf, MIXED, NESTED } from './fixtures.ts';

/** The offsets and counts of a node, for comparing with hand-computed ones. */
function place(node: MimeNode) {
  return { hs: node.hs, he: node.he, bs: node.bs, be: node.be, size: node.size, lines: node.lines };
}

/** Offsets of a part whose header starts at `header` and whose body is exactly `body`. */
function expectedPlace(raw: Buffer, header: string, body: string, lines: number | null) {
  const bs = at(raw, body);
  return {
    hs: at(raw, header),
    he: bs,
    bs,
    be: bs + Buffer.byteLength(body),
    size: Buffer.byteLength(body),
    lines,
  };
}

describe('analyseMessage', () => {
  test('a plain text message: header block with its blank line, body to the end', () => {
    const raw = crlf('From: a@example.com', 'Subject: Hi', '', 'line one', 'line two', '');
    const node = analyseMessage(raw);
    assert.deepEqual(place(node), { hs: 0, he: 36, bs: 36, be: 56, size: 20, lines: 2 });
    assert.equal(raw.subarray(node.hs, node.he).toString(), 'From: a@example.com\r\nSubject: Hi\r\n\r\n');
    // No Content-Type: text/plain; charset=us-ascii (RFC 2045 5.2).
    assert.deepEqual(
      [node.type, node.subtype, node.params, node.enc],
      ['text', 'plain', [['charset', 'us-ascii']], null],
    );
    assert.equal(node.parts, undefined);
    assert.equal(node.env?.subject, 'Hi');
  });

  test('multipart/alternative: each part between its boundary lines, the CRLF before a boundary excluded', () => {
    const node = analyseMessage(ALTERNATIVE);
    assert.equal(node.type, 'multipart');
    assert.equal(node.subtype, 'alternative');
    assert.deepEqual(node.params, [['boundary', 'alt']]);
    assert.equal(node.lines, null, 'multiparts have no line count');
    assert.equal(node.be, ALTERNATIVE.length);
    const [text, html] = node.parts ?? [];
    assert.deepEqual(place(text), expectedPlace(ALTERNATIVE, 'Content-Type: text/plain', 'Hello Bob.', 1));
    assert.deepEqual(
      place(html),
      expectedPlace(
        ALTERNATIVE,
        'Content-Type: text/html',
        '<p>Hello Bob=2E Caf=C3=A9 =\r\nand soft breaks.</p>',
        2,
      ),
    );
    assert.equal(html.enc, 'quoted-printable');
    assert.equal(text.env, undefined, 'only messages have envelopes');
  });

  test('multipart/mixed: nested related part, inline image and attachment with every Content-* field', () => {
    const node = analyseMessage(MIXED);
    const [related, pdf] = node.parts ?? [];
    assert.equal(
      node.parts?.length,
      2,
      'the preamble and epilogue mentions of the boundary are not boundaries',
    );
    assert.deepEqual(related.params, [
      ['boundary', 'rel'],
      ['type', 'text/html'],
    ]);
    const [html, image] = related.parts ?? [];
    assert.deepEqual(
      place(html),
      expectedPlace(MIXED, 'Content-Type: text/html', '<img src="cid:logo@x">', 1),
    );
    assert.deepEqual(place(image), expectedPlace(MIXED, 'Content-Type: image/png', 'iVBORw0KGgo=', null));
    assert.equal(image.id, '<logo@x>');
    assert.deepEqual(image.disp, { type: 'inline', params: [['filename', 'logo.png']] });
    assert.deepEqual(
      place(pdf),
      expectedPlace(MIXED, 'Content-Type: application/pdf', 'JVBERi0xLjQK\r\naGVsbG8=', null),
    );
    assert.deepEqual(
      { ...pdf, hs: 0, he: 0, bs: 0, be: 0, size: 0 },
      {
        hs: 0,
        he: 0,
        bs: 0,
        be: 0,
        type: 'application',
        subtype: 'pdf',
        params: [['name', 'report.pdf']],
        id: null,
        desc: 'The report',
        enc: 'base64',
        md5: 'Q2hlY2sgSW50ZWdyaXR5IQ==',
        size: 0,
        lines: null,
        disp: {
          type: 'attachment',
          params: [
            ['filename', 'report.pdf'],
            ['size', '11'],
          ],
        },
        lang: ['en', 'fr'],
        loc: 'http://example.com/report.pdf',
      },
    );
  });

  test('message/rfc822: the attached message spans the part body and has its own envelope and parts', () => {
    const node = analyseMessage(NESTED);
    const attached = node.parts?.[1];
    assert.ok(attached?.msg);
    const inner = attached.msg;
    assert.equal(attached.bs, at(NESTED, 'From: Carol'));
    assert.equal(attached.be, at(NESTED, '--inner--') + '--inner--\r\n'.length);
    assert.equal(attached.lines, 16);
    assert.deepEqual([inner.hs, inner.be], [attached.bs, attached.be]);
    assert.equal(inner.bs, at(NESTED, '--inner\r\nContent-Type: text/plain'));
    assert.deepEqual(inner.env?.from, [['Carol', null, 'carol', 'example.net']]);
    assert.equal(inner.env?.messageId, '<inner@example.net>');
    assert.deepEqual(
      inner.parts?.map((part) => raw(part)),
      ['Inner text', '<p>Inner</p>'],
    );
    assert.deepEqual(attached.disp, { type: 'attachment', params: [] });

    function raw(part: MimeNode): string {
      return NESTED.subarray(part.bs, part.be).toString();
    }
  });

  test('multiparts nested three deep, and a boundary that starts with its parent’s', () => {
    const raw = crlf(
      'Content-Type: multipart/mixed; boundary=b',
      '',
      '--b',
      'Content-Type: multipart/alternative; boundary=b-2',
      '',
      '--b-2',
      'Content-Type: multipart/related; boundary=b-2-3',
      '',
      '--b-2-3',
      '',
      'deepest',
      '--b-2-3--',
      '--b-2',
      'Content-Type: text/html',
      '',
      '<p>two</p>',
      '--b-2--',
      '--b',
      '',
      'last',
      '--b--',
    );
    const node = analyseMessage(raw);
    const deepest = node.parts?.[0].parts?.[0].parts?.[0];
    assert.ok(deepest);
    assert.deepEqual(place(deepest), {
      hs: at(raw, '\r\ndeepest'),
      he: at(raw, 'deepest'),
      bs: at(raw, 'deepest'),
      be: at(raw, 'deepest') + 7,
      size: 7,
      lines: 1,
    });
    assert.equal(raw.subarray(deepest.hs, deepest.he).toString(), '\r\n', 'a part without header fields');
    assert.deepEqual(
      allNodes(node).map((part) => `${part.type}/${part.subtype}`),
      [
        'multipart/mixed',
        'multipart/alternative',
        'multipart/related',
        'text/plain',
        'text/html',
        'text/plain',
      ],
    );
    assert.equal(raw.subarray(node.parts?.[1].bs, node.parts?.[1].be).toString(), 'last');
  });

  test('RFC 2231 continuations, charsets and languages; the extended form wins over a plain one', () => {
    const raw = crlf(
      'Content-Type: application/octet-stream;',
      " name*0*=utf-8'en'%E2%82;",
      ' name*1*=%AC%20rates;',
      ' name*2=".txt";',
      " title*=iso-8859-1''caf%E9;",
      ' plain="fallback.txt"; plain*=UTF-8\'\'%C3%BCber.txt;',
      ' odd*1="b"; odd*0="a"; broken*=unknown-charset\'\'%41%42',
      'Content-Disposition: attachment; FileName="quoted \\"name\\"; with semicolon.pdf"',
      '',
      'x',
    );
    const node = analyseMessage(raw);
    assert.deepEqual(node.params, [
      ['name', '€ rates.txt'],
      ['title', 'café'],
      ['plain', 'über.txt'],
      ['odd', 'ab'],
      ['broken', 'AB'],
    ]);
    assert.deepEqual(node.disp, {
      type: 'attachment',
      params: [['filename', 'quoted "name"; with semicolon.pdf']],
    });
  });

  test('envelope: encoded words kept, groups, routes, comments as names, quoted names with commas', () => {
    const raw = crlf(
      'From: "Doe, John" <john@example.com>',
      'Sender: =?utf-8?Q?J=C3=B6rg?= <joerg@example.com>',
      'To: undisclosed-recipients:;',
      'Cc: team: a@example.com, "B" <@relay1,@relay2:b@example.com>;, c@example.com (Carol C)',
      'Bcc: ',
      'Subject: =?utf-8?B?SGVsbG8=?=',
      '  folded',
      'In-Reply-To: <parent@example.com>',
      '',
      '',
    );
    const env = analyseMessage(raw).env;
    assert.deepEqual(env, {
      date: null,
      subject: '=?utf-8?B?SGVsbG8=?=  folded',
      from: [['Doe, John', null, 'john', 'example.com']],
      sender: [['=?utf-8?Q?J=C3=B6rg?=', null, 'joerg', 'example.com']],
      replyTo: null,
      to: [
        [null, null, 'undisclosed-recipients', null],
        [null, null, null, null],
      ],
      cc: [
        [null, null, 'team', null],
        [null, null, 'a', 'example.com'],
        ['B', '@relay1,@relay2', 'b', 'example.com'],
        [null, null, null, null],
        ['Carol C', null, 'c', 'example.com'],
      ],
      bcc: null,
      inReplyTo: '<parent@example.com>',
      messageId: null,
    });
  });

  test('bare LF line ends give the same structure at LF offsets', () => {
    const crlfNode = analyseMessage(NESTED);
    const lf = Buffer.from(NESTED.toString().replaceAll('\r\n', '\n'));
    const lfNode = analyseMessage(lf);
    assert.deepEqual(
      allNodes(lfNode).map((node) => lf.subarray(node.bs, node.be).toString()),
      allNodes(crlfNode).map((node) => NESTED.subarray(node.bs, node.be).toString().replaceAll('\r\n', '\n')),
    );
    assert.deepEqual(
      allNodes(lfNode).map((node) => node.lines),
      allNodes(crlfNode).map((node) => node.lines),
    );
    assert.equal(lfNode.parts?.[1].msg?.env?.subject, 'Inner');
  });

  test('a missing final boundary: the last part runs to the end of its parent', () => {
    const raw = crlf(
      'Content-Type: multipart/mixed; boundary=outer',
      '',
      '--outer',
      'Content-Type: multipart/alternative; boundary=inner',
      '',
      '--inner',
      '',
      'unterminated inner',
      '--outer',
      '',
      'second',
      '',
    );
    const node = analyseMessage(raw);
    const [first, second] = node.parts ?? [];
    assert.equal(raw.subarray(first.parts?.[0].bs, first.parts?.[0].be).toString(), 'unterminated inner');
    assert.equal(raw.subarray(second.bs, second.be).toString(), 'second\r\n');
    assert.equal(second.be, raw.length);
  });

  test('empty bodies, an empty message, and a header with no blank line after it', () => {
    const empty = analyseMessage(Buffer.alloc(0));
    assert.deepEqual(place(empty), { hs: 0, he: 0, bs: 0, be: 0, size: 0, lines: 0 });
    assert.ok(empty.env);

    const headerOnly = crlf('Subject: no body', 'From: a@example.com');
    assert.deepEqual(place(analyseMessage(headerOnly)), { hs: 0, he: 37, bs: 37, be: 37, size: 0, lines: 0 });
    assert.equal(analyseMessage(headerOnly).env?.subject, 'no body');

    const emptyBody = crlf('Subject: empty', '', '');
    assert.deepEqual(place(analyseMessage(emptyBody)), { hs: 0, he: 18, bs: 18, be: 18, size: 0, lines: 0 });

    // The second part is a blank line: no header fields, an empty body; the CRLF after it is the boundary's.
    const emptyParts = crlf('Content-Type: multipart/mixed; boundary=e', '', '--e', '--e', '', '', '--e--');
    const parts = analyseMessage(emptyParts).parts ?? [];
    assert.deepEqual(
      parts.map((part) => [part.size, part.he - part.hs]),
      [
        [0, 0],
        [0, 2],
      ],
    );
  });

  test('multipart without a boundary or without boundary lines, and digest defaults', () => {
    assert.deepEqual(analyseMessage(crlf('Content-Type: multipart/mixed', '', 'text')).parts, []);
    assert.deepEqual(analyseMessage(crlf('Content-Type: multipart/mixed; boundary=x', '', 'text')).parts, []);
    const digest = analyseMessage(
      crlf(
        'Content-Type: multipart/digest; boundary=d',
        '',
        '--d',
        '',
        'Subject: first',
        '',
        'one',
        '--d',
        'Content-Type: text/plain',
        '',
        'two',
        '--d--',
      ),
    );
    const [first, second] = digest.parts ?? [];
    assert.equal(`${first.type}/${first.subtype}`, 'message/rfc822');
    assert.equal(first.msg?.env?.subject, 'first');
    assert.equal(`${second.type}/${second.subtype}`, 'text/plain');
  });

  test('invalid Content-Type falls back to text/plain; odd encodings and comments are tolerated', () => {
    const node = analyseMessage(
      crlf(
        'Content-Type: "broken"',
        'Content-Transfer-Encoding: Base64 (comment)',
        'Content-Type: image/png',
        '',
        'x',
      ),
    );
    assert.deepEqual(
      [node.type, node.subtype, node.enc],
      ['text', 'plain', 'base64'],
      'first occurrence counts',
    );
    const commented = analyseMessage(crlf('Content-Type: text/plain; charset=us-ascii (Plain text)', '', ''));
    assert.deepEqual(commented.params, [['charset', 'us-ascii']]);
    const invalid = analyseMessage(crlf('Content-Transfer-Encoding: ?invalid', '', ''));
    assert.equal(invalid.enc, null, 'not a token: 7bit, as in Dovecot');
    const sloppy = analyseMessage(crlf('Content-Disposition: attachment filename=a.pdf', '', ''));
    assert.deepEqual(sloppy.disp, { type: 'attachment', params: [] });
  });

  test('8-bit headers: UTF-8 is read as UTF-8, other 8-bit bytes as Latin-1; NULs survive', () => {
    const utf8 = analyseMessage(Buffer.from('Subject: Grüße ☃\r\nFrom: Jörg <j@example.com>\r\n\r\nbody'));
    assert.equal(utf8.env?.subject, 'Grüße ☃');
    assert.equal(utf8.bs, Buffer.byteLength('Subject: Grüße ☃\r\nFrom: Jörg <j@example.com>\r\n\r\n'));
    const latin1 = analyseMessage(Buffer.from('Subject: Gr\xfc\xdfe\0!\r\n\r\nbody', 'latin1'));
    assert.equal(latin1.env?.subject, 'Grüße\0!');
  });

  test('round-trips through JSON unchanged, with the same renders', () => {
    for (const raw of [ALTERNATIVE, MIXED, NESTED]) {
      const node = analyseMessage(raw);
      const stored = JSON.parse(JSON.stringify(node));
      assert.deepEqual(stored, node);
      assert.equal(renderBodyStructure(stored, true), renderBodyStructure(node, true));
      assert.equal(renderEnvelope(stored), renderEnvelope(node));
    }
  });

  test('never throws on mangled input, and keeps every offset inside its parent', () => {
    let seed = 42;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const sources = [ALTERNATIVE, MIXED, NESTED];
    for (let round = 0; round < 400; round++) {
      const raw = Buffer.from(sources[round % sources.length]);
      const mangled = mangle(raw, random);
      const node = analyseMessage(mangled);
      checkInside(node, 0, mangled.length);
      renderBodyStructure(node, true);
      renderEnvelope(node);
      for (const part of [[], [1], [1, 1], [2], [2, 1], [2, 2, 1]]) {
        sectionBytes(mangled, node, { part, text: part.length ? 'MIME' : 'HEADER' });
      }
    }
  });

  test('past 100 levels of nesting a part stays opaque, and past 10,000 parts the rest are left out', () => {
    const deep = Buffer.from(
      `${'Content-Type: message/rfc822\r\n\r\n'.repeat(150)}Subject: deepest\r\n\r\nbody`,
    );
    let node = analyseMessage(deep);
    let levels = 0;
    while (node.msg) {
      node = node.msg;
      levels++;
    }
    assert.equal(levels, 100);
    assert.equal(`${node.type}/${node.subtype}`, 'application/octet-stream');
    assert.match(renderBodyStructure(analyseMessage(deep), true), /^\("MESSAGE" "RFC822"/);

    const many = Buffer.from(
      `Content-Type: multipart/mixed; boundary=b\r\n\r\n${'--b\r\n\r\nx\r\n'.repeat(20_000)}--b--`,
    );
    assert.equal(allNodes(analyseMessage(many)).length, 10_000);
  });

  test('a 5 MB attachment is located without slowing the analysis', () => {
    const attachment = 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWg==\r\n'.repeat(
      70_000,
    );
    const raw = crlf(
      'Content-Type: multipart/mixed; boundary=big',
      '',
      '--big',
      'Content-Type: text/plain',
      '',
      'see attachment',
      '--big',
      'Content-Type: application/zip',
      'Content-Transfer-Encoding: base64',
      '',
      `${attachment}--big--`,
      '',
    );
    let best = Number.POSITIVE_INFINITY;
    let node: MimeNode | undefined;
    for (let run = 0; run < 3; run++) {
      const started = performance.now();
      node = analyseMessage(raw);
      best = Math.min(best, performance.now() - started);
    }
    assert.equal(node?.parts?.[1].size, attachment.length - 2);
    assert.ok(best < 50, `analysing took ${best.toFixed(1)} ms`);
  });
});

/** A few random byte changes, deletions, insertions of structural bytes, or a truncation. */
function mangle(raw: Buffer, random: (n: number) => number): Buffer {
  let bytes = raw;
  const pieces = ['\r\n', '\n', '--', '\0', '"', ';', ':', '\xff', '=', '(', '<', '\r'];
  for (let edit = 0; edit < 1 + random(6); edit++) {
    const pos = random(bytes.length + 1);
    const kind = random(4);
    if (kind === 0) bytes = Buffer.concat([bytes.subarray(0, pos), bytes.subarray(pos + 1 + random(20))]);
    else if (kind === 1)
      bytes = Buffer.concat([
        bytes.subarray(0, pos),
        Buffer.from(pieces[random(pieces.length)], 'latin1'),
        bytes.subarray(pos),
      ]);
    else if (kind === 2) bytes = bytes.subarray(0, pos);
    else if (pos < bytes.length)
      bytes = Buffer.concat([bytes.subarray(0, pos), Buffer.of(random(256)), bytes.subarray(pos + 1)]);
  }
  return bytes;
}

function checkInside(node: MimeNode, start: number, end: number): void {
  assert.ok(
    start <= node.hs && node.hs <= node.he && node.he === node.bs && node.bs <= node.be && node.be <= end,
  );
  assert.equal(node.size, node.be - node.bs);
  for (const part of node.parts ?? []) checkInside(part, node.bs, node.be);
  if (node.msg) checkInside(node.msg, node.bs, node.be);
}
