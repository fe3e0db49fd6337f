// Typed arguments of IMAP commands, from the tokens of a parsed Command. Each parser returns the value or
// throws ImapSyntaxError (answer BAD with its message); SEARCH may also throw ImapBadCharsetError.
// FETCH, SEARCH, sequence sets, flags, dates and mailbox names live in their own modules, exported here too.
import type { SequenceSet } from '../types.ts';
import { ArgReader, atom, list, number32, number64, optionList, parseAString } from './args.ts';
import { parseDateTime } from './datetime.ts';
import { ImapSyntaxError, printable } from './errors.ts';
import { parseFlagList, parseFlags } from './flags.ts';
import { decodeMailboxName } from './mailbox.ts';
import type { Token } from './parser.ts';
import { parseSequenceSet } from './sequence.ts';

export { parseAString } from './args.ts';
export { formatDateTime, parseDateTime, parseSearchDate } from './datetime.ts';
export { ImapBadCharsetError, ImapSyntaxError } from './errors.ts';
export { type FetchItem, type FetchOptions, type FetchRequest, parseFetch } from './fetch.ts';
export { parseFlagList } from './flags.ts';
export { decodeMailboxName, encodeMailboxName, listPatternMatcher, quoteAString } from './mailbox.ts';
export { parseSearch, type SearchKey, type SearchRequest } from './search.ts';
export { parseSequenceSet, sequenceContains, sequenceRanges } from './sequence.ts';

/** Whether the client enabled UTF8=ACCEPT: mailbox names are then UTF-8, else modified UTF-7. */
export interface MailboxOptions {
  utf8: boolean;
}

export interface StoreRequest {
  sequence: SequenceSet;
  mode: 'set' | 'add' | 'remove';
  silent: boolean;
  flags: string[];
  unchangedSince?: number;
}

export interface SelectRequest {
  mailbox: string;
  /** The CONDSTORE parameter was given (QRESYNC implies CONDSTORE too, RFC 7162 3.2.3). */
  condstore: boolean;
  qresync?: QresyncParams;
}

export interface QresyncParams {
  uidValidity: number;
  modseq: number;
  knownUids?: SequenceSet;
  seqMatch?: { seqs: SequenceSet; uids: SequenceSet };
}

export interface ListRequest {
  reference: string;
  /** One or more; `*` and `%` are wildcards (see listPatternMatcher). */
  patterns: string[];
  /** Selection options: SUBSCRIBED, REMOTE, RECURSIVEMATCH, SPECIAL-USE. */
  selection: string[];
  return: { subscribed: boolean; children: boolean; specialUse: boolean; status?: string[] };
}

export interface StatusRequest {
  mailbox: string;
  items: string[];
}

export interface AppendMessage {
  flags: string[];
  date: Date | null;
  content: Buffer;
}

export interface AppendRequest {
  mailbox: string;
  messages: AppendMessage[];
}

export interface AuthenticateRequest {
  /** Upper-cased. */
  mechanism: string;
  /** SASL-IR initial response, base64; "=" is an empty one. */
  initial?: string;
}

