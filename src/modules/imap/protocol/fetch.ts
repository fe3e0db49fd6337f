// FETCH arguments (RFC 3501 6.4.5, RFC 3516 BINARY, RFC 7162 CHANGEDSINCE/VANISHED):
// `1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.2048>) (CHANGEDSINCE 12345 VANISHED)`.
import type { Partial, SectionSpec, SequenceSet } from '../types.ts';
import { ArgReader, type AtomToken, atom, list, number64, parseAString } from './args.ts';
import { ImapSyntaxError, printable } from './errors.ts';
import { quoteAString } from './mailbox.ts';
import type { Token } from './parser.ts';
import { parseSequenceSet } from './sequence.ts';

export interface FetchItem {
  kind:
    | 'uid'
    | 'flags'
    | 'internaldate'
    | 'size'
    | 'envelope'
    | 'bodystructure'
    | 'body'
    | 'modseq'
    | 'rfc822'
    | 'rfc822.header'
    | 'rfc822.text'
    | 'section'
    | 'binary'
    | 'binary.size';
  section?: SectionSpec;
  peek?: boolean;
  partial?: Partial;
  /** The name to answer with: `BODY[HEADER.FIELDS (FROM TO)]<0>` (of a partial only the origin), `BINARY[1]`. */
  label: string;
}

export interface FetchRequest {
  sequence: SequenceSet;
  items: FetchItem[];
  changedSince?: number;
  vanished?: boolean;
}

export interface FetchOptions {
  /** UID FETCH: the UID item is implied (RFC 3501 6.4.8) and VANISHED is allowed. */
  uid: boolean;
}

type SimpleKind = Exclude<FetchItem['kind'], 'section' | 'binary' | 'binary.size'>;

const SIMPLE_ITEMS = new Map<string, SimpleKind>([
  ['UID', 'uid'],
  ['FLAGS', 'flags'],
  ['INTERNALDATE', 'internaldate'],
  ['RFC822.SIZE', 'size'],
  ['ENVELOPE', 'envelope'],
  ['BODYSTRUCTURE', 'bodystructure'],
  ['BODY', 'body'],
  ['MODSEQ', 'modseq'],
  ['RFC822', 'rfc822'],
  ['RFC822.HEADER', 'rfc822.header'],
  ['RFC822.TEXT', 'rfc822.text'],
]);

