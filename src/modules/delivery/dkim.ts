// DKIM signatures (RFC 6376, relaxed/relaxed; Ed25519 per RFC 8463) made here with key objects parsed
// once per key, rather than through mailauth, which parses the PEM key again for every signature and
// streams the body through a general parser. mailauth still verifies (inbound, and the tests verify
// what this signs with it).
import { createHash, type KeyObject, sign } from 'node:crypto';
import { headerLength } from '../../core/message.ts';

export interface SigningKey {
  selector: string;
  algorithm: 'rsa' | 'ed25519';
  key: KeyObject;
}

/** The headers a signature covers: the ones that say who sent what to whom, and the MIME structure. */
export const SIGNED_HEADERS = new Set([
  'from',
  'sender',
  'reply-to',
  'subject',
  'date',
  'message-id',
  'to',
  'cc',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
  'in-reply-to',
  'references',
  'list-unsubscribe',
  'list-unsubscribe-post',
  // Gmail counts complaints by Feedback-ID only when a signature covers it.
  'feedback-id',
]);

const SP = 0x20;
const TAB = 0x09;
const CR = 0x0d;
const LF = 0x0a;

/** DKIM-Signature headers, one per key (RSA and Ed25519 when the domain has both), to prepend. */
export function dkimSignatures(raw: Buffer, domain: string, keys: SigningKey[], now = new Date()): Buffer {
  if (!keys.length) return Buffer.alloc(0);
  const headerEnd = headerLength(raw);
  // The body starts after the empty line that ends the header.
  const bodyStart = Math.min(raw.length, headerEnd + (raw[headerEnd] === CR ? 2 : 1));
  const bodyHash = createHash('sha256')
    .update(relaxedBody(raw.subarray(bodyStart)))
    .digest('base64');
  // Every instance of a signed header, bottom up (RFC 6376 5.4.2).
  const fields = headerFields(raw.subarray(0, headerEnd).toString('latin1'))
    .filter((f) => SIGNED_HEADERS.has(f.name))
    .reverse();
  const signedHeaders = fields.map((f) => relaxedHeader(f.name, f.value)).join('');
  const names = fields.map((f) => f.name).join(':');
  const time = Math.floor(now.getTime() / 1000);
  const out: string[] = [];
  for (const k of keys) {
    const algorithm = k.algorithm === 'ed25519' ? 'ed25519-sha256' : 'rsa-sha256';
    const value =
      ` v=1; a=${algorithm}; c=relaxed/relaxed; d=${domain}; s=${k.selector};\r\n` +
      ` t=${time}; h=${fold(names, ':')};\r\n bh=${bodyHash};\r\n b=`;
    const data = Buffer.from(signedHeaders + relaxedHeader('dkim-signature', value).slice(0, -2), 'latin1');
    const signature =
      k.algorithm === 'ed25519'
        ? sign(null, createHash('sha256').update(data).digest(), k.key)
        : sign('sha256', data, k.key);
    out.push(`DKIM-Signature:${value}${fold(signature.toString('base64'))}\r\n`);
  }
  return Buffer.from(out.join(''), 'latin1');
}

/** Header fields, unfolded: the name lower-cased, the value as written after the colon. */
function headerFields(block: string): { name: string; value: string }[] {
  const fields: { name: string; value: string }[] = [];
  for (const line of block.split(/\r?\n(?![ \t])/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    fields.push({ name: line.slice(0, colon).trim().toLowerCase(), value: line.slice(colon + 1) });
  }
  return fields;
}

/** Relaxed header canonicalisation (RFC 6376 3.4.2): `name:value` unfolded, whitespace compressed. */
function relaxedHeader(name: string, value: string): string {
  return `${name}:${value
    .replace(/\r?\n/g, '')
    .replace(/[ \t]+/g, ' ')
    .trim()}\r\n`;
}

/**
 * Relaxed body canonicalisation (RFC 6376 3.4.4): whitespace runs become one space, whitespace at line
 * ends and empty lines at the end go, and a non-empty body ends with CRLF. A bare LF ends a line, as
 * the message is sent with CRLF.
 */
export function relaxedBody(body: Buffer): Buffer {
  const canonical = alreadyRelaxed(body);
  if (canonical) return canonical;
  const out = Buffer.allocUnsafe(2 * body.length + 2);
  let o = 0;
  let emptyLines = 0;
  let lineEmpty = true;
  let space = false;
  for (let i = 0; i < body.length; i++) {
    const b = body[i];
    if (b === SP || b === TAB) {
      space = true;
      continue;
    }
    if (b === LF || (b === CR && body[i + 1] === LF)) {
      if (b === CR) i++;
      if (lineEmpty) emptyLines++;
      else {
        out[o++] = CR;
        out[o++] = LF;
      }
      lineEmpty = true;
      space = false;
      continue;
    }
    if (lineEmpty) {
      for (; emptyLines > 0; emptyLines--) {
        out[o++] = CR;
        out[o++] = LF;
      }
      lineEmpty = false;
    }
    if (space) out[o++] = SP;
    space = false;
    out[o++] = b;
  }
  if (!lineEmpty) {
    out[o++] = CR;
    out[o++] = LF;
  }
  return out.subarray(0, o);
}

/**
 * The body itself (its trailing empty lines cut) when canonicalisation would not change it: no tab, no
 * double space, no space at a line end and no bare LF. Found with native searches, which is much
 * faster than walking the bytes for the common well-formed body; null when it must be walked.
 */
function alreadyRelaxed(body: Buffer): Buffer | null {
  if (body.indexOf(TAB) >= 0 || body.indexOf('  ') >= 0 || body.indexOf(' \r') >= 0) return null;
  for (let at = body.indexOf(LF); at >= 0; at = body.indexOf(LF, at + 1))
    if (body[at - 1] !== CR) return null;
  let end = body.length;
  while (end >= 2 && body[end - 1] === LF && body[end - 2] === CR) end -= 2;
  // Only CRLFs after the last text: the lines must end in CRLF, with no space before the final one.
  if (end === 0) return body.subarray(0, 0);
  if (end === body.length || body[end - 1] === SP) return null;
  return body.subarray(0, end + 2);
}

/** Folds a long tag value into lines of at most 72 characters (after `separator` where there is one). */
function fold(value: string, separator = ''): string {
  const lines: string[] = [];
  let line = '';
  const parts = separator ? value.split(separator) : (value.match(/.{1,72}/g) ?? ['']);
  for (const [i, part] of parts.entries()) {
    const piece = separator && i < parts.length - 1 ? `${part}${separator}` : part;
    if (line && line.length + piece.length > 72) {
      lines.push(line);
      line = '';
    }
    line += piece;
  }
  lines.push(line);
  return lines.join('\r\n ');
}
