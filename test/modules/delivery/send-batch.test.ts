// The batch send endpoint and what the group-committed send path must keep: each message of a batch
// checked and answered on its own, idempotency per message, the request limits, one audit entry per
// queued message, and send-limit counts taken once and given back when a recipient is cancelled.
// No worker runs: queued mail stays queued, so counts and states can be read as they are.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engine, eventsOf, orgMaker, startTestApp, type Org, type TestApp } from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';

describe(`batch sending on ${engine}`, () => {
  let t: TestApp;
  let dns: TestDnsServer;
  let org: Org;
  const newOrg = orgMaker('batch');

  before(async () => {
    dns = await startDnsServer();
    t = await startTestApp({
      env: {
        MAILROOM_DNS_SERVERS: dns.address,
        MAILROOM_DNS_TIMEOUT: '300ms',
        MAILROOM_DNS_TRIES: '1',
        MAILROOM_SEND_LIMIT_MAILBOX_PER_DAY: '3',
        MAILROOM_SMTP_MAX_MESSAGE_SIZE: '200000',
      },
    });
    org = await newOrg(t);
    await verifiedDomain(t, org.token, 'batch.test', [dns]);
  });
  after(async () => {
    await t?.close();
    await dns?.close();
  });

  /** A message from a sender of its own, so that this test's counts are its own. */
  const message = (sender: string, extra: Record<string, unknown> = {}) => ({
    from: `${sender}@batch.test`,
    to: ['someone@remote.test'],
    subject: 'Hello',
    text: 'Hello there',
    ...extra,
  });
  const batch = (messages: unknown[], as: Org = org) =>
    t.call('POST', '/v1/messages/send/batch', { token: as.token, body: { messages } });

  test('each message is checked and answered on its own; the valid ones are queued', async () => {
    const other = await newOrg(t);
    const res = await batch([
      message('mixed1'),
      message('mixed2', { to: ['not an address'] }),
      message('mixed3', { attachments: [{ filename: 'a.txt', content: '***' }] }),
      message('mixed4', { from: 'mixed@foreign.test' }),
      { subject: 'no sender, no body' },
      message('mixed5', { cc: ['copy@remote.test'], html: '<p>Hi</p>' }),
    ]);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(
      res.body.items.map((i: any) => [i.index, i.status]),
      [
        [0, 202],
        [1, 422],
        [2, 422],
        [3, 422],
        [4, 400],
        [5, 202],
      ],
    );
    assert.deepEqual([res.body.queued, res.body.repeated, res.body.refused], [2, 0, 4]);
    const [first, , attachment, foreign, incomplete, last] = res.body.items;
    assert.match(attachment.problem.detail, /base64/);
    assert.match(foreign.problem.detail, /verified domain/);
    assert.deepEqual(incomplete.problem.errors.map((e: any) => e.field).sort(), ['messages.4.from']);
    assert.equal(first.result.status, 'queued');
    assert.deepEqual(last.result.recipients.map((r: any) => r.address).sort(), [
      'copy@remote.test',
      'someone@remote.test',
    ]);
    for (const item of [first, last]) {
      const stored = await t.call('GET', `/v1/messages/${item.result.id}`, { token: org.token });
      assert.equal(stored.status, 200);
      assert.equal(stored.body.direction, 'outbound');
      assert.equal(stored.body.message_id_header, item.result.message_id);
    }
    const queued = (await eventsOf(t, org, 'message.queued')).map((e) => e.data.message_id);
    assert.ok(queued.includes(first.result.id) && queued.includes(last.result.id));
    // Another organisation cannot send as this one's domain, whatever it batches.
    const theirs = await batch([message('mixed6')], other);
    assert.equal(theirs.body.items[0].status, 422);
  });

  test('an idempotency key per message: a repeated message sends nothing more', async () => {
    const messages = [
      { ...message('idem1'), idempotency_key: 'order-1' },
      { ...message('idem2'), idempotency_key: 'order-2' },
      message('idem3'),
    ];
    const first = await batch(messages);
    assert.deepEqual(
      first.body.items.map((i: any) => i.status),
      [202, 202, 202],
    );
    const again = await batch([
      ...messages,
      { ...message('idem1', { text: 'changed' }), idempotency_key: 'order-2' },
    ]);
    assert.deepEqual(
      again.body.items.map((i: any) => i.status),
      [200, 200, 202, 422],
    );
    assert.equal(again.body.items[0].result.id, first.body.items[0].result.id);
    assert.equal(again.body.items[1].result.id, first.body.items[1].result.id);
    assert.notEqual(again.body.items[2].result.id, first.body.items[2].result.id);
    assert.equal(again.body.items[3].problem.code, 'idempotency_key_reused');
    // Twice in one batch: the second is the first's repetition.
    const twice = await batch([
      { ...message('idem4'), idempotency_key: 'order-3' },
      { ...message('idem4'), idempotency_key: 'order-3' },
    ]);
    assert.deepEqual(
      twice.body.items.map((i: any) => i.status),
      [202, 200],
    );
    assert.equal(twice.body.items[1].result.id, twice.body.items[0].result.id);
    // The single-message endpoint shares the keys.
    const single = await t.call('POST', '/v1/messages/send', {
      token: org.token,
      body: message('idem1'),
      headers: { 'idempotency-key': 'order-1' },
    });
    assert.equal(single.status, 200);
    assert.equal(single.body.id, first.body.items[0].result.id);
  });

  test('the request itself is limited: 1 to 500 messages, each within the size limit', async () => {
    assert.equal((await batch([])).status, 400);
    const tooMany = await batch(Array.from({ length: 501 }, () => message('many')));
    assert.equal(tooMany.status, 400);
    assert.match(tooMany.body.detail, /500/);
    const notAList = await t.call('POST', '/v1/messages/send/batch', {
      token: org.token,
      body: { messages: 'all of them' },
    });
    assert.equal(notAList.status, 400);
    const big = await batch([message('big', { text: 'x'.repeat(300_000) }), message('small')]);
    assert.deepEqual(
      big.body.items.map((i: any) => i.status),
      [413, 202],
    );
    assert.equal(big.body.items[0].problem.code, 'message_too_large');
  });

  test('every queued message has its audit entry, written with it', async () => {
    const res = await batch([message('audit1'), message('audit2', { to: [] }), message('audit3')]);
    const ids = res.body.items.filter((i: any) => i.status === 202).map((i: any) => i.result.id);
    assert.equal(ids.length, 2);
    const log = await t.call('GET', `/v1/organizations/${org.orgId}/audit-log?page_size=100`, {
      token: org.token,
    });
    for (const id of ids) {
      const entries = log.body.items.filter((e: any) => e.target_id === id);
      assert.deepEqual(
        entries.map((e: any) => [e.action, e.status]),
        [['message.send', 202]],
        `one entry for ${id}`,
      );
    }
  });

  test('send counts: held past the limit, given back when queued recipients are cancelled', async () => {
    const send = async (n: number) => {
      const res = await t.call('POST', '/v1/messages/send', {
        token: org.token,
        body: message('counted', { subject: `counted ${n}` }),
      });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      return res.body;
    };
    // The limit is 3 recipients a day for this sender.
    const sent = [await send(1), await send(2), await send(3)];
    assert.deepEqual(
      sent.map((s) => s.status),
      ['queued', 'queued', 'queued'],
    );
    const over = await send(4);
    assert.equal(over.status, 'held');
    assert.equal(over.recipients[0].hold_reason, 'mailbox_daily_limit');
    for (const s of sent.slice(0, 2)) {
      const cancelled = await t.call('POST', '/v1/queue/cancel', {
        token: org.token,
        body: { message_id: s.id },
      });
      assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
    }
    // Two counts came back: two more go out, the next is held again.
    assert.deepEqual(
      [(await send(5)).status, (await send(6)).status, (await send(7)).status],
      ['queued', 'queued', 'held'],
    );
    // Cancelling a held recipient gives back nothing (it was never counted).
    await t.call('POST', '/v1/queue/cancel', { token: org.token, body: { message_id: over.id } });
    assert.equal((await send(8)).status, 'held');
  });

  test('two requests racing with one key send once and count once', async () => {
    const body = message('race', { subject: 'raced' });
    const headers = { 'idempotency-key': 'race-1' };
    const [a, b] = await Promise.all([
      t.call('POST', '/v1/messages/send', { token: org.token, body, headers }),
      t.call('POST', '/v1/messages/send', { token: org.token, body, headers }),
    ]);
    assert.deepEqual([a.status, b.status].sort(), [200, 202]);
    assert.equal(a.body.id, b.body.id);
    // One count taken: two more recipients fit in the day's three.
    const more = [];
    for (let i = 0; i < 3; i++) {
      const res = await t.call('POST', '/v1/messages/send', {
        token: org.token,
        body: message('race', { subject: `after race ${i}` }),
      });
      more.push(res.body.status);
    }
    assert.deepEqual(more, ['queued', 'queued', 'held']);
  });
});