const MACROS = new Map<string, string[]>([
  ['ALL', ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE']],
  ['FAST', ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE']],
  ['FULL', ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY']],
]);

type SectionText = NonNullable<SectionSpec['text']>;

const SECTION_TEXTS = new Set<string>(['HEADER', 'HEADER.FIELDS', 'HEADER.FIELDS.NOT', 'TEXT', 'MIME']);
const BINARY_ITEMS = new Set(['BINARY', 'BINARY.PEEK', 'BINARY.SIZE']);
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;
const PART_NUMBER = /^[1-9]\d{0,9}$/;
const MAX_PART = 0xffff_ffff;

export function parseFetch(args: Token[], opts: FetchOptions): FetchRequest {
  const reader = new ArgReader(args);
  const sequence = parseSequenceSet(atom(reader.next('sequence set'), 'sequence set'));
  const items = fetchItems(reader.next('fetch items'));
  const modifiers = reader.done ? {} : fetchModifiers(reader.next('fetch modifiers'), opts);
  reader.end();
  if (opts.uid && !items.some((item) => item.kind === 'uid')) items.unshift(simpleItem('UID', 'uid'));
  // CHANGEDSINCE implies MODSEQ (RFC 7162 3.1.4.1).
  if (modifiers.changedSince !== undefined && !items.some((item) => item.kind === 'modseq')) {
    items.push(simpleItem('MODSEQ', 'modseq'));
  }
  return { sequence, items, ...modifiers };
}

function fetchItems(token: Token): FetchItem[] {
  const macro = token.type === 'atom' && !token.section ? MACROS.get(token.value.toUpperCase()) : undefined;
  if (macro) return macro.map((name) => simpleItem(name, SIMPLE_ITEMS.get(name)!));
  const tokens = token.type === 'list' ? token.items : [token];
  if (tokens.length === 0) throw new ImapSyntaxError('Empty fetch item list');
  // The same item twice is answered once (two partials of one section share a label: the first wins),
  // but BODY[] after BODY.PEEK[] still sets \Seen.
  const items = new Map<string, FetchItem>();
  for (const item of tokens.map(fetchItem)) {
    const kept = items.get(item.label);
    if (!kept) items.set(item.label, item);
    else if (kept.peek && !item.peek) kept.peek = false;
  }
  return [...items.values()];
}

function fetchItem(token: Token): FetchItem {
  if (token.type !== 'atom') throw new ImapSyntaxError('Invalid fetch item');
  const name = token.value.toUpperCase();
  if (!token.section) {
    const kind = SIMPLE_ITEMS.get(name);
    if (!kind) throw new ImapSyntaxError(`Unknown fetch item ${printable(name)}`);
    return simpleItem(name, kind);
  }
  if (name === 'BODY' || name === 'BODY.PEEK') return bodySection(token, name === 'BODY.PEEK');
  if (BINARY_ITEMS.has(name)) return binarySection(token, name);
  throw new ImapSyntaxError(`Unknown fetch item ${printable(name)}`);
}

function simpleItem(label: string, kind: SimpleKind): FetchItem {
  return { kind, label };
}

function bodySection(token: AtomToken, peek: boolean): FetchItem {
  const { section, label } = parseSection(token.section!);
  return withPartial({ kind: 'section', section, peek, label: `BODY[${label}]` }, token.partial);
}

/** BINARY[part], BINARY.PEEK[part] and BINARY.SIZE[part] (RFC 3516): part numbers only. */
function binarySection(token: AtomToken, name: string): FetchItem {
  const section = token.section!;
  if (section.length > 1) throw new ImapSyntaxError('Invalid BINARY section');
  const text = section.length ? atom(section[0], 'BINARY section') : '';
  const part = text ? text.split('.').map(partNumber) : [];
  const label = `[${part.join('.')}]`;
  if (name === 'BINARY.SIZE') {
    if (token.partial) throw new ImapSyntaxError('BINARY.SIZE takes no partial');
    return { kind: 'binary.size', section: { part }, label: `BINARY.SIZE${label}` };
  }
  const peek = name === 'BINARY.PEEK';
  return withPartial({ kind: 'binary', section: { part }, peek, label: `BINARY${label}` }, token.partial);
}

function withPartial(item: FetchItem, partial: Partial | undefined): FetchItem {
  if (!partial) return item;
  // A partial is answered with its origin only: BODY[]<0> (RFC 3501 7.4.2).
  return { ...item, partial, label: `${item.label}<${partial.start}>` };
}

/** The inside of `BODY[...]`: `1.2.HEADER.FIELDS (A B)` and the like. */
function parseSection(tokens: Token[]): { section: SectionSpec; label: string } {
  if (tokens.length === 0) return { section: { part: [] }, label: '' };
  const words = atom(tokens[0], 'section').toUpperCase().split('.');
  if (words.includes('')) throw new ImapSyntaxError('Invalid section');
  const numbers = words.findIndex((word) => !/^\d/.test(word));
  const part = (numbers < 0 ? words : words.slice(0, numbers)).map(partNumber);
  const text = numbers < 0 ? '' : words.slice(numbers).join('.');
  if (text && !isSectionText(text)) throw new ImapSyntaxError(`Invalid section ${printable(text)}`);
  if (text === 'MIME' && part.length === 0) throw new ImapSyntaxError('MIME needs a part number');
  const spec = text.startsWith('HEADER.FIELDS');
  if (tokens.length !== (spec ? 2 : 1)) throw new ImapSyntaxError('Invalid section');
  const prefix = [...part, ...(text ? [text] : [])].join('.');
  const section: SectionSpec = isSectionText(text) ? { part, text } : { part };
  if (!spec) return { section, label: prefix };
  const fields = list(tokens[1], 'header fields').map(fieldName);
  if (fields.length === 0) throw new ImapSyntaxError('Empty header field list');
  return {
    section: { ...section, fields },
    label: `${prefix} (${fields.map((field) => quoteAString(field)).join(' ')})`,
  };
}

function isSectionText(text: string): text is SectionText {
  return SECTION_TEXTS.has(text);
}

function partNumber(word: string): number {
  const n = PART_NUMBER.test(word) ? Number(word) : 0;
  if (n < 1 || n > MAX_PART) throw new ImapSyntaxError(`Invalid part number ${printable(word)}`);
  return n;
}

function fieldName(token: Token): string {
  const name = parseAString(token).toUpperCase();
  if (!FIELD_NAME.test(name)) throw new ImapSyntaxError(`Invalid header field name ${printable(name)}`);
  return name;
}

/** `(CHANGEDSINCE n [VANISHED])` (RFC 7162). */
function fetchModifiers(token: Token, opts: FetchOptions): Pick<FetchRequest, 'changedSince' | 'vanished'> {
  const reader = new ArgReader(list(token, 'fetch modifiers'));
  const modifiers: Pick<FetchRequest, 'changedSince' | 'vanished'> = {};
  if (reader.done) throw new ImapSyntaxError('Empty fetch modifier list');
  while (!reader.done) {
    const name = atom(reader.next('fetch modifier'), 'fetch modifier').toUpperCase();
    if (name === 'CHANGEDSINCE' && modifiers.changedSince === undefined) {
      // 0 is outside the grammar (mod-sequence-value), but it plainly means "everything".
      modifiers.changedSince = number64(atom(reader.next('mod-sequence'), 'mod-sequence'), 'CHANGEDSINCE');
    } else if (name === 'VANISHED' && !modifiers.vanished) {
      modifiers.vanished = true;
    } else {
      throw new ImapSyntaxError(`Invalid fetch modifier ${printable(name)}`);
    }
  }
  if (modifiers.vanished && (!opts.uid || modifiers.changedSince === undefined)) {
    throw new ImapSyntaxError('VANISHED needs UID FETCH and CHANGEDSINCE');
  }
  return modifiers;
}
