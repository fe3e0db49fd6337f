// Delivery status notifications (RFC 3464) as RFC 6522 multipart/report messages: the note a sender
// gets when we give up on a recipient, or are still retrying one. Three parts, in this order:
//
//   text/plain                a plain-English explanation for the person who sent the message
//   message/delivery-status   the machine-readable fields other MTAs and bounce processors read
//   text/rfc822-headers       the headers of the message it is about (never the body: privacy, size)
//
// The caller sends it with the null envelope sender so it can never cause a bounce loop.
import { randomBytes } from 'node:crypto';
import { domainToASCII } from 'node:url';
import { headerLength } from '../../core/message.ts';

export interface DsnRecipient {
  /** Final-Recipient: rfc822;<address> */
  address: string;
  action: 'failed' | 'delayed' | 'delivered';
  /** Enhanced status, e.g. '5.1.1'; derived from the diagnostic or the action when not one. */
  status: string;
  /** Remote-MTA: dns;<host> */
  remoteMta?: string | null;
  /** Diagnostic-Code: smtp;<the remote reply> */
  diagnostic?: string | null;
  lastAttemptAt?: Date;
}

export interface DsnInput {
  /** Our host name. */
  reportingMta: string;
  /** e.g. MAILER-DAEMON@<host>, optionally with a display name: `Name <address>`. */
  from: string;
  /** The original sender. */
  to: string;
  originalMessageId?: string | null;
  originalEnvelopeId?: string | null;
  arrivalDate: Date;
  recipients: DsnRecipient[];
  /** The original message's header block (or whole message); only headers are returned (text/rfc822-headers). */
  original: Buffer;
  /** Message-ID for the DSN itself: `<id@host>` */
  messageId: string;
}

const CRLF = '\r\n';
/** Lines are folded to this length where the text allows (RFC 5322 "SHOULD"). */
const FOLD_AT = 78;
/** Field values are cut to this, so no line can reach the 998-character hard limit. */
const MAX_VALUE = 900;
const MAX_RETURNED_HEADERS = 64 * 1024;
const TEXT_WIDTH = 72;
/** UTF-8 bytes per encoded word: 52 base64 characters, a word of 64 with its markers. */
const ENCODED_WORD_BYTES = 39;
const STATUS = /^[245]\.\d{1,3}\.\d{1,3}$/;
const SMTP_REPLY = /^([245])\d\d(?:[ -]+([245]\.\d{1,3}\.\d{1,3}))?(?:[ -]|$)/;

type Recipient = Required<Omit<DsnRecipient, 'lastAttemptAt'>> & { lastAttemptAt: Date | null };

/** A complete RFC 5322 message with CRLF line endings. */
export function buildDsn(input: DsnInput): Buffer {
  if (!input.recipients.length) throw new RangeError('A DSN needs at least one recipient');
  const recipients = input.recipients.map(normaliseRecipient);
  const parts = [
    textPart('text/plain', Buffer.from(explanation(input.reportingMta, recipients))),
    deliveryStatusPart(input, recipients),
    textPart('text/rfc822-headers', headerBlockOf(input.original)),
  ];
  const boundary = boundaryFor(parts);
  const body = parts.map((part) => `--${boundary}${CRLF}${part}${CRLF}`).join('') + `--${boundary}--${CRLF}`;
  return Buffer.from(messageHeaders(input, recipients, boundary) + CRLF + body);
}

function normaliseRecipient(r: DsnRecipient): Recipient {
  const diagnostic = r.diagnostic ? ascii(r.diagnostic) || null : null;
  return {
    address: r.address.trim(),
    action: r.action,
    status: STATUS.test(r.status) ? r.status : derivedStatus(r.action, diagnostic),
    remoteMta: r.remoteMta ? ascii(asciiDomain(r.remoteMta)) || null : null,
    diagnostic,
    lastAttemptAt: r.lastAttemptAt ?? null,
  };
}

/** The enhanced code in the remote reply, else the reply's class, else the action's. */
function derivedStatus(action: DsnRecipient['action'], diagnostic: string | null): string {
  const reply = diagnostic ? SMTP_REPLY.exec(diagnostic) : null;
  if (reply) return reply[2] ?? `${reply[1]}.0.0`;
  return action === 'failed' ? '5.0.0' : action === 'delayed' ? '4.0.0' : '2.0.0';
}

