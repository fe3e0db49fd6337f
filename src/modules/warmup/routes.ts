import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import { MAX_DAILY } from './ramps.ts';
import type { WarmupService } from './service.ts';
import type { WarmupMessageRow, WarmupTemplateRow } from './tables.ts';

const iso = (d: Date | null) => d?.toISOString() ?? null;
const date = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a date, YYYY-MM-DD');

const rampInput = z.union([
  z
    .enum(['slow', 'normal', 'fast'])
    .describe('slow 2→20 over 42 days, normal 3→40 over 30, fast 5→80 over 21'),
  z.strictObject({
    start: z.number().int().min(1).max(MAX_DAILY).describe('Messages on the first day'),
    increase: z.number().int().min(0).max(MAX_DAILY).describe('Added each warmup day'),
    target: z.number().int().min(1).max(MAX_DAILY).describe('The daily volume it climbs to and keeps'),
    days: z.number().int().min(1).max(365).describe('The ramp’s length; after it, target a day'),
  }),
]);
const scheduleInput = z.strictObject({
  weekdays: z
    .array(z.number().int().min(0).max(6))
    .min(1)
    .max(7)
    .optional()
    .describe('0 Sunday .. 6 Saturday'),
  start_hour: z.number().int().min(0).max(23).optional(),
  end_hour: z.number().int().min(1).max(24).optional(),
  time_zone: z.string().max(64).optional().describe('IANA name, e.g. Europe/Berlin; default UTC'),
});

const enrollmentSchema = z.object({
  id: z.string(),
  mailbox_id: z.string().nullable(),
  account_id: z.string().nullable(),
  address: z.string(),
  pool: z.enum(['organization', 'shared']),
  status: z.enum(['active', 'paused']),
  paused_reason: z.enum(['manual', 'health']).nullable(),
  slowed: z.boolean().describe('Health halved the ramp’s volume'),
  ramp: z.object({
    curve: z.enum(['slow', 'normal', 'fast', 'custom']),
    start: z.number(),
    increase: z.number(),
    target: z.number(),
    days: z.number(),
  }),
  schedule: z.object({
    weekdays: z.array(z.number()),
    start_hour: z.number(),
    end_hour: z.number(),
    time_zone: z.string(),
  }),
  reply_rate: z.number(),
  provider: z.enum(['gmail', 'microsoft', 'yahoo', 'other']),
  warm_day: z.number().describe('The ramp’s day today (1 = the first warmup day)'),
  phase: z.enum(['ramping', 'maintaining']),
  daily_quota: z.number().describe('Messages the ramp sends today'),
  planned_today: z.number().describe('Openings still to send today (their times are spread over the window)'),
  planned_on: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});

const counts = {
  planned: z.number(),
  sent: z.number().describe('Openings and replies sent'),
  replies_sent: z.number().describe('Of those, replies (the rest are openings, which follow the ramp)'),
  failed: z.number(),
  received: z.number().describe('Found by the receiving side (inbox, spam or a category tab)'),
  inbox: z.number(),
  spam: z.number(),
  category: z.number().describe('Gmail category tabs (Promotions, Social, Updates, Forums)'),
  missing: z.number().describe('Never found within MAILROOM_WARMUP_MISSING_AFTER'),
  inbox_rate: z.number().nullable().describe('inbox / (inbox + spam + category + missing)'),
  spam_rate: z.number().nullable(),
  category_rate: z.number().nullable(),
  rescued: z.number().describe('Moved from spam to the inbox by the receiving side'),
  replies: z.number().describe('Replies these messages got'),
};
const statsSchema = z.object({
  mailbox_id: z.string().nullable(),
  account_id: z.string().nullable(),
  from: z.string(),
  to: z.string(),
  totals: z.object(counts),
  by_day: z.array(
    z.object({
      day: z.string(),
      ...counts,
      by_provider: z.array(z.object({ provider: z.string(), ...counts })),
    }),
  ),
  by_provider: z.array(z.object({ provider: z.string(), ...counts })),
});

const messageSchema = z.object({
  id: z.string(),
  direction: z.enum(['sent', 'received']),
  thread_id: z.string(),
  parent_id: z.string().nullable(),
  depth: z.number(),
  day: z.string(),
  due_at: z.string(),
  status: z.enum(['planned', 'sending', 'sent', 'failed', 'cancelled']),
  error: z.string().nullable(),
  provider: z.string(),
  subject: z.string().nullable(),
  message_id: z.string().nullable(),
  sent_at: z.string().nullable(),
  placement: z.enum(['inbox', 'spam', 'category', 'missing']).nullable(),
  category: z.string().nullable(),
  received_at: z.string().nullable(),
  rescued: z.boolean(),
  starred: z.boolean(),
  reply_planned: z.boolean(),
  archived_at: z.string().nullable(),
});

