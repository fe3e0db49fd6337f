// Twilio Programmable Messaging through the official `twilio` SDK. The SDK always builds
// https://api.twilio.com URLs (a region or edge only changes the host's labels), so a custom HTTP
// client, the SDK's documented extension point, moves them to the configured API root and turns
// error answers into failures that keep Retry-After, which the SDK's own RestException drops.
// Status callbacks and incoming messages are form posts signed with X-Twilio-Signature, checked with
// the SDK's validateRequest against the account's auth token.
import twilio from 'twilio';
import type RequestClient from 'twilio/lib/base/RequestClient.js';
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

export interface TwilioCredentials {
  account_sid: string;
  auth_token: string;
  /** The default sender: a Twilio number (E.164) or an alphanumeric sender id. */
  from?: string;
  /** A Messaging Service that picks the sender; used when neither the message nor `from` names one. */
  messaging_service_sid?: string;
}

export interface TwilioOptions {
  /** The REST API root, `https://api.twilio.com` unless set (tests point it at a local server). */
  apiUrl?: string;
  /** Where Twilio posts this account's status callbacks (the sms module's webhook URL). */
  statusCallbackUrl?: string;
  /** Per call. */
  timeoutMs?: number;
  now?: () => Date;
}

export const TWILIO_API_URL = 'https://api.twilio.com';
const DEFAULT_TIMEOUT_MS = 30_000;
/** Twilio refuses bodies over 1,600 characters (error 21617): ten GSM-7 segments. */
const MAX_PARTS = 10;
/** Twilio's Messages API takes no idempotency key: a create sent twice is two messages. */
export const IDEMPOTENT_SUBMIT = false;

/** A call Twilio refused (status set) or that got no answer (status null). */
/** Transport errors that mean the request never left. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

class TwilioCallFailed extends Error {
  maybeTaken = false;
  readonly status: number | null;
  readonly code: number | undefined;
  readonly retryAfter: string | null;

  constructor(message: string, status: number | null, code?: number, retryAfter: string | null = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

function parseBody(body: unknown): Record<string, any> | null {
  if (body && typeof body === 'object') return body as Record<string, any>;
  if (typeof body !== 'string') return null;
  try {
    const parsed = JSON.parse(body);
    return parsed && typeof parsed === 'object' ? parsed : null;
  } catch {
    return null;
  }
}

/** The SDK's request client, sending to `apiUrl` and failing on any status of 400 or more. */
function requestClient(apiUrl: string, timeoutMs: number, redact: (text: string) => string) {
  const target = new URL(apiUrl);
  const prefix = target.pathname.replace(/\/+$/, '');
  const rewrite = (uri: string): string => {
    const url = new URL(uri);
    url.protocol = target.protocol;
    url.host = target.host;
    url.pathname = prefix + url.pathname;
    return url.href;
  };

  class MailroomRequestClient extends twilio.RequestClient {
    override async request<TData>(opts: RequestClient.RequestOptions<TData>) {
      const response = await super.request({ ...opts, uri: rewrite(opts.uri) }).catch((err: unknown) => {
        const error = err as Error & { code?: string };
        const reason =
          error.code === 'ECONNABORTED' ? `no answer within ${timeoutMs / 1000} s` : error.message;
        const failed = new TwilioCallFailed(
          `Twilio could not be reached: ${redact(reason ?? String(err))}`,
          null,
        );
        // Refused or unresolvable: nothing went out. Anything else may have reached Twilio.
        failed.maybeTaken = !NOT_SENT.has(error.code ?? '');
        throw failed;
      });
      if (response.statusCode < 400) return response;
      const body = parseBody(response.body);
      const message =
        typeof body?.message === 'string' ? redact(body.message) : `HTTP ${response.statusCode}`;
      const code = typeof body?.code === 'number' ? body.code : undefined;
      const retryAfter = response.headers?.['retry-after'];
      throw new TwilioCallFailed(message, response.statusCode, code, retryAfter ? String(retryAfter) : null);
    }
  }
  return new MailroomRequestClient({ timeout: timeoutMs, keepAlive: true });
}

function described(error: TwilioCallFailed): string {
  return error.code ? `${error.message} (error ${error.code})` : error.message;
}

function toProviderError(error: unknown): unknown {
  if (!(error instanceof TwilioCallFailed)) return error;
  if (error.status === null) return new ProviderError('provider_unavailable', error.message);
  // 404 on the account itself: the SID names an account the token does not open.
  if (error.status === 401 || error.status === 403 || error.status === 404)
    return new ProviderError(
      'provider_auth_failed',
      `Twilio refused the account SID and auth token: ${described(error)}`,
    );
  if (error.status === 429) {
    const wait = retryAfterMs(error.retryAfter, new Date());
    return new ProviderError(
      'provider_rate_limited',
      `Twilio asked to slow down: ${described(error)}`,
      wait === undefined ? null : Math.ceil(wait / 1000),
    );
  }
  if (error.status >= 500)
    return new ProviderError('provider_unavailable', `Twilio failed: ${described(error)}`);
  return new ProviderError('provider_rejected', `Twilio refused: ${described(error)}`);
}

