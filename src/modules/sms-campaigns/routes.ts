import type { Readable } from 'node:stream';
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { AppError } from '../../core/errors.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import { jobSchema, jobView, startedBy } from '../jobs/routes.ts';
import type { ContactImportsService, ImportRequest, ImportView } from './imports.ts';
import type { ContactFilter, ListWithCount, SmsContactsService } from './service.ts';
import type { ContactRow, TemplateRow } from './tables.ts';

const id = z.uuid();
const tag = z.string().trim().min(1).max(64);
const fieldKey = z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'a-z, 0-9 and _, starting with a letter');
const region = z
  .string()
  .regex(/^[A-Z]{2}$/, 'an ISO 3166 alpha-2 code, e.g. US')
  .describe('Where a number without a country code is read; default the organisation’s SMS default region');
// ---- views ---------------------------------------------------------------------------------------------

const templateSchema = z.object({
  id,
  name: z.string(),
  body: z.string(),
  description: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});

function templateView(t: TemplateRow) {
  return {
    id: t.id,
    name: t.name,
    body: t.body,
    description: t.description,
    created_at: t.createdAt.toISOString(),
    updated_at: t.updatedAt.toISOString(),
  };
}

const contactSchema = z.object({
  id,
  phone: z.string().describe('E.164'),
  name: z.string().nullable(),
  fields: z.record(z.string(), z.string()),
  tags: z.array(z.string()),
  list_ids: z.array(z.uuid()).describe('The lists it is on'),
  created_at: z.string(),
  updated_at: z.string(),
});

function contactView(c: ContactRow) {
  return {
    id: c.id,
    phone: c.phone,
    name: c.name,
    fields: c.fields,
    tags: c.tags,
    list_ids: c.listIds,
    created_at: c.createdAt.toISOString(),
    updated_at: c.updatedAt.toISOString(),
  };
}

const listSchema = z.object({
  id,
  name: z.string(),
  description: z.string().nullable(),
  members: z.number().int(),
  created_at: z.string(),
  updated_at: z.string(),
});

function listView(l: ListWithCount) {
  return {
    id: l.id,
    name: l.name,
    description: l.description,
    members: l.members,
    created_at: l.createdAt.toISOString(),
    updated_at: l.updatedAt.toISOString(),
  };
}

const mappingSchema = z.strictObject({
  phone: z.string().min(1).max(200).describe('The column holding the number'),
  name: z.string().min(1).max(200).nullish(),
  tags: z.string().min(1).max(200).nullish().describe('A column of tags separated by ; , or |'),
  fields: z.record(fieldKey, z.string().min(1).max(200)).optional().describe('Custom field key → column'),
});

const importSchema = z.object({
  id,
  filename: z.string().nullable(),
  size: z.number().int(),
  sha256: z.string(),
  mapping: mappingSchema,
  on_duplicate: z.enum(['update', 'skip']),
  list_id: z.uuid().nullable(),
  default_region: z.string().nullable(),
  tags: z.array(z.string()),
  rows: z.number().int().describe('Data rows read so far'),
  created: z.number().int(),
  updated: z.number().int(),
  skipped: z.number().int(),
  failed: z.number().int().describe('Rows refused; the job lists them with their row numbers'),
  job: jobSchema,
  created_at: z.string(),
  links: z.object({ self: z.string(), job: z.string() }),
});

function importView({ row, job }: ImportView) {
  return {
    id: row.id,
    filename: row.filename,
    size: row.size,
    sha256: row.sha256,
    mapping: {
      phone: row.options.mapping.phone,
      name: row.options.mapping.name ?? null,
      tags: row.options.mapping.tags ?? null,
      fields: row.options.mapping.fields ?? {},
    },
    on_duplicate: row.options.onDuplicate,
    list_id: row.options.listId,
    default_region: row.options.defaultRegion,
    tags: row.options.tags,
    rows: row.rows,
    created: row.created,
    updated: row.updated,
    skipped: row.skipped,
    failed: row.failed,
    job: jobView(job),
    created_at: row.createdAt.toISOString(),
    links: { self: `/v1/sms/contacts/imports/${row.id}`, job: `/v1/jobs/${job.id}` },
  };
}

