import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import type { SuppressionsService } from './service.ts';
import type { SuppressionRow } from './tables.ts';

const reason = z.enum(['hard_bounce', 'manual', 'complaint']);

const suppressionSchema = z.object({
  id: z.uuid(),
  address: z.string().describe('Lower case'),
  reason,
  detail: z.string().nullable().describe('For a hard bounce, the remote server’s answer'),
  message_id: z.uuid().nullable().describe('The message whose bounce added the address'),
  created_at: z.string(),
});

function suppressionView(s: SuppressionRow) {
  return {
    id: s.id,
    address: s.address,
    reason: s.reason,
    detail: s.detail,
    message_id: s.messageId,
    created_at: s.createdAt.toISOString(),
  };
}

export function suppressionRoutes(suppressions: SuppressionsService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['suppressions'];
    const read = { level: 'org', role: 'member', scope: 'suppressions:read' } as const;
    const write = { level: 'org', role: 'admin', scope: 'suppressions:write' } as const;
    const addressParams = z.strictObject({ address: z.string().min(3).max(320) });

    app.get(
      '/v1/suppressions',
      {
        schema: {
          tags,
          summary: 'Suppressed addresses, newest first',
          querystring: z.strictObject({
            ...pageQuery,
            q: z.string().max(320).optional().describe('Addresses containing this text'),
            reason: reason.optional(),
          }),
          response: { 200: pageOf(suppressionSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const { page, page_size, q, reason } = request.query;
        const found = await suppressions.list(
          authOf(request).organizationId,
          { q, reason },
          { page, page_size },
        );
        return { ...found, items: found.items.map(suppressionView) };
      },
    );

    app.get(
      '/v1/suppressions/:address',
      {
        schema: {
          tags,
          summary: 'Whether an address is suppressed, and why',
          params: addressParams,
          response: { 200: suppressionSchema },
        },
        config: { access: read },
      },
      async (request) =>
        suppressionView(await suppressions.get(authOf(request).organizationId, request.params.address)),
    );

    app.post(
      '/v1/suppressions',
      {
        schema: {
          tags,
          summary: 'Suppress an address: mail to it is held from now on',
          body: z.strictObject({
            address: z.string().max(320),
            reason: z.enum(['manual', 'complaint']).nullish().describe('Default manual'),
            detail: z.string().max(1000).nullish(),
          }),
          response: { 201: suppressionSchema },
        },
        config: { access: write, audit: { action: 'suppression.create', targetType: 'suppression' } },
      },
      async (request, reply) => {
        const row = await suppressions.add(authOf(request).organizationId, request.body);
        request.auditTarget = { id: row.id };
        return reply.status(201).send(suppressionView(row));
      },
    );

    app.delete(
      '/v1/suppressions/:address',
      {
        schema: {
          tags,
          summary: 'Take an address off the suppression list',
          description: 'Messages already held for it stay held: release them through /v1/queue.',
          params: addressParams,
          response: { 204: z.null() },
        },
        config: {
          access: write,
          audit: { action: 'suppression.delete', targetType: 'suppression', targetParam: 'address' },
        },
      },
      async (request, reply) => {
        await suppressions.remove(authOf(request).organizationId, request.params.address);
        return reply.status(204).send(null);
      },
    );
  };
}
