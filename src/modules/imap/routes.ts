// The folders API: a mailbox's folders (create, rename, subscribe, delete) and the messages in one,
// with their IMAP flags; flag changes, moves, copies and removals made here are announced to IMAP
// sessions like their own.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { badRequest } from '../../core/errors.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import type { MailboxesService } from '../mailboxes/service.ts';
import type { FolderRow } from '../mailboxes/tables.ts';
import type { FolderStats, ListedCopy, MailStore } from './service.ts';

const SYSTEM_FLAGS = ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft'] as const;
/** A keyword is an IMAP atom (RFC 3501 flag-keyword); system flags in their usual spelling. */
const flag = z
  .string()
  .max(64)
  .refine(
    (f) => (SYSTEM_FLAGS as readonly string[]).includes(f) || /^[A-Za-z0-9$_.-]+$/.test(f),
    'a system flag (\\Seen, \\Answered, \\Flagged, \\Deleted, \\Draft) or a keyword of letters, digits and $-_.',
  );
const flags = z.array(flag).max(50);
const uids = z.array(z.number().int().min(1).max(4_294_967_295)).min(1).max(5_000);

const folderSchema = z.object({
  id: z.uuid(),
  name: z.string().describe('Hierarchy with "/", e.g. Projects/2026'),
  special_use: z.string().nullable().describe('RFC 6154: \\Inbox \\Sent \\Drafts \\Junk \\Trash \\Archive'),
  subscribed: z.boolean(),
  uid_validity: z.number().int(),
  uid_next: z.number().int(),
  highest_modseq: z.number().int(),
  messages: z.number().int(),
  unseen: z.number().int(),
  bytes: z.number().int(),
});

const messageSchema = z.object({
  uid: z.number().int(),
  message_id: z.uuid().describe('The message in the messages API'),
  flags: z.array(z.string()),
  modseq: z.number().int(),
  size: z.number().int(),
  internal_date: z.string().describe('When it was filed (IMAP INTERNALDATE)'),
  subject: z.string().nullable(),
  from_address: z.string().nullable(),
  from_name: z.string().nullable(),
  sent_at: z.string().nullable(),
});

const folderView = (f: FolderRow, stats: FolderStats | undefined) => ({
  id: f.id,
  name: f.name,
  special_use: f.specialUse,
  subscribed: f.subscribed,
  uid_validity: f.uidValidity,
  uid_next: f.uidNext,
  highest_modseq: f.highestModseq,
  messages: stats?.messages ?? 0,
  unseen: stats?.unseen ?? 0,
  bytes: stats?.bytes ?? 0,
});

const messageView = (c: ListedCopy) => ({
  uid: c.uid,
  message_id: c.messageId,
  flags: c.flags,
  modseq: c.modseq,
  size: c.size,
  internal_date: c.internalDate.toISOString(),
  subject: c.subject,
  from_address: c.fromAddress,
  from_name: c.fromName,
  sent_at: c.sentAt?.toISOString() ?? null,
});

