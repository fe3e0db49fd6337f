// Reading what comes back to a VERP address. Standard delivery status notifications (RFC 3464, and
// RFC 6533's UTF-8 form) are read field by field; the free-text bounces some MTAs still send (qmail,
// older Exim, Postfix and Gmail's old formats, appliances) are recognised by their usual shapes. Anything
// else (a person's reply, an out-of-office note) is not a bounce: the caller must not suppress a
// recipient because of it, so when in doubt the answer is null.
import { type ParsedMail, simpleParser } from 'mailparser';

export interface ParsedBounceRecipient {
  address: string;
  action: string | null;
  status: string | null;
  diagnostic: string | null;
  remoteMta: string | null;
}

export interface ParsedBounce {
  kind: 'dsn' | 'heuristic';
  /** True when at least one recipient failed permanently (5.x.x / action failed). */
  permanent: boolean;
  recipients: ParsedBounceRecipient[];
  /** From the returned message/rfc822 or text/rfc822-headers part, if present; without angle brackets. */
  originalMessageId: string | null;
  originalEnvelopeId: string | null;
}

type Fields = Map<string, string>;

const STATUS_TYPES = new Set(['message/delivery-status', 'message/global-delivery-status']);
const RETURNED_TYPES = new Set([
  'message/rfc822',
  'text/rfc822-headers',
  'message/global',
  'message/global-headers',
  'message/rfc822-headers',
]);
const MAX_TEXT = 200_000;
const MAX_STATUS_BYTES = 1_000_000;
const MAX_RECIPIENTS = 1000;
const MAX_DIAGNOSTIC = 1000;

