// Named things in a message body. People and organisations are found with compromise's built-in model: its
// lexicon of first names, surnames, organisations, honorifics and places and its list of words that end
// organisation names ("… Bank", "… Foundation"), applied to runs of capitalised words. compromise's full
// tagger is not run: it takes ~8 ms for 800 characters on this hardware, five times the budget for all the
// analysers of a message together. Dates, amounts, phones, links and addresses are patterns.
import nlp from 'compromise';
import {
  GAP_AMPERSAND,
  GAP_CLAUSE,
  GAP_LINE,
  GAP_SENTENCE,
  maskLinksAndAddresses,
  type ScannedWord,
  scanWords,
} from './text.ts';

export interface DateEntity {
  text: string;
  /** ISO 8601 (YYYY-MM-DD, or YYYY-MM for a month) when the text and the reference date determine it. */
  iso?: string;
}

export interface AmountEntity {
  text: string;
  value: number;
  /** ISO 4217 code; '$' alone is read as USD. */
  currency?: string;
}

export interface Entities {
  people: string[];
  organizations: string[];
  dates: DateEntity[];
  amounts: AmountEntity[];
  /** E.164 (+14155550132) for international and North American numbers; national numbers as written. */
  phones: string[];
  links: string[];
  /** Lower-cased. */
  emails: string[];
}

export interface EntityOptions {
  /** The message's date: resolves "tomorrow", "Friday" and dates written without a year. */
  referenceDate?: Date;
  /** Read 03/04/2025 as 3 April (Europe) rather than March 4 (United States, the default). */
  dayFirst?: boolean;
}

// ---------------------------------------------------------------------------------------------------------
// compromise's model

interface CompromiseModel {
  one: { lexicon: Record<string, string | string[]> };
  two: { orgWords: Record<string, boolean> };
}
const model = nlp.model() as unknown as CompromiseModel;
const lexicon = model.one.lexicon;
const orgWords = model.two.orgWords;

function hasTag(word: string, tag: string): boolean {
  const tags = lexicon[word];
  return tags === undefined ? false : typeof tags === 'string' ? tags === tag : tags.includes(tag);
}

function hasTagIn(word: string, set: ReadonlySet<string>): boolean {
  const tags = lexicon[word];
  if (tags === undefined) return false;
  if (typeof tags === 'string') return set.has(tags);
  return tags.some((tag) => set.has(tag));
}

const NAME_TAGS = new Set(['MaleName', 'FemaleName', 'FirstName']);
const PLACE_TAGS = new Set(['City', 'Country', 'Region', 'Place']);
// Legal forms and words that end an organisation's name, beyond compromise's own list.
const ORG_SUFFIXES = new Set([
  'inc',
  'ltd',
  'llc',
  'llp',
  'lp',
  'plc',
  'gmbh',
  'ag',
  'kg',
  'ug',
  'se',
  'sa',
  'sas',
  'sarl',
  'srl',
  'spa',
  'bv',
  'nv',
  'oy',
  'ab',
  'as',
  'asa',
  'pty',
  'corp',
  'corporation',
  'company',
  'limited',
  'holdings',
  'technologies',
  'labs',
  'analytics',
  'logistics',
  'solutions',
  'systems',
  'software',
  'partners',
  'ventures',
  'consulting',
  'studios',
  'bank',
]);
const ORG_CONNECTORS = new Set(['of', 'for', 'de', 'du', 'des', 'la', 'van', 'von', 'der']);
const HONORIFICS = new Set([
  'mr',
  'mrs',
  'ms',
  'miss',
  'dr',
  'prof',
  'sir',
  'dame',
  'herr',
  'frau',
  'mme',
  'sra',
]);
const GREETINGS = new Set([
  'hi',
  'hello',
  'hey',
  'dear',
  'hallo',
  'liebe',
  'lieber',
  'bonjour',
  'salut',
  'hola',
  'ciao',
  'hej',
  'hoi',
  'morning',
  'thanks',
]);
const MONTH_NAMES: Record<string, number> = {};
const MONTH_LISTS = [
  'january february march april may june july august september october november december',
  'jan feb mar apr may jun jul aug sep oct nov dec',
  'januar februar märz april mai juni juli august september oktober november dezember',
  'janvier février mars avril mai juin juillet août septembre octobre novembre décembre',
  'enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre',
];
for (const list of MONTH_LISTS) {
  list.split(' ').forEach((name, index) => {
    MONTH_NAMES[name] ??= index + 1;
  });
}
MONTH_NAMES['sept'] = 9;
MONTH_NAMES['jänner'] = 1;
MONTH_NAMES['setiembre'] = 9;
const WEEKDAYS: Record<string, number> = {
  sunday: 0,
  monday: 1,
  tuesday: 2,
  wednesday: 3,
  thursday: 4,
  friday: 5,
  saturday: 6,
};

// ---------------------------------------------------------------------------------------------------------
// People and organisations

