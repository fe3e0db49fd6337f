import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import { type AliasesService, isExpired, MAX_ALIAS_TARGETS } from './service.ts';
import type { AliasRow } from './tables.ts';

const aliasSchema = z.object({
  id: z.uuid(),
  address: z.string().describe('local-part@domain, lower case'),
  domain_id: z.uuid(),
  targets: z.array(z.string()),
  description: z.string(),
  is_enabled: z.boolean(),
  expires_at: z.string().nullable(),
  expired: z.boolean().describe('expires_at has passed: the alias no longer receives mail'),
  created_at: z.string(),
  updated_at: z.string(),
});

function aliasView(a: AliasRow, now = new Date()) {
  return {
    id: a.id,
    address: a.address,
    domain_id: a.domainId,
    targets: a.targets,
    description: a.description,
    is_enabled: a.isEnabled,
    expires_at: a.expiresAt?.toISOString() ?? null,
    expired: isExpired(a, now),
    created_at: a.createdAt.toISOString(),
    updated_at: a.updatedAt.toISOString(),
  };
}

const targets = z
  .array(z.string().max(320))
  .max(MAX_ALIAS_TARGETS)
  .describe(
    `1 to ${MAX_ALIAS_TARGETS} distinct addresses (hosted or external), stored lower case; not the alias itself`,
  );
const expiresAt = z.iso
  .datetime({ offset: true })
  .describe('ISO 8601, in the future; the alias stops receiving mail then');

export function aliasRoutes(aliases: AliasesService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['aliases'];
    const read = { level: 'org', role: 'member', scope: 'aliases:read' } as const;
    const write = { level: 'org', role: 'admin', scope: 'aliases:write' } as const;
    const idParams = z.strictObject({ id: uuidParam });
    const audited = (action: string) => ({ action, targetType: 'alias', targetParam: 'id' });

    app.post(
      '/v1/aliases',
      {
        schema: {
          tags,
          summary: 'Create an alias: mail to its address goes to its targets',
          description:
            'The address must be of one of the organisation’s domains and not already a mailbox or an alias.',
          body: z.strictObject({
            address: z.string().max(320).describe('e.g. sales@example.com; stored lower case'),
            targets,
            description: z.string().max(500).nullish(),
            is_enabled: z.boolean().nullish().describe('Default true'),
            expires_at: expiresAt.nullish(),
          }),
          response: { 201: aliasSchema },
        },
        config: { access: write, audit: { action: 'alias.create', targetType: 'alias' } },
      },
      async (request, reply) => {
        const alias = await aliases.create(authOf(request).organizationId, request.body);
        request.auditTarget = { id: alias.id };
        return reply.status(201).send(aliasView(alias));
      },
    );

    app.get(
      '/v1/aliases',
      {
        schema: {
          tags,
          summary: 'Aliases, by address',
          querystring: z.strictObject({
            ...pageQuery,
            domain_id: z.uuid().optional(),
            q: z.string().max(320).optional().describe('Addresses containing this text'),
            enabled: z.enum(['true', 'false']).optional().describe('Only enabled (true) or disabled (false)'),
          }),
          response: { 200: pageOf(aliasSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const { page, page_size, domain_id, q, enabled } = request.query;
        const found = await aliases.list(
          authOf(request).organizationId,
          { domainId: domain_id, q, enabled: enabled === undefined ? undefined : enabled === 'true' },
          { page, page_size },
        );
        const now = new Date();
        return { ...found, items: found.items.map((a) => aliasView(a, now)) };
      },
    );

    app.get(
      '/v1/aliases/:id',
      {
        schema: { tags, summary: 'One alias', params: idParams, response: { 200: aliasSchema } },
        config: { access: read },
      },
      async (request) => aliasView(await aliases.get(authOf(request).organizationId, request.params.id)),
    );

    app.patch(
      '/v1/aliases/:id',
      {
        schema: {
          tags,
          summary: 'Change targets, description, state or expiry',
          params: idParams,
          body: z.strictObject({
            targets: targets.nullish(),
            description: z.string().max(500).nullish(),
            is_enabled: z.boolean().nullish(),
            expires_at: expiresAt.nullable().optional().describe('null: never expires'),
          }),
          response: { 200: aliasSchema },
        },
        config: { access: write, audit: audited('alias.update') },
      },
      async (request) =>
        aliasView(await aliases.update(authOf(request).organizationId, request.params.id, request.body)),
    );

    app.delete(
      '/v1/aliases/:id',
      {
        schema: { tags, summary: 'Delete an alias', params: idParams, response: { 204: z.null() } },
        config: { access: write, audit: audited('alias.delete') },
      },
      async (request, reply) => {
        await aliases.delete(authOf(request).organizationId, request.params.id);
        return reply.status(204).send(null);
      },
    );
  };
}
