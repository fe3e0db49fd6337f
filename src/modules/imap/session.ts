// One IMAP connection: its transport (plain, after STARTTLS, compressed), the commands it reads in
// order, its login, what it enabled, and the folder it has selected. Commands run one at a time; what
// other sessions, the API and delivery change in the selected folder is reported before each tagged
// reply (and at once while the client IDLEs), expunges only where RFC 3501 allows them.
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { type SecureContext, TLSSocket } from 'node:tls';
import zlib from 'node:zlib';
import type { Logger } from 'pino';
import { AppError } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { AuthResult } from '../submission/service.ts';
import { type Command, CommandParser, type ParserEvent, type ParserLimits } from './protocol/parser.ts';
import { ImapBadCharsetError, ImapSyntaxError } from './protocol/arguments.ts';
import { flagList, indexOf, largest, lowerBound, sequenceSetOf } from './responses.ts';
import type { Entry, MailStore } from './service.ts';
import type { FolderRow } from '../mailboxes/tables.ts';
import type { SequenceSet } from './types.ts';
import { sequenceRanges } from './protocol/arguments.ts';

/** Logged out after this long without a command (RFC 3501: at least 30 minutes once logged in). */
const IDLE_TIMEOUT_MS = 30 * 60_000;
const LOGIN_TIMEOUT_MS = 60_000;
/** Commands read ahead of the one running; past this the socket pauses. */
const MAX_QUEUED = 32;
/** Bytes of commands read ahead (literals included) past which the socket pauses too. */
const MAX_QUEUED_BYTES = 32 * 1024 * 1024;
/** Before login a literal is a username or password: small. APPEND's large ones need a login. */
const PRE_AUTH_LIMITS = { maxLiteralBytes: 8 * 1024, maxCommandBytes: 64 * 1024 };

export interface ImapBackend {
  store: MailStore;
  authenticate(username: string, password: string, ip: string, sessionId: string): Promise<AuthResult>;
  quota(organizationId: string, mailboxId: string): Promise<{ usedBytes: number; quotaBytes: number }>;
}

export interface SessionOptions {
  hostname: string;
  appendLimit: number;
  allowInsecureAuth: boolean;
  secureContext: SecureContext;
  limits: ParserLimits;
  version: string;
  commands: Record<string, CommandHandler>;
}

export type SessionState = 'not-authenticated' | 'authenticated' | 'selected' | 'logout';

export interface User {
  organizationId: string;
  mailboxId: string;
  address: string;
}

export interface CommandHandler {
  states: readonly SessionState[];
  /** Whether `UID <name>` exists. */
  uid?: boolean;
  /** The tagged OK's text (default "<NAME> completed"). */
  run(session: ImapSession, command: Command): Promise<unknown>;
  /** Skip reporting the selected folder's changes before the tagged reply (LOGOUT; IDLE reports its own). */
  noSync?: boolean;
}

/** The tagged reply was already written (STARTTLS, COMPRESS, a client that went away). */
export class AlreadyAnswered extends Error {}

/** A thrown answer: the command ends with this tagged status (NO unless said otherwise). */
export class ImapReply extends Error {
  readonly status: 'NO' | 'BAD';
  readonly code?: string;

  constructor(status: 'NO' | 'BAD', message: string, code?: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}
export const no = (message: string, code?: string) => new ImapReply('NO', message, code);
export const bad = (message: string, code?: string) => new ImapReply('BAD', message, code);

/** The selected folder as this session sees it: its UIDs in sequence order, and what it last reported. */
export class Selection {
  folder: FolderRow;
  readonly readOnly: boolean;
  uids: number[];
  /** Every change up to this modseq has been reported. */
  knownModseq: number;
  uidNext: number;
  /** UIDs at or above this are \Recent to this session. */
  recentFrom: number;
  /** Modseqs of this session's own flag changes, already reported to it. */
  readonly own = new Set<number>();
  readonly unwatch: () => void;

