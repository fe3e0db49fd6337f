// Structured MIME header values: `type/subtype; name=value; …` (Content-Type, RFC 2045) and
// `disposition; name=value` (Content-Disposition, RFC 2183), with RFC 2231 continuations
// (`name*0=…; name*1=…`) and charsets (`name*=utf-8'en'%E2%82%AC`) put back together and decoded.
import { TextDecoder } from 'node:util';
import { decodeText } from './header.ts';

/** A parameter: its name lower-cased, its value decoded. */
export type Param = [name: string, value: string];

/** One piece of an RFC 2231 parameter: `name*<index>[*]`. */
interface Piece {
  index: number;
  value: string;
  /** Percent-encoded (the name ends in `*`); the first piece then starts with `charset'language'`. */
  encoded: boolean;
}

/** What has been seen of one parameter name: its plain value and its RFC 2231 pieces by index. */
interface Pending {
  plain: string | null;
  pieces: Map<number, Piece>;
}

const RFC2231_NAME = /^([^*]+)\*(?:(\d+)(\*)?)?$/;
/** A comment after a blank, as in RFC 2045's `charset=us-ascii (Plain text)`; `file(1).pdf` is left alone. */
const COMMENT = /(?<=[ \t])\([^()]*\)/g;

/** A structured value split into its leading token (comments removed, trimmed) and its parameters. */
export function parseParameterised(text: string): { value: string; params: Param[] } {
  const [head, ...rest] = splitOutsideQuotes(text);
  const raw: Param[] = [];
  for (const segment of rest) {
    const param = rawParam(segment);
    if (param) raw.push(param);
  }
  return { value: withoutComments(head), params: assemble(raw) };
}

/** A comma-separated list such as Content-Language's, comments and empty items dropped. */
export function parseList(text: string): string[] {
  return text
    .split(',')
    .map(withoutComments)
    .filter((item) => item !== '');
}

function withoutComments(text: string): string {
  return text.replace(COMMENT, '').trim();
}

/** The `;`-separated segments of a value; a `;` inside a quoted string is part of the value. */
function splitOutsideQuotes(text: string): string[] {
  const segments: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === '\\' && quoted) i++;
    else if (char === '"') quoted = !quoted;
    else if (char === ';' && !quoted) {
      segments.push(text.slice(start, i));
      start = i + 1;
    }
  }
  segments.push(text.slice(start));
  return segments;
}

/** `name=value` or `name="quoted \" value"`; null for a segment that is not a parameter. */
function rawParam(segment: string): Param | null {
  const eq = segment.indexOf('=');
  if (eq === -1) return null;
  const name = segment.slice(0, eq).trim().toLowerCase();
  if (name === '') return null;
  const value = segment.slice(eq + 1).trim();
  return [name, value.startsWith('"') ? unquote(value) : withoutComments(value)];
}

/** The content of a quoted string, quoted-pairs undone; an unterminated one runs to the end. */
function unquote(value: string): string {
  let out = '';
  for (let i = 1; i < value.length; i++) {
    const char = value[i];
    if (char === '"') break;
    if (char === '\\' && i + 1 < value.length) i++;
    out += value[i];
  }
  return out;
}

/** Joins RFC 2231 pieces into one parameter each, at the place its first piece or plain form had. */
function assemble(raw: Param[]): Param[] {
  const byName = new Map<string, Pending>();
  for (const [name, value] of raw) {
    const match = RFC2231_NAME.exec(name);
    const base = match ? match[1] : name;
    let pending = byName.get(base);
    if (!pending) {
      pending = { plain: null, pieces: new Map() };
      byName.set(base, pending);
    }
    if (!match) pending.plain ??= value;
    else addPiece(pending, match, value);
  }
  const params: Param[] = [];
  for (const [name, { plain, pieces }] of byName) {
    // RFC 2231 aware readers prefer the extended form over a plain fallback of the same name.
    params.push([name, pieces.size > 0 ? joinPieces([...pieces.values()]) : (plain ?? '')]);
  }
  return params;
}

function addPiece(pending: Pending, match: RegExpExecArray, value: string): void {
  const index = match[2] === undefined ? 0 : Number(match[2]);
  if (pending.pieces.has(index)) return;
  pending.pieces.set(index, { index, value, encoded: match[2] === undefined || match[3] === '*' });
}

/** The pieces in order; percent-encoded bytes are joined first and decoded once (a character may span pieces). */
function joinPieces(pieces: Piece[]): string {
  pieces.sort((a, b) => a.index - b.index);
  if (!pieces.some((piece) => piece.encoded)) return pieces.map((piece) => piece.value).join('');
  let charset = '';
  const bytes = pieces.map((piece, i) => {
    if (!piece.encoded) return Buffer.from(piece.value);
    let data = piece.value;
    const prefix = i === 0 ? /^([^']*)'[^']*'/.exec(data) : null;
    if (prefix) {
      charset = prefix[1];
      data = data.slice(prefix[0].length);
    }
    return percentDecode(data);
  });
  return decodeCharset(Buffer.concat(bytes), charset);
}

function percentDecode(text: string): Buffer {
  // Splitting on a capture group puts the %XX escapes at the odd indices.
  const parts = text.split(/(%[0-9A-Fa-f]{2})/);
  return Buffer.concat(
    parts.map((part, i) => (i % 2 ? Buffer.of(Number.parseInt(part.slice(1), 16)) : Buffer.from(part))),
  );
}

/** Bytes in a named charset; an unknown or missing one falls back to UTF-8 or Latin-1. */
function decodeCharset(bytes: Buffer, charset: string): string {
  const decoder = charset ? decoderFor(charset) : null;
  return decoder ? decoder.decode(bytes) : decodeText(bytes);
}

function decoderFor(charset: string): TextDecoder | null {
  try {
    return new TextDecoder(charset);
  } catch {
    return null;
  }
}
