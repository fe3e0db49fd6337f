import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { uuidParam } from '../../core/ids.ts';
import { contactSchema } from '../domains/routes.ts';
import { inboxFields } from '../inboxes/routes.ts';
import { MAX_PER_DOMAIN } from '../inboxes/service.ts';
import { jobSchema, jobView, startedBy } from '../jobs/routes.ts';
import { type DomainDetail, MAX_DOMAINS, type ProvisioningService, type ProvisionView } from './service.ts';

const domainSchema = z.object({
  name: z.string(),
  step: z
    .string()
    .describe(
      'The step it is in, or ended in: register, domain, zone, nameservers, dns, verify, inboxes, done',
    ),
  state: z.enum(['pending', 'running', 'waiting', 'done', 'stuck', 'failed']),
  domain_id: z.uuid().nullable(),
  error: z.string().nullable().describe('Why it failed, or what is stuck'),
  registration: z
    .object({ order_id: z.string(), domain_id: z.string(), charged_amount: z.string() })
    .nullable(),
  zone: z.object({ name: z.string(), nameservers: z.array(z.string()), created: z.boolean() }).nullable(),
  dns: z
    .object({
      created: z.number(),
      updated: z.number(),
      unchanged: z.number(),
      skipped: z.number().describe('Records there that are not ours, left alone'),
      errors: z.number(),
    })
    .nullable(),
  verification: z
    .object({
      status: z.string(),
      attempts: z.number().int(),
      waiting_since: z.string(),
      next_check_at: z.string().nullable(),
      diagnosis: z
        .array(z.object({ purpose: z.string(), status: z.string(), diagnosis: z.string() }))
        .describe('Each record that is not verified yet, and what to do about it'),
    })
    .nullable(),
  inboxes: z.object({ planned: z.number().int(), created: z.number().int() }).nullable(),
  timings: z.array(
    z.object({ step: z.string(), started_at: z.string(), finished_at: z.string().nullable() }),
  ),
});

const provisionSchema = jobSchema.extend({ domains: z.array(domainSchema) });

function provisionView({ job, domains }: ProvisionView) {
  return {
    ...jobView(job),
    domains: domains.map((d) => {
      const detail = d.detail as DomainDetail;
      return {
        name: d.name,
        step: d.step,
        state: d.state,
        domain_id: d.domainId,
        error: d.error,
        registration: detail.registration ?? null,
        zone: detail.zone ?? null,
        dns: detail.dns ?? null,
        verification: detail.verification ?? null,
        inboxes: detail.inboxes
          ? { planned: detail.inboxes.planned.length, created: detail.inboxes.done }
          : null,
        timings: d.timings,
      };
    }),
  };
}

export function provisioningRoutes(provisioning: ProvisioningService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['provisioning'];

    app.post(
      '/v1/provision',
      {
        schema: {
          tags,
          summary: 'From domain names to working inboxes, in one call (a job)',
          description:
            'Per domain, named steps: register it through the registrar account (with `register`), add it to the organisation (or take the one there), find or create its zone at the DNS provider and point the registration at the zone’s name servers (with `dns_provider_account_id`), publish its records, wait for them to verify (retrying with backoff while DNS propagates; past `verify_timeout_seconds` the domain is left `stuck` with each record’s diagnosis), and generate its inboxes. Follow it at `GET /v1/provision/:id`; cancel it with `DELETE /v1/jobs/:id`. It resumes after a restart from the step each domain was in. Events: `provision.step_completed`, `provision.completed`, `provision.failed`. An `Idempotency-Key` works as for inbox generation.',
          headers: z.object({ 'idempotency-key': z.string().min(1).max(255).optional() }),
          body: z.strictObject({
            domains: z.array(z.string().min(1).max(253)).min(1).max(MAX_DOMAINS),
            register: z
              .strictObject({
                provider_account_id: z.uuid().describe('A registrar account (Namecheap)'),
                years: z.number().int().min(1).max(10).nullish(),
                contact: contactSchema,
              })
              .nullish()
              .describe(
                'Buy each name; without it the names must be the organisation’s already, or registered elsewhere',
              ),
            dns_provider_account_id: z
              .uuid()
              .nullish()
              .describe('A DNS provider account (Cloudflare): zones and records are made there'),
            inboxes: z
              .strictObject({ count_per_domain: z.number().int().min(1).max(MAX_PER_DOMAIN), ...inboxFields })
              .nullish(),
            verify_timeout_seconds: z
              .number()
              .int()
              .min(1)
              .max(30 * 86_400)
              .nullish()
              .describe('How long a domain waits for its DNS (default MAILROOM_DOMAIN_VERIFY_WINDOW)'),
          }),
          response: { 200: jobSchema, 202: jobSchema },
        },
        config: {
          access: { level: 'org', role: 'admin', scope: 'provisioning:write' },
          audit: { action: 'provision.start', targetType: 'job' },
        },
      },
      async (request, reply) => {
        const auth = authOf(request);
        const { job, replayed } = await provisioning.start(auth.organizationId, request.body, {
          idempotencyKey: request.headers['idempotency-key'],
          createdBy: startedBy(request),
        });
        request.auditTarget = { id: job.id };
        reply.header('location', `/v1/provision/${job.id}`);
        if (replayed) reply.header('idempotent-replayed', 'true');
        return reply.status(replayed ? 200 : 202).send(jobView(job));
      },
    );

    app.get(
      '/v1/provision/:id',
      {
        schema: {
          tags,
          summary: 'A provisioning: each domain’s step, its diagnosis when stuck, timings and inboxes',
          params: z.strictObject({ id: uuidParam }),
          response: { 200: provisionSchema },
        },
        config: { access: { level: 'org', role: 'member', scope: 'provisioning:read' } },
      },
      async (request) =>
        provisionView(await provisioning.get(authOf(request).organizationId, request.params.id)),
    );
  };
}
