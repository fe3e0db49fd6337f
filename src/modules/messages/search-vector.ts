// The full-text vector of a message, built mostly here rather than by PostgreSQL's to_tsvector.
// to_tsvector('simple', …) costs about 1.5 ms for a 20 KB body on this machine's PostgreSQL (its parser
// walks every character through a state machine); at a thousand messages a second that alone would take
// both cores. Text that tokenises unambiguously (ASCII words separated by spaces and punctuation that the
// default parser always treats as a blank) is tokenised here into a tsvector in the binary format, which
// PostgreSQL takes without parsing (a literal was read six times faster than to_tsvector, and still cost
// 0.2 ms a message); everything else (addresses, URLs, paths, numbers with dots, hyphenated
// words, tags, any non-ASCII text) is left to to_tsvector itself. The pieces are concatenated in order
// (`||` shifts each piece's positions past the previous one's), which gives the same vector as
// to_tsvector over the whole text, with one difference: a word that occurs more than 255 times can keep
// a 256th position, where to_tsvector stops at 255.
//
// Which text is unambiguous was established by comparing this tokeniser with to_tsvector on random
// strings over the allowed characters (test/modules/messages/search-vector.test.ts keeps comparing, on both engines).
import { binaryArray } from '../../core/pg-binary.ts';

/**
 * One piece of a message's searchable text: a vector built here (in PostgreSQL's binary tsvector format,
 * which the server reads without parsing a literal), or text for to_tsvector.
 */
export type SearchPiece = { v: Uint8Array } | { t: string };

/** Characters the default parser always treats as separators, around ASCII letters and digits. */
const SEPARATORS = ' \t\r,;!?()[]{}"*=%#$^|`\'\\>';
const DOT = 46;
const HYPHEN = 45;
/**
 * A tsvector literal holds words of at most 2046 bytes while to_tsvector indexes 2047 and skips longer
 * ones: lines with such words are left to to_tsvector.
 */
const MAX_WORD = 2046;
/** The last position a tsvector records (MAXENTRYPOS - 1); later words share it. */
const MAX_POSITION = 16383;
/** Positions to_tsvector keeps per word. */
const MAX_POSITIONS = 255;

/** 1: ASCII letter or digit; 2: separator; 0: anything else. */
const CLASS = new Uint8Array(128);
for (let c = 48; c <= 57; c++) CLASS[c] = 1;
for (let c = 65; c <= 90; c++) CLASS[c] = 1;
for (let c = 97; c <= 122; c++) CLASS[c] = 1;
for (const ch of SEPARATORS) CLASS[ch.charCodeAt(0)] = 2;

const isWordChar = (c: number) => c < 128 && CLASS[c] === 1;
const lowerOf = (c: number) => (c >= 65 && c <= 90 ? c + 32 : c);
/** FNV-1a, kept to 30 bits: within V8's small-integer range, so a hash is never a boxed number. */
const FNV_BASIS = 0x011c9dc5;
const HASH_MASK = 0x3fffffff;
const FNV_PRIME = 0x01000193;

/**
 * The UTF-8 bytes of a text, viewed as a Buffer (no copy when they are bytes already). The tokeniser
 * works on bytes: every character it handles itself is ASCII, a line with any other byte goes to
 * to_tsvector whole, and lines end at an ASCII LF, so a line's bytes decode to that line's text.
 */
function bytesOf(text: string | Uint8Array): Buffer {
  return typeof text === 'string'
    ? Buffer.from(text)
    : Buffer.from(text.buffer, text.byteOffset, text.byteLength);
}

const LF = 10;
const LT = 60;
const GT = 62;

/** Words and their positions, as to_tsvector('simple', …) counts them, for safe lines of one text. */
class VectorBuilder {
  readonly #bytes: Buffer;
  /**
   * An open-addressing table of the words seen, by a hash computed while scanning: a word seen before
   * is found by comparing bytes in place, and a lexeme is kept as the place of its first
   * occurrence, so no word is copied out of the text.
   */
  #slots = new Int32Array(256).fill(-1);
  readonly #hashes: number[] = [];
  readonly #starts: number[] = [];
  readonly #lengths: number[] = [];
  readonly #positions: number[][] = [];
  #position = 0;
  /** The words of the line being scanned (start, end, hash), kept until the line proves safe. */
  #words = new Int32Array(3 * 256);

  constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }

  /**
   * Adds the words of the line [from, to) when it tokenises unambiguously: ASCII letters and digits,
   * separators, dots not followed by a letter, digit or dot (those start a host, file, decimal, version
   * or `..` token), and hyphens next to no letter or digit (those start a hyphenated word or a signed
   * number). Returns false, adding nothing, when it does not.
   */
  addLine(from: number, to: number): boolean {
    const bytes = this.#bytes;
    let count = 0;
    let start = -1;
    let hash = 0;
    for (let i = from; i < to; i++) {
      const c = bytes[i];
      if (c >= 128) return false;
      const kind = CLASS[c];
      if (kind === 1) {
        if (start < 0) {
          start = i;
          hash = FNV_BASIS;
        } else if (i - start >= MAX_WORD) return false;
        hash = Math.imul(hash ^ lowerOf(c), FNV_PRIME) & HASH_MASK;
        continue;
      }
      const afterWord = start >= 0;
      if (afterWord) {
        count = this.#keep(count, start, i, hash);
        start = -1;
      }
      if (kind === 2) continue;
      if (c === DOT) {
        const next = i + 1 < to ? bytes[i + 1] : 0;
        if (isWordChar(next) || next === DOT) return false;
      } else if (c === HYPHEN) {
        if (afterWord || (i + 1 < to && isWordChar(bytes[i + 1]))) return false;
      } else return false;
    }
    if (start >= 0) count = this.#keep(count, start, to, hash);
    const words = this.#words;
    for (let w = 0; w < count; w++) this.#count(words[3 * w], words[3 * w + 1], words[3 * w + 2]);
    return true;
  }

  #keep(count: number, start: number, end: number, hash: number): number {
    if (3 * count + 3 > this.#words.length) {
      const grown = new Int32Array(this.#words.length * 2);
      grown.set(this.#words);
      this.#words = grown;
    }
    this.#words[3 * count] = start;
    this.#words[3 * count + 1] = end;
    this.#words[3 * count + 2] = hash;
    return count + 1;
  }

  #count(start: number, end: number, hash: number): void {
    const at = Math.min(++this.#position, MAX_POSITION);
    const mask = this.#slots.length - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const index = this.#slots[slot];
      if (index < 0) {
        this.#slots[slot] = this.#starts.length;
        this.#hashes.push(hash);
        this.#starts.push(start);
        this.#lengths.push(end - start);
        this.#positions.push([at]);
        if (this.#starts.length * 2 > this.#slots.length) this.#grow();
        return;
      }
      if (this.#hashes[index] === hash && this.#same(index, start, end)) {
        const list = this.#positions[index];
        if (list.length < MAX_POSITIONS && list[list.length - 1] !== at) list.push(at);
        return;
      }
    }
  }

  /** Whether bytes[start, end), lower-cased, is lexeme `index`. */
  #same(index: number, start: number, end: number): boolean {
    const length = this.#lengths[index];
    if (length !== end - start) return false;
    const bytes = this.#bytes;
    const first = this.#starts[index];
    for (let i = 0; i < length; i++) {
      if (lowerOf(bytes[first + i]) !== lowerOf(bytes[start + i])) return false;
    }
    return true;
  }

  #grow(): void {
    const slots = new Int32Array(this.#slots.length * 2).fill(-1);
    const mask = slots.length - 1;
    this.#hashes.forEach((hash, index) => {
      let slot = hash & mask;
      while (slots[slot] >= 0) slot = (slot + 1) & mask;
      slots[slot] = index;
    });
    this.#slots = slots;
  }

  get empty(): boolean {
    return this.#position === 0;
  }

  /** Lexeme `index`, lower-cased (ASCII letters and digits only). */
  #lexeme(index: number): string {
    const first = this.#starts[index];
    return this.#bytes.toString('latin1', first, first + this.#lengths[index]).toLowerCase();
  }

  /**
   * The vector in tsvector's binary format (tsvectorsend): the number of lexemes, then each lexeme's
   * bytes with a terminating NUL, its number of positions and the positions (weight D), 16 bits each.
   */
  binary(): Buffer {
    const lexemes = this.#starts.length;
    let size = 4;
    for (let i = 0; i < lexemes; i++) size += this.#lengths[i] + 3 + 2 * this.#positions[i].length;
    const out = Buffer.allocUnsafe(size);
    const bytes = this.#bytes;
    let at = out.writeInt32BE(lexemes, 0);
    for (let i = 0; i < lexemes; i++) {
      const first = this.#starts[i];
      const length = this.#lengths[i];
      for (let k = 0; k < length; k++) out[at++] = lowerOf(bytes[first + k]);
      out[at++] = 0;
      const positions = this.#positions[i];
      at = out.writeUInt16BE(positions.length, at);
      for (const position of positions) at = out.writeUInt16BE(position, at);
    }
    return out;
  }

  literal(): string {
    let out = '';
    for (let i = 0; i < this.#starts.length; i++) {
      out += `${out ? ' ' : ''}'${this.#lexeme(i)}':${this.#positions[i].join(',')}`;
    }
    return out;
  }
}

