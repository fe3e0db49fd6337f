// The IMAP server (RFC 3501 and the extensions session.ts lists) on MAILROOM_IMAP_PORT with STARTTLS,
// and implicit TLS on MAILROOM_IMAP_TLS_PORT when set. Thin: sessions call the mail store as the
// folders API does.
import type { Logger } from 'pino';
import type { TlsMaterial } from '../../core/tls.ts';
import { COMMANDS } from './commands.ts';
import { AccessListener, type BoundPorts } from './listener.ts';
import type { ParserLimits } from './protocol/parser.ts';
import { type ImapBackend, ImapSession } from './session.ts';

export interface ImapServerOptions {
  hostname: string;
  host: string;
  port: number;
  tlsPort: number | null;
  tls: TlsMaterial;
  allowInsecureAuth: boolean;
  appendLimit: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  version: string;
}

/** A command line may be long (a UID set of a big folder), but not unbounded. */
const MAX_LINE_BYTES = 256 * 1024;

export class ImapServer {
  readonly #listener: AccessListener;
  readonly #sessions = new Set<ImapSession>();
  readonly #log: Logger;

  constructor(backend: ImapBackend, log: Logger, options: ImapServerOptions) {
    this.#log = log;
    const limits: ParserLimits = {
      maxLineBytes: MAX_LINE_BYTES,
      maxLiteralBytes: options.appendLimit,
      maxCommandBytes: options.appendLimit + MAX_LINE_BYTES,
      maxDepth: 16,
    };
    this.#listener = new AccessListener(
      { ...options, refusal: '* BYE Too many connections; try again later\r\n' },
      log,
      (socket, secure) => {
        const session = new ImapSession(
          socket,
          secure,
          backend,
          {
            hostname: options.hostname,
            appendLimit: options.appendLimit,
            allowInsecureAuth: options.allowInsecureAuth,
            secureContext: this.#listener.secureContext,
            limits,
            version: options.version,
            commands: COMMANDS,
          },
          log,
        );
        this.#sessions.add(session);
        socket.once('close', () => this.#sessions.delete(session));
        session.start();
      },
    );
  }

  /** Ends the sessions of a mailbox that may no longer log in (suspended, deactivated, deleted). */
  disconnect(mailboxId: string, reason: string): void {
    for (const session of this.#sessions) if (session.user?.mailboxId === mailboxId) session.close(reason);
  }

  async listen(): Promise<BoundPorts> {
    const ports = await this.#listener.listen();
    this.#log.info(ports, 'IMAP listening');
    return ports;
  }

  async close(): Promise<void> {
    for (const session of this.#sessions) session.close('Server shutting down');
    await this.#listener.close();
  }
}
