import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { forbidden } from '../../core/errors.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import { type Actor, ticketSnapshot } from './events.ts';
import type { DeskView, HelpdeskService } from './service.ts';
import { type CommentRow, PRIORITIES, STATUSES, type TicketRow } from './tables.ts';

const priority = z.enum(PRIORITIES);
const status = z.enum(STATUSES);
const id = z.uuid();
const tag = z.string().min(1).max(64);

const fieldDefinition = z.strictObject({
  key: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/),
  label: z.string().min(1).max(200),
  type: z.enum(['text', 'number', 'boolean', 'date', 'select']),
  options: z.array(z.string().min(1).max(200)).max(200).optional(),
  required: z.boolean().optional(),
});

const deskSchema = z.object({
  id,
  name: z.string(),
  addresses: z.array(
    z.object({ address: z.string(), mailbox_id: z.uuid().nullable(), alias_id: z.uuid().nullable() }),
  ),
  team_id: z.uuid().nullable(),
  default_priority: priority,
  custom_fields: z.array(fieldDefinition),
  signature: z.string().nullable(),
  auto_reply: z.boolean(),
  created_at: z.string(),
});

const deskBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  addresses: z
    .array(z.string().max(320))
    .min(1)
    .max(50)
    .describe('Mailboxes or aliases of the organisation; the first is the From of the desk’s mail'),
  team_id: z.uuid().nullish(),
  default_priority: priority.optional(),
  custom_fields: z.array(fieldDefinition).max(100).optional(),
  signature: z.string().max(5000).nullish(),
  auto_reply: z.boolean().optional().describe('Acknowledge tickets opened by mail (default true)'),
});

function deskView(d: DeskView) {
  return {
    id: d.id,
    name: d.name,
    addresses: d.addresses,
    team_id: d.teamId,
    default_priority: d.defaultPriority,
    custom_fields: d.customFields,
    signature: d.signature,
    auto_reply: d.autoReply,
    created_at: d.createdAt.toISOString(),
  };
}

// The ticket as events carry it, without the requester's address, with the conversation's counters.
const ticketSchema = ticketSnapshot.omit({ requester_email: true }).extend({
  merged_into_id: z.uuid().nullable(),
  comments: z.number().int(),
  first_response_at: z.string().nullable(),
  last_customer_at: z.string().nullable(),
  last_agent_at: z.string().nullable(),
  resolved_at: z.string().nullable(),
  closed_at: z.string().nullable(),
});

const iso = (d: Date | null) => d?.toISOString() ?? null;

export function ticketView(t: TicketRow) {
  return {
    id: t.id,
    number: t.number,
    desk_id: t.deskId,
    subject: t.subject,
    status: t.status,
    priority: t.priority,
    requester_id: t.requesterId,
    customer_id: t.customerId,
    category_id: t.categoryId,
    department_id: t.departmentId,
    team_id: t.teamId,
    assignee_id: t.assigneeId,
    tags: t.tags,
    custom_fields: t.customFields,
    due_at: iso(t.dueAt),
    source: t.source,
    merged_into_id: t.mergedIntoId,
    comments: t.comments,
    first_response_at: iso(t.firstResponseAt),
    last_customer_at: iso(t.lastCustomerAt),
    last_agent_at: iso(t.lastAgentAt),
    resolved_at: iso(t.resolvedAt),
    closed_at: iso(t.closedAt),
    created_at: t.createdAt.toISOString(),
    updated_at: t.updatedAt.toISOString(),
  };
}

const commentSchema = z.object({
  id,
  ticket_id: id,
  visibility: z.enum(['public', 'internal']),
  author_type: z.enum(['customer', 'agent', 'system']),
  author_user_id: z.uuid().nullable(),
  author_contact_id: z.uuid().nullable(),
  body: z.string(),
  message_id: z.uuid().nullable().describe('The stored mail it came in or went out as'),
  message_id_header: z.string().nullable(),
  attachments: z.array(
    z.object({ filename: z.string().nullable(), content_type: z.string(), size: z.number() }),
  ),
  mentions: z.array(z.uuid()),
  created_at: z.string(),
});

function commentView(c: CommentRow) {
  return {
    id: c.id,
    ticket_id: c.ticketId,
    visibility: c.visibility,
    author_type: c.authorType,
    author_user_id: c.authorUserId,
    author_contact_id: c.authorContactId,
    body: c.body,
    message_id: c.messageId,
    message_id_header: c.messageIdHeader,
    attachments: c.attachments,
    mentions: c.mentions,
    created_at: c.createdAt.toISOString(),
  };
}

