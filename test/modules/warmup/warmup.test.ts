// Warmup through the public surface: a pool of hosted mailboxes on two domains warms itself for a
// simulated week on a ManualClock (ticks of the engine stand for the minutes that pass), mail flowing
// through the real send API, delivery queue and MX pipeline; and an external account on a private
// Dovecot whose Sieve files warmup mail into Junk, rescued over IMAP.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ImapFlow } from 'imapflow';
import { ManualClock } from '../../../src/core/clock.ts';
import { DEFAULT_POLICY } from '../../../src/modules/health/policy.ts';
import { localTime, nextLocalMidnight, zonedInstant } from '../../../src/core/zoned-time.ts';
import { render } from '../../../src/modules/warmup/content.ts';
import { engine, eventsOf, type Org, orgMaker, startTestApp, type TestApp } from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';
import { DOVECOT_MISSING, type Dovecot, sieveAvailable, startDovecot } from '../../support/dovecot.ts';
import { type SmtpSink, startSmtpSink } from '../../support/smtp-sink.ts';
import { sendMail } from '../../support/smtp.ts';
import { until } from '../../support/until.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** A Monday, 00:00 UTC. */
const WEEK_START = Date.parse('2026-12-07T00:00:00Z');
const RAMP = { start: 2, increase: 1, target: 4, days: 3 };
/** The default auto-repair policy, without DNS publishing or mail (this suite has no DNS provider). */
const POLICY = { ...DEFAULT_POLICY, republish_dns: false, notify_email: false };
const EVERY_DAY = { weekdays: [0, 1, 2, 3, 4, 5, 6], start_hour: 8, end_hour: 18, time_zone: 'UTC' };

