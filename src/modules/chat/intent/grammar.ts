// The request grammar. A request is read in three passes over its tokens:
//  1. the frame: small talk, or an imperative reply ("draft a reply to …", "answer …") whose instruction
//     ("saying …", ": …", "tell him …") is cut off so that nothing in it is read as a filter;
//  2. constituents, left to right, each position trying in turn a quoted string, a date expression, a
//     folder, a flag, a limit, a topic marker with its phrase, a person after a preposition ("from",
//     "to", "with", "between"), and a person standing alone ("Carol's", "Frank sent", "is Bob …");
//  3. the intent, from the cue words outside the topics (metrics, feelings, summaries, search verbs)
//     and from whether the constituents describe mail at all ("what's the weather" does not).
import {
  type Bound,
  boundToIso,
  type Calendar,
  calendarFor,
  DATE_WORDS,
  type DateRange,
  dateExpressionAt,
} from './dates.ts';
import { flagAt, folderAt, limitAt, topicMarkerAt } from './constituents.ts';
import {
  AUXILIARIES,
  FUNCTION_WORDS,
  MAIL_NOUNS,
  OWN_SEND_VERBS,
  RECEIVE_VERBS,
  REPLY_VERBS,
  SEARCH_VERBS,
  SELF_WORDS,
  SEND_TO_ME_VERBS,
  SEND_VERBS,
  SENTIMENT_WORDS,
  SMALLTALK_ANCHORS,
  SMALLTALK_WORDS,
  SUMMARY_WORDS,
  THREAD_NOUNS,
  words,
} from './lexicon.ts';
import { canBeName, type Directory, directoryFor, type NameMatch, nameAt } from './people.ts';
import { type Token, tokenize } from './tokens.ts';
import type {
  Metric,
  ParseContext,
  ParsedRequest,
  PersonReference,
  PersonRole,
  RequestParams,
} from './types.ts';

// ---- word classes used only here

const DAY_PARTS = words(`morning afternoon evening day night`);
const GREETINGS = words(`hi hello hey hiya yo ok okay so um hmm well please`);
const POLITE = words(`
  please pls kindly can could would will you help me i want need to i'd like let's lets go ahead and
  just quickly now then also
`);
const COMPOSE_VERBS = words(`draft write compose prepare send create make craft type put`);
const REPLY_NOUNS = words(`reply replies response responses answer back`);
const REPLY_FILLERS = words(`a an the me quick short polite brief friendly formal nice kind firm`);
const SPEECH_GERUNDS = words(`
  asking confirming declining accepting agreeing thanking suggesting proposing requesting explaining
  apologising apologizing rejecting offering inviting promising reminding letting informing saying
`);
const SPEECH_VERBS = words(`
  ask confirm decline accept agree thank suggest propose request explain apologise apologize reject
  offer invite promise remind let inform
`);
const INSTRUCTION_SUBJECTS = words(`
  i we you he she they it there i'll we'll i'm we're it's i've we've i'd we'd you're they're he's
  she's that's
`);
const ADDRESSEES = words(`him her them us everyone everybody all`);

const PERSON_PREPS: Record<string, PersonRole> = {
  from: 'from',
  by: 'from',
  to: 'to',
  cc: 'to',
  bcc: 'to',
  for: 'to',
  with: 'any',
  between: 'any',
  involving: 'any',
  among: 'any',
};
/** After these a lower-case word may be a name ("from alice"); after "to" it is mostly a verb. */
const LOOSE_PREPS = words(`from by between`);
/** Before a person these words are determiners, so a capitalised word after them is a thing. */
const DETERMINERS = words(`the a an this that these those my our your his her their its`);
const ADVERBS = words(`
  usually ever actually just already really even also always still never typically normally generally
  often
`);
const SUBJECT_COPULAS = words(`was is seems seemed sounds sounded feels felt looks looked has had gets got`);
const SENTENCE_END = words(`. ! ? ; :`);
/** Words that end a topic phrase: the clause goes on about something else. */
const CLAUSE_WORDS = words(`
  that which who whom where when saying is are was were did do does has have had sent send received
  got i me you he she they we please so but because if than since before after until from by
`);
/** Words of the intents' own vocabulary: never a topic. */
const CUE_WORDS = words(`
  senders sender correspondents contacts emailers volume daily busiest average response reply replies
  respond answer time times stats statistics tally frequent active biggest top draft compose write
  prepare quick check happened catch fill points key main speed sum analyse analyze analysis rate
  turnaround long fast quickly soon usually per overall total everything anything mail emails search
  weekday day days changed anyone percentage percent proportion miss missed news ranked rank ranking
  typical mailers domains
`);
/** Verbs that only mail does: "did the contractor send the quote" is about mail. */
const MAIL_VERBS = words(`send sent emailed mailed forwarded replied cc cc'd bcc bcc'd`);
const FIND_VERBS = words(`show find list search look locate retrieve fetch display`);
const SENTIMENT_NOUNS = words(`
  tone tones mood moods sentiment sentiments emotion emotions emotional vibe vibes attitude tone-check
  tension friction hostility negativity positivity
`);
const TOP_NOUNS = words(`senders sender correspondents contacts emailers mailers domains`);
const INDEFINITES = words(`anything something nothing everything`);
/** Words that say what the request asks ("mood", "time"): an adjective before them is not a topic. */
const CUE_VOCABULARY = new Set([...SENTIMENT_WORDS, ...SENTIMENT_NOUNS, ...CUE_WORDS]);

