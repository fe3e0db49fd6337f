// Mail chat through the public surface: HTTP and the WebSocket, against mail delivered through the real
// MX (and the user's replies filed in Sent over IMAP, as a mail client files them), on each engine.
// The mail spans several weeks: each message carries its Date header, and after delivery its arrival
// time is set to that date (the MX stamps arrivals with the database's clock; this mail arrived over
// weeks). The app's clock is a ManualClock on a Wednesday, so "last week" is always the same days.
// Every answer is checked against the seed: the messages it must cite, and none it must not.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { ImapFlow } from 'imapflow';
import { ManualClock } from '../../../src/core/clock.ts';
import { engine, signUp, signUpWithOrg, startTestApp, type TestApp } from '../../support/app.ts';
import { startDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';
import { imapClient } from '../../support/imap.ts';
import { startLlmServer, type TestLlmServer } from '../../support/llm-server.ts';
import { sendMail } from '../../support/smtp.ts';
import { openStream } from '../../support/stream-client.ts';
import { until } from '../../support/until.ts';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const PASSWORD = 'a long mailbox password';

/** Wednesday 10:00 UTC of the week before this one: "now" for every request. */
function seedNow(): Date {
  const d = new Date(Date.now() - 7 * DAY);
  const monday =
    Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) - ((d.getUTCDay() + 6) % 7) * DAY;
  return new Date(monday + 2 * DAY + 10 * HOUR);
}
const NOW = seedNow();
/** The seed goes through the MX and waits for filing: on a loaded 2-core host it has taken over two minutes. */
const SEED_TIMEOUT = { timeout: 300_000 };
const at = (days: number, hours = 0) => new Date(NOW.getTime() + days * DAY + hours * HOUR);
/** Last week, Monday to Monday (UTC), relative to NOW. */
const LAST_WEEK = { after: at(-9, -10), before: at(-2, -10) };
const inLastWeek = (d: Date) => d >= LAST_WEEK.after && d < LAST_WEEK.before;

interface Person {
  name: string;
  address: string;
}
const ALICE: Person = { name: 'Alice Smith', address: 'alice.smith@vendor.test' };
const BOB: Person = { name: 'Bob Stone', address: 'bob@partner.test' };
const CAROL: Person = { name: 'Carol White', address: 'carol@client.test' };
const SHOP: Person = { name: 'Shop News', address: 'news@shop.test' };
const DANA: Person = { name: 'Dana Whitaker', address: 'dana@chat.test' };

interface Mail {
  key: string;
  from: Person;
  to: Person;
  subject: string;
  text: string;
  at: Date;
  /** The message this one answers (its key). */
  replyTo?: string;
  references?: string[];
  attach?: boolean;
  /** Left unread (no \Seen). */
  unread?: boolean;
  flagged?: boolean;
  /** Moved out of INBOX into this folder. */
  folder?: 'Archive' | 'Junk';
}

/** Dana's mail: from Alice, Bob, Carol and a shop, over three weeks; and Dana's own replies. */
const RECEIVED: Mail[] = [
  {
    key: 'a1',
    from: ALICE,
    to: DANA,
    subject: 'Invoice 4411 for March',
    text: 'Hi Dana, please find invoice 4411 for the March consulting work attached. Payment is due within 30 days.',
    at: at(-8, -1),
    attach: true,
  },
  {
    key: 'a3',
    from: ALICE,
    to: DANA,
    subject: 'Lunch on Friday',
    text: 'Are you free for lunch on Friday? The new Italian place near the office has opened.',
    at: at(-7, 1),
  },
  {
    key: 'a2',
    from: ALICE,
    to: DANA,
    subject: 'Re: Invoice 4411 for March',
    text: 'Hi Dana, a quick reminder that invoice 4411 is still open. Could you confirm the payment date?',
    at: at(-6),
    replyTo: 'a1',
    unread: true,
  },
  {
    key: 'a4',
    from: ALICE,
    to: DANA,
    subject: 'Invoice 4390 for February',
    text: 'Please find invoice 4390 for the February work attached.',
    at: at(-21),
  },
  {
    key: 'j1',
    from: ALICE,
    to: DANA,
    subject: 'Invoice reminder: account suspended',
    text: 'Your invoice is overdue. Verify your account now or it will be suspended.',
    at: at(-5, 2),
    folder: 'Junk',
  },
  {
    key: 'b1',
    from: BOB,
    to: DANA,
    subject: 'Invoice from the printer',
    text: 'The printer sent their invoice for the brochures. I forwarded it to accounting.',
    at: at(-7, 3),
  },
  {
    key: 'b2',
    from: BOB,
    to: DANA,
    subject: 'Q3 budget review',
    text: 'Here is the first draft of the Q3 budget. Marketing asks for twenty percent more than last year. Please review the travel line before Friday.',
    at: at(-12, -1),
    flagged: true,
  },
  {
    key: 'b3',
    from: BOB,
    to: DANA,
    subject: 'Re: Q3 budget review',
    text: 'Agreed, I cut the travel budget by half. The final version of the budget is attached for your approval.',
    at: at(-11, -1),
    replyTo: 'd1',
    references: ['b2', 'd1'],
    attach: true,
  },
  {
    key: 'c1',
    from: CAROL,
    to: DANA,
    subject: 'Terrible experience with the launch',
    text: 'I am very disappointed and angry. The launch was a disaster and nothing works. This is unacceptable.',
    at: at(-5),
  },
  {
    key: 'c2',
    from: CAROL,
    to: DANA,
    subject: 'Launch feedback',
    text: 'The new launch page looks great and the team did wonderful work on the design.',
    at: at(-4),
  },
  {
    key: 'n1',
    from: SHOP,
    to: DANA,
    subject: 'Spring sale: 30% off everything',
    text: 'Our spring sale starts today. Save 30% on every order this week only.',
    at: at(-3),
    unread: true,
    folder: 'Archive',
  },
  {
    key: 'c3',
    from: CAROL,
    to: DANA,
    subject: 'Contract renewal',
    text: 'Our contract renews next month. Could we schedule a call to discuss the new terms?',
    at: at(-1),
    unread: true,
  },
];