const NO_UTF8: MailboxOptions = { utf8: false };
const STORE_ACTION = /^([+-]?)FLAGS(\.SILENT)?$/;
const STORE_MODES = { '': 'set', '+': 'add', '-': 'remove' } as const;
const SELECTION_OPTIONS = new Set(['SUBSCRIBED', 'REMOTE', 'RECURSIVEMATCH', 'SPECIAL-USE']);
const STATUS_ITEMS = new Set([
  'MESSAGES',
  'RECENT',
  'UIDNEXT',
  'UIDVALIDITY',
  'UNSEEN',
  'HIGHESTMODSEQ',
  'SIZE',
  'APPENDLIMIT',
  'DELETED',
]);
const MAX_ID_PAIRS = 30;
const MAX_ID_FIELD_BYTES = 30;
const MAX_ID_VALUE_BYTES = 1024;
const SASL_MECHANISM = /^[A-Z0-9_-]{1,20}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** `seq [(UNCHANGEDSINCE n)] [+|-]FLAGS[.SILENT] (flags)` or with the flags unparenthesised. */
export function parseStore(args: Token[]): StoreRequest {
  const reader = new ArgReader(args);
  const sequence = sequenceArg(reader);
  const unchangedSince =
    reader.peek()?.type === 'list' ? storeModifiers(reader.next('store modifiers')) : undefined;
  const action = STORE_ACTION.exec(atom(reader.next('store action'), 'store action').toUpperCase());
  if (!action) throw new ImapSyntaxError('Invalid store action');
  const rest = reader.rest();
  if (rest.length === 0) throw new ImapSyntaxError('Missing flags');
  const flags = rest.length === 1 && rest[0].type === 'list' ? parseFlagList(rest[0]) : parseFlags(rest);
  const mode = STORE_MODES[action[1] as keyof typeof STORE_MODES];
  const request: StoreRequest = { sequence, mode, silent: action[2] !== undefined, flags };
  if (unchangedSince !== undefined) request.unchangedSince = unchangedSince;
  return request;
}

/** `mailbox [(CONDSTORE)]` or `mailbox [(QRESYNC (uidvalidity modseq [known-uids] [(seqs uids)]))]`. */
export function parseSelect(args: Token[], opts: MailboxOptions = NO_UTF8): SelectRequest {
  const reader = new ArgReader(args);
  const mailbox = decodeMailboxName(reader.next('mailbox name'), opts.utf8);
  const request: SelectRequest = { mailbox, condstore: false };
  if (!reader.done) selectParams(list(reader.next('SELECT parameters'), 'SELECT parameters'), request);
  reader.end();
  return request;
}

/** LIST, with LIST-EXTENDED (RFC 5258) and LIST-STATUS (RFC 5819). */
export function parseList(args: Token[], opts: MailboxOptions): ListRequest {
  const reader = new ArgReader(args);
  const selection =
    reader.peek()?.type === 'list'
      ? optionList(reader.next('selection options'), 'selection option', SELECTION_OPTIONS)
      : [];
  if (recursiveMatchAlone(selection))
    throw new ImapSyntaxError('RECURSIVEMATCH needs another selection option');
  const reference = decodeMailboxName(reader.next('reference'), opts.utf8);
  const patterns = patternTokens(reader.next('mailbox pattern')).map((token) =>
    decodeMailboxName(token, opts.utf8),
  );
  // The SUBSCRIBED selection option implies the SUBSCRIBED return option (RFC 5258 3).
  const returns: ListRequest['return'] = {
    subscribed: selection.includes('SUBSCRIBED'),
    children: false,
    specialUse: false,
  };
  if (reader.keyword('RETURN')) listReturnOptions(reader.next('RETURN options'), returns);
  reader.end();
  return { reference, patterns, selection, return: returns };
}

/** STATUS items, upper-cased, each once. */
export function parseStatusItems(token: Token): string[] {
  const items = optionList(token, 'status item', STATUS_ITEMS);
  if (items.length === 0) throw new ImapSyntaxError('Empty status item list');
  return items;
}

export function parseStatus(args: Token[], opts: MailboxOptions = NO_UTF8): StatusRequest {
  const reader = new ArgReader(args);
  const mailbox = decodeMailboxName(reader.next('mailbox name'), opts.utf8);
  const items = parseStatusItems(reader.next('status items'));
  reader.end();
  return { mailbox, items };
}

/** `mailbox ([flags] [date-time] literal)+` (MULTIAPPEND), a message also as `UTF8 (~{n} ...)` (RFC 6855). */
export function parseAppend(args: Token[], opts: MailboxOptions = NO_UTF8): AppendRequest {
  const reader = new ArgReader(args);
  const mailbox = decodeMailboxName(reader.next('mailbox name'), opts.utf8);
  const messages: AppendMessage[] = [];
  do messages.push(appendMessage(reader));
  while (!reader.done);
  return { mailbox, messages };
}

/** Capability names, upper-cased, each once. */
export function parseEnable(args: Token[]): string[] {
  if (args.length === 0) throw new ImapSyntaxError('Missing capability');
  return [...new Set(args.map((token) => atom(token, 'capability').toUpperCase()))];
}