  constructor(init: {
    folder: FolderRow;
    readOnly: boolean;
    uids: number[];
    knownModseq: number;
    uidNext: number;
    recentFrom: number;
    unwatch: () => void;
  }) {
    this.folder = init.folder;
    this.readOnly = init.readOnly;
    this.uids = init.uids;
    this.knownModseq = init.knownModseq;
    this.uidNext = init.uidNext;
    this.recentFrom = init.recentFrom;
    this.unwatch = init.unwatch;
  }

  isRecent(uid: number): boolean {
    return uid >= this.recentFrom;
  }

  seqOf(uid: number): number {
    return indexOf(this.uids, uid) + 1;
  }

  /** The UIDs a sequence set names: sequence numbers (which must exist) or UIDs (those that exist). */
  resolve(set: SequenceSet, byUid: boolean): number[] {
    if (!byUid) {
      const out: number[] = [];
      for (const [from, to] of sequenceRanges(set, this.uids.length)) {
        if (from < 1 || to > this.uids.length) throw bad('No such message sequence number');
        for (let seq = from; seq <= to; seq++) out.push(this.uids[seq - 1]);
      }
      return out;
    }
    const out: number[] = [];
    const max = this.uids.at(-1) ?? 0;
    for (const [from, to] of sequenceRanges(set, max)) {
      for (let i = lowerBound(this.uids, from); i < this.uids.length && this.uids[i] <= to; i++)
        out.push(this.uids[i]);
    }
    return out;
  }
}

export class ImapSession {
  readonly id = newId();
  readonly remoteAddress: string;
  state: SessionState = 'not-authenticated';
  user: User | null = null;
  /** ENABLEd extensions: CONDSTORE, QRESYNC, UTF8=ACCEPT. */
  readonly enabled = new Set<string>();
  selection: Selection | null = null;
  /** Set by the first command that uses CONDSTORE (RFC 7162 3.1: it enables it for the session). */
  secure: boolean;
  readonly backend: ImapBackend;
  readonly options: SessionOptions;
  readonly log: Logger;

  #socket: Socket;
  /** The connection as accepted: timeouts are kept on it (a TLS socket over it has no timer of its own). */
  readonly #raw: Socket;
  #writer: NodeJS.WritableStream & { write(chunk: Buffer): boolean };
  #deflate: zlib.DeflateRaw | null = null;
  #parser: CommandParser;
  #queue: ParserEvent[] = [];
  #queuedBytes = 0;
  /** Where commands are read from: the socket, or the inflater once COMPRESS is on (paused when full). */
  #source: NodeJS.ReadableStream;
  #running = false;
  #closed = false;
  /** The continuation line a command waits for (AUTHENTICATE, IDLE's DONE). */
  #awaitLine: ((line: string | null) => void) | null = null;
  /** While IDLE waits: wakes it to report a change. */
  #idleWake: (() => void) | null = null;
  #dirty = false;
  readonly #onData = (chunk: Buffer) => this.#read(chunk);

  constructor(socket: Socket, secure: boolean, backend: ImapBackend, options: SessionOptions, log: Logger) {
    this.#socket = socket;
    this.#raw = socket;
    this.#source = socket;
    this.#writer = socket;
    this.secure = secure;
    this.backend = backend;
    this.options = options;
    this.remoteAddress = socket.remoteAddress ?? 'unknown';
    this.log = log.child({ session: this.id });
    this.#parser = new CommandParser({ ...options.limits, ...PRE_AUTH_LIMITS });
    this.#attach(socket);
  }

  start(): void {
    this.#raw.setTimeout(LOGIN_TIMEOUT_MS);
    // However slowly a client sends, it logs in within the minute or the slot is given back.
    setTimeout(() => {
      if (this.state === 'not-authenticated') this.close('Log in within a minute of connecting');
    }, LOGIN_TIMEOUT_MS).unref();
    this.write(
      `* OK [CAPABILITY ${this.capabilities().join(' ')}] ${this.options.hostname} Mailroom IMAP ready\r\n`,
    );
    this.flush();
  }

