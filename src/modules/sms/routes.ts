import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { AppError, validationFailed } from '../../core/errors.ts';
import { batchItemInvalid, problemOf } from '../../core/http.ts';
import { pageOf, pageQuery, toPage } from '../../core/pagination.ts';
import type { SmsReports } from './reports.ts';
import { MAX_BATCH, type SmsSendInput, type SmsService, type SmsSettings } from './service.ts';
import { SMS_STATUSES, type SmsRouteRow, type SmsThrottleRow } from './tables.ts';
import type { SmsMessageView } from './views.ts';

const id = z.uuid();
const iso = (d: Date | null) => d?.toISOString() ?? null;
const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM (24-hour)');
const status = z.enum(SMS_STATUSES);

const sendBody = z.strictObject({
  to: z.string().min(1).max(40).describe('E.164 (+14155550100), or a national number of the default region'),
  body: z
    .string()
    .min(1)
    .max(5_000)
    .describe('Measured as GSM-7 or UCS-2; refused above the settings’ max_parts'),
  sender: z
    .string()
    .min(1)
    .max(20)
    .optional()
    .describe('A number or an alphanumeric sender id (up to 11); default: the settings’ default_sender'),
  provider_account_id: z.uuid().optional().describe('Send through this gateway account (no failover)'),
  route_id: z
    .uuid()
    .optional()
    .describe('Send by this routing rule; default: the rule of the number’s prefix'),
  send_at: z.iso.datetime({ offset: true }).optional().describe('Schedule it (up to 30 days ahead)'),
  tags: z.array(z.string().min(1).max(100)).max(20).optional(),
});
type SendBody = z.infer<typeof sendBody>;

const inputOf = (b: SendBody): SmsSendInput => ({
  to: b.to,
  body: b.body,
  ...(b.sender !== undefined ? { sender: b.sender } : {}),
  ...(b.provider_account_id ? { providerAccountId: b.provider_account_id } : {}),
  ...(b.route_id ? { routeId: b.route_id } : {}),
  ...(b.send_at ? { sendAt: new Date(b.send_at) } : {}),
  ...(b.tags ? { tags: b.tags } : {}),
});

const price = z.object({ amount: z.string(), currency: z.string() });

const messageSchema = z.object({
  id,
  kind: z.enum(['standard', 'help']).describe('`help`: the automatic reply to a HELP keyword'),
  to: z.string(),
  sender: z.string().nullable(),
  body: z.string(),
  encoding: z.enum(['gsm7', 'ucs2']),
  characters: z.number().int(),
  parts: z.number().int(),
  status,
  tags: z.array(z.string()),
  route_id: z.uuid().nullable(),
  provider_account_id: id.describe('The gateway account it goes (or went) through'),
  failover_account_id: z.uuid().nullable(),
  on_failover: z.boolean(),
  campaign_id: z.uuid().nullable(),
  campaign_recipient_id: z.uuid().nullable(),
  send_at: z.string().nullable(),
  attempts: z.number().int().describe('Submits tried on the current account'),
  next_attempt_at: z.string().nullable(),
  provider: z.string().nullable(),
  provider_id: z.string().nullable().describe('The gateway’s id for it'),
  error_code: z.string().nullable(),
  error_message: z.string().nullable(),
  price: price.nullable(),
  created_at: z.string(),
  updated_at: z.string(),
  sent_at: z.string().nullable(),
  delivered_at: z.string().nullable(),
  failed_at: z.string().nullable(),
});

const throttleSchema = z.object({
  provider_account_id: id,
  per_second: z.number().nullable().describe('Messages a second (null: no limit)'),
  daily_limit: z
    .number()
    .int()
    .nullable()
    .describe('Messages a day, in the settings’ time zone (null: no limit)'),
  min_interval_seconds: z.number().describe('Random spacing between messages: at least this'),
  max_interval_seconds: z.number().describe('… and at most this'),
});

const settingsSchema = z.object({
  default_region: z.string(),
  default_sender: z.string().nullable(),
  max_parts: z.number().int(),
  quiet_hours: z.object({ start: z.string(), end: z.string() }).nullable(),
  time_zone: z.string(),
  help_text: z.string(),
  throttles: z.array(throttleSchema),
  updated_at: z.string().nullable(),
});

