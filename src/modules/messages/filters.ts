// The message log's filters as the API takes them in a query string. `GET /v1/messages` and the message
// export (`GET /v1/exports/messages.csv`) both read them from here, so the two select the same messages.
import { z } from 'zod';
import { uuidParam } from '../../core/ids.ts';
import type { AnalysisFilter, MessageFilter } from './store.ts';
import { MESSAGE_STATUSES } from './tables.ts';

const DAY_MS = 86_400_000;

export const statusSchema = z.enum(MESSAGE_STATUSES);
export const directionSchema = z
  .enum(['inbound', 'outbound', 'stored', 'synced'])
  .describe(
    'inbound: received; outbound: sent; stored: put in a folder by a mail client (IMAP APPEND); synced: from an external account',
  );

/**
 * A point in time: an ISO 8601 date-time with an offset, or a date (UTC). As the end of a range a
 * date means the end of that day.
 */
export const instant = z.union([z.iso.datetime({ offset: true }), z.iso.date()]);
export const startOf = (value: string | undefined) =>
  value === undefined ? undefined : new Date(value.length === 10 ? `${value}T00:00:00Z` : value);
export const endOf = (value: string | undefined) =>
  value === undefined
    ? undefined
    : value.length === 10
      ? new Date(new Date(`${value}T00:00:00Z`).getTime() + DAY_MS)
      : new Date(value);

/** What mail intelligence found, as filters (messages not analysed yet match none of them). */
export const analysisFilterQuery = {
  spam: z.stringbool().optional().describe('Spam (true) or not (false), by the analysis'),
  phishing: z.enum(['clean', 'suspicious', 'phishing']).optional(),
  sentiment: z.enum(['negative', 'neutral', 'positive']).optional(),
  category: z
    .string()
    .trim()
    .min(1)
    .max(64)
    .optional()
    .describe('primary, social, promotions, updates, forums, or a custom category'),
  language: z
    .string()
    .regex(/^[a-z]{2,3}$/, 'must be a language code such as en or deu')
    .optional(),
};

export function analysisFilterOf(q: {
  spam?: boolean;
  phishing?: AnalysisFilter['phishing'];
  sentiment?: AnalysisFilter['sentiment'];
  category?: string;
  language?: string;
}): AnalysisFilter | undefined {
  const filter: AnalysisFilter = {
    spam: q.spam,
    phishing: q.phishing,
    sentiment: q.sentiment,
    category: q.category,
    language: q.language,
  };
  return Object.values(filter).some((v) => v !== undefined) ? filter : undefined;
}

/** The filter parameters of the message log, to spread into a route's query schema. */
export const messageFilterQuery = {
  status: statusSchema.optional(),
  direction: directionSchema.optional(),
  domain_id: uuidParam.optional(),
  mailbox_id: uuidParam.optional().describe('Messages with a copy in this mailbox'),
  account_id: uuidParam.optional().describe('Messages synced from this external account'),
  sender: z
    .string()
    .max(320)
    .optional()
    .describe('The envelope sender or the From address is this address (any case)'),
  recipient: z
    .string()
    .max(320)
    .optional()
    .describe('An envelope recipient or a To address is this address (any case)'),
  since: instant.optional().describe('Received at or after (a date means its start, UTC)'),
  until: instant.optional().describe('Received before (a date means its end, UTC)'),
  ...analysisFilterQuery,
};

export type MessageFilterQuery = z.infer<z.ZodObject<typeof messageFilterQuery>>;

export function messageFilterOf(q: MessageFilterQuery): MessageFilter {
  return {
    status: q.status,
    direction: q.direction,
    domainId: q.domain_id,
    mailboxId: q.mailbox_id,
    accountId: q.account_id,
    sender: q.sender,
    recipient: q.recipient,
    since: startOf(q.since),
    until: endOf(q.until),
    analysis: analysisFilterOf(q),
  };
}
