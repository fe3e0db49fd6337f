// Modified UTF-7 (RFC 3501 5.1.3), how mailbox names travel to clients that have not enabled UTF8=ACCEPT.
// Printable ASCII stands for itself except "&", written "&-"; anything else is UTF-16BE in base64 (with ","
// for "/" and no padding) between "&" and "-": "Entw&APw-rfe" is "Entwürfe".
import { ImapSyntaxError, printable } from './errors.ts';

const SHIFTED = /^[A-Za-z0-9+,]+$/;

export function encodeModifiedUtf7(text: string): string {
  let out = '';
  let pending = '';
  const flush = () => {
    if (pending) out += `&${modifiedBase64(Buffer.from(pending, 'utf16le').swap16())}-`;
    pending = '';
  };
  for (const char of text) {
    if (!isPrintableAscii(char.charCodeAt(0))) {
      pending += char;
      continue;
    }
    flush();
    out += char === '&' ? '&-' : char;
  }
  flush();
  return out;
}

/** Throws ImapSyntaxError for anything that is not canonical modified UTF-7. */
export function decodeModifiedUtf7(text: string): string {
  let out = '';
  let shiftEnd = -1;
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (!isPrintableAscii(c)) throw invalid(text);
    if (c !== 0x26) {
      out += text[i++];
      continue;
    }
    const end = text.indexOf('-', i + 1);
    if (end < 0) throw invalid(text);
    if (end === i + 1) {
      out += '&';
    } else {
      // Two shifted runs in a row ("-&" inside base64) are a null shift, which RFC 3501 forbids.
      if (i === shiftEnd) throw invalid(text);
      out += decodeShifted(text.slice(i + 1, end), text);
      shiftEnd = end + 1;
    }
    i = end + 1;
  }
  return out;
}

function decodeShifted(shifted: string, text: string): string {
  if (!SHIFTED.test(shifted)) throw invalid(text);
  const bytes = Buffer.from(shifted.replaceAll(',', '/'), 'base64');
  // Canonical only: the bits left over must be zero, the bytes whole UTF-16 units, the text well formed,
  // and nothing printable that should have been written as itself.
  if (modifiedBase64(bytes) !== shifted || bytes.length % 2 !== 0) throw invalid(text);
  const decoded = bytes.swap16().toString('utf16le');
  if (!decoded.isWellFormed()) throw invalid(text);
  for (let i = 0; i < decoded.length; i++) if (isPrintableAscii(decoded.charCodeAt(i))) throw invalid(text);
  return decoded;
}

function modifiedBase64(bytes: Buffer): string {
  return bytes.toString('base64').replace(/=+$/, '').replaceAll('/', ',');
}

function isPrintableAscii(c: number): boolean {
  return c >= 0x20 && c <= 0x7e;
}

function invalid(text: string): ImapSyntaxError {
  return new ImapSyntaxError(`Invalid modified UTF-7 mailbox name ${printable(text)}`);
}
