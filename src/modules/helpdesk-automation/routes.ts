import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import type { Actor } from '../helpdesk/events.ts';
import { PRIORITIES, STATUSES } from '../helpdesk/tables.ts';
import type { HelpdeskAutomationService } from './service.ts';
import { type AutomationRow, OPS, type RunRow, type TemplateRow, TRIGGERS } from './tables.ts';

const id = z.uuid();
const tag = z.string().trim().min(1).max(64);
const liquid = (max: number) => z.string().min(1).max(max).describe('Liquid: ticket, requester, agent, desk');

const templateBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  subject: liquid(1000).nullish(),
  body: liquid(50_000),
});

const templateSchema = z.object({
  id,
  name: z.string(),
  subject: z.string().nullable(),
  body: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
});

const templateView = (t: TemplateRow) => ({
  id: t.id,
  name: t.name,
  subject: t.subject,
  body: t.body,
  created_at: t.createdAt.toISOString(),
  updated_at: t.updatedAt.toISOString(),
});

const condition = z.strictObject({
  field: z
    .string()
    .min(1)
    .max(100)
    .describe(
      'status, priority, source, desk_id, category_id, department_id, team_id, assignee_id, customer_id, requester_id, subject, requester_email, tags, custom_fields.<key>, comment.author_type, comment.visibility, comment.body (comment rules), hours_since_created, hours_since_update, hours_since_customer_reply, hours_since_agent_reply',
    ),
  op: z.enum(OPS),
  value: z
    .union([
      z.string().max(1000),
      z.number(),
      z.boolean(),
      z.array(z.union([z.string().max(1000), z.number()])).max(100),
    ])
    .optional(),
});

const action = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('assign'), assignee_id: id.nullish(), team_id: id.nullish() }),
  z.strictObject({
    type: z.literal('set_fields'),
    status: z.enum(STATUSES).optional(),
    priority: z.enum(PRIORITIES).optional(),
    subject: z.string().trim().min(1).max(500).optional(),
    category_id: id.nullish(),
    department_id: id.nullish(),
    customer_id: id.nullish(),
    team_id: id.nullish(),
    assignee_id: id.nullish(),
    due_at: z.iso.datetime({ offset: true }).nullish(),
    custom_fields: z
      .record(
        z.string().regex(/^[a-z][a-z0-9_]{0,63}$/),
        z.union([z.string().max(10_000), z.number(), z.boolean(), z.null()]),
      )
      .optional(),
  }),
  z.strictObject({ type: z.literal('add_tags'), tags: z.array(tag).min(1).max(50) }),
  z.strictObject({ type: z.literal('remove_tags'), tags: z.array(tag).min(1).max(50) }),
  z.strictObject({ type: z.literal('reply_template'), template_id: id }),
  z.strictObject({ type: z.literal('note'), body: liquid(50_000) }),
  z.strictObject({ type: z.literal('notify_teams'), message: liquid(5_000) }),
  z.strictObject({ type: z.literal('close') }),
]);

const automationBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  enabled: z.boolean().optional(),
  position: z.number().int().min(0).max(100_000).optional().describe('Rules of a trigger run in this order'),
  trigger: z.enum(TRIGGERS),
  conditions: z.array(condition).max(50).optional().describe('All must hold'),
  actions: z.array(action).min(1).max(20),
});

const automationSchema = z.object({
  id,
  name: z.string(),
  enabled: z.boolean(),
  position: z.number().int(),
  trigger: z.enum(TRIGGERS),
  conditions: z.array(z.object({ field: z.string(), op: z.enum(OPS), value: z.unknown().optional() })),
  actions: z.array(z.record(z.string(), z.unknown())),
  created_at: z.string(),
  updated_at: z.string(),
});

const automationView = (r: AutomationRow) => ({
  id: r.id,
  name: r.name,
  enabled: r.enabled,
  position: r.position,
  trigger: r.trigger,
  conditions: r.conditions,
  actions: r.actions as unknown as Record<string, unknown>[],
  created_at: r.createdAt.toISOString(),
  updated_at: r.updatedAt.toISOString(),
});

const OUTCOMES = ['applied', 'not_matched', 'loop_stopped', 'failed'] as const;

const runSchema = z.object({
  id,
  automation_id: id,
  ticket_id: id,
  ticket_number: z.number().int(),
  trigger: z.enum(TRIGGERS),
  event_id: z.uuid().nullable().describe('The event evaluated; null for time rules'),
  matched: z.boolean(),
  outcome: z.enum(OUTCOMES),
  actions: z.array(z.record(z.string(), z.unknown())).describe('What the rule did'),
  error: z.string().nullable(),
  depth: z.number().int().describe('How many rules deep the change evaluated was made'),
  chain: z.array(z.uuid()).describe('Rules that acted before in this chain of changes'),
  created_at: z.string(),
});

