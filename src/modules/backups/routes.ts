import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ORGANIZATION_HEADER, userOf } from '../../core/auth.ts';
import { AppError } from '../../core/errors.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import { jobSchema, jobView } from '../jobs/routes.ts';
import type { JobRow } from '../jobs/service.ts';
import type { ArchiveRow, BackupsService } from './service.ts';

const ARCHIVE_TYPES = ['application/zstd', 'application/gzip', 'application/octet-stream'];

const backupSchema = z.object({
  id: z.uuid(),
  origin: z.enum(['backup', 'upload']).describe('Made here by a backup, or uploaded for a restore'),
  state: z.enum(['writing', 'complete', 'failed']),
  organization: z.object({ id: z.uuid(), name: z.string() }).describe('The organisation the archive holds'),
  size: z.number().int().describe('Bytes of the compressed archive'),
  sha256: z.string().nullable(),
  rows: z.number().int().nullable().describe('Rows in the archive, once complete'),
  binary_bytes: z.number().int().nullable().describe('Bytes of raw messages (and other binary values)'),
  tables: z
    .array(z.object({ name: z.string(), rows: z.number().int() }))
    .describe('Every table in the archive with its rows'),
  failure: z.string().nullable(),
  created_at: z.string(),
  completed_at: z.string().nullable(),
  job: jobSchema.nullable().describe('The job that writes it (backups made here)'),
  links: z.object({ self: z.string(), download: z.string() }),
});

function backupView(archive: ArchiveRow, job: JobRow | null) {
  return {
    id: archive.id,
    origin: archive.origin,
    state: archive.state,
    organization: { id: archive.sourceOrganizationId, name: archive.sourceOrganizationName },
    size: archive.size,
    sha256: archive.sha256,
    rows: archive.summary?.rows ?? null,
    binary_bytes: archive.summary?.binary_bytes ?? null,
    tables: (archive.header?.tables ?? []).map((t) => ({ name: t.name, rows: t.rows })),
    failure: archive.failure,
    created_at: archive.createdAt.toISOString(),
    completed_at: archive.completedAt?.toISOString() ?? null,
    job: job ? jobView(job) : null,
    links: { self: `/v1/admin/backups/${archive.id}`, download: `/v1/admin/backups/${archive.id}/download` },
  };
}

/** The organisation the administrator's job is filed under (X-Organization-Id, or their only one). */
function homeOf(request: FastifyRequest, backups: BackupsService): Promise<string> {
  const named = request.headers[ORGANIZATION_HEADER];
  return backups.homeOrganization(userOf(request).userId, typeof named === 'string' ? named : undefined);
}