const QUESTION_STARTS = words(`
  what what's whats who who's where where's when why how how's is are was were can could will would
  should
`);

// ---- helpers

const AND_OR = words(`and or`);
const ARTICLES = words(`a an`);
const ME = words(`me myself`);
const PERFECT = words(`have had ever`);

function lowerAt(tokens: readonly Token[], i: number): string {
  const t = tokens[i];
  return t && t.kind === 'word' ? t.lower : '';
}

function isWord(t: Token | undefined, set: Set<string>): boolean {
  return t !== undefined && t.kind === 'word' && set.has(t.lower);
}

function sentenceInitial(tokens: readonly Token[], i: number): boolean {
  for (let k = i - 1; k >= 0; k--) {
    const t = tokens[k];
    if (t.kind === 'punct') {
      if (SENTENCE_END.has(t.text)) return true;
      continue;
    }
    return t.kind === 'word' && GREETINGS.has(t.lower) && sentenceInitial(tokens, k);
  }
  return true;
}

/** "Sentence" text from a token on, trailing full stops and exclamation marks removed. */
function textFrom(text: string, tokens: readonly Token[], i: number): string {
  return text
    .slice(tokens[i].start)
    .trim()
    .replace(/[.!\s]+$/, '');
}

// ---- pass 1: frame

const SMALLTALK_PHRASES = [
  ['how', 'are', 'you'],
  ['how', 'are', 'you', 'doing'],
  ['who', 'are', 'you'],
  ['what', 'are', 'you'],
  ['what', 'can', 'you', 'do'],
  ["how's", 'it', 'going'],
  ["what's", 'up'],
  ['how', 'is', 'it', 'going'],
  ['good', 'night'],
];

function isSmalltalk(tokens: readonly Token[]): boolean {
  const typed: string[] = [];
  for (const t of tokens) {
    if (t.kind === 'punct') continue;
    if (t.kind !== 'word') return false;
    typed.push(t.lower);
  }
  if (typed.length === 0 || !typed.every((w) => SMALLTALK_WORDS.has(w))) return false;
  if (typed.some((w) => SMALLTALK_ANCHORS.has(w))) return true;
  const joined = ` ${typed.join(' ')} `;
  return SMALLTALK_PHRASES.some((p) => joined.includes(` ${p.join(' ')} `));
}

/** Index of the first token after greetings and fillers ("hi, ", "ok so "). */
function afterGreeting(tokens: readonly Token[]): number {
  let i = 0;
  for (;;) {
    const t = tokens[i];
    if (!t) return i;
    if (t.kind === 'punct' || isWord(t, GREETINGS)) i++;
    else if (t.lower === 'good' && isWord(tokens[i + 1], DAY_PARTS)) i += 2;
    else if (t.lower === 'thank' && lowerAt(tokens, i + 1) === 'you') i += 2;
    else if (t.lower === 'thanks' || t.lower === 'cheers') i++;
    else return i;
  }
}

interface ComposeFrame {
  /** Tokens before the instruction: the part that says which message to answer. */
  headEnd: number;
  instruction?: string;
}

/** "reply to …", "draft a response to …", "can you write back to …", "help me answer …" */
function composeFrame(tokens: readonly Token[], start: number, text: string, env: Env): ComposeFrame | null {
  let i = start;
  while (i < tokens.length && isWord(tokens[i], POLITE)) i++;
  const verb = lowerAt(tokens, i);
  let afterVerb = -1;
  if (verb === 'reply' || verb === 'respond' || verb === 'answer') afterVerb = i + 1;
  else if (verb === 'get' && lowerAt(tokens, i + 1) === 'back') afterVerb = i + 2;
  else if (COMPOSE_VERBS.has(verb)) {
    // "draft a reply", "write Carol a short response", "send him an answer"
    let k = i + 1;
    const name = nameAt(tokens, k, env.dir, false);
    if (name && !name.self) k = name.end;
    else if (isWord(tokens[k], ADDRESSEES)) k++;
    while (isWord(tokens[k], REPLY_FILLERS)) k++;
    if (isWord(tokens[k], REPLY_NOUNS)) afterVerb = k + 1;
  }
  if (afterVerb < 0) return null;
  return instructionAfter(tokens, afterVerb, text);
}

