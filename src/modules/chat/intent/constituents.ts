// Constituents other than dates and people: folders ("in Archive", "the Projects folder"), flags
// ("unread", "starred", "with attachments"), limits ("top 5", "the last email"), topic markers
// ("about", "regarding", "re:", "on the subject of") and the topic phrase a marker introduces.
import { alt, map, opt, phrase, punct, type Rule, seq, word } from './combinators.ts';
import { FUNCTION_WORDS, MAIL_NOUNS, SINGULAR_MAIL_NOUNS } from './lexicon.ts';
import type { Token } from './tokens.ts';

// ---- folders

const STANDARD_FOLDERS: Record<string, string> = {
  inbox: 'Inbox',
  sent: 'Sent',
  drafts: 'Drafts',
  draft: 'Drafts',
  archive: 'Archive',
  archived: 'Archive',
  archives: 'Archive',
  spam: 'Spam',
  junk: 'Spam',
  trash: 'Trash',
  bin: 'Trash',
  deleted: 'Trash',
  outbox: 'Outbox',
};

/** Standard folders that stand alone ("spam emails", "my inbox") without "in" or "folder". */
const SELF_EVIDENT_FOLDERS = new Set(['inbox', 'spam', 'junk', 'outbox', 'trash']);

const FOLDER_NOUNS = new Set(['folder', 'folders', 'mailbox', 'box', 'label', 'directory']);
const FOLDER_PREPS = new Set(['in', 'from', 'inside', 'within', 'into', 'under']);
const DETERMINERS = new Set(['my', 'the', 'our']);

export interface FolderMatch {
  folder: string;
  end: number;
}

function isFolderNameWord(t: Token | undefined): boolean {
  return (
    t !== undefined &&
    t.kind === 'word' &&
    !FUNCTION_WORDS.has(t.lower) &&
    !MAIL_NOUNS.has(t.lower) &&
    !FOLDER_NOUNS.has(t.lower)
  );
}

export function folderAt(tokens: readonly Token[], i: number): FolderMatch | null {
  let j = i;
  const prep = tokens[j]?.kind === 'word' && FOLDER_PREPS.has(tokens[j].lower);
  if (prep) j++;
  const det = tokens[j]?.kind === 'word' && DETERMINERS.has(tokens[j].lower);
  if (det) j++;
  const t = tokens[j];
  if (!t) return null;

  // "in the folder Receipts", "label 'Client work'", "in folder called Receipts"
  if (t.kind === 'word' && FOLDER_NOUNS.has(t.lower)) {
    let k = j + 1;
    if (tokens[k]?.kind === 'word' && ['named', 'called', 'labelled', 'labeled'].includes(tokens[k].lower))
      k++;
    const named = tokens[k];
    if (named?.kind === 'quoted') return { folder: named.text, end: k + 1 };
    if (named?.capitalized && isFolderNameWord(named)) return { folder: named.text, end: k + 1 };
    return null;
  }

  if (t.kind !== 'word') return null;
  const standard = STANDARD_FOLDERS[t.lower];
  if (standard) {
    let k = j + 1;
    if (tokens[k]?.kind === 'word' && tokens[k].lower === 'items') k++;
    const noun = tokens[k]?.kind === 'word' && FOLDER_NOUNS.has(tokens[k].lower);
    if (noun) k++;
    // "my sent emails" is about direction and "draft a reply" is a verb: those need "in" or "folder".
    const evident =
      SELF_EVIDENT_FOLDERS.has(t.lower) || ((det || prep) && t.lower !== 'sent' && t.lower !== 'draft');
    if (prep || noun || evident || (det && t.lower === 'sent' && k > j + 1))
      return { folder: standard, end: k };
    return null;
  }

  // "the Projects folder", "in my Client Work folder"
  let k = j;
  while (k < j + 3 && isFolderNameWord(tokens[k])) k++;
  if (k > j && tokens[k]?.kind === 'word' && FOLDER_NOUNS.has(tokens[k].lower)) {
    const nameTokens = tokens.slice(j, k);
    if (det || prep || nameTokens[0].capitalized) {
      return { folder: nameTokens.map((n) => n.text).join(' '), end: k + 1 };
    }
  }

  // "labelled Receipts", "tagged 'tax 2025'"
  if (!prep && !det && ['labelled', 'labeled', 'tagged'].includes(t.lower)) {
    const named = tokens[j + 1];
    if (named?.kind === 'quoted') return { folder: named.text, end: j + 2 };
    if (named?.capitalized && isFolderNameWord(named)) return { folder: named.text, end: j + 2 };
  }
  return null;
}

// ---- flags

export type FlagName = 'unread' | 'flagged' | 'hasAttachment';

export interface FlagMatch {
  flag: FlagName;
  value: boolean;
}

const ATTACHMENT_NOUNS = ['attachment', 'attachments', 'file', 'files'];

const flagRule: Rule<FlagMatch> = alt<FlagMatch>(
  map(word('unread', 'unopened', 'unseen'), () => ({ flag: 'unread', value: true })),
  map(
    seq(
      alt(
        word('not', 'never', "haven't", 'havent', "hasn't", "didn't"),
        phrase('have not'),
        phrase('not yet'),
      ),
      opt(word('been', 'yet')),
      word('read', 'opened', 'seen'),
    ),
    () => ({ flag: 'unread', value: true }),
  ),
  map(seq(word('already', 'previously'), word('read', 'opened', 'seen')), () => ({
    flag: 'unread',
    value: false,
  })),
  map(word('flagged', 'starred'), () => ({ flag: 'flagged', value: true })),
  map(seq(word('with'), word('a'), word('flag', 'star')), () => ({ flag: 'flagged', value: true })),
  map(alt(word('unflagged', 'unstarred'), phrase('not flagged'), phrase('not starred')), () => ({
    flag: 'flagged',
    value: false,
  })),
  map(word('attachments', 'attachment', 'attached'), () => ({ flag: 'hasAttachment', value: true })),
  map(
    seq(
      alt(
        word('with', 'having', 'has', 'have', 'containing', 'including'),
        phrase('that have'),
        phrase('that has'),
      ),
      opt(word('a', 'an', 'any', 'some', 'attached')),
      word(...ATTACHMENT_NOUNS),
    ),
    () => ({ flag: 'hasAttachment', value: true }),
  ),
  map(
    seq(
      alt(word('without', 'no', 'lacking'), phrase('with no')),
      opt(word('any')),
      word(...ATTACHMENT_NOUNS),
    ),
    () => ({ flag: 'hasAttachment', value: false }),
  ),
);

