// Types for the parts of libmime and libqp that Mailroom calls (neither ships its own).
declare module 'libmime' {
  const libmime: {
    /** A structured header value: `text/plain; charset=utf-8` → { value: 'text/plain', params: { charset: 'utf-8' } }. */
    parseHeaderValue(value: string): { value: string; params: Record<string, string> };
    /** Decodes RFC 2047 encoded words (=?charset?Q|B?…?=) in a header value. */
    decodeWords(value: string): string;
  };
  export default libmime;
}

declare module 'libqp' {
  /** Decodes quoted-printable text (a string whose characters are bytes) into its bytes. */
  export function decode(value: string): Buffer;
}