// ---- inputs --------------------------------------------------------------------------------------------

const commaList = <T extends z.ZodType>(item: T, max: number) =>
  z.preprocess(
    (v) =>
      typeof v === 'string'
        ? v
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : v,
    z.array(item).max(max),
  );

/** Contact filters, as a query (lists) and as a body (list members by filter). */
const filterFields = {
  search: z.string().trim().min(1).max(100).optional().describe('Part of the number (digits) or of the name'),
  tag: commaList(tag, 20).optional().describe('Contacts with every one of these tags (comma-separated)'),
  list_id: z.uuid().optional().describe('Members of this list'),
  field: commaList(z.string().regex(/^[a-z][a-z0-9_]{0,63}:.{1,200}$/, 'key:value'), 10)
    .optional()
    .describe('Custom fields with exactly these values: key:value, comma-separated'),
};
const filterBody = z.strictObject({
  search: filterFields.search,
  tags: z.array(tag).max(20).optional(),
  list_id: z.uuid().optional(),
  fields: z.record(fieldKey, z.string().max(200)).optional(),
});

function filterOf(q: {
  search?: string;
  tag?: string[];
  tags?: string[];
  list_id?: string;
  field?: string[];
  fields?: Record<string, string>;
}): ContactFilter {
  const fields: Record<string, string> = { ...q.fields };
  for (const f of q.field ?? []) fields[f.slice(0, f.indexOf(':'))] = f.slice(f.indexOf(':') + 1);
  return {
    search: q.search,
    tags: q.tag ?? q.tags,
    listId: q.list_id,
    fields: Object.keys(fields).length ? fields : undefined,
  };
}

const memberSelection = z.strictObject({
  contact_ids: z.array(z.uuid()).min(1).max(10_000).optional(),
  filter: filterBody.optional().describe('Every contact that matches (an empty filter: every contact)'),
});

const previewSubject = {
  contact_id: z.uuid().optional().describe('Render for this contact'),
  variables: z
    .record(z.string(), z.unknown())
    .optional()
    .describe('Or for these variables, e.g. {"contact": {"name": "Ada", "fields": {"code": "X1"}}}'),
};
const previewSchema = z.object({
  text: z.string(),
  encoding: z.enum(['gsm7', 'ucs2']),
  characters: z.number().int(),
  units: z.number().int().describe('Septets (GSM-7) or UTF-16 code units (UCS-2)'),
  parts: z.number().int(),
});

const importQuery = z.strictObject({
  mapping: z
    .preprocess((v) => {
      if (typeof v !== 'string') return v;
      try {
        return JSON.parse(v);
      } catch {
        return v;
      }
    }, mappingSchema)
    .optional()
    .describe(
      'JSON: {"phone": column, "name": column, "tags": column, "fields": {key: column}}. Without it a phone, mobile or number column is the phone, a name column the name, a tags column the tags, and every other column a custom field',
    ),
  on_duplicate: z
    .enum(['update', 'skip'])
    .optional()
    .describe('A number that is a contact already (or repeats in the file): update it (default) or skip it'),
  list_id: z.uuid().optional().describe('Add every contact of the file to this list'),
  default_region: region.optional(),
  tags: commaList(tag, 20).optional().describe('Tags every contact of the file gets (comma-separated)'),
  delimiter: z.enum([',', ';', '\t', '|']).optional().describe('Default ,'),
  filename: z.string().max(255).optional(),
});

const CSV_TYPES = ['text/csv', 'application/csv', 'text/plain'];

