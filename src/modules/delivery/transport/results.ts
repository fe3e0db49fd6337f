// Per-recipient results from what the remote server answered: reply codes split into code and enhanced
// status, and nodemailer's send outcome (success info or error) turned into one result per recipient.
import type { NodemailerError } from 'nodemailer/lib/errors.js';
import type { SMTPConnectionSendInfo } from 'nodemailer/lib/smtp-connection/index.js';
import type { RecipientOutcome, RecipientResult } from './types.ts';

/** What happened to a recipient, before it is paired with its address. */
export type Verdict = Omit<RecipientResult, 'address'>;

const REPLY = /^(\d{3})(?:[ -]([245]\.\d{1,3}\.\d{1,3})(?=\s|$))?/;

/** `550 5.1.1 no such user` → code 550, enhanced 5.1.1 (null when the server gave none). */
export function parseReply(response: string): { code: number | null; enhanced: string | null } {
  const match = REPLY.exec(response.trim());
  if (!match) return { code: null, enhanced: null };
  return { code: Number(match[1]), enhanced: match[2] ?? null };
}

/**
 * 5xx is permanent, except 503 (bad sequence of commands): that is about the session, not the
 * message, and the same message can go through on another connection (as nodemailer also reads it).
 */
export function outcomeOf(code: number | null): RecipientOutcome {
  if (code !== null && code >= 200 && code < 300) return 'delivered';
  if (code !== null && code >= 500 && code < 600 && code !== 503) return 'bounced';
  return 'deferred';
}

/** The verdict a server reply carries. */
export function replyVerdict(response: string): Verdict {
  const { code, enhanced } = parseReply(response);
  return { outcome: outcomeOf(code), code, enhanced, response: response.trim() };
}

export function verdict(
  outcome: RecipientOutcome,
  code: number | null,
  enhanced: string | null,
  response: string,
): Verdict {
  return { outcome, code, enhanced, response };
}

export function forAll(recipients: string[], v: Verdict): RecipientResult[] {
  return recipients.map((address) => ({ address, ...v }));
}

/** Accepted recipients get the reply to the end of DATA; refused ones their own RCPT reply. */
export function resultsFromInfo(recipients: string[], info: SMTPConnectionSendInfo): RecipientResult[] {
  const own = rejectionsByRecipient(info.rejectedErrors ?? []);
  const delivered = replyVerdict(info.response);
  return recipients.map((address) => ({ address, ...(own.get(address) ?? delivered) }));
}

/**
 * A refused MAIL FROM applies to every recipient. Otherwise each refused recipient keeps its own RCPT
 * reply (`rejections`: nodemailer's per-recipient errors), and the others get the error that ended
 * the transaction: the reply to DATA or to its end, or a lost connection.
 */
export function resultsFromError(
  recipients: string[],
  err: NodemailerError,
  rejections: NodemailerError[],
): RecipientResult[] {
  const failure = errorVerdict(err);
  if (err.command === 'MAIL FROM') return forAll(recipients, failure);
  const own = rejectionsByRecipient([...(err.rejectedErrors ?? []), ...rejections]);
  return recipients.map((address) => ({ address, ...(own.get(address) ?? failure) }));
}

function rejectionsByRecipient(errors: NodemailerError[]): Map<string, Verdict> {
  const byRecipient = new Map<string, Verdict>();
  for (const err of errors) if (err.recipient) byRecipient.set(err.recipient, errorVerdict(err));
  return byRecipient;
}

/** An error with a server reply is judged by the reply; one without (a lost connection) is temporary. */
export function errorVerdict(err: NodemailerError): Verdict {
  if (err.response) return replyVerdict(err.response);
  if (err.code === 'EMESSAGE' && err.command === 'MAIL FROM') {
    // nodemailer refuses before MAIL FROM a message larger than the SIZE the server announced.
    return verdict('bounced', 552, '5.3.4', err.message);
  }
  return verdict('deferred', null, '4.4.2', err.message);
}
