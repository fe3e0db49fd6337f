// The tables mail intelligence owns (migrations/0031_intelligence.sql). The analyses themselves are the
// messages module's (`message_analyses`), written through its service.
import {
  boolean,
  date,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  real,
  text,
  timestamptz,
  uuid,
} from '../../core/orm.ts';
import type { CustomCategoryModel } from './understanding/index.ts';

export const intelligenceQueue = pgTable('intelligence_queue', {
  messageId: uuid('message_id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  act: boolean('act').notNull().default(true),
  jobId: uuid('job_id'),
  dueAt: timestamptz('due_at').notNull().defaultNow(),
  attempts: integer('attempts').notNull().default(0),
});

export const intelligenceSettings = pgTable('intelligence_settings', {
  organizationId: uuid('organization_id').primaryKey(),
  spamThreshold: real('spam_threshold'),
  junkFiling: boolean('junk_filing').notNull().default(true),
  quarantineMalware: boolean('quarantine_malware').notNull().default(true),
  llmDailyTokens: integer('llm_daily_tokens'),
  customCategories: jsonb('custom_categories').$type<CustomCategoryModel>(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});
export type IntelligenceSettingsRow = typeof intelligenceSettings.$inferSelect;

export const spamTokens = pgTable(
  'spam_tokens',
  {
    organizationId: uuid('organization_id').notNull(),
    token: integer('token').notNull(),
    spam: integer('spam').notNull().default(0),
    ham: integer('ham').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.token] })],
);

export type Verdict = 'spam' | 'ham';
export type ReportSource = 'api' | 'imap_move' | 'imap_keyword';

export const spamReports = pgTable('spam_reports', {
  messageId: uuid('message_id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  verdict: text('verdict').$type<Verdict>().notNull(),
  learned: text('learned').$type<Verdict>(),
  phishing: boolean('phishing').notNull().default(false),
  source: text('source').$type<ReportSource>().notNull(),
  userId: uuid('user_id'),
  reportedAt: timestamptz('reported_at').notNull().defaultNow(),
});

export const termDocuments = pgTable(
  'term_documents',
  {
    organizationId: uuid('organization_id').notNull(),
    term: text('term').notNull(),
    documents: integer('documents').notNull(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.term] })],
);

export const termCorpus = pgTable('term_corpus', {
  organizationId: uuid('organization_id').primaryKey(),
  documents: integer('documents').notNull().default(0),
});

export const categoryExamples = pgTable(
  'category_examples',
  {
    organizationId: uuid('organization_id').notNull(),
    messageId: uuid('message_id').notNull(),
    category: text('category').notNull(),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.messageId] })],
);

export const llmUsage = pgTable(
  'llm_usage',
  {
    organizationId: uuid('organization_id').notNull(),
    day: date('day').notNull(),
    tokens: integer('tokens').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.day] })],
);
