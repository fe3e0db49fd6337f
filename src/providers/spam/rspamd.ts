// rspamd's scanner protocol (rspamd.com/doc/developers/protocol): `POST {url}/checkv2` with the raw
// message as the body and the SMTP envelope as request headers (IP, Helo, Hostname, From, one Rcpt
// header per recipient, User, Queue-Id, and Password for a controller that asks for one); the answer
// is JSON with score, required_score, action and the symbols keyed by name. `url` is the normal
// worker's (port 11333) or the proxy's root, the operator's setting.
//
// node:http rather than fetch: fetch folds repeated headers into one comma-joined line and cannot send
// a UTF-8 (SMTPUTF8) address as its bytes, while rspamd expects one Rcpt line per recipient and reads
// header values as raw octets.
import http from 'node:http';
import https from 'node:https';
import {
  type SpamCheck,
  type SpamEngine,
  type SpamEnvelope,
  SpamEngineError,
  type SpamSymbol,
} from './types.ts';

export interface RspamdOptions {
  /** The scanner's root, e.g. `http://127.0.0.1:11333` (`/checkv2` is appended). */
  url: string;
  /** Sent as the Password header; the normal worker ignores it, a controller may require it. */
  password?: string;
  /** The whole exchange: connect, send, answer. Default 10 s. */
  timeoutMs?: number;
  /** The largest answer accepted, in bytes. Default 2 MiB. */
  maxResponseBytes?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_RESPONSE_BYTES = 2 * 1024 * 1024;
/** The most of an error body quoted in a SpamEngineError. */
const ERROR_EXCERPT = 200;
/** Actions after which the message is delivered as ham or deferred, not marked as spam. */
const HAM_ACTIONS = new Set(['no action', 'greylist', 'soft reject']);

export class RspamdSpamEngine implements SpamEngine {
  readonly #url: URL;
  readonly #password: string | undefined;
  readonly #timeoutMs: number;
  readonly #maxResponseBytes: number;

  constructor(options: RspamdOptions) {
    const url = new URL(`${options.url.replace(/\/+$/, '')}/checkv2`);
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new TypeError(`rspamd URL must be http or https, not ${url.protocol}`);
    this.#url = url;
    this.#password = options.password;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  }

  async check(
    raw: Buffer,
    envelope: SpamEnvelope,
    options: { signal?: AbortSignal } = {},
  ): Promise<SpamCheck> {
    const headers = requestHeaders(envelope, this.#password);
    const caller = options.signal;
    caller?.throwIfAborted();
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const signal = caller ? AbortSignal.any([caller, timeout]) : timeout;
    let answer: { status: number; body: Buffer };
    try {
      answer = await post(this.#url, headers, raw, signal, this.#maxResponseBytes);
    } catch (err) {
      if (caller?.aborted) throw caller.reason;
      // However the abort surfaced (AbortError, a reset mid-answer), the clock ran out.
      if (timeout.aborted)
        throw new SpamEngineError(
          'spam_engine_timeout',
          `rspamd did not answer within ${this.#timeoutMs} ms`,
        );
      throw requestFailure(err);
    }
    if (answer.status < 200 || answer.status > 299) throw statusFailure(answer.status, answer.body);
    return verdict(answer.body);
  }
}

/**
 * The envelope as rspamd's request headers. Values go on the wire as their UTF-8 bytes (Node writes
 * header strings as latin1, one byte per character); a control character would end or corrupt the
 * header, so such a value is refused.
 */
function requestHeaders(
  envelope: SpamEnvelope,
  password: string | undefined,
): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  const put = (name: string, value: string | undefined) => {
    if (value === undefined || value === '') return;
    headers[name] = octets(name, value);
  };
  put('IP', envelope.ip);
  put('Helo', envelope.helo);
  put('Hostname', envelope.hostname);
  // rspamd reads `<>` as the null reverse-path.
  put('From', envelope.from === null ? '<>' : envelope.from);
  const recipients = (envelope.recipients ?? []).filter((r) => r !== '');
  if (recipients.length > 0) headers.Rcpt = recipients.map((r) => octets('Rcpt', r));
  put('User', envelope.user);
  put('Queue-Id', envelope.queueId);
  if (password !== undefined && password !== '') headers.Password = octets('Password', password);
  return headers;
}

function octets(name: string, value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: these are exactly the characters refused.
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value))
    throw new SpamEngineError('spam_engine_rejected', `the ${name} value contains a control character`);
  return Buffer.from(value, 'utf8').toString('latin1');
}

class ResponseTooLarge extends Error {}

/** One POST; resolves with the status and the whole body (at most `maxBytes`), whatever the status. */
function post(
  url: URL,
  headers: Record<string, string | string[]>,
  body: Buffer,
  signal: AbortSignal,
  maxBytes: number,
): Promise<{ status: number; body: Buffer }> {
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    // A fresh connection per message: a kept-alive one that rspamd closes as it is reused would fail
    // a POST that cannot be retried safely.
    const request = client.request(url, { method: 'POST', headers, signal, agent: false }, (response) => {
      const declared = Number(response.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBytes) {
        response.destroy();
        return reject(new ResponseTooLarge());
      }
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          response.destroy();
          reject(new ResponseTooLarge());
          return;
        }
        chunks.push(chunk);
      });
      response.once('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }));
      response.once('error', reject);
      // A dropped connection (or an abort) before the whole body arrived.
      response.once('close', () => {
        if (!response.complete)
          reject(Object.assign(new Error('the answer was cut off'), { code: 'ECONNRESET' }));
      });
    });
    request.once('error', reject);
    request.end(body);
  });
}

