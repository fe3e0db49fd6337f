import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf, ROLES, userOf } from '../../core/auth.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import type { OrganizationsService } from './service.ts';
import type { InvitationRow, OrganizationRow } from './tables.ts';

const role = z.enum(ROLES);
const slug = z
  .string()
  .min(2)
  .max(63)
  .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'lower-case letters, digits and inner dashes');

const organizationSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  slug: z.string(),
  role: role.optional(),
  created_at: z.string(),
  updated_at: z.string(),
});

const memberSchema = z.object({
  user_id: z.uuid(),
  email: z.string(),
  name: z.string(),
  role,
  joined_at: z.string(),
});

const invitationSchema = z.object({
  id: z.uuid(),
  organization_id: z.uuid(),
  email: z.string(),
  role,
  invited_by: z.uuid().nullable(),
  expires_at: z.string(),
  created_at: z.string(),
});

function organizationView(o: OrganizationRow & { role?: (typeof ROLES)[number] }) {
  return {
    id: o.id,
    name: o.name,
    slug: o.slug,
    ...(o.role ? { role: o.role } : {}),
    created_at: o.createdAt.toISOString(),
    updated_at: o.updatedAt.toISOString(),
  };
}

function memberView(m: {
  userId: string;
  email: string;
  name: string;
  role: (typeof ROLES)[number];
  createdAt: Date;
}) {
  return {
    user_id: m.userId,
    email: m.email,
    name: m.name,
    role: m.role,
    joined_at: m.createdAt.toISOString(),
  };
}

function invitationView(i: InvitationRow) {
  return {
    id: i.id,
    organization_id: i.organizationId,
    email: i.email,
    role: i.role,
    invited_by: i.invitedBy,
    expires_at: i.expiresAt.toISOString(),
    created_at: i.createdAt.toISOString(),
  };
}