export function folderRoutes(store: MailStore, mailboxes: MailboxesService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['folders'];
    const read = { level: 'org', role: 'member', scope: 'mailboxes:read' } as const;
    const write = { level: 'org', role: 'admin', scope: 'mailboxes:write' } as const;
    const mailboxParams = z.strictObject({ id: uuidParam });
    const folderParams = z.strictObject({ id: uuidParam, folder_id: uuidParam });
    const audited = (action: string) => ({ action, targetType: 'mailbox', targetParam: 'id' });

    /** The folder of a mailbox of the caller's organisation (404 otherwise). */
    const folderOf = async (organizationId: string, mailboxId: string, folderId: string) => {
      await mailboxes.get(organizationId, mailboxId);
      return store.folderById(organizationId, mailboxId, folderId);
    };
    const viewOf = async (organizationId: string, folder: FolderRow) =>
      folderView(folder, (await store.stats(organizationId, [folder.id])).get(folder.id));

    app.get(
      '/v1/mailboxes/:id/folders',
      {
        schema: {
          tags,
          summary: 'A mailbox’s folders with their counts',
          params: mailboxParams,
          response: { 200: z.object({ items: z.array(folderSchema) }) },
        },
        config: { access: read },
      },
      async (request) => {
        const { organizationId } = authOf(request);
        await mailboxes.get(organizationId, request.params.id);
        const folders = await store.folders(organizationId, request.params.id);
        const stats = await store.stats(
          organizationId,
          folders.map((f) => f.id),
        );
        return { items: folders.map((f) => folderView(f, stats.get(f.id))) };
      },
    );

    app.post(
      '/v1/mailboxes/:id/folders',
      {
        schema: {
          tags,
          summary: 'Create a folder (and the folders above it)',
          params: mailboxParams,
          body: z.strictObject({ name: z.string().min(1).max(255) }),
          response: { 201: folderSchema },
        },
        config: { access: write, audit: audited('folder.create') },
      },
      async (request, reply) => {
        const { organizationId } = authOf(request);
        await mailboxes.get(organizationId, request.params.id);
        const folder = await store.createFolder(organizationId, request.params.id, request.body.name);
        return reply.status(201).send(await viewOf(organizationId, folder));
      },
    );

    app.get(
      '/v1/mailboxes/:id/folders/:folder_id',
      {
        schema: { tags, summary: 'One folder', params: folderParams, response: { 200: folderSchema } },
        config: { access: read },
      },
      async (request) => {
        const { organizationId } = authOf(request);
        const folder = await folderOf(organizationId, request.params.id, request.params.folder_id);
        return viewOf(organizationId, folder);
      },
    );

    app.patch(
      '/v1/mailboxes/:id/folders/:folder_id',
      {
        schema: {
          tags,
          summary: 'Rename a folder (the folders under it follow) or change its subscription',
          description:
            'Renaming INBOX moves its messages to a new folder of that name and leaves INBOX empty (RFC 3501).',
          params: folderParams,
          body: z.strictObject({
            name: z.string().min(1).max(255).nullish(),
            subscribed: z.boolean().nullish(),
          }),
          response: { 200: folderSchema },
        },
        config: { access: write, audit: audited('folder.update') },
      },
      async (request) => {
        const { organizationId } = authOf(request);
        const { id, folder_id } = request.params;
        const folder = await folderOf(organizationId, id, folder_id);
        if (request.body.subscribed != null)
          await store.subscribe(organizationId, id, folder.name, request.body.subscribed);
        if (request.body.name != null && request.body.name !== folder.name) {
          await store.renameFolder(organizationId, id, folder.name, request.body.name);
          // INBOX stays where it is; its messages went to a new folder.
          if (folder.name === 'INBOX') {
            const moved = await store.folder(organizationId, id, request.body.name);
            if (moved) return viewOf(organizationId, moved);
          }
        }
        return viewOf(organizationId, await store.folderById(organizationId, id, folder_id));
      },
    );

    app.delete(
      '/v1/mailboxes/:id/folders/:folder_id',
      {
        schema: {
          tags,
          summary: 'Delete a folder with its messages',
          description: 'INBOX cannot be deleted, nor a folder with folders under it.',
          params: folderParams,
          response: { 204: z.null() },
        },
        config: { access: write, audit: audited('folder.delete') },
      },
      async (request, reply) => {
        const { organizationId } = authOf(request);
        const folder = await folderOf(organizationId, request.params.id, request.params.folder_id);
        await store.deleteFolder(organizationId, request.params.id, folder.name);
        return reply.status(204).send(null);
      },
    );

    app.get(
      '/v1/mailboxes/:id/folders/:folder_id/messages',
      {
        schema: {
          tags,
          summary: 'The messages in a folder, newest first, with their flags',
          params: folderParams,
          querystring: z.strictObject(pageQuery),
          response: { 200: pageOf(messageSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const { organizationId } = authOf(request);
        const { id, folder_id } = request.params;
        await mailboxes.get(organizationId, id);
        const found = await store.page(organizationId, id, folder_id, request.query);
        return { ...found, items: found.items.map(messageView) };
      },
    );

    app.post(
      '/v1/mailboxes/:id/folders/:folder_id/messages/flags',
      {
        schema: {
          tags,
          summary: 'Change the flags of messages in a folder',
          description: 'One of set, add or remove. IMAP sessions with the folder selected see the change.',
          params: folderParams,
          body: z.strictObject({
            uids,
            set: flags.optional(),
            add: flags.optional(),
            remove: flags.optional(),
          }),
          response: {
            200: z.object({
              items: z.array(
                z.object({ uid: z.number().int(), flags: z.array(z.string()), modseq: z.number().int() }),
              ),
            }),
          },
        },
        config: { access: write, audit: audited('folder.messages_flags') },
      },
      async (request) => {
        const { organizationId } = authOf(request);
        const { id, folder_id } = request.params;
        const { set, add, remove } = request.body;
        const given = [set && 'set', add && 'add', remove && 'remove'].filter(Boolean);
        if (given.length !== 1) throw badRequest('Give exactly one of set, add or remove');
        const mode = given[0] as 'set' | 'add' | 'remove';
        const folder = await folderOf(organizationId, id, folder_id);
        const outcome = await store.storeFlags(
          organizationId,
          folder,
          request.body.uids,
          mode,
          (set ?? add ?? remove)!,
        );
        return { items: outcome.map((o) => ({ uid: o.uid, flags: o.flags, modseq: o.modseq })) };
      },
    );

    for (const action of ['move', 'copy'] as const) {
      app.post(
        `/v1/mailboxes/:id/folders/:folder_id/messages/${action}`,
        {
          schema: {
            tags,
            summary:
              action === 'move'
                ? 'Move messages to another folder of the mailbox'
                : 'Copy messages to another folder of the mailbox',
            description: 'Each gets a new UID there (`to`); UIDs that are not in the folder are left out.',
            params: folderParams,
            body: z.strictObject({ uids, to_folder_id: uuidParam }),
            response: {
              200: z.object({ items: z.array(z.object({ from: z.number().int(), to: z.number().int() })) }),
            },
          },
          config: { access: write, audit: audited(`folder.messages_${action}`) },
        },
        async (request) => {
          const { organizationId } = authOf(request);
          const { id, folder_id } = request.params;
          const from = await folderOf(organizationId, id, folder_id);
          const to = await store.folderById(organizationId, id, request.body.to_folder_id);
          const placed =
            action === 'move'
              ? await store.move(organizationId, from, to, request.body.uids)
              : await store.copy(organizationId, from, to, request.body.uids);
          return { items: placed };
        },
      );
    }

    app.post(
      '/v1/mailboxes/:id/folders/:folder_id/messages/delete',
      {
        schema: {
          tags,
          summary: 'Remove messages from a folder at once (whatever their flags)',
          params: folderParams,
          body: z.strictObject({ uids }),
          response: { 200: z.object({ removed: z.array(z.number().int()) }) },
        },
        config: { access: write, audit: audited('folder.messages_delete') },
      },
      async (request) => {
        const { organizationId } = authOf(request);
        const folder = await folderOf(organizationId, request.params.id, request.params.folder_id);
        return { removed: await store.remove(organizationId, folder, request.body.uids) };
      },
    );
  };
}
