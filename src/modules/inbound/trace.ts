// Trace headers the MX adds on acceptance (RFC 5321 §4.4 Received, RFC 8601 Authentication-Results), and
// removal of Authentication-Results that claim to come from us: a sender must not be able to forge our
// verdict (RFC 8601 §5).
import { headerLength } from '../../core/message.ts';
import type { MessageAuth } from '../messages/tables.ts';

export function traceHeaders(
  input: {
    mailFrom: string;
    remoteIp: string;
    helo: string;
    tls: boolean;
    recipients: { recipient: { address: string } }[];
  },
  auth: MessageAuth,
  hostname: string,
  queueId: string,
): Buffer {
  const helo = input.helo.replace(/[^\x21-\x7e]/g, '').slice(0, 255) || 'unknown';
  const protocol = input.tls ? 'ESMTPS' : 'ESMTP';
  const rcpt = input.recipients.length === 1 ? `\r\n\tfor <${input.recipients[0].recipient.address}>` : '';
  const received = `Received: from ${helo} ([${input.remoteIp}])\r\n\tby ${hostname} (Mailroom) with ${protocol} id ${queueId}${rcpt};\r\n\t${new Date().toUTCString().replace('GMT', '+0000')}\r\n`;
  const results = `Authentication-Results: ${auth.authentication_results}\r\n`;
  return Buffer.from(results + received);
}

/** The message without header fields of the form `Authentication-Results: <hostname>; …`. */
export function withoutForgedResults(raw: Buffer, hostname: string): Buffer {
  const headerEnd = headerLength(raw);
  const header = raw.subarray(0, headerEnd).toString('latin1');
  if (!/^authentication-results:/im.test(header)) return raw;
  const lines = header.split(/(?<=\n)(?=[^ \t])/);
  const own = new RegExp(`^authentication-results:\\s*${hostname.replace(/\./g, '\\.')}\\s*(;|$)`, 'i');
  const kept = lines.filter((field) => !own.test(field));
  if (kept.length === lines.length) return raw;
  return Buffer.concat([Buffer.from(kept.join(''), 'latin1'), raw.subarray(headerEnd)]);
}
