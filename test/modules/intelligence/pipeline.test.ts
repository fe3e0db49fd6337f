// Mail intelligence end to end: mail through the real MX into hosted mailboxes is analysed by the worker
// after filing (GET /v1/messages/:id `analysis`, `message.analyzed`), spam goes to Junk as an IMAP client
// sees it, phishing is named with its findings, reports (the API, IMAP MOVE, $Junk) teach the filter,
// lists and search filter on the analysis, a re-analysis is a job that moves nothing, the settings and
// custom categories take effect, and another organisation sees none of it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ImapFlow } from 'imapflow';
import {
  engine,
  eventsOf,
  type Org,
  signUp,
  signUpWithOrg,
  startTestApp,
  type TestApp,
} from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';
import { imapClient } from '../../support/imap.ts';
import {
  type Composed,
  germanNote,
  invoice,
  meetingAgenda,
  moneySpam,
  outreach,
  paypalPhish,
  weekendPlans,
} from '../../support/intelligence-mail.ts';
import { sendMail } from '../../support/smtp.ts';
import { until } from '../../support/until.ts';

const DOMAIN = 'intel.test';
const OTHER_DOMAIN = 'other-intel.test';
const PASSWORD = 'a long mailbox password';
const THRESHOLD = 0.7;

describe(`mail intelligence pipeline on ${engine}`, () => {
  let t: TestApp;
  let dns: TestDnsServer;
  let org: Org;
  let ownerId: string;
  let other: Org;
  /** Mailbox ids by address. */
  const mailboxes = new Map<string, string>();
  const clients: ImapFlow[] = [];

  const call = async (method: string, url: string, body?: unknown, status = 200, as: Org = org) => {
    const res = await t.call(method, url, { token: as.token, body });
    assert.equal(res.status, status, `${method} ${url}: ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const newMailbox = async (address: string, as: Org = org) => {
    const created = await call('POST', '/v1/mailboxes', { address, password: PASSWORD }, 201, as);
    mailboxes.set(address, created.id);
    return created.id as string;
  };

  /** The message once the MX filed it (found by its Message-ID among its recipient's messages). */
  const filed = (mail: Composed, as: Org = org) =>
    until(
      async () => {
        const page = await call(
          'GET',
          `/v1/messages?recipient=${encodeURIComponent(mail.to)}&page_size=100`,
          undefined,
          200,
          as,
        );
        return page.items.find((m: any) => m.message_id_header === mail.messageId);
      },
      (found) => found !== undefined,
    );
  /** GET /v1/messages/:id once its analysis is there. */
  const analysed = (id: string, as: Org = org) =>
    until(
      () => call('GET', `/v1/messages/${id}`, undefined, 200, as),
      (m) => m.analysis !== null,
      30_000,
    );
  /** Sends through the MX and waits for the analysis; the message detail. */
  const deliver = async (mail: Composed, as: Org = org) => {
    await sendMail(t.smtpPort, { from: mail.from, to: mail.to, raw: mail.raw });
    const message = await filed(mail, as);
    return analysed(message.id, as);
  };
  const connect = async (address: string) => {
    const client = await imapClient(t.imapPort, address, PASSWORD);
    clients.push(client);
    return client;
  };
  /** UIDs in `folder` of messages with this subject, as a new IMAP session sees them. */
  const uidsIn = async (address: string, folder: string, subject: string) => {
    const client = await imapClient(t.imapPort, address, PASSWORD);
    try {
      const lock = await client.getMailboxLock(folder);
      try {
        return (await client.search({ subject }, { uid: true })) || [];
      } finally {
        lock.release();
      }
    } finally {
      await client.logout().catch(() => client.close());
    }
  };
  const reportRow = async (messageId: string) => {
    const { rows } = await t.app.database.query<{ verdict: string; source: string; learned: string | null }>(
      'select verdict, source, learned from spam_reports where message_id = $1',
      [messageId],
    );
    return rows[0] ?? null;
  };
  const listIds = async (query: string, as: Org = org) =>
    ((await call('GET', `/v1/messages?${query}&page_size=100`, undefined, 200, as)).items as any[])
      .map((m) => m.id)
      .sort();
  const searchIds = async (query: string, as: Org = org) =>
    ((await call('GET', `/v1/messages/search?${query}&page_size=100`, undefined, 200, as)).items as any[])
      .map((m) => m.id)
      .sort();

  before(async () => {
    dns = await startDnsServer();
    t = await startTestApp({
      smtp: true,
      imap: true,
      workers: true,
      env: { MAILROOM_HOSTNAME: `mx.${DOMAIN}`, MAILROOM_DNS_SERVERS: dns.address },
    });
    const owner = await signUpWithOrg(t, 'intel-owner@example.com', 'Intel Co');
    org = owner;
    ownerId = owner.id;
    other = await signUpWithOrg(t, 'intel-other@example.com', 'Other Co');
    await verifiedDomain(t, org.token, DOMAIN, [dns]);
    await verifiedDomain(t, other.token, OTHER_DOMAIN, [dns]);
    for (const local of ['alice', 'sales', 'filters', 'settings', 'billing'])
      await newMailbox(`${local}@${DOMAIN}`);
    await newMailbox(`bob@${OTHER_DOMAIN}`, other);
  });
  after(async () => {
    for (const c of clients) await c.logout().catch(() => c.close());
    await t?.close();
    await dns?.close();
  });

  test('mail through the MX is analysed after filing: every part of the analysis, and message.analyzed', async () => {
    const mail = meetingAgenda(`alice@${DOMAIN}`, 'agenda-1');
    const message = await deliver(mail);
    const a = message.analysis;
    assert.equal(message.status, 'delivered');
    assert.equal(a.spam.verdict, false);
    assert.equal(a.spam.engine, 'builtin');
    assert.ok(a.spam.score >= 0 && a.spam.score < THRESHOLD, `spam score ${a.spam.score}`);
    assert.ok(a.spam.symbols.length > 0, 'the built-in model names its strongest features');
    for (const s of a.spam.symbols) {
      assert.equal(typeof s.name, 'string');
      assert.equal(typeof s.score, 'number');
    }
    assert.deepEqual(a.phishing, { verdict: 'clean', score: 0, findings: [] });
    assert.equal(a.malware, null, 'no scanner configured: not scanned');
    assert.equal(a.language, 'en');
    assert.equal(a.sentiment.label, 'positive');
    assert.ok(a.sentiment.score > 0 && a.sentiment.score <= 1);
    assert.equal(a.category, 'primary');
    assert.equal(a.priority, 'normal');
    assert.ok(a.keywords.includes('meeting'), JSON.stringify(a.keywords));
    assert.ok(a.entities.people.includes('Maria Lopez'), JSON.stringify(a.entities));
    assert.deepEqual(
      a.entities.amounts.map((x: any) => [x.value, x.currency]),
      [[12500, 'USD']],
    );
    assert.deepEqual(a.entities.phones, ['+14155550134']);
    assert.match(a.summary, /planning meeting/);
    assert.ok(!Number.isNaN(Date.parse(a.analyzed_at)));

    const event = (await eventsOf(t, org, 'message.analyzed')).find((e) => e.data.message_id === message.id);
    assert.ok(event, 'message.analyzed recorded');
    assert.deepEqual(event.data, {
      message_id: message.id,
      spam: false,
      spam_score: a.spam.score,
      phishing: 'clean',
      malware: null,
      language: 'en',
      sentiment: 'positive',
      category: 'primary',
      priority: 'normal',
      junked: false,
    });
    // Still where the MX filed it.
    assert.equal((await uidsIn(`alice@${DOMAIN}`, 'INBOX', mail.subject)).length, 1);
  });

  test('clear spam is moved from INBOX to Junk (not as a person’s report); ham stays in INBOX', async () => {
    const address = `alice@${DOMAIN}`;
    const spamMail = moneySpam(address, 'money-1');
    const hamMail = weekendPlans(address, 'weekend-1');
    const [spam, ham] = await Promise.all([deliver(spamMail), deliver(hamMail)]);
    assert.equal(spam.analysis.spam.verdict, true);
    assert.ok(spam.analysis.spam.score >= THRESHOLD, `spam score ${spam.analysis.spam.score}`);
    assert.equal(ham.analysis.spam.verdict, false);

    assert.deepEqual(await uidsIn(address, 'INBOX', spamMail.subject), []);
    assert.equal((await uidsIn(address, 'Junk', spamMail.subject)).length, 1);
    assert.equal((await uidsIn(address, 'INBOX', hamMail.subject)).length, 1);
    assert.deepEqual(await uidsIn(address, 'Junk', hamMail.subject), []);

    const analysed = await eventsOf(t, org, 'message.analyzed');
    assert.equal(analysed.find((e) => e.data.message_id === spam.id)?.data.junked, true);
    assert.equal(analysed.find((e) => e.data.message_id === ham.id)?.data.junked, false);
    // The filter's own move teaches the filter nothing.
    assert.equal(await reportRow(spam.id), null);
  });

  test('brand-lookalike credential phishing: verdict phishing with named findings, and message.phishing_detected', async () => {
    const message = await deliver(paypalPhish(`alice@${DOMAIN}`, 'phish-1'));
    const phishing = message.analysis.phishing;
    assert.equal(phishing.verdict, 'phishing');
    assert.ok(phishing.score >= 6, `score ${phishing.score}`);
    const codes = phishing.findings.map((f: any) => f.code);
    for (const code of ['display_name_brand_mismatch', 'credential_request', 'confusable_domain'])
      assert.ok(codes.includes(code), `${code} among ${codes}`);
    for (const f of phishing.findings) {
      assert.ok(['low', 'medium', 'high'].includes(f.severity));
      assert.ok(f.evidence.length > 0);
    }
    const brand = phishing.findings.find((f: any) => f.code === 'display_name_brand_mismatch');
    assert.match(brand.evidence, /paypal/i);
    const lookalike = phishing.findings.find((f: any) => f.code === 'confusable_domain');
    assert.match(lookalike.evidence, /paypa1-support\.com/);

    const event = (await eventsOf(t, org, 'message.phishing_detected')).find(
      (e) => e.data.message_id === message.id,
    );
    assert.ok(event, 'message.phishing_detected recorded');
    assert.equal(event.data.verdict, 'phishing');
    assert.equal(event.data.score, phishing.score);
    assert.deepEqual(
      event.data.findings,
      phishing.findings.map((f: any) => ({ code: f.code, severity: f.severity, evidence: f.evidence })),
    );
    // Clean mail raises no such event.
    const clean = (await eventsOf(t, org, 'message.analyzed')).filter((e) => e.data.phishing === 'clean');
    const flagged = new Set(
      (await eventsOf(t, org, 'message.phishing_detected')).map((e) => e.data.message_id),
    );
    assert.ok(clean.length > 0 && clean.every((e) => !flagged.has(e.data.message_id)));
  });

  test('ten spam reports of a campaign send its next message to Junk; the other organisation has learned nothing', async () => {
    const address = `sales@${DOMAIN}`;
    const first = await Promise.all(
      Array.from({ length: 10 }, (_, i) => deliver(outreach(i, address, `outreach-${i}`))),
    );
    for (const m of first) {
      assert.equal(m.analysis.spam.verdict, false, `${m.subject}: ${m.analysis.spam.score}`);
    }
    const inbox = await call('GET', `/v1/mailboxes/${mailboxes.get(address)}/folders`);
    assert.equal(inbox.items.find((f: any) => f.name === 'INBOX').messages, 10);

    for (const m of first) {
      const res = await call('POST', `/v1/messages/${m.id}/report`, { verdict: 'spam' }, 202);
      assert.deepEqual(res, { message_id: m.id, verdict: 'spam' });
    }
    // Learned by the worker before it analyses anything else.
    await until(
      () => Promise.all(first.map((m) => reportRow(m.id))),
      (rows) => rows.every((r) => r?.verdict === 'spam' && r.source === 'api' && r.learned === 'spam'),
    );

    const nextMail = outreach(11, address, 'outreach-11');
    const next = await deliver(nextMail);
    assert.equal(next.analysis.spam.verdict, true, `after ten reports: ${next.analysis.spam.score}`);
    assert.ok(next.analysis.spam.symbols.some((s: any) => s.name === 'body:leadflow' && s.score > 0));
    assert.deepEqual(await uidsIn(address, 'INBOX', nextMail.subject), []);
    assert.equal((await uidsIn(address, 'Junk', nextMail.subject)).length, 1);

    // What this organisation taught its filter is its own.
    const elsewhere = await deliver(outreach(11, `bob@${OTHER_DOMAIN}`, 'outreach-other'), other);
    assert.equal(elsewhere.analysis.spam.verdict, false, `other org: ${elsewhere.analysis.spam.score}`);
  });

  test('IMAP: MOVE into Junk is a spam report, out of Junk a ham report; STORE +FLAGS $Junk a spam report', async () => {
    const address = `alice@${DOMAIN}`;
    const moved = weekendPlans(address, 'weekend-2', 'Re: hike on Sunday');
    const flagged = weekendPlans(address, 'weekend-3', 'Re: tent poles');
    const [movedMessage, flaggedMessage] = await Promise.all([deliver(moved), deliver(flagged)]);
    assert.equal(movedMessage.analysis.spam.verdict, false);
    assert.equal(flaggedMessage.analysis.spam.verdict, false);

    const client = await connect(address);
    let lock = await client.getMailboxLock('INBOX');
    try {
      const [uid] = (await client.search({ subject: moved.subject }, { uid: true })) || [];
      assert.ok(uid);
      assert.ok(await client.messageMove(String(uid), 'Junk', { uid: true }));
    } finally {
      lock.release();
    }
    // Recorded in the move's own transaction; learned by the worker soon after.
    const recorded = await reportRow(movedMessage.id);
    assert.equal(recorded?.verdict, 'spam');
    assert.equal(recorded?.source, 'imap_move');
    await until(
      () => reportRow(movedMessage.id),
      (r) => r?.learned === 'spam',
    );

    lock = await client.getMailboxLock('Junk');
    try {
      const [uid] = (await client.search({ subject: moved.subject }, { uid: true })) || [];
      assert.ok(uid);
      assert.ok(await client.messageMove(String(uid), 'INBOX', { uid: true }));
    } finally {
      lock.release();
    }
    assert.equal((await reportRow(movedMessage.id))?.verdict, 'ham');
    // A changed mind is learned too (the spam counts taken back, ham added).
    await until(
      () => reportRow(movedMessage.id),
      (r) => r?.verdict === 'ham' && r.source === 'imap_move' && r.learned === 'ham',
    );

    lock = await client.getMailboxLock('INBOX');
    try {
      const [uid] = (await client.search({ subject: flagged.subject }, { uid: true })) || [];
      assert.ok(uid);
      assert.ok(await client.messageFlagsAdd(String(uid), ['$Junk'], { uid: true }));
      // A flag nobody watches is not a report.
      const [plain] = (await client.search({ subject: moved.subject }, { uid: true })) || [];
      await client.messageFlagsAdd(String(plain), ['\\Flagged'], { uid: true });
    } finally {
      lock.release();
    }
    await until(
      () => reportRow(flaggedMessage.id),
      (r) => r?.verdict === 'spam' && r.source === 'imap_keyword' && r.learned === 'spam',
    );
    assert.equal((await reportRow(movedMessage.id))?.verdict, 'ham');
    // The keyword does not move the message.
    assert.equal((await uidsIn(address, 'INBOX', flagged.subject)).length, 1);

    // Two copies of one message (a COPY within INBOX) moved into Junk together: one spam report.
    lock = await client.getMailboxLock('INBOX');
    try {
      const [uid] = (await client.search({ subject: moved.subject }, { uid: true })) || [];
      assert.ok(await client.messageCopy(String(uid), 'INBOX', { uid: true }));
      const both = (await client.search({ subject: moved.subject }, { uid: true })) || [];
      assert.equal(both.length, 2);
      assert.ok(await client.messageMove(both.join(','), 'Junk', { uid: true }));
    } finally {
      lock.release();
    }
    assert.equal((await uidsIn(address, 'Junk', moved.subject)).length, 2);
    await until(
      () => reportRow(movedMessage.id),
      (r) => r?.verdict === 'spam' && r.source === 'imap_move' && r.learned === 'spam',
    );
  });

  test('lists and search filter on spam, phishing, category, sentiment and language', async () => {
    const address = `filters@${DOMAIN}`;
    const mailbox = mailboxes.get(address)!;
    const [ham, german, spam, phish] = await Promise.all([
      deliver(meetingAgenda(address, 'f-ham', 'Bluefin planning agenda')),
      deliver(germanNote(address, 'f-de')),
      deliver(moneySpam(address, 'f-spam', 'Bluefin: make $5,000 a week from home - GUARANTEED!!!')),
      deliver(paypalPhish(address, 'f-phish')),
    ]);
    assert.equal(german.analysis.language, 'de');
    assert.equal(spam.analysis.spam.verdict, true);
    assert.equal(phish.analysis.phishing.verdict, 'phishing');
    const ids = (...ms: any[]) => ms.map((m) => m.id).sort();
    const inMailbox = `mailbox_id=${mailbox}`;

    assert.deepEqual(await listIds(inMailbox), ids(ham, german, spam, phish));
    assert.deepEqual(
      await listIds(`${inMailbox}&spam=true`),
      ids(...[ham, german, spam, phish].filter((m) => m.analysis.spam.verdict)),
    );
    assert.ok((await listIds(`${inMailbox}&spam=true`)).includes(spam.id));
    assert.deepEqual(await listIds(`${inMailbox}&spam=false`), ids(ham, german));
    assert.deepEqual(await listIds(`${inMailbox}&phishing=phishing`), ids(phish));
    assert.deepEqual(await listIds(`${inMailbox}&phishing=clean`), ids(ham, german, spam));
    assert.deepEqual(await listIds(`${inMailbox}&category=updates`), ids(phish));
    assert.deepEqual(await listIds(`${inMailbox}&sentiment=negative`), ids(phish));
    assert.deepEqual(await listIds(`${inMailbox}&language=de`), ids(german));
    assert.deepEqual(await listIds(`${inMailbox}&language=en`), ids(ham, spam, phish));
    assert.deepEqual(await listIds(`${inMailbox}&language=en&spam=false`), ids(ham));
    // Org-wide: every German message is this one.
    assert.deepEqual(await listIds('language=de'), ids(german));
    assert.deepEqual(await listIds('phishing=suspicious'), []);

    assert.deepEqual(await searchIds('q=bluefin'), ids(ham, spam));
    assert.deepEqual(await searchIds('q=bluefin&spam=false'), ids(ham));
    assert.deepEqual(await searchIds('q=bluefin&spam=true'), ids(spam));
    assert.deepEqual(await searchIds('q=bluefin&language=de'), []);

    const bad = await t.call('GET', '/v1/messages?phishing=maybe', { token: org.token });
    assert.equal(bad.status, 400);
    const badLanguage = await t.call('GET', '/v1/messages/search?q=x&language=English', { token: org.token });
    assert.equal(badLanguage.status, 400);
  });

  test('settings: defaults, a lower threshold files ham to Junk, junk_filing false keeps spam in INBOX', async () => {
    const address = `settings@${DOMAIN}`;
    const defaults = await call('GET', '/v1/intelligence/settings');
    assert.deepEqual(defaults, {
      spam_threshold: THRESHOLD,
      spam_threshold_default: true,
      junk_filing: true,
      quarantine_malware: true,
      llm_daily_tokens: 0,
      custom_categories: [],
    });

    const lowered = await call('PATCH', '/v1/intelligence/settings', { spam_threshold: 0.05 });
    assert.equal(lowered.spam_threshold, 0.05);
    assert.equal(lowered.spam_threshold_default, false);
    const hamMail = meetingAgenda(address, 'settings-ham', 'Agenda for the Monday sync');
    const ham = await deliver(hamMail);
    assert.ok(ham.analysis.spam.score >= 0.05 && ham.analysis.spam.score < THRESHOLD);
    assert.equal(ham.analysis.spam.verdict, true, 'at or above the organisation’s threshold');
    assert.equal((await uidsIn(address, 'Junk', hamMail.subject)).length, 1);

    const noFiling = await call('PATCH', '/v1/intelligence/settings', {
      spam_threshold: null,
      junk_filing: false,
    });
    assert.equal(noFiling.spam_threshold, THRESHOLD);
    assert.equal(noFiling.spam_threshold_default, true);
    assert.equal(noFiling.junk_filing, false);
    assert.deepEqual(await call('GET', '/v1/intelligence/settings'), noFiling);
    const spamMail = moneySpam(
      address,
      'settings-spam',
      'Work from home and earn $5,000 a week - GUARANTEED!!!',
    );
    const spam = await deliver(spamMail);
    assert.equal(spam.analysis.spam.verdict, true);
    assert.equal((await uidsIn(address, 'INBOX', spamMail.subject)).length, 1);
    assert.deepEqual(await uidsIn(address, 'Junk', spamMail.subject), []);
    const event = (await eventsOf(t, org, 'message.analyzed')).find((e) => e.data.message_id === spam.id);
    assert.equal(event?.data.junked, false);

    const restored = await call('PATCH', '/v1/intelligence/settings', { junk_filing: true });
    assert.deepEqual(restored, defaults);
  });

  test('re-analysis of a mailbox is a job that finishes with done == total and moves nothing', async () => {
    // The settings mailbox holds spam left in INBOX (Junk filing was off) and ham filed to Junk under a
    // low threshold: analysed again under the defaults, the ham is ham again, and neither message moves.
    const address = `settings@${DOMAIN}`;
    const mailbox = mailboxes.get(address)!;
    const messages = (await call('GET', `/v1/messages?mailbox_id=${mailbox}&page_size=100`)).items as any[];
    assert.equal(messages.length, 2);
    const earlier = new Map<string, any>();
    for (const m of messages) earlier.set(m.id, (await call('GET', `/v1/messages/${m.id}`)).analysis);
    const foldersBefore = (await call('GET', `/v1/mailboxes/${mailbox}/folders`)).items.map((f: any) => [
      f.name,
      f.messages,
    ]);
    const eventsBefore = (await eventsOf(t, org, 'message.analyzed')).length;

    const job = await call('POST', '/v1/intelligence/reanalyze', { mailbox_id: mailbox }, 202);
    assert.equal(job.kind, 'intelligence.reanalyze');
    assert.equal(job.total, 2);
    const done = await until(
      () => call('GET', `/v1/jobs/${job.id}`),
      (j) => ['succeeded', 'failed', 'cancelled'].includes(j.state),
      30_000,
    );
    assert.equal(done.state, 'succeeded', JSON.stringify(done));
    assert.equal(done.done, done.total);
    assert.equal(done.total, 2);
    assert.equal(done.error_count, 0);

    for (const m of messages) {
      const now = (await call('GET', `/v1/messages/${m.id}`)).analysis;
      const then = earlier.get(m.id);
      assert.ok(now.analyzed_at > then.analyzed_at, 'analysed again');
      assert.equal(now.spam.score, then.spam.score, 'the same message scores the same');
      assert.equal(now.spam.verdict, now.spam.score >= THRESHOLD, 'under the threshold in force now');
    }
    const spam = messages.find((m) => earlier.get(m.id).spam.score >= THRESHOLD);
    const ham = messages.find((m) => earlier.get(m.id).spam.score < THRESHOLD);
    assert.equal(earlier.get(ham.id).spam.verdict, true, 'spam under the lowered threshold');
    assert.equal((await call('GET', `/v1/messages/${ham.id}`)).analysis.spam.verdict, false);
    assert.equal((await call('GET', `/v1/messages/${spam.id}`)).analysis.spam.verdict, true);
    const foldersAfter = (await call('GET', `/v1/mailboxes/${mailbox}/folders`)).items.map((f: any) => [
      f.name,
      f.messages,
    ]);
    assert.deepEqual(foldersAfter, foldersBefore);
    assert.equal((await uidsIn(address, 'INBOX', spam.subject)).length, 1, 'spam left where it was');
    assert.equal((await uidsIn(address, 'Junk', ham.subject)).length, 1, 'ham left where it was');
    const events = await eventsOf(t, org, 'message.analyzed');
    assert.equal(events.length, eventsBefore + 2);
    assert.ok(events.slice(0, 2).every((e) => e.data.junked === false));
  });

  test('custom categories: three invoices train "invoices"; the next invoice takes it, other mail does not', async () => {
    const address = `billing@${DOMAIN}`;
    const examples = await Promise.all([0, 1, 2].map((i) => deliver(invoice(i, address, `invoice-${i}`))));
    for (const m of examples) assert.notEqual(m.analysis.category, 'invoices');
    const two = await call('POST', '/v1/intelligence/categories/invoices/examples', {
      message_ids: examples.slice(0, 2).map((m) => m.id),
    });
    assert.deepEqual(two.custom_categories, [], 'two examples do not train a category');
    const trained = await call('POST', '/v1/intelligence/categories/Invoices/examples', {
      message_ids: [examples[2].id],
    });
    assert.deepEqual(trained.custom_categories, ['invoices']);
    assert.deepEqual((await call('GET', '/v1/intelligence/settings')).custom_categories, ['invoices']);

    const [next, meeting] = await Promise.all([
      deliver(invoice(3, address, 'invoice-3')),
      deliver(meetingAgenda(address, 'billing-meeting', 'Agenda for the budget review')),
    ]);
    assert.equal(next.analysis.category, 'invoices');
    assert.equal(meeting.analysis.category, 'primary');
    assert.deepEqual(await listIds(`category=invoices`), [next.id]);

    // A built-in name, someone else's message, a name with punctuation: refused.
    await call('POST', '/v1/intelligence/categories/promotions/examples', { message_ids: [next.id] }, 422);
    const foreign = await deliver(invoice(0, `bob@${OTHER_DOMAIN}`, 'invoice-other'), other);
    await call('POST', '/v1/intelligence/categories/invoices/examples', { message_ids: [foreign.id] }, 404);
    await call('POST', '/v1/intelligence/categories/in%24voices/examples', { message_ids: [next.id] }, 400);
    await call('POST', '/v1/intelligence/categories/invoices/examples', { message_ids: [] }, 400);
    // The same example twice is one example.
    const again = await call('POST', '/v1/intelligence/categories/invoices/examples', {
      message_ids: [examples[0].id, examples[0].id],
    });
    assert.deepEqual(again.custom_categories, ['invoices']);

    // Forgotten: gone from the settings; new mail takes its built-in category again.
    assert.deepEqual((await call('DELETE', '/v1/intelligence/categories/invoices')).custom_categories, []);
    await call('DELETE', '/v1/intelligence/categories/invoices', undefined, 404);
  });

  test('isolation and bad input: another organisation, bad verdicts and thresholds, a member’s rights', async () => {
    // A message nobody reported: the German one.
    const ours = (await call('GET', `/v1/messages?recipient=filters@${DOMAIN}&language=de`)).items[0];
    assert.ok(ours);
    await call('POST', `/v1/messages/${ours.id}/report`, { verdict: 'spam' }, 404, other);
    await call('GET', `/v1/messages/${ours.id}`, undefined, 404, other);
    assert.equal(await reportRow(ours.id), null, 'nothing recorded for a message of another organisation');

    // The other organisation's filtered lists and search hold its own mail only.
    const theirs = await listIds('page=1', other);
    assert.ok(theirs.length >= 2);
    const theirSet = new Set(theirs);
    for (const query of [
      'spam=false',
      'spam=true',
      'category=primary',
      'language=en',
      'phishing=clean',
      'phishing=phishing',
      'category=invoices',
    ]) {
      const found = await listIds(query, other);
      assert.ok(
        found.every((id) => theirSet.has(id)),
        `${query}: ${found}`,
      );
    }
    assert.deepEqual(await listIds('phishing=phishing', other), []);
    assert.deepEqual(await searchIds('q=bluefin&spam=false', other), []);
    assert.deepEqual(
      (await call('GET', '/v1/intelligence/settings', undefined, 200, other)).custom_categories,
      [],
    );
    const reanalyze = await call(
      'POST',
      '/v1/intelligence/reanalyze',
      { mailbox_id: mailboxes.get(`alice@${DOMAIN}`) },
      202,
      other,
    );
    assert.equal(reanalyze.total, 0, 'another organisation’s mailbox is not in scope');

    await call('POST', `/v1/messages/${ours.id}/report`, { verdict: 'ham' }, 400);
    await call('POST', `/v1/messages/${ours.id}/report`, {}, 400);
    await call('POST', `/v1/messages/${ours.id}/report`, { verdict: 'spam', extra: true }, 400);
    await call('POST', '/v1/messages/00000000-0000-4000-8000-000000000000/report', { verdict: 'spam' }, 404);
    await call('PATCH', '/v1/intelligence/settings', { spam_threshold: 1.5 }, 400);
    await call('PATCH', '/v1/intelligence/settings', { spam_threshold: 0 }, 400);
    await call('PATCH', '/v1/intelligence/settings', { junk_filing: 'no' }, 400);
    await call('PATCH', '/v1/intelligence/settings', { unknown: 1 }, 400);
    await call('POST', '/v1/intelligence/reanalyze', { mailbox_id: 'not-a-uuid' }, 400);

    // A member reads settings and reports, but does not change settings or start re-analyses.
    await call(
      'POST',
      `/v1/organizations/${org.orgId}/invitations`,
      { email: 'intel-member@example.com', role: 'member' },
      201,
    );
    const user = await signUp(t, 'intel-member@example.com');
    const invitation = t.mailer.tokenFor('intel-member@example.com', /invited/);
    await call('POST', '/v1/invitations/accept', { token: invitation }, 200, {
      token: user.token,
      orgId: org.orgId,
    });
    const member: Org = { token: user.token, orgId: org.orgId };
    await call('GET', '/v1/intelligence/settings', undefined, 200, member);
    await call('PATCH', '/v1/intelligence/settings', { junk_filing: false }, 403, member);
    await call('POST', '/v1/intelligence/reanalyze', {}, 403, member);
    await call('POST', `/v1/messages/${ours.id}/report`, { verdict: 'not_spam' }, 202, member);
    const row = await reportRow(ours.id);
    assert.equal(row?.verdict, 'ham');
    assert.equal(row?.source, 'api');
    assert.equal((await call('GET', '/v1/intelligence/settings')).junk_filing, true);

    // A phishing report is learned as spam, marked phishing, and names who made it.
    const phish = (await call('GET', `/v1/messages?recipient=filters@${DOMAIN}&phishing=phishing`)).items[0];
    await call('POST', `/v1/messages/${phish.id}/report`, { verdict: 'phishing' }, 202);
    const { rows } = await t.app.database.query(
      'select verdict, phishing, source, user_id from spam_reports where message_id = $1',
      [phish.id],
    );
    assert.deepEqual(rows, [{ verdict: 'spam', phishing: true, source: 'api', user_id: ownerId }]);

    // Every change is in the audit log.
    const audit = async (action: string) =>
      (await call('GET', `/v1/organizations/${org.orgId}/audit-log?action=${action}&page_size=200`))
        .items as any[];
    const settingsChanges = await audit('intelligence.settings_update');
    assert.ok(settingsChanges.some((e) => e.status === 200 && e.actor_id === ownerId));
    const reports = await audit('message.report');
    assert.ok(
      reports.some((e) => e.target_type === 'message' && e.target_id === phish.id && e.status === 202),
    );
    const reanalyses = await audit('intelligence.reanalyze');
    assert.ok(reanalyses.some((e) => e.target_type === 'job' && e.status === 202 && e.target_id));
  });
});
