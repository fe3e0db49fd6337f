// How soon a message wants attention: the sender's own priority headers, urgent wording, whether it was
// written to you or only copied to you or sent to a list, who sent it and what kind of mail it is. Points
// are added to a neutral 0.5 and the sum, clamped to 0..1, is cut into high / normal / low.
import type { AnalysisInput } from '../input.ts';
import { type CategoryResult, wordingIn, wordingOf } from './category.ts';
import type { SentimentResult } from './sentiment.ts';

export type PriorityLevel = 'high' | 'normal' | 'low';

export interface PriorityResult {
  level: PriorityLevel;
  /** 0..1; 0.5 is an ordinary message. */
  score: number;
  reasons: string[];
}

export interface PrioritySignals {
  sentiment: Pick<SentimentResult, 'score' | 'label'>;
  category: Pick<CategoryResult, 'category'>;
  /** The sender is in the mailbox's contacts or has been written to before. */
  fromKnownContact?: boolean;
  /** The mailbox is in To (true) rather than only in Cc or reached through a list (false). */
  directlyAddressed?: boolean;
}

export const HIGH_PRIORITY_AT = 0.7;
export const LOW_PRIORITY_AT = 0.35;

function headerValue(input: AnalysisInput, name: string): string | undefined {
  return input.headers
    .find((h) => h.name === name)
    ?.value.toLowerCase()
    .trim();
}

/** The sender's own marking: Importance, X-Priority (1 highest … 5 lowest), Priority, X-MSMail-Priority. */
function senderPriority(input: AnalysisInput): 'high' | 'low' | null {
  const importance = headerValue(input, 'importance');
  const xPriority = headerValue(input, 'x-priority');
  const priority = headerValue(input, 'priority');
  const msMail = headerValue(input, 'x-msmail-priority');
  const xLevel = xPriority ? Number.parseInt(xPriority, 10) : Number.NaN;
  if (importance === 'high' || xLevel === 1 || xLevel === 2 || priority === 'urgent' || msMail === 'high') {
    return 'high';
  }
  if (importance === 'low' || xLevel === 4 || xLevel === 5 || priority === 'non-urgent' || msMail === 'low') {
    return 'low';
  }
  return null;
}

const CATEGORY_POINTS: Record<string, number> = {
  primary: 0.1,
  updates: -0.1,
  forums: -0.15,
  social: -0.2,
  promotions: -0.3,
};

export function estimatePriority(input: AnalysisInput, signals: PrioritySignals): PriorityResult {
  let score = 0.5;
  const reasons: string[] = [];
  const add = (points: number, reason: string) => {
    score += points;
    reasons.push(`${reason} (${points > 0 ? '+' : ''}${points})`);
  };

  const marked = senderPriority(input);
  if (marked === 'high') add(0.25, 'marked important by the sender');
  if (marked === 'low') add(-0.2, 'marked low priority by the sender');

  const subjectUrgency = wordingIn(input.subject, 'urgent');
  const textUrgency = wordingOf(input).get('urgent') ?? [];
  const category = signals.category.category;
  // Marketing is urgent by design ("today only"); its urgency is not the reader's.
  const marketing = category === 'promotions' || category === 'social';
  if (!marketing && subjectUrgency.length > 0) {
    add(0.2, `urgent wording in the subject: ${subjectUrgency.join(', ')}`);
  } else if (!marketing && textUrgency.length > 0) {
    add(0.1, `urgent wording: ${textUrgency.slice(0, 3).join(', ')}`);
  }

  const isList = input.headers.some((h) => h.name === 'list-id' || h.name === 'list-unsubscribe');
  if (isList) add(-0.1, 'sent to a list');
  else if (signals.directlyAddressed === true) add(0.1, 'addressed to you directly');
  else if (signals.directlyAddressed === false) add(-0.1, 'you are only copied');

  if (signals.fromKnownContact === true) add(0.15, 'from a known contact');

  const categoryPoints = CATEGORY_POINTS[category];
  if (categoryPoints !== undefined) add(categoryPoints, `category ${category}`);
  if (category === 'updates' && (wordingOf(input).get('security')?.length ?? 0) > 0) {
    add(0.25, 'security notice');
  }
  // A complaint or a problem report from a person needs an answer sooner than small talk.
  if (!marketing && signals.sentiment.label === 'negative' && signals.sentiment.score <= -0.5) {
    add(0.1, 'strongly negative tone');
  }

  score = Math.min(1, Math.max(0, Math.round(score * 1000) / 1000));
  const level: PriorityLevel =
    score >= HIGH_PRIORITY_AT ? 'high' : score <= LOW_PRIORITY_AT ? 'low' : 'normal';
  return { level, score, reasons };
}
