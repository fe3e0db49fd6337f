// The common shapes of mail, parsed directly: a text/plain message, or multipart/alternative of one
// text/plain and one text/html part, in UTF-8 or ASCII, 7bit, 8bit, quoted-printable or base64. That is
// most person-to-person and notification mail, and mailparser's streams cost about five times as much
// for it (its splitter, decoders and stream plumbing, and the garbage they leave, were the processing
// thread's largest cost after tokenising). Anything else — attachments, other charsets, format=flowed,
// encoded words in addresses, mbox preambles, anything malformed — is left to mailparser (null here),
// and the result for a shape handled here is what mailparser gives for it: test/modules/inbound/direct-parse.test.ts
// compares the two on every shape.
import libmime from 'libmime';
import { decode as decodeQuotedPrintable } from 'libqp';
import addressparser from 'nodemailer/lib/addressparser';
import { headerLength } from '../../core/message.ts';

/** What parse.ts reads of a parsed message: the subset of mailparser's ParsedMail it uses. */
export interface MailFields {
  headerLines: readonly { key: string; line: string }[];
  messageId?: string;
  inReplyTo?: string;
  references?: string | string[];
  subject?: string;
  date?: Date;
  from?: AddressField;
  to?: AddressField | AddressField[];
  cc?: AddressField | AddressField[];
  text?: string;
  html?: string | false;
  attachments: { filename?: string; contentType: string; size: number; cid?: string }[];
}

type AddressField = { value: { address?: string; name: string; group?: unknown[] }[] };

/** Header fields of which mailparser keeps the last occurrence. */
const SINGLE = new Set(['message-id', 'from', 'in-reply-to', 'subject', 'date']);
const ADDRESSES = new Set(['to', 'cc']);
/** Header block sizes past which mailparser's own limits and recovery apply. */
const MAX_HEADER_BYTES = 64 * 1024;
const TEXT_CHARSETS = new Set(['', 'utf8', 'usascii', 'ascii']);
const BASE64 = /^[A-Za-z0-9+/\r\n]*(?:={0,2})[\r\n]*$/;
const QP_ESCAPES = /=(?![0-9A-Fa-f]{2}|\r?\n|$)/;

/** The message parsed directly, or null when mailparser should parse it. */
export function parseDirect(raw: Buffer): MailFields | null {
  const split = splitHead(raw, 0, raw.length);
  if (!split) return null;
  const lines = headerLines(split.head);
  if (!lines) return null;
  const mail: MailFields = { headerLines: lines, attachments: [] };
  const type = contentTypeOf(lines);
  if (!type) return null;
  if (type.value === 'multipart/alternative') {
    const parts = alternativeParts(raw, split.bodyStart, type.boundary);
    if (!parts) return null;
    mail.text = parts.text || undefined;
    mail.html = parts.html || false;
  } else if (type.value === 'text/plain') {
    const text = textOf(raw.subarray(split.bodyStart), type);
    if (text === null) return null;
    mail.text = text || undefined;
  } else return null;
  return readHeaders(lines, mail) ? mail : null;
}

/** The header block (without its last line break) and where the body starts, or null without a blank line. */
function splitHead(raw: Buffer, from: number, to: number): { head: string; bodyStart: number } | null {
  const window = raw.subarray(from, Math.min(to, from + MAX_HEADER_BYTES));
  const length = headerLength(window);
  if (length === window.length) return null;
  const lineBreak = window[length] === 0x0d ? 2 : 1; // the blank line's, like the last header line's
  return { head: window.toString('latin1', 0, length - lineBreak), bodyStart: from + length + lineBreak };
}

