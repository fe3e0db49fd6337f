// Errors of the IMAP protocol layer. Their messages go into the server's reply as they are, so they never
// carry client text other than through `printable`, which makes it safe.

/** A command or argument that breaks the grammar: the server answers `<tag> BAD <message>`. */
export class ImapSyntaxError extends Error {
  override name = 'ImapSyntaxError';
}

/** SEARCH with a charset we do not know: the server answers `<tag> NO [BADCHARSET (UTF-8 US-ASCII)]`. */
export class ImapBadCharsetError extends Error {
  override name = 'ImapBadCharsetError';
  readonly charset: string;

  constructor(charset: string) {
    super(`Unsupported charset ${printable(charset)}`);
    this.charset = charset;
  }
}

const MAX_PRINTED = 40;

/**
 * Client text made safe to quote in a response line: printable ASCII only (a CR or LF would let the
 * client forge response lines) and short.
 */
export function printable(text: string): string {
  const safe = text.replace(/[^\x20-\x7e]/g, '?');
  return safe.length > MAX_PRINTED ? `${safe.slice(0, MAX_PRINTED)}...` : safe;
}
