// Feedback loops end to end: Mailroom sends through its queue to a remote MX (an SMTP sink on loopback),
// and complaint reports about that mail come back to its MX in the formats of Yahoo's CFL, Microsoft's
// JMRP and AOL (RFC 5965 ARF), at the VERP return path or the domain's feedback address. Matched ones are
// recorded and suppress the recipient; forged, unmatched, duplicate and not-spam reports do not; mail
// at the feedback address that is no report is kept. Outbound mail carries a signed Feedback-ID.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { after, before, describe, test } from 'node:test';
import { dkimVerify } from 'mailauth';
import nodemailer from 'nodemailer';
import { engine, eventsOf, orgMaker, type Org, startTestApp, type TestApp } from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';
import { type SinkMessage, type SmtpSink, startSmtpSink } from '../../support/smtp-sink.ts';
import { sendMail } from '../../support/smtp.ts';
import { parseFeedbackReport } from '../../../src/modules/feedback/arf.ts';
import { until } from '../../support/until.ts';

const HOST = 'mx.feedback.test';
const SENDER_ID = 'mailroom-test';
const crlf = (lines: string[]) => lines.join('\r\n');

describe(`feedback loops on ${engine}`, () => {
  let t: TestApp;
  let dns: TestDnsServer[];
  let sink: SmtpSink;
  let org: Org;
  let mailboxId: string;
  const newOrg = orgMaker('feedback');

  before(async () => {
    dns = [await startDnsServer(), await startDnsServer()];
    sink = await startSmtpSink();
    for (const d of dns) {
      d.set('remote.test', { MX: [{ exchange: 'mx.remote.test', priority: 10 }] });
      d.set('mx.remote.test', { A: ['127.0.0.1'] });
    }
    t = await startTestApp({
      workers: true,
      smtp: true,
      submission: true,
      env: {
        MAILROOM_HOSTNAME: HOST,
        MAILROOM_DNS_SERVERS: dns.map((d) => d.address).join(','),
        MAILROOM_DNS_TIMEOUT: '300ms',
        MAILROOM_DNS_TRIES: '1',
        MAILROOM_INBOUND_DNS_CACHE: '1ms',
        MAILROOM_OUTBOUND_PORT: String(sink.port),
        MAILROOM_OUTBOUND_CONNECT_TIMEOUT: '2s',
        MAILROOM_FEEDBACK_SENDER_ID: SENDER_ID,
        // Complaints mark their sender due in health; recomputed this soon after.
        MAILROOM_HEALTH_TRIGGER_DELAY: '50ms',
      },
    });
    org = await newOrg(t);
    await verifiedDomain(t, org.token, 'hosted.test', dns);
    const created = await t.call('POST', '/v1/mailboxes', {
      token: org.token,
      body: { address: 'sender@hosted.test', password: 'sender password 123' },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    mailboxId = created.body.id;
  });
  after(async () => {
    await t?.close();
    await sink?.close();
    for (const d of dns ?? []) await d.close();
  });

  const api = (method: string, url: string, as: Org = org, body?: unknown) =>
    t.call(method, url, { token: as.token, body });

  /** Sends through the API and waits until the sink has it: the message as the remote MX got it. */
  async function sendAndDeliver(
    body: Record<string, unknown>,
    as: Org = org,
  ): Promise<{ id: string; messageId: string; copy: SinkMessage }> {
    const res = await api('POST', '/v1/messages/send', as, {
      from: 'sender@hosted.test',
      subject: 'Our spring offers',
      text: 'Hello, here are our offers.',
      ...body,
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const first = (body.to as string[])[0];
    const [copy] = await until(
      async () =>
        sink.messages.filter((m) => m.rcptTo.includes(first) && m.raw.includes(res.body.message_id)),
      (list) => list.length > 0,
    );
    await until(
      () => api('GET', `/v1/messages/${res.body.id}`, as).then((r) => r.body),
      (m) => m.status === 'delivered',
    );
    return { id: res.body.id, messageId: res.body.message_id, copy };
  }

  /** Sends a message to our MX and waits until processing has finished with it. */
  async function toMx(raw: string, rcpt: string, as: Org = org, mailFrom = ''): Promise<any> {
    const info = await sendMail(t.smtpPort, {
      from: mailFrom,
      to: rcpt,
      raw,
      envelope: { from: mailFrom, to: [rcpt] },
    });
    assert.match(info.response, /^250 /);
    const id = /queued as ([0-9a-f-]{36})/.exec(info.response)![1];
    return until(
      () => api('GET', `/v1/messages/${id}`, as).then((r) => r.body),
      (m) => m.status && m.status !== 'pending',
    );
  }

  const complaints = (query: string, as: Org = org) =>
    api('GET', `/v1/complaints?page_size=200&${query}`, as).then((r) => {
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body;
    });
  const complaintAbout = async (messageId: string, as: Org = org) =>
    (await complaints('', as)).items.filter((c: any) => c.message_id === messageId);
  const suppression = (address: string, as: Org = org) => api('GET', `/v1/suppressions/${address}`, as);

  test('outbound mail carries a Feedback-ID inside its DKIM signature; an author’s own is kept', async () => {
    const campaign = await sendAndDeliver({
      to: ['fid@remote.test'],
      headers: { 'X-Campaign-ID': 'spring sale:2026' },
    });
    const noMailbox = await sendAndDeliver({ from: 'news@hosted.test', to: ['fid2@remote.test'] });
    const own = await sendAndDeliver({
      to: ['fid3@remote.test'],
      headers: { 'Feedback-ID': 'q3:newsletter:acme:esp1' },
    });
    const submitted = await submit({ to: 'fid4@remote.test', subject: 'Through submission' });
    const authored = await submit({
      to: 'fid5@remote.test',
      subject: 'With its own',
      headers: { 'Feedback-ID': 'mine:ESP' },
    });

    const cases: [Buffer, string][] = [
      [campaign.copy.raw, `spring-sale-2026:${mailboxId}:${org.orgId}:${SENDER_ID}`],
      [noMailbox.copy.raw, `${org.orgId}:${SENDER_ID}`],
      [own.copy.raw, 'q3:newsletter:acme:esp1'],
      [submitted, `${mailboxId}:${org.orgId}:${SENDER_ID}`],
      [authored, 'mine:ESP'],
    ];
    for (const [raw, expected] of cases) {
      const head = raw.subarray(0, raw.indexOf('\r\n\r\n')).toString();
      const fields = head.match(/^feedback-id:.*(\r\n[ \t].*)*/gim) ?? [];
      assert.equal(fields.length, 1, head);
      assert.equal(fields[0].replace(/^feedback-id:|\r\n/gi, '').trim(), expected);
      const signature = /^DKIM-Signature:[\s\S]*?(?=\r\n\S)/m.exec(head)![0].replace(/\s+/g, '');
      assert.match(/;h=([^;]+)/.exec(signature)![1], /(^|:)feedback-id(:|$)/);
      const verified = await dkimVerify(raw, { resolver: resolve } as never);
      assert.deepEqual(
        verified.results.map((r: any) => r.status.result),
        ['pass'],
      );
    }
  });

  test('Yahoo CFL at the VERP return path: matched by VERP, the recipient read from the original’s To', async () => {
    // Bcc: the same VERP path carries both recipients; only the returned To says which complained.
    const sent = await sendAndDeliver({ to: ['carol@remote.test'], bcc: ['dave@remote.test'] });
    const report = yahooReport(sent.copy, sent.copy.mailFrom);
    const received = await toMx(report, sent.copy.mailFrom);
    assert.equal(received.status, 'delivered');

    const [complaint] = await complaintAbout(sent.id);
    assert.ok(complaint, 'complaint recorded');
    assert.equal(complaint.matched, true, complaint.detail);
    assert.equal(complaint.match_method, 'verp');
    assert.equal(complaint.recipient, 'carol@remote.test');
    assert.equal(complaint.feedback_type, 'abuse');
    assert.equal(complaint.suppressed, true);
    assert.equal(complaint.received_via, 'verp');
    assert.equal(complaint.domain, 'hosted.test');
    assert.equal(complaint.sender, 'sender@hosted.test');
    assert.equal(complaint.user_agent, 'Yahoo!-Mail-Feedback/2.0');
    assert.equal(complaint.reporter, 'feedback@arf.mail.yahoo.com');
    assert.equal(complaint.original_message_id, sent.messageId);
    assert.equal(complaint.report_message_id, received.id);

    const suppressed = await suppression('carol@remote.test');
    assert.equal(suppressed.status, 200);
    assert.equal(suppressed.body.reason, 'complaint');
    assert.equal(suppressed.body.message_id, sent.id);
    assert.equal((await suppression('dave@remote.test')).status, 404);
    // Not bounce handling: the message stays delivered.
    assert.equal((await api('GET', `/v1/messages/${sent.id}`)).body.status, 'delivered');
    const route = received.routes.find((r: any) => r.route === 'feedback');
    assert.equal(route.target_id, complaint.id);

    const event = (await eventsOf(t, org, 'complaint.received')).find(
      (e) => e.data.complaint_id === complaint.id,
    );
    assert.deepEqual(
      [event.data.matched, event.data.recipient, event.data.suppressed, event.data.message_id],
      [true, 'carol@remote.test', true, sent.id],
    );
    const one = await api('GET', `/v1/complaints/${complaint.id}`);
    assert.equal(one.status, 200);
    assert.deepEqual(one.body, complaint);
  });

  test('Microsoft JMRP at the feedback address: matched by Message-ID, the redacted recipient is the only one', async () => {
    const sent = await sendAndDeliver({ to: ['erin@remote.test'] });
    const received = await toMx(jmrpReport(sent.copy), 'fbl@hosted.test', org, 'jmrp@hotmail.test');
    assert.equal(received.status, 'delivered');
    const [complaint] = await complaintAbout(sent.id);
    assert.equal(complaint.matched, true, complaint.detail);
    assert.equal(complaint.match_method, 'message_id');
    assert.equal(complaint.recipient, 'erin@remote.test');
    assert.equal(complaint.received_via, 'feedback_address');
    assert.equal(complaint.suppressed, true);
    assert.equal(complaint.user_agent, 'Microsoft Junk Mail Reporting Program');
    assert.equal((await suppression('erin@remote.test')).body.reason, 'complaint');
  });

  test('AOL/generic ARF at the feedback address: every field read; a repeated report is recorded once', async () => {
    const sent = await sendAndDeliver({ to: ['frank@remote.test', 'grace@remote.test'] });
    const report = aolReport(sent.copy, { rcpt: 'frank@remote.test', type: 'abuse' });
    const first = await toMx(report, 'fbl@hosted.test');
    const [complaint] = await complaintAbout(sent.id);
    assert.equal(complaint.matched, true, complaint.detail);
    assert.equal(complaint.match_method, 'verp');
    assert.equal(complaint.recipient, 'frank@remote.test');
    assert.equal(complaint.feedback_type, 'abuse');
    assert.equal(complaint.user_agent, 'AOL SComp');
    assert.equal(complaint.source_ip, '192.0.2.25');
    assert.equal(complaint.reported_domain, 'hosted.test');
    assert.equal(complaint.original_mail_from, sent.copy.mailFrom.toLowerCase());
    assert.deepEqual(complaint.original_rcpt_to, ['frank@remote.test']);
    assert.equal(complaint.arrival_date, '2026-03-09T14:12:31.000Z');
    assert.equal(complaint.report_message_id, first.id);
    assert.equal((await suppression('frank@remote.test')).body.reason, 'complaint');
    assert.equal((await suppression('grace@remote.test')).status, 404);

    const again = await toMx(report, 'fbl+aol@hosted.test');
    assert.equal(again.status, 'delivered');
    assert.equal((await complaintAbout(sent.id)).length, 1);
    const route = again.routes.find((r: any) => r.route === 'feedback');
    assert.equal(route.target_id, complaint.id);
    assert.match(route.detail, /recorded once/);
    const announced = (await eventsOf(t, org, 'complaint.received')).filter(
      (e) => e.data.message_id === sent.id,
    );
    assert.equal(announced.length, 1);
    const suppressions = (await api('GET', '/v1/suppressions?q=frank@remote.test')).body;
    assert.equal(suppressions.total, 1);
  });

  test('forged reports are recorded unmatched and suppress nobody', async () => {
    const sent = await sendAndDeliver({ to: ['ivan@remote.test'] });
    // A real message, a recipient it was never sent to.
    const forged = aolReport(sent.copy, { rcpt: 'mallory@remote.test', type: 'abuse', verp: false });
    await toMx(forged, 'fbl@hosted.test');
    // A tampered VERP token and a Message-ID nobody here sent.
    const tampered = sent.copy.mailFrom.replace(/b\+([a-z2-7])/, (_m, c) => `b+${c === 'a' ? 'b' : 'a'}`);
    const unknown = aolReport(
      {
        ...sent.copy,
        raw: Buffer.from(sent.copy.raw.toString().replace(sent.messageId, '<nobody@elsewhere.test>')),
      },
      { rcpt: 'ivan@remote.test', type: 'abuse', mailFrom: tampered },
    );
    await toMx(unknown, 'fbl@hosted.test');

    const unmatched = (await complaints('matched=false')).items;
    const mallory = unmatched.find((c: any) => c.recipient === 'mallory@remote.test');
    assert.ok(mallory);
    assert.equal(mallory.message_id, sent.id);
    assert.equal(mallory.suppressed, false);
    assert.match(mallory.detail, /not a recipient/);
    const nobody = unmatched.find((c: any) => c.original_message_id === '<nobody@elsewhere.test>');
    assert.ok(nobody);
    assert.equal(nobody.message_id, null);
    assert.equal(nobody.matched, false);
    assert.match(nobody.detail, /no message this organisation sent/);
    assert.equal((await suppression('mallory@remote.test')).status, 404);
    assert.equal((await suppression('ivan@remote.test')).status, 404);
    const matched = (await complaints('matched=true')).items;
    assert.ok(matched.every((c: any) => c.matched));
    assert.ok(!matched.some((c: any) => c.id === mallory.id));
    const events = (await eventsOf(t, org, 'complaint.received')).filter(
      (e) => e.data.complaint_id === mallory.id,
    );
    assert.equal(events[0].data.matched, false);
    assert.equal(events[0].data.suppressed, false);
  });

  test('not-spam is recorded and suppresses nothing', async () => {
    const sent = await sendAndDeliver({ to: ['judy@remote.test'] });
    await toMx(aolReport(sent.copy, { rcpt: 'judy@remote.test', type: 'not-spam' }), 'fbl@hosted.test');
    const [complaint] = await complaintAbout(sent.id);
    assert.equal(complaint.matched, true);
    assert.equal(complaint.feedback_type, 'not-spam');
    assert.equal(complaint.suppressed, false);
    assert.equal((await suppression('judy@remote.test')).status, 404);
    const byRecipient = await complaints('recipient=JUDY@remote.test&domain=hosted.test');
    assert.deepEqual(
      byRecipient.items.map((c: any) => c.id),
      [complaint.id],
    );
  });

  test('mail at the feedback address that is no report is accepted and kept, never a 5xx', async () => {
    const plain = crlf([
      'From: Someone <someone@remote.test>',
      'To: fbl@hosted.test',
      'Subject: please stop emailing me',
      'Message-ID: <plain-1@remote.test>',
      '',
      'I do not want these offers.',
      '',
    ]);
    const garbage = crlf([
      'From: x@remote.test',
      'To: fbl@hosted.test',
      'Subject: ???',
      'Content-Type: multipart/mixed',
      'Content-Transfer-Encoding: base64',
      '',
      '\u0001\u0002 %%% not base64 at all --',
      '--',
      '',
    ]);
    const broken = crlf([
      'From: feedback@arf.example.test',
      'To: fbl@hosted.test',
      'Subject: broken report',
      'Content-Type: multipart/report; report-type=feedback-report; boundary="cut"',
      '',
      '--cut',
      'Content-Type: message/feedback-report',
      '',
      'Feedback-Type:',
      ': nothing',
      '\tfolded nowhere',
      '--cut',
      'Content-Type: message/rfc822',
      'Content-Transfer-Encoding: base64',
      '',
      '!!!!',
      '',
    ]);
    const kept = await toMx(plain, 'fbl@hosted.test');
    assert.equal(kept.status, 'delivered', JSON.stringify(kept));
    const route = kept.routes.find((r: any) => r.recipient === 'fbl@hosted.test');
    assert.deepEqual([route.route, route.action], ['feedback', 'store']);
    assert.match(route.detail, /kept in the message log/);
    const raw = await api('GET', `/v1/messages/${kept.id}/raw`);
    assert.equal(raw.status, 200);
    assert.match(String(raw.body), /I do not want these offers/);

    assert.equal((await toMx(garbage, 'fbl@hosted.test')).status, 'delivered');
    // A declared report with nothing readable in it: recorded, unmatched.
    const reportless = await toMx(broken, 'fbl@hosted.test');
    assert.equal(reportless.status, 'delivered');
    const recorded = (await complaints('matched=false')).items.find(
      (c: any) => c.report_message_id === reportless.id,
    );
    assert.ok(recorded);
    assert.equal(recorded.suppressed, false);
  });

  test('complaint rates per organisation, sending domain and mailbox', async () => {
    const rated = await newOrg(t);
    await verifiedDomain(t, rated.token, 'rated.test', dns);
    const box = await api('POST', '/v1/mailboxes', rated, {
      address: 'news@rated.test',
      password: 'news password 123',
    });
    assert.equal(box.status, 201);
    const since = new Date(Date.now() - 60_000).toISOString();
    const body = { from: 'news@rated.test' };
    const sent = await sendAndDeliver({ ...body, to: ['r1@remote.test', 'r2@remote.test'] }, rated);
    await sendAndDeliver({ ...body, to: ['r3@remote.test'] }, rated);
    await sendAndDeliver({ from: 'other@rated.test', to: ['r4@remote.test'] }, rated);
    await toMx(aolReport(sent.copy, { rcpt: 'r1@remote.test', type: 'abuse' }), 'fbl@rated.test', rated);
    await toMx(aolReport(sent.copy, { rcpt: 'r2@remote.test', type: 'not-spam' }), 'fbl@rated.test', rated);

    const res = await api('GET', `/v1/complaints/rates?since=${encodeURIComponent(since)}`, rated);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.organization, { complaints: 1, delivered: 4, rate: 0.25 });
    assert.deepEqual(
      res.body.domains.map((d: any) => [d.domain, d.complaints, d.delivered]),
      [['rated.test', 1, 4]],
    );
    assert.deepEqual(
      res.body.mailboxes.map((m: any) => [m.address, m.complaints, m.delivered, m.rate]),
      [
        ['news@rated.test', 1, 3, 1 / 3],
        ['other@rated.test', 0, 1, 0],
      ],
    );
    const later = await api(
      'GET',
      `/v1/complaints/rates?since=${encodeURIComponent(new Date().toISOString())}`,
      rated,
    );
    assert.deepEqual(later.body.organization, { complaints: 0, delivered: 0, rate: null });
  });

  /** A subject's health detail. */
  const health = async (kind: 'domains' | 'mailboxes', id: string, as: Org) => {
    const res = await api('GET', `/v1/health/${kind}/${id}`, as);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body;
  };
  const complaintFindings = (d: { findings: any[] }): any[] =>
    d.findings.filter((f) => f.input === 'complaints');
  /** Waits until a sweep (woken by complaint.received) has recomputed the subject and `ready` holds. */
  const healthWhen = (kind: 'domains' | 'mailboxes', id: string, as: Org, ready: (d: any) => boolean) =>
    until(
      () => health(kind, id, as),
      (d) => d.score !== null && ready(d),
    );
  const recipients = (prefix: string, n: number) =>
    Array.from({ length: n }, (_, i) => `${prefix}${i}@remote.test`);

  test('health: complaints at or above 0.3 % of delivered mail are a critical finding of the domain and the mailbox', async () => {
    const sender = await newOrg(t);
    const domain = await verifiedDomain(t, sender.token, 'complained.test', dns);
    const box = await api('POST', '/v1/mailboxes', sender, {
      address: 'news@complained.test',
      password: 'news password 123',
    });
    assert.equal(box.status, 201);
    // 120 recipients delivered (over the minimum sample of 100), one complains: 0.83 %.
    const sent = await sendAndDeliver({ from: 'news@complained.test', to: recipients('crowd', 120) }, sender);
    await toMx(
      aolReport(sent.copy, { rcpt: 'crowd7@remote.test', type: 'abuse' }),
      'fbl@complained.test',
      sender,
    );

    // complaint.received marks the domain and the mailbox due: recomputed without asking.
    const d = await healthWhen('domains', domain.id, sender, (x) => complaintFindings(x).length > 0);
    const [finding] = complaintFindings(d);
    assert.equal(finding.code, 'complaints.rate_high');
    assert.equal(finding.severity, 'critical');
    assert.equal(finding.penalty, 50);
    assert.deepEqual(finding.evidence, {
      complaints: 1,
      delivered: 120,
      rate: 0.008333,
      window_days: 7,
      target: 0.001,
      ceiling: 0.003,
      min_sample: 100,
      threshold: 0.003,
    });
    assert.match(finding.title, /0\.83 %/);
    assert.match(finding.fix, /\/v1\/complaints\?domain=complained\.test/);
    assert.match(finding.fix, /opt-in/);
    assert.match(finding.fix, /List-Unsubscribe=One-Click/);
    const share = d.inputs.find((i: any) => i.name === 'complaints');
    assert.deepEqual([share.weight, share.penalty], [50, 50]);
    assert.ok(d.score <= 50, String(d.score));

    const m = await healthWhen('mailboxes', box.body.id, sender, (x) => complaintFindings(x).length > 0);
    assert.deepEqual(
      complaintFindings(m).map((f: any) => [f.code, f.evidence.complaints, f.evidence.delivered]),
      [['complaints.rate_high', 1, 120]],
    );
  });

  test('health: under the 0.1 % target nothing is found, from it a warning; too few delivered is only shown', async () => {
    const sender = await newOrg(t);
    const domain = await verifiedDomain(t, sender.token, 'steady.test', dns);
    const first = await sendAndDeliver({ from: 'news@steady.test', to: recipients('many', 1000) }, sender);
    await sendAndDeliver({ from: 'news@steady.test', to: recipients('more', 100) }, sender);
    // One complaint in 1,100 delivered: 0.09 %, under the target.
    await toMx(
      aolReport(first.copy, { rcpt: 'many1@remote.test', type: 'abuse' }),
      'fbl@steady.test',
      sender,
    );
    const checked = await api('POST', `/v1/health/domains/${domain.id}/check`, sender);
    assert.equal(checked.status, 200, JSON.stringify(checked.body));
    assert.deepEqual(complaintFindings(checked.body), []);
    assert.equal(checked.body.inputs.find((i: any) => i.name === 'complaints').penalty, 0);

    // A second one: 0.18 %, at or above the target and under the ceiling.
    await toMx(
      aolReport(first.copy, { rcpt: 'many2@remote.test', type: 'fraud' }),
      'fbl@steady.test',
      sender,
    );
    const d = await healthWhen('domains', domain.id, sender, (x) => complaintFindings(x).length > 0);
    const [warning] = complaintFindings(d);
    assert.deepEqual(
      [
        warning.code,
        warning.severity,
        warning.penalty,
        warning.evidence.complaints,
        warning.evidence.delivered,
      ],
      ['complaints.rate_elevated', 'warning', 15, 2, 1100],
    );
    assert.equal(warning.evidence.threshold, 0.001);
    // Not-spam is no complaint: the rate does not move.
    await toMx(
      aolReport(first.copy, { rcpt: 'many3@remote.test', type: 'not-spam' }),
      'fbl@steady.test',
      sender,
    );
    const again = await api('POST', `/v1/health/domains/${domain.id}/check`, sender);
    assert.deepEqual(
      complaintFindings(again.body).map((f: any) => [f.code, f.evidence.complaints]),
      [['complaints.rate_elevated', 2]],
    );

    // Three delivered and one complaint is 33 %, but too few delivered to make a rate: shown, not deducted.
    const small = await newOrg(t);
    const smallDomain = await verifiedDomain(t, small.token, 'small.test', dns);
    const few = await sendAndDeliver({ from: 'news@small.test', to: recipients('few', 3) }, small);
    await toMx(aolReport(few.copy, { rcpt: 'few0@remote.test', type: 'abuse' }), 'fbl@small.test', small);
    const s = await healthWhen('domains', smallDomain.id, small, (x) => complaintFindings(x).length > 0);
    const [info] = complaintFindings(s);
    assert.deepEqual(
      [info.code, info.severity, info.penalty, info.evidence.complaints, info.evidence.delivered],
      ['complaints.low_volume', 'info', 0, 1, 3],
    );
    assert.equal(s.inputs.find((i: any) => i.name === 'complaints').penalty, 0);
  });

  test('complaints are organisation scoped: another organisation gets 404 and cannot claim them', async () => {
    const sent = await sendAndDeliver({ to: ['kim@remote.test'] });
    await toMx(aolReport(sent.copy, { rcpt: 'kim@remote.test', type: 'abuse' }), 'fbl@hosted.test');
    const [mine] = await complaintAbout(sent.id);
    assert.equal(mine.matched, true);

    const other = await newOrg(t);
    await verifiedDomain(t, other.token, 'other.test', dns);
    assert.equal((await api('GET', `/v1/complaints/${mine.id}`, other)).status, 404);
    assert.equal((await complaints('', other)).total, 0);
    // Org A's genuine VERP address, reported at org B's feedback address: B did not send it.
    const sentAgain = await sendAndDeliver({ to: ['lee@remote.test'] });
    await toMx(
      aolReport(sentAgain.copy, { rcpt: 'lee@remote.test', type: 'abuse' }),
      'fbl@other.test',
      other,
    );
    const [foreign] = (await complaints('', other)).items;
    assert.equal(foreign.matched, false);
    assert.equal(foreign.message_id, null);
    assert.equal(foreign.domain, 'other.test');
    assert.equal((await suppression('lee@remote.test', other)).status, 404);
    assert.equal((await suppression('lee@remote.test')).status, 404);
    assert.deepEqual(await complaintAbout(sentAgain.id), []);

    // Scopes: a key needs complaints:read.
    const key = async (scopes: string[]) =>
      (await api('POST', `/v1/organizations/${org.orgId}/api-keys`, org, { name: scopes.join(), scopes }))
        .body.key as string;
    const reader = await key(['complaints:read']);
    assert.equal((await t.call('GET', `/v1/complaints/${mine.id}`, { token: reader })).status, 200);
    const unrelated = await key(['suppressions:read']);
    assert.equal((await t.call('GET', '/v1/complaints', { token: unrelated })).status, 403);
  });

  // ---- helpers -----------------------------------------------------------------------------------------

  async function resolve(name: string, type: string) {
    const r = new Resolver();
    r.setServers([dns[0].address]);
    return r.resolve(name, type as 'TXT');
  }

  /** Sends through submission as sender@hosted.test; the message as the sink got it. */
  async function submit(input: { to: string; subject: string; headers?: Record<string, string> }) {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: t.submissionPort,
      secure: false,
      requireTLS: true,
      tls: { rejectUnauthorized: false },
      auth: { user: 'sender@hosted.test', pass: 'sender password 123' },
    });
    try {
      const info = await transport.sendMail({ from: 'sender@hosted.test', text: 'hello', ...input });
      const [copy] = await until(
        async () => sink.messages.filter((m) => m.raw.includes(info.messageId)),
        (list) => list.length > 0,
      );
      return copy.raw;
    } finally {
      transport.close();
    }
  }
});

describe('reading feedback reports', () => {
  const report = (top: string[], parts: string[][], boundary = 'rb') =>
    Buffer.from(
      crlf([
        ...top,
        'MIME-Version: 1.0',
        `Content-Type: multipart/report; report-type=feedback-report; boundary="${boundary}"`,
        '',
        ...parts.flatMap((p) => [`--${boundary}`, ...p]),
        `--${boundary}--`,
        '',
      ]),
    );

  test('encoded parts, several recipients, the receiving system’s fields, any case', async () => {
    const fields = crlf([
      'Feedback-Type: Abuse',
      'User-Agent: SomeGenerator/1.0',
      'Version: 1',
      'Original-Mail-From: <>',
      'Original-Rcpt-To: <One@Example.ORG>',
      'Original-Rcpt-To: rfc822; two@example.org',
      'Arrival-Date: Thu, 8 Mar 2026 14:00:00 -0500 (EST)',
      'Source-IP: [2001:db8::25]',
      'Reported-Domain: Hosted.Test',
      '',
    ]);
    const original = crlf([
      'Return-Path: <B+Token@Bounces.Hosted.Test>',
      'X-Apparently-To: three@example.org; Thu, 08 Mar 2026 19:00:00 +0000',
      'Delivered-To: four@example.org',
      'From: =?UTF-8?Q?J=C3=B6rg?= <news@hosted.test>',
      'To: "Team" <team@example.org>, undisclosed-recipients:;',
      'Cc: Five <five@example.org>',
      'Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=',
      'Message-ID: <abc.123@hosted.test>',
      '',
      'body',
    ]);
    const parsed = await parseFeedbackReport(
      report(
        ['From: "Feedback =?UTF-8?Q?L=C3=B6op?=" <fbl@isp.example>', 'To: fbl@hosted.test'],
        [
          ['Content-Type: text/plain', '', 'A report.'],
          [
            'Content-Type: message/feedback-report',
            'Content-Transfer-Encoding: base64',
            '',
            Buffer.from(fields).toString('base64'),
          ],
          [
            'Content-Type: message/rfc822',
            'Content-Transfer-Encoding: quoted-printable',
            '',
            original.replace(/=/g, '=3D'),
          ],
        ],
      ),
    );
    assert.deepEqual(parsed, {
      feedbackType: 'abuse',
      userAgent: 'SomeGenerator/1.0',
      version: '1',
      reporter: 'fbl@isp.example',
      originalMailFrom: null,
      originalRcptTo: ['one@example.org', 'two@example.org'],
      arrivalDate: new Date('2026-03-08T19:00:00Z'),
      sourceIp: '2001:db8::25',
      reportedDomain: 'hosted.test',
      original: {
        messageId: '<abc.123@hosted.test>',
        returnPath: 'b+token@bounces.hosted.test',
        from: 'news@hosted.test',
        subject: 'Grüße',
        to: ['team@example.org'],
        cc: ['five@example.org'],
        receivers: ['three@example.org', 'four@example.org'],
      },
    });
  });

  test('a report wrapped by a gateway is found; a report without its machine part has no type', async () => {
    const inner = report(
      [],
      [
        ['Content-Type: text/plain', '', 'A report.'],
        ['Content-Type: text/rfc822-headers', '', 'Message-ID: <x@hosted.test>', ''],
      ],
      'inner',
    ).toString();
    const wrapped = crlf([
      'From: gateway@isp.example',
      'Content-Type: multipart/mixed; boundary=outer',
      '',
      '--outer',
      'Content-Type: text/plain',
      '',
      'Forwarded by the gateway.',
      '--outer',
      inner.slice(inner.indexOf('Content-Type:')),
      '--outer--',
      '',
    ]);
    const parsed = await parseFeedbackReport(Buffer.from(wrapped));
    assert.equal(parsed?.feedbackType, null);
    assert.equal(parsed?.original?.messageId, '<x@hosted.test>');
  });

  test('bounces, ordinary and forwarded mail, and garbage are not reports', async () => {
    const dsn = crlf([
      'From: MAILER-DAEMON@mx.example.org',
      'Content-Type: multipart/report; report-type=delivery-status; boundary="d"',
      '',
      '--d',
      'Content-Type: message/delivery-status',
      '',
      'Final-Recipient: rfc822; gone@example.org',
      'Action: failed',
      'Status: 5.1.1',
      '--d--',
      '',
    ]);
    const plain = crlf(['From: a@example.org', 'Subject: hi', '', 'feedback-report in the text']);
    // A person forwarding a report as an attachment: the report is inside a message of theirs.
    const forwarded = crlf([
      'From: alice@example.org',
      'Content-Type: multipart/mixed; boundary="f"',
      '',
      '--f',
      'Content-Type: text/plain',
      '',
      'Look at this complaint.',
      '--f',
      'Content-Type: message/rfc822',
      '',
      report(
        ['From: fbl@isp.example'],
        [['Content-Type: message/feedback-report', '', 'Feedback-Type: abuse']],
      ).toString(),
      '--f--',
      '',
    ]);
    for (const raw of [dsn, plain, forwarded])
      assert.equal(await parseFeedbackReport(Buffer.from(raw)), null);
    assert.equal(await parseFeedbackReport(Buffer.alloc(0)), null);
    for (let i = 0; i < 20; i++) assert.equal(await parseFeedbackReport(randomBytes(2048)), null);
    const noBoundary = 'Content-Type: multipart/report; report-type=feedback-report\r\n\r\n--x\r\n';
    assert.equal(await parseFeedbackReport(Buffer.from(noBoundary)), null);
  });
});

/** The message as the remote MX stored it: its Return-Path and Received on top of what we sent. */
function stored(copy: SinkMessage, extra: string[] = []): string {
  return crlf([
    `Return-Path: <${copy.mailFrom}>`,
    ...extra,
    'Received: from mx.feedback.test (mx.feedback.test [127.0.0.1]) by mx.remote.test with ESMTPS; Mon, 9 Mar 2026 14:12:31 +0000',
    copy.raw.toString(),
  ]);
}

/**
 * Yahoo's Complaint Feedback Loop: sent to the registered address (here the VERP return path), no
 * Original-Rcpt-To, the whole message returned (with Yahoo's own trace and authentication fields).
 */
function yahooReport(copy: SinkMessage, to: string): string {
  const b = '----=_Part_2937_1149861244.1773065551812';
  return crlf([
    'From: Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.com>',
    `To: ${to}`,
    'Subject: FW: Our spring offers',
    'Date: Mon, 9 Mar 2026 14:12:31 +0000',
    'Message-ID: <1773065551812.2937@arf.mail.yahoo.com>',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=feedback-report; boundary="${b}"`,
    '',
    `--${b}`,
    'Content-Type: text/plain; charset=US-ASCII',
    'Content-Transfer-Encoding: 7bit',
    '',
    'This is an email abuse report for an email message received from IP 127.0.0.1 on Mon, 9 Mar 2026 14:12:31 +0000.',
    'For more information about this format please see http://www.mipassoc.org/arf/.',
    '',
    `--${b}`,
    'Content-Type: message/feedback-report',
    '',
    'Feedback-Type: abuse',
    'User-Agent: Yahoo!-Mail-Feedback/2.0',
    'Version: 0.1',
    'Received-Date: Mon, 9 Mar 2026 14:12:31 +0000',
    'Source-IP: 127.0.0.1',
    'Authentication-Results: mta1004.mail.gq1.yahoo.com  from=hosted.test; domainkeys=neutral (no sig);  from=hosted.test; dkim=pass (ok)',
    'Reported-Domain: hosted.test',
    '',
    `--${b}`,
    'Content-Type: message/rfc822',
    '',
    stored(copy),
    '',
    `--${b}--`,
    '',
  ]);
}

/**
 * Microsoft JMRP: ARF with the message returned inline and the recipient redacted (the To field and the
 * X-HmXmrOriginalRecipient field are blanked), no Original-Mail-From; only the Message-ID is left.
 */
function jmrpReport(copy: SinkMessage): string {
  const b = 'JMRP_boundary_4d2f0c1e';
  const original = copy.raw
    .toString()
    .replace(/^To: .*$/m, 'To: <redacted>')
    .replace(/^Return-Path: .*\r\n/m, '');
  return crlf([
    'From: staff@hotmail.com',
    'To: fbl@hosted.test',
    'Subject: complaint about message from 127.0.0.1',
    'Date: Mon, 9 Mar 2026 15:01:07 -0800',
    'Message-ID: <JMRP.2a8e4d0b@hotmail.com>',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=feedback-report; boundary="${b}"`,
    '',
    `--${b}`,
    'Content-Type: text/plain; charset="us-ascii"',
    '',
    'This is an email abuse report for an email message received from IP 127.0.0.1 on Mon, 09 Mar 2026 15:00:59 -0800',
    `--${b}`,
    'Content-Type: message/feedback-report',
    '',
    'Feedback-Type: abuse',
    'User-Agent: Microsoft Junk Mail Reporting Program',
    'Version: 1.0',
    'Source-IP: 127.0.0.1',
    'Arrival-Date: Mon, 09 Mar 2026 15:00:59 -0800',
    '',
    `--${b}`,
    'Content-Type: message/rfc822',
    'Content-Disposition: inline',
    '',
    'X-HmXmrOriginalRecipient: <redacted>',
    'X-Message-Status: n:0',
    original,
    `--${b}--`,
    '',
  ]);
}

/**
 * AOL's format, copied by most other feedback loops: every field of RFC 5965, the header of the message
 * returned as text/rfc822-headers.
 */
function aolReport(
  copy: SinkMessage,
  o: { rcpt: string; type: string; verp?: boolean; mailFrom?: string },
): string {
  const b = 'boundary-1773065551-aol';
  const mailFrom = o.mailFrom ?? copy.mailFrom;
  const raw = copy.raw.toString();
  const header = raw.slice(0, raw.indexOf('\r\n\r\n') + 2);
  return crlf([
    'From: AOL Feedback Loop <scomp@aol.net>',
    'To: fbl@hosted.test',
    'Subject: Email Feedback Report for IP 127.0.0.1',
    'Date: Mon, 9 Mar 2026 14:20:00 -0500',
    'Message-ID: <20260309142000.scomp.41@aol.net>',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=feedback-report; boundary="${b}"`,
    '',
    'This is a MIME-formatted message.',
    '',
    `--${b}`,
    'Content-Type: text/plain; charset="US-ASCII"',
    'Content-Transfer-Encoding: 7bit',
    '',
    'This is an email abuse report for an email message received from IP 192.0.2.25 on Mon, 9 Mar 2026 14:12:31 +0000.',
    '',
    `--${b}`,
    'Content-Type: message/feedback-report',
    '',
    `Feedback-Type: ${o.type}`,
    'User-Agent: AOL SComp',
    'Version: 1',
    ...(o.verp === false ? [] : [`Original-Mail-From: <${mailFrom}>`]),
    `Original-Rcpt-To: ${o.rcpt}`,
    'Arrival-Date: Mon, 9 Mar 2026 14:12:31 +0000',
    'Source-IP: 192.0.2.25',
    'Reported-Domain: hosted.test',
    '',
    `--${b}`,
    'Content-Type: text/rfc822-headers',
    '',
    o.verp === false ? header : `Return-Path: <${mailFrom}>\r\n${header}`,
    `--${b}--`,
    '',
  ]);
}
