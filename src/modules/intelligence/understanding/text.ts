// The part of a message body worth analysing: what the sender wrote this time. Quoted replies, forwarded
// originals of a reply, signatures and mobile footers are removed, whitespace is collapsed and the result is
// capped, so every analyser does a bounded amount of work however long the thread underneath grew.
import type { AnalysisInput } from '../input.ts';

/**
 * Characters of new text that the analysers read (about 400 words, more than most messages have): past
 * this, more text rarely changes the answer, and every analyser's cost grows with it. At 4,000 characters
 * the mix of ordinary 2-5 KB messages fell well below the budget of 1,500 messages/s on one core.
 */
export const MAX_ANALYSED_CHARS = 2500;

export interface BodyText {
  /** New content: no quoted reply, no signature; paragraphs joined by "\n", spaces collapsed, capped. */
  text: string;
  /** The signature block that was cut off (useful for phone numbers and names): one line per line, capped. */
  signature: string;
  /** Whether a quoted reply or an included original message was removed. */
  quoted: boolean;
  /** Whether the text was cut at the cap. */
  truncated: boolean;
}

// "On Mon, 3 Mar 2025 at 09:12, Sam <sam@x> wrote:" and its German, French, Spanish, Dutch and Italian forms.
// German and Dutch put the verb before the name: "Am 3. März schrieb Laura <laura@x.de>:".
const QUOTE_HEADER_END =
  /(?:(?:\bwrote|a écrit|escribió|ha scritto|escreveu|skrev|napisał\(a\)|napisał)\s*:|\b(?:schrieb|schreef)\b.*:)\s*$/i;
const QUOTE_HEADER_START = /^\s*(?:On|Am|Le|El|Op|Il|Em|Den|På|W dniu)\s\S/;
const ORIGINAL_MESSAGE =
  /^\s*-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine|Mensaje original|Oorspronkelijk bericht|Messaggio originale)\s*-{2,}\s*$/i;
// Outlook's plain-text reply header: "From: …" then "Sent:"/"Date:" within the next lines.
const OUTLOOK_FROM = /^\s*\*?(?:From|Von|De|Van|Da)\s*:\*?\s+\S/i;
const OUTLOOK_SENT = /^\s*\*?(?:Sent|Date|Gesendet|Datum|Envoyé|Enviado|Verzonden|Inviato)\s*:\*?\s/i;
const UNDERSCORE_RULE = /^\s*_{10,}\s*$/;
const SIGNATURE_DELIMITER = /^-- ?$/;
const MOBILE_FOOTER =
  /^\s*(?:Sent from my \w+|Sent from (?:Mail|Outlook) for \w+|Get Outlook for \w+|Von meinem \w+ gesendet|Envoyé de mon \w+|Enviado desde mi \w+)\b.*$/i;
// A closing formula alone on its line ("Best regards," / "Viele Grüße") near the end starts the signature.
const VALEDICTION =
  /^\s*(?:(?:best|kind|warm|warmest|many|with)?\s*(?:regards|wishes)|best|cheers|thanks|thank you|many thanks|thanks again|sincerely|yours(?: sincerely| truly)?|all the best|take care|love|mit freundlichen grüßen|freundliche grüße|viele grüße|beste grüße|liebe grüße|lg|mfg|gruß|grüße|cordialement|bien cordialement|bien à vous|amicalement|bises|saludos|un saludo|atentamente|cordiales saludos|un abrazo|met vriendelijke groet|groeten|distinti saluti|cordiali saluti|saluti)\s*[,.!]?\s*$/i;
const QUOTED_LINE = /^\s*>/;
/** First letters of the quote-header openings above ("On", "Am", "Le", "El", "Op", "Il", "Em", "Den", "På", "W dniu"). */
const HEADER_INITIALS = 'OALEIDPW';
/** First characters of Outlook's "From:" line in its languages. */
const OUTLOOK_INITIALS = 'FVDfvd*';

function isQuoteHeader(lines: string[], index: number): number {
  // Returns how many lines the header spans (1 or 2, clients wrap long headers), or 0.
  const line = lines[index]!;
  if (QUOTE_HEADER_START.test(line) || /\bwrote:\s*$/i.test(line)) {
    if (QUOTE_HEADER_END.test(line)) return 1;
    const next = lines[index + 1];
    if (next !== undefined && QUOTE_HEADER_START.test(line) && QUOTE_HEADER_END.test(next)) return 2;
  }
  return 0;
}

