// The Twilio adapter, through the official SDK pointed at a local server keeping Twilio's Messages API,
// and Twilio's signed status callbacks and incoming-message webhooks as they reach Mailroom's endpoint.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ProviderError } from '../../../src/providers/errors.ts';
import { type TwilioCredentials, twilioProvider } from '../../../src/providers/sms/twilio.ts';
import { SmsSendError, SmsWebhookRejected } from '../../../src/providers/sms/types.ts';
import { type SinkRequest, startWebhookSink, type WebhookSink } from '../../support/sms-webhook-sink.ts';
import { startTwilioServer, type TwilioServer } from '../../support/twilio-server.ts';

let server: TwilioServer;
let sink: WebhookSink;
const CALLBACK_PATH = '/v1/sms/webhooks/0190f0c2-bbbb-7000-8000-000000000002';

function twilio(overrides: Partial<TwilioCredentials> = {}, target = server) {
  return twilioProvider(
    { account_sid: target.accountSid, auth_token: target.authToken, from: target.numbers[0], ...overrides },
    { apiUrl: target.apiUrl, statusCallbackUrl: sink.url(CALLBACK_PATH), timeoutMs: 5_000 },
  );
}

let sequence = 0;
function sms(to = '+447700900123', body = 'Your code is 4471') {
  return {
    id: `0190f0c2-0000-7000-8000-${String(++sequence).padStart(12, '0')}`,
    to,
    body,
    encoding: 'gsm7' as const,
  };
}

function webhookOf(request: SinkRequest) {
  return { url: request.url, headers: request.headers, rawBody: request.rawBody };
}

async function rejectsSend(promise: Promise<unknown>, check: (error: SmsSendError) => void) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof SmsSendError, `expected an SmsSendError, got ${error}`);
    check(error);
    assert.doesNotMatch(error.message, new RegExp(server.authToken));
    return true;
  });
}

before(async () => {
  server = await startTwilioServer();
  sink = await startWebhookSink();
});

after(async () => {
  await sink.close();
  await server.close();
});

describe('verify', () => {
  test('fetches the account with the SID and token, at the configured API root', async () => {
    const client = twilio();
    assert.equal(client.capabilities.idempotentSubmit, false, 'Messages API creates take no idempotency key');
    await client.verify();
    assert.deepEqual(server.requests.at(-1), {
      method: 'GET',
      path: `/2010-04-01/Accounts/${server.accountSid}.json`,
      status: 200,
    });
  });

  test('a wrong auth token is an auth failure', async () => {
    await assert.rejects(twilio({ auth_token: 'f'.repeat(32) }).verify(), (error: unknown) => {
      assert.ok(error instanceof ProviderError);
      assert.equal(error.code, 'provider_auth_failed');
      assert.match(error.message, /error 20003/);
      return true;
    });
  });

  test('a suspended account is refused', async () => {
    const suspended = await startTwilioServer({ accountStatus: 'suspended' });
    try {
      await assert.rejects(twilio({}, suspended).verify(), /suspended/);
    } finally {
      await suspended.close();
    }
  });
});

describe('send', () => {
  test('creates the message from the default number with the status callback', async () => {
    const result = await twilio().send(sms());
    const message = server.messages.get(result.providerId)!;
    assert.deepEqual(result, { providerId: message.sid, status: 'sending' });
    assert.match(result.providerId, /^SM[0-9a-f]{32}$/);
    assert.deepEqual(message.params, {
      To: '+447700900123',
      From: server.numbers[0],
      Body: 'Your code is 4471',
      StatusCallback: sink.url(CALLBACK_PATH),
    });
  });

  test('a Messaging Service picks the sender when the account has no default number', async () => {
    const p = twilio({ from: undefined, messaging_service_sid: server.messagingServiceSid });
    const result = await p.send(sms());
    const message = server.messages.get(result.providerId)!;
    assert.equal(message.params.MessagingServiceSid, server.messagingServiceSid);
    assert.equal(message.params.From, undefined);
    // The message's own sender wins.
    const branded = await p.send({ ...sms(), from: 'Mailroom' });
    assert.equal(server.messages.get(branded.providerId)!.params.From, 'Mailroom');
  });

  test('the price is reported when Twilio reports one', async () => {
    const priced = await startTwilioServer({ price: '-0.00790' });
    try {
      const result = await twilio({}, priced).send(sms());
      assert.deepEqual(result.price, { amount: '0.00790', currency: 'USD' });
    } finally {
      await priced.close();
    }
  });

  test("Twilio's refusals carry its error code and are not retryable", async () => {
    await rejectsSend(twilio().send(sms('07700900123')), (error) => {
      assert.deepEqual(error.options, { retryable: false, code: '21211' });
      assert.match(error.message, /Invalid 'To' Phone Number/);
    });
    server.unsubscribed.add('+447700900999');
    await rejectsSend(twilio().send(sms('+447700900999')), (error) => {
      assert.equal(error.options.code, '21610');
    });
    await rejectsSend(twilio({ from: '+15550001111' }).send(sms()), (error) => {
      assert.equal(error.options.code, '21606');
    });
  });

  test('429 and 503 are retryable, with the Retry-After', async () => {
    const p = twilio();
    server.failNext(1, 429, '3');
    await rejectsSend(p.send(sms()), (error) => {
      assert.deepEqual(error.options, { retryable: true, retryAfterMs: 3000, code: '20429' });
    });
    server.failNext(1, 503, new Date(Date.now() + 10_000).toUTCString());
    await rejectsSend(p.send(sms()), (error) => {
      assert.equal(error.options.retryable, true);
      assert.equal(error.options.code, '20503');
      assert.ok(error.options.retryAfterMs! > 5_000 && error.options.retryAfterMs! <= 10_000);
    });
    assert.ok((await p.send(sms())).providerId);
  });

  test('a wrong auth token is not retryable; an unreachable API is', async () => {
    await rejectsSend(twilio({ auth_token: 'e'.repeat(32) }).send(sms()), (error) => {
      assert.deepEqual(error.options, { retryable: false, code: '20003' });
    });
    const gone = await startTwilioServer();
    await gone.close();
    await rejectsSend(twilio({}, gone).send(sms()), (error) => {
      assert.equal(error.options.retryable, true);
      assert.match(error.message, /could not be reached/);
    });
  });
});

