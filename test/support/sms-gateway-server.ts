// A local stand-in for SMS Gateway for Android's 3rd-party API (docs.sms-gate.app; the server's
// handlers in android-sms-gateway/server): basic auth, POST /messages (and the legacy /message) with
// its validation, 409 for a message id already used, GET /messages/:id, the webhook registry, and
// signed webhooks (X-Signature: hex HMAC-SHA256 of the raw body followed by X-Timestamp) posted to the
// registered URLs. The cloud and private servers serve it under /3rdparty/v1, the phone's local server
// at its root (basePath '').
import { createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

type State = 'Pending' | 'Processed' | 'Sent' | 'Delivered' | 'Failed';
const EVENTS = ['sms:received', 'sms:sent', 'sms:delivered', 'sms:failed', 'system:ping'];
const E164 = /^\+[1-9]\d{6,14}$/;

export interface GatewayMessage {
  id: string;
  deviceId: string;
  text: string;
  phoneNumbers: string[];
  /** The request body as the gateway received it. */
  request: Record<string, unknown>;
  state: State;
  states: Record<string, string>;
  recipients: { phoneNumber: string; state: State; error?: string }[];
}

export interface GatewayWebhook {
  id: string;
  url: string;
  event: string;
  deviceId: string;
}

export interface WebhookDelivery {
  webhookId: string;
  event: string;
  url: string;
  body: string;
  /** What the receiver answered; null when it could not be reached. */
  status: number | null;
}

export interface SmsGatewayServerOptions {
  username?: string;
  password?: string;
  signingKey?: string;
  /** '/3rdparty/v1' (cloud and private servers) unless given; '' for the phone's local server. */
  basePath?: string;
  /** The phone's own number, reported as the recipient of received messages (null: unknown). */
  deviceNumber?: string | null;
  /** The UTC offset the phone's timestamps carry (they are in the device's local time). */
  utcOffset?: string;
}

export interface SmsGatewayServer {
  /** The API root a client is given: http://127.0.0.1:<port><basePath>. */
  baseUrl: string;
  username: string;
  password: string;
  signingKey: string;
  deviceId: string;
  messages: Map<string, GatewayMessage>;
  webhooks: Map<string, GatewayWebhook>;
  deliveries: WebhookDelivery[];
  requests: { method: string; path: string; status: number }[];
  /** The next `count` message submissions are answered with `status` (429, 503...) and Retry-After. */
  failNext(count: number, status: number, retryAfter?: string): void;
  /** Moves a message on (as the phone reports it) and posts the matching webhook. */
  advance(id: string, state: 'Sent' | 'Delivered' | 'Failed', reason?: string): Promise<WebhookDelivery[]>;
  /** A message arriving at the phone: posts sms:received. */
  receive(message: { from: string; text: string }): Promise<WebhookDelivery[]>;
  /** Posts an event as the phone would, or signed with another key or timestamp (forgeries, replays). */
  post(
    event: string,
    payload: Record<string, unknown>,
    signing?: { key?: string; timestamp?: number },
  ): Promise<WebhookDelivery[]>;
  close(): Promise<void>;
}

class HttpError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

function randomId(): string {
  return randomBytes(16).toString('base64url').slice(0, 21);
}

/** An ISO time with the device's UTC offset, as the app writes them (2024-06-22T15:46:11.000+07:00). */
function deviceTime(date: Date, offset: string): string {
  const sign = offset.startsWith('-') ? -1 : 1;
  const [hours, minutes] = offset.replace(/^[+-]/, '').split(':').map(Number);
  const shifted = new Date(date.getTime() + sign * (hours * 60 + minutes) * 60_000);
  return shifted.toISOString().replace('Z', offset);
}

export async function startSmsGatewayServer(
  options: SmsGatewayServerOptions = {},
): Promise<SmsGatewayServer> {
  const username = options.username ?? 'MAILRM';
  const password = options.password ?? 'p4ssw0rd-gateway';
  const basePath = options.basePath ?? '/3rdparty/v1';
  const offset = options.utcOffset ?? '+07:00';
  let failures = { count: 0, status: 503, retryAfter: undefined as string | undefined };

  const deliver = async (
    event: string,
    payload: Record<string, unknown>,
    signing: { key?: string; timestamp?: number } = {},
  ): Promise<WebhookDelivery[]> => {
    const results: WebhookDelivery[] = [];
    for (const hook of state.webhooks.values()) {
      if (hook.event !== event) continue;
      const body = JSON.stringify({
        deviceId: state.deviceId,
        event,
        id: randomId(),
        payload,
        webhookId: hook.id,
      });
      const timestamp = String(signing.timestamp ?? Math.floor(Date.now() / 1000));
      const signature = createHmac('sha256', signing.key ?? state.signingKey)
        .update(body + timestamp)
        .digest('hex');
      let status: number | null = null;
      try {
        const response = await fetch(hook.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-signature': signature, 'x-timestamp': timestamp },
          body,
        });
        status = response.status;
        await response.arrayBuffer();
      } catch {
        status = null;
      }
      const delivery = { webhookId: hook.id, event, url: hook.url, body, status };
      state.deliveries.push(delivery);
      results.push(delivery);
    }
    return results;
  };

  const state: SmsGatewayServer = {
    baseUrl: '',
    username,
    password,
    signingKey: options.signingKey ?? randomBytes(12).toString('base64url'),
    deviceId: randomId(),
    messages: new Map(),
    webhooks: new Map(),
    deliveries: [],
    requests: [],
    failNext(count, status, retryAfter) {
      failures = { count, status, retryAfter };
    },
    advance(id, next, reason) {
      const message = state.messages.get(id);
      if (!message) throw new Error(`no message ${id}`);
      const now = new Date();
      message.state = next;
      message.states[next] = now.toISOString();
      for (const r of message.recipients) {
        r.state = next;
        if (reason) r.error = reason;
      }
      const phone = message.phoneNumbers[0];
      const common = {
        messageId: id,
        sender: options.deviceNumber ?? null,
        recipient: phone,
        phoneNumber: phone,
        simNumber: null,
      };
      if (next === 'Sent')
        return deliver('sms:sent', { ...common, partsCount: 1, sentAt: deviceTime(now, offset) });
      if (next === 'Delivered')
        return deliver('sms:delivered', { ...common, deliveredAt: deviceTime(now, offset) });
      return deliver('sms:failed', {
        ...common,
        failedAt: deviceTime(now, offset),
        reason: reason ?? 'Unknown error',
      });
    },
    receive(message) {
      return deliver('sms:received', {
        messageId: randomBytes(8).toString('hex'),
        message: message.text,
        sender: message.from,
        recipient: options.deviceNumber ?? null,
        phoneNumber: message.from,
        simNumber: 1,
        receivedAt: deviceTime(new Date(), offset),
      });
    },
    post: (event, payload, signing) => deliver(event, payload, signing),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };

  function authorized(req: http.IncomingMessage): boolean {
    const header = req.headers.authorization ?? '';
    const match = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header);
    if (!match) return false;
    return Buffer.from(match[1], 'base64').toString('utf8') === `${username}:${password}`;
  }

  function messageState(m: GatewayMessage) {
    return {
      id: m.id,
      deviceId: m.deviceId,
      state: m.state,
      isHashed: false,
      isEncrypted: false,
      recipients: m.recipients.map((r) => ({ ...r })),
      states: { ...m.states },
    };
  }

  function jsonBody(req: http.IncomingMessage, raw: Buffer): Record<string, unknown> {
    if (!String(req.headers['content-type'] ?? '').startsWith('application/json'))
      throw new HttpError(400, 'Content-Type must be application/json');
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new HttpError(400, 'invalid JSON');
    }
    if (!body || typeof body !== 'object' || Array.isArray(body))
      throw new HttpError(400, 'body must be an object');
    return body as Record<string, unknown>;
  }

  function enqueue(req: http.IncomingMessage, url: URL, raw: Buffer) {
    const body = jsonBody(req, raw);
    const contents = [
      body.message !== undefined && body.message !== '',
      body.textMessage != null,
      body.dataMessage != null,
    ];
    if (contents.filter(Boolean).length !== 1)
      throw new HttpError(400, 'must specify exactly one of: textMessage or dataMessage');
    let text: string;
    if (body.textMessage != null) {
      const t = (body.textMessage as Record<string, unknown>).text;
      if (typeof t !== 'string' || t.length < 1 || t.length > 65535)
        throw new HttpError(400, 'textMessage.text is invalid');
      text = t;
    } else if (body.message !== undefined) {
      if (typeof body.message !== 'string' || body.message.length > 65535)
        throw new HttpError(400, 'message is invalid');
      text = body.message;
    } else throw new HttpError(400, 'data messages are not supported by this device');
    const phones = body.phoneNumbers;
    if (!Array.isArray(phones) || phones.length < 1 || phones.length > 100)
      throw new HttpError(400, 'phoneNumbers must list 1 to 100 numbers');
    if (!phones.every((p) => typeof p === 'string' && p.length >= 1 && p.length <= 512))
      throw new HttpError(400, 'phoneNumbers must be strings');
    if (url.searchParams.get('skipPhoneValidation') !== 'true') {
      const bad = phones.find((p) => !E164.test(p));
      if (bad) throw new HttpError(400, `failed to parse phone number "${bad}": not in E.164 format`);
    }
    if (body.id !== undefined && (typeof body.id !== 'string' || body.id.length > 36 || body.id === ''))
      throw new HttpError(400, 'id must be a string of at most 36 characters');
    if (
      body.simNumber !== undefined &&
      !(
        Number.isInteger(body.simNumber) &&
        (body.simNumber as number) >= 1 &&
        (body.simNumber as number) <= 3
      )
    )
      throw new HttpError(400, 'simNumber must be 1 to 3');
    if (body.ttl !== undefined && body.validUntil !== undefined)
      throw new HttpError(400, 'conflicting fields: ttl and validUntil');
    if (body.withDeliveryReport !== undefined && typeof body.withDeliveryReport !== 'boolean')
      throw new HttpError(400, 'withDeliveryReport must be a boolean');
    if (failures.count > 0) {
      failures.count--;
      throw Object.assign(
        new HttpError(
          failures.status,
          failures.status === 429 ? 'Too Many Requests' : 'Queue limits exceeded; ensure device is online',
        ),
        {
          retryAfter: failures.retryAfter,
        },
      );
    }
    const id = (body.id as string | undefined) ?? randomId();
    if (state.messages.has(id)) throw new HttpError(409, 'message with such ID already exists');
    const message: GatewayMessage = {
      id,
      deviceId: state.deviceId,
      text,
      phoneNumbers: phones as string[],
      request: body,
      state: 'Pending',
      states: { Pending: new Date().toISOString() },
      recipients: (phones as string[]).map((phoneNumber) => ({ phoneNumber, state: 'Pending' as State })),
    };
    state.messages.set(id, message);
    return message;
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const method = req.method ?? 'GET';
      const reply = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
        state.requests.push({ method, path: url.pathname, status });
        res.writeHead(
          status,
          body === undefined ? headers : { 'content-type': 'application/json', ...headers },
        );
        res.end(body === undefined ? undefined : JSON.stringify(body));
      };
      try {
        if (!url.pathname.startsWith(`${basePath}/`))
          throw new HttpError(404, `Cannot ${method} ${url.pathname}`);
        const path = url.pathname.slice(basePath.length);
        if (method === 'GET' && path === '/health')
          return reply(200, { status: 'pass', version: '1.0.0', releaseId: 1, checks: {} });
        if (!authorized(req)) throw new HttpError(401, 'Unauthorized');
        const raw = Buffer.concat(chunks);
        const messagePath = /^\/messages?(?:\/([^/]+))?$/.exec(path);
        if (messagePath && method === 'POST' && !messagePath[1]) {
          const message = enqueue(req, url, raw);
          return reply(202, messageState(message), { location: `${basePath}/messages/${message.id}` });
        }
        if (messagePath && method === 'GET' && messagePath[1]) {
          const message = state.messages.get(decodeURIComponent(messagePath[1]));
          if (!message) throw new HttpError(404, 'message not found');
          return reply(200, messageState(message));
        }
        if (path === '/webhooks' && method === 'GET') return reply(200, [...state.webhooks.values()]);
        if (path === '/webhooks' && method === 'POST') {
          const body = jsonBody(req, raw);
          if (typeof body.event !== 'string' || !EVENTS.includes(body.event))
            throw new HttpError(400, 'invalid event type');
          if (typeof body.url !== 'string' || !/^https?:\/\//.test(body.url))
            throw new HttpError(400, 'url must be an http(s) URL');
          const id = typeof body.id === 'string' && body.id ? body.id : randomId();
          const hook = { id, url: body.url, event: body.event, deviceId: state.deviceId };
          state.webhooks.set(id, hook);
          return reply(201, hook);
        }
        const hookPath = /^\/webhooks\/([^/]+)$/.exec(path);
        if (hookPath && method === 'DELETE') {
          state.webhooks.delete(decodeURIComponent(hookPath[1]));
          return reply(204);
        }
        throw new HttpError(404, `Cannot ${method} ${url.pathname}`);
      } catch (error) {
        if (!(error instanceof HttpError)) throw error;
        const retryAfter = (error as HttpError & { retryAfter?: string }).retryAfter;
        reply(error.status, { message: error.message }, retryAfter ? { 'retry-after': retryAfter } : {});
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}${basePath}`;
  return state;
}
