// The chatbot's language, kept apart from its flow: what counts as asking for a person, which words of a
// question carry its meaning, how an article is cut into passages and how an answer, a grounded prompt
// and a ticket's transcript are written. Pure functions: no database, no HTTP.
import type { LlmMessage } from '../../providers/llm/types.ts';
import type { ChatMessageRow, SourceLink } from './tables.ts';

/** What the model is told to reply when the articles do not hold the answer. */
export const NO_ANSWER = 'NO_ANSWER';

// Asking for a person, in English: the nouns alone ("human please", "agent"), or a verb of contact.
const PERSON_NOUN =
  /\b(?:humans?|agents?|representatives?|operators?|(?:real|live|actual)\s+(?:person|people|human))\b/i;
const CONTACT_VERB =
  /\b(?:talk|speak|chat)\s+(?:to|with)\b|\bcontact\s+(?:support|someone|somebody|a\s+person|you)\b|\b(?:open|create|raise|file)\s+a\s+(?:support\s+)?ticket\b|\bcall\s+me\b/i;

/** Whether the customer asks to be put through to a person. */
export function asksForPerson(message: string): boolean {
  return PERSON_NOUN.test(message) || CONTACT_VERB.test(message);
}

const EMAIL = /[^\s@<>()[\]"',;:]+@[^\s@<>()[\]"',;:]+\.[a-z]{2,}/i;

/** An address the customer typed into the chat (asked for one when a person was wanted). */
export function emailIn(message: string): string | null {
  const found = EMAIL.exec(message)?.[0];
  return found ? found.replace(/[.]+$/, '').toLowerCase() : null;
}

// Stems of the words people wrap questions in, which say nothing about the subject. PostgreSQL's
// English stop words (how, do, I, my, the…) are gone already.
const FILLER = new Set([
  'hi',
  'hello',
  'hey',
  'pleas',
  'thank',
  'thanks',
  'help',
  'need',
  'want',
  'get',
  'can',
  'could',
  'would',
  'like',
  'know',
  'tell',
  'question',
  'someth',
  'anyth',
  'way',
  'also',
  'one',
  'use',
]);

/** The stems of a question that carry its meaning. */
export function meaningful(lexemes: string[]): string[] {
  return lexemes.filter((l) => !FILLER.has(l) && l.length > 1);
}

export interface Passage {
  /** What is searched: a heading with the paragraph under it. */
  search: string;
  /** What is quoted. */
  text: string;
}

/** A Markdown or plain-text article as paragraphs, each with the heading above it (for matching). */
export function passagesOf(body: string): Passage[] {
  const passages: Passage[] = [];
  let heading = '';
  for (const block of body.replace(/\r\n?/g, '\n').split(/\n\s*\n/)) {
    const lines = block.split('\n').filter((l) => l.trim());
    if (!lines.length) continue;
    // A heading line labels what follows; a block of headings only labels the next paragraph.
    const headings = lines.filter((l) => /^\s{0,3}#{1,6}\s/.test(l));
    const rest = lines.filter((l) => !/^\s{0,3}#{1,6}\s/.test(l));
    if (headings.length) heading = plain(headings.at(-1)!);
    if (!rest.length) continue;
    const text = rest.map((l) => l.trimEnd()).join('\n');
    passages.push({ search: `${heading}\n${plain(text)}`, text: plain(text) });
  }
  return passages;
}

/** Markdown's marks taken out of a passage (emphasis, links, code fences, heading hashes). */
function plain(text: string): string {
  return text
    .replace(/^\s{0,3}#{1,6}\s+/gm, '')
    .replace(/^```.*$/gm, '')
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\[([^\]]+)\]\(([^)]+)\)/g, '$1 ($2)')
    .replace(/(\*\*|__)(.+?)\1/g, '$2')
    .replace(/`([^`]+)`/g, '$1')
    .trim();
}

/** The longest quoted passage; a longer paragraph is cut after the sentence that passes it. */
const MAX_QUOTE = 700;

/**
 * The extractive answer: the passage holding most of the question's stems (the earliest of equals),
 * cut to a readable length, then where to read more.
 */
export function extractiveAnswer(passages: Passage[], hits: number[], source: SourceLink): string {
  let best = 0;
  for (let i = 1; i < hits.length; i++) if (hits[i]! > hits[best]!) best = i;
  const quote = passages.length ? shorten(passages[best]!.text) : '';
  return `${quote}\n\nMore in “${source.title}”: ${source.url}`.trim();
}

function shorten(text: string): string {
  if (text.length <= MAX_QUOTE) return text;
  const sentences = text.match(/[^.!?\n]+(?:[.!?]+|\n|$)/g) ?? [text];
  let out = '';
  for (const s of sentences) {
    if (out && out.length + s.length > MAX_QUOTE) break;
    out += s;
  }
  return out.length > MAX_QUOTE ? `${out.slice(0, MAX_QUOTE - 1).trimEnd()}…` : out.trim();
}

/** Article text given to the model, per article. */
const ARTICLE_CHARS = 6_000;
/** Earlier turns of the conversation given to the model. */
const HISTORY_MESSAGES = 6;

/** The grounded request: the rules and the numbered articles, the conversation so far, the question. */
export function groundedPrompt(
  articles: { title: string; url: string; body: string }[],
  history: ChatMessageRow[],
  question: string,
): LlmMessage[] {
  const numbered = articles
    .map((a, i) => `[${i + 1}] ${a.title}\nURL: ${a.url}\n${a.body.slice(0, ARTICLE_CHARS)}`)
    .join('\n\n---\n\n');
  const system = [
    'You are a customer support assistant. Answer the customer’s latest question using only the numbered help articles below.',
    'Rules:',
    '- Use only what the articles say. Do not guess and do not add outside knowledge, prices, promises or links.',
    '- Cite each article you use by its number in square brackets, for example [1].',
    `- If the articles do not answer the question, reply with exactly ${NO_ANSWER} and nothing else.`,
    '- Answer briefly, in the customer’s language, and do not mention these rules.',
    '',
    'Articles:',
    '',
    numbered,
  ].join('\n');
  return [
    { role: 'system', content: system },
    ...history
      .slice(-HISTORY_MESSAGES)
      .map((m): LlmMessage => ({ role: m.role === 'customer' ? 'user' : 'assistant', content: m.body })),
    { role: 'user', content: question },
  ];
}

/** The model's reply read: null when it found no answer; else the text and the articles it cited (1-based). */
export function readModelReply(
  reply: string,
  articleCount: number,
): { text: string; cited: number[] } | null {
  const text = reply.trim();
  if (!text || text.includes(NO_ANSWER)) return null;
  const cited = [...text.matchAll(/\[(\d{1,2})\]/g)]
    .map((m) => Number(m[1]))
    .filter((n) => n >= 1 && n <= articleCount);
  return { text, cited: [...new Set(cited)].sort((x, y) => x - y) };
}

/** The conversation as the ticket's first comment: who said what, with the articles the bot pointed to. */
export function transcript(
  conversationId: string,
  customer: { email: string; name: string | null },
  messages: { role: 'customer' | 'bot'; body: string; sources: SourceLink[]; createdAt: Date }[],
): string {
  const who = customer.name ? `${customer.name} <${customer.email}>` : customer.email;
  const lines = [`Chat conversation ${conversationId} with ${who}:`, ''];
  for (const m of messages) {
    const time = m.createdAt.toISOString().slice(11, 19);
    lines.push(`[${time}] ${m.role === 'customer' ? 'Customer' : 'Bot'}: ${m.body}`);
    for (const s of m.sources) lines.push(`    source: ${s.title} (${s.url})`);
    lines.push('');
  }
  return lines.join('\n').trimEnd();
}

/** A ticket subject from the conversation's first question. */
export function subjectOf(firstQuestion: string): string {
  const line = firstQuestion.replace(/\s+/g, ' ').trim();
  return `Chat: ${line.length > 80 ? `${line.slice(0, 79)}…` : line}`;
}
