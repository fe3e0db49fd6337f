// RFC 5322 address lists (From, To, Cc, …) as the IMAP envelope gives them (RFC 3501 7.4.2): each
// address as (name, source route, mailbox, host), a group as a start marker carrying its name and an
// end marker. Names stay as written (encoded words are the client's to decode), only unquoted. Broken
// addresses are kept rather than dropped, with Dovecot's stand-in names (MISSING_MAILBOX, MISSING_DOMAIN) for what is missing.

/** [name, adl (source route), mailbox, host]; host null starts a group named by mailbox; all null ends it. */
export type Address = [name: string | null, adl: string | null, mailbox: string | null, host: string | null];

interface Token {
  kind: 'word' | 'quoted' | 'comment' | 'special';
  text: string;
}

const MISSING_MAILBOX = 'MISSING_MAILBOX';
const MISSING_DOMAIN = 'MISSING_DOMAIN';
const GROUP_END: Address = [null, null, null, null];
const SPECIALS = new Set(['<', '>', '@', ',', ';', ':']);
/** Where a word stops: blanks, specials and the starts of quoted strings, comments and domain literals. */
const WORD_END = /[\s<>@,;:"(]/g;

/** The addresses of a header value, in order; empty when there are none. */
export function parseAddressList(text: string): Address[] {
  const addresses: Address[] = [];
  let current: Token[] = [];
  let inGroup = false;
  let inAngle = false;
  const flush = () => {
    const address = mailboxOf(current);
    if (address) addresses.push(address);
    current = [];
  };
  for (const token of tokenize(text)) {
    const special = token.kind === 'special' ? token.text : '';
    if (inAngle) {
      // A source route's `,` and `:` belong to the address: `<@relay,@relay2:user@host>`.
      current.push(token);
      if (special === '>') inAngle = false;
    } else if (special === ':' && !inGroup) {
      addresses.push([null, null, joinPhrase(current), null]);
      current = [];
      inGroup = true;
    } else if (special === ',' || special === ';') {
      flush();
      if (special === ';' && inGroup) {
        addresses.push(GROUP_END);
        inGroup = false;
      }
    } else {
      if (special === '<') inAngle = true;
      current.push(token);
    }
  }
  flush();
  if (inGroup) addresses.push(GROUP_END);
  return addresses;
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const char = text[i];
    if (char === ' ' || char === '\t' || char === '\r' || char === '\n') i++;
    else if (char === '"') i = readQuoted(text, i, tokens);
    else if (char === '(') i = readComment(text, i, tokens);
    else if (SPECIALS.has(char)) {
      tokens.push({ kind: 'special', text: char });
      i++;
    } else i = readWord(text, i, tokens);
  }
  return tokens;
}

/** A quoted string, its quoted-pairs undone; an unterminated one runs to the end. */
function readQuoted(text: string, start: number, tokens: Token[]): number {
  let value = '';
  let i = start + 1;
  for (; i < text.length && text[i] !== '"'; i++) {
    if (text[i] === '\\' && i + 1 < text.length) i++;
    value += text[i];
  }
  tokens.push({ kind: 'quoted', text: value });
  return i + 1;
}

/** A comment, which may nest; its text is kept as a name for `user@host (Name)`. */
function readComment(text: string, start: number, tokens: Token[]): number {
  let value = '';
  let depth = 0;
  let i = start;
  for (; i < text.length; i++) {
    const char = text[i];
    if (char === '\\' && i + 1 < text.length) {
      value += text[++i];
      continue;
    }
    if (char === '(' && ++depth === 1) continue;
    if (char === ')' && --depth === 0) break;
    value += char;
  }
  tokens.push({ kind: 'comment', text: value.trim() });
  return i + 1;
}

/** An atom or dot-atom, or a domain literal `[…]` with the blanks in it. */
function readWord(text: string, start: number, tokens: Token[]): number {
  let end: number;
  if (text[start] === '[') {
    const close = text.indexOf(']', start);
    end = close === -1 ? text.length : close + 1;
  } else {
    WORD_END.lastIndex = start + 1;
    const stop = WORD_END.exec(text);
    end = stop ? stop.index : text.length;
  }
  tokens.push({ kind: 'word', text: text.slice(start, end) });
  return end;
}

/** One address from the tokens between two commas. */
function mailboxOf(tokens: Token[]): Address | null {
  const open = tokens.findIndex((token) => isSpecial(token, '<'));
  if (open !== -1) {
    const close = tokens.findIndex((token, i) => i > open && isSpecial(token, '>'));
    const inside = tokens.slice(open + 1, close === -1 ? tokens.length : close).filter(notComment);
    return angleAddress(joinPhrase(tokens.slice(0, open)) || null, inside);
  }
  const words = tokens.filter(notComment);
  if (words.length === 0) return null;
  // `user@host (Name)`: with no phrase, a comment is the best name there is (as Dovecot does).
  const name = tokens.findLast((token) => token.kind === 'comment' && token.text !== '')?.text ?? null;
  if (words.some((token) => isSpecial(token, '@'))) return filled([name, null, ...addrSpec(words)]);
  // No `@`: a single word is taken as a mailbox, several as a name.
  if (words.length === 1) return filled([name, null, words[0].text, null]);
  return filled([joinPhrase(words), null, null, null]);
}

/** `<[@route,@route:]local@domain>`. */
function angleAddress(name: string | null, inside: Token[]): Address {
  const colon = inside.findIndex((token) => isSpecial(token, ':'));
  if (colon !== -1 && isSpecial(inside[0], '@')) {
    const route = inside
      .slice(0, colon)
      .map((token) => token.text)
      .join('');
    return filled([name, route, ...addrSpec(inside.slice(colon + 1))]);
  }
  return filled([name, null, ...addrSpec(inside)]);
}

/** [local part, domain] around the last `@`. */
function addrSpec(tokens: Token[]): [string | null, string | null] {
  const at = tokens.findLastIndex((token) => isSpecial(token, '@'));
  if (at === -1) return [joinText(tokens), null];
  return [joinText(tokens.slice(0, at)), joinText(tokens.slice(at + 1))];
}

/** An address with Dovecot's stand-in names for a missing mailbox or host (a NIL host would mean a group). */
function filled([name, adl, mailbox, host]: Address): Address {
  return [name, adl, mailbox || MISSING_MAILBOX, host || MISSING_DOMAIN];
}

/** Words joined by single spaces; specials (an unquoted `@` in a name) stay attached. */
function joinPhrase(tokens: Token[]): string {
  let phrase = '';
  let previousWord = false;
  for (const token of tokens) {
    if (token.kind === 'comment') continue;
    const word = token.kind !== 'special';
    if (word && previousWord) phrase += ' ';
    phrase += token.text;
    previousWord = word;
  }
  return phrase;
}

function joinText(tokens: Token[]): string {
  return tokens.map((token) => token.text).join('');
}

function isSpecial(token: Token | undefined, char: string): boolean {
  return token?.kind === 'special' && token.text === char;
}

function notComment(token: Token): boolean {
  return token.kind !== 'comment';
}
