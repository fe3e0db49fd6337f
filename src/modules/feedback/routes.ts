import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import type { FeedbackService } from './service.ts';
import type { ComplaintRates, RateCount } from './tables.ts';
import type { ComplaintRow } from './tables.ts';

const iso = (d: Date | null) => d?.toISOString() ?? null;
const instant = z.union([z.iso.datetime({ offset: true }), z.iso.date()]);

const complaintSchema = z.object({
  id: z.uuid(),
  matched: z
    .boolean()
    .describe('It names a message this organisation sent and a recipient that message was delivered to'),
  match_method: z
    .enum(['verp', 'message_id'])
    .nullable()
    .describe('How the message was found: its VERP return address, or its Message-ID'),
  message_id: z.uuid().nullable().describe('The outbound message complained about'),
  delivery_id: z.uuid().nullable(),
  recipient: z
    .string()
    .nullable()
    .describe('The complaining address (lower case); when unmatched, as the report named it, unverified'),
  domain: z
    .string()
    .describe('The hosted domain concerned: the sending domain, else where the report arrived'),
  domain_id: z.uuid().nullable(),
  sender: z.string().nullable().describe('The sending mailbox'),
  feedback_type: z
    .string()
    .nullable()
    .describe('Feedback-Type (abuse, fraud, virus, not-spam, other, ...); null when the report gave none'),
  suppressed: z.boolean().describe('The recipient is on the suppression list because of this report'),
  received_via: z.enum(['verp', 'feedback_address']),
  report_message_id: z.uuid().nullable().describe('The received report, in /v1/messages'),
  user_agent: z.string().nullable(),
  reporter: z.string().nullable().describe("The report's From address"),
  source_ip: z.string().nullable(),
  original_mail_from: z.string().nullable(),
  original_rcpt_to: z.array(z.string()),
  original_message_id: z.string().nullable(),
  reported_domain: z.string().nullable(),
  arrival_date: z.string().nullable(),
  detail: z.string().nullable().describe('How it matched, or why it did not'),
  created_at: z.string(),
});

function complaintView(c: ComplaintRow) {
  return {
    id: c.id,
    matched: c.matched,
    match_method: c.matchMethod,
    message_id: c.messageId,
    delivery_id: c.deliveryId,
    recipient: c.recipient,
    domain: c.domain,
    domain_id: c.domainId,
    sender: c.sender,
    feedback_type: c.feedbackType,
    suppressed: c.suppressed,
    received_via: c.receivedVia,
    report_message_id: c.reportMessageId,
    user_agent: c.userAgent,
    reporter: c.reporter,
    source_ip: c.sourceIp,
    original_mail_from: c.originalMailFrom,
    original_rcpt_to: c.originalRcptTo,
    original_message_id: c.originalMessageId,
    reported_domain: c.reportedDomain,
    arrival_date: iso(c.arrivalDate),
    detail: c.detail,
    created_at: c.createdAt.toISOString(),
  };
}

const rateFields = {
  complaints: z
    .number()
    .int()
    .describe('Matched complaints of a complaining type (abuse, fraud, virus or none)'),
  delivered: z.number().int().describe('Recipients delivered to, of mail queued in the window'),
  rate: z.number().nullable().describe('complaints / delivered; null when nothing was delivered'),
};
const ratesSchema = z.object({
  since: z.string(),
  until: z.string(),
  organization: z.object(rateFields),
  domains: z.array(
    z.object({ domain_id: z.uuid().nullable(), domain: z.string().nullable(), ...rateFields }),
  ),
  mailboxes: z.array(z.object({ address: z.string(), domain: z.string().nullable(), ...rateFields })),
});

const rateView = (r: RateCount) => ({ complaints: r.complaints, delivered: r.delivered, rate: r.rate });

function ratesView(r: ComplaintRates) {
  return {
    since: r.since.toISOString(),
    until: r.until.toISOString(),
    organization: rateView(r.organization),
    domains: r.domains.map((d) => ({ domain_id: d.domainId, domain: d.domain, ...rateView(d) })),
    mailboxes: r.mailboxes.map((m) => ({ address: m.address, domain: m.domain, ...rateView(m) })),
  };
}

export function feedbackRoutes(feedback: FeedbackService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['complaints'];
    const read = { level: 'org', role: 'member', scope: 'complaints:read' } as const;

    app.get(
      '/v1/complaints',
      {
        schema: {
          tags,
          summary: 'Feedback-loop complaints (ARF reports), newest first',
          description:
            'Every report that reached a VERP return path or a feedback address (`fbl@<domain>` by default). Only matched reports of a complaining type suppress the recipient.',
          querystring: z.strictObject({
            ...pageQuery,
            recipient: z.string().max(320).optional().describe('The complaining address, exactly'),
            domain: z.string().max(253).optional().describe('The hosted domain concerned'),
            since: instant.optional().describe('Recorded at or after this time (or date)'),
            matched: z.stringbool().optional().describe('Only matched (true) or unmatched (false) reports'),
          }),
          response: { 200: pageOf(complaintSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const { page, page_size, recipient, domain, since, matched } = request.query;
        const found = await feedback.list(
          authOf(request).organizationId,
          { recipient, domain, since: since ? new Date(since) : undefined, matched },
          { page, page_size },
        );
        return { ...found, items: found.items.map(complaintView) };
      },
    );

    app.get(
      '/v1/complaints/rates',
      {
        schema: {
          tags,
          summary: 'Complaints and delivered recipients over a window, per sending domain and mailbox',
          querystring: z.strictObject({
            since: instant.describe('Start of the window (a time, or a date: its midnight UTC)'),
            until: instant.optional().describe('End of the window, exclusive; now when absent'),
          }),
          response: { 200: ratesSchema },
        },
        config: { access: read },
      },
      async (request) => {
        const { since, until } = request.query;
        const rates = await feedback.rates(authOf(request).organizationId, {
          since: new Date(since),
          until: until ? new Date(until) : undefined,
        });
        return ratesView(rates);
      },
    );

    app.get(
      '/v1/complaints/:id',
      {
        schema: {
          tags,
          summary: 'One complaint: what the report said, and how it matched',
          params: z.strictObject({ id: uuidParam }),
          response: { 200: complaintSchema },
        },
        config: { access: read },
      },
      async (request) => complaintView(await feedback.get(authOf(request).organizationId, request.params.id)),
    );
  };
}
