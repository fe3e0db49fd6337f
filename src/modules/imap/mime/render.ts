// The wire form of a stored structure: ENVELOPE, BODY and BODYSTRUCTURE exactly as RFC 3501 7.4.2
// writes them, media types, encodings and parameter names upper-cased as in its examples. Strings are
// quoted, or sent as literals when they hold CR, LF or NUL, or 8-bit text for a client that has not
// enabled UTF8=ACCEPT (RFC 6855). The result is written as UTF-8: a literal's length counts UTF-8 bytes.
import type { Address, Envelope, MimeNode, Param } from './structure.ts';

export interface RenderOptions {
  /** The client enabled UTF8=ACCEPT (or speaks IMAP4rev2): 8-bit text goes quoted. */
  utf8?: boolean;
}

/** What RFC 3501 leaves no room for (a multipart without parts): Dovecot's empty text part. */
const EMPTY_BODY = '("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0)';
const EMPTY_BODYSTRUCTURE = '("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0 NIL NIL NIL NIL)';
const EMPTY_ENVELOPE: Envelope = {
  date: null,
  subject: null,
  from: null,
  sender: null,
  replyTo: null,
  to: null,
  cc: null,
  bcc: null,
  inReplyTo: null,
  messageId: null,
};

/** `(date subject from sender reply-to to cc bcc in-reply-to message-id)` of a message node. */
export function renderEnvelope(node: MimeNode, opts: RenderOptions = {}): string {
  return envelope(node.env ?? EMPTY_ENVELOPE, opts.utf8 === true);
}

/** FETCH BODY (`extended` false) or BODYSTRUCTURE (true, with the extension data) of a node. */
export function renderBodyStructure(node: MimeNode, extended: boolean, opts: RenderOptions = {}): string {
  return body(node, extended, opts.utf8 === true);
}

function envelope(env: Envelope, utf8: boolean): string {
  const from = addressList(env.from, utf8);
  const fields = [
    nstring(env.date, utf8),
    nstring(env.subject, utf8),
    from,
    env.sender ? addressList(env.sender, utf8) : from,
    env.replyTo ? addressList(env.replyTo, utf8) : from,
    addressList(env.to, utf8),
    addressList(env.cc, utf8),
    addressList(env.bcc, utf8),
    nstring(env.inReplyTo, utf8),
    nstring(env.messageId, utf8),
  ];
  return `(${fields.join(' ')})`;
}

function addressList(list: Address[] | null, utf8: boolean): string {
  if (!list) return 'NIL';
  let out = '(';
  for (const [name, adl, mailbox, host] of list) {
    out += `(${nstring(name, utf8)} ${nstring(adl, utf8)} ${nstring(mailbox, utf8)} ${nstring(host, utf8)})`;
  }
  return out + ')';
}

function body(node: MimeNode, extended: boolean, utf8: boolean): string {
  return node.parts ? multipart(node, node.parts, extended, utf8) : singlePart(node, extended, utf8);
}

/** `(part)(part)… "SUBTYPE"`, then parameters, disposition, language and location when extended. */
function multipart(node: MimeNode, parts: MimeNode[], extended: boolean, utf8: boolean): string {
  let out = '(';
  for (const part of parts) out += body(part, extended, utf8);
  if (parts.length === 0) out += extended ? EMPTY_BODYSTRUCTURE : EMPTY_BODY;
  out += ` ${string(node.subtype.toUpperCase(), utf8)}`;
  if (extended) out += ` ${paramList(node.params, utf8)} ${commonExtensions(node, utf8)}`;
  return out + ')';
}

/**
 * The basic fields, then envelope, body and lines of an attached message or the lines of a text part,
 * then MD5, disposition, language and location when extended. message/global is written like
 * message/rfc822 only to UTF-8 clients: IMAP4rev2 has that form, IMAP4rev1's grammar does not.
 */
function singlePart(node: MimeNode, extended: boolean, utf8: boolean): string {
  const fields = [
    string(node.type.toUpperCase(), utf8),
    string(node.subtype.toUpperCase(), utf8),
    paramList(node.params, utf8),
    nstring(node.id, utf8),
    nstring(node.desc, utf8),
    string((node.enc ?? '7bit').toUpperCase(), utf8),
    String(node.size),
  ];
  if (node.msg && (node.subtype === 'rfc822' || utf8)) {
    fields.push(
      envelope(node.msg.env ?? EMPTY_ENVELOPE, utf8),
      body(node.msg, extended, utf8),
      String(node.lines),
    );
  } else if (node.type === 'text') fields.push(String(node.lines));
  if (extended) fields.push(nstring(node.md5, utf8), commonExtensions(node, utf8));
  return `(${fields.join(' ')})`;
}

/** Disposition, language and location, which both kinds of part end with. */
function commonExtensions(node: MimeNode, utf8: boolean): string {
  const disposition = node.disp
    ? `(${string(node.disp.type.toUpperCase(), utf8)} ${paramList(node.disp.params, utf8)})`
    : 'NIL';
  const language = node.lang ? `(${node.lang.map((tag) => string(tag, utf8)).join(' ')})` : 'NIL';
  return `${disposition} ${language} ${nstring(node.loc, utf8)}`;
}

function paramList(params: Param[], utf8: boolean): string {
  if (params.length === 0) return 'NIL';
  return `(${params.map(([name, value]) => `${string(name.toUpperCase(), utf8)} ${string(value, utf8)}`).join(' ')})`;
}

function nstring(value: string | null, utf8: boolean): string {
  return value === null ? 'NIL' : string(value, utf8);
}

/** Most strings are printable ASCII; a native test for that spares them the character loop. */
const PRINTABLE_ASCII = /^[ -~]*$/;
const QUOTED_SPECIALS = /["\\]/;
const QUOTED_SPECIALS_ALL = /["\\]/g;

/** A quoted string, or a literal for what a quoted string cannot carry. */
function string(value: string, utf8: boolean): string {
  if (!PRINTABLE_ASCII.test(value) && needsLiteral(value, utf8))
    return `{${Buffer.byteLength(value)}}\r\n${value}`;
  return QUOTED_SPECIALS.test(value) ? `"${value.replace(QUOTED_SPECIALS_ALL, '\\$&')}"` : `"${value}"`;
}

function needsLiteral(value: string, utf8: boolean): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code === 0 || code === 0x0a || code === 0x0d || (code > 0x7f && !utf8)) return true;
  }
  return false;
}
