// A programmable remote MX for tests (and benchmarks): smtp-server on loopback that keeps every message
// it accepts and answers chosen senders or recipients with chosen replies. It counts connections, and
// the most open at once, so tests can see connection reuse and concurrency limits.
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { readMessage, smtpError, useOwnEnhancedCodes } from '../../src/core/smtp.ts';
import { until } from './until.ts';

export interface SinkMessage {
  mailFrom: string;
  rcptTo: string[];
  raw: Buffer;
  tls: boolean;
  connectionId: string;
  /** The client's address as the sink saw it (the sending IP), and the name it greeted with (EHLO). */
  remoteAddress: string;
  helo: string;
  receivedAt: Date;
}
/** e.g. `{ code: 550, message: '5.1.1 no such user' }`; an enhanced code at the start is sent as it is. */
export interface SinkReply {
  code: number;
  message: string;
}
export interface SmtpSinkOptions {
  /** Serve STARTTLS with this key/cert; omitted: no STARTTLS offered. */
  tls?: { key: string | Buffer; cert: string | Buffer };
  port?: number; // 0 default
  /**
   * Require AUTH XOAUTH2 (also without TLS), accepted when `isLive` names the token's user as the one
   * logging in (test/support/oauth-server.ts); any other login is refused as Gmail refuses it.
   */
  xoauth2?: { isLive(accessToken: string): string | null };
  /** Require AUTH PLAIN or LOGIN (also without TLS) with one of these usernames and its password. */
  passwords?: Record<string, string>;
  /** Hands each accepted message on (a local delivery agent) before answering DATA; a throw answers 451. */
  onMessage?: (message: SinkMessage) => Promise<void>;
}
export interface SmtpSink {
  port: number;
  messages: SinkMessage[];
  /** AUTH attempts (with `xoauth2`), in order. */
  logins: { username: string; ok: boolean }[];
  /** Connections opened so far, and the most that were open at once. */
  connections: number;
  maxConcurrent: number;
  /** Connections open now. */
  readonly open: number;
  /** Reply to RCPT TO for this address (lower-cased) with this answer; null clears. */
  onRecipient(address: string, reply: SinkReply | null): void;
  /** Reply to the end of DATA with this answer for messages to this recipient; null clears. */
  onData(address: string, reply: SinkReply | null): void;
  /** Reply to MAIL FROM with this sender (lower-cased; '' is the null sender) with this answer; null clears. */
  onMailFrom(address: string, reply: SinkReply | null): void;
  /** A slow remote: hold the reply to the end of DATA for messages to this recipient for `ms`; null clears. */
  delayData(address: string, ms: number | null): void;
  /** Messages whose reply to DATA is being held now (see delayData); not in `messages` yet. */
  readonly delayed: readonly SinkMessage[];
  /**
   * The remote fails mid-transaction: every message held now (see delayData) is answered 451 when its
   * hold ends and is not kept. Returns them.
   */
  abortDelayed(): SinkMessage[];
  /** Resolves when at least n messages were accepted (uses test/support/until.ts style polling with a timeout). */
  waitFor(n: number, timeoutMs?: number): Promise<SinkMessage[]>;
  close(): Promise<void>;
}

const MAX_SIZE = 100 * 1024 * 1024;