function messageHeaders(input: DsnInput, recipients: Recipient[], boundary: string): string {
  const fields: [string, string][] = [
    ['From', mailbox(input.from, 'Mail Delivery System')],
    ['To', mailbox(input.to, null)],
    ['Subject', unstructured(subjectFor(recipients))],
    ['Date', rfc5322Date(new Date())],
    ['Message-ID', messageIdOf(input.messageId)],
  ];
  if (input.originalMessageId) {
    // Threads the notification with the message it is about in the sender's mail client.
    const original = messageIdOf(input.originalMessageId);
    fields.push(['In-Reply-To', original], ['References', original]);
  }
  fields.push(
    ['Auto-Submitted', 'auto-replied'],
    ['MIME-Version', '1.0'],
    ['Content-Type', `multipart/report; report-type=delivery-status; boundary="${boundary}"`],
  );
  return fields.map(([name, value]) => fold(name, value) + CRLF).join('');
}

function subjectFor(recipients: Recipient[]): string {
  if (recipients.some((r) => r.action === 'failed')) return 'Undelivered Mail Returned to Sender';
  if (recipients.some((r) => r.action === 'delayed')) return 'Delivery Status Notification (Delay)';
  return 'Delivery Status Notification (Success)';
}

// --- the human-readable part -------------------------------------------------------------------

const INTRO: Record<DsnRecipient['action'], string> = {
  failed:
    'Your message could not be delivered to the recipients below. This is a permanent error: ' +
    'the message will not be sent again.',
  delayed:
    'Your message has not been delivered yet to the recipients below. Delivery will be retried ' +
    'automatically; you do not need to send it again.',
  delivered: 'Your message was delivered to the recipients below.',
};

function explanation(reportingMta: string, recipients: Recipient[]): string {
  const lines = [`This is the mail system at ${reportingMta}.`, ''];
  for (const action of ['failed', 'delayed', 'delivered'] as const) {
    const group = recipients.filter((r) => r.action === action);
    if (!group.length) continue;
    lines.push(...wrap(INTRO[action], TEXT_WIDTH, ''), '');
    for (const r of group) lines.push(...recipientLines(r), '');
  }
  lines.push('The headers of your message are attached below.');
  return lines.join(CRLF) + CRLF;
}

function recipientLines(r: Recipient): string[] {
  const lines = [
    `  <${r.address}>`,
    ...wrap(`${describeStatus(r.status)} (${r.status})`, TEXT_WIDTH, '    '),
  ];
  if (r.diagnostic) {
    lines.push(...wrap(diagnosticIntro(r), TEXT_WIDTH, '    '), ...wrap(r.diagnostic, TEXT_WIDTH, '      '));
  }
  return lines;
}

/** Who said what follows: the receiving server for an SMTP reply, else our own attempt. */
function diagnosticIntro(r: Recipient): string {
  if (!SMTP_REPLY.test(r.diagnostic ?? '')) return 'The delivery attempt failed with:';
  return r.remoteMta ? `The receiving server ${r.remoteMta} said:` : 'The receiving server said:';
}

/** What an enhanced status code means, in words a sender can act on (RFC 3463). */
function describeStatus(status: string): string {
  const [klass, subject, detail] = status.split('.');
  const known = STATUS_TEXT[`${subject}.${detail}`] ?? SUBJECT_TEXT[subject];
  if (known) return known;
  if (klass === '2') return 'The message was delivered.';
  if (klass === '4') return 'The receiving side could not accept the message for now.';
  return 'The receiving side refused the message.';
}

const STATUS_TEXT: Record<string, string> = {
  '1.1': 'The address does not exist.',
  '1.2': 'The domain of the address does not exist or does not accept mail.',
  '1.10': 'The domain of the address does not accept mail.',
  '2.1': 'The mailbox is disabled and does not accept messages.',
  '2.2': 'The mailbox is full.',
  '2.3': 'The message is larger than the recipient accepts.',
  '3.4': 'The message is larger than the receiving server accepts.',
  '4.1': 'The receiving server did not answer.',
  '4.2': 'The connection to the receiving server was lost.',
  '4.4': 'No mail server could be found for the domain of the address.',
  '4.7': 'The message could not be delivered in time and has expired.',
  '7.1': 'The receiving server refused the message by policy (often a spam filter or a blocked sender).',
};

