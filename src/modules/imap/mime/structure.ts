// The MIME structure of a stored message, computed once from its raw bytes and stored as JSON (a jsonb
// column): every part located by byte offsets into the raw message, with what FETCH BODY and
// BODYSTRUCTURE report about it, and the envelope of the message and of each attached message. FETCH
// renders from it (render.ts) and slices the raw bytes with it (section.ts) without parsing again.
//
// Parsing is top-down: a multipart's own boundary lines split its body before its parts are looked
// at, so a part missing its closing boundary ends where its parent's next boundary starts. Malformed
// input gives a best-effort tree, never an exception, as in Dovecot.
import { type Address, parseAddressList } from './address.ts';
import { fieldValue, headerEnd, headerFields, lineEnd } from './header.ts';
import { type Param, parseList, parseParameterised } from './params.ts';

export type { Address } from './address.ts';
export type { Param } from './params.ts';

/** The RFC 3501 envelope: values as in the header, unfolded, encoded words left for the client. */
export interface Envelope {
  date: string | null;
  subject: string | null;
  from: Address[] | null;
  /** Null when absent or empty; the envelope then repeats `from` (RFC 3501 7.4.2). */
  sender: Address[] | null;
  /** Null when absent or empty; the envelope then repeats `from`. */
  replyTo: Address[] | null;
  to: Address[] | null;
  cc: Address[] | null;
  bcc: Address[] | null;
  inReplyTo: string | null;
  messageId: string | null;
}

/**
 * A MIME part located by byte offsets into the raw message; JSON-serialisable. The top-level node is
 * the message itself. Header values are unfolded and trimmed, and taken from a field's first
 * occurrence.
 */
export interface MimeNode {
  /** Header start: offset of the part's first header byte. */
  hs: number;
  /** Header end: just past the blank line closing the header; the same as `bs`. */
  he: number;
  /** Body start: where the body starts, or `be` when no blank line ends the header. */
  bs: number;
  /** Body end; in a multipart the line break before the next boundary line is not the part's. */
  be: number;
  /** Media type, lower-case: text/plain when Content-Type is absent or invalid, message/rfc822 in a digest. */
  type: string;
  /** Media subtype, lower-case. */
  subtype: string;
  /** Content-Type parameters in header order; a text part without a charset gets charset us-ascii (RFC 2046). */
  params: Param[];
  /** Content-ID. */
  id: string | null;
  /** Content-Description. */
  desc: string | null;
  /** Content-Transfer-Encoding, lower-case; null when absent or not a token (meaning 7bit). */
  enc: string | null;
  /** Content-MD5. */
  md5: string | null;
  /** Body size in bytes (`be - bs`), in its transfer encoding. */
  size: number;
  /** For text and message parts, the body's lines: its LFs, plus one for a last line without one. */
  lines: number | null;
  /** Content-Disposition: its type, lower-case, and parameters. */
  disp: { type: string; params: Param[] } | null;
  /** Content-Language tags. */
  lang: string[] | null;
  /** Content-Location (RFC 2557). */
  loc: string | null;
  /** A multipart's parts in order; empty when no boundary line delimits any (rendered as Dovecot does). */
  parts?: MimeNode[];
  /** message/rfc822 and message/global: the attached message, which spans this node's body. */
  msg?: MimeNode;
  /** The top-level message's envelope, and that of each attached message (`msg`). */
  env?: Envelope;
}

/** Bumped whenever the stored shape or its meaning changes, so that stored structures are recomputed. */
export const STRUCTURE_VERSION = 1;

/** Dovecot's limits: past them a multipart or attached message is kept as one opaque part. */
const MAX_DEPTH = 100;
const MAX_PARTS = 10_000;

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;
const DASH = 0x2d;

const CONTENT_FIELDS = [
  'content-type',
  'content-transfer-encoding',
  'content-id',
  'content-description',
  'content-md5',
  'content-disposition',
  'content-language',
  'content-location',
];
const MESSAGE_FIELDS = new Set([
  ...CONTENT_FIELDS,
  'date',
  'subject',
  'from',
  'sender',
  'reply-to',
  'to',
  'cc',
  'bcc',
  'in-reply-to',
  'message-id',
]);
const PART_FIELDS = new Set(CONTENT_FIELDS);

