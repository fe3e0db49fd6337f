// What every analyser reads: one parsed message, the same shape whether it was filed from the MX, the
// submission server or an external account's sync. Parsed once per message; analysers never re-parse.
import libmime from 'libmime';
import { type AddressObject, simpleParser } from 'mailparser';

export interface MailAddress {
  address: string;
  name: string;
}

export interface AnalysisAttachment {
  filename: string | null;
  contentType: string;
  size: number;
  content: Buffer;
}

/** Results of the receiving server's checks, when the message came through one. */
export interface AuthenticationResults {
  spf?: string;
  dkim?: string;
  dmarc?: string;
}

export interface AnalysisInput {
  /** Header fields in message order; names lower-cased, values unfolded and decoded. */
  headers: Array<{ name: string; value: string }>;
  from: MailAddress | null;
  replyTo: MailAddress[];
  to: MailAddress[];
  cc: MailAddress[];
  /** The envelope sender (Return-Path), lower-cased, or null for a bounce or when unknown. */
  returnPath: string | null;
  subject: string;
  date: Date | null;
  /** The plain-text body; derived from the HTML part when the message has only HTML. */
  text: string;
  html: string | null;
  attachments: AnalysisAttachment[];
  authentication: AuthenticationResults;
}

function addresses(value: AddressObject | AddressObject[] | undefined): MailAddress[] {
  const objects = value === undefined ? [] : Array.isArray(value) ? value : [value];
  const out: MailAddress[] = [];
  for (const object of objects) {
    for (const entry of object.value) {
      if (entry.address) out.push({ address: entry.address.toLowerCase(), name: entry.name ?? '' });
      for (const member of entry.group ?? []) {
        if (member.address) out.push({ address: member.address.toLowerCase(), name: member.name ?? '' });
      }
    }
  }
  return out;
}

function decodeHeaderWords(value: string): string {
  try {
    return libmime.decodeWords(value);
  } catch {
    return value; // an unknown charset: the raw words are still worth reading
  }
}

function headerText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  if (value && typeof value === 'object' && 'text' in value) return String((value as { text: unknown }).text);
  if (value && typeof value === 'object' && 'value' in value)
    return String((value as { value: unknown }).value);
  return value === undefined || value === null ? '' : String(value);
}

/** `spf=pass`, `dkim=fail`, `dmarc=pass` from the Authentication-Results our own MX (or any) added. */
function authenticationResults(headers: Array<{ name: string; value: string }>): AuthenticationResults {
  const found: AuthenticationResults = {};
  for (const header of headers) {
    if (header.name !== 'authentication-results') continue;
    for (const method of ['spf', 'dkim', 'dmarc'] as const) {
      if (found[method]) continue;
      const match = new RegExp(`\\b${method}=([a-z]+)`, 'i').exec(header.value);
      if (match) found[method] = match[1]!.toLowerCase();
    }
  }
  return found;
}

export async function analysisInputFromRaw(raw: Buffer | string): Promise<AnalysisInput> {
  const parsed = await simpleParser(raw, { skipImageLinks: true, skipTextToHtml: true });
  // Each line on its own (a message has many Received lines); encoded words decoded, folding undone.
  const headers = parsed.headerLines.map((line) => ({
    name: line.key,
    value: decodeHeaderWords(
      line.line
        .slice(line.line.indexOf(':') + 1)
        .replace(/\r?\n[ \t]+/g, ' ')
        .trim(),
    ),
  }));
  const returnPath = headerText(parsed.headers.get('return-path'))
    .replace(/[<>\s]/g, '')
    .toLowerCase();
  const from = addresses(parsed.from)[0] ?? null;
  return {
    headers,
    from,
    replyTo: addresses(parsed.replyTo),
    to: addresses(parsed.to),
    cc: addresses(parsed.cc),
    returnPath: returnPath || null,
    subject: parsed.subject ?? '',
    date: parsed.date ?? null,
    text: parsed.text ?? '',
    html: typeof parsed.html === 'string' ? parsed.html : null,
    attachments: parsed.attachments.map((a) => ({
      filename: a.filename ?? null,
      contentType: a.contentType.toLowerCase(),
      size: a.size,
      content: a.content,
    })),
    authentication: authenticationResults(headers),
  };
}
