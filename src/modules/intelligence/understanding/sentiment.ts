// Tone of a message with the `sentiment` package's lexicons (AFINN-165 for words, its Emoji Sentiment
// Ranking table for emoji), adjusted for mail: salutations and closing formulas are not feelings, negation
// reaches a few words back within its clause ("not very good"), intensifiers strengthen the next word, and
// AFINN's phrases ("does not work") are scored as phrases, which the package's own word-by-word `analyze`
// never does. The words come from the scan the other analysers of the message share; the package's
// `analyze` would tokenise the text again with four regular-expression passes, about a tenth of the budget
// for all analysers together. English only: no other lexicon ships with our dependencies, so other
// languages answer neutral with `supported: false` rather than a guess from English words.
import { createRequire } from 'node:module';
import { GAP_CLAUSE, maskLinksAndAddresses, scanWords } from './text.ts';

export type SentimentLabel = 'negative' | 'neutral' | 'positive';

export interface SentimentResult {
  /** -1..1: the lexicon sum squashed so one strong word is clear and ten do not run off the scale. */
  score: number;
  label: SentimentLabel;
  /** The lexicon sum per word, as the `sentiment` package defines it. */
  comparative: number;
  /** The language that was scored ('en'), or the one asked for when it is not supported. */
  language: string;
  supported: boolean;
}

export const SENTIMENT_LANGUAGES: readonly string[] = ['en'];

/** |score| at or above this is a positive or negative label: a single mild word stays neutral. */
export const SENTIMENT_LABEL_THRESHOLD = 0.3;
/** The squashing constant of VADER's normalisation, score / sqrt(score² + α). */
const NORMALISATION_ALPHA = 15;

const require = createRequire(import.meta.url);
const afinn = require('sentiment/languages/en/labels.json') as Record<string, number>;
const emoji = require('sentiment/build/emoji.json') as Record<string, number>;

// Words that are courtesy in mail rather than sentiment: "Dear Sam", "Please find attached", "help" in
// every request. "no" is handled as a negator instead of a negative word.
const MAIL_NEUTRAL = ['dear', 'please', 'help', 'no', 'attached'];
/** Per word: its own score, and the AFINN phrases that begin with it. One lookup per word of a message. */
const LEXICON = new Map<string, { score: number; phrases: Array<{ words: string[]; score: number }> }>();
const entry = (word: string) => {
  let found = LEXICON.get(word);
  if (!found) {
    found = { score: 0, phrases: [] };
    LEXICON.set(word, found);
  }
  return found;
};
const PHRASE_VARIANTS: Record<string, string[]> = {
  'does not work': ["doesn't work", 'doesnt work', "didn't work", "don't work", 'did not work'],
  'not working': ["isn't working", "aren't working", 'stopped working'],
  'dont like': ["don't like", 'do not like', "didn't like"],
  "can't stand": ['cannot stand', 'cant stand'],
};
for (const [term, value] of Object.entries(afinn)) {
  if (!term.includes(' ')) {
    entry(term).score = value;
    continue;
  }
  for (const form of [term, ...(PHRASE_VARIANTS[term] ?? [])]) {
    const words = form.split(' ');
    entry(words[0]!).phrases.push({ words, score: value });
  }
}
for (const word of MAIL_NEUTRAL) entry(word).score = 0;

