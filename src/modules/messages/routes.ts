import { recipientSchema, recipientView } from '../delivery/views.ts';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import {
  analysisFilterOf,
  analysisFilterQuery,
  directionSchema,
  endOf,
  instant,
  messageFilterOf,
  messageFilterQuery,
  startOf,
  statusSchema,
} from './filters.ts';
import { MANUAL_STATUSES, MAX_RANGE_DAYS, type MessageSummaryRow, type MessagesService } from './service.ts';
import {
  MESSAGE_STATUSES,
  type MessageAnalysisRow,
  type MessageRouteRow,
  type MessageRow,
} from './tables.ts';

const iso = (d: Date | null) => d?.toISOString() ?? null;

const summarySchema = z.object({
  id: z.uuid(),
  direction: directionSchema,
  status: statusSchema,
  domain_id: z.uuid().nullable(),
  mail_from: z.string().describe("The envelope sender (MAIL FROM); '' is the null sender"),
  rcpt_to: z.array(z.string()).describe('The envelope recipients (RCPT TO)'),
  remote_ip: z.string().nullable(),
  helo: z.string().nullable(),
  tls: z.boolean(),
  message_id_header: z.string().nullable(),
  in_reply_to: z.string().nullable(),
  references: z.array(z.string()),
  thread_id: z.uuid().nullable(),
  parent_id: z
    .uuid()
    .nullable()
    .describe('For a forwarded copy: the message it was made from; for a DSN: the message that failed'),
  tags: z.array(z.string()).describe('Tags given to the send API'),
  account_id: z.uuid().nullable().describe('For a synced message: the external account it came from'),
  from_address: z.string().nullable(),
  from_name: z.string().nullable(),
  to_addresses: z.array(z.string()),
  cc_addresses: z.array(z.string()),
  subject: z.string().nullable(),
  sent_at: z.string().nullable().describe('The Date header'),
  size: z.number().int().describe('Bytes of the raw message'),
  has_attachments: z.boolean(),
  received_at: z.string(),
  processed_at: z.string().nullable(),
  error: z.string().nullable(),
});

const authenticationSchema = z
  .object({
    spf: z.string(),
    dkim: z.array(
      z.object({
        domain: z.string(),
        selector: z.string().nullable(),
        result: z.string(),
        aligned: z.boolean(),
      }),
    ),
    dmarc: z.object({ result: z.string(), policy: z.string().nullable(), domain: z.string().nullable() }),
    arc: z.string(),
    authentication_results: z.string(),
    action: z.enum(['accept', 'quarantine', 'reject']).describe('What the DMARC policy asked for'),
  })
  .nullable()
  .describe('SPF, DKIM, DMARC and ARC verdicts, and the Authentication-Results value they produced');

const analysisSchema = z.object({
  spam: z.object({
    verdict: z.boolean().describe('At or above the organisation’s threshold'),
    score: z.number().describe('0–1: the built-in model’s probability, or rspamd’s score over its threshold'),
    engine: z.enum(['builtin', 'rspamd']),
    symbols: z
      .array(z.object({ name: z.string(), score: z.number() }))
      .describe('rspamd’s symbols, or the built-in model’s strongest features'),
  }),
  phishing: z.object({
    verdict: z.enum(['clean', 'suspicious', 'phishing']),
    score: z.number(),
    findings: z.array(
      z.object({
        code: z.string(),
        severity: z.enum(['low', 'medium', 'high']),
        evidence: z.string(),
        detail: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
      }),
    ),
  }),
  malware: z
    .string()
    .nullable()
    .describe('The signature the virus scanner named; null when clean or not scanned'),
  language: z.string().describe('ISO 639-1 where one exists, else 639-3; `und` when undetermined'),
  sentiment: z.object({
    score: z.number().describe('-1 to 1'),
    label: z.enum(['negative', 'neutral', 'positive']),
  }),
  category: z.string().describe('primary, social, promotions, updates, forums, or a custom category'),
  priority: z.enum(['high', 'normal', 'low']),
  keywords: z.array(z.string()),
  entities: z.record(z.string(), z.unknown()),
  summary: z.string(),
  analyzed_at: z.string(),
});