interface WordToken {
  text: string;
  lower: string;
  allCaps: boolean;
  capitalised: boolean;
  /** First word of a sentence, a line or after a colon: its capital says nothing. */
  sentenceStart: boolean;
  /** Written "X & Y": the word after the ampersand. */
  afterAmpersand: boolean;
}

function isUpperCaseLetter(text: string): boolean {
  const code = text.charCodeAt(0);
  if (code < 128) return code >= 65 && code <= 90;
  const first = text[0]!;
  return first !== first.toLowerCase();
}

/**
 * Capitalised runs: proper-noun candidates. Words in a run are separated by spaces only (or "&", or the
 * full stop of "Dr." and initials); lower-case connectors ("Bank of England") stay when a capital follows.
 */
function capitalisedRuns(text: string, words: ScannedWord[]): WordToken[][] {
  const runs: WordToken[][] = [];
  let run: WordToken[] = [];
  const flush = () => {
    while (run.length > 0 && !run[run.length - 1]!.capitalised) run.pop();
    if (run.length > 0) runs.push(run);
    run = [];
  };
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    let joined = word.gap === 0 || word.gap === GAP_AMPERSAND;
    if (!joined && run.length > 0 && word.gap & GAP_SENTENCE) {
      // "Dr. Ahmed", "J. R. Smith": the full stop of a title or an initial does not end the run.
      const previous = run[run.length - 1]!;
      const between = text.slice(words[i - 1]!.start + words[i - 1]!.text.length, word.start);
      if (/^\.\s+$/.test(between) && (HONORIFICS.has(previous.lower) || previous.text.length === 1))
        joined = true;
    }
    if (run.length > 0 && !joined) flush();
    if (isUpperCaseLetter(word.text)) {
      const bare =
        word.text.endsWith("'s") || word.text.endsWith('\u2019s') ? word.text.slice(0, -2) : word.text;
      let sentenceStart = (word.gap & (GAP_SENTENCE | GAP_LINE)) !== 0 && !joined;
      if (!sentenceStart && word.gap & GAP_CLAUSE) {
        const before = text.slice(Math.max(0, word.start - 3), word.start).trimEnd();
        sentenceStart = before.endsWith(':');
      }
      run.push({
        text: bare,
        lower: bare === word.text ? word.lower : word.lower.slice(0, -2),
        allCaps: bare.length >= 2 && bare === bare.toUpperCase(),
        capitalised: true,
        sentenceStart,
        afterAmpersand: word.gap === GAP_AMPERSAND,
      });
    } else if (run.length > 0 && word.text.length <= 3 && ORG_CONNECTORS.has(word.text)) {
      run.push({
        text: word.text,
        lower: word.text,
        allCaps: false,
        capitalised: false,
        sentenceStart: false,
        afterAmpersand: false,
      });
    } else if (run.length > 0) {
      flush();
    }
  }
  flush();
  return runs;
}

const isFirstName = (token: WordToken) => hasTagIn(token.lower, NAME_TAGS);
const isPlaceOrTime = (word: string) => word in MONTH_NAMES || word in WEEKDAYS || hasTagIn(word, PLACE_TAGS);
const NAME_OR_ORGANIZATION_TAGS = new Set([...NAME_TAGS, 'LastName', 'Person', 'Organization']);
/** A word the lexicon knows as something other than a name: "Thanks", "The", "Could". */
function isCommonWord(token: WordToken): boolean {
  if (lexicon[token.lower] === undefined) return GREETINGS.has(token.lower);
  return !hasTagIn(token.lower, NAME_OR_ORGANIZATION_TAGS);
}
const surface = (tokens: WordToken[]) =>
  tokens.map((t, i) => (t.afterAmpersand && i > 0 ? `& ${t.text}` : t.text)).join(' ');

/** The longest span of up to four words (the earliest among equals) that the lexicon gives this tag. */
function lexiconSpan(run: WordToken[], tag: string): [number, number] | null {
  let best: [number, number] | null = null;
  for (let start = 0; start < run.length; start++) {
    let key = '';
    for (let end = start; end < run.length && end < start + 4; end++) {
      const token = run[end]!;
      key = end === start ? token.lower : `${key} ${token.afterAmpersand ? '& ' : ''}${token.lower}`;
      // A lone legal form ("Ltd") is not a name; a lone capitalised word opening a sentence may be any word.
      if (
        end === start &&
        tag === 'Organization' &&
        (ORG_SUFFIXES.has(key) || (token.sentenceStart && !token.allCaps))
      ) {
        continue;
      }
      if (hasTag(key, tag) && (best === null || end + 1 - start > best[1] - best[0])) best = [start, end + 1];
    }
  }
  return best;
}

