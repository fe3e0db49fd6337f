import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { AppError, badRequest } from '../../core/errors.ts';
import { problemOf } from '../../core/http.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import { enforce, type Limit, type RateLimiter } from '../../core/ratelimit.ts';
import type { Asker, ChatInput, ChatService } from './service.ts';

const INTENTS = [
  'search',
  'summarize',
  'sentiment',
  'analytics',
  'compose_reply',
  'smalltalk',
  'unknown',
] as const;
const METRICS = ['count', 'top_senders', 'response_time', 'volume_by_day'] as const;
const LABELS = ['negative', 'neutral', 'positive'] as const;
/** Requests a socket may have waiting for their answers; more are refused until answers go out. */
const MAX_PENDING_FRAMES = 8;

const chatBody = z.strictObject({
  text: z
    .string()
    .trim()
    .min(1)
    .max(2000)
    .refine((s) => !s.includes('\u0000'), 'must not contain NUL characters')
    .describe('The request in your own words, e.g. "what did Alice send me about the invoice last week?"'),
  mailbox_id: uuidParam
    .optional()
    .describe('Chat about this mailbox: owners and admins any of the organisation’s, others only their own'),
  account_id: uuidParam
    .optional()
    .describe('Chat about this external account: owners and admins any, others only one they connected'),
  time_zone: z
    .string()
    .min(1)
    .max(64)
    .optional()
    .describe('Your IANA time zone (e.g. Europe/Berlin), for "yesterday" and "last week"; default UTC'),
  use_llm: z.boolean().optional().describe('false: answer without the model even when one is configured'),
});

const scopeQuery = z.strictObject({
  mailbox_id: uuidParam.optional(),
  account_id: uuidParam.optional(),
});

const citationSchema = z.object({
  message_id: z.uuid(),
  subject: z.string().nullable(),
  from: z.string().nullable(),
  date: z.string().describe('When the message arrived'),
  snippet: z.string(),
});

const answerSchema = z.object({
  turn_id: z.uuid(),
  text: z.string(),
  intent: z.enum(INTENTS),
  confidence: z.number(),
  params: z.object({
    people: z.array(
      z.object({
        text: z.string(),
        role: z.enum(['from', 'to', 'any']),
        addresses: z.array(z.string()).describe('What the person was resolved to'),
        domains: z.array(z.string()),
      }),
    ),
    after: z.string().nullable(),
    before: z.string().nullable(),
    date_text: z.string().nullable(),
    topics: z.array(z.string()),
    folder: z.string().nullable(),
    unread: z.boolean().nullable(),
    flagged: z.boolean().nullable(),
    has_attachment: z.boolean().nullable(),
    direction: z.enum(['received', 'sent']).nullable(),
    metric: z.enum(METRICS).nullable(),
    limit: z.number().int().nullable(),
    reply_instruction: z.string().nullable(),
    category: z.string().nullable(),
  }),
  description: z.string().describe('What was looked for, in words'),
  answer: z.string().describe('Refers to citations as [1], [2] …'),
  answered_by: z.enum(['llm', 'extractive', 'template']),
  llm: z
    .enum(['used', 'not_configured', 'not_requested', 'budget_exhausted', 'timeout', 'error', 'no_answer'])
    .nullable()
    .describe('What became of the model; null for intents that never use it'),
  citations: z.array(citationSchema),
  total: z.number().int().nullable(),
  sentiment: z
    .object({
      average: z.number(),
      label: z.enum(LABELS),
      counts: z.object({ positive: z.number().int(), neutral: z.number().int(), negative: z.number().int() }),
      messages: z.array(
        z.object({
          message_id: z.uuid(),
          score: z.number(),
          label: z.enum(LABELS),
          source: z.enum(['analysis', 'computed']),
        }),
      ),
    })
    .nullable(),
  analytics: z
    .object({
      metric: z.enum(METRICS),
      after: z.string().nullable(),
      before: z.string().nullable(),
      count: z.number().int().optional(),
      senders: z
        .array(z.object({ address: z.string(), name: z.string().nullable(), messages: z.number().int() }))
        .optional(),
      response_time: z
        .object({
          median_seconds: z.number().nullable(),
          mean_seconds: z.number().nullable(),
          answered: z.number().int(),
          received: z.number().int(),
        })
        .optional(),
      days: z.array(z.object({ date: z.string(), messages: z.number().int() })).optional(),
    })
    .nullable(),
  draft: z
    .object({
      to: z.array(z.string()),
      cc: z.array(z.string()),
      subject: z.string(),
      body: z.string(),
      in_reply_to: z.uuid(),
      in_reply_to_header: z.string().nullable(),
    })
    .nullable()
    .describe('compose_reply: the reply, not sent'),
  suggestions: z.array(z.string()),
  mailbox_id: z.uuid().nullable(),
  account_id: z.uuid().nullable(),
  created_at: z.string(),
});

const frameSchema = chatBody.extend({
  type: z.literal('chat'),
  id: z.string().min(1).max(200).describe('Yours: the answer carries it back'),
});

export interface ChatRouteOptions {
  perMinute: number;
}

