import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import {
  DEFAULT_QUOTA_BYTES,
  MAX_APP_PASSWORDS,
  MAX_BULK_IDS,
  MAX_PASSWORD_LENGTH,
  MIN_PASSWORD_LENGTH,
  MIN_QUOTA_BYTES,
  type MailboxDetail,
  type MailboxesService,
  passwordPolicySchema,
} from './service.ts';
import type { AppPasswordRow, MailboxRow } from './tables.ts';

const status = z
  .enum(['active', 'suspended'])
  .describe('suspended: cannot log in or send; its mail is still received');

const mailboxSchema = z.object({
  id: z.uuid(),
  address: z.string().describe('local-part@domain, lower case'),
  domain_id: z.uuid(),
  first_name: z.string(),
  last_name: z.string(),
  display_name: z.string(),
  quota_bytes: z.number().int(),
  used_bytes: z.number().int(),
  is_active: z.boolean().describe('false: the address refuses mail and cannot log in'),
  status,
  daily_send_limit: z
    .number()
    .int()
    .nullable()
    .describe('Recipients a day; null: the installation default (MAILROOM_SEND_LIMIT_MAILBOX_PER_DAY)'),
  save_sent: z.boolean().describe('Whether mail sent through submission is copied into the Sent folder'),
  has_password: z.boolean().describe('Whether the mailbox can log in (IMAP, POP3, submission)'),
  password_exportable: z.boolean().describe('Whether credential exports carry its password'),
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
    first_name: m.firstName,
    last_name: m.lastName,
    display_name: m.displayName,
    quota_bytes: m.quotaBytes,
    used_bytes: m.usedBytes,
    is_active: m.isActive,
    status: m.status,
    daily_send_limit: m.dailySendLimit,
    save_sent: m.saveSent,
    has_password: m.passwordHash !== null,
    password_exportable: m.exportPassword !== null,
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
const dailySendLimit = z.number().int().min(1).max(10_000_000);
const name = z.string().max(100);
const saveSent = z
  .boolean()
  .describe(
    'Copy mail sent through submission into the Sent folder (default true); off for clients that store their own copy',
  );

const appPasswordSchema = z.object({
  id: z.uuid(),
  label: z.string(),
  created_at: z.string(),
  last_used_at: z.string().nullable(),
  last_used_ip: z.string().nullable(),
});
const appPasswordView = (r: AppPasswordRow) => ({
  id: r.id,
  label: r.label,
  created_at: r.createdAt.toISOString(),
  last_used_at: r.lastUsedAt?.toISOString() ?? null,
  last_used_ip: r.lastUsedIp,
});

/** Which mailboxes a bulk request changes: these ids, or every mailbox of one domain. */
const selector = z.union([
  z.strictObject({ ids: z.array(z.uuid()).min(1).max(MAX_BULK_IDS) }),
  z.strictObject({ domain_id: z.uuid() }),
]);
const bulkResult = z.object({
  matched: z.number().int().describe('Mailboxes changed'),
  updated_ids: z.array(z.uuid()),
});

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
            address: z
              .string()
              .max(320)
              .describe(
                'e.g. sales@example.com; stored lower case. Reserved: postmaster, abuse, hostmaster, webmaster, admin, administrator, root, mailer-daemon, noreply, no-reply, bounce(s), and b+… / srs0=… / srs1=…',
              ),
            first_name: name.nullish(),
            last_name: name.nullish(),
            display_name: z.string().max(200).nullish().describe('Default: first and last name'),
            password: password.nullish().describe('Without one the mailbox cannot log in'),
            quota_bytes: quota
              .nullish()
              .describe(`Bytes; default ${DEFAULT_QUOTA_BYTES} (1 GiB), at least 1 MiB`),
            daily_send_limit: dailySendLimit
              .nullish()
              .describe('Recipients a day; default: the installation’s'),
            status: status.nullish(),
            export_password: z
              .boolean()
              .nullish()
              .describe('Keep the password (encrypted) so credential exports carry it; needs a password'),
            save_sent: saveSent.nullish(),
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
          summary: 'Change names, password, quota, activity, status or send limit',
          params: idParams,
          body: z.strictObject({
            first_name: name.nullish(),
            last_name: name.nullish(),
            display_name: z.string().max(200).nullish(),
            password: password
              .nullish()
              .describe('null removes the password: the mailbox can no longer log in'),
            quota_bytes: quota.nullish(),
            is_active: z.boolean().nullish(),
            status: status.nullish(),
            daily_send_limit: dailySendLimit.nullish().describe('null: back to the installation default'),
            save_sent: saveSent.nullish(),
          }),
          response: { 200: detailSchema },
        },
        config: { access: write, audit: audited('mailbox.update') },
      },
      async (request) =>
        detailView(await mailboxes.update(authOf(request).organizationId, request.params.id, request.body)),
    );

    app.post(
      '/v1/mailboxes/:id/reset-password',
      {
        schema: {
          tags,
          summary: 'Reset a mailbox’s password (administrators)',
          description:
            'Sets the given password, or generates one under `password_policy` and returns it in this answer only. With `revoke_app_passwords`, every app password of the mailbox stops working too. A mailbox whose password is exportable stays so with the new one.',
          params: idParams,
          body: z.strictObject({
            password: password.nullish().describe('Absent: one is generated'),
            password_policy: passwordPolicySchema.optional(),
            revoke_app_passwords: z.boolean().nullish(),
          }),
          response: {
            200: detailSchema.extend({
              password: z
                .string()
                .nullable()
                .describe('The generated password, shown once; null when one was given'),
            }),
          },
        },
        config: { access: write, audit: audited('mailbox.reset_password') },
      },
      async (request) => {
        const { detail, password } = await mailboxes.resetPassword(
          authOf(request).organizationId,
          request.params.id,
          request.body,
        );
        return { ...detailView(detail), password };
      },
    );

    app.post(
      '/v1/mailboxes/bulk-update',
      {
        schema: {
          tags,
          summary: 'Change status, send limit, quota or activity of many mailboxes',
          description: `By \`ids\` (up to ${MAX_BULK_IDS}) or every mailbox of \`domain_id\`, in one transaction; one \`mailbox.updated\` event each.`,
          body: z.strictObject({
            mailboxes: selector,
            changes: z.strictObject({
              status: status.optional(),
              daily_send_limit: dailySendLimit
                .nullable()
                .optional()
                .describe('null: the installation default'),
              quota_bytes: quota.optional(),
              is_active: z.boolean().optional(),
            }),
          }),
          response: { 200: bulkResult },
        },
        config: { access: write, audit: { action: 'mailbox.bulk_update', targetType: 'mailbox' } },
      },
      async (request) => {
        const done = await mailboxes.bulkUpdate(
          authOf(request).organizationId,
          request.body.mailboxes,
          request.body.changes,
        );
        return { matched: done.matched, updated_ids: done.updated };
      },
    );

    app.post(
      '/v1/mailboxes/bulk-suspend',
      {
        schema: {
          tags,
          summary: 'Suspend many mailboxes',
          description:
            'Suspended mailboxes cannot log in or send; their mail is still received. Resume them with bulk-update (`status: active`).',
          body: z.strictObject({ mailboxes: selector }),
          response: { 200: bulkResult },
        },
        config: { access: write, audit: { action: 'mailbox.bulk_suspend', targetType: 'mailbox' } },
      },
      async (request) => {
        const done = await mailboxes.bulkUpdate(authOf(request).organizationId, request.body.mailboxes, {
          status: 'suspended',
        });
        return { matched: done.matched, updated_ids: done.updated };
      },
    );

    const appPasswordParams = z.strictObject({ id: uuidParam, app_password_id: uuidParam });

    app.post(
      '/v1/mailboxes/:id/app-passwords',
      {
        schema: {
          tags,
          summary: 'Create an app password (shown once)',
          description: `A password for one mail client or tool: valid for SMTP submission and IMAP with the mailbox’s address as the username, never for the API. Up to ${MAX_APP_PASSWORDS} per mailbox.`,
          params: idParams,
          body: z.strictObject({
            label: z.string().trim().min(1).max(100).describe('What it is for, e.g. "Thunderbird"'),
          }),
          response: {
            201: appPasswordSchema.extend({ password: z.string().describe('Shown in this answer only') }),
          },
        },
        config: { access: write, audit: audited('mailbox.app_password_create') },
      },
      async (request, reply) => {
        const { row, password } = await mailboxes.createAppPassword(
          authOf(request).organizationId,
          request.params.id,
          request.body.label,
        );
        return reply.status(201).send({ ...appPasswordView(row), password });
      },
    );

    app.get(
      '/v1/mailboxes/:id/app-passwords',
      {
        schema: {
          tags,
          summary: 'A mailbox’s app passwords (never the passwords themselves)',
          params: idParams,
          response: { 200: z.object({ items: z.array(appPasswordSchema) }) },
        },
        config: { access: write },
      },
      async (request) => {
        const rows = await mailboxes.listAppPasswords(authOf(request).organizationId, request.params.id);
        return { items: rows.map(appPasswordView) };
      },
    );

    app.delete(
      '/v1/mailboxes/:id/app-passwords/:app_password_id',
      {
        schema: {
          tags,
          summary: 'Revoke an app password: it stops working at once',
          params: appPasswordParams,
          response: { 204: z.null() },
        },
        config: { access: write, audit: audited('mailbox.app_password_revoke') },
      },
      async (request, reply) => {
        await mailboxes.revokeAppPassword(
          authOf(request).organizationId,
          request.params.id,
          request.params.app_password_id,
        );
        return reply.status(204).send(null);
      },
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
