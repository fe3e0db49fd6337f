import { boolean, integer, jsonb, pgTable, real, smallint, text, timestamptz, uuid } from '../../core/orm.ts';

export const ARTICLE_STATUSES = ['draft', 'published'] as const;
export type ArticleStatus = (typeof ARTICLE_STATUSES)[number];
export type ConversationStatus = 'open' | 'awaiting_email' | 'escalated';
export type AnsweredBy = 'search' | 'llm';

export interface SourceLink {
  article_id: string;
  title: string;
  url: string;
  score: number;
}

export const kbCategories = pgTable('helpdesk_kb_categories', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  name: text('name').notNull(),
  description: text('description'),
  position: integer('position').notNull().default(0),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});

export const kbArticles = pgTable('helpdesk_kb_articles', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  categoryId: uuid('category_id'),
  title: text('title').notNull(),
  slug: text('slug').notNull(),
  body: text('body').notNull(),
  tags: text('tags').array().notNull().default([]),
  status: text('status').$type<ArticleStatus>().notNull(),
  publishedAt: timestamptz('published_at'),
  createdBy: uuid('created_by'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});

export const kbSettings = pgTable('helpdesk_kb_settings', {
  organizationId: uuid('organization_id').primaryKey(),
  publicUrl: text('public_url'),
  minScore: real('min_score').notNull(),
  escalateAfter: smallint('escalate_after').notNull(),
  useLlm: boolean('use_llm').notNull(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});

export const chatConversations = pgTable('helpdesk_chat_conversations', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  deskId: uuid('desk_id').notNull(),
  status: text('status').$type<ConversationStatus>().notNull(),
  customerEmail: text('customer_email'),
  customerName: text('customer_name'),
  unanswered: smallint('unanswered').notNull().default(0),
  ticketId: uuid('ticket_id'),
  ticketNumber: integer('ticket_number'),
  escalationReason: text('escalation_reason').$type<'requested' | 'unanswered'>(),
  messages: integer('messages').notNull().default(0),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});

export const chatMessages = pgTable('helpdesk_chat_messages', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  conversationId: uuid('conversation_id').notNull(),
  role: text('role').$type<'customer' | 'bot'>().notNull(),
  body: text('body').notNull(),
  answeredBy: text('answered_by').$type<AnsweredBy>(),
  sources: jsonb('sources').$type<SourceLink[]>().notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});

export type CategoryRow = typeof kbCategories.$inferSelect;
export type ArticleRow = typeof kbArticles.$inferSelect;
export type SettingsRow = typeof kbSettings.$inferSelect;
export type ConversationRow = typeof chatConversations.$inferSelect;
export type ChatMessageRow = typeof chatMessages.$inferSelect;