const detailSchema = summarySchema.extend({
  text: z.string().nullable().describe('The plain-text body (truncated), as indexed for search'),
  headers: z.array(z.object({ name: z.string(), value: z.string() })),
  parts: z.array(z.object({ content_type: z.string(), size: z.number(), charset: z.string().nullable() })),
  attachments: z.array(
    z.object({
      filename: z.string().nullable(),
      content_type: z.string(),
      size: z.number(),
      content_id: z.string().nullable(),
    }),
  ),
  authentication: authenticationSchema,
  routes: z
    .array(
      z.object({
        recipient: z.string(),
        route: z.enum(['mailbox', 'alias', 'rule', 'catch_all', 'srs', 'bounce', 'feedback', 'none']),
        target_id: z.uuid().nullable().describe('The mailbox, alias or rule (for feedback: the complaint)'),
        action: z.string(),
        destination: z.string().nullable().describe('The mailbox folder or the external address'),
        detail: z.string().nullable(),
        created_at: z.string(),
      }),
    )
    .describe('What routing did with each recipient'),
  deliveries: z
    .array(
      z.object({
        id: z.uuid(),
        recipients: z.array(z.string()),
        mail_from: z.string(),
        status: statusSchema,
        error: z.string().nullable(),
        created_at: z.string(),
        updated_at: z.string(),
      }),
    )
    .describe('The outbound copies it was forwarded as'),
  recipients: z
    .array(recipientSchema)
    .describe('For an outbound message: each recipient’s delivery state, every attempt, and bounce reports'),
  analysis: analysisSchema
    .nullable()
    .describe('What mail intelligence found (docs/intelligence.md); null until the message is analysed'),
});

const statusCountsSchema = z.object(
  Object.fromEntries(MESSAGE_STATUSES.map((s) => [s, z.number().int()])) as Record<string, z.ZodNumber>,
);

function summaryView(m: MessageSummaryRow) {
  return {
    id: m.id,
    direction: m.direction,
    status: m.status,
    domain_id: m.domainId,
    mail_from: m.mailFrom,
    rcpt_to: m.rcptTo,
    remote_ip: m.remoteIp,
    helo: m.helo,
    tls: m.tls,
    message_id_header: m.messageIdHeader,
    in_reply_to: m.inReplyTo,
    references: m.references,
    thread_id: m.threadId,
    parent_id: m.parentId,
    account_id: m.accountId,
    tags: m.tags,
    from_address: m.fromAddress,
    from_name: m.fromName,
    to_addresses: m.toAddresses,
    cc_addresses: m.ccAddresses,
    subject: m.subject,
    sent_at: iso(m.sentAt),
    size: m.size,
    has_attachments: m.hasAttachments,
    received_at: m.receivedAt.toISOString(),
    processed_at: iso(m.processedAt),
    error: m.error,
  };
}

function routeView(r: MessageRouteRow) {
  return {
    recipient: r.recipient,
    route: r.route,
    target_id: r.targetId,
    action: r.action,
    destination: r.destination,
    detail: r.detail,
    created_at: r.createdAt.toISOString(),
  };
}

const pageView = <P extends { items: MessageSummaryRow[] }>(found: P) => ({
  ...found,
  items: found.items.map(summaryView),
});