const SENT: Mail[] = [
  {
    key: 'd1',
    from: DANA,
    to: BOB,
    subject: 'Re: Q3 budget review',
    text: 'Thanks Bob. The travel line looks too high, I suggest we cut it by half.',
    at: at(-12, 2),
    replyTo: 'b2',
  },
  {
    key: 'd2',
    from: DANA,
    to: BOB,
    subject: 'Re: Q3 budget review',
    text: 'Approved. Thanks for the quick turnaround on the budget.',
    at: at(-11),
    replyTo: 'b3',
  },
  {
    key: 'd3',
    from: DANA,
    to: ALICE,
    subject: 'Re: Invoice 4411 for March',
    text: 'Thanks Alice, we will pay it next week.',
    at: at(-8, 4),
    replyTo: 'a1',
  },
];

const messageIdOf = (key: string) => `<${key}@seed.chat.test>`;
/** As the message store keeps it: without the angle brackets. */
const storedIdOf = (key: string) => `${key}@seed.chat.test`;
const formatted = (p: Person) => `"${p.name}" <${p.address}>`;

/** What Dana reads by default: everything but Junk. */
const visible = (m: Mail) => m.folder !== 'Junk';
const ALL = [...RECEIVED, ...SENT];

interface Member {
  id: string;
  token: string;
}