function isOutlookHeader(lines: string[], index: number): boolean {
  if (!OUTLOOK_FROM.test(lines[index]!)) return false;
  for (let j = index + 1; j < Math.min(lines.length, index + 4); j++) {
    if (OUTLOOK_SENT.test(lines[j]!)) return true;
  }
  return false;
}

function nextNonEmpty(lines: string[], from: number): string | undefined {
  for (let j = from; j < lines.length; j++) if (lines[j]!.trim() !== '') return lines[j];
  return undefined;
}

/** Removes quoted replies: "> " lines, "On … wrote:" headers and everything below an included original. */
export function stripQuotedReply(text: string): { text: string; quoted: boolean } {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const kept: string[] = [];
  let quoted = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    // The first and last characters decide which patterns can apply: most lines need none of them.
    let firstAt = 0;
    while (firstAt < line.length && (line.charCodeAt(firstAt) === 32 || line.charCodeAt(firstAt) === 9))
      firstAt++;
    if (firstAt === line.length) {
      kept.push(line);
      continue;
    }
    const first = line.charAt(firstAt);
    let lastAt = line.length - 1;
    while (lastAt > firstAt && (line.charCodeAt(lastAt) === 32 || line.charCodeAt(lastAt) === 9)) lastAt--;
    if (first === '>') {
      quoted = true;
      continue;
    }
    const headerLines =
      HEADER_INITIALS.includes(first) || line.charCodeAt(lastAt) === 58 ? isQuoteHeader(lines, i) : 0;
    if (headerLines > 0) {
      quoted = true;
      // Bottom-posted or interleaved replies keep going after "> " lines; a top-posted reply whose
      // original is not marked with ">" (many HTML clients) ends here.
      const following = nextNonEmpty(lines, i + headerLines);
      if (following === undefined || !QUOTED_LINE.test(following)) break;
      i += headerLines - 1;
      continue;
    }
    if (
      (first === '-' && ORIGINAL_MESSAGE.test(line)) ||
      (OUTLOOK_INITIALS.includes(first) && isOutlookHeader(lines, i))
    ) {
      quoted = true;
      break;
    }
    if (first === '_' && UNDERSCORE_RULE.test(line) && isOutlookHeader(lines, i + 1)) {
      quoted = true;
      break;
    }
    kept.push(line);
  }
  return { text: kept.join('\n'), quoted };
}

/** Splits off the signature: after a "-- " line, a mobile footer, or a closing formula near the end. */
export function stripSignature(text: string): { body: string; signature: string } {
  const lines = text.split('\n');
  let cut = -1;
  for (let i = 0; i < lines.length; i++) {
    if (SIGNATURE_DELIMITER.test(lines[i]!) || MOBILE_FOOTER.test(lines[i]!)) {
      cut = i;
      break;
    }
  }
  const end = cut === -1 ? lines.length : cut;
  // A closing formula counts when only a few short lines (name, title, phone) follow it.
  let seen = 0;
  for (let i = end - 1; i >= 0 && seen < 8; i--) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    if (VALEDICTION.test(line)) {
      const hasBody = lines.slice(0, i).some((l) => l.trim() !== '');
      const rest = lines.slice(i + 1, end).filter((l) => l.trim() !== '');
      if (hasBody && rest.every((l) => l.trim().length <= 60)) cut = i;
      break;
    }
    if (line.trim().length > 60) break;
    seen++;
  }
  if (cut === -1) return { body: text, signature: '' };
  return { body: lines.slice(0, cut).join('\n'), signature: lines.slice(cut).join('\n') };
}

/** Spaces and tabs collapsed; lines of one paragraph joined; paragraphs separated by a single "\n". */
export function collapseWhitespace(text: string): string {
  const paragraphs: string[] = [];
  let current: string[] = [];
  // One pass over the whole text for runs of spaces, then the lines.
  for (const rawLine of text.replace(/[ \t\r\f\v\u00a0\u200b]+/g, ' ').split('\n')) {
    const line = rawLine.trim();
    if (line === '') {
      if (current.length > 0) paragraphs.push(current.join(' '));
      current = [];
    } else {
      current.push(line);
    }
  }
  if (current.length > 0) paragraphs.push(current.join(' '));
  return paragraphs.join('\n');
}

