// The MX: smtp-server on MAILROOM_SMTP_PORT. Thin, as DESIGN asks: each SMTP step calls InboundService.
//   connect   per-IP connection limit (421)
//   MAIL      per-IP message rate (451)
//   RCPT      the recipient must resolve on an active hosted domain (550 5.1.1), quota (452)
//   DATA      size (552), SMTP smuggling (550), then InboundService.accept: 250 only once committed
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import type { RateLimiter } from '../../core/ratelimit.ts';
import type { TlsMaterial } from '../../core/tls.ts';
import type { AcceptInput, InboundService } from './service.ts';

export interface MxOptions {
  hostname: string;
  host: string;
  port: number;
  maxMessageSize: number;
  maxRecipients: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  messagesPerIpPerMinute: number;
  /** Accept the PROXY protocol header: from any peer (true) or from these addresses. */
  proxy: boolean | string[];
  tls: TlsMaterial;
}

interface SessionState {
  recipients: AcceptInput['recipients'];
}

export class MxServer {
  readonly #server: SMTPServer;
  readonly #inbound: InboundService;
  readonly #limiter: RateLimiter;
  readonly #log: Logger;
  readonly #o: MxOptions;
  readonly #connectionsPerIp = new Map<string, number>();
  readonly #sessions = new Map<string, SessionState>();

  constructor(inbound: InboundService, limiter: RateLimiter, log: Logger, options: MxOptions) {
    this.#inbound = inbound;
    this.#limiter = limiter;
    this.#log = log;
    this.#o = options;
    useOwnEnhancedCodes();
    this.#server = new SMTPServer({
      name: options.hostname,
      banner: 'Mailroom ESMTP',
      key: options.tls.key,
      cert: options.tls.cert,
      size: options.maxMessageSize,
      maxClients: options.maxConnections,
      maxRecipients: options.maxRecipients,
      hideENHANCEDSTATUSCODES: false,
      useProxy: options.proxy,
      authOptional: true,
      disabledCommands: ['AUTH'],
      hideDSN: true,
      hideREQUIRETLS: true,
      disableReverseLookup: true,
      logger: false,
      socketTimeout: 120_000,
      onConnect: (session, callback) => this.#onConnect(session, callback),
      onClose: (session) => this.#onClose(session),
      onMailFrom: (_address, session, callback) => {
        this.#onMailFrom(session).then(() => callback(), callback);
      },
      onRcptTo: (address, session, callback) => {
        this.#onRcptTo(address.address, session).then(() => callback(), callback);
      },
      onData: (stream, session, callback) => {
        this.#onData(stream, session).then((reply) => callback(null, reply), callback);
      },
    });
    this.#server.on('error', (err) => this.#log.warn({ err }, 'SMTP server error'));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.#server.server.once('error', onError);
      this.#server.listen(this.#o.port, this.#o.host, () => {
        this.#server.server.off('error', onError);
        resolve();
      });
    });
    const port = (this.#server.server.address() as AddressInfo).port;
    this.#log.info({ host: this.#o.host, port }, 'MX listening');
    return port;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #onConnect(session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const ip = session.remoteAddress;
    const open = this.#connectionsPerIp.get(ip) ?? 0;
    if (open >= this.#o.maxConnectionsPerIp) {
      callback(smtpError(421, '4.7.0 Too many connections from your address, try again later'));
      return;
    }
    this.#connectionsPerIp.set(ip, open + 1);
    this.#sessions.set(session.id, { recipients: [] });
    callback();
  }

  #onClose(session: SMTPServerSession): void {
    if (!this.#sessions.delete(session.id)) return;
    const ip = session.remoteAddress;
    const open = (this.#connectionsPerIp.get(ip) ?? 1) - 1;
    if (open > 0) this.#connectionsPerIp.set(ip, open);
    else this.#connectionsPerIp.delete(ip);
  }

  async #onMailFrom(session: SMTPServerSession): Promise<void> {
    const state = this.#state(session);
    state.recipients = [];
    const limit = { name: 'smtp_messages:ip', limit: this.#o.messagesPerIpPerMinute, windowSeconds: 60 };
    const { allowed } = await this.#limiter.hit(limit, session.remoteAddress);
    if (!allowed) throw smtpError(451, '4.7.1 Too many messages from your address, try again later');
  }

  async #onRcptTo(address: string, session: SMTPServerSession): Promise<void> {
    const state = this.#state(session);
    const check = await this.#inbound.checkRecipient(address);
    if (!check.accepted) throw smtpError(check.code, check.message);
    state.recipients = state.recipients.filter((r) => r.recipient.address !== check.recipient.address);
    state.recipients.push({ recipient: check.recipient, entry: check.entry });
  }

  async #onData(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const raw = await readAll(stream);
    if (stream.sizeExceeded)
      throw smtpError(552, `5.3.4 Message exceeds the maximum size of ${this.#o.maxMessageSize} bytes`);
    if (hasSmugglingSequence(raw)) {
      throw smtpError(
        550,
        '5.5.2 Message refused: bare CR or LF next to a line holding only a dot (SMTP smuggling)',
      );
    }
    const state = this.#state(session);
    const result = await this.#inbound.accept({
      raw,
      mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
      recipients: state.recipients,
      remoteIp: session.remoteAddress,
      helo: session.hostNameAppearsAs || '',
      tls: session.secure,
      sessionId: session.id,
    });
    if (!result.accepted) throw smtpError(result.code, result.message);
    return `2.0.0 Ok: queued as ${result.queueId}`;
  }

  #state(session: SMTPServerSession): SessionState {
    let state = this.#sessions.get(session.id);
    if (!state) {
      state = { recipients: [] };
      this.#sessions.set(session.id, state);
    }
    return state;
  }
}