const changesBody = z.strictObject({
  subject: z.string().trim().min(1).max(500).optional(),
  status: status.optional(),
  priority: priority.optional(),
  category_id: z.uuid().nullish(),
  department_id: z.uuid().nullish(),
  customer_id: z.uuid().nullish(),
  team_id: z.uuid().nullish(),
  assignee_id: z.uuid().nullish(),
  tags: z.array(tag).max(50).optional().describe('Replaces the tags'),
  add_tags: z.array(tag).max(50).optional(),
  remove_tags: z.array(tag).max(50).optional(),
  custom_fields: z.record(z.string(), z.unknown()).optional().describe('Merged; null removes a field'),
  due_at: z.iso.datetime({ offset: true }).nullish(),
});

/** Who is acting: a signed-in agent, or an API key. */
export function actorOf(request: FastifyRequest): Actor {
  const { principal } = authOf(request);
  return principal.kind === 'user'
    ? { type: 'user', id: principal.userId, depth: 0 }
    : { type: 'api_key', id: principal.keyId, depth: 0 };
}

const csv = <T extends z.ZodType>(item: T) =>
  z.preprocess((v) => (typeof v === 'string' ? v.split(',').filter(Boolean) : v), z.array(item).max(20));

export function helpdeskRoutes(helpdesk: HelpdeskService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const deskTags = ['helpdesk'];
    const tags = ['tickets'];
    const configRead = { level: 'org', role: 'member', scope: 'helpdesk:read' } as const;
    const configWrite = { level: 'org', role: 'admin', scope: 'helpdesk:write' } as const;
    const read = { level: 'org', role: 'member', scope: 'tickets:read' } as const;
    const write = { level: 'org', role: 'member', scope: 'tickets:write' } as const;
    const params = z.strictObject({ id });
    const org = (request: FastifyRequest) => authOf(request).organizationId;

    // ---- desks ------------------------------------------------------------------------------------------
    app.get(
      '/v1/helpdesk/desks',
      {
        schema: {
          tags: deskTags,
          summary: 'Help desks',
          querystring: z.strictObject(pageQuery),
          response: { 200: pageOf(deskSchema) },
        },
        config: { access: configRead },
      },
      async (request) => {
        const page = await helpdesk.listDesks(org(request), request.query);
        return { ...page, items: page.items.map(deskView) };
      },
    );
    app.post(
      '/v1/helpdesk/desks',
      {
        schema: {
          tags: deskTags,
          summary: 'Create a desk: mail to its addresses opens tickets',
          body: deskBody,
          response: { 201: deskSchema },
        },
        config: {
          access: configWrite,
          audit: { action: 'helpdesk_desk.create', targetType: 'helpdesk_desk' },
        },
      },
      async (request, reply) => {
        const desk = await helpdesk.createDesk(org(request), request.body);
        request.auditTarget = { id: desk.id };
        return reply.status(201).send(deskView(desk));
      },
    );
    app.get(
      '/v1/helpdesk/desks/:id',
      {
        schema: { tags: deskTags, summary: 'A desk', params, response: { 200: deskSchema } },
        config: { access: configRead },
      },
      async (request) => deskView(await helpdesk.desk(org(request), request.params.id)),
    );
    app.patch(
      '/v1/helpdesk/desks/:id',
      {
        schema: {
          tags: deskTags,
          summary: 'Change a desk',
          params,
          body: deskBody.partial(),
          response: { 200: deskSchema },
        },
        config: {
          access: configWrite,
          audit: { action: 'helpdesk_desk.update', targetType: 'helpdesk_desk', targetParam: 'id' },
        },
      },
      async (request) => deskView(await helpdesk.updateDesk(org(request), request.params.id, request.body)),
    );
    app.delete(
      '/v1/helpdesk/desks/:id',
      {
        schema: {
          tags: deskTags,
          summary: 'Delete a desk that has no tickets',
          params,
          response: { 204: z.null() },
        },
        config: {
          access: configWrite,
          audit: { action: 'helpdesk_desk.delete', targetType: 'helpdesk_desk', targetParam: 'id' },
        },
      },
      async (request, reply) => {
        await helpdesk.deleteDesk(org(request), request.params.id);
        return reply.status(204).send(null);
      },
    );

    // ---- tickets ----------------------------------------------------------------------------------------
    app.get(
      '/v1/tickets',
      {
        schema: {
          tags,
          summary: 'Tickets, filtered, searched, sorted and paged',
          querystring: z.strictObject({
            ...pageQuery,
            status: csv(status).optional().describe('Comma-separated'),
            priority: csv(priority).optional().describe('Comma-separated'),
            desk_id: z.uuid().optional(),
            assignee_id: z
              .union([z.uuid(), z.literal('none')])
              .optional()
              .describe('`none`: unassigned'),
            team_id: z.uuid().optional(),
            category_id: z.uuid().optional(),
            department_id: z.uuid().optional(),
            customer_id: z.uuid().optional(),
            requester_id: z.uuid().optional(),
            tag: tag.optional(),
            q: z
              .string()
              .trim()
              .min(1)
              .max(500)
              .optional()
              .describe('Full-text search: subject, requester, every comment'),
            created_after: z.iso.datetime({ offset: true }).optional(),
            created_before: z.iso.datetime({ offset: true }).optional(),
            sort: z.enum(['created_at', 'updated_at', 'number', 'priority', 'due_at']).default('created_at'),
            order: z.enum(['asc', 'desc']).default('desc'),
          }),
          response: {
            200: pageOf(ticketSchema).extend({
              total_exact: z
                .boolean()
                .describe(
                  'False when more tickets matched than are counted (1,000 for a full-text query `q`, 10,000 otherwise): `total` is then that cap',
                ),
            }),
          },
        },
        config: { access: read },
      },
      async (request) => {
        const { page, page_size, sort, order, assignee_id, created_after, created_before, ...filter } =
          request.query;
        const found = await helpdesk.listTickets(
          org(request),
          {
            ...filter,
            assignee_id: assignee_id === 'none' ? null : assignee_id,
            created_after: created_after ? new Date(created_after) : undefined,
            created_before: created_before ? new Date(created_before) : undefined,
          },
          { by: sort, order },
          { page, page_size },
        );
        return { ...found, items: found.items.map(ticketView) };
      },
    );
    app.post(
      '/v1/tickets',
      {
        schema: {
          tags,
          summary: 'Open a ticket for a requester',
          description:
            'The body is the first comment: the requester’s words (`from_customer`, default true) or an internal note. Nothing is mailed; a public reply does that.',
          body: z.strictObject({
            desk_id: z.uuid(),
            subject: z.string().trim().min(1).max(500),
            requester: z.strictObject({ email: z.string().max(320), name: z.string().max(200).nullish() }),
            body: z.string().min(1).max(200_000),
            from_customer: z.boolean().optional(),
            priority: priority.optional(),
            category_id: z.uuid().nullish(),
            department_id: z.uuid().nullish(),
            team_id: z.uuid().nullish(),
            assignee_id: z.uuid().nullish(),
            tags: z.array(tag).max(50).optional(),
            custom_fields: z.record(z.string(), z.unknown()).optional(),
            due_at: z.iso.datetime({ offset: true }).nullish(),
          }),
          response: { 201: ticketSchema },
        },
        config: { access: write, audit: { action: 'ticket.create', targetType: 'ticket' } },
      },
      async (request, reply) => {
        const ticket = await helpdesk.createTicket(
          org(request),
          { ...request.body, source: 'api' },
          actorOf(request),
        );
        request.auditTarget = { id: ticket.id };
        return reply.status(201).send(ticketView(ticket));
      },
    );
    app.post(
      '/v1/tickets/bulk',
      {
        schema: {
          tags,
          summary: 'Apply the same changes to many tickets (all or none)',
          body: z.strictObject({ ids: z.array(id).min(1).max(500), changes: changesBody }),
          response: { 200: z.object({ items: z.array(ticketSchema) }) },
        },
        config: { access: write, audit: { action: 'ticket.bulk_update', targetType: 'ticket' } },
      },
      async (request) => {
        const rows = await helpdesk.bulkUpdate(
          org(request),
          request.body.ids,
          request.body.changes,
          actorOf(request),
        );
        return { items: rows.map(ticketView) };
      },
    );
    app.get(
      '/v1/tickets/by-number/:number',
      {
        schema: {
          tags,
          summary: 'A ticket by its number',
          params: z.strictObject({ number: z.coerce.number().int().min(1).max(2_000_000_000) }),
          response: { 200: ticketSchema },
        },
        config: { access: read },
      },
      async (request) => ticketView(await helpdesk.ticketByNumber(org(request), request.params.number)),
    );
    app.get(
      '/v1/tickets/:id',
      {
        schema: { tags, summary: 'A ticket', params, response: { 200: ticketSchema } },
        config: { access: read },
      },
      async (request) => ticketView(await helpdesk.ticket(org(request), request.params.id)),
    );
    app.patch(
      '/v1/tickets/:id',
      {
        schema: {
          tags,
          summary: 'Change a ticket',
          params,
          body: changesBody,
          response: { 200: ticketSchema },
        },
        config: {
          access: write,
          audit: { action: 'ticket.update', targetType: 'ticket', targetParam: 'id' },
        },
      },
      async (request) =>
        ticketView(
          await helpdesk.updateTicket(org(request), request.params.id, request.body, actorOf(request)),
        ),
    );
    app.post(
      '/v1/tickets/:id/merge',
      {
        schema: {
          tags,
          summary: 'Merge this ticket into another: its comments move there, it is closed',
          params,
          body: z.strictObject({ into_id: id }),
          response: { 200: ticketSchema },
        },
        config: { access: write, audit: { action: 'ticket.merge', targetType: 'ticket', targetParam: 'id' } },
      },
      async (request) =>
        ticketView(
          await helpdesk.merge(org(request), request.params.id, request.body.into_id, actorOf(request)),
        ),
    );
    app.post(
      '/v1/tickets/:id/split',
      {
        schema: {
          tags,
          summary: 'Move comments of this ticket to a new ticket',
          params,
          body: z.strictObject({ comment_ids: z.array(id).min(1).max(500) }),
          response: { 201: ticketSchema },
        },
        config: { access: write, audit: { action: 'ticket.split', targetType: 'ticket', targetParam: 'id' } },
      },
      async (request, reply) =>
        reply
          .status(201)
          .send(
            ticketView(
              await helpdesk.split(
                org(request),
                request.params.id,
                request.body.comment_ids,
                actorOf(request),
              ),
            ),
          ),
    );

    // ---- comments ---------------------------------------------------------------------------------------
    app.get(
      '/v1/tickets/:id/comments',
      {
        schema: {
          tags,
          summary: 'The ticket’s conversation and notes, oldest first',
          params,
          querystring: z.strictObject(pageQuery),
          response: { 200: pageOf(commentSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const page = await helpdesk.comments(org(request), request.params.id, request.query);
        return { ...page, items: page.items.map(commentView) };
      },
    );
    app.post(
      '/v1/tickets/:id/comments',
      {
        schema: {
          tags,
          summary: 'Reply to the requester (public, sent by mail from the desk) or add an internal note',
          params,
          body: z.strictObject({
            body: z.string().trim().min(1).max(200_000),
            visibility: z.enum(['public', 'internal']),
            attachments: z
              .array(
                z.strictObject({
                  filename: z.string().min(1).max(255),
                  content: z.base64().describe('Base64'),
                  content_type: z.string().max(255).nullish(),
                }),
              )
              .max(20)
              .optional(),
            mentions: z.array(id).max(50).optional().describe('Agents to tell (besides @address mentions)'),
          }),
          response: { 201: commentSchema },
        },
        config: {
          access: write,
          audit: { action: 'ticket.comment', targetType: 'ticket', targetParam: 'id' },
        },
      },
      async (request, reply) => {
        const comment = await helpdesk.addComment(
          org(request),
          request.params.id,
          request.body,
          actorOf(request),
        );
        return reply.status(201).send(commentView(comment));
      },
    );

    // ---- approvals --------------------------------------------------------------------------------------
    const approvalSchema = z.object({
      id,
      approver_id: id,
      decision: z.enum(['approved', 'rejected']),
      comment: z.string().nullable(),
      via: z.enum(['api', 'mail']),
      created_at: z.string(),
    });
    app.get(
      '/v1/tickets/:id/approvals',
      {
        schema: {
          tags,
          summary: 'Approval decisions on a ticket',
          params,
          response: { 200: z.object({ items: z.array(approvalSchema) }) },
        },
        config: { access: read },
      },
      async (request) => ({
        items: (await helpdesk.approvals(org(request), request.params.id)).map((a) => ({
          id: a.id,
          approver_id: a.approverId,
          decision: a.decision,
          comment: a.comment,
          via: a.via,
          created_at: a.createdAt.toISOString(),
        })),
      }),
    );
    app.post(
      '/v1/tickets/:id/approval',
      {
        schema: {
          tags,
          summary: 'Approve or reject a ticket that waits for approval (approvers of its category only)',
          params,
          body: z.strictObject({
            decision: z.enum(['approved', 'rejected']),
            comment: z.string().trim().max(10_000).nullish(),
          }),
          response: { 200: ticketSchema },
        },
        config: {
          access: { level: 'org', role: 'member' },
          audit: { action: 'ticket.approval', targetType: 'ticket', targetParam: 'id' },
        },
      },
      async (request) => {
        const actor = actorOf(request);
        if (actor.type !== 'user') throw forbidden('approvals are made by a signed-in approver');
        const { ticket } = await helpdesk.decide(
          org(request),
          request.params.id,
          actor.id!,
          request.body.decision,
          request.body.comment ?? null,
          'api',
          actor,
        );
        return ticketView(ticket);
      },
    );
  };
}
