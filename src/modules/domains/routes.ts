import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { notFound } from '../../core/errors.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import type { RecordCheck } from './checks.ts';
import { RSA_KEY_SIZES } from './dkim.ts';
import { REQUIRED_PURPOSES, recordView, zoneFile } from './records.ts';
import { type DomainsService, settingsOf } from './service.ts';
import type { DkimKeyRow, DomainRow } from './tables.ts';

const iso = (d: Date | null) => d?.toISOString() ?? null;

const settingsSchema = z.object({
  dmarc_policy: z.enum(['none', 'quarantine', 'reject']).describe('Policy of the recommended DMARC record'),
  dmarc_rua: z.email().nullable().describe('Where DMARC aggregate reports go (rua=), if anywhere'),
  mta_sts_mode: z.enum(['testing', 'enforce']).describe('Mode of the MTA-STS policy Mailroom serves'),
  tls_rpt_email: z.email().nullable().describe('TLS-RPT report address; postmaster@<domain> when null'),
  inbound_dmarc_reject: z
    .enum(['reject', 'quarantine'])
    .describe(
      'Incoming mail failing DMARC under p=reject: refused at SMTP time (reject) or kept in Junk (quarantine)',
    ),
});

const flagsSchema = z.object(
  Object.fromEntries(REQUIRED_PURPOSES.map((p) => [p, z.boolean()])) as Record<
    (typeof REQUIRED_PURPOSES)[number],
    z.ZodBoolean
  >,
);

const domainSchema = z.object({
  id: z.uuid(),
  name: z.string().describe('ASCII (punycode) form'),
  unicode_name: z.string(),
  status: z.enum(['pending', 'verified', 'failed']),
  is_active: z.boolean(),
  verified: flagsSchema.describe('Which required records verified at the last check'),
  catch_all_target: z.string().nullable(),
  settings: settingsSchema,
  dns_provider_account_id: z.uuid().nullable(),
  last_checked_at: z.string().nullable(),
  next_check_at: z.string(),
  verified_at: z.string().nullable(),
  failed_at: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});

const keySchema = z.object({
  id: z.uuid(),
  selector: z.string(),
  algorithm: z.enum(['rsa', 'ed25519']),
  bits: z.number().int().nullable(),
  state: z.enum(['pending', 'active', 'retiring', 'retired']),
  public_key: z.string(),
  created_at: z.string(),
  activated_at: z.string().nullable(),
  retire_after: z.string().nullable(),
  retired_at: z.string().nullable(),
});

const dnsFailure = z.object({ code: z.string(), reason: z.string() }).nullable();
const checkStatus = z.enum(['verified', 'missing', 'mismatch', 'error']);
const checkSchema = z.object({
  purpose: z.string(),
  type: z.enum(['TXT', 'MX', 'CNAME']),
  host: z.string(),
  expected: z.string(),
  required: z.boolean(),
  selector: z.string().nullable(),
  status: z.enum([...checkStatus.options, 'propagating']),
  diagnosis: z.string(),
  found: z.array(z.string()),
  warnings: z.array(z.string()),
  error: dnsFailure,
  resolvers: z.array(
    z.object({ server: z.string(), status: checkStatus, found: z.array(z.string()), error: dnsFailure }),
  ),
});

const detailSchema = domainSchema.extend({
  dkim_keys: z.array(keySchema).describe('Published keys: pending (rotation), active (signing), retiring'),
  dns_checks: z.array(checkSchema).nullable().describe('The last verification, record by record'),
});

const recordSchema = z.object({
  purpose: z.string(),
  type: z.enum(['TXT', 'MX', 'CNAME']),
  host: z.string(),
  name: z.string().describe('Relative to the domain (`@` for the domain itself)'),
  value: z.string(),
  strings: z.array(z.string()).nullable().describe('TXT: the value as 255-byte strings'),
  zone_value: z.string().describe('As written in a zone file (TXT quoted and split)'),
  ttl: z.number().int(),
  priority: z.number().int().nullable(),
  required: z.boolean(),
  selector: z.string().nullable(),
  description: z.string(),
});

