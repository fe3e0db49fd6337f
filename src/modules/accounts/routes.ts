import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import type { AccountsService } from './service.ts';
import { ACCOUNT_STATES, type MailAccountRow } from './tables.ts';

const host = z
  .string()
  .trim()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9.-]+$|^\[?[0-9A-Fa-f:.]+\]?$/, 'a host name or an IP address');
const server = z.strictObject({
  host,
  port: z.number().int().min(1).max(65_535),
  security: z
    .enum(['tls', 'starttls', 'none'])
    .describe('tls: implicit TLS (993, 465); starttls: 143, 587; none: never outside a test'),
  verify_tls: z
    .boolean()
    .nullish()
    .describe('Default true; false accepts any certificate (a server you run yourself)'),
});
const serverView = z.object({
  host: z.string(),
  port: z.number().int(),
  security: z.enum(['tls', 'starttls', 'none']),
  verify_tls: z.boolean(),
});
const password = z
  .string()
  .min(1)
  .max(1024)
  .describe('Sealed at rest; never shown again. Often an app password');

export const accountSchema = z.object({
  id: z.uuid(),
  provider: z.enum(['imap', 'google', 'microsoft']),
  address: z.string(),
  name: z.string(),
  username: z.string(),
  imap: serverView,
  smtp: serverView.nullable(),
  state: z
    .enum(ACCOUNT_STATES as [string, ...string[]])
    .describe('connecting, syncing, ready; paused by you; auth_failed (log in again) or error (last_error)'),
  last_error: z.string().nullable(),
  last_error_at: z.string().nullable(),
  sync_days: z.number().int().describe('How many days back the first sync of a folder reaches'),
  last_synced_at: z.string().nullable().describe('When every folder was last synced'),
  capabilities: z.array(z.string()).describe('The IMAP server’s capabilities, as last seen'),
  worker: z
    .string()
    .nullable()
    .describe('The worker holding the account’s connection now (host:pid:id); null when none does'),
  created_at: z.string(),
  updated_at: z.string(),
});

const diagnosisSchema = z.object({
  ok: z.boolean(),
  protocol: z.enum(['imap', 'smtp']).optional(),
  stage: z.enum(['dns', 'tcp', 'tls', 'login']).optional().describe('The step that failed'),
  message: z.string().optional(),
  hint: z.string().optional().describe('What to do about it'),
});

export const accountView = (a: MailAccountRow) => ({
  id: a.id,
  provider: a.provider,
  address: a.address,
  name: a.name,
  username: a.username,
  imap: a.imap,
  smtp: a.smtp,
  state: a.state,
  last_error: a.lastError,
  last_error_at: a.lastErrorAt?.toISOString() ?? null,
  sync_days: a.syncDays,
  last_synced_at: a.lastSyncedAt?.toISOString() ?? null,
  capabilities: a.capabilities,
  worker: a.leaseOwner && a.leaseUntil && a.leaseUntil.getTime() > Date.now() ? a.leaseOwner : null,
  created_at: a.createdAt.toISOString(),
  updated_at: a.updatedAt.toISOString(),
});

/** What every accounts route shares: its tag, who may read and write, the :id parameter, the audit. */
export const accountRouting = {
  tags: ['accounts'],
  read: { level: 'org', role: 'member', scope: 'accounts:read' } as const,
  write: { level: 'org', role: 'admin', scope: 'accounts:write' } as const,
  idParams: z.strictObject({ id: uuidParam }),
  audited: (action: string) => ({ action, targetType: 'account', targetParam: 'id' }),
};

export function accountRoutes(accounts: AccountsService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const { tags, read, write, idParams, audited } = accountRouting;
    const connection = {
      address: z.string().max(320),
      username: z.string().trim().max(320).nullish().describe('Default: the address'),
      password,
      imap: server,
      smtp: server.nullish().describe('Absent: the account does not send'),
    };
    const syncDays = z
      .number()
      .int()
      .min(1)
      .max(36_500)
      .nullish()
      .describe(
        'How many days back the first sync of a folder reaches (default 30); later mail is always synced',
      );

    app.post(
      '/v1/accounts/test',
      {
        schema: {
          tags,
          summary: 'Test an account’s servers and login without saving it',
          description:
            'Resolves the names, connects, checks the certificates and logs in to IMAP (and SMTP when given). A failure names the step (dns, tcp, tls, login) and what to do.',
          body: z.strictObject(connection),
          response: { 200: diagnosisSchema },
        },
        config: { access: write, audit: { action: 'account.test', targetType: 'account' } },
      },
      async (request) => accounts.test(request.body),
    );

    app.post(
      '/v1/accounts',
      {
        schema: {
          tags,
          summary: 'Connect an external IMAP/SMTP account',
          description:
            'Saved only when its servers answer and its login is accepted; otherwise 422 `connection_failed` with a `diagnosis` (stage, message, hint).',
          body: z.strictObject({
            ...connection,
            name: z.string().trim().max(200).nullish(),
            sync_days: syncDays,
          }),
          response: { 201: accountSchema },
        },
        config: { access: write, audit: { action: 'account.create', targetType: 'account' } },
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
      '/v1/accounts',
      {
        schema: {
          tags,
          summary: 'External accounts, by address',
          querystring: z.strictObject(pageQuery),
          response: { 200: pageOf(accountSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const found = await accounts.list(authOf(request).organizationId, request.query);
        return { ...found, items: found.items.map(accountView) };
      },
    );

    app.get(
      '/v1/accounts/:id',
      {
        schema: { tags, summary: 'One external account', params: idParams, response: { 200: accountSchema } },
        config: { access: read },
      },
      async (request) => accountView(await accounts.get(authOf(request).organizationId, request.params.id)),
    );

    app.patch(
      '/v1/accounts/:id',
      {
        schema: {
          tags,
          summary: 'Change an account’s name, login or servers',
          description:
            'A new login or server is tested first (422 `connection_failed` with a diagnosis when it fails).',
          params: idParams,
          body: z.strictObject({
            name: z.string().trim().max(200).nullish(),
            username: z.string().trim().min(1).max(320).nullish(),
            password: password.nullish(),
            imap: server.nullish(),
            smtp: server.nullish().describe('null stops sending through the account'),
            sync_days: syncDays,
          }),
          response: { 200: accountSchema },
        },
        config: { access: write, audit: audited('account.update') },
      },
      async (request) =>
        accountView(await accounts.update(authOf(request).organizationId, request.params.id, request.body)),
    );

    for (const action of ['pause', 'resume'] as const) {
      app.post(
        `/v1/accounts/:id/${action}`,
        {
          schema: {
            tags,
            summary: action === 'pause' ? 'Pause an account' : 'Resume a paused account',
            params: idParams,
            response: { 200: accountSchema },
          },
          config: { access: write, audit: audited(`account.${action}`) },
        },
        async (request) => {
          const { organizationId } = authOf(request);
          const row =
            action === 'pause'
              ? await accounts.pause(organizationId, request.params.id)
              : await accounts.resume(organizationId, request.params.id);
          return accountView(row);
        },
      );
    }

    app.delete(
      '/v1/accounts/:id',
      {
        schema: {
          tags,
          summary: 'Disconnect and delete an account',
          params: idParams,
          response: { 204: z.null() },
        },
        config: { access: write, audit: audited('account.delete') },
      },
      async (request, reply) => {
        await accounts.delete(authOf(request).organizationId, request.params.id);
        return reply.status(204).send(null);
      },
    );
  };
}
