// Content-Transfer-Encoding decoders for FETCH BINARY (RFC 3516), lenient as readers must be.

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;
const EQUALS = 0x3d;

/** Base64 (RFC 2045 6.8); blanks, line breaks and stray characters are skipped. */
export function decodeBase64(data: Buffer): Buffer {
  const text = data.toString('latin1');
  const pad = text.indexOf('=');
  if (pad === -1 || /^[=\s]*$/.test(text.slice(pad))) return Buffer.from(text, 'base64');
  // Padding before the end: encodings were concatenated. Node stops at the first '=', so decode each.
  return Buffer.concat(text.split('=').map((chunk) => Buffer.from(chunk, 'base64')));
}

/**
 * Quoted-printable (RFC 2045 6.7): `=XX` escapes and soft line breaks (`=` at a line end) undone,
 * blanks at line ends dropped (transport padding), hard line breaks kept as they are, and an `=` that
 * starts neither kept as it is.
 */
export function decodeQuotedPrintable(data: Buffer): Buffer {
  const out = Buffer.allocUnsafe(data.length);
  let length = 0;
  let i = 0;
  while (i < data.length) {
    const byte = data[i];
    if (byte === EQUALS) {
      const value = (hexValue(data[i + 1]) << 4) | hexValue(data[i + 2]);
      if (value >= 0) {
        out[length++] = value;
        i += 3;
        continue;
      }
      const next = afterBlanks(data, i + 1);
      if (atLineEnd(data, next)) {
        i = skipLineBreak(data, next);
        continue;
      }
    } else if (byte === SP || byte === HT) {
      const next = afterBlanks(data, i);
      if (atLineEnd(data, next)) {
        i = next;
        continue;
      }
      data.copy(out, length, i, next);
      length += next - i;
      i = next;
      continue;
    }
    out[length++] = byte;
    i++;
  }
  return out.subarray(0, length);
}

/** The value of a hex digit, or a large negative number so that a pair with it stays negative. */
function hexValue(byte: number | undefined): number {
  if (byte === undefined) return -0x1000;
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -0x1000;
}

function afterBlanks(data: Buffer, pos: number): number {
  let i = pos;
  while (data[i] === SP || data[i] === HT) i++;
  return i;
}

function atLineEnd(data: Buffer, pos: number): boolean {
  return pos >= data.length || data[pos] === LF || (data[pos] === CR && data[pos + 1] === LF);
}

function skipLineBreak(data: Buffer, pos: number): number {
  if (data[pos] === CR) return pos + 2;
  return pos + 1;
}
