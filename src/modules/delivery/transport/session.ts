// One SMTP connection to a remote MX, through nodemailer's SMTPConnection: EHLO, STARTTLS (opportunistic,
// or required and verified under MTA-STS enforce), then any number of messages. nodemailer does the
// dialogue (pipelining, dot-stuffing, CRLF line ends, SIZE, 8BITMIME, SMTPUTF8, timeouts); this wraps it
// in promises and turns its outcome into per-recipient results.
import { isAscii } from 'node:buffer';
import { Readable } from 'node:stream';
import type { SecureContext, TLSSocket } from 'node:tls';
import type { NodemailerError } from 'nodemailer/lib/errors.js';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { useFastDataStream } from './data-stream.ts';
import { resultsFromError, resultsFromInfo } from './results.ts';
import type { AttemptResult, OutboundEnvelope, RecipientResult } from './types.ts';

export interface SessionOptions {
  mx: string;
  ip: string;
  port: number;
  /** The local address to bind to (one of MAILROOM_OUTBOUND_IPS); null: the system picks. */
  localAddress: string | null;
  /** EHLO name: the bound address's own HELO name when it has one, else MAILROOM_HOSTNAME. */
  heloName: string;
  /** MTA-STS enforce: STARTTLS required and the certificate verified for the MX host name. */
  verifyTls: boolean;
  /** Trust anchors (system roots plus extra ones); undefined: the system roots. */
  secureContext: SecureContext | undefined;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  /** Which deliveries may share this connection (see Transport). */
  key: string;
  /** Called once when the connection ends, whoever ended it. */
  onGone: (session: SmtpSession) => void;
}

export interface SendOutcome {
  recipients: RecipientResult[];
  /** The session is in a clean state and may carry another message. */
  reusable: boolean;
  /** The connection was found dead before any of the message was sent: safe to send on a new one. */
  stale: boolean;
}

/** How long a QUIT may take before the socket is simply destroyed. */
const QUIT_GRACE_MS = 2_000;
const CONNECTION_ERRORS = new Set(['ECONNECTION', 'ESOCKET', 'ETIMEDOUT', 'EPROTOCOL', 'ETLS']);

export class SmtpSession {
  readonly mx: string;
  readonly ip: string;
  readonly localAddress: string | null;
  readonly key: string;
  /** Messages sent over this connection so far. */
  messages = 0;
  #tls: AttemptResult['tls'] = null;
  readonly #conn: SMTPConnection;
  #gone = false;

  private constructor(conn: SMTPConnection, options: SessionOptions) {
    this.#conn = conn;
    this.mx = options.mx;
    this.ip = options.ip;
    this.localAddress = options.localAddress;
    this.key = options.key;
    // An 'error' with no listener would throw; every error also ends the connection ('end').
    conn.on('error', () => {});
    conn.once('end', () => {
      this.#gone = true;
      options.onGone(this);
    });
  }

  /** Connects, reads the greeting, EHLO and STARTTLS. Rejects with the reason it could not. */
  static open(options: SessionOptions): Promise<SmtpSession> {
    const conn = new SMTPConnection({
      host: options.ip,
      port: options.port,
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      name: options.heloName,
      servername: options.mx,
      secure: false,
      requireTLS: options.verifyTls,
      connectionTimeout: options.connectTimeoutMs,
      greetingTimeout: options.commandTimeoutMs,
      socketTimeout: options.commandTimeoutMs,
      // Once we close (after the reply to QUIT, or on a failure) there is nothing left to wait for.
      socketCloseTimeout: 0,
      logger: false,
      tls: {
        servername: options.mx,
        // Opportunistic TLS takes any certificate (RFC 3207 4.1 clients do not verify by default);
        // `authorized` in the result still says whether it verified.
        rejectUnauthorized: options.verifyTls,
        secureContext: options.secureContext,
      },
    });
    useFastDataStream(conn);
    const session = new SmtpSession(conn, options);
    return new Promise((resolve, reject) => {
      const fail = (err: Error) => {
        conn.removeListener('error', fail);
        conn.removeListener('end', closed);
        conn.close();
        reject(err);
      };
      const closed = () => fail(new Error('Connection closed before the session was set up'));
      conn.once('error', fail);
      conn.once('end', closed);
      conn.connect((err) => {
        if (err) return fail(err);
        conn.removeListener('error', fail);
        conn.removeListener('end', closed);
        session.#tls = tlsOf(conn);
        resolve(session);
      });
    });
  }