/** Cuts at the last word boundary before `max` characters. */
export function capText(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.lastIndexOf(' ', max);
  return text.slice(0, cut > max * 0.8 ? cut : max);
}

export function extractBodyText(raw: string, maxChars = MAX_ANALYSED_CHARS): BodyText {
  // Only the start of a huge body can survive the cap, but quotes must be found before cutting.
  const window = raw.length > maxChars * 8 ? raw.slice(0, maxChars * 8) : raw;
  const unquoted = stripQuotedReply(window);
  const { body, signature } = stripSignature(unquoted.text);
  const collapsed = collapseWhitespace(body);
  const text = capText(collapsed, maxChars);
  return {
    text,
    // A signature's lines are separate fields (name, title, phone): they are not joined into one line.
    signature: capText(
      signature
        .split('\n')
        .map((line) => line.replace(/[\s\u00a0\u200b]+/g, ' ').trim())
        .filter((line) => line !== '' && !SIGNATURE_DELIMITER.test(line))
        .join('\n'),
      1000,
    ),
    quoted: unquoted.quoted,
    truncated: text.length < collapsed.length || window.length < raw.length,
  };
}

const bodies = new WeakMap<AnalysisInput, BodyText>();

/** The analysed body of a message, computed once per input however many analysers ask for it. */
export function bodyOf(input: AnalysisInput): BodyText {
  let body = bodies.get(input);
  if (!body) {
    body = extractBodyText(input.text);
    bodies.set(input, body);
  }
  return body;
}

// Abbreviations whose full stop does not end a sentence (English, German, French, Spanish).
const ABBREVIATIONS = new Set([
  'mr',
  'mrs',
  'ms',
  'dr',
  'prof',
  'st',
  'jr',
  'sr',
  'vs',
  'etc',
  'e.g',
  'i.e',
  'eg',
  'ie',
  'approx',
  'no',
  'nr',
  'inc',
  'ltd',
  'co',
  'corp',
  'dept',
  'fig',
  'tel',
  'ca',
  'bzw',
  'z.b',
  'u.a',
  'd.h',
  'usw',
  'ggf',
  'hr',
  'fr',
  'mme',
  'mlle',
  'sra',
  'jan',
  'feb',
  'mar',
  'apr',
  'jun',
  'jul',
  'aug',
  'sep',
  'sept',
  'oct',
  'nov',
  'dec',
]);

const isSentenceEnd = (c: number) => c === 46 || c === 33 || c === 63 || c === 0x2026; // . ! ? …
const isClosing = (c: number) => c === 34 || c === 39 || c === 41 || c === 93 || c === 0x2019 || c === 0x201d;
const isOpening = (c: number) => c === 34 || c === 39 || c === 40 || c === 91 || c === 0x2018 || c === 0x201c;

