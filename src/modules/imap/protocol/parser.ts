// The streaming IMAP command reader: bytes in, commands (or the reasons they were refused) out.
//
// A command is a line, or several lines with literals between them: `A1 LOGIN {5}\r\nalice {6}\r\nsecret\r\n`.
// Lines are read up to LF (CRLF or bare LF) and tokenized whole; literal bytes are counted off as they come.
// Everything held is bounded by the limits: a line by maxLineBytes, a literal by maxLiteralBytes, the
// command by maxCommandBytes. A broken command is answered once (an error event) and its remaining lines
// and literals are skipped, so the next command parses normally.
import { ImapSyntaxError } from './errors.ts';
import { type LiteralHeader, type Token, Tokenizer } from './tokenizer.ts';

export interface ParserLimits {
  /** One line of a command, without literals and the line end (e.g. 64 KiB); longer: BAD, the line is skipped. */
  maxLineBytes: number;
  /** One literal (the APPENDLIMIT). */
  maxLiteralBytes: number;
  /** A whole command including its literals (e.g. maxLiteralBytes + 1 MiB). */
  maxCommandBytes: number;
  /** Nesting of parenthesised lists and sections (e.g. 16). */
  maxDepth: number;
  /** Tokens per command; 10 000 when not given. */
  maxTokens?: number;
}

export type { Token };

export interface Command {
  tag: string;
  /** Upper-cased; for `UID FETCH` it is `FETCH` with `uid` set. */
  name: string;
  uid: boolean;
  args: Token[];
  /** The command's size on the wire, line ends and literals included. */
  bytes: number;
}

export type ParserEvent =
  | { kind: 'command'; command: Command }
  /** Answer `<tag|*> BAD <message>`; parsing carries on with the next command. */
  | { kind: 'error'; tag: string | null; message: string }
  /** A synchronising literal within the limits was announced: send `+ <text>\r\n`. */
  | { kind: 'continue'; text: string }
  /**
   * A synchronising literal over the limits: answer `<tag> NO [TOOBIG] <message>` (RFC 7889) and send no
   * "+". The client drops the command without sending the literal; parsing goes on with the next line.
   */
  | { kind: 'literal-refused'; tag: string | null; message: string }
  /** The raw line asked for with `expectLine()`, without its line end. */
  | { kind: 'line'; line: string };

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const DEFAULT_MAX_TOKENS = 10_000;
const CONTINUE_TEXT = 'Ready for literal data';
/** Bytes kept from the start of an over-long line, to find its tag. */
const HEAD_BYTES = 64;
/** Bytes kept from the end of an over-long line, to find a literal it announces. */
const TAIL_BYTES = 32;
const INITIAL_LINE_CAPACITY = 256;
/** A line buffer grown past this is dropped after its line, so idle connections stay small. */
const RETAINED_LINE_CAPACITY = 8192;

// Tag bytes: ASTRING-CHAR except "+" (RFC 3501 tag), i.e. printable ASCII but ( ) { % * " \ +.
const TAG_CHARS = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) TAG_CHARS[c] = 1;
for (const c of '(){%*"\\+') TAG_CHARS[c.charCodeAt(0)] = 0;

const TRAILING_LITERAL = /~?\{(\d{1,19})(\+?)\}\r?$/;

/** A line as read: its bytes, or for one over the line limit only its head and tail. */
type ReadLine = { text: Buffer; size: number } | { text: null; head: Buffer; tail: Buffer; size: number };

interface PendingCommand {
  tag: string | null;
  tokenizer: Tokenizer;
  bytes: number;
  /** Answered with an error already: its remaining lines and literals are skipped. */
  failed: boolean;
}

interface PendingLiteral {
  remaining: number;
  literal8: boolean;
  /** The bytes so far; null for a literal that is skipped. */
  chunks: Buffer[] | null;
}

export class CommandParser {
  readonly #limits: Required<ParserLimits>;
  readonly #line: LineBuffer;
  #command: PendingCommand | null = null;
  #literal: PendingLiteral | null = null;
  #expectLine = false;

  constructor(limits: ParserLimits) {
    this.#limits = { maxTokens: DEFAULT_MAX_TOKENS, ...limits };
    this.#line = new LineBuffer(limits.maxLineBytes);
  }

