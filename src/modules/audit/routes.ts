import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import type { AuditService } from './service.ts';

export const auditEntrySchema = z.object({
  id: z.uuid(),
  organization_id: z.uuid().nullable(),
  actor_type: z.enum(['user', 'api_key', 'anonymous', 'system']),
  actor_id: z.uuid().nullable(),
  action: z.string(),
  target_type: z.string().nullable(),
  target_id: z.string().nullable(),
  status: z.number().int(),
  ip: z.string().nullable(),
  request_id: z.string().nullable(),
  details: z
    .record(z.string(), z.unknown())
    .nullable()
    .describe('What the action alone does not say, e.g. an export’s rows, preset and whether it completed'),
  created_at: z.string(),
});

export const securityEventSchema = z.object({
  id: z.uuid(),
  kind: z.string(),
  organization_id: z.uuid().nullable(),
  user_id: z.uuid().nullable(),
  api_key_id: z.uuid().nullable(),
  ip: z.string().nullable(),
  request_id: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
  created_at: z.string(),
});

const auditFilters = {
  ...pageQuery,
  actor_id: uuidParam.optional(),
  action: z.string().max(100).optional(),
  target_type: z.string().max(100).optional(),
  target_id: z.string().max(200).optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
};

type AuditQuery = z.infer<z.ZodObject<typeof auditFilters>>;

function filterOf(q: AuditQuery) {
  return {
    actorId: q.actor_id,
    action: q.action,
    targetType: q.target_type,
    targetId: q.target_id,
    since: q.since ? new Date(q.since) : undefined,
    until: q.until ? new Date(q.until) : undefined,
  };
}

export function auditRoutes(audit: AuditService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['audit'];
    const orgParams = z.strictObject({ organization_id: uuidParam });

    app.get(
      '/v1/organizations/:organization_id/audit-log',
      {
        schema: {
          tags,
          summary: "The organisation's audit trail, newest first",
          params: orgParams,
          querystring: z.strictObject(auditFilters),
          response: { 200: pageOf(auditEntrySchema) },
        },
        config: { access: { level: 'org', role: 'admin', scope: 'audit:read' } },
      },
      async (request) =>
        audit.list(
          { ...filterOf(request.query), organizationId: authOf(request).organizationId },
          request.query,
        ),
    );

    app.get(
      '/v1/organizations/:organization_id/security-events',
      {
        schema: {
          tags,
          summary: 'Security events in the organisation (API key misuse)',
          params: orgParams,
          querystring: z.strictObject({ ...pageQuery, kind: z.string().max(64).optional() }),
          response: { 200: pageOf(securityEventSchema) },
        },
        config: { access: { level: 'org', role: 'admin', scope: 'audit:read' } },
      },
      async (request) =>
        audit.listSecurityEvents(
          { organizationId: authOf(request).organizationId, kind: request.query.kind },
          request.query,
        ),
    );

    app.get(
      '/v1/admin/audit-log',
      {
        schema: {
          tags,
          summary: 'The whole audit trail (platform administrators)',
          querystring: z.strictObject({ ...auditFilters, organization_id: uuidParam.optional() }),
          response: { 200: pageOf(auditEntrySchema) },
        },
        config: { access: { level: 'superadmin' } },
      },
      async (request) =>
        audit.list(
          { ...filterOf(request.query), organizationId: request.query.organization_id },
          request.query,
        ),
    );
  };
}
