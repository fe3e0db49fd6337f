import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import type { CsatService, RatingOutcome } from './csat-service.ts';
import { MAX_WINDOW_DAYS, type ReportsService } from './reports-service.ts';
import { type ChannelRow, TEAMS_EVENT_TYPES, type TeamsDeliveryRow } from './tables.ts';
import type { TeamsService } from './teams-service.ts';

const iso = (d: Date | null) => d?.toISOString() ?? null;

// ---- Teams channels --------------------------------------------------------------------------------------

const channelSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  webhook_url: z.string().describe('Masked: the URL carries its own credentials and is never shown whole'),
  desk_ids: z.array(z.uuid()).describe('Empty: every desk'),
  event_types: z.array(z.enum(TEAMS_EVENT_TYPES)),
  enabled: z.boolean(),
  last_success_at: z.string().nullable(),
  last_failure_at: z.string().nullable(),
  last_error: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});

function channelView(c: ChannelRow) {
  return {
    id: c.id,
    name: c.name,
    webhook_url: c.urlHint,
    desk_ids: c.deskIds,
    event_types: c.eventTypes,
    enabled: c.enabled,
    last_success_at: iso(c.lastSuccessAt),
    last_failure_at: iso(c.lastFailureAt),
    last_error: c.lastError,
    created_at: c.createdAt.toISOString(),
    updated_at: c.updatedAt.toISOString(),
  };
}

const deliverySchema = z.object({
  id: z.uuid(),
  channel_id: z.uuid(),
  event_id: z.uuid().nullable(),
  kind: z.string(),
  ticket_id: z.uuid().nullable(),
  status: z.enum(['pending', 'succeeded', 'failed']),
  attempts: z.number().int(),
  next_attempt_at: z.string().nullable(),
  last_attempt_at: z.string().nullable(),
  last_status_code: z.number().int().nullable(),
  last_error: z.string().nullable(),
  created_at: z.string(),
});

function deliveryView(d: TeamsDeliveryRow) {
  return {
    id: d.id,
    channel_id: d.channelId,
    event_id: d.eventId,
    kind: d.kind,
    ticket_id: d.ticketId,
    status: d.status,
    attempts: d.attempts,
    next_attempt_at: iso(d.nextAttemptAt),
    last_attempt_at: iso(d.lastAttemptAt),
    last_status_code: d.lastStatusCode,
    last_error: d.lastError,
    created_at: d.createdAt.toISOString(),
  };
}

const webhookUrl = z
  .url({ protocol: /^https?$/, error: 'must be an http or https URL' })
  .max(2000)
  .describe(
    'The Workflows "When a Teams webhook request is received" URL; refused when it resolves to a private, loopback or link-local address',
  );

const channelFields = {
  name: z.string().trim().min(1).max(200),
  webhook_url: webhookUrl,
  desk_ids: z.array(uuidParam).max(200).describe('Desks whose tickets to announce; empty: every desk'),
  event_types: z
    .array(z.enum(TEAMS_EVENT_TYPES))
    .min(1)
    .max(TEAMS_EVENT_TYPES.length)
    .describe('What to announce; default: all of them'),
  enabled: z.boolean(),
};

// ---- reports ---------------------------------------------------------------------------------------------

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const instant = z
  .string()
  .max(40)
  .refine(
    (v) => (DATE.test(v) || /^\d{4}-\d{2}-\d{2}T/.test(v)) && !Number.isNaN(parseInstant(v).getTime()),
    {
      error: 'must be a date (YYYY-MM-DD, midnight UTC) or an ISO 8601 date-time with offset',
    },
  );

function parseInstant(v: string): Date {
  return new Date(DATE.test(v) ? `${v}T00:00:00Z` : v);
}

const windowQuery = {
  from: instant.optional().describe('Start (inclusive); default 30 days before `to`'),
  to: instant.optional().describe(`End (exclusive); default now; at most ${MAX_WINDOW_DAYS} days after from`),
  desk_id: uuidParam.optional().describe('Only this desk'),
};

const durations = z.object({
  count: z.number().int(),
  p50_seconds: z.number().nullable(),
  p90_seconds: z.number().nullable(),
  average_seconds: z.number().nullable(),
});