describe('webhooks', () => {
  test('status callbacks become receipts; interim statuses report nothing', async () => {
    const p = twilio();
    const ok = await p.send(sms());
    const bad = await p.send(sms());
    const before = sink.requests.length;
    await server.statusCallback(ok.providerId, 'sending');
    await server.statusCallback(ok.providerId, 'sent');
    await server.statusCallback(ok.providerId, 'delivered');
    await server.statusCallback(bad.providerId, 'undelivered', { errorCode: 30003 });
    const calls = (await sink.waitFor(before + 4)).slice(before);
    const events = calls.flatMap((call) => p.parseWebhook!(webhookOf(call)));
    assert.deepEqual(
      events.map((e) => e.type === 'receipt' && [e.providerId, e.status, e.errorCode]),
      [
        [ok.providerId, 'sent', undefined],
        [ok.providerId, 'delivered', undefined],
        [bad.providerId, 'undelivered', '30003'],
      ],
    );
    assert.ok(calls.every((call) => call.url === sink.url(CALLBACK_PATH)));
  });

  test('an incoming message becomes an inbound event', async () => {
    const url = sink.url(`${CALLBACK_PATH}?source=number`);
    const before = sink.requests.length;
    await server.incoming(url, { from: '+447700900555', to: server.numbers[0], body: 'STOP' });
    const [call] = (await sink.waitFor(before + 1)).slice(before);
    const [event] = twilio().parseWebhook!(webhookOf(call));
    assert.equal(event.type, 'inbound');
    assert.deepEqual(event.type === 'inbound' && [event.from, event.to, event.body], [
      '+447700900555',
      server.numbers[0],
      'STOP',
    ]);
    assert.match(event.providerId!, /^SM/);
  });

  test('forged, altered, re-addressed or unsigned calls are refused', async () => {
    const p = twilio();
    const sent = await p.send(sms());
    const before = sink.requests.length;
    await server.statusCallback(sent.providerId, 'delivered', { signWith: 'a'.repeat(32) });
    await server.statusCallback(sent.providerId, 'delivered');
    const [forged, genuine] = (await sink.waitFor(before + 2)).slice(before).map(webhookOf);
    assert.throws(() => p.parseWebhook!(forged), SmsWebhookRejected);
    assert.equal(p.parseWebhook!(genuine).length, 1);
    const altered = {
      ...genuine,
      rawBody: Buffer.from(genuine.rawBody.toString().replace('delivered', 'failed')),
    };
    assert.throws(() => p.parseWebhook!(altered), /signature does not match/);
    assert.throws(() => p.parseWebhook!({ ...genuine, url: `${genuine.url}x` }), /signature does not match/);
    const unsigned = { ...genuine, headers: { 'content-type': 'application/x-www-form-urlencoded' } };
    assert.throws(() => p.parseWebhook!(unsigned), /X-Twilio-Signature is missing/);
    const json = { ...genuine, headers: { ...genuine.headers, 'content-type': 'application/json' } };
    assert.throws(() => p.parseWebhook!(json), /not a form/);
  });

  test("another account's calls are refused, even signed with this account's token", async () => {
    const other = await startTwilioServer();
    try {
      const before = sink.requests.length;
      const message = { from: '+447700900555', to: other.numbers[0], body: 'hi' };
      await other.incoming(sink.url(CALLBACK_PATH), message);
      await other.incoming(sink.url(CALLBACK_PATH), message, { signWith: server.authToken });
      const [theirs, resigned] = (await sink.waitFor(before + 2)).slice(before).map(webhookOf);
      assert.throws(() => twilio().parseWebhook!(theirs), /signature does not match/);
      assert.throws(() => twilio().parseWebhook!(resigned), /AccountSid is not this account/);
    } finally {
      await other.close();
    }
  });
});
