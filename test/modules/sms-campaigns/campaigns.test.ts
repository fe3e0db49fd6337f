// SMS campaigns through the HTTP API, sent through a local SMSC (test/support/smpp-server.ts) by the sms
// module's queue: a send window and a daily limit on a ManualClock (simulated days), pause and resume with
// every recipient sent exactly once, cancel, and the state machine's refusals.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../../src/core/clock.ts';
import { engine, eventsOf, orgMaker, startTestApp, type Org, type TestApp } from '../../support/app.ts';
import { type SmppServer, startSmppServer } from '../../support/smpp-server.ts';
import { until } from '../../support/until.ts';

const newOrg = orgMaker('smscampaigns');

interface Setup {
  accountId: string;
  templateId: string;
  listId: string;
  phones: string[];
}

/** Numbers of each set-up are their own, so that tests sharing an SMSC count only theirs. */
let numbersUsed = 0;

/** An SMPP gateway account, a template and a list of `n` contacts (numbers in order). */
async function setUp(t: TestApp, org: Org, smsc: SmppServer, n: number, body: string): Promise<Setup> {
  const first = 2000 + numbersUsed;
  numbersUsed += n;
  const call = (method: string, url: string, b?: unknown) =>
    t.call(method, url, { token: org.token, body: b });
  const account = await call('POST', '/v1/provider-accounts', {
    provider: 'smpp',
    name: 'SMSC',
    credentials: {
      host: smsc.host,
      port: String(smsc.port),
      system_id: smsc.systemId,
      password: smsc.password,
      source_addr: 'Mailroom',
    },
  });
  assert.equal(account.status, 201, JSON.stringify(account.body));
  const template = await call('POST', '/v1/sms/templates', { name: 'Campaign', body });
  assert.equal(template.status, 201, JSON.stringify(template.body));
  const list = await call('POST', '/v1/sms/lists', { name: 'Everyone' });
  const csv = [
    'phone,name',
    ...Array.from({ length: n }, (_, i) => `+1415555${String(first + i)},Person ${i}`),
  ].join('\n');
  const imported = await t.call('POST', `/v1/sms/contacts/imports?list_id=${list.body.id}`, {
    token: org.token,
    rawBody: csv,
    headers: { 'content-type': 'text/csv' },
  });
  assert.equal(imported.status, 202, JSON.stringify(imported.body));
  await until(
    async () => (await call('GET', `/v1/sms/lists/${list.body.id}`)).body.members,
    (members) => members === n,
    60_000,
  );
  return {
    accountId: account.body.id,
    templateId: template.body.id,
    listId: list.body.id,
    phones: Array.from({ length: n }, (_, i) => `1415555${String(first + i)}`),
  };
}

/** Submits per destination at the SMSC. */
function perDestination(smsc: SmppServer): Map<string, number> {
  const seen = new Map<string, number>();
  for (const s of smsc.submits) seen.set(s.destinationAddr, (seen.get(s.destinationAddr) ?? 0) + 1);
  return seen;
}