  get utf8(): boolean {
    return this.enabled.has('UTF8=ACCEPT');
  }

  get condstore(): boolean {
    return this.enabled.has('CONDSTORE') || this.enabled.has('QRESYNC');
  }

  capabilities(): string[] {
    const caps = ['IMAP4rev1', 'SASL-IR', 'LITERAL+', 'ID', 'ENABLE', 'IDLE', 'NAMESPACE', 'UNSELECT'];
    if (this.state === 'not-authenticated') {
      if (!this.secure) caps.push('STARTTLS');
      if (this.secure || this.options.allowInsecureAuth) caps.push('AUTH=PLAIN');
      else caps.push('LOGINDISABLED');
      return caps;
    }
    caps.push(
      'UIDPLUS',
      'MOVE',
      'SPECIAL-USE',
      'CHILDREN',
      'LIST-EXTENDED',
      'LIST-STATUS',
      'ESEARCH',
      'CONDSTORE',
      'QRESYNC',
      'QUOTA',
      'UTF8=ACCEPT',
      'MULTIAPPEND',
      'BINARY',
      `APPENDLIMIT=${this.options.appendLimit}`,
    );
    if (!this.#deflate) caps.push('COMPRESS=DEFLATE');
    return caps;
  }

  /** After a successful login: the user, and the large literals APPEND may send. */
  loggedIn(user: User): void {
    this.user = user;
    this.state = 'authenticated';
    this.#parser.setLimits({
      maxLiteralBytes: this.options.limits.maxLiteralBytes,
      maxCommandBytes: this.options.limits.maxCommandBytes,
    });
  }

  /** Whether a login may be tried now: over TLS, or when the setting allows plain text. */
  get loginAllowed(): boolean {
    return this.secure || this.options.allowInsecureAuth;
  }

  // ---- output --------------------------------------------------------------------------------------