function classifyRun(run: WordToken[], people: string[], organizations: string[]): void {
  // Most runs are one capitalised word the lexicon does not know (German nouns, product names) or knows as
  // an ordinary word ("The", "Please"): nothing.
  if (run.length === 1 && (lexicon[run[0]!.lower] === undefined || isCommonWord(run[0]!))) return;
  const organization = lexiconSpan(run, 'Organization');
  if (organization) {
    organizations.push(surface(run.slice(...organization)));
    return;
  }
  const famous = lexiconSpan(run, 'Person');
  if (famous && famous[1] - famous[0] > 1) {
    people.push(surface(run.slice(...famous)));
    return;
  }
  // "Dr Ahmed", "Mrs. Patterson", "Herr Dr. Jürgen Weber": whatever follows a title is a name.
  const title = run.findIndex((t, i) => HONORIFICS.has(t.lower) && run[i + 1]?.capitalised);
  if (title !== -1) {
    const name: WordToken[] = [];
    for (const next of run.slice(title + 1, title + 4)) {
      if (HONORIFICS.has(next.lower)) continue;
      if (!next.capitalised || isPlaceOrTime(next.lower)) break;
      name.push(next);
    }
    if (name.length >= 2) people.push(surface(name));
    else if (name.length === 1) people.push(`${run[title]!.text} ${name[0]!.text}`);
    return;
  }
  // An organisation ends in a legal form or an organisation word ("Moves & More GmbH", "Deutsche Bank");
  // all its words count, ordinary ones too, except a sentence-initial word the lexicon knows ("Contact").
  const last = run[run.length - 1]!.lower;
  if (ORG_SUFFIXES.has(last) || orgWords[last]) {
    const from = (run[0]!.sentenceStart || GREETINGS.has(run[0]!.lower)) && isCommonWord(run[0]!) ? 1 : 0;
    if (run.length - from >= 2) {
      organizations.push(surface(run.slice(from)));
      return;
    }
  }
  // Words the lexicon knows as ordinary words ("Thanks", "Please", "The") are not part of a person's name.
  let start = 0;
  while (start < run.length && (isCommonWord(run[start]!) || !run[start]!.capitalised)) start++;
  const trimmed = run.slice(start);
  if (trimmed.length === 0) return;
  const first = trimmed[0]!;
  if (isFirstName(first) && !isPlaceOrTime(first.lower)) {
    // Ambiguous first names ("Mark", "Bill") need to be mid-sentence or followed by a surname.
    const ambiguous = hasTag(first.lower, 'FirstName');
    const name = [first];
    for (const next of trimmed.slice(1, 4)) {
      if (isPlaceOrTime(next.lower) || isCommonWord(next) || !next.capitalised) break;
      name.push(next);
    }
    if (!ambiguous || !first.sentenceStart || name.length > 1) people.push(surface(name));
    return;
  }
  const lastOfName = trimmed[trimmed.length - 1]!.lower;
  // "Priya Raman", "Kenji Watanabe": an unknown word then a known surname, mid-sentence.
  if (trimmed.length >= 2 && trimmed.length <= 3 && hasTag(lastOfName, 'LastName') && !first.sentenceStart) {
    if (!trimmed.some((t) => isPlaceOrTime(t.lower))) people.push(surface(trimmed));
  }
}

/** "Hi Priya," / "Dear Dr Ahmed," / "Hallo Jürgen": the greeted name, whatever the lexicon knows of it. */
const GREETING =
  /\s*(?:hi|hello|hey|dear|hallo|liebe|lieber|bonjour|salut|hola|ciao|hej|hoi|good morning)\s+((?:(?:mr|mrs|ms|dr|prof|herr|frau)\.?\s+)?\p{Lu}[\p{L}'’-]+(?:\s+\p{Lu}[\p{L}'’-]+)?)\s*[,!\n]/iuy;

function greetedNames(text: string): string[] {
  const names: string[] = [];
  // Greetings open a paragraph: the pattern is tried at paragraph starts only.
  for (let at = 0; at < text.length; ) {
    GREETING.lastIndex = at;
    const match = GREETING.exec(text);
    const next = text.indexOf('\n', at);
    at = next === -1 ? text.length : next + 1;
    if (match === null) continue;
    const name = match[1]!.replace(/^(?:mr|mrs|ms|dr|prof|herr|frau)\.?\s+(?=\S+\s+\S)/i, '');
    const words = name.split(/\s+/).map((w) => w.toLowerCase());
    if (words.some((w) => GREETINGS.has(w) || w === 'all' || w === 'team' || w === 'everyone')) continue;
    names.push(name);
  }
  return names;
}

function dedupeNames(names: string[]): string[] {
  const seen = new Map<string, string>();
  for (const name of names) if (!seen.has(name.toLowerCase())) seen.set(name.toLowerCase(), name);
  const all = [...seen.values()];
  // "Helen" adds nothing once "Helen Ortiz" is known.
  return all.filter(
    (name) =>
      !all.some(
        (other) =>
          other !== name &&
          other.length > name.length &&
          (` ${other.toLowerCase()} `.includes(` ${name.toLowerCase()} `) ||
            other.toLowerCase().startsWith(`${name.toLowerCase()} `)),
      ),
  );
}