export function messagesRoutes(messages: MessagesService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['messages'];
    const read = { level: 'org', role: 'member', scope: 'messages:read' } as const;
    const write = { level: 'org', role: 'admin', scope: 'messages:write' } as const;
    const idParams = z.strictObject({ id: uuidParam });
    const audited = (action: string) => ({ action, targetType: 'message', targetParam: 'id' });

    app.get(
      '/v1/messages',
      {
        schema: {
          tags,
          summary: 'Messages, newest first',
          querystring: z.strictObject({ ...pageQuery, ...messageFilterQuery }),
          response: { 200: pageOf(summarySchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const { page, page_size, ...filter } = request.query;
        const found = await messages.list(authOf(request).organizationId, messageFilterOf(filter), {
          page,
          page_size,
        });
        return pageView(found);
      },
    );

    app.get(
      '/v1/messages/search',
      {
        schema: {
          tags,
          summary: 'Full-text search over subject, addresses and body text, newest first',
          description:
            'Web search syntax (PostgreSQL websearch_to_tsquery): words must all match, `"quoted words"` match as a phrase, `or` between words matches either, `-word` excludes. `total` is exact when `total_exact` is true; when very many messages match it is an estimate.',
          querystring: z.strictObject({
            ...pageQuery,
            q: z.string().trim().min(1).max(500).describe('What to search for'),
            ...analysisFilterQuery,
          }),
          response: { 200: pageOf(summarySchema).extend({ total_exact: z.boolean() }) },
        },
        config: { access: read },
      },
      async (request) => {
        const { q, page, page_size, ...analysis } = request.query;
        return pageView(
          await messages.search(
            authOf(request).organizationId,
            q,
            { page, page_size },
            analysisFilterOf(analysis),
          ),
        );
      },
    );

    app.get(
      '/v1/messages/stats',
      {
        schema: {
          tags,
          summary: 'How many messages there are, by status and direction, and their size',
          querystring: z.strictObject({
            since: instant.optional().describe('Count messages received since then; all when absent'),
          }),
          response: {
            200: z.object({
              since: z.string().nullable(),
              total: z.number().int(),
              total_size_bytes: z.number().int(),
              inbound: z.number().int(),
              outbound: z.number().int(),
              by_status: statusCountsSchema,
            }),
          },
        },
        config: { access: read },
      },
      async (request) => {
        const stats = await messages.stats(
          authOf(request).organizationId,
          startOf(request.query.since) ?? null,
        );
        return { ...stats, since: iso(stats.since) };
      },
    );

    app.get(
      '/v1/messages/recent',
      {
        schema: {
          tags,
          summary: 'The newest messages',
          querystring: z.strictObject({ limit: z.coerce.number().int().min(1).max(100).default(20) }),
          response: { 200: z.object({ items: z.array(summarySchema) }) },
        },
        config: { access: read },
      },
      async (request) => {
        const rows = await messages.recent(authOf(request).organizationId, request.query.limit);
        return { items: rows.map(summaryView) };
      },
    );

    app.get(
      '/v1/messages/thread/:thread_id',
      {
        schema: {
          tags,
          summary: "A thread's messages, oldest first (the first 1,000)",
          params: z.strictObject({ thread_id: uuidParam }),
          response: { 200: z.object({ thread_id: z.uuid(), items: z.array(summarySchema) }) },
        },
        config: { access: read },
      },
      async (request) => {
        const { thread_id } = request.params;
        const rows = await messages.thread(authOf(request).organizationId, thread_id);
        return { thread_id, items: rows.map(summaryView) };
      },
    );

    app.get(
      '/v1/messages/:id',
      {
        schema: {
          tags,
          summary: 'One message: envelope, headers, MIME parts, authentication, routing and forwards',
          params: idParams,
          response: { 200: detailSchema },
        },
        config: { access: read },
      },
      async (request) => {
        const { message, routes, forwards, recipients, analysis } = await messages.detail(
          authOf(request).organizationId,
          request.params.id,
        );
        return {
          ...detailView(message, routes, forwards),
          recipients: recipients.map(recipientView),
          analysis: analysis && analysisView(analysis),
        };
      },
    );

    app.get(
      '/v1/messages/:id/raw',
      {
        schema: {
          tags,
          summary: 'The message exactly as received (.eml, message/rfc822)',
          params: idParams,
          response: { 200: z.any().describe('The raw message (message/rfc822)') },
        },
        config: { access: read },
      },
      async (request, reply) => {
        const { id } = request.params;
        const bytes = await messages.raw(authOf(request).organizationId, id);
        return reply
          .type('message/rfc822')
          .header('content-disposition', `attachment; filename="${id}.eml"`)
          .send(bytes);
      },
    );

    app.patch(
      '/v1/messages/:id/status',
      {
        schema: {
          tags,
          summary: `Set a message's status by hand (${MANUAL_STATUSES.join(', ')})`,
          params: idParams,
          body: z.strictObject({ status: statusSchema }),
          response: { 200: summarySchema },
        },
        config: { access: write, audit: audited('message.status_update') },
      },
      async (request) => {
        const message = await messages.setStatus(
          authOf(request).organizationId,
          request.params.id,
          request.body.status,
        );
        return summaryView(message);
      },
    );

    app.delete(
      '/v1/messages/:id',
      {
        schema: {
          tags,
          summary: 'Delete a message: its routes, its mailbox copies and its raw content (forwards stay)',
          params: idParams,
          response: { 204: z.null() },
        },
        config: { access: write, audit: audited('message.delete') },
      },
      async (request, reply) => {
        await messages.delete(authOf(request).organizationId, request.params.id);
        return reply.status(204).send(null);
      },
    );

    app.get(
      '/v1/domains/:id/stats',
      {
        schema: {
          tags: ['domains'],
          summary: "A domain's messages: by status and direction, size, and per day",
          params: idParams,
          querystring: z.strictObject({
            since: instant
              .optional()
              .describe(`Default: the last 30 days (today included); at most ${MAX_RANGE_DAYS} days back`),
          }),
          response: {
            200: z.object({
              domain_id: z.uuid(),
              name: z.string(),
              since: z.string(),
              until: z.string(),
              total: z.number().int(),
              total_size_bytes: z.number().int(),
              by_status: statusCountsSchema,
              by_direction: z.object({ inbound: z.number().int(), outbound: z.number().int() }),
              daily: z.array(z.object({ date: z.string(), messages: z.number().int() })),
            }),
          },
        },
        config: { access: read },
      },
      async (request) => {
        const stats = await messages.domainStats(
          authOf(request).organizationId,
          request.params.id,
          startOf(request.query.since),
        );
        return {
          domain_id: stats.domain.id,
          name: stats.domain.name,
          since: stats.range.since.toISOString(),
          until: stats.range.until.toISOString(),
          total: stats.total,
          total_size_bytes: stats.total_size_bytes,
          by_status: stats.by_status,
          by_direction: stats.by_direction,
          daily: stats.daily,
        };
      },
    );

    app.get(
      '/v1/statistics',
      {
        schema: {
          tags,
          summary: "The organisation's mail per day, and its busiest domains and aliases",
          description: `Days are UTC. Default range: the last 30 days (today included); at most ${MAX_RANGE_DAYS} days.`,
          querystring: z.strictObject({
            since: instant.optional().describe('From (a date means its start)'),
            until: instant.optional().describe('To, exclusive (a date means its end); default now'),
          }),
          response: {
            200: z.object({
              since: z.string(),
              until: z.string(),
              daily: z.array(
                z.object({
                  date: z.string().describe('YYYY-MM-DD (UTC)'),
                  inbound: z.number().int(),
                  outbound: z.number().int(),
                  delivered: z.number().int(),
                  failed: z.number().int(),
                  rejected: z.number().int(),
                  quarantined: z.number().int(),
                  bounced: z.number().int(),
                }),
              ),
              top_domains: z.array(
                z.object({ domain_id: z.uuid(), name: z.string(), messages: z.number().int() }),
              ),
              top_aliases: z.array(
                z.object({
                  alias_id: z.uuid(),
                  address: z.string().nullable().describe('null when the alias has been deleted since'),
                  messages: z.number().int(),
                }),
              ),
            }),
          },
        },
        config: { access: read },
      },
      async (request) => {
        const { range, ...stats } = await messages.statistics(
          authOf(request).organizationId,
          startOf(request.query.since),
          endOf(request.query.until),
        );
        return { since: range.since.toISOString(), until: range.until.toISOString(), ...stats };
      },
    );
  };
}

export function analysisView(a: MessageAnalysisRow) {
  return {
    spam: { verdict: a.spam, score: a.spamScore, engine: a.spamEngine, symbols: a.spamSymbols },
    phishing: { verdict: a.phishing, score: a.phishingScore, findings: a.findings },
    malware: a.malware,
    language: a.language,
    sentiment: { score: a.sentiment, label: a.sentimentLabel },
    category: a.category,
    priority: a.priority,
    keywords: a.keywords,
    entities: a.entities,
    summary: a.summary,
    analyzed_at: a.analyzedAt.toISOString(),
  };
}

function detailView(
  m: MessageRow,
  routes: MessageRouteRow[],
  forwards: Awaited<ReturnType<MessagesService['detail']>>['forwards'],
) {
  return {
    ...summaryView(m),
    text: m.bodyText,
    headers: m.details?.headers ?? [],
    parts: m.details?.parts ?? [],
    attachments: m.details?.attachments ?? [],
    authentication: m.auth,
    routes: routes.map(routeView),
    deliveries: forwards.map((f) => ({
      id: f.id,
      recipients: f.rcptTo,
      mail_from: f.mailFrom,
      status: f.status,
      error: f.error,
      created_at: f.receivedAt.toISOString(),
      updated_at: f.updatedAt.toISOString(),
    })),
  };
}