export function organizationRoutes(orgs: OrganizationsService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['organizations'];
    const orgParams = z.strictObject({ organization_id: uuidParam });
    const memberParams = z.strictObject({ organization_id: uuidParam, user_id: uuidParam });
    const actorOf = (request: Parameters<typeof authOf>[0]) => {
      const auth = authOf(request);
      return { userId: auth.principal.kind === 'user' ? auth.principal.userId : null, role: auth.role! };
    };

    app.post(
      '/v1/organizations',
      {
        schema: {
          tags,
          summary: 'Create an organisation (you become its owner)',
          body: z.strictObject({ name: z.string().trim().min(1).max(200), slug: slug.optional() }),
          response: { 201: organizationSchema },
        },
        config: {
          access: { level: 'user' },
          audit: { action: 'organization.create', targetType: 'organization' },
        },
      },
      async (request, reply) => {
        const org = await orgs.create(userOf(request).userId, request.body);
        request.auditTarget = { id: org.id, organizationId: org.id };
        return reply.status(201).send(organizationView({ ...org, role: 'owner' }));
      },
    );

    app.get(
      '/v1/organizations',
      {
        schema: {
          tags,
          summary: 'Organisations you belong to, with your role',
          querystring: z.strictObject(pageQuery),
          response: { 200: pageOf(organizationSchema) },
        },
        config: { access: { level: 'user' } },
      },
      async (request) => {
        const page = await orgs.listForUser(userOf(request).userId, request.query);
        return { ...page, items: page.items.map(organizationView) };
      },
    );

    app.get(
      '/v1/organizations/:organization_id',
      {
        schema: {
          tags,
          summary: 'One organisation',
          params: orgParams,
          response: { 200: organizationSchema },
        },
        config: { access: { level: 'org', role: 'viewer', scope: 'organization:read' } },
      },
      async (request) => {
        const auth = authOf(request);
        const org = await orgs.get(auth.organizationId);
        return organizationView(auth.principal.kind === 'user' ? { ...org, role: auth.role } : org);
      },
    );

    app.patch(
      '/v1/organizations/:organization_id',
      {
        schema: {
          tags,
          summary: 'Rename an organisation or change its slug',
          params: orgParams,
          body: z.strictObject({ name: z.string().trim().min(1).max(200).optional(), slug: slug.optional() }),
          response: { 200: organizationSchema },
        },
        config: {
          access: { level: 'org', role: 'admin', scope: 'organization:write' },
          audit: {
            action: 'organization.update',
            targetType: 'organization',
            targetParam: 'organization_id',
          },
        },
      },
      async (request) => organizationView(await orgs.update(authOf(request).organizationId, request.body)),
    );

    app.delete(
      '/v1/organizations/:organization_id',
      {
        schema: {
          tags,
          summary: 'Delete an organisation and everything in it (owners)',
          params: orgParams,
          response: { 204: z.null() },
        },
        config: {
          access: { level: 'org', role: 'owner' },
          audit: {
            action: 'organization.delete',
            targetType: 'organization',
            targetParam: 'organization_id',
          },
        },
      },
      async (request, reply) => {
        await orgs.delete(authOf(request).organizationId);
        return reply.status(204).send(null);
      },
    );

    app.get(
      '/v1/organizations/:organization_id/members',
      {
        schema: {
          tags,
          summary: 'Members and their roles',
          params: orgParams,
          querystring: z.strictObject(pageQuery),
          response: { 200: pageOf(memberSchema) },
        },
        config: { access: { level: 'org', role: 'viewer', scope: 'members:read' } },
      },
      async (request) => {
        const page = await orgs.listMembers(authOf(request).organizationId, request.query);
        return { ...page, items: page.items.map(memberView) };
      },
    );

    app.get(
      '/v1/organizations/:organization_id/members/:user_id',
      {
        schema: { tags, summary: 'One member', params: memberParams, response: { 200: memberSchema } },
        config: { access: { level: 'org', role: 'viewer', scope: 'members:read' } },
      },
      async (request) =>
        memberView(await orgs.getMember(authOf(request).organizationId, request.params.user_id)),
    );

    app.patch(
      '/v1/organizations/:organization_id/members/:user_id',
      {
        schema: {
          tags,
          summary: "Change a member's role",
          params: memberParams,
          body: z.strictObject({ role }),
          response: { 200: memberSchema },
        },
        config: {
          access: { level: 'org', role: 'admin', scope: 'members:write' },
          audit: { action: 'membership.update', targetType: 'user', targetParam: 'user_id' },
        },
      },
      async (request) => {
        const auth = authOf(request);
        return memberView(
          await orgs.changeRole(
            auth.organizationId,
            actorOf(request),
            request.params.user_id,
            request.body.role,
          ),
        );
      },
    );

    app.delete(
      '/v1/organizations/:organization_id/members/:user_id',
      {
        schema: {
          tags,
          summary: 'Remove a member, or leave (your own id)',
          params: memberParams,
          response: { 204: z.null() },
        },
        config: {
          access: { level: 'org', role: 'viewer', scope: 'members:write' },
          audit: { action: 'membership.delete', targetType: 'user', targetParam: 'user_id' },
        },
      },
      async (request, reply) => {
        await orgs.removeMember(authOf(request).organizationId, actorOf(request), request.params.user_id);
        return reply.status(204).send(null);
      },
    );

    app.post(
      '/v1/organizations/:organization_id/invitations',
      {
        schema: {
          tags,
          summary: 'Invite someone by email (the token is mailed to them)',
          params: orgParams,
          body: z.strictObject({ email: z.email().max(254), role: role.default('member') }),
          response: { 201: invitationSchema },
        },
        config: {
          access: { level: 'org', role: 'admin', scope: 'members:write' },
          audit: { action: 'invitation.create', targetType: 'invitation' },
        },
      },
      async (request, reply) => {
        const inv = await orgs.invite(authOf(request).organizationId, actorOf(request), request.body);
        request.auditTarget = { id: inv.id };
        return reply.status(201).send(invitationView(inv));
      },
    );

    app.get(
      '/v1/organizations/:organization_id/invitations',
      {
        schema: {
          tags,
          summary: 'Pending invitations',
          params: orgParams,
          querystring: z.strictObject(pageQuery),
          response: { 200: pageOf(invitationSchema) },
        },
        config: { access: { level: 'org', role: 'admin', scope: 'members:read' } },
      },
      async (request) => {
        const page = await orgs.listInvitations(authOf(request).organizationId, request.query);
        return { ...page, items: page.items.map(invitationView) };
      },
    );

    app.delete(
      '/v1/organizations/:organization_id/invitations/:id',
      {
        schema: {
          tags,
          summary: 'Withdraw an invitation',
          params: z.strictObject({ organization_id: uuidParam, id: uuidParam }),
          response: { 204: z.null() },
        },
        config: {
          access: { level: 'org', role: 'admin', scope: 'members:write' },
          audit: { action: 'invitation.revoke', targetType: 'invitation' },
        },
      },
      async (request, reply) => {
        await orgs.revokeInvitation(authOf(request).organizationId, request.params.id);
        return reply.status(204).send(null);
      },
    );

    app.post(
      '/v1/invitations/accept',
      {
        schema: {
          tags,
          summary: 'Accept an invitation sent to your email address',
          body: z.strictObject({ token: z.string().min(1).max(200) }),
          response: { 200: z.object({ organization_id: z.uuid(), role }) },
        },
        config: {
          access: { level: 'user' },
          audit: { action: 'invitation.accept', targetType: 'organization' },
        },
      },
      async (request) => {
        const result = await orgs.acceptInvitation(request.body.token, userOf(request).userId);
        request.auditTarget = { id: result.organizationId, organizationId: result.organizationId };
        return { organization_id: result.organizationId, role: result.role };
      },
    );
  };
}
