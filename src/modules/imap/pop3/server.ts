// The POP3 server (session.ts says which RFCs) on MAILROOM_POP3_PORT with STLS, and implicit TLS on
// MAILROOM_POP3_TLS_PORT when set. Thin: sessions read and change the INBOX through the mail store,
// as IMAP and the folders API do.
import type { Logger } from 'pino';
import type { TlsMaterial } from '../../../core/tls.ts';
import { AccessListener, type BoundPorts } from '../listener.ts';
import { type Pop3Backend, Pop3Session } from './session.ts';

export type { Pop3Backend } from './session.ts';

export interface Pop3ServerOptions {
  hostname: string;
  host: string;
  port: number;
  /** Implicit TLS port; null: none. */
  tlsPort: number | null;
  tls: TlsMaterial;
  /** Accept logins on a connection that is not encrypted (tests, a TLS-terminating proxy in front). */
  allowInsecureAuth: boolean;
  maxConnections: number;
  maxConnectionsPerIp: number;
}

export class Pop3Server {
  readonly #listener: AccessListener;
  readonly #log: Logger;
  readonly #sessions = new Set<Pop3Session>();

  constructor(backend: Pop3Backend, log: Logger, options: Pop3ServerOptions) {
    this.#log = log;
    this.#listener = new AccessListener(
      { ...options, refusal: '-ERR [SYS/TEMP] Too many connections; try again later\r\n' },
      log,
      (socket, secure) => {
        const session = new Pop3Session(
          socket,
          secure,
          backend,
          {
            hostname: options.hostname,
            allowInsecureAuth: options.allowInsecureAuth,
            secureContext: this.#listener.secureContext,
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
    for (const session of this.#sessions) if (session.mailboxId === mailboxId) session.close(reason);
  }

  async listen(): Promise<BoundPorts> {
    const ports = await this.#listener.listen();
    this.#log.info(ports, 'POP3 listening');
    return ports;
  }

  /** Stops listening and closes every connection; sessions that did not QUIT change nothing. */
  close(): Promise<void> {
    return this.#listener.close();
  }
}