const runView = (r: RunRow) => ({
  id: r.id,
  automation_id: r.automationId,
  ticket_id: r.ticketId,
  ticket_number: r.ticketNumber,
  trigger: r.trigger,
  event_id: r.eventId,
  matched: r.outcome !== 'not_matched',
  outcome: r.outcome,
  actions: r.actions,
  error: r.error,
  depth: r.depth,
  chain: r.chain,
  created_at: r.createdAt.toISOString(),
});

const renderedSchema = z.object({ subject: z.string().nullable(), body: z.string() });

const commentSchema = z.object({
  id,
  ticket_id: id,
  visibility: z.enum(['public', 'internal']),
  author_type: z.enum(['customer', 'agent', 'system']),
  author_user_id: z.uuid().nullable(),
  body: z.string(),
  message_id: z.uuid().nullable(),
  message_id_header: z.string().nullable(),
  created_at: z.string(),
});

function actorOf(request: FastifyRequest): Actor {
  const { principal } = authOf(request);
  return principal.kind === 'user'
    ? { type: 'user', id: principal.userId, depth: 0 }
    : { type: 'api_key', id: principal.keyId, depth: 0 };
}

const callerOf = (request: FastifyRequest) => {
  const { principal } = authOf(request);
  return principal.kind === 'user' ? principal.userId : null;
};