export function smsContactRoutes(
  contacts: SmsContactsService,
  imports: ContactImportsService,
  maxBytes: number,
) {
  return async (fastify: FastifyInstance) => {
    // A CSV body reaches the handler as a stream (the import reads and limits it); a form takes one file.
    fastify.addContentTypeParser(CSV_TYPES, (_request, payload, done) => done(null, payload));
    await fastify.register(multipart, { limits: { fileSize: maxBytes, files: 1, fields: 20, parts: 21 } });
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['sms contacts'];
    const read = { level: 'org', role: 'member', scope: 'sms:read' } as const;
    const write = { level: 'org', role: 'member', scope: 'sms:write' } as const;
    const params = z.strictObject({ id: uuidParam });
    const org = (request: FastifyRequest) => authOf(request).organizationId;

    // ---- templates -------------------------------------------------------------------------------------
    const templateBody = z.strictObject({
      name: z.string().trim().min(1).max(200),
      body: z
        .string()
        .min(1)
        .max(5_000)
        .describe(
          'Liquid: {{ contact.name }}, {{ contact.first_name }}, {{ contact.phone }}, {{ contact.fields.<key> }}, {{ contact.tags }}, {{ organization.name }}',
        ),
      description: z.string().max(1_000).nullish(),
    });

    app.post(
      '/v1/sms/templates',
      {
        schema: {
          tags: ['sms templates'],
          summary: 'Create an SMS template',
          description: 'A body that is not a valid Liquid template is a 422.',
          body: templateBody,
          response: { 201: templateSchema },
        },
        config: { access: write, audit: { action: 'sms_template.create', targetType: 'sms_template' } },
      },
      async (request, reply) => {
        const row = await contacts.createTemplate(org(request), request.body);
        request.auditTarget = { id: row.id };
        return reply.status(201).send(templateView(row));
      },
    );

    app.get(
      '/v1/sms/templates',
      {
        schema: {
          tags: ['sms templates'],
          summary: 'SMS templates, by name',
          querystring: z.strictObject({ ...pageQuery, search: z.string().trim().min(1).max(100).optional() }),
          response: { 200: pageOf(templateSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const { page, page_size, search } = request.query;
        const found = await contacts.listTemplates(org(request), search, { page, page_size });
        return { ...found, items: found.items.map(templateView) };
      },
    );

    app.get(
      '/v1/sms/templates/:id',
      {
        schema: {
          tags: ['sms templates'],
          summary: 'An SMS template',
          params,
          response: { 200: templateSchema },
        },
        config: { access: read },
      },
      async (request) => templateView(await contacts.getTemplate(org(request), request.params.id)),
    );

    app.patch(
      '/v1/sms/templates/:id',
      {
        schema: {
          tags: ['sms templates'],
          summary: 'Change an SMS template',
          description: 'Campaigns take the body when they start: a started campaign keeps the body it took.',
          params,
          body: templateBody.partial(),
          response: { 200: templateSchema },
        },
        config: {
          access: write,
          audit: { action: 'sms_template.update', targetType: 'sms_template', targetParam: 'id' },
        },
      },
      async (request) =>
        templateView(await contacts.updateTemplate(org(request), request.params.id, request.body)),
    );

    app.delete(
      '/v1/sms/templates/:id',
      {
        schema: {
          tags: ['sms templates'],
          summary: 'Delete an SMS template',
          description: '409 while a draft campaign uses it.',
          params,
          response: { 204: z.null() },
        },
        config: {
          access: write,
          audit: { action: 'sms_template.delete', targetType: 'sms_template', targetParam: 'id' },
        },
      },
      async (request, reply) => {
        await contacts.deleteTemplate(org(request), request.params.id);
        return reply.status(204).send(null);
      },
    );

    app.post(
      '/v1/sms/templates/:id/preview',
      {
        schema: {
          tags: ['sms templates'],
          summary: 'Render a template for a contact or given variables: the text, its encoding and parts',
          params,
          body: z.strictObject(previewSubject),
          response: { 200: previewSchema },
        },
        config: {
          access: read,
          audit: { action: 'sms_template.preview', targetType: 'sms_template', targetParam: 'id' },
        },
      },
      async (request) =>
        contacts.preview(
          org(request),
          { templateId: request.params.id },
          { contactId: request.body.contact_id, variables: request.body.variables },
        ),
    );

    app.post(
      '/v1/sms/templates/preview',
      {
        schema: {
          tags: ['sms templates'],
          summary: 'Render a body not yet saved: the text, its encoding and parts',
          description: 'A body that is not a valid Liquid template is a 422.',
          body: z.strictObject({ body: templateBody.shape.body, ...previewSubject }),
          response: { 200: previewSchema },
        },
        config: { access: read, audit: { action: 'sms_template.preview', targetType: 'sms_template' } },
      },
      async (request) =>
        contacts.preview(
          org(request),
          { body: request.body.body },
          { contactId: request.body.contact_id, variables: request.body.variables },
        ),
    );

    // ---- contacts --------------------------------------------------------------------------------------
    const contactBody = z.strictObject({
      phone: z.string().trim().min(1).max(40).describe('E.164, or national with default_region'),
      name: z.string().trim().max(200).nullish(),
      fields: z.record(fieldKey, z.string().max(1_000)).optional(),
      tags: z.array(tag).max(50).optional(),
      default_region: region.optional(),
      list_ids: z.array(z.uuid()).max(50).optional().describe('Lists the contact joins'),
    });

    app.post(
      '/v1/sms/contacts',
      {
        schema: {
          tags,
          summary: 'Create a contact',
          description:
            'The number is stored in E.164; a number that is not valid is a 422 naming it, one that is a contact already a 409 naming that contact.',
          body: contactBody,
          response: { 201: contactSchema },
        },
        config: { access: write, audit: { action: 'sms_contact.create', targetType: 'sms_contact' } },
      },
      async (request, reply) => {
        const row = await contacts.createContact(org(request), request.body);
        request.auditTarget = { id: row.id };
        return reply.status(201).send(contactView(row));
      },
    );

    app.get(
      '/v1/sms/contacts',
      {
        schema: {
          tags,
          summary: 'Contacts, newest first, with filters',
          querystring: z.strictObject({ ...pageQuery, ...filterFields }),
          response: { 200: pageOf(contactSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const { page, page_size, ...filter } = request.query;
        const found = await contacts.listContacts(org(request), filterOf(filter), { page, page_size });
        return { ...found, items: found.items.map(contactView) };
      },
    );

    // ---- imports (before /:id, which they would otherwise match) ----------------------------------------
    app.post(
      '/v1/sms/contacts/imports',
      {
        schema: {
          tags,
          summary: 'Import contacts from a CSV file (a job)',
          description: `The file is the body (Content-Type text/csv) with the options in the query, or multipart/form-data with the options as fields before one file field. The first row names the columns. Each number is normalised to E.164 (default_region for national numbers); a row that fails (no or an invalid number, a wrong column count) is reported with its row number (the header is row 1) on the job, and the others are written. A number already a contact is updated (name when given, fields merged, tags added) or skipped (on_duplicate). The file's SHA-256 is kept: the same file again is a 409 naming the earlier import (unless that one failed or was cancelled). Up to ${maxBytes} bytes. Follow it at GET /v1/sms/contacts/imports/:id or GET /v1/jobs/:id (the Location header); cancel with DELETE /v1/jobs/:id.`,
          querystring: importQuery,
          headers: z.object({ 'idempotency-key': z.string().min(1).max(255).optional() }),
          response: { 200: importSchema, 202: importSchema },
        },
        config: {
          access: write,
          audit: { action: 'sms_contact_import.create', targetType: 'sms_contact_import' },
        },
      },
      async (request, reply) => {
        const auth = authOf(request);
        const options = {
          createdBy: startedBy(request),
          idempotencyKey: request.headers['idempotency-key'],
        };
        let started: Awaited<ReturnType<ContactImportsService['start']>> | undefined;
        if (request.isMultipart()) {
          const fields: Record<string, string> = {};
          for await (const part of request.parts()) {
            if (part.type === 'field') {
              fields[part.fieldname] = String(part.value);
              continue;
            }
            if (started) {
              part.file.resume();
              continue;
            }
            const parsed = importQuery.safeParse({ ...request.query, ...fields });
            if (!parsed.success) {
              part.file.resume();
              throw new AppError(
                400,
                'validation_failed',
                parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
              );
            }
            started = await imports.start(
              auth.organizationId,
              limited(part.file, () => part.file.truncated),
              requestOf({ filename: part.filename || undefined, ...parsed.data }),
              options,
            );
          }
          if (!started)
            throw new AppError(400, 'validation_failed', 'file: the form has no file field', {
              errors: [{ field: 'file', message: 'the form has no file field' }],
            });
        } else {
          const body = request.body as Readable | undefined;
          if (!body || typeof body.pipe !== 'function')
            throw new AppError(
              415,
              'unsupported_media_type',
              'Send the file as text/csv, or as multipart/form-data',
            );
          started = await imports.start(auth.organizationId, body, requestOf(request.query), options);
        }
        request.auditTarget = { id: started.row.id };
        reply.header('location', `/v1/jobs/${started.job.id}`);
        if (started.replayed) reply.header('idempotent-replayed', 'true');
        return reply.status(started.replayed ? 200 : 202).send(importView(started));
      },
    );

    app.get(
      '/v1/sms/contacts/imports',
      {
        schema: {
          tags,
          summary: 'Contact imports, newest first',
          querystring: z.strictObject(pageQuery),
          response: { 200: pageOf(importSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const found = await imports.list(org(request), request.query);
        return { ...found, items: found.items.map(importView) };
      },
    );

    app.get(
      '/v1/sms/contacts/imports/:id',
      {
        schema: {
          tags,
          summary: 'A contact import: its counts and its job (progress, row errors)',
          params,
          response: { 200: importSchema },
        },
        config: { access: read },
      },
      async (request) => importView(await imports.get(org(request), request.params.id)),
    );

    app.get(
      '/v1/sms/contacts/:id',
      {
        schema: { tags, summary: 'A contact', params, response: { 200: contactSchema } },
        config: { access: read },
      },
      async (request) => contactView(await contacts.getContact(org(request), request.params.id)),
    );

    app.patch(
      '/v1/sms/contacts/:id',
      {
        schema: {
          tags,
          summary: 'Change a contact',
          description: '`fields` are merged (null removes one); `tags` replace the tags.',
          params,
          body: z.strictObject({
            phone: contactBody.shape.phone.optional(),
            name: contactBody.shape.name,
            fields: z.record(fieldKey, z.string().max(1_000).nullable()).optional(),
            tags: contactBody.shape.tags,
            default_region: region.optional(),
          }),
          response: { 200: contactSchema },
        },
        config: {
          access: write,
          audit: { action: 'sms_contact.update', targetType: 'sms_contact', targetParam: 'id' },
        },
      },
      async (request) =>
        contactView(await contacts.updateContact(org(request), request.params.id, request.body)),
    );

    app.delete(
      '/v1/sms/contacts/:id',
      {
        schema: { tags, summary: 'Delete a contact', params, response: { 204: z.null() } },
        config: {
          access: write,
          audit: { action: 'sms_contact.delete', targetType: 'sms_contact', targetParam: 'id' },
        },
      },
      async (request, reply) => {
        await contacts.deleteContact(org(request), request.params.id);
        return reply.status(204).send(null);
      },
    );

    // ---- lists -----------------------------------------------------------------------------------------
    const listTags = ['sms lists'];
    const listBody = z.strictObject({
      name: z.string().trim().min(1).max(200),
      description: z.string().max(1_000).nullish(),
    });

    app.post(
      '/v1/sms/lists',
      {
        schema: {
          tags: listTags,
          summary: 'Create a contact list',
          body: listBody,
          response: { 201: listSchema },
        },
        config: { access: write, audit: { action: 'sms_list.create', targetType: 'sms_list' } },
      },
      async (request, reply) => {
        const row = await contacts.createList(org(request), request.body);
        request.auditTarget = { id: row.id };
        return reply.status(201).send(listView(row));
      },
    );

    app.get(
      '/v1/sms/lists',
      {
        schema: {
          tags: listTags,
          summary: 'Contact lists, by name, with their member counts',
          querystring: z.strictObject({ ...pageQuery, search: z.string().trim().min(1).max(100).optional() }),
          response: { 200: pageOf(listSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const { page, page_size, search } = request.query;
        const found = await contacts.listLists(org(request), search, { page, page_size });
        return { ...found, items: found.items.map(listView) };
      },
    );

    app.get(
      '/v1/sms/lists/:id',
      {
        schema: { tags: listTags, summary: 'A contact list', params, response: { 200: listSchema } },
        config: { access: read },
      },
      async (request) => listView(await contacts.getList(org(request), request.params.id)),
    );

    app.patch(
      '/v1/sms/lists/:id',
      {
        schema: {
          tags: listTags,
          summary: 'Rename or describe a list',
          params,
          body: listBody.partial(),
          response: { 200: listSchema },
        },
        config: {
          access: write,
          audit: { action: 'sms_list.update', targetType: 'sms_list', targetParam: 'id' },
        },
      },
      async (request) => listView(await contacts.updateList(org(request), request.params.id, request.body)),
    );

    app.delete(
      '/v1/sms/lists/:id',
      {
        schema: {
          tags: listTags,
          summary: 'Delete a list (its contacts stay)',
          description: '409 while a campaign that has not started uses it.',
          params,
          response: { 204: z.null() },
        },
        config: {
          access: write,
          audit: { action: 'sms_list.delete', targetType: 'sms_list', targetParam: 'id' },
        },
      },
      async (request, reply) => {
        await contacts.deleteList(org(request), request.params.id);
        return reply.status(204).send(null);
      },
    );

    app.get(
      '/v1/sms/lists/:id/members',
      {
        schema: {
          tags: listTags,
          summary: 'The list’s contacts, newest first, with the contact filters',
          params,
          querystring: z.strictObject({ ...pageQuery, ...filterFields, list_id: z.never().optional() }),
          response: { 200: pageOf(contactSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const { page, page_size, ...filter } = request.query;
        await contacts.getList(org(request), request.params.id);
        const found = await contacts.listContacts(
          org(request),
          { ...filterOf(filter), listId: request.params.id },
          { page, page_size },
        );
        return { ...found, items: found.items.map(contactView) };
      },
    );

    const membersResult = z.object({ count: z.number().int() });
    app.post(
      '/v1/sms/lists/:id/members',
      {
        schema: {
          tags: listTags,
          summary: 'Add contacts to the list: by id, or every contact a filter matches',
          description: '`count`: contacts that were not members before. Unknown ids are a 422.',
          params,
          body: memberSelection,
          response: { 200: membersResult },
        },
        config: {
          access: write,
          audit: { action: 'sms_list.add_members', targetType: 'sms_list', targetParam: 'id' },
        },
      },
      async (request) => ({
        count: await contacts.addMembers(org(request), request.params.id, selectionOf(request.body)),
      }),
    );

    app.post(
      '/v1/sms/lists/:id/members/remove',
      {
        schema: {
          tags: listTags,
          summary: 'Remove contacts from the list: by id, or every member a filter matches',
          description: '`count`: members removed. The contacts themselves stay.',
          params,
          body: memberSelection,
          response: { 200: membersResult },
        },
        config: {
          access: write,
          audit: { action: 'sms_list.remove_members', targetType: 'sms_list', targetParam: 'id' },
        },
      },
      async (request) => ({
        count: await contacts.removeMembers(org(request), request.params.id, selectionOf(request.body)),
      }),
    );

    app.delete(
      '/v1/sms/lists/:id/members/:contact_id',
      {
        schema: {
          tags: listTags,
          summary: 'Remove one contact from the list',
          params: z.strictObject({ id: uuidParam, contact_id: uuidParam }),
          response: { 204: z.null() },
        },
        config: {
          access: write,
          audit: { action: 'sms_list.remove_members', targetType: 'sms_list', targetParam: 'id' },
        },
      },
      async (request, reply) => {
        const removed = await contacts.removeMembers(org(request), request.params.id, {
          contact_ids: [request.params.contact_id],
        });
        if (!removed) throw new AppError(404, 'not_found', 'The contact is not a member of the list');
        return reply.status(204).send(null);
      },
    );
  };
}

function selectionOf(body: z.infer<typeof memberSelection>) {
  return {
    contact_ids: body.contact_ids,
    filter: body.filter ? filterOf({ ...body.filter }) : undefined,
  };
}

function requestOf(q: z.infer<typeof importQuery> & { filename?: string }): ImportRequest {
  return {
    mapping: q.mapping ?? null,
    on_duplicate: q.on_duplicate,
    list_id: q.list_id ?? null,
    default_region: q.default_region ?? null,
    tags: q.tags,
    delimiter: q.delimiter,
    filename: q.filename ?? null,
  };
}

/** A form's file stream, refused (413) once the form's size limit cut it short. */
async function* limited(stream: Readable, truncated: () => boolean): AsyncIterable<Buffer> {
  for await (const chunk of stream) yield chunk as Buffer;
  if (truncated()) throw new AppError(413, 'payload_too_large', 'The file is larger than the import limit');
}
