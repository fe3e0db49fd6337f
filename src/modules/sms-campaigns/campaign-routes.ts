import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import { jobSchema, jobView, startedBy } from '../jobs/routes.ts';
import type { JobRow } from '../jobs/service.ts';
import { type CampaignsService, type CampaignView, hhmm } from './campaigns.ts';
import { CAMPAIGN_STATUSES, RECIPIENT_STATUSES, type RecipientRow } from './tables.ts';
import { localDay } from './window.ts';

const id = z.uuid();
const iso = (d: Date | null) => d?.toISOString() ?? null;
const time = z.string().regex(/^\d{2}:\d{2}$/, 'HH:MM');

const windowSchema = z.object({
  days: z.array(z.number().int()).describe('0 Sunday .. 6 Saturday'),
  start: z.string().describe('HH:MM local time, inclusive'),
  end: z.string().describe('HH:MM local time, exclusive; 24:00 is the end of the day'),
});

const campaignSchema = z.object({
  id,
  name: z.string(),
  status: z.enum(CAMPAIGN_STATUSES),
  template_id: z.uuid().nullable(),
  list_id: z.uuid().nullable(),
  body: z.string().nullable().describe('The template’s body as the campaign took it when it started'),
  sender: z.string().nullable(),
  provider_account_id: z.uuid().nullable(),
  route_id: z.uuid().nullable(),
  tags: z.array(z.string()),
  time_zone: z.string(),
  window: windowSchema,
  daily_limit: z.number().int().nullable(),
  start_at: z.string().nullable(),
  total: z.number().int().describe('Recipients taken from the list when it started'),
  excluded: z.number().int().describe('List members left out then because they had opted out'),
  progress: z.record(z.string(), z.number().int()).describe('Recipients by status'),
  handed_over_today: z
    .number()
    .int()
    .describe('Messages queued on the current local day (the daily limit counts these)'),
  job: jobSchema.nullable().describe('The job that drives it now'),
  started_at: z.string().nullable(),
  paused_at: z.string().nullable(),
  completed_at: z.string().nullable(),
  cancelled_at: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
  links: z.object({ self: z.string(), recipients: z.string() }),
});

function campaignView({ row, progress }: CampaignView, job: JobRow | null, now: Date) {
  return {
    id: row.id,
    name: row.name,
    status: row.status,
    template_id: row.templateId,
    list_id: row.listId,
    body: row.body,
    sender: row.sender,
    provider_account_id: row.providerAccountId,
    route_id: row.routeId,
    tags: row.tags,
    time_zone: row.timeZone,
    window: { days: row.windowDays, start: hhmm(row.windowStart), end: hhmm(row.windowEnd) },
    daily_limit: row.dailyLimit,
    start_at: iso(row.startAt),
    total: row.total,
    excluded: row.excluded,
    progress,
    handed_over_today: row.day === localDay(now, row.timeZone).date ? row.dayCount : 0,
    job: job ? jobView(job) : null,
    started_at: iso(row.startedAt),
    paused_at: iso(row.pausedAt),
    completed_at: iso(row.completedAt),
    cancelled_at: iso(row.cancelledAt),
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
    links: { self: `/v1/sms/campaigns/${row.id}`, recipients: `/v1/sms/campaigns/${row.id}/recipients` },
  };
}

const recipientSchema = z.object({
  id,
  seq: z.number().int().describe('Its place in the sending order'),
  contact_id: z.uuid().nullable(),
  phone: z.string(),
  status: z.enum(RECIPIENT_STATUSES),
  message_id: z.uuid().nullable().describe('The SMS (GET /v1/sms/messages/:id), once queued'),
  error_code: z.string().nullable(),
  error: z.string().nullable(),
  attempts: z
    .number()
    .int()
    .describe('Times handed to the queue (a pause or a closing window hands it back)'),
  queued_at: z.string().nullable(),
  sent_at: z.string().nullable(),
  delivered_at: z.string().nullable(),
  failed_at: z.string().nullable(),
  updated_at: z.string(),
});

