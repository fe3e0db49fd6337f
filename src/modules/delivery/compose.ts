// Building and finishing outbound messages: MIME from the send API's fields, the header facts the
// pipeline needs from a submitted message, and the Message-ID and Date a message must carry. Messages
// with attachments are built by nodemailer's composer; the common text and HTML messages are written
// here directly (nodemailer's streams cost a millisecond a message), with nodemailer's header encoders.
import { randomBytes } from 'node:crypto';
import { domainToASCII } from 'node:url';
import { headerLength } from '../../core/message.ts';
import addressparser from 'nodemailer/lib/addressparser';
import MailComposer from 'nodemailer/lib/mail-composer';
import { encodeWord, encodeWords, foldLines, isPlainText, quoteString } from 'nodemailer/lib/mime-funcs';
import { encode as qpEncode, wrap as qpWrap } from 'nodemailer/lib/qp';

export interface ComposeInput {
  from: { address: string; name?: string | null };
  to: string[];
  cc: string[];
  replyTo: string[];
  subject: string;
  text?: string | null;
  html?: string | null;
  attachments: {
    filename: string;
    content: Buffer;
    contentType?: string | null;
    contentId?: string | null;
  }[];
  headers: Record<string, string>;
  messageId: string;
  date: Date;
}

/** The RFC 5322 message for a send request. Bcc recipients are envelope-only: no Bcc header is written. */
export async function composeMessage(input: ComposeInput): Promise<Buffer> {
  if (!input.attachments.length) return composeText(input);
  const composer = new MailComposer({
    from: input.from.name ? { name: input.from.name, address: input.from.address } : input.from.address,
    to: input.to,
    cc: input.cc.length ? input.cc : undefined,
    replyTo: input.replyTo.length ? input.replyTo : undefined,
    subject: input.subject,
    text: input.text ?? undefined,
    html: input.html ?? undefined,
    attachments: input.attachments.map((a) => ({
      filename: a.filename,
      content: a.content,
      contentType: a.contentType ?? undefined,
      cid: a.contentId ?? undefined,
    })),
    headers: input.headers,
    messageId: input.messageId,
    date: input.date,
  });
  return composer.compile().build();
}

/** A message of text, HTML or both (multipart/alternative), without attachments. */
function composeText(input: ComposeInput): Buffer {
  const lines: string[] = [header('From', formatAddress(input.from))];
  if (input.to.length) lines.push(header('To', input.to.join(', ')));
  if (input.cc.length) lines.push(header('Cc', input.cc.join(', ')));
  if (input.replyTo.length) lines.push(header('Reply-To', input.replyTo.join(', ')));
  lines.push(header('Subject', headerText(input.subject)));
  lines.push(header('Message-ID', input.messageId));
  lines.push(header('Date', input.date.toUTCString().replace(/GMT/, '+0000')));
  for (const [name, value] of Object.entries(input.headers)) lines.push(header(name, headerText(value)));
  lines.push('MIME-Version: 1.0');
  const parts = [
    input.text != null ? bodyPart('text/plain', input.text) : null,
    input.html != null ? bodyPart('text/html', input.html) : null,
  ].filter((p) => p !== null);
  if (parts.length === 1) {
    lines.push(...parts[0].headers, '', parts[0].body);
    return Buffer.from(lines.join('\r\n'));
  }
  const boundary = `--_mailroom_${randomBytes(12).toString('hex')}`;
  lines.push(`Content-Type: multipart/alternative; boundary="${boundary}"`, '');
  for (const part of parts) lines.push(`--${boundary}`, ...part.headers, '', part.body);
  lines.push(`--${boundary}--`, '');
  return Buffer.from(lines.join('\r\n'));
}

/**
 * A text part: 7bit when it is ASCII with lines within SMTP's limit (998 octets), which needs no
 * encoding at all; quoted-printable otherwise. Line breaks become CRLF.
 */
function bodyPart(type: string, content: string): { headers: string[]; body: string } {
  const text = content.replace(/\r\n|\r|\n/g, '\r\n');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the test is for printable ASCII itself
  const plain = /^[\x09\x0d\x0a\x20-\x7e]*$/.test(text) && !hasLongLine(text, 998);
  return {
    headers: [
      `Content-Type: ${type}; charset=utf-8`,
      `Content-Transfer-Encoding: ${plain ? '7bit' : 'quoted-printable'}`,
    ],
    body: plain ? text : qpWrap(qpEncode(Buffer.from(text)), 76),
  };
}

