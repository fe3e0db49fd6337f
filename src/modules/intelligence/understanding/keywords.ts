// Keywords by TF-IDF against the organisation's own mail: a word is a keyword of a message when the
// message uses it more than the organisation's mail usually does. The document frequencies come from a
// table the integrator fills with `termsForFrequencies` of every filed message.
import { GAP_CLAUSE, maskLinksAndAddresses, scanWords } from './text.ts';

export interface DocumentFrequencies {
  /** Messages counted in the table. */
  documents: number;
  /** In how many of them the term (a word, or two words joined by a space) occurs. */
  frequency(term: string): number;
}

export interface Keyword {
  term: string;
  score: number;
}

// Small lists of function words, written for mail: the words TF-IDF would otherwise need a large
// corpus to learn to ignore.
const ENGLISH = `a about above after again against all also am an and any are aren't as at be because been before
being below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during
each few for from further get got had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers
herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself just let's like me might
more most much must mustn't my myself need no nor not now of off on once one only or other ought our ours ourselves
out over own per really same shall shan't she she'd she'll she's should shouldn't so some such than that that's the
their theirs them themselves then there there's these they they'd they'll they're they've this those through to too
under until up upon us very via want was wasn't we we'd we'll we're we've were weren't what what's when when's where
where's which while who who's whom why why's will with won't would wouldn't yes yet you you'd you'll you're you've
your yours yourself yourselves`;
const GERMAN = `aber alle allem allen aller alles als also am an ander andere anderem anderen anderer anderes auch auf
aus bei bin bis bist da damit dann das dass dein deine deinem deinen deiner dem den denn der des dich die dies diese
diesem diesen dieser dieses dir doch dort du durch ein eine einem einen einer eines er es etwas euch euer eure für
gegen gewesen hab habe haben hat hatte hätte hier hin hinter ich ihm ihn ihnen ihr ihre ihrem ihren ihrer im in indem
ins ist ja jede jedem jeden jeder jedes jetzt kann kein keine keinem keinen keiner können könnte man manche mein meine
meinem meinen meiner mich mir mit muss musste nach nicht nichts noch nun nur ob oder ohne sehr sein seine seinem
seinen seiner seit sich sie sind so solche soll sollte sondern sonst über um und uns unser unsere unter viel vom von
vor wann war waren warum was weil welche welchem welchen welcher wenn wer werde werden wie wieder will wir wird wo
wollen würde zu zum zur zwar zwischen`;
const FRENCH = `a ai aie aient ainsi alors au aucun aucune aussi autre aux avec avoir avons ayant bien c ça car ce cela
celle celles celui ces cet cette ceux chaque chez comme comment d dans de des donc dont du elle elles en encore est et
étaient était été être eu eux faire fait il ils j je l la le les leur leurs lui m ma mais me même mes moi mon n ne ni
nos notre nous on ont ou où par pas peu peut plus pour pourquoi qu quand que quel quelle quelles quels qui s sa sans
se sera ses si sien son sont sous sur t ta te tes toi ton tous tout toute toutes très tu un une vos votre vous y`;
const SPANISH = `a al algo algunas algunos ante antes como con contra cual cuando de del desde donde durante e el él
ella ellas ellos en entre era erais eran eras es esa esas ese eso esos esta está estaba estado están estar estas este
esto estos fue fueron ha había han has hasta hay la las le les lo los más me mi mis mucho muy nada ni no nos nosotros
o os otra otro para pero poco por porque que quien quienes qué se sea ser si sí sido sin sobre son su sus también
tanto te tiene tienen todo todos tu tus un una uno unos usted ustedes y ya yo`;
// Greetings, thanks and closing words every message has in every language.
const MAIL_WORDS = `hi hello hey dear thanks thank regards best cheers please kind sincerely hallo liebe lieber danke
grüße gruß bitte bonjour merci cordialement salut hola gracias saludos re fw fwd aw wg tr rv`;

const toSet = (words: string) => new Set(words.split(/\s+/).filter(Boolean));

export const STOPWORDS: Readonly<Record<'en' | 'de' | 'fr' | 'es', ReadonlySet<string>>> = {
  en: toSet(`${ENGLISH} ${MAIL_WORDS}`),
  de: toSet(`${GERMAN} ${ENGLISH} ${MAIL_WORDS}`),
  fr: toSet(`${FRENCH} ${ENGLISH} ${MAIL_WORDS}`),
  es: toSet(`${SPANISH} ${ENGLISH} ${MAIL_WORDS}`),
};
/** Each language's own function words, without the mail words: what language identification counts. */
export const FUNCTION_WORDS: Readonly<Record<'en' | 'de' | 'fr' | 'es', ReadonlySet<string>>> = {
  en: toSet(ENGLISH),
  de: toSet(GERMAN),
  fr: toSet(FRENCH),
  es: toSet(SPANISH),
};
const ALL_STOPWORDS: ReadonlySet<string> = toSet(`${ENGLISH} ${GERMAN} ${FRENCH} ${SPANISH} ${MAIL_WORDS}`);