function settingsView({ settings, throttles }: { settings: SmsSettings; throttles: SmsThrottleRow[] }) {
  return {
    default_region: settings.defaultRegion,
    default_sender: settings.defaultSender,
    max_parts: settings.maxParts,
    quiet_hours: settings.quietHours,
    time_zone: settings.timeZone,
    help_text: settings.helpText,
    throttles: throttles.map((t) => ({
      provider_account_id: t.providerAccountId,
      per_second: t.perSecond,
      daily_limit: t.dailyLimit,
      min_interval_seconds: t.minIntervalMs / 1000,
      max_interval_seconds: t.maxIntervalMs / 1000,
    })),
    updated_at: iso(settings.updatedAt),
  };
}

const settingsBody = z.strictObject({
  default_region: z
    .string()
    .regex(/^[A-Za-z]{2}$/, 'must be an ISO 3166 alpha-2 code such as US or GB')
    .optional()
    .describe('Region of numbers written without a country code'),
  default_sender: z.string().min(1).max(20).nullable().optional(),
  max_parts: z.number().int().min(1).max(30).optional().describe('Longer bodies are refused (default 10)'),
  quiet_hours: z
    .strictObject({ start: hhmm, end: hhmm })
    .nullable()
    .optional()
    .describe('Recipient local time; a start after the end spans midnight (21:00 to 08:00)'),
  time_zone: z
    .string()
    .min(1)
    .max(64)
    .optional()
    .describe('For recipients whose zone is unknown, and daily limits'),
  help_text: z.string().min(1).max(640).optional().describe('The reply to HELP and INFO'),
  throttles: z
    .array(
      z.strictObject({
        provider_account_id: id,
        per_second: z.number().positive().max(100_000).nullable().optional(),
        daily_limit: z.number().int().min(1).max(10_000_000).nullable().optional(),
        min_interval_seconds: z.number().min(0).max(86_400).optional(),
        max_interval_seconds: z.number().min(0).max(86_400).optional(),
      }),
    )
    .max(200)
    .optional()
    .describe('Replaces every throttle'),
});

const routeSchema = z.object({
  id,
  name: z.string(),
  prefix: z.string().describe('Calling-code digits of the destination, or * for any'),
  provider_account_id: id,
  failover_account_id: z.uuid().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});

function routeView(r: SmsRouteRow) {
  return {
    id: r.id,
    name: r.name,
    prefix: r.prefix,
    provider_account_id: r.providerAccountId,
    failover_account_id: r.failoverAccountId,
    created_at: r.createdAt.toISOString(),
    updated_at: r.updatedAt.toISOString(),
  };
}

const routeBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  prefix: z
    .string()
    .trim()
    .min(1)
    .max(16)
    .describe('Calling-code digits (44, 1, 1415): the longest matching prefix wins; * matches every number'),
  provider_account_id: id.describe('The gateway account messages go through'),
  failover_account_id: z
    .uuid()
    .nullable()
    .optional()
    .describe('Where they go when that one’s retries are used up'),
});

const optOutSchema = z.object({
  number: z.string(),
  source: z.enum(['keyword', 'api']),
  keyword: z.string().nullable(),
  created_at: z.string(),
});

const threadEntry = z.object({
  direction: z.enum(['inbound', 'outbound']),
  id,
  body: z.string(),
  status: z.string().nullable().describe('Outbound messages: their status'),
  keyword: z.enum(['stop', 'start', 'help']).nullable(),
  at: z.string(),
});

const problemSchema = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  code: z.string(),
  errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
});

const csv = <T extends z.ZodType>(item: T) =>
  z.preprocess((v) => (typeof v === 'string' ? v.split(',').filter(Boolean) : v), z.array(item).max(20));