/** A Mailroom with the MX, IMAP and workers, a DNS server for it, and the helpers to seed mail. */
async function startStack(env: Record<string, string> = {}) {
  const dns = await startDnsServer();
  const t = await startTestApp({
    smtp: true,
    imap: true,
    workers: true,
    clock: new ManualClock(NOW),
    env: {
      MAILROOM_HOSTNAME: 'mx.chat.test',
      MAILROOM_DNS_SERVERS: dns.address,
      MAILROOM_CHAT_PER_MINUTE: '1000',
      ...env,
    },
  }).catch(async (err) => {
    await dns.close();
    throw err;
  });
  const clients: ImapFlow[] = [];
  const query = (text: string, params: unknown[] = []) => t.app.database.query<any>(text, params);

  const mailbox = async (token: string, address: string, displayName: string) => {
    const res = await t.call('POST', '/v1/mailboxes', {
      token,
      body: { address, password: PASSWORD, display_name: displayName },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.id as string;
  };
  const inboxCount = async (token: string, mailboxId: string) => {
    const res = await t.call('GET', `/v1/mailboxes/${mailboxId}/folders`, { token });
    return res.body.items?.find((f: any) => f.name === 'INBOX')?.messages as number;
  };

  /** Delivers through the MX and waits until every message is in the mailbox's INBOX. */
  const deliver = async (token: string, mailboxId: string, mails: Mail[]) => {
    const before = (await inboxCount(token, mailboxId)) ?? 0;
    for (const m of mails) {
      await sendMail(t.smtpPort, {
        from: formatted(m.from),
        to: formatted(m.to),
        subject: m.subject,
        text: m.text,
        messageId: messageIdOf(m.key),
        inReplyTo: m.replyTo ? messageIdOf(m.replyTo) : undefined,
        references: (m.references ?? (m.replyTo ? [m.replyTo] : [])).map(messageIdOf),
        headers: { Date: m.at.toUTCString() },
        attachments: m.attach ? [{ filename: `${m.key}.pdf`, content: `attachment of ${m.key}` }] : undefined,
      });
    }
    await until(
      () => inboxCount(token, mailboxId),
      (n) => n === before + mails.length,
    );
    // Arrived when written (see the top of this file).
    await query(
      `update messages set received_at = sent_at
        where message_id_header = any($1::text[]) and direction = 'inbound' and sent_at is not null`,
      [mails.map((m) => storedIdOf(m.key))],
    );
  };

  /** Flags and moves the mailbox's copies as the seed says, and files the user's replies in Sent. */
  const arrange = async (address: string, received: Mail[], sent: Mail[]) => {
    const client = await imapClient(t.imapPort, address, PASSWORD);
    clients.push(client);
    for (const m of sent) {
      const raw = [
        `From: ${formatted(m.from)}`,
        `To: ${formatted(m.to)}`,
        `Subject: ${m.subject}`,
        `Date: ${m.at.toUTCString()}`,
        `Message-ID: ${messageIdOf(m.key)}`,
        ...(m.replyTo
          ? [`In-Reply-To: ${messageIdOf(m.replyTo)}`, `References: ${messageIdOf(m.replyTo)}`]
          : []),
        'MIME-Version: 1.0',
        'Content-Type: text/plain; charset=utf-8',
        '',
        m.text,
        '',
      ].join('\r\n');
      await client.append('Sent', raw, ['\\Seen'], m.at);
    }
    const lock = await client.getMailboxLock('INBOX');
    try {
      const uids = new Map<string, number>();
      for await (const msg of client.fetch('1:*', { uid: true, envelope: true }))
        if (msg.envelope?.messageId) uids.set(msg.envelope.messageId, msg.uid);
      const uid = (m: Mail) => {
        const found = uids.get(messageIdOf(m.key));
        assert.ok(found, `${m.key} is in INBOX`);
        return String(found);
      };
      const seen = received.filter((m) => !m.unread).map(uid);
      if (seen.length) await client.messageFlagsAdd(seen.join(','), ['\\Seen'], { uid: true });
      const flagged = received.filter((m) => m.flagged).map(uid);
      if (flagged.length) await client.messageFlagsAdd(flagged.join(','), ['\\Flagged'], { uid: true });
      for (const folder of ['Archive', 'Junk'] as const) {
        const moving = received.filter((m) => m.folder === folder).map(uid);
        if (moving.length) await client.messageMove(moving.join(','), folder, { uid: true });
      }
    } finally {
      lock.release();
    }
  };

  /** Spam filing off: the mail stays in the folders the seed puts it in, whatever the classifier thinks. */
  const keepFolders = async (token: string) => {
    const res = await t.call('PATCH', '/v1/intelligence/settings', { token, body: { junk_filing: false } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  };
  /** Waits until the analysis worker has analysed every message of the organisation it was given. */
  const analysed = (orgId: string) =>
    until(
      async () =>
        (await query('select count(*)::int as n from intelligence_queue where organization_id = $1', [orgId]))
          .rows[0].n as number,
      (n) => n === 0,
      60_000,
    );

  /** Messages' ids by seed key. */
  const idsOf = async (orgId: string) => {
    const { rows } = await query(
      'select id, message_id_header from messages where organization_id = $1 and message_id_header is not null',
      [orgId],
    );
    return new Map<string, string>(
      rows.map((r: any) => [/^(\w+)@seed\.chat\.test$/.exec(r.message_id_header)?.[1] ?? '', r.id]),
    );
  };

  return {
    t,
    dns,
    query,
    mailbox,
    deliver,
    arrange,
    idsOf,
    keepFolders,
    analysed,
    async close() {
      for (const c of clients) await c.logout().catch(() => c.close());
      await t.close();
      await dns.close();
    },
  };
}

/** A user invited into the owner's organisation with `role`. */
async function member(t: TestApp, owner: { token: string; orgId: string }, email: string, role: string) {
  const invited = await t.call('POST', `/v1/organizations/${owner.orgId}/invitations`, {
    token: owner.token,
    body: { email, role },
  });
  assert.equal(invited.status, 201, JSON.stringify(invited.body));
  const user = await signUp(t, email);
  const accepted = await t.call('POST', '/v1/invitations/accept', {
    token: user.token,
    body: { token: t.mailer.tokenFor(email, /invited/) },
  });
  assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
  return { id: user.id, token: user.token } satisfies Member;
}

describe(`mail chat on ${engine}`, () => {
  let stack: Awaited<ReturnType<typeof startStack>>;
  let t: TestApp;
  let dana: { id: string; token: string; orgId: string };
  let erin: Member;
  let gus: Member;
  let frank: { id: string; token: string; orgId: string };
  let danaBox: string;
  let erinBox: string;
  let erinAccount: string;
  let ids: Map<string, string>;
  let erinIds: Map<string, string>;
  let frankIds: Map<string, string>;
  let danaTurns = 0;

  const chat = async (token: string, body: Record<string, unknown>, status = 200) => {
    const res = await t.call('POST', '/v1/chat', { token, body });
    assert.equal(res.status, status, JSON.stringify(res.body));
    return res.body;
  };
  const ask = (text: string, extra: Record<string, unknown> = {}) => {
    danaTurns++;
    return chat(dana.token, { text, ...extra });
  };
  const cited = (answer: any) => answer.citations.map((c: any) => c.message_id);
  const idsFor = (keys: string[], map = ids) => keys.map((k) => map.get(k)!);
  /** Seed keys, newest first (the order of citations). */
  const newestFirst = (mails: Mail[]) =>
    [...mails].sort((a, b) => b.at.getTime() - a.at.getTime()).map((m) => m.key);

  before(async () => {
    stack = await startStack();
    t = stack.t;
    dana = await signUpWithOrg(t, DANA.address, 'Acme');
    await verifiedDomain(t, dana.token, 'chat.test', [stack.dns]);
    danaBox = await stack.mailbox(dana.token, DANA.address, DANA.name);
    erin = await member(t, dana, 'erin@chat.test', 'member');
    gus = await member(t, dana, 'gus@chat.test', 'viewer');
    erinBox = await stack.mailbox(dana.token, 'erin@chat.test', 'Erin Park');
    frank = await signUpWithOrg(t, 'frank@other.test', 'Other');
    await verifiedDomain(t, frank.token, 'other.test', [stack.dns]);
    await stack.keepFolders(dana.token);
    await stack.keepFolders(frank.token);
    const frankBox = await stack.mailbox(frank.token, 'frank@other.test', 'Frank Other');

    await stack.deliver(dana.token, danaBox, RECEIVED);
    await stack.arrange(DANA.address, RECEIVED, SENT);
    // Erin and Frank have invoices from Alice too: neither may ever show up in Dana's answers, nor Dana's in theirs.
    const erinMail: Mail = {
      key: 'e1',
      from: ALICE,
      to: { name: 'Erin Park', address: 'erin@chat.test' },
      subject: 'Invoice 9001 for Erin',
      text: 'Hi Erin, here is invoice 9001 for the design work.',
      at: at(-7),
    };
    const frankMail: Mail = {
      key: 'f1',
      from: ALICE,
      to: { name: 'Frank Other', address: 'frank@other.test' },
      subject: 'Invoice 7001 for Frank',
      text: 'Hi Frank, here is invoice 7001 for the audit.',
      at: at(-7),
    };
    await stack.deliver(dana.token, erinBox, [erinMail]);
    await stack.deliver(frank.token, frankBox, [frankMail]);
    ids = await stack.idsOf(dana.orgId);
    erinIds = ids;
    frankIds = await stack.idsOf(frank.orgId);

    // Erin also connected an external account, with one synced message (written as the sync writes it).
    const accountId = crypto.randomUUID();
    const folderId = crypto.randomUUID();
    const synced = crypto.randomUUID();
    await stack.query(
      `insert into mail_accounts (id, organization_id, provider, address, name, username, imap, secret, state, created_by)
       values ($1, $2, 'imap', 'erin.park@gmail.test', 'Erin (Gmail)', 'erin.park', '{"host": "imap.gmail.test", "port": 993, "security": "tls", "verify_tls": true}', 'sealed', 'ready', $3)`,
      [accountId, dana.orgId, erin.id],
    );
    await stack.query(
      `insert into account_folders (id, organization_id, account_id, path, special_use) values ($1, $2, $3, 'INBOX', '\\Inbox')`,
      [folderId, dana.orgId, accountId],
    );
    await stack.query(
      `insert into messages (id, organization_id, direction, status, blob_id, size, mail_from, rcpt_to, account_id,
         message_id_header, thread_id, from_address, from_name, to_addresses, subject, body_text, sent_at, received_at, search)
       values ($1, $2, 'synced', 'delivered', $3, 400, '', '{}', $4, 'g1@seed.chat.test', $1, $5, $6,
         '{erin.park@gmail.test}', 'Invoice 5005 via Gmail', 'Hi Erin, invoice 5005 for the workshop is attached.', $7, $7,
         to_tsvector('simple', 'Invoice 5005 via Gmail ' || $6 || ' ' || $5 || ' erin.park@gmail.test Hi Erin, invoice 5005 for the workshop is attached.'))`,
      [synced, dana.orgId, crypto.randomUUID(), accountId, ALICE.address, ALICE.name, at(-6).toISOString()],
    );
    await stack.query(
      `insert into account_messages (organization_id, account_id, folder_id, uid, message_id, flags) values ($1, $2, $3, 1, $4, '{}')`,
      [dana.orgId, accountId, folderId, synced],
    );
    erinAccount = accountId;
    erinIds = await stack.idsOf(dana.orgId);

    // What the analysis found: the worker's results, made definite where the tests read them — one
    // category for all but the shop's promotion, Carol's praise at a known score, and her complaint not
    // analysed yet (its tone is worked out during the request).
    await stack.analysed(dana.orgId);
    await stack.query(`update message_analyses set category = 'primary' where organization_id = $1`, [
      dana.orgId,
    ]);
    const analysis = `insert into message_analyses (message_id, organization_id, spam, spam_score, spam_engine, phishing,
        phishing_score, language, sentiment, sentiment_label, category, priority)
      values ($1, $2, false, 0.01, 'builtin', 'clean', 0, 'en', $3, $4, $5, 'normal')
      on conflict (message_id) do update set sentiment = excluded.sentiment,
        sentiment_label = excluded.sentiment_label, category = excluded.category`;
    await stack.query(analysis, [ids.get('c2'), dana.orgId, 0.55, 'positive', 'primary']);
    await stack.query(analysis, [ids.get('n1'), dana.orgId, 0.1, 'neutral', 'promotions']);
    await stack.query('delete from message_analyses where message_id = $1', [ids.get('c1')]);
  }, SEED_TIMEOUT);
  after(async () => stack?.close());

  test('"what did alice send me about the invoice last week?" cites exactly her invoice mail of last week', async () => {
    const answer = await ask('what did alice send me about the invoice last week?');
    const expected = RECEIVED.filter(
      (m) => m.from === ALICE && /invoice/i.test(m.subject + m.text) && inLastWeek(m.at) && visible(m),
    );
    assert.deepEqual(
      expected.map((m) => m.key).sort(),
      ['a1', 'a2'],
      'the seed holds two such messages (a4 is older, j1 is in Junk, b1 is Bob’s, a3 is about lunch)',
    );
    assert.equal(answer.intent, 'search');
    assert.deepEqual(cited(answer), idsFor(newestFirst(expected)));
    assert.equal(answer.total, 2);
    assert.deepEqual(answer.params.people, [
      { text: 'alice', role: 'from', addresses: [ALICE.address], domains: [] },
    ]);
    assert.deepEqual(answer.params.topics, ['invoice']);
    assert.equal(answer.params.after, LAST_WEEK.after.toISOString());
    assert.equal(answer.params.before, LAST_WEEK.before.toISOString());
    assert.equal(answer.params.date_text, 'last week');
    assert.match(answer.description, /from alice <alice\.smith@vendor\.test>, last week, about “invoice”/);
    assert.equal(answer.answered_by, 'extractive');
    assert.equal(answer.llm, 'not_configured');
    assert.match(answer.answer, /I found 2 messages/);
    assert.match(answer.answer, /\[1\] “Re: Invoice 4411 for March” from Alice Smith/);
    const [first] = answer.citations;
    assert.equal(first.subject, 'Re: Invoice 4411 for March');
    assert.equal(first.from, `${ALICE.name} <${ALICE.address}>`);
    assert.equal(first.date, at(-6).toISOString());
    assert.match(first.snippet, /invoice 4411 is still open/);
  });

  test('search by folder, flags, attachments and a name the parser did not know', async () => {
    const unreadInbox = await ask('Show unread emails in my inbox');
    assert.deepEqual(cited(unreadInbox), idsFor(newestFirst(RECEIVED.filter((m) => m.unread && !m.folder))));
    const archive = await ask('unread mail in Archive');
    assert.deepEqual(cited(archive), idsFor(['n1']));
    const junk = await ask('show emails in Junk');
    assert.deepEqual(cited(junk), idsFor(['j1']), 'Junk is searched when named');
    const flagged = await ask('show me flagged mail');
    assert.deepEqual(cited(flagged), idsFor(['b2']));
    const attached = await ask('emails from alice with attachments');
    assert.deepEqual(cited(attached), idsFor(['a1']));
    const sent = await ask('messages I sent to Bob');
    assert.deepEqual(cited(sent), idsFor(newestFirst(SENT.filter((m) => m.to === BOB))));
    const nobody = await ask('show emails from Zed Unknown');
    assert.deepEqual(nobody.citations, []);
    assert.match(nobody.answer, /could not find “Zed Unknown”/);
    const noFolder = await ask('show emails in the Projects folder');
    assert.match(noFolder.answer, /no folder called “Projects”/);
    const category = await ask('show promotions emails');
    assert.equal(category.params.category, 'promotions');
    assert.deepEqual(cited(category), idsFor(['n1']));
  });

  test('summarises a thread, the user’s replies included', async () => {
    const answer = await ask('Summarise the thread about the Q3 budget');
    assert.equal(answer.intent, 'summarize');
    const thread = ALL.filter((m) => /Q3 budget/.test(m.subject));
    assert.deepEqual(cited(answer).sort(), idsFor(thread.map((m) => m.key)).sort());
    assert.deepEqual(cited(answer), idsFor(newestFirst(thread)));
    assert.equal(answer.answered_by, 'extractive');
    assert.equal(answer.llm, 'not_configured');
    // One line per message, oldest first: who wrote, when, and a sentence of what they wrote.
    const lines = answer.answer.split('\n').slice(1);
    const chronological = [...thread].sort((a, b) => a.at.getTime() - b.at.getTime());
    assert.equal(lines.length, chronological.length, answer.answer);
    lines.forEach((line: string, i: number) => {
      const m = chronological[i]!;
      const said = /^(.+) \((.+)\): (.+)$/.exec(line);
      assert.ok(said, line);
      assert.equal(said[1], m.from.name);
      assert.equal(said[2], `${m.at.toISOString().slice(0, 16).replace('T', ' ')} UTC`);
      for (const sentence of said[3]!.split(/(?<=[.!?])\s+/))
        assert.ok(m.text.includes(sentence), `${sentence} is from ${m.key}`);
    });
    assert.match(answer.answer, /cut the travel budget by half/);
  });

  test('sentiment: the analysis where there is one, computed where there is none', async () => {
    const answer = await ask('How does Carol feel about the launch?');
    assert.equal(answer.intent, 'sentiment');
    assert.deepEqual(cited(answer), idsFor(['c2', 'c1']));
    const byId = new Map(answer.sentiment.messages.map((m: any) => [m.message_id, m]));
    assert.deepEqual(byId.get(ids.get('c2')), {
      message_id: ids.get('c2'),
      score: 0.55,
      label: 'positive',
      source: 'analysis',
    });
    const c1: any = byId.get(ids.get('c1'));
    assert.equal(c1.source, 'computed');
    assert.equal(c1.label, 'negative');
    assert.ok(c1.score <= -0.3, JSON.stringify(c1));
    assert.deepEqual(answer.sentiment.counts, { positive: 1, neutral: 0, negative: 1 });
    assert.equal(answer.sentiment.average, Math.round(((0.55 + c1.score) / 2) * 1000) / 1000);
    assert.match(answer.answer, /most negative is “Terrible experience with the launch”/);
  });

  test('analytics: count, top senders, response time and volume by day, as the seed says', async () => {
    const received = RECEIVED.filter(visible);
    const count = await ask('How many emails did I get last week?');
    assert.equal(count.intent, 'analytics');
    assert.equal(count.analytics.metric, 'count');
    assert.equal(count.analytics.count, received.filter((m) => inLastWeek(m.at)).length);
    assert.equal(count.analytics.count, 7);

    const top = await ask('who emails me the most?');
    const tally = new Map<string, number>();
    for (const m of received.filter((m) => m.at >= at(-30)))
      tally.set(m.from.address, (tally.get(m.from.address) ?? 0) + 1);
    const expected = [...tally].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    assert.deepEqual(
      top.analytics.senders.map((s: any) => [s.address, s.messages]),
      expected.slice(0, 5),
    );
    assert.equal(top.analytics.senders[0].name, ALICE.name);
    assert.match(top.answer, /1\. Alice Smith <alice\.smith@vendor\.test> — 4 messages/);

    // a1 answered by d3 after 5 h, b2 by d1 after 3 h, b3 by d2 after 1 h; nothing else was answered.
    const response = await ask('What is my average response time?');
    assert.equal(response.analytics.metric, 'response_time');
    assert.deepEqual(response.analytics.response_time, {
      median_seconds: 3 * 3600,
      mean_seconds: 3 * 3600,
      answered: 3,
      received: received.filter((m) => m.at >= at(-30)).length,
    });
    assert.match(response.answer, /median response time was 3 h/);
    assert.deepEqual(cited(response).sort(), idsFor(['a1', 'b2', 'b3']).sort());

    const volume = await ask('how many emails per day did I get last week?');
    assert.equal(volume.analytics.metric, 'volume_by_day');
    const days = volume.analytics.days;
    assert.equal(days.length, 7);
    for (const day of days) {
      const n = received.filter(
        (m) => m.at.toISOString().slice(0, 10) === day.date && inLastWeek(m.at),
      ).length;
      assert.equal(day.messages, n, `${day.date}: ${JSON.stringify(days)}`);
    }
    assert.equal(
      days.reduce((n: number, d: any) => n + d.messages, 0),
      received.filter((m) => inLastWeek(m.at)).length,
    );
  });

  test('a reply draft to the latest message from a person, not sent', async () => {
    const outboxBefore = (
      await stack.query("select count(*)::int as n from messages where direction = 'outbound'")
    ).rows[0].n;
    const answer = await ask('Reply to Alice saying the invoice will be paid on Friday');
    assert.equal(answer.intent, 'compose_reply');
    assert.deepEqual(cited(answer), idsFor(['a2']));
    assert.deepEqual(answer.draft, {
      to: [ALICE.address],
      cc: [],
      subject: 'Re: Invoice 4411 for March',
      body: 'Hi Alice,\n\nThe invoice will be paid on Friday.\n\nBest regards,\nDana Whitaker',
      in_reply_to: ids.get('a2'),
      in_reply_to_header: messageIdOf('a2'),
    });
    assert.equal(answer.answered_by, 'template');
    assert.match(answer.answer, /has not been sent/);
    // The topic picks the message; the instruction is not read as a filter.
    const thanking = await ask('draft a reply to Bob about the budget, thanking him for his work');
    assert.deepEqual(cited(thanking), idsFor(['b3']));
    assert.equal(thanking.draft.to[0], BOB.address);
    assert.equal(thanking.draft.subject, 'Re: Q3 budget review');
    assert.match(
      thanking.draft.body,
      /^Hi Bob,\n\nThank you for your work!\n\nBest regards,\nDana Whitaker$/,
    );
    const outboxAfter = (
      await stack.query("select count(*)::int as n from messages where direction = 'outbound'")
    ).rows[0].n;
    assert.equal(outboxAfter, outboxBefore, 'nothing was sent');
  });

  test('another user of the organisation and another organisation see none of this mail', async () => {
    const question = 'what did alice send me about the invoice last week?';
    // Erin: her mailbox and the account she connected, nothing of Dana's.
    const erinAnswer = await chat(erin.token, { text: question });
    assert.deepEqual(cited(erinAnswer).sort(), [erinIds.get('e1'), erinIds.get('g1')].sort());
    // Frank, in another organisation: his own invoice only.
    const frankAnswer = await chat(frank.token, { text: question });
    assert.deepEqual(cited(frankAnswer), [frankIds.get('f1')]);
    // Gus has no mailbox of his own: nothing at all.
    const gusAnswer = await chat(gus.token, { text: question });
    assert.deepEqual(gusAnswer.citations, []);
    assert.match(gusAnswer.answer, /no mailbox or connected account/);
    // Dana's own answer holds neither Erin's mail nor her account's.
    const danaAnswer = await ask(question);
    assert.ok(!cited(danaAnswer).includes(erinIds.get('e1')));
    assert.ok(!cited(danaAnswer).includes(erinIds.get('g1')));

    // Nor through summaries, tone or figures.
    const erinSummary = await chat(erin.token, { text: 'summarize the emails from Alice' });
    assert.deepEqual(cited(erinSummary).sort(), [erinIds.get('e1'), erinIds.get('g1')].sort());
    const erinTop = await chat(erin.token, { text: 'who emails me the most?' });
    assert.deepEqual(
      erinTop.analytics.senders.map((s: any) => [s.address, s.messages]),
      [[ALICE.address, 2]],
    );
    const frankCount = await chat(frank.token, { text: 'How many emails did I get last week?' });
    assert.equal(frankCount.analytics.count, 1);
    const frankTone = await chat(frank.token, { text: 'how does Carol feel about the launch?' });
    assert.deepEqual(frankTone.citations, []);

    // Naming someone else's mailbox or account: members and viewers get 404, as for what does not exist.
    await chat(erin.token, { text: question, mailbox_id: danaBox }, 404);
    await chat(gus.token, { text: question, account_id: erinAccount }, 404);
    await chat(erin.token, { text: question, account_id: erinAccount });
    await chat(erin.token, { text: question, mailbox_id: erinBox });
    // Another organisation's ids are not there, whoever asks.
    await chat(frank.token, { text: question, mailbox_id: danaBox }, 404);
    const crossOrg = await t.call('POST', '/v1/chat', {
      token: frank.token,
      body: { text: question },
      headers: { 'x-organization-id': dana.orgId },
    });
    assert.equal(crossOrg.status, 404);
    // The owner may chat about any mailbox or account of the organisation.
    const ownerOnErin = await ask(question, { mailbox_id: erinBox });
    assert.deepEqual(cited(ownerOnErin), [erinIds.get('e1')]);
    const ownerOnAccount = await ask(question, { account_id: erinAccount });
    assert.deepEqual(cited(ownerOnAccount), [erinIds.get('g1')]);

    // Suggestions are built from the asker's own mail only.
    const erinSuggestions = await t.call('GET', '/v1/chat/suggestions', { token: erin.token });
    assert.equal(erinSuggestions.status, 200);
    assert.ok(
      !erinSuggestions.body.items.some((s: any) => /Carol|Bob/.test(s.text)),
      JSON.stringify(erinSuggestions.body),
    );
  });

  test('API keys: the messages read scope, and the mailbox named', async () => {
    const create = async (scopes: string[]) => {
      const res = await t.call('POST', `/v1/organizations/${dana.orgId}/api-keys`, {
        token: dana.token,
        body: { name: `chat ${scopes.join(' ')}`, scopes },
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body.key as string;
    };
    const reader = await create(['messages:read']);
    const question = 'what did alice send me about the invoice last week?';
    const unnamed = await t.call('POST', '/v1/chat', { token: reader, body: { text: question } });
    assert.equal(unnamed.status, 422);
    assert.match(unnamed.body.detail, /mailbox_id/);
    const named = await chat(reader, { text: question, mailbox_id: danaBox });
    assert.deepEqual(cited(named), idsFor(['a2', 'a1']));
    const other = await create(['domains:read']);
    await chat(other, { text: question, mailbox_id: danaBox }, 403);
    const history = await t.call('GET', '/v1/chat/history', { token: reader });
    assert.equal(history.status, 200);
    assert.deepEqual(
      history.body.items.map((i: any) => i.turn_id),
      [named.turn_id],
      'a key sees its own turns only',
    );
  });

  test('suggestions come from the user’s own mail, and each asks what it says', async () => {
    const res = await t.call('GET', '/v1/chat/suggestions', { token: dana.token });
    assert.equal(res.status, 200);
    const items: { text: string; intent: string; reason: string }[] = res.body.items;
    const texts = items.map((i) => i.text);
    // c3 and c2 are the newest received messages without a reply (a1, b2 and b3 were answered).
    assert.ok(texts.includes('Reply to Carol White about “Contract renewal”'), JSON.stringify(texts));
    assert.ok(texts.includes('Reply to Carol White about “Launch feedback”'), JSON.stringify(texts));
    assert.ok(texts.includes(`Show emails from ${ALICE.name}`), JSON.stringify(texts));
    assert.ok(texts.includes('Show unread emails in my inbox'), JSON.stringify(texts));
    assert.ok(texts.includes('Show promotions emails from the last 30 days'), JSON.stringify(texts));
    assert.deepEqual([...new Set(items.map((i) => i.reason))].sort(), [
      'category',
      'frequent_correspondent',
      'unanswered',
      'unread',
    ]);
    for (const item of items) {
      const answer = await ask(item.text);
      assert.equal(answer.intent, item.intent, item.text);
      if (item.reason === 'unanswered') assert.equal(answer.draft.to[0], CAROL.address);
    }
    const renewal = await ask('Reply to Carol White about “Contract renewal”');
    assert.deepEqual(cited(renewal), idsFor(['c3']));
  });

  test('small talk and requests that are not about mail answer with suggestions', async () => {
    const hello = await ask('hello');
    assert.equal(hello.intent, 'smalltalk');
    assert.equal(hello.answered_by, 'template');
    assert.equal(hello.llm, null);
    assert.ok(hello.suggestions.length >= 3);
    assert.match(hello.answer, /I can search your mail/);
    const unknown = await ask('what is 17 times 3');
    assert.equal(unknown.intent, 'unknown');
    assert.match(unknown.answer, /did not understand/);
    assert.deepEqual(unknown.suggestions, hello.suggestions);
  });

  test('the same over the WebSocket', async () => {
    const http = t.app.http!;
    await http.listen({ host: '127.0.0.1', port: 0 });
    const base = `ws://127.0.0.1:${(http.server.address() as AddressInfo).port}`;
    const stream = await openStream(`${base}/v1/chat/stream`, { token: dana.token });
    try {
      stream.socket.send(
        JSON.stringify({
          type: 'chat',
          id: 'q1',
          text: 'what did alice send me about the invoice last week?',
        }),
      );
      danaTurns++;
      const answer = await stream.next();
      assert.equal(answer.type, 'chat.answer');
      assert.equal(answer.id, 'q1');
      assert.deepEqual(cited(answer), idsFor(['a2', 'a1']));
      assert.equal(answer.intent, 'search');
      stream.socket.send(JSON.stringify({ type: 'chat', id: 'q2', text: 'hello', mailbox_id: erinBox }));
      danaTurns++;
      const second = await stream.next();
      assert.equal(second.id, 'q2');
      assert.equal(second.mailbox_id, erinBox);
      stream.socket.send('not json');
      const broken = await stream.next();
      assert.deepEqual([broken.type, broken.id, broken.problem.status], ['chat.error', null, 400]);
      stream.socket.send(JSON.stringify({ type: 'chat', id: 'q3', text: '' }));
      const empty = await stream.next();
      assert.deepEqual([empty.type, empty.id, empty.problem.status], ['chat.error', 'q3', 400]);
      stream.socket.send(
        JSON.stringify({ type: 'chat', id: 'q4', text: 'hi', mailbox_id: crypto.randomUUID() }),
      );
      const missing = await stream.next();
      assert.deepEqual([missing.type, missing.id, missing.problem.status], ['chat.error', 'q4', 404]);
    } finally {
      stream.close();
    }
    // Erin's stream answers from Erin's mail.
    const erinStream = await openStream(`${base}/v1/chat/stream`, { token: erin.token });
    try {
      erinStream.socket.send(
        JSON.stringify({
          type: 'chat',
          id: 'e',
          text: 'what did alice send me about the invoice last week?',
        }),
      );
      const answer = await erinStream.next();
      assert.deepEqual(cited(answer).sort(), [erinIds.get('e1'), erinIds.get('g1')].sort());
    } finally {
      erinStream.close();
    }
    await assert.rejects(openStream(`${base}/v1/chat/stream`), (err: any) => err.status === 401);
    const plain = await t.call('GET', '/v1/chat/stream', { token: dana.token });
    assert.equal(plain.status, 400);
  });

  test('history is per user, newest first, paged', async () => {
    const res = await t.call('GET', '/v1/chat/history?page_size=200', { token: dana.token });
    assert.equal(res.status, 200);
    assert.equal(res.body.total, danaTurns);
    const texts = res.body.items.map((i: any) => i.text);
    assert.equal(texts[0], 'hello', 'the last turn (over the WebSocket) comes first');
    const first = res.body.items.find(
      (i: any) => i.text === 'Reply to Alice saying the invoice will be paid on Friday',
    );
    assert.equal(first.draft.to[0], ALICE.address, 'a turn keeps its draft');
    const paged = await t.call('GET', '/v1/chat/history?page=2&page_size=3', { token: dana.token });
    assert.deepEqual(
      paged.body.items.map((i: any) => i.turn_id),
      res.body.items.slice(3, 6).map((i: any) => i.turn_id),
    );
    const erinHistory = await t.call('GET', '/v1/chat/history', { token: erin.token });
    assert.ok(erinHistory.body.total > 0);
    assert.ok(erinHistory.body.items.every((i: any) => !danaTurnIds(res.body.items).has(i.turn_id)));
    const frankHistory = await t.call('GET', '/v1/chat/history', { token: frank.token });
    assert.equal(frankHistory.body.total, 3, 'refused requests leave no turn');
  });

  test('bad input answers 4xx', async () => {
    await chat(dana.token, { text: '' }, 400);
    await chat(dana.token, { text: 'x'.repeat(2001) }, 400);
    await chat(dana.token, { text: 'hello', extra: true }, 400);
    await chat(dana.token, { text: 'hello', mailbox_id: 'not-a-uuid' }, 400);
    await chat(dana.token, { text: 'hello', use_llm: 'yes' }, 400);
    await chat(dana.token, { text: 'hello', time_zone: 'Mars/Olympus' }, 422);
    await chat(dana.token, { text: 'hello', mailbox_id: crypto.randomUUID() }, 404);
    const raw = await t.call('POST', '/v1/chat', {
      token: dana.token,
      rawBody: '{"text":',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(raw.status, 400);
    assert.equal((await t.call('POST', '/v1/chat', { body: { text: 'hello' } })).status, 401);
    assert.equal((await t.call('GET', '/v1/chat/history?page_size=500', { token: dana.token })).status, 400);
    assert.equal(
      (await t.call('GET', '/v1/chat/suggestions?mailbox_id=1', { token: dana.token })).status,
      400,
    );
  });
});

const danaTurnIds = (items: any[]) => new Set(items.map((i) => i.turn_id as string));

describe(`mail chat with a model on ${engine}`, () => {
  let stack: Awaited<ReturnType<typeof startStack>>;
  let t: TestApp;
  let llm: TestLlmServer;
  let lena: { id: string; token: string; orgId: string };
  let ids: Map<string, string>;
  const QUESTION = 'what did Alice say about the invoice?';
  const LENA: Person = { name: 'Lena Ortiz', address: 'lena@chat.test' };
  const MAIL: Mail[] = [
    {
      key: 'l1',
      from: ALICE,
      to: LENA,
      subject: 'Invoice 4411',
      text: 'Please pay invoice 4411 by Friday. The amount is 1,200 EUR and the bank details are on the invoice.',
      at: at(-3),
    },
    {
      key: 'l2',
      from: ALICE,
      to: LENA,
      subject: 'Team offsite',
      text: 'The offsite is on the 12th in Lisbon. Bring a laptop.',
      at: at(-2),
    },
  ];

  const chat = async (body: Record<string, unknown>, status = 200, token = lena.token) => {
    const res = await t.call('POST', '/v1/chat', { token, body });
    assert.equal(res.status, status, JSON.stringify(res.body));
    return res.body;
  };
  const usage = async () =>
    Number(
      (
        await stack.query(
          'select coalesce(sum(tokens), 0)::int as n from llm_usage where organization_id = $1',
          [lena.orgId],
        )
      ).rows[0].n,
    );

  before(async () => {
    llm = await startLlmServer({ apiKey: 'sk-test-chat', model: 'test-model' });
    stack = await startStack({
      MAILROOM_LLM_URL: llm.url,
      MAILROOM_LLM_API_KEY: 'sk-test-chat',
      MAILROOM_LLM_MODEL: 'test-model',
      MAILROOM_LLM_TIMEOUT: '1s',
      MAILROOM_CHAT_PER_MINUTE: '14',
    });
    t = stack.t;
    lena = await signUpWithOrg(t, LENA.address, 'Model Org');
    await verifiedDomain(t, lena.token, 'chat.test', [stack.dns]);
    await stack.keepFolders(lena.token);
    const box = await stack.mailbox(lena.token, LENA.address, LENA.name);
    await stack.deliver(lena.token, box, MAIL);
    ids = await stack.idsOf(lena.orgId);
  }, SEED_TIMEOUT);
  after(async () => {
    await stack?.close();
    await llm?.close();
  });

  test('a grounded answer: the model is given the retrieved messages and its answer cites them', async () => {
    const answer = await chat({ text: QUESTION });
    assert.equal(answer.intent, 'search');
    assert.equal(answer.answered_by, 'llm');
    assert.equal(answer.llm, 'used');
    // The test model answers with the first sentence of message [1], citing it.
    assert.equal(answer.answer, 'Please pay invoice 4411 by Friday. [1]');
    assert.deepEqual(
      answer.citations.map((c: any) => c.message_id),
      [ids.get('l1')],
    );
    const sent = llm.requests.at(-1)!;
    assert.equal(sent.authorization, 'Bearer sk-test-chat');
    assert.equal(sent.body.model, 'test-model');
    const system = sent.body.messages[0]!.content;
    assert.match(system, /\[1\] Invoice 4411 — from Alice Smith <alice\.smith@vendor\.test>/);
    assert.match(system, /The amount is 1,200 EUR/);
    assert.doesNotMatch(system, /offsite/, 'only the retrieved messages ground the model');
    assert.equal(sent.body.messages.at(-1)!.content, QUESTION);
    // The organisation's count holds what the endpoint said the answer cost.
    const reported = (JSON.stringify(sent.body.messages).length >> 2) + (answer.answer.length >> 2);
    assert.equal(await usage(), reported);
  });

  test('summaries and reply drafts are written by the model', async () => {
    const summary = await chat({ text: 'summarize the emails from Alice about the invoice' });
    assert.equal(summary.intent, 'summarize');
    assert.equal(summary.answered_by, 'llm');
    assert.match(summary.answer, /^Please pay invoice 4411 by Friday\. \[1\]$/);
    llm.replyNext('Hi Alice,\n\nThe invoice is paid [1].\n\nBest regards,\nLena');
    const draft = await chat({ text: 'reply to Alice about the invoice saying it is paid' });
    assert.equal(draft.answered_by, 'llm');
    assert.equal(draft.draft.body, 'Hi Alice,\n\nThe invoice is paid.\n\nBest regards,\nLena');
    assert.equal(draft.draft.subject, 'Re: Invoice 4411');
    assert.match(
      llm.requests.at(-1)!.body.messages[0]!.content,
      /Write the body of the user’s reply to message \[1\]/,
    );
  });

  test('a timeout, a server error or a broken reply falls back to the answer from the mail', async () => {
    for (const [failure, outcome] of [
      ['hang', 'timeout'],
      ['unavailable', 'error'],
      ['malformed', 'error'],
    ] as const) {
      const before = await usage();
      llm.failNext(failure);
      const answer = await chat({ text: QUESTION });
      assert.equal(answer.llm, outcome, failure);
      assert.equal(answer.answered_by, 'extractive');
      assert.match(answer.answer, /^I found 1 message from Alice/);
      assert.deepEqual(
        answer.citations.map((c: any) => c.message_id),
        [ids.get('l1')],
      );
      const spent = (await usage()) - before;
      // After a timeout the prompt stays counted (the model may have worked on it); else nothing is.
      if (failure === 'hang') assert.ok(spent > 0, `timeout counted ${spent}`);
      else assert.equal(spent, 0, failure);
    }
    llm.replyNext('NO_ANSWER');
    const none = await chat({ text: QUESTION });
    assert.equal(none.llm, 'no_answer');
    assert.equal(none.answered_by, 'extractive');
    const off = await chat({ text: QUESTION, use_llm: false });
    assert.equal(off.llm, 'not_requested');
  });

  test('over the daily budget the answer comes from the mail, and the model is not asked', async () => {
    const spent = await usage();
    const budget = await t.call('PATCH', '/v1/intelligence/settings', {
      token: lena.token,
      body: { llm_daily_tokens: spent + 10 },
    });
    assert.equal(budget.status, 200, JSON.stringify(budget.body));
    const asked = llm.requests.length;
    const answer = await chat({ text: QUESTION });
    assert.equal(answer.llm, 'budget_exhausted');
    assert.equal(answer.answered_by, 'extractive');
    assert.deepEqual(
      answer.citations.map((c: any) => c.message_id),
      [ids.get('l1')],
    );
    assert.equal(llm.requests.length, asked);
    assert.equal(await usage(), spent);
  });

  test('chat is rate limited per user', async () => {
    const other = await member(t, lena, 'limited@chat.test', 'member');
    let status = 200;
    let n = 0;
    for (; n < 20 && status === 200; n++)
      status = (await t.call('POST', '/v1/chat', { token: other.token, body: { text: 'hello' } })).status;
    assert.equal(status, 429);
    assert.equal(n, 15, 'the 15th request in a minute is refused');
  });
});
