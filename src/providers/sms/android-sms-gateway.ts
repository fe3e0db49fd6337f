// SMS Gateway for Android (sms-gate.app) through its official client, `android-sms-gateway`: the
// phone's own local server, the public cloud server or a private one, all the same 3rd-party API with
// basic auth. Our message id is sent as the gateway's message id, so a resend after a lost answer meets
// 409 and reads the state instead of sending twice. Receipts and received messages come as webhooks
// signed with HMAC-SHA256 over the raw body followed by X-Timestamp (docs.sms-gate.app, features/webhooks).
import { createHmac, timingSafeEqual } from 'node:crypto';
import GatewayModule, { type HttpClient, type MessageState, ProcessState } from 'android-sms-gateway';
import { ProviderError } from '../errors.ts';
import { headerValue, redactor, retryAfterMs } from './support.ts';
import {
  type SmsProvider,
  type SmsProviderEvent,
  SmsSendError,
  type SmsWebhookRequest,
  SmsWebhookRejected,
  type SubmitResult,
} from './types.ts';

export interface AndroidSmsGatewayCredentials {
  /** The API root of a local or private server; the cloud server when absent. */
  base_url?: string;
  username: string;
  password: string;
  /** The app's webhook signing key (Settings → Webhooks → Signing Key). */
  webhook_signing_key?: string;
}

export interface AndroidSmsGatewayOptions {
  /** The cloud server's API root, used when the credentials name no base_url. */
  cloudUrl?: string;
  /** Per call. */
  timeoutMs?: number;
  /** How far X-Timestamp may be from now before a webhook counts as replayed (the docs suggest ±5 min). */
  webhookToleranceSeconds?: number;
  now?: () => Date;
}

// The package is ESM without "type": "module", so TypeScript takes its default import for the whole
// module; Node loads it as ESM, where the default import is the client class.
const GatewayClient = GatewayModule as unknown as typeof GatewayModule.default;

export const SMS_GATEWAY_CLOUD_URL = 'https://api.sms-gate.app/3rdparty/v1';
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_TOLERANCE_SECONDS = 300;
/** Android splits long texts itself; past this many parts carriers start dropping them. */
const MAX_PARTS = 10;
/** The gateway keeps the message id we give it and refuses a second message with the same one. */
export const IDEMPOTENT_SUBMIT = true;

/** A call the gateway refused (status set) or that got no usable answer (status null). */
class GatewayCallFailed extends Error {
  readonly status: number | null;
  readonly retryAfter: string | null;

  constructor(message: string, status: number | null, retryAfter: string | null = null) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

/** The HttpClient the official client asks for, on fetch: JSON in and out, failures as GatewayCallFailed. */
function fetchClient(timeoutMs: number, redact: (text: string) => string): HttpClient {
  async function call(method: string, url: string, body: unknown, headers: Record<string, string> = {}) {
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      const error = err as Error & { cause?: { code?: string; message?: string } };
      const reason =
        error.name === 'TimeoutError' || error.name === 'AbortError'
          ? `no answer within ${timeoutMs / 1000} s`
          : (error.cause?.code ?? error.cause?.message ?? error.message);
      throw new GatewayCallFailed(`SMS Gateway could not be reached: ${redact(reason)}`, null);
    }
    const text = await response.text();
    let parsed: any;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
      if (response.ok)
        throw new GatewayCallFailed('SMS Gateway answered with something that is not JSON', null);
    }
    if (!response.ok) {
      // The gateway's errors are {message, code?, data?}.
      const detail = typeof parsed?.message === 'string' ? redact(parsed.message) : `HTTP ${response.status}`;
      throw new GatewayCallFailed(detail, response.status, response.headers.get('retry-after'));
    }
    return parsed;
  }
  return {
    get: (url, headers) => call('GET', url, undefined, headers),
    post: (url, body, headers) => call('POST', url, body, headers),
    put: (url, body, headers) => call('PUT', url, body, headers),
    patch: (url, body, headers) => call('PATCH', url, body, headers),
    delete: (url, headers) => call('DELETE', url, undefined, headers),
  };
}

