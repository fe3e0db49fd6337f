// One webhook attempt: a POST (signed webhooks, Teams cards) through agents whose DNS lookup refuses
// private addresses, with a timeout over the whole exchange. Redirects are not followed (a redirect could
// lead anywhere).
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { DestinationRefused, type DestinationGuard } from './ssrf.ts';

/** Kept per attempt: enough of the response for a person to see what the receiver said. */
const RESPONSE_KEPT = 2048;
/** Read at most this much of a response (so the connection can be reused); more closes it. */
const RESPONSE_READ_LIMIT = 256 * 1024;

export interface AttemptResult {
  outcome: 'succeeded' | 'retry' | 'failed';
  statusCode: number | null;
  durationMs: number;
  responseBody: string | null;
  error: string | null;
  /** From a Retry-After header on 429 or 5xx. */
  retryAfterMs: number | null;
}

interface Target {
  https: boolean;
  /** The host is an IP address (no DNS lookup happens, so it is checked before each request). */
  literal: boolean;
  options: { host: string; port?: string; path: string; servername?: string };
}

export class WebhookSender {
  /** Decides which URLs may be called (also used when a URL is saved). */
  readonly guard: DestinationGuard;
  readonly #timeoutMs: number;
  readonly #http: http.Agent;
  readonly #https: https.Agent;
  readonly #targets = new Map<string, Target>();

  constructor(guard: DestinationGuard, timeoutMs: number) {
    this.guard = guard;
    this.#timeoutMs = timeoutMs;
    const agentOptions = { keepAlive: true, maxSockets: 64, maxFreeSockets: 64, lookup: guard.lookup };
    this.#http = new http.Agent(agentOptions);
    this.#https = new https.Agent(agentOptions);
  }

  /** `headers`: the Standard Webhooks signature, or (Teams cards) plain headers of the caller's. */
  async send(url: string, headers: Readonly<Record<string, string>>, body: string): Promise<AttemptResult> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    let target: Target;
    try {
      target = this.#target(url);
      // Names are checked in the agent's lookup; literal addresses never reach it.
      if (target.literal) await this.guard.check(new URL(url));
    } catch (err) {
      return networkFailure(err, elapsed());
    }
    return new Promise<AttemptResult>((resolve) => {
      const request = (target.https ? https : http).request({
        ...target.options,
        method: 'POST',
        agent: target.https ? this.#https : this.#http,
        headers: {
          ...headers,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'user-agent': 'Mailroom-Webhooks/1',
        },
      });
      const timer = setTimeout(
        () => request.destroy(new Error(`timed out after ${this.#timeoutMs} ms`)),
        this.#timeoutMs,
      );
      const finish = (result: AttemptResult) => {
        clearTimeout(timer);
        resolve(result);
      };
      request.on('error', (err) => finish(networkFailure(err, elapsed())));
      request.on('response', (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= RESPONSE_READ_LIMIT) chunks.push(chunk);
          else response.destroy();
        });
        const done = () => {
          const status = response.statusCode ?? 0;
          finish({
            outcome: outcomeOf(status),
            statusCode: status,
            durationMs: elapsed(),
            responseBody: Buffer.concat(chunks).subarray(0, RESPONSE_KEPT).toString('utf8'),
            error: null,
            retryAfterMs:
              status === 429 || status >= 500 ? parseRetryAfter(response.headers['retry-after']) : null,
          });
        };
        response.on('end', done);
        response.on('close', done); // also after destroy(); `finish` runs once (the promise settles once)
        response.on('error', () => {});
      });
      request.end(body);
    });
  }

  /** Parsed once per URL: an endpoint's messages all go to the same place. */
  #target(url: string): Target {
    let target = this.#targets.get(url);
    if (!target) {
      const u = new URL(url);
      const host = u.hostname.replace(/^\[|\]$/g, '');
      target = {
        https: u.protocol === 'https:',
        literal: isIP(host) !== 0,
        options: {
          host,
          port: u.port || undefined,
          path: `${u.pathname}${u.search}`,
          servername: isIP(host) ? undefined : host,
        },
      };
      if (this.#targets.size > 10_000) this.#targets.clear();
      this.#targets.set(url, target);
    }
    return target;
  }

  close(): void {
    this.#http.destroy();
    this.#https.destroy();
  }
}

function outcomeOf(status: number): AttemptResult['outcome'] {
  if (status >= 200 && status < 300) return 'succeeded';
  if (status === 429 || status >= 500) return 'retry';
  // Other 4xx: the receiver refuses this message; 3xx: redirects are not followed.
  return 'failed';
}

function networkFailure(err: unknown, durationMs: number): AttemptResult {
  const e = err as NodeJS.ErrnoException;
  const refused = e instanceof DestinationRefused;
  return {
    // A refused destination may be fixed by its owner (DNS changes); it is retried like a network error.
    outcome: 'retry',
    statusCode: null,
    durationMs,
    responseBody: null,
    error: refused ? `refused: ${e.message}` : e.code ? `${e.code}: ${e.message}` : e.message,
    retryAfterMs: null,
  };
}

/** Seconds or an HTTP date; null when absent or unreadable. */
function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | null {
  if (typeof value !== 'string') return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}