describe(`SMS campaigns with a window and a daily limit on ${engine}`, () => {
  // Saturday 3 January 2026, 10:00 in Berlin.
  const clock = new ManualClock('2026-01-03T09:00:00Z');
  let t: TestApp;
  let smsc: SmppServer;
  before(async () => {
    smsc = await startSmppServer();
    // SMPP messages stay `sending` until their receipt: the SMSC sends one for each.
    smsc.autoReceipts = true;
    t = await startTestApp({ workers: true, clock, env: { MAILROOM_JOB_LEASE: '3s' } });
  });
  after(async () => {
    await t.close();
    await smsc.close();
  });

  test('weekdays 09:00–17:00 Berlin, 3 a day: sent on three simulated days, in order, each once', async () => {
    const org = await newOrg(t);
    const call = (method: string, url: string, b?: unknown) =>
      t.call(method, url, { token: org.token, body: b });
    const s = await setUp(t, org, smsc, 8, 'Hi {{ contact.first_name }} from {{ organization.name }}');
    const created = await call('POST', '/v1/sms/campaigns', {
      name: 'January',
      template_id: s.templateId,
      list_id: s.listId,
      provider_account_id: s.accountId,
      time_zone: 'Europe/Berlin',
      window: { days: [1, 2, 3, 4, 5], start: '09:00', end: '17:00' },
      daily_limit: 3,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.status, 'draft');
    const C = `/v1/sms/campaigns/${created.body.id}`;
    const get = async () => (await call('GET', C)).body;

    const started = await call('POST', `${C}/start`);
    assert.equal(started.status, 200, JSON.stringify(started.body));
    assert.equal(started.body.status, 'scheduled');
    // Saturday: it starts (recipients taken) but nothing goes out.
    const active = await until(get, (c) => c.status === 'active', 30_000);
    assert.equal(active.total, 8);
    assert.equal(active.progress.pending, 8);
    const [startedEvent] = await eventsOf(t, org, 'campaign.started');
    assert.equal(startedEvent.data.campaign.total, 8);
    // Monday 08:59: still closed.
    clock.set('2026-01-05T07:59:00Z');
    assert.equal((await get()).progress.pending, 8);
    assert.equal(smsc.submits.length, 0);

    // Monday 09:00: three, the daily limit.
    clock.set('2026-01-05T08:00:00Z');
    const monday = await until(get, (c) => c.progress.sent + c.progress.delivered >= 3, 30_000);
    assert.equal(monday.handed_over_today, 3);
    assert.equal(monday.progress.pending, 5);
    // Later on Monday, and Tuesday after 17:00: nothing more.
    clock.set('2026-01-05T15:00:00Z');
    clock.set('2026-01-06T16:30:00Z');
    assert.equal(smsc.submits.length, 3, 'the daily limit held on Monday');
    // Wednesday 09:00 (Tuesday's window passed unseen): three more.
    clock.set('2026-01-07T08:00:00Z');
    await until(get, (c) => c.progress.sent + c.progress.delivered >= 6, 30_000);
    assert.equal(smsc.submits.length, 6);
    // Thursday: the last two, and the campaign completes.
    clock.set('2026-01-08T08:30:00Z');
    const done = await until(get, (c) => c.status === 'completed', 30_000);
    assert.equal(done.progress.sent + done.progress.delivered, 8);
    assert.equal(done.progress.pending, 0);

    assert.deepEqual(
      smsc.submits.map((x) => x.destinationAddr),
      s.phones,
      'each recipient once, in list order',
    );
    assert.equal(smsc.submits[0].text, 'Hi Person from smscampaigns 1');
    const recipients = await call('GET', `${C}/recipients?page_size=10`);
    assert.equal(recipients.body.total, 8);
    assert.ok(recipients.body.items.every((r: any) => r.message_id && r.attempts === 1));
    const sent = await call('GET', `${C}/recipients?status=sent,delivered&phone=2001`);
    assert.equal(sent.body.total, 1);
    assert.equal((await eventsOf(t, org, 'campaign.completed')).length, 1);
    // A completed campaign moves no more.
    for (const move of ['start', 'pause', 'resume', 'cancel'])
      assert.equal((await call('POST', `${C}/${move}`)).status, 409, move);
  });
});

describe(`SMS campaigns paused, resumed and cancelled on ${engine}`, () => {
  let t: TestApp;
  let smsc: SmppServer;
  before(async () => {
    smsc = await startSmppServer();
    // SMPP messages stay `sending` until their receipt: the SMSC sends one for each.
    smsc.autoReceipts = true;
    t = await startTestApp({ workers: true, env: { MAILROOM_JOB_LEASE: '3s' } });
  });
  after(async () => {
    await t.close();
    await smsc.close();
  });

  const throttle = (org: Org, accountId: string, perSecond: number | null) =>
    t.call('PATCH', '/v1/sms/settings', {
      token: org.token,
      body: { throttles: [{ provider_account_id: accountId, per_second: perSecond }] },
    });

  test('paused mid-way and resumed: no recipient twice, none left out', async () => {
    const org = await newOrg(t);
    const call = (method: string, url: string, b?: unknown) =>
      t.call(method, url, { token: org.token, body: b });
    const total = 120;
    const s = await setUp(t, org, smsc, total, 'Sale for {{ contact.name }}');
    // Slow enough that messages wait in the queue when the pause comes.
    const slow = await throttle(org, s.accountId, 40);
    assert.equal(slow.status, 200, JSON.stringify(slow.body));
    const created = await call('POST', '/v1/sms/campaigns', {
      name: 'Pause me',
      template_id: s.templateId,
      list_id: s.listId,
      provider_account_id: s.accountId,
    });
    const C = `/v1/sms/campaigns/${created.body.id}`;
    const get = async () => (await call('GET', C)).body;
    assert.equal((await call('POST', `${C}/pause`)).status, 409, 'a draft cannot be paused');
    assert.equal((await call('POST', `${C}/start`)).status, 200);
    assert.equal((await call('POST', `${C}/start`)).status, 409, 'started twice');
    await until(get, (c) => c.progress.sent + c.progress.delivered >= 20, 30_000);
    const paused = await call('POST', `${C}/pause`);
    assert.equal(paused.status, 200, JSON.stringify(paused.body));
    assert.equal(paused.body.status, 'paused');
    const [pausedEvent] = await eventsOf(t, org, 'campaign.paused');
    assert.ok(pausedEvent.data.returned > 0, 'queued messages were taken back');
    // What was mid-submit at the pause still goes out; then nothing more.
    const settled = await until(get, (c) => c.progress.queued === 0, 30_000);
    assert.ok(settled.progress.pending > 0, JSON.stringify(settled.progress));
    const atPause = smsc.submits.length;
    assert.equal(settled.progress.sent + settled.progress.delivered, atPause);
    assert.equal((await call('POST', `${C}/resume`)).status, 200);
    assert.equal((await call('POST', `${C}/resume`)).status, 409, 'resumed twice');
    assert.equal((await throttle(org, s.accountId, null)).status, 200);
    const done = await until(get, (c) => c.status === 'completed', 60_000);
    assert.equal(done.progress.sent + done.progress.delivered, total, JSON.stringify(done.progress));

    const seen = perDestination(smsc);
    const missing = s.phones.filter((p) => !seen.has(p));
    const twice = s.phones.filter((p) => (seen.get(p) ?? 0) > 1);
    assert.deepEqual(missing, [], 'no gaps');
    assert.deepEqual(twice, [], 'no duplicates');
    const again = await call('GET', `${C}/recipients?page_size=200`);
    assert.ok(
      again.body.items.some((r: any) => r.attempts === 2),
      'some recipients were handed back at the pause and over again after it',
    );
    assert.equal((await eventsOf(t, org, 'campaign.resumed')).length, 1);
  });

  test('cancelled: what was not sent is cancelled and never goes out', async () => {
    const org = await newOrg(t);
    const call = (method: string, url: string, b?: unknown) =>
      t.call(method, url, { token: org.token, body: b });
    const total = 100;
    const s = await setUp(t, org, smsc, total, 'Last call');
    assert.equal((await throttle(org, s.accountId, 40)).status, 200);
    const created = await call('POST', '/v1/sms/campaigns', {
      name: 'Cancel me',
      template_id: s.templateId,
      list_id: s.listId,
      provider_account_id: s.accountId,
    });
    const C = `/v1/sms/campaigns/${created.body.id}`;
    const get = async () => (await call('GET', C)).body;
    assert.equal((await call('DELETE', `/v1/sms/templates/${s.templateId}`)).status, 409, 'a draft uses it');
    await call('POST', `${C}/start`);
    await until(get, (c) => c.progress.sent + c.progress.delivered >= 10, 30_000);
    assert.equal((await call('DELETE', C)).status, 409, 'an active campaign is not deleted');
    const cancelled = await call('POST', `${C}/cancel`);
    assert.equal(cancelled.status, 200);
    assert.equal(cancelled.body.status, 'cancelled');
    const settled = await until(get, (c) => c.progress.queued === 0, 30_000);
    const sent = settled.progress.sent + settled.progress.delivered;
    assert.equal(sent + settled.progress.cancelled, total, JSON.stringify(settled.progress));
    assert.ok(settled.progress.cancelled > 0);
    assert.equal(smsc.submits.filter((x) => s.phones.includes(x.destinationAddr)).length, sent);
    assert.equal((await eventsOf(t, org, 'campaign.cancelled')).length, 1);
    assert.equal((await call('POST', `${C}/resume`)).status, 409);
    assert.equal((await call('DELETE', C)).status, 204);
  });

  test('bad input is a 4xx', async () => {
    const org = await newOrg(t);
    const call = (method: string, url: string, b?: unknown) =>
      t.call(method, url, { token: org.token, body: b });
    const template = await call('POST', '/v1/sms/templates', { name: 'T', body: 'x' });
    const list = await call('POST', '/v1/sms/lists', { name: 'L' });
    const base = { name: 'Bad', template_id: template.body.id, list_id: list.body.id };
    const unknown = '00000000-0000-7000-8000-000000000000';
    for (const [body, status] of [
      [{ ...base, template_id: unknown }, 422],
      [{ ...base, list_id: unknown }, 422],
      [{ ...base, provider_account_id: unknown }, 422],
      [{ ...base, time_zone: 'Mars/Olympus' }, 422],
      [{ ...base, window: { start: '18:00', end: '09:00' } }, 422],
      [{ ...base, window: { start: '25:00' } }, 422],
      [{ ...base, window: { days: [7] } }, 400],
      [{ ...base, daily_limit: 0 }, 400],
      [{ ...base, extra: true }, 400],
    ] as const) {
      const res = await call('POST', '/v1/sms/campaigns', body);
      assert.equal(res.status, status, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
    }
    const draft = await call('POST', '/v1/sms/campaigns', base);
    assert.equal(draft.status, 201);
    assert.equal(draft.body.time_zone, 'UTC', "the organisation's SMS time zone");
    const other = await newOrg(t);
    assert.equal(
      (await t.call('GET', `/v1/sms/campaigns/${draft.body.id}`, { token: other.token })).status,
      404,
    );
    assert.equal(
      (await t.call('POST', `/v1/sms/campaigns/${draft.body.id}/start`, { token: other.token })).status,
      404,
    );
    const patched = await call('PATCH', `/v1/sms/campaigns/${draft.body.id}`, {
      daily_limit: 10,
      window: { start: '08:00', end: '20:00' },
    });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.deepEqual(patched.body.window, { days: [0, 1, 2, 3, 4, 5, 6], start: '08:00', end: '20:00' });
    assert.equal(
      (await call('DELETE', `/v1/sms/lists/${list.body.id}`)).status,
      409,
      'a draft uses the list',
    );
    assert.equal((await call('DELETE', `/v1/sms/campaigns/${draft.body.id}`)).status, 204);
  });
});