function toProviderError(error: unknown): unknown {
  if (!(error instanceof GatewayCallFailed)) return error;
  if (error.status === null) return new ProviderError('provider_unavailable', error.message);
  if (error.status === 401 || error.status === 403)
    return new ProviderError(
      'provider_auth_failed',
      `SMS Gateway refused the username and password: ${error.message}`,
    );
  if (error.status === 429) {
    const wait = retryAfterMs(error.retryAfter, new Date());
    return new ProviderError(
      'provider_rate_limited',
      `SMS Gateway asked to slow down: ${error.message}`,
      wait === undefined ? null : Math.ceil(wait / 1000),
    );
  }
  if (error.status >= 500)
    return new ProviderError('provider_unavailable', `SMS Gateway failed: ${error.message}`);
  return new ProviderError('provider_rejected', `SMS Gateway refused: ${error.message}`);
}

function toSendError(error: unknown, now: Date): unknown {
  if (!(error instanceof GatewayCallFailed)) return error;
  if (error.status === null) return new SmsSendError(error.message, { retryable: true });
  const code = String(error.status);
  // 503 is the gateway's "queue limits exceeded; ensure the device is online".
  if (error.status === 429 || error.status >= 500)
    return new SmsSendError(`SMS Gateway could not take the message now: ${error.message}`, {
      retryable: true,
      retryAfterMs: retryAfterMs(error.retryAfter, now),
      code,
    });
  if (error.status === 401 || error.status === 403)
    return new SmsSendError(`SMS Gateway refused the username and password: ${error.message}`, {
      retryable: false,
      code,
    });
  return new SmsSendError(`SMS Gateway refused the message: ${error.message}`, { retryable: false, code });
}

function submitResult(state: MessageState): SubmitResult {
  switch (state.state) {
    case ProcessState.Sent:
    case ProcessState.Delivered:
      return { providerId: state.id, status: 'sent' };
    case ProcessState.Failed: {
      const reason = state.recipients?.find((r) => r.error)?.error ?? 'no reason given';
      throw new SmsSendError(`SMS Gateway failed the message: ${reason}`, { retryable: false, code: reason });
    }
    default:
      return { providerId: state.id, status: 'sending' };
  }
}

function rejected(reason: string): SmsWebhookRejected {
  return new SmsWebhookRejected(`SMS Gateway webhook refused: ${reason}`);
}

function text(payload: Record<string, unknown>, field: string): string {
  const value = payload[field];
  if (typeof value !== 'string' || value === '') throw rejected(`payload.${field} is missing`);
  return value;
}

function optionalText(payload: Record<string, unknown>, field: string): string | undefined {
  const value = payload[field];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function time(payload: Record<string, unknown>, field: string): Date {
  const value = Date.parse(text(payload, field));
  if (Number.isNaN(value)) throw rejected(`payload.${field} is not a date`);
  return new Date(value);
}

/** What one webhook call reports; events Mailroom does not record (system:ping, MMS, data SMS) report nothing. */
function webhookEvents(body: Record<string, unknown>): SmsProviderEvent[] {
  const event = body.event;
  const payload = body.payload;
  if (typeof event !== 'string') throw rejected('no event');
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) throw rejected('no payload');
  const p = payload as Record<string, unknown>;
  const receipt = (
    status: 'sent' | 'delivered' | 'failed',
    at: Date,
    errorCode?: string,
  ): SmsProviderEvent[] => [
    { type: 'receipt', providerId: text(p, 'messageId'), status, ...(errorCode ? { errorCode } : {}), at },
  ];
  switch (event) {
    case 'sms:received': {
      // `sender`/`recipient` replaced the ambiguous `phoneNumber` (2026); recipient is null when the
      // phone cannot read its own number.
      const from = optionalText(p, 'sender') ?? text(p, 'phoneNumber');
      const id = optionalText(body, 'id') ?? optionalText(p, 'messageId');
      return [
        {
          type: 'inbound',
          ...(id ? { providerId: id } : {}),
          from,
          to: optionalText(p, 'recipient') ?? '',
          body: typeof p.message === 'string' ? p.message : '',
          at: time(p, 'receivedAt'),
        },
      ];
    }
    case 'sms:sent':
      return receipt('sent', time(p, 'sentAt'));
    case 'sms:delivered':
      return receipt('delivered', time(p, 'deliveredAt'));
    case 'sms:failed':
      // The docs name the reason `reason`; the official client's types call it `error`.
      return receipt('failed', time(p, 'failedAt'), optionalText(p, 'reason') ?? optionalText(p, 'error'));
    default:
      return [];
  }
}

