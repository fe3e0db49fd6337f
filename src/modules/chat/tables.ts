import { jsonb, pgTable, real, text, timestamptz, uuid } from '../../core/orm.ts';
import type { Intent } from './intent/index.ts';

/** Who wrote the answer: the model, Mailroom from the mail itself, or a fixed text (greetings, help). */
export type AnsweredBy = 'llm' | 'extractive' | 'template';

/** What became of the model for a turn that could use it. */
export type LlmOutcome =
  | 'used'
  | 'not_configured'
  | 'not_requested'
  | 'budget_exhausted'
  | 'timeout'
  | 'error'
  | 'no_answer';

export interface Citation {
  message_id: string;
  subject: string | null;
  /** `Name <address>`, or the address alone. */
  from: string | null;
  /** When the message arrived (ISO 8601). */
  date: string;
  snippet: string;
}

export const chatTurns = pgTable('chat_turns', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  userId: uuid('user_id'),
  apiKeyId: uuid('api_key_id'),
  mailboxId: uuid('mailbox_id'),
  accountId: uuid('account_id'),
  text: text('text').notNull(),
  intent: text('intent').$type<Intent>().notNull(),
  confidence: real('confidence').notNull(),
  params: jsonb('params').$type<Record<string, unknown>>().notNull(),
  answer: text('answer').notNull(),
  answeredBy: text('answered_by').$type<AnsweredBy>().notNull(),
  llm: text('llm').$type<LlmOutcome>(),
  citations: jsonb('citations').$type<Citation[]>().notNull(),
  data: jsonb('data').$type<Record<string, unknown>>(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});
export type ChatTurnRow = typeof chatTurns.$inferSelect;
