// Shared pieces of the argument parsers: walking a command's tokens and reading its basic values.
import { ImapSyntaxError, printable } from './errors.ts';
import type { Token } from './parser.ts';

export type AtomToken = Extract<Token, { type: 'atom' }>;

const MAX_NUMBER = 0xffff_ffffn;
const MAX_NUMBER64 = 0x7fff_ffff_ffff_ffffn;
// ignoreBOM keeps a leading U+FEFF as text instead of dropping it.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const ATOM_SPECIALS = '(){ %*"\\]';

/** The tokens of a command (or of a list in it), read left to right. */
export class ArgReader {
  readonly #tokens: readonly Token[];
  #index = 0;

  constructor(tokens: readonly Token[]) {
    this.#tokens = tokens;
  }

  get done(): boolean {
    return this.#index >= this.#tokens.length;
  }

  peek(): Token | undefined {
    return this.#tokens[this.#index];
  }

  /** The next token; `what` names it in the error when there is none. */
  next(what: string): Token {
    const token = this.#tokens[this.#index++];
    if (!token) throw new ImapSyntaxError(`Missing ${what}`);
    return token;
  }

  /** True (and consumed) when the next token is the given keyword, in any case. */
  keyword(name: string): boolean {
    const token = this.peek();
    if (token?.type !== 'atom' || token.section || token.value.toUpperCase() !== name) return false;
    this.#index++;
    return true;
  }

  /** The tokens not read yet; the reader is done after this. */
  rest(): Token[] {
    const rest = this.#tokens.slice(this.#index);
    this.#index = this.#tokens.length;
    return rest;
  }

  end(): void {
    if (!this.done) throw new ImapSyntaxError('Unexpected extra arguments');
  }
}

/** A bare word without a section: the atom's text. */
export function atom(token: Token, what: string): string {
  if (token.type !== 'atom' || token.section) throw new ImapSyntaxError(`Invalid ${what}`);
  return token.value;
}

/** A parenthesised list; `what` names its contents in the error. */
export function list(token: Token, what: string): Token[] {
  if (token.type !== 'list') throw new ImapSyntaxError(`Expected a list of ${what}`);
  return token.items;
}

/** An astring or nstring-ish value as text: an atom, a quoted string or literal (UTF-8), or NIL. */
export function parseAString(token: Token): string {
  if (token.type === 'string') return decodeUtf8(token.value);
  if (token.type === 'nil') return 'NIL';
  return atom(token, 'string');
}

export function decodeUtf8(bytes: Buffer): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new ImapSyntaxError('Invalid UTF-8');
  }
}

/** An unsigned 32-bit number (RFC 3501 `number`); `min` 1 makes it an nz-number. */
export function number32(text: string, what: string, min = 0): number {
  return boundedNumber(text, what, BigInt(min), MAX_NUMBER);
}

/** An unsigned 63-bit number (mod-sequences, number64). Above 2^53 it loses precision, which is harmless. */
export function number64(text: string, what: string, min = 0): number {
  return boundedNumber(text, what, BigInt(min), MAX_NUMBER64);
}

function boundedNumber(text: string, what: string, min: bigint, max: bigint): number {
  if (!/^\d{1,19}$/.test(text)) throw new ImapSyntaxError(`Invalid ${what} ${printable(text)}`);
  const value = BigInt(text);
  if (value < min || value > max) throw new ImapSyntaxError(`${what} out of range`);
  return Number(value);
}

/** Upper-cased option names from a list, each known and given once. */
export function optionList(token: Token, what: string, known: ReadonlySet<string>): string[] {
  const names = list(token, `${what}s`).map((item) => atom(item, what).toUpperCase());
  for (const name of names)
    if (!known.has(name)) throw new ImapSyntaxError(`Unknown ${what} ${printable(name)}`);
  return [...new Set(names)];
}

/** Whether the text is a run of ATOM-CHAR (RFC 3501), or with `astring` of ASTRING-CHAR, which adds "]". */
export function isAtomText(text: string, astring = false): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const special = ATOM_SPECIALS.includes(text[i]) && !(astring && text[i] === ']');
    if (c <= 0x20 || c >= 0x7f || special) return false;
  }
  return text.length > 0;
}
