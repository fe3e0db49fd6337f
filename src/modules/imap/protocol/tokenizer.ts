// Turns the lines of one command into tokens. A command arrives as lines with literals between them; the
// tokenizer keeps its open lists and sections from one line to the next, so a literal may stand wherever a
// string may, even inside a list.
import type { Partial } from '../types.ts';
import { ImapSyntaxError } from './errors.ts';

export type Token =
  /**
   * A bare word. `BODY.PEEK[HEADER.FIELDS (FROM)]<0.100>` is the atom `BODY.PEEK` with the section
   * `[atom HEADER.FIELDS, list [atom FROM]]` and the partial `{ start: 0, length: 100 }`; `BODY[]` has the
   * section `[]`.
   */
  | { type: 'atom'; value: string; section?: Token[]; partial?: Partial }
  /** A quoted string (`"..."` with `\"` and `\\` escapes) or a literal (`{n}`, `{n+}`, or `~{n}` literal8). */
  | { type: 'string'; value: Buffer; literal: boolean; literal8?: boolean }
  | { type: 'list'; items: Token[] }
  | { type: 'nil' };

/** A literal announced at the end of a line: `{n}`, `{n+}`, `~{n}` or `~{n+}`. */
export interface LiteralHeader {
  size: number;
  /** `{n}`: the client waits for "+" before sending the bytes; `{n+}` (LITERAL+) does not. */
  sync: boolean;
  /** `~{n}` (RFC 3516 BINARY): the bytes may include NUL. */
  literal8: boolean;
}

export interface TokenizerLimits {
  maxDepth: number;
  maxTokens: number;
}

type AtomToken = Extract<Token, { type: 'atom' }>;

interface Frame {
  kind: 'root' | 'list' | 'section';
  items: Token[];
  /** For a section: the atom it belongs to (`BODY` of `BODY[...]`). */
  owner?: AtomToken;
}

const SP = 0x20;
const DQUOTE = 0x22;
const LPAREN = 0x28;
const RPAREN = 0x29;
const PLUS = 0x2b;
const DOT = 0x2e;
const LT = 0x3c;
const GT = 0x3e;
const LBRACKET = 0x5b;
const BACKSLASH = 0x5c;
const RBRACKET = 0x5d;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const TILDE = 0x7e;
const MAX_LITERAL_DIGITS = 19;
const MAX_NUMBER = 0xffff_ffff;

// Bytes an atom may hold. RFC 3501 keeps "%", "*", "]" and "\" out of ATOM-CHAR, but LIST patterns,
// sequence sets, astrings ("[Gmail]/Sent") and flags ("\Seen") are all written as bare words, so they are
// taken here and each argument parser checks its own grammar.
const ATOM_CHARS = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) ATOM_CHARS[c] = 1;
for (const c of [LPAREN, RPAREN, DQUOTE, LBRACE]) ATOM_CHARS[c] = 0;

/** Atoms after which "[" opens a section rather than being part of the word. */
const SECTION_ATOMS = new Set(['BODY', 'BODY.PEEK', 'BINARY', 'BINARY.PEEK', 'BINARY.SIZE']);
/** The longest of them: a longer word before `[` is never one (checked without reading it again). */
const LONGEST_SECTION_ATOM = 11;

export class Tokenizer {
  readonly #limits: TokenizerLimits;
  readonly #root: Token[] = [];
  readonly #stack: Frame[] = [{ kind: 'root', items: this.#root }];
  #count = 0;
  /** Whether a new token may start here: at the start, after a space or an opening bracket. */
  #separated = true;

  constructor(limits: TokenizerLimits) {
    this.#limits = limits;
  }

  /** The top-level tokens so far. */
  get items(): readonly Token[] {
    return this.#root;
  }

  /** Tokenizes one line (without its line end); returns the literal it announces at its end, if any. */
  line(line: Buffer): LiteralHeader | null {
    let i = 0;
    while (i < line.length) {
      const c = line[i];
      if (c === SP) {
        this.#separated = true;
        i++;
      } else if (c === RPAREN) {
        this.#closeList();
        i++;
      } else if (c === RBRACKET && this.#top.kind === 'section') {
        i = this.#closeSection(line, i + 1);
      } else if (!this.#separated) {
        throw c > SP && c < 0x7f
          ? new ImapSyntaxError('Expected a space between arguments')
          : invalidCharacter(c);
      } else if (c === LPAREN) {
        this.#openList();
        i++;
      } else if (c === DQUOTE) {
        i = this.#quoted(line, i + 1);
      } else if (c === LBRACE || (c === TILDE && line[i + 1] === LBRACE)) {
        return literalHeader(line, i);
      } else {
        i = this.#atom(line, i);
      }
    }
    return null;
  }

