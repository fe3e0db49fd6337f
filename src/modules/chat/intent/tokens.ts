// The tokenizer under the request grammar: words (with possessives split off), numbers and ordinals,
// e-mail addresses, domains, ISO dates, quoted strings and punctuation, each with its place in the text
// so that constituents can quote what the user typed.

export type TokenKind =
  | 'word'
  | 'number'
  | 'ordinal'
  | 'email'
  | 'domain'
  | 'isoDate'
  | 'numericDate'
  | 'quoted'
  | 'punct';

export interface Token {
  kind: TokenKind;
  /** As typed; for a quoted string, the text inside the quotes; for a possessive, without the 's. */
  text: string;
  /** Lower-cased text, curly apostrophes made straight. */
  lower: string;
  /** Offsets of the whole token in the request, quotes and possessive included. */
  start: number;
  end: number;
  capitalized: boolean;
  /** "Carol's", "yesterday's": the word carried a possessive 's (contractions such as "it's" do not). */
  possessive: boolean;
  /** Numbers and ordinals: their value. */
  value?: number;
}

// Contractions that end in 's but are not possessives.
const CONTRACTIONS = new Set([
  "it's",
  "what's",
  "that's",
  "he's",
  "she's",
  "there's",
  "here's",
  "who's",
  "let's",
  "where's",
  "how's",
  "when's",
  "why's",
  "everyone's",
  "everything's",
  "nothing's",
  "one's",
]);

// Endings that make "report.pdf" a file name rather than a domain.
const FILE_EXTENSIONS = new Set([
  'pdf',
  'doc',
  'docx',
  'xls',
  'xlsx',
  'ppt',
  'pptx',
  'txt',
  'csv',
  'zip',
  'png',
  'jpg',
  'jpeg',
  'gif',
  'ics',
  'eml',
  'html',
  'json',
  'xml',
  'mp3',
  'mp4',
]);

const EMAIL = /[\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)*\.\p{L}{2,}/uy;
const ISO_DATE = /\d{4}-\d{2}-\d{2}(?![\p{L}\p{N}])/uy;
const NUMERIC_DATE = /\d{1,2}\/\d{1,2}(?:\/(?:\d{4}|\d{2}))?(?![\p{L}\p{N}/])/uy;
const DOMAIN = /(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?\.)+\p{L}{2,}(?![\p{L}\p{N}@])/uy;
const TLDR = /tl;?dr\b/iy;
// A hyphenated part must start with a letter, so that "3-5 June" is a range of numbers.
const WORD = /[\p{L}\p{N}]+(?:['’][\p{L}]+)*(?:-\p{L}[\p{L}\p{N}]*)*['’]?/uy;
const SPACE = /\s+/y;
const QUOTES: Record<string, string> = { '"': '"', '“': '”', '‘': '’', "'": "'", '«': '»' };

function at(re: RegExp, text: string, i: number): string | null {
  re.lastIndex = i;
  const m = re.exec(text);
  return m ? m[0] : null;
}

function isWordChar(ch: string | undefined): boolean {
  return ch !== undefined && /[\p{L}\p{N}]/u.test(ch);
}

/** A quote opens at the start or after a space or bracket, and closes before a non-letter. */
function quotedAt(text: string, i: number): { inner: string; end: number } | null {
  const close = QUOTES[text[i]];
  if (!close) return null;
  if (i > 0 && isWordChar(text[i - 1])) return null;
  let j = text.indexOf(close, i + 1);
  while (j !== -1 && isWordChar(text[j + 1])) j = text.indexOf(close, j + 1);
  if (j === -1) return null;
  const inner = text.slice(i + 1, j);
  if (inner.trim() === '' || /^\s/.test(inner)) return null;
  return { inner, end: j + 1 };
}

function isCapitalized(s: string): boolean {
  return /^\p{Lu}/u.test(s);
}

function wordToken(raw: string, start: number): Token {
  const straight = raw.replace(/’/g, "'");
  const lowerRaw = straight.toLowerCase();
  let text = straight;
  let possessive = false;
  if (/'s$/i.test(straight) && !CONTRACTIONS.has(lowerRaw)) {
    text = straight.slice(0, -2);
    possessive = true;
  } else if (/s'$/i.test(straight)) {
    text = straight.slice(0, -1);
    possessive = true;
  } else if (straight.endsWith("'")) {
    text = straight.slice(0, -1);
  }
  const lower = text.toLowerCase();
  const base = { text, lower, start, end: start + raw.length, capitalized: isCapitalized(text), possessive };
  if (/^\d+$/.test(text)) return { kind: 'number', ...base, value: Number(text) };
  const ordinal = /^(\d+)(st|nd|rd|th)$/.exec(lower);
  if (ordinal) return { kind: 'ordinal', ...base, value: Number(ordinal[1]) };
  return { kind: 'word', ...base };
}

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const space = at(SPACE, text, i);
    if (space) {
      i += space.length;
      continue;
    }
    const quoted = quotedAt(text, i);
    if (quoted) {
      tokens.push({
        kind: 'quoted',
        text: quoted.inner,
        lower: quoted.inner.toLowerCase(),
        start: i,
        end: quoted.end,
        capitalized: isCapitalized(quoted.inner),
        possessive: false,
      });
      i = quoted.end;
      continue;
    }
    const email = at(EMAIL, text, i);
    if (email && !isWordChar(text[i - 1])) {
      tokens.push(plain('email', email, i));
      i += email.length;
      continue;
    }
    const iso = at(ISO_DATE, text, i);
    if (iso) {
      tokens.push(plain('isoDate', iso, i));
      i += iso.length;
      continue;
    }
    const numeric = at(NUMERIC_DATE, text, i);
    if (numeric) {
      tokens.push(plain('numericDate', numeric, i));
      i += numeric.length;
      continue;
    }
    // "@acme.com" is the domain too.
    const atSign = text[i] === '@' && !isWordChar(text[i - 1]) ? 1 : 0;
    const domain = at(DOMAIN, text, i + atSign);
    if (domain && !FILE_EXTENSIONS.has(domain.slice(domain.lastIndexOf('.') + 1).toLowerCase())) {
      tokens.push({ ...plain('domain', domain, i + atSign), start: i });
      i += atSign + domain.length;
      continue;
    }
    const tldr = at(TLDR, text, i);
    if (tldr) {
      tokens.push({ ...plain('word', tldr, i), lower: 'tldr' });
      i += tldr.length;
      continue;
    }
    const word = at(WORD, text, i);
    if (word) {
      tokens.push(wordToken(word, i));
      i += word.length;
      continue;
    }
    tokens.push(plain('punct', text[i], i));
    i += 1;
  }
  return tokens;
}

function plain(kind: TokenKind, raw: string, start: number): Token {
  return {
    kind,
    text: raw,
    lower: raw.toLowerCase(),
    start,
    end: start + raw.length,
    capitalized: isCapitalized(raw),
    possessive: false,
  };
}
