// Reading feedback reports: the Abuse Reporting Format (RFC 5965) that mailbox providers' feedback
// loops send (Yahoo's CFL, Microsoft's JMRP, AOL and the many that copied its format). A report is a
// multipart/report with report-type=feedback-report whose parts are a human-readable explanation, a
// `message/feedback-report` part of header-like fields (Feedback-Type, User-Agent, Version,
// Original-Mail-From, Original-Rcpt-To, Arrival-Date, Source-IP, Reported-Domain, ...) and the message
// complained about, whole (`message/rfc822`) or its header (`text/rfc822-headers`).
//
// The report's own structure is split here: RFC 5965 fixes it, and mailparser folds an inline
// message/rfc822 part into the body text, keeping four of its header fields (Message-ID and
// Return-Path, what matching needs, are lost). The returned message's header goes through mailparser
// (encoded words, address lists, folding). Anything that is not a feedback report (a person's mail, a
// bounce, garbage) is null, never an error.
import { isIP } from 'node:net';
import libmime from 'libmime';
import { decode as decodeQuotedPrintable } from 'libqp';
import { type AddressObject, simpleParser } from 'mailparser';
import { headerLength } from '../../core/message.ts';

export interface OriginalMessage {
  /** As written, with its angle brackets. */
  messageId: string | null;
  /** The envelope sender the receiving system recorded (Return-Path), lower case, without brackets. */
  returnPath: string | null;
  from: string | null;
  subject: string | null;
  /** The To and Cc addresses, lower case. */
  to: string[];
  cc: string[];
  /**
   * Addresses the receiving system wrote into the message as its recipient: Microsoft's
   * X-HmXmrOriginalRecipient, Yahoo's X-Apparently-To, X-Original-To, Delivered-To, Envelope-To.
   */
  receivers: string[];
}

export interface FeedbackReport {
  /** Feedback-Type, lower case (abuse, fraud, virus, not-spam, other, auth-failure, ...); null when absent. */
  feedbackType: string | null;
  userAgent: string | null;
  version: string | null;
  /** The report's From address (the feedback loop), lower case. */
  reporter: string | null;
  /** Original-Mail-From, lower case, without brackets; null when absent or the null sender. */
  originalMailFrom: string | null;
  /** Original-Rcpt-To addresses, lower case (a report may name several). */
  originalRcptTo: string[];
  arrivalDate: Date | null;
  sourceIp: string | null;
  reportedDomain: string | null;
  /** The message complained about, when the report returned it or its header. */
  original: OriginalMessage | null;
}

interface Entity {
  fields: Map<string, string[]>;
  type: string;
  params: Record<string, string>;
  body: Buffer;
}