  /** Adds the bytes of the literal the last line announced. */
  literal(value: Buffer, literal8: boolean): void {
    this.#add(
      literal8
        ? { type: 'string', value, literal: true, literal8 }
        : { type: 'string', value, literal: true },
    );
    this.#separated = false;
  }

  /** The command's tokens, once its last line is in. */
  finish(): Token[] {
    const { kind } = this.#top;
    if (kind !== 'root') throw new ImapSyntaxError(kind === 'list' ? 'Unclosed "("' : 'Unclosed "["');
    return this.#root;
  }

  get #top(): Frame {
    return this.#stack[this.#stack.length - 1];
  }

  #add(token: Token): void {
    if (++this.#count > this.#limits.maxTokens) throw new ImapSyntaxError('Too many arguments');
    this.#top.items.push(token);
  }

  #push(frame: Frame): void {
    if (this.#stack.length > this.#limits.maxDepth) throw new ImapSyntaxError('Too deeply nested');
    this.#stack.push(frame);
    this.#separated = true;
  }

  #openList(): void {
    const list: Token = { type: 'list', items: [] };
    this.#add(list);
    this.#push({ kind: 'list', items: list.items });
  }

  #closeList(): void {
    if (this.#top.kind !== 'list') throw new ImapSyntaxError('Unbalanced ")"');
    this.#stack.pop();
    this.#separated = false;
  }

  /** At the byte after "]": attaches the section to its atom, and a `<start.length>` after it. */
  #closeSection(line: Buffer, i: number): number {
    const frame = this.#stack.pop()!;
    const owner = frame.owner!;
    owner.section = frame.items;
    this.#separated = false;
    if (line[i] !== LT) return i;
    const end = line.indexOf(GT, i);
    if (end < 0) throw new ImapSyntaxError('Unclosed "<"');
    owner.partial = partial(line, i + 1, end);
    return end + 1;
  }

  #atom(line: Buffer, start: number): number {
    const inSection = this.#top.kind === 'section';
    let i = start;
    while (i < line.length) {
      const c = line[i];
      if (!ATOM_CHARS[c] || (c === RBRACKET && inSection)) break;
      if (
        c === LBRACKET &&
        i - start <= LONGEST_SECTION_ATOM &&
        SECTION_ATOMS.has(line.toString('latin1', start, i).toUpperCase())
      )
        break;
      i++;
    }
    if (i === start) throw invalidCharacter(line[i]);
    const value = line.toString('latin1', start, i);
    if (line[i] === LBRACKET) {
      const atom: AtomToken = { type: 'atom', value };
      this.#add(atom);
      this.#push({ kind: 'section', items: [], owner: atom });
      return i + 1;
    }
    this.#add(value.toUpperCase() === 'NIL' ? { type: 'nil' } : { type: 'atom', value });
    this.#separated = false;
    return i;
  }

  /** From the byte after the opening quote; returns the index after the closing one. */
  #quoted(line: Buffer, start: number): number {
    const bytes: number[] = [];
    for (let i = start; i < line.length; i++) {
      let c = line[i];
      if (c === DQUOTE) {
        this.#add({ type: 'string', value: Buffer.from(bytes), literal: false });
        this.#separated = false;
        return i + 1;
      }
      if (c === BACKSLASH) {
        c = line[++i];
        if (c !== DQUOTE && c !== BACKSLASH) throw new ImapSyntaxError('Invalid escape in quoted string');
      } else if (c === 0) {
        throw new ImapSyntaxError('NUL in quoted string');
      } else if (c === 0x0d) {
        throw new ImapSyntaxError('CR in quoted string');
      }
      bytes.push(c);
    }
    throw new ImapSyntaxError('Unterminated quoted string');
  }
}

function literalHeader(line: Buffer, start: number): LiteralHeader {
  const literal8 = line[start] === TILDE;
  const digits = start + (literal8 ? 2 : 1);
  let i = digits;
  while (i < line.length && isDigit(line[i])) i++;
  const size = i - digits;
  const sync = line[i] !== PLUS;
  if (!sync) i++;
  if (size === 0 || size > MAX_LITERAL_DIGITS || line[i] !== RBRACE)
    throw new ImapSyntaxError('Invalid literal');
  if (i + 1 !== line.length) throw new ImapSyntaxError('A literal must end its line');
  return { size: Number(line.toString('latin1', digits, digits + size)), sync, literal8 };
}

/** `<start.length>` of a partial fetch, between the angle brackets. */
function partial(line: Buffer, start: number, end: number): Partial {
  const dot = line.indexOf(DOT, start);
  if (dot < 0 || dot > end) throw new ImapSyntaxError('Invalid partial: expected <start.length>');
  const offset = number(line, start, dot);
  const length = number(line, dot + 1, end);
  if (length === 0) throw new ImapSyntaxError('Invalid partial: the length must not be 0');
  return { start: offset, length };
}

function number(line: Buffer, start: number, end: number): number {
  if (end === start || end - start > 10) throw new ImapSyntaxError('Invalid number');
  for (let i = start; i < end; i++) if (!isDigit(line[i])) throw new ImapSyntaxError('Invalid number');
  const value = Number(line.toString('latin1', start, end));
  if (value > MAX_NUMBER) throw new ImapSyntaxError('Number out of range');
  return value;
}

function invalidCharacter(c: number): ImapSyntaxError {
  return new ImapSyntaxError(`Invalid character 0x${c.toString(16).padStart(2, '0')}`);
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