/** A sentence may start here: a capital letter, a digit, or Spanish ¿ ¡. */
function startsSentence(text: string, at: number): boolean {
  const c = text.charCodeAt(at);
  if ((c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 0xbf || c === 0xa1) return true;
  if (c < 128 || Number.isNaN(c)) return false;
  const ch = text[at]!;
  return ch !== ch.toLowerCase();
}

/**
 * [start, end) offsets of the sentences of collapsed text, trimmed: a sentence ends at . ! ? … (and any
 * closing quote or bracket) followed by a space and a capital, digit or ¿ ¡ (after an optional opening
 * quote or bracket), but not after an abbreviation or an initial; a line break always ends one.
 */
export function sentenceSpans(text: string): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  const push = (from: number, to: number) => {
    while (from < to && text.charCodeAt(from) === 32) from++;
    while (to > from && text.charCodeAt(to - 1) === 32) to--;
    if (to > from) spans.push([from, to]);
  };
  let start = 0;
  const length = text.length;
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) {
      push(start, i);
      start = i + 1;
      continue;
    }
    // Chinese and Japanese full stops end a sentence with no space after them.
    if (c === 0x3002 || c === 0xff01 || c === 0xff1f) {
      push(start, i + 1);
      start = i + 1;
      continue;
    }
    if (!isSentenceEnd(c)) continue;
    const punctuation = i;
    let j = i + 1;
    while (j < length && isSentenceEnd(text.charCodeAt(j))) j++;
    while (j < length && isClosing(text.charCodeAt(j))) j++;
    i = j - 1;
    if (j >= length || text.charCodeAt(j) !== 32) continue;
    let next = j;
    while (next < length && text.charCodeAt(next) === 32) next++;
    const first = next < length && isOpening(text.charCodeAt(next)) ? next + 1 : next;
    if (!startsSentence(text, first)) continue;
    if (c === 46) {
      let wordStart = punctuation;
      while (wordStart > start && text.charCodeAt(wordStart - 1) !== 32) wordStart--;
      const lastWord = text
        .slice(wordStart, punctuation)
        .toLowerCase()
        .replace(/^[("']+/, '');
      // "Dr. Ahmed", "J. Smith", "e.g. this": not the end of a sentence.
      if (ABBREVIATIONS.has(lastWord) || (lastWord.length === 1 && lastWord !== lastWord.toUpperCase()))
        continue;
    }
    push(start, next);
    start = next;
    i = next - 1;
  }
  push(start, length);
  return spans;
}

/** Sentences of collapsed text: split after . ! ? (not after abbreviations or initials) and at paragraphs. */
export function splitSentences(text: string): string[] {
  return sentenceSpans(text).map(([start, end]) => text.slice(start, end));
}

// ---------------------------------------------------------------------------------------------------------
// Words: one hand-written scan shared by keywords, names, categories and summaries. A regular expression per
// word costs more than all the analysers' own work on a typical message.

/** What separates a word from the one before it, as bit flags. */
export const GAP_PUNCTUATION = 1;
/** . ! ? … */
export const GAP_SENTENCE = 2;
export const GAP_LINE = 4;
/** Punctuation that ends a phrase: , ; : brackets, quotes, dashes, slashes, and everything in GAP_SENTENCE. */
export const GAP_CLAUSE = 8;
/** Only spaces and a single "&" ("Procter & Gamble"). */
export const GAP_AMPERSAND = 16;

export interface ScannedWord {
  /** As written; an inner apostrophe or hyphen stays ("don't", "sign-in"). */
  text: string;
  /** Lower-cased, with "’" written "'". */
  lower: string;
  start: number;
  /** GAP_* flags for the characters between the previous word and this one; 0 for spaces only. */
  gap: number;
  /** Contains Han or kana, which are written without spaces between words. */
  ideographic: boolean;
}

function gapFlag(code: number): number {
  switch (code) {
    case 32:
    case 9:
    case 13:
    case 0xa0:
    case 0x200b:
      return 0;
    case 10:
      return GAP_LINE | GAP_CLAUSE;
    case 46: // .
    case 33: // !
    case 63: // ?
    case 0x2026: // …
      return GAP_SENTENCE | GAP_CLAUSE | GAP_PUNCTUATION;
    case 38: // &
      return GAP_AMPERSAND;
    case 44: // ,
    case 59: // ;
    case 58: // :
    case 40: // (
    case 41: // )
    case 91: // [
    case 93: // ]
    case 123: // {
    case 125: // }
    case 34: // "
    case 39: // '
    case 0x2018:
    case 0x2019:
    case 0x201c:
    case 0x201d:
    case 0xab:
    case 0xbb:
    case 60: // <
    case 62: // >
    case 124: // |
    case 47: // /
    case 92: // \
    case 45: // - standing alone
    case 0x2013:
    case 0x2014:
    case 0xa1: // ¡
    case 0xbf: // ¿
      return GAP_CLAUSE | GAP_PUNCTUATION;
    default:
      return GAP_PUNCTUATION;
  }
}

// Which UTF-16 code units are word characters (letters, marks, digits), learnt lazily: 0 unknown, 1 yes,
// 2 no. A loop over this table is four times faster than a regular expression with Unicode properties.
const WORD_CHAR = /[\p{L}\p{M}\p{N}]/u;
const wordCharTable = new Uint8Array(65536);
for (let code = 0; code < 128; code++) {
  const isWord = (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
  wordCharTable[code] = isWord ? 1 : 2;
}

function isWordChar(code: number): boolean {
  let known = wordCharTable[code]!;
  if (known === 0) {
    known = WORD_CHAR.test(String.fromCharCode(code)) ? 1 : 2;
    wordCharTable[code] = known;
  }
  return known === 1;
}

function isIdeographic(code: number): boolean {
  return (
    (code >= 0x3040 && code <= 0x30ff) ||
    (code >= 0x3400 && code <= 0x9fff) ||
    (code >= 0xf900 && code <= 0xfaff)
  );
}

// The last few texts' words: the analysers of one message scan the same body more than once.
const SCAN_CACHE_SIZE = 4;
const scannedTexts: string[] = [];
const scannedWords: ScannedWord[][] = [];

/**
 * Words of a text with what separates them. Inner ' ’ - join two word characters into one word. The
 * result is shared with other callers that scan an equal text: treat it as read-only.
 */
export function scanWords(text: string): ScannedWord[] {
  const hit = scannedTexts.indexOf(text);
  if (hit !== -1) return scannedWords[hit]!;
  const words = scan(text);
  scannedTexts.unshift(text);
  scannedWords.unshift(words);
  if (scannedTexts.length > SCAN_CACHE_SIZE) {
    scannedTexts.pop();
    scannedWords.pop();
  }
  return words;
}

function scan(text: string): ScannedWord[] {
  const words: ScannedWord[] = [];
  const length = text.length;
  let gap = GAP_LINE;
  let i = 0;
  while (i < length) {
    const code = text.charCodeAt(i);
    if (!isWordChar(code)) {
      gap |= gapFlag(code);
      i++;
      continue;
    }
    const start = i;
    let ideographic = code >= 0x3040 && isIdeographic(code);
    i++;
    while (i < length) {
      const c = text.charCodeAt(i);
      if (isWordChar(c)) {
        if (c >= 0x3040 && isIdeographic(c)) ideographic = true;
        i++;
      } else if (
        (c === 39 || c === 0x2019 || c === 45) &&
        i + 1 < length &&
        isWordChar(text.charCodeAt(i + 1))
      ) {
        i++;
      } else {
        break;
      }
    }
    // Only an "&" between words counts as a connector; with anything else it is ordinary punctuation.
    if (gap & GAP_AMPERSAND && gap !== GAP_AMPERSAND) gap = (gap & ~GAP_AMPERSAND) | GAP_PUNCTUATION;
    const word = text.slice(start, i);
    let lower = word.toLowerCase();
    if (lower.includes('\u2019')) lower = lower.replaceAll('\u2019', "'");
    words.push({ text: word, lower, start, gap, ideographic });
    gap = 0;
  }
  return words;
}

const LINK_OR_ADDRESS_DELIMITERS = ' \t\n\r<>()[]"\'';

/**
 * The text with URLs and e-mail addresses blanked (same length, a "|" where each was), so their
 * fragments are not read as words, names, dates or phone numbers.
 */
export function maskLinksAndAddresses(text: string): string {
  if (!text.includes('@') && !text.includes('://') && !text.includes('www.')) return text;
  const spans: Array<[number, number]> = [];
  const expand = (at: number) => {
    let start = at;
    let end = at;
    while (start > 0 && !LINK_OR_ADDRESS_DELIMITERS.includes(text[start - 1]!)) start--;
    while (end < text.length && !LINK_OR_ADDRESS_DELIMITERS.includes(text[end]!)) end++;
    spans.push([start, end]);
  };
  for (const marker of ['@', '://', 'www.']) {
    for (let at = text.indexOf(marker); at !== -1; at = text.indexOf(marker, at + marker.length)) expand(at);
  }
  if (spans.length === 0) return text;
  spans.sort((a, b) => a[0] - b[0]);
  let out = '';
  let last = 0;
  for (const [start, end] of spans) {
    if (end <= last) continue;
    const from = Math.max(start, last);
    out += `${text.slice(last, from)}${' '.repeat(Math.max(0, end - from - 1))}|`;
    last = end;
  }
  return out + text.slice(last);
}
