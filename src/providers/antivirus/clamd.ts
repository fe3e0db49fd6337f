// ClamAV's daemon over its socket protocol (clamd(8)): one connection per command, each command sent
// with the `z` prefix and NUL terminator and answered with one NUL-terminated reply. A scan is
// `zINSTREAM\0` followed by chunks, each a 4-byte big-endian length and that many bytes, and a zero
// length to end; the reply is `stream: OK`, `stream: <signature> FOUND`, or `<reason> ERROR` (e.g.
// `INSTREAM size limit exceeded. ERROR` past StreamMaxLength, after which clamd closes the connection).
import net from 'node:net';
import { Readable } from 'node:stream';
import { AntivirusError, type ScanResult, type VirusScanner } from './types.ts';

export interface ClamdOptions {
  /** `host:port`, `[ipv6]:port`, or the path of clamd's unix socket (e.g. `/run/clamav/clamd.ctl`). */
  address: string;
  /** The whole exchange, per call: connect, send, reply. Default 30 s. */
  timeoutMs?: number;
  /**
   * Refuse (antivirus_size_limit) before sending more than this many bytes; set it to clamd's
   * StreamMaxLength so a large message is refused without streaming it. Unset: clamd decides.
   */
  maxStreamBytes?: number;
  /** Bytes per INSTREAM chunk. Default 64 KiB. */
  chunkBytes?: number;
}

export type ClamdAddress = { path: string } | { host: string; port: number };

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_CHUNK_BYTES = 64 * 1024;
/** Replies are one short line; more than this is not clamd. */
const MAX_REPLY_BYTES = 4096;
const SIZE_LIMIT_REPLY = 'INSTREAM size limit exceeded. ERROR';
/** How long clamd gets to answer the size question after cutting a stream off; it answers at once. */
const CUT_OFF_PROBE_MS = 2_000;

/** The address setting as socket options; AntivirusError 'antivirus_misconfigured' when it is neither form. */
export function parseClamdAddress(setting: string): ClamdAddress {
  const value = setting.trim();
  const path = value.startsWith('unix:') ? value.slice('unix:'.length) : value;
  if (path.startsWith('/')) return { path };
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port < 1 || port > 65535)
    throw new AntivirusError(
      'antivirus_misconfigured',
      `clamd address "${setting}" is neither host:port nor an absolute unix socket path`,
    );
  return { host: match[1] ?? match[2], port };
}

/** clamd cut an INSTREAM off without a reply, after `bytes` bytes of content were sent or being sent. */
class StreamCutOff extends Error {
  readonly bytes: number;

  constructor(bytes: number) {
    super('clamd closed the connection while the content was being sent');
    this.bytes = bytes;
  }
}

/** The time a call has left, shared by every connection the call makes. */
interface Deadline {
  signal: AbortSignal;
  /** What an abort means: the caller's reason, or a timeout. */
  failure(): unknown;
}

export class ClamdScanner implements VirusScanner {
  readonly address: ClamdAddress;
  readonly #where: string;
  readonly #timeoutMs: number;
  readonly #maxStreamBytes: number;
  readonly #chunkBytes: number;

  constructor(options: ClamdOptions) {
    this.address = parseClamdAddress(options.address);
    this.#where = 'path' in this.address ? this.address.path : `${this.address.host}:${this.address.port}`;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#maxStreamBytes = options.maxStreamBytes ?? Number.POSITIVE_INFINITY;
    this.#chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  }

  async scan(content: Buffer | Readable, options: { signal?: AbortSignal } = {}): Promise<ScanResult> {
    const source = Buffer.isBuffer(content) ? Readable.from([content]) : content;
    const deadline = this.#deadline(options.signal);
    let reply: string;
    try {
      reply = await this.#converse(Buffer.from('zINSTREAM\0'), deadline, source);
    } catch (err) {
      if (err instanceof StreamCutOff) throw await this.#cutOffReason(err.bytes, deadline);
      throw err;
    } finally {
      // Once clamd has replied or the scan failed, whatever is left of the stream is not needed.
      source.destroy();
    }
    return scanResult(reply);
  }

  async ping(options: { signal?: AbortSignal } = {}): Promise<void> {
    const reply = await this.#converse(Buffer.from('zPING\0'), this.#deadline(options.signal));
    if (reply !== 'PONG') throw malformed(reply);
  }

  /** clamd's version line, e.g. `ClamAV 1.4.6/27480/Mon Dec  7 08:00:00 2026` (engine/database/date). */
  version(options: { signal?: AbortSignal } = {}): Promise<string> {
    return this.#converse(Buffer.from('zVERSION\0'), this.#deadline(options.signal));
  }

  #deadline(caller: AbortSignal | undefined, timeoutMs = this.#timeoutMs): Deadline {
    caller?.throwIfAborted();
    const timeout = AbortSignal.timeout(timeoutMs);
    return {
      signal: caller ? AbortSignal.any([caller, timeout]) : timeout,
      failure: () =>
        caller?.aborted
          ? caller.reason
          : new AntivirusError(
              'antivirus_timeout',
              `clamd at ${this.#where} did not reply within ${timeoutMs} ms`,
            ),
    };
  }

