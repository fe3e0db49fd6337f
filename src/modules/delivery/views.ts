// How deliveries look in the API: the queue's answers, and a message's recipients in GET /v1/messages/:id.
import { z } from 'zod';
import type { OutboundService } from './service.ts';
import type { DeliveryAttemptRow, DeliveryRow } from './tables.ts';

export const holdReason = z
  .enum(['suppressed', 'mailbox_daily_limit', 'organization_hourly_limit', 'sender_paused'])
  .describe('sender_paused: the sending domain or mailbox is paused (health); released when it is resumed');

export const deliveryView = z.object({
  id: z.uuid(),
  status: z.enum(['queued', 'held', 'sending', 'delivered', 'bounced', 'failed', 'cancelled']),
  hold_reason: holdReason.nullable(),
  attempts: z.number().int(),
  next_attempt_at: z.string().nullable(),
  last_code: z.number().int().nullable(),
  last_response: z.string().nullable(),
  finished_at: z.string().nullable(),
});

export function changedView(d: DeliveryRow) {
  return {
    id: d.id,
    status: d.status,
    hold_reason: d.holdReason,
    attempts: d.attempts,
    next_attempt_at: d.status === 'queued' ? d.nextAttemptAt.toISOString() : null,
    last_code: d.lastCode,
    last_response: d.lastResponse,
    finished_at: d.finishedAt?.toISOString() ?? null,
  };
}

/** A recipient of an outbound message with its attempts and bounce reports (GET /v1/messages/:id). */
export const recipientSchema = deliveryView.extend({
  address: z.string(),
  attempts_detail: z.array(
    z.object({
      attempted_at: z.string(),
      duration_ms: z.number().int(),
      outcome: z.enum(['delivered', 'deferred', 'bounced']),
      mx: z.string().nullable(),
      ip: z.string().nullable(),
      source_ip: z
        .string()
        .nullable()
        .describe('The sending IP the attempt left from (MAILROOM_OUTBOUND_IPS); null: the system chose'),
      port: z.number().int().nullable(),
      tls: z.object({ version: z.string(), cipher: z.string(), authorized: z.boolean() }).nullable(),
      mta_sts: z.string().nullable(),
      code: z.number().int().nullable(),
      enhanced_code: z.string().nullable(),
      response: z.string(),
    }),
  ),
  bounces: z.array(
    z.object({
      kind: z.enum(['dsn', 'heuristic']),
      permanent: z.boolean(),
      status: z.string().nullable(),
      action: z.string().nullable(),
      diagnostic: z.string().nullable(),
      remote_mta: z.string().nullable(),
      report_message_id: z.uuid().nullable(),
      received_at: z.string(),
    }),
  ),
});

export function recipientView(r: Awaited<ReturnType<OutboundService['recipientsOf']>>[number]) {
  return {
    ...changedView(r.delivery),
    address: r.delivery.recipient,
    attempts_detail: r.attempts.map(attemptView),
    bounces: r.bounces.map((b) => ({
      kind: b.kind,
      permanent: b.permanent,
      status: b.status,
      action: b.action,
      diagnostic: b.diagnostic,
      remote_mta: b.remoteMta,
      report_message_id: b.reportMessageId,
      received_at: b.createdAt.toISOString(),
    })),
  };
}

function attemptView(a: DeliveryAttemptRow) {
  return {
    attempted_at: a.attemptedAt.toISOString(),
    duration_ms: a.durationMs,
    outcome: a.outcome,
    mx: a.mxHost,
    ip: a.ip,
    source_ip: a.sourceIp,
    port: a.port,
    tls: a.tls,
    mta_sts: a.mtaSts,
    code: a.code,
    enhanced_code: a.enhancedCode,
    response: a.response,
  };
}