function instructionAfter(tokens: readonly Token[], from: number, text: string): ComposeFrame {
  const whole = { headEnd: tokens.length };
  for (let j = from; j < tokens.length; j++) {
    const t = tokens[j];
    const rest = (k: number): ComposeFrame =>
      k < tokens.length ? { headEnd: j, instruction: textFrom(text, tokens, k) } : { headEnd: j };
    if (t.kind === 'punct' && t.text === ':') return rest(j + 1);
    if (
      t.kind === 'quoted' &&
      (j === from || lowerAt(tokens, j - 1) === 'with' || lowerAt(tokens, j - 1) === 'saying')
    ) {
      return { headEnd: j, instruction: t.text };
    }
    if (t.kind !== 'word') continue;
    const w = t.lower;
    // "respond with a polite no" (but "the email with an attachment" is a flag)
    if (w === 'with' && isWord(tokens[j + 1], ARTICLES) && !flagAt(tokens, j)) return rest(j + 1);
    if (w === 'saying' || w === 'say') {
      const next = tokens[j + 1];
      if (next?.kind === 'quoted') return { headEnd: j, instruction: next.text };
      return rest(j + 1 + (lowerAt(tokens, j + 1) === 'that' ? 1 : 0));
    }
    if (w === 'tell' || w === 'telling') {
      let k = j + 1;
      if (isWord(tokens[k], ADDRESSEES)) k++;
      if (lowerAt(tokens, k) === 'that') k++;
      return rest(k);
    }
    if (w === 'that' && isWord(tokens[j + 1], INSTRUCTION_SUBJECTS)) return rest(j + 1);
    if (SPEECH_GERUNDS.has(w)) return rest(j);
    if (SPEECH_VERBS.has(w) && ['and', 'to', 'then'].includes(lowerAt(tokens, j - 1))) return rest(j);
  }
  return whole;
}

// ---- pass 2: constituents

interface FoundPerson extends PersonReference {
  at: number;
}

interface FoundTopic {
  at: number;
  text: string;
  /** From a marker or quotes, rather than words left over. */
  marked: boolean;
}

interface Scan {
  people: FoundPerson[];
  dates: Array<{ range: DateRange; text: string }>;
  folder?: string;
  flags: Partial<Record<'unread' | 'flagged' | 'hasAttachment', boolean>>;
  limit?: number;
  topics: FoundTopic[];
  /** Per token: 0 free, 1 part of a constituent, 2 part of a marked topic, 3 a leftover topic word. */
  used: Uint8Array;
  self: boolean;
  /** "from me" / "to me". */
  direction?: 'received' | 'sent';
  /** An "about" with nothing after it: "what's the thread with Grace about?" */
  danglingAbout: boolean;
}

interface Env {
  dir: Directory;
  cal: Calendar;
  text: string;
}