/** The stopwords for a language; English is included everywhere, and an unknown language gets them all. */
export function stopwordsFor(language: string): ReadonlySet<string> {
  return STOPWORDS[language as keyof typeof STOPWORDS] ?? ALL_STOPWORDS;
}

/** Lower-cased, "’" as "'", a possessive "'s" and trailing marks dropped: "Maria’s" is "maria". */
export function normaliseWord(word: string): string {
  let lower = word.toLowerCase();
  if (lower.includes('\u2019')) lower = lower.replaceAll('\u2019', "'");
  return withoutPossessive(lower);
}

/** "maria's" is "maria". */
export function withoutPossessive(lower: string): string {
  return lower.endsWith("'s") ? lower.slice(0, -2) : lower;
}

// The last few texts' words: keywords, categories and priority all read the same subject and body.
const CACHE_SIZE = 4;
const cachedTexts: string[] = [];
const cachedSegments: string[][][] = [];

/**
 * Lower-cased words in runs: each inner array holds words with no phrase-ending punctuation between them.
 * Han and kana are written without spaces, so their runs become overlapping character pairs.
 */
export function tokenizeSegments(text: string): string[][] {
  const hit = cachedTexts.indexOf(text);
  if (hit !== -1) return cachedSegments[hit]!;
  const segments: string[][] = [];
  let words: string[] = [];
  for (const scanned of scanWords(maskLinksAndAddresses(text))) {
    if (scanned.gap & GAP_CLAUSE && words.length > 0) {
      segments.push(words);
      words = [];
    }
    const word = withoutPossessive(scanned.lower);
    if (scanned.ideographic) words.push(...characterPairs(word));
    else words.push(word);
  }
  if (words.length > 0) segments.push(words);
  cachedTexts.unshift(text);
  cachedSegments.unshift(segments);
  if (cachedTexts.length > CACHE_SIZE) {
    cachedTexts.pop();
    cachedSegments.pop();
  }
  return segments;
}

/** Han and kana are written without spaces: a run of them is read as its overlapping character pairs. */
export function characterPairs(run: string): string[] {
  const chars = [...run];
  if (chars.length === 1) return [run];
  const pairs: string[] = [];
  for (let i = 0; i + 1 < chars.length; i++) pairs.push(chars[i]! + chars[i + 1]!);
  return pairs;
}

/** Lower-cased word tokens of a text, in order. */
export function tokenize(text: string): string[] {
  return tokenizeSegments(text).flat();
}

/** Phrases compiled for `matchPhraseGroups`: keyed by their first word. "#" stands for any number. */
export type PhraseMatcher = ReadonlyMap<
  string,
  ReadonlyArray<{ phrase: string; group: string; words: string[] }>
>;

export function compilePhraseGroups(groups: Record<string, readonly string[]>): PhraseMatcher {
  const byFirst = new Map<string, Array<{ phrase: string; group: string; words: string[] }>>();
  for (const [group, phrases] of Object.entries(groups)) {
    for (const phrase of phrases) {
      const words = phrase.split(/\s+/).flatMap((part) => (part === '#' ? ['#'] : tokenize(part)));
      if (words.length === 0) continue;
      const list = byFirst.get(words[0]!) ?? [];
      list.push({ phrase, group, words });
      byFirst.set(words[0]!, list);
    }
  }
  return byFirst;
}

const isNumber = (word: string) => word.charCodeAt(0) >= 48 && word.charCodeAt(0) <= 57;

/**
 * The distinct phrases of each group that occur in the text, matched word by word in one pass (no regular
 * expression), never across phrase-ending punctuation.
 */
export function matchPhraseGroups(matcher: PhraseMatcher, text: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const words of tokenizeSegments(text)) {
    for (let i = 0; i < words.length; i++) {
      const word = words[i]!;
      const candidates = matcher.get(isNumber(word) ? '#' : word);
      if (candidates === undefined) continue;
      for (const { phrase, group, words: pattern } of candidates) {
        if (i + pattern.length > words.length) continue;
        let matches = true;
        for (let k = 1; k < pattern.length && matches; k++) {
          const expected = pattern[k]!;
          const actual = words[i + k]!;
          matches = expected === '#' ? isNumber(actual) : expected === actual;
        }
        if (!matches) continue;
        const list = found.get(group);
        if (!list) found.set(group, [phrase]);
        else if (!list.includes(phrase)) list.push(phrase);
      }
    }
  }
  return found;
}

