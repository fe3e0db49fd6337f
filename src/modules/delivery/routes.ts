import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { AppError, validationFailed } from '../../core/errors.ts';
import { batchItemInvalid, problemOf } from '../../core/http.ts';
import { auditEntryOf } from '../audit/hooks.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import type { OutboundService, QueueSelection } from './service.ts';
export type { SendInput } from './service.ts';
import type { DeliveryRow } from './tables.ts';
import { changedView, deliveryView, holdReason } from './views.ts';

const address = z.string().min(3).max(320);
const addressList = z.array(address).max(1_000);

const sendBody = z.strictObject({
  from: z
    .union([address, z.strictObject({ address, name: z.string().max(200).nullish() })])
    .describe('An address on a verified domain of the organisation, or {address, name}'),
  to: addressList.nullish(),
  cc: addressList.nullish(),
  bcc: addressList.nullish().describe('Envelope recipients only: no Bcc header is written'),
  reply_to: addressList.max(10).nullish(),
  subject: z.string().max(998),
  text: z.string().max(10_000_000).nullish(),
  html: z.string().max(10_000_000).nullish(),
  attachments: z
    .array(
      z.strictObject({
        filename: z.string().min(1).max(255),
        content: z.string().describe('Base64'),
        content_type: z.string().max(255).nullish(),
        content_id: z.string().max(255).nullish().describe('For inline images referenced as cid: in html'),
      }),
    )
    .max(100)
    .nullish(),
  headers: z
    .record(z.string(), z.string().max(998))
    .nullish()
    .describe('Extra headers, e.g. List-Unsubscribe'),
  tags: z.array(z.string().min(1).max(100)).max(20).nullish(),
  send_at: z.iso.datetime({ offset: true }).nullish().describe('Schedule the message (up to 30 days ahead)'),
});

/** A message of the batch endpoint: a send request, with its own idempotency key. */
const batchItem = sendBody.extend({
  idempotency_key: z
    .string()
    .min(1)
    .max(255)
    .optional()
    .describe('As the Idempotency-Key header of a single send: a repeated item sends nothing more'),
});

/** Most messages one batch request carries. */
export const MAX_BATCH = 500;

const sendResult = z.object({
  id: z.uuid().describe('The message; GET /v1/messages/:id shows its recipients and every attempt'),
  message_id: z.string().describe('The Message-ID header'),
  status: z.enum(['queued', 'scheduled', 'held']),
  send_at: z.string().nullable(),
  recipients: z.array(
    z.object({
      delivery_id: z.uuid(),
      address: z.string(),
      status: z.enum(['queued', 'held']),
      hold_reason: holdReason.nullable(),
    }),
  ),
});

const queueItem = z.object({
  id: z.uuid().describe('The delivery (one recipient of a message)'),
  message_id: z.uuid(),
  recipient: z.string(),
  domain: z.string(),
  status: z.enum(['queued', 'held', 'sending']),
  scheduled: z.boolean().describe('Queued for a time that has not come (send_at, or the next retry)'),
  hold_reason: holdReason.nullable(),
  hold_detail: z.string().nullable(),
  attempts: z.number().int(),
  next_attempt_at: z.string(),
  last_code: z.number().int().nullable(),
  last_response: z.string().nullable(),
  mail_from: z.string(),
  from: z.string().nullable(),
  subject: z.string().nullable(),
  created_at: z.string(),
});

function queueView(row: {
  delivery: DeliveryRow;
  mailFrom: string;
  subject: string | null;
  fromAddress: string | null;
}) {
  const d = row.delivery;
  return {
    id: d.id,
    message_id: d.messageId,
    recipient: d.recipient,
    domain: d.domain,
    status: d.status as 'queued' | 'held' | 'sending',
    scheduled: d.status === 'queued' && d.nextAttemptAt.getTime() > Date.now(),
    hold_reason: d.holdReason,
    hold_detail: d.holdDetail,
    attempts: d.attempts,
    next_attempt_at: d.nextAttemptAt.toISOString(),
    last_code: d.lastCode,
    last_response: d.lastResponse,
    mail_from: row.mailFrom,
    from: row.fromAddress,
    subject: row.subject,
    created_at: d.createdAt.toISOString(),
  };
}

