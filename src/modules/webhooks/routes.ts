import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { isValidEventFilter } from '../../core/events.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import type { WebhooksService } from './service.ts';
import type { AttemptRow, DeliveryRow, EndpointRow } from './tables.ts';

const endpointSchema = z.object({
  id: z.uuid(),
  url: z.string(),
  description: z.string(),
  event_types: z.array(z.string()),
  enabled: z.boolean(),
  failing_since: z.string().nullable(),
  disabled_at: z.string().nullable(),
  disabled_reason: z.string().nullable(),
  previous_secret_expires_at: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});

const deliverySchema = z.object({
  id: z.uuid(),
  endpoint_id: z.uuid(),
  event_id: z.uuid().nullable(),
  event_type: z.string(),
  status: z.enum(['pending', 'succeeded', 'failed']),
  attempts: z.number().int(),
  next_attempt_at: z.string().nullable(),
  last_attempt_at: z.string().nullable(),
  last_status_code: z.number().int().nullable(),
  last_error: z.string().nullable(),
  replay_of: z.uuid().nullable(),
  created_at: z.string(),
});

const attemptSchema = z.object({
  id: z.uuid(),
  attempted_at: z.string(),
  duration_ms: z.number().int(),
  status_code: z.number().int().nullable(),
  response_body: z.string().nullable(),
  error: z.string().nullable(),
});

const deliveryWithAttempts = deliverySchema.extend({ attempts_log: z.array(attemptSchema) });

const iso = (d: Date | null) => d?.toISOString() ?? null;

function endpointView(e: EndpointRow) {
  return {
    id: e.id,
    url: e.url,
    description: e.description,
    event_types: e.eventTypes,
    enabled: e.enabled,
    failing_since: iso(e.failingSince),
    disabled_at: iso(e.disabledAt),
    disabled_reason: e.disabledReason,
    previous_secret_expires_at:
      e.previousSecretExpiresAt && e.previousSecretExpiresAt > new Date()
        ? e.previousSecretExpiresAt.toISOString()
        : null,
    created_at: e.createdAt.toISOString(),
    updated_at: e.updatedAt.toISOString(),
  };
}

function deliveryView(d: DeliveryRow) {
  return {
    id: d.id,
    endpoint_id: d.endpointId,
    event_id: d.eventId,
    event_type: d.eventType,
    status: d.status,
    attempts: d.attempts,
    next_attempt_at: iso(d.nextAttemptAt),
    last_attempt_at: iso(d.lastAttemptAt),
    last_status_code: d.lastStatusCode,
    last_error: d.lastError,
    replay_of: d.replayOf,
    created_at: d.createdAt.toISOString(),
  };
}

function deliveryWithAttemptsView({ delivery, attempts }: { delivery: DeliveryRow; attempts: AttemptRow[] }) {
  return { ...deliveryView(delivery), attempts_log: attempts.map(attemptView) };
}

function attemptView(a: AttemptRow) {
  return {
    id: a.id,
    attempted_at: a.attemptedAt.toISOString(),
    duration_ms: a.durationMs,
    status_code: a.statusCode,
    response_body: a.responseBody,
    error: a.error,
  };
}

const webhookUrl = z
  .url({ protocol: /^https?$/, error: 'must be an http or https URL' })
  .max(2000)
  .describe('Where to POST; refused when it resolves to a private, loopback or link-local address');

const eventTypesField = z
  .array(
    z
      .string()
      .max(200)
      .refine(isValidEventFilter, { error: (i) => `unknown event type "${i.input}"; see /v1/event-types` }),
  )
  .max(200)
  .describe('Event types (or `family.*`) to receive; empty receives every type');

