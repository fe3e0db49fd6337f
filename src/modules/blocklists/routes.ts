import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import type { BlocklistsService, TargetStatus } from './service.ts';

const iso = (d: Date | null) => d?.toISOString() ?? null;
const kind = z.enum(['ip', 'domain']);

const listSchema = z.object({
  zone: z.string().describe('The DNS zone queried; names the list in results and events'),
  name: z.string(),
  kind,
  ipv6: z.boolean().describe('Whether IPv6 addresses are checked against it'),
  delist_url: z.string().nullable(),
});

const targetSchema = z.object({
  target: z.string(),
  kind,
  source: z
    .enum(['settings', 'api', 'domain', 'link'])
    .describe(
      'MAILROOM_OUTBOUND_IPS, added by API, one of the domains, or a domain the organisation’s mail of the last week links to',
    ),
  listed: z.boolean().describe('Listed on at least one list'),
  results: z.array(
    z.object({
      list: z.string(),
      status: z
        .enum(['listed', 'clear', 'error'])
        .describe('error: the last check failed; `listed` is the last known state'),
      listed: z.boolean(),
      code: z.string().nullable(),
      meaning: z.string().nullable(),
      error: z.string().nullable(),
      checked_at: z.string(),
      listed_since: z.string().nullable(),
      delist_url: z.string().nullable(),
    }),
  ),
});
const statusSchema = z.object({ items: z.array(targetSchema) });

function statusView(targets: TargetStatus[]) {
  return {
    items: targets.map((t) => ({
      target: t.target,
      kind: t.kind,
      source: t.source,
      listed: t.results.some((r) => r.listed),
      results: t.results.map((r) => ({
        list: r.list,
        status: r.status,
        listed: r.listed,
        code: r.code,
        meaning: r.meaning,
        error: r.error,
        checked_at: r.checkedAt.toISOString(),
        listed_since: iso(r.listedSince),
        delist_url: r.delistUrl,
      })),
    })),
  };
}

export function blocklistRoutes(blocklists: BlocklistsService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['blocklists'];
    const read = { level: 'org', role: 'member', scope: 'blocklists:read' } as const;
    const write = { level: 'org', role: 'admin', scope: 'blocklists:write' } as const;
    const ipSchema = z.object({ ip: z.string(), created_at: z.string() });

    app.get(
      '/v1/blocklists',
      {
        schema: {
          tags,
          summary: 'The DNS blocklists checked',
          response: { 200: z.object({ items: z.array(listSchema) }) },
        },
        config: { access: read },
      },
      async () => ({
        items: blocklists.lists.map((l) => ({
          zone: l.zone,
          name: l.name,
          kind: l.kind,
          ipv6: l.ipv6,
          delist_url: l.delistUrl,
        })),
      }),
    );

    app.get(
      '/v1/blocklists/status',
      {
        schema: {
          tags,
          summary: 'Every monitored IP and domain with its status on each list, as of the last check',
          response: { 200: statusSchema },
        },
        config: { access: read },
      },
      async (request) => statusView(await blocklists.status(authOf(request).organizationId)),
    );

    app.post(
      '/v1/blocklists/check',
      {
        schema: {
          tags,
          summary: 'Check now (every target, or those named) and answer their status',
          body: z.strictObject({ targets: z.array(z.string().max(253)).max(1000).optional() }).nullish(),
          response: { 200: statusSchema },
        },
        config: { access: write, audit: { action: 'blocklist.check', targetType: 'blocklist' } },
      },
      async (request) =>
        statusView(await blocklists.check(authOf(request).organizationId, request.body?.targets)),
    );

    app.get(
      '/v1/blocklists/ips',
      {
        schema: {
          tags,
          summary:
            'The IP addresses the organisation added for monitoring (the installation’s own are in /status)',
          response: { 200: z.object({ items: z.array(ipSchema) }) },
        },
        config: { access: read },
      },
      async (request) => ({
        items: (await blocklists.ips(authOf(request).organizationId)).map((r) => ({
          ip: r.ip,
          created_at: r.createdAt.toISOString(),
        })),
      }),
    );

    app.post(
      '/v1/blocklists/ips',
      {
        schema: {
          tags,
          summary: 'Monitor a sending IP address (IPv4 or IPv6)',
          body: z.strictObject({ ip: z.string().max(64) }),
          response: { 201: ipSchema },
        },
        config: { access: write, audit: { action: 'blocklist_ip.create', targetType: 'blocklist_ip' } },
      },
      async (request, reply) => {
        const row = await blocklists.addIp(authOf(request).organizationId, request.body.ip);
        request.auditTarget = { id: row.id };
        return reply.status(201).send({ ip: row.ip, created_at: row.createdAt.toISOString() });
      },
    );

    app.delete(
      '/v1/blocklists/ips/:ip',
      {
        schema: {
          tags,
          summary: 'Stop monitoring an IP address added through the API',
          params: z.strictObject({ ip: z.string().max(64) }),
          response: { 204: z.null() },
        },
        config: {
          access: write,
          audit: { action: 'blocklist_ip.delete', targetType: 'blocklist_ip', targetParam: 'ip' },
        },
      },
      async (request, reply) => {
        await blocklists.removeIp(authOf(request).organizationId, request.params.ip);
        return reply.status(204).send(null);
      },
    );
  };
}
