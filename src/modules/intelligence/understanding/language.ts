// Language of a message body. franc's trigram models decide, restricted with its `only` option to the
// languages an organisation's mail is realistically written in: fewer candidates is both faster and more
// accurate on short mail. franc still costs ~0.2-0.5 ms of CPU for a few hundred characters, a third or
// more of the budget for all analysers together, so prose that is unmistakably English or German (a fifth
// of its words are function words found only in that language's list, four times more than those of
// French, Spanish or the other) is named from those words first, and franc reads everything else. French
// and Spanish are left to franc: Italian and Portuguese share too many of their function words.
import { francAll } from 'franc';
import { FUNCTION_WORDS } from './keywords.ts';
import { maskLinksAndAddresses, scanWords } from './text.ts';

export interface LanguageResult {
  /** ISO 639-1 where one exists, else ISO 639-3; 'und' when the text is too short or has no letters. */
  code: string;
  /** 0..1: how far ahead of the runner-up the chosen language is, reduced for short text. */
  confidence: number;
}

/** franc's ISO 639-3 codes that we let it choose from, with their ISO 639-1 codes. */
export const LANGUAGE_CODES: Readonly<Record<string, string>> = {
  eng: 'en',
  deu: 'de',
  fra: 'fr',
  spa: 'es',
  ita: 'it',
  por: 'pt',
  nld: 'nl',
  swe: 'sv',
  dan: 'da',
  nob: 'nb',
  fin: 'fi',
  pol: 'pl',
  ces: 'cs',
  slk: 'sk',
  hun: 'hu',
  ron: 'ro',
  hrv: 'hr',
  slv: 'sl',
  tur: 'tr',
  vie: 'vi',
  ind: 'id',
  cat: 'ca',
  ell: 'el',
  rus: 'ru',
  ukr: 'uk',
  bul: 'bg',
  arb: 'ar',
  heb: 'he',
  pes: 'fa',
  hin: 'hi',
  jpn: 'ja',
  cmn: 'zh',
  kor: 'ko',
  tha: 'th',
};

const CANDIDATES = Object.keys(LANGUAGE_CODES);

/** Characters franc reads: its cost grows with them (~1 µs each), and 200 characters of prose decide reliably. */
export const LANGUAGE_SAMPLE_CHARS = 200;
/** Letters needed before we name a language at all. */
const MIN_LETTERS = 24;
/** Words the function-word count reads. */
const FUNCTION_WORD_SAMPLE = 80;

// Function words that belong to one of the four lists only ("the", "und", "les", "los"), so a hit is
// evidence for that language and no other of the four.
const EXCLUSIVE_FUNCTION_WORDS = new Map<string, string>();
{
  const languages = Object.keys(FUNCTION_WORDS) as Array<keyof typeof FUNCTION_WORDS>;
  for (const language of languages) {
    for (const word of FUNCTION_WORDS[language]) {
      if (languages.every((other) => other === language || !FUNCTION_WORDS[other].has(word))) {
        EXCLUSIVE_FUNCTION_WORDS.set(word, language);
      }
    }
  }
}

const NON_LATIN_LETTER =
  /[\u0370-\u03ff\u0400-\u04ff\u0590-\u06ff\u0900-\u097f\u0e00-\u0e7f\u3040-\u9fff\uac00-\ud7af]/;

/** English or German from function words alone, when the text leaves no doubt. */
function fromFunctionWords(text: string): LanguageResult | null {
  if (NON_LATIN_LETTER.test(text.slice(0, LANGUAGE_SAMPLE_CHARS * 2))) return null;
  // The whole text's words: the same scan the other analysers of the message use.
  const words = scanWords(maskLinksAndAddresses(text));
  const total = Math.min(words.length, FUNCTION_WORD_SAMPLE);
  if (total < 12) return null;
  const hits: Record<string, number> = { en: 0, de: 0, fr: 0, es: 0 };
  for (let i = 0; i < total; i++) {
    const language = EXCLUSIVE_FUNCTION_WORDS.get(words[i]!.lower);
    if (language) hits[language]!++;
  }
  const ranked = Object.entries(hits).sort((a, b) => b[1] - a[1]);
  const [best, runnerUp] = [ranked[0]!, ranked[1]!];
  if (best[0] !== 'en' && best[0] !== 'de') return null;
  if (best[1] < 6 || best[1] / total < 0.2 || best[1] < 4 * runnerUp[1]) return null;
  const margin = (best[1] - runnerUp[1]) / total;
  const confidence = Math.min(1, margin / 0.3) * Math.min(1, total / 40);
  return { code: best[0], confidence: Math.round(confidence * 1000) / 1000 };
}

const DIGITS_AND_SYMBOLS = /[\d\p{P}\p{S}]+/gu;

export function detectLanguage(text: string): LanguageResult {
  // URLs, addresses and numbers are the same in every language and would vote for English.
  const known = fromFunctionWords(text);
  if (known) return known;
  const head = maskLinksAndAddresses(text.slice(0, LANGUAGE_SAMPLE_CHARS * 2));
  const sample = head.replace(DIGITS_AND_SYMBOLS, ' ').replace(/\s+/g, ' ').trim();
  const letters = sample.replace(/\s/g, '').length;
  // One Han, kana or Hangul character carries about as much as a short Latin word.
  const ideographs =
    sample.match(/[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/gu)?.length ?? 0;
  const weightedLetters = letters + 2 * ideographs;
  if (weightedLetters < MIN_LETTERS) return { code: 'und', confidence: 0 };
  const ranked = francAll(sample.slice(0, LANGUAGE_SAMPLE_CHARS), {
    only: CANDIDATES,
    minLength: Math.min(MIN_LETTERS, sample.length),
  });
  const [best, runnerUp] = ranked;
  if (!best || best[0] === 'und') return { code: 'und', confidence: 0 };
  const code = LANGUAGE_CODES[best[0]] ?? best[0];
  // franc scores the winner 1 and the others relative to it; the gap to the runner-up is the evidence.
  const gap = runnerUp ? 1 - runnerUp[1] : 1;
  const lengthFactor = Math.min(1, weightedLetters / 150);
  const confidence = Math.min(1, gap / 0.05) * lengthFactor;
  return { code, confidence: Math.round(confidence * 1000) / 1000 };
}
