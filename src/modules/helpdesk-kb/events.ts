// Knowledge-base and chatbot events: article changes (a help centre that caches articles refreshes on
// them) and a conversation handed to a person (the ticket itself announces ticket.created too).
import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';
import { ARTICLE_STATUSES } from './tables.ts';

const article = z.object({
  id: z.uuid(),
  title: z.string(),
  slug: z.string(),
  status: z.enum(ARTICLE_STATUSES),
  category_id: z.uuid().nullable(),
  url: z.string(),
});

export const kbArticleCreated = defineEvent(
  'kb_article.created',
  'A knowledge-base article was written',
  z.object({ article }),
);
export const kbArticleUpdated = defineEvent(
  'kb_article.updated',
  'A knowledge-base article changed (its text, category, tags, slug or status)',
  z.object({ article, changes: z.array(z.string()).describe('The fields that changed') }),
);
export const kbArticleDeleted = defineEvent(
  'kb_article.deleted',
  'A knowledge-base article was deleted',
  z.object({ article }),
);
export const chatEscalated = defineEvent(
  'helpdesk_chat.escalated',
  'The chatbot handed a conversation to a person: a ticket holds its transcript',
  z.object({
    conversation_id: z.uuid(),
    desk_id: z.uuid(),
    ticket_id: z.uuid(),
    ticket_number: z.number().int(),
    reason: z.enum(['requested', 'unanswered']),
    customer_email: z.string(),
  }),
);