export function automationRoutes(automation: HelpdeskAutomationService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['helpdesk automation'];
    const configRead = { level: 'org', role: 'member', scope: 'helpdesk:read' } as const;
    const configWrite = { level: 'org', role: 'admin', scope: 'helpdesk:write' } as const;
    const ticketsRead = { level: 'org', role: 'member', scope: 'tickets:read' } as const;
    const ticketsWrite = { level: 'org', role: 'member', scope: 'tickets:write' } as const;
    const params = z.strictObject({ id });
    const org = (request: FastifyRequest) => authOf(request).organizationId;

    // ---- templates --------------------------------------------------------------------------------------
    app.get(
      '/v1/helpdesk/templates',
      {
        schema: {
          tags,
          summary: 'Reply templates',
          querystring: z.strictObject(pageQuery),
          response: { 200: pageOf(templateSchema) },
        },
        config: { access: configRead },
      },
      async (request) => {
        const page = await automation.listTemplates(org(request), request.query);
        return { ...page, items: page.items.map(templateView) };
      },
    );
    app.post(
      '/v1/helpdesk/templates',
      {
        schema: {
          tags,
          summary: 'Create a reply template (Liquid; checked when saved)',
          body: templateBody,
          response: { 201: templateSchema },
        },
        config: {
          access: configWrite,
          audit: { action: 'helpdesk_template.create', targetType: 'helpdesk_template' },
        },
      },
      async (request, reply) => {
        const template = await automation.createTemplate(org(request), request.body);
        request.auditTarget = { id: template.id };
        return reply.status(201).send(templateView(template));
      },
    );
    app.post(
      '/v1/helpdesk/templates/preview',
      {
        schema: {
          tags,
          summary: 'Render a template that is not saved against a real ticket',
          body: z.strictObject({ subject: liquid(1000).nullish(), body: liquid(50_000), ticket_id: id }),
          response: { 200: renderedSchema },
        },
        config: {
          access: ticketsRead,
          audit: { action: 'helpdesk_template.preview', targetType: 'helpdesk_template' },
        },
      },
      async (request) =>
        automation.previewDraft(org(request), request.body, request.body.ticket_id, callerOf(request)),
    );
    app.get(
      '/v1/helpdesk/templates/:id',
      {
        schema: { tags, summary: 'A reply template', params, response: { 200: templateSchema } },
        config: { access: configRead },
      },
      async (request) => templateView(await automation.template(org(request), request.params.id)),
    );
    app.patch(
      '/v1/helpdesk/templates/:id',
      {
        schema: {
          tags,
          summary: 'Change a reply template',
          params,
          body: templateBody.partial(),
          response: { 200: templateSchema },
        },
        config: {
          access: configWrite,
          audit: { action: 'helpdesk_template.update', targetType: 'helpdesk_template', targetParam: 'id' },
        },
      },
      async (request) =>
        templateView(await automation.updateTemplate(org(request), request.params.id, request.body)),
    );
    app.delete(
      '/v1/helpdesk/templates/:id',
      {
        schema: {
          tags,
          summary: 'Delete a reply template no rule uses',
          params,
          response: { 204: z.null() },
        },
        config: {
          access: configWrite,
          audit: { action: 'helpdesk_template.delete', targetType: 'helpdesk_template', targetParam: 'id' },
        },
      },
      async (request, reply) => {
        await automation.deleteTemplate(org(request), request.params.id);
        return reply.status(204).send(null);
      },
    );
    app.post(
      '/v1/helpdesk/templates/:id/preview',
      {
        schema: {
          tags,
          summary: 'Render the template against a real ticket',
          description:
            'The agent is the caller when a signed-in agent asks; with an API key, the ticket’s assignee.',
          params,
          body: z.strictObject({ ticket_id: id }),
          response: { 200: renderedSchema },
        },
        config: {
          access: ticketsRead,
          audit: { action: 'helpdesk_template.preview', targetType: 'helpdesk_template', targetParam: 'id' },
        },
      },
      async (request) =>
        automation.preview(org(request), request.params.id, request.body.ticket_id, callerOf(request)),
    );
    app.post(
      '/v1/tickets/:id/reply-with-template',
      {
        schema: {
          tags,
          summary: 'Reply to the requester with a template (or add it as an internal note)',
          params,
          body: z.strictObject({
            template_id: id,
            visibility: z.enum(['public', 'internal']).default('public'),
          }),
          response: { 201: commentSchema },
        },
        config: {
          access: ticketsWrite,
          audit: { action: 'ticket.comment', targetType: 'ticket', targetParam: 'id' },
        },
      },
      async (request, reply) => {
        const c = await automation.replyWithTemplate(
          org(request),
          request.params.id,
          request.body.template_id,
          request.body.visibility,
          actorOf(request),
        );
        return reply.status(201).send({
          id: c.id,
          ticket_id: c.ticketId,
          visibility: c.visibility,
          author_type: c.authorType,
          author_user_id: c.authorUserId,
          body: c.body,
          message_id: c.messageId,
          message_id_header: c.messageIdHeader,
          created_at: c.createdAt.toISOString(),
        });
      },
    );

    // ---- automation rules ---------------------------------------------------------------------------------
    app.get(
      '/v1/helpdesk/automations',
      {
        schema: {
          tags,
          summary: 'Automation rules, by trigger and position',
          querystring: z.strictObject({
            ...pageQuery,
            trigger: z.enum(TRIGGERS).optional(),
            enabled: z.enum(['true', 'false']).optional(),
          }),
          response: { 200: pageOf(automationSchema) },
        },
        config: { access: configRead },
      },
      async (request) => {
        const { trigger, enabled, ...page } = request.query;
        const found = await automation.list(
          org(request),
          { trigger, enabled: enabled === undefined ? undefined : enabled === 'true' },
          page,
        );
        return { ...found, items: found.items.map(automationView) };
      },
    );
    app.post(
      '/v1/helpdesk/automations',
      {
        schema: {
          tags,
          summary: 'Create an automation rule',
          body: automationBody,
          response: { 201: automationSchema },
        },
        config: {
          access: configWrite,
          audit: { action: 'helpdesk_automation.create', targetType: 'helpdesk_automation' },
        },
      },
      async (request, reply) => {
        const rule = await automation.create(org(request), request.body);
        request.auditTarget = { id: rule.id };
        return reply.status(201).send(automationView(rule));
      },
    );
    app.get(
      '/v1/helpdesk/automations/:id',
      {
        schema: { tags, summary: 'An automation rule', params, response: { 200: automationSchema } },
        config: { access: configRead },
      },
      async (request) => automationView(await automation.get(org(request), request.params.id)),
    );
    app.patch(
      '/v1/helpdesk/automations/:id',
      {
        schema: {
          tags,
          summary: 'Change an automation rule',
          params,
          body: automationBody.partial(),
          response: { 200: automationSchema },
        },
        config: {
          access: configWrite,
          audit: {
            action: 'helpdesk_automation.update',
            targetType: 'helpdesk_automation',
            targetParam: 'id',
          },
        },
      },
      async (request) =>
        automationView(await automation.update(org(request), request.params.id, request.body)),
    );
    app.delete(
      '/v1/helpdesk/automations/:id',
      {
        schema: {
          tags,
          summary: 'Delete an automation rule and its run log',
          params,
          response: { 204: z.null() },
        },
        config: {
          access: configWrite,
          audit: {
            action: 'helpdesk_automation.delete',
            targetType: 'helpdesk_automation',
            targetParam: 'id',
          },
        },
      },
      async (request, reply) => {
        await automation.remove(org(request), request.params.id);
        return reply.status(204).send(null);
      },
    );
    app.get(
      '/v1/helpdesk/automations/:id/runs',
      {
        schema: {
          tags,
          summary: 'The rule’s run log, newest first',
          params,
          querystring: z.strictObject({
            ...pageQuery,
            ticket_id: id.optional(),
            outcome: z.enum(OUTCOMES).optional(),
          }),
          response: { 200: pageOf(runSchema) },
        },
        config: { access: configRead },
      },
      async (request) => {
        const { ticket_id, outcome, ...page } = request.query;
        const found = await automation.runs(org(request), request.params.id, { ticket_id, outcome }, page);
        return { ...found, items: found.items.map(runView) };
      },
    );
  };
}
