// SMTP submission (RFC 6409): smtp-server on MAILROOM_SUBMISSION_PORT with STARTTLS, and with implicit TLS
// (RFC 8314) on MAILROOM_SUBMISSION_TLS_PORT when set. Thin, as DESIGN asks: each step calls the backend.
//   AUTH      PLAIN or LOGIN, only under TLS unless allowed (538 5.7.11); 535 5.7.8 bad, 454 4.7.0 limited
//   MAIL      login required (530 5.7.0); no null sender (553 5.7.1); the identity may use it (checkSender)
//   RCPT      up to the recipient limit
//   DATA      size (552), SMTP smuggling (550), then submit: 250 only once queued
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import {
  SMTPServer,
  type SMTPServerAuthentication,
  type SMTPServerAuthenticationResponse,
  type SMTPServerDataStream,
  type SMTPServerSession,
} from 'smtp-server';
import {
  hasSmugglingSequence,
  readMessage,
  SMUGGLING_REPLY,
  smtpError,
  useOwnEnhancedCodes,
} from '../../core/smtp.ts';
import type { TlsMaterial } from '../../core/tls.ts';
import type { SenderIdentity, SendRefusal } from '../delivery/identity.ts';
import type { SubmitInput } from '../delivery/service.ts';
import type { AuthResult } from './service.ts';

export interface SubmissionBackend {
  authenticate(username: string, password: string, remoteIp: string, sessionId?: string): Promise<AuthResult>;
  /** MAIL FROM check: may this identity use this envelope sender? */
  checkSender(identity: SenderIdentity, address: string): Promise<{ ok: true } | SendRefusal>;
  /** After DATA: queue the message (checks the From header itself too). */
  submit(input: SubmitInput): Promise<{ ok: true; messageId: string } | SendRefusal>;
}

export interface SubmissionServerOptions {
  hostname: string;
  host: string;
  port: number;
  /** Implicit TLS port; null: none. */
  tlsPort: number | null;
  maxMessageSize: number;
  maxRecipients: number;
  /** Accept AUTH on a connection that is not encrypted (tests, a TLS-terminating proxy in front). */
  allowInsecureAuth: boolean;
  tls: TlsMaterial;
}

export interface SubmissionPorts {
  port: number;
  tlsPort?: number;
}

const AUTH_FAILED = '5.7.8 Authentication credentials invalid';
const AUTH_LIMITED = '4.7.0 Too many failed logins; try again later';
const AUTH_UNAVAILABLE = '4.7.0 Temporary authentication failure; try again later';

export class SubmissionServer {
  readonly #backend: SubmissionBackend;
  readonly #log: Logger;
  readonly #o: SubmissionServerOptions;
  readonly #plain: SMTPServer;
  readonly #implicit: SMTPServer | null;

  constructor(backend: SubmissionBackend, log: Logger, options: SubmissionServerOptions) {
    this.#backend = backend;
    this.#log = log;
    this.#o = options;
    useOwnEnhancedCodes();
    this.#plain = this.#create(false);
    this.#implicit = options.tlsPort === null ? null : this.#create(true);
  }

  #create(secure: boolean): SMTPServer {
    const server = new SMTPServer({
      name: this.#o.hostname,
      banner: 'Mailroom ESMTP submission',
      secure,
      key: this.#o.tls.key,
      cert: this.#o.tls.cert,
      size: this.#o.maxMessageSize,
      maxRecipients: this.#o.maxRecipients,
      hideENHANCEDSTATUSCODES: false,
      authMethods: ['PLAIN', 'LOGIN'],
      authOptional: false,
      authRequiredMessage: '5.7.0 Authentication required',
      allowInsecureAuth: this.#o.allowInsecureAuth,
      hideDSN: true,
      hideREQUIRETLS: true,
      disableReverseLookup: true,
      logger: false,
      socketTimeout: 300_000,
      onAuth: (auth, session, callback) => {
        this.#onAuth(auth, session).then((response) => callback(null, response), callback);
      },
      onMailFrom: (address, session, callback) => {
        this.#onMailFrom(address.address, session).then(() => callback(), callback);
      },
      onData: (stream, session, callback) => {
        this.#onData(stream, session).then((reply) => callback(null, reply), callback);
      },
    });
    server.on('error', (err) => this.#log.warn({ err }, 'submission server error'));
    return server;
  }

  async listen(): Promise<SubmissionPorts> {
    const port = await this.#listen(this.#plain, this.#o.port);
    this.#log.info({ host: this.#o.host, port }, 'submission listening (STARTTLS)');
    if (!this.#implicit || this.#o.tlsPort === null) return { port };
    const tlsPort = await this.#listen(this.#implicit, this.#o.tlsPort);
    this.#log.info({ host: this.#o.host, port: tlsPort }, 'submission listening (implicit TLS)');
    return { port, tlsPort };
  }

  async #listen(server: SMTPServer, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      server.server.once('error', onError);
      server.listen(port, this.#o.host, () => {
        server.server.off('error', onError);
        resolve();
      });
    });
    return (server.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const servers = this.#implicit ? [this.#plain, this.#implicit] : [this.#plain];
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }

  async #onAuth(
    auth: SMTPServerAuthentication,
    session: SMTPServerSession,
  ): Promise<SMTPServerAuthenticationResponse> {
    const username = auth.username ?? '';
    // AUTH PLAIN may name another identity to act as (RFC 4616 authzid): not something we grant.
    if (auth.method === 'PLAIN' && auth.authzid && auth.authcid && auth.authzid !== auth.authcid)
      throw smtpError(535, AUTH_FAILED);
    if (!username || typeof auth.password !== 'string') throw smtpError(535, AUTH_FAILED);
    let result: AuthResult;
    try {
      result = await this.#backend.authenticate(username, auth.password, session.remoteAddress, session.id);
    } catch (err) {
      this.#log.error({ err }, 'submission login check failed');
      throw smtpError(454, AUTH_UNAVAILABLE);
    }
    if (result.ok) return { user: result.identity };
    throw smtpError(result.limited ? 454 : 535, result.limited ? AUTH_LIMITED : AUTH_FAILED);
  }

  async #onMailFrom(address: string, session: SMTPServerSession): Promise<void> {
    const identity = identityOf(session);
    if (!address) throw smtpError(553, '5.7.1 A submitted message needs a sender address (no null sender)');
    const check = await this.#backend.checkSender(identity, address);
    if (!check.ok) throw smtpError(check.code, check.message);
  }

  async #onData(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const raw = await readMessage(stream);
    if (stream.sizeExceeded)
      throw smtpError(552, `5.3.4 Message exceeds the maximum size of ${this.#o.maxMessageSize} bytes`);
    if (hasSmugglingSequence(raw)) throw smtpError(550, SMUGGLING_REPLY);
    const mailFrom = session.envelope.mailFrom;
    const result = await this.#backend.submit({
      identity: identityOf(session),
      mailFrom: mailFrom ? mailFrom.address : '',
      rcptTo: session.envelope.rcptTo.map((r) => r.address),
      raw,
      remoteIp: session.remoteAddress,
      helo: session.hostNameAppearsAs || '',
      tls: session.secure,
    });
    if (!result.ok) throw smtpError(result.code, result.message);
    return `2.0.0 Ok: queued as ${result.messageId}`;
  }
}

/** The identity the session logged in as (smtp-server refuses MAIL, RCPT and DATA before a login). */
function identityOf(session: SMTPServerSession): SenderIdentity {
  const identity = session.user as SenderIdentity | undefined;
  if (!identity) throw smtpError(530, '5.7.0 Authentication required');
  return identity;
}
