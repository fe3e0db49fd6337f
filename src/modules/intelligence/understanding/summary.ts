// Extractive summaries: the sentences that carry most of a message's weight, in their original order.
// A sentence scores by the weight of its words (how often the message uses them, and how unusual they are
// in the organisation's mail when frequencies are given), with a bonus for coming early and for asking
// something; greetings and thanks-only lines never make it in.
import {
  type DocumentFrequencies,
  characterPairs,
  inverseDocumentFrequency,
  isContentWord,
  withoutPossessive,
  stopwordsFor,
} from './keywords.ts';
import { extractBodyText, maskLinksAndAddresses, scanWords, sentenceSpans } from './text.ts';

export interface SummaryOptions {
  /** Sentences to keep; 2 for a message, 1 per message in a thread unless told. */
  sentences?: number;
  /** Language code for stopwords; all four lists apply when unknown. */
  language?: string;
  /** The organisation's document frequencies, to weight unusual words above common ones. */
  frequencies?: DocumentFrequencies;
}

const GREETING_ONLY =
  /^(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)|hallo|liebe[rs]?|guten tag|bonjour|salut|hola|buenos días|ciao|hej|hoi)\b[^.!?]{0,40}[,!.:]?$/i;
const GREETING_PREFIX =
  /^(?:hi|hello|hey|dear|hallo|liebe[rs]?|bonjour|hola|ciao|hej|hoi)\s+[\p{L}'’. -]{1,40},\s*/iu;
const COURTESY_ONLY =
  /^(?:thanks?(?: you)?(?: (?:so|very) much)?|many thanks|thanks in advance|cheers|best|regards|kind regards|hope you(?:'re| are) (?:well|doing well)|hope this helps|let me know(?: if you have any questions)?|danke|merci|gracias)[\s,.!]*$/i;
const MAX_SENTENCE_CHARS = 300;

interface Candidate {
  text: string;
  index: number;
  words: string[];
}

/** Sentences that can stand in a summary, with their content words, from one scan of the text. */
function candidates(text: string, stopwords: ReadonlySet<string>): Candidate[] {
  const out: Candidate[] = [];
  // Links and addresses are blanked (same length, so positions still point into `text`).
  const words = scanWords(maskLinksAndAddresses(text));
  let w = 0;
  sentenceSpans(text).forEach(([start, end], index) => {
    const sentenceWords: string[] = [];
    let count = 0;
    for (; w < words.length && words[w]!.start < end; w++) {
      const scanned = words[w]!;
      const word = withoutPossessive(scanned.lower);
      const parts = scanned.ideographic ? characterPairs(word) : [word];
      count += parts.length;
      for (const part of parts) if (isContentWord(part, stopwords)) sentenceWords.push(part);
    }
    const sentence = text.slice(start, end).replace(GREETING_PREFIX, '');
    if (count < 3 || sentence === '' || GREETING_ONLY.test(sentence) || COURTESY_ONLY.test(sentence)) return;
    const capitalised = sentence.charAt(0).toUpperCase() + sentence.slice(1);
    out.push({ text: capitalised, index, words: sentenceWords });
  });
  return out;
}

function shorten(sentence: string): string {
  if (sentence.length <= MAX_SENTENCE_CHARS) return sentence;
  const cut = sentence.lastIndexOf(' ', MAX_SENTENCE_CHARS);
  return `${sentence.slice(0, cut > 0 ? cut : MAX_SENTENCE_CHARS)}…`;
}

/** Picks the best `count` candidates, returned in their original order. */
function pickSentences(pool: Candidate[], count: number, options: SummaryOptions): Candidate[] {
  if (pool.length <= count) return pool;
  const frequency = new Map<string, number>();
  for (const candidate of pool)
    for (const word of candidate.words) frequency.set(word, (frequency.get(word) ?? 0) + 1);
  // Each distinct word's weight once: its count here, times how unusual it is in the organisation's mail.
  const weights = new Map<string, number>();
  for (const [word, count] of frequency) {
    weights.set(
      word,
      count * (options.frequencies ? inverseDocumentFrequency(options.frequencies, word) : 1),
    );
  }
  const weight = (word: string) => weights.get(word)!;
  const last = pool[pool.length - 1]!.index || 1;
  const scored = pool.map((candidate) => {
    const distinct = new Set(candidate.words);
    let sum = 0;
    for (const word of distinct) sum += weight(word);
    // Square root of the length: long sentences carry more, but not proportionally more.
    const content = sum / Math.sqrt(Math.max(1, candidate.words.length));
    const position = 1 + 0.5 * (1 - candidate.index / last);
    const question = candidate.text.endsWith('?') ? 1.2 : 1;
    return { candidate, score: content * position * question };
  });
  scored.sort((a, b) => b.score - a.score || a.candidate.index - b.candidate.index);
  return scored
    .slice(0, count)
    .map((s) => s.candidate)
    .sort((a, b) => a.index - b.index);
}

/** A summary of text that is already clean (the `text` of `extractBodyText`). */
export function summarizeCleanText(text: string, options: SummaryOptions = {}): string {
  const pool = candidates(text, stopwordsFor(options.language ?? ''));
  const chosen = pickSentences(pool, Math.max(1, options.sentences ?? 2), options);
  return chosen.map((c) => shorten(c.text)).join(' ');
}

/** A summary of one message body (quoted replies and the signature are removed first). */
export function summarizeMessage(text: string, options: SummaryOptions = {}): string {
  return summarizeCleanText(extractBodyText(text).text, options);
}

function displayName(from: string): string {
  const match = /^\s*"?([^"<]*?)"?\s*<([^>]+)>\s*$/.exec(from);
  if (match) return match[1]!.trim() || match[2]!.trim();
  return from.trim();
}

function formatDate(date: Date): string {
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

const normaliseSentence = (sentence: string) =>
  sentence
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();

/**
 * One line per message, oldest first: who wrote, when, and the gist of what they added. Sentences an earlier
 * message already said (quotes a client did not mark) are skipped; a message that adds nothing is left out.
 */
export function summarizeThread(
  messages: Array<{ from: string; date: Date; text: string }>,
  options: SummaryOptions = {},
): string {
  const ordered = messages
    .map((message, position) => ({ message, position }))
    .sort((a, b) => a.message.date.getTime() - b.message.date.getTime() || a.position - b.position);
  const said = new Set<string>();
  const lines: string[] = [];
  const stopwords = stopwordsFor(options.language ?? '');
  for (const { message } of ordered) {
    const pool = candidates(extractBodyText(message.text).text, stopwords);
    const fresh = pool.filter((c) => !said.has(normaliseSentence(c.text)));
    for (const candidate of pool) said.add(normaliseSentence(candidate.text));
    const chosen = pickSentences(fresh, Math.max(1, options.sentences ?? 1), options);
    if (chosen.length === 0) continue;
    lines.push(
      `${displayName(message.from)} (${formatDate(message.date)}): ${chosen.map((c) => shorten(c.text)).join(' ')}`,
    );
  }
  return lines.join('\n');
}
