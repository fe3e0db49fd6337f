// Messages shared by the MIME structure tests, built here line by line.
import type { MimeNode } from '../../../../src/modules/imap/mime/structure.ts';

/** Lines joined with CRLF; end with '' for a final line break. */
export function crlf(...lines: string[]): Buffer {
  return Buffer.from(lines.join('\r\n'));
}

/** Every node of a tree, depth first, parts and attached messages included. */
export function allNodes(node: MimeNode): MimeNode[] {
  return [node, ...(node.parts ?? []).flatMap(allNodes), ...(node.msg ? allNodes(node.msg) : [])];
}

/** The offset of `marker` in `raw`, which must be there once. */
export function at(raw: Buffer, marker: string): number {
  const offset = raw.indexOf(marker);
  if (offset === -1 || raw.indexOf(marker, offset + 1) !== -1)
    throw new Error(`${marker} is not in the message once`);
  return offset;
}

/** multipart/alternative of a text and a quoted-printable HTML part. */
export const ALTERNATIVE = crlf(
  'From: Alice <alice@example.com>',
  'To: Bob <bob@example.org>',
  'Subject: Alternative',
  'Date: Mon, 1 Jan 2024 10:00:00 +0000',
  'Message-ID: <alt@example.com>',
  'MIME-Version: 1.0',
  'Content-Type: multipart/alternative; boundary="alt"',
  '',
  '--alt',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'Hello Bob.',
  '--alt',
  'Content-Type: text/html; charset=utf-8',
  'Content-Transfer-Encoding: quoted-printable',
  '',
  '<p>Hello Bob=2E Caf=C3=A9 =',
  'and soft breaks.</p>',
  '--alt--',
  '',
);

/** multipart/mixed: a multipart/related (HTML and an inline image), then a PDF attachment with every extension field. */
export const MIXED = crlf(
  'From: Alice <alice@example.com>',
  'To: Bob <bob@example.org>',
  'Subject: Report',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="mix"',
  '',
  'This is a MIME message; --mix in the preamble is no boundary.',
  '--mix',
  'Content-Type: multipart/related; boundary="rel"; type="text/html"',
  '',
  '--rel',
  'Content-Type: text/html; charset=us-ascii',
  '',
  '<img src="cid:logo@x">',
  '--rel',
  'Content-Type: image/png',
  'Content-Transfer-Encoding: base64',
  'Content-ID: <logo@x>',
  'Content-Disposition: inline; filename=logo.png',
  '',
  'iVBORw0KGgo=',
  '--rel--',
  '--mix',
  'Content-Type: application/pdf; name="report.pdf"',
  'Content-Transfer-Encoding: base64',
  'Content-Disposition: attachment; filename="report.pdf"; size=11',
  'Content-Description: The report',
  'Content-Language: en, fr',
  'Content-Location: http://example.com/report.pdf',
  'Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==',
  '',
  'JVBERi0xLjQK',
  'aGVsbG8=',
  '--mix--',
  'The epilogue, --mix-- again.',
  '',
);

/** multipart/mixed: a text part, then an attached message that is itself multipart/alternative. */
export const NESTED = crlf(
  'From: Eve <eve@example.com>',
  'To: Frank <frank@example.com>',
  'Subject: Fwd: Inner',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="outer"',
  '',
  '--outer',
  'Content-Type: text/plain',
  '',
  'See attached.',
  '--outer',
  'Content-Type: message/rfc822',
  'Content-Disposition: attachment',
  '',
  'From: Carol <carol@example.net>',
  'To: dave@example.net',
  'Subject: Inner',
  'Date: Tue, 2 Jan 2024 11:00:00 +0100',
  'Message-ID: <inner@example.net>',
  'Content-Type: multipart/alternative; boundary="inner"',
  '',
  '--inner',
  'Content-Type: text/plain',
  '',
  'Inner text',
  '--inner',
  'Content-Type: text/html',
  '',
  '<p>Inner</p>',
  '--inner--',
  '',
  '--outer--',
  '',
);
