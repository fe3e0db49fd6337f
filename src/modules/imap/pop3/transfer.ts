// A stored message as POP3 sends it (RFC 1939 3): every line ended by CRLF whatever the stored line
// ends were, a line that starts with "." sent with one more, and ".\r\n" after the last line. Made
// in chunks from the stored bytes, so a large message never becomes one string or a second copy.

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');
const STUFFING = Buffer.from('.');
const TERMINATOR = Buffer.from('.\r\n');
/** Bytes gathered before a chunk is handed to the socket. */
const CHUNK_BYTES = 64 * 1024;

/**
 * The message's transmission in chunks of about 64 KiB, the terminating ".\r\n" in the last. With
 * `bodyLines` (TOP), only the header, the blank line after it and that many lines of the body.
 */
export function* transmission(content: Buffer, bodyLines: number | null = null): Generator<Buffer> {
  let pieces: Buffer[] = [];
  let pending = 0;
  let inBody = false;
  let bodyLeft = bodyLines ?? Number.POSITIVE_INFINITY;
  for (let start = 0; start < content.length; ) {
    if (inBody && bodyLeft-- <= 0) break;
    const lf = content.indexOf(LF, start);
    const end = lf === -1 ? content.length : lf;
    const line = content.subarray(start, end > start && content[end - 1] === CR ? end - 1 : end);
    if (line[0] === DOT) pieces.push(STUFFING);
    pieces.push(line, CRLF);
    pending += line.length + 3;
    if (line.length === 0) inBody = true;
    start = end + 1;
    if (pending >= CHUNK_BYTES) {
      yield Buffer.concat(pieces);
      pieces = [];
      pending = 0;
    }
  }
  pieces.push(TERMINATOR);
  yield Buffer.concat(pieces);
}
