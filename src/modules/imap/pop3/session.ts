// One POP3 connection (RFC 1939, with CAPA and response codes from RFC 2449, STLS from RFC 2595 and
// SASL PLAIN from RFC 5034). After login the session works on the INBOX as it was then (the
// maildrop): messages numbered 1..n in UID order, DELE only marks, and QUIT removes what was marked
// and flags what was retrieved \Seen. A connection that ends any other way changes nothing.
//
// Commands are read in order (clients may pipeline them) and run one at a time. No lock is taken on
// the maildrop, as Dovecot by default: two sessions each see their own snapshot, and removing a
// message that another session already removed does nothing.
import type { Socket } from 'node:net';
import { type SecureContext, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { newId } from '../../../core/ids.ts';
import type { FolderRow } from '../../mailboxes/tables.ts';
import type { AuthResult } from '../../submission/service.ts';
import type { MailStore } from '../service.ts';
import { transmission } from './transfer.ts';

/** RFC 1939 3: an autologout timer, if any, is at least 10 minutes. */
const IDLE_TIMEOUT_MS = 10 * 60_000;
/**
 * Commands are short (RFC 2449: 255 octets), but an AUTH PLAIN response carries a user name and a
 * password of up to 1,024 characters, base64-encoded.
 */
const MAX_LINE_BYTES = 8 * 1024;
/** Lines read ahead of the command running; past this the socket pauses. */
const MAX_QUEUED = 32;
/** What the queue holds where a line was too long: the session answers it in turn and ends. */
const TOO_LONG = Symbol('line too long');

type Line = Buffer | typeof TOO_LONG;
type State = 'authorization' | 'transaction';
type Handler = (arg: string) => Promise<void> | void;

export interface Pop3Backend {
  store: MailStore;
  authenticate(username: string, password: string, ip: string, sessionId: string): Promise<AuthResult>;
}

export interface Pop3SessionOptions {
  hostname: string;
  allowInsecureAuth: boolean;
  secureContext: SecureContext;
}

/** A message of the maildrop. */
interface Message {
  uid: number;
  size: number;
  blobId: string;
  seen: boolean;
  deleted: boolean;
  retrieved: boolean;
}

/** The INBOX as it was at login. */
interface Maildrop {
  organizationId: string;
  mailboxId: string;
  folder: FolderRow;
  messages: Message[];
}

/** A refusal: the command is answered `-ERR <text>`. */
class Refusal extends Error {}
const refuse = (text: string) => new Refusal(text);

export class Pop3Session {
  readonly id = newId();
  readonly #backend: Pop3Backend;
  readonly #o: Pop3SessionOptions;
  readonly #log: Logger;
  readonly #remoteAddress: string;
  #socket: Socket;
  #secure: boolean;
  #state: State = 'authorization';
  #closed = false;
  /** The name given by USER, waiting for PASS. */
  #user: string | null = null;
  #maildrop: Maildrop | null = null;

  readonly #lines: Line[] = [];
  /** The start of a line whose end has not arrived yet. */
  #partial: Buffer[] = [];
  #partialBytes = 0;
  #waiting: ((line: Line | null) => void) | null = null;
  readonly #onData = (chunk: Buffer) => this.#read(chunk);

  readonly #authorization: Record<string, Handler> = {
    CAPA: () => this.#capa(),
    USER: (arg) => this.#userCommand(arg),
    PASS: (arg) => this.#pass(arg),
    AUTH: (arg) => this.#auth(arg),
    STLS: () => this.#stls(),
    NOOP: () => this.#send('+OK'),
    QUIT: () => this.#quit(),
  };

  readonly #transaction: Record<string, Handler> = {
    CAPA: () => this.#capa(),
    STAT: (arg) => this.#stat(arg),
    LIST: (arg) => this.#list(arg),
    UIDL: (arg) => this.#uidl(arg),
    RETR: (arg) => this.#retr(arg),
    TOP: (arg) => this.#top(arg),
    DELE: (arg) => this.#dele(arg),
    RSET: (arg) => this.#rset(arg),
    NOOP: () => this.#send('+OK'),
    QUIT: () => this.#update(),
  };

  constructor(
    socket: Socket,
    secure: boolean,
    backend: Pop3Backend,
    options: Pop3SessionOptions,
    log: Logger,
  ) {
    this.#socket = socket;
    this.#secure = secure;
    this.#backend = backend;
    this.#o = options;
    this.#remoteAddress = socket.remoteAddress ?? 'unknown';
    this.#log = log.child({ session: this.id });
    socket.on('data', this.#onData);
    // The plain socket's timer also sees the traffic of a TLS session started on it (STLS).
    socket.setTimeout(IDLE_TIMEOUT_MS);
    socket.on('timeout', () => this.#socket.destroy());
    socket.on('error', (err) => this.#log.debug({ err }, 'POP3 connection error'));
    socket.on('close', () => this.#ended());
  }

  start(): void {
    this.#send(`+OK ${this.#o.hostname} Mailroom POP3 ready`);
    this.#serve().catch((err) => {
      this.#log.error({ err }, 'POP3 session failed');
      this.#socket.destroy();
    });
  }

  /** Whether USER, PASS and AUTH may be used now: over TLS, or when the setting allows plain text. */
  get #loginAllowed(): boolean {
    return this.#secure || this.#o.allowInsecureAuth;
  }

  // ---- input ---------------------------------------------------------------------------------------

  /** Splits what arrives into lines (CRLF or a bare LF) and queues them. */
  #read(chunk: Buffer): void {
    let start = 0;
    for (let lf = chunk.indexOf(0x0a); lf !== -1; lf = chunk.indexOf(0x0a, start)) {
      const part = chunk.subarray(start, lf);
      start = lf + 1;
      if (this.#partialBytes + part.length > MAX_LINE_BYTES) {
        this.#overflow();
        return;
      }
      const line = this.#partial.length ? Buffer.concat([...this.#partial, part]) : part;
      this.#partial = [];
      this.#partialBytes = 0;
      this.#queue(line.at(-1) === 0x0d ? line.subarray(0, -1) : line);
    }
    const rest = chunk.subarray(start);
    if (!rest.length) return;
    if (this.#partialBytes + rest.length > MAX_LINE_BYTES) this.#overflow();
    else {
      this.#partial.push(rest);
      this.#partialBytes += rest.length;
    }
  }

  /** A line over the limit: nothing after it is read; the session answers it in turn and ends. */
  #overflow(): void {
    this.#socket.removeListener('data', this.#onData);
    this.#partial = [];
    this.#partialBytes = 0;
    this.#queue(TOO_LONG);
  }

  #queue(line: Line): void {
    if (this.#waiting) {
      const resolve = this.#waiting;
      this.#waiting = null;
      resolve(line);
      return;
    }
    this.#lines.push(line);
    if (this.#lines.length > MAX_QUEUED) this.#socket.pause();
  }

  /** The next line the client sent, waiting for it; null once the connection is gone. */
  #nextLine(): Promise<Line | null> {
    const line = this.#lines.shift();
    if (line !== undefined) {
      if (this.#lines.length <= MAX_QUEUED / 2) this.#socket.resume();
      return Promise.resolve(line);
    }
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.#waiting = resolve;
    });
  }

  async #serve(): Promise<void> {
    for (;;) {
      const line = await this.#nextLine();
      if (line === null || this.#closed) return;
      if (line === TOO_LONG) return this.#tooLong();
      await this.#command(line);
    }
  }

  #tooLong(): void {
    this.#send('-ERR Line too long');
    this.#close();
  }

  // ---- commands ------------------------------------------------------------------------------------

  async #command(line: Buffer): Promise<void> {
    const text = line.toString('utf8');
    const space = text.indexOf(' ');
    const name = (space === -1 ? text : text.slice(0, space)).toUpperCase();
    const arg = space === -1 ? '' : text.slice(space + 1);
    const handlers = this.#handlers;
    const handler = Object.hasOwn(handlers, name) ? handlers[name] : undefined;
    if (!handler) {
      const known = Object.hasOwn(this.#authorization, name) || Object.hasOwn(this.#transaction, name);
      this.#send(known ? '-ERR Not valid in this state' : '-ERR Unknown command');
      return;
    }
    try {
      await handler(arg);
    } catch (err) {
      if (err instanceof Refusal) this.#send(`-ERR ${err.message}`);
      else {
        this.#log.error({ err, command: name }, 'POP3 command failed');
        this.#send('-ERR [SYS/TEMP] Temporary failure; try again later');
      }
    }
  }

  get #handlers(): Record<string, Handler> {
    return this.#state === 'authorization' ? this.#authorization : this.#transaction;
  }

  #capa(): void {
    const caps = ['TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', 'AUTH-RESP-CODE'];
    // RFC 2449 5: what AUTHORIZATION offers is announced in both states.
    if (this.#loginAllowed) caps.push('USER', 'SASL PLAIN');
    if (!this.#secure) caps.push('STLS');
    caps.push('IMPLEMENTATION Mailroom');
    this.#send(['+OK Capability list follows', ...caps, '.'].join('\r\n'));
  }

  #userCommand(arg: string): void {
    if (!this.#loginAllowed) throw refuse('[AUTH] Log in over TLS: use STLS first');
    if (!arg) throw refuse('USER takes a user name');
    this.#user = arg;
    this.#send('+OK Send the password');
  }

  async #pass(arg: string): Promise<void> {
    const user = this.#user;
    this.#user = null;
    if (!user) throw refuse('Send USER first');
    // RFC 1939 7: the argument is the whole rest of the line, spaces included.
    await this.#login(user, arg);
  }

  async #auth(arg: string): Promise<void> {
    const [mechanism, initial, ...extra] = arg ? arg.split(' ') : [];
    // AUTH alone lists the mechanisms (RFC 1734's form, which some clients still send).
    if (!mechanism) return this.#send(['+OK', ...(this.#loginAllowed ? ['PLAIN'] : []), '.'].join('\r\n'));
    if (mechanism.toUpperCase() !== 'PLAIN' || extra.length) throw refuse('Unsupported mechanism; use PLAIN');
    if (!this.#loginAllowed) throw refuse('[AUTH] Log in over TLS: use STLS first');
    let response = initial;
    if (response === undefined) {
      this.#send('+ ');
      const line = await this.#nextLine();
      if (line === null) return;
      if (line === TOO_LONG) return this.#tooLong();
      response = line.toString('latin1').trim();
    }
    if (response === '*') throw refuse('Authentication cancelled');
    const credentials = plainCredentials(response);
    if (!credentials) throw refuse('Malformed PLAIN response');
    // Acting as another identity (an authzid of its own) is not something we grant.
    if (credentials.authzid && credentials.authzid !== credentials.user)
      throw refuse('[AUTH] Invalid credentials');
    await this.#login(credentials.user, credentials.password);
  }

  async #login(user: string, password: string): Promise<void> {
    let result: AuthResult;
    try {
      result = await this.#backend.authenticate(user, password, this.#remoteAddress, this.id);
    } catch (err) {
      this.#log.error({ err }, 'POP3 login check failed');
      throw refuse('[SYS/TEMP] Temporary authentication failure; try again later');
    }
    if (!result.ok && result.limited) throw refuse('[SYS/TEMP] Too many failed logins; try again later');
    // Only a mailbox has mail to read; SMTP credentials are refused like a wrong password.
    if (!result.ok || result.identity.kind !== 'mailbox') throw refuse('[AUTH] Invalid credentials');
    const { organizationId, mailboxId, address } = result.identity;
    const maildrop = await this.#openMaildrop(organizationId, mailboxId);
    if (this.#closed) return;
    this.#maildrop = maildrop;
    this.#state = 'transaction';
    this.#log.info({ mailbox_id: mailboxId }, 'POP3 login');
    const { count, octets } = totals(maildrop);
    this.#send(`+OK ${address} has ${count} messages (${octets} octets)`);
  }

  async #openMaildrop(organizationId: string, mailboxId: string): Promise<Maildrop> {
    const { store } = this.#backend;
    const folder = await store.folder(organizationId, mailboxId, 'INBOX');
    if (!folder) throw refuse('[SYS/TEMP] The mailbox has no INBOX');
    const rows = await store.listing(folder.id);
    const messages = rows.map((r) => ({
      uid: r.uid,
      size: r.size,
      blobId: r.blobId,
      seen: r.flags.includes('\\Seen'),
      deleted: false,
      retrieved: false,
    }));
    return { organizationId, mailboxId, folder, messages };
  }

  #stls(): void {
    if (this.#secure) throw refuse('Already using TLS');
    this.#send('+OK Begin TLS negotiation');
    this.#startTls();
  }

  /** STLS: the rest of the connection is TLS; what the client sent before the handshake is dropped. */
  #startTls(): void {
    const plain = this.#socket;
    plain.removeListener('data', this.#onData);
    this.#lines.length = 0;
    this.#partial = [];
    this.#partialBytes = 0;
    this.#user = null;
    const secure = new TLSSocket(plain, { isServer: true, secureContext: this.#o.secureContext });
    this.#socket = secure;
    this.#secure = true;
    secure.on('data', this.#onData);
    secure.on('close', () => this.#ended());
    secure.on('error', (err) => {
      this.#log.debug({ err }, 'POP3 TLS error');
      plain.destroy();
    });
  }

  #quit(): void {
    this.#send(`+OK ${this.#o.hostname} Mailroom POP3 signing off`);
    this.#close();
  }

  // ---- the maildrop --------------------------------------------------------------------------------

  #stat(arg: string): void {
    if (arg) throw refuse('STAT takes no arguments');
    const { count, octets } = totals(this.#maildrop!);
    this.#send(`+OK ${count} ${octets}`);
  }

  #list(arg: string): void {
    if (arg) {
      const [n, m] = this.#message(arg);
      this.#send(`+OK ${n} ${m.size}`);
      return;
    }
    const { count, octets } = totals(this.#maildrop!);
    const lines = this.#present().map(([n, m]) => `${n} ${m.size}`);
    this.#send([`+OK ${count} messages (${octets} octets)`, ...lines, '.'].join('\r\n'));
  }

  #uidl(arg: string): void {
    if (arg) {
      const [n, m] = this.#message(arg);
      this.#send(`+OK ${n} ${this.#uniqueId(m)}`);
      return;
    }
    const lines = this.#present().map(([n, m]) => `${n} ${this.#uniqueId(m)}`);
    this.#send(['+OK Unique-ID listing follows', ...lines, '.'].join('\r\n'));
  }

  /** Stable across sessions and restarts: a UID is never reused while the folder's UIDVALIDITY stands. */
  #uniqueId(message: Message): string {
    return `${this.#maildrop!.folder.uidValidity}.${message.uid}`;
  }

  async #retr(arg: string): Promise<void> {
    const [, message] = this.#message(arg);
    const content = await this.#content(message);
    this.#send(`+OK ${message.size} octets`);
    await this.#transmit(content, null);
    message.retrieved = true;
  }

  async #top(arg: string): Promise<void> {
    const [which, lines, ...extra] = arg.split(' ');
    if (!/^\d{1,9}$/.test(lines ?? '') || extra.length)
      throw refuse('TOP takes a message number and a line count');
    const [, message] = this.#message(which);
    const content = await this.#content(message);
    this.#send('+OK Top of message follows');
    await this.#transmit(content, Number(lines));
  }

  #dele(arg: string): void {
    const [n, message] = this.#message(arg);
    message.deleted = true;
    this.#send(`+OK Message ${n} deleted`);
  }

  #rset(arg: string): void {
    if (arg) throw refuse('RSET takes no arguments');
    for (const message of this.#maildrop!.messages) message.deleted = false;
    const { count, octets } = totals(this.#maildrop!);
    this.#send(`+OK Maildrop has ${count} messages (${octets} octets)`);
  }

  /**
   * QUIT in TRANSACTION (RFC 1939 6): removes the messages marked deleted, flags those retrieved
   * \Seen, then says goodbye. A failed removal is reported; the flags are a courtesy and only logged.
   */
  async #update(): Promise<void> {
    const { store } = this.#backend;
    const { organizationId, folder, messages } = this.#maildrop!;
    const deleted = messages.filter((m) => m.deleted).map((m) => m.uid);
    const read = messages.filter((m) => m.retrieved && !m.deleted && !m.seen).map((m) => m.uid);
    try {
      await store.remove(organizationId, folder, deleted);
    } catch (err) {
      this.#log.error({ err }, 'POP3 could not remove deleted messages');
      this.#send('-ERR [SYS/TEMP] Some deleted messages not removed');
      return this.#close();
    }
    try {
      if (read.length) await store.storeFlags(organizationId, folder, read, 'add', ['\\Seen']);
    } catch (err) {
      this.#log.warn({ err }, 'POP3 could not flag retrieved messages \\Seen');
    }
    const left = messages.length - deleted.length;
    this.#send(`+OK ${this.#o.hostname} Mailroom POP3 signing off (${left} messages left)`);
    this.#close();
  }

  /** The message an argument numbers: it must exist and not be marked deleted. */
  #message(arg: string): [number, Message] {
    if (!/^\d{1,9}$/.test(arg)) throw refuse('Expected a message number');
    const n = Number(arg);
    const message = this.#maildrop!.messages[n - 1];
    if (!message) throw refuse('No such message');
    if (message.deleted) throw refuse('Message deleted');
    return [n, message];
  }

  /** The messages not marked deleted, with their numbers. */
  #present(): [number, Message][] {
    return this.#maildrop!.messages.map((m, i): [number, Message] => [i + 1, m]).filter(
      ([, m]) => !m.deleted,
    );
  }

  async #content(message: Message): Promise<Buffer> {
    const { organizationId } = this.#maildrop!;
    const content = (await this.#backend.store.content(organizationId, [message.blobId])).get(message.blobId);
    if (!content) throw refuse('Message no longer exists');
    return content;
  }

  /** Writes the message in chunks, waiting while the client is slower than the store. */
  async #transmit(content: Buffer, bodyLines: number | null): Promise<void> {
    for (const chunk of transmission(content, bodyLines)) {
      if (this.#closed) return;
      if (!this.#socket.write(chunk)) await this.#drained();
    }
  }

  #drained(): Promise<void> {
    const socket = this.#socket;
    return new Promise((resolve) => {
      const done = () => {
        socket.off('drain', done);
        socket.off('close', done);
        resolve();
      };
      socket.on('drain', done);
      socket.on('close', done);
    });
  }

  // ---- output and the end --------------------------------------------------------------------------

  #send(line: string): void {
    if (!this.#closed) this.#socket.write(`${line}\r\n`);
  }

  /** The mailbox logged in, or null before a login. */
  get mailboxId(): string | null {
    return this.#maildrop?.mailboxId ?? null;
  }

  /** Ends the session from outside (the mailbox may no longer log in): DELEs not QUIT change nothing. */
  close(reason: string): void {
    this.#send(`-ERR [SYS/PERM] ${reason}`);
    this.#close();
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.end();
    // A client that never reads its last answer is not waited for.
    setTimeout(() => this.#socket.destroy(), 2_000).unref();
  }

  #ended(): void {
    this.#closed = true;
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.(null);
  }
}

function totals(maildrop: Maildrop): { count: number; octets: number } {
  let count = 0;
  let octets = 0;
  for (const m of maildrop.messages) {
    if (m.deleted) continue;
    count++;
    octets += m.size;
  }
  return { count, octets };
}

/** RFC 4616: `authzid NUL authcid NUL passwd`, base64 (RFC 5034: anything else is refused). */
function plainCredentials(response: string): { authzid: string; user: string; password: string } | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(response) || response.length % 4 !== 0) return null;
  const parts = Buffer.from(response, 'base64').toString('utf8').split('\u0000');
  if (parts.length !== 3 || !parts[1] || !parts[2]) return null;
  return { authzid: parts[0], user: parts[1], password: parts[2] };
}
