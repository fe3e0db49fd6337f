// IMAP helpers for tests: a real client (imapflow) and a raw dialogue for what clients never send.
import net from 'node:net';
import tls from 'node:tls';
import { ImapFlow, type ImapFlowOptions } from 'imapflow';

/** An imapflow client logged in over STARTTLS (the self-signed certificate trusted). */
export async function imapClient(
  port: number,
  user: string,
  pass: string,
  options: Partial<ImapFlowOptions> = {},
): Promise<ImapFlow> {
  const client = new ImapFlow({
    host: '127.0.0.1',
    port,
    secure: false,
    auth: { user, pass },
    tls: { rejectUnauthorized: false },
    logger: false,
    ...options,
  });
  client.on('error', () => {});
  await client.connect();
  return client;
}

/**
 * A raw IMAP dialogue over a socket: `command` sends a tagged line and resolves with every line up to
 * its tagged reply; `send` writes bytes as they are.
 */
export class ImapDialogue {
  #socket: net.Socket;
  #buffer = '';
  #waiters: (() => void)[] = [];
  #tag = 0;
  closed = false;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    this.#listen(socket);
  }

  static async open(port: number, secure = false): Promise<{ dialogue: ImapDialogue; greeting: string }> {
    const socket = secure
      ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false })
      : net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once(secure ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    const dialogue = new ImapDialogue(socket);
    const greeting = await dialogue.line();
    return { dialogue, greeting };
  }

  #listen(socket: net.Socket): void {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.#buffer += chunk;
      for (const w of this.#waiters.splice(0)) w();
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.#waiters.splice(0)) w();
    });
    socket.on('error', () => {});
  }

  /** The next line (without CRLF); null when the connection closed first. */
  async line(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = this.#buffer.indexOf('\r\n');
      if (end >= 0) {
        const line = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end + 2);
        return line;
      }
      if (this.closed)
        throw new Error(`connection closed; unread: ${JSON.stringify(this.#buffer.slice(0, 200))}`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `no line within ${timeoutMs} ms; unread: ${JSON.stringify(this.#buffer.slice(0, 200))}`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  send(data: string | Buffer): void {
    this.#socket.write(data);
  }

  /** Sends `text` under a fresh tag; the untagged lines and the tagged reply. */
  async command(text: string, timeoutMs = 10_000): Promise<{ lines: string[]; reply: string }> {
    const tag = `t${++this.#tag}`;
    this.send(`${tag} ${text}\r\n`);
    return this.until(tag, timeoutMs);
  }

  /** Reads lines until the one tagged `tag`. */
  async until(tag: string, timeoutMs = 10_000): Promise<{ lines: string[]; reply: string }> {
    const lines: string[] = [];
    for (;;) {
      const line = await this.line(timeoutMs);
      if (line.startsWith(`${tag} `)) return { lines, reply: line };
      lines.push(line);
    }
  }

  /** Upgrades the connection after a successful STARTTLS. */
  async startTls(): Promise<void> {
    const secure = tls.connect({ socket: this.#socket, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.#socket = secure;
    this.#buffer = '';
    this.#listen(secure);
  }

  close(): void {
    this.#socket.destroy();
  }
}