export function backupRoutes(backups: BackupsService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    // Uploads arrive as they are: the handler streams them to storage (their own size limit).
    app.addContentTypeParser(ARCHIVE_TYPES, (_request, payload, done) => done(null, payload));
    const tags = ['backups'];
    const access = { level: 'superadmin' } as const;
    const idParams = z.strictObject({ id: uuidParam });
    const description =
      'Platform administrators only (others get 404, API keys 403). The job is filed under the administrator’s organisation: the one named by X-Organization-Id, else their only one; watch it at GET /v1/jobs/:id.';

    app.post(
      '/v1/admin/backups',
      {
        schema: {
          tags,
          summary: 'Back up an organisation: every module’s rows and its raw messages, as one archive',
          description: `Starts a job that writes the archive from one snapshot of the database; download it when complete. ${description} See docs/backups.md for the format.`,
          body: z.strictObject({ organization_id: uuidParam.describe('The organisation to back up') }),
          response: { 202: backupSchema },
        },
        config: { access, audit: { action: 'backup.create', targetType: 'backup' } },
      },
      async (request, reply) => {
        const user = userOf(request);
        const home = await homeOf(request, backups);
        const { archive, job } = await backups.startBackup(request.body.organization_id, home, user);
        request.auditTarget = { id: archive.id };
        return reply.status(202).send(backupView(archive, job));
      },
    );

    app.get(
      '/v1/admin/backups',
      {
        schema: {
          tags,
          summary: 'Archives kept by the installation, newest first',
          description: 'Platform administrators only.',
          querystring: z.strictObject({
            ...pageQuery,
            organization_id: uuidParam.optional().describe('Only archives of this organisation'),
          }),
          response: { 200: pageOf(backupSchema) },
        },
        config: { access },
      },
      async (request) => {
        const { page, page_size, organization_id } = request.query;
        const found = await backups.list({ organizationId: organization_id }, { page, page_size });
        return { ...found, items: found.items.map((a) => backupView(a, null)) };
      },
    );

    app.get(
      '/v1/admin/backups/:id',
      {
        schema: {
          tags,
          summary: 'An archive: its state, size, tables and the job writing it',
          description: 'Platform administrators only.',
          params: idParams,
          response: { 200: backupSchema },
        },
        config: { access },
      },
      async (request) => {
        const archive = await backups.get(request.params.id);
        return backupView(archive, await backups.jobOf(archive));
      },
    );

    app.get(
      '/v1/admin/backups/:id/download',
      {
        exposeHeadRoute: false,
        schema: {
          tags,
          summary: 'The archive’s bytes (application/zstd), streamed',
          description:
            'Platform administrators only; 409 until the archive is complete. The archive holds secrets sealed under this installation’s key, never in clear. In the audit trail as `backup.download`.',
          params: idParams,
          response: { 200: z.any().describe('application/zstd: the archive (docs/backups.md)') },
        },
        config: { access, audit: { action: 'backup.download', targetType: 'backup' } },
      },
      async (request, reply) => {
        const { archive, stream } = await backups.download(request.params.id);
        request.auditTarget = { id: archive.id };
        const { Readable } = await import('node:stream');
        const date = archive.createdAt.toISOString().slice(0, 10);
        return reply
          .type('application/zstd')
          .header('content-length', String(archive.size))
          .header(
            'content-disposition',
            `attachment; filename="mailroom-backup-${archive.id}-${date}.mrbackup.zst"`,
          )
          .header('cache-control', 'no-store')
          .send(Readable.from(stream) as Readable);
      },
    );

    app.delete(
      '/v1/admin/backups/:id',
      {
        schema: {
          tags,
          summary: 'Delete an archive',
          description: 'Platform administrators only; 409 while a backup is still being written.',
          params: idParams,
          response: { 204: z.null() },
        },
        config: { access, audit: { action: 'backup.delete', targetType: 'backup' } },
      },
      async (request, reply) => {
        await backups.delete(request.params.id);
        return reply.status(204).send(null);
      },
    );

    app.post(
      '/v1/admin/backups/uploads',
      {
        schema: {
          tags,
          summary: 'Upload an archive (from this or another installation) to restore it',
          description:
            'The body is the archive as downloaded (Content-Type application/zstd, application/gzip or application/octet-stream). It is read through as it is stored: every checksum is checked, and a damaged or foreign file is a 422. Past MAILROOM_BACKUP_UPLOAD_LIMIT bytes: 413. Platform administrators only.',
          response: { 201: backupSchema },
        },
        config: { access, audit: { action: 'backup.upload', targetType: 'backup' } },
      },
      async (request, reply) => {
        const body = request.body as Readable | undefined;
        if (!body || typeof (body as Readable).pipe !== 'function')
          throw new AppError(
            415,
            'unsupported_media_type',
            `Send the archive itself as the body, with Content-Type ${ARCHIVE_TYPES.join(', ')}`,
          );
        const archive = await backups.upload(body, userOf(request));
        request.auditTarget = { id: archive.id };
        return reply.status(201).send(backupView(archive, null));
      },
    );

    app.post(
      '/v1/admin/restores',
      {
        schema: {
          tags,
          summary: 'Restore an archive into this installation',
          description: `Starts a job that restores the archive in one transaction: nothing of it stays when it fails. \`keep_ids\`: as the same organisation with every id (it must not be here already; an empty installation, or after it was deleted). \`new_organization\`: a copy with every id made anew, beside whatever is here. When the archive's secrets were sealed under another installation's key, give that MAILROOM_SECRET_KEY as \`source_key\` (kept sealed under this installation's key while the job runs); each secret is sealed again under this installation's key. The header is checked before the job starts: an archive that does not fit (newer migrations, a key that does not open it, the organisation already here) is a 4xx. ${description}`,
          body: z.strictObject({
            backup_id: uuidParam.describe('A complete archive (GET /v1/admin/backups)'),
            mode: z.enum(['keep_ids', 'new_organization']),
            name: z
              .string()
              .trim()
              .min(1)
              .max(200)
              .optional()
              .describe('The organisation’s name; default the archive’s'),
            slug: z
              .string()
              .min(2)
              .max(63)
              .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'lower-case letters, digits and inner dashes')
              .optional()
              .describe('The organisation’s slug; default the archive’s, with a suffix when taken'),
            source_key: z
              .string()
              .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hexadecimal characters')
              .optional()
              .describe('The source installation’s MAILROOM_SECRET_KEY, when it differs from this one’s'),
          }),
          response: { 202: jobSchema },
        },
        config: { access, audit: { action: 'backup.restore', targetType: 'backup' } },
      },
      async (request, reply) => {
        const user = userOf(request);
        const home = await homeOf(request, backups);
        const { backup_id, mode, name, slug, source_key } = request.body;
        request.auditTarget = { id: backup_id };
        const job = await backups.startRestore(
          backup_id,
          { mode, name, slug, sourceKey: source_key },
          home,
          user,
        );
        return reply.status(202).send(jobView(job));
      },
    );
  };
}
