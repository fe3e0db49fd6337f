// The Feedback-ID header of Gmail's Feedback Loop: up to four colon-separated identifiers, the last one
// the sender's, that Gmail reports complaint rates by (Postmaster Tools). Every message an organisation
// sends (send API, submission) carries one unless its author wrote one:
//
//   Feedback-ID: <campaign>:<mailbox id>:<organisation id>:<MAILROOM_FEEDBACK_SENDER_ID>
//
// Identifiers are stable and not secret, and the same for all mail of a stream (never per message, or
// Gmail cannot aggregate). The campaign is the message's X-Campaign-ID header; a field without a value
// (no campaign, a sender address that is no mailbox) is left out rather than left empty.

/** Characters kept in an identifier taken from a message (a colon would split it). */
const UNSAFE = /[^A-Za-z0-9._-]+/g;
const MAX_CAMPAIGN = 64;

export interface FeedbackIdInput {
  campaign: string | null;
  mailboxId: string | null;
  organizationId: string;
  senderId: string;
}

/** The header's value. */
export function feedbackId(input: FeedbackIdInput): string {
  const campaign = input.campaign
    ?.replace(UNSAFE, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, MAX_CAMPAIGN);
  return [campaign, input.mailboxId, input.organizationId, input.senderId].filter(Boolean).join(':');
}

/** The campaign a message names in its X-Campaign-ID header (names compared in any case). */
export function campaignOf(headers: Iterable<[string, string]>): string | null {
  for (const [name, value] of headers)
    if (name.toLowerCase() === 'x-campaign-id') return value.trim() || null;
  return null;
}

/** Whether the message already carries a Feedback-ID (its author's, kept as written). */
export function hasFeedbackId(names: Iterable<string>): boolean {
  for (const name of names) if (name.toLowerCase() === 'feedback-id') return true;
  return false;
}