/** Header lines as mailparser keeps them: raw (latin1), folded lines joined with CRLF, keys lower case. */
function headerLines(head: string): { key: string; line: string }[] | null {
  const raw = head.split(/\r?\n/);
  if (/^(From|POST) /i.test(raw[0]) || /^[ \t]/.test(raw[0])) return null;
  const lines: { key: string; line: string }[] = [];
  for (const line of raw) {
    if (line.includes('\r')) return null;
    if (line[0] === ' ' || line[0] === '\t') lines[lines.length - 1].line += `\r\n${line}`;
    else {
      const colon = line.indexOf(':');
      if (colon <= 0) return null;
      lines.push({ key: line.slice(0, colon).trim().toLowerCase(), line });
    }
  }
  return lines;
}

/** A header line's value: unfolded, trimmed, its raw bytes read as UTF-8 (as mailparser reads them). */
function headerValue(line: string): string {
  const unfolded = line.replace(/(?:\r?\n|\r)[ \t]*/g, ' ').trim();
  const value = unfolded.slice(unfolded.indexOf(':') + 1).trim();
  return Buffer.from(value, 'latin1').toString();
}

interface ContentType {
  value: string;
  charset: string;
  boundary: string;
  encoding: string;
}

/**
 * The part's content type and transfer encoding, when it is one this parser handles: no disposition or
 * inline without a file name, no name parameter, no format=flowed.
 */
function contentTypeOf(lines: MailFields['headerLines']): ContentType | null {
  let type = 'text/plain';
  let params: Record<string, string> = {};
  let encoding = '7bit';
  for (const { key, line } of lines) {
    if (key === 'content-type') {
      const parsed = libmime.parseHeaderValue(headerValue(line));
      type = parsed.value.toLowerCase();
      params = parsed.params;
    } else if (key === 'content-transfer-encoding') encoding = headerValue(line).toLowerCase();
    else if (key === 'content-disposition') {
      const parsed = libmime.parseHeaderValue(headerValue(line));
      if (parsed.value.toLowerCase() !== 'inline' || Object.keys(parsed.params).length) return null;
    }
  }
  if ('name' in params || (params.format ?? '').toLowerCase() === 'flowed') return null;
  const charset = (params.charset ?? '').toLowerCase().replace(/[^a-z0-9]+/g, '');
  if (type.startsWith('text/') && !TEXT_CHARSETS.has(charset)) return null;
  if (!['7bit', '8bit', 'binary', 'quoted-printable', 'base64'].includes(encoding)) return null;
  return { value: type, charset, boundary: params.boundary ?? '', encoding };
}

/** A text part's text, decoded, with LF line ends; null when the encoding is not clean. */
function textOf(body: Buffer, type: ContentType): string | null {
  let bytes: Buffer;
  if (type.encoding === 'base64') {
    const text = body.toString('latin1');
    if (!BASE64.test(text)) return null;
    bytes = Buffer.from(text, 'base64');
  } else if (type.encoding === 'quoted-printable') {
    const text = body.toString('latin1');
    if (QP_ESCAPES.test(text)) return null;
    bytes = decodeQuotedPrintable(text);
  } else bytes = body;
  return bytes.toString().replace(/\r?\n/g, '\n');
}

