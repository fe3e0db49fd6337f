// Person references: e-mail addresses, domains, and names ("Alice", "Alice Smith", "Carol's"), resolved
// against the people the user knows (case-insensitive full name, or first name when only one person has
// it). Whether a word is a name at all depends on where it stands; the grammar decides that and calls
// `nameAt` with how much evidence the position gives.
import { DATE_WORDS } from './dates.ts';
import {
  FUNCTION_WORDS,
  MAIL_NOUNS,
  NUMBER_WORDS,
  SELF_WORDS,
  SENTIMENT_WORDS,
  SUMMARY_WORDS,
} from './lexicon.ts';
import type { Token } from './tokens.ts';

export interface Directory {
  /** Lower-cased full name → address. */
  fullNames: Map<string, string>;
  /** Lower-cased first name → address, or null when several people share it. */
  firstNames: Map<string, string | null>;
  /** Longest known full name, in words. */
  longestName: number;
  /** The user's own addresses, lower-cased. */
  self: Set<string>;
}

export interface NameMatch {
  text: string;
  address?: string;
  /** The reference is the user (an own address). */
  self: boolean;
  known: boolean;
  /** Index of the first token after the name. */
  end: number;
  /** The last word carried 's. */
  possessive: boolean;
}

/**
 * The known people a request can mention: only those whose first name is one of the request's words
 * (every full name starts with its first name), so a long address book costs one pass of string
 * comparisons per request, not an index.
 */
export function directoryFor(
  knownPeople: Array<{ name: string; address: string }> = [],
  selfAddresses: string[] = [],
  requestWords: Set<string> = new Set(),
): Directory {
  const fullNames = new Map<string, string>();
  const firstNames = new Map<string, string | null>();
  let longestName = 1;
  for (const person of knownPeople) {
    const name = person.name.trim().toLowerCase();
    const space = name.search(/\s/);
    const first = space === -1 ? name : name.slice(0, space);
    if (!requestWords.has(first)) continue;
    const parts = name.split(/\s+/);
    const address = person.address.trim().toLowerCase();
    fullNames.set(parts.join(' '), address);
    longestName = Math.max(longestName, parts.length);
    const seen = firstNames.get(first);
    firstNames.set(first, seen === undefined || seen === address ? address : null);
  }
  return { fullNames, firstNames, longestName, self: new Set(selfAddresses.map((a) => a.toLowerCase())) };
}

/** Words that are never a name by themselves. */
const NOT_NAMES = new Set([
  ...FUNCTION_WORDS,
  ...MAIL_NOUNS,
  ...DATE_WORDS,
  ...SENTIMENT_WORDS,
  ...SUMMARY_WORDS,
  ...NUMBER_WORDS,
  ...['inbox', 'spam', 'junk', 'trash', 'drafts', 'draft', 'archive', 'folder', 'label', 'attachment'],
  ...['attachments', 'unread', 'flagged', 'starred', 'senders', 'sender', 'day', 'volume', 'time', 'times'],
  ...['weekday', 'weekdays', 'date', 'size', 'domain', 'domains', 'hour', 'hours', 'email', 'subject'],
  ...['subject', 'topic', 'regarding', 'concerning', 'mentioning', 'containing', 're', 'tldr', 'top'],
  ...['average', 'stats', 'statistics', 'daily', 'weekly', 'monthly', 'busiest', 'frequent', 'reply'],
  ...['respond', 'answer', 'draft', 'compose', 'write', 'saying', 'everyone', 'anyone', 'catch', 'recap'],
]);

export function canBeName(t: Token | undefined): boolean {
  return t !== undefined && t.kind === 'word' && !NOT_NAMES.has(t.lower) && /^\p{L}/u.test(t.text);
}

function knownNameAt(tokens: readonly Token[], i: number, dir: Directory): NameMatch | null {
  for (let len = Math.min(dir.longestName, tokens.length - i); len >= 1; len--) {
    const slice = tokens.slice(i, i + len);
    if (slice.some((t) => t.kind !== 'word')) continue;
    // A possessive may only end the name.
    if (slice.slice(0, -1).some((t) => t.possessive)) continue;
    const key = slice.map((t) => t.lower).join(' ');
    const address = len === 1 ? (dir.fullNames.get(key) ?? dir.firstNames.get(key)) : dir.fullNames.get(key);
    if (address === undefined) continue;
    return {
      text: slice.map((t) => t.text).join(' '),
      address: address ?? undefined,
      self: false,
      known: true,
      end: i + len,
      possessive: slice[len - 1].possessive,
    };
  }
  return null;
}

/**
 * A person reference starting at token i. `loose` (after "from", "to", "with") lets any word that is
 * not a known word class be a name, so "from alice" works in lower case; otherwise a name must be known
 * or capitalised.
 */
export function nameAt(
  tokens: readonly Token[],
  i: number,
  dir: Directory,
  loose: boolean,
): NameMatch | null {
  const t = tokens[i];
  if (!t) return null;
  if (t.kind === 'email') {
    const address = t.lower;
    return { text: t.text, address, self: dir.self.has(address), known: true, end: i + 1, possessive: false };
  }
  if (t.kind === 'domain') {
    return { text: t.text, address: t.lower, self: false, known: true, end: i + 1, possessive: false };
  }
  if (t.kind !== 'word') return null;
  const known = knownNameAt(tokens, i, dir);
  if (known) return known;
  if (!canBeName(t) || SELF_WORDS.has(t.lower)) return null;
  if (!t.capitalized && !loose) return null;
  // A capitalised name runs on over capitalised words: "Alice Smith", "Mary Ann Jones".
  let end = i + 1;
  if (t.capitalized && !t.possessive) {
    while (end < i + 3 && tokens[end]?.capitalized && canBeName(tokens[end])) {
      end++;
      if (tokens[end - 1].possessive) break;
    }
  }
  const slice = tokens.slice(i, end);
  const text = slice.map((s) => s.text).join(' ');
  const address = dir.fullNames.get(text.toLowerCase());
  return {
    text,
    address,
    self: false,
    known: address !== undefined,
    end,
    possessive: slice[slice.length - 1].possessive,
  };
}
