// SEARCH arguments (RFC 3501 6.4.4, RFC 4731 ESEARCH, RFC 7162 MODSEQ):
// `RETURN (MIN COUNT) CHARSET UTF-8 OR FROM "ann" NOT SEEN SINCE 1-Feb-1994`.
import type { SequenceSet } from '../types.ts';
import { ArgReader, atom, number64, optionList, parseAString } from './args.ts';
import { parseSearchDate } from './datetime.ts';
import { ImapBadCharsetError, ImapSyntaxError, printable } from './errors.ts';
import { parseKeyword } from './flags.ts';
import type { Token } from './parser.ts';
import { parseSequenceSet } from './sequence.ts';

export type SearchKey =
  | { op: 'all' }
  | { op: 'and'; keys: SearchKey[] }
  | { op: 'or'; left: SearchKey; right: SearchKey }
  | { op: 'not'; key: SearchKey }
  | { op: 'seq'; set: SequenceSet }
  | { op: 'uid'; set: SequenceSet }
  /** ANSWERED/UNANSWERED and the like as `\Answered`; KEYWORD x/UNKEYWORD x as x. */
  | { op: 'flag'; flag: string; present: boolean }
  /** NEW is RECENT UNSEEN; OLD is NOT RECENT. */
  | { op: 'new' }
  | { op: 'old' }
  /** FROM/TO/CC/BCC/SUBJECT and HEADER name value; the field lower-cased. */
  | { op: 'header'; field: string; value: string }
  | { op: 'body'; value: string }
  | { op: 'text'; value: string }
  /** BEFORE/ON/SINCE (internal date) and SENTBEFORE/SENTON/SENTSINCE (Date header); date as YYYY-MM-DD. */
  | { op: 'date'; field: 'internal' | 'sent'; cmp: 'before' | 'on' | 'since'; date: string }
  | { op: 'size'; cmp: 'larger' | 'smaller'; value: number }
  /** MODSEQ [entry-name entry-type] n. */
  | { op: 'modseq'; value: number };

export interface SearchRequest {
  /** Upper-cased; null when none was given. */
  charset: string | null;
  /** The RETURN options (upper-cased); null without RETURN, which asks for a classic SEARCH response. */
  returnOptions: string[] | null;
  key: SearchKey;
}

const RETURN_OPTIONS = new Set(['MIN', 'MAX', 'COUNT', 'ALL', 'SAVE']);
const CHARSETS = new Set(['UTF-8', 'US-ASCII']);
const FLAG_KEYS = new Map<string, [string, boolean]>([
  ['ANSWERED', ['\\Answered', true]],
  ['UNANSWERED', ['\\Answered', false]],
  ['DELETED', ['\\Deleted', true]],
  ['UNDELETED', ['\\Deleted', false]],
  ['DRAFT', ['\\Draft', true]],
  ['UNDRAFT', ['\\Draft', false]],
  ['FLAGGED', ['\\Flagged', true]],
  ['UNFLAGGED', ['\\Flagged', false]],
  ['SEEN', ['\\Seen', true]],
  ['UNSEEN', ['\\Seen', false]],
  ['RECENT', ['\\Recent', true]],
]);
const HEADER_KEYS = new Set(['FROM', 'TO', 'CC', 'BCC', 'SUBJECT']);
type DateKey = [field: 'internal' | 'sent', cmp: 'before' | 'on' | 'since'];

const DATE_KEYS = new Map<string, DateKey>([
  ['BEFORE', ['internal', 'before']],
  ['ON', ['internal', 'on']],
  ['SINCE', ['internal', 'since']],
  ['SENTBEFORE', ['sent', 'before']],
  ['SENTON', ['sent', 'on']],
  ['SENTSINCE', ['sent', 'since']],
]);
const ENTRY_TYPES = new Set(['PRIV', 'SHARED', 'ALL']);
const SEQUENCE_SET = /^[\d*:,]+$/;
/** NOT and OR nest by recursion; this keeps a hostile chain of them off the stack limit. */
const MAX_NESTING = 500;

export function parseSearch(args: Token[]): SearchRequest {
  const reader = new ArgReader(args);
  const returnOptions = reader.keyword('RETURN') ? parseReturnOptions(reader.next('RETURN options')) : null;
  const charset = reader.keyword('CHARSET') ? parseCharset(reader.next('charset')) : null;
  const keys = parseKeys(reader, 0);
  return { charset, returnOptions, key: keys.length === 1 ? keys[0] : { op: 'and', keys } };
}

