// Webhooks through the public surface: endpoints over HTTP, deliveries to a real receiver on loopback
// that verifies signatures with the `standardwebhooks` package, names resolved by a real DNS server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engine, signUpWithOrg, startTestApp, type TestApp } from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { until } from '../../support/until.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../../support/webhook-receiver.ts';

const RECEIVER_HOST = 'receiver.test';

interface Org {
  token: string;
  orgId: string;
}

let counter = 0;
async function freshOrg(t: TestApp): Promise<Org> {
  counter++;
  return signUpWithOrg(t, `hooks${counter}@example.com`, `Hooks ${counter}`);
}

/** organization.updated: the simplest event a test can cause. */
async function renameOrg(t: TestApp, org: Org, name: string) {
  const res = await t.call('PATCH', `/v1/organizations/${org.orgId}`, { token: org.token, body: { name } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
}

async function addEndpoint(
  t: TestApp,
  org: Org,
  receiver: WebhookReceiver,
  body: Record<string, unknown> = {},
) {
  const res = await t.call('POST', '/v1/webhooks', {
    token: org.token,
    body: { url: receiver.url(RECEIVER_HOST), ...body },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.match(res.body.secret, /^whsec_/);
  receiver.secrets = [res.body.secret];
  return res.body as { id: string; secret: string };
}

async function deliveriesOf(t: TestApp, org: Org, endpointId: string) {
  const res = await t.call('GET', `/v1/webhooks/${endpointId}/deliveries?page_size=200`, {
    token: org.token,
  });
  assert.equal(res.status, 200);
  return res.body.items as any[];
}

async function deliveryDetail(t: TestApp, org: Org, id: string) {
  const res = await t.call('GET', `/v1/webhooks/deliveries/${id}`, { token: org.token });
  assert.equal(res.status, 200);
  return res.body;
}

describe(`webhooks on ${engine}`, () => {
  let dns: TestDnsServer;
  let t: TestApp;
  const receivers: WebhookReceiver[] = [];
  const receiver = async () => {
    const r = await startWebhookReceiver();
    receivers.push(r);
    return r;
  };

  before(async () => {
    dns = await startDnsServer({
      [RECEIVER_HOST]: { A: ['127.0.0.1'] },
      'loopback.test': { A: ['127.0.0.1'] },
      'private.test': { A: ['10.1.2.3'] },
      'v6loopback.test': { AAAA: ['::1'] },
      'mixed.test': { A: ['93.184.216.34', '192.168.1.10'] },
    });
    t = await startTestApp({
      workers: true,
      env: {
        MAILROOM_DNS_SERVERS: dns.address,
        MAILROOM_WEBHOOK_ALLOW_HOSTS: RECEIVER_HOST,
        MAILROOM_WEBHOOK_RETRY_SCHEDULE: '300ms,600ms,1200ms',
        MAILROOM_WEBHOOK_TIMEOUT: '500ms',
      },
    });
  });
  after(async () => {
    for (const r of receivers) await r.close();
    await t?.close();
    await dns?.close();
  });

  test('delivers signed events that standardwebhooks verifies; the event is listed; attempts are logged', async () => {
    const org = await freshOrg(t);
    const r = await receiver();
    const endpoint = await addEndpoint(t, org, r, { description: 'main' });
    await renameOrg(t, org, 'Renamed once');

    const [message] = await r.waitFor(1);
    assert.equal(message.verifiedWith, endpoint.secret, 'signature verifies with the endpoint secret');
    assert.equal(message.json.type, 'organization.updated');
    assert.equal(message.json.organization_id, org.orgId);
    assert.deepEqual(message.json.data, {
      organization_id: org.orgId,
      name: 'Renamed once',
      slug: message.json.data.slug,
    });
    assert.equal(message.headers['content-type'], 'application/json');

    // webhook-id is the event id, as listed by the events API.
    const events = await t.call('GET', '/v1/events?types=organization.updated', { token: org.token });
    assert.equal(events.status, 200);
    assert.equal(events.body.items[0].id, message.id);
    const one = await t.call('GET', `/v1/events/${message.id}`, { token: org.token });
    assert.equal(one.body.type, 'organization.updated');

    const [delivery] = await until(
      () => deliveriesOf(t, org, endpoint.id),
      (d) => d[0]?.status === 'succeeded',
    );
    assert.equal(delivery.event_id, message.id);
    assert.equal(delivery.attempts, 1);
    const detail = await deliveryDetail(t, org, delivery.id);
    assert.equal(detail.attempts_log.length, 1);
    assert.equal(detail.attempts_log[0].status_code, 204);
    assert.ok(detail.attempts_log[0].duration_ms >= 0);
  });

  test('the secret is readable by admins and the event filter limits what an endpoint gets', async () => {
    const org = await freshOrg(t);
    const r = await receiver();
    const endpoint = await addEndpoint(t, org, r, { event_types: ['api_key.*'] });
    const secret = await t.call('GET', `/v1/webhooks/${endpoint.id}/secret`, { token: org.token });
    assert.equal(secret.body.secret, endpoint.secret);

    await renameOrg(t, org, 'Not for this endpoint');
    const key = await t.call('POST', `/v1/organizations/${org.orgId}/api-keys`, {
      token: org.token,
      body: { name: 'k', scopes: ['events:read'] },
    });
    assert.equal(key.status, 201);
    const [message] = await r.waitFor(1);
    assert.equal(message.json.type, 'api_key.created');
    assert.equal(message.json.data.api_key_id, key.body.id);
    assert.ok(!message.body.includes(key.body.key), 'the key itself is never in an event');

    const bad = await t.call('POST', '/v1/webhooks', {
      token: org.token,
      body: { url: r.url(RECEIVER_HOST), event_types: ['no.such_type'] },
    });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /unknown event type/);
  });

  test('messages to a healthy endpoint arrive in the order the events happened', async () => {
    const org = await freshOrg(t);
    const r = await receiver();
    await addEndpoint(t, org, r, { event_types: ['organization.updated'] });
    for (let i = 0; i < 25; i++) await renameOrg(t, org, `Name ${i}`);
    const messages = await r.waitFor(25);
    assert.deepEqual(
      messages.map((m) => m.json.data.name),
      Array.from({ length: 25 }, (_, i) => `Name ${i}`),
    );
    assert.ok(messages.every((m) => m.verifiedWith));
  });

  test('500 is retried with the backoff schedule until it succeeds', async () => {
    const org = await freshOrg(t);
    const r = await receiver();
    r.reply = (_m, i) => (i < 2 ? { status: 500, body: 'database down' } : { status: 200 });
    const endpoint = await addEndpoint(t, org, r);
    await renameOrg(t, org, 'Retry me');
    const messages = await r.waitFor(3);
    assert.equal(new Set(messages.map((m) => m.id)).size, 1, 'every retry carries the same webhook-id');
    // Schedule 300 ms, then 600 ms (lower bounds: a retry never comes early).
    assert.ok(
      messages[1].at - messages[0].at >= 290,
      `first retry after ${messages[1].at - messages[0].at} ms`,
    );
    assert.ok(
      messages[2].at - messages[1].at >= 590,
      `second retry after ${messages[2].at - messages[1].at} ms`,
    );

    const [delivery] = await until(
      () => deliveriesOf(t, org, endpoint.id),
      (d) => d[0]?.status === 'succeeded',
    );
    assert.equal(delivery.attempts, 3);
    const detail = await deliveryDetail(t, org, delivery.id);
    assert.deepEqual(
      detail.attempts_log.map((a: any) => a.status_code),
      [500, 500, 200],
    );
    assert.equal(detail.attempts_log[0].response_body, 'database down');
    const ep = await t.call('GET', `/v1/webhooks/${endpoint.id}`, { token: org.token });
    assert.equal(ep.body.failing_since, null, 'a success clears the failure clock');
  });

  test('429 honours Retry-After; a timeout is retried; 400 is not retried', async () => {
    const org = await freshOrg(t);
    const r = await receiver();
    const tries = new Map<string, number>();
    r.reply = (m) => {
      const name = m.json.data.name as string;
      const n = (tries.get(name) ?? 0) + 1;
      tries.set(name, n);
      if (name === 'Throttled')
        return n === 1 ? { status: 429, headers: { 'retry-after': '2' } } : { status: 200 };
      if (name === 'Slow') return n === 1 ? { status: 200, delayMs: 1500 } : { status: 200 };
      return { status: 400, body: 'bad payload' };
    };
    const endpoint = await addEndpoint(t, org, r, { event_types: ['organization.updated'] });

    await renameOrg(t, org, 'Throttled');
    const throttled = await r.waitFor(2);
    assert.ok(
      throttled[1].at - throttled[0].at >= 1990,
      `Retry-After 2 s, came after ${throttled[1].at - throttled[0].at} ms`,
    );

    await renameOrg(t, org, 'Slow');
    const deliveries = await until(
      () => deliveriesOf(t, org, endpoint.id),
      (d) => d.length === 2 && d[0].status === 'succeeded',
    );
    const slow = await deliveryDetail(t, org, deliveries[0].id);
    assert.equal(slow.attempts_log.length, 2);
    assert.match(slow.attempts_log[0].error, /timed out/);
    assert.equal(slow.attempts_log[0].status_code, null);
    assert.equal(slow.attempts_log[1].status_code, 200);

    await renameOrg(t, org, 'Refused');
    const refused = await until(
      () => deliveriesOf(t, org, endpoint.id),
      (d) => d.length === 3 && d[0].status !== 'pending',
    );
    assert.equal(refused[0].status, 'failed');
    assert.equal(refused[0].attempts, 1);
    assert.equal(refused[0].next_attempt_at, null, 'no retry is scheduled after a 400');
    assert.equal(refused[0].last_status_code, 400);
  });

  test('replay sends a finished delivery again with the same webhook-id', async () => {
    const org = await freshOrg(t);
    const r = await receiver();
    r.reply = (_m, i) => (i === 0 ? { status: 410 } : { status: 200 });
    const endpoint = await addEndpoint(t, org, r);
    await renameOrg(t, org, 'Replay me');
    const [failed] = await until(
      () => deliveriesOf(t, org, endpoint.id),
      (d) => d[0]?.status === 'failed',
    );
    const replay = await t.call('POST', `/v1/webhooks/deliveries/${failed.id}/replay`, { token: org.token });
    assert.equal(replay.status, 202, JSON.stringify(replay.body));
    assert.equal(replay.body.replay_of, failed.id);
    const messages = await r.waitFor(2);
    assert.equal(messages[1].id, messages[0].id);
    assert.ok(messages[1].verifiedWith);
    await until(
      () => deliveryDetail(t, org, replay.body.id),
      (d) => d.status === 'succeeded',
    );
    const again = await t.call('POST', `/v1/webhooks/deliveries/${failed.id}/replay`, { token: org.token });
    assert.equal(again.status, 202, 'a delivery can be replayed more than once');
    const unknown = await t.call('POST', `/v1/webhooks/deliveries/${crypto.randomUUID()}/replay`, {
      token: org.token,
    });
    assert.equal(unknown.status, 404);
  });

  test('a test message is sent at once and its attempt reported', async () => {
    const org = await freshOrg(t);
    const r = await receiver();
    const endpoint = await addEndpoint(t, org, r);
    const res = await t.call('POST', `/v1/webhooks/${endpoint.id}/test`, { token: org.token });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'succeeded');
    assert.equal(res.body.event_type, 'webhook.test');
    assert.equal(res.body.attempts_log[0].status_code, 204);
    const [message] = await r.waitFor(1);
    assert.equal(message.json.type, 'webhook.test');
    assert.equal(message.verifiedWith, endpoint.secret);

    r.reply = () => ({ status: 503 });
    const failing = await t.call('POST', `/v1/webhooks/${endpoint.id}/test`, { token: org.token });
    assert.equal(failing.body.status, 'failed');
    assert.equal(failing.body.attempts_log[0].status_code, 503);
  });

  test('a rotated secret: both sign during the grace period, then only the new one', async () => {
    const org = await freshOrg(t);
    const r = await receiver();
    const endpoint = await addEndpoint(t, org, r, { event_types: ['organization.updated'] });
    const rotated = await t.call('POST', `/v1/webhooks/${endpoint.id}/rotate-secret`, {
      token: org.token,
      body: { grace_period_seconds: 3600 },
    });
    assert.equal(rotated.status, 200);
    assert.notEqual(rotated.body.secret, endpoint.secret);
    assert.ok(rotated.body.previous_secret_expires_at);

    r.secrets = [endpoint.secret]; // a receiver not yet updated still verifies
    await renameOrg(t, org, 'During grace');
    const [first] = await r.waitFor(1);
    assert.equal(first.verifiedWith, endpoint.secret);
    assert.equal(String(first.headers['webhook-signature']).split(' ').length, 2);
    r.secrets = [rotated.body.secret];
    await renameOrg(t, org, 'Also during grace');
    assert.equal((await r.waitFor(2))[1].verifiedWith, rotated.body.secret);

    const immediate = await t.call('POST', `/v1/webhooks/${endpoint.id}/rotate-secret`, {
      token: org.token,
      body: { grace_period_seconds: 0 },
    });
    r.secrets = [rotated.body.secret, immediate.body.secret];
    await renameOrg(t, org, 'After rotation');
    const third = (await r.waitFor(3))[2];
    assert.equal(third.verifiedWith, immediate.body.secret, 'the old secret no longer signs');
    assert.equal(String(third.headers['webhook-signature']).split(' ').length, 1);
  });

  test('private, loopback, link-local and metadata destinations are refused', async () => {
    const org = await freshOrg(t);
    const refused = [
      'http://127.0.0.1:8080/hook',
      'http://10.0.0.5/hook',
      'http://10.255.1.1:9000/',
      'http://169.254.169.254/latest/meta-data/',
      'http://[::1]:8080/hook',
      'http://[::ffff:127.0.0.1]/hook',
      'http://[fd00:ec2::254]/',
      'http://192.168.1.1/',
      'http://0.0.0.0/',
      'http://localhost:8080/',
      'http://loopback.test/hook', // resolves to 127.0.0.1 through the test DNS server
      'http://private.test/hook',
      'http://v6loopback.test/hook',
      'http://mixed.test/hook', // one public and one private address
      'http://missing.test/hook', // does not resolve
      'ftp://files.example/',
      'http://user:pass@receiver.test/hook',
    ];
    for (const url of refused) {
      const res = await t.call('POST', '/v1/webhooks', { token: org.token, body: { url } });
      assert.ok(res.status === 422 || res.status === 400, `${url}: ${res.status}`);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    }
    const res = await t.call('POST', '/v1/webhooks', {
      token: org.token,
      body: { url: 'http://loopback.test/x' },
    });
    assert.match(res.body.detail, /resolves to 127\.0\.0\.1/);
    const listed = await t.call('GET', '/v1/webhooks', { token: org.token });
    assert.equal(listed.body.total, 0, 'nothing was saved');
  });

  test('a name that later resolves to a private address is refused at delivery time (DNS rebinding)', async () => {
    const org = await freshOrg(t);
    const r = await receiver();
    dns.set('rebind.test', { A: ['93.184.216.34'] });
    const created = await t.call('POST', '/v1/webhooks', {
      token: org.token,
      body: { url: r.url('rebind.test'), event_types: ['organization.updated'] },
    });
    assert.equal(created.status, 201, 'a public address is accepted');
    dns.set('rebind.test', { A: ['127.0.0.1'] });
    await renameOrg(t, org, 'Rebound');
    const [delivery] = await until(
      () => deliveriesOf(t, org, created.body.id),
      (d) => d[0]?.attempts >= 1,
    );
    assert.match(delivery.last_error, /refused: rebind\.test resolves to 127\.0\.0\.1/);
    assert.equal(r.received.length, 0, 'the receiver on loopback was never reached');
  });

  test('endpoints are per organisation', async () => {
    const a = await freshOrg(t);
    const b = await freshOrg(t);
    const r = await receiver();
    const endpoint = await addEndpoint(t, a, r);
    for (const [method, url] of [
      ['GET', `/v1/webhooks/${endpoint.id}`],
      ['PATCH', `/v1/webhooks/${endpoint.id}`],
      ['DELETE', `/v1/webhooks/${endpoint.id}`],
      ['GET', `/v1/webhooks/${endpoint.id}/secret`],
      ['POST', `/v1/webhooks/${endpoint.id}/test`],
      ['GET', `/v1/webhooks/${endpoint.id}/deliveries`],
    ] as const) {
      const res = await t.call(method, url, {
        token: b.token,
        body: method === 'PATCH' ? { description: 'x' } : undefined,
      });
      assert.equal(res.status, 404, `${method} ${url}`);
    }
    await renameOrg(t, b, 'B changed');
    await renameOrg(t, a, 'A changed');
    const [only] = await r.waitFor(1);
    assert.equal(only.json.organization_id, a.orgId, "b's events never reach a's endpoint");
    const events = await t.call('GET', '/v1/events', { token: b.token });
    assert.ok(events.body.items.every((e: any) => e.organization_id === b.orgId));
  });

  test('update, disable by hand and delete', async () => {
    const org = await freshOrg(t);
    const r = await receiver();
    const endpoint = await addEndpoint(t, org, r);
    const off = await t.call('PATCH', `/v1/webhooks/${endpoint.id}`, {
      token: org.token,
      body: { enabled: false, description: 'paused' },
    });
    assert.equal(off.status, 200);
    assert.equal(off.body.enabled, false);
    await renameOrg(t, org, 'While disabled');
    const badUrl = await t.call('PATCH', `/v1/webhooks/${endpoint.id}`, {
      token: org.token,
      body: { url: 'http://169.254.169.254/' },
    });
    assert.equal(badUrl.status, 422);
    const on = await t.call('PATCH', `/v1/webhooks/${endpoint.id}`, {
      token: org.token,
      body: { enabled: true },
    });
    assert.equal(on.body.enabled, true);
    await renameOrg(t, org, 'Enabled again');
    const [message] = await r.waitFor(1);
    assert.equal(message.json.data.name, 'Enabled again', 'nothing was queued for a disabled endpoint');
    const del = await t.call('DELETE', `/v1/webhooks/${endpoint.id}`, { token: org.token });
    assert.equal(del.status, 204);
    assert.equal((await t.call('GET', `/v1/webhooks/${endpoint.id}`, { token: org.token })).status, 404);
  });
});

describe(`failing webhook endpoints on ${engine}`, () => {
  let dns: TestDnsServer;
  let t: TestApp;
  let r: WebhookReceiver;

  before(async () => {
    dns = await startDnsServer({ [RECEIVER_HOST]: { A: ['127.0.0.1'] } });
    r = await startWebhookReceiver();
    t = await startTestApp({
      workers: true,
      env: {
        MAILROOM_DNS_SERVERS: dns.address,
        MAILROOM_WEBHOOK_ALLOW_HOSTS: RECEIVER_HOST,
        MAILROOM_WEBHOOK_RETRY_SCHEDULE: Array(20).fill('250ms').join(','),
        MAILROOM_WEBHOOK_DISABLE_AFTER: '1500ms',
      },
    });
  });
  after(async () => {
    await r?.close();
    await t?.close();
    await dns?.close();
  });

  test('an endpoint failing for longer than the disable period is disabled, with an event and a mail', async () => {
    const org = await signUpWithOrg(t, 'failing@example.com', 'Failing');
    r.reply = () => ({ status: 503 });
    const endpoint = await addEndpoint(t, org, r, { event_types: ['organization.updated'] });
    await renameOrg(t, org, 'Never delivered');

    const disabled = await until(
      async () => (await t.call('GET', `/v1/webhooks/${endpoint.id}`, { token: org.token })).body,
      (e) => e.enabled === false,
    );
    assert.match(disabled.disabled_reason, /no successful delivery since/);
    assert.ok(disabled.disabled_at);
    assert.ok(r.received.length >= 2, 'it was retried before being disabled');

    const events = await t.call('GET', '/v1/events?types=webhook.endpoint_disabled', { token: org.token });
    assert.equal(events.body.total, 1);
    assert.equal(events.body.items[0].data.endpoint_id, endpoint.id);
    const mail = t.mailer.sent.find((m) => m.to === 'failing@example.com' && /disabled/.test(m.subject));
    assert.ok(mail, 'the owner was told');
    assert.match(mail.text, new RegExp(endpoint.id));

    // Once disabled, nothing more is sent until someone enables it.
    const count = r.received.length;
    await renameOrg(t, org, 'After disabling');
    r.reply = () => ({ status: 200 });
    const enabled = await t.call('PATCH', `/v1/webhooks/${endpoint.id}`, {
      token: org.token,
      body: { enabled: true },
    });
    assert.equal(enabled.body.failing_since, null);
    assert.equal(enabled.body.disabled_reason, null);
    const messages = await r.waitFor(count + 1);
    assert.ok(
      messages.slice(count).some((m) => m.json.data.name === 'Never delivered'),
      'pending messages resume',
    );
  });
});