const templateSchema = z.object({
  id: z.string(),
  kind: z.enum(['opening', 'reply']),
  subject: z.string(),
  body: z.string(),
  created_at: z.string(),
});

function templateView(t: WarmupTemplateRow) {
  return { id: t.id, kind: t.kind, subject: t.subject, body: t.body, created_at: t.createdAt.toISOString() };
}

function messageView(enrollmentId: string, m: WarmupMessageRow) {
  return {
    id: m.id,
    direction: m.enrollmentId === enrollmentId ? ('sent' as const) : ('received' as const),
    thread_id: m.threadId,
    parent_id: m.parentId,
    depth: m.depth,
    day: m.day,
    due_at: m.dueAt.toISOString(),
    status: m.status,
    // What went wrong sending is the sender's business (in the shared pool, another organisation's).
    error: m.enrollmentId === enrollmentId ? m.error : null,
    provider: m.provider,
    subject: m.subject,
    message_id: m.messageIdHeader,
    sent_at: iso(m.sentAt),
    placement: m.placement,
    category: m.category,
    received_at: iso(m.receivedAt),
    rescued: m.rescued,
    starred: m.starred,
    reply_planned: m.replyPlanned,
    archived_at: iso(m.archivedAt),
  };
}

export function warmupRoutes(warmup: WarmupService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['warmup'];
    const read = { level: 'org', role: 'member', scope: 'warmup:read' } as const;
    const write = { level: 'org', role: 'admin', scope: 'warmup:write' } as const;
    const params = z.strictObject({ mailbox: z.uuid().describe('The enrolled mailbox’s or account’s id') });
    const audit = (action: string) => ({ action, targetType: 'warmup', targetParam: 'mailbox' });

    app.post(
      '/v1/warmup',
      {
        schema: {
          tags,
          summary: 'Enrol a hosted mailbox or an external account in warmup',
          description:
            'Its pool (the organisation’s, or the installation’s shared pool where MAILROOM_WARMUP_SHARED_POOL allows it) sends it warmup mail and it sends to the pool, on its ramp, within its weekday and hour window.',
          body: z.strictObject({
            mailbox_id: z.uuid().nullish(),
            account_id: z.uuid().nullish(),
            ramp: rampInput.optional().describe('Default normal'),
            schedule: scheduleInput.optional().describe('Default Monday to Friday, 8 to 18, UTC'),
            reply_rate: z
              .number()
              .min(0)
              .max(1)
              .optional()
              .describe('Share of received warmup mail answered; default 0.3'),
            pool: z.enum(['organization', 'shared']).optional(),
          }),
          response: { 201: enrollmentSchema },
        },
        config: { access: write, audit: { action: 'warmup.enroll', targetType: 'warmup' } },
      },
      async (request, reply) => {
        const row = await warmup.enroll(authOf(request).organizationId, request.body);
        request.auditTarget = { id: row.id };
        return reply.status(201).send(warmup.view(row));
      },
    );

    app.get(
      '/v1/warmup',
      {
        schema: {
          tags,
          summary: 'Enrolled mailboxes and accounts',
          querystring: z.object(pageQuery),
          response: { 200: pageOf(enrollmentSchema) },
        },
        config: { access: read },
      },
      async (request) => warmup.list(authOf(request).organizationId, request.query),
    );

    app.get(
      '/v1/warmup/templates',
      {
        schema: {
          tags,
          summary: 'The organisation’s own warmup templates',
          response: { 200: z.object({ items: z.array(templateSchema) }) },
        },
        config: { access: read },
      },
      async (request) => ({
        items: (await warmup.templates(authOf(request).organizationId)).map(templateView),
      }),
    );

    app.post(
      '/v1/warmup/templates',
      {
        schema: {
          tags,
          summary: 'Add a warmup template (spintax and Liquid)',
          description:
            'Spintax {a|b|c} picks one option (nestable); Liquid outputs {{ sender.first_name }}, {{ recipient.first_name }}, {{ sender.name }}, {{ recipient.name }} and {{ weekday }}. Once an organisation has templates of a kind, they replace the built-in ones of that kind. Replies take “Re:” and the conversation’s subject.',
          body: z.strictObject({
            kind: z.enum(['opening', 'reply']),
            subject: z.string().max(500).optional(),
            body: z.string().min(1).max(20_000),
          }),
          response: { 201: templateSchema },
        },
        config: { access: write, audit: { action: 'warmup_template.create', targetType: 'warmup_template' } },
      },
      async (request, reply) => {
        const row = await warmup.addTemplate(authOf(request).organizationId, request.body);
        request.auditTarget = { id: row.id };
        return reply.status(201).send(templateView(row));
      },
    );

    app.delete(
      '/v1/warmup/templates/:id',
      {
        schema: {
          tags,
          summary: 'Delete a warmup template',
          params: z.strictObject({ id: z.uuid() }),
          response: { 204: z.null() },
        },
        config: {
          access: write,
          audit: { action: 'warmup_template.delete', targetType: 'warmup_template', targetParam: 'id' },
        },
      },
      async (request, reply) => {
        await warmup.deleteTemplate(authOf(request).organizationId, request.params.id);
        return reply.status(204).send(null);
      },
    );

    app.get(
      '/v1/warmup/:mailbox',
      {
        schema: { tags, summary: 'A mailbox’s warmup', params, response: { 200: enrollmentSchema } },
        config: { access: read },
      },
      async (request) =>
        warmup.view(await warmup.get(authOf(request).organizationId, request.params.mailbox)),
    );

    app.patch(
      '/v1/warmup/:mailbox',
      {
        schema: {
          tags,
          summary: 'Change a mailbox’s ramp, window or reply rate',
          params,
          body: z.strictObject({
            ramp: rampInput.optional(),
            schedule: scheduleInput.optional(),
            reply_rate: z.number().min(0).max(1).optional(),
          }),
          response: { 200: enrollmentSchema },
        },
        config: { access: write, audit: audit('warmup.update') },
      },
      async (request) =>
        warmup.view(
          await warmup.update(authOf(request).organizationId, request.params.mailbox, request.body),
        ),
    );

    for (const action of ['pause', 'resume'] as const) {
      app.post(
        `/v1/warmup/:mailbox/${action}`,
        {
          schema: {
            tags,
            summary:
              action === 'pause'
                ? 'Stop sending warmup mail, answers included (planned messages are cancelled); it still receives and rescues'
                : 'Send warmup mail again, from the next tick',
            params,
            response: { 200: enrollmentSchema },
          },
          config: { access: write, audit: audit(`warmup.${action}`) },
        },
        async (request) => {
          const { organizationId } = authOf(request);
          const row =
            action === 'pause'
              ? await warmup.pause(organizationId, request.params.mailbox)
              : await warmup.resume(organizationId, request.params.mailbox);
          return warmup.view(row);
        },
      );
    }

    app.delete(
      '/v1/warmup/:mailbox',
      {
        schema: {
          tags,
          summary:
            'Leave warmup: the mailbox’s own history goes; what others sent it stays in their statistics',
          params,
          response: { 204: z.null() },
        },
        config: { access: write, audit: audit('warmup.remove') },
      },
      async (request, reply) => {
        await warmup.remove(authOf(request).organizationId, request.params.mailbox);
        return reply.status(204).send(null);
      },
    );

    app.get(
      '/v1/warmup/:mailbox/stats',
      {
        schema: {
          tags,
          summary: 'Where the mailbox’s warmup mail landed: by day and by receiving provider',
          description: 'Days are the sender’s local dates; default the last 30 days.',
          params,
          querystring: z.strictObject({ from: date.optional(), to: date.optional() }),
          response: { 200: statsSchema },
        },
        config: { access: read },
      },
      async (request) => warmup.stats(authOf(request).organizationId, request.params.mailbox, request.query),
    );

    app.get(
      '/v1/warmup/:mailbox/messages',
      {
        schema: {
          tags,
          summary: 'The warmup messages a mailbox sent and received, newest first',
          params,
          querystring: z.object(pageQuery),
          response: { 200: pageOf(messageSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const { organizationId } = authOf(request);
        const row = await warmup.get(organizationId, request.params.mailbox);
        const page = await warmup.messages(organizationId, request.params.mailbox, request.query);
        return { ...page, items: page.items.map((m) => messageView(row.id, m)) };
      },
    );
  };
}