export function extractNames(
  text: string,
  words: ScannedWord[] = scanWords(text),
): { people: string[]; organizations: string[] } {
  const people: string[] = greetedNames(text);
  const organizations: string[] = [];
  for (const run of capitalisedRuns(text, words)) classifyRun(run, people, organizations);
  const organizationsDeduped = dedupeNames(organizations);
  const orgKeys = new Set(organizationsDeduped.map((o) => o.toLowerCase()));
  return {
    people: dedupeNames(people).filter((p) => !orgKeys.has(p.toLowerCase())),
    organizations: organizationsDeduped,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Links and addresses

const URL = /\b(?:https?:\/\/|www\.)[^\s<>"'`{}|\\^]+/gi;
const EMAIL = /(?<![\w.+-])[\w.+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b/gi;

function trimUrl(url: string): string {
  let trimmed = url.replace(/[.,;:!?'"*]+$/, '');
  // A closing bracket belongs to the URL only when the URL opened one: "(see https://x.org/a)".
  while (/[)\]]$/.test(trimmed)) {
    const close = trimmed.at(-1)!;
    const open = close === ')' ? '(' : '[';
    if (trimmed.split(open).length >= trimmed.split(close).length) break;
    trimmed = trimmed.slice(0, -1).replace(/[.,;:!?]+$/, '');
  }
  return trimmed;
}

export function extractLinks(text: string): string[] {
  if (!text.includes('://') && !text.includes('www.')) return [];
  const links = new Set<string>();
  for (const match of text.matchAll(URL)) links.add(trimUrl(match[0]));
  return [...links];
}

export function extractEmails(text: string): string[] {
  if (!text.includes('@')) return [];
  const emails = new Set<string>();
  for (const match of text.matchAll(EMAIL)) emails.add(match[0].toLowerCase().replace(/^[.]+|[.]+$/g, ''));
  return [...emails];
}

// ---------------------------------------------------------------------------------------------------------
// Phone numbers

// "+44 20 7946 0958", "+1 (415) 555-0132", "+49 (0)30 123456-78", "+33 6 12 34 56 78"
const INTERNATIONAL_PHONE =
  /(?<![\w+])\+\d{1,3}(?:[ .\-\u00a0]?\(0\))?(?:[ .\-\u00a0]?\(?\d{1,5}\)?){1,6}(?!\w)/g;
// "(415) 555-0132", "415-555-0132", "415.555.0132", "1-800-555-0199": the exchange and line are separated.
const NANP_PHONE =
  /(?<![\w+.-])(?:1[ .-])?(?:\([2-9]\d{2}\)[ .-]?|[2-9]\d{2}[ .-])[2-9]\d{2}[ .-]\d{4}(?![\w-])/g;
// "030 1234567", "020 7946 0958", "06 12 34 56 78": national numbers, accepted after a phone label
// ("Tel.", "Mobile:", "T:") only.
const NATIONAL_PHONE = /(?<![\w+.,/-])0\d{1,4}(?:[ /.-]?\d{2,8}){1,4}(?![\w-])/g;
const PHONE_LABEL_BEFORE =
  /(?<!\p{L})(?:tel|phone|mobile|mob|cell|fax|call|ph|telefon|handy|tél|téléphone|portable|teléfono|móvil|t|m)\.?\s*:?\s*$/iu;

function digitsOf(text: string): string {
  return text.replace(/\(0\)/, '').replace(/\D/g, '');
}

export function extractPhones(text: string): string[] {
  if (!/\d/.test(text)) return [];
  const phones = new Map<string, { phone: string; at: number }>();
  const taken: Array<[number, number]> = [];
  const overlaps = (start: number, end: number) => taken.some(([s, e]) => start < e && end > s);
  for (const match of text.includes('+') ? text.matchAll(INTERNATIONAL_PHONE) : []) {
    const digits = digitsOf(match[0]);
    if (digits.length < 8 || digits.length > 15) continue;
    taken.push([match.index, match.index + match[0].length]);
    if (!phones.has(digits)) phones.set(digits, { phone: `+${digits}`, at: match.index });
  }
  for (const match of text.matchAll(NANP_PHONE)) {
    if (overlaps(match.index, match.index + match[0].length)) continue;
    const digits = digitsOf(match[0]).replace(/^1(?=\d{10}$)/, '');
    taken.push([match.index, match.index + match[0].length]);
    if (!phones.has(`1${digits}`)) phones.set(`1${digits}`, { phone: `+1${digits}`, at: match.index });
  }
  for (const match of text.matchAll(NATIONAL_PHONE)) {
    const number = match[0];
    const start = match.index;
    if (overlaps(start, start + number.length)) continue;
    if (!PHONE_LABEL_BEFORE.test(text.slice(Math.max(0, start - 14), start))) continue;
    const digits = digitsOf(number);
    if (digits.length < 7 || digits.length > 12) continue;
    if (!phones.has(digits)) phones.set(digits, { phone: number.trim(), at: start });
  }
  return [...phones.values()].sort((a, b) => a.at - b.at).map((p) => p.phone);
}

// ---------------------------------------------------------------------------------------------------------
// Amounts

const CURRENCY_CODES =
  'USD|EUR|GBP|JPY|CHF|CAD|AUD|NZD|CNY|HKD|SGD|INR|SEK|NOK|DKK|PLN|CZK|HUF|RON|BGN|BRL|MXN|ZAR|TRY|RUB|KRW|AED|ILS';
const SYMBOLS: Record<string, string> = {
  $: 'USD',
  us$: 'USD',
  usd$: 'USD',
  c$: 'CAD',
  ca$: 'CAD',
  a$: 'AUD',
  au$: 'AUD',
  nz$: 'NZD',
  hk$: 'HKD',
  s$: 'SGD',
  r$: 'BRL',
  '€': 'EUR',
  '£': 'GBP',
  '¥': 'JPY',
  '₹': 'INR',
  '₩': 'KRW',
  '₺': 'TRY',
  zł: 'PLN',
  euro: 'EUR',
  euros: 'EUR',
  dollar: 'USD',
  dollars: 'USD',
  pound: 'GBP',
  pounds: 'GBP',
};
const NUMBER = String.raw`\d{1,3}(?:[,.'’]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?`;
// Thin and no-break spaces group thousands in French and German: "1 234,56 €".
const SPACED_NUMBER = String.raw`\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?:,\d{1,2})?`;
const MULTIPLIER = String.raw`(?:\s?(k|K|m|M|bn|thousand|million|billion|Mio|Mrd)\b)?`;
const PREFIX_SYMBOL = String.raw`(?:US|USD|C|CA|A|AU|NZ|HK|S|R)?\$|€|£|¥|₹|₩|₺|\b(?:${CURRENCY_CODES})\b`;
const SUFFIX_SYMBOL = String.raw`€|£|\$|zł|\b(?:${CURRENCY_CODES}|[Ee]uros?|[Dd]ollars?|[Pp]ounds?)\b`;
// Case matters: "try 5 times" is not five Turkish lira.
const PREFIX_AMOUNT = new RegExp(String.raw`(${PREFIX_SYMBOL})\s?(${NUMBER})${MULTIPLIER}`, 'g');
const SUFFIX_AMOUNT = new RegExp(
  String.raw`(?<![\w.,])(${SPACED_NUMBER}|${NUMBER})${MULTIPLIER}\s?(${SUFFIX_SYMBOL})`,
  'g',
);
const MULTIPLIERS: Record<string, number> = {
  k: 1e3,
  K: 1e3,
  M: 1e6,
  Mio: 1e6,
  Mrd: 1e9,
  thousand: 1e3,
  m: 1e6,
  million: 1e6,
  bn: 1e9,
  billion: 1e9,
};

/** "1,234.56", "1.234,56", "1 234,56", "1'234.50", "12,50", "1,234": the separators decide. */
export function parseAmount(text: string): number {
  const compact = text.replace(/[ \u00a0\u202f'’]/g, '');
  const lastComma = compact.lastIndexOf(',');
  const lastDot = compact.lastIndexOf('.');
  let normalised: string;
  if (lastComma !== -1 && lastDot !== -1) {
    // Both appear: the later one is the decimal separator.
    normalised =
      lastComma > lastDot ? compact.replace(/\./g, '').replace(',', '.') : compact.replace(/,/g, '');
  } else {
    const separator = lastComma !== -1 ? ',' : lastDot !== -1 ? '.' : null;
    if (separator === null) return Number(compact);
    const groups = compact.split(separator);
    // One separator followed by exactly three digits, or several separators: thousands.
    const thousands = groups.length > 2 || groups[1]!.length === 3;
    normalised = thousands ? groups.join('') : groups.join('.');
  }
  return Number(normalised);
}

function currencyOf(symbol: string): string {
  const key = symbol.toLowerCase();
  return SYMBOLS[key] ?? symbol.toUpperCase();
}

const CURRENCY_SIGN = /[$€£¥₹₩₺]|zł/g;
const CURRENCY_CODE_SET = new Set(CURRENCY_CODES.split('|'));
const CURRENCY_WORDS = new Set(['euro', 'euros', 'Euro', 'Euros', 'dollar', 'dollars', 'Dollar', 'Dollars']);
for (const word of ['pound', 'pounds', 'Pound', 'Pounds']) CURRENCY_WORDS.add(word);
const CURRENCY_INITIALS = new Set([...CURRENCY_WORDS].map((word) => word.charCodeAt(0)));

export function extractAmounts(text: string, words: ScannedWord[] = scanWords(text)): AmountEntity[] {
  // Amounts are only looked for next to a currency sign, code or word.
  const markers: number[] = [];
  for (const match of text.matchAll(CURRENCY_SIGN)) markers.push(match.index);
  for (const word of words) {
    const first = word.text.charCodeAt(0);
    const length = word.text.length;
    if (
      length === 3
        ? CURRENCY_CODE_SET.has(word.text)
        : length >= 4 && length <= 7 && CURRENCY_INITIALS.has(first)
    ) {
      if (length === 3 || CURRENCY_WORDS.has(word.text)) markers.push(word.start);
    }
  }
  if (markers.length === 0) return [];
  const windows = windowsAround(text, markers, 28, 36);
  const amounts: Array<AmountEntity & { at: number }> = [];
  const taken: Array<[number, number]> = [];
  const add = (at: number, raw: string, number: string, multiplier: string | undefined, symbol: string) => {
    if (taken.some(([s, e]) => at < e && at + raw.length > s)) return;
    taken.push([at, at + raw.length]);
    const value = parseAmount(number) * (multiplier ? (MULTIPLIERS[multiplier] ?? 1) : 1);
    if (Number.isFinite(value)) amounts.push({ text: raw.trim(), value, currency: currencyOf(symbol), at });
  };
  for (const { match: m, at } of matchesIn(PREFIX_AMOUNT, text, windows)) add(at, m[0], m[2]!, m[3], m[1]!);
  for (const { match: m, at } of matchesIn(SUFFIX_AMOUNT, text, windows)) add(at, m[0], m[1]!, m[2], m[3]!);
  amounts.sort((a, b) => a.at - b.at);
  const seen = new Set<string>();
  const out: AmountEntity[] = [];
  for (const { at: _at, ...amount } of amounts) {
    const key = `${amount.value}|${amount.currency}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(amount);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Dates

const WEEKDAY =
  'monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun';
const ORDINAL = String.raw`(?:st|nd|rd|th|er|\.)?`;
// Tried where a number starts (sticky), not across the whole text.
const ISO_DATE = /(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2}))?\b/y;
const NUMERIC_DATE = /(\d{1,2})([./])(\d{1,2})\2(\d{4}|\d{2})\b/y;
// After a month name: " 3rd, 2025", " 2025". What stands before it is read from the words.
const WEEKDAY_WORDS = new Set(WEEKDAY.split('|'));
const DAY_WORD = /^(\d{1,2})(?:st|nd|rd|th|er)?$/i;
const YEAR_AFTER_DAY_MONTH = /^\.?(?:,?\s+(?:de\s+)?(\d{4}))?(?![\p{L}\d])/u;
const DAY_AFTER_MONTH = new RegExp(
  String.raw`^\.?\s+(\d{1,2})${ORDINAL}(?:,?\s+(\d{4}))?(?![\p{L}\d:])`,
  'u',
);
const YEAR_AFTER_MONTH = /^\.?\s+(\d{4})(?!\d)/;

const pad = (n: number) => String(n).padStart(2, '0');
const isoDay = (y: number, m: number, d: number) => `${y}-${pad(m)}-${pad(d)}`;

function validDay(y: number, m: number, d: number): boolean {
  if (m < 1 || m > 12 || d < 1) return false;
  return d <= new Date(Date.UTC(y, m, 0)).getUTCDate();
}

/** For a date written without a year: the year that puts it closest to the reference date. */
function nearestYear(month: number, day: number, reference: Date): number {
  const year = reference.getUTCFullYear();
  const candidates = [year - 1, year, year + 1];
  let best = year;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const y of candidates) {
    const distance = Math.abs(Date.UTC(y, month - 1, day) - reference.getTime());
    if (distance < bestDistance) {
      bestDistance = distance;
      best = y;
    }
  }
  return best;
}

function addDays(reference: Date, days: number): string {
  const d = new Date(
    Date.UTC(reference.getUTCFullYear(), reference.getUTCMonth(), reference.getUTCDate() + days),
  );
  return isoDay(d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate());
}

function resolveRelative(phrase: string, reference: Date): string | undefined {
  const p = phrase.toLowerCase().replace(/\s+/g, ' ');
  if (p === 'today') return addDays(reference, 0);
  if (p === 'tomorrow') return addDays(reference, 1);
  if (p === 'yesterday') return addDays(reference, -1);
  if (p === 'the day after tomorrow') return addDays(reference, 2);
  const [qualifier, dayName] = p.includes(' ') ? (p.split(' ') as [string, string]) : ['', p];
  const target = WEEKDAYS[dayName]!;
  const today = reference.getUTCDay();
  let delta = (target - today + 7) % 7;
  if (qualifier === 'last') delta = delta === 0 ? -7 : delta - 7;
  else if (qualifier === 'next' && delta === 0) delta = 7;
  return addDays(reference, delta);
}

function twoDigitYear(year: string): number {
  const y = Number(year);
  return year.length === 2 ? 2000 + y : y;
}

/**
 * Regions of `text` around the given positions, merged where they overlap and widened to whole words: the
 * long date and amount patterns run only there, instead of at every position of the text.
 */
function windowsAround(
  text: string,
  positions: number[],
  before: number,
  after: number,
): Array<[number, number]> {
  const windows: Array<[number, number]> = [];
  for (const position of positions.sort((a, b) => a - b)) {
    let start = Math.max(0, position - before);
    while (
      start > 0 &&
      start < position &&
      text.charCodeAt(start - 1) !== 32 &&
      text.charCodeAt(start - 1) !== 10
    ) {
      start++;
    }
    const end = Math.min(text.length, position + after);
    const last = windows[windows.length - 1];
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else windows.push([start, end]);
  }
  return windows;
}

function* matchesIn(pattern: RegExp, text: string, windows: Array<[number, number]>) {
  for (const [start, end] of windows) {
    for (const match of text.slice(start, end).matchAll(pattern)) yield { match, at: start + match.index };
  }
}

// Month and day words as they are written (lower case, capitalised, capitals): no lower-casing per word.
const casings = (word: string) => [word, word.charAt(0).toUpperCase() + word.slice(1), word.toUpperCase()];
const MONTH_FORMS = new Map(
  Object.entries(MONTH_NAMES).flatMap(([name, month]) => casings(name).map((form) => [form, month] as const)),
);
/** First letter and length of each month and day word: most words are ruled out without a string lookup. */
const DATE_WORD_SHAPES = new Set(
  [...Object.keys(MONTH_NAMES), 'today', 'tomorrow', 'yesterday', ...Object.keys(WEEKDAYS)].map(
    (w) => w.charCodeAt(0) * 16 + w.length,
  ),
);
const RELATIVE_FORMS = new Set(['today', 'tomorrow', 'yesterday', ...Object.keys(WEEKDAYS)].flatMap(casings));

export function extractDates(
  text: string,
  options: EntityOptions = {},
  words: ScannedWord[] = scanWords(text),
): DateEntity[] {
  const found: Array<DateEntity & { at: number }> = [];
  const taken: Array<[number, number]> = [];
  const reference = options.referenceDate;
  const add = (at: number, raw: string, iso: string | undefined) => {
    const end = at + raw.length;
    if (taken.some(([s, e]) => at < e && end > s)) return;
    taken.push([at, end]);
    found.push(iso ? { text: raw.trim(), iso, at } : { text: raw.trim(), at });
  };
  // One pass over the words finds where dates can start: numbers, month names, day names.
  const months: number[] = [];
  const relative: number[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const length = word.text.length;
    const first = word.text.charCodeAt(0);
    if (first >= 48 && first <= 57) {
      if (length >= 4 && text.charCodeAt(word.start + 4) === 45) {
        ISO_DATE.lastIndex = word.start;
        const m = ISO_DATE.exec(text);
        const [y, mo, d] = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [0, 0, 0];
        if (m && validDay(y, mo, d)) {
          add(word.start, m[0], m[4] ? `${isoDay(y, mo, d)}T${m[4]}:${m[5]}` : isoDay(y, mo, d));
        }
      } else if (length <= 2) {
        NUMERIC_DATE.lastIndex = word.start;
        const m = NUMERIC_DATE.exec(text);
        if (m) {
          const a = Number(m[1]);
          const b = Number(m[3]);
          const year = twoDigitYear(m[4]!);
          // Dots are European (day first); slashes follow the option, unless the first part can't be a month.
          const dayFirst = m[2] === '.' || options.dayFirst === true || a > 12;
          const [day, month] = dayFirst ? [a, b] : [b, a];
          if (validDay(year, month, day)) add(word.start, m[0], isoDay(year, month, day));
        }
      }
    } else if (length >= 3 && length <= 10 && DATE_WORD_SHAPES.has(word.lower.charCodeAt(0) * 16 + length)) {
      if (MONTH_FORMS.has(word.text)) months.push(i);
      else if (RELATIVE_FORMS.has(word.text)) relative.push(i);
    }
  }
  const named = (at: number, end: number, month: number, day: number, yearText: string | undefined) => {
    if (day < 1 || day > 31) return false;
    let year = yearText ? Number(yearText) : undefined;
    if (year === undefined && reference) year = nearestYear(month, day, reference);
    if (year !== undefined && !validDay(year, month, day)) return false;
    add(at, text.slice(at, end), year === undefined ? undefined : isoDay(year, month, day));
    return true;
  };
  // The text between word k-1 and word k, when it is only spaces (or, with `comma`, also a comma).
  const joined = (k: number, allowed: RegExp) =>
    k > 0 && allowed.test(text.slice(words[k - 1]!.start + words[k - 1]!.text.length, words[k]!.start));
  /** Where a date that ends with word k starts once a weekday ("Tuesday, ") in front of it is included. */
  const withWeekday = (k: number) =>
    joined(k, /^,?\s+$/) && WEEKDAY_WORDS.has(words[k - 1]!.lower) ? words[k - 1]!.start : words[k]!.start;
  for (const index of months) {
    const word = words[index]!;
    const month = MONTH_FORMS.get(word.text)!;
    const monthEnd = word.start + word.text.length;
    const after = text.slice(monthEnd, monthEnd + 24);
    // "14 April 2025", "Monday, 14. April", "the 3rd of March"
    let dayIndex = index - 1;
    if (
      dayIndex > 0 &&
      (words[dayIndex]!.lower === 'of' || words[dayIndex]!.lower === 'de') &&
      joined(index, /^\s+$/)
    ) {
      dayIndex--;
    }
    const dayWord =
      dayIndex >= 0 && joined(dayIndex + 1, /^\.?\s+$/) ? DAY_WORD.exec(words[dayIndex]!.text) : null;
    if (dayWord) {
      const year = YEAR_AFTER_DAY_MONTH.exec(after)!;
      const hasThe = dayIndex > 0 && words[dayIndex - 1]!.lower === 'the' && joined(dayIndex, /^\s+$/);
      const at = withWeekday(hasThe ? dayIndex - 1 : dayIndex);
      if (named(at, monthEnd + year[0].length, month, Number(dayWord[1]), year[1])) continue;
    }
    // "March 3rd", "Tuesday, March 11, 2025"; a lower-case "may 3" is a verb and a number, not a date.
    const monthFirst = word.text === 'may' || word.text === 'mar' ? null : DAY_AFTER_MONTH.exec(after);
    if (monthFirst) {
      const at = withWeekday(index);
      if (named(at, monthEnd + monthFirst[0].length, month, Number(monthFirst[1]), monthFirst[2])) continue;
    }
    // "March 2025"
    const monthYear = YEAR_AFTER_MONTH.exec(after);
    if (monthYear)
      add(
        word.start,
        text.slice(word.start, monthEnd + monthYear[0].length),
        `${monthYear[1]}-${pad(month)}`,
      );
  }
  for (const index of relative) {
    const word = words[index]!;
    let start = word.start;
    // The word k places back, when only spaces separate it from this one.
    const before = (k: number): string => {
      for (let j = 0; j < k; j++) if (words[index - j]!.gap !== 0) return '';
      return words[index - k]?.text.toLowerCase() ?? '';
    };
    // "next Friday", "this Monday", "the day after tomorrow".
    const lower = word.text.toLowerCase();
    if (lower === 'tomorrow' && before(1) === 'after' && before(2) === 'day') {
      start = before(3) === 'the' ? words[index - 3]!.start : words[index - 2]!.start;
    } else if (lower in WEEKDAYS && ['next', 'this', 'last'].includes(before(1))) {
      start = words[index - 1]!.start;
    }
    const phrase = text.slice(start, word.start + word.text.length);
    add(start, phrase, reference ? resolveRelative(phrase, reference) : undefined);
  }
  found.sort((a, b) => a.at - b.at);
  const seen = new Set<string>();
  const out: DateEntity[] = [];
  for (const { at: _at, ...date } of found) {
    const key = date.iso ?? date.text.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(date);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------

const union = (a: string[], b: string[]) => [...new Set([...a, ...b])];

/** Entities of two texts of one message (its body and its signature), each list deduplicated. */
export function mergeEntities(a: Entities, b: Entities): Entities {
  const dates = [...a.dates];
  for (const date of b.dates)
    if (!dates.some((d) => (d.iso ?? d.text) === (date.iso ?? date.text))) dates.push(date);
  const amounts = [...a.amounts];
  for (const amount of b.amounts) {
    if (!amounts.some((x) => x.value === amount.value && x.currency === amount.currency))
      amounts.push(amount);
  }
  return {
    people: dedupeNames([...a.people, ...b.people]),
    organizations: dedupeNames([...a.organizations, ...b.organizations]),
    dates,
    amounts,
    phones: union(a.phones, b.phones),
    links: union(a.links, b.links),
    emails: union(a.emails, b.emails),
  };
}

export function extractEntities(text: string, options: EntityOptions = {}): Entities {
  const links = extractLinks(text);
  const emails = extractEmails(text);
  // Names, amounts and dates are looked for in the text without its links and addresses, whose digits
  // and capitals would otherwise look like phone numbers, dates and names.
  const prose = maskLinksAndAddresses(text);
  const words = scanWords(prose);
  const { people, organizations } = extractNames(prose, words);
  return {
    people,
    organizations,
    dates: extractDates(prose, options, words),
    amounts: extractAmounts(prose, words),
    phones: extractPhones(prose),
    links,
    emails,
  };
}