/** ID (RFC 2971): NIL or `("name" "value" ...)`; field names lower-cased. */
export function parseId(args: Token[]): Record<string, string | null> {
  const reader = new ArgReader(args);
  const token = reader.next('ID parameters');
  reader.end();
  if (token.type === 'nil') return {};
  const items = list(token, 'ID parameters');
  if (items.length % 2 !== 0) throw new ImapSyntaxError('ID parameters must be field-value pairs');
  if (items.length > MAX_ID_PAIRS * 2) throw new ImapSyntaxError('Too many ID parameters');
  const entries = new Map<string, string | null>();
  for (let i = 0; i < items.length; i += 2) {
    const field = idString(items[i], MAX_ID_FIELD_BYTES).toLowerCase();
    if (entries.has(field)) throw new ImapSyntaxError(`Repeated ID field ${printable(field)}`);
    entries.set(field, items[i + 1].type === 'nil' ? null : idString(items[i + 1], MAX_ID_VALUE_BYTES));
  }
  return Object.fromEntries(entries);
}

/** `mechanism [initial-response]` (SASL-IR, RFC 4959). */
export function parseAuthenticate(args: Token[]): AuthenticateRequest {
  const reader = new ArgReader(args);
  const mechanism = atom(reader.next('mechanism'), 'mechanism').toUpperCase();
  if (!SASL_MECHANISM.test(mechanism)) throw new ImapSyntaxError('Invalid mechanism');
  if (reader.done) return { mechanism };
  const initial = parseAString(reader.next('initial response'));
  reader.end();
  if (!isSaslResponse(initial)) throw new ImapSyntaxError('Invalid initial response');
  return { mechanism, initial };
}

export function parseLogin(args: Token[]): { username: string; password: string } {
  const reader = new ArgReader(args);
  const username = parseAString(reader.next('user name'));
  const password = parseAString(reader.next('password'));
  reader.end();
  return { username, password };
}

/** COPY and MOVE: `sequence mailbox`. */
export function parseCopyMove(
  args: Token[],
  opts: MailboxOptions = NO_UTF8,
): { sequence: SequenceSet; mailbox: string } {
  const reader = new ArgReader(args);
  const sequence = sequenceArg(reader);
  const mailbox = decodeMailboxName(reader.next('mailbox name'), opts.utf8);
  reader.end();
  return { sequence, mailbox };
}

/** UID EXPUNGE (RFC 4315): the UIDs to expunge. */
export function parseUidExpunge(args: Token[]): SequenceSet {
  const reader = new ArgReader(args);
  const sequence = sequenceArg(reader);
  reader.end();
  return sequence;
}

function sequenceArg(reader: ArgReader): SequenceSet {
  return parseSequenceSet(atom(reader.next('sequence set'), 'sequence set'));
}

/** `(UNCHANGEDSINCE n)` (RFC 7162); 0 is allowed there. */
function storeModifiers(token: Token): number {
  const reader = new ArgReader(list(token, 'store modifiers'));
  const name = atom(reader.next('store modifier'), 'store modifier').toUpperCase();
  if (name !== 'UNCHANGEDSINCE') throw new ImapSyntaxError(`Unknown store modifier ${printable(name)}`);
  const value = number64(atom(reader.next('mod-sequence'), 'mod-sequence'), 'UNCHANGEDSINCE');
  reader.end();
  return value;
}

function selectParams(params: Token[], request: SelectRequest): void {
  if (params.length === 0) throw new ImapSyntaxError('Empty SELECT parameter list');
  const reader = new ArgReader(params);
  while (!reader.done) {
    const name = atom(reader.next('SELECT parameter'), 'SELECT parameter').toUpperCase();
    if (name === 'CONDSTORE' && !request.condstore) request.condstore = true;
    else if (name === 'QRESYNC' && !request.qresync)
      request.qresync = qresyncParams(reader.next('QRESYNC parameters'));
    else throw new ImapSyntaxError(`Invalid SELECT parameter ${printable(name)}`);
  }
}

