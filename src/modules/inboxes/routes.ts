import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { jobSchema, jobView, startedBy } from '../jobs/routes.ts';
import { passwordPolicySchema } from '../mailboxes/service.ts';
import { MAX_PER_DOMAIN, PATTERNS_DESCRIPTION, type InboxesService } from './service.ts';

const domainCount = z
  .strictObject({
    domain_id: z.uuid().nullish(),
    domain: z.string().max(253).nullish().describe('The domain’s name, instead of its id'),
    count: z.number().int().min(1).max(MAX_PER_DOMAIN),
  })
  .refine((d) => Boolean(d.domain_id) !== Boolean(d.domain), 'give domain_id or domain');

/** What a request says about the inboxes to make (shared with provisioning). */
export const inboxFields = {
  pattern: z.string().max(60).nullish().describe('Default first.last'),
  locale: z
    .string()
    .max(20)
    .nullish()
    .describe('A @faker-js/faker locale: en (default), en_GB, de, fr, es, …'),
  names: z
    .strictObject({
      first: z.array(z.string().min(1).max(50)).min(1).max(10_000),
      last: z.array(z.string().min(1).max(50)).min(1).max(10_000),
    })
    .nullish()
    .describe('Draw names from these lists instead of the locale'),
  password_policy: passwordPolicySchema.nullish(),
  export_passwords: z.boolean().nullish().describe('Keep passwords for credential exports (default true)'),
  quota_bytes: z.number().int().min(1_048_576).max(Number.MAX_SAFE_INTEGER).nullish(),
  daily_send_limit: z.number().int().min(1).max(10_000_000).nullish(),
};

export function inboxRoutes(inboxes: InboxesService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();

    app.post(
      '/v1/inboxes/generate',
      {
        schema: {
          tags: ['inboxes'],
          summary: 'Generate many working mailboxes on one or more domains (a job)',
          description: `Plans every inbox at once — realistic names from the locale (or \`names\`), addresses by \`pattern\`, none colliding with each other, existing mailboxes or aliases, or reserved local parts — and creates them in a job: follow it at \`GET /v1/jobs/:id\` (also the \`Location\` header), cancel it with \`DELETE /v1/jobs/:id\`. Each mailbox gets a generated password under \`password_policy\`, kept for credential exports unless \`export_passwords\` is false, and a \`mailbox.created\` event. With an \`Idempotency-Key\`, the same request again answers the first job (200, \`Idempotent-Replayed: true\`) and creates nothing; the key with another request is a 422. ${PATTERNS_DESCRIPTION}`,
          headers: z.object({ 'idempotency-key': z.string().min(1).max(255).optional() }),
          body: z.strictObject({
            domains: z.array(domainCount).min(1).max(100),
            ...inboxFields,
          }),
          response: { 200: jobSchema, 202: jobSchema },
        },
        config: {
          access: { level: 'org', role: 'admin', scope: 'inboxes:write' },
          audit: { action: 'inboxes.generate', targetType: 'job' },
        },
      },
      async (request, reply) => {
        const auth = authOf(request);
        const { job, replayed } = await inboxes.generate(auth.organizationId, request.body, {
          idempotencyKey: request.headers['idempotency-key'],
          createdBy: startedBy(request),
        });
        request.auditTarget = { id: job.id };
        reply.header('location', `/v1/jobs/${job.id}`);
        if (replayed) reply.header('idempotent-replayed', 'true');
        return reply.status(replayed ? 200 : 202).send(jobView(job));
      },
    );
  };
}