describe(`warmup on ${engine}`, () => {
  const freshOrg = orgMaker('warmup');
  const clock = new ManualClock(WEEK_START);
  let t: TestApp;
  let dns: TestDnsServer;
  let org: Org;
  let outside: SmtpSink;
  let dovecot: Dovecot | null = null;
  const delivered: string[] = [];

  const api = (method: string, url: string, body?: unknown, as: Org = org) =>
    t.call(method, url, { token: as.token, body });
  const tick = () => t.app.services.warmup.tick();
  const mailbox = async (as: Org, address: string, extra: Record<string, unknown> = {}) => {
    const res = await api('POST', '/v1/mailboxes', { address, ...extra }, as);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.id as string;
  };
  const stats = async (id: string, as: Org = org) => {
    const res = await api('GET', `/v1/warmup/${id}/stats?from=2026-12-01&to=2026-12-31`, undefined, as);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body;
  };
  const messagesOf = async (id: string, as: Org = org) => {
    const all: any[] = [];
    for (let page = 1; ; page++) {
      const res = await api('GET', `/v1/warmup/${id}/messages?page_size=200&page=${page}`, undefined, as);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      all.push(...res.body.items);
      if (page >= res.body.total_pages) return all;
    }
  };
  /** Ticks until every message sent so far has been found by its recipient (mail takes a moment to land). */
  const settle = async (ids: string[], as: Org = org) => {
    await until(
      async () => {
        await tick();
        const totals = await Promise.all(ids.map(async (id) => (await stats(id, as)).totals));
        return totals.map((s: any) => s.sent - s.received - s.missing);
      },
      (pending) => pending.every((n) => n === 0),
      30_000,
    );
  };

  before(async () => {
    dns = await startDnsServer();
    // The outside provider's MX: hands each message to Dovecot's delivery agent, whose Sieve files it.
    outside = await startSmtpSink({
      onMessage: async (message) => {
        if (!dovecot) throw new Error('no mailbox server');
        for (const rcpt of message.rcptTo) await dovecot.deliverWithSieve(rcpt, message.raw);
        delivered.push(...message.rcptTo);
      },
    });
    t = await startTestApp({
      workers: true,
      smtp: true,
      clock,
      env: {
        MAILROOM_HOSTNAME: 'mx.warm-a.test',
        MAILROOM_DNS_SERVERS: dns.address,
        MAILROOM_OUTBOUND_PORT: String(outside.port),
      },
    });
    org = await freshOrg(t);
  });
  after(async () => {
    await t?.close();
    await dovecot?.stop();
    await outside?.close();
    await dns?.close();
  });

  test('enrolment: validation, one pool per organisation, the shared pool only when the installation allows it', async () => {
    const other = await freshOrg(t);
    await verifiedDomain(t, other.token, 'warm-other.test', [dns]);
    const id = await mailbox(other, 'solo@warm-other.test');
    const refused = async (body: unknown, status: number, as: Org = other) => {
      const res = await api('POST', '/v1/warmup', body, as);
      assert.equal(res.status, status, JSON.stringify(res.body));
      return res.body;
    };
    await refused({}, 422);
    await refused({ mailbox_id: 'nope' }, 400);
    await refused({ mailbox_id: id, schedule: { time_zone: 'Mars/Olympus' } }, 422);
    await refused({ mailbox_id: id, schedule: { start_hour: 18, end_hour: 8 } }, 422);
    await refused({ mailbox_id: id, ramp: { start: 10, increase: 1, target: 5, days: 3 } }, 422);
    await refused({ mailbox_id: id, account_id: id }, 422);
    await refused({ mailbox_id: id, reply_rate: 2 }, 400);
    assert.equal((await refused({ mailbox_id: id, pool: 'shared' }, 409)).code, 'shared_pool_off');
    // Another organisation's mailbox is not found.
    await refused({ mailbox_id: id }, 404, org);

    const enrolled = await api('POST', '/v1/warmup', { mailbox_id: id, ramp: 'slow' }, other);
    assert.equal(enrolled.status, 201, JSON.stringify(enrolled.body));
    assert.equal(enrolled.body.daily_quota, 2);
    assert.equal(enrolled.body.ramp.curve, 'slow');
    assert.deepEqual(enrolled.body.schedule, {
      weekdays: [1, 2, 3, 4, 5],
      start_hour: 8,
      end_hour: 18,
      time_zone: 'UTC',
    });
    await refused({ mailbox_id: id }, 409);
    assert.equal((await api('GET', `/v1/warmup/${id}`)).status, 404, 'invisible to other organisations');
    assert.equal((await api('GET', `/v1/warmup/${id}/stats`)).status, 404);
    assert.equal((await eventsOf(t, other, 'warmup.enrolled')).length, 1);

    // Alone in its pool it has no one to write to: its day passes with nothing planned.
    clock.set(WEEK_START + 8 * HOUR);
    await tick();
    assert.equal((await messagesOf(id, other)).length, 0);
    assert.equal((await api('DELETE', `/v1/warmup/${id}`, undefined, other)).status, 204);
    assert.equal((await api('GET', `/v1/warmup/${id}`, undefined, other)).status, 404);
  });

  test('local days: a zone whose DST change skips midnight, and a runaway template, are handled', () => {
    // Chile moved its clocks from 00:00 to 01:00 on 2025-09-07: that day begins at 01:00.
    const santiago = nextLocalMidnight(new Date('2025-09-06T20:00:00Z'), 'America/Santiago');
    assert.deepEqual(localTime(santiago, 'America/Santiago'), {
      date: '2025-09-07',
      weekday: 0,
      hour: 1,
      minute: 0,
      minutes: 60,
    });
    assert.ok(
      nextLocalMidnight(santiago, 'America/Santiago') > santiago,
      'the next day, not the same instant',
    );
    assert.equal(
      zonedInstant('2026-12-07', 8 * 60, 'Asia/Kolkata').toISOString(),
      '2026-12-07T02:30:00.000Z',
    );
    assert.equal(
      localTime(zonedInstant('2026-03-29', 2 * 60 + 30, 'Europe/Berlin'), 'Europe/Berlin').hour,
      3,
    );
    const people = { first_name: 'A', name: 'A', address: 'a@x.test' };
    assert.throws(() =>
      render('{% for a in (1..100000000) %}{% for b in (1..1000) %}x{% endfor %}{% endfor %}', {
        sender: people,
        recipient: people,
        weekday: 'Monday',
      }),
    );
  });

  test('templates: spintax and Liquid are checked when saved', async () => {
    const bad = await api('POST', '/v1/warmup/templates', {
      kind: 'opening',
      subject: 'Hi {there',
      body: 'x',
    });
    assert.equal(bad.status, 422, JSON.stringify(bad.body));
    const badLiquid = await api('POST', '/v1/warmup/templates', {
      kind: 'reply',
      body: 'Hi {{ recipient.first_name | nosuchfilter }}',
    });
    assert.equal(badLiquid.status, 422, JSON.stringify(badLiquid.body));
    // A template cannot read the server's files.
    for (const tag of [
      "{% include 'package.json' %}",
      "{% render 'package.json' %}",
      "{% layout 'package.json' %}",
    ]) {
      const reading = await api('POST', '/v1/warmup/templates', { kind: 'reply', body: `Hi ${tag}` });
      assert.equal(reading.status, 422, JSON.stringify(reading.body));
    }
    const ok = await api('POST', '/v1/warmup/templates', {
      kind: 'reply',
      body: '{Thanks|Thank you} {{ recipient.first_name }}, {sounds good|works for me}.\n\n{{ sender.first_name }}',
    });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    assert.equal((await api('GET', '/v1/warmup/templates')).body.items.length, 1);
  });

  test('a pool of four mailboxes on two domains warms itself for a simulated week', async () => {
    await verifiedDomain(t, org.token, 'warm-a.test', [dns]);
    const domainB = await verifiedDomain(t, org.token, 'warm-b.test', [dns]);
    const a1 = await mailbox(org, 'anna@warm-a.test');
    const a2 = await mailbox(org, 'arno@warm-a.test');
    const b1 = await mailbox(org, 'bea@warm-b.test');
    const b2 = await mailbox(org, 'ben@warm-b.test');
    const ids = [a1, a2, b1, b2];
    // Bea's provider files everything from warm-a.test as spam: warmup must rescue it.
    const rule = await api('POST', '/v1/rules', {
      domain_id: domainB.id,
      name: 'warm-a is spam',
      recipient: 'bea',
      conditions: [{ field: 'sender_domain', op: 'equals', value: 'warm-a.test' }],
      action: 'store',
      folder: 'Junk',
    });
    assert.equal(rule.status, 201, JSON.stringify(rule.body));
    // Health would rightly pause warm-a for its spam placement; this week is about the ramp itself (the
    // health test below is about that).
    const policy = await api('PUT', '/v1/health/policy', { ...POLICY, enabled: false });
    assert.equal(policy.status, 200, JSON.stringify(policy.body));

    clock.set(WEEK_START + 7 * HOUR);
    for (const id of ids) {
      const res = await api('POST', '/v1/warmup', {
        mailbox_id: id,
        ramp: RAMP,
        schedule: EVERY_DAY,
        reply_rate: 0.5,
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }

    for (let day = 0; day < 7; day++) {
      for (const hour of [8, 11, 14, 17, 18, 20, 23]) {
        clock.set(WEEK_START + day * DAY + hour * HOUR);
        await tick();
        await settle(ids);
        if (day === 1 && hour === 11) {
          // Paused and resumed mid-day: the rest of today's quota is planned again, the ramp keeps its day.
          assert.equal((await api('POST', `/v1/warmup/${a1}/pause`)).status, 200);
          assert.equal((await api('POST', `/v1/warmup/${a1}/resume`)).status, 200);
          await tick();
        }
      }
    }
    const end = clock.now().getTime();

    // Openings follow the ramp day by day (2, 3, then the target 4); replies come on top.
    const quotas = [
      '2026-12-07',
      '2026-12-08',
      '2026-12-09',
      '2026-12-10',
      '2026-12-11',
      '2026-12-12',
      '2026-12-13',
    ];
    for (const id of ids) {
      const s = await stats(id);
      assert.deepEqual(
        s.by_day.map((d: any) => [d.day, d.sent - d.replies_sent, d.failed]),
        quotas.map((day, i) => [day, Math.min(4, 2 + i), 0]),
        `${id} follows the ramp`,
      );
      assert.equal(s.totals.missing, 0);
      const view = await api('GET', `/v1/warmup/${id}`);
      assert.equal(view.body.warm_day, 7);
      assert.equal(view.body.phase, 'maintaining');
    }
    // Everything from warm-a to Bea landed in spam and was rescued; nothing else did.
    const fromA = [await stats(a1), await stats(a2)];
    const toBea = (await messagesOf(b1)).filter((m) => m.direction === 'received' && m.depth === 0);
    const spam = fromA.reduce((n, s) => n + s.totals.spam, 0);
    const fromAToBea = toBea.filter((m) => m.placement === 'spam');
    assert.ok(spam > 0, 'warm-a wrote to Bea');
    assert.equal(
      fromA.reduce((n, s) => n + s.totals.rescued, 0),
      spam,
    );
    assert.ok(fromAToBea.every((m) => m.rescued));
    assert.equal((await stats(b2)).totals.spam, 0);
    assert.equal((await eventsOf(t, org, 'warmup.rescued')).length >= spam, true);
    // Health reads the placement: Anna's spam rate is a finding of hers (Ben's mail is fine).
    const annaHealth = await api('POST', `/v1/health/mailboxes/${a1}/check`, {});
    assert.equal(annaHealth.status, 200, JSON.stringify(annaHealth.body));
    const spamFinding = annaHealth.body.findings.find((f: any) => f.code.startsWith('warmup.spam_rate'));
    assert.ok(spamFinding, JSON.stringify(annaHealth.body.findings));
    assert.ok(spamFinding.evidence.spam >= 7);
    assert.ok(annaHealth.body.score < 100);
    const benHealth = await api('POST', `/v1/health/mailboxes/${b2}/check`, {});
    assert.equal(
      benHealth.body.findings.some((f: any) => f.code.startsWith('warmup.')),
      false,
    );
    const beaFolders = (await api('GET', `/v1/mailboxes/${b1}/folders`)).body.items;
    assert.equal(beaFolders.find((f: any) => f.name === 'Junk').messages, 0, 'Junk is empty again');

    // Replies thread: each carries In-Reply-To and References naming what it answers.
    const annaMessages = await messagesOf(a1);
    const byId = new Map<string, any>();
    for (const id of ids) for (const m of await messagesOf(id)) byId.set(m.id, m);
    const replies = [...byId.values()].filter((m) => m.parent_id && m.status === 'sent');
    assert.ok(replies.length > 0, 'some mail was answered');
    assert.ok(
      replies.some((m) => m.depth === 2),
      'some answers were answered',
    );
    for (const id of ids) {
      const inbound = (await api('GET', `/v1/messages?mailbox_id=${id}&direction=inbound&page_size=200`)).body
        .items;
      for (const reply of (await messagesOf(id)).filter(
        // A reply still planned when Anna paused was cancelled with the rest of her plan.
        (m) => m.direction === 'received' && m.parent_id && m.status === 'sent',
      )) {
        const parent = byId.get(reply.parent_id);
        assert.equal(reply.thread_id, parent.thread_id);
        assert.equal(reply.subject, /^Re:/.test(parent.subject) ? parent.subject : `Re: ${parent.subject}`);
        const copy = inbound.find((m: any) => m.message_id_header === reply.message_id);
        assert.ok(copy, 'the reply was delivered');
        assert.equal(copy.in_reply_to, parent.message_id);
        assert.ok(copy.references.includes(parent.message_id));
        assert.equal(
          copy.thread_id,
          inbound.find((m: any) => m.message_id_header === parent.message_id)?.thread_id ?? copy.thread_id,
        );
      }
    }
    // Received mail was read and, after its hours in the inbox, archived.
    const received = annaMessages.filter((m) => m.direction === 'received');
    assert.ok(received.length > 0);
    for (const m of received) {
      assert.ok(m.received_at, 'found');
      if (Date.parse(m.received_at) < end - 8 * HOUR) assert.ok(m.archived_at, `${m.id} archived`);
    }
    const annaFolders = (await api('GET', `/v1/mailboxes/${a1}/folders`)).body.items;
    const archive = annaFolders.find((f: any) => f.name === 'Archive');
    const inbox = annaFolders.find((f: any) => f.name === 'INBOX');
    assert.equal(archive.messages, received.filter((m) => m.archived_at).length);
    assert.equal(inbox.messages, received.length - archive.messages);
    assert.equal(inbox.unseen, 0, 'warmup mail is read');

    // Pausing stops the next day's openings; receiving and answering go on; resuming starts again.
    assert.equal((await api('POST', `/v1/warmup/${a2}/pause`)).body.status, 'paused');
    clock.set(WEEK_START + 7 * DAY + 12 * HOUR);
    await tick();
    await settle(ids);
    const monday = (await stats(a2)).by_day.find((d: any) => d.day === '2026-12-14');
    assert.equal(monday ? monday.sent - monday.replies_sent : 0, 0, 'nothing opened while paused');
    assert.equal((await eventsOf(t, org, 'warmup.paused'))[0].data.reason, 'manual');
    const resumed = await api('POST', `/v1/warmup/${a2}/resume`);
    assert.equal(resumed.body.status, 'active');
    await tick();
    clock.set(WEEK_START + 7 * DAY + 17 * HOUR + 59 * 60_000);
    await tick();
    await settle(ids);
    const after = (await stats(a2)).by_day.find((d: any) => d.day === '2026-12-14');
    assert.equal(after.sent - after.replies_sent, 4, 'resumed: the day is planned afresh');
  });

  test('health drives warmup: a paused sender pauses its warmup, a slowed one sends half its ramp', async () => {
    const owner = await freshOrg(t);
    const domain = await verifiedDomain(t, owner.token, 'warm-health.test', [dns]);
    const as = (method: string, url: string, body?: unknown) => api(method, url, body, owner);
    const ids: string[] = [];
    for (const local of ['hana', 'hugo']) {
      const id = await mailbox(owner, `${local}@warm-health.test`);
      const res = await as('POST', '/v1/warmup', {
        mailbox_id: id,
        ramp: { start: 10, increase: 0, target: 10, days: 1 },
        schedule: EVERY_DAY,
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      ids.push(id);
    }
    const [hana, hugo] = ids;
    const view = async (id: string) => (await as('GET', `/v1/warmup/${id}`)).body;

    // A person pauses Hugo's warmup; then health pauses both senders.
    assert.equal((await as('POST', `/v1/warmup/${hugo}/pause`)).status, 200);
    const paused = await as('POST', `/v1/health/mailboxes/${hana}/pause`, {});
    assert.equal(paused.status, 201, JSON.stringify(paused.body));
    assert.equal((await view(hana)).status, 'paused');
    assert.equal((await view(hana)).paused_reason, 'health');
    const pausedEvents = await eventsOf(t, owner, 'warmup.paused');
    assert.deepEqual(pausedEvents.map((e) => e.data.reason).sort(), ['health', 'manual']);
    // Resuming the sender resumes the warmup health paused, not the one a person paused.
    assert.equal((await as('POST', `/v1/health/mailboxes/${hana}/resume`, {})).status, 200);
    assert.equal((await view(hana)).status, 'active');
    assert.equal((await view(hugo)).status, 'paused');
    assert.equal((await view(hugo)).paused_reason, 'manual');
    assert.equal((await as('POST', `/v1/warmup/${hugo}/resume`)).status, 200);

    // The domain loses its DMARC record: below the policy's slow-down threshold, its mailboxes' warmup
    // runs at half its ramp; undoing the action restores it.
    assert.equal(
      (await as('PUT', '/v1/health/policy', { ...POLICY, pause_below: 0, slow_warmup_below: 95 })).status,
      200,
    );
    dns.delete(`_dmarc.${domain.name}`);
    assert.equal((await as('POST', `/v1/health/domains/${domain.id}/check`, {})).status, 200);
    await until(
      () => view(hana),
      (v) => v.slowed === true,
      30_000,
    );
    assert.equal((await view(hana)).daily_quota, 5);
    assert.equal((await view(hugo)).slowed, true);
    const actions = (await as('GET', '/v1/health/actions')).body.items;
    const slow = actions.find((a: any) => a.action === 'slow_warmup' && a.state === 'applied');
    assert.ok(slow, JSON.stringify(actions));
    assert.equal(
      (await as('POST', `/v1/health/actions/${slow.id}/undo`, { reason: 'fixed by hand' })).status,
      200,
    );
    assert.equal((await view(hana)).slowed, false);
    assert.equal((await view(hana)).daily_quota, 10);
  });

  test('spam rescue over IMAP: Dovecot with a Sieve rule that files warmup mail into Junk', async (ctx) => {
    if (!sieveAvailable()) {
      if (process.env.CI === 'true') throw new Error('dovecot-sieve is not installed');
      return ctx.skip(
        'dovecot-sieve is not installed (Debian package dovecot-sieve, which .ci/run installs)',
      );
    }
    dovecot = await startDovecot({
      sieveBefore: 'require "fileinto";\nif exists "X-Entity-Ref-ID" {\n  fileinto "Junk";\n  stop;\n}\n',
    });
    if (!dovecot) return ctx.skip(DOVECOT_MISSING);
    const sender = await freshOrg(t);
    await verifiedDomain(t, sender.token, 'warm-c.test', [dns]);
    dns.set('outside-provider.test', { MX: [{ exchange: 'mx.outside-provider.test', priority: 10 }] });
    dns.set('mx.outside-provider.test', { A: ['127.0.0.1'] });
    const user = 'olga@outside-provider.test';
    await dovecot.addUser(user, 'olga password');
    // The account's provider relays what it submits to the recipient's MX: this installation's.
    const submission = await startSmtpSink({
      passwords: { [user]: 'olga password' },
      onMessage: async (message) => {
        await sendMail(t.smtpPort, {
          from: message.mailFrom,
          to: message.rcptTo,
          envelope: { from: message.mailFrom, to: message.rcptTo },
          raw: message.raw,
        });
      },
    });
    try {
      const hosted = await mailbox(sender, 'carl@warm-c.test');
      const account = await api(
        'POST',
        '/v1/accounts',
        {
          address: user,
          password: 'olga password',
          imap: { host: '127.0.0.1', port: dovecot.imapPort, security: 'none' },
          smtp: { host: '127.0.0.1', port: submission.port, security: 'none' },
        },
        sender,
      );
      assert.equal(account.status, 201, JSON.stringify(account.body));
      const accountId = account.body.id as string;
      clock.set(WEEK_START + 14 * DAY + 7 * HOUR);
      for (const body of [
        {
          mailbox_id: hosted,
          ramp: { start: 3, increase: 0, target: 3, days: 1 },
          schedule: EVERY_DAY,
          reply_rate: 1,
        },
        {
          account_id: accountId,
          ramp: { start: 1, increase: 0, target: 1, days: 1 },
          schedule: EVERY_DAY,
          reply_rate: 0,
        },
      ]) {
        const res = await api('POST', '/v1/warmup', body, sender);
        assert.equal(res.status, 201, JSON.stringify(res.body));
      }
      clock.set(WEEK_START + 14 * DAY + 8 * HOUR);
      await tick();
      clock.set(WEEK_START + 14 * DAY + 18 * HOUR);
      await tick();
      await until(
        async () => delivered.length,
        (n) => n >= 3,
        30_000,
      );
      await settle([hosted, accountId], sender);

      const s = await stats(hosted, sender);
      assert.equal(s.totals.sent - s.totals.replies_sent, 3);
      assert.equal(s.totals.spam, 3, 'Sieve filed every one into Junk');
      assert.equal(s.totals.rescued, 3);
      assert.equal(s.by_provider[0].provider, 'other');
      // The account's own opening reached the hosted mailbox's inbox, which answers everything: the
      // answer goes to the outside provider, into Junk, and is rescued too.
      const accountSent = await stats(accountId, sender);
      assert.equal(accountSent.totals.sent, 1);
      assert.equal(accountSent.totals.inbox, 1);
      clock.set(WEEK_START + 14 * DAY + 20 * HOUR);
      await tick();
      await settle([hosted, accountId], sender);
      const answered = await stats(hosted, sender);
      assert.equal(answered.totals.replies_sent, 1);
      assert.equal(answered.totals.rescued, 4);
      // On the server: out of Junk, in the INBOX, read.
      const client = new ImapFlow({
        host: '127.0.0.1',
        port: dovecot.imapPort,
        secure: false,
        doSTARTTLS: false,
        auth: { user, pass: 'olga password' },
        logger: false,
      });
      await client.connect();
      try {
        const junk = await client.status('Junk', { messages: true });
        assert.ok(junk);
        assert.equal(junk.messages, 0);
        const lock = await client.getMailboxLock('INBOX');
        try {
          const seen = [];
          for await (const m of client.fetch('1:*', { flags: true, envelope: true }))
            seen.push(m.flags?.has('\\Seen'));
          assert.equal(seen.length, 4);
          assert.ok(seen.every(Boolean));
        } finally {
          lock.release();
        }
      } finally {
        await client.logout();
      }
      // The account sent through its own SMTP server, with the token.
      assert.equal(submission.messages.length, 1);
      assert.match(submission.messages[0].raw.toString(), /X-Entity-Ref-ID: /);
      const rescued = await eventsOf(t, sender, 'warmup.rescued');
      assert.equal(rescued.length, 4);
      assert.equal(rescued[0].data.account_id, accountId);
    } finally {
      await submission.close();
    }
  });
});

describe(`the shared warmup pool on ${engine}`, () => {
  const freshOrg = orgMaker('shared-warmup');
  const clock = new ManualClock(WEEK_START);
  let t: TestApp;
  let dns: TestDnsServer;

  before(async () => {
    dns = await startDnsServer();
    t = await startTestApp({
      workers: true,
      clock,
      env: {
        MAILROOM_HOSTNAME: 'mx.shared-one.test',
        MAILROOM_DNS_SERVERS: dns.address,
        MAILROOM_WARMUP_SHARED_POOL: 'true',
      },
    });
  });
  after(async () => {
    await t?.close();
    await dns?.close();
  });

  test('organisations that opt in write to each other; their own pools stay their own', async () => {
    const enrol = async (org: Org, domain: string, local: string, pool: 'shared' | 'organization') => {
      const box = await t.call('POST', '/v1/mailboxes', {
        token: org.token,
        body: { address: `${local}@${domain}` },
      });
      assert.equal(box.status, 201, JSON.stringify(box.body));
      const res = await t.call('POST', '/v1/warmup', {
        token: org.token,
        body: {
          mailbox_id: box.body.id,
          pool,
          ramp: { start: 2, increase: 0, target: 2, days: 1 },
          schedule: EVERY_DAY,
          reply_rate: 0,
        },
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return box.body.id as string;
    };
    const one = await freshOrg(t);
    const two = await freshOrg(t);
    await verifiedDomain(t, one.token, 'shared-one.test', [dns]);
    await verifiedDomain(t, two.token, 'shared-two.test', [dns]);
    const oneShared = await enrol(one, 'shared-one.test', 'ola', 'shared');
    const twoShared = await enrol(two, 'shared-two.test', 'tom', 'shared');
    // Alone in its organisation's pool: it has no partner (the shared members are not in its pool).
    const onePrivate = await enrol(one, 'shared-one.test', 'pia', 'organization');

    clock.set(WEEK_START + 8 * HOUR);
    await t.app.services.warmup.tick();
    clock.set(WEEK_START + 18 * HOUR - 60_000);
    await t.app.services.warmup.tick();
    const received = async (org: Org, id: string) =>
      (await t.call('GET', `/v1/warmup/${id}/messages`, { token: org.token })).body.items.filter(
        (m: any) => m.direction === 'received' && m.received_at,
      );
    await until(
      async () => {
        await t.app.services.warmup.tick();
        return [(await received(one, oneShared)).length, (await received(two, twoShared)).length];
      },
      ([a, b]) => a === 2 && b === 2,
      30_000,
    );
    assert.equal(
      (await t.call('GET', `/v1/warmup/${onePrivate}/messages`, { token: one.token })).body.total,
      0,
    );
    // Tom leaves warmup: what Ola sent him stays in Ola's statistics.
    const before = (await t.call('GET', `/v1/warmup/${oneShared}/stats`, { token: one.token })).body.totals;
    assert.ok(before.sent >= 2);
    assert.equal((await t.call('DELETE', `/v1/warmup/${twoShared}`, { token: two.token })).status, 204);
    const after = (await t.call('GET', `/v1/warmup/${oneShared}/stats`, { token: one.token })).body.totals;
    assert.equal(after.sent, before.sent);
    // Each side sees its own enrolment only.
    assert.equal((await t.call('GET', `/v1/warmup/${oneShared}`, { token: two.token })).status, 404);
  });
});