export function androidSmsGatewayProvider(
  credentials: AndroidSmsGatewayCredentials,
  options: AndroidSmsGatewayOptions = {},
): SmsProvider {
  const now = options.now ?? (() => new Date());
  const redact = redactor(credentials.password, credentials.webhook_signing_key);
  const baseUrl = (credentials.base_url || options.cloudUrl || SMS_GATEWAY_CLOUD_URL).replace(/\/+$/, '');
  const client = new GatewayClient(
    credentials.username,
    credentials.password,
    fetchClient(options.timeoutMs ?? DEFAULT_TIMEOUT_MS, redact),
    baseUrl,
  );
  const tolerance = options.webhookToleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;

  return {
    name: 'android-sms-gateway',
    capabilities: {
      receipts: true,
      inbound: true,
      maxParts: MAX_PARTS,
      window: 1,
      idempotentSubmit: IDEMPOTENT_SUBMIT,
    },

    async verify() {
      // Listing webhooks is authenticated and answered by the local server as by the cloud.
      try {
        await client.getWebhooks();
      } catch (error) {
        throw toProviderError(error);
      }
    },

    async send(message) {
      try {
        return submitResult(
          await client.send({
            id: message.id,
            message: message.body,
            phoneNumbers: [message.to],
            withDeliveryReport: true,
          }),
        );
      } catch (error) {
        // 409: a message with this id exists, so an earlier attempt got through; report it, do not resend.
        if (error instanceof GatewayCallFailed && error.status === 409) {
          try {
            return submitResult(await client.getState(message.id));
          } catch (stateError) {
            throw toSendError(stateError, now());
          }
        }
        throw toSendError(error, now());
      }
    },

    parseWebhook(request: SmsWebhookRequest) {
      const key = credentials.webhook_signing_key;
      if (!key)
        throw rejected(
          'the account has no webhook_signing_key; copy it from the app (Settings → Webhooks → Signing Key)',
        );
      const signature = headerValue(request.headers, 'x-signature');
      const timestamp = headerValue(request.headers, 'x-timestamp');
      if (!signature || !timestamp) throw rejected('X-Signature or X-Timestamp is missing');
      if (!/^\d{1,12}$/.test(timestamp)) throw rejected('X-Timestamp is not a Unix time in seconds');
      const skew = Math.abs(now().getTime() / 1000 - Number(timestamp));
      if (skew > tolerance) throw rejected(`X-Timestamp is ${Math.round(skew)} s from now`);
      const expected = createHmac('sha256', key)
        .update(Buffer.concat([request.rawBody, Buffer.from(timestamp, 'ascii')]))
        .digest();
      const given = /^[0-9a-f]{64}$/i.test(signature) ? Buffer.from(signature, 'hex') : null;
      if (!given || !timingSafeEqual(given, expected)) throw rejected('the signature does not match');
      let body: unknown;
      try {
        body = JSON.parse(request.rawBody.toString('utf8'));
      } catch {
        throw rejected('the body is not JSON');
      }
      if (!body || typeof body !== 'object' || Array.isArray(body))
        throw rejected('the body is not an object');
      return webhookEvents(body as Record<string, unknown>);
    },

    async close() {},
  };
}