const ORIGINAL_TYPES = new Set([
  'message/rfc822',
  'text/rfc822-headers',
  'message/rfc822-headers',
  'message/global',
  'message/global-headers',
]);
const MAX_PARTS = 20;
const MAX_DEPTH = 2;
const MAX_FIELDS_BYTES = 64 * 1024;
const MAX_ORIGINAL_HEADER_BYTES = 256 * 1024;
const MAX_TEXT = 500;
const MAX_RCPT_TO = 50;
const ADDRESS = /[^\s<>@"(),;:[\]\\]+@[^\s<>@"(),;:[\]\\]+\.[^\s<>@"(),;:[\]\\.]+/;
const RECEIVER_FIELDS = [
  'x-hmxmroriginalrecipient',
  'x-apparently-to',
  'x-original-to',
  'delivered-to',
  'envelope-to',
];

/** The feedback report in `raw`; null when it is none (or cannot be read). */
export async function parseFeedbackReport(raw: Buffer): Promise<FeedbackReport | null> {
  try {
    return await readReport(raw);
  } catch {
    return null;
  }
}

async function readReport(raw: Buffer): Promise<FeedbackReport | null> {
  const top = entity(raw);
  const parts = reportParts(top, 0);
  if (!parts) return null;
  const machine = parts.find((p) => p.type === 'message/feedback-report');
  const fields = machine
    ? fieldsOf(decoded(machine).subarray(0, MAX_FIELDS_BYTES).toString('latin1'))
    : new Map<string, string[]>();
  const first = (name: string) => clip(headerText(fields.get(name)?.[0] ?? ''));
  const returned = parts.find((p) => ORIGINAL_TYPES.has(p.type));
  return {
    feedbackType: first('feedback-type')?.toLowerCase().split(/[\s;]/)[0] || null,
    userAgent: first('user-agent'),
    version: first('version'),
    reporter: addressIn(headerText(top.fields.get('from')?.[0] ?? '')),
    originalMailFrom: addressIn(headerText(fields.get('original-mail-from')?.[0] ?? '')),
    originalRcptTo: [
      ...new Set(
        (fields.get('original-rcpt-to') ?? [])
          .map((v) => addressIn(headerText(v)))
          .filter((a): a is string => a !== null),
      ),
    ].slice(0, MAX_RCPT_TO),
    arrivalDate: dateOf(fields.get('arrival-date')?.[0] ?? fields.get('received-date')?.[0]),
    sourceIp: ipOf(fields.get('source-ip')?.[0]),
    reportedDomain: first('reported-domain')?.toLowerCase() ?? null,
    original: returned ? await originalOf(returned) : null,
  };
}

/**
 * The parts of the feedback report: the entity itself when it is a multipart/report of type
 * feedback-report or a multipart holding a message/feedback-report part, else the first such multipart
 * nested in it (a report wrapped by a gateway).
 */
function reportParts(e: Entity, depth: number): Entity[] | null {
  if (!e.type.startsWith('multipart/') || !e.params.boundary) return null;
  const parts = multipartParts(e.body, e.params.boundary).map(entity);
  const declared =
    e.type === 'multipart/report' && (e.params['report-type'] ?? '').toLowerCase() === 'feedback-report';
  if (declared || parts.some((p) => p.type === 'message/feedback-report')) return parts;
  if (depth >= MAX_DEPTH) return null;
  for (const part of parts) {
    const nested = reportParts(part, depth + 1);
    if (nested) return nested;
  }
  return null;
}

/** A MIME entity: its header fields (names lower case, values unfolded), content type and raw body. */
function entity(raw: Buffer): Entity {
  // A part may have no header at all: its body starts after the first line break.
  const empty = raw[0] === 0x0a || (raw[0] === 0x0d && raw[1] === 0x0a);
  const head = empty ? 0 : headerLength(raw);
  const bodyStart = empty
    ? raw[0] === 0x0d
      ? 2
      : 1
    : Math.min(raw.length, head + (raw[head] === 0x0d ? 2 : 1));
  const fields = fieldsOf(raw.subarray(0, head).toString('latin1'));
  const contentType = libmime.parseHeaderValue(headerText(fields.get('content-type')?.[0] ?? 'text/plain'));
  const params: Record<string, string> = {};
  for (const [name, value] of Object.entries(contentType.params)) params[name.toLowerCase()] = value;
  return {
    fields,
    type: contentType.value.trim().toLowerCase(),
    params,
    body: raw.subarray(bodyStart),
  };
}

/**
 * Header-like fields (of a latin1 string, a character per byte): names lower case, folded values
 * unfolded, every occurrence kept in order.
 */
function fieldsOf(text: string): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  let last: string[] | null = null;
  for (const line of text.split(/\r?\n/)) {
    if (/^[ \t]/.test(line)) {
      if (last) last[last.length - 1] += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) {
      last = null;
      continue;
    }
    const name = line.slice(0, colon).trim().toLowerCase();
    last = fields.get(name) ?? [];
    last.push(line.slice(colon + 1).trim());
    fields.set(name, last);
  }
  return fields;
}

/**
 * The body parts of a multipart body, split at its boundary lines (a boundary line starts a line and
 * has only white space after it). Without a closing delimiter the last part runs to the end, as
 * mailparser reads it.
 */
