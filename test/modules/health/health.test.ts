// Health scores and auto-repair through the public surface: DNS records served by a loopback DNS server
// (and, for automated domains, by the local Cloudflare API server), blocklist answers from the same DNS
// server, mail sent through the queue to an SMTP sink (bounces are its 5xx answers), and the policy's
// repairs (pause and resume with held mail, DNS published again, DKIM rotated) seen in the API, the
// events, a webhook, the notification email and the sink.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../../src/core/clock.ts';
import { engine, eventsOf, orgMaker, startTestApp, type Org, type TestApp } from '../../support/app.ts';
import { type CloudflareServer, servedBy, startCloudflareServer } from '../../support/cloudflare-server.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { publish, requiredRecords, verifiedDomain } from '../../support/domains.ts';
import { startSmtpSink, type SmtpSink } from '../../support/smtp-sink.ts';
import { until } from '../../support/until.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../../support/webhook-receiver.ts';

const HOST = 'mx.mailroom.test';
const LISTED_IP = '192.0.2.20';

describe(`health on ${engine}`, () => {
  let t: TestApp;
  let dns: TestDnsServer;
  let cf: CloudflareServer;
  let sink: SmtpSink;
  let receiver: WebhookReceiver;
  const clock = new ManualClock();
  const newOrg = orgMaker('health');

  before(async () => {
    cf = await startCloudflareServer();
    dns = await startDnsServer({}, servedBy(cf));
    sink = await startSmtpSink();
    receiver = await startWebhookReceiver();
    dns.set('remote.test', { MX: [{ exchange: 'mx.remote.test', priority: 10 }] });
    dns.set('mx.remote.test', { A: ['127.0.0.1'] });
    dns.set('receiver.test', { A: ['127.0.0.1'] });
    // Blocklist answers: the API IP on Spamhaus ZEN (SBL), listed.test on the DBL.
    dns.set(`${LISTED_IP.split('.').reverse().join('.')}.zen.spamhaus.org`, { A: ['127.0.0.2'] });
    dns.set('listed.test.dbl.spamhaus.org', { A: ['127.0.1.2'] });
    t = await startTestApp({
      workers: true,
      clock,
      env: {
        MAILROOM_HOSTNAME: HOST,
        MAILROOM_DNS_SERVERS: dns.address,
        MAILROOM_DNS_TIMEOUT: '500ms',
        MAILROOM_DNS_TRIES: '1',
        MAILROOM_INBOUND_DNS_CACHE: '1ms',
        MAILROOM_OUTBOUND_PORT: String(sink.port),
        MAILROOM_OUTBOUND_RETRY_SCHEDULE: '1s,2s',
        MAILROOM_OUTBOUND_CONNECT_TIMEOUT: '2s',
        MAILROOM_CLOUDFLARE_API_URL: cf.baseURL,
        MAILROOM_PROVIDER_TIMEOUT: '5s',
        MAILROOM_BLOCKLISTS_TIMEOUT: '300ms',
        MAILROOM_WEBHOOK_ALLOW_HOSTS: 'receiver.test',
        MAILROOM_HEALTH_MIN_SAMPLE: '4',
        MAILROOM_HEALTH_BULK_DAILY: '8',
        MAILROOM_HEALTH_TRIGGER_DELAY: '50ms',
      },
    });
  });
  after(async () => {
    await t?.close();
    await receiver?.close();
    await sink?.close();
    await dns?.close();
    await cf?.close();
  });

  const api = (org: Org, method: string, url: string, body?: unknown) =>
    t.call(method, url, { token: org.token, body });
  const ok = async (org: Org, method: string, url: string, body?: unknown, status = 200) => {
    const res = await api(org, method, url, body);
    assert.equal(res.status, status, `${method} ${url}: ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const plural = (kind: 'domain' | 'mailbox') => (kind === 'domain' ? 'domains' : 'mailboxes');
  const detail = (org: Org, kind: 'domain' | 'mailbox', id: string) =>
    ok(org, 'GET', `/v1/health/${plural(kind)}/${id}`);
  const check = (org: Org, kind: 'domain' | 'mailbox', id: string) =>
    ok(org, 'POST', `/v1/health/${plural(kind)}/${id}/check`);
  /** Waits until the subject was computed (by the sweep a trigger woke) and `ready` holds. */
  const settled = (
    org: Org,
    kind: 'domain' | 'mailbox',
    id: string,
    ready: (d: any) => boolean = () => true,
  ) =>
    until(
      () => detail(org, kind, id),
      (d) => d.score !== null && ready(d),
    );
  const codes = (d: { findings: { code: string }[] }) => d.findings.map((f) => f.code).sort();
  const policy = (org: Org, changes: Record<string, unknown>) =>
    ok(org, 'PUT', '/v1/health/policy', {
      enabled: true,
      pause_below: 75,
      slow_warmup_below: 75,
      auto_resume: false,
      resume_at: 90,
      republish_dns: true,
      notify_email: true,
      ...changes,
    });
  const mailbox = async (org: Org, address: string) =>
    ok(org, 'POST', '/v1/mailboxes', { address, password: 'mailbox password 123' }, 201);
  const send = async (org: Org, body: Record<string, unknown>) =>
    ok(org, 'POST', '/v1/messages/send', { subject: 'Hello', text: 'Hello there', ...body }, 202);
  const message = (org: Org, id: string) => ok(org, 'GET', `/v1/messages/${id}`);
  const received = (rcpt: string) =>
    until(
      async () => sink.messages.filter((m) => m.rcptTo.includes(rcpt)),
      (list) => list.length > 0,
    );
  /** Drops every record at `host` from the DNS server (as the owner deleting it in their DNS console). */
  const unpublish = (host: string) => dns.delete(host);

  test('a healthy domain scores 100; a new one lists what to publish and is not repaired', async () => {
    const org = await newOrg(t);
    const healthy = await verifiedDomain(t, org.token, 'healthy.test', [dns]);
    const d = await check(org, 'domain', healthy.id);
    assert.equal(d.score, 100);
    assert.equal(d.band, 'good');
    assert.deepEqual(d.findings, []);
    // Health's own inputs first, then those other modules plug in (ip-pools, feedback, warmup ...).
    const inputs = d.inputs.map((i: any) => [i.name, i.weight, i.penalty]);
    assert.deepEqual(inputs.slice(0, 4), [
      ['dns', 70, 0],
      ['blocklists', 70, 0],
      ['bounces', 45, 0],
      ['unsubscribe', 20, 0],
    ]);
    for (const [name, weight] of [
      ['ptr', 20],
      ['complaints', 50],
    ])
      assert.deepEqual(
        inputs.find((i: unknown[]) => i[0] === name),
        [name, weight, 0],
      );
    assert.ok(inputs.every((i: unknown[]) => i[2] === 0));
    assert.equal(d.paused, false);
    assert.ok(d.history.length >= 1);

    const created = await ok(
      org,
      'POST',
      '/v1/domains',
      { name: 'fresh.test', dkim: { algorithm: 'ed25519' } },
      201,
    );
    const fresh = await check(org, 'domain', created.id);
    assert.ok(fresh.score < 50, JSON.stringify(fresh));
    assert.equal(fresh.band, 'critical');
    for (const code of [
      'dns.ownership_unverified',
      'dns.spf_missing',
      'dns.dkim_missing',
      'dns.dmarc_missing',
    ])
      assert.ok(codes(fresh).includes(code), code);
    const spf = fresh.findings.find((f: any) => f.code === 'dns.spf_missing');
    assert.equal(spf.severity, 'critical');
    assert.equal(spf.evidence.host, 'fresh.test');
    assert.equal(spf.fix, `Publish TXT v=spf1 a:${HOST} ~all at fresh.test`);
    // It never verified, so it sends nothing yet: nothing to pause.
    assert.equal(fresh.paused, false);
    assert.equal((await ok(org, 'GET', '/v1/health/actions')).total, 0);
  });

  test('each broken record is a finding with its evidence and fix, and the score falls by its penalty', async () => {
    const org = await newOrg(t);
    await policy(org, { enabled: false });
    const cases: { name: string; expect: string[]; score: number; breakIt: (name: string) => void }[] = [
      {
        name: 'nospf.test',
        expect: ['dns.spf_missing'],
        score: 70,
        breakIt: (n) => dns.set(n, { MX: [{ exchange: HOST, priority: 10 }] }),
      },
      {
        name: 'nodkim.test',
        expect: ['dns.dkim_missing'],
        score: 65,
        breakIt: () => {},
      },
      {
        name: 'dmarcnone.test',
        expect: ['dns.dmarc_policy_none'],
        score: 90,
        breakIt: (n) =>
          dns.set(`_dmarc.${n}`, { TXT: ['v=DMARC1; p=none; rua=mailto:dmarc@dmarcnone.test'] }),
      },
      {
        name: 'nodmarc.test',
        expect: ['dns.dmarc_missing'],
        score: 80,
        breakIt: (n) => unpublish(`_dmarc.${n}`),
      },
      {
        name: 'wrongmx.test',
        expect: ['dns.mx_wrong'],
        score: 90,
        breakIt: (n) =>
          dns.set(n, {
            MX: [{ exchange: 'mx.elsewhere.example', priority: 10 }],
            TXT: [`v=spf1 a:${HOST} ~all`],
          }),
      },
      {
        name: 'nosts.test',
        expect: ['dns.mta_sts_missing', 'dns.tls_rpt_missing'],
        score: 95,
        breakIt: (n) => {
          unpublish(`_mta-sts.${n}`);
          unpublish(`mta-sts.${n}`);
          unpublish(`_smtp._tls.${n}`);
        },
      },
    ];
    for (const c of cases) {
      const domain = await verifiedDomain(t, org.token, c.name, [dns]);
      if (c.name === 'nodkim.test') {
        const key = (await requiredRecords(t, org.token, domain.id)).find((r) => r.purpose === 'dkim')!;
        unpublish(key.host);
      }
      await settled(org, 'domain', domain.id, (d) => d.score === 100);
      c.breakIt(c.name);
      const d = await check(org, 'domain', domain.id);
      assert.deepEqual(codes(d), c.expect.sort(), `${c.name}: ${JSON.stringify(d.findings)}`);
      assert.equal(d.score, c.score, c.name);
      for (const f of d.findings) {
        assert.ok(f.title && f.fix, `${c.name}: ${f.code}`);
        assert.ok(f.evidence.host ?? f.evidence.records, `${c.name}: ${f.code}`);
        assert.equal(f.input, 'dns');
      }
      // The history keeps the scores over time, oldest first.
      const scores = d.history.map((h: any) => h.score);
      assert.deepEqual(scores.slice(-2), [100, c.score], c.name);
    }
    const nospf = (await ok(org, 'GET', '/v1/health/domains?sort=name')).items.find(
      (i: any) => i.name === 'nospf.test',
    );
    const evidence = (await detail(org, 'domain', nospf.id)).findings[0];
    assert.equal(evidence.evidence.status, 'missing');
    assert.match(evidence.evidence.diagnosis, /No SPF record at nospf\.test/);

    const changed = (await eventsOf(t, org, 'health.changed')).filter(
      (e) => e.data.name === 'dmarcnone.test',
    );
    assert.ok(
      changed.some((e) => e.data.added.includes('dns.dmarc_policy_none') && e.data.previous_band === 'good'),
    );

    // Lists: every domain, worst first, paginated; best first on request.
    const page1 = await ok(org, 'GET', '/v1/health/domains?page_size=2');
    assert.equal(page1.total, cases.length);
    assert.equal(page1.total_pages, Math.ceil(cases.length / 2));
    assert.deepEqual(
      page1.items.map((i: any) => i.score),
      [65, 70],
    );
    const best = await ok(org, 'GET', '/v1/health/domains?sort=-score&page_size=1');
    assert.equal(best.items[0].score, 95);
    const poor = await ok(org, 'GET', '/v1/health/domains?band=poor');
    assert.deepEqual(poor.items.map((i: any) => i.name).sort(), ['nodkim.test', 'nospf.test']);
    // No actions: the policy is off.
    assert.equal((await ok(org, 'GET', '/v1/health/actions')).total, 0);
  });

  test('listings on blocklists are findings, and a listing recomputes the domain by itself', async () => {
    const org = await newOrg(t);
    await policy(org, { enabled: false });
    const domain = await verifiedDomain(t, org.token, 'listed.test', [dns]);
    await ok(org, 'POST', '/v1/blocklists/ips', { ip: LISTED_IP }, 201);
    await settled(org, 'domain', domain.id, (d) => d.score === 100);
    // The blocklist check emits blocklist.listed; health marks the domain due and a sweep recomputes it.
    await ok(org, 'POST', '/v1/blocklists/check', {});
    const d = await settled(org, 'domain', domain.id, (x) => codes(x).includes('blocklist.ip_listed'));
    assert.deepEqual(codes(d), ['blocklist.domain_listed', 'blocklist.ip_listed']);
    const dbl = d.findings.find((f: any) => f.code === 'blocklist.domain_listed');
    assert.equal(dbl.evidence.list, 'dbl.spamhaus.org');
    assert.equal(dbl.evidence.code, '127.0.1.2');
    assert.equal(dbl.penalty, 50);
    assert.match(dbl.fix, /https:\/\/check\.spamhaus\.org/);
    const zen = d.findings.find((f: any) => f.code === 'blocklist.ip_listed');
    assert.equal(zen.evidence.target, LISTED_IP);
    assert.equal(zen.evidence.list, 'zen.spamhaus.org');
    // 50 + 40, capped at the input's weight (70).
    assert.equal(d.score, 30);
    assert.equal(d.inputs.find((i: any) => i.name === 'blocklists').penalty, 70);
  });

  test('a bounce rate over the threshold is a finding for the mailbox and its domain', async () => {
    const org = await newOrg(t);
    await policy(org, { enabled: false });
    const domain = await verifiedDomain(t, org.token, 'bouncy.test', [dns]);
    const box = await mailbox(org, 'sender@bouncy.test');
    for (const gone of ['gone1@remote.test', 'gone2@remote.test'])
      sink.onRecipient(gone, { code: 550, message: `5.1.1 <${gone}>: no such user` });
    // The deliveries first, then the bounces: each bounce marks the mailbox due, so the last recomputation
    // sees every outcome (a delivery marks nothing due, and one recorded after it would be missed).
    for (const batch of [
      ['fine1', 'fine2', 'fine3'],
      ['gone1', 'gone2'],
    ]) {
      const sent = [];
      for (const to of batch)
        sent.push(await send(org, { from: 'sender@bouncy.test', to: [`${to}@remote.test`] }));
      for (const m of sent)
        await until(
          () => message(org, m.id),
          (x) => x.status === 'delivered' || x.status === 'bounced',
        );
    }
    const critical = (x: any) => x.findings.find((f: any) => f.code === 'bounces.rate_critical');
    // message.bounced marks the mailbox and the domain due: recomputed without asking.
    const d = await settled(org, 'mailbox', box.id, (x) => critical(x)?.evidence.bounced === 2);
    const f = d.findings.find((x: any) => x.code === 'bounces.rate_critical');
    assert.deepEqual([f.evidence.bounced, f.evidence.delivered, f.evidence.rate], [2, 3, 0.4]);
    assert.equal(f.severity, 'critical');
    assert.equal(d.score, 55);
    assert.equal(d.domain.id, domain.id);
    const byDomain = await settled(org, 'domain', domain.id, (x) => critical(x)?.evidence.bounced === 2);
    assert.equal(byDomain.findings.find((x: any) => x.code === 'bounces.rate_critical').evidence.bounced, 2);
    const mailboxes = await ok(org, 'GET', `/v1/health/mailboxes?domain_id=${domain.id}`);
    assert.deepEqual(
      mailboxes.items.map((i: any) => [i.name, i.score]),
      [['sender@bouncy.test', 55]],
    );
  });

  test('bulk mail without one-click unsubscribe is a finding; a bulk sender needs it on all its mail', async () => {
    const org = await newOrg(t);
    await policy(org, { enabled: false });
    const bulk = await verifiedDomain(t, org.token, 'bulk.test', [dns]);
    await send(org, {
      from: 'news@bulk.test',
      to: ['reader1@remote.test'],
      headers: { 'List-Unsubscribe': '<mailto:unsubscribe@bulk.test>', Precedence: 'bulk' },
    });
    await send(org, {
      from: 'news@bulk.test',
      to: ['reader2@remote.test'],
      headers: {
        'List-Unsubscribe': '<https://bulk.test/unsubscribe/2>, <mailto:unsubscribe@bulk.test>',
        'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
      },
    });
    // Not list mail: not counted.
    await send(org, { from: 'news@bulk.test', to: ['reader3@remote.test'] });
    const d = await check(org, 'domain', bulk.id);
    assert.deepEqual(codes(d), ['unsubscribe.missing_one_click']);
    const f = d.findings[0];
    assert.deepEqual([f.evidence.bulk_messages, f.evidence.without_one_click], [2, 1]);
    assert.match(f.fix, /List-Unsubscribe-Post: List-Unsubscribe=One-Click/);
    assert.equal(d.score, 90);

    // Over the bulk-sender threshold (8 recipients a day here), every message of the day counts.
    const volume = await verifiedDomain(t, org.token, 'volume.test', [dns]);
    await send(org, {
      from: 'updates@volume.test',
      to: Array.from({ length: 9 }, (_, i) => `customer${i}@remote.test`),
    });
    const v = await check(org, 'domain', volume.id);
    assert.deepEqual(codes(v), ['unsubscribe.bulk_sender_without_one_click']);
    assert.equal(v.findings[0].evidence.threshold, 8);
    assert.equal(v.findings[0].evidence.days[0].recipients, 9);
  });

  test('below the threshold a sender is paused: its queued and new mail is held, and resuming sends it', async () => {
    const org = await newOrg(t);
    const endpoint = await ok(
      org,
      'POST',
      '/v1/webhooks',
      { url: receiver.url('receiver.test'), event_types: ['health.*'] },
      201,
    );
    receiver.secrets = [endpoint.secret];
    const domain = await verifiedDomain(t, org.token, 'pause.test', [dns]);
    await mailbox(org, 'sender@pause.test');
    await settled(org, 'domain', domain.id, (d) => d.score === 100);
    // Queued before the pause: scheduled for later.
    const scheduled = await send(org, {
      from: 'sender@pause.test',
      to: ['scheduled@remote.test'],
      send_at: new Date(Date.now() + 3_600_000).toISOString(),
    });
    assert.equal(scheduled.status, 'scheduled');

    // The DKIM record disappears: 65 < 75.
    const key = (await requiredRecords(t, org.token, domain.id)).find((r) => r.purpose === 'dkim')!;
    unpublish(key.host);
    const d = await check(org, 'domain', domain.id);
    assert.equal(d.score, 65);
    assert.equal(d.paused, true);
    assert.equal(d.warmup_slowed, true);
    const actions = (await ok(org, 'GET', `/v1/health/actions?subject_id=${domain.id}`)).items;
    assert.deepEqual(actions.map((a: any) => a.action).sort(), ['pause', 'slow_warmup']);
    const pause = actions.find((a: any) => a.action === 'pause');
    assert.equal(pause.automatic, true);
    assert.equal(pause.state, 'applied');
    assert.match(pause.reason, /health score 65 is below 75 \(dns\.dkim_missing\)/);
    assert.equal(pause.details.held, 1);

    // The queued message is held, and so is new mail.
    const held = await message(org, scheduled.id);
    assert.deepEqual([held.recipients[0].status, held.recipients[0].hold_reason], ['held', 'sender_paused']);
    const fresh = await send(org, { from: 'sender@pause.test', to: ['fresh@remote.test'] });
    assert.deepEqual(
      [fresh.recipients[0].status, fresh.recipients[0].hold_reason],
      ['held', 'sender_paused'],
    );
    // Released by hand while the pause lasts, it is held again when it falls due (the claim holds it).
    await ok(org, 'POST', `/v1/queue/${fresh.recipients[0].delivery_id}/release`);
    await until(
      () => message(org, fresh.id),
      (m) => m.recipients[0].status === 'held',
    );
    // Meanwhile other senders' mail flows: once another organisation's message arrived, none of this did.
    const other = await newOrg(t);
    await verifiedDomain(t, other.token, 'flowing.test', [dns]);
    await send(other, { from: 'a@flowing.test', to: ['marker@remote.test'] });
    await received('marker@remote.test');
    assert.equal(sink.messages.filter((m) => m.rcptTo.some((r) => /^(fresh|scheduled)@/.test(r))).length, 0);

    // Announced: event, webhook and an email to the owner.
    const repairs = await eventsOf(t, org, 'health.repair');
    assert.ok(
      repairs.some((e) => e.data.action === 'pause' && e.data.state === 'applied' && e.data.automatic),
    );
    await until(
      async () => receiver.received.filter((m) => m.json?.type === 'health.repair'),
      (list) => list.some((m) => m.json.data.action === 'pause'),
    );
    const mail = t.mailer.sent.find((m) => m.subject.includes('pause.test'));
    assert.ok(mail, 'notification email');
    assert.match(mail.subject, /sending paused/);
    assert.match(mail.text, new RegExp(`/v1/health/actions/${pause.id}/undo`));
    const held1 = await ok(org, 'GET', '/v1/queue?status=held&hold_reason=sender_paused');
    assert.equal(held1.total, 2);
    // The warmup module reads the same state.
    const state = await t.app.services.health.repairState(org.orgId, { domainId: domain.id });
    assert.deepEqual([state.paused, state.slowed], [true, true]);

    // Resumed: the held mail goes out (the scheduled message at its time, or now when retried).
    const resumed = await ok(org, 'POST', `/v1/health/domains/${domain.id}/resume`);
    assert.equal(resumed.state, 'undone');
    assert.equal(resumed.details.undo.released, 2);
    await received('fresh@remote.test');
    const queued = await message(org, scheduled.id);
    assert.equal(queued.recipients[0].status, 'queued');
    await ok(org, 'POST', '/v1/queue/retry', { message_id: scheduled.id });
    await received('scheduled@remote.test');
    // A person resumed it: the policy does not pause it again while the score stays where it was.
    const again = await check(org, 'domain', domain.id);
    assert.equal(again.score, 65);
    assert.equal(again.paused, false);
    assert.equal((await ok(org, 'GET', `/v1/health/actions?action=pause`)).total, 1);
    assert.ok((await eventsOf(t, org, 'health.repair')).some((e) => e.data.state === 'undone'));
  });

  test('with auto_resume, the policy lifts its own pause once the score recovers', async () => {
    const org = await newOrg(t);
    await policy(org, { auto_resume: true, resume_at: 95, notify_email: false });
    const domain = await verifiedDomain(t, org.token, 'recovers.test', [dns]);
    await settled(org, 'domain', domain.id, (d) => d.score === 100);
    unpublish(`_dmarc.recovers.test`);
    unpublish('recovers.test');
    // No SPF (30), no MX (15), no DMARC (20).
    const down = await check(org, 'domain', domain.id);
    assert.equal(down.score, 35);
    assert.equal(down.paused, true);
    const held = await send(org, { from: 'team@recovers.test', to: ['waiting@remote.test'] });
    assert.equal(held.recipients[0].hold_reason, 'sender_paused');
    // The owner publishes the records again.
    publish([dns], await requiredRecords(t, org.token, domain.id));
    const up = await check(org, 'domain', domain.id);
    assert.equal(up.score, 100);
    assert.deepEqual([up.paused, up.warmup_slowed], [false, false]);
    const actions = (await ok(org, 'GET', `/v1/health/actions?subject_id=${domain.id}`)).items;
    assert.ok(actions.every((a: any) => a.state === 'undone' && a.undone_by === null));
    assert.match(actions[0].undo_reason, /back at 95 or above/);
    await received('waiting@remote.test');
    assert.equal(t.mailer.sent.filter((m) => m.subject.includes('recovers.test')).length, 0);
  });

  test('a mailbox paused by hand holds its mail; undoing the action releases it', async () => {
    const org = await newOrg(t);
    await verifiedDomain(t, org.token, 'manual.test', [dns]);
    const box = await mailbox(org, 'writer@manual.test');
    const pause = await ok(
      org,
      'POST',
      `/v1/health/mailboxes/${box.id}/pause`,
      { reason: 'checking a complaint' },
      201,
    );
    assert.deepEqual([pause.action, pause.automatic, pause.reason], ['pause', false, 'checking a complaint']);
    assert.equal((await api(org, 'POST', `/v1/health/mailboxes/${box.id}/pause`)).status, 409);
    const held = await send(org, { from: 'writer@manual.test', to: ['later@remote.test'] });
    assert.equal(held.recipients[0].hold_reason, 'sender_paused');
    // Another address of the domain is not paused.
    const free = await send(org, { from: 'other@manual.test', to: ['now@remote.test'] });
    assert.equal(free.recipients[0].status, 'queued');
    await received('now@remote.test');
    assert.equal(await t.app.services.health.isPaused(org.orgId, { mailboxId: box.id }), true);

    const undone = await ok(org, 'POST', `/v1/health/actions/${pause.id}/undo`, { reason: 'cleared' });
    assert.deepEqual([undone.state, undone.undo_reason], ['undone', 'cleared']);
    await received('later@remote.test');
    assert.equal((await api(org, 'POST', `/v1/health/actions/${pause.id}/undo`)).status, 409);
    assert.equal((await api(org, 'POST', `/v1/health/mailboxes/${box.id}/resume`)).status, 409);
    assert.equal(await t.app.services.health.isPaused(org.orgId, { mailboxId: box.id }), false);
  });

  describe('with a DNS provider', () => {
    let org: Org;
    let domain: { id: string; name: string };
    let zoneId: string;
    const cfRecords = (host: string) => cf.records('automated.test').filter((r) => r.name === host);

    before(async () => {
      org = await newOrg(t);
      const account = await ok(
        org,
        'POST',
        '/v1/provider-accounts',
        { provider: 'cloudflare', name: 'Zone', credentials: { api_token: cf.token } },
        201,
      );
      zoneId = cf.addZone('automated.test');
      domain = await ok(org, 'POST', '/v1/domains', { name: 'automated.test' }, 201);
      const applied = await ok(org, 'POST', `/v1/domains/${domain.id}/dns/apply`, {
        provider_account_id: account.id,
      });
      assert.equal(applied.domain.status, 'verified', JSON.stringify(applied.domain.dns_checks));
      await settled(org, 'domain', domain.id, (d) => d.score === 100);
    });

    test('records that drifted are published again through the provider; undo puts the zone back', async () => {
      const key = (await requiredRecords(t, org.token, domain.id)).find((r) => r.purpose === 'dkim')!;
      const [record] = cfRecords(key.host);
      // Someone deletes the DKIM record in the Cloudflare dashboard.
      const deleted = await fetch(`${cf.baseURL}/zones/${zoneId}/dns_records/${record.id}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${cf.token}` },
      });
      assert.equal(deleted.status, 200);
      await check(org, 'domain', domain.id);
      const [republish] = (await ok(org, 'GET', '/v1/health/actions?action=dns_republish')).items;
      assert.equal(republish.state, 'applied');
      assert.equal(republish.automatic, true);
      assert.match(republish.reason, /dns\.dkim_missing/);
      assert.deepEqual(
        republish.details.results.filter((r: any) => r.action === 'created').map((r: any) => r.purpose),
        ['dkim'],
      );
      assert.equal(cfRecords(key.host).length, 1);
      // Recomputed on the records as they are now: healthy, and never paused.
      const healed = await settled(org, 'domain', domain.id, (x) => x.score === 100);
      assert.equal(healed.paused, false);
      assert.equal((await ok(org, 'GET', '/v1/health/actions?action=pause')).total, 0);

      // Undone: the record it created is deleted again.
      await policy(org, { enabled: false });
      const undone = await ok(org, 'POST', `/v1/health/actions/${republish.id}/undo`);
      assert.equal(undone.state, 'undone');
      assert.deepEqual([undone.details.undo.reverted, undone.details.undo.skipped], [1, 0]);
      assert.equal(cfRecords(key.host).length, 0);
      // Published again by hand for the next test.
      await ok(org, 'POST', `/v1/domains/${domain.id}/dns/apply`);
      await policy(org, {});
    });

    test('DKIM is rotated on request (published through the provider) and the rotation can be undone', async () => {
      const before = await ok(org, 'GET', `/v1/domains/${domain.id}`);
      const oldKeys = before.dkim_keys.map((k: any) => k.selector);
      const rotated = await ok(
        org,
        'POST',
        `/v1/health/domains/${domain.id}/rotate-dkim`,
        { algorithm: 'ed25519' },
        201,
      );
      assert.deepEqual([rotated.action, rotated.automatic, rotated.state], ['dkim_rotate', false, 'applied']);
      const selector = rotated.details.selector;
      assert.ok(!oldKeys.includes(selector));
      assert.equal(cfRecords(`${selector}._domainkey.automated.test`).length, 1);
      // Published and seen by the check that followed: it signs now.
      const after = await ok(org, 'GET', `/v1/domains/${domain.id}`);
      assert.equal(after.dkim_keys.find((k: any) => k.selector === selector).state, 'active');

      const undone = await ok(org, 'POST', `/v1/health/actions/${rotated.id}/undo`);
      assert.equal(undone.state, 'undone');
      const restored = await ok(org, 'GET', `/v1/domains/${domain.id}`);
      assert.deepEqual(
        restored.dkim_keys.map((k: any) => k.selector),
        oldKeys,
      );
      assert.equal(cfRecords(`${selector}._domainkey.automated.test`).length, 0);
      assert.ok(
        (await eventsOf(t, org, 'domain.dkim_rotation_undone')).some((e) => e.data.selector === selector),
      );
    });
  });

  test('the policy: defaults, validation, and the schedule keeps the history over time', async () => {
    const org = await newOrg(t);
    const defaults = await ok(org, 'GET', '/v1/health/policy');
    assert.deepEqual(
      { ...defaults, updated_at: undefined },
      {
        enabled: true,
        pause_below: 75,
        slow_warmup_below: 75,
        auto_resume: false,
        resume_at: 90,
        republish_dns: true,
        notify_email: true,
        updated_at: undefined,
      },
    );
    assert.equal(
      (await api(org, 'PUT', '/v1/health/policy', { ...defaults, updated_at: undefined, resume_at: 70 }))
        .status,
      422,
    );
    assert.equal((await api(org, 'PUT', '/v1/health/policy', { enabled: true })).status, 400);
    const saved = await policy(org, { pause_below: 60, notify_email: false });
    assert.equal(saved.pause_below, 60);
    assert.ok(saved.updated_at);
    assert.equal((await ok(org, 'GET', '/v1/health/policy')).pause_below, 60);

    const domain = await verifiedDomain(t, org.token, 'scheduled.test', [dns]);
    const first = await settled(org, 'domain', domain.id, (d) => d.score === 100);
    // An hour later (the interval), the scheduled sweep computes it again.
    clock.advance(3_600_000 + 1_000);
    await t.app.jobs.send('health.sweep', {});
    const later = await until(
      () => detail(org, 'domain', domain.id),
      (d) => Date.parse(d.computed_at) > Date.parse(first.computed_at),
    );
    assert.equal(Date.parse(later.computed_at), clock.now().getTime());
    assert.ok(Date.parse(later.next_at) > clock.now().getTime());
  });

  test("another organisation's subjects and actions answer 404", async () => {
    const org = await newOrg(t);
    const domain = await verifiedDomain(t, org.token, 'private.test', [dns]);
    const box = await mailbox(org, 'me@private.test');
    const pause = await ok(org, 'POST', `/v1/health/mailboxes/${box.id}/pause`, {}, 201);
    const other = await newOrg(t);
    for (const [method, url] of [
      ['GET', `/v1/health/domains/${domain.id}`],
      ['POST', `/v1/health/domains/${domain.id}/check`],
      ['POST', `/v1/health/domains/${domain.id}/pause`],
      ['POST', `/v1/health/domains/${domain.id}/resume`],
      ['POST', `/v1/health/domains/${domain.id}/rotate-dkim`],
      ['GET', `/v1/health/mailboxes/${box.id}`],
      ['POST', `/v1/health/mailboxes/${box.id}/resume`],
      ['GET', `/v1/health/actions/${pause.id}`],
      ['POST', `/v1/health/actions/${pause.id}/undo`],
    ] as const) {
      const res = await api(other, method, url);
      assert.equal(res.status, 404, `${method} ${url}: ${res.status} ${JSON.stringify(res.body)}`);
    }
    assert.equal((await ok(other, 'GET', '/v1/health/domains')).total, 0);
    assert.equal((await ok(other, 'GET', '/v1/health/actions')).total, 0);
    assert.equal((await detail(org, 'mailbox', box.id)).paused, true);
    // API keys: health:read reads, and only health:write changes.
    const key = await ok(
      org,
      'POST',
      `/v1/organizations/${org.orgId}/api-keys`,
      { name: 'reader', scopes: ['health:read'] },
      201,
    );
    const asKey = (method: string, url: string, body?: unknown) =>
      t.call(method, url, { token: key.key, body });
    assert.equal((await asKey('GET', `/v1/health/domains/${domain.id}`)).status, 200);
    assert.equal((await asKey('POST', `/v1/health/domains/${domain.id}/check`)).status, 403);
  });

  test('several workers share a sweep: every due subject is computed once', {
    skip: engine !== 'postgres' && 'PostgreSQL only (two processes on one database)',
  }, async () => {
    const second = await startTestApp({
      workers: false,
      clock,
      databaseUrl: t.env.DATABASE_URL,
      env: { ...t.env },
    });
    try {
      const org = await newOrg(t);
      await policy(org, { enabled: false });
      for (let i = 0; i < 60; i++)
        await ok(org, 'POST', '/v1/domains', { name: `many${i}.test`, dkim: { algorithm: 'ed25519' } }, 201);
      const count = async (where: string) =>
        (
          await t.app.database.query<{ n: number }>(
            `select count(*)::int as n from health_scores where ${where}`,
          )
        ).rows[0].n;
      await until(
        () => count(`organization_id = '${org.orgId}' and computed_at is not null`),
        (n) => n === 60,
      );
      clock.advance(3_600_000 + 1_000);
      const due = await count(`due_at <= '${clock.now().toISOString()}'`);
      assert.ok(due >= 60);
      // Two sweeps at once (two processes): together they compute each due subject exactly once.
      const [a, b] = await Promise.all([
        t.app.services.health.recomputeDue(),
        second.app.services.health.recomputeDue(),
      ]);
      assert.equal(a + b, due);
      assert.equal(await count(`computed_at = '${clock.now().toISOString()}'`), due);
    } finally {
      await second.close();
    }
  });
});