const SUBJECT_TEXT: Record<string, string> = {
  '1': 'Something is wrong with the address.',
  '2': 'Something is wrong with the mailbox.',
  '4': 'The receiving server could not be reached.',
  '7': 'The receiving server refused the message for security or policy reasons.',
};

// --- the machine-readable part -----------------------------------------------------------------

function deliveryStatusPart(input: DsnInput, recipients: Recipient[]): string {
  const perMessage: [string, string][] = [];
  const envelopeId = input.originalEnvelopeId ? ascii(input.originalEnvelopeId) : '';
  if (envelopeId) perMessage.push(['Original-Envelope-Id', envelopeId]);
  perMessage.push(
    ['Reporting-MTA', `dns; ${ascii(asciiDomain(input.reportingMta))}`],
    ['Arrival-Date', rfc5322Date(input.arrivalDate)],
  );
  const groups = [perMessage, ...recipients.map(recipientFields)].map((group) =>
    group.map(([name, value]) => fold(name, value) + CRLF).join(''),
  );
  // message/delivery-status is 7-bit by definition: non-ASCII addresses use the utf-8 xtext form.
  return `Content-Type: message/delivery-status${CRLF}${CRLF}${groups.join(CRLF)}`;
}

function recipientFields(r: Recipient): [string, string][] {
  const fields: [string, string][] = [
    ['Final-Recipient', addressField(r.address)],
    ['Action', r.action],
    ['Status', r.status],
  ];
  if (r.remoteMta) fields.push(['Remote-MTA', `dns; ${r.remoteMta}`]);
  if (r.diagnostic) fields.push(['Diagnostic-Code', `${diagnosticType(r.diagnostic)}; ${r.diagnostic}`]);
  if (r.lastAttemptAt) fields.push(['Last-Attempt-Date', rfc5322Date(r.lastAttemptAt)]);
  return fields;
}

/** `smtp` for a remote server's reply; our own failures (DNS, timeouts) are not SMTP replies. */
function diagnosticType(diagnostic: string): string {
  return SMTP_REPLY.test(diagnostic) ? 'smtp' : 'X-Mailroom';
}

function addressField(address: string): string {
  if (isAscii(address)) return `rfc822; ${ascii(address)}`;
  return `utf-8; ${utf8AddressXtext(address)}`;
}

/** RFC 6533 utf-8-addr-xtext: non-ASCII, `\`, `+` and `=` as \x{HEX}. */
function utf8AddressXtext(address: string): string {
  let out = '';
  for (const char of address) {
    const code = char.codePointAt(0)!;
    const plain = code > 0x20 && code < 0x7f && char !== '\\' && char !== '+' && char !== '=';
    out += plain ? char : `\\x{${code.toString(16).toUpperCase()}}`;
  }
  return out.slice(0, MAX_VALUE);
}

// --- the returned headers ----------------------------------------------------------------------

/** The header block of a message, CRLF line endings, cut at a line boundary when very large. */
function headerBlockOf(original: Buffer): Buffer {
  let block = original
    .subarray(0, headerLength(original))
    .toString('latin1')
    .replace(/\r\n|\r|\n/g, CRLF);
  if (block.startsWith(CRLF)) block = '';
  if (block.length > MAX_RETURNED_HEADERS)
    block = block.slice(0, block.lastIndexOf(CRLF, MAX_RETURNED_HEADERS) + CRLF.length);
  return Buffer.from(block, 'latin1');
}

// --- MIME helpers ------------------------------------------------------------------------------

/** A text part, 7-bit as it is when it can be, else UTF-8 in quoted-printable (also for over-long lines). */
function textPart(contentType: string, content: Buffer): string {
  const sevenBit =
    content.every((b) => b < 0x80) && content.toString('latin1').split(CRLF).every(withinLineLimit);
  if (sevenBit)
    return `Content-Type: ${contentType}; charset=us-ascii${CRLF}${CRLF}${content.toString('latin1')}`;
  return (
    `Content-Type: ${contentType}; charset=utf-8${CRLF}Content-Transfer-Encoding: quoted-printable${CRLF}${CRLF}` +
    quotedPrintable(content)
  );
}

function withinLineLimit(line: string): boolean {
  return line.length <= MAX_VALUE;
}

function quotedPrintable(content: Buffer): string {
  return content
    .toString('latin1')
    .split(CRLF)
    .map((line) => quotedPrintableLine(Buffer.from(line, 'latin1')))
    .join(CRLF);
}

