// The SMS Gateway for Android adapter against a local server keeping the gateway's 3rd-party API, in
// cloud mode (API root from the configuration) and local-server mode (the account's base_url), and the
// gateway's signed webhooks as they reach Mailroom's endpoint.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import GatewayModule, { WebHookEventType } from 'android-sms-gateway';
import { ProviderError } from '../../../src/providers/errors.ts';
import {
  type AndroidSmsGatewayCredentials,
  androidSmsGatewayProvider,
} from '../../../src/providers/sms/android-sms-gateway.ts';
import { type SmsProviderEvent, SmsSendError, SmsWebhookRejected } from '../../../src/providers/sms/types.ts';
import { type SmsGatewayServer, startSmsGatewayServer } from '../../support/sms-gateway-server.ts';
import { type SinkRequest, startWebhookSink, type WebhookSink } from '../../support/sms-webhook-sink.ts';

// The package is ESM without saying so; see the adapter.
const GatewayClient = GatewayModule as unknown as typeof GatewayModule.default;

let server: SmsGatewayServer;
let sink: WebhookSink;

function gateway(overrides: Partial<AndroidSmsGatewayCredentials> = {}, cloudUrl = server.baseUrl) {
  return androidSmsGatewayProvider(
    {
      username: server.username,
      password: server.password,
      webhook_signing_key: server.signingKey,
      ...overrides,
    },
    { cloudUrl, timeoutMs: 5_000 },
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

/** The webhook calls that `action` causes, parsed by the adapter. */
async function delivered(action: () => Promise<unknown>, provider = gateway()) {
  const before = sink.requests.length;
  await action();
  const calls = await sink.waitFor(before + 1);
  return calls.slice(before).flatMap((request) => provider.parseWebhook!(webhookOf(request)));
}

async function rejectsSend(promise: Promise<unknown>, check: (error: SmsSendError) => void) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof SmsSendError, `expected an SmsSendError, got ${error}`);
    check(error);
    return true;
  });
}

before(async () => {
  server = await startSmsGatewayServer();
  sink = await startWebhookSink();
  // Registered the way an operator does it, with the official client.
  const client = new GatewayClient(
    server.username,
    server.password,
    {
      get: async (url, headers) => (await fetch(url, { headers })).json() as Promise<any>,
      post: async (url, body, headers) =>
        (await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) })).json() as Promise<any>,
      put: async () => undefined as never,
      patch: async () => undefined as never,
      delete: async (url, headers) => (await fetch(url, { method: 'DELETE', headers })).text() as never,
    },
    server.baseUrl,
  );
  for (const event of [
    WebHookEventType.SmsReceived,
    WebHookEventType.SmsSent,
    WebHookEventType.SmsDelivered,
    WebHookEventType.SmsFailed,
  ])
    await client.registerWebhook({
      url: sink.url('/v1/sms/webhooks/0190f0c2-aaaa-7000-8000-000000000001'),
      event,
    });
  assert.equal(server.webhooks.size, 4);
});

after(async () => {
  await sink.close();
  await server.close();
});

describe('verify', () => {
  test('accepts the username and password', async () => {
    await gateway().verify();
    assert.equal(server.requests.at(-1)!.path, '/3rdparty/v1/webhooks');
  });

  test('a wrong password is an auth failure', async () => {
    await assert.rejects(gateway({ password: 'wrong' }).verify(), (error: unknown) => {
      assert.ok(error instanceof ProviderError);
      assert.equal(error.code, 'provider_auth_failed');
      assert.doesNotMatch(error.message, /wrong/);
      return true;
    });
  });

  test('an address nobody answers is an unavailable provider', async () => {
    const gone = await startSmsGatewayServer();
    await gone.close();
    await assert.rejects(gateway({ base_url: gone.baseUrl }).verify(), (error: unknown) => {
      assert.ok(error instanceof ProviderError);
      assert.equal(error.code, 'provider_unavailable');
      return true;
    });
  });
});

describe('send', () => {
  test('sends with our id as the gateway id and asks for a delivery report', async () => {
    const message = sms();
    const result = await gateway().send(message);
    assert.deepEqual(result, { providerId: message.id, status: 'sending' });
    const stored = server.messages.get(message.id)!;
    assert.equal(stored.text, 'Your code is 4471');
    assert.deepEqual(stored.phoneNumbers, ['+447700900123']);
    assert.equal(stored.request.withDeliveryReport, true);
  });

  test('sending the same id again reads the state instead of sending twice', async () => {
    const message = sms();
    const p = gateway();
    await p.send(message);
    await server.advance(message.id, 'Sent');
    const count = server.messages.size;
    assert.deepEqual(await p.send(message), { providerId: message.id, status: 'sent' });
    assert.equal(server.messages.size, count);
    assert.equal(server.requests.filter((r) => r.status === 409).length, 1);
    // Which is why the dispatcher may resend a submit whose outcome it did not learn.
    assert.equal(p.capabilities.idempotentSubmit, true);
  });

  test('a number the gateway refuses is not retryable', async () => {
    await rejectsSend(gateway().send(sms('07700900123')), (error) => {
      assert.equal(error.options.retryable, false);
      assert.equal(error.options.code, '400');
      assert.match(error.message, /E\.164/);
    });
  });

  test('429 and 503 are retryable, with the Retry-After', async () => {
    const p = gateway();
    server.failNext(1, 429, '7');
    await rejectsSend(p.send(sms()), (error) => {
      assert.deepEqual(error.options, { retryable: true, retryAfterMs: 7000, code: '429' });
    });
    server.failNext(1, 503);
    await rejectsSend(p.send(sms()), (error) => {
      assert.equal(error.options.retryable, true);
      assert.equal(error.options.code, '503');
      assert.match(error.message, /device is online/);
    });
  });

  test('refused credentials are not retryable', async () => {
    await rejectsSend(gateway({ password: 'nope' }).send(sms()), (error) => {
      assert.deepEqual(error.options, { retryable: false, code: '401' });
    });
  });

  test("local-server mode: the account's base_url is the phone's own server", async () => {
    const phone = await startSmsGatewayServer({ basePath: '', username: 'sms', password: 'local-pass' });
    try {
      const p = androidSmsGatewayProvider(
        { base_url: phone.baseUrl, username: 'sms', password: 'local-pass' },
        { cloudUrl: server.baseUrl },
      );
      await p.verify();
      const message = sms();
      assert.equal((await p.send(message)).providerId, message.id);
      assert.ok(phone.messages.has(message.id));
      assert.ok(!server.messages.has(message.id));
    } finally {
      await phone.close();
    }
  });
});

