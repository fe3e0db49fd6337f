// Facts about raw RFC 5322 messages that several modules need.

/**
 * The length of a message's header: up to and including the line break that ends its last header line
 * (CRLF or a bare LF); the whole message when no empty line follows the header.
 */
export function headerLength(raw: Buffer): number {
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  if (crlf === -1 && lf === -1) return raw.length;
  if (crlf === -1) return lf + 1;
  if (lf === -1) return crlf + 2;
  return Math.min(crlf + 2, lf + 1);
}
