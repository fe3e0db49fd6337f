import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { type Access, authOf } from '../../core/auth.ts';
import { unauthorized } from '../../core/errors.ts';
import { uuidParam } from '../../core/ids.ts';
import { auditEntryOf } from '../audit/hooks.ts';
import type { AuditInput } from '../audit/service.ts';
import { messageFilterOf, messageFilterQuery } from '../messages/service.ts';
import { type CsvExport, type ExportsService, INBOX_COLUMNS, INBOX_PRESET_NAMES } from './service.ts';

/** How recent a user's TOTP check must be for a credential export (when they have MFA on). */
const CREDENTIALS_MFA_WITHIN_SECONDS = 600;

const bom = z
  .enum(['true', 'false'])
  .optional()
  .describe('true: start with a UTF-8 byte order mark, which Excel needs to read UTF-8 (default false)');

const csvResponse = z.any().describe('text/csv; charset=utf-8, RFC 4180, streamed');

/** The entry the export writes when it ends; the hook writes the refusals. */
function exportAudit(request: FastifyRequest): AuditInput {
  const entry = auditEntryOf(request, 200);
  if (!entry) throw unauthorized();
  request.auditRecorded = true;
  return entry;
}

function sendCsv(reply: FastifyReply, csv: CsvExport) {
  return reply
    .type('text/csv; charset=utf-8')
    .header('content-disposition', `attachment; filename="${csv.filename}"`)
    .header('cache-control', 'no-store')
    .send(csv.stream);
}

export function exportRoutes(exports: ExportsService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['exports'];
    // Admins (owners too); keys need exports:read. Only the credentials export asks for a recent TOTP check.
    const read = { level: 'org', role: 'admin', scope: 'exports:read' } as const satisfies Access;
    const credentials = { ...read, mfaWithinSeconds: CREDENTIALS_MFA_WITHIN_SECONDS } satisfies Access;

    app.get(
      '/v1/exports/inboxes.csv',
      {
        // A HEAD would run the whole export to throw it away.
        exposeHeadRoute: false,
        schema: {
          tags,
          summary: 'Mailboxes with their SMTP and IMAP credentials, as CSV for sending tools',
          description: `One row per mailbox, in address order. Presets: \`generic\` (every column), \`instantly\` and \`smartlead\` (the fields those tools take for an account, under their names). \`columns\` picks and orders the columns for any preset by their generic names: ${INBOX_COLUMNS.join(', ')}. Passwords are there only for mailboxes created with \`export_password: true\`; others export an empty password. A user with MFA on needs a TOTP check within the last ${CREDENTIALS_MFA_WITHIN_SECONDS / 60} minutes (POST /v1/auth/mfa/verify). Every export is in the audit trail (\`export.inboxes\`) with its row count.`,
          querystring: z.strictObject({
            preset: z.enum(INBOX_PRESET_NAMES).default('generic'),
            columns: z
              .string()
              .max(1000)
              .optional()
              .describe('Comma-separated generic column names, in the order wanted; default: the preset’s'),
            domain_id: uuidParam.optional().describe('Only the mailboxes of this domain'),
            status: z
              .enum(['active', 'suspended'])
              .optional()
              .describe('Only mailboxes in this status (suspended ones cannot log in or send)'),
            bom,
          }),
          response: { 200: csvResponse },
        },
        config: { access: credentials, audit: { action: 'export.inboxes' } },
      },
      async (request, reply) => {
        const q = request.query;
        const csv = await exports.inboxes(
          authOf(request).organizationId,
          {
            preset: q.preset,
            columns: q.columns,
            domainId: q.domain_id,
            status: q.status,
            bom: q.bom === 'true',
          },
          exportAudit(request),
        );
        return sendCsv(reply, csv);
      },
    );

    app.get(
      '/v1/exports/domains.csv',
      {
        exposeHeadRoute: false,
        schema: {
          tags,
          summary: 'Domains with their status and DNS checks, as CSV',
          description:
            'One row per domain, in name order: status, whether it is active, and what the last verification found for each record (ownership, MX, SPF, DKIM, DMARC, return path). In the audit trail as `export.domains`.',
          querystring: z.strictObject({ bom }),
          response: { 200: csvResponse },
        },
        config: { access: read, audit: { action: 'export.domains' } },
      },
      async (request, reply) =>
        sendCsv(
          reply,
          exports.domains(
            authOf(request).organizationId,
            { bom: request.query.bom === 'true' },
            exportAudit(request),
          ),
        ),
    );

    app.get(
      '/v1/exports/messages.csv',
      {
        exposeHeadRoute: false,
        schema: {
          tags,
          summary: 'The message log, newest first, as CSV',
          description:
            'The filters of GET /v1/messages; every matching message, streamed (no page size). In the audit trail as `export.messages` with the filter and the row count.',
          querystring: z.strictObject({ ...messageFilterQuery, bom }),
          response: { 200: csvResponse },
        },
        config: { access: read, audit: { action: 'export.messages' } },
      },
      async (request, reply) => {
        const { bom: withBom, ...filter } = request.query;
        const csv = await exports.messages(
          authOf(request).organizationId,
          messageFilterOf(filter),
          { bom: withBom === 'true', filterQuery: filter },
          exportAudit(request),
        );
        return sendCsv(reply, csv);
      },
    );
  };
}
