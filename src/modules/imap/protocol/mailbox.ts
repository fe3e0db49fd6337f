// Mailbox names between the wire and the server: modified UTF-7 or UTF-8 (after ENABLE UTF8=ACCEPT),
// INBOX in any case, LIST patterns, and quoting strings for responses.
import { atom, decodeUtf8, isAtomText } from './args.ts';
import { ImapSyntaxError } from './errors.ts';
import { decodeModifiedUtf7, encodeModifiedUtf7 } from './modified-utf7.ts';
import type { Token } from './parser.ts';

const DELIMITER = '/';
const CONTROL = /\p{Cc}/u;
const QUOTABLE_ASCII = /^[\x20-\x7e]*$/;
const UNQUOTABLE = /[\r\n]/;

/**
 * A mailbox name (or LIST reference or pattern) as the client wrote it: an atom, quoted string or literal;
 * modified UTF-7 unless the client enabled UTF8=ACCEPT. INBOX is case-insensitive and comes back as
 * "INBOX", and so does the INBOX of "inbox/child".
 */
export function decodeMailboxName(token: Token, utf8: boolean): string {
  const name = utf8 ? utf8Name(token) : modifiedUtf7Name(token);
  if (CONTROL.test(name)) throw new ImapSyntaxError('Control characters in mailbox name');
  return normaliseInbox(name);
}

/** A mailbox name as it goes on the wire: an atom, a quoted string or a literal. */
export function encodeMailboxName(name: string, utf8: boolean): string {
  return quoteAString(utf8 ? name : encodeModifiedUtf7(name), utf8);
}

/**
 * A string for a response: an atom when it can be one, else quoted, else a literal (`{n}\r\n...`) for
 * CR, LF or NUL, which a quoted string cannot hold, and for 8-bit text unless the client enabled UTF8=ACCEPT.
 */
export function quoteAString(text: string, utf8 = false): string {
  if (isAtomText(text, true) && text.toUpperCase() !== 'NIL') return text;
  if (!UNQUOTABLE.test(text) && !text.includes('\0') && (utf8 || QUOTABLE_ASCII.test(text))) {
    return `"${text.replace(/["\\]/g, '\\$&')}"`;
  }
  return `{${Buffer.byteLength(text)}}\r\n${text}`;
}

/**
 * A LIST matcher for names with the reference joined to the pattern (RFC 3501 6.3.8): `*` matches anything,
 * `%` anything but the hierarchy delimiter. Matching walks the pattern as a set of positions, so a pattern
 * like `*a*a*a*b` cannot make it backtrack for long.
 */
export function listPatternMatcher(
  reference: string,
  pattern: string,
  delimiter = DELIMITER,
): (name: string) => boolean {
  const joined =
    reference.endsWith(delimiter) && pattern.startsWith(delimiter)
      ? reference + pattern.slice(1)
      : reference + pattern;
  const glob = Array.from(normaliseInbox(joined, delimiter));
  return (name) => globMatches(glob, Array.from(name), delimiter);
}

function utf8Name(token: Token): string {
  return token.type === 'string' ? decodeUtf8(token.value) : wordName(token);
}

function modifiedUtf7Name(token: Token): string {
  if (token.type !== 'string') return decodeModifiedUtf7(wordName(token));
  // Without UTF8=ACCEPT names are 7-bit: 8-bit bytes must have been modified UTF-7.
  if (token.value.some((byte) => byte > 0x7f))
    throw new ImapSyntaxError('Mailbox name must be modified UTF-7');
  return decodeModifiedUtf7(token.value.toString('latin1'));
}

function wordName(token: Token): string {
  return token.type === 'nil' ? 'NIL' : atom(token, 'mailbox name');
}

function normaliseInbox(name: string, delimiter = DELIMITER): string {
  const inbox = name.slice(0, 5).toUpperCase() === 'INBOX';
  if (inbox && (name.length === 5 || name.startsWith(delimiter, 5))) return `INBOX${name.slice(5)}`;
  return name;
}

/** Simulates the pattern as an automaton: `states[i]` says the first i pattern characters can match so far. */
function globMatches(glob: string[], name: string[], delimiter: string): boolean {
  let states = closure(glob, new Set([0]));
  for (const char of name) {
    const next = new Set<number>();
    for (const i of states) {
      const p = glob[i];
      if (p === '*' || (p === '%' && char !== delimiter)) next.add(i);
      else if (p === char) next.add(i + 1);
    }
    if (next.size === 0) return false;
    states = closure(glob, next);
  }
  return states.has(glob.length);
}

/** Adds the positions reachable by letting wildcards match nothing. */
function closure(glob: string[], states: Set<number>): Set<number> {
  for (const i of states) if (glob[i] === '*' || glob[i] === '%') states.add(i + 1);
  return states;
}