  get tls(): AttemptResult['tls'] {
    return this.#tls;
  }

  get gone(): boolean {
    return this.#gone;
  }

  /** Sends one message; never rejects. After a refused transaction the session is RSET for reuse. */
  async send(envelope: OutboundEnvelope): Promise<SendOutcome> {
    const reused = this.messages > 0;
    this.messages++;
    // A stream rather than the buffer: whether nodemailer started reading it tells whether any of
    // the message went out (nodemailer's own pool uses the same test).
    const message = Readable.from([envelope.raw], { objectMode: false });
    const sent = await new Promise<{
      err: NodemailerError | null;
      info: SMTPConnection.SentMessageInfo | null;
    }>((resolve) => {
      this.#conn.send(
        {
          from: envelope.mailFrom,
          to: envelope.recipients,
          size: envelope.raw.length,
          // 8-bit bytes: declare BODY=8BITMIME when the server supports it (RFC 6152).
          use8BitMime: !isAscii(envelope.raw),
        },
        message,
        (err, info) => resolve({ err, info: err ? null : info }),
      );
    });
    if (sent.info)
      return {
        recipients: resultsFromInfo(envelope.recipients, sent.info),
        reusable: !this.#gone,
        stale: false,
      };
    const err = sent.err!;
    const recipients = resultsFromError(envelope.recipients, err, this.#rejections());
    const connectionLost = CONNECTION_ERRORS.has(err.code ?? '') || err.responseCode === 421 || this.#gone;
    if (connectionLost) {
      this.close();
      return { recipients, reusable: false, stale: reused && !message.readableDidRead };
    }
    return { recipients, reusable: await this.#reset(), stale: false };
  }

  /** QUIT, and resolve once the socket has closed (a server that does not answer gets QUIT_GRACE_MS). */
  quit(): Promise<void> {
    const socket = this.#conn._socket;
    if (!socket || socket.destroyed) {
      this.#conn.close();
      return Promise.resolve();
    }
    const closed = new Promise<void>((resolve) => {
      const timer = setTimeout(() => socket.destroy(), QUIT_GRACE_MS);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    if (this.#gone) this.#conn.close();
    else this.#conn.quit();
    return closed;
  }

  /** Drops the connection without QUIT (it failed, or is in an unknown state). */
  close(): void {
    this.#conn.close();
  }

  /** RSET after a refused transaction, so the next message starts clean; false when that failed. */
  #reset(): Promise<boolean> {
    if (this.#gone) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.#conn.reset((err) => {
        if (err) this.close();
        resolve(!err);
      });
    });
  }

  /**
   * The RCPT replies of the transaction that just failed. nodemailer hands them over on success or
   * when every recipient was refused, but not when DATA fails afterwards; they are still on its
   * envelope state then, so a refused recipient keeps its own reply instead of DATA's.
   */
  #rejections(): NodemailerError[] {
    const state = (this.#conn as unknown as { _envelope?: { rejectedErrors?: unknown } })._envelope;
    return Array.isArray(state?.rejectedErrors) ? (state.rejectedErrors as NodemailerError[]) : [];
  }
}

function tlsOf(conn: SMTPConnection): AttemptResult['tls'] {
  if (!conn.secure || !conn._socket) return null;
  const socket = conn._socket as TLSSocket;
  return {
    version: socket.getProtocol() ?? 'unknown',
    cipher: socket.getCipher()?.name ?? 'unknown',
    authorized: socket.authorized === true,
  };
}