/** RFC 4731: an empty list asks for ESEARCH with ALL. */
function parseReturnOptions(token: Token): string[] {
  const options = optionList(token, 'RETURN option', RETURN_OPTIONS);
  return options.length ? options : ['ALL'];
}

function parseCharset(token: Token): string {
  const charset = parseAString(token).toUpperCase();
  if (!CHARSETS.has(charset)) throw new ImapBadCharsetError(charset);
  return charset;
}

/** One or more keys up to the end of the reader. */
function parseKeys(reader: ArgReader, depth: number): SearchKey[] {
  const keys: SearchKey[] = [];
  do keys.push(parseKey(reader, depth));
  while (!reader.done);
  return keys;
}

function parseKey(reader: ArgReader, depth: number): SearchKey {
  if (depth > MAX_NESTING) throw new ImapSyntaxError('Search criteria nested too deeply');
  const token = reader.next('search criteria');
  if (token.type === 'list') return { op: 'and', keys: parseKeys(new ArgReader(token.items), depth + 1) };
  const name = atom(token, 'search key').toUpperCase();
  const flag = FLAG_KEYS.get(name);
  if (flag) return { op: 'flag', flag: flag[0], present: flag[1] };
  const date = DATE_KEYS.get(name);
  if (date) return dateKey(date, reader);
  if (HEADER_KEYS.has(name))
    return { op: 'header', field: name.toLowerCase(), value: searchString(reader, 'string') };
  switch (name) {
    case 'ALL':
      return { op: 'all' };
    case 'NEW':
      return { op: 'new' };
    case 'OLD':
      return { op: 'old' };
    case 'NOT':
      return { op: 'not', key: parseKey(reader, depth + 1) };
    case 'OR':
      return { op: 'or', left: parseKey(reader, depth + 1), right: parseKey(reader, depth + 1) };
    case 'KEYWORD':
    case 'UNKEYWORD':
      return { op: 'flag', flag: parseKeyword(reader.next('keyword')), present: name === 'KEYWORD' };
    case 'HEADER':
      return headerKey(reader);
    case 'BODY':
    case 'TEXT':
      return { op: name === 'BODY' ? 'body' : 'text', value: searchString(reader, 'string') };
    case 'LARGER':
    case 'SMALLER':
      return {
        op: 'size',
        cmp: name === 'LARGER' ? 'larger' : 'smaller',
        value: searchNumber(reader, 'size'),
      };
    case 'UID':
      return { op: 'uid', set: parseSequenceSet(atom(reader.next('UID set'), 'UID set')) };
    case 'MODSEQ':
      return modseqKey(reader);
  }
  if (SEQUENCE_SET.test(name)) return { op: 'seq', set: parseSequenceSet(name) };
  throw new ImapSyntaxError(`Unknown search key ${printable(name)}`);
}

function dateKey([field, cmp]: DateKey, reader: ArgReader): SearchKey {
  return { op: 'date', field, cmp, date: parseSearchDate(searchString(reader, 'date')) };
}

function headerKey(reader: ArgReader): SearchKey {
  const field = searchString(reader, 'header field name').toLowerCase();
  return { op: 'header', field, value: searchString(reader, 'string') };
}

/** MODSEQ ["/flags/\Seen" priv|shared|all] n: per-flag mod-sequences are not kept, so the entry is checked and dropped. */
function modseqKey(reader: ArgReader): SearchKey {
  if (reader.peek()?.type === 'string') {
    const entry = searchString(reader, 'entry name');
    if (!entry.toLowerCase().startsWith('/flags/')) throw new ImapSyntaxError('Invalid MODSEQ entry name');
    const type = atom(reader.next('entry type'), 'entry type').toUpperCase();
    if (!ENTRY_TYPES.has(type)) throw new ImapSyntaxError('Invalid MODSEQ entry type');
  }
  return { op: 'modseq', value: searchNumber(reader, 'mod-sequence') };
}

/** A search string: astring, decoded as UTF-8 (US-ASCII is a subset). */
function searchString(reader: ArgReader, what: string): string {
  return parseAString(reader.next(what));
}

function searchNumber(reader: ArgReader, what: string): number {
  return number64(atom(reader.next(what), what), what);
}