export function smsRoutes(sms: SmsService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['sms'];
    const read = { level: 'org', role: 'member', scope: 'sms:read' } as const;
    const write = { level: 'org', role: 'member', scope: 'sms:write' } as const;
    const admin = { level: 'org', role: 'admin', scope: 'sms:write' } as const;
    const org = (request: FastifyRequest) => authOf(request).organizationId!;
    const params = z.strictObject({ id });

    // ---- messages ---------------------------------------------------------------------------------------
    app.post(
      '/v1/sms/messages',
      {
        schema: {
          tags,
          summary: 'Send an SMS: checked, measured, routed and queued',
          description:
            'Answers 202 once queued. The number is normalised to E.164 (an invalid one is 422 `invalid_number`); an opted-out number is 422 `opted_out`; a body over the maximum parts is 422 `too_many_parts`. With an `Idempotency-Key` header, a repeated request (same key, same body) gets the first answer again (200, `Idempotent-Replayed: true`) and sends nothing more; the same key with another body is 422.',
          headers: z.object({ 'idempotency-key': z.string().min(1).max(255).optional() }),
          body: sendBody,
          response: { 200: messageSchema, 202: messageSchema },
        },
        config: { access: write, audit: { action: 'sms.send', targetType: 'sms_message' } },
      },
      async (request, reply) => {
        if (request.body.provider_account_id && request.body.route_id)
          throw validationFailed('body', 'give provider_account_id or route_id, not both');
        const { message, replayed } = await sms.submit(org(request), inputOf(request.body), {
          idempotencyKey: request.headers['idempotency-key'],
        });
        request.auditTarget = { id: message.id };
        if (replayed) return reply.status(200).header('idempotent-replayed', 'true').send(message);
        return reply.status(202).send(message);
      },
    );

    app.post(
      '/v1/sms/messages/batch',
      {
        schema: {
          tags,
          summary: `Send up to ${MAX_BATCH} SMS in one request, each checked and answered on its own`,
          description:
            'Each message is what `POST /v1/sms/messages` takes. Each is answered in `items` at its index: 202 with the message when queued, or a 4xx with the problem that refused it; one refused message does not stop the others, and the accepted ones are queued in one insert.',
          body: z.object({ messages: z.array(sendBody).min(1).max(MAX_BATCH) }),
          response: {
            200: z.object({
              items: z.array(
                z.object({
                  index: z.number().int(),
                  status: z.number().int(),
                  message: messageSchema.optional(),
                  problem: problemSchema.optional(),
                }),
              ),
              queued: z.number().int(),
              refused: z.number().int(),
            }),
          },
        },
        // Each message is validated on its own (below), so one bad message does not refuse the request.
        attachValidation: true,
        config: { access: write, audit: { action: 'sms.send_batch', targetType: 'sms_message' } },
      },
      async (request) => {
        const messages = (request.body as { messages?: unknown } | undefined)?.messages;
        if (!Array.isArray(messages) || messages.length === 0 || messages.length > MAX_BATCH) {
          const message = `must be a list of 1 to ${MAX_BATCH} messages`;
          throw new AppError(400, 'validation_failed', `body.messages: ${message}`, {
            errors: [{ field: 'body.messages', message }],
          });
        }
        const items = messages.map((raw, index) => {
          const parsed = sendBody.safeParse(raw);
          if (parsed.success && parsed.data.provider_account_id && parsed.data.route_id) {
            const error = validationFailed(
              `messages.${index}`,
              'give provider_account_id or route_id, not both',
            );
            return { index, error };
          }
          return { index, parsed };
        });
        const valid = items.flatMap((i) =>
          'parsed' in i && i.parsed?.success ? [{ index: i.index, data: i.parsed.data }] : [],
        );
        const answers = await sms.sendBatchDetailed(
          org(request),
          valid.map((v) => inputOf(v.data)),
        );
        const byIndex = new Map(valid.map((v, i) => [v.index, answers[i]]));
        const out = items.map((item) => {
          if ('error' in item && item.error) {
            const e = item.error;
            return {
              index: item.index,
              status: e.status,
              problem: problemOf(e.status, e.code, e.message, e.errors),
            };
          }
          if ('parsed' in item && item.parsed && !item.parsed.success) {
            return batchItemInvalid(item.index, item.parsed.error.issues);
          }
          const answer = byIndex.get(item.index)!;
          if ('error' in answer) {
            const e = answer.error;
            return {
              index: item.index,
              status: e.status,
              problem: problemOf(e.status, e.code, e.message, e.errors),
            };
          }
          return { index: item.index, status: answer.queued ? 202 : 200, message: answer.message };
        });
        return {
          items: out,
          queued: out.filter((o) => o.status === 202).length,
          refused: out.filter((o) => o.status >= 400).length,
        };
      },
    );

    app.get(
      '/v1/sms/messages',
      {
        schema: {
          tags,
          summary: 'SMS sent (and queued), newest first',
          querystring: z.strictObject({
            ...pageQuery,
            status: csv(status).optional().describe('Comma-separated'),
            to: z.string().min(1).max(40).optional(),
            campaign_id: z.uuid().optional(),
            provider_account_id: z.uuid().optional(),
            tag: z.string().min(1).max(100).optional(),
            created_after: z.iso.datetime({ offset: true }).optional(),
            created_before: z.iso.datetime({ offset: true }).optional(),
          }),
          response: { 200: pageOf(messageSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const q = request.query;
        return sms.list(
          org(request),
          {
            status: q.status,
            to: q.to ? await sms.normalize(org(request), q.to, 'to') : undefined,
            campaignId: q.campaign_id,
            providerAccountId: q.provider_account_id,
            tag: q.tag,
            createdAfter: q.created_after ? new Date(q.created_after) : undefined,
            createdBefore: q.created_before ? new Date(q.created_before) : undefined,
          },
          { page: q.page, page_size: q.page_size },
        );
      },
    );

    app.get(
      '/v1/sms/messages/:id',
      {
        schema: { tags, summary: 'An SMS', params, response: { 200: messageSchema } },
        config: { access: read },
      },
      async (request): Promise<SmsMessageView> => sms.get(org(request), request.params.id),
    );

    app.post(
      '/v1/sms/messages/:id/cancel',
      {
        schema: {
          tags,
          summary: 'Cancel a queued or scheduled SMS (409 once it is being sent or sent)',
          params,
          response: { 200: messageSchema },
        },
        config: { access: write, audit: { action: 'sms.cancel', targetType: 'sms_message' } },
      },
      async (request) => sms.cancel(org(request), request.params.id),
    );

    // ---- settings and routes ----------------------------------------------------------------------------
    app.get(
      '/v1/sms/settings',
      {
        schema: {
          tags,
          summary: 'The organisation’s SMS settings and gateway throttles',
          response: { 200: settingsSchema },
        },
        config: { access: read },
      },
      async (request) => settingsView(await sms.settings(org(request))),
    );
    app.patch(
      '/v1/sms/settings',
      {
        schema: {
          tags,
          summary: 'Change SMS settings (fields left out stay as they are)',
          body: settingsBody,
          response: { 200: settingsSchema },
        },
        config: { access: admin, audit: { action: 'sms.settings.update', targetType: 'organization' } },
      },
      async (request) => settingsView(await sms.updateSettings(org(request), request.body)),
    );

    app.get(
      '/v1/sms/routes',
      {
        schema: {
          tags,
          summary: 'Routing rules: a destination prefix to a gateway account and its failover',
          querystring: z.strictObject(pageQuery),
          response: { 200: pageOf(routeSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const { page, page_size } = request.query;
        const all = (await sms.listRoutes(org(request))).map(routeView);
        return toPage(all.slice((page - 1) * page_size, page * page_size), all.length, { page, page_size });
      },
    );
    app.post(
      '/v1/sms/routes',
      {
        schema: { tags, summary: 'Add a routing rule', body: routeBody, response: { 201: routeSchema } },
        config: { access: admin, audit: { action: 'sms.route.create', targetType: 'sms_route' } },
      },
      async (request, reply) => {
        const route = await sms.createRoute(org(request), request.body);
        request.auditTarget = { id: route.id };
        return reply.status(201).send(routeView(route));
      },
    );
    app.get(
      '/v1/sms/routes/:id',
      {
        schema: { tags, summary: 'A routing rule', params, response: { 200: routeSchema } },
        config: { access: read },
      },
      async (request) => routeView(await sms.route(org(request), request.params.id)),
    );
    app.patch(
      '/v1/sms/routes/:id',
      {
        schema: {
          tags,
          summary: 'Change a routing rule',
          params,
          body: routeBody.partial(),
          response: { 200: routeSchema },
        },
        config: { access: admin, audit: { action: 'sms.route.update', targetType: 'sms_route' } },
      },
      async (request) => routeView(await sms.updateRoute(org(request), request.params.id, request.body)),
    );
    app.delete(
      '/v1/sms/routes/:id',
      {
        schema: { tags, summary: 'Delete a routing rule', params, response: { 204: z.null() } },
        config: { access: admin, audit: { action: 'sms.route.delete', targetType: 'sms_route' } },
      },
      async (request, reply) => {
        await sms.deleteRoute(org(request), request.params.id);
        return reply.status(204).send(null);
      },
    );

    // ---- opt-outs ---------------------------------------------------------------------------------------
    const numberParams = z.strictObject({ number: z.string().min(1).max(40) });
    app.get(
      '/v1/sms/opt-outs',
      {
        schema: {
          tags,
          summary: 'Numbers that opted out (by STOP or through the API): no SMS goes to them',
          querystring: z.strictObject({ ...pageQuery, number: z.string().min(1).max(40).optional() }),
          response: { 200: pageOf(optOutSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const { page, page_size, number } = request.query;
        const found = await sms.listOptOuts(org(request), { page, page_size }, number);
        return {
          ...found,
          items: found.items.map((o) => ({
            number: o.number,
            source: o.source,
            keyword: o.keyword,
            created_at: o.createdAt.toISOString(),
          })),
        };
      },
    );
    app.post(
      '/v1/sms/opt-outs',
      {
        schema: {
          tags,
          summary: 'Opt a number out: its queued messages are cancelled and sends to it refused',
          body: z.strictObject({ number: z.string().min(1).max(40) }),
          response: { 200: optOutSchema, 201: optOutSchema },
        },
        config: { access: write, audit: { action: 'sms.opt_out.create', targetType: 'sms_opt_out' } },
      },
      async (request, reply) => {
        const { optOut, added } = await sms.addOptOut(org(request), request.body.number);
        request.auditTarget = { id: optOut.number };
        return reply.status(added ? 201 : 200).send({
          number: optOut.number,
          source: optOut.source,
          keyword: optOut.keyword,
          created_at: optOut.createdAt.toISOString(),
        });
      },
    );
    app.delete(
      '/v1/sms/opt-outs/:number',
      {
        schema: { tags, summary: 'Opt a number back in', params: numberParams, response: { 204: z.null() } },
        config: {
          access: write,
          audit: { action: 'sms.opt_out.delete', targetType: 'sms_opt_out', targetParam: 'number' },
        },
      },
      async (request, reply) => {
        await sms.removeOptOut(org(request), request.params.number);
        return reply.status(204).send(null);
      },
    );

    // ---- conversations and statistics -------------------------------------------------------------------
    app.get(
      '/v1/sms/conversations',
      {
        schema: {
          tags,
          summary: 'Numbers that wrote to the organisation, the latest first',
          querystring: z.strictObject(pageQuery),
          response: {
            200: pageOf(
              z.object({
                number: z.string(),
                last_inbound_at: z.string(),
                last_body: z.string(),
                inbound_count: z.number().int(),
                opted_out: z.boolean(),
              }),
            ),
          },
        },
        config: { access: read },
      },
      async (request) => {
        const found = await sms.conversations(org(request), request.query);
        return {
          ...found,
          items: found.items.map((c) => ({
            number: c.number,
            last_inbound_at: c.lastInboundAt.toISOString(),
            last_body: c.lastBody,
            inbound_count: c.inboundCount,
            opted_out: c.optedOut,
          })),
        };
      },
    );
    app.get(
      '/v1/sms/conversations/:number',
      {
        schema: {
          tags,
          summary: 'One number’s conversation: messages received from it and sent to it, newest first',
          params: numberParams,
          querystring: z.strictObject(pageQuery),
          response: {
            200: pageOf(threadEntry).extend({
              number: z.string(),
              opted_out: z.boolean(),
              inbound_count: z.number().int(),
              last_inbound_at: z.string().nullable(),
            }),
          },
        },
        config: { access: read },
      },
      async (request) => {
        const c = await sms.conversation(org(request), request.params.number, request.query);
        return {
          ...c.page,
          items: c.page.items.map((e) => ({ ...e, at: e.at.toISOString() })),
          number: c.number,
          opted_out: c.optedOut,
          inbound_count: c.summary?.inboundCount ?? 0,
          last_inbound_at: iso(c.summary?.lastInboundAt ?? null),
        };
      },
    );

    app.get(
      '/v1/sms/stats',
      {
        schema: {
          tags,
          summary: 'SMS counts, parts and prices by day, gateway account and campaign',
          description:
            'Messages created in [from, to) (default: the last 30 days), grouped by `group_by` (default `day`). `sent` counts messages handed on (sent, delivered or undelivered); `failed` counts failed and undelivered ones; `parts` the parts of sent ones; `price` the gateways’ reported prices per currency.',
          querystring: z.strictObject({
            from: z.iso.datetime({ offset: true }).optional(),
            to: z.iso.datetime({ offset: true }).optional(),
            group_by: csv(z.enum(['day', 'provider_account', 'campaign'])).optional(),
          }),
          response: {
            200: z.object({
              from: z.string(),
              to: z.string(),
              items: z.array(
                z.object({
                  day: z.string().nullable(),
                  provider_account_id: z.uuid().nullable(),
                  campaign_id: z.uuid().nullable(),
                  queued: z.number().int(),
                  sent: z.number().int(),
                  delivered: z.number().int(),
                  failed: z.number().int(),
                  cancelled: z.number().int(),
                  parts: z.number().int(),
                  price: z.array(z.object({ currency: z.string(), amount: z.string() })),
                }),
              ),
            }),
          },
        },
        config: { access: read },
      },
      async (request) => {
        const to = request.query.to ? new Date(request.query.to) : new Date();
        const from = request.query.from
          ? new Date(request.query.from)
          : new Date(to.getTime() - 30 * 86_400_000);
        if (from >= to) throw validationFailed('from', 'must be before to');
        if (to.getTime() - from.getTime() > 400 * 86_400_000)
          throw validationFailed('from', 'at most 400 days');
        const items = await sms.stats(org(request), { from, to }, request.query.group_by ?? ['day']);
        return { from: from.toISOString(), to: to.toISOString(), items };
      },
    );
  };
}

/**
 * Gateways' webhooks: public (the gateway's signature is the credential), read as raw bytes so the
 * adapter checks the signature over exactly what was sent.
 */
export function smsWebhookRoutes(reports: SmsReports, options: { publicUrl: string; bodyLimit: number }) {
  return async (fastify: FastifyInstance) => {
    fastify.removeAllContentTypeParsers();
    fastify.addContentTypeParser(
      '*',
      { parseAs: 'buffer', bodyLimit: options.bodyLimit },
      (_request, body, done) => done(null, body),
    );
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    app.post(
      '/v1/sms/webhooks/:provider_account_id',
      {
        schema: {
          tags: ['sms'],
          summary: 'Where a gateway reports receipts and received messages (its signature is checked)',
          description:
            'Set this URL as the gateway’s webhook (SMS Gateway for Android) or status and messaging callback (Twilio). No bearer token: the request must carry the gateway’s signature (SMS Gateway’s HMAC, Twilio’s X-Twilio-Signature over MAILROOM_PUBLIC_URL and this path); a forged one is 403. Answers once what it reports is stored.',
          params: z.strictObject({ provider_account_id: id }),
          response: { 200: z.any().describe('JSON `{received}`; for Twilio an empty TwiML response') },
        },
        config: {
          access: { level: 'public' },
          audit: {
            action: 'sms.webhook',
            targetType: 'provider_account',
            targetParam: 'provider_account_id',
          },
        },
      },
      async (request, reply) => {
        const rawBody = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        const result = await reports.webhook(request.params.provider_account_id, {
          url: `${options.publicUrl}${request.url}`,
          headers: request.headers,
          rawBody,
        });
        // A gateway's report is not a change anyone made: it leaves no audit entry per call.
        request.auditRecorded = true;
        if (result.provider === 'twilio')
          return reply.type('text/xml').send('<?xml version="1.0" encoding="UTF-8"?><Response></Response>');
        return reply.send({ received: result.events });
      },
    );
  };
}
