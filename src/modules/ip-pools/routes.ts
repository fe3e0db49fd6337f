import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import type { Assignment, IpPoolsService, PoolDetail, SendingIpView } from './service.ts';

const iso = (d: Date | null) => d?.toISOString() ?? null;

const warmupInput = z
  .union([
    z.enum(['none', 'slow', 'normal', 'fast']),
    z.array(z.number().int().min(1).max(1_000_000_000)).min(1).max(365),
  ])
  .describe(
    'A named curve (none: never capped; slow: 20 a day ×1.5 daily for 30 days; normal: 50 doubling daily for 15 days; fast: 200 ×2.5 daily for 10 days), or the daily caps from day 1; unlimited after the last day',
  );

const poolSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  ips: z.array(z.string()).describe('Member sending IPs'),
  unconfigured_ips: z
    .array(z.string())
    .describe('Members no longer in MAILROOM_OUTBOUND_IPS: kept, but never used until configured again'),
  warmup: z.enum(['none', 'slow', 'normal', 'fast', 'custom']),
  warmup_caps: z
    .array(z.number().int())
    .describe('Recipients a day per IP from its day 1; unlimited after the last'),
  is_default: z.boolean().describe('Used by mail whose mailbox and domain have no pool'),
  domains: z.number().int().describe('Domains assigned to the pool'),
  mailboxes: z.number().int().describe('Mailboxes assigned to the pool'),
  created_at: z.string(),
  updated_at: z.string(),
});

function poolView(p: PoolDetail) {
  return {
    id: p.id,
    name: p.name,
    ips: p.ips,
    unconfigured_ips: p.unconfigured,
    warmup: p.curve.kind,
    warmup_caps: [...p.curve.caps],
    is_default: p.isDefault,
    domains: p.domains,
    mailboxes: p.mailboxes,
    created_at: p.createdAt.toISOString(),
    updated_at: p.updatedAt.toISOString(),
  };
}

const assignmentSchema = z.object({
  pool_id: z.uuid(),
  target: z.enum(['domain', 'mailbox']),
  id: z.uuid().describe('The domain or the mailbox'),
  name: z.string().describe('The domain name or the mailbox address'),
  assigned_at: z.string(),
});

function assignmentView(target: 'domain' | 'mailbox', a: Assignment) {
  return { pool_id: a.poolId, target, id: a.id, name: a.name, assigned_at: a.createdAt.toISOString() };
}

const finding = z.object({
  code: z
    .string()
    .describe('ptr_missing, ptr_forward_mismatch, helo_mismatch, ptr_multiple (a warning) or dns_error'),
  severity: z.enum(['error', 'warning']),
  message: z.string(),
});

const sendingIpSchema = z.object({
  ip: z.string(),
  family: z.union([z.literal(4), z.literal(6)]),
  helo_name: z.string().describe('The name delivery greets with from this IP'),
  pools: z.array(
    z.object({
      id: z.uuid(),
      name: z.string(),
      is_default: z.boolean(),
      warmup: z.enum(['none', 'slow', 'normal', 'fast', 'custom']),
      cap_today: z.number().int().nullable().describe("Today's cap under the pool's curve; null: unlimited"),
    }),
  ),
  used_without_pool: z
    .boolean()
    .describe('Mail with no pool of its own leaves from it (it is in the default pool, or there is none)'),
  warmup: z.object({
    first_used_on: z.string().nullable().describe('Warmup day 1 (UTC); null: never used'),
    day: z.number().int().nullable(),
    used_today: z.number().int().describe('Recipients sent from it today (UTC), by every organisation'),
    cap_today: z
      .number()
      .int()
      .nullable()
      .describe("Today's cap for mail with no pool (MAILROOM_OUTBOUND_IP_WARMUP); null: unlimited"),
  }),
  ptr: z.object({
    status: z.enum(['pass', 'fail', 'error', 'unchecked']),
    names: z.array(z.string()).describe('PTR names (reverse DNS)'),
    forward_confirmed: z.array(z.string()).describe('PTR names that resolve back to the IP (FCrDNS)'),
    helo_matches: z.boolean().describe('The HELO name is a confirmed PTR name'),
    findings: z.array(finding),
    checked_at: z.string().nullable(),
  }),
  blocklists: z.object({
    listed: z.boolean(),
    listings: z.array(
      z.object({
        list: z.string(),
        code: z.string().nullable(),
        meaning: z.string().nullable(),
        listed_since: z.string().nullable(),
        delist_url: z.string().nullable(),
      }),
    ),
    errors: z.number().int().describe('Lists whose last check failed (see /v1/blocklists/status)'),
    checked_at: z.string().nullable(),
  }),
});
const sendingIpsSchema = z.object({ items: z.array(sendingIpSchema) });