function recipientView(r: RecipientRow) {
  return {
    id: r.id,
    seq: r.seq,
    contact_id: r.contactId,
    phone: r.phone,
    status: r.status,
    message_id: r.messageId,
    error_code: r.errorCode,
    error: r.error,
    attempts: r.attempts,
    queued_at: iso(r.queuedAt),
    sent_at: iso(r.sentAt),
    delivered_at: iso(r.deliveredAt),
    failed_at: iso(r.failedAt),
    updated_at: r.updatedAt.toISOString(),
  };
}

const campaignBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  template_id: z.uuid(),
  list_id: z.uuid(),
  sender: z.string().trim().min(1).max(20).nullish().describe('A number or alphanumeric sender id'),
  provider_account_id: z.uuid().nullish().describe('The gateway account; default the organisation’s routing'),
  route_id: z.uuid().nullish().describe('A routing rule of the sms module'),
  tags: z.array(z.string().trim().min(1).max(64)).max(20).optional().describe('Tags every message carries'),
  time_zone: z
    .string()
    .min(1)
    .max(64)
    .nullish()
    .describe('IANA zone of the window and the daily limit; default the organisation’s SMS time zone'),
  window: z
    .strictObject({
      days: z
        .array(z.number().int().min(0).max(6))
        .min(1)
        .max(7)
        .optional()
        .describe('0 Sunday .. 6 Saturday; default every day'),
      start: time.optional().describe('HH:MM, default 00:00'),
      end: time.optional().describe('HH:MM, default 24:00'),
    })
    .nullish()
    .describe(
      'When messages are handed to the queue; outside it, queued messages not yet sent are taken back',
    ),
  daily_limit: z.number().int().min(1).max(10_000_000).nullish().describe('Messages per local day'),
  start_at: z.iso.datetime({ offset: true }).nullish().describe('When to start (default: when started)'),
});