/** A date expression at i; its range is null when it names no real day ("31 February"). */
function dateAt(
  tokens: readonly Token[],
  i: number,
  env: Env,
): { range: DateRange | null; text: string; end: number } | null {
  const m = dateExpressionAt(tokens, i);
  if (!m) return null;
  const range = m.value.resolve(env.cal);
  const first = tokens[m.value.textStart];
  const last = tokens[m.end - 1];
  const text = env.text.slice(first.start, last.end).replace(/'s$/i, '');
  return { range, text, end: m.end };
}

/** How the words around a bare name make its role: null when nothing says it is a person. */
function bareRole(tokens: readonly Token[], i: number, m: NameMatch): PersonRole | null {
  if (m.possessive) return isWord(tokens[m.end], THREAD_NOUNS) ? 'any' : 'from';
  const prev = lowerAt(tokens, i - 1);
  const prev2 = lowerAt(tokens, i - 2);
  // "I emailed Bob", "did I write Frank"
  if (OWN_SEND_VERBS.has(prev) && (prev2 === 'i' || prev2 === 'we')) return 'to';
  // "answer Carol": the message to answer is Carol's
  if (REPLY_VERBS.has(prev)) return 'from';
  // "send Bob a reply", "write Carol a short response"
  let after = m.end;
  while (isWord(tokens[after], REPLY_FILLERS)) after++;
  if (COMPOSE_VERBS.has(prev) && isWord(tokens[after], REPLY_NOUNS)) return 'from';
  let next = m.end;
  while (isWord(tokens[next], ADVERBS)) next++;
  if (isWord(tokens[next], SEND_VERBS)) return 'from';
  if (isWord(tokens[next], SUBJECT_COPULAS)) return 'from';
  if (AUXILIARIES.has(prev) && tokens[i - 1]?.kind === 'word') return 'from';
  return null;
}

function barePersonAt(
  tokens: readonly Token[],
  i: number,
  env: Env,
): { people: PersonReference[]; end: number; self: boolean } | null {
  const t = tokens[i];
  if (!t || (t.kind !== 'word' && t.kind !== 'email' && t.kind !== 'domain')) return null;
  if (t.kind === 'word' && DETERMINERS.has(lowerAt(tokens, i - 1)) && !t.possessive) return null;
  const m = nameAt(tokens, i, env.dir, false);
  if (!m) return null;
  if (m.self) return { people: [], end: m.end, self: true };
  // "Carol and Dan": names joined by "and", "or" or commas share one role.
  const names: NameMatch[] = [m];
  for (;;) {
    const last = names[names.length - 1];
    const sep = tokens[last.end];
    const joins = sep && ((sep.kind === 'punct' && sep.text === ',') || isWord(sep, AND_OR));
    const next = joins ? nameAt(tokens, last.end + 1, env.dir, false) : null;
    if (!next || next.self || next.possessive) break;
    names.push(next);
  }
  const lastName = names[names.length - 1];
  const cued = bareRole(tokens, i, { ...m, end: lastName.end, possessive: lastName.possessive });
  // Without a cue only an address, a domain or a known, capitalised name mid-sentence is a person.
  const strong = t.kind !== 'word' || (m.known && t.capitalized && !sentenceInitial(tokens, i));
  if (cued === null && !strong) return null;
  const role = cued ?? 'any';
  const people = names.map((n) => ({ text: n.text, ...(n.address ? { address: n.address } : {}), role }));
  return { people, end: lastName.end, self: false };
}

interface PrepPeople {
  people: PersonReference[];
  end: number;
  direction?: 'received' | 'sent';
}

/** "from me" is mail the user sent; "to me" (also "reply to me") mail the user received. */
function selfDirection(prep: string): 'received' | 'sent' | undefined {
  if (prep === 'from' || prep === 'by') return 'sent';
  if (prep === 'to' || prep === 'cc' || prep === 'bcc' || prep === 'for') return 'received';
  return undefined;
}

/** "from alice", "to bob@acme.com", "with Priya", "between Alice and Bob", "from me". */
function prepPeopleAt(tokens: readonly Token[], i: number, env: Env): PrepPeople | null {
  const prep = lowerAt(tokens, i);
  let role = PERSON_PREPS[prep];
  if (!role) return null;
  // "reply to Carol", "write back to Eve": the message answered is theirs.
  if (prep === 'to' && (REPLY_VERBS.has(lowerAt(tokens, i - 1)) || lowerAt(tokens, i - 1) === 'back'))
    role = 'from';
  const people: PersonReference[] = [];
  let direction: 'received' | 'sent' | undefined;
  let j = i + 1;
  let first = true;
  for (;;) {
    const w = lowerAt(tokens, j);
    if (w === 'me' || w === 'myself' || w === 'us') {
      direction = selfDirection(prep);
      j++;
    } else {
      const m = nameAt(tokens, j, env.dir, first && LOOSE_PREPS.has(prep));
      if (!m) break;
      if (m.self) direction = selfDirection(prep);
      else {
        const personRole = m.possessive && isWord(tokens[m.end], THREAD_NOUNS) ? 'any' : role;
        people.push({ text: m.text, ...(m.address ? { address: m.address } : {}), role: personRole });
      }
      j = m.end;
    }
    first = false;
    const sep = tokens[j];
    const joins =
      sep && ((sep.kind === 'punct' && (sep.text === ',' || sep.text === '&')) || isWord(sep, AND_OR));
    if (!joins) break;
    const after = tokens[j + 1];
    const nextIsPerson =
      isWord(after, ME) || (after !== undefined && nameAt(tokens, j + 1, env.dir, false) !== null);
    if (!nextIsPerson) break;
    j++;
  }
  if (people.length === 0 && direction === undefined) return null;
  return { people, end: j, direction };
}

/** Where a topic phrase must stop: another constituent or clause begins at i. */
function topicBoundary(tokens: readonly Token[], i: number, env: Env): boolean {
  const t = tokens[i];
  if (t.kind === 'punct') return !['&', '/', '-', "'"].includes(t.text);
  if (t.kind === 'quoted' || t.kind === 'email' || t.kind === 'domain') return true;
  if (t.kind === 'word' && CLAUSE_WORDS.has(t.lower)) return true;
  if (t.kind === 'word' && t.possessive && canBeName(t)) return true;
  return (
    dateAt(tokens, i, env) !== null ||
    folderAt(tokens, i) !== null ||
    flagAt(tokens, i) !== null ||
    topicMarkerAt(tokens, i) !== null ||
    prepPeopleAt(tokens, i, env) !== null ||
    barePersonAt(tokens, i, env) !== null
  );
}

const TRIM_LEADING = (t: Token) =>
  t.kind !== 'word' || FUNCTION_WORDS.has(t.lower) || MAIL_NOUNS.has(t.lower) || SELF_WORDS.has(t.lower);
const TRIM_TRAILING = (t: Token) =>
  TRIM_LEADING(t) || SENTIMENT_WORDS.has(t.lower) || SUMMARY_WORDS.has(t.lower) || CUE_WORDS.has(t.lower);

/** The topics after a marker: "the Q3 budget", "invoices and receipts". */
function topicPhrase(
  tokens: readonly Token[],
  from: number,
  env: Env,
): { topics: FoundTopic[]; end: number } {
  if (tokens[from]?.kind === 'quoted') {
    return { topics: [{ at: from, text: tokens[from].text, marked: true }], end: from + 1 };
  }
  const pieces: number[][] = [[]];
  let j = from;
  while (j < tokens.length) {
    const t = tokens[j];
    if (isWord(t, AND_OR) || (t.kind === 'punct' && t.text === ',')) {
      if (pieces[pieces.length - 1].length > 0 && tokens[j + 1] && !topicBoundary(tokens, j + 1, env)) {
        pieces.push([]);
        j++;
        continue;
      }
      break;
    }
    if (topicBoundary(tokens, j, env)) break;
    pieces[pieces.length - 1].push(j);
    j++;
  }
  const topics: FoundTopic[] = [];
  let end = from;
  for (const piece of pieces) {
    let a = 0;
    let b = piece.length;
    while (a < b && TRIM_LEADING(tokens[piece[a]])) a++;
    while (b > a && TRIM_TRAILING(tokens[piece[b - 1]])) b--;
    if (a < b) {
      const kept = piece.slice(a, b).map((k) => tokens[k]);
      topics.push({
        at: piece[a],
        text: kept
          .map((k) => k.text)
          .join(' ')
          .toLowerCase(),
        marked: true,
      });
      end = piece[b - 1] + 1;
    } else if (piece.length > 0 && topics.length === 0) {
      // Only function words ("about it"): they are used up, but give no topic.
      end = Math.max(end, piece[0]);
    }
  }
  return { topics, end };
}

function isContentWord(t: Token): boolean {
  return (
    t.kind === 'word' &&
    /\p{L}/u.test(t.text) &&
    !FUNCTION_WORDS.has(t.lower) &&
    !MAIL_NOUNS.has(t.lower) &&
    !SELF_WORDS.has(t.lower) &&
    !SENTIMENT_WORDS.has(t.lower) &&
    !SENTIMENT_NOUNS.has(t.lower) &&
    !SUMMARY_WORDS.has(t.lower) &&
    !CUE_WORDS.has(t.lower) &&
    !SEND_VERBS.has(t.lower) &&
    !AUXILIARIES.has(t.lower) &&
    !SEARCH_VERBS.has(t.lower) &&
    !DATE_WORDS.has(t.lower) &&
    !SMALLTALK_ANCHORS.has(t.lower)
  );
}

/**
 * Whether leftover words are a thing the mail is about: not an adjective before a word of the request's
 * own vocabulary ("the general mood", "average response time"), nor after "anything" ("anything new").
 */
function isTopicRun(tokens: readonly Token[], run: number[], next: number): boolean {
  const after = tokens[next];
  if (after?.kind === 'word' && !MAIL_NOUNS.has(after.lower) && CUE_VOCABULARY.has(after.lower)) return false;
  return !INDEFINITES.has(lowerAt(tokens, run[0] - 1));
}

function scan(tokens: readonly Token[], start: number, env: Env): Scan {
  const s: Scan = {
    people: [],
    dates: [],
    flags: {},
    topics: [],
    used: new Uint8Array(tokens.length),
    self: false,
    danglingAbout: false,
  };
  const use = (from: number, to: number, mark = 1) => s.used.fill(mark, from, to);
  use(0, start);
  let i = start;
  while (i < tokens.length) {
    const t = tokens[i];
    if (t.kind === 'punct') {
      i++;
      continue;
    }
    if (t.kind === 'quoted') {
      s.topics.push({ at: i, text: t.text, marked: true });
      use(i, i + 1, 2);
      i++;
      continue;
    }
    const date = dateAt(tokens, i, env);
    if (date) {
      if (date.range) s.dates.push({ range: date.range, text: date.text });
      use(i, date.end);
      i = date.end;
      continue;
    }
    const folder = folderAt(tokens, i);
    if (folder) {
      s.folder ??= folder.folder;
      use(i, folder.end);
      i = folder.end;
      continue;
    }
    const flag = flagAt(tokens, i);
    if (flag) {
      s.flags[flag.flag.flag] ??= flag.flag.value;
      use(i, flag.end);
      i = flag.end;
      continue;
    }
    const limit = limitAt(tokens, i);
    if (limit) {
      s.limit ??= limit.limit;
      use(i, limit.end);
      i = limit.end;
      continue;
    }
    const marker = topicMarkerAt(tokens, i);
    if (marker) {
      const phrase = topicPhrase(tokens, marker.end, env);
      if (phrase.topics.length > 0) {
        s.topics.push(...phrase.topics);
        use(i, marker.end);
        use(marker.end, phrase.end, 2);
        i = phrase.end;
        continue;
      }
      const rest = tokens.slice(marker.end).every((r) => r.kind === 'punct');
      if (marker.word === 'about' && rest) s.danglingAbout = true;
      // A marker with nothing after it ("on emails from …") is only a preposition.
      if (marker.word !== 'on' || rest) {
        use(i, marker.end);
        i = marker.end;
        continue;
      }
    }
    const prep = prepPeopleAt(tokens, i, env);
    if (prep) {
      for (const p of prep.people) s.people.push({ ...p, at: i });
      s.direction ??= prep.direction;
      s.self ||= prep.direction !== undefined;
      use(i, prep.end);
      i = prep.end;
      continue;
    }
    const bare = barePersonAt(tokens, i, env);
    if (bare) {
      for (const p of bare.people) s.people.push({ ...p, at: i });
      s.self ||= bare.self;
      use(i, bare.end);
      i = bare.end;
      continue;
    }
    if (t.kind === 'word' && SELF_WORDS.has(t.lower)) s.self = true;
    i++;
  }
  // Words no constituent took: runs of content words are topics ("invoices from alice", "flight confirmation emails").
  let run: number[] = [];
  const flush = () => {
    if (run.length > 0) {
      s.topics.push({
        at: run[0],
        text: run
          .map((k) => tokens[k].text)
          .join(' ')
          .toLowerCase(),
        marked: false,
      });
      for (const k of run) s.used[k] = 3;
    }
    run = [];
  };
  for (let k = 0; k < tokens.length; k++) {
    if (s.used[k] === 0 && isContentWord(tokens[k])) run.push(k);
    else if (run.length > 0 && !isTopicRun(tokens, run, k)) run = [];
    else flush();
  }
  if (run.length > 0 && !isTopicRun(tokens, run, tokens.length)) run = [];
  flush();
  s.topics.sort((a, b) => a.at - b.at);
  return s;
}

// ---- direction, metric, intent

function nextSkippingAdverbs(tokens: readonly Token[], i: number): string {
  let k = i;
  while (isWord(tokens[k], ADVERBS) || isWord(tokens[k], PERFECT)) k++;
  return lowerAt(tokens, k);
}

function directionOf(tokens: readonly Token[], dir: Directory): 'received' | 'sent' | undefined {
  for (let i = 0; i < tokens.length; i++) {
    const w = lowerAt(tokens, i);
    const next = lowerAt(tokens, i + 1);
    const nextIsSelf =
      next === 'me' ||
      next === 'us' ||
      (tokens[i + 1]?.kind === 'email' && dir.self.has(tokens[i + 1].lower));
    if (SEND_TO_ME_VERBS.has(w) && nextIsSelf) return 'received';
    if ((w === 'i' || w === 'we') && RECEIVE_VERBS.has(nextSkippingAdverbs(tokens, i + 1))) return 'received';
    if ((w === 'i' || w === 'we') && OWN_SEND_VERBS.has(nextSkippingAdverbs(tokens, i + 1))) return 'sent';
    if (w === 'received' || w === 'incoming' || w === 'inbound') return 'received';
    if (w === 'outgoing' || w === 'outbound') return 'sent';
    if ((w === 'my' || w === 'our') && next === 'sent' && MAIL_NOUNS.has(lowerAt(tokens, i + 2)))
      return 'sent';
  }
  return undefined;
}

/** The lower-cased words outside topics, as one string with spaces around each word, for phrase tests. */
function cueText(tokens: readonly Token[], used: Uint8Array): string {
  const parts: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (used[i] === 2) parts.push('_');
    else if (t.kind === 'word' || t.kind === 'number') parts.push(t.lower);
    else if (t.kind === 'punct' && SENTENCE_END.has(t.text)) parts.push('.');
  }
  return ` ${parts.join(' ')} `;
}