export function chatRoutes(chat: ChatService, limiter: RateLimiter, options: ChatRouteOptions) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['chat'];
    // Viewers may chat about their own mail; keys need the messages read scope and name the mailbox.
    const read = { level: 'org', role: 'viewer', scope: 'messages:read' } as const;
    const limit: Limit = { name: 'chat', limit: options.perMinute, windowSeconds: 60 };

    const askerOf = (request: FastifyRequest): Asker => {
      const auth = authOf(request);
      return auth.principal.kind === 'user'
        ? { kind: 'user', userId: auth.principal.userId, role: auth.role! }
        : { kind: 'api_key', keyId: auth.principal.keyId };
    };
    const limited = (asker: Asker) =>
      enforce(limiter, limit, asker.kind === 'user' ? asker.userId : asker.keyId);

    app.post(
      '/v1/chat',
      {
        schema: {
          tags,
          summary: 'Ask about your mail in your own words',
          description:
            'The request is parsed into an intent (search, summarize, sentiment, analytics, compose_reply, ' +
            'smalltalk, unknown) with its people, dates, topics, folder and flags, run against the mail you may ' +
            'read, and answered with the messages it rests on as `citations`. A reply draft is returned, never ' +
            'sent. See docs/chat.md.',
          body: chatBody,
          response: { 200: answerSchema },
        },
        // The turn is recorded (the audit entry names it, not what was asked).
        config: { access: read, audit: { action: 'chat.ask', targetType: 'chat_turn' } },
      },
      async (request) => {
        const asker = askerOf(request);
        await limited(asker);
        const answer = await chat.ask(authOf(request).organizationId, asker, request.body);
        request.auditTarget = { id: answer.turn_id };
        return answer;
      },
    );

    app.get(
      '/v1/chat/suggestions',
      {
        schema: {
          tags,
          summary: 'Things to ask, from your own mail',
          description:
            'Built from the mail in scope: people who write most, recent mail still unanswered, unread mail, ' +
            'the categories the analysis found; then general questions.',
          querystring: scopeQuery,
          response: {
            200: z.object({
              items: z.array(
                z.object({
                  text: z.string(),
                  intent: z.enum(INTENTS),
                  reason: z.enum(['frequent_correspondent', 'unanswered', 'category', 'unread', 'general']),
                }),
              ),
            }),
          },
        },
        config: { access: read },
      },
      async (request) => ({
        items: await chat.suggestions(authOf(request).organizationId, askerOf(request), request.query),
      }),
    );

    app.get(
      '/v1/chat/history',
      {
        schema: {
          tags,
          summary: 'Your chat turns, newest first',
          description: 'Only your own turns (or, for an API key, the key’s own) in this organisation.',
          querystring: z.strictObject(pageQuery),
          response: { 200: pageOf(answerSchema) },
        },
        config: { access: read },
      },
      async (request) => chat.history(authOf(request).organizationId, askerOf(request), request.query),
    );

    app.get(
      '/v1/chat/stream',
      {
        websocket: true,
        schema: {
          tags,
          summary: 'Chat over a WebSocket',
          description:
            'Upgrade to a WebSocket (authenticated like /v1/events/stream: the Authorization header, or the ' +
            'subprotocols `mailroom.bearer` and the token). Send `{"type": "chat", "id": "<yours>", "text": "…"}` ' +
            '(and optionally mailbox_id, account_id, time_zone, use_llm as in POST /v1/chat); each gets ' +
            '`{"type": "chat.answer", "id", …the body of POST /v1/chat}` or `{"type": "chat.error", "id", ' +
            '"problem": {…an RFC 9457 problem}}`. Answers may come in another order than the requests.',
          querystring: z.strictObject({ organization_id: uuidParam.optional() }),
        },
        config: { access: read },
      },
      (socket, request) => {
        const organizationId = authOf(request).organizationId;
        const asker = askerOf(request);
        let pending = 0;
        const send = (frame: unknown) => {
          if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(frame));
        };
        socket.on('message', (data, isBinary) => {
          let id: string | null = null;
          const refuse = (err: AppError) =>
            send({
              type: 'chat.error',
              id,
              problem: problemOf(err.status, err.code, err.message, err.errors),
            });
          let frame: z.infer<typeof frameSchema>;
          try {
            const value: unknown = isBinary ? undefined : JSON.parse(String(data));
            const maybeId = (value as { id?: unknown } | null)?.id;
            if (typeof maybeId === 'string' && maybeId.length <= 200) id = maybeId;
            const parsed = frameSchema.safeParse(value);
            if (!parsed.success)
              return refuse(
                badRequest(
                  'A frame is {"type": "chat", "id": "…", "text": "…"}',
                  parsed.error.issues.map((i) => ({
                    field: i.path.join('.') || 'frame',
                    message: i.message,
                  })),
                ),
              );
            frame = parsed.data;
          } catch {
            return refuse(badRequest('A frame is one JSON object'));
          }
          if (pending >= MAX_PENDING_FRAMES)
            return refuse(new AppError(429, 'rate_limited', 'Too many requests waiting for their answers'));
          pending++;
          void answerFrame(frame, organizationId, asker)
            .then((answer) => send({ type: 'chat.answer', id: frame.id, ...answer }))
            .catch((err) => {
              if (err instanceof AppError) return refuse(err);
              request.log.error({ err }, 'chat stream request failed');
              send({ type: 'chat.error', id, problem: problemOf(500, 'internal', 'The request failed') });
            })
            .finally(() => {
              pending--;
            });
        });
      },
    );

    async function answerFrame(frame: z.infer<typeof frameSchema>, organizationId: string, asker: Asker) {
      await limited(asker);
      const { type: _type, id: _id, ...input } = frame;
      return answerSchema.parse(await chat.ask(organizationId, asker, input satisfies ChatInput));
    }

    // A plain GET on the stream path (no upgrade) is a client mistake, not a server error.
    app.addHook('onRequest', async (request) => {
      if (
        request.routeOptions.url === '/v1/chat/stream' &&
        request.headers.upgrade?.toLowerCase() !== 'websocket'
      ) {
        throw badRequest('This endpoint speaks WebSocket: send an Upgrade: websocket request');
      }
    });
  };
}
