// Message flags as STORE and APPEND take them: the system flags (spelled as RFC 3501 does, whatever case
// the client used) and keywords, which are atoms.
import { atom, isAtomText, list } from './args.ts';
import { ImapSyntaxError, printable } from './errors.ts';
import type { Token } from './parser.ts';

const SYSTEM_FLAGS = new Map(
  ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft'].map((flag) => [flag.toUpperCase(), flag]),
);

/** A parenthesised flag list: `(\Seen $Forwarded)`. */
export function parseFlagList(token: Token): string[] {
  return parseFlags(list(token, 'flags'));
}

/** Flags, each once (keywords compare case-insensitively; the first spelling is kept). */
export function parseFlags(tokens: Token[]): string[] {
  const flags = new Map<string, string>();
  for (const flag of tokens.map(parseFlag)) {
    const key = flag.toUpperCase();
    if (!flags.has(key)) flags.set(key, flag);
  }
  return [...flags.values()];
}

/** One flag that may be stored; `\Recent` belongs to the server alone. */
export function parseFlag(token: Token): string {
  const value = atom(token, 'flag');
  if (!value.startsWith('\\')) return keyword(value);
  const flag = SYSTEM_FLAGS.get(value.toUpperCase());
  if (flag) return flag;
  if (value.toUpperCase() === '\\RECENT') throw new ImapSyntaxError('\\Recent cannot be set');
  throw new ImapSyntaxError(`Unknown flag ${printable(value)}`);
}

/** A keyword (SEARCH KEYWORD / UNKEYWORD): an atom, never a system flag. */
export function parseKeyword(token: Token): string {
  return keyword(atom(token, 'keyword'));
}

function keyword(value: string): string {
  if (!isAtomText(value)) throw new ImapSyntaxError(`Invalid keyword ${printable(value)}`);
  return value;
}
