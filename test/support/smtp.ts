// SMTP helpers for tests: a real client (nodemailer) and a raw socket dialogue for what clients refuse
// to send (relay tricks, smuggling sequences).
import net from 'node:net';
import tls from 'node:tls';
import nodemailer from 'nodemailer';

export interface SendInput {
  from: string;
  to: string | string[];
  subject?: string;
  text?: string;
  html?: string;
  headers?: Record<string, string>;
  attachments?: { filename: string; content: string | Buffer }[];
  /** Envelope, when it differs from the headers. */
  envelope?: { from: string; to: string[] };
  /** Raw message instead of the built one. */
  raw?: string | Buffer;
  messageId?: string;
  inReplyTo?: string;
  references?: string[];
}

/** Sends one message through the MX with nodemailer (STARTTLS on, the self-signed certificate trusted). */
export async function sendMail(port: number, input: SendInput) {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    name: 'client.example.net',
    tls: { rejectUnauthorized: false },
  });
  try {
    return await transport.sendMail({
      from: input.from,
      to: input.to,
      subject: input.subject ?? 'Hello',
      text: input.text ?? 'Hello there',
      html: input.html,
      headers: input.headers,
      attachments: input.attachments,
      envelope: input.envelope,
      raw: input.raw,
      messageId: input.messageId,
      inReplyTo: input.inReplyTo,
      references: input.references,
    });
  } finally {
    transport.close();
  }
}

export interface LoginOptions {
  /** Implicit TLS. */
  secure?: boolean;
  method?: 'PLAIN' | 'LOGIN';
  /** Source address on loopback (127.0.0.0/8), so per-address limits can be told apart. */
  from?: string;
  /** Stay in plain text (no STARTTLS). */
  ignoreTLS?: boolean;
}

/** Logs in with nodemailer (STARTTLS unless `secure`) and reports the server's answer. */
export async function smtpLogin(port: number, user: string, pass: string, o: LoginOptions = {}) {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: o.secure ?? false,
    ignoreTLS: o.ignoreTLS ?? false,
    name: 'client.example.net',
    localAddress: o.from,
    auth: { user, pass },
    authMethod: o.method,
    tls: { rejectUnauthorized: false },
  });
  try {
    await transport.verify();
    return { ok: true, code: 235, response: '' };
  } catch (err: any) {
    return { ok: false, code: err.responseCode as number | undefined, response: String(err.response ?? err) };
  } finally {
    transport.close();
  }
}

/** Logs in to submission (STARTTLS) and sends one message; the server's answer or its refusal. */
export async function submitMail(port: number, user: string, pass: string, input: SendInput) {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    name: 'client.example.net',
    auth: { user, pass },
    tls: { rejectUnauthorized: false },
  });
  try {
    const info = await transport.sendMail({
      from: input.from,
      to: input.to,
      subject: input.subject ?? 'Hello',
      text: input.text ?? 'Hello there',
    });
    return { ok: true as const, response: info.response };
  } catch (err: any) {
    return {
      ok: false as const,
      code: err.responseCode as number | undefined,
      response: String(err.response ?? err),
    };
  } finally {
    transport.close();
  }
}

/**
 * A line-by-line SMTP dialogue over a raw socket. `command` sends a line and resolves with the full reply
 * (multi-line replies joined).
 */
export class SmtpDialogue {
  readonly #socket: net.Socket;
  #buffer = '';
  #waiters: ((reply: string) => void)[] = [];
  #lines: string[] = [];

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.#buffer += chunk;
      let at = this.#buffer.indexOf('\r\n');
      while (at !== -1) {
        const line = this.#buffer.slice(0, at);
        this.#buffer = this.#buffer.slice(at + 2);
        this.#lines.push(line);
        if (/^\d{3} /.test(line)) {
          const reply = this.#lines.join('\n');
          this.#lines = [];
          this.#waiters.shift()?.(reply);
        }
        at = this.#buffer.indexOf('\r\n');
      }
    });
  }

  /** Connects; `proxyFrom` sends a PROXY protocol v1 header claiming that client address first. */
  static async open(port: number, proxyFrom?: string): Promise<{ dialogue: SmtpDialogue; greeting: string }> {
    const socket = net.connect(port, '127.0.0.1');
    const dialogue = new SmtpDialogue(socket);
    const greeting = dialogue.#next();
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    if (proxyFrom) socket.write(`PROXY TCP4 ${proxyFrom} 192.0.2.1 40000 25\r\n`);
    return { dialogue, greeting: await greeting };
  }

  /** Connects with implicit TLS (RFC 8314), trusting the self-signed certificate. */
  static async openTls(port: number): Promise<{ dialogue: SmtpDialogue; greeting: string }> {
    const socket = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
    const dialogue = new SmtpDialogue(socket);
    const greeting = dialogue.#next();
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    return { dialogue, greeting: await greeting };
  }

  #next(): Promise<string> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Sends `line` (CRLF added, UTF-8 as SMTPUTF8 wants) and waits for the reply. */
  command(line: string): Promise<string> {
    const reply = this.#next();
    this.#socket.write(`${line}\r\n`, 'utf8');
    return reply;
  }

  /** Sends bytes as they are (one character per byte) and waits for one reply. */
  send(bytes: string): Promise<string> {
    const reply = this.#next();
    this.#socket.write(bytes, 'latin1');
    return reply;
  }

  /** Sends bytes without waiting (pipelining: collect the replies with `replies`). */
  write(bytes: string): void {
    this.#socket.write(bytes, 'latin1');
  }

  /** Waits for `count` replies to something already sent (pipelining). */
  replies(count: number): Promise<string[]> {
    return Promise.all(Array.from({ length: count }, () => this.#next()));
  }

  close(): void {
    this.#socket.destroy();
  }
}