const has = (text: string, phrases: readonly string[]) => phrases.some((p) => text.includes(` ${p} `));

function overlaps(a: Set<string>, b: Set<string>): boolean {
  for (const w of a) if (b.has(w)) return true;
  return false;
}

const PER_DAY_PHRASES = [
  'per day',
  'a day',
  'each day',
  'every day',
  'by day',
  'by weekday',
  'per weekday',
  'which day',
  'what day',
  'which days',
  'day of the week',
];
const PER_DAY_WORDS = words(`daily busiest`);
const RESPONSE_TIME_PHRASES = [
  'response time',
  'response times',
  'reply time',
  'reply times',
  'response rate',
  'time to reply',
  'time to respond',
  'time to answer',
];
const HOW_SOON = ['how quickly', 'how fast', 'how long', 'how soon'];
const ANSWERING = words(`reply replies respond responds answer answers take takes`);
const TIME_MEASURES = words(`average typical mean median takes take`);
const RANKING = words(`top most frequent biggest main busiest active ranked rank ranking volume`);
const WHO = words(`who who's`);
const COUNTING = words(`count total stats statistics tally percentage percent proportion`);
const COUNT_PHRASES = ['how many', 'how much', 'number of'];
const SUMMARY_PHRASES = [
  'sum up',
  'sum it up',
  'catch me up',
  'fill me in',
  'what happened',
  'key points',
  'main points',
  'brief me',
  'up to speed',
  'what was said',
  'what has been said',
  'what did i miss',
];
const WHAT = words(`what what's whats`);