function readAll(stream: SMTPServerDataStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    stream.on('data', (chunk: Buffer) => {
      // Past the limit the stream is only drained; smtp-server flags it as sizeExceeded.
      if (!stream.sizeExceeded) {
        chunks.push(chunk);
        length += chunk.length;
      }
    });
    stream.once('end', () => resolve(Buffer.concat(chunks, length)));
    stream.once('error', reject);
  });
}

/**
 * True when the data holds a line of a single dot with a bare CR or LF on either side. Such a sequence is
 * an end-of-data to some servers and not to others, which is how SMTP smuggling hides a second message
 * (CVE-2023-51766 and relatives); a legitimate client never sends one.
 */
export function hasSmugglingSequence(data: Buffer): boolean {
  for (let at = data.indexOf(0x2e); at !== -1; at = data.indexOf(0x2e, at + 1)) {
    const before = at > 0 ? data[at - 1] : -1;
    const after = at + 1 < data.length ? data[at + 1] : -1;
    const lineStart = before === 0x0a || before === 0x0d;
    const lineEnd = after === 0x0a || after === 0x0d;
    if (!lineStart || !lineEnd) continue;
    const crlfBefore = before === 0x0a && at >= 2 && data[at - 2] === 0x0d;
    const crlfAfter = after === 0x0d && data[at + 2] === 0x0a;
    if (!crlfBefore || !crlfAfter) return true;
  }
  return false;
}

function smtpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

let patched = false;

/**
 * smtp-server picks the enhanced status code from the reply code alone (550 is always 5.1.1). Our replies
 * carry their own (550 5.7.1 for DMARC, 451 4.7.1 for rate limits): a message that starts with one is
 * sent as it is.
 */
function useOwnEnhancedCodes(): void {
  if (patched) return;
  patched = true;
  const proto = SMTPConnection.prototype as unknown as {
    send(code: number, data: unknown, context?: unknown): void;
  };
  const send = proto.send;
  proto.send = function (this: unknown, code: number, data: unknown, context?: unknown) {
    if (typeof data === 'string' && /^[245]\.\d{1,3}\.\d{1,3} /.test(data))
      return send.call(this, code, data, false);
    return send.call(this, code, data, context);
  };
}