  write(data: string | Buffer | (string | Buffer)[]): boolean {
    if (this.#closed) return false;
    const chunks = Array.isArray(data) ? data : [data];
    // Corked, the pieces of one answer leave together (one TLS record or TCP segment, not one each).
    const writer = this.#writer as NodeJS.WritableStream & { cork?(): void; uncork?(): void };
    writer.cork?.();
    let ok = true;
    for (const c of chunks) ok = writer.write(typeof c === 'string' ? Buffer.from(c) : c) && ok;
    writer.uncork?.();
    return ok;
  }

  /** Waits until the socket takes more (large FETCH answers). */
  async drain(): Promise<void> {
    if (this.#closed) return;
    const writable = this.#writer as unknown as { writableNeedDrain?: boolean };
    if (writable.writableNeedDrain) await once(this.#writer as unknown as NodeJS.EventEmitter, 'drain');
  }

  /** Sends what is written so far (the compressor holds it otherwise). */
  flush(): void {
    this.#deflate?.flush(zlib.constants.Z_SYNC_FLUSH);
  }

  close(message?: string): void {
    if (this.#closed) return;
    if (message) this.write(`* BYE ${message}\r\n`);
    this.flush();
    this.#closed = true;
    this.selection?.unwatch();
    this.#awaitLine?.(null);
    this.#socket.end();
    setTimeout(() => this.#socket.destroy(), 2_000).unref();
  }

  // ---- input ---------------------------------------------------------------------------------------

  #attach(socket: Socket): void {
    socket.on('data', this.#onData);
    socket.on('timeout', () => this.close('Autologout; idle for too long'));
    socket.on('error', (err) => this.log.debug({ err }, 'IMAP connection error'));
    socket.on('close', () => {
      this.#closed = true;
      this.selection?.unwatch();
      this.#awaitLine?.(null);
    });
  }

  #read(chunk: Buffer): void {
    for (const event of this.#parser.push(chunk)) {
      if (event.kind === 'continue') {
        this.write(`+ ${event.text}\r\n`);
        this.flush();
      } else if (this.#awaitLine && (event.kind === 'line' || event.kind === 'error')) {
        // A continuation line too long to read is answered as a wrong one, never waited for.
        const resolve = this.#awaitLine;
        this.#awaitLine = null;
        resolve(event.kind === 'line' ? event.line : '');
      } else {
        this.#queue.push(event);
        if (event.kind === 'command') this.#queuedBytes += event.command.bytes;
      }
    }
    if (this.#queue.length > MAX_QUEUED || this.#queuedBytes > MAX_QUEUED_BYTES) this.#source.pause();
    void this.#drainQueue();
  }

  async #drainQueue(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      while (this.#queue.length && !this.#closed) {
        const event = this.#queue.shift()!;
        if (event.kind === 'command') this.#queuedBytes -= event.command.bytes;
        if (this.#queue.length <= MAX_QUEUED / 2 && this.#queuedBytes <= MAX_QUEUED_BYTES / 2)
          this.#source.resume();
        await this.#handle(event);
        this.flush();
      }
    } finally {
      this.#running = false;
    }
  }

  async #handle(event: ParserEvent): Promise<void> {
    if (event.kind === 'command') return this.#run(event.command);
    if (event.kind === 'error') {
      this.write(`${event.tag ?? '*'} BAD ${event.message}\r\n`);
      return;
    }
    if (event.kind === 'literal-refused') {
      this.write(`${event.tag ?? '*'} NO [TOOBIG] ${event.message}\r\n`);
      return;
    }
    if (event.kind === 'line') this.write('* BAD Unexpected continuation line\r\n');
  }

  async #run(command: Command): Promise<void> {
    const handler = this.options.commands[command.name];
    const { tag } = command;
    if (!handler || (command.uid && !handler.uid)) {
      this.write(`${tag} BAD Unknown command ${command.uid ? 'UID ' : ''}${command.name.slice(0, 40)}\r\n`);
      return;
    }
    if (!handler.states.includes(this.state)) {
      const why =
        this.state === 'not-authenticated'
          ? 'Log in first'
          : this.state === 'selected' || handler.states.includes('selected')
            ? 'Select a folder first'
            : 'Not in this state';
      this.write(`${tag} BAD ${why}\r\n`);
      return;
    }
    this.#raw.setTimeout(this.state === 'not-authenticated' ? LOGIN_TIMEOUT_MS : IDLE_TIMEOUT_MS);
    try {
      const result = await handler.run(this, command);
      const text =
        typeof result === 'string' ? result : `${command.uid ? 'UID ' : ''}${command.name} completed`;
      // The command succeeded: a failure to report others' changes must not turn its OK into NO (a
      // client would repeat an APPEND); they are reported with the next command.
      if (this.selection && !handler.noSync)
        await this.sync(!forbidsExpunge(command)).catch((err) => this.log.error({ err }, 'IMAP sync failed'));
      if (this.#closed && command.name !== 'LOGOUT') return;
      this.write(`${tag} OK ${text}\r\n`);
      if (command.name === 'LOGOUT') this.close();
    } catch (err) {
      if (err instanceof AlreadyAnswered) return;
      this.write(`${tag} ${this.#failure(err, command)}\r\n`);
    }
  }

  #failure(err: unknown, command: Command): string {
    if (err instanceof ImapReply) return `${err.status} ${err.code ? `[${err.code}] ` : ''}${err.message}`;
    if (err instanceof ImapBadCharsetError) return 'NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset';
    if (err instanceof ImapSyntaxError) return `BAD ${err.message}`;
    if (err instanceof AppError) return `NO ${codeOf(err)}${err.message}`;
    this.log.error({ err, command: command.name }, 'IMAP command failed');
    return 'NO [SERVERBUG] Internal error; the command was not completed';
  }

  /** Waits for the client's next line (AUTHENTICATE's response, IDLE's DONE); null if it went. */
  nextLine(): Promise<string | null> {
    this.#parser.expectLine();
    return new Promise((resolve) => {
      this.#awaitLine = resolve;
    });
  }

  // ---- transport changes ---------------------------------------------------------------------------

  /** STARTTLS: the rest of the connection is TLS; anything the client sent before the handshake is dropped. */
  async startTls(): Promise<void> {
    const plain = this.#socket;
    plain.removeListener('data', this.#onData);
    this.#parser = new CommandParser({ ...this.options.limits, ...PRE_AUTH_LIMITS });
    // Nothing the client sent before the handshake is run after it (RFC 3501 6.2.1).
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    const secure = new TLSSocket(plain, { isServer: true, secureContext: this.options.secureContext });
    this.#socket = secure;
    this.#writer = secure;
    this.secure = true;
    this.#source = secure;
    secure.on('data', this.#onData);
    secure.on('error', (err) => {
      this.log.debug({ err }, 'IMAP TLS error');
      plain.destroy();
    });
    await once(secure, 'secure');
  }

  /** COMPRESS=DEFLATE (RFC 4978): both directions go through raw deflate from the next byte on. */
  startCompression(): void {
    const deflate = zlib.createDeflateRaw({ level: 1 });
    const inflate = zlib.createInflateRaw();
    const socket = this.#socket;
    deflate.pipe(socket);
    this.#writer = deflate;
    this.#deflate = deflate;
    socket.removeListener('data', this.#onData);
    // Piped, so that a paused inflater stops the socket too: a small compressed input cannot fill memory.
    socket.pipe(inflate);
    this.#source = inflate;
    inflate.on('data', this.#onData);
    inflate.on('error', () => this.close('Corrupt compressed data'));
  }

  // ---- the selected folder -------------------------------------------------------------------------

  /** Selects a folder; its copies as they are now (the SELECT response reads their flags). */
  async select(folder: FolderRow, readOnly: boolean): Promise<{ selection: Selection; entries: Entry[] }> {
    this.deselect();
    const { entries, recentFrom } = await this.backend.store.open(folder.id, !readOnly);
    const knownModseq = largest(
      entries.map((e) => e.modseq),
      folder.highestModseq,
    );
    const selection = new Selection({
      folder,
      readOnly,
      uids: entries.map((e) => e.uid),
      knownModseq,
      uidNext: folder.uidNext,
      recentFrom,
      unwatch: this.backend.store.hub.watch(folder.id, () => this.#changed()),
    });
    this.selection = selection;
    this.state = 'selected';
    return { selection, entries };
  }

  deselect(): void {
    this.selection?.unwatch();
    this.selection = null;
    if (this.state === 'selected') this.state = 'authenticated';
  }

  /** Another session, the API or delivery changed the selected folder: an IDLE reports it at once. */
  #changed(): void {
    this.#dirty = true;
    this.#idleWake?.();
  }

  /**
   * Reports what changed in the selected folder since the last report: expunges (as EXPUNGE, or
   * VANISHED with QRESYNC; only when `allowExpunge`), new messages (EXISTS, RECENT) and flag changes
   * made elsewhere (FETCH).
   */
  async sync(allowExpunge: boolean): Promise<void> {
    const selection = this.selection;
    if (!selection) return;
    this.#dirty = false;
    const changes = await this.backend.store.changesSince(
      selection.folder.id,
      selection.knownModseq,
      !selection.readOnly,
    );
    if (!changes) {
      this.close('The selected folder was deleted');
      return;
    }
    if (changes.highestModseq <= selection.knownModseq) return;
    const gone = changes.expunged.filter((uid) => indexOf(selection.uids, uid) >= 0);
    // Expunges wait for a command that may report them; what came with them waits too.
    if (gone.length && !allowExpunge) return;
    const out: string[] = [];
    if (gone.length) out.push(...this.expunged(gone));
    const last = selection.uids.at(-1) ?? 0;
    const fresh = changes.changed.filter((e) => e.uid > last);
    for (const entry of changes.changed) {
      if (entry.uid > last || selection.own.has(entry.modseq)) continue;
      const seq = selection.seqOf(entry.uid);
      if (seq === 0) continue;
      out.push(
        `* ${seq} FETCH (UID ${entry.uid} ${this.flagsItem(entry.uid, entry.flags)}${this.modseqItem(entry.modseq)})\r\n`,
      );
    }
    if (fresh.length) {
      for (const entry of fresh) selection.uids.push(entry.uid);
      out.push(`* ${selection.uids.length} EXISTS\r\n`);
      const recent = selection.uids.length - lowerBound(selection.uids, selection.recentFrom);
      out.push(`* ${recent} RECENT\r\n`);
    }
    selection.knownModseq = changes.highestModseq;
    selection.uidNext = changes.uidNext;
    selection.own.clear();
    if (out.length) this.write(out.join(''));
  }

  /** Takes expunged UIDs out of the view; the responses that say so. */
  expunged(uids: number[]): string[] {
    const selection = this.selection!;
    const present = uids.filter((uid) => indexOf(selection.uids, uid) >= 0).sort((a, b) => a - b);
    if (!present.length) return [];
    if (this.enabled.has('QRESYNC')) {
      selection.uids = selection.uids.filter((uid) => indexOf(present, uid) < 0);
      return [`* VANISHED ${sequenceSetOf(present)}\r\n`];
    }
    // Highest first: each EXPUNGE's number is then still right when the client applies it.
    const out: string[] = [];
    for (let i = present.length - 1; i >= 0; i--) {
      const index = indexOf(selection.uids, present[i]);
      out.push(`* ${index + 1} EXPUNGE\r\n`);
      selection.uids.splice(index, 1);
    }
    return out;
  }

  flagsItem(uid: number, flags: readonly string[]): string {
    return `FLAGS ${flagList(this.selection?.isRecent(uid) ? [...flags, '\\Recent'] : flags)}`;
  }

  modseqItem(modseq: number): string {
    return this.condstore ? ` MODSEQ (${modseq})` : '';
  }

  // ---- IDLE ----------------------------------------------------------------------------------------

  /** IDLE (RFC 2177): changes are pushed as they happen until the client says DONE. */
  async idle(): Promise<void> {
    this.write('+ idling\r\n');
    this.flush();
    const done = this.nextLine();
    // Report what changed since the last command first.
    this.#dirty = true;
    let line: string | null | undefined;
    void done.then((l) => {
      line = l;
      this.#idleWake?.();
    });
    try {
      while (line === undefined) {
        if (this.#dirty && this.selection) {
          this.#dirty = false;
          await this.sync(true);
          this.flush();
          continue;
        }
        await new Promise<void>((resolve) => {
          this.#idleWake = resolve;
        });
        this.#idleWake = null;
      }
    } finally {
      this.#idleWake = null;
    }
    if (line === null) return;
    if (line.trim().toUpperCase() !== 'DONE') throw bad('Expected DONE');
  }
}

/** FETCH, STORE and SEARCH by sequence number must not be answered with EXPUNGE (RFC 3501 7.4.1). */
function forbidsExpunge(command: Command): boolean {
  return !command.uid && (command.name === 'FETCH' || command.name === 'STORE' || command.name === 'SEARCH');
}

/** The response code for a service error. */
function codeOf(err: AppError): string {
  switch (err.code) {
    case 'over_quota':
      return '[OVERQUOTA] ';
    case 'not_found':
      return '[NONEXISTENT] ';
    case 'conflict':
      return '[ALREADYEXISTS] ';
    case 'invalid_folder_name':
      return '[CANNOT] ';
    case 'cannot':
      return '[CANNOT] ';
    case 'limit_reached':
      return '[LIMIT] ';
    default:
      return '';
  }
}