function metricOf(cues: string, cueWords: Set<string>): { metric: Metric; specific: boolean } | null {
  if (has(cues, PER_DAY_PHRASES) || overlaps(PER_DAY_WORDS, cueWords)) {
    return { metric: 'volume_by_day', specific: true };
  }
  const answering = overlaps(ANSWERING, cueWords);
  if (
    has(cues, RESPONSE_TIME_PHRASES) ||
    cueWords.has('turnaround') ||
    (has(cues, HOW_SOON) && answering) ||
    (cueWords.has('time') && answering && overlaps(TIME_MEASURES, cueWords))
  ) {
    return { metric: 'response_time', specific: true };
  }
  if (
    (overlaps(TOP_NOUNS, cueWords) && overlaps(RANKING, cueWords)) ||
    (overlaps(WHO, cueWords) && cueWords.has('most'))
  ) {
    return { metric: 'top_senders', specific: true };
  }
  if (cueWords.has('volume')) return { metric: 'volume_by_day', specific: true };
  if (has(cues, COUNT_PHRASES) || overlaps(COUNTING, cueWords)) return { metric: 'count', specific: false };
  return null;
}

function summaryCue(cues: string, cueWords: Set<string>, s: Scan, tokens: readonly Token[]): boolean {
  if (overlaps(SUMMARY_WORDS, cueWords) || has(cues, SUMMARY_PHRASES)) return true;
  // "what's the thread with Grace about?"
  return s.danglingAbout && WHAT.has(lowerAt(tokens, afterGreeting(tokens)));
}

