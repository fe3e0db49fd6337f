// Header blocks read as bytes: where a block ends, where each of its fields starts and ends (what
// BODY[HEADER.FIELDS] copies), and a field's unfolded value as text (what the MIME structure and the
// envelope are made of). Works on bare-LF messages as well as CRLF ones.
import { isUtf8 } from 'node:buffer';

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;

export interface HeaderField {
  /** The name as written, blanks before the colon removed; '' for a line without a colon. */
  name: string;
  /** Offset of the field's first byte. */
  start: number;
  /** Offset just past its colon, where the value starts (`end` when there is no colon). */
  valueStart: number;
  /** Offset just past its last line, that line's break included. */
  end: number;
}

/**
 * The offset just past the line that starts at `pos` (its LF included), at most `end`. The search is
 * not bounded by `end`: every range ends at a line break or at the end of the message, so it never
 * runs far past it.
 */
export function lineEnd(raw: Buffer, pos: number, end: number): number {
  const lf = raw.indexOf(LF, pos);
  return lf === -1 || lf >= end ? end : lf + 1;
}

/** Whether the line at `pos` (< `end`) is empty: a lone CRLF or LF. */
function isBlankLine(raw: Buffer, pos: number, end: number): boolean {
  return raw[pos] === LF || (raw[pos] === CR && pos + 1 < end && raw[pos + 1] === LF);
}

/**
 * The offset just past the header block starting at `start`: past the blank line that closes it, or
 * `end` when there is none (then the whole range is header, as in Dovecot).
 */
export function headerEnd(raw: Buffer, start: number, end: number): number {
  for (let pos = start; pos < end; pos = lineEnd(raw, pos, end)) {
    if (isBlankLine(raw, pos, end)) return lineEnd(raw, pos, end);
  }
  return end;
}

/** The fields of the header block in [start, end), up to its blank line. */
export function headerFields(raw: Buffer, start: number, end: number): HeaderField[] {
  const fields: HeaderField[] = [];
  for (let pos = start; pos < end && !isBlankLine(raw, pos, end); ) {
    const next = lineEnd(raw, pos, end);
    const last = fields.at(-1);
    if ((raw[pos] === SP || raw[pos] === HT) && last) last.end = next;
    else fields.push(fieldAt(raw, pos, next));
    pos = next;
  }
  return fields;
}

function fieldAt(raw: Buffer, start: number, end: number): HeaderField {
  // Searched within the line only: a long run of lines without a colon must not rescan what follows.
  const found = raw.subarray(start, end).indexOf(COLON);
  if (found === -1) return { name: '', start, valueStart: end, end };
  const colon = start + found;
  const name = trimBlanks(raw.toString('latin1', start, colon));
  return { name, start, valueStart: colon + 1, end };
}

/**
 * A field's value as text: unfolded, blanks around it trimmed. 8-bit bytes are read as UTF-8 when they
 * are valid UTF-8 (RFC 6532), otherwise as Latin-1, the usual charset of legacy raw 8-bit headers.
 */
export function fieldValue(raw: Buffer, field: HeaderField): string {
  return trimBlanks(decodeText(raw.subarray(field.valueStart, field.end)).replace(/\r?\n/g, ''));
}

/** Spaces and tabs removed from both ends (by hand: a regex for trailing blanks is quadratic on long runs). */
function trimBlanks(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isBlank(text.charCodeAt(start))) start++;
  while (end > start && isBlank(text.charCodeAt(end - 1))) end--;
  return text.slice(start, end);
}

function isBlank(code: number): boolean {
  return code === SP || code === HT;
}

/** Bytes as text: ASCII and valid UTF-8 as UTF-8, anything else as Latin-1 so that no byte is lost. */
export function decodeText(bytes: Buffer): string {
  return isUtf8(bytes) ? bytes.toString('utf8') : bytes.toString('latin1');
}