const summarySchema = z.object({
  from: z.string(),
  to: z.string(),
  desk_id: z.uuid().nullable(),
  interval: z.enum(['day', 'week']),
  generated_at: z.string(),
  created: z.number().int().describe('Tickets created in the window'),
  resolved: z.number().int().describe('Tickets resolved (or closed unresolved) in the window'),
  by_status: z.array(z.object({ status: z.string(), count: z.number().int() })),
  by_priority: z.array(z.object({ priority: z.string(), count: z.number().int() })),
  by_assignee: z.array(
    z.object({ assignee_id: z.uuid().nullable(), email: z.string().nullable(), count: z.number().int() }),
  ),
  by_team: z.array(
    z.object({ team_id: z.uuid().nullable(), name: z.string().nullable(), count: z.number().int() }),
  ),
  by_category: z.array(
    z.object({ category_id: z.uuid().nullable(), name: z.string().nullable(), count: z.number().int() }),
  ),
  series: z.array(z.object({ start: z.string(), created: z.number().int(), resolved: z.number().int() })),
  first_response: durations.describe('Tickets created in the window that got a first public reply'),
  resolution: durations.describe('Tickets resolved in the window: from creation to resolution'),
  due_dates: z.object({
    with_due_date: z.number().int(),
    met: z.number().int(),
    missed: z.number().int(),
    open_overdue: z.number().int(),
    open_on_time: z.number().int(),
    compliance: z.number().nullable().describe('met / (met + missed)'),
  }),
  sla: z
    .object({
      compliance: z.number().nullable().describe('met / (met + breached), every target together'),
      targets: z.array(
        z.object({
          target: z.string(),
          total: z.number().int(),
          met: z.number().int(),
          breached: z.number().int(),
          in_progress: z.number().int(),
          compliance: z.number().nullable(),
        }),
      ),
    })
    .describe('SLA targets (first response, next response, resolution) of the tickets created in the window'),
  backlog: z.object({
    total: z.number().int(),
    under_1d: z.number().int(),
    from_1d_to_3d: z.number().int(),
    from_3d_to_7d: z.number().int(),
    over_7d: z.number().int(),
    oldest_created_at: z.string().nullable(),
  }),
  csat: z.object({
    sent: z.number().int(),
    responses: z.number().int(),
    good: z.number().int(),
    bad: z.number().int(),
    score: z.number().nullable().describe('good / responses'),
    response_rate: z.number().nullable(),
  }),
});

// ---- CSAT page -------------------------------------------------------------------------------------------

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** The page a link opens: it posts the rating by itself where scripts run, else on the button. */
const AUTO_SUBMIT = 'document.forms[0].submit();';
const AUTO_SUBMIT_HASH = `'sha256-${createHash('sha256').update(AUTO_SUBMIT).digest('base64')}'`;

const page = (title: string, body: string) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>${title}</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 32em; margin: 4em auto; padding: 0 1em; line-height: 1.5">
${body}
</body></html>
`;

function ratingForm(o: RatingOutcome): string {
  return page(
    'Your rating',
    `<h1>How did we do?</h1>
<form method="post" action="">
<input type="hidden" name="rating" value="${o.rating}">
<p>Rate ticket #${o.ticketNumber} as <strong>${o.rating}</strong>:</p>
<p><button type="submit">Send my rating</button></p>
</form>
<script>${AUTO_SUBMIT}</script>`,
  );
}

function thankYouPage(o: RatingOutcome, link: (rating: 'good' | 'bad') => string): string {
  const other = o.rating === 'good' ? 'bad' : 'good';
  const said =
    o.unchanged && o.final
      ? `Your rating of ticket #${o.ticketNumber} was already recorded as <strong>${o.rating}</strong>.`
      : `You rated ticket #${o.ticketNumber} as <strong>${o.rating}</strong>.`;
  const change = o.final
    ? ''
    : `<p>Clicked by mistake? <a href="${escapeHtml(link(other))}">Rate it ${other} instead</a>.</p>`;
  return page('Thank you', `<h1>Thank you for your feedback</h1>\n<p>${said}</p>\n${change}`);
}