  /**
   * Raises or lowers the literal and command limits from the next literal on (a server allows large
   * literals only once the client has logged in). The line limit stays as constructed.
   */
  setLimits(limits: Pick<ParserLimits, 'maxLiteralBytes' | 'maxCommandBytes'>): void {
    Object.assign(this.#limits, limits);
  }

  /** Feeds bytes; returns the events they complete, in order. Never throws. */
  push(chunk: Buffer): ParserEvent[] {
    const events: ParserEvent[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      offset = this.#literal
        ? this.#readLiteral(chunk, offset, events)
        : this.#readLine(chunk, offset, events);
    }
    return events;
  }

  /**
   * For AUTHENTICATE continuations and IDLE's DONE: the next line is returned raw as a `line` event (or an
   * error when it is over the line limit) instead of being parsed as a command. Bytes pushed before this
   * call have been parsed already, which is right: clients wait for the server's "+" before sending them.
   */
  expectLine(): void {
    this.#expectLine = true;
  }

  #readLine(chunk: Buffer, offset: number, events: ParserEvent[]): number {
    const lf = chunk.indexOf(LF, offset);
    this.#line.append(chunk.subarray(offset, lf < 0 ? chunk.length : lf));
    if (lf < 0) return chunk.length;
    const line = this.#line.take();
    if (this.#command) this.#continueCommand(line, events);
    else if (this.#expectLine) this.#rawLine(line, events);
    else this.#startCommand(line, events);
    return lf + 1;
  }

  #readLiteral(chunk: Buffer, offset: number, events: ParserEvent[]): number {
    const literal = this.#literal!;
    const n = Math.min(literal.remaining, chunk.length - offset);
    // Views, not copies: they are joined (copied) once the literal is complete.
    literal.chunks?.push(chunk.subarray(offset, offset + n));
    literal.remaining -= n;
    this.#command!.bytes += n;
    if (literal.remaining === 0) this.#endLiteral(events);
    return offset + n;
  }

  #rawLine(line: ReadLine, events: ParserEvent[]): void {
    this.#expectLine = false;
    events.push(
      line.text
        ? { kind: 'line', line: line.text.toString('utf8') }
        : { kind: 'error', tag: null, message: 'Line too long' },
    );
  }

  #startCommand(line: ReadLine, events: ParserEvent[]): void {
    if (line.text?.length === 0) return;
    const text = line.text ?? line.head;
    const space = text.indexOf(SP);
    // An over-long line keeps only its head: without a space in it, the tag may be cut short.
    const tagEnd = space < 0 && line.text ? text.length : space;
    const tag = tagEnd > 0 && isTag(text.subarray(0, tagEnd)) ? text.toString('latin1', 0, tagEnd) : null;
    const { maxDepth, maxTokens } = this.#limits;
    this.#command = { tag, tokenizer: new Tokenizer({ maxDepth, maxTokens }), bytes: 0, failed: false };
    if (line.text === null) this.#fail(line, events, 'Line too long');
    else if (tag === null) this.#fail(line, events, space === 0 ? 'Missing tag' : 'Invalid tag');
    else if (space < 0) this.#fail(line, events, 'Missing command name');
    else this.#continueCommand(line, events, space + 1);
  }

  /** A line of the pending command; `start` skips the tag of its first line. */
  #continueCommand(line: ReadLine, events: ParserEvent[], start = 0): void {
    const command = this.#command!;
    command.bytes += line.size;
    if (command.failed) this.#skipRest(line);
    else if (line.text === null) this.#fail(line, events, 'Line too long');
    else if (command.bytes > this.#limits.maxCommandBytes) this.#fail(line, events, 'Command too long');
    else this.#parseLine(line, line.text.subarray(start), start > 0, events);
  }

  #parseLine(line: ReadLine, text: Buffer, first: boolean, events: ParserEvent[]): void {
    const command = this.#command!;
    try {
      const literal = command.tokenizer.line(text);
      // Checked before a literal is taken: a command without a name gets no "+".
      if (first) commandName(command.tokenizer.items);
      if (literal) this.#announce(literal, line, events);
      else this.#complete(events);
    } catch (error) {
      if (!(error instanceof ImapSyntaxError)) throw error;
      this.#fail(line, events, error.message);
    }
  }

  #announce(literal: LiteralHeader, line: ReadLine, events: ParserEvent[]): void {
    const command = this.#command!;
    const tooBig =
      literal.size > this.#limits.maxLiteralBytes ||
      command.bytes + literal.size > this.#limits.maxCommandBytes;
    if (tooBig && literal.sync) {
      events.push({ kind: 'literal-refused', tag: command.tag, message: 'Literal is too large' });
      this.#command = null;
      return;
    }
    if (tooBig) {
      // A non-synchronising literal is on its way regardless: it is read and dropped (see #skipRest).
      this.#fail(line, events, '[TOOBIG] Literal is too large');
      return;
    }
    if (literal.sync) events.push({ kind: 'continue', text: CONTINUE_TEXT });
    this.#literal = { remaining: literal.size, literal8: literal.literal8, chunks: [] };
    if (literal.size === 0) this.#endLiteral(events);
  }

  #endLiteral(events: ParserEvent[]): void {
    const { chunks, literal8 } = this.#literal!;
    this.#literal = null;
    if (!chunks) return;
    const command = this.#command!;
    try {
      command.tokenizer.literal(Buffer.concat(chunks), literal8);
    } catch (error) {
      if (!(error instanceof ImapSyntaxError)) throw error;
      // The command's next line is still to come; being failed, it is skipped.
      this.#reject(events, error.message);
    }
  }

  #complete(events: ParserEvent[]): void {
    const command = this.#command!;
    const tokens = command.tokenizer.finish();
    const { name, uid, args } = commandName(tokens);
    this.#command = null;
    events.push({
      kind: 'command',
      command: { tag: command.tag!, name, uid, args: tokens.slice(args), bytes: command.bytes },
    });
  }

  #fail(line: ReadLine, events: ParserEvent[], message: string): void {
    this.#reject(events, message);
    this.#skipRest(line);
  }

  #reject(events: ParserEvent[], message: string): void {
    const command = this.#command!;
    command.failed = true;
    events.push({ kind: 'error', tag: command.tag, message });
  }

  /**
   * After a line of a failed command: a non-synchronising literal at its end is coming anyway and is
   * skipped, and so is the rest of the command after it. Anything else ends the command: the client does
   * not send a synchronising literal that got no "+".
   */
  #skipRest(line: ReadLine): void {
    const literal = trailingLiteral(line.text ?? line.tail);
    if (literal && !literal.sync) this.#literal = { remaining: literal.size, literal8: false, chunks: null };
    else this.#command = null;
  }
}