export function campaignRoutes(campaigns: CampaignsService, now: () => Date) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['sms campaigns'];
    const read = { level: 'org', role: 'member', scope: 'sms:read' } as const;
    const write = { level: 'org', role: 'member', scope: 'sms:write' } as const;
    const params = z.strictObject({ id: uuidParam });
    const org = (request: FastifyRequest) => authOf(request).organizationId;
    const view = async (organizationId: string, v: CampaignView) =>
      campaignView(v, await campaigns.job(organizationId, v.row), now());
    const audit = (action: string) => ({ action, targetType: 'sms_campaign', targetParam: 'id' });

    app.post(
      '/v1/sms/campaigns',
      {
        schema: {
          tags,
          summary: 'Create an SMS campaign (a draft)',
          description: 'A template sent to a list. Start it with POST /v1/sms/campaigns/:id/start.',
          body: campaignBody,
          response: { 201: campaignSchema },
        },
        config: { access: write, audit: { action: 'sms_campaign.create', targetType: 'sms_campaign' } },
      },
      async (request, reply) => {
        const created = await campaigns.create(org(request), request.body);
        request.auditTarget = { id: created.row.id };
        return reply.status(201).send(await view(org(request), created));
      },
    );

    app.get(
      '/v1/sms/campaigns',
      {
        schema: {
          tags,
          summary: 'SMS campaigns, newest first, with their progress',
          querystring: z.strictObject({ ...pageQuery, status: z.enum(CAMPAIGN_STATUSES).optional() }),
          response: { 200: pageOf(campaignSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const { page, page_size, status } = request.query;
        const found = await campaigns.list(org(request), status, { page, page_size });
        return { ...found, items: await Promise.all(found.items.map((c) => view(org(request), c))) };
      },
    );

    app.get(
      '/v1/sms/campaigns/:id',
      {
        schema: {
          tags,
          summary: 'A campaign: its state, its recipients by status, the job that drives it',
          params,
          response: { 200: campaignSchema },
        },
        config: { access: read },
      },
      async (request) => view(org(request), await campaigns.get(org(request), request.params.id)),
    );

    app.patch(
      '/v1/sms/campaigns/:id',
      {
        schema: {
          tags,
          summary: 'Change a campaign',
          description:
            'Template and list only while it is a draft, start_at only before it starts; the window, daily limit, sender and account until it ends (409 after).',
          params,
          body: campaignBody.partial(),
          response: { 200: campaignSchema },
        },
        config: { access: write, audit: audit('sms_campaign.update') },
      },
      async (request) =>
        view(org(request), await campaigns.update(org(request), request.params.id, request.body)),
    );

    app.delete(
      '/v1/sms/campaigns/:id',
      {
        schema: {
          tags,
          summary: 'Delete a campaign that is a draft or has ended (409 otherwise: cancel it first)',
          params,
          response: { 204: z.null() },
        },
        config: { access: write, audit: audit('sms_campaign.delete') },
      },
      async (request, reply) => {
        await campaigns.delete(org(request), request.params.id);
        return reply.status(204).send(null);
      },
    );

    const moves = [
      {
        path: 'start',
        summary: 'Start a draft: at start_at (given here, or set before), else now',
        description:
          'The campaign takes the template’s body now and becomes `scheduled`; when its time comes it takes the list’s members (less those who opted out) as its recipients and becomes `active` (campaign.started). 409 unless it is a draft.',
        body: true,
      },
      {
        path: 'pause',
        summary: 'Pause an active campaign',
        description:
          'Nothing more is queued, and its queued messages not yet sent are taken back: their recipients wait again (campaign.paused). 409 unless it is active.',
      },
      {
        path: 'resume',
        summary: 'Resume a paused campaign from where it stopped',
        description: '409 unless it is paused.',
      },
      {
        path: 'cancel',
        summary: 'Cancel a campaign',
        description:
          'Queued messages not yet sent are withdrawn and recipients not yet sent to are cancelled (campaign.cancelled). 409 once it has completed or been cancelled.',
      },
    ] as const;
    for (const move of moves) {
      app.post(
        `/v1/sms/campaigns/:id/${move.path}`,
        {
          schema: {
            tags,
            summary: move.summary,
            description: move.description,
            params,
            ...('body' in move
              ? { body: z.strictObject({ start_at: campaignBody.shape.start_at }).nullish() }
              : {}),
            response: { 200: campaignSchema },
          },
          config: { access: write, audit: audit(`sms_campaign.${move.path}`) },
        },
        async (request) => {
          const organizationId = org(request);
          const campaignId = request.params.id;
          const by = startedBy(request);
          const body = (request.body ?? {}) as { start_at?: string | null };
          const done =
            move.path === 'start'
              ? await campaigns.start(organizationId, campaignId, body.start_at, by)
              : move.path === 'pause'
                ? await campaigns.pause(organizationId, campaignId)
                : move.path === 'resume'
                  ? await campaigns.resume(organizationId, campaignId, by)
                  : await campaigns.cancel(organizationId, campaignId);
          return view(organizationId, done);
        },
      );
    }

    app.get(
      '/v1/sms/campaigns/:id/recipients',
      {
        schema: {
          tags,
          summary: 'A campaign’s recipients in sending order, with their status',
          params,
          querystring: z.strictObject({
            ...pageQuery,
            status: z
              .preprocess(
                (v) => (typeof v === 'string' ? v.split(',').filter(Boolean) : v),
                z.array(z.enum(RECIPIENT_STATUSES)).max(8),
              )
              .optional()
              .describe('Comma-separated statuses'),
            phone: z.string().trim().min(1).max(40).optional().describe('Part of the number'),
          }),
          response: { 200: pageOf(recipientSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const { page, page_size, status, phone } = request.query;
        const found = await campaigns.recipients(
          org(request),
          request.params.id,
          { status, phone },
          { page, page_size },
        );
        return { ...found, items: found.items.map(recipientView) };
      },
    );
  };
}
