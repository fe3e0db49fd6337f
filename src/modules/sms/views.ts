// The public shape of a message (the API and the sms service's callers), and the events built from
// message rows (the dispatcher, receipts and the API write them, each in bulk).
import { type EventInput, eventOf } from '../events/service.ts';
import { smsCancelled, smsDelivered, smsFailed, smsQueued, smsSent } from './events.ts';
import type { SmsMessageRow, SmsStatus } from './tables.ts';

export interface SmsMessageView {
  id: string;
  kind: 'standard' | 'help';
  to: string;
  sender: string | null;
  body: string;
  encoding: 'gsm7' | 'ucs2';
  characters: number;
  parts: number;
  status: SmsStatus;
  tags: string[];
  route_id: string | null;
  provider_account_id: string;
  failover_account_id: string | null;
  on_failover: boolean;
  campaign_id: string | null;
  campaign_recipient_id: string | null;
  send_at: string | null;
  attempts: number;
  next_attempt_at: string | null;
  provider: string | null;
  provider_id: string | null;
  error_code: string | null;
  error_message: string | null;
  price: { amount: string; currency: string } | null;
  created_at: string;
  updated_at: string;
  sent_at: string | null;
  delivered_at: string | null;
  failed_at: string | null;
}

const iso = (d: Date | null) => d?.toISOString() ?? null;
const WAITING: SmsStatus[] = ['queued', 'scheduled', 'sending'];

export function messageView(m: SmsMessageRow): SmsMessageView {
  return {
    id: m.id,
    kind: m.kind,
    to: m.toNumber,
    sender: m.sender,
    body: m.body,
    encoding: m.encoding,
    characters: m.characters,
    parts: m.parts,
    status: m.status,
    tags: m.tags,
    route_id: m.routeId,
    provider_account_id: m.providerAccountId,
    failover_account_id: m.failoverAccountId,
    on_failover: m.onFailover,
    campaign_id: m.campaignId,
    campaign_recipient_id: m.campaignRecipientId,
    send_at: iso(m.sendAt),
    attempts: m.attempts,
    next_attempt_at: WAITING.includes(m.status) ? iso(m.nextAttemptAt) : null,
    provider: m.provider,
    provider_id: m.providerId,
    error_code: m.errorCode,
    error_message: m.errorMessage,
    price: priceOf(m),
    created_at: m.createdAt.toISOString(),
    updated_at: m.updatedAt.toISOString(),
    sent_at: iso(m.sentAt),
    delivered_at: iso(m.deliveredAt),
    failed_at: iso(m.failedAt),
  };
}

export function priceOf(m: Pick<SmsMessageRow, 'priceAmount' | 'priceCurrency'>) {
  return m.priceAmount !== null && m.priceCurrency
    ? { amount: m.priceAmount, currency: m.priceCurrency }
    : null;
}

/** What every outbound event says about its message. */
function base(m: SmsMessageRow) {
  return {
    message_id: m.id,
    to: m.toNumber,
    sender: m.sender,
    provider_account_id: m.providerAccountId,
    parts: m.parts,
    tags: m.tags,
    kind: m.kind,
    ...(m.campaignId ? { campaign_id: m.campaignId } : {}),
    ...(m.campaignRecipientId ? { campaign_recipient_id: m.campaignRecipientId } : {}),
  };
}

export function queuedEvent(m: SmsMessageRow): EventInput {
  return eventOf(smsQueued, m.organizationId, {
    ...base(m),
    status: m.status === 'scheduled' ? 'scheduled' : 'queued',
    encoding: m.encoding,
    send_at: iso(m.sendAt),
  });
}

/** The event for a message that reached `status` (none for statuses that are no news). */
export function statusEvent(m: SmsMessageRow, status: SmsStatus): EventInput | null {
  switch (status) {
    case 'sent':
      return eventOf(smsSent, m.organizationId, {
        ...base(m),
        provider: m.provider ?? '',
        provider_id: m.providerId ?? '',
        price: priceOf(m),
      });
    case 'delivered':
      return eventOf(smsDelivered, m.organizationId, {
        ...base(m),
        provider: m.provider ?? '',
        provider_id: m.providerId ?? '',
        price: priceOf(m),
      });
    case 'failed':
    case 'undelivered':
      return eventOf(smsFailed, m.organizationId, {
        ...base(m),
        status,
        provider: m.provider,
        provider_id: m.providerId,
        error_code: m.errorCode,
        error: m.errorMessage,
      });
    default:
      return null;
  }
}

export function cancelledEvent(m: SmsMessageRow, reason: 'cancelled' | 'opted_out'): EventInput {
  return eventOf(smsCancelled, m.organizationId, { ...base(m), reason });
}