/** The text and HTML of a multipart/alternative body of exactly one text/plain and one text/html part. */
function alternativeParts(
  raw: Buffer,
  bodyStart: number,
  boundary: string,
): { text: string; html: string } | null {
  if (!boundary || boundary.length > 200 || /[\r\n]/.test(boundary)) return null;
  const delimiter = `--${boundary}`;
  const body = raw.subarray(bodyStart);
  // Delimiter lines exactly: `--boundary` or `--boundary--` alone on a line, nothing after them.
  const starts: number[] = [];
  const delimiters: number[] = [];
  let closeAt = -1;
  for (let at = body.indexOf(delimiter); at >= 0; at = body.indexOf(delimiter, at + 1)) {
    if (at > 0 && body[at - 1] !== 0x0a) continue;
    const after = at + delimiter.length;
    const closing = body[after] === 0x2d && body[after + 1] === 0x2d;
    const lineEnd = after + (closing ? 2 : 0);
    const rest = body[lineEnd] === 0x0d ? lineEnd + 1 : lineEnd;
    if (rest < body.length && body[rest] !== 0x0a) return null;
    if (closing) {
      closeAt = at;
      break;
    }
    delimiters.push(at);
    starts.push(rest + 1);
  }
  if (starts.length !== 2 || closeAt < 0) return null;
  // The epilogue must be blank: mailparser shows text after the closing delimiter in its own way.
  if (
    body
      .subarray(closeAt + delimiter.length + 2)
      .toString('latin1')
      .trim()
  )
    return null;
  const ends = [
    nextDelimiterLine(body, starts[0], delimiters[1]),
    nextDelimiterLine(body, starts[1], closeAt),
  ];
  const decoded: Record<string, string> = {};
  for (const [i, start] of starts.entries()) {
    const split = splitHead(body, start, ends[i]);
    if (!split) return null;
    const lines = headerLines(split.head);
    if (!lines) return null;
    const type = contentTypeOf(lines);
    if (!type || decoded[type.value] !== undefined) return null;
    // An empty part: mailparser reads a line break into it unless it is base64.
    if (split.bodyStart >= ends[i]) return null;
    if (type.value !== 'text/plain' && type.value !== 'text/html') return null;
    const text = textOf(body.subarray(split.bodyStart, ends[i]), type);
    if (text === null) return null;
    decoded[type.value] = text;
  }
  if (decoded['text/plain'] === undefined || decoded['text/html'] === undefined) return null;
  return { text: decoded['text/plain'], html: decoded['text/html'] };
}

/** Where a part's content ends: before the line break that precedes the delimiter at `delimiterAt`. */
function nextDelimiterLine(body: Buffer, partStart: number, delimiterAt: number): number {
  let end = delimiterAt - 1; // the LF
  if (end > partStart && body[end - 1] === 0x0d) end--;
  return Math.max(partStart, end);
}

/** The top-level fields, read as mailparser reads them; false when one needs mailparser's handling. */
function readHeaders(lines: MailFields['headerLines'], mail: MailFields): boolean {
  const to: AddressField[] = [];
  const cc: AddressField[] = [];
  const references: string[] = [];
  for (const { key, line } of lines) {
    if (!SINGLE.has(key) && !ADDRESSES.has(key) && key !== 'references') continue;
    const value = headerValue(line);
    if (!value && key !== 'date' && key !== 'from' && !ADDRESSES.has(key)) continue;
    if (key === 'date') {
      const date = new Date(value);
      mail.date = Number.isNaN(date.getTime()) ? new Date() : date;
      continue;
    }
    if (key === 'from' || ADDRESSES.has(key)) {
      if (/=\?|xn--/i.test(value)) return false;
      const list = addressparser(value) as AddressField['value'];
      for (const a of list) {
        a.name = (a.name || '').toString().trim();
        for (const member of (a.group ?? []) as { name: string }[])
          member.name = (member.name || '').toString().trim();
      }
      if (key === 'from') mail.from = { value: list };
      else (key === 'to' ? to : cc).push({ value: list });
    } else if (key === 'subject') mail.subject = libmime.decodeWords(value);
    else if (key === 'references')
      references.push(...libmime.decodeWords(value).split(/\s+/).map(messageIdFormat));
    else if (key === 'message-id') mail.messageId = messageIdFormat(libmime.decodeWords(value));
    else if (key === 'in-reply-to') mail.inReplyTo = messageIdFormat(libmime.decodeWords(value));
  }
  if (to.length) mail.to = to.length === 1 ? to[0] : to;
  if (cc.length) mail.cc = cc.length === 1 ? cc[0] : cc;
  const ids = references.filter(Boolean);
  if (ids.length) mail.references = ids.length === 1 ? ids[0] : ids;
  return true;
}

function messageIdFormat(value: string): string {
  if (!value) return '';
  return `${value.startsWith('<') ? '' : '<'}${value}${value.endsWith('>') ? '' : '>'}`;
}
