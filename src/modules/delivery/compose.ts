// Building and finishing outbound messages: MIME from the send API's fields (nodemailer's composer),
// the header facts the pipeline needs from a submitted message, the Message-ID and Date a message must
// carry, and DKIM signatures.
import { domainToASCII } from 'node:url';
import { dkimSign } from 'mailauth';
import { headerLength } from '../../core/message.ts';
import addressparser from 'nodemailer/lib/addressparser';
import MailComposer from 'nodemailer/lib/mail-composer';

export interface ComposeInput {
  from: { address: string; name?: string | null };
  to: string[];
  cc: string[];
  replyTo: string[];
  subject: string;
  text?: string | null;
  html?: string | null;
  attachments: {
    filename: string;
    content: Buffer;
    contentType?: string | null;
    contentId?: string | null;
  }[];
  headers: Record<string, string>;
  messageId: string;
  date: Date;
}

/** The RFC 5322 message for a send request. Bcc recipients are envelope-only: no Bcc header is written. */
export async function composeMessage(input: ComposeInput): Promise<Buffer> {
  const composer = new MailComposer({
    from: input.from.name ? { name: input.from.name, address: input.from.address } : input.from.address,
    to: input.to,
    cc: input.cc.length ? input.cc : undefined,
    replyTo: input.replyTo.length ? input.replyTo : undefined,
    subject: input.subject,
    text: input.text ?? undefined,
    html: input.html ?? undefined,
    attachments: input.attachments.map((a) => ({
      filename: a.filename,
      content: a.content,
      contentType: a.contentType ?? undefined,
      cid: a.contentId ?? undefined,
    })),
    headers: input.headers,
    messageId: input.messageId,
    date: input.date,
  });
  return composer.compile().build();
}

/** A parsed address: the local part as written, the domain lower case A-label. */
export interface OutboundAddress {
  address: string;
  domain: string;
}

const LOCAL_PART = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$/;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$/;

/** A plain `local@domain` recipient or sender; null for anything else (quoted parts, IP literals, routes). */
export function parseAddress(raw: string): OutboundAddress | null {
  const value = raw.trim();
  const at = value.lastIndexOf('@');
  if (at <= 0 || at === value.length - 1) return null;
  const local = value.slice(0, at);
  const written = value
    .slice(at + 1)
    .toLowerCase()
    .replace(/\.$/, '');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the test is for ASCII itself
  const domain = /^[\x00-\x7f]*$/.test(written) ? written : domainToASCII(written);
  if (local.length > 64 || !LOCAL_PART.test(local)) return null;
  if (!DOMAIN.test(domain) || /^[0-9.]+$/.test(domain)) return null;
  return { address: `${local}@${domain}`, domain };
}

/** The header block of a message (up to the first empty line), unfolded into name/value pairs. */
export function readHeaders(raw: Buffer): { name: string; value: string }[] {
  const block = raw.subarray(0, headerLength(raw)).toString('latin1');
  const headers: { name: string; value: string }[] = [];
  for (const line of block.split(/\r?\n(?![ \t])/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    headers.push({
      name: line.slice(0, colon).trim().toLowerCase(),
      value: line
        .slice(colon + 1)
        .replace(/\r?\n[ \t]+/g, ' ')
        .trim(),
    });
  }
  return headers;
}

/** The addresses of the From header (a header may name several authors, RFC 5322 3.6.2). */
export function fromAddresses(headers: { name: string; value: string }[]): string[] {
  const from = headers.filter((h) => h.name === 'from');
  if (from.length !== 1) return [];
  return addressparser(from[0].value, { flatten: true })
    .map((a) => ('address' in a && a.address ? a.address : ''))
    .filter(Boolean);
}

/**
 * Adds what a submitted message lacks and every message must carry (RFC 5322 3.6): Date and
 * Message-ID, as a submission server does for its clients (RFC 6409 8). Returns the message and its
 * Message-ID.
 */
export function completeHeaders(
  raw: Buffer,
  headers: { name: string; value: string }[],
  makeMessageId: () => string,
  now: Date,
): { raw: Buffer; messageId: string } {
  const added: string[] = [];
  let messageId = headers.find((h) => h.name === 'message-id')?.value ?? '';
  if (!messageId) {
    messageId = makeMessageId();
    added.push(`Message-ID: ${messageId}`);
  }
  if (!headers.some((h) => h.name === 'date'))
    added.push(`Date: ${now.toUTCString().replace('GMT', '+0000')}`);
  if (!added.length) return { raw, messageId };
  return { raw: Buffer.concat([Buffer.from(`${added.join('\r\n')}\r\n`), raw]), messageId };
}

export interface SigningKey {
  selector: string;
  algorithm: 'rsa' | 'ed25519';
  /** PEM. */
  privateKey: string;
}

/** The headers a signature covers: the ones that say who sent what to whom, and the MIME structure. */
const SIGNED_HEADERS = [
  'from',
  'sender',
  'reply-to',
  'subject',
  'date',
  'message-id',
  'to',
  'cc',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
  'in-reply-to',
  'references',
  'list-unsubscribe',
  'list-unsubscribe-post',
];

/** DKIM-Signature headers, one per key (RSA and Ed25519 when the domain has both), prepended. */
export async function signMessage(raw: Buffer, domain: string, keys: SigningKey[]): Promise<Buffer> {
  if (!keys.length) return raw;
  const { signatures, errors } = await dkimSign(raw, {
    canonicalization: 'relaxed/relaxed',
    headerList: SIGNED_HEADERS,
    signatureData: keys.map((k) => ({
      signingDomain: domain,
      selector: k.selector,
      privateKey: k.privateKey,
      algorithm: k.algorithm === 'ed25519' ? 'ed25519-sha256' : 'rsa-sha256',
    })),
  } as never);
  if (errors?.length) {
    const reasons = (errors as unknown as { selector: string; err: Error }[]).map(
      (e) => `${e.selector}: ${e.err?.message}`,
    );
    throw new Error(`DKIM signing failed: ${reasons.join('; ')}`);
  }
  return Buffer.concat([Buffer.from(signatures), raw]);
}