/** What a part is to its parent: a message (it gets an envelope), a part, or a part of a digest. */
type Role = 'message' | 'part' | 'digest-part';

interface Context {
  raw: Buffer;
  partsLeft: number;
}

/** The structure of a raw message. Never throws. */
export function analyseMessage(raw: Buffer): MimeNode {
  return parsePart({ raw, partsLeft: MAX_PARTS }, 0, raw.length, 0, 'message');
}

/** Whether a node is an attached message (RFC 2046 message/rfc822, RFC 6532 message/global). */
export function isMessageType(node: MimeNode): boolean {
  return node.type === 'message' && (node.subtype === 'rfc822' || node.subtype === 'global');
}

function parsePart(ctx: Context, start: number, end: number, depth: number, role: Role): MimeNode {
  ctx.partsLeft--;
  const bodyStart = headerEnd(ctx.raw, start, end);
  const values = headerValues(ctx.raw, start, bodyStart, role === 'message' ? MESSAGE_FIELDS : PART_FIELDS);
  const media = mediaType(values.get('content-type'), role === 'digest-part');
  const node: MimeNode = {
    hs: start,
    he: bodyStart,
    bs: bodyStart,
    be: end,
    type: media.type,
    subtype: media.subtype,
    params: media.params,
    id: values.get('content-id') ?? null,
    desc: values.get('content-description') ?? null,
    enc: transferEncoding(values.get('content-transfer-encoding')),
    md5: values.get('content-md5') ?? null,
    size: end - bodyStart,
    lines: null,
    disp: disposition(values.get('content-disposition')),
    lang: languages(values.get('content-language')),
    loc: values.get('content-location') ?? null,
  };
  if (role === 'message') node.env = envelope(values);
  addContent(ctx, node, depth);
  return node;
}

/** The first value of each wanted field, by lower-case name. */
function headerValues(raw: Buffer, start: number, end: number, wanted: Set<string>): Map<string, string> {
  const values = new Map<string, string>();
  for (const field of headerFields(raw, start, end)) {
    const name = field.name.toLowerCase();
    if (wanted.has(name) && !values.has(name)) values.set(name, fieldValue(raw, field));
  }
  return values;
}

/** A node's parts or attached message, and its line count. */
function addContent(ctx: Context, node: MimeNode, depth: number): void {
  const message = isMessageType(node);
  if ((message || node.type === 'multipart') && (depth >= MAX_DEPTH || ctx.partsLeft <= 0)) {
    node.type = 'application';
    node.subtype = 'octet-stream';
    return;
  }
  if (node.type === 'multipart') node.parts = multipartParts(ctx, node, depth);
  if (message) node.msg = parsePart(ctx, node.bs, node.be, depth + 1, 'message');
  if (message || node.type === 'text') node.lines = countLines(ctx.raw, node.bs, node.be);
}

function multipartParts(ctx: Context, node: MimeNode, depth: number): MimeNode[] {
  const boundary = node.params.find(([name]) => name === 'boundary')?.[1];
  if (!boundary) return [];
  const role: Role = node.subtype === 'digest' ? 'digest-part' : 'part';
  const parts: MimeNode[] = [];
  for (const [start, end] of partRanges(ctx.raw, node.bs, node.be, boundary)) {
    if (ctx.partsLeft <= 0) break;
    parts.push(parsePart(ctx, start, end, depth + 1, role));
  }
  return parts;
}

/**
 * The [start, end) of each part of a multipart body: between boundary lines `--boundary` and up to the
 * closing `--boundary--` (RFC 2046 5.1.1). A boundary line must start a line and may only be followed by
 * blanks, so a nested boundary that merely starts with this one is not taken for it. Without a closing
 * line the last part runs to the end of the body.
 */
function partRanges(raw: Buffer, start: number, end: number, boundary: string): [number, number][] {
  const body = raw.subarray(start, end);
  const delimiter = Buffer.from(`--${boundary}`);
  const ranges: [number, number][] = [];
  let partStart = -1;
  for (let at = body.indexOf(delimiter); at !== -1; at = body.indexOf(delimiter, at + 1)) {
    if (at > 0 && body[at - 1] !== LF) continue;
    const line = boundaryLine(body, at + delimiter.length);
    if (!line) continue;
    if (partStart !== -1)
      ranges.push([start + partStart, start + Math.max(partStart, lineBreakStart(body, at))]);
    if (line.close) return ranges;
    partStart = line.next;
  }
  if (partStart !== -1) ranges.push([start + partStart, end]);
  return ranges;
}

