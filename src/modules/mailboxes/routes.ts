import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import {
  DEFAULT_QUOTA_BYTES,
  MAX_PASSWORD_LENGTH,
  MIN_PASSWORD_LENGTH,
  MIN_QUOTA_BYTES,
  type MailboxDetail,
  type MailboxesService,
} from './service.ts';
import type { MailboxRow } from './tables.ts';

const mailboxSchema = z.object({
  id: z.uuid(),
  address: z.string().describe('local-part@domain, lower case'),
  domain_id: z.uuid(),
  display_name: z.string(),
  quota_bytes: z.number().int(),
  used_bytes: z.number().int(),
  is_active: z.boolean(),
  has_password: z.boolean().describe('Whether the mailbox can log in (IMAP, submission)'),
  created_at: z.string(),
  updated_at: z.string(),
});

const folderSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  special_use: z.string().nullable().describe('RFC 6154: \\Inbox \\Sent \\Drafts \\Junk \\Trash \\Archive'),
  uid_validity: z.number().int(),
  uid_next: z.number().int(),
  messages: z.number().int().describe('Messages in the folder'),
});

const detailSchema = mailboxSchema.extend({ folders: z.array(folderSchema) });

function mailboxView(m: MailboxRow) {
  return {
    id: m.id,
    address: m.address,
    domain_id: m.domainId,
    display_name: m.displayName,
    quota_bytes: m.quotaBytes,
    used_bytes: m.usedBytes,
    is_active: m.isActive,
    has_password: m.passwordHash !== null,
    created_at: m.createdAt.toISOString(),
    updated_at: m.updatedAt.toISOString(),
  };
}

const detailView = ({ mailbox, folders }: MailboxDetail) => ({
  ...mailboxView(mailbox),
  folders: folders.map((f) => ({
    id: f.id,
    name: f.name,
    special_use: f.specialUse,
    uid_validity: f.uidValidity,
    uid_next: f.uidNext,
    messages: f.messages,
  })),
});

const password = z
  .string()
  .max(1024)
  .describe(`${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters; stored as an argon2id hash only`);
const quota = z
  .number()
  .int()
  .min(MIN_QUOTA_BYTES)
  .max(Number.MAX_SAFE_INTEGER)
  .describe(`Bytes; at least 1 MiB (${MIN_QUOTA_BYTES})`);

export function mailboxRoutes(mailboxes: MailboxesService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['mailboxes'];
    const read = { level: 'org', role: 'member', scope: 'mailboxes:read' } as const;
    const write = { level: 'org', role: 'admin', scope: 'mailboxes:write' } as const;
    const idParams = z.strictObject({ id: uuidParam });
    const audited = (action: string) => ({ action, targetType: 'mailbox', targetParam: 'id' });

    app.post(
      '/v1/mailboxes',
      {
        schema: {
          tags,
          summary: 'Create a hosted mailbox with its standard folders',
          description:
            'The address must be of one of the organisation’s domains and not already a mailbox or an alias. Folders created: INBOX, Sent, Drafts, Junk, Trash, Archive.',
          body: z.strictObject({
            address: z.string().max(320).describe('e.g. sales@example.com; stored lower case'),
            display_name: z.string().max(200).nullish(),
            password: password.nullish().describe('Without one the mailbox cannot log in'),
            quota_bytes: quota
              .nullish()
              .describe(`Bytes; default ${DEFAULT_QUOTA_BYTES} (1 GiB), at least 1 MiB`),
          }),
          response: { 201: detailSchema },
        },
        config: { access: write, audit: { action: 'mailbox.create', targetType: 'mailbox' } },
      },
      async (request, reply) => {
        const created = await mailboxes.create(authOf(request).organizationId, request.body);
        request.auditTarget = { id: created.mailbox.id };
        return reply.status(201).send(detailView(created));
      },
    );

    app.get(
      '/v1/mailboxes',
      {
        schema: {
          tags,
          summary: 'Mailboxes, by address',
          querystring: z.strictObject({
            ...pageQuery,
            domain_id: z.uuid().optional(),
            q: z.string().max(320).optional().describe('Addresses containing this text'),
          }),
          response: { 200: pageOf(mailboxSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const { page, page_size, domain_id, q } = request.query;
        const found = await mailboxes.list(
          authOf(request).organizationId,
          { domainId: domain_id, q },
          { page, page_size },
        );
        return { ...found, items: found.items.map(mailboxView) };
      },
    );

    app.get(
      '/v1/mailboxes/:id',
      {
        schema: {
          tags,
          summary: 'One mailbox with its folders',
          params: idParams,
          response: { 200: detailSchema },
        },
        config: { access: read },
      },
      async (request) =>
        detailView(await mailboxes.detail(authOf(request).organizationId, request.params.id)),
    );

    app.patch(
      '/v1/mailboxes/:id',
      {
        schema: {
          tags,
          summary: 'Change display name, password, quota or activity',
          params: idParams,
          body: z.strictObject({
            display_name: z.string().max(200).nullish(),
            password: password
              .nullish()
              .describe('null removes the password: the mailbox can no longer log in'),
            quota_bytes: quota.nullish(),
            is_active: z.boolean().nullish(),
          }),
          response: { 200: detailSchema },
        },
        config: { access: write, audit: audited('mailbox.update') },
      },
      async (request) =>
        detailView(await mailboxes.update(authOf(request).organizationId, request.params.id, request.body)),
    );

    app.delete(
      '/v1/mailboxes/:id',
      {
        schema: {
          tags,
          summary: 'Delete a mailbox, its folders and its stored messages',
          params: idParams,
          response: { 204: z.null() },
        },
        config: { access: write, audit: audited('mailbox.delete') },
      },
      async (request, reply) => {
        await mailboxes.delete(authOf(request).organizationId, request.params.id);
        return reply.status(204).send(null);
      },
    );
  };
}
