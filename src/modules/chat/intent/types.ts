// The parsed form of a mail-chat request: what the user wants done, and the constituents that say which
// mail it is about.

export type Intent =
  | 'search'
  | 'summarize'
  | 'sentiment'
  | 'analytics'
  | 'compose_reply'
  | 'smalltalk'
  | 'unknown';

export type Metric = 'count' | 'top_senders' | 'response_time' | 'volume_by_day';

export type PersonRole = 'from' | 'to' | 'any';

export interface PersonReference {
  /** As typed: "Alice", "Alice Smith", "bob@acme.com", "stripe.com". */
  text: string;
  /** An e-mail address, or a bare domain (no "@") that matches every address at it. */
  address?: string;
  /** Which side of the mail the person is on: its sender, a recipient, or either. */
  role: PersonRole;
}

export interface RequestParams {
  people: PersonReference[];
  /** ISO instant, inclusive. */
  after?: string;
  /** ISO instant, exclusive. */
  before?: string;
  /** The date expression as typed, e.g. "last week", "since Monday". */
  dateText?: string;
  topics: string[];
  folder?: string;
  unread?: boolean;
  flagged?: boolean;
  hasAttachment?: boolean;
  metric?: Metric;
  limit?: number;
  /** For compose_reply: what the reply should say, as typed. */
  replyInstruction?: string;
  /** Mail the user received, or mail the user sent. */
  direction?: 'received' | 'sent';
}

export interface ParsedRequest {
  intent: Intent;
  /** 0..1: how sure the grammar is of the intent. */
  confidence: number;
  params: RequestParams;
}

export interface ParseContext {
  now: Date;
  /** IANA zone of the user, e.g. Europe/Berlin. */
  timeZone: string;
  /** The user's own addresses: never a person to look up. */
  selfAddresses?: string[];
  /** People to resolve names against (case-insensitive full name, or a first name only one of them has). */
  knownPeople?: Array<{ name: string; address: string }>;
}
