// A local stand-in for Twilio's REST API (2010-04-01) and its webhooks: basic auth with the account
// SID and auth token, the Messages resource with Twilio's validation and error codes (21211, 21602,
// 21603, 21604, 21606, 21609, 21617, 20003, 20404, 20429), JSON answers shaped as Twilio's, status
// callbacks and incoming-message webhooks posted as forms and signed as Twilio signs them
// (X-Twilio-Signature: base64 HMAC-SHA1 of the URL followed by each parameter's name and value, sorted
// by name, keyed with the auth token). It can answer 429 or 503 with Retry-After on demand.
import { createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const E164 = /^\+[1-9]\d{6,14}$/;
const ALPHANUMERIC_SENDER = /^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$/;

export interface TwilioMessage {
  sid: string;
  to: string;
  from: string | null;
  messagingServiceSid: string | null;
  body: string;
  statusCallback: string | null;
  status: string;
  price: string | null;
  errorCode: number | null;
  /** The form as received. */
  params: Record<string, string>;
}

export interface CallbackDelivery {
  url: string;
  params: Record<string, string>;
  status: number | null;
}

export interface TwilioServerOptions {
  /** Numbers the account owns (senders it accepts besides alphanumeric ids). */
  numbers?: string[];
  /** The price each message reports from creation on (Twilio's sign: "-0.00790"); null by default. */
  price?: string | null;
  accountStatus?: 'active' | 'suspended' | 'closed';
}

export interface TwilioServer {
  /** The API root the SDK is pointed at. */
  apiUrl: string;
  accountSid: string;
  authToken: string;
  messagingServiceSid: string;
  numbers: string[];
  messages: Map<string, TwilioMessage>;
  requests: { method: string; path: string; status: number }[];
  deliveries: CallbackDelivery[];
  /** Recipients that texted STOP: sending to them is error 21610. */
  unsubscribed: Set<string>;
  /** The next `count` API calls are answered with `status` (429 or 503), with Retry-After when given. */
  failNext(count: number, status: 429 | 503, retryAfter?: string): void;
  /** Moves a message to `status` and posts its status callback (signed with `signWith` when given). */
  statusCallback(
    sid: string,
    status: string,
    options?: { errorCode?: number; signWith?: string },
  ): Promise<CallbackDelivery>;
  /** A message to one of the account's numbers, posted to `url` as the incoming-message webhook. */
  incoming(
    url: string,
    message: { from: string; to: string; body: string },
    options?: { signWith?: string },
  ): Promise<CallbackDelivery>;
  /** Twilio's signature of a webhook call. */
  sign(url: string, params: Record<string, string>, authToken?: string): string;
  close(): Promise<void>;
}

class TwilioFault extends Error {
  readonly status: number;
  readonly code: number;
  readonly retryAfter: string | undefined;

  constructor(status: number, code: number, message: string, retryAfter?: string) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

function sid(prefix: string): string {
  return prefix + randomBytes(16).toString('hex');
}

/** RFC 2822 dates, as Twilio writes date_created. */
function rfc2822(date: Date): string {
  return date.toUTCString().replace('GMT', '+0000');
}

export async function startTwilioServer(options: TwilioServerOptions = {}): Promise<TwilioServer> {
  let failures = { count: 0, status: 503 as 429 | 503, retryAfter: undefined as string | undefined };
  const created = new Date();

  const sign = (url: string, params: Record<string, string>, authToken = state.authToken) => {
    const data = Object.keys(params)
      .sort()
      .reduce((acc, key) => acc + key + params[key], url);
    return createHmac('sha1', authToken).update(Buffer.from(data, 'utf-8')).digest('base64');
  };

  const post = async (
    url: string,
    params: Record<string, string>,
    signWith?: string,
  ): Promise<CallbackDelivery> => {
    let status: number | null = null;
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-twilio-signature': sign(url, params, signWith),
          'i-twilio-idempotency-token': randomBytes(16).toString('hex'),
          'user-agent': 'TwilioProxy/1.1',
        },
        body: new URLSearchParams(params).toString(),
      });
      status = response.status;
      await response.arrayBuffer();
    } catch {
      status = null;
    }
    const delivery = { url, params, status };
    state.deliveries.push(delivery);
    return delivery;
  };

  const state: TwilioServer = {
    apiUrl: '',
    accountSid: sid('AC'),
    authToken: randomBytes(16).toString('hex'),
    messagingServiceSid: sid('MG'),
    numbers: options.numbers ?? ['+15005550006'],
    messages: new Map(),
    requests: [],
    deliveries: [],
    unsubscribed: new Set(),
    failNext(count, status, retryAfter) {
      failures = { count, status, retryAfter };
    },
    statusCallback(messageSid, status, callback = {}) {
      const message = state.messages.get(messageSid);
      if (!message) throw new Error(`no message ${messageSid}`);
      if (!message.statusCallback) throw new Error(`message ${messageSid} has no StatusCallback`);
      message.status = status;
      if (callback.errorCode) message.errorCode = callback.errorCode;
      const params: Record<string, string> = {
        AccountSid: state.accountSid,
        ApiVersion: '2010-04-01',
        MessageSid: message.sid,
        MessageStatus: status,
        SmsSid: message.sid,
        SmsStatus: status,
        To: message.to,
        From: message.from ?? state.numbers[0],
      };
      if (message.messagingServiceSid) params.MessagingServiceSid = message.messagingServiceSid;
      if (callback.errorCode) params.ErrorCode = String(callback.errorCode);
      if (status === 'delivered') params.RawDlrDoneDate = '2501011200';
      return post(message.statusCallback, params, callback.signWith);
    },
    incoming(url, message, incoming = {}) {
      const messageSid = sid('SM');
      const params: Record<string, string> = {
        ToCountry: 'US',
        ToState: 'CA',
        SmsMessageSid: messageSid,
        NumMedia: '0',
        ToCity: '',
        FromZip: '',
        SmsSid: messageSid,
        FromState: '',
        SmsStatus: 'received',
        FromCity: '',
        Body: message.body,
        FromCountry: 'GB',
        To: message.to,
        ToZip: '',
        NumSegments: '1',
        MessageSid: messageSid,
        AccountSid: state.accountSid,
        From: message.from,
        ApiVersion: '2010-04-01',
      };
      return post(url, params, incoming.signWith);
    },
    sign,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };

  function authenticate(req: http.IncomingMessage, accountSid: string) {
    const match = /^Basic ([A-Za-z0-9+/=]+)$/.exec(req.headers.authorization ?? '');
    const [user, token] = match ? Buffer.from(match[1], 'base64').toString('utf8').split(':') : [];
    if (user !== state.accountSid || token !== state.authToken)
      throw new TwilioFault(401, 20003, 'Authenticate');
    // Credentials of one account cannot reach another's resources.
    if (accountSid !== state.accountSid)
      throw new TwilioFault(
        404,
        20404,
        `The requested resource /2010-04-01/Accounts/${accountSid}.json was not found`,
      );
  }

  function resource(m: TwilioMessage) {
    const date = rfc2822(created);
    return {
      account_sid: state.accountSid,
      api_version: '2010-04-01',
      body: m.body,
      date_created: date,
      date_sent: null,
      date_updated: date,
      direction: 'outbound-api',
      error_code: m.errorCode,
      error_message: null,
      from: m.from,
      messaging_service_sid: m.messagingServiceSid,
      num_media: '0',
      num_segments: String(Math.max(1, Math.ceil(m.body.length / 153))),
      price: m.price,
      price_unit: 'USD',
      sid: m.sid,
      status: m.status,
      subresource_uris: { media: `/2010-04-01/Accounts/${state.accountSid}/Messages/${m.sid}/Media.json` },
      to: m.to,
      uri: `/2010-04-01/Accounts/${state.accountSid}/Messages/${m.sid}.json`,
    };
  }

  function createMessage(req: http.IncomingMessage, raw: Buffer): TwilioMessage {
    if (!String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded'))
      throw new TwilioFault(400, 20001, 'Content-Type must be application/x-www-form-urlencoded');
    const params: Record<string, string> = {};
    for (const [key, value] of new URLSearchParams(raw.toString('utf8'))) params[key] = value;
    const to = params.To;
    if (!to) throw new TwilioFault(400, 21604, "A 'To' phone number is required.");
    if (!E164.test(to)) throw new TwilioFault(400, 21211, `Invalid 'To' Phone Number: ${to}`);
    if (!params.Body) throw new TwilioFault(400, 21602, 'Message body is required.');
    if (params.Body.length > 1600)
      throw new TwilioFault(400, 21617, 'The concatenated message body exceeds the 1600 character limit.');
    const from = params.From ?? null;
    const service = params.MessagingServiceSid ?? null;
    if (!from && !service) throw new TwilioFault(400, 21603, "A 'From' phone number is required.");
    if (from && !state.numbers.includes(from) && !ALPHANUMERIC_SENDER.test(from))
      throw new TwilioFault(
        400,
        21606,
        `The From phone number ${from} is not a valid, SMS-capable inbound phone number or short code for your account.`,
      );
    if (service && service !== state.messagingServiceSid)
      throw new TwilioFault(400, 21701, `The Messaging Service Sid ${service} is invalid.`);
    if (params.StatusCallback !== undefined && !/^https?:\/\/\S+$/.test(params.StatusCallback))
      throw new TwilioFault(400, 21609, 'Invalid StatusCallback url');
    if (state.unsubscribed.has(to))
      throw new TwilioFault(400, 21610, 'Attempt to send to unsubscribed recipient');
    const message: TwilioMessage = {
      sid: sid('SM'),
      to,
      from,
      messagingServiceSid: service,
      body: params.Body,
      statusCallback: params.StatusCallback ?? null,
      // A Messaging Service first accepts, then picks a sender and queues.
      status: service && !from ? 'accepted' : 'queued',
      price: options.price ?? null,
      errorCode: null,
      params,
    };
    state.messages.set(message.sid, message);
    return message;
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const method = req.method ?? 'GET';
      const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        state.requests.push({ method, path: url.pathname, status });
        res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
      };
      try {
        const account =
          /^\/2010-04-01\/Accounts\/(AC[0-9a-f]{32})(\.json|\/Messages\.json|\/Messages\/(SM[0-9a-f]{32})\.json)$/.exec(
            url.pathname,
          );
        if (!account)
          throw new TwilioFault(404, 20404, `The requested resource ${url.pathname} was not found`);
        authenticate(req, account[1]);
        if (failures.count > 0) {
          failures.count--;
          const { status, retryAfter } = failures;
          throw new TwilioFault(
            status,
            status === 429 ? 20429 : 20503,
            status === 429 ? 'Too Many Requests' : 'Service Unavailable',
            retryAfter,
          );
        }
        if (account[2] === '.json' && method === 'GET')
          return reply(200, {
            sid: state.accountSid,
            friendly_name: 'Mailroom test account',
            status: options.accountStatus ?? 'active',
            type: 'Full',
            date_created: rfc2822(created),
            date_updated: rfc2822(created),
            owner_account_sid: state.accountSid,
            uri: `/2010-04-01/Accounts/${state.accountSid}.json`,
          });
        if (account[2] === '/Messages.json' && method === 'POST')
          return reply(201, resource(createMessage(req, Buffer.concat(chunks))));
        if (account[3] && method === 'GET') {
          const message = state.messages.get(account[3]);
          if (!message)
            throw new TwilioFault(404, 20404, `The requested resource ${url.pathname} was not found`);
          return reply(200, resource(message));
        }
        throw new TwilioFault(405, 20004, 'Method not allowed');
      } catch (error) {
        if (!(error instanceof TwilioFault)) throw error;
        reply(
          error.status,
          {
            code: error.code,
            message: error.message,
            more_info: `https://www.twilio.com/docs/errors/${error.code}`,
            status: error.status,
          },
          error.retryAfter ? { 'retry-after': error.retryAfter } : {},
        );
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}