function requestFailure(err: unknown): SpamEngineError {
  if (err instanceof SpamEngineError) return err;
  if (err instanceof ResponseTooLarge)
    return new SpamEngineError(
      'spam_engine_malformed',
      'rspamd answered with more than the size limit allows',
    );
  const error = err as Error & { code?: string };
  // llhttp's parse errors: whatever answered does not speak HTTP.
  if (error.code?.startsWith('HPE_'))
    return new SpamEngineError(
      'spam_engine_malformed',
      `rspamd answered with something that is not HTTP (${error.code})`,
    );
  return new SpamEngineError(
    'spam_engine_unavailable',
    `rspamd could not be reached${error.code ? ` (${error.code})` : `: ${error.message}`}`,
  );
}

/** rspamd's error body is `{"error": "..."}`; it is quoted, shortened. */
function statusFailure(status: number, body: Buffer): SpamEngineError {
  let detail = '';
  try {
    const message = (JSON.parse(body.toString('utf8')) as { error?: unknown })?.error;
    if (typeof message === 'string') detail = `: ${message.slice(0, ERROR_EXCERPT)}`;
  } catch {
    // Not JSON (a proxy's page): the status says enough.
  }
  const code = status >= 500 || status === 429 ? 'spam_engine_unavailable' : 'spam_engine_rejected';
  return new SpamEngineError(code, `rspamd answered ${status}${detail}`, status);
}

function malformed(what: string): SpamEngineError {
  return new SpamEngineError('spam_engine_malformed', `rspamd's answer ${what}`);
}

/** The checkv2 answer as a SpamCheck; anything that is not one is malformed, never guessed at. */
function verdict(body: Buffer): SpamCheck {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw malformed('is not JSON');
  }
  if (!isObject(parsed)) throw malformed('is not a JSON object');
  const { score, required_score: requiredScore, action, symbols } = parsed;
  if (typeof score !== 'number' || !Number.isFinite(score)) throw malformed('has no numeric score');
  if (typeof requiredScore !== 'number' || !Number.isFinite(requiredScore))
    throw malformed('has no numeric required_score');
  if (typeof action !== 'string' || action === '') throw malformed('has no action');
  if (symbols !== undefined && !isObject(symbols)) throw malformed('has symbols that are not an object');
  const check: SpamCheck = {
    score,
    requiredScore,
    action,
    isSpam: !HAM_ACTIONS.has(action),
    symbols: Object.entries(symbols ?? {}).map(([key, value]) => symbol(key, value)),
  };
  const messageId = parsed['message-id'];
  if (typeof messageId === 'string' && messageId !== '') check.messageId = messageId;
  return check;
}

function symbol(key: string, value: unknown): SpamSymbol {
  if (!isObject(value)) throw malformed(`has a symbol ${key} that is not an object`);
  const score = value.score ?? 0;
  if (typeof score !== 'number' || !Number.isFinite(score))
    throw malformed(`has a symbol ${key} with no numeric score`);
  const result: SpamSymbol = { name: typeof value.name === 'string' ? value.name : key, score };
  if (typeof value.description === 'string') result.description = value.description;
  if (Array.isArray(value.options)) result.options = value.options.map(String);
  return result;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