export function insightsRoutes(teams: TeamsService, reports: ReportsService, csat: CsatService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const read = { level: 'org', role: 'member', scope: 'helpdesk:read' } as const;
    const write = { level: 'org', role: 'admin', scope: 'helpdesk:write' } as const;
    const params = z.strictObject({ id: uuidParam });
    const org = (request: FastifyRequest) => authOf(request).organizationId;
    const teamsTags = ['helpdesk-teams'];
    const reportTags = ['helpdesk-reports'];

    app.post(
      '/v1/helpdesk/teams-channels',
      {
        schema: {
          tags: teamsTags,
          summary: 'Notify a Microsoft Teams channel (through its Workflows webhook) of ticket events',
          body: z.strictObject({
            ...channelFields,
            desk_ids: channelFields.desk_ids.optional(),
            event_types: channelFields.event_types.optional(),
            enabled: channelFields.enabled.optional(),
          }),
          response: { 201: channelSchema },
        },
        config: {
          access: write,
          audit: { action: 'helpdesk.teams_channel.create', targetType: 'teams_channel' },
        },
      },
      async (request, reply) => {
        const channel = await teams.create(org(request), request.body);
        request.auditTarget = { id: channel.id };
        return reply.status(201).send(channelView(channel));
      },
    );

    app.get(
      '/v1/helpdesk/teams-channels',
      {
        schema: {
          tags: teamsTags,
          summary: 'Teams channels',
          querystring: z.strictObject(pageQuery),
          response: { 200: pageOf(channelSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const page = await teams.list(org(request), request.query);
        return { ...page, items: page.items.map(channelView) };
      },
    );

    app.get(
      '/v1/helpdesk/teams-channels/:id',
      {
        schema: { tags: teamsTags, summary: 'One Teams channel', params, response: { 200: channelSchema } },
        config: { access: read },
      },
      async (request) => channelView(await teams.get(org(request), request.params.id)),
    );

    app.patch(
      '/v1/helpdesk/teams-channels/:id',
      {
        schema: {
          tags: teamsTags,
          summary: 'Change a Teams channel',
          params,
          body: z.strictObject({
            name: channelFields.name.optional(),
            webhook_url: channelFields.webhook_url.optional(),
            desk_ids: channelFields.desk_ids.optional(),
            event_types: channelFields.event_types.optional(),
            enabled: channelFields.enabled.optional(),
          }),
          response: { 200: channelSchema },
        },
        config: {
          access: write,
          audit: { action: 'helpdesk.teams_channel.update', targetType: 'teams_channel', targetParam: 'id' },
        },
      },
      async (request) => channelView(await teams.update(org(request), request.params.id, request.body)),
    );

    app.delete(
      '/v1/helpdesk/teams-channels/:id',
      {
        schema: { tags: teamsTags, summary: 'Remove a Teams channel and its delivery log', params },
        config: {
          access: write,
          audit: { action: 'helpdesk.teams_channel.delete', targetType: 'teams_channel', targetParam: 'id' },
        },
      },
      async (request, reply) => {
        await teams.delete(org(request), request.params.id);
        return reply.status(204).send(null);
      },
    );

    app.post(
      '/v1/helpdesk/teams-channels/:id/test',
      {
        schema: {
          tags: teamsTags,
          summary: 'Post a test card now and report the attempt (not retried)',
          params,
          response: { 200: deliverySchema },
        },
        config: {
          access: write,
          audit: { action: 'helpdesk.teams_channel.test', targetType: 'teams_channel', targetParam: 'id' },
        },
      },
      async (request) => deliveryView(await teams.test(org(request), request.params.id)),
    );

    app.get(
      '/v1/helpdesk/teams-channels/:id/deliveries',
      {
        schema: {
          tags: teamsTags,
          summary: "A channel's cards, newest first, with the outcome of their last attempt",
          params,
          querystring: z.strictObject({
            ...pageQuery,
            status: z.enum(['pending', 'succeeded', 'failed']).optional(),
          }),
          response: { 200: pageOf(deliverySchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const { status, ...page } = request.query;
        const result = await teams.deliveries(org(request), request.params.id, status, page);
        return { ...result, items: result.items.map(deliveryView) };
      },
    );

    // ---- reports ----------------------------------------------------------------------------------------
    const windowOf = (q: { from?: string; to?: string; desk_id?: string }) => ({
      from: q.from ? parseInstant(q.from) : undefined,
      to: q.to ? parseInstant(q.to) : undefined,
      desk_id: q.desk_id?.toLowerCase(),
    });

    app.get(
      '/v1/helpdesk/reports/summary',
      {
        schema: {
          tags: reportTags,
          summary:
            'Tickets by status, priority, assignee, team and category; volumes over time; response and resolution times; due dates; backlog; CSAT',
          description:
            'Times are wall-clock seconds (not business hours). Merged tickets are left out. See docs/helpdesk-insights.md.',
          querystring: z.strictObject({
            ...windowQuery,
            interval: z
              .enum(['day', 'week'])
              .default('day')
              .describe('Buckets of the series (UTC days or ISO weeks)'),
          }),
          response: { 200: summarySchema },
        },
        config: { access: read },
      },
      async (request) =>
        reports.summary(org(request), { ...windowOf(request.query), interval: request.query.interval }),
    );

    app.get(
      '/v1/helpdesk/reports/tickets.csv',
      {
        exposeHeadRoute: false,
        schema: {
          tags: reportTags,
          summary: 'The tickets created in the window as CSV (RFC 4180, streamed; formula cells neutralised)',
          querystring: z.strictObject({
            ...windowQuery,
            bom: z
              .enum(['true', 'false'])
              .optional()
              .describe('true: start with a UTF-8 byte order mark, which Excel needs to read UTF-8'),
          }),
          response: { 200: z.any().describe('text/csv; charset=utf-8') },
        },
        config: { access: read, audit: { action: 'export.tickets' } },
      },
      async (request, reply) => {
        const csv = await reports.ticketsCsv(org(request), {
          ...windowOf(request.query),
          bom: request.query.bom === 'true',
        });
        return reply
          .type('text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="${csv.filename}"`)
          .header('cache-control', 'no-store')
          .send(csv.stream);
      },
    );

    // ---- CSAT: the one-click links of the resolution mail --------------------------------------------------
    const html = (reply: FastifyReply, body: string, script = false) =>
      reply
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .header('referrer-policy', 'no-referrer')
        .header('x-robots-tag', 'noindex')
        .header(
          'content-security-policy',
          `default-src 'none'; style-src 'unsafe-inline'; form-action 'self'${script ? `; script-src ${AUTO_SUBMIT_HASH}` : ''}`,
        )
        .send(body);
    const csatParams = z.strictObject({ token: z.string().min(1).max(200) });
    const rating = z.enum(['good', 'bad']);
    app.get(
      '/v1/helpdesk/csat/:token',
      {
        // A HEAD (a link checker) answers nothing.
        exposeHeadRoute: false,
        schema: {
          tags: reportTags,
          summary: 'The page a satisfaction link of the resolution mail opens',
          description:
            'Public: the token is the credential. Records nothing (mail scanners fetch links): the page posts the rating to the same address, by itself where scripts run. Unknown tokens answer 404; links unused 30 days after the resolution answer 410; a rating may be changed for 7 days.',
          params: csatParams,
          querystring: z.strictObject({ rating }),
          response: { 200: z.string().describe('text/html') },
        },
        config: { access: { level: 'public' } },
      },
      async (request, reply) => {
        const outcome = await csat.look(request.params.token, request.query.rating, request.ip);
        if (outcome.unchanged)
          return html(
            reply,
            thankYouPage(outcome, (r) => csat.link(outcome.token, r)),
          );
        return html(reply, ratingForm(outcome), true);
      },
    );
    app.register(async (scope) => {
      // The page's form; nothing else of the API takes form bodies.
      scope.addContentTypeParser(
        'application/x-www-form-urlencoded',
        { parseAs: 'string', bodyLimit: 1024 },
        (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
      );
      scope.withTypeProvider<ZodTypeProvider>().post(
        '/v1/helpdesk/csat/:token',
        {
          schema: {
            tags: reportTags,
            summary: 'Records the requester’s rating and answers a thank-you page',
            description: 'Public: the form of the page a satisfaction link opens (`rating=good|bad`).',
            params: csatParams,
            querystring: z
              .object({ rating: rating.optional() })
              .describe('Ignored: the body names the rating'),
            body: z.object({ rating }),
            response: { 200: z.string().describe('text/html') },
          },
          config: {
            access: { level: 'public' },
            audit: { action: 'helpdesk.csat.rate', targetType: 'csat_survey' },
          },
        },
        async (request, reply) => {
          const outcome = await csat.rate(request.params.token, request.body.rating, request.ip);
          request.auditTarget = { id: outcome.surveyId, organizationId: outcome.organizationId };
          return html(
            reply,
            thankYouPage(outcome, (r) => csat.link(outcome.token, r)),
          );
        },
      );
    });
  };
}