const problemSchema = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  code: z.string(),
  errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
});

const batchResult = z.object({
  items: z.array(
    z.object({
      index: z.number().int().describe('The position of the message in the request'),
      status: z
        .number()
        .int()
        .describe('202 queued; 200 repeated (its idempotency key was used before); 4xx refused'),
      result: sendResult.optional(),
      problem: problemSchema.optional().describe('Why the message was refused (RFC 9457)'),
    }),
  ),
  queued: z.number().int().describe('Messages queued by this request'),
  repeated: z.number().int().describe('Messages whose idempotency key repeated an earlier request'),
  refused: z.number().int(),
});

export function deliveryRoutes(
  outbound: OutboundService,
  options: { maxMessageSize: number; batchBodyLimit: number },
) {
  // Attachments arrive base64-encoded in JSON: a third larger than the message they make.
  const sendBodyLimit = Math.ceil((options.maxMessageSize * 4) / 3) + 1_048_576;
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const send = { level: 'org', role: 'member', scope: 'messages:write' } as const;
    const read = { level: 'org', role: 'member', scope: 'queue:read' } as const;
    const write = { level: 'org', role: 'admin', scope: 'queue:write' } as const;

    app.post(
      '/v1/messages/send',
      {
        schema: {
          tags: ['sending'],
          summary: 'Send a message: checked, signed with DKIM and queued for delivery',
          description:
            'Answers 202 once the message is stored and queued. With an `Idempotency-Key` header, a retried request (same key, same body) within a day gets the first answer again (200, `Idempotent-Replayed: true`) and sends nothing more; the same key with another body is refused (422).',
          headers: z.object({ 'idempotency-key': z.string().min(1).max(255).optional() }),
          body: sendBody,
          response: { 200: sendResult, 202: sendResult },
        },
        bodyLimit: sendBodyLimit,
        config: { access: send, audit: { action: 'message.send', targetType: 'message' } },
      },
      async (request, reply) => {
        const key = request.headers['idempotency-key'];
        const audit = auditEntryOf(request, 202) ?? undefined;
        const { result, replayed } = await outbound.send(
          authOf(request).organizationId,
          request.body,
          key,
          audit,
        );
        request.auditTarget = { id: result.id };
        if (replayed) return reply.status(200).header('idempotent-replayed', 'true').send(result);
        // Its audit entry was written with the message, in the queueing transaction.
        request.auditRecorded = audit !== undefined;
        return reply.status(202).send(result);
      },
    );

    app.post(
      '/v1/messages/send/batch',
      {
        schema: {
          tags: ['sending'],
          summary: `Send up to ${MAX_BATCH} messages in one request, each checked and answered on its own`,
          description:
            'Each message is what `POST /v1/messages/send` takes, with an optional `idempotency_key` of its own. Each is answered in `items` at its index: 202 with its result when queued, 200 when its key repeats an earlier request (the earlier result, nothing sent again), or a 4xx with the problem that refused it; one refused message does not stop the others. The accepted ones are queued together. Answers 200 when the request itself is well formed, whatever became of its messages.',
          body: z.object({ messages: z.array(batchItem).min(1).max(MAX_BATCH) }),
          response: { 200: batchResult },
        },
        // Each message is validated on its own (below), so one bad message does not refuse the request.
        attachValidation: true,
        bodyLimit: options.batchBodyLimit,
        config: { access: send, audit: { action: 'message.send', targetType: 'message' } },
      },
      async (request) => {
        const messages = (request.body as { messages?: unknown } | undefined)?.messages;
        if (!Array.isArray(messages) || messages.length === 0 || messages.length > MAX_BATCH) {
          const message = `must be a list of 1 to ${MAX_BATCH} messages`;
          throw new AppError(400, 'validation_failed', `body.messages: ${message}`, {
            errors: [{ field: 'body.messages', message }],
          });
        }
        const items = messages.map((raw, index) => ({ index, parsed: batchItem.safeParse(raw) }));
        const valid = items.flatMap((i) =>
          i.parsed.success ? [{ index: i.index, data: i.parsed.data }] : [],
        );
        const audit = auditEntryOf(request, 202) ?? undefined;
        const sent = await outbound.sendBatch(
          authOf(request).organizationId,
          valid.map(({ data: { idempotency_key, ...input } }) => ({
            input,
            idempotencyKey: idempotency_key,
          })),
          audit,
        );
        const answers = new Map(valid.map((v, i) => [v.index, sent[i]]));
        const out = items.map((item) => {
          if (!item.parsed.success) {
            return batchItemInvalid(item.index, item.parsed.error.issues);
          }
          const answer = answers.get(item.index)!;
          if ('error' in answer) {
            if (!(answer.error instanceof AppError)) throw answer.error;
            const e = answer.error;
            return {
              index: item.index,
              status: e.status,
              problem: problemOf(e.status, e.code, e.message, e.errors),
            };
          }
          return { index: item.index, status: answer.replayed ? 200 : 202, result: answer.result };
        });
        // Each queued message's audit entry was written with it; a request that queued none gets one here.
        request.auditRecorded = audit !== undefined && out.some((o) => o.status === 202);
        return {
          items: out,
          queued: out.filter((o) => o.status === 202).length,
          repeated: out.filter((o) => o.status === 200).length,
          refused: out.filter((o) => o.status >= 400).length,
        };
      },
    );

    app.get(
      '/v1/queue',
      {
        schema: {
          tags: ['queue'],
          summary:
            'Recipients waiting for delivery: queued (due, scheduled or deferred), held, or being sent',
          querystring: z.strictObject({
            ...pageQuery,
            status: z.enum(['queued', 'held', 'sending']).optional(),
            domain: z.string().max(253).optional().describe('Recipient domain'),
            message_id: z.uuid().optional(),
            hold_reason: holdReason.optional(),
          }),
          response: { 200: pageOf(queueItem) },
        },
        config: { access: read },
      },
      async (request) => {
        const { page, page_size, status, domain, message_id, hold_reason } = request.query;
        const found = await outbound.listQueue(
          authOf(request).organizationId,
          { status, domain: domain?.toLowerCase(), messageId: message_id, holdReason: hold_reason },
          { page, page_size },
        );
        return { ...found, items: found.items.map(queueView) };
      },
    );

    const actions = {
      retry: { summary: 'Try queued recipients now (deferred or scheduled)', run: outbound.retry },
      release: {
        summary: 'Send held recipients (suppressed or over a send limit) now',
        run: outbound.release,
      },
      cancel: { summary: 'Cancel queued or held recipients', run: outbound.cancel },
    } as const;
    for (const [action, { summary, run }] of Object.entries(actions)) {
      const perform = (organizationId: string, selection: QueueSelection) =>
        run.call(outbound, organizationId, selection);
      app.post(
        `/v1/queue/:id/${action}`,
        {
          schema: {
            tags: ['queue'],
            summary: `${summary}: one recipient`,
            params: z.strictObject({ id: uuidParam }),
            response: { 200: z.object({ items: z.array(deliveryView) }) },
          },
          config: {
            access: write,
            audit: { action: `queue.${action}`, targetType: 'delivery', targetParam: 'id' },
          },
        },
        async (request) => {
          const changed = await perform(authOf(request).organizationId, { deliveryIds: [request.params.id] });
          return { items: changed.map(changedView) };
        },
      );
      app.post(
        `/v1/queue/${action}`,
        {
          schema: {
            tags: ['queue'],
            summary: `${summary}: every recipient of a message, or the listed ones`,
            body: z.strictObject({
              message_id: z.uuid().optional(),
              delivery_ids: z.array(z.uuid()).min(1).max(1_000).optional(),
            }),
            response: { 200: z.object({ items: z.array(deliveryView) }) },
          },
          config: { access: write, audit: { action: `queue.${action}`, targetType: 'message' } },
        },
        async (request) => {
          const { message_id, delivery_ids } = request.body;
          if (Boolean(message_id) === Boolean(delivery_ids))
            throw validationFailed('body', 'give message_id or delivery_ids');
          const selection: QueueSelection = message_id
            ? { messageId: message_id }
            : { deliveryIds: delivery_ids! };
          const changed = await perform(authOf(request).organizationId, selection);
          return { items: changed.map(changedView) };
        },
      );
    }
  };
}