function qresyncParams(token: Token): QresyncParams {
  const reader = new ArgReader(list(token, 'QRESYNC parameters'));
  const uidValidity = number32(atom(reader.next('UIDVALIDITY'), 'UIDVALIDITY'), 'UIDVALIDITY', 1);
  const modseq = number64(atom(reader.next('mod-sequence'), 'mod-sequence'), 'mod-sequence', 1);
  const params: QresyncParams = { uidValidity, modseq };
  if (reader.peek()?.type === 'atom') params.knownUids = knownSet(reader.next('known UIDs'));
  if (!reader.done) params.seqMatch = sequenceMatch(reader.next('sequence match data'));
  reader.end();
  return params;
}

/** `(known-sequence-set known-uid-set)`. */
function sequenceMatch(token: Token): { seqs: SequenceSet; uids: SequenceSet } {
  const reader = new ArgReader(list(token, 'sequence match data'));
  const seqs = knownSet(reader.next('known sequence set'));
  const uids = knownSet(reader.next('known UID set'));
  reader.end();
  return { seqs, uids };
}

/** A sequence set of numbers the client knows, where "*" means nothing and is refused. */
function knownSet(token: Token): SequenceSet {
  const set = parseSequenceSet(atom(token, 'sequence set'));
  if (set.some((range) => range.start === '*' || range.end === '*'))
    throw new ImapSyntaxError('"*" is not allowed here');
  return set;
}

/** RECURSIVEMATCH only qualifies another option (RFC 5258 3): on its own, or with REMOTE only, it is BAD. */
function recursiveMatchAlone(selection: string[]): boolean {
  return (
    selection.includes('RECURSIVEMATCH') &&
    selection.every((option) => option === 'RECURSIVEMATCH' || option === 'REMOTE')
  );
}

function patternTokens(token: Token): Token[] {
  if (token.type !== 'list') return [token];
  if (token.items.length === 0) throw new ImapSyntaxError('Empty mailbox pattern list');
  return token.items;
}

function listReturnOptions(token: Token, returns: ListRequest['return']): void {
  const reader = new ArgReader(list(token, 'RETURN options'));
  while (!reader.done) {
    const name = atom(reader.next('RETURN option'), 'RETURN option').toUpperCase();
    if (name === 'SUBSCRIBED') returns.subscribed = true;
    else if (name === 'CHILDREN') returns.children = true;
    else if (name === 'SPECIAL-USE') returns.specialUse = true;
    else if (name === 'STATUS') returns.status = parseStatusItems(reader.next('status items'));
    else throw new ImapSyntaxError(`Unknown RETURN option ${printable(name)}`);
  }
}

function appendMessage(reader: ArgReader): AppendMessage {
  const flags = reader.peek()?.type === 'list' ? parseFlagList(reader.next('flags')) : [];
  const next = reader.peek();
  // The date is a quoted string; a literal here is the message itself.
  const date =
    next?.type === 'string' && !next.literal ? parseDateTime(parseAString(reader.next('date'))) : null;
  return { flags, date, content: appendContent(reader) };
}

function appendContent(reader: ArgReader): Buffer {
  if (!reader.keyword('UTF8')) return literal(reader.next('message literal'));
  const items = list(reader.next('UTF8 message'), 'message literal');
  if (items.length !== 1) throw new ImapSyntaxError('Expected one message literal');
  return literal(items[0]);
}

function literal(token: Token): Buffer {
  if (token.type !== 'string' || !token.literal) throw new ImapSyntaxError('The message must be a literal');
  return token.value;
}

/** Base64, or "=" for an empty response (RFC 4959). */
function isSaslResponse(text: string): boolean {
  return text === '=' || (text.length > 0 && BASE64.test(text));
}

function idString(token: Token, maxBytes: number): string {
  if (token.type === 'nil' || token.type === 'list') throw new ImapSyntaxError('Invalid ID parameter');
  const value = parseAString(token);
  if (Buffer.byteLength(value) > maxBytes) throw new ImapSyntaxError('ID parameter too long');
  return value;
}
