// IMAP through the public surface: imapflow and raw sockets against the real server, mail delivered
// through the MX and submission, the folders API, on one store.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ImapFlow } from 'imapflow';
import { engine, type Org, orgMaker, startTestApp, type TestApp } from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';
import { ImapDialogue, imapClient } from '../../support/imap.ts';
import { sendMail, submitMail } from '../../support/smtp.ts';
import { until } from '../../support/until.ts';

const PASSWORD = 'a long mailbox password';
const DOMAIN = 'imap.test';

describe(`IMAP on ${engine}`, () => {
  const freshOrg = orgMaker('imap');
  let t: TestApp;
  let dns: TestDnsServer;
  let org: Org;
  let mailboxCount = 0;
  const clients: ImapFlow[] = [];

  /** A new mailbox with a password; its address and id. */
  const newMailbox = async (password = PASSWORD) => {
    const address = `user${++mailboxCount}@${DOMAIN}`;
    const res = await t.call('POST', '/v1/mailboxes', { token: org.token, body: { address, password } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return { address, id: res.body.id as string };
  };
  const connect = async (user: string, pass = PASSWORD, options = {}) => {
    const client = await imapClient(t.imapPort, user, pass, options);
    clients.push(client);
    return client;
  };
  /** Delivers through the MX and waits until the mailbox's INBOX holds `count` messages. */
  const deliver = async (
    to: string,
    mailboxId: string,
    count: number,
    input: Record<string, unknown> = {},
  ) => {
    await sendMail(t.smtpPort, { from: 'sender@outside.example', to, ...input });
    await until(
      () => t.call('GET', `/v1/mailboxes/${mailboxId}/folders`, { token: org.token }),
      (r) => r.body.items?.find((f: any) => f.name === 'INBOX')?.messages === count,
    );
  };

  before(async () => {
    dns = await startDnsServer();
    t = await startTestApp({
      smtp: true,
      submission: true,
      imap: true,
      workers: true,
      env: {
        MAILROOM_HOSTNAME: 'mx.imap.test',
        MAILROOM_DNS_SERVERS: dns.address,
        MAILROOM_IMAP_TLS_PORT: '0',
        MAILROOM_SUBMISSION_AUTH_FAILURES_PER_HOUR: '1000',
      },
    });
    org = await freshOrg(t);
    await verifiedDomain(t, org.token, DOMAIN, [dns]);
  });
  after(async () => {
    for (const c of clients) await c.logout().catch(() => c.close());
    await t?.close();
    await dns?.close();
  });

  test('greeting, capabilities, LOGINDISABLED before TLS, STARTTLS, then login', async () => {
    const { address } = await newMailbox();
    const { dialogue, greeting } = await ImapDialogue.open(t.imapPort);
    try {
      assert.match(greeting, /^\* OK \[CAPABILITY IMAP4rev1 .*STARTTLS.*LOGINDISABLED/);
      const refused = await dialogue.command(`LOGIN ${address} "${PASSWORD}"`);
      assert.match(refused.reply, /^t1 NO \[PRIVACYREQUIRED\]/);
      assert.match((await dialogue.command('STARTTLS')).reply, /^t2 OK/);
      await dialogue.startTls();
      const caps = await dialogue.command('CAPABILITY');
      assert.match(caps.lines[0], /AUTH=PLAIN/);
      assert.doesNotMatch(caps.lines[0], /STARTTLS/);
      const login = await dialogue.command(`LOGIN ${address} "${PASSWORD}"`);
      assert.match(login.reply, /^t4 OK \[CAPABILITY .*IDLE.*QRESYNC/);
      assert.match((await dialogue.command('LOGOUT')).lines[0], /^\* BYE/);
    } finally {
      dialogue.close();
    }
  });

  test('mail delivered through the MX is in INBOX with envelope, structure and body', async () => {
    const { address, id } = await newMailbox();
    await deliver(address, id, 1, {
      subject: 'Quarterly numbers',
      text: 'Hello IMAP',
      attachments: [{ filename: 'report.txt', content: 'the attached report' }],
    });
    const client = await connect(address);
    const lock = await client.getMailboxLock('INBOX');
    try {
      assert.equal((client.mailbox as any).exists, 1);
      const message = await client.fetchOne('1', {
        uid: true,
        flags: true,
        envelope: true,
        bodyStructure: true,
        source: true,
      });
      assert.ok(message);
      assert.equal(message.envelope?.subject, 'Quarterly numbers');
      assert.equal(message.envelope?.from?.[0]?.address, 'sender@outside.example');
      assert.equal(message.bodyStructure?.type, 'multipart/mixed');
      assert.equal(message.bodyStructure?.childNodes?.[1]?.dispositionParameters?.filename, 'report.txt');
      assert.match(message.source!.toString(), /Hello IMAP/);
      // imapflow peeks: nothing marked it \Seen.
      assert.equal(((await client.fetchOne('1', { flags: true })) as any).flags.has('\\Seen'), false);
      const part = await client.download('1', '2');
      const chunks: Buffer[] = [];
      for await (const c of part.content!) chunks.push(c as Buffer);
      assert.equal(Buffer.concat(chunks).toString(), 'the attached report');
    } finally {
      lock.release();
    }
  });

  test('raw FETCH: every data item, BODY[] marks Seen, partial and nested sections, BINARY', async () => {
    const { address, id } = await newMailbox();
    const inner = [
      'From: inner@example.org',
      'Subject: Inner',
      'Content-Type: multipart/alternative; boundary="in"',
      '',
      '--in',
      'Content-Type: text/plain',
      '',
      'inner plain',
      '--in',
      'Content-Type: text/html',
      '',
      '<p>inner html</p>',
      '--in--',
      '',
    ].join('\r\n');
    const raw = [
      `From: Sender <sender@outside.example>`,
      `To: ${address}`,
      'Subject: Nested',
      'Message-ID: <nested@outside.example>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="out"',
      '',
      '--out',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: base64',
      '',
      Buffer.from('Grüße aus dem Anhang').toString('base64'),
      '--out',
      'Content-Type: message/rfc822',
      '',
      inner,
      '--out--',
      '',
    ].join('\r\n');
    await deliver(address, id, 1, { raw, envelope: { from: 'sender@outside.example', to: [address] } });
    const client = await connect(address);
    await client.logout();
    const { dialogue } = await ImapDialogue.open(t.imapTlsPort, true);
    try {
      assert.match((await dialogue.command(`LOGIN ${address} "${PASSWORD}"`)).reply, /OK/);
      const selected = await dialogue.command('SELECT INBOX');
      assert.ok(selected.lines.includes('* 1 EXISTS'), selected.lines.join('\n'));
      assert.match(selected.reply, /OK \[READ-WRITE\]/);
      const all = await dialogue.command(
        'FETCH 1 (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY)',
      );
      const line = all.lines.join('\n');
      assert.match(
        line,
        /^\* 1 FETCH \(UID 1 FLAGS \(\\Recent\) INTERNALDATE "[ \d]\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d \+0000" RFC822\.SIZE \d+ ENVELOPE \(/,
      );
      assert.match(line, /"Nested"/);
      assert.match(line, /BODYSTRUCTURE \(\("TEXT" "PLAIN" \("CHARSET" "utf-8"\) NIL NIL "BASE64"/i);
      assert.match(line, /"MESSAGE" "RFC822"/i);
      const partial = await dialogue.command(
        'FETCH 1 (BODY.PEEK[2.1]<0.5> BODY.PEEK[2.HEADER.FIELDS (SUBJECT)] BODY.PEEK[2.1.1])',
      );
      const text = partial.lines.join('\n');
      assert.match(text, /BODY\[2\.1\]<0> \{5\}\ninner/);
      // A part that is not there is empty (as Dovecot answers).
      assert.match(text, /BODY\[2\.1\.1\] \{0\}/);
      assert.match(text, /BODY\[2\.HEADER\.FIELDS \(SUBJECT\)\] \{18\}\nSubject: Inner/);
      const binary = await dialogue.command('FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])');
      assert.ok(
        binary.lines.join('\n').includes(`BINARY[1] {${Buffer.byteLength('Grüße aus dem Anhang')}}`),
        binary.lines.join('\n'),
      );
      assert.ok(
        binary.lines.join('\n').includes(`BINARY.SIZE[1] ${Buffer.byteLength('Grüße aus dem Anhang')}`),
      );
      assert.doesNotMatch((await dialogue.command('FETCH 1 FLAGS')).lines[0], /\\Seen/);
      const body = await dialogue.command('FETCH 1 BODY[TEXT]');
      assert.match(body.lines.join('\n'), /FLAGS \(\\Seen \\Recent\)/);
      assert.match((await dialogue.command('FETCH 1 FLAGS')).lines[0], /\\Seen/);
      await dialogue.command('LOGOUT');
    } finally {
      dialogue.close();
    }
  });

  test('IDLE announces mail delivered through the MX within a second', async () => {
    const { address, id } = await newMailbox();
    const client = await connect(address);
    await client.mailboxOpen('INBOX');
    const exists = new Promise<{ count: number; at: number }>((resolve) =>
      client.on('exists', (data) => resolve({ count: data.count, at: Date.now() })),
    );
    void client.idle();
    await until(
      async () => (client as any).idling as boolean,
      (idling) => idling,
    );
    const sent = Date.now();
    await sendMail(t.smtpPort, { from: 'sender@outside.example', to: address, subject: 'While idle' });
    const seen = await exists;
    assert.equal(seen.count, 1);
    assert.ok(seen.at - sent < 3_000, `announced after ${seen.at - sent} ms`);
    void id;
  });

  test('APPEND, COPY, MOVE and EXPUNGE answer with UIDPLUS codes and the right untagged responses', async () => {
    const { address } = await newMailbox();
    const client = await connect(address);
    const appended = await client.append(
      'Drafts',
      'From: me@imap.test\r\nSubject: Draft 1\r\n\r\nbody one\r\n',
      ['\\Draft'],
    );
    assert.ok(appended && appended.uid === 1 && appended.uidValidity);
    await client.append('Drafts', 'From: me@imap.test\r\nSubject: Draft 2\r\n\r\nbody two\r\n', [
      '\\Draft',
      '$Label1',
    ]);
    await client.mailboxOpen('Drafts');
    const copied = await client.messageCopy('1:2', 'Archive');
    assert.deepEqual(
      [...(copied as any).uidMap.entries()],
      [
        [1, 1],
        [2, 2],
      ],
    );
    const moved = await client.messageMove('1', 'Trash');
    assert.deepEqual([...(moved as any).uidMap.entries()], [[1, 1]]);
    assert.equal((client.mailbox as any).exists, 1);
    const status = (await client.status('Archive', { messages: true, uidNext: true, unseen: true })) as any;
    assert.equal(status.messages, 2);
    assert.equal(status.uidNext, 3);
    await client.mailboxOpen('Archive');
    await client.messageFlagsAdd('1', ['\\Deleted']);
    const expunged: number[] = [];
    client.on('expunge', (e) => expunged.push(e.seq!));
    await client.mailboxClose();
    await client.mailboxOpen('Archive');
    assert.equal((client.mailbox as any).exists, 1);
    const left = (await client.fetchOne('1', { uid: true, flags: true, envelope: true })) as any;
    assert.equal(left?.uid, 2);
    assert.ok(left?.flags?.has('$Label1'));
    assert.equal(left?.envelope?.subject, 'Draft 2');
  });

  test('folders: create with parents, rename with children, subscribe, LIST-EXTENDED and SPECIAL-USE, delete', async () => {
    const { address } = await newMailbox();
    const client = await connect(address);
    await client.mailboxCreate('Projects/2026/Q1');
    let names = (await client.list()).map((f) => f.path);
    for (const n of ['Projects', 'Projects/2026', 'Projects/2026/Q1', 'INBOX', 'Sent', 'Trash'])
      assert.ok(names.includes(n), n);
    const sent = (await client.list()).find((f) => f.path === 'Sent');
    assert.equal(sent?.specialUse, '\\Sent');
    await client.mailboxRename('Projects', 'Work');
    names = (await client.list()).map((f) => f.path);
    assert.ok(names.includes('Work/2026/Q1') && !names.includes('Projects'), names.join(','));
    await client.mailboxUnsubscribe('Work/2026');
    const subscribed = (await client.listTree()).folders ?? [];
    assert.ok(subscribed.length > 0);
    await assert.rejects(() => client.mailboxDelete('Work'));
    await client.mailboxDelete('Work/2026/Q1');
    await client.mailboxDelete('Work/2026');
    await client.mailboxDelete('Work');
    names = (await client.list()).map((f) => f.path);
    assert.ok(!names.some((n) => n.startsWith('Work')), names.join(','));
    await assert.rejects(() => client.mailboxDelete('INBOX'));
    const { dialogue } = await ImapDialogue.open(t.imapTlsPort, true);
    try {
      await dialogue.command(`LOGIN ${address} "${PASSWORD}"`);
      const special = await dialogue.command('LIST (SPECIAL-USE) "" "*"');
      assert.equal(special.lines.length, 5, special.lines.join('\n'));
      const status = await dialogue.command(
        'LIST "" "%" RETURN (CHILDREN STATUS (MESSAGES UNSEEN UIDVALIDITY))',
      );
      assert.ok(
        status.lines.some((l) => /^\* STATUS "?INBOX"? \(MESSAGES 0 UNSEEN 0 UIDVALIDITY \d+\)/.test(l)),
        status.lines.join('\n'),
      );
      assert.ok(
        status.lines.some((l) => /^\* LIST \(\\HasNoChildren\) "\/" "?INBOX"?/.test(l)),
        status.lines.join('\n'),
      );
    } finally {
      dialogue.close();
    }
  });

  test('two sessions: flags set in one are seen in the next command of the other; expunges reach both', async () => {
    const { address } = await newMailbox();
    const a = await connect(address);
    for (let i = 1; i <= 3; i++) await a.append('INBOX', `Subject: m${i}\r\n\r\nbody ${i}\r\n`);
    const { dialogue } = await ImapDialogue.open(t.imapTlsPort, true);
    try {
      await dialogue.command(`LOGIN ${address} "${PASSWORD}"`);
      await dialogue.command('SELECT INBOX');
      await a.mailboxOpen('INBOX');
      await a.messageFlagsAdd('2', ['\\Flagged']);
      const noop = await dialogue.command('NOOP');
      // This session selected the folder first: the messages are \Recent to it.
      assert.ok(
        noop.lines.some((l) => /^\* 2 FETCH \(UID 2 FLAGS \(\\Flagged \\Recent\)\)/.test(l)),
        noop.lines.join('\n'),
      );
      await a.messageFlagsAdd('1', ['\\Deleted']);
      await a.messageDelete('1');
      // FETCH by sequence number must not report the expunge; the next NOOP does.
      const fetched = await dialogue.command('FETCH 1 UID');
      assert.ok(!fetched.lines.some((l) => l.includes('EXPUNGE')), fetched.lines.join('\n'));
      const later = await dialogue.command('NOOP');
      assert.ok(later.lines.includes('* 1 EXPUNGE'), later.lines.join('\n'));
      assert.equal((await dialogue.command('FETCH 1:* UID')).lines.length, 2);
    } finally {
      dialogue.close();
    }
  });

  test('CONDSTORE and QRESYNC: changes made while disconnected come back on SELECT', async () => {
    const { address } = await newMailbox();
    const a = await connect(address);
    for (let i = 1; i <= 4; i++) await a.append('INBOX', `Subject: q${i}\r\n\r\nbody ${i}\r\n`);
    const { dialogue } = await ImapDialogue.open(t.imapTlsPort, true);
    let uidValidity = 0;
    let modseq = 0;
    try {
      await dialogue.command(`LOGIN ${address} "${PASSWORD}"`);
      await dialogue.command('ENABLE QRESYNC');
      const selected = await dialogue.command('SELECT INBOX');
      uidValidity = Number(/UIDVALIDITY (\d+)/.exec(selected.lines.join('\n'))![1]);
      modseq = Number(/HIGHESTMODSEQ (\d+)/.exec(selected.lines.join('\n'))![1]);
    } finally {
      dialogue.close();
    }
    await a.mailboxOpen('INBOX');
    await a.messageFlagsAdd('3', ['\\Answered']);
    await a.messageFlagsAdd('2', ['\\Deleted']);
    await a.messageDelete('2');
    const again = await ImapDialogue.open(t.imapTlsPort, true);
    try {
      await again.dialogue.command(`LOGIN ${address} "${PASSWORD}"`);
      await again.dialogue.command('ENABLE QRESYNC');
      const resync = await again.dialogue.command(`SELECT INBOX (QRESYNC (${uidValidity} ${modseq} 1:4))`);
      const text = resync.lines.join('\n');
      assert.match(text, /\* VANISHED \(EARLIER\) 2/);
      assert.match(text, /\* 2 FETCH \(UID 3 FLAGS \(\\Answered\) MODSEQ \(\d+\)\)/);
      const store = await again.dialogue.command(`UID STORE 4 (UNCHANGEDSINCE ${modseq}) +FLAGS (\\Seen)`);
      assert.match(store.reply, /OK/);
      const refused = await again.dialogue.command(`UID STORE 3 (UNCHANGEDSINCE ${modseq}) +FLAGS (\\Seen)`);
      assert.match(refused.reply, /OK \[MODIFIED 3\]/);
      const changed = await again.dialogue.command(`UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${modseq} VANISHED)`);
      assert.match(changed.lines.join('\n'), /VANISHED \(EARLIER\) 2/);
    } finally {
      again.dialogue.close();
    }
    // Once the retention has forgotten the expunge (the daily job), a client that knows the old modseq
    // still hears of it: every UID below UIDNEXT that the folder no longer holds.
    assert.ok((await t.app.services.mailstore.pruneExpunged(new Date(Date.now() + 60_000))) >= 1);
    const late = await ImapDialogue.open(t.imapTlsPort, true);
    try {
      await late.dialogue.command(`LOGIN ${address} "${PASSWORD}"`);
      await late.dialogue.command('ENABLE QRESYNC');
      const resync = await late.dialogue.command(`SELECT INBOX (QRESYNC (${uidValidity} ${modseq} 1:4))`);
      const text = resync.lines.join('\n');
      assert.match(text, /\* VANISHED \(EARLIER\) 2\r?$/m);
      const current = Number(/HIGHESTMODSEQ (\d+)/.exec(text)![1]);
      const fetched = await late.dialogue.command(`UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${current} VANISHED)`);
      assert.doesNotMatch(
        fetched.lines.join('\n'),
        /VANISHED/,
        'nothing is vanished since the current modseq',
      );
    } finally {
      late.dialogue.close();
    }
  });

  test('SEARCH and ESEARCH: flags, headers, text through the full-text index, sizes and sets', async () => {
    const { address } = await newMailbox();
    const a = await connect(address);
    await a.append(
      'INBOX',
      'From: alice@example.org\r\nSubject: Invoice April\r\n\r\nplease pay the invoice\r\n',
      ['\\Seen'],
    );
    await a.append('INBOX', 'From: bob@example.org\r\nSubject: Lunch\r\n\r\nsandwiches at noon\r\n');
    await a.append(
      'INBOX',
      'From: carol@example.org\r\nSubject: Re: Invoice April\r\nX-Team: blue\r\n\r\npaid\r\n',
      ['\\Flagged'],
    );
    await a.mailboxOpen('INBOX');
    assert.deepEqual(await a.search({ seen: false }), [2, 3]);
    assert.deepEqual(await a.search({ subject: 'invoice' }), [1, 3]);
    assert.deepEqual(await a.search({ from: 'bob' }), [2]);
    assert.deepEqual(await a.search({ body: 'sandwiches' }), [2]);
    assert.deepEqual(await a.search({ or: [{ flagged: true }, { from: 'bob' }] }), [2, 3]);
    assert.deepEqual(await a.search({ header: { 'x-team': 'blue' } }), [3]);
    assert.deepEqual(await a.search({ uid: '2:*' }, { uid: true }), [2, 3]);
    const { dialogue } = await ImapDialogue.open(t.imapTlsPort, true);
    try {
      await dialogue.command(`LOGIN ${address} "${PASSWORD}"`);
      await dialogue.command('EXAMINE INBOX');
      const es = await dialogue.command('UID SEARCH RETURN (MIN MAX COUNT ALL) NOT SEEN');
      assert.ok(
        es.lines.includes('* ESEARCH (TAG "t3") UID MIN 2 MAX 3 COUNT 2 ALL 2:3'),
        es.lines.join('\n'),
      );
      const text = await dialogue.command('SEARCH TEXT "paid" SINCE 1-Jan-2020 LARGER 10');
      assert.ok(text.lines.includes('* SEARCH 3'), text.lines.join('\n'));
      const charset = await dialogue.command('SEARCH CHARSET KOI8-R TEXT x');
      assert.match(charset.reply, /NO \[BADCHARSET/);
    } finally {
      dialogue.close();
    }
  });

  test('mail sent through submission is copied into Sent unless the mailbox turns it off', async () => {
    const { address, id } = await newMailbox();
    const sent = await submitMail(t.submissionPort, address, PASSWORD, {
      from: address,
      to: 'someone@outside.example',
      subject: 'Kept',
    });
    assert.ok(sent.ok, sent.response);
    const client = await connect(address);
    await until(
      async () => ((await client.status('Sent', { messages: true })) as any).messages,
      (n) => n === 1,
    );
    await client.mailboxOpen('Sent');
    const copy = (await client.fetchOne('1', { envelope: true, flags: true })) as any;
    assert.equal(copy?.envelope?.subject, 'Kept');
    assert.ok(copy?.flags?.has('\\Seen'));
    const off = await t.call('PATCH', `/v1/mailboxes/${id}`, {
      token: org.token,
      body: { save_sent: false },
    });
    assert.equal(off.status, 200, JSON.stringify(off.body));
    assert.equal(off.body.save_sent, false);
    await submitMail(t.submissionPort, address, PASSWORD, {
      from: address,
      to: 'someone@outside.example',
      subject: 'Not kept',
    });
    assert.equal(((await client.status('Sent', { messages: true })) as any).messages, 1);
  });

  test('the folders API: list, create, messages with flags, flag and move operations seen by IMAP sessions', async () => {
    const { address, id } = await newMailbox();
    const client = await connect(address);
    await client.append('INBOX', 'Subject: via api\r\n\r\nhello\r\n');
    await client.append('INBOX', 'Subject: second\r\n\r\nhello again\r\n');
    await client.mailboxOpen('INBOX');
    const folders = await t.call('GET', `/v1/mailboxes/${id}/folders`, { token: org.token });
    assert.equal(folders.status, 200);
    const inbox = folders.body.items.find((f: any) => f.name === 'INBOX');
    const archive = folders.body.items.find((f: any) => f.name === 'Archive');
    assert.equal(inbox.messages, 2);
    assert.equal(inbox.unseen, 2);
    const page = await t.call('GET', `/v1/mailboxes/${id}/folders/${inbox.id}/messages?page_size=1`, {
      token: org.token,
    });
    assert.equal(page.status, 200);
    assert.equal(page.body.total, 2);
    assert.equal(page.body.items[0].uid, 2);
    assert.equal(page.body.items[0].subject, 'second');
    const flagEvents: number[] = [];
    client.on('flags', (e) => flagEvents.push(e.seq));
    const flagged = await t.call('POST', `/v1/mailboxes/${id}/folders/${inbox.id}/messages/flags`, {
      token: org.token,
      body: { uids: [1], add: ['\\Flagged', '$Important'] },
    });
    assert.equal(flagged.status, 200, JSON.stringify(flagged.body));
    assert.deepEqual(flagged.body.items[0].flags, ['$Important', '\\Flagged']);
    await until(
      async () => {
        await client.noop();
        return flagEvents.length;
      },
      (n) => n >= 1,
    );
    const expunges: number[] = [];
    client.on('expunge', (e) => expunges.push(e.seq!));
    const moved = await t.call('POST', `/v1/mailboxes/${id}/folders/${inbox.id}/messages/move`, {
      token: org.token,
      body: { uids: [1], to_folder_id: archive.id },
    });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    assert.deepEqual(moved.body.items, [{ from: 1, to: 1 }]);
    await until(
      async () => {
        await client.noop();
        return expunges.length;
      },
      (n) => n === 1,
    );
    const created = await t.call('POST', `/v1/mailboxes/${id}/folders`, {
      token: org.token,
      body: { name: 'Clients/Acme' },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const bad = await t.call('POST', `/v1/mailboxes/${id}/folders`, {
      token: org.token,
      body: { name: 'a//b' },
    });
    assert.equal(bad.status, 400);
    const exists = await t.call('POST', `/v1/mailboxes/${id}/folders`, {
      token: org.token,
      body: { name: 'Clients/Acme' },
    });
    assert.equal(exists.status, 409);
    const other = await freshOrg(t);
    const hidden = await t.call('GET', `/v1/mailboxes/${id}/folders`, { token: other.token });
    assert.equal(hidden.status, 404);
  });

  test('logins: app passwords work, wrong passwords and suspended mailboxes are refused and recorded', async () => {
    const { address, id } = await newMailbox();
    const issued = await t.call('POST', `/v1/mailboxes/${id}/app-passwords`, {
      token: org.token,
      body: { label: 'Phone' },
    });
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    const client = await connect(address, issued.body.password);
    await client.logout();
    // Revoking the app password ends the sessions that may have logged in with it.
    const { dialogue: viaApp } = await ImapDialogue.open(t.imapTlsPort, true);
    assert.match((await viaApp.command(`LOGIN ${address} "${issued.body.password}"`)).reply, /OK/);
    const revoked = await t.call('DELETE', `/v1/mailboxes/${id}/app-passwords/${issued.body.id}`, {
      token: org.token,
    });
    assert.equal(revoked.status, 204, JSON.stringify(revoked.body));
    assert.match(await viaApp.line(), /^\* BYE The credentials changed/);
    viaApp.close();
    await assert.rejects(() => imapClient(t.imapPort, address, 'wrong password'));
    const events = await t.call(
      'GET',
      `/v1/organizations/${org.orgId}/security-events?kind=imap_auth_failed`,
      { token: org.token },
    );
    assert.ok(
      events.body.items.some((e: any) => e.details.username === address),
      JSON.stringify(events.body),
    );
    // An open session ends when the mailbox is suspended.
    const { dialogue } = await ImapDialogue.open(t.imapTlsPort, true);
    assert.match((await dialogue.command(`LOGIN ${address} "${PASSWORD}"`)).reply, /OK/);
    const suspended = await t.call('PATCH', `/v1/mailboxes/${id}`, {
      token: org.token,
      body: { status: 'suspended' },
    });
    assert.equal(suspended.status, 200);
    assert.match(await dialogue.line(), /^\* BYE The mailbox may no longer log in/);
    dialogue.close();
    await assert.rejects(() => imapClient(t.imapPort, address, PASSWORD));
  });

  test('malformed commands, bad literals and commands before login get BAD or NO; the session goes on', async () => {
    const { address } = await newMailbox();
    const { dialogue } = await ImapDialogue.open(t.imapTlsPort, true);
    try {
      assert.match((await dialogue.command('SELECT INBOX')).reply, /BAD/);
      assert.match((await dialogue.command('FETCH 1:* FLAGS')).reply, /BAD/);
      assert.match((await dialogue.command('BLAH')).reply, /BAD/);
      assert.match((await dialogue.command('LOGIN (unbalanced')).reply, /BAD/);
      dialogue.send(`x1 APPEND INBOX {${100 * 1024 * 1024}}\r\n`);
      assert.match((await dialogue.until('x1')).reply, /NO \[TOOBIG\]/);
      dialogue.send(`x2 ${'A'.repeat(300 * 1024)}\r\n`);
      assert.match(await dialogue.line(), /BAD/);
      assert.match((await dialogue.command(`LOGIN ${address} "${PASSWORD}"`)).reply, /OK/);
      assert.match((await dialogue.command('FETCH 1 FLAGS')).reply, /BAD/);
      assert.match((await dialogue.command('SELECT INBOX')).reply, /OK/);
      assert.match((await dialogue.command('FETCH 99 FLAGS')).reply, /BAD/);
      assert.match((await dialogue.command('FETCH 1:2 (FLAGS')).reply, /BAD/);
      assert.match((await dialogue.command('UID FETCH 1:* (BODY[HEADER.FIELDS FROM])')).reply, /BAD/);
      assert.match((await dialogue.command('STORE 1 +FLAGS (\\Recent)')).reply, /BAD/);
      assert.match((await dialogue.command('SELECT Nonexistent')).reply, /NO \[NONEXISTENT\]/);
      assert.match((await dialogue.command('APPEND Nowhere {3+}\r\nabc')).reply, /NO \[TRYCREATE\]/);
      assert.match((await dialogue.command('APPEND INBOX {0+}\r\n')).reply, /NO/);
      assert.match((await dialogue.command('NOOP')).reply, /OK/);
    } finally {
      dialogue.close();
    }
  });

  test('hardening: STARTTLS drops pipelined commands, small literals before login, edge cases answered', async () => {
    const { address } = await newMailbox();
    // A command sent in the clear right after STARTTLS must not run inside TLS (RFC 3501 6.2.1).
    const { dialogue: plain } = await ImapDialogue.open(t.imapPort);
    try {
      plain.send('a STARTTLS\r\nb CAPABILITY\r\n');
      assert.match(await plain.line(), /^a OK/);
      await plain.startTls();
      const next = await plain.command('NOOP');
      assert.ok(!next.lines.some((l) => l.startsWith('b ')), next.lines.join('\n'));
      assert.match(next.reply, /OK/);
      // Before login a literal is a user name or a password: a large one is refused before it is sent.
      plain.send('c LOGIN {26000000}\r\n');
      assert.match((await plain.until('c')).reply, /^c NO \[TOOBIG\]/);
    } finally {
      plain.close();
    }
    const { dialogue } = await ImapDialogue.open(t.imapTlsPort, true);
    try {
      await dialogue.command(`LOGIN ${address} "${PASSWORD}"`);
      for (const [tag, message] of [
        ['x1', 'From: Bob <bob@example.org>\r\nSubject: one\r\n\r\na\r\n'],
        ['x2', 'Subject: two\r\n\r\nb\r\n'],
      ]) {
        dialogue.send(`${tag} APPEND INBOX {${Buffer.byteLength(message)}+}\r\n${message}\r\n`);
        assert.match((await dialogue.until(tag)).reply, /OK/);
      }
      await dialogue.command('SELECT INBOX');
      assert.match((await dialogue.command('UID MOVE 1 INBOX')).reply, /NO \[CANNOT\]/);
      // The second message has no From: NOT FROM still finds it.
      assert.ok((await dialogue.command('SEARCH NOT FROM alice')).lines.includes('* SEARCH 1 2'));
      assert.match((await dialogue.command('SEARCH LARGER 3000000000')).reply, /OK/);
      assert.match((await dialogue.command('SEARCH MODSEQ 9223372036854775807')).reply, /OK/);
      await dialogue.command('ENABLE CONDSTORE');
      const stored = await dialogue.command('STORE 1 +FLAGS (\\Flagged)');
      assert.match(stored.lines[0], /^\* 1 FETCH \(FLAGS \([^)]*\) UID 1 MODSEQ \(\d+\)\)/);
      const reselect = await dialogue.command('EXAMINE INBOX');
      assert.equal(reselect.lines[0], '* OK [CLOSED] Previous folder closed');
      const created = await dialogue.command('CREATE Again');
      assert.match(created.reply, /OK/);
      const first = /UIDVALIDITY (\d+)/.exec(
        (await dialogue.command('STATUS Again (UIDVALIDITY)')).lines[0],
      )![1];
      await dialogue.command('DELETE Again');
      await dialogue.command('CREATE Again');
      const second = /UIDVALIDITY (\d+)/.exec(
        (await dialogue.command('STATUS Again (UIDVALIDITY)')).lines[0],
      )![1];
      assert.ok(Number(second) > Number(first), `${first} then ${second}`);
    } finally {
      dialogue.close();
    }
  });
});
