// SMS through the public surface: a real Mailroom on a real port, and the local gateway servers (an SMSC
// built with the `smpp` package, SMS Gateway for Android's API, Twilio's API) posting their signed
// webhooks back to it. Sending through each gateway, routing by prefix, receipts moving statuses (never
// back), received messages and keywords (STOP, START, HELP), forged webhooks, numbers and segments,
// 429 with Retry-After, failover, idempotency, batches, isolation, statistics and metrics.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { engine, eventsOf, type Org, signUpWithOrg, startTestApp, type TestApp } from '../../support/app.ts';
import { type SmppServer, startSmppServer } from '../../support/smpp-server.ts';
import { type SmsGatewayServer, startSmsGatewayServer } from '../../support/sms-gateway-server.ts';
import { startTwilioServer, type TwilioServer } from '../../support/twilio-server.ts';
import { until } from '../../support/until.ts';

/** A free loopback port, for an app whose public URL (which Twilio signs) must be known before it starts. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe(`sms on ${engine}`, () => {
  let t: TestApp;
  let smsc: SmppServer;
  let gateway: SmsGatewayServer;
  let twilio: TwilioServer;
  let publicUrl: string;
  let org: Org;
  let other: Org;
  const accounts = { smpp: '', android: '', twilio: '' };
  let otherSmpp: string;

  const api = (
    method: string,
    url: string,
    body?: unknown,
    as: Org = org,
    headers?: Record<string, string>,
  ) => t.call(method, url, { token: as.token, body, headers });
  const ok = async (method: string, url: string, body?: unknown, status = 200, as: Org = org) => {
    const res = await api(method, url, body, as);
    assert.equal(res.status, status, `${method} ${url}: ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const message = (id: string, as: Org = org) => ok('GET', `/v1/sms/messages/${id}`, undefined, 200, as);
  const messageWhen = (id: string, check: (m: any) => boolean) => until(() => message(id), check, 20_000);
  const webhookUrl = (accountId: string) => `${publicUrl}/v1/sms/webhooks/${accountId}`;
  const smscSubmitOf = (to: string, text: string) =>
    found(async () => smsc.submits.find((s) => `+${s.destinationAddr}` === to && s.text.includes(text)));

  async function account(provider: string, credentials: Record<string, string>, as: Org = org) {
    const res = await ok('POST', '/v1/provider-accounts', { provider, name: provider, credentials }, 201, as);
    return res.id as string;
  }

  before(async () => {
    smsc = await startSmppServer();
    gateway = await startSmsGatewayServer({ deviceNumber: '+15005550001' });
    twilio = await startTwilioServer({ numbers: ['+15005550006'], price: '-0.00790' });
    const port = await freePort();
    publicUrl = `http://127.0.0.1:${port}`;
    t = await startTestApp({
      workers: true,
      env: {
        MAILROOM_HTTP_PORT: String(port),
        MAILROOM_PUBLIC_URL: publicUrl,
        MAILROOM_TWILIO_API_URL: twilio.apiUrl,
        MAILROOM_SMS_RETRY_SCHEDULE: '300ms',
        MAILROOM_SMS_POLL_INTERVAL: '200ms',
        MAILROOM_SMS_GATEWAY_RECHECK: '200ms',
      },
    });
    await t.app.listen();
    org = await signUpWithOrg(t, 'sms-owner@example.com', 'Texts Inc');
    other = await signUpWithOrg(t, 'sms-other@example.com', 'Other Inc');
    const smppCredentials = {
      host: smsc.host,
      port: String(smsc.port),
      system_id: smsc.systemId,
      password: smsc.password,
      source_addr: 'Mailroom',
    };
    accounts.smpp = await account('smpp', smppCredentials);
    accounts.android = await account('android-sms-gateway', {
      base_url: gateway.baseUrl,
      username: gateway.username,
      password: gateway.password,
      webhook_signing_key: gateway.signingKey,
    });
    accounts.twilio = await account('twilio', {
      account_sid: twilio.accountSid,
      auth_token: twilio.authToken,
      from: '+15005550006',
    });
    otherSmpp = await account('smpp', smppCredentials, other);
    // The phone posts its events to our webhook, as its owner would set it up in the app.
    for (const event of ['sms:sent', 'sms:delivered', 'sms:failed', 'sms:received']) {
      const res = await fetch(`${gateway.baseUrl}/webhooks`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${gateway.username}:${gateway.password}`).toString('base64')}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({ event, url: webhookUrl(accounts.android) }),
      });
      assert.equal(res.status, 201);
    }
    // Every number to SMPP, the UK to the phone.
    await ok(
      'POST',
      '/v1/sms/routes',
      { name: 'default', prefix: '*', provider_account_id: accounts.smpp },
      201,
    );
    await ok(
      'POST',
      '/v1/sms/routes',
      { name: 'UK', prefix: '+44', provider_account_id: accounts.android },
      201,
    );
  });
  after(async () => {
    await t?.close();
    await smsc?.close();
    await gateway?.close();
    await twilio?.close();
  });

  test('SMPP: a submit the link lost before its answer is failed as unknown, never sent again', async () => {
    smsc.answerSubmits = false;
    try {
      const sent = await ok('POST', '/v1/sms/messages', { to: '+14155552699', body: 'Lost in flight' }, 202);
      await smscSubmitOf('+14155552699', 'Lost in flight');
      smsc.dropConnections();
      const failed = await messageWhen(sent.id, (m) => m.status === 'failed');
      assert.equal(failed.error_code, 'unknown_outcome');
    } finally {
      smsc.answerSubmits = true;
    }
    // The link is bound again and the SMSC saw the message once.
    await ok('POST', '/v1/sms/messages', { to: '+14155552698', body: 'After the drop' }, 202);
    await smscSubmitOf('+14155552698', 'After the drop');
    assert.equal(smsc.submits.filter((x) => x.text === 'Lost in flight').length, 1);
  });

  test('SMPP: queued, submitted in the measured coding, moved to delivered by its receipt', async () => {
    const sent = await ok(
      'POST',
      '/v1/sms/messages',
      { to: '(415) 555-2671', body: 'Prices: €5 [x] {y}', tags: ['otp'] },
      202,
    );
    assert.equal(sent.to, '+14155552671');
    assert.equal(sent.status, 'queued');
    assert.equal(sent.encoding, 'gsm7');
    assert.equal(sent.characters, 18);
    assert.equal(sent.parts, 1);
    assert.equal(sent.provider_account_id, accounts.smpp);
    const submit = await smscSubmitOf('+14155552671', 'Prices');
    assert.equal(submit.dataCoding, 0);
    const accepted = await messageWhen(sent.id, (m) => m.provider_id !== null);
    assert.equal(accepted.status, 'sending');
    assert.equal(accepted.provider_id, submit.messageId);
    assert.equal(accepted.provider, 'smpp');
    const answer = await smsc.sendReceipt(submit.messageId);
    assert.equal(answer.status, 0, 'the receipt is acknowledged once stored');
    const delivered = await message(sent.id);
    assert.equal(delivered.status, 'delivered');
    assert.ok(delivered.delivered_at && delivered.sent_at);

    // UCS-2: an emoji; the coding follows.
    const emoji = await ok('POST', '/v1/sms/messages', { to: '+14155552671', body: 'On our way 🚚' }, 202);
    assert.deepEqual([emoji.encoding, emoji.characters, emoji.parts], ['ucs2', 12, 1]);
    assert.equal((await smscSubmitOf('+14155552671', 'On our way')).dataCoding, 8);

    const queued = await eventsOf(t, org, 'sms.queued');
    const event = queued.find((e) => e.data.message_id === sent.id);
    assert.deepEqual(
      { to: event.data.to, status: event.data.status, tags: event.data.tags, parts: event.data.parts },
      { to: '+14155552671', status: 'queued', tags: ['otp'], parts: 1 },
    );
    assert.ok((await eventsOf(t, org, 'sms.delivered')).some((e) => e.data.message_id === sent.id));
  });

  test('SMS Gateway for Android: routed by prefix, its signed webhooks move the message on and never back', async () => {
    const sent = await ok(
      'POST',
      '/v1/sms/messages',
      { to: '+44 7911 123456', body: 'Hello from the phone' },
      202,
    );
    assert.equal(sent.provider_account_id, accounts.android);
    const onPhone = await found(async () => gateway.messages.get(sent.id));
    assert.deepEqual(onPhone.phoneNumbers, ['+447911123456']);
    assert.equal((await messageWhen(sent.id, (m) => m.provider_id === sent.id)).status, 'sending');
    const [sentHook] = await gateway.advance(sent.id, 'Sent');
    assert.equal(sentHook.status, 200);
    assert.equal((await message(sent.id)).status, 'sent');
    await gateway.advance(sent.id, 'Delivered');
    assert.equal((await message(sent.id)).status, 'delivered');
    // A late failure report does not undo the delivery.
    await gateway.advance(sent.id, 'Failed', 'RESULT_ERROR_GENERIC_FAILURE');
    const final = await message(sent.id);
    assert.equal(final.status, 'delivered');
    assert.ok((await eventsOf(t, org, 'sms.sent')).some((e) => e.data.message_id === sent.id));
    assert.ok(!(await eventsOf(t, org, 'sms.failed')).some((e) => e.data.message_id === sent.id));
  });

  test('Twilio: sent with its price, status callbacks to delivered and to undelivered with the error code', async () => {
    const body = { to: '+14155550123', body: 'Twilio says hi', provider_account_id: accounts.twilio };
    const first = await ok('POST', '/v1/sms/messages', body, 202);
    const accepted = await messageWhen(first.id, (m) => m.provider_id !== null);
    assert.match(accepted.provider_id, /^SM[0-9a-f]{32}$/);
    assert.deepEqual(accepted.price, { amount: '0.007900', currency: 'USD' });
    const created = twilio.messages.get(accepted.provider_id)!;
    assert.equal(created.statusCallback, webhookUrl(accounts.twilio));
    assert.equal((await twilio.statusCallback(accepted.provider_id, 'sent')).status, 200);
    assert.equal((await message(first.id)).status, 'sent');
    await twilio.statusCallback(accepted.provider_id, 'delivered');
    assert.equal((await message(first.id)).status, 'delivered');

    const second = await ok('POST', '/v1/sms/messages', { ...body, body: 'This one is lost' }, 202);
    const sid = (await messageWhen(second.id, (m) => m.provider_id !== null)).provider_id;
    await twilio.statusCallback(sid, 'undelivered', { errorCode: 30003 });
    const lost = await message(second.id);
    assert.deepEqual([lost.status, lost.error_code], ['undelivered', '30003']);
    const failed = (await eventsOf(t, org, 'sms.failed')).find((e) => e.data.message_id === second.id);
    assert.deepEqual([failed.data.status, failed.data.error_code], ['undelivered', '30003']);
  });

  test('forged, replayed and misdirected webhooks are refused (never a 5xx) and change nothing', async () => {
    const sent = await ok(
      'POST',
      '/v1/sms/messages',
      { to: '+14155550124', body: 'Forgery target', provider_account_id: accounts.twilio },
      202,
    );
    const sid = (await messageWhen(sent.id, (m) => m.provider_id !== null)).provider_id;
    const forged = await twilio.statusCallback(sid, 'delivered', { signWith: 'not-the-auth-token-at-all' });
    assert.equal(forged.status, 403);
    // Signed for another URL: the signature covers it.
    const elsewhere = await fetch(webhookUrl(accounts.twilio), {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-twilio-signature': twilio.sign('https://evil.example/hook', {
          MessageSid: sid,
          MessageStatus: 'delivered',
        }),
      },
      body: new URLSearchParams({ MessageSid: sid, MessageStatus: 'delivered' }).toString(),
    });
    assert.equal(elsewhere.status, 403);
    const unsigned = await fetch(webhookUrl(accounts.twilio), { method: 'POST', body: 'garbage' });
    assert.equal(unsigned.status, 403);
    const phoneForged = await gateway.post(
      'sms:received',
      {
        messageId: 'x1',
        message: 'STOP',
        phoneNumber: '+447911000111',
        receivedAt: new Date().toISOString(),
      },
      { key: 'wrong-key' },
    );
    assert.deepEqual(
      phoneForged.map((d) => d.status),
      [403],
    );
    const replayed = await gateway.post(
      'sms:received',
      {
        messageId: 'x2',
        message: 'STOP',
        phoneNumber: '+447911000111',
        receivedAt: new Date().toISOString(),
      },
      { timestamp: Math.floor(Date.now() / 1000) - 3_600 },
    );
    assert.deepEqual(
      replayed.map((d) => d.status),
      [403],
    );
    assert.equal((await message(sent.id)).status, 'sending');
    assert.equal((await ok('GET', '/v1/sms/opt-outs?number=%2B447911000111')).total, 0);
    // An SMPP account has no webhook, and an unknown account is unknown.
    assert.equal((await fetch(webhookUrl(accounts.smpp), { method: 'POST', body: '{}' })).status, 404);
    assert.equal(
      (await fetch(webhookUrl('0190f0c2-0000-7000-8000-000000000000'), { method: 'POST', body: '{}' }))
        .status,
      404,
    );
  });

  test('received messages thread per number; STOP opts out (a send is then 422), START back in, HELP answers', async () => {
    const customer = '+14155550199';
    const incoming = (body: string) =>
      twilio.incoming(webhookUrl(accounts.twilio), { from: customer, to: '+15005550006', body });
    assert.equal((await incoming('Is my order ready?')).status, 200);
    // A message queued for later to the same number, which STOP must cancel.
    const later = await ok(
      'POST',
      '/v1/sms/messages',
      {
        to: customer,
        body: 'Your order ships tomorrow',
        send_at: new Date(Date.now() + 3_600_000).toISOString(),
      },
      202,
    );
    assert.equal(later.status, 'scheduled');

    assert.equal((await incoming('STOP')).status, 200);
    const optOuts = await ok('GET', `/v1/sms/opt-outs?number=${encodeURIComponent(customer)}`);
    assert.deepEqual(
      optOuts.items.map((o: any) => [o.number, o.source, o.keyword]),
      [[customer, 'keyword', 'STOP']],
    );
    const cancelled = await message(later.id);
    assert.deepEqual([cancelled.status, cancelled.error_code], ['cancelled', 'opted_out']);
    const refused = await api('POST', '/v1/sms/messages', { to: customer, body: 'Are you there?' });
    assert.equal(refused.status, 422);
    assert.equal(refused.body.code, 'opted_out');
    const batch = await ok('POST', '/v1/sms/messages/batch', {
      messages: [
        { to: customer, body: 'no' },
        { to: '+14155550198', body: 'yes' },
      ],
    });
    assert.deepEqual(
      batch.items.map((i: any) => [i.status, i.problem?.code ?? null]),
      [
        [422, 'opted_out'],
        [202, null],
      ],
    );
    const optedOut = (await eventsOf(t, org, 'sms.opted_out')).find((e) => e.data.number === customer);
    assert.deepEqual([optedOut.data.source, optedOut.data.cancelled], ['keyword', 1]);

    await incoming('start');
    assert.equal((await ok('GET', `/v1/sms/opt-outs?number=${encodeURIComponent(customer)}`)).total, 0);
    await ok('POST', '/v1/sms/messages', { to: customer, body: 'Welcome back' }, 202);

    await ok('PATCH', '/v1/sms/settings', { help_text: 'Texts Inc: call 555-0100. Reply STOP to opt out.' });
    await incoming('Help');
    const reply = await found(async () =>
      [...twilio.messages.values()].find((m) => m.to === customer && m.body.startsWith('Texts Inc: call')),
    );
    assert.equal(reply.from, '+15005550006');
    const thread = await ok('GET', `/v1/sms/conversations/${encodeURIComponent(customer)}?page_size=50`);
    assert.equal(thread.inbound_count, 4);
    assert.equal(thread.opted_out, false);
    const inbound = thread.items.filter((e: any) => e.direction === 'inbound').map((e: any) => e.body);
    assert.deepEqual(inbound, ['Help', 'start', 'STOP', 'Is my order ready?']);
    const outbound = thread.items.filter((e: any) => e.direction === 'outbound').map((e: any) => e.body);
    assert.ok(outbound.includes('Welcome back') && outbound.includes('Your order ships tomorrow'));
    const list = await ok('GET', '/v1/sms/conversations');
    assert.equal(list.items[0].number, customer);
    assert.equal(list.items[0].last_body, 'Help');
    const received = await eventsOf(t, org, 'sms.received');
    assert.deepEqual(
      received.filter((e) => e.data.from === customer).map((e) => e.data.keyword),
      ['help', 'start', 'stop', null],
    );
  });

  test('SMPP: a received STOP is acknowledged once stored, and the number is opted out', async () => {
    const [answer] = await smsc.sendInbound({ from: '+14155550177', to: 'Mailroom', text: 'stop' });
    assert.equal(answer.status, 0);
    const optOuts = await ok('GET', `/v1/sms/opt-outs?number=${encodeURIComponent('+14155550177')}`);
    assert.equal(optOuts.total, 1);
    const refused = await api('POST', '/v1/sms/messages', { to: '+1 415 555 0177', body: 'hi' });
    assert.equal(refused.body.code, 'opted_out');
    await ok('DELETE', `/v1/sms/opt-outs/${encodeURIComponent('+14155550177')}`, undefined, 204);
    await ok('POST', '/v1/sms/messages', { to: '+1 415 555 0177', body: 'hi again' }, 202);
    // Through the API too: added (201), added again (200), and its queued messages cancelled.
    const scheduled = await ok(
      'POST',
      '/v1/sms/messages',
      { to: '+14155550176', body: 'later', send_at: new Date(Date.now() + 600_000).toISOString() },
      202,
    );
    assert.equal(
      (await ok('POST', '/v1/sms/opt-outs', { number: '(415) 555-0176' }, 201)).number,
      '+14155550176',
    );
    await ok('POST', '/v1/sms/opt-outs', { number: '+14155550176' }, 200);
    assert.equal((await message(scheduled.id)).status, 'cancelled');
    await ok('DELETE', `/v1/sms/opt-outs/${encodeURIComponent('+14155550176')}`, undefined, 204);
    await ok('DELETE', `/v1/sms/opt-outs/${encodeURIComponent('+14155550176')}`, undefined, 404);
  });

  test('one SMPP bind per account: kept while the account is unchanged, made anew when its credentials change', async () => {
    await ok('POST', '/v1/sms/messages', { to: '+14155550181', body: 'Bind check one' }, 202);
    await smscSubmitOf('+14155550181', 'Bind check one');
    const binds = smsc.binds;
    // Past several checks of the account (every 200 ms here): using it changes nothing, so no new bind.
    await elapsed(700);
    await ok('POST', '/v1/sms/messages', { to: '+14155550182', body: 'Bind check two' }, 202);
    assert.equal((await smscSubmitOf('+14155550182', 'Bind check two')).bind, binds);
    assert.equal(smsc.binds, binds);
    const credentials = {
      host: smsc.host,
      port: String(smsc.port),
      system_id: smsc.systemId,
      password: smsc.password,
      source_addr: 'Rebound',
    };
    await ok('PATCH', `/v1/provider-accounts/${accounts.smpp}`, { credentials });
    await elapsed(700);
    await ok('POST', '/v1/sms/messages', { to: '+14155550183', body: 'Bind check three' }, 202);
    const third = await smscSubmitOf('+14155550183', 'Bind check three');
    assert.equal(third.sourceAddr, 'Rebound');
    // The update's own check bound once, and the new client once more.
    assert.equal(smsc.binds, binds + 2);
  });

  test('numbers: national ones by the default region, foreign ones kept, invalid ones a 422 naming them', async () => {
    for (const to of ['12', 'call me', '020 7946 0958', '+1 555']) {
      const res = await api('POST', '/v1/sms/messages', { to, body: 'x' });
      assert.equal(res.status, 422, to);
      assert.equal(res.body.code, 'invalid_number');
      assert.ok(res.body.detail.includes(to), res.body.detail);
    }
    const foreign = await ok(
      'POST',
      '/v1/sms/messages',
      { to: '+61 412 345 678', body: 'G’day', send_at: future() },
      202,
    );
    assert.equal(foreign.to, '+61412345678');
    await ok('PATCH', '/v1/sms/settings', { default_region: 'GB' });
    const uk = await ok(
      'POST',
      '/v1/sms/messages',
      { to: '07911 123457', body: 'Cheers', send_at: future() },
      202,
    );
    assert.equal(uk.to, '+447911123457');
    assert.equal(uk.provider_account_id, accounts.android);
    await ok('PATCH', '/v1/sms/settings', { default_region: 'US' });
  });

  test('segments: GSM-7 and its extension table, UCS-2, and the part limit', async () => {
    const measure = async (body: string) => {
      const m = await ok('POST', '/v1/sms/messages', { to: '+14155550111', body, send_at: future() }, 202);
      return [m.encoding, m.characters, m.parts];
    };
    assert.deepEqual(await measure('a'.repeat(160)), ['gsm7', 160, 1]);
    assert.deepEqual(await measure('a'.repeat(161)), ['gsm7', 161, 2]);
    assert.deepEqual(await measure('€'.repeat(80)), ['gsm7', 80, 1]);
    assert.deepEqual(await measure('€'.repeat(81)), ['gsm7', 81, 2]);
    assert.deepEqual(await measure('ç'.repeat(70)), ['ucs2', 70, 1]);
    assert.deepEqual(await measure(`${'a'.repeat(69)}😀`), ['ucs2', 70, 2]);
    await ok('PATCH', '/v1/sms/settings', { max_parts: 2 });
    assert.deepEqual(await measure('a'.repeat(306)), ['gsm7', 306, 2]);
    const over = await api('POST', '/v1/sms/messages', { to: '+14155550111', body: 'a'.repeat(307) });
    assert.equal(over.status, 422);
    assert.equal(over.body.code, 'too_many_parts');
    const batch = await ok('POST', '/v1/sms/messages/batch', {
      messages: [
        { to: '+14155550111', body: 'ç'.repeat(135), send_at: future() },
        { to: '+14155550111', body: 'ç'.repeat(134), send_at: future() },
      ],
    });
    assert.deepEqual(
      batch.items.map((i: any) => i.status),
      [422, 202],
    );
    await ok('PATCH', '/v1/sms/settings', { max_parts: 10 });
  });

  test('a 429 with Retry-After is waited out, then the message goes', async () => {
    gateway.failNext(1, 429, '1');
    const started = Date.now();
    const sent = await ok('POST', '/v1/sms/messages', { to: '+447911123458', body: 'After the pause' }, 202);
    const done = await messageWhen(sent.id, (m) => m.provider_id !== null);
    assert.ok(Date.now() - started >= 900, 'Retry-After was honoured');
    assert.equal(done.attempts, 2);
    assert.equal(done.status, 'sending');
    assert.equal(gateway.requests.filter((r) => r.method === 'POST' && r.status === 429).length >= 1, true);
    // Twilio's 503 as well.
    twilio.failNext(1, 503, '1');
    const viaTwilio = await ok(
      'POST',
      '/v1/sms/messages',
      { to: '+14155550125', body: 'Twilio after a 503', provider_account_id: accounts.twilio },
      202,
    );
    assert.equal((await messageWhen(viaTwilio.id, (m) => m.provider_id !== null)).attempts, 2);
  });

  test('failover: when the first account’s retries are used up, the route’s second account sends it', async () => {
    const route = await ok(
      'POST',
      '/v1/sms/routes',
      {
        name: 'Germany',
        prefix: '49',
        provider_account_id: accounts.android,
        failover_account_id: accounts.smpp,
      },
      201,
    );
    // The first try and its one retry (MAILROOM_SMS_RETRY_SCHEDULE=300ms) both meet a down phone.
    gateway.failNext(2, 503);
    const sent = await ok('POST', '/v1/sms/messages', { to: '+49 151 23456789', body: 'Über SMPP' }, 202);
    assert.equal(sent.route_id, route.id);
    await smscSubmitOf('+4915123456789', 'ber SMPP');
    const moved = await messageWhen(sent.id, (m) => m.provider_id !== null);
    assert.deepEqual(
      [moved.provider_account_id, moved.on_failover, moved.provider],
      [accounts.smpp, true, 'smpp'],
    );
    assert.equal(gateway.messages.has(sent.id), false);
    // With the failover down as well (a gateway refusing for good), the message fails with its code.
    gateway.failNext(2, 503);
    const nowhere = await ok(
      'POST',
      '/v1/sms/routes',
      { name: 'France', prefix: '33', provider_account_id: accounts.android },
      201,
    );
    const lost = await ok('POST', '/v1/sms/messages', { to: '+33 6 12 34 56 78', body: 'Perdu' }, 202);
    assert.equal(lost.route_id, nowhere.id);
    const failed = await messageWhen(lost.id, (m) => m.status === 'failed');
    assert.equal(failed.attempts, 2);
    assert.ok(failed.error_message);
    assert.ok((await eventsOf(t, org, 'sms.failed')).some((e) => e.data.message_id === lost.id));
  });

  test('idempotency, batches, cancelling and listing', async () => {
    const body = { to: '+14155550130', body: 'Once only', send_at: future() };
    const headers = { 'idempotency-key': 'order-42' };
    const first = await api('POST', '/v1/sms/messages', body, org, headers);
    assert.equal(first.status, 202);
    const again = await api('POST', '/v1/sms/messages', body, org, headers);
    assert.equal(again.status, 200);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.equal(again.body.id, first.body.id);
    const reused = await api('POST', '/v1/sms/messages', { ...body, body: 'Other' }, org, headers);
    assert.deepEqual([reused.status, reused.body.code], [422, 'idempotency_key_reused']);

    const batch = await ok('POST', '/v1/sms/messages/batch', {
      messages: [
        { to: '+14155550131', body: 'One', tags: ['batch'], send_at: future() },
        { to: 'nope', body: 'Two' },
        { to: '+14155550132', body: '' },
        { to: '+14155550133', body: 'Four', tags: ['batch'], send_at: future() },
        { to: '+14155550134', body: 'Five', route_id: '0190f0c2-0000-7000-8000-000000000000' },
      ],
    });
    assert.deepEqual(
      batch.items.map((i: any) => [i.index, i.status, i.problem?.code ?? null]),
      [
        [0, 202, null],
        [1, 422, 'invalid_number'],
        [2, 400, 'validation_failed'],
        [3, 202, null],
        [4, 404, 'not_found'],
      ],
    );
    assert.deepEqual([batch.queued, batch.refused], [2, 3]);
    const tagged = await ok('GET', '/v1/sms/messages?tag=batch&status=scheduled');
    assert.equal(tagged.total, 2);
    const byNumber = await ok('GET', `/v1/sms/messages?to=${encodeURIComponent('(415) 555-0131')}`);
    assert.deepEqual(
      byNumber.items.map((m: any) => m.body),
      ['One'],
    );

    const cancelled = await ok('POST', `/v1/sms/messages/${first.body.id}/cancel`);
    assert.equal(cancelled.status, 'cancelled');
    const twice = await api('POST', `/v1/sms/messages/${first.body.id}/cancel`);
    assert.deepEqual([twice.status, twice.body.code], [409, 'not_cancellable']);
    assert.ok((await eventsOf(t, org, 'sms.cancelled')).some((e) => e.data.message_id === first.body.id));
  });

  test('bad input is a 4xx', async () => {
    const cases: [string, string, unknown, number][] = [
      ['POST', '/v1/sms/messages', { to: '+14155550140' }, 400],
      ['POST', '/v1/sms/messages', { to: '+14155550140', body: '' }, 400],
      ['POST', '/v1/sms/messages', { to: '+14155550140', body: 'x', extra: 1 }, 400],
      ['POST', '/v1/sms/messages', { to: '+14155550140', body: 'x', provider_account_id: 'nope' }, 400],
      ['POST', '/v1/sms/messages', { to: '+14155550140', body: 'x', send_at: 'tomorrow' }, 400],
      [
        'POST',
        '/v1/sms/messages',
        { to: '+14155550140', body: 'x', send_at: new Date(Date.now() + 40 * 86_400_000).toISOString() },
        422,
      ],
      [
        'POST',
        '/v1/sms/messages',
        { to: '+14155550140', body: 'x', route_id: accounts.smpp, provider_account_id: accounts.smpp },
        422,
      ],
      ['POST', '/v1/sms/messages', { to: '+14155550140', body: 'nul\u0000byte' }, 422],
      ['POST', '/v1/sms/messages', { to: '+14155550140', body: 'x', sender: 'Far too long a name' }, 422],
      ['POST', '/v1/sms/messages', { to: '+14155550140', body: 'x', tags: ['a'.repeat(101)] }, 400],
      ['POST', '/v1/sms/messages/batch', { messages: [] }, 400],
      [
        'POST',
        '/v1/sms/messages/batch',
        { messages: Array.from({ length: 1_001 }, () => ({ to: '1', body: 'x' })) },
        400,
      ],
      ['GET', '/v1/sms/messages/not-a-uuid', undefined, 400],
      ['GET', '/v1/sms/messages?status=lost', undefined, 400],
      ['GET', '/v1/sms/messages?to=garbage', undefined, 422],
      ['PATCH', '/v1/sms/settings', { default_region: 'XX' }, 422],
      ['PATCH', '/v1/sms/settings', { time_zone: 'Mars/Olympus' }, 422],
      ['PATCH', '/v1/sms/settings', { quiet_hours: { start: '25:00', end: '08:00' } }, 400],
      ['PATCH', '/v1/sms/settings', { quiet_hours: { start: '08:00', end: '08:00' } }, 422],
      ['PATCH', '/v1/sms/settings', { max_parts: 0 }, 400],
      [
        'PATCH',
        '/v1/sms/settings',
        {
          throttles: [
            { provider_account_id: accounts.smpp, min_interval_seconds: 10, max_interval_seconds: 5 },
          ],
        },
        422,
      ],
      ['POST', '/v1/sms/routes', { name: 'x', prefix: 'abc', provider_account_id: accounts.smpp }, 422],
      ['POST', '/v1/sms/routes', { name: 'x', prefix: '*', provider_account_id: accounts.smpp }, 409],
      [
        'POST',
        '/v1/sms/routes',
        { name: 'x', prefix: '7', provider_account_id: accounts.smpp, failover_account_id: accounts.smpp },
        422,
      ],
      ['POST', '/v1/sms/opt-outs', { number: 'nobody' }, 422],
      ['GET', '/v1/sms/stats?from=2025-02-01T00:00:00Z&to=2025-01-01T00:00:00Z', undefined, 422],
      ['GET', '/v1/sms/stats?group_by=week', undefined, 400],
      ['GET', '/v1/sms/conversations/nobody', undefined, 404],
    ];
    for (const [method, url, body, status] of cases) {
      const res = await api(method, url, body);
      assert.equal(
        res.status,
        status,
        `${method} ${url} ${JSON.stringify(body)?.slice(0, 200)}: ${JSON.stringify(res.body)}`,
      );
      assert.match(String(res.headers['content-type']), /problem\+json/);
    }
  });

  test('another organisation’s messages, routes, accounts and conversations are 404; its stats are its own', async () => {
    const mine = await ok(
      'POST',
      '/v1/sms/messages',
      { to: '+14155550150', body: 'Mine', send_at: future() },
      202,
    );
    const route = (await ok('GET', '/v1/sms/routes')).items[0];
    for (const [method, url, body] of [
      ['GET', `/v1/sms/messages/${mine.id}`, undefined],
      ['POST', `/v1/sms/messages/${mine.id}/cancel`, undefined],
      ['GET', `/v1/sms/routes/${route.id}`, undefined],
      ['PATCH', `/v1/sms/routes/${route.id}`, { name: 'stolen' }],
      ['DELETE', `/v1/sms/routes/${route.id}`, undefined],
      ['POST', '/v1/sms/messages', { to: '+14155550151', body: 'x', provider_account_id: accounts.smpp }],
      ['POST', '/v1/sms/messages', { to: '+14155550151', body: 'x', route_id: route.id }],
      ['POST', '/v1/sms/routes', { name: 'x', prefix: '1', provider_account_id: accounts.smpp }],
      ['PATCH', '/v1/sms/settings', { throttles: [{ provider_account_id: accounts.smpp, per_second: 1 }] }],
      ['GET', `/v1/sms/conversations/${encodeURIComponent('+14155550199')}`, undefined],
    ] as const) {
      const res = await api(method, url, body, other);
      assert.equal(res.status, 404, `${method} ${url}: ${JSON.stringify(res.body)}`);
    }
    assert.equal((await ok('GET', '/v1/sms/messages', undefined, 200, other)).total, 0);
    assert.equal((await ok('GET', '/v1/sms/conversations', undefined, 200, other)).total, 0);
    assert.deepEqual((await ok('GET', '/v1/sms/stats', undefined, 200, other)).items, []);
    // Its own account works for it.
    await ok(
      'POST',
      '/v1/sms/routes',
      { name: 'all', prefix: '*', provider_account_id: otherSmpp },
      201,
      other,
    );
    const theirs = await ok('POST', '/v1/sms/messages', { to: '+14155550152', body: 'Theirs' }, 202, other);
    assert.equal(theirs.provider_account_id, otherSmpp);
    assert.equal((await api('GET', `/v1/sms/messages/${theirs.id}`)).status, 404);
  });

  test('scopes: a key with sms:read reads but cannot send', async () => {
    const key = await ok(
      'POST',
      `/v1/organizations/${org.orgId}/api-keys`,
      { name: 'reader', scopes: ['sms:read'] },
      201,
    );
    const reader = { token: key.key, orgId: org.orgId };
    assert.equal((await api('GET', '/v1/sms/messages', undefined, reader)).status, 200);
    assert.equal(
      (await api('POST', '/v1/sms/messages', { to: '+14155550160', body: 'x' }, reader)).status,
      403,
    );
    const writer = await ok(
      'POST',
      `/v1/organizations/${org.orgId}/api-keys`,
      { name: 'w', scopes: ['sms:write'] },
      201,
    );
    const sent = await api(
      'POST',
      '/v1/sms/messages',
      { to: '+14155550160', body: 'x', send_at: future() },
      {
        token: writer.key,
        orgId: org.orgId,
      },
    );
    assert.equal(sent.status, 202);
  });

  test('statistics by day, account and campaign; Prometheus counters by provider', async () => {
    const stats = await ok('GET', '/v1/sms/stats?group_by=provider_account');
    const twilioRow = stats.items.find((i: any) => i.provider_account_id === accounts.twilio);
    assert.ok(twilioRow.sent >= 2, JSON.stringify(twilioRow));
    assert.ok(twilioRow.delivered >= 1);
    assert.ok(twilioRow.failed >= 1);
    assert.ok(twilioRow.price.some((p: any) => p.currency === 'USD' && Number(p.amount) > 0));
    const smppRow = stats.items.find((i: any) => i.provider_account_id === accounts.smpp);
    assert.ok(smppRow.delivered >= 1 && smppRow.parts >= 1);
    const byDay = await ok('GET', '/v1/sms/stats');
    assert.equal(byDay.items.length, 1);
    assert.equal(byDay.items[0].day, new Date().toISOString().slice(0, 10));
    const metrics = String((await t.call('GET', '/metrics')).body);
    assert.match(metrics, /mailroom_sms_sent_total\{provider="smpp"\} \d+/);
    assert.match(metrics, /mailroom_sms_delivered_total\{provider="twilio"\} \d+/);
    assert.match(metrics, /mailroom_sms_failed_total\{provider="twilio"\} \d+/);
    assert.match(metrics, /mailroom_sms_received_total\{provider="twilio"\} [1-9]/);
    assert.match(metrics, /mailroom_sms_received_total\{provider="smpp"\} [1-9]/);
  });
});

/** Lets time pass that the code under test counts (a recheck interval), not a wait for an outcome. */
function elapsed(ms: number): Promise<void> {
  const until = Date.now() + ms;
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, until - Date.now())));
}

/** What `read` finds, once it finds something. */
async function found<T>(read: () => Promise<T | undefined>): Promise<T> {
  return (await until(read, (v) => v !== undefined)) as T;
}

/** An hour ahead: the message waits (scheduled) instead of going to a gateway. */
function future(): string {
  return new Date(Date.now() + 3_600_000).toISOString();
}
