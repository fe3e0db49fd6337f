// Types shared by the IMAP protocol parser, the MIME structure and the server.

/**
 * A BODY[...] / BINARY[...] section: the part path (empty for the whole message; `[1, 2]` is "1.2")
 * and what of it: its header, some header fields, its text, or its MIME header.
 */
export interface SectionSpec {
  part: number[];
  text?: 'HEADER' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT' | 'TEXT' | 'MIME';
  /** For HEADER.FIELDS and HEADER.FIELDS.NOT: the field names, upper-cased. */
  fields?: string[];
}

/** `<start.length>` of a partial fetch. */
export interface Partial {
  start: number;
  length: number;
}

/** One sequence set range; `'*'` is the largest number in use. A single number n is `{ start: n, end: n }`. */
export interface SequenceRange {
  start: number | '*';
  end: number | '*';
}
export type SequenceSet = SequenceRange[];
