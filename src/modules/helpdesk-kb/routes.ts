import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import { enforce, type RateLimiter } from '../../core/ratelimit.ts';
import type { ChatService } from './chat.ts';
import { type ArticleView, type KbService, type KbSettings, SLUG } from './service.ts';
import { ARTICLE_STATUSES, type CategoryRow, type ChatMessageRow, type ConversationRow } from './tables.ts';

export interface ChatLimits {
  /** Messages a minute in one conversation. */
  perConversationPerMinute: number;
  /** Messages a minute from one client address (per organisation). */
  perIpPerMinute: number;
}

const id = z.uuid();
/** Text that PostgreSQL can store (no NUL) within a length. */
const text = (min: number, max: number) =>
  z
    .string()
    .min(min)
    .max(max)
    .refine((s) => !s.includes('\u0000'), 'must not contain NUL characters');
const trimmed = (min: number, max: number) =>
  z
    .string()
    .trim()
    .min(min)
    .max(max)
    .refine((s) => !s.includes('\u0000'), 'must not contain NUL characters');
const tag = trimmed(1, 64);
const slug = z.string().max(100).regex(SLUG, 'lower-case letters and digits joined by single dashes');
const status = z.enum(ARTICLE_STATUSES);
const iso = (d: Date | null) => d?.toISOString() ?? null;

const categorySchema = z.object({
  id,
  name: z.string(),
  description: z.string().nullable(),
  position: z.number().int(),
  articles: z.number().int().optional().describe('Articles in the category (in lists)'),
  created_at: z.string(),
  updated_at: z.string(),
});

function categoryView(c: CategoryRow & { articles?: number }) {
  return {
    id: c.id,
    name: c.name,
    description: c.description,
    position: c.position,
    ...(c.articles !== undefined && { articles: c.articles }),
    created_at: c.createdAt.toISOString(),
    updated_at: c.updatedAt.toISOString(),
  };
}

const categoryBody = z.strictObject({
  name: trimmed(1, 200),
  description: trimmed(0, 2000).nullish(),
  position: z.number().int().min(0).max(1_000_000).optional().describe('Display order, lowest first'),
});

const articleSchema = z.object({
  id,
  title: z.string(),
  slug: z.string(),
  body: z.string(),
  category_id: z.uuid().nullable(),
  tags: z.array(z.string()),
  status,
  url: z.string().describe('Where customers read it: the help centre’s `<public_url>/<slug>`, else this API'),
  published_at: z.string().nullable(),
  created_by: z.uuid().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});

const listedArticleSchema = articleSchema.extend({
  score: z.number().nullable().describe('With `q`: relevance (ts_rank_cd, 0–1)'),
  snippet: z.string().nullable().describe('With `q`: the matching fragments of the body, terms in **bold**'),
});

function articleView(a: ArticleView) {
  return {
    id: a.id,
    title: a.title,
    slug: a.slug,
    body: a.body,
    category_id: a.categoryId,
    tags: a.tags,
    status: a.status,
    url: a.url,
    published_at: iso(a.publishedAt),
    created_by: a.createdBy,
    created_at: a.createdAt.toISOString(),
    updated_at: a.updatedAt.toISOString(),
  };
}

const articleBody = z.strictObject({
  title: trimmed(1, 300),
  body: text(1, 200_000).describe('Markdown or plain text'),
  slug: slug.optional().describe('The public link’s last segment; made from the title when left out'),
  category_id: z.uuid().nullish(),
  tags: z.array(tag).max(50).optional(),
  status: status.optional().describe('Default draft; only published articles answer the chatbot'),
});

const settingsSchema = z.object({
  public_url: z.string().nullable(),
  min_score: z.number(),
  escalate_after: z.number().int(),
  use_llm: z.boolean(),
  llm_configured: z.boolean().describe('Whether this installation has a model (MAILROOM_LLM_URL)'),
});

const sourceSchema = z.object({
  article_id: id,
  title: z.string(),
  url: z.string(),
  score: z.number().describe('Share of the question’s meaningful words the article holds (0–1)'),
});

const chatReplySchema = z.object({
  conversation_id: id,
  status: z.enum(['open', 'awaiting_email', 'escalated']),
  answer: z.string(),
  answered_by: z.enum(['search', 'llm']).nullable().describe('null: no answer was found in the articles'),
  sources: z.array(
    sourceSchema.extend({ cited: z.boolean().describe('The answer is taken from (or cites) this article') }),
  ),
  escalated: z.boolean(),
  ticket_id: z.uuid().nullable(),
  ticket_number: z.number().int().nullable(),
  needs_email: z.boolean().describe('A person was asked for: send the customer’s address to open the ticket'),
});

const conversationSchema = z.object({
  id,
  desk_id: id,
  status: z.enum(['open', 'awaiting_email', 'escalated']),
  customer: z.object({ email: z.string().nullable(), name: z.string().nullable() }),
  unanswered: z.number().int(),
  ticket_id: z.uuid().nullable(),
  escalation_reason: z.enum(['requested', 'unanswered']).nullable(),
  created_at: z.string(),
  updated_at: z.string(),
  messages: z.array(
    z.object({
      id,
      role: z.enum(['customer', 'bot']),
      body: z.string(),
      answered_by: z.enum(['search', 'llm']).nullable(),
      sources: z.array(sourceSchema),
      created_at: z.string(),
    }),
  ),
});