function quotedPrintableLine(bytes: Buffer): string {
  let out = '';
  let line = '';
  bytes.forEach((byte, i) => {
    // Trailing white space would be lost in transit, so it is encoded like `=`.
    const whiteAtEnd = (byte === 0x20 || byte === 0x09) && i === bytes.length - 1;
    const literal =
      (byte >= 0x21 && byte <= 0x7e && byte !== 0x3d) || ((byte === 0x20 || byte === 0x09) && !whiteAtEnd);
    const token = literal
      ? String.fromCharCode(byte)
      : `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    if (line.length + token.length > 75) {
      out += `${line}=${CRLF}`;
      line = '';
    }
    line += token;
  });
  return out + line;
}

/** A boundary that occurs in none of the parts. */
function boundaryFor(parts: string[]): string {
  for (;;) {
    const boundary = `=_mailroom_report_${randomBytes(12).toString('hex')}`;
    if (!parts.some((part) => part.includes(boundary))) return boundary;
  }
}

/** `Name <address>` or a bare address; the name as a phrase, the domain as an A-label. */
function mailbox(value: string, defaultName: string | null): string {
  const named = /^\s*(.*?)\s*<([^<>]*)>\s*$/.exec(value);
  const address = asciiAddress((named ? named[2] : value).trim());
  const name = named ? named[1].replace(/^"(.*)"$/, '$1').trim() : defaultName;
  return name ? `${phrase(name)} <${address}>` : address;
}

/** An address with an A-label domain. A non-ASCII local part stays as it is (RFC 6532, SMTPUTF8). */
function asciiAddress(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0) return address.replace(/[\s<>]/g, '');
  return `${address.slice(0, at).replace(/[\s<>]/g, '')}@${asciiDomain(address.slice(at + 1))}`;
}

function asciiDomain(domain: string): string {
  if (isAscii(domain)) return domain;
  return domainToASCII(domain) || domain;
}

/** A display name: as it is when it is all atoms, quoted when it has specials, encoded words when not ASCII. */
function phrase(name: string): string {
  if (!isAscii(name)) return encodedWords(name);
  const clean = ascii(name);
  if (/^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]*$/.test(clean)) return clean;
  return `"${clean.replace(/["\\]/g, '\\$&')}"`;
}

function unstructured(text: string): string {
  return isAscii(text) ? ascii(text) : encodedWords(text);
}

/** RFC 2047 B-encoded words, split between characters, never inside one. */
function encodedWords(text: string): string {
  const chunks: string[] = [];
  let chunk = '';
  for (const char of text.replace(/\s+/g, ' ').trim()) {
    if (Buffer.byteLength(chunk + char) > ENCODED_WORD_BYTES) {
      chunks.push(chunk);
      chunk = '';
    }
    chunk += char;
  }
  if (chunk) chunks.push(chunk);
  return chunks.map((c) => `=?UTF-8?B?${Buffer.from(c).toString('base64')}?=`).join(' ');
}

/** `Name: value`, folded before spaces to keep lines within FOLD_AT characters where the value allows. */
function fold(name: string, value: string): string {
  const lines: string[] = [];
  let line = `${name}:`;
  for (const word of value.split(' ')) {
    if (line.length + 1 + word.length > FOLD_AT && line.length > name.length + 1) {
      lines.push(line);
      line = '';
    }
    line += ` ${word}`;
  }
  lines.push(line);
  return lines.join(CRLF);
}

/** Words of `text` in lines of at most `width` characters (longer words get a line of their own). */
function wrap(text: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(indent + line);
  return lines;
}

/** Printable ASCII on one line: controls and line breaks become spaces, other characters `?`. */
function ascii(value: string): string {
  return value
    .replace(/[\t\r\n\f\v]+/g, ' ')
    .replace(/[^\x20-\x7e]/g, '?')
    .replace(/ {2,}/g, ' ')
    .trim()
    .slice(0, MAX_VALUE);
}

function isAscii(value: string): boolean {
  return Buffer.byteLength(value) === value.length;
}

function messageIdOf(id: string): string {
  return `<${ascii(id)
    .replace(/^<|>$/g, '')
    .replace(/[\s<>]/g, '')}>`;
}

function rfc5322Date(date: Date): string {
  return date.toUTCString().replace('GMT', '+0000');
}