function toSendError(error: unknown, now: Date): unknown {
  if (!(error instanceof TwilioCallFailed)) return error;
  if (error.status === null)
    return new SmsSendError(error.message, { retryable: true, maybeTaken: error.maybeTaken });
  const code = error.code !== undefined ? String(error.code) : String(error.status);
  if (error.status === 429 || error.status >= 500)
    return new SmsSendError(`Twilio could not take the message now: ${described(error)}`, {
      retryable: true,
      retryAfterMs: retryAfterMs(error.retryAfter, now),
      code,
    });
  return new SmsSendError(`Twilio refused the message: ${described(error)}`, { retryable: false, code });
}

/** Twilio reports what a message cost as a negative amount ("-0.00750"); Mailroom records the cost. */
function price(amount: string | null | undefined, currency: string | null | undefined) {
  if (!amount || !currency || !/^-?\d+(\.\d+)?$/.test(amount)) return undefined;
  return { amount: amount.replace(/^-/, ''), currency: currency.toUpperCase() };
}

const RECEIPT_STATUS: Record<string, 'sent' | 'delivered' | 'failed' | 'undelivered'> = {
  sent: 'sent',
  delivered: 'delivered',
  // WhatsApp's "read" implies delivered.
  read: 'delivered',
  failed: 'failed',
  undelivered: 'undelivered',
  canceled: 'failed',
};

function rejected(reason: string): SmsWebhookRejected {
  return new SmsWebhookRejected(`Twilio webhook refused: ${reason}`);
}

export function twilioProvider(credentials: TwilioCredentials, options: TwilioOptions = {}): SmsProvider {
  const now = options.now ?? (() => new Date());
  const redact = redactor(credentials.auth_token);
  const client = new twilio.Twilio(credentials.account_sid, credentials.auth_token, {
    httpClient: requestClient(
      options.apiUrl ?? TWILIO_API_URL,
      options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      redact,
    ),
    // TWILIO_* variables in the environment must not change which account this is.
    env: {},
  });

  return {
    name: 'twilio',
    capabilities: {
      receipts: true,
      inbound: true,
      maxParts: MAX_PARTS,
      window: 1,
      idempotentSubmit: IDEMPOTENT_SUBMIT,
    },

    async verify() {
      let account: { status: string };
      try {
        account = await client.api.v2010.accounts(credentials.account_sid).fetch();
      } catch (error) {
        throw toProviderError(error);
      }
      if (account.status !== 'active')
        throw new ProviderError('provider_auth_failed', `the Twilio account is ${account.status}`);
    },

    async send(message): Promise<SubmitResult> {
      const sender = message.from
        ? { from: message.from }
        : credentials.messaging_service_sid
          ? { messagingServiceSid: credentials.messaging_service_sid }
          : { from: credentials.from };
      let created: {
        sid: string;
        status: string;
        price: string | null;
        priceUnit: string | null;
        errorCode: number | null;
      };
      try {
        created = await client.messages.create({
          to: message.to,
          body: message.body,
          ...sender,
          ...(options.statusCallbackUrl ? { statusCallback: options.statusCallbackUrl } : {}),
        });
      } catch (error) {
        throw toSendError(error, now());
      }
      if (created.status === 'failed' || created.status === 'undelivered' || created.status === 'canceled') {
        const code = created.errorCode ? String(created.errorCode) : undefined;
        throw new SmsSendError(`Twilio ${created.status} the message${code ? ` (error ${code})` : ''}`, {
          retryable: false,
          code,
        });
      }
      const cost = price(created.price, created.priceUnit);
      return {
        providerId: created.sid,
        status: created.status === 'sent' || created.status === 'delivered' ? 'sent' : 'sending',
        ...(cost ? { price: cost } : {}),
      };
    },

    parseWebhook(request: SmsWebhookRequest): SmsProviderEvent[] {
      const type = headerValue(request.headers, 'content-type') ?? '';
      if (!type.toLowerCase().startsWith('application/x-www-form-urlencoded'))
        throw rejected('the body is not a form (application/x-www-form-urlencoded)');
      const signature = headerValue(request.headers, 'x-twilio-signature');
      if (!signature) throw rejected('X-Twilio-Signature is missing');
      const form = new URLSearchParams(request.rawBody.toString('utf8'));
      const params: Record<string, string> = {};
      for (const [key, value] of form) params[key] ??= value;
      if (!twilio.validateRequest(credentials.auth_token, signature, request.url, params))
        throw rejected('the signature does not match');
      if (params.AccountSid !== credentials.account_sid) throw rejected('AccountSid is not this account');

      const sid = params.MessageSid || params.SmsSid;
      if (!sid) throw rejected('MessageSid is missing');
      const status = params.MessageStatus;
      if (status !== undefined) {
        const mapped = RECEIPT_STATUS[status];
        // queued, sending, accepted, scheduled: nothing that the message's status does not already say.
        if (!mapped) return [];
        return [
          {
            type: 'receipt',
            providerId: sid,
            status: mapped,
            ...(params.ErrorCode ? { errorCode: params.ErrorCode } : {}),
            at: now(),
          },
        ];
      }
      if (params.Body === undefined || !params.From || !params.To)
        throw rejected('neither a status callback nor an incoming message');
      return [
        { type: 'inbound', providerId: sid, from: params.From, to: params.To, body: params.Body, at: now() },
      ];
    },

    async close() {},
  };
}