function conversationView(c: ConversationRow, messages: ChatMessageRow[]) {
  return {
    id: c.id,
    desk_id: c.deskId,
    status: c.status,
    customer: { email: c.customerEmail, name: c.customerName },
    unanswered: c.unanswered,
    ticket_id: c.ticketId,
    escalation_reason: c.escalationReason,
    created_at: c.createdAt.toISOString(),
    updated_at: c.updatedAt.toISOString(),
    messages: messages.map((m) => ({
      id: m.id,
      role: m.role,
      body: m.body,
      answered_by: m.answeredBy,
      sources: m.sources,
      created_at: m.createdAt.toISOString(),
    })),
  };
}

export function kbRoutes(kb: KbService, chat: ChatService, limiter: RateLimiter, limits: ChatLimits) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['helpdesk-kb'];
    const read = { level: 'org', role: 'member', scope: 'helpdesk:read' } as const;
    const write = { level: 'org', role: 'member', scope: 'helpdesk:write' } as const;
    const admin = { level: 'org', role: 'admin', scope: 'helpdesk:write' } as const;
    const params = z.strictObject({ id });
    const org = (request: FastifyRequest) => authOf(request).organizationId!;
    const audit = (action: string, targetType: string, targetParam?: string) => ({
      action,
      targetType,
      ...(targetParam && { targetParam }),
    });
    const settingsView = (s: KbSettings) => ({
      public_url: s.publicUrl,
      min_score: s.minScore,
      escalate_after: s.escalateAfter,
      use_llm: s.useLlm,
      llm_configured: chat.llmConfigured,
    });

    // ---- categories -------------------------------------------------------------------------------------
    app.get(
      '/v1/helpdesk/kb/categories',
      {
        schema: {
          tags,
          summary: 'Knowledge-base categories, in display order',
          querystring: z.strictObject(pageQuery),
          response: { 200: pageOf(categorySchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const page = await kb.listCategories(org(request), request.query);
        return { ...page, items: page.items.map(categoryView) };
      },
    );
    app.post(
      '/v1/helpdesk/kb/categories',
      {
        schema: { tags, summary: 'Create a category', body: categoryBody, response: { 201: categorySchema } },
        config: { access: write, audit: audit('kb_category.create', 'kb_category') },
      },
      async (request, reply) => {
        const row = await kb.createCategory(org(request), request.body);
        request.auditTarget = { id: row.id };
        return reply.status(201).send(categoryView(row));
      },
    );
    app.get(
      '/v1/helpdesk/kb/categories/:id',
      {
        schema: { tags, summary: 'A category', params, response: { 200: categorySchema } },
        config: { access: read },
      },
      async (request) => categoryView(await kb.category(org(request), request.params.id)),
    );
    app.patch(
      '/v1/helpdesk/kb/categories/:id',
      {
        schema: {
          tags,
          summary: 'Change a category',
          params,
          body: categoryBody.partial(),
          response: { 200: categorySchema },
        },
        config: { access: write, audit: audit('kb_category.update', 'kb_category', 'id') },
      },
      async (request) => categoryView(await kb.updateCategory(org(request), request.params.id, request.body)),
    );
    app.delete(
      '/v1/helpdesk/kb/categories/:id',
      {
        schema: {
          tags,
          summary: 'Delete a category (its articles stay, uncategorised)',
          params,
          response: { 204: z.null() },
        },
        config: { access: write, audit: audit('kb_category.delete', 'kb_category', 'id') },
      },
      async (request, reply) => {
        await kb.deleteCategory(org(request), request.params.id);
        return reply.status(204).send(null);
      },
    );

    // ---- articles ---------------------------------------------------------------------------------------
    app.get(
      '/v1/helpdesk/kb/articles',
      {
        schema: {
          tags,
          summary: 'Articles, filtered, or searched and ranked',
          description:
            '`q` is web search syntax (PostgreSQL websearch_to_tsquery, English stemming): every word must match, `"quoted words"` match as a phrase, `or` between words matches either, `-word` excludes. With `q`, the best matches come first (title before tags before body), each with a highlighted snippet.',
          querystring: z.strictObject({
            ...pageQuery,
            q: trimmed(1, 500).optional(),
            category_id: z.uuid().optional(),
            status: status.optional(),
            tag: tag.optional(),
          }),
          response: { 200: pageOf(listedArticleSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const { page, page_size, ...filter } = request.query;
        const found = await kb.listArticles(org(request), filter, { page, page_size });
        return {
          ...found,
          items: found.items.map((a) => ({ ...articleView(a), score: a.score, snippet: a.snippet })),
        };
      },
    );
    app.post(
      '/v1/helpdesk/kb/articles',
      {
        schema: { tags, summary: 'Write an article', body: articleBody, response: { 201: articleSchema } },
        config: { access: write, audit: audit('kb_article.create', 'kb_article') },
      },
      async (request, reply) => {
        const { principal } = authOf(request);
        const row = await kb.createArticle(
          org(request),
          request.body,
          principal.kind === 'user' ? principal.userId : null,
        );
        request.auditTarget = { id: row.id };
        return reply.status(201).send(articleView(row));
      },
    );
    app.get(
      '/v1/helpdesk/kb/articles/:id',
      {
        schema: { tags, summary: 'An article', params, response: { 200: articleSchema } },
        config: { access: read },
      },
      async (request) => articleView(await kb.article(org(request), request.params.id)),
    );
    app.patch(
      '/v1/helpdesk/kb/articles/:id',
      {
        schema: {
          tags,
          summary: 'Change an article (publish it with `status: published`)',
          params,
          body: articleBody.partial(),
          response: { 200: articleSchema },
        },
        config: { access: write, audit: audit('kb_article.update', 'kb_article', 'id') },
      },
      async (request) => articleView(await kb.updateArticle(org(request), request.params.id, request.body)),
    );
    app.delete(
      '/v1/helpdesk/kb/articles/:id',
      {
        schema: { tags, summary: 'Delete an article', params, response: { 204: z.null() } },
        config: { access: write, audit: audit('kb_article.delete', 'kb_article', 'id') },
      },
      async (request, reply) => {
        await kb.deleteArticle(org(request), request.params.id);
        return reply.status(204).send(null);
      },
    );

    // ---- settings ---------------------------------------------------------------------------------------
    app.get(
      '/v1/helpdesk/kb/settings',
      {
        schema: {
          tags,
          summary: 'Where articles are read, and how the chatbot answers and escalates',
          response: { 200: settingsSchema },
        },
        config: { access: read },
      },
      async (request) => settingsView(await kb.settings(org(request))),
    );
    app.put(
      '/v1/helpdesk/kb/settings',
      {
        schema: {
          tags,
          summary: 'Change the knowledge base’s settings',
          body: z.strictObject({
            public_url: z
              .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
              .max(500)
              .nullish()
              .describe('The help centre: articles link to `<public_url>/<slug>`; null links to this API'),
            min_score: z
              .number()
              .min(0)
              .max(1)
              .optional()
              .describe('Share of a question’s words an article must hold to answer it from search (0.5)'),
            escalate_after: z
              .number()
              .int()
              .min(1)
              .max(20)
              .optional()
              .describe('Unanswered questions in a row before a person takes over (2)'),
            use_llm: z.boolean().optional().describe('Answer through the configured model (true)'),
          }),
          response: { 200: settingsSchema },
        },
        config: { access: admin, audit: audit('kb_settings.update', 'organization') },
      },
      async (request) => {
        request.auditTarget = { id: org(request) };
        return settingsView(await kb.putSettings(org(request), request.body));
      },
    );

    // ---- chat -------------------------------------------------------------------------------------------
    app.post(
      '/v1/helpdesk/chat',
      {
        schema: {
          tags,
          summary: 'Ask the chatbot: an answer from the articles, or a ticket for a person',
          description:
            'Called by the organisation’s website backend with an API key (`helpdesk:write`). The first message names the desk and starts a conversation; later ones name `conversation_id`. A person is asked for by words such as “human”, “agent” or “talk to someone”, or after `escalate_after` unanswered questions: the conversation then becomes a ticket on the desk, with the transcript. The ticket needs the customer’s address: without one the answer asks for it (`needs_email`), and the next message with an address (in `customer.email` or in the text) opens the ticket.',
          body: z.strictObject({
            conversation_id: z.uuid().optional(),
            desk_id: z.uuid().optional().describe('Required to start a conversation'),
            message: trimmed(1, 4000),
            customer: z
              .strictObject({
                email: z.email().max(320).nullish(),
                name: trimmed(0, 200).nullish(),
              })
              .optional(),
          }),
          response: { 200: chatReplySchema },
        },
        config: { access: write, audit: audit('helpdesk_chat.message', 'helpdesk_chat') },
      },
      async (request) => {
        const organizationId = org(request);
        await enforce(
          limiter,
          { name: 'helpdesk_chat:ip', limit: limits.perIpPerMinute, windowSeconds: 60 },
          `${organizationId}:${request.ip}`,
        );
        if (request.body.conversation_id)
          await enforce(
            limiter,
            { name: 'helpdesk_chat:conversation', limit: limits.perConversationPerMinute, windowSeconds: 60 },
            request.body.conversation_id,
          );
        const reply = await chat.message(organizationId, request.body);
        request.auditTarget = { id: reply.conversation_id };
        return reply;
      },
    );
    app.get(
      '/v1/helpdesk/chat/:id',
      {
        schema: {
          tags,
          summary: 'A chatbot conversation with its transcript',
          params,
          response: { 200: conversationSchema },
        },
        config: { access: read },
      },
      async (request) => {
        const { conversation, messages } = await chat.conversationWithMessages(
          org(request),
          request.params.id,
        );
        return conversationView(conversation, messages);
      },
    );
  };
}