function multipartParts(body: Buffer, boundary: string): Buffer[] {
  const text = body.toString('latin1');
  const delimiter = `--${boundary}`;
  const parts: Buffer[] = [];
  let start = -1;
  for (let pos = 0; ; ) {
    const at = text.indexOf(delimiter, pos);
    if (at < 0) break;
    pos = at + delimiter.length;
    if (at > 0 && text[at - 1] !== '\n') continue;
    const closing = text.startsWith('--', pos);
    const lineEnd = text.indexOf('\n', pos);
    const rest = text.slice(pos + (closing ? 2 : 0), lineEnd < 0 ? text.length : lineEnd);
    if (rest.trim()) continue;
    if (start >= 0) {
      let end = at;
      if (text[end - 1] === '\n') end--;
      if (text[end - 1] === '\r') end--;
      parts.push(body.subarray(start, Math.max(start, end)));
      if (parts.length >= MAX_PARTS) return parts;
    }
    if (closing) return parts;
    start = lineEnd < 0 ? text.length : lineEnd + 1;
    pos = start;
  }
  if (start >= 0 && start < text.length) parts.push(body.subarray(start));
  return parts;
}

/** A part's content with its transfer encoding undone. */
function decoded(part: Entity): Buffer {
  const encoding = (part.fields.get('content-transfer-encoding')?.[0] ?? '').trim().toLowerCase();
  if (encoding === 'base64')
    return Buffer.from(part.body.toString('latin1').replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(part.body.toString('latin1'));
  return part.body;
}

/** The returned message's header, read by mailparser. */
async function originalOf(part: Entity): Promise<OriginalMessage> {
  const content = decoded(part);
  const header = content
    .subarray(0, Math.min(headerLength(content), MAX_ORIGINAL_HEADER_BYTES))
    .toString('latin1')
    .replace(/\r?\n?$/, '\r\n');
  // The header alone (and an empty body): the original's content is of no interest here.
  const mail = await simpleParser(Buffer.from(`${header}\r\n`, 'latin1'), {
    skipHtmlToText: true,
    skipImageLinks: true,
    skipTextToHtml: true,
    skipTextLinks: true,
  });
  const lines = (key: string) =>
    mail.headerLines.filter((h) => h.key === key).map((h) => h.line.slice(h.line.indexOf(':') + 1));
  return {
    messageId: clip(mail.messageId),
    returnPath: addressIn(lines('return-path')[0] ?? ''),
    from: addressesOf(mail.from)[0] ?? null,
    subject: clip(mail.subject),
    to: addressesOf(mail.to),
    cc: addressesOf(mail.cc),
    receivers: [
      ...new Set(
        RECEIVER_FIELDS.flatMap(lines)
          .map(addressIn)
          .filter((a): a is string => a !== null),
      ),
    ],
  };
}

function addressesOf(field: AddressObject | AddressObject[] | undefined): string[] {
  if (!field) return [];
  const list = Array.isArray(field) ? field : [field];
  const out: string[] = [];
  const walk = (entries: AddressObject['value']) => {
    for (const e of entries) {
      if (e.group) walk(e.group);
      else if (e.address && ADDRESS.test(e.address)) out.push(e.address.toLowerCase());
    }
  };
  for (const f of list) walk(f.value);
  return [...new Set(out)];
}

/**
 * The address in a (decoded) field value: `<a@b>`, `rfc822; a@b`, `a@b; date` (X-Apparently-To) or a
 * display name and an address. Lower case; null when there is none (`<>`, a redacted value).
 */
export function addressIn(text: string): string | null {
  const bracketed = /<([^<>\s]+)>/.exec(text)?.[1];
  const found = bracketed && ADDRESS.test(bracketed) ? bracketed : ADDRESS.exec(text)?.[0];
  return found ? found.toLowerCase().slice(0, 320) : null;
}

/** A raw header value (a latin1 string of its bytes) as text: UTF-8 decoded, encoded words decoded. */
function headerText(value: string): string {
  return libmime.decodeWords(Buffer.from(value, 'latin1').toString('utf8')).trim();
}

/** A date a report gives, kept only when plausible: from 1970 to a day from now (the column takes no other). */
function dateOf(value: string | undefined): Date | null {
  if (!value) return null;
  const date = new Date(value.replace(/\s*\([^)]*\)\s*$/, ''));
  const t = date.getTime();
  return Number.isNaN(t) || t < 0 || t > Date.now() + 86_400_000 ? null : date;
}

function ipOf(value: string | undefined): string | null {
  const ip = value?.trim().replace(/^\[|\]$/g, '');
  return ip && isIP(ip) ? ip : null;
}

function clip(value: string | undefined | null): string | null {
  const text = value?.trim();
  return text ? text.slice(0, MAX_TEXT) : null;
}
