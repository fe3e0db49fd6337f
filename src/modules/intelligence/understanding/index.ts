// Every understanding analyser over one parsed message, as the background job runs them for each filed
// message. The body is cleaned once (quotes and signature removed, capped at MAX_ANALYSED_CHARS) and shared.
import type { AnalysisInput } from '../input.ts';
import { type CategoryResult, type CustomCategoryModel, categorize, subjectAndBody } from './category.ts';
import { type Entities, extractEntities, mergeEntities } from './entities.ts';
import { type DocumentFrequencies, extractKeywords, type Keyword, textTerms } from './keywords.ts';
import { detectLanguage, type LanguageResult } from './language.ts';
import { estimatePriority, type PriorityResult } from './priority.ts';
import { analyzeSentiment, type SentimentResult } from './sentiment.ts';
import { summarizeCleanText } from './summary.ts';
import { bodyOf } from './text.ts';

export type { BuiltInCategory, CategoryResult, CustomCategoryModel } from './category.ts';
export { BUILT_IN_CATEGORIES, categorize, trainCustomCategories } from './category.ts';
export type { AmountEntity, DateEntity, Entities, EntityOptions } from './entities.ts';
export { extractEntities } from './entities.ts';
export type { DocumentFrequencies, Keyword } from './keywords.ts';
export { extractKeywords, termsForFrequencies, textTerms } from './keywords.ts';
export type { LanguageResult } from './language.ts';
export { detectLanguage } from './language.ts';
export type { PriorityLevel, PriorityResult, PrioritySignals } from './priority.ts';
export { estimatePriority } from './priority.ts';
export type { SentimentLabel, SentimentResult } from './sentiment.ts';
export { analyzeSentiment } from './sentiment.ts';
export { summarizeCleanText, summarizeMessage, summarizeThread } from './summary.ts';
export { MAX_ANALYSED_CHARS, extractBodyText, splitSentences } from './text.ts';

export interface UnderstandingContext {
  /** The organisation's document frequencies (the table `messageTerms` fills). */
  frequencies: DocumentFrequencies;
  customCategories?: CustomCategoryModel;
  /** The sender is one of the mailbox's contacts. */
  fromKnownContact?: boolean;
  /** The mailbox is in To rather than only in Cc or behind a list. */
  directlyAddressed?: boolean;
  /** Keywords to return; 8 unless told. */
  keywordLimit?: number;
  /** Sentences in the summary; 2 unless told. */
  summarySentences?: number;
}

export interface Understanding {
  language: LanguageResult;
  sentiment: SentimentResult;
  keywords: Keyword[];
  entities: Entities;
  category: CategoryResult;
  priority: PriorityResult;
  summary: string;
}

/** The terms this message adds to the organisation's document-frequency table. */
export function messageTerms(
  input: AnalysisInput,
  language = detectLanguage(bodyOf(input).text).code,
): string[] {
  return messageTermSets(input, language).counted;
}

/** The terms this message adds to the table, and those whose frequencies `understand` looks up. */
export function messageTermSets(
  input: AnalysisInput,
  language = detectLanguage(bodyOf(input).text).code,
): { counted: string[]; asked: string[] } {
  return textTerms(subjectAndBody(input), language);
}

export function understand(input: AnalysisInput, context: UnderstandingContext): Understanding {
  const body = bodyOf(input);
  const language = detectLanguage(body.text.length > 0 ? body.text : input.subject);
  // Text too short to tell is scored with the English lexicon: its words only match English anyway.
  const sentiment = analyzeSentiment(body.text, language.code === 'und' ? 'en' : language.code);
  const keywords = extractKeywords(
    subjectAndBody(input),
    language.code,
    context.frequencies,
    context.keywordLimit ?? 8,
  );
  // The signature is where phone numbers and the sender's organisation are written; it is read on its own
  // so that the body's words, scanned once, serve the summary too.
  const entityOptions = {
    referenceDate: input.date ?? undefined,
    dayFirst: language.code !== 'en' && language.code !== 'und',
  };
  const bodyEntities = extractEntities(body.text, entityOptions);
  const entities = body.signature
    ? mergeEntities(bodyEntities, extractEntities(body.signature, entityOptions))
    : bodyEntities;
  const category = categorize(input, context.customCategories);
  const priority = estimatePriority(input, {
    sentiment,
    category,
    fromKnownContact: context.fromKnownContact,
    directlyAddressed: context.directlyAddressed,
  });
  const summary = summarizeCleanText(body.text, {
    sentences: context.summarySentences ?? 2,
    language: language.code,
    frequencies: context.frequencies,
  });
  return { language, sentiment, keywords, entities, category, priority, summary };
}
