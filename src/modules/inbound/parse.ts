// What processing reads from a message's MIME structure: addresses, subject, threading headers, text for
// search, and the parts and attachments the API shows. mailparser tolerates broken structure; whatever
// it cannot make sense of is simply absent here.
import { simpleParser } from 'mailparser';
import { transferring } from '../../core/threads.ts';
import { type MailFields, parseDirect } from './direct-parse.ts';
import { type SearchPiece, searchPieces } from '../messages/search-vector.ts';
import type { MessageDetails } from '../messages/tables.ts';

/** Text kept per message for search and preview. */
const MAX_BODY_TEXT = 100_000;
const MAX_HEADERS = 500;
const MAX_HEADER_VALUE = 4_000;

export interface ParsedMessage {
  messageId: string | null;
  inReplyTo: string | null;
  references: string[];
  fromAddress: string | null;
  fromName: string | null;
  to: string[];
  cc: string[];
  subject: string | null;
  date: Date | null;
  text: string;
  hasAttachments: boolean;
  details: MessageDetails;
  deliveredTo: Set<string>;
  receivedHops: number;
}

/** What filing needs of a message, computed off the event loop (see parse-thread.ts). */
export interface PreparedMessage {
  parsed: Omit<ParsedMessage, 'text'>;
  /**
   * The text kept for search and preview, as UTF-8: it crosses from the thread without a copy and goes
   * to the database as it is, so the event loop never holds it as a string.
   */
  text: Uint8Array;
  /** The search vector's pieces: header fields, envelope and body text (search-vector.ts). */
  search: SearchPiece[];
}

const utf8 = new TextEncoder();

/** Parses a message and builds its search pieces; `envelope` holds MAIL FROM and the RCPT TO addresses. */
export async function prepareMessage(input: {
  raw: Uint8Array;
  envelope: string[];
}): Promise<PreparedMessage> {
  const raw = Buffer.from(input.raw.buffer, input.raw.byteOffset, input.raw.byteLength);
  const { text, ...parsed } = storable(await parseMessage(raw));
  const header = [
    parsed.subject,
    parsed.fromName,
    parsed.fromAddress,
    input.envelope[0],
    ...parsed.to,
    ...parsed.cc,
    ...input.envelope.slice(1),
  ]
    .filter(Boolean)
    .join(' ');
  // TextEncoder gives an array of its own (Buffer.from may share a pool), which can be transferred; the
  // tokeniser reads the same bytes.
  const bytes = utf8.encode(text);
  return transferring({ parsed, text: bytes, search: searchPieces(header, bytes) }, [bytes.buffer]);
}

/** The tasks parse-thread.ts serves. */
export const parseTasks = { prepare: prepareMessage };

export async function parseMessage(raw: Buffer): Promise<ParsedMessage> {
  const mail: MailFields =
    parseDirect(raw) ??
    (await simpleParser(raw, {
      skipImageLinks: true,
      skipTextToHtml: true,
      maxHtmlLengthToParse: 1_000_000,
    }));
  const from = addressesOf(mail.from)[0] ?? null;
  const headerLines = mail.headerLines ?? [];
  const deliveredTo = new Set<string>();
  let receivedHops = 0;
  for (const h of headerLines) {
    if (h.key === 'received') receivedHops++;
    if (h.key === 'delivered-to')
      deliveredTo.add(
        h.line
          .slice(h.line.indexOf(':') + 1)
          .trim()
          .toLowerCase(),
      );
  }
  const text = (mail.text ?? (typeof mail.html === 'string' ? htmlToText(mail.html) : '')).slice(
    0,
    MAX_BODY_TEXT,
  );
  const attachments = mail.attachments.map((a) => ({
    filename: a.filename ?? null,
    content_type: a.contentType,
    size: a.size,
    content_id: a.cid ?? null,
  }));
  const parts: MessageDetails['parts'] = [];
  if (mail.text !== undefined)
    parts.push({ content_type: 'text/plain', size: Buffer.byteLength(mail.text), charset: 'utf-8' });
  if (typeof mail.html === 'string')
    parts.push({ content_type: 'text/html', size: Buffer.byteLength(mail.html), charset: 'utf-8' });
  for (const a of attachments) parts.push({ content_type: a.content_type, size: a.size, charset: null });
  const date = mail.date && !Number.isNaN(mail.date.getTime()) ? mail.date : null;
  return {
    messageId: cleanId(mail.messageId),
    inReplyTo: cleanId(mail.inReplyTo),
    references: (Array.isArray(mail.references) ? mail.references : mail.references ? [mail.references] : [])
      .map(cleanId)
      .filter((id): id is string => id !== null)
      .slice(0, 100),
    fromAddress: from?.address ?? null,
    fromName: from?.name || null,
    to: addressesOf(mail.to).map((a) => a.address),
    cc: addressesOf(mail.cc).map((a) => a.address),
    subject: mail.subject ?? null,
    date,
    text,
    hasAttachments: attachments.some((a) => a.content_id === null || a.filename !== null),
    details: {
      headers: headerLines.slice(0, MAX_HEADERS).map((h) => ({
        name: h.line.slice(0, Math.max(0, h.line.indexOf(':'))),
        value: h.line
          .slice(h.line.indexOf(':') + 1)
          .trim()
          .slice(0, MAX_HEADER_VALUE),
      })),
      parts,
      attachments,
    },
    deliveredTo,
    receivedHops,
  };
}

/**
 * Every string made storable: PostgreSQL text and jsonb hold neither NUL nor unpaired surrogates, and one
 * such character in a broken message must not keep it (and its batch) from being filed.
 */
function storable<T>(value: T): T {
  if (typeof value === 'string') {
    // Checked first: replacing copies even a string with nothing to replace (a 20 KB body each time).
    const withoutNul = value.includes('\0') ? value.replace(/\0/g, '\uFFFD') : value;
    return (withoutNul.isWellFormed() ? withoutNul : withoutNul.toWellFormed()) as T;
  }
  if (Array.isArray(value)) return value.map(storable) as T;
  if (value instanceof Set) return new Set([...value].map(storable)) as T;
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = storable(v);
    return out as T;
  }
  return value;
}

function addressesOf(field: MailFields['from'] | MailFields['to']): { address: string; name: string }[] {
  const out: { address: string; name: string }[] = [];
  const visit = (list: { address?: string; name: string; group?: unknown[] }[]) => {
    for (const a of list) {
      if (a.address) out.push({ address: a.address.toLowerCase(), name: a.name });
      if (a.group) visit(a.group as never);
    }
  };
  for (const f of Array.isArray(field) ? field : field ? [field] : []) visit(f.value);
  return out.slice(0, 1000);
}

function cleanId(id: string | undefined | null): string | null {
  const trimmed = id?.trim().replace(/^<|>$/g, '');
  return trimmed ? trimmed.slice(0, 998) : null;
}

function htmlToText(html: string): string {
  return html
    .replace(/<(script|style)[^>]*>[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&nbsp;/g, ' ')
    .replace(/&amp;/g, '&')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/\s+/g, ' ')
    .trim();
}
