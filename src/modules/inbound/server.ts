// The MX: smtp-server on MAILROOM_SMTP_PORT. Thin, as DESIGN asks: each SMTP step calls InboundService.
//   connect   per-IP connection limit (421)
//   MAIL      back-pressure: a processing or delivery backlog over its limit (451 4.3.1); per-IP rate (451)
//   RCPT      the recipient must resolve on an active hosted domain (550 5.1.1), quota (452)
//   DATA      size (552), SMTP smuggling (550), then InboundService.accept: 250 only once committed
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { RateLimiter } from '../../core/ratelimit.ts';
import {
  hasSmugglingSequence,
  readMessage,
  SMUGGLING_REPLY,
  smtpError,
  useOwnEnhancedCodes,
} from '../../core/smtp.ts';
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
  /** Whether the installation keeps up: while it does not, new mail is refused for later. */
  backlog: { readonly acceptingMail: boolean } | null;
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
    if (this.#o.backlog && !this.#o.backlog.acceptingMail) {
      throw smtpError(451, '4.3.1 Insufficient system resources: mail waits to be filed, try again later');
    }
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
    const raw = await readMessage(stream);
    if (stream.sizeExceeded)
      throw smtpError(552, `5.3.4 Message exceeds the maximum size of ${this.#o.maxMessageSize} bytes`);
    if (hasSmugglingSequence(raw)) throw smtpError(550, SMUGGLING_REPLY);
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