export function webhookRoutes(webhooks: WebhooksService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['webhooks'];
    const read = { level: 'org', role: 'member', scope: 'webhooks:read' } as const;
    const write = { level: 'org', role: 'admin', scope: 'webhooks:write' } as const;
    const idParams = z.strictObject({ id: uuidParam });

    app.post(
      '/v1/webhooks',
      {
        schema: {
          tags,
          summary: 'Add an endpoint; its signing secret is in this response (and GET …/secret)',
          body: z.strictObject({
            url: webhookUrl,
            description: z.string().max(500).optional(),
            event_types: eventTypesField.optional(),
            enabled: z.boolean().optional(),
          }),
          response: { 201: endpointSchema.extend({ secret: z.string() }) },
        },
        config: { access: write, audit: { action: 'webhook.create', targetType: 'webhook' } },
      },
      async (request, reply) => {
        const { endpoint, secret } = await webhooks.create(authOf(request).organizationId, request.body);
        request.auditTarget = { id: endpoint.id };
        return reply.status(201).send({ ...endpointView(endpoint), secret });
      },
    );

    app.get(
      '/v1/webhooks',
      {
        schema: {
          tags,
          summary: 'Endpoints',
          querystring: z.strictObject(pageQuery),
          response: { 200: pageOf(endpointSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const page = await webhooks.list(authOf(request).organizationId, request.query);
        return { ...page, items: page.items.map(endpointView) };
      },
    );

    app.get(
      '/v1/webhooks/:id',
      {
        schema: { tags, summary: 'One endpoint', params: idParams, response: { 200: endpointSchema } },
        config: { access: read },
      },
      async (request) => endpointView(await webhooks.get(authOf(request).organizationId, request.params.id)),
    );

    app.patch(
      '/v1/webhooks/:id',
      {
        schema: {
          tags,
          summary: 'Change an endpoint; enabling a disabled one resumes its pending messages',
          params: idParams,
          body: z.strictObject({
            url: webhookUrl.optional(),
            description: z.string().max(500).optional(),
            event_types: eventTypesField.optional(),
            enabled: z.boolean().optional(),
          }),
          response: { 200: endpointSchema },
        },
        config: {
          access: write,
          audit: { action: 'webhook.update', targetType: 'webhook', targetParam: 'id' },
        },
      },
      async (request) =>
        endpointView(await webhooks.update(authOf(request).organizationId, request.params.id, request.body)),
    );

    app.delete(
      '/v1/webhooks/:id',
      {
        schema: { tags, summary: 'Remove an endpoint and its delivery log', params: idParams },
        config: {
          access: write,
          audit: { action: 'webhook.delete', targetType: 'webhook', targetParam: 'id' },
        },
      },
      async (request, reply) => {
        await webhooks.delete(authOf(request).organizationId, request.params.id);
        return reply.status(204).send(null);
      },
    );

    app.get(
      '/v1/webhooks/:id/secret',
      {
        schema: {
          tags,
          summary: 'The signing secret (whsec_…), for a receiver using a Standard Webhooks library',
          params: idParams,
          response: { 200: z.object({ secret: z.string() }) },
        },
        config: { access: write },
      },
      async (request) => ({
        secret: await webhooks.secret(authOf(request).organizationId, request.params.id),
      }),
    );

    app.post(
      '/v1/webhooks/:id/rotate-secret',
      {
        schema: {
          tags,
          summary: 'A new signing secret; the old one still signs (alongside) for the grace period',
          params: idParams,
          body: z
            .strictObject({
              grace_period_seconds: z
                .number()
                .int()
                .min(0)
                .max(7 * 86400)
                .default(86400),
            })
            .default({ grace_period_seconds: 86400 }),
          response: { 200: endpointSchema.extend({ secret: z.string() }) },
        },
        config: {
          access: write,
          audit: { action: 'webhook.rotate_secret', targetType: 'webhook', targetParam: 'id' },
        },
      },
      async (request) => {
        const { endpoint, secret } = await webhooks.rotateSecret(
          authOf(request).organizationId,
          request.params.id,
          request.body.grace_period_seconds,
        );
        return { ...endpointView(endpoint), secret };
      },
    );

    app.post(
      '/v1/webhooks/:id/test',
      {
        schema: {
          tags,
          summary: 'Send a webhook.test message now and report the attempt (not retried)',
          params: idParams,
          response: { 200: deliveryWithAttempts },
        },
        config: {
          access: write,
          audit: { action: 'webhook.test', targetType: 'webhook', targetParam: 'id' },
        },
      },
      async (request) => {
        return deliveryWithAttemptsView(
          await webhooks.test(authOf(request).organizationId, request.params.id),
        );
      },
    );

    app.get(
      '/v1/webhooks/:id/deliveries',
      {
        schema: {
          tags,
          summary: "An endpoint's deliveries, newest first",
          params: idParams,
          querystring: z.strictObject({
            ...pageQuery,
            status: z.enum(['pending', 'succeeded', 'failed']).optional(),
            event_type: z.string().max(200).optional(),
          }),
          response: { 200: pageOf(deliverySchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const { page, page_size, status, event_type } = request.query;
        const result = await webhooks.listDeliveries(
          authOf(request).organizationId,
          { endpointId: request.params.id, status, eventType: event_type },
          { page, page_size },
        );
        return { ...result, items: result.items.map(deliveryView) };
      },
    );

    app.get(
      '/v1/webhooks/deliveries/:id',
      {
        schema: {
          tags,
          summary: 'One delivery with every attempt (status, duration, the start of the response)',
          params: idParams,
          response: { 200: deliveryWithAttempts },
        },
        config: { access: read },
      },
      async (request) =>
        deliveryWithAttemptsView(await webhooks.delivery(authOf(request).organizationId, request.params.id)),
    );

    app.post(
      '/v1/webhooks/deliveries/:id/replay',
      {
        schema: {
          tags,
          summary: 'Send a finished delivery again (a new delivery with the same webhook-id)',
          params: idParams,
          response: { 202: deliverySchema },
        },
        config: {
          access: write,
          audit: { action: 'webhook.replay', targetType: 'webhook_delivery', targetParam: 'id' },
        },
      },
      async (request, reply) => {
        const replay = await webhooks.replay(authOf(request).organizationId, request.params.id);
        return reply.status(202).send(deliveryView(replay));
      },
    );
  };
}