function sendingIpView(v: SendingIpView) {
  return {
    ip: v.ip,
    family: v.family,
    helo_name: v.heloName,
    pools: v.pools.map((p) => ({
      id: p.id,
      name: p.name,
      is_default: p.isDefault,
      warmup: p.warmup,
      cap_today: p.capToday,
    })),
    used_without_pool: v.usedWithoutPool,
    warmup: {
      first_used_on: v.warmup.firstUsedOn,
      day: v.warmup.day,
      used_today: v.warmup.usedToday,
      cap_today: v.warmup.capToday,
    },
    ptr: {
      status: v.ptr.status,
      names: v.ptr.names,
      forward_confirmed: v.ptr.confirmed,
      helo_matches: v.ptr.heloMatches,
      findings: v.ptr.findings,
      checked_at: iso(v.ptr.checkedAt),
    },
    blocklists: {
      listed: v.blocklists.listed,
      listings: v.blocklists.listings.map((l) => ({
        list: l.list,
        code: l.code,
        meaning: l.meaning,
        listed_since: iso(l.listedSince),
        delist_url: l.delistUrl,
      })),
      errors: v.blocklists.errors,
      checked_at: iso(v.blocklists.checkedAt),
    },
  };
}

export function ipPoolRoutes(ipPools: IpPoolsService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['ip-pools'];
    const read = { level: 'org', role: 'member', scope: 'ip_pools:read' } as const;
    const write = { level: 'org', role: 'admin', scope: 'ip_pools:write' } as const;
    const audited = (action: string) => ({ action, targetType: 'ip_pool', targetParam: 'id' });
    const idParams = z.strictObject({ id: uuidParam });
    const ips = z.array(z.string().max(64)).max(1_000);

    app.get(
      '/v1/ip-pools',
      {
        schema: {
          tags,
          summary: "The organisation's IP pools, by name",
          querystring: z.strictObject(pageQuery),
          response: { 200: pageOf(poolSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const page = await ipPools.list(authOf(request).organizationId, request.query);
        return { ...page, items: page.items.map(poolView) };
      },
    );

    app.post(
      '/v1/ip-pools',
      {
        schema: {
          tags,
          summary: 'Create an IP pool of the installation’s sending IPs',
          description:
            'Every IP must be one of MAILROOM_OUTBOUND_IPS (422 otherwise). `is_default` makes it the pool of mail whose mailbox and domain have none (the previous default stops being one).',
          body: z.strictObject({
            name: z.string().min(1).max(100),
            ips: ips.min(1),
            warmup: warmupInput.optional().describe('Default normal'),
            is_default: z.boolean().optional(),
          }),
          response: { 201: poolSchema },
        },
        config: { access: write, audit: { action: 'ip_pool.create', targetType: 'ip_pool' } },
      },
      async (request, reply) => {
        const pool = await ipPools.create(authOf(request).organizationId, request.body);
        request.auditTarget = { id: pool.id };
        return reply.status(201).send(poolView(pool));
      },
    );

    app.get(
      '/v1/ip-pools/ips',
      {
        schema: {
          tags,
          summary:
            'Every sending IP: its pools, warmup (day, cap, used today), reverse DNS check and blocklist status',
          response: { 200: sendingIpsSchema },
        },
        config: { access: read },
      },
      async (request) => ({
        items: (await ipPools.sendingIps(authOf(request).organizationId)).map(sendingIpView),
      }),
    );

    app.post(
      '/v1/ip-pools/ips/check',
      {
        schema: {
          tags,
          summary:
            'Check reverse DNS (PTR, FCrDNS, HELO) and blocklists now, for every sending IP or those named',
          body: z.strictObject({ ips: ips.optional() }).nullish(),
          response: { 200: sendingIpsSchema },
        },
        config: { access: write, audit: { action: 'sending_ip.check', targetType: 'sending_ip' } },
      },
      async (request) => ({
        items: (await ipPools.check(authOf(request).organizationId, request.body?.ips)).map(sendingIpView),
      }),
    );

    app.get(
      '/v1/ip-pools/:id',
      {
        schema: { tags, summary: 'An IP pool', params: idParams, response: { 200: poolSchema } },
        config: { access: read },
      },
      async (request) => poolView(await ipPools.get(authOf(request).organizationId, request.params.id)),
    );

    app.patch(
      '/v1/ip-pools/:id',
      {
        schema: {
          tags,
          summary: 'Change an IP pool: name, member IPs (the whole list), warmup curve, default',
          params: idParams,
          body: z.strictObject({
            name: z.string().min(1).max(100).optional(),
            ips: ips.min(1).optional(),
            warmup: warmupInput.optional(),
            is_default: z.boolean().optional(),
          }),
          response: { 200: poolSchema },
        },
        config: { access: write, audit: audited('ip_pool.update') },
      },
      async (request) =>
        poolView(await ipPools.update(authOf(request).organizationId, request.params.id, request.body)),
    );

    app.delete(
      '/v1/ip-pools/:id',
      {
        schema: {
          tags,
          summary: 'Delete an IP pool (409 while domains or mailboxes are assigned to it)',
          params: idParams,
          response: { 204: z.null() },
        },
        config: { access: write, audit: audited('ip_pool.delete') },
      },
      async (request, reply) => {
        await ipPools.delete(authOf(request).organizationId, request.params.id);
        return reply.status(204).send(null);
      },
    );

    for (const target of ['domain', 'mailbox'] as const) {
      const plural = target === 'domain' ? 'domains' : 'mailboxes';
      const targetParams = z.strictObject({
        id: uuidParam,
        target_id: uuidParam.describe(`The ${target}`),
      });
      const assign = target === 'domain' ? ipPools.assignDomain : ipPools.assignMailbox;
      const unassign = target === 'domain' ? ipPools.unassignDomain : ipPools.unassignMailbox;

      app.get(
        `/v1/ip-pools/:id/${plural}`,
        {
          schema: {
            tags,
            summary: `The ${plural} assigned to an IP pool`,
            params: idParams,
            querystring: z.strictObject(pageQuery),
            response: { 200: pageOf(assignmentSchema) },
          },
          config: { access: read },
        },
        async (request) => {
          const page = await ipPools.assignments(
            authOf(request).organizationId,
            request.params.id,
            target,
            request.query,
          );
          return { ...page, items: page.items.map((a) => assignmentView(target, a)) };
        },
      );

      app.put(
        `/v1/ip-pools/:id/${plural}/:target_id`,
        {
          schema: {
            tags,
            summary: `Send a ${target}'s mail from this pool (replaces its previous pool)`,
            description:
              target === 'mailbox'
                ? "A mailbox's pool wins over its domain's: mail whose From is the mailbox's address leaves from it."
                : 'Mail of the domain leaves from this pool, unless its mailbox has a pool of its own.',
            params: targetParams,
            response: { 200: assignmentSchema },
          },
          config: { access: write, audit: audited('ip_pool.assign') },
        },
        async (request) => {
          const { id, target_id } = request.params;
          return assignmentView(
            target,
            await assign.call(ipPools, authOf(request).organizationId, id, target_id),
          );
        },
      );

      app.delete(
        `/v1/ip-pools/:id/${plural}/:target_id`,
        {
          schema: {
            tags,
            summary: `Take a ${target} out of this pool (its mail then follows the next rule of precedence)`,
            params: targetParams,
            response: { 204: z.null() },
          },
          config: { access: write, audit: audited('ip_pool.unassign') },
        },
        async (request, reply) => {
          const { id, target_id } = request.params;
          await unassign.call(ipPools, authOf(request).organizationId, id, target_id);
          return reply.status(204).send(null);
        },
      );
    }
  };
}