export function flagAt(tokens: readonly Token[], i: number): { flag: FlagMatch; end: number } | null {
  const m = flagRule(tokens, i);
  return m ? { flag: m.value, end: m.end } : null;
}

// ---- limits

const LIMIT_NUMBER_WORDS: Record<string, number> = {
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  twenty: 20,
};

function countAt(tokens: readonly Token[], i: number): number | null {
  const t = tokens[i];
  if (!t) return null;
  if (t.kind === 'number' && t.value! > 0 && t.value! <= 1000) return t.value!;
  if (t.kind === 'word' && t.lower in LIMIT_NUMBER_WORDS) return LIMIT_NUMBER_WORDS[t.lower];
  return null;
}

const LIMIT_ADJECTIVES = new Set([
  'unread',
  'flagged',
  'starred',
  'new',
  'received',
  'sent',
  'incoming',
  'important',
]);

/** From i, skip adjectives; the index of the noun after them. */
function nounAfterAdjectives(tokens: readonly Token[], i: number): number {
  let j = i;
  while (tokens[j]?.kind === 'word' && LIMIT_ADJECTIVES.has(tokens[j].lower)) j++;
  return j;
}

export interface LimitMatch {
  limit: number;
  /** Only the words that say the number are consumed; adjectives and the noun are scanned on. */
  end: number;
}

export function limitAt(tokens: readonly Token[], i: number): LimitMatch | null {
  const t = tokens[i];
  if (!t || (t.kind !== 'word' && t.kind !== 'number')) return null;
  // "top 5 senders"
  if (t.lower === 'top') {
    const n = countAt(tokens, i + 1);
    return n ? { limit: n, end: i + 2 } : null;
  }
  let first = i;
  if (t.lower === 'most' && tokens[i + 1]?.lower === 'recent') first = i + 1;
  if (
    ['last', 'latest', 'newest', 'recent'].includes(tokens[first].lower) &&
    (first > i || t.lower !== 'recent')
  ) {
    // "the last 5 emails"
    const n = countAt(tokens, first + 1);
    if (n) {
      const noun = tokens[nounAfterAdjectives(tokens, first + 2)];
      return noun && MAIL_NOUNS.has(noun.lower) ? { limit: n, end: first + 2 } : null;
    }
    // "Carol's last message", "the latest email"
    const noun = tokens[nounAfterAdjectives(tokens, first + 1)];
    return noun?.kind === 'word' && SINGULAR_MAIL_NOUNS.has(noun.lower) ? { limit: 1, end: first + 1 } : null;
  }
  const n = countAt(tokens, i);
  if (n) {
    // "my 10 most frequent senders"
    if (tokens[i + 1]?.lower === 'most') return { limit: n, end: i + 1 };
    // "the 3 latest emails"
    if (['latest', 'last', 'newest', 'recent'].includes(tokens[i + 1]?.lower ?? '')) {
      const noun = tokens[nounAfterAdjectives(tokens, i + 2)];
      if (noun && MAIL_NOUNS.has(noun.lower)) return { limit: n, end: i + 2 };
    }
    // "show 10 unread emails"
    const noun = tokens[nounAfterAdjectives(tokens, i + 1)];
    if (noun && MAIL_NOUNS.has(noun.lower) && !SINGULAR_MAIL_NOUNS.has(noun.lower))
      return { limit: n, end: i + 1 };
  }
  return null;
}

// ---- topic markers

const topicMarkerRule: Rule<string> = alt(
  word('about', 'regarding', 'concerning', 'mentioning', 'containing', 'titled', 'entitled', 'wrt'),
  map(seq(word('re'), opt(punct(':'))), () => 'marker'),
  phrase('on the subject of'),
  phrase('on the topic of'),
  phrase('on'),
  map(seq(word('with'), opt(word('the')), word('subject'), opt(word('line'))), () => 'marker'),
  map(seq(word('subject'), opt(word('line')), opt(punct(':'))), () => 'marker'),
  map(seq(opt(word('that', 'which')), word('mention', 'mentions', 'contain', 'contains')), () => 'marker'),
  phrase('related to'),
  phrase('relating to'),
  phrase('to do with'),
  phrase('referring to'),
  phrase('in regards to'),
  phrase('in regard to'),
  phrase('with regard to'),
  phrase('with regards to'),
  map(
    seq(
      word('with', 'containing', 'mentioning', 'using', 'including'),
      opt(word('the')),
      word('word', 'words', 'phrase', 'term', 'terms'),
    ),
    () => 'marker',
  ),
);

/** The end of a topic marker starting at i ("about", "re:", "on the subject of"). */
export function topicMarkerAt(tokens: readonly Token[], i: number): { end: number; word: string } | null {
  const m = topicMarkerRule(tokens, i);
  if (!m) return null;
  let end = m.end;
  if (tokens[end]?.kind === 'punct' && tokens[end].text === ':') end++;
  return { end, word: tokens[i].lower };
}