function domainView(d: DomainRow) {
  return {
    id: d.id,
    name: d.name,
    unicode_name: d.unicodeName,
    status: d.status,
    is_active: d.isActive,
    verified: {
      ownership: d.ownershipVerified,
      mx: d.mxVerified,
      spf: d.spfVerified,
      dkim: d.dkimVerified,
      dmarc: d.dmarcVerified,
      return_path: d.returnPathVerified,
    },
    catch_all_target: d.catchAllTarget,
    settings: settingsOf(d),
    dns_provider_account_id: d.dnsProviderAccountId,
    last_checked_at: iso(d.lastCheckedAt),
    next_check_at: d.nextCheckAt.toISOString(),
    verified_at: iso(d.verifiedAt),
    failed_at: iso(d.failedAt),
    created_at: d.createdAt.toISOString(),
    updated_at: d.updatedAt.toISOString(),
  };
}

function keyView(k: DkimKeyRow) {
  return {
    id: k.id,
    selector: k.selector,
    algorithm: k.algorithm,
    bits: k.bits,
    state: k.state,
    public_key: k.publicKey,
    created_at: k.createdAt.toISOString(),
    activated_at: iso(k.activatedAt),
    retire_after: iso(k.retireAfter),
    retired_at: iso(k.retiredAt),
  };
}

const detailView = (d: DomainRow, keys: DkimKeyRow[], checks: RecordCheck[] | null = d.dnsChecks) => ({
  ...domainView(d),
  dkim_keys: keys.map(keyView),
  dns_checks: checks,
});

const dkimChoice = z
  .strictObject({
    algorithm: z.enum(['rsa', 'ed25519']).default('rsa'),
    bits: z
      .union(
        RSA_KEY_SIZES.map((n) => z.literal(n)) as unknown as [
          z.ZodLiteral<1024>,
          z.ZodLiteral<2048>,
          z.ZodLiteral<4096>,
        ],
      )
      .default(2048)
      .describe('RSA key size: 1024, 2048 or 4096 (ignored for ed25519)'),
  })
  .describe('The DKIM key to create: RSA 2048 by default');

const domainChanges = {
  is_active: z.boolean().optional(),
  catch_all_target: z
    .email()
    .nullable()
    .optional()
    .describe('Where mail to unknown addresses goes; null for none'),
  settings: settingsSchema.partial().strict().optional(),
  dns_provider_account_id: z.uuid().nullable().optional(),
};

export const contactSchema = z.strictObject({
  first_name: z.string().trim().min(1).max(60),
  last_name: z.string().trim().min(1).max(60),
  organization: z.string().trim().max(100).optional(),
  address1: z.string().trim().min(1).max(200),
  address2: z.string().trim().max(200).optional(),
  city: z.string().trim().min(1).max(60),
  state_province: z.string().trim().min(1).max(60),
  postal_code: z.string().trim().min(1).max(20),
  country: z.string().regex(/^[A-Z]{2}$/, 'an ISO 3166-1 alpha-2 code such as US or GB'),
  phone: z.string().regex(/^\+\d{1,3}\.\d{4,14}$/, 'the form +<country code>.<number>, e.g. +1.6135550123'),
  email: z.email(),
});

const hostName = z
  .string()
  .max(253)
  .regex(/^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}\.?$/i, 'a host name such as ns1.example.net');

