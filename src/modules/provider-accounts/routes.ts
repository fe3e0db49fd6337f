import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import { PROVIDER_NAMES } from '../../providers/index.ts';
import type { ProviderAccountsService } from './service.ts';
import type { ProviderAccountRow } from './tables.ts';

const accountSchema = z.object({
  id: z.uuid(),
  kind: z.enum(['dns', 'registrar', 'sms']),
  provider: z.enum(PROVIDER_NAMES),
  name: z.string(),
  credential_hint: z.string(),
  last_used_at: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});

function accountView(a: ProviderAccountRow) {
  return {
    id: a.id,
    kind: a.kind,
    provider: a.provider,
    name: a.name,
    credential_hint: a.hint,
    last_used_at: a.lastUsedAt?.toISOString() ?? null,
    created_at: a.createdAt.toISOString(),
    updated_at: a.updatedAt.toISOString(),
  };
}

const credentials = z
  .record(z.string(), z.string().max(500))
  .describe(
    'cloudflare: `{api_token}`; namecheap: `{api_user, api_key, username?, client_ip}`; ' +
      'android-sms-gateway: `{base_url?, username, password, webhook_signing_key?}`; ' +
      'twilio: `{account_sid, auth_token, from?, messaging_service_sid?}` (from or messaging_service_sid); ' +
      "smpp: `{host, port, system_id, password, system_type?, source_addr, tls?}` ('true' or 'false'). " +
      'Checked with the provider, stored encrypted, never shown again',
  );

export function providerAccountRoutes(accounts: ProviderAccountsService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['provider-accounts'];
    const read = { level: 'org', role: 'member', scope: 'providers:read' } as const;
    const write = { level: 'org', role: 'admin', scope: 'providers:write' } as const;
    const idParams = z.strictObject({ id: uuidParam });

    app.post(
      '/v1/provider-accounts',
      {
        schema: {
          tags,
          summary:
            'Connect a DNS provider (Cloudflare), registrar (Namecheap) or SMS gateway (SMS Gateway for Android, Twilio, SMPP) account',
          body: z.strictObject({
            provider: z.enum(PROVIDER_NAMES),
            name: z.string().trim().min(1).max(200),
            credentials,
          }),
          response: { 201: accountSchema },
        },
        config: {
          access: write,
          audit: { action: 'provider_account.create', targetType: 'provider_account' },
        },
      },
      async (request, reply) => {
        const auth = authOf(request);
        const userId = auth.principal.kind === 'user' ? auth.principal.userId : null;
        const row = await accounts.create(auth.organizationId, userId, request.body);
        request.auditTarget = { id: row.id };
        return reply.status(201).send(accountView(row));
      },
    );

    app.get(
      '/v1/provider-accounts',
      {
        schema: {
          tags,
          summary: 'Connected provider accounts (never their credentials)',
          querystring: z.strictObject(pageQuery),
          response: { 200: pageOf(accountSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const page = await accounts.list(authOf(request).organizationId, request.query);
        return { ...page, items: page.items.map(accountView) };
      },
    );

    app.get(
      '/v1/provider-accounts/:id',
      {
        schema: { tags, summary: 'One provider account', params: idParams, response: { 200: accountSchema } },
        config: { access: read },
      },
      async (request) => accountView(await accounts.get(authOf(request).organizationId, request.params.id)),
    );

    app.patch(
      '/v1/provider-accounts/:id',
      {
        schema: {
          tags,
          summary: 'Rename, or replace the credentials (checked with the provider first)',
          params: idParams,
          body: z.strictObject({
            name: z.string().trim().min(1).max(200).optional(),
            credentials: credentials.optional(),
          }),
          response: { 200: accountSchema },
        },
        config: {
          access: write,
          audit: { action: 'provider_account.update', targetType: 'provider_account', targetParam: 'id' },
        },
      },
      async (request) =>
        accountView(await accounts.update(authOf(request).organizationId, request.params.id, request.body)),
    );

    app.delete(
      '/v1/provider-accounts/:id',
      {
        schema: {
          tags,
          summary: 'Disconnect a provider account',
          params: idParams,
          response: { 204: z.null() },
        },
        config: {
          access: write,
          audit: { action: 'provider_account.delete', targetType: 'provider_account', targetParam: 'id' },
        },
      },
      async (request, reply) => {
        await accounts.delete(authOf(request).organizationId, request.params.id);
        return reply.status(204).send(null);
      },
    );
  };
}
