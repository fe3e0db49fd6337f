import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import type { JobRow, JobViewer, TrackedJobsService } from './service.ts';

/** Item errors shown with a job (the job keeps up to 1,000; `error_count` counts them all). */
const SHOWN_ERRORS = 100;

export const jobSchema = z.object({
  id: z.uuid(),
  kind: z.string().describe('What the job does, e.g. inboxes.generate, provision'),
  state: z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled']),
  done: z.number().int().describe('Items done (created or failed)'),
  total: z.number().int(),
  error_count: z.number().int(),
  errors: z
    .array(z.object({ item: z.string(), message: z.string() }))
    .describe(`Per-item errors, the first ${SHOWN_ERRORS}`),
  result: z.record(z.string(), z.unknown()).nullable().describe('When finished: what it made, with links'),
  failure: z.string().nullable().describe('Why a failed job stopped'),
  cancel_requested: z.boolean(),
  created_at: z.string(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  links: z.object({ self: z.string() }),
});

/** Who started a job, as the job records it: `user:<id>` or `api_key:<id>`. */
export function startedBy(request: FastifyRequest): string {
  const { principal } = authOf(request);
  return principal.kind === 'user' ? `user:${principal.userId}` : `api_key:${principal.keyId}`;
}

export function jobView(row: JobRow) {
  return {
    id: row.id,
    kind: row.kind,
    state: row.state,
    done: row.done,
    total: row.total,
    error_count: row.errorCount,
    errors: row.errors.slice(0, SHOWN_ERRORS),
    result: row.result ?? null,
    failure: row.failure,
    cancel_requested: row.cancelRequested,
    created_at: row.createdAt.toISOString(),
    started_at: row.startedAt?.toISOString() ?? null,
    finished_at: row.finishedAt?.toISOString() ?? null,
    links: { self: `/v1/jobs/${row.id}` },
  };
}

/** Platform administrators see the installation's jobs (backups, restores) filed under their organisation. */
function viewerOf(request: FastifyRequest): JobViewer {
  const { principal } = authOf(request);
  return { platform: principal.kind === 'user' && principal.isSuperadmin };
}

export function jobRoutes(jobs: TrackedJobsService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['jobs'];
    const read = { level: 'org', role: 'member', scope: 'jobs:read' } as const;
    const write = { level: 'org', role: 'admin', scope: 'jobs:write' } as const;
    const idParams = z.strictObject({ id: uuidParam });

    app.get(
      '/v1/jobs',
      {
        schema: {
          tags,
          summary: 'Long work of the organisation, newest first',
          querystring: z.strictObject({ ...pageQuery, kind: z.string().max(100).optional() }),
          response: { 200: pageOf(jobSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const { page, page_size, kind } = request.query;
        const found = await jobs.list(
          authOf(request).organizationId,
          { kind },
          { page, page_size },
          viewerOf(request),
        );
        return { ...found, items: found.items.map(jobView) };
      },
    );

    app.get(
      '/v1/jobs/:id',
      {
        schema: {
          tags,
          summary: 'A job’s progress: state, done of total, per-item errors, result',
          params: idParams,
          response: { 200: jobSchema },
        },
        config: { access: read },
      },
      async (request) =>
        jobView(await jobs.get(authOf(request).organizationId, request.params.id, viewerOf(request))),
    );

    app.delete(
      '/v1/jobs/:id',
      {
        schema: {
          tags,
          summary: 'Cancel a job',
          description:
            'A queued job is cancelled at once; a running one stops after its current step (what it already made stays, and its result says what). 409 when it has finished.',
          params: idParams,
          response: { 202: jobSchema },
        },
        config: { access: write, audit: { action: 'job.cancel', targetType: 'job', targetParam: 'id' } },
      },
      async (request, reply) =>
        reply
          .status(202)
          .send(
            jobView(await jobs.cancel(authOf(request).organizationId, request.params.id, viewerOf(request))),
          ),
    );
  };
}