export function domainRoutes(domains: DomainsService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['domains'];
    const read = { level: 'org', role: 'member', scope: 'domains:read' } as const;
    const write = { level: 'org', role: 'admin', scope: 'domains:write' } as const;
    const idParams = z.strictObject({ id: uuidParam });
    const audited = (action: string) => ({ action, targetType: 'domain', targetParam: 'id' });

    app.post(
      '/v1/domains',
      {
        schema: {
          tags,
          summary: 'Add a domain (with its first DKIM key); publish its records, then verify',
          body: z.strictObject({
            name: z
              .string()
              .max(300)
              .describe('IDN allowed; stored lower case, punycode, without the trailing dot'),
            ...domainChanges,
            dkim: dkimChoice.optional(),
          }),
          response: { 201: detailSchema },
        },
        config: { access: write, audit: { action: 'domain.create', targetType: 'domain' } },
      },
      async (request, reply) => {
        const domain = await domains.create(authOf(request).organizationId, request.body);
        request.auditTarget = { id: domain.id };
        return reply.status(201).send(detailView(domain, await domains.keys(domain.id)));
      },
    );

    app.get(
      '/v1/domains',
      {
        schema: {
          tags,
          summary: 'Domains, by name',
          querystring: z.strictObject({
            ...pageQuery,
            status: z.enum(['pending', 'verified', 'failed']).optional(),
            name: z.string().max(253).optional().describe('Names containing this text'),
          }),
          response: { 200: pageOf(domainSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const { page, page_size, ...filter } = request.query;
        const found = await domains.list(authOf(request).organizationId, filter, { page, page_size });
        return { ...found, items: found.items.map(domainView) };
      },
    );

    app.get(
      '/v1/domains/:id',
      {
        schema: {
          tags,
          summary: 'One domain, its keys and its last check',
          params: idParams,
          response: { 200: detailSchema },
        },
        config: { access: read },
      },
      async (request) => {
        const domain = await domains.get(authOf(request).organizationId, request.params.id);
        return detailView(domain, await domains.keys(domain.id));
      },
    );

    app.patch(
      '/v1/domains/:id',
      {
        schema: {
          tags,
          summary: 'Change activity, catch-all target, settings or DNS provider',
          params: idParams,
          body: z.strictObject(domainChanges),
          response: { 200: detailSchema },
        },
        config: { access: write, audit: audited('domain.update') },
      },
      async (request) => {
        const domain = await domains.update(authOf(request).organizationId, request.params.id, request.body);
        return detailView(domain, await domains.keys(domain.id));
      },
    );

    app.delete(
      '/v1/domains/:id',
      {
        schema: {
          tags,
          summary: 'Delete a domain and its keys',
          params: idParams,
          response: { 204: z.null() },
        },
        config: { access: write, audit: audited('domain.delete') },
      },
      async (request, reply) => {
        await domains.delete(authOf(request).organizationId, request.params.id);
        return reply.status(204).send(null);
      },
    );

    app.get(
      '/v1/domains/:id/dns-records',
      {
        schema: {
          tags,
          summary: 'The exact DNS records the domain needs',
          description: '`?format=zone` answers a BIND zone-file snippet (text/plain) instead of JSON.',
          params: idParams,
          querystring: z.strictObject({ format: z.enum(['json', 'zone']).default('json') }),
          response: {
            200: z.union([z.object({ domain: z.string(), records: z.array(recordSchema) }), z.string()]),
          },
        },
        config: { access: read },
      },
      async (request, reply) => {
        const { domain, records } = await domains.records(authOf(request).organizationId, request.params.id);
        if (request.query.format === 'zone') {
          return reply.type('text/plain; charset=utf-8').send(zoneFile(records, domain.name));
        }
        return { domain: domain.name, records: records.map((r) => recordView(r, domain.name)) };
      },
    );

    app.post(
      '/v1/domains/:id/verify',
      {
        schema: {
          tags,
          summary: 'Check every record against live DNS now, resolver by resolver',
          description:
            'Also claims the domain from another organisation when this organisation’s verification record is published.',
          params: idParams,
          response: { 200: detailSchema },
        },
        config: { access: write, audit: audited('domain.verify') },
      },
      async (request) => {
        const { domain, records } = await domains.verify(authOf(request).organizationId, request.params.id);
        return detailView(domain, await domains.keys(domain.id), records);
      },
    );

    app.post(
      '/v1/domains/:id/dkim/rotate',
      {
        schema: {
          tags,
          summary: 'Create the next DKIM key, published alongside the current one',
          description:
            'Signing switches to the new key once its record verifies; the old key stays published for MAILROOM_DKIM_ROTATION_GRACE, then retires.',
          params: idParams,
          body: dkimChoice.nullish(),
          response: { 201: keySchema },
        },
        config: { access: write, audit: audited('domain.dkim_rotate') },
      },
      async (request, reply) => {
        const key = await domains.rotateDkim(
          authOf(request).organizationId,
          request.params.id,
          request.body ?? {},
        );
        return reply.status(201).send(keyView(key));
      },
    );

    app.post(
      '/v1/domains/:id/dns/apply',
      {
        schema: {
          tags,
          summary: "Publish every record through the domain's DNS provider, then verify",
          description:
            'Idempotent: records already right are left alone; records Mailroom did not create are never changed (an existing SPF record is reported with the merged value to publish).',
          params: idParams,
          body: z.strictObject({ provider_account_id: z.uuid().optional() }).nullish(),
          response: {
            200: z.object({
              provider_account_id: z.uuid(),
              zone: z.string(),
              results: z.array(
                z.object({
                  purpose: z.string(),
                  type: z.string(),
                  host: z.string(),
                  action: z.enum(['created', 'updated', 'unchanged', 'deleted', 'skipped', 'error']),
                  detail: z.string(),
                }),
              ),
              domain: detailSchema,
            }),
          },
        },
        config: { access: write, audit: audited('domain.dns_apply') },
      },
      async (request) => {
        const { verification, ...applied } = await domains.applyDns(
          authOf(request).organizationId,
          request.params.id,
          request.body?.provider_account_id,
        );
        const keys = await domains.keys(request.params.id);
        return { ...applied, domain: detailView(verification.domain, keys, verification.records) };
      },
    );

    app.get(
      '/.well-known/mta-sts.txt',
      {
        schema: {
          tags,
          summary: 'The MTA-STS policy (RFC 8461) of the domain named by the Host header (mta-sts.<domain>)',
          description:
            'Senders fetch it over HTTPS: terminate TLS for mta-sts.<domain> in front of Mailroom.',
          response: { 200: z.string() },
        },
        config: { access: { level: 'public' } },
      },
      async (request, reply) => {
        const policy = await domains.mtaStsPolicy(request.headers.host ?? '');
        if (!policy) throw notFound('MTA-STS policy');
        return reply.type('text/plain; charset=utf-8').header('cache-control', 'max-age=3600').send(policy);
      },
    );

    app.post(
      '/v1/domains/search',
      {
        schema: {
          tags,
          summary: 'Which names are available to register, and at what price',
          body: z
            .strictObject({
              provider_account_id: z.uuid().describe('A registrar account (Namecheap)'),
              names: z.array(z.string().max(253)).max(50).optional(),
              query: z
                .string()
                .regex(/^[a-z0-9-]{1,63}$/i, 'a single label such as "acme"')
                .optional()
                .describe('Tried under each of `tlds`'),
              tlds: z
                .array(z.string().regex(/^[a-z0-9.-]{2,63}$/i))
                .max(20)
                .default(['com', 'net', 'org', 'io']),
            })
            .refine((b) => b.names?.length || b.query, { error: 'give names or a query' }),
          response: {
            200: z.object({
              results: z.array(
                z.object({
                  name: z.string(),
                  available: z.boolean(),
                  premium: z.boolean(),
                  price: z.string().nullable(),
                  currency: z.string().nullable(),
                  error: z.string().nullable(),
                }),
              ),
            }),
          },
        },
        config: { access: read, audit: { action: 'domain.search' } },
      },
      async (request) => {
        const { provider_account_id, names = [], query, tlds } = request.body;
        const candidates = [...names, ...(query ? tlds.map((tld) => `${query}.${tld}`) : [])];
        return {
          results: await domains.search(authOf(request).organizationId, provider_account_id, candidates),
        };
      },
    );

    app.post(
      '/v1/domains/purchase',
      {
        schema: {
          tags,
          summary:
            'Register a name through a registrar account (charges that account), then add it as a domain',
          body: z.strictObject({
            name: z.string().max(253),
            provider_account_id: z.uuid().describe('A registrar account (Namecheap)'),
            years: z.number().int().min(1).max(10).default(1),
            contact: contactSchema.describe('Registrant, also used as the admin, tech and billing contact'),
            nameservers: z.array(hostName).min(2).max(12).optional(),
            dns_provider_account_id: z.uuid().optional(),
          }),
          response: {
            201: z.object({
              registration: z.object({
                name: z.string(),
                registered: z.boolean(),
                domain_id: z.string(),
                order_id: z.string(),
                transaction_id: z.string(),
                charged_amount: z.string(),
              }),
              domain: detailSchema,
            }),
          },
        },
        config: { access: write, audit: { action: 'domain.purchase', targetType: 'domain' } },
      },
      async (request, reply) => {
        const { registration, domain } = await domains.purchase(authOf(request).organizationId, request.body);
        request.auditTarget = { id: domain.id };
        return reply
          .status(201)
          .send({ registration, domain: detailView(domain, await domains.keys(domain.id)) });
      },
    );

    app.put(
      '/v1/domains/:id/nameservers',
      {
        schema: {
          tags,
          summary: 'Point the domain at these name servers, through its registrar account',
          params: idParams,
          body: z.strictObject({
            provider_account_id: z.uuid().describe('The registrar account that holds the name'),
            nameservers: z.array(hostName).min(2).max(12),
          }),
          response: { 204: z.null() },
        },
        config: { access: write, audit: audited('domain.nameservers') },
      },
      async (request, reply) => {
        const { provider_account_id, nameservers } = request.body;
        await domains.setNameservers(
          authOf(request).organizationId,
          request.params.id,
          provider_account_id,
          nameservers.map((n) => n.toLowerCase().replace(/\.$/, '')),
        );
        return reply.status(204).send(null);
      },
    );
  };
}
