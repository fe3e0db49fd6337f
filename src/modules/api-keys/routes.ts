import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import type { ApiKeysService } from './service.ts';
import type { ApiKeyRow } from './tables.ts';

const apiKeySchema = z.object({
  id: z.uuid(),
  name: z.string(),
  prefix: z.string(),
  scopes: z.array(z.string()),
  expires_at: z.string().nullable(),
  last_used_at: z.string().nullable(),
  created_by: z.uuid().nullable(),
  created_at: z.string(),
});

function keyView(k: ApiKeyRow) {
  return {
    id: k.id,
    name: k.name,
    prefix: k.prefix,
    scopes: k.scopes,
    expires_at: k.expiresAt?.toISOString() ?? null,
    last_used_at: k.lastUsedAt?.toISOString() ?? null,
    created_by: k.createdBy,
    created_at: k.createdAt.toISOString(),
  };
}

export function apiKeyRoutes(keys: ApiKeysService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['api-keys'];
    const orgParams = z.strictObject({ organization_id: uuidParam });
    const keyParams = z.strictObject({ organization_id: uuidParam, id: uuidParam });

    app.post(
      '/v1/organizations/:organization_id/api-keys',
      {
        schema: {
          tags,
          summary: 'Create an API key; the key itself is in this response only',
          description:
            'Scopes are `<resource>:read`, `<resource>:write` (implies read), `<resource>:*` or `*`.',
          params: orgParams,
          body: z.strictObject({
            name: z.string().trim().min(1).max(200),
            scopes: z.array(z.string().max(64)).min(1).max(50),
            expires_at: z.iso.datetime({ offset: true }).optional(),
          }),
          response: { 201: apiKeySchema.extend({ key: z.string() }) },
        },
        config: {
          access: { level: 'org', role: 'admin', scope: 'api_keys:write' },
          audit: { action: 'api_key.create', targetType: 'api_key' },
        },
      },
      async (request, reply) => {
        const auth = authOf(request);
        const { row, key } = await keys.create(auth.organizationId, auth.principal, request.body);
        request.auditTarget = { id: row.id };
        return reply.status(201).send({ ...keyView(row), key });
      },
    );

    app.get(
      '/v1/organizations/:organization_id/api-keys',
      {
        schema: {
          tags,
          summary: 'Active API keys (never the keys themselves)',
          params: orgParams,
          querystring: z.strictObject(pageQuery),
          response: { 200: pageOf(apiKeySchema) },
        },
        config: { access: { level: 'org', role: 'admin', scope: 'api_keys:read' } },
      },
      async (request) => {
        const page = await keys.list(authOf(request).organizationId, request.query);
        return { ...page, items: page.items.map(keyView) };
      },
    );

    app.get(
      '/v1/organizations/:organization_id/api-keys/:id',
      {
        schema: { tags, summary: 'One API key', params: keyParams, response: { 200: apiKeySchema } },
        config: { access: { level: 'org', role: 'admin', scope: 'api_keys:read' } },
      },
      async (request) => keyView(await keys.get(authOf(request).organizationId, request.params.id)),
    );

    app.delete(
      '/v1/organizations/:organization_id/api-keys/:id',
      {
        schema: { tags, summary: 'Revoke an API key', params: keyParams, response: { 204: z.null() } },
        config: {
          access: { level: 'org', role: 'admin', scope: 'api_keys:write' },
          audit: { action: 'api_key.revoke', targetType: 'api_key' },
        },
      },
      async (request, reply) => {
        await keys.revoke(authOf(request).organizationId, request.params.id);
        return reply.status(204).send(null);
      },
    );
  };
}