/** An enhanced status code (RFC 3463), not part of a dotted IP address. */
const ENHANCED_STATUS = /(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d]|\.\d)/;
/** A 4xx/5xx SMTP reply inside a line of text, with its enhanced code when there is one. */
const SMTP_REPLY = /(?:^|[\s:('"#])([45][0-5]\d)(?:[ -]+([45]\.\d{1,3}\.\d{1,3}))?(?=[ -]|$)/;
const ADDRESS = String.raw`[^\s<>@"(),;:\[\]]+@[^\s<>@"(),;:\[\]]+\.[^\s<>@"(),;:\[\].]+`;
const ADDRESS_ALONE = new RegExp(`^\\s*<?(${ADDRESS})>?:?\\s*$`, 'i');
const ADDRESS_THEN_TEXT = new RegExp(`^\\s*<(${ADDRESS})>:?\\s+(\\S.*)$`, 'i');
const ADDRESS_IN_SENTENCE = new RegExp(
  `(?:delivered to|delivery to|deliver (?:your message )?to|RCPT TO:)\\s*<?(${ADDRESS})>?`,
  'gi',
);
const REMOTE_HOST = /\b(?:host|by)\s+([a-z0-9][a-z0-9.-]*\.[a-z]{2,})\.?\s*\[/i;
/** Words of the dashed line after which a text bounce quotes the message it returns. */
const RETURNED_COPY = /\b(?:copy of|original|returned|undelivered)\b/i;
const PERMANENT_WORDS = /permanent (?:error|failure|fatal)|failed permanently|given up/i;

const DAEMON_LOCAL_PART = /^(?:mailer-daemon|mail-daemon|mailerdaemon|postmaster|mdaemon)$/i;
const DAEMON_NAME = /\bmail (?:delivery (?:system|subsystem)|administrator)\b/i;
const BOUNCE_SUBJECT =
  /undeliver(?:ed|able)|delivery status notification|mail delivery failed|delivery (?:has )?failed|delivery failure|failure notice|returned mail|non-?delivery|could not be delivered|delayed mail/i;
const OUT_OF_OFFICE_SUBJECT =
  /out of (?:the )?office|automatic reply|auto(?:matic|mated)?[- ]?(?:reply|response|antwort)|abwesenheit|vacation|r[ée]ponse automatique/i;
const REPLY_OR_FORWARD = /^\s*(?:re|fwd?|aw|wg|sv|tr)\s*:/i;

/** The bounce in `raw`; null when it is not one (an ordinary reply, an auto-reply, garbage). */
export async function parseBounce(raw: Buffer): Promise<ParsedBounce | null> {
  const mail = await readMail(raw);
  if (!mail) return null;
  return fromReport(mail) ?? fromText(mail);
}

async function readMail(raw: Buffer): Promise<ParsedMail | null> {
  try {
    // keepDeliveryStatus: without it mailparser merges the status part into the body text.
    return await simpleParser(raw, {
      keepDeliveryStatus: true,
      skipImageLinks: true,
      skipTextToHtml: true,
      skipTextLinks: true,
      maxHtmlLengthToParse: 1_000_000,
    });
  } catch {
    return null;
  }
}

// --- standard DSNs -----------------------------------------------------------------------------

function fromReport(mail: ParsedMail): ParsedBounce | null {
  const part = mail.attachments.find((a) => STATUS_TYPES.has(a.contentType.toLowerCase()));
  if (!part) return null;
  const groups = fieldGroups(part.content.subarray(0, MAX_STATUS_BYTES).toString('utf8'));
  const recipients = groups
    .filter(isRecipientGroup)
    .slice(0, MAX_RECIPIENTS)
    .map(reportedRecipient)
    .filter((r) => r !== null);
  if (!recipients.length) return null;
  const perMessage = groups.find((g) => !isRecipientGroup(g));
  return {
    kind: 'dsn',
    permanent: recipients.some(failedPermanently),
    recipients,
    originalMessageId: returnedMessageId(mail),
    originalEnvelopeId: perMessage?.get('original-envelope-id') || null,
  };
}

/**
 * Header-like field groups separated by blank lines: names lower case, folded values unfolded, the
 * first of repeated fields kept.
 */
function fieldGroups(text: string): Fields[] {
  const groups: Fields[] = [];
  let group: Fields = new Map();
  let last: string | null = null;
  for (const line of text.split(/\r?\n/)) {
    if (!line.trim()) {
      if (group.size) groups.push(group);
      group = new Map();
      last = null;
    } else if (/^[ \t]/.test(line)) {
      if (last) group.set(last, `${group.get(last)} ${line.trim()}`);
    } else {
      const colon = line.indexOf(':');
      const name = colon > 0 ? line.slice(0, colon).trim().toLowerCase() : '';
      last = name && !group.has(name) ? name : null;
      if (last) group.set(last, line.slice(colon + 1).trim());
    }
  }
  if (group.size) groups.push(group);
  return groups;
}

function isRecipientGroup(fields: Fields): boolean {
  return fields.has('final-recipient') || fields.has('original-recipient');
}

function reportedRecipient(fields: Fields): ParsedBounceRecipient | null {
  const address = addressOf(fields.get('final-recipient') || fields.get('original-recipient') || '');
  if (!address) return null;
  const diagnostic = fields.has('diagnostic-code') ? tidy(typed(fields.get('diagnostic-code')!).value) : null;
  const status = ENHANCED_STATUS.exec(fields.get('status') ?? '')?.[1] ?? replyStatus(diagnostic);
  return {
    address,
    action: fields.get('action')?.split(/[\s(]/)[0].toLowerCase() || null,
    status,
    diagnostic,
    remoteMta: hostOf(fields.get('remote-mta')),
  };
}

/** `type; value` as RFC 3464 writes addresses, MTA names and diagnostics. */
function typed(field: string): { type: string | null; value: string } {
  const match = /^\s*([a-z0-9-]+)\s*;\s*([\s\S]*)$/i.exec(field);
  return match
    ? { type: match[1].toLowerCase(), value: match[2].trim() }
    : { type: null, value: field.trim() };
}

function addressOf(field: string): string | null {
  const { type, value } = typed(field);
  // RFC 6533 writes non-ASCII characters of a utf-8 address as \x{HEX}.
  const decoded =
    type === 'utf-8'
      ? value.replace(/\\x\{([0-9a-f]{1,6})\}/gi, (_, hex: string) => String.fromCodePoint(parseInt(hex, 16)))
      : value;
  const address = decoded.replace(/^<|>$/g, '').trim().toLowerCase();
  return address && !/\s/.test(address) ? address : null;
}

/** The host of a Remote-MTA field, without comments (Gmail adds the IP and a sentence) or a final dot. */
function hostOf(field: string | undefined): string | null {
  if (!field) return null;
  const host = typed(field)
    .value.replace(/\([^)]*\)/g, '')
    .trim()
    .replace(/\.$/, '')
    .toLowerCase();
  return host || null;
}

function failedPermanently(r: ParsedBounceRecipient): boolean {
  // Action wins: `failed` with a 4.x.x status is a temporary error we gave up on (Postfix, queue expired).
  return r.action ? r.action === 'failed' : r.status?.startsWith('5') === true;
}

// --- the returned message ----------------------------------------------------------------------

function returnedMessageId(mail: ParsedMail): string | null {
  for (const part of mail.attachments) {
    if (!RETURNED_TYPES.has(part.contentType.toLowerCase())) continue;
    const id = messageIdIn(part.content.toString('utf8'));
    if (id) return id;
  }
  return null;
}

/** The Message-ID of the header block at the start of `text`. */
function messageIdIn(text: string): string | null {
  const headers = fieldGroups(text.replace(/^\s*\n/, ''))[0];
  const id = /<([^<>\s]+)>/.exec(headers?.get('message-id') ?? '')?.[1];
  return id ?? null;
}

// --- free-text bounces -------------------------------------------------------------------------

function fromText(mail: ParsedMail): ParsedBounce | null {
  if (!looksLikeBounce(mail)) return null;
  const { report, returned } = splitAtReturnedCopy((mail.text ?? '').slice(0, MAX_TEXT));
  const recipients = recipientsInText(report, listedFailures(mail));
  if (!recipients.some((r) => r.status)) return null;
  return {
    kind: 'heuristic',
    permanent: recipients.some(failedPermanently),
    recipients,
    originalMessageId: returnedMessageId(mail) ?? messageIdIn(returned),
    originalEnvelopeId: null,
  };
}

/**
 * From a mail system (MAILER-DAEMON, postmaster), or with a bounce's subject. Auto-replies from anyone
 * else and out-of-office subjects are not bounces.
 */
function looksLikeBounce(mail: ParsedMail): boolean {
  const subject = mail.subject ?? '';
  if (OUT_OF_OFFICE_SUBJECT.test(subject)) return false;
  const from = mail.from?.value[0];
  if (DAEMON_LOCAL_PART.test(localPartOf(from?.address ?? '')) || DAEMON_NAME.test(from?.name ?? ''))
    return true;
  if (isAutoReply(mail)) return false;
  return BOUNCE_SUBJECT.test(subject) && !REPLY_OR_FORWARD.test(subject);
}

function localPartOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? address : address.slice(0, at);
}

function isAutoReply(mail: ParsedMail): boolean {
  return (
    headerText(mail, 'auto-submitted').toLowerCase().startsWith('auto-replied') ||
    mail.headers.has('x-autoreply') ||
    mail.headers.has('x-autorespond')
  );
}

/** Exim names the failed recipients in a header. */
function listedFailures(mail: ParsedMail): string[] {
  return headerText(mail, 'x-failed-recipients')
    .split(/[\s,]+/)
    .filter((a) => a.includes('@'))
    .map((a) => a.toLowerCase());
}

function headerText(mail: ParsedMail, name: string): string {
  const value = mail.headers.get(name);
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && 'value' in value) return String(value.value);
  return '';
}

/** The report, and the returned message after a line like `------ This is a copy of the message ------`. */
function splitAtReturnedCopy(text: string): { report: string; returned: string } {
  const lines = text.split(/\r?\n/);
  // Line by line, not one multi-line regex: a long line of dashes would make that backtrack badly.
  const marker = lines.findIndex((line) => line.trimStart().startsWith('--') && RETURNED_COPY.test(line));
  if (marker < 0) return { report: text, returned: '' };
  return { report: lines.slice(0, marker).join('\n'), returned: lines.slice(marker + 1).join('\n') };
}

interface Block {
  address: string;
  lines: string[];
  /** A blank line has passed: the same address again starts a new block. */
  closed: boolean;
}

function recipientsInText(report: string, listed: string[]): ParsedBounceRecipient[] {
  const lines = report.split(/\r?\n/);
  let blocks = addressBlocks(lines);
  if (!blocks.length) {
    // The recipients are only in a header or a sentence: the report's first reply goes with them.
    const addresses = listed.length ? listed : addressesInSentences(report);
    blocks = addresses.map((address) => ({ address, lines, closed: true }));
  }
  const permanent = PERMANENT_WORDS.test(report);
  const seen = new Set<string>();
  const recipients: ParsedBounceRecipient[] = [];
  for (const block of blocks) {
    if (seen.has(block.address) || recipients.length >= MAX_RECIPIENTS) continue;
    seen.add(block.address);
    recipients.push(textRecipient(block, permanent));
  }
  return recipients;
}

/**
 * The report cut into one block per failed address: a line that is just an address (Exim, qmail,
 * Gmail's old format) or `<address>: text` (Postfix's old format), then the lines about it.
 */
function addressBlocks(lines: string[]): Block[] {
  const blocks: Block[] = [];
  for (const line of lines) {
    const current = blocks.at(-1);
    const named = addressLine(line);
    // Postfix wraps its explanation, and the wrapped lines may start with the same `<address>:` again.
    const continues = named && current && current.address === named.address && !current.closed;
    if (named && !continues && !DAEMON_LOCAL_PART.test(localPartOf(named.address))) {
      blocks.push({ address: named.address, lines: named.rest ? [named.rest] : [], closed: false });
    } else if (current) {
      current.lines.push(line);
      if (!line.trim()) current.closed = true;
    }
  }
  return blocks;
}

function addressLine(line: string): { address: string; rest: string } | null {
  const alone = ADDRESS_ALONE.exec(line);
  if (alone) return { address: alone[1].toLowerCase(), rest: '' };
  const withText = ADDRESS_THEN_TEXT.exec(line);
  return withText ? { address: withText[1].toLowerCase(), rest: withText[2] } : null;
}

function addressesInSentences(report: string): string[] {
  return [...report.matchAll(ADDRESS_IN_SENTENCE)].map((m) => m[1].toLowerCase());
}

function textRecipient(block: Block, permanentWords: boolean): ParsedBounceRecipient {
  const reply = replyIn(block.lines);
  // Without a reply code, a bounce that calls itself permanent still says enough (Exim: "Unrouteable address").
  const status = reply?.status ?? (permanentWords ? '5.0.0' : null);
  return {
    address: block.address,
    action: status?.startsWith('5') ? 'failed' : status?.startsWith('4') ? 'delayed' : null,
    status,
    diagnostic: reply?.text ?? tidy(block.lines.find((l) => l.trim()) ?? ''),
    remoteMta: REMOTE_HOST.exec(block.lines.join('\n'))?.[1].toLowerCase() ?? null,
  };
}

/**
 * The first SMTP reply in the lines, with the lines that continue it: more deeply indented (Postfix
 * wraps that way) or repeating its code (a multi-line reply, `550-5.1.1 ...`).
 */
function replyIn(lines: string[]): { status: string; text: string } | null {
  for (let i = 0; i < lines.length; i++) {
    const match = SMTP_REPLY.exec(lines[i]);
    if (!match) continue;
    const code = match[1];
    const parts = [lines[i].slice(lines[i].indexOf(code, match.index))];
    const indent = indentOf(lines[i]);
    for (const next of lines.slice(i + 1)) {
      const continues = indentOf(next) > indent || new RegExp(`^\\s*${code}[ -]`).test(next);
      if (!next.trim() || !continues) break;
      parts.push(next);
    }
    return { status: match[2] ?? `${code[0]}.0.0`, text: tidy(parts.join(' '))! };
  }
  return null;
}

function indentOf(line: string): number {
  return line.length - line.trimStart().length;
}

/** The enhanced status an SMTP reply carries, or its class as x.0.0. */
function replyStatus(reply: string | null): string | null {
  if (!reply) return null;
  const match = /^([245])\d\d(?:[ -]+([245]\.\d{1,3}\.\d{1,3}))?/.exec(reply);
  if (match) return match[2] ?? `${match[1]}.0.0`;
  return ENHANCED_STATUS.exec(reply)?.[1] ?? null;
}

function tidy(text: string): string | null {
  return text.replace(/\s+/g, ' ').trim().slice(0, MAX_DIAGNOSTIC) || null;
}
