import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import type { AccountMail } from './mail.ts';
import { accountRouting } from './routes.ts';

const copySchema = z.object({
  folder: z.string().describe('The folder on the account’s server'),
  uid: z.number().int(),
  flags: z.array(z.string()).describe('IMAP flags: \\Seen, \\Flagged, \\Answered, keywords'),
  labels: z.array(z.string()).describe('Gmail labels (X-GM-LABELS); empty elsewhere'),
});
const syncedSchema = z.object({
  id: z.uuid().describe('The message in Mailroom: /v1/messages/{id} shows it whole'),
  thread_id: z.uuid().nullable(),
  message_id_header: z.string().nullable(),
  in_reply_to: z.string().nullable(),
  references: z.array(z.string()),
  from_address: z.string().nullable(),
  from_name: z.string().nullable(),
  to_addresses: z.array(z.string()),
  cc_addresses: z.array(z.string()),
  subject: z.string().nullable(),
  sent_at: z.string().nullable(),
  received_at: z.string().describe('The server’s INTERNALDATE'),
  size: z.number().int(),
  has_attachments: z.boolean(),
  copies: z
    .array(copySchema)
    .describe('Where it is on the server (one message may be in several folders or labels)'),
});
const folderSchema = z.object({
  path: z.string(),
  special_use: z.string().nullable(),
  uid_validity: z.number().int().nullable(),
  uid_next: z.number().int(),
  messages: z
    .number()
    .int()
    .describe('Messages kept here (those within the first sync’s window, and every later one)'),
  unseen: z.number().int(),
  last_synced_at: z.string().nullable(),
});
const addresses = z.array(z.string().trim().min(3).max(320)).max(100).default([]);

export function accountMailRoutes(mail: AccountMail) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const { tags, read, write, idParams, audited } = accountRouting;
    const messageParams = z.strictObject({ id: uuidParam, message_id: uuidParam });

    app.get(
      '/v1/accounts/:id/folders',
      {
        schema: {
          tags,
          summary: 'An account’s folders, as last synced',
          params: idParams,
          response: { 200: z.object({ items: z.array(folderSchema) }) },
        },
        config: { access: read },
      },
      async (request) => ({ items: await mail.folders(authOf(request).organizationId, request.params.id) }),
    );

    app.post(
      '/v1/accounts/:id/sync',
      {
        schema: {
          tags,
          summary: 'Sync every folder of the account now',
          description:
            'The worker holding the account’s connection syncs at once instead of at its next poll.',
          params: idParams,
          response: { 202: z.object({ accepted: z.boolean() }) },
        },
        config: { access: write, audit: audited('account.sync') },
      },
      async (request, reply) => {
        await mail.requestSync(authOf(request).organizationId, request.params.id);
        return reply.status(202).send({ accepted: true });
      },
    );

    app.get(
      '/v1/accounts/:id/messages',
      {
        schema: {
          tags,
          summary: 'An account’s synced messages, newest first',
          params: idParams,
          querystring: z.strictObject({ ...pageQuery, folder: z.string().max(1000).optional() }),
          response: { 200: pageOf(syncedSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const { folder, ...page } = request.query;
        return mail.list(authOf(request).organizationId, request.params.id, folder, page);
      },
    );

    app.get(
      '/v1/accounts/:id/messages/:message_id',
      {
        schema: {
          tags,
          summary: 'One synced message',
          params: messageParams,
          response: { 200: syncedSchema },
        },
        config: { access: read },
      },
      async (request) =>
        mail.get(authOf(request).organizationId, request.params.id, request.params.message_id),
    );

    app.patch(
      '/v1/accounts/:id/messages/:message_id',
      {
        schema: {
          tags,
          summary: 'Mark a synced message read or unread, flag it, or move it',
          description:
            'Applied on the account’s server first (502 `remote_failed` when it refuses), then here; an `account.message_updated` event follows.',
          params: messageParams,
          body: z.strictObject({
            seen: z.boolean().optional(),
            flagged: z.boolean().optional(),
            answered: z.boolean().optional(),
            folder: z.string().min(1).max(1000).optional().describe('Move to this folder of the account'),
          }),
          response: { 200: syncedSchema },
        },
        config: { access: write, audit: audited('account.message_update') },
      },
      async (request) =>
        mail.update(
          authOf(request).organizationId,
          request.params.id,
          request.params.message_id,
          request.body,
        ),
    );

    app.delete(
      '/v1/accounts/:id/messages/:message_id',
      {
        schema: {
          tags,
          summary: 'Delete a synced message on the account’s server',
          description:
            'Moved to the account’s Trash (where it is synced as a message of its own), or expunged when it is in Trash already, when the account has none, or with `permanent=true`.',
          params: messageParams,
          querystring: z.strictObject({ permanent: z.stringbool().default(false) }),
          response: { 204: z.null() },
        },
        config: { access: write, audit: audited('account.message_delete') },
      },
      async (request, reply) => {
        const { id, message_id } = request.params;
        await mail.delete(authOf(request).organizationId, id, message_id, request.query.permanent);
        return reply.status(204).send(null);
      },
    );

    app.post(
      '/v1/accounts/:id/send',
      {
        schema: {
          tags,
          summary: 'Send through the account’s own SMTP server',
          description:
            'From the account’s address, over its SMTP server (XOAUTH2 for Google and Microsoft accounts). `reply_to` names a synced message to answer: In-Reply-To, References and the subject follow it. A copy is appended to the account’s Sent folder unless the provider keeps one itself (Gmail, Microsoft 365).',
          params: idParams,
          body: z.strictObject({
            to: addresses,
            cc: addresses,
            bcc: addresses,
            subject: z.string().max(998).nullish(),
            text: z.string().max(10_000_000).nullish(),
            html: z.string().max(10_000_000).nullish(),
            reply_to: uuidParam.nullish().describe('A synced message of this account to answer'),
          }),
          response: {
            200: z.object({
              message_id_header: z.string(),
              accepted: z.array(z.string()),
              rejected: z.array(z.string()),
              sent_folder: z.string().nullable().describe('Where the copy was appended; null when none was'),
            }),
          },
        },
        config: { access: write, audit: audited('account.send') },
      },
      async (request) => {
        const { reply_to, ...input } = request.body;
        return mail.send(authOf(request).organizationId, request.params.id, { ...input, replyTo: reply_to });
      },
    );
  };
}