/** After `--boundary`: whether it closes the multipart, and where the next line starts; null if it is no boundary line. */
function boundaryLine(body: Buffer, pos: number): { close: boolean; next: number } | null {
  const close = body[pos] === DASH && body[pos + 1] === DASH;
  let i = close ? pos + 2 : pos;
  while (body[i] === SP || body[i] === HT) i++;
  if (i >= body.length) return { close, next: body.length };
  if (body[i] === LF) return { close, next: i + 1 };
  if (body[i] === CR && body[i + 1] === LF) return { close, next: i + 2 };
  return null;
}

/** Where the line break before a boundary line starts: that CRLF or LF belongs to the boundary. */
function lineBreakStart(body: Buffer, boundaryAt: number): number {
  const lf = boundaryAt - 1;
  return body[lf - 1] === CR ? lf - 1 : lf;
}

function countLines(raw: Buffer, start: number, end: number): number {
  let lines = 0;
  for (let pos = start; pos < end; pos = lineEnd(raw, pos, end)) lines++;
  return lines;
}

interface MediaType {
  type: string;
  subtype: string;
  params: Param[];
}

/** An RFC 2045 token: no blanks, controls or tspecials. */
const TOKEN = String.raw`[^\s()<>@,;:\\"/[\]?=]+`;
/** `type/subtype`; what follows it (say, a forgotten `;`) does not make it invalid. */
const TYPE_SUBTYPE = new RegExp(`^(${TOKEN})\\s*/\\s*(${TOKEN})`);
const WHOLE_TOKEN = new RegExp(`^${TOKEN}$`);
const LEADING_TOKEN = new RegExp(`^${TOKEN}`);

/** Type, subtype and parameters; RFC 2045 5.2's default when Content-Type is absent or invalid. */
function mediaType(value: string | undefined, inDigest: boolean): MediaType {
  const parsed = value === undefined ? null : parseParameterised(value);
  const match = parsed && TYPE_SUBTYPE.exec(parsed.value);
  const media: MediaType =
    parsed && match
      ? { type: match[1].toLowerCase(), subtype: match[2].toLowerCase(), params: parsed.params }
      : inDigest
        ? { type: 'message', subtype: 'rfc822', params: [] }
        : { type: 'text', subtype: 'plain', params: [] };
  if (media.type === 'text' && !media.params.some(([name]) => name === 'charset')) {
    media.params.push(['charset', 'us-ascii']);
  }
  return media;
}

/** Disposition type and parameters; null without a leading token (as Dovecot has it). */
function disposition(value: string | undefined): MimeNode['disp'] {
  if (value === undefined) return null;
  const { value: head, params } = parseParameterised(value);
  const type = LEADING_TOKEN.exec(head)?.[0];
  return type ? { type: type.toLowerCase(), params } : null;
}

function languages(value: string | undefined): string[] | null {
  const tags = value === undefined ? [] : parseList(value);
  return tags.length > 0 ? tags : null;
}

/** `Base64 (comment)` → `base64`; null when absent or no token (then it is 7bit, as in Dovecot). */
function transferEncoding(value: string | undefined): string | null {
  const token = value?.split(/[\s(]/, 1)[0].toLowerCase();
  return token && WHOLE_TOKEN.test(token) ? token : null;
}

function envelope(values: Map<string, string>): Envelope {
  return {
    date: values.get('date') ?? null,
    subject: values.get('subject') ?? null,
    from: addresses(values.get('from')),
    sender: addresses(values.get('sender')),
    replyTo: addresses(values.get('reply-to')),
    to: addresses(values.get('to')),
    cc: addresses(values.get('cc')),
    bcc: addresses(values.get('bcc')),
    inReplyTo: values.get('in-reply-to') ?? null,
    messageId: values.get('message-id') ?? null,
  };
}

function addresses(value: string | undefined): Address[] | null {
  const list = value === undefined ? [] : parseAddressList(value);
  return list.length > 0 ? list : null;
}