/** The command name (after `UID`, if that comes first) and where the arguments start. */
function commandName(tokens: readonly Token[]): { name: string; uid: boolean; args: number } {
  const first = nameAt(tokens, 0);
  if (first !== 'UID') return { name: first, uid: false, args: 1 };
  return { name: nameAt(tokens, 1), uid: true, args: 2 };
}

function nameAt(tokens: readonly Token[], index: number): string {
  const token = tokens[index];
  if (!token) throw new ImapSyntaxError('Missing command name');
  if (token.type !== 'atom' || token.section) throw new ImapSyntaxError('Invalid command name');
  return token.value.toUpperCase();
}

function isTag(bytes: Buffer): boolean {
  for (const c of bytes) if (!TAG_CHARS[c]) return false;
  return bytes.length > 0;
}

function trailingLiteral(bytes: Buffer): LiteralHeader | null {
  const match = TRAILING_LITERAL.exec(bytes.toString('latin1', Math.max(0, bytes.length - TAIL_BYTES)));
  return match ? { size: Number(match[1]), sync: match[2] === '', literal8: false } : null;
}

/**
 * The bytes of the line being read, up to the line limit (plus a CR before the LF). Past it only the
 * line's head (for the tag) and tail (for a literal it announces) are kept.
 */
class LineBuffer {
  readonly #max: number;
  #buffer = Buffer.allocUnsafe(INITIAL_LINE_CAPACITY);
  #length = 0;
  #size = 0;
  #head: Buffer | null = null;
  #tail: Buffer = Buffer.alloc(0);

  constructor(maxLineBytes: number) {
    this.#max = maxLineBytes;
  }

  append(bytes: Buffer): void {
    this.#size += bytes.length;
    if (this.#head === null && this.#length + bytes.length <= this.#max + 1) {
      this.#reserve(this.#length + bytes.length);
      this.#length += bytes.copy(this.#buffer, this.#length);
      return;
    }
    if (this.#head === null) this.#overflow(bytes);
    this.#tail = lastBytes(Buffer.concat([this.#tail, bytes.subarray(-TAIL_BYTES)]));
  }

  /** The line read (without CR LF), and resets for the next one. */
  take(): ReadLine {
    const size = this.#size + 1;
    const read = this.#read(size);
    this.#length = 0;
    this.#size = 0;
    this.#head = null;
    this.#tail = Buffer.alloc(0);
    if (this.#buffer.length > RETAINED_LINE_CAPACITY)
      this.#buffer = Buffer.allocUnsafe(INITIAL_LINE_CAPACITY);
    return read;
  }

  #read(size: number): ReadLine {
    if (this.#head) return { text: null, head: this.#head, tail: this.#tail, size };
    const end = this.#length > 0 && this.#buffer[this.#length - 1] === CR ? this.#length - 1 : this.#length;
    const text = this.#buffer.subarray(0, end);
    if (end <= this.#max) return { text, size };
    // One byte over: the allowance for a CR was taken by a line without one.
    return { text: null, head: Buffer.from(text.subarray(0, HEAD_BYTES)), tail: lastBytes(text), size };
  }

  /** Keeps the head and tail of what was read so far, and drops the rest. */
  #overflow(bytes: Buffer): void {
    const kept = this.#buffer.subarray(0, this.#length);
    this.#head = Buffer.concat([kept.subarray(0, HEAD_BYTES), bytes.subarray(0, HEAD_BYTES)]).subarray(
      0,
      HEAD_BYTES,
    );
    this.#tail = lastBytes(kept);
    this.#buffer = Buffer.allocUnsafe(INITIAL_LINE_CAPACITY);
    this.#length = 0;
  }

  #reserve(needed: number): void {
    if (needed <= this.#buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.min(Math.max(needed, this.#buffer.length * 2), this.#max + 1));
    this.#buffer.copy(grown, 0, 0, this.#length);
    this.#buffer = grown;
  }
}

function lastBytes(bytes: Buffer): Buffer {
  return Buffer.from(bytes.subarray(-TAIL_BYTES));
}