/**
 * The pieces of `header` (subject, names, addresses: always to_tsvector, they hold addresses) and
 * `body`. Lines are tokenised here when safe; a region that may hold a tag (from the line of the first
 * `<` to the line of the last `>` after it, or to the end when there is none) goes to to_tsvector
 * whole, because a tag may span lines.
 */
export function searchPieces(header: string, text: string | Uint8Array): SearchPiece[] {
  const pieces: SearchPiece[] = [];
  if (header) pieces.push({ t: header });
  const body = bytesOf(text);
  let tagFrom = body.length;
  let tagTo = body.length;
  const firstLt = body.indexOf(LT);
  if (firstLt >= 0) {
    tagFrom = body.lastIndexOf(LF, firstLt) + 1;
    const lastGt = body.lastIndexOf(GT);
    const lineEnd = lastGt > firstLt ? body.indexOf(LF, lastGt) : -1;
    tagTo = lineEnd < 0 ? body.length : lineEnd;
  }
  let vector: VectorBuilder | null = null;
  let textFrom = -1;
  let textTo = -1;
  const flushVector = () => {
    if (vector && !vector.empty) pieces.push({ v: vector.binary() });
    vector = null;
  };
  const flushText = () => {
    if (textFrom >= 0) pieces.push({ t: body.toString('utf8', textFrom, textTo) });
    textFrom = -1;
  };
  for (let from = 0; from <= body.length; ) {
    const newline = body.indexOf(LF, from);
    const to = newline < 0 ? body.length : newline;
    const inTag = to >= tagFrom && from <= tagTo && firstLt >= 0;
    vector ??= new VectorBuilder(body);
    if (!inTag && vector.addLine(from, to)) {
      flushText();
    } else {
      flushVector();
      if (textFrom < 0) textFrom = from;
      textTo = to;
    }
    if (newline < 0) break;
    from = newline + 1;
  }
  flushVector();
  flushText();
  return pieces;
}

/** The tsvector literal to_tsvector('simple', text) gives text made of safe lines (for tests). */
export function vectorLiteral(text: string): string {
  const bytes = bytesOf(text);
  const vector = new VectorBuilder(bytes);
  for (let from = 0; from <= bytes.length; ) {
    const newline = bytes.indexOf(LF, from);
    const to = newline < 0 ? bytes.length : newline;
    if (!vector.addLine(from, to)) throw new Error('not a safe line');
    if (newline < 0) break;
    from = newline + 1;
  }
  return vector.literal();
}
/**
 * The pieces as SQL can take them: JSON in which each vector built here is replaced by its 1-based index
 * `i` into `vectors`, a tsvector[] parameter in PostgreSQL's binary array format.
 */
export function searchParameters(messages: SearchPiece[][]): { pieces: SearchRef[][]; vectors: Buffer } {
  const vectors: Uint8Array[] = [];
  const pieces = messages.map((list) =>
    list.map((p): SearchRef => ('v' in p ? { i: vectors.push(p.v) } : p)),
  );
  return { pieces, vectors: binaryArray(TSVECTOR_OID, vectors) };
}

export type SearchRef = { i: number } | { t: string };

const TSVECTOR_OID = 3614;

/**
 * SQL for the vector of the pieces in `column` (a jsonb array of SearchRef), for an UPDATE … FROM
 * jsonb_to_recordset, with `vectors` the SQL of the tsvector[] parameter. `mailroom_tsvector_agg`
 * concatenates in order (migration 0006).
 */
export const SEARCH_VECTOR_SQL = (column: string, vectors: string) => `(
  select coalesce(mailroom_tsvector_agg(
           case when p ? 'i' then (${vectors})[(p->>'i')::int] else to_tsvector('simple', p->>'t') end
           order by o),
         ''::tsvector)
    from jsonb_array_elements(${column}) with ordinality as x(p, o))`;