  /**
   * Why clamd cut a stream off. Past StreamMaxLength it replies and closes at once, and its reply is
   * lost when our next write meets the closed connection first (Node drops the socket, reply unread,
   * on a failed write). clamd checks a chunk's declared length against StreamMaxLength as soon as the
   * length arrives, before any data, so declaring the bytes we tried to send asks it the question again:
   * an immediate size-limit reply confirms the limit, silence (clamd waiting for data) rules it out.
   */
  async #cutOffReason(bytes: number, deadline: Deadline): Promise<unknown> {
    if (deadline.signal.aborted) return deadline.failure();
    const length = Buffer.alloc(4);
    length.writeUInt32BE(Math.min(bytes, 0xffffffff));
    const probe = this.#deadline(deadline.signal, CUT_OFF_PROBE_MS);
    try {
      const reply = await this.#converse(Buffer.concat([Buffer.from('zINSTREAM\0'), length]), probe);
      if (reply === SIZE_LIMIT_REPLY) return sizeLimit();
    } catch (err) {
      if (deadline.signal.aborted) return deadline.failure();
      if (!(err instanceof AntivirusError)) return err;
    }
    return new AntivirusError(
      'antivirus_unavailable',
      `clamd at ${this.#where} closed the connection while the content was being sent`,
    );
  }

  /**
   * Sends the command (and the stream as INSTREAM chunks) and resolves with clamd's reply, without its
   * NUL. Rejects with StreamCutOff when clamd closes the connection on a stream without replying.
   */
  #converse(command: Buffer, deadline: Deadline, stream: Readable | null = null): Promise<string> {
    const where = this.#where;
    return new Promise<string>((resolve, reject) => {
      const socket = net.connect(this.address);
      const progress = { sending: false, bytes: 0, settled: false };
      let received = Buffer.alloc(0);

      const finish = (error: unknown, reply?: string) => {
        if (progress.settled) return;
        progress.settled = true;
        deadline.signal.removeEventListener('abort', onAbort);
        socket.destroy();
        if (error) reject(error);
        else resolve(reply!);
      };
      const onAbort = () => finish(deadline.failure());
      if (deadline.signal.aborted) return finish(deadline.failure());
      deadline.signal.addEventListener('abort', onAbort, { once: true });

      socket.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        const end = received.indexOf(0);
        if (end >= 0) finish(null, received.subarray(0, end).toString('utf8').trim());
        else if (received.length > MAX_REPLY_BYTES)
          finish(malformed(received.subarray(0, 200).toString('utf8')));
      });
      // A reply without its NUL still counts; a close without any reply does not.
      const closed = (err?: NodeJS.ErrnoException) => {
        const text = received.toString('utf8').trim();
        if (text) return finish(null, text);
        if (progress.sending) return finish(new StreamCutOff(progress.bytes));
        finish(
          new AntivirusError(
            'antivirus_unavailable',
            err
              ? `clamd at ${where} could not be reached (${err.code ?? err.message})`
              : `clamd at ${where} closed the connection without a reply`,
          ),
        );
      };
      socket.on('end', () => closed());
      socket.on('error', (err: NodeJS.ErrnoException) => closed(err));
      socket.on('close', () => closed());

      socket.once('connect', () => {
        socket.write(command);
        if (!stream) return;
        progress.sending = true;
        // `sending` stays set: until clamd replies, a close cuts the stream off, however much of it
        // is still in the socket's buffers.
        this.#sendChunks(socket, stream, progress).catch((err) => finish(err));
      });
    });
  }

  /** Writes the stream as INSTREAM chunks and the terminator, waiting for the socket to drain between them. */
  async #sendChunks(
    socket: net.Socket,
    stream: Readable,
    progress: { bytes: number; settled: boolean },
  ): Promise<void> {
    for await (const piece of stream) {
      const data: Buffer = typeof piece === 'string' ? Buffer.from(piece) : piece;
      for (let offset = 0; offset < data.length; offset += this.#chunkBytes) {
        if (progress.settled) return;
        const chunk = data.subarray(offset, offset + this.#chunkBytes);
        if (progress.bytes + chunk.length > this.#maxStreamBytes) throw sizeLimit(this.#maxStreamBytes);
        progress.bytes += chunk.length;
        const length = Buffer.allocUnsafe(4);
        length.writeUInt32BE(chunk.length);
        // Corked: the length and its data leave in one writev.
        socket.cork();
        socket.write(length);
        const more = socket.write(chunk);
        socket.uncork();
        if (!more) await drained(socket);
      }
    }
    if (!progress.settled) socket.write(Buffer.alloc(4));
  }
}

/** Resolves when the socket can take more, or is gone (the sender then sees `settled`). */
function drained(socket: net.Socket): Promise<void> {
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

function sizeLimit(maxStreamBytes?: number): AntivirusError {
  return new AntivirusError(
    'antivirus_size_limit',
    maxStreamBytes === undefined
      ? 'the content is larger than clamd accepts (its StreamMaxLength)'
      : `the content is larger than the ${maxStreamBytes} bytes clamd accepts (maxStreamBytes)`,
  );
}

function scanResult(reply: string): ScanResult {
  if (reply === 'stream: OK') return { infected: false, signature: null };
  const found = /^stream: (.+) FOUND$/.exec(reply);
  // ExtendedDetectionInfo appends `(md5:size)` to the name; the name alone is the signature.
  if (found) return { infected: true, signature: found[1].replace(/\([0-9a-f]{32}:\d+\)$/, '') };
  if (reply === SIZE_LIMIT_REPLY) throw sizeLimit();
  if (reply.endsWith(' ERROR'))
    throw new AntivirusError('antivirus_scan_failed', `clamd could not scan: ${reply}`);
  throw malformed(reply);
}

function malformed(reply: string): AntivirusError {
  return new AntivirusError(
    'antivirus_malformed',
    `clamd replied with something unexpected: ${JSON.stringify(reply.slice(0, 200))}`,
  );
}
