// The bytes of BODY[section] and BINARY[section] (RFC 3501 6.4.5, RFC 3516), sliced from the raw
// message with the offsets of its stored structure.
import type { Partial, SectionSpec } from '../types.ts';
import { headerFields } from './header.ts';
import type { MimeNode } from './structure.ts';
import { decodeBase64, decodeQuotedPrintable } from './transfer-encoding.ts';

const EMPTY = Buffer.alloc(0);
const CRLF = Buffer.from('\r\n');
const LF = 0x0a;

/**
 * The node a part number names, or null when there is none. A message that is not multipart is its
 * own part 1; below a message/rfc822 part, numbers continue in its attached message (RFC 3501 6.4.5).
 */
export function findPart(root: MimeNode, part: number[]): MimeNode | null {
  let node = root;
  // Whether `node` stands for a whole message (the root, or one just entered).
  let atMessage = true;
  for (const number of part) {
    if (!atMessage && node.msg) {
      node = node.msg;
      atMessage = true;
    }
    if (node.parts) {
      const child = node.parts[number - 1];
      if (!child) return null;
      node = child;
    } else if (!atMessage || number !== 1) return null;
    atMessage = false;
  }
  return node;
}

/** The bytes of BODY[section] (before any partial); an absent part gives an empty Buffer (as Dovecot does). */
export function sectionBytes(raw: Buffer, root: MimeNode, spec: SectionSpec): Buffer {
  const node = findPart(root, spec.part);
  if (!node) return EMPTY;
  const whole = spec.part.length === 0;
  if (spec.text === undefined) return raw.subarray(whole ? node.hs : node.bs, node.be);
  if (spec.text === 'MIME') return whole ? EMPTY : raw.subarray(node.hs, node.he);
  // HEADER… and TEXT name the top-level message or the message a message/rfc822 part carries.
  const message = whole ? node : node.msg;
  if (!message) return EMPTY;
  if (spec.text === 'TEXT') return raw.subarray(message.bs, message.be);
  if (spec.text === 'HEADER') return raw.subarray(message.hs, message.he);
  return headerSubset(raw, message, new Set(spec.fields), spec.text === 'HEADER.FIELDS');
}

/**
 * HEADER.FIELDS (`keep` true) or HEADER.FIELDS.NOT: the matching fields' lines as they are, folded
 * lines included, in header order, then the blank line.
 */
function headerSubset(raw: Buffer, message: MimeNode, names: Set<string>, keep: boolean): Buffer {
  const chunks: Buffer[] = [];
  for (const field of headerFields(raw, message.hs, message.he)) {
    if (names.has(field.name.toUpperCase()) === keep) chunks.push(raw.subarray(field.start, field.end));
  }
  // The last field of a header that ends the message may lack its line break.
  const last = chunks.at(-1);
  if (last && last[last.length - 1] !== LF) chunks.push(CRLF);
  chunks.push(CRLF);
  return Buffer.concat(chunks);
}

/**
 * BINARY[section]: the part's body with its transfer encoding removed; null when the encoding is
 * unknown (the server answers NO [UNKNOWN-CTE]). The whole message (`[]`) is returned as it is.
 */
export function binaryBytes(raw: Buffer, root: MimeNode, part: number[]): Buffer | null {
  const node = findPart(root, part);
  if (!node) return EMPTY;
  if (part.length === 0) return raw.subarray(node.hs, node.be);
  const body = raw.subarray(node.bs, node.be);
  switch (node.enc ?? '7bit') {
    case '7bit':
    case '8bit':
    case 'binary':
      return body;
    case 'base64':
      return decodeBase64(body);
    case 'quoted-printable':
      return decodeQuotedPrintable(body);
    default:
      return null;
  }
}

/** Applies `<start.length>`; a start past the end gives an empty Buffer. */
export function applyPartial(bytes: Buffer, partial: Partial | undefined): Buffer {
  return partial ? bytes.subarray(partial.start, partial.start + partial.length) : bytes;
}
