// HTTP for mail intelligence: settings, reports, custom categories and re-analysis. The analyses
// themselves are shown by the messages routes (GET /v1/messages/:id `analysis`, and their filters).
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { uuidParam } from '../../core/ids.ts';
import { jobSchema, jobView, startedBy } from '../jobs/routes.ts';
import type { IntelligenceService } from './service.ts';

const tags = ['Intelligence'];
const read = { level: 'org', role: 'member', scope: 'messages:read' } as const;
const report = { level: 'org', role: 'member', scope: 'messages:write' } as const;
const admin = { level: 'org', role: 'admin', scope: 'messages:write' } as const;

const settingsSchema = z.object({
  spam_threshold: z.number().describe('Spam score (0–1) at or above which a message is spam'),
  spam_threshold_default: z.boolean().describe('The installation’s MAILROOM_SPAM_THRESHOLD applies'),
  junk_filing: z.boolean().describe('Spam arriving in INBOX is moved to Junk'),
  quarantine_malware: z.boolean().describe('Messages with malware are taken out of every folder'),
  llm_daily_tokens: z.number().int().describe('Tokens the configured LLM may spend per UTC day'),
  custom_categories: z.array(z.string()).describe('Custom categories trained by example'),
});

const category = z
  .string()
  .trim()
  .min(1)
  .max(64)
  .regex(/^[\p{L}\p{N}][\p{L}\p{N} _-]*$/u, 'letters, digits, spaces, _ and - only');

export function intelligenceRoutes(intelligence: IntelligenceService) {
  return async (app: FastifyInstance) => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    const org = (request: Parameters<typeof authOf>[0]) => authOf(request).organizationId;
    const userOf = (request: Parameters<typeof authOf>[0]) => {
      const { principal } = authOf(request);
      return principal.kind === 'user' ? principal.userId : null;
    };

    r.get(
      '/v1/intelligence/settings',
      {
        schema: {
          tags,
          summary: 'The organisation’s spam threshold, Junk filing and quarantine',
          response: { 200: settingsSchema },
        },
        config: { access: read },
      },
      (request) => intelligence.settings(org(request)),
    );

    r.patch(
      '/v1/intelligence/settings',
      {
        schema: {
          tags,
          summary:
            'Change the spam threshold (null: the installation’s), Junk filing, quarantine or the LLM budget',
          body: z
            .strictObject({
              spam_threshold: z.number().gt(0).lt(1).nullable(),
              junk_filing: z.boolean(),
              quarantine_malware: z.boolean(),
              llm_daily_tokens: z.number().int().min(0).max(1_000_000_000).nullable(),
            })
            .partial(),
          response: { 200: settingsSchema },
        },
        config: { access: admin, audit: { action: 'intelligence.settings_update' } },
      },
      (request) => intelligence.updateSettings(org(request), request.body),
    );

    r.post(
      '/v1/messages/:id/report',
      {
        schema: {
          tags,
          summary:
            'Report a message as spam, not spam or phishing: the spam filter learns it before the next analysis',
          params: z.object({ id: uuidParam }),
          body: z.strictObject({ verdict: z.enum(['spam', 'not_spam', 'phishing']) }),
          response: { 202: z.object({ message_id: z.uuid(), verdict: z.string() }) },
        },
        config: { access: report, audit: { action: 'message.report', targetType: 'message' } },
      },
      async (request, reply) => {
        await intelligence.report(org(request), request.params.id, request.body.verdict, userOf(request));
        return reply.code(202).send({ message_id: request.params.id, verdict: request.body.verdict });
      },
    );

    r.post(
      '/v1/intelligence/categories/:category/examples',
      {
        schema: {
          tags,
          summary:
            'Teach a custom category by example: these messages belong to it (at least three train it)',
          params: z.object({ category }),
          body: z.strictObject({ message_ids: z.array(uuidParam).min(1).max(500) }),
          response: { 200: settingsSchema },
        },
        config: {
          access: admin,
          audit: {
            action: 'intelligence.category_examples_add',
            targetType: 'category',
            targetParam: 'category',
          },
        },
      },
      (request) => intelligence.addExamples(org(request), request.params.category, request.body.message_ids),
    );

    r.delete(
      '/v1/intelligence/categories/:category',
      {
        schema: {
          tags,
          summary: 'Forget a custom category and its examples',
          params: z.object({ category }),
          response: { 200: settingsSchema },
        },
        config: {
          access: admin,
          audit: { action: 'intelligence.category_delete', targetType: 'category', targetParam: 'category' },
        },
      },
      (request) => intelligence.removeCategory(org(request), request.params.category),
    );

    r.post(
      '/v1/intelligence/reanalyze',
      {
        schema: {
          tags,
          summary: 'Analyse again a mailbox, a folder, an external account’s mail or a time range, as a job',
          description:
            'Answers the job (`GET /v1/jobs/:id` shows its progress). A re-analysis updates what is shown and filtered on; it does not move messages.',
          body: z
            .strictObject({
              mailbox_id: uuidParam,
              folder_id: uuidParam,
              account_id: uuidParam,
              since: z.iso.datetime({ offset: true }),
              until: z.iso.datetime({ offset: true }),
            })
            .partial(),
          response: { 202: jobSchema },
        },
        config: { access: admin, audit: { action: 'intelligence.reanalyze', targetType: 'job' } },
      },
      async (request, reply) => {
        const { job } = await intelligence.reanalyze(org(request), request.body, startedBy(request));
        request.auditTarget = { id: job.id };
        return reply.code(202).send(jobView(job));
      },
    );
  };
}