function sentimentCue(cueWords: Set<string>): 'strong' | 'weak' | null {
  if (overlaps(SENTIMENT_NOUNS, cueWords)) return 'strong';
  if (overlaps(SENTIMENT_WORDS, cueWords)) return 'weak';
  return null;
}

const EMPTY = (): RequestParams => ({ people: [], topics: [] });

const PARTICLES = words(`up out off down in on over`);
const OBJECT_STARTS = words(`a an the my our some me him her them us this that`);

/** The request opens with a word of no known class followed by its object: an imperative not served here. */
function unknownCommand(tokens: readonly Token[], start: number): boolean {
  const verb = tokens[start];
  if (verb?.kind !== 'word' || !isContentWord(verb) || verb.possessive) return false;
  let k = start + 1;
  if (isWord(tokens[k], PARTICLES)) k++;
  return isWord(tokens[k], OBJECT_STARTS);
}

export function parseRequest(text: string, context: ParseContext): ParsedRequest {
  const tokens = tokenize(text);
  if (isSmalltalk(tokens)) return { intent: 'smalltalk', confidence: 0.95, params: EMPTY() };

  const env: Env = {
    dir: directoryFor(
      context.knownPeople,
      context.selfAddresses,
      new Set(tokens.filter((t) => t.kind === 'word').map((t) => t.lower)),
    ),
    cal: calendarFor(context.now, context.timeZone),
    text,
  };
  const start = afterGreeting(tokens);
  const compose = composeFrame(tokens, start, text, env);
  const head = compose ? tokens.slice(0, compose.headEnd) : tokens;
  const s = scan(head, start, env);

  const params: RequestParams = { people: s.people.map(({ at: _at, ...p }) => p), topics: [] };
  const seenTopics = new Set<string>();
  for (const topic of s.topics) {
    const key = topic.text.toLowerCase();
    if (!seenTopics.has(key)) {
      seenTopics.add(key);
      params.topics.push(topic.text);
    }
  }
  if (s.dates.length > 0) {
    // Several date expressions narrow each other: "since May before June 10".
    const iso = (b: Bound | undefined) => (b ? boundToIso(b, env.cal) : undefined);
    let after = iso(s.dates[0].range.after);
    let before = iso(s.dates[0].range.before);
    for (const d of s.dates.slice(1)) {
      const a = iso(d.range.after);
      const b = iso(d.range.before);
      if (a && (!after || a > after)) after = a;
      if (b && (!before || b < before)) before = b;
    }
    if (after) params.after = after;
    if (before) params.before = before;
    params.dateText = s.dates.map((d) => d.text).join(', ');
  }
  if (s.folder) params.folder = s.folder;
  if (s.flags.unread !== undefined) params.unread = s.flags.unread;
  if (s.flags.flagged !== undefined) params.flagged = s.flags.flagged;
  if (s.flags.hasAttachment !== undefined) params.hasAttachment = s.flags.hasAttachment;
  if (s.limit !== undefined) params.limit = s.limit;
  const direction = s.direction ?? directionOf(head, env.dir);
  if (direction) params.direction = direction;

  if (compose) {
    if (compose.instruction) params.replyInstruction = compose.instruction;
    return { intent: 'compose_reply', confidence: 0.9, params };
  }

  const cues = cueText(head, s.used);
  const cueWords = new Set(cues.trim().split(' '));
  const outsideTopics = (k: number) => s.used[k] !== 2;
  const mailNoun = head.some((t, k) => outsideTopics(k) && t.kind === 'word' && MAIL_NOUNS.has(t.lower));
  const mailVerb = head.some((t, k) => outsideTopics(k) && t.kind === 'word' && MAIL_VERBS.has(t.lower));
  const strongSignal =
    params.people.length > 0 ||
    s.folder !== undefined ||
    Object.keys(s.flags).length > 0 ||
    s.limit !== undefined ||
    s.topics.some((t) => t.marked) ||
    mailNoun ||
    mailVerb ||
    direction !== undefined;
  const weakSignal = strongSignal || s.dates.length > 0 || s.self;

  const metric = metricOf(cues, cueWords);
  const sentiment = sentimentCue(cueWords);
  const summary = summaryCue(cues, cueWords, s, head);
  const families = [metric, sentiment, summary].filter(Boolean).length;
  const doubt = families > 1 ? 0.15 : 0;

  if (metric && (metric.specific || weakSignal)) {
    params.metric = metric.metric;
    return { intent: 'analytics', confidence: (metric.specific ? 0.9 : 0.85) - doubt, params };
  }
  const leftover = s.topics.some((t) => !t.marked);
  if (sentiment === 'strong' || (sentiment === 'weak' && weakSignal)) {
    return { intent: 'sentiment', confidence: (sentiment === 'strong' ? 0.9 : 0.8) - doubt, params };
  }
  // "is the client upset?"
  if (sentiment === 'weak' && leftover) return { intent: 'sentiment', confidence: 0.65 - doubt, params };
  if (summary) return { intent: 'summarize', confidence: 0.85 - doubt, params };

  const first = lowerAt(head, start);
  if (SEARCH_VERBS.has(first) && weakSignal) return { intent: 'search', confidence: 0.85, params };
  // "find invoices": a verb that only means searching, and a thing to search for
  if (FIND_VERBS.has(first) && leftover) return { intent: 'search', confidence: 0.75, params };
  // "any news from the lawyers?", "anything on the audit?"
  if ((first === 'any' || first === 'anything') && (weakSignal || leftover)) {
    return { intent: 'search', confidence: 0.7, params };
  }
  // "set up a meeting with Bob", "call my mother": a verb the grammar does not know, used as a command.
  if (unknownCommand(head, start)) return { intent: 'unknown', confidence: 0.5, params: EMPTY() };
  if (strongSignal) return { intent: 'search', confidence: 0.7, params };
  if (leftover && (s.dates.length > 0 || params.people.length > 0) && !QUESTION_STARTS.has(first)) {
    return { intent: 'search', confidence: 0.55, params };
  }
  return { intent: 'unknown', confidence: 0.5, params: EMPTY() };
}
