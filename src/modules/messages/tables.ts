import { boolean, integer, jsonb, pgTable, real, text, timestamptz, uuid } from '../../core/orm.ts';

export type MessageStatus =
  | 'pending'
  | 'processing'
  | 'delivered'
  | 'failed'
  | 'bounced'
  | 'rejected'
  | 'quarantined';
export const MESSAGE_STATUSES: readonly MessageStatus[] = [
  'pending',
  'processing',
  'delivered',
  'failed',
  'bounced',
  'rejected',
  'quarantined',
];
export type Direction = 'inbound' | 'outbound' | 'stored' | 'synced';

/** What processing learnt from the MIME structure, kept for the API. */
export interface MessageDetails {
  headers: { name: string; value: string }[];
  parts: { content_type: string; size: number; charset: string | null }[];
  attachments: { filename: string | null; content_type: string; size: number; content_id: string | null }[];
}

/** The verdicts of the authentication checks, and the header value they produced. */
export interface MessageAuth {
  spf: string;
  dkim: { domain: string; selector: string | null; result: string; aligned: boolean }[];
  dmarc: { result: string; policy: string | null; domain: string | null };
  arc: string;
  authentication_results: string;
  action: 'accept' | 'quarantine' | 'reject';
}

export const messages = pgTable('messages', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  domainId: uuid('domain_id'),
  direction: text('direction').$type<Direction>().notNull(),
  status: text('status').$type<MessageStatus>().notNull(),
  blobId: uuid('blob_id').notNull(),
  size: integer('size').notNull(),
  mailFrom: text('mail_from').notNull(),
  rcptTo: text('rcpt_to').array().notNull(),
  remoteIp: text('remote_ip'),
  helo: text('helo'),
  tls: boolean('tls').notNull().default(false),
  messageIdHeader: text('message_id_header'),
  inReplyTo: text('in_reply_to'),
  references: text('references').array().notNull().default([]),
  threadId: uuid('thread_id'),
  fromAddress: text('from_address'),
  fromName: text('from_name'),
  toAddresses: text('to_addresses').array().notNull().default([]),
  ccAddresses: text('cc_addresses').array().notNull().default([]),
  subject: text('subject'),
  sentAt: timestamptz('sent_at'),
  hasAttachments: boolean('has_attachments').notNull().default(false),
  bodyText: text('body_text'),
  details: jsonb('details').$type<MessageDetails>(),
  auth: jsonb('auth').$type<MessageAuth>(),
  /** The MIME structure IMAP answers from (imap/mime), computed on first need. */
  structure: jsonb('structure'),
  parentId: uuid('parent_id'),
  /** A message synced from an external account (accounts/sync): that account. */
  accountId: uuid('account_id'),
  tags: text('tags').array().notNull().default([]),
  error: text('error'),
  receivedAt: timestamptz('received_at').notNull().defaultNow(),
  processedAt: timestamptz('processed_at'),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});
export type MessageRow = typeof messages.$inferSelect;

/** A finding of the phishing and attachment checks (modules/intelligence/threats). */
export interface AnalysisFinding {
  code: string;
  severity: 'low' | 'medium' | 'high';
  evidence: string;
  detail?: Record<string, string | number>;
}

/**
 * What mail intelligence found in a message (migrations/0031_intelligence.sql). The intelligence module
 * writes it through this module's service; lists and search filter on it.
 */
export const messageAnalyses = pgTable('message_analyses', {
  messageId: uuid('message_id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  spam: boolean('spam').notNull(),
  spamScore: real('spam_score').notNull(),
  spamEngine: text('spam_engine').$type<'builtin' | 'rspamd'>().notNull(),
  spamSymbols: jsonb('spam_symbols').$type<Array<{ name: string; score: number }>>().notNull(),
  phishing: text('phishing').$type<'clean' | 'suspicious' | 'phishing'>().notNull(),
  phishingScore: real('phishing_score').notNull(),
  findings: jsonb('findings').$type<AnalysisFinding[]>().notNull(),
  malware: text('malware'),
  language: text('language').notNull(),
  sentiment: real('sentiment').notNull(),
  sentimentLabel: text('sentiment_label').$type<'negative' | 'neutral' | 'positive'>().notNull(),
  category: text('category').notNull(),
  priority: text('priority').$type<'high' | 'normal' | 'low'>().notNull(),
  keywords: text('keywords').array().notNull(),
  entities: jsonb('entities').$type<Record<string, unknown>>().notNull(),
  summary: text('summary').notNull(),
  analyzedAt: timestamptz('analyzed_at').notNull().defaultNow(),
});
export type MessageAnalysisRow = typeof messageAnalyses.$inferSelect;

export type RouteKind = 'mailbox' | 'alias' | 'rule' | 'catch_all' | 'srs' | 'bounce' | 'feedback' | 'none';
export type RouteAction =
  | 'store'
  | 'forward'
  | 'redirect'
  | 'block'
  | 'drop'
  | 'loop'
  | 'quarantine'
  | 'reject'
  | 'fail';

export const messageRoutes = pgTable('message_routes', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  messageId: uuid('message_id').notNull(),
  recipient: text('recipient').notNull(),
  route: text('route').$type<RouteKind>().notNull(),
  targetId: uuid('target_id'),
  action: text('action').$type<RouteAction>().notNull(),
  destination: text('destination'),
  detail: text('detail'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});
export type MessageRouteRow = typeof messageRoutes.$inferSelect;