/** Words are made of letters, marks, digits and inner ' or -: anything else than a digit, ' or - is a letter. */
function hasLetter(word: string): boolean {
  for (let i = 0; i < word.length; i++) {
    const code = word.charCodeAt(i);
    if ((code < 48 || code > 57) && code !== 39 && code !== 45) return true;
  }
  return false;
}

/** Longer "words" are identifiers, hashes or encoded data, not language. */
const MAX_WORD_LENGTH = 40;

export function isContentWord(word: string, stopwords: ReadonlySet<string>): boolean {
  return word.length >= 2 && word.length <= MAX_WORD_LENGTH && !stopwords.has(word) && hasLetter(word);
}

/**
 * The content words of a text in order, with null where a stopword or punctuation breaks a phrase: adjacent
 * non-null entries are the two-word phrases. Kept per text, as keywords and the table both ask for it.
 */
function contentSequence(text: string, language: string): Array<string | null> {
  const stopwords = stopwordsFor(language);
  const sequence: Array<string | null> = [];
  for (const words of tokenizeSegments(text)) {
    for (const word of words) sequence.push(isContentWord(word, stopwords) ? word : null);
    sequence.push(null);
  }
  return sequence;
}

/** The distinct terms (words and two-word phrases) a message adds to the document-frequency table. */
export function termsForFrequencies(text: string, language: string): string[] {
  return textTerms(text, language).counted;
}

/**
 * A text's terms for the document-frequency table: `counted`, what it adds (every word and pair of adjacent
 * words), and `asked`, whose frequencies its keywords and summary look up (its words, and the pairs said
 * twice: extractKeywords scores no other pair). The rest need not be read.
 */
export function textTerms(text: string, language: string): { counted: string[]; asked: string[] } {
  const words = new Set<string>();
  const pairs = new Map<string, number>();
  const sequence = contentSequence(text, language);
  for (let i = 0; i < sequence.length; i++) {
    const word = sequence[i];
    if (word === null || word === undefined) continue;
    words.add(word);
    const previous = sequence[i - 1];
    if (previous && previous !== word) {
      const pair = `${previous} ${word}`;
      pairs.set(pair, (pairs.get(pair) ?? 0) + 1);
    }
  }
  const counted = [...words, ...pairs.keys()];
  const asked = [...words];
  for (const [pair, count] of pairs) if (count >= 2) asked.push(pair);
  return { counted, asked };
}

/** Inverse document frequency, smoothed so a term the table has never seen scores highest but finitely. */
export function inverseDocumentFrequency(stats: DocumentFrequencies, term: string): number {
  if (stats.documents <= 0) return 1;
  return Math.log((stats.documents + 1) / (stats.frequency(term) + 1)) + 1;
}

export function extractKeywords(
  text: string,
  language: string,
  stats: DocumentFrequencies,
  limit = 10,
): Keyword[] {
  const sequence = contentSequence(text, language);
  // Counts in order of first occurrence (a Map keeps insertion order), which breaks ties between scores.
  const counts = new Map<string, number>();
  for (const word of sequence) if (word !== null) counts.set(word, (counts.get(word) ?? 0) + 1);
  // A phrase said once is usually a coincidence of adjacent words; said twice it is worth more than its
  // words. Both of its words then occur twice too, which rules out most pairs before a string is built.
  const bigrams = new Map<string, number>();
  for (let i = 1; i < sequence.length; i++) {
    const [a, b] = [sequence[i - 1], sequence[i]];
    if (!a || !b || a === b || counts.get(a)! < 2 || counts.get(b)! < 2) continue;
    const phrase = `${a} ${b}`;
    bigrams.set(phrase, (bigrams.get(phrase) ?? 0) + 1);
  }
  const terms: string[] = [];
  const scores: number[] = [];
  const add = (term: string, count: number) => {
    terms.push(term);
    scores.push((1 + Math.log(count)) * inverseDocumentFrequency(stats, term));
  };
  for (const [term, count] of counts) add(term, count);
  const unigrams = terms.length;
  for (const [term, count] of bigrams) if (count >= 2) add(term, count);
  const order = terms.map((_, i) => i);
  // Bigrams count from where their first word first occurs, close enough for a tie-break.
  order.sort((a, b) => scores[b]! - scores[a]! || a - b);
  const chosen: Keyword[] = [];
  const coveredWords = new Set<string>();
  for (const i of order) {
    if (chosen.length >= limit) break;
    const term = terms[i]!;
    const bigram = i >= unigrams;
    if (!bigram && coveredWords.has(term)) continue;
    if (bigram) for (const word of term.split(' ')) coveredWords.add(word);
    chosen.push({ term, score: Math.round(scores[i]! * 1000) / 1000 });
  }
  return chosen;
}