const NEGATORS = new Set([
  'not',
  'no',
  'never',
  'none',
  'nobody',
  'nothing',
  'neither',
  'nor',
  'without',
  'hardly',
  'barely',
  'cannot',
  'cant',
  'dont',
  'doesnt',
  'didnt',
  'isnt',
  'wasnt',
  'arent',
  'werent',
  'wont',
  'wouldnt',
  'shouldnt',
  'couldnt',
  'havent',
  'hasnt',
  'hadnt',
  'aint',
]);
const BOOSTERS = new Set([
  'very',
  'really',
  'extremely',
  'so',
  'too',
  'totally',
  'absolutely',
  'incredibly',
  'super',
  'truly',
  'completely',
  'deeply',
  'highly',
]);
// "Best regards", "Kind regards", "Warm wishes": closing formulas, whatever the adjective says.
const CLOSING_NOUNS = new Set(['regards', 'wishes', 'greetings']);
// "would like to", "looks like": 'like' as a verb of wanting or a preposition carries no sentiment.
const NEUTRAL_BEFORE_LIKE = new Set([
  'would',
  "i'd",
  "we'd",
  "you'd",
  "they'd",
  'looks',
  'look',
  'seems',
  'feel',
]);
const NEGATION_WINDOW = 3;
const NEGATION_FACTOR = -0.75;
const BOOST_FACTOR = 1.25;

function isNegator(token: string): boolean {
  return NEGATORS.has(token) || token.endsWith("n't");
}

const EMOJI_HINT = /[\u2600-\u27bf\ud83c-\ud83e]/;
const EMOJI = /\p{Extended_Pictographic}/gu;

/** The lexicon sum of English text and the number of words it has. */
function scoreWords(text: string): { sum: number; words: number } {
  const scanned = scanWords(maskLinksAndAddresses(text));
  const tokens = scanned.map((w) => w.lower);
  let sum = 0;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const known = LEXICON.get(token);
    if (known === undefined) continue;
    if (known.phrases.length > 0) {
      const phrase = known.phrases.find(
        (p) =>
          i + p.words.length <= tokens.length &&
          p.words.every(
            (word, k) => tokens[i + k] === word && (k === 0 || !(scanned[i + k]!.gap & GAP_CLAUSE)),
          ),
      );
      if (phrase) {
        sum += phrase.score;
        i += phrase.words.length - 1;
        continue;
      }
    }
    let score = known.score;
    if (score === 0) continue;
    const next = tokens[i + 1];
    const previous = i > 0 && !(scanned[i]!.gap & GAP_CLAUSE) ? tokens[i - 1] : undefined;
    if (next !== undefined && CLOSING_NOUNS.has(next)) continue;
    if (token === 'like' && previous !== undefined && NEUTRAL_BEFORE_LIKE.has(previous)) continue;
    if (previous !== undefined && BOOSTERS.has(previous)) score *= BOOST_FACTOR;
    // Negation reaches back a few words, never across a clause boundary or a "but".
    for (let j = i - 1; j >= 0 && j >= i - NEGATION_WINDOW; j--) {
      if (scanned[j + 1]!.gap & GAP_CLAUSE || tokens[j] === 'but') break;
      if (isNegator(tokens[j]!)) {
        score *= NEGATION_FACTOR;
        break;
      }
    }
    sum += score;
  }
  if (EMOJI_HINT.test(text)) for (const match of text.matchAll(EMOJI)) sum += emoji[match[0]] ?? 0;
  return { sum, words: tokens.length };
}

export function normaliseSentimentScore(raw: number): number {
  return raw / Math.sqrt(raw * raw + NORMALISATION_ALPHA);
}

export function sentimentLabel(score: number): SentimentLabel {
  if (score >= SENTIMENT_LABEL_THRESHOLD) return 'positive';
  if (score <= -SENTIMENT_LABEL_THRESHOLD) return 'negative';
  return 'neutral';
}

export function analyzeSentiment(text: string, language: string): SentimentResult {
  const code = language.toLowerCase().split(/[-_]/)[0]!;
  if (!SENTIMENT_LANGUAGES.includes(code)) {
    return { score: 0, label: 'neutral', comparative: 0, language: code, supported: false };
  }
  const { sum, words } = scoreWords(text);
  const score = normaliseSentimentScore(sum);
  return {
    score: Math.round(score * 1000) / 1000,
    label: sentimentLabel(score),
    comparative: words === 0 ? 0 : Math.round((sum / words) * 1000) / 1000,
    language: 'en',
    supported: true,
  };
}