export async function startSmtpSink(options: SmtpSinkOptions = {}): Promise<SmtpSink> {
  useOwnEnhancedCodes();
  const senderReplies = new Map<string, SinkReply>();
  const recipientReplies = new Map<string, SinkReply>();
  const dataReplies = new Map<string, SinkReply>();
  const dataDelays = new Map<string, number>();
  const delayed = new Set<SinkMessage>();
  const aborted = new Set<SinkMessage>();
  let open = 0;

  const server = new SMTPServer({
    name: 'sink.test',
    banner: 'sink ESMTP',
    ...(options.tls ? { key: options.tls.key, cert: options.tls.cert } : { hideSTARTTLS: true }),
    size: MAX_SIZE,
    authOptional: !options.xoauth2 && !options.passwords,
    ...(options.xoauth2 ? { authMethods: ['XOAUTH2'], allowInsecureAuth: true } : {}),
    ...(options.passwords ? { authMethods: ['PLAIN', 'LOGIN'], allowInsecureAuth: true } : {}),
    disabledCommands: [
      ...(options.xoauth2 || options.passwords ? [] : ['AUTH']),
      ...(options.tls ? [] : ['STARTTLS']),
    ],
    onAuth: (auth, _session, callback) => {
      if (options.passwords) {
        const username = auth.username ?? '';
        const ok = options.passwords[username] !== undefined && options.passwords[username] === auth.password;
        sink.logins.push({ username, ok });
        callback(
          ok ? null : new Error('5.7.8 Authentication credentials invalid'),
          ok ? { user: username } : undefined,
        );
        return;
      }
      const user = auth.accessToken ? options.xoauth2?.isLive(auth.accessToken) : null;
      const username = auth.username ?? '';
      const ok = !!user && user.toLowerCase() === username.toLowerCase();
      sink.logins.push({ username, ok });
      // smtp-server sends this as the XOAUTH2 error challenge, then answers 535.
      callback(null, ok ? { user } : { data: { status: '401', schemes: 'bearer' } });
    },
    hideENHANCEDSTATUSCODES: false,
    disableReverseLookup: true,
    logger: false,
    closeTimeout: 100,
    onConnect: (_session, callback) => {
      sink.connections++;
      open++;
      sink.maxConcurrent = Math.max(sink.maxConcurrent, open);
      callback();
    },
    onClose: () => {
      open--;
    },
    onMailFrom: (address, _session, callback) => {
      callback(replyError(senderReplies.get(address.address.toLowerCase())));
    },
    onRcptTo: (address, _session, callback) => {
      callback(replyError(recipientReplies.get(address.address.toLowerCase())));
    },
    onData: (stream, session, callback) => {
      readMessage(stream)
        .then(async (raw) => {
          const message: SinkMessage = {
            mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            rcptTo: session.envelope.rcptTo.map((r) => r.address),
            raw,
            tls: session.secure,
            connectionId: session.id,
            remoteAddress: session.remoteAddress.replace(/^::ffff:/, ''),
            helo: session.hostNameAppearsAs,
            receivedAt: new Date(),
          };
          const delay = dataDelayFor(session);
          if (delay) {
            delayed.add(message);
            await sleep(delay);
            delayed.delete(message);
            if (aborted.delete(message))
              return callback(replyError({ code: 451, message: '4.3.0 transaction aborted' }));
            message.receivedAt = new Date();
          }
          const reply = dataReplyFor(session);
          if (reply && reply.code >= 400) return callback(replyError(reply));
          if (options.onMessage) {
            try {
              await options.onMessage(message);
            } catch (err) {
              return callback(replyError({ code: 451, message: `4.3.0 ${(err as Error).message}` }));
            }
          }
          sink.messages.push(message);
          callback(null, reply?.message ?? '2.0.0 Ok: queued');
        })
        .catch(callback);
    },
  });
  server.on('error', () => {});

  const dataReplyFor = (session: SMTPServerSession): SinkReply | undefined => {
    if (!dataReplies.size) return undefined;
    for (const rcpt of session.envelope.rcptTo) {
      const reply = dataReplies.get(rcpt.address.toLowerCase());
      if (reply) return reply;
    }
    return undefined;
  };

  const dataDelayFor = (session: SMTPServerSession): number => {
    if (!dataDelays.size) return 0;
    return Math.max(0, ...session.envelope.rcptTo.map((r) => dataDelays.get(r.address.toLowerCase()) ?? 0));
  };

  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });

  const set = (map: Map<string, SinkReply>) => (address: string, reply: SinkReply | null) => {
    if (reply) map.set(address.toLowerCase(), reply);
    else map.delete(address.toLowerCase());
  };

  const sink: SmtpSink = {
    port: (server.server.address() as AddressInfo).port,
    messages: [],
    logins: [],
    connections: 0,
    maxConcurrent: 0,
    get open() {
      return open;
    },
    onRecipient: set(recipientReplies),
    onData: set(dataReplies),
    onMailFrom: set(senderReplies),
    delayData: (address, ms) => {
      if (ms) dataDelays.set(address.toLowerCase(), ms);
      else dataDelays.delete(address.toLowerCase());
    },
    get delayed() {
      return [...delayed];
    },
    abortDelayed: () => {
      for (const m of delayed) aborted.add(m);
      return [...delayed];
    },
    waitFor: (n, timeoutMs = 10_000) =>
      until(
        async () => sink.messages,
        (messages) => messages.length >= n,
        timeoutMs,
      ),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  return sink;
}

/** The error smtp-server answers a command with; a 2xx reply is no error (the command is accepted). */
function replyError(reply: SinkReply | undefined): Error | null {
  if (!reply || reply.code < 400) return null;
  return smtpError(reply.code, reply.message);
}
