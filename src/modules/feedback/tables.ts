import { boolean, pgTable, text, timestamptz, uuid } from '../../core/orm.ts';

export type ReceivedVia = 'verp' | 'feedback_address';
export type MatchMethod = 'verp' | 'message_id';

/** Feedback types that say the recipient complains; a report without one counts as a complaint too. */
export const COMPLAINING_TYPES = ['abuse', 'fraud', 'virus'];

export const complaints = pgTable('complaints', {
  id: uuid('id').primaryKey(),
  organizationId: uuid('organization_id').notNull(),
  reportMessageId: uuid('report_message_id'),
  receivedVia: text('received_via').$type<ReceivedVia>().notNull(),
  matched: boolean('matched').notNull(),
  matchMethod: text('match_method').$type<MatchMethod>(),
  messageId: uuid('message_id'),
  deliveryId: uuid('delivery_id'),
  domainId: uuid('domain_id'),
  domain: text('domain').notNull(),
  sender: text('sender'),
  recipient: text('recipient'),
  feedbackType: text('feedback_type'),
  suppressed: boolean('suppressed').notNull(),
  userAgent: text('user_agent'),
  reporter: text('reporter'),
  sourceIp: text('source_ip'),
  originalMailFrom: text('original_mail_from'),
  originalRcptTo: text('original_rcpt_to').array().notNull().default([]),
  originalMessageId: text('original_message_id'),
  reportedDomain: text('reported_domain'),
  arrivalDate: timestamptz('arrival_date'),
  detail: text('detail'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});
export type ComplaintRow = typeof complaints.$inferSelect;
export type NewComplaint = typeof complaints.$inferInsert;

/** Complaints against delivered mail over a window (FeedbackService.rates; the health input reads them). */
export interface RateCount {
  /** Matched complaints of a complaining type (abuse, fraud, virus or none given). */
  complaints: number;
  /** Recipients delivered to. */
  delivered: number;
  /** complaints / delivered; null when nothing was delivered. */
  rate: number | null;
}

export interface ComplaintRates {
  since: Date;
  until: Date;
  organization: RateCount;
  /** Per sending domain. */
  domains: (RateCount & { domainId: string | null; domain: string | null })[];
  /** Per sending mailbox (the address whose send limits counted the mail). */
  mailboxes: (RateCount & { address: string; domain: string | null })[];
}
