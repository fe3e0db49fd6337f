// Time in the SMS queue, on a ManualClock: quiet hours in the recipient's time zone, scheduled sends, and a
// gateway account's daily limit with random spacing, against the local SMSC.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../../src/core/clock.ts';
import { engine, type Org, signUpWithOrg, startTestApp, type TestApp } from '../../support/app.ts';
import { type SmppServer, startSmppServer } from '../../support/smpp-server.ts';
import { until } from '../../support/until.ts';

describe(`sms scheduling on ${engine}`, () => {
  let t: TestApp;
  let smsc: SmppServer;
  let org: Org;
  let smppAccount: string;
  // 06:30 UTC: 23:30 the evening before in Los Angeles, 15:30 in Tokyo, 07:30 in London.
  const clock = new ManualClock('2025-06-10T06:30:00Z');

  const ok = async (method: string, url: string, body?: unknown, status = 200) => {
    const res = await t.call(method, url, { token: org.token, body });
    assert.equal(res.status, status, `${method} ${url}: ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const send = (to: string, body: string, extra: Record<string, unknown> = {}) =>
    ok('POST', '/v1/sms/messages', { to, body, ...extra }, 202);
  const message = (id: string) => ok('GET', `/v1/sms/messages/${id}`);
  const submitted = (text: string) => smsc.submits.some((s) => s.text === text);
  const whenSubmitted = (text: string) => until(async () => submitted(text), Boolean);

  before(async () => {
    smsc = await startSmppServer();
    t = await startTestApp({ workers: true, clock, env: { MAILROOM_SMS_POLL_INTERVAL: '100ms' } });
    org = await signUpWithOrg(t, 'sms-clock@example.com', 'Clockwork');
    smppAccount = (
      await ok(
        'POST',
        '/v1/provider-accounts',
        {
          provider: 'smpp',
          name: 'SMSC',
          credentials: {
            host: smsc.host,
            port: String(smsc.port),
            system_id: smsc.systemId,
            password: smsc.password,
            source_addr: 'Clockwork',
          },
        },
        201,
      )
    ).id;
    await ok('POST', '/v1/sms/routes', { name: 'all', prefix: '*', provider_account_id: smppAccount }, 201);
  });
  after(async () => {
    await t?.close();
    await smsc?.close();
  });

  test('quiet hours hold a message until they end in the recipient’s zone; others go at once', async () => {
    await ok('PATCH', '/v1/sms/settings', { quiet_hours: { start: '21:00', end: '08:00' } });
    const night = await send('+1 415 555 2671', 'Good morning, Los Angeles');
    const day = await send('+81 3-1234-5678', 'Good afternoon, Tokyo');
    await whenSubmitted('Good afternoon, Tokyo');
    // Held until 08:00 in Los Angeles (PDT): 15:00 UTC, untried.
    const held = await until(
      () => message(night.id),
      (m) => m.next_attempt_at === '2025-06-10T15:00:00.000Z',
    );
    assert.deepEqual([held.status, held.attempts, held.provider_id], ['queued', 0, null]);
    assert.equal(submitted('Good morning, Los Angeles'), false);
    assert.equal((await message(day.id)).status, 'sending');
    // London is in quiet hours too at 07:30 BST, until 08:00 local (07:00 UTC).
    const london = await send('+44 20 7946 0958', 'Good morning, London');
    await until(
      () => message(london.id),
      (m) => m.next_attempt_at === '2025-06-10T07:00:00.000Z',
    );
    clock.set('2025-06-10T07:00:05Z');
    await whenSubmitted('Good morning, London');
    assert.equal(submitted('Good morning, Los Angeles'), false);
    clock.set('2025-06-10T15:00:05Z');
    await whenSubmitted('Good morning, Los Angeles');
    await ok('PATCH', '/v1/sms/settings', { quiet_hours: null });
  });

  test('a scheduled message waits for its send_at', async () => {
    const at = new Date(clock.now().getTime() + 2 * 3_600_000).toISOString();
    const later = await send('+81 3-1234-5679', 'Scheduled for later', { send_at: at });
    assert.deepEqual([later.status, later.send_at, later.next_attempt_at], ['scheduled', at, at]);
    // Something sent now goes through the same dispatcher: once it is out, the scheduled one was looked past.
    await send('+81 3-1234-5670', 'Right now');
    await whenSubmitted('Right now');
    assert.equal((await message(later.id)).status, 'scheduled');
    assert.equal(submitted('Scheduled for later'), false);
    clock.set(new Date(Date.parse(at) + 1_000));
    await whenSubmitted('Scheduled for later');
  });

  test('a daily limit with random spacing: one at a time, spaced, and the rest the next day', async () => {
    clock.set('2025-06-12T10:00:00Z');
    await ok('PATCH', '/v1/sms/settings', {
      throttles: [
        {
          provider_account_id: smppAccount,
          daily_limit: 2,
          min_interval_seconds: 60,
          max_interval_seconds: 120,
        },
      ],
    });
    const settings = await ok('GET', '/v1/sms/settings');
    assert.deepEqual(settings.throttles, [
      {
        provider_account_id: smppAccount,
        per_second: null,
        daily_limit: 2,
        min_interval_seconds: 60,
        max_interval_seconds: 120,
      },
    ]);
    const [first, second, third] = [
      await send('+81 3-1234-5601', 'Paced one'),
      await send('+81 3-1234-5602', 'Paced two'),
      await send('+81 3-1234-5603', 'Paced three'),
    ];
    await whenSubmitted('Paced one');
    // The others wait for the next slot, 60 to 120 seconds on, and were not tried.
    for (const m of [second, third]) {
      const waiting = await until(
        () => message(m.id),
        (v) => v.status === 'queued' && Date.parse(v.next_attempt_at) >= Date.parse('2025-06-12T10:01:00Z'),
      );
      assert.equal(waiting.attempts, 0);
    }
    assert.equal(submitted('Paced two'), false);
    assert.equal((await message(first.id)).status, 'sending');
    clock.set('2025-06-12T10:02:01Z');
    await whenSubmitted('Paced two');
    // Two today: the third waits for the next day (the settings' time zone, UTC).
    clock.set('2025-06-12T12:00:00Z');
    await until(
      () => message(third.id),
      (v) => v.next_attempt_at === '2025-06-13T00:00:00.000Z',
    );
    assert.equal(submitted('Paced three'), false);
    clock.set('2025-06-13T00:00:10Z');
    await whenSubmitted('Paced three');
    await ok('PATCH', '/v1/sms/settings', { throttles: [] });
  });
});