describe('webhooks', () => {
  test('sms:sent, sms:delivered and sms:failed become receipts', async () => {
    const p = gateway();
    const ok = sms();
    const bad = sms();
    await p.send(ok);
    await p.send(bad);
    const events = [
      ...(await delivered(() => server.advance(ok.id, 'Sent'))),
      ...(await delivered(() => server.advance(ok.id, 'Delivered'))),
      ...(await delivered(() => server.advance(bad.id, 'Failed', 'RESULT_ERROR_GENERIC_FAILURE'))),
    ];
    assert.deepEqual(
      events.map((e) => e.type === 'receipt' && [e.providerId, e.status, e.errorCode]),
      [
        [ok.id, 'sent', undefined],
        [ok.id, 'delivered', undefined],
        [bad.id, 'failed', 'RESULT_ERROR_GENERIC_FAILURE'],
      ],
    );
    // Device-local timestamps with their offset are read as the instant they name.
    for (const e of events) assert.ok(Math.abs(e.at.getTime() - Date.now()) < 60_000);
  });

  test('sms:received becomes an inbound message', async () => {
    const [event] = (await delivered(() =>
      server.receive({ from: '+447700900555', text: 'STOP' }),
    )) as Extract<SmsProviderEvent, { type: 'inbound' }>[];
    assert.equal(event.type, 'inbound');
    assert.equal(event.from, '+447700900555');
    assert.equal(event.body, 'STOP');
    assert.equal(event.to, '');
    assert.ok(event.providerId);
  });

  test('events Mailroom does not record report nothing', async () => {
    server.webhooks.set('ping', {
      id: 'ping',
      url: sink.url(),
      event: 'system:ping',
      deviceId: server.deviceId,
    });
    try {
      assert.deepEqual(await delivered(() => server.post('system:ping', { health: { status: 'pass' } })), []);
    } finally {
      server.webhooks.delete('ping');
    }
  });

  test('a forged signature, a replayed timestamp, a changed body or no signature are refused', async () => {
    const p = gateway();
    const payload = {
      messageId: 'x',
      message: 'hi',
      phoneNumber: '+447700900555',
      receivedAt: new Date().toISOString(),
    };
    const before = sink.requests.length;
    await server.post('sms:received', payload, { key: 'not-the-signing-key' });
    await server.post('sms:received', payload, { timestamp: Math.floor(Date.now() / 1000) - 600 });
    await server.post('sms:received', payload);
    const [forged, replayed, genuine] = (await sink.waitFor(before + 3)).slice(before).map(webhookOf);
    assert.throws(() => p.parseWebhook!(forged), SmsWebhookRejected);
    assert.throws(() => p.parseWebhook!(replayed), /X-Timestamp is 6\d\d s from now/);
    assert.equal(p.parseWebhook!(genuine).length, 1);
    const changed = { ...genuine, rawBody: Buffer.from(genuine.rawBody.toString().replace('hi', 'ho')) };
    assert.throws(() => p.parseWebhook!(changed), /signature does not match/);
    const unsigned = { ...genuine, headers: { 'content-type': 'application/json' } };
    assert.throws(() => p.parseWebhook!(unsigned), /X-Signature or X-Timestamp is missing/);
    // Without the signing key nothing can be trusted.
    assert.throws(
      () => gateway({ webhook_signing_key: undefined }).parseWebhook!(genuine),
      /webhook_signing_key/,
    );
  });

  test('a signed call with a malformed body is refused', async () => {
    const p = gateway();
    const before = sink.requests.length;
    await server.post('sms:sent', { phoneNumber: '+447700900555', sentAt: new Date().toISOString() });
    await server.post('sms:delivered', { messageId: 'm1', deliveredAt: 'yesterday' });
    const [noId, badDate] = (await sink.waitFor(before + 2)).slice(before).map(webhookOf);
    assert.throws(() => p.parseWebhook!(noId), /payload\.messageId is missing/);
    assert.throws(() => p.parseWebhook!(badDate), /payload\.deliveredAt is not a date/);
  });
});