/** Whether a line of `text` (CRLF-separated) is longer than `max` characters. */
function hasLongLine(text: string, max: number): boolean {
  for (let from = 0; from < text.length; ) {
    const end = text.indexOf('\r\n', from);
    if ((end < 0 ? text.length : end) - from > max) return true;
    if (end < 0) return false;
    from = end + 2;
  }
  return false;
}

/** A header line, folded at 76 characters. */
function header(name: string, value: string): string {
  return foldLines(`${name}: ${value}`, 76);
}

/** Unstructured header text: as it is when printable ASCII, else RFC 2047 encoded words. */
function headerText(value: string): string {
  return isPlainText(value) ? value : encodeWords(value, 'Q', 52);
}

/** `address` or `Name <address>`, the name quoted or encoded as it needs. */
function formatAddress(from: { address: string; name?: string | null }): string {
  const name = from.name?.trim();
  if (!name) return from.address;
  if (/^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]+$/.test(name)) return `${name} <${from.address}>`;
  if (isPlainText(name)) return `${quoteString(name)} <${from.address}>`;
  return `${encodeWord(name, 'Q', 52)} <${from.address}>`;
}

/** A parsed address: the local part as written, the domain lower case A-label. */
export interface OutboundAddress {
  address: string;
  domain: string;
}

const LOCAL_PART = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$/;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$/;

/** A plain `local@domain` recipient or sender; null for anything else (quoted parts, IP literals, routes). */
export function parseAddress(raw: string): OutboundAddress | null {
  const value = raw.trim();
  const at = value.lastIndexOf('@');
  if (at <= 0 || at === value.length - 1) return null;
  const local = value.slice(0, at);
  const written = value
    .slice(at + 1)
    .toLowerCase()
    .replace(/\.$/, '');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the test is for ASCII itself
  const domain = /^[\x00-\x7f]*$/.test(written) ? written : domainToASCII(written);
  if (local.length > 64 || !LOCAL_PART.test(local)) return null;
  if (!DOMAIN.test(domain) || /^[0-9.]+$/.test(domain)) return null;
  return { address: `${local}@${domain}`, domain };
}

/** The header block of a message (up to the first empty line), unfolded into name/value pairs. */
export function readHeaders(raw: Buffer): { name: string; value: string }[] {
  const block = raw.subarray(0, headerLength(raw)).toString('latin1');
  const headers: { name: string; value: string }[] = [];
  for (const line of block.split(/\r?\n(?![ \t])/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    headers.push({
      name: line.slice(0, colon).trim().toLowerCase(),
      value: line
        .slice(colon + 1)
        .replace(/\r?\n[ \t]+/g, ' ')
        .trim(),
    });
  }
  return headers;
}

/** The addresses of the From header (a header may name several authors, RFC 5322 3.6.2). */
export function fromAddresses(headers: { name: string; value: string }[]): string[] {
  const from = headers.filter((h) => h.name === 'from');
  if (from.length !== 1) return [];
  return addressparser(from[0].value, { flatten: true })
    .map((a) => ('address' in a && a.address ? a.address : ''))
    .filter(Boolean);
}

/**
 * Adds what a submitted message lacks and every message must carry (RFC 5322 3.6): Date and
 * Message-ID, as a submission server does for its clients (RFC 6409 8). Returns the message and its
 * Message-ID.
 */
export function completeHeaders(
  raw: Buffer,
  headers: { name: string; value: string }[],
  makeMessageId: () => string,
  now: Date,
): { raw: Buffer; messageId: string } {
  const added: string[] = [];
  let messageId = headers.find((h) => h.name === 'message-id')?.value ?? '';
  if (!messageId) {
    messageId = makeMessageId();
    added.push(`Message-ID: ${messageId}`);
  }
  if (!headers.some((h) => h.name === 'date'))
    added.push(`Date: ${now.toUTCString().replace('GMT', '+0000')}`);
  if (!added.length) return { raw, messageId };
  return { raw: Buffer.concat([Buffer.from(`${added.join('\r\n')}\r\n`), raw]), messageId };
}
