// The TCP side of the mailbox access servers (IMAP, POP3): a plain port (STARTTLS/STLS) and, when
// configured, an implicit-TLS one; connections counted in total and per client address, those over
// the limits refused with the protocol's own goodbye.
import net, { type AddressInfo, type Socket } from 'node:net';
import tls, { type SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { TlsMaterial } from '../../core/tls.ts';

/** A TLS handshake that takes longer holds a connection slot for nothing. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

export interface AccessListenerOptions {
  host: string;
  port: number;
  tlsPort: number | null;
  tls: TlsMaterial;
  maxConnections: number;
  maxConnectionsPerIp: number;
  /** What a refused client reads before the connection closes. */
  refusal: string;
}

export interface BoundPorts {
  port: number;
  tlsPort?: number;
}

export class AccessListener {
  readonly secureContext: SecureContext;
  readonly #o: AccessListenerOptions;
  readonly #log: Logger;
  readonly #plain: net.Server;
  readonly #implicit: tls.Server | null;
  readonly #sockets = new Set<Socket>();
  readonly #perIp = new Map<string, number>();

  /** `accept` gets each admitted connection and whether it is already encrypted. */
  constructor(
    options: AccessListenerOptions,
    log: Logger,
    accept: (socket: Socket, secure: boolean) => void,
  ) {
    this.#o = options;
    this.#log = log;
    this.secureContext = tls.createSecureContext({ key: options.tls.key, cert: options.tls.cert });
    this.#plain = net.createServer((socket) => {
      if (this.#counted(socket)) accept(socket, false);
      else socket.end(this.#o.refusal);
    });
    this.#implicit =
      options.tlsPort === null
        ? null
        : tls.createServer(
            { key: options.tls.key, cert: options.tls.cert, handshakeTimeout: HANDSHAKE_TIMEOUT_MS },
            (socket) => {
              socket.setNoDelay(true);
              accept(socket, true);
            },
          );
    // Counted as the TCP connection arrives, before the handshake: handshakes in flight hold slots too.
    this.#implicit?.on('connection', (socket: Socket) => {
      if (!this.#counted(socket)) socket.destroy();
    });
    this.#implicit?.on('tlsClientError', (err) => this.#log.debug({ err }, 'TLS handshake failed'));
  }

  /** Counts a connection in, unless it is over a limit; it is counted out when it closes. */
  #counted(socket: Socket): boolean {
    const ip = socket.remoteAddress ?? 'unknown';
    const fromIp = this.#perIp.get(ip) ?? 0;
    socket.on('error', () => {});
    if (this.#sockets.size >= this.#o.maxConnections || fromIp >= this.#o.maxConnectionsPerIp) return false;
    this.#sockets.add(socket);
    this.#perIp.set(ip, fromIp + 1);
    socket.once('close', () => {
      this.#sockets.delete(socket);
      const left = (this.#perIp.get(ip) ?? 1) - 1;
      if (left > 0) this.#perIp.set(ip, left);
      else this.#perIp.delete(ip);
    });
    socket.setNoDelay(true);
    return true;
  }

  async listen(): Promise<BoundPorts> {
    const port = await bind(this.#plain, this.#o.host, this.#o.port);
    if (!this.#implicit || this.#o.tlsPort === null) return { port };
    return { port, tlsPort: await bind(this.#implicit, this.#o.host, this.#o.tlsPort) };
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    const closing = [this.#plain, this.#implicit]
      .filter((s) => s?.listening)
      .map((s) => new Promise((r) => s!.close(r)));
    for (const socket of this.#sockets) socket.destroy();
    await Promise.all(closing);
  }
}

function bind(server: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.removeListener('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
