import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import type { Directory } from './directory.ts';
import type { NamedKind } from './directory-store.ts';

const id = z.uuid();
const name = z.string().trim().min(1).max(200);

/** Each list: its path, its body, and how a row looks in the API. */
const KINDS: {
  kind: NamedKind;
  path: string;
  label: string;
  body: z.ZodObject;
  view: z.ZodObject;
  shape: (row: Record<string, unknown>) => Record<string, unknown>;
}[] = [
  {
    kind: 'departments',
    path: 'departments',
    label: 'department',
    body: z.strictObject({ name }),
    view: z.object({ id, name: z.string(), created_at: z.string() }),
    shape: (r) => ({ id: r.id, name: r.name, created_at: (r.createdAt as Date).toISOString() }),
  },
  {
    kind: 'categories',
    path: 'categories',
    label: 'category',
    body: z.strictObject({
      name,
      needs_approval: z.boolean().optional().describe('New tickets wait in approval-pending'),
      approver_ids: z.array(id).max(50).optional().describe('Agents who approve or reject'),
      team_id: z.uuid().nullish().describe('Where its tickets go'),
    }),
    view: z.object({
      id,
      name: z.string(),
      needs_approval: z.boolean(),
      approver_ids: z.array(id),
      team_id: z.uuid().nullable(),
      created_at: z.string(),
    }),
    shape: (r) => ({
      id: r.id,
      name: r.name,
      needs_approval: r.needsApproval,
      approver_ids: r.approverIds,
      team_id: r.teamId,
      created_at: (r.createdAt as Date).toISOString(),
    }),
  },
  {
    kind: 'customers',
    path: 'customers',
    label: 'customer organisation',
    body: z.strictObject({
      name,
      domains: z
        .array(z.string().max(253))
        .max(100)
        .optional()
        .describe('Requesters at these domains belong to it'),
      notes: z.string().max(10_000).nullish(),
    }),
    view: z.object({
      id,
      name: z.string(),
      domains: z.array(z.string()),
      notes: z.string().nullable(),
      created_at: z.string(),
    }),
    shape: (r) => ({
      id: r.id,
      name: r.name,
      domains: r.domains,
      notes: r.notes,
      created_at: (r.createdAt as Date).toISOString(),
    }),
  },
  {
    kind: 'teams',
    path: 'teams',
    label: 'team',
    body: z.strictObject({
      name,
      assignment: z.enum(['manual', 'round_robin', 'least_loaded']).optional().describe('Default manual'),
      member_ids: z.array(id).max(500).optional().describe('Agents of the team (replaces the members)'),
    }),
    view: z.object({
      id,
      name: z.string(),
      assignment: z.enum(['manual', 'round_robin', 'least_loaded']),
      member_ids: z.array(id),
      created_at: z.string(),
    }),
    shape: (r) => ({
      id: r.id,
      name: r.name,
      assignment: r.assignment,
      member_ids: r.memberIds,
      created_at: (r.createdAt as Date).toISOString(),
    }),
  },
];

const agentSchema = z.object({
  user_id: id,
  email: z.string(),
  name: z.string(),
  role: z.enum(['agent', 'supervisor', 'approver']),
  active: z.boolean(),
  created_at: z.string(),
});

export function directoryRoutes(directory: Directory) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['helpdesk'];
    const read = { level: 'org', role: 'member', scope: 'helpdesk:read' } as const;
    const write = { level: 'org', role: 'admin', scope: 'helpdesk:write' } as const;
    const params = z.strictObject({ id });
    const org = (request: FastifyRequest) => authOf(request).organizationId;

    for (const k of KINDS) {
      const base = `/v1/helpdesk/${k.path}`;
      const audit = (action: string, targetParam?: string) => ({
        action: `helpdesk_${k.kind.replace(/s$/, '').replace(/ie$/, 'y')}.${action}`,
        targetType: `helpdesk_${k.path}`,
        ...(targetParam && { targetParam }),
      });
      app.get(
        base,
        {
          schema: {
            tags,
            summary: `List ${k.label}s`,
            querystring: z.strictObject(pageQuery),
            response: { 200: pageOf(k.view) },
          },
          config: { access: read },
        },
        async (request) => {
          const page = await directory.list(org(request), k.kind, request.query);
          return { ...page, items: page.items.map(k.shape) };
        },
      );
      app.post(
        base,
        {
          schema: { tags, summary: `Create a ${k.label}`, body: k.body, response: { 201: k.view } },
          config: { access: write, audit: audit('create') },
        },
        async (request, reply) => {
          const row = await directory.create(org(request), k.kind, request.body as Record<string, unknown>);
          request.auditTarget = { id: row.id as string };
          return reply.status(201).send(k.shape(row));
        },
      );
      app.get(
        `${base}/:id`,
        {
          schema: { tags, summary: `A ${k.label}`, params, response: { 200: k.view } },
          config: { access: read },
        },
        async (request) => k.shape(await directory.get(org(request), k.kind, request.params.id)),
      );
      app.patch(
        `${base}/:id`,
        {
          schema: {
            tags,
            summary: `Change a ${k.label}`,
            params,
            body: k.body.partial(),
            response: { 200: k.view },
          },
          config: { access: write, audit: audit('update', 'id') },
        },
        async (request) =>
          k.shape(
            await directory.update(
              org(request),
              k.kind,
              request.params.id,
              request.body as Record<string, unknown>,
            ),
          ),
      );
      app.delete(
        `${base}/:id`,
        {
          schema: { tags, summary: `Delete a ${k.label}`, params, response: { 204: z.null() } },
          config: { access: write, audit: audit('delete', 'id') },
        },
        async (request, reply) => {
          await directory.remove(org(request), k.kind, request.params.id);
          return reply.status(204).send(null);
        },
      );
    }

    const agentView = (a: Awaited<ReturnType<Directory['agent']>>) => ({
      user_id: a.userId,
      email: a.email,
      name: a.name,
      role: a.role,
      active: a.active,
      created_at: a.createdAt.toISOString(),
    });
    app.get(
      '/v1/helpdesk/agents',
      {
        schema: {
          tags,
          summary: 'Agents: members of the organisation with a helpdesk role',
          response: { 200: z.object({ items: z.array(agentSchema) }) },
        },
        config: { access: read },
      },
      async (request) => ({ items: (await directory.agents(org(request))).map(agentView) }),
    );
    app.put(
      '/v1/helpdesk/agents/:user_id',
      {
        schema: {
          tags,
          summary: 'Make a member an agent, or change their helpdesk role',
          params: z.strictObject({ user_id: id }),
          body: z.strictObject({
            role: z.enum(['agent', 'supervisor', 'approver']),
            active: z.boolean().optional(),
          }),
          response: { 200: agentSchema },
        },
        config: {
          access: write,
          audit: { action: 'helpdesk_agent.set', targetType: 'user', targetParam: 'user_id' },
        },
      },
      async (request) =>
        agentView(await directory.setAgent(org(request), request.params.user_id, request.body)),
    );
    app.delete(
      '/v1/helpdesk/agents/:user_id',
      {
        schema: {
          tags,
          summary: 'Take away a member’s helpdesk role',
          params: z.strictObject({ user_id: id }),
          response: { 204: z.null() },
        },
        config: {
          access: write,
          audit: { action: 'helpdesk_agent.remove', targetType: 'user', targetParam: 'user_id' },
        },
      },
      async (request, reply) => {
        await directory.removeAgent(org(request), request.params.user_id);
        return reply.status(204).send(null);
      },
    );
  };
}
