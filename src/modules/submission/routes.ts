import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import type { SubmissionService } from './service.ts';
import type { SmtpCredentialRow } from './tables.ts';

const credentialSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  username: z.string().describe('The SMTP login (AUTH PLAIN or LOGIN), generated: `smtp_` and 24 hex digits'),
  domain_id: z
    .uuid()
    .nullable()
    .describe('The domain it may send from; null: any domain of the organisation'),
  is_enabled: z.boolean(),
  last_used_at: z.string().nullable().describe('Last successful login (updated at most once a minute)'),
  last_used_ip: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});

const issuedSchema = credentialSchema.extend({
  password: z.string().describe('Shown in this response only; stored as an argon2id hash'),
});

function credentialView(c: SmtpCredentialRow) {
  return {
    id: c.id,
    name: c.name,
    username: c.username,
    domain_id: c.domainId,
    is_enabled: c.isEnabled,
    last_used_at: c.lastUsedAt?.toISOString() ?? null,
    last_used_ip: c.lastUsedIp,
    created_at: c.createdAt.toISOString(),
    updated_at: c.updatedAt.toISOString(),
  };
}

export function smtpCredentialRoutes(submission: SubmissionService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['smtp-credentials'];
    const read = { level: 'org', role: 'member', scope: 'smtp_credentials:read' } as const;
    const write = { level: 'org', role: 'admin', scope: 'smtp_credentials:write' } as const;
    const idParams = z.strictObject({ id: uuidParam });
    const audited = (action: string) => ({ action, targetType: 'smtp_credential', targetParam: 'id' });
    const name = z.string().trim().min(1).max(200);

    app.post(
      '/v1/smtp-credentials',
      {
        schema: {
          tags,
          summary: 'Create an SMTP submission credential; the password is in this response only',
          description:
            'For applications and devices that send through the submission port. The username and a strong password are generated. Scoped to one domain of the organisation (any address on it), or to all of them.',
          body: z.strictObject({
            name: name.describe('What uses it, e.g. "CRM"'),
            domain_id: z.uuid().nullish().describe('Limit it to this domain of the organisation'),
          }),
          response: { 201: issuedSchema },
        },
        config: { access: write, audit: { action: 'smtp_credential.create', targetType: 'smtp_credential' } },
      },
      async (request, reply) => {
        const { row, password } = await submission.create(authOf(request).organizationId, request.body);
        request.auditTarget = { id: row.id };
        return reply.status(201).send({ ...credentialView(row), password });
      },
    );

    app.get(
      '/v1/smtp-credentials',
      {
        schema: {
          tags,
          summary: 'SMTP credentials, oldest first (never their passwords)',
          querystring: z.strictObject(pageQuery),
          response: { 200: pageOf(credentialSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const page = await submission.list(authOf(request).organizationId, request.query);
        return { ...page, items: page.items.map(credentialView) };
      },
    );

    app.get(
      '/v1/smtp-credentials/:id',
      {
        schema: {
          tags,
          summary: 'One SMTP credential',
          params: idParams,
          response: { 200: credentialSchema },
        },
        config: { access: read },
      },
      async (request) =>
        credentialView(await submission.get(authOf(request).organizationId, request.params.id)),
    );

    app.patch(
      '/v1/smtp-credentials/:id',
      {
        schema: {
          tags,
          summary: 'Rename, disable or enable an SMTP credential',
          description:
            'A disabled credential cannot log in; sessions already logged in keep going until they end.',
          params: idParams,
          body: z.strictObject({ name: name.nullish(), is_enabled: z.boolean().nullish() }),
          response: { 200: credentialSchema },
        },
        config: { access: write, audit: audited('smtp_credential.update') },
      },
      async (request) =>
        credentialView(
          await submission.update(authOf(request).organizationId, request.params.id, request.body),
        ),
    );

    app.post(
      '/v1/smtp-credentials/:id/reset-password',
      {
        schema: {
          tags,
          summary: 'Replace the password; the new one is in this response only',
          description: 'The old password stops working at once.',
          params: idParams,
          response: { 200: issuedSchema },
        },
        config: { access: write, audit: audited('smtp_credential.reset_password') },
      },
      async (request) => {
        const { row, password } = await submission.resetPassword(
          authOf(request).organizationId,
          request.params.id,
        );
        return { ...credentialView(row), password };
      },
    );

    app.delete(
      '/v1/smtp-credentials/:id',
      {
        schema: { tags, summary: 'Delete an SMTP credential', params: idParams, response: { 204: z.null() } },
        config: { access: write, audit: audited('smtp_credential.delete') },
      },
      async (request, reply) => {
        await submission.delete(authOf(request).organizationId, request.params.id);
        return reply.status(204).send(null);
      },
    );
  };
}
