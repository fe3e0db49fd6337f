// Syncing an external account from a real third-party IMAP server (a private Dovecot): the first sync
// of a window, newest first; arrivals announced through IDLE; remote flag changes and deletions; a
// UIDVALIDITY reset; a dropped connection; changes made through the API applied on the server; a
// refused login. Everything is observed through the HTTP API and the events it shows.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ImapFlow } from 'imapflow';
import { engine, eventsOf, type Org, orgMaker, startTestApp, type TestApp } from '../../support/app.ts';
import { DOVECOT_MISSING, type Dovecot, startDovecot } from '../../support/dovecot.ts';
import { startFaultyProxy } from '../../support/faulty-proxy.ts';
import { startGmailProxy } from '../../support/gmail-proxy.ts';
import { type SmtpSink, startSmtpSink } from '../../support/smtp-sink.ts';
import { imapClient } from '../../support/imap.ts';
import { until } from '../../support/until.ts';

const USER = 'carol@remote.test';
const PASSWORD = 'carol remote password';
const dovecot = await startDovecot();

let counter = 0;
function message(subject: string, extra: string[] = []): string {
  counter++;
  return [
    'From: Dave <dave@elsewhere.test>',
    `To: ${USER}`,
    `Subject: ${subject}`,
    `Message-ID: <m${counter}.${subject.replaceAll(' ', '-')}@elsewhere.test>`,
    'Date: Mon, 01 Jan 2024 10:00:00 +0000',
    ...extra,
    '',
    `Body of ${subject}.`,
    '',
  ].join('\r\n');
}

describe(`external account sync on ${engine}`, { skip: dovecot ? false : DOVECOT_MISSING }, () => {
  const server = dovecot as Dovecot;
  const freshOrg = orgMaker('sync');
  let t: TestApp;
  let org: Org;
  let accountId: string;
  let remote: ImapFlow;
  let smtp: SmtpSink;

  const api = (method: string, url: string, body?: unknown) =>
    t.call(method, url, { token: org.token, body });
  const messages = async (folder?: string) => {
    const res = await api(
      'GET',
      `/v1/accounts/${accountId}/messages?page_size=100${folder ? `&folder=${encodeURIComponent(folder)}` : ''}`,
    );
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.items as {
      id: string;
      subject: string;
      thread_id: string;
      copies: { folder: string; uid: number; flags: string[] }[];
    }[];
  };
  const subjects = async (folder?: string) => (await messages(folder)).map((m) => m.subject).sort();
  const account = async () => (await api('GET', `/v1/accounts/${accountId}`)).body;
  const syncNow = async () => assert.equal((await api('POST', `/v1/accounts/${accountId}/sync`)).status, 202);

  before(async () => {
    t = await startTestApp({
      workers: true,
      env: {
        MAILROOM_ACCOUNTS_LEASE_SECONDS: '3',
        MAILROOM_ACCOUNTS_MAX_BACKOFF_SECONDS: '2',
        MAILROOM_ACCOUNTS_SYNC_BATCH: '20',
      },
    });
    org = await freshOrg(t);
    smtp = await startSmtpSink({ passwords: { [USER]: PASSWORD } });
    await server.addUser(USER, PASSWORD);
    remote = await imapClient(server.imapsPort, USER, PASSWORD, { secure: true });
    // Outside the 30-day window: the first sync leaves it on the server.
    await remote.append('INBOX', message('from last year'), [], new Date(Date.now() - 400 * 86_400_000));
    await server.deliver(USER, message('first'));
    await server.deliver(USER, message('second'));
    await server.deliver(USER, message('a project', ['In-Reply-To: <m2.first@elsewhere.test>']), 'Projects');
  });
  after(async () => {
    await remote?.logout().catch(() => {});
    await smtp?.close();
    await t?.close();
    await server?.stop();
  });

  test('the first sync brings the window’s messages, marked with the account and threaded', async () => {
    const res = await api('POST', '/v1/accounts', {
      address: USER,
      password: PASSWORD,
      imap: { host: '127.0.0.1', port: server.imapsPort, security: 'tls', verify_tls: false },
      smtp: { host: '127.0.0.1', port: smtp.port, security: 'none' },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    accountId = res.body.id;
    await until(account, (a) => a.state === 'ready');
    assert.deepEqual(await subjects(), ['a project', 'first', 'second']);
    assert.deepEqual(await subjects('Projects'), ['a project']);
    const all = await messages();
    const byName = new Map(all.map((m) => [m.subject, m]));
    assert.equal(
      byName.get('a project')!.thread_id,
      byName.get('first')!.thread_id,
      'a reply joins its thread',
    );
    // The message log and search see them as they see hosted mail.
    const log = await api('GET', `/v1/messages?account_id=${accountId}&direction=synced`);
    assert.equal(log.body.items.length, 3);
    const folders = (await api('GET', `/v1/accounts/${accountId}/folders`)).body.items;
    assert.ok(
      folders.some(
        (f: { path: string; special_use: string }) => f.path === 'Sent' && f.special_use === '\\Sent',
      ),
    );
    assert.equal(folders.find((f: { path: string }) => f.path === 'INBOX').messages, 2);
  });

  test('a message arriving in INBOX is announced through IDLE', async () => {
    const started = Date.now();
    await server.deliver(USER, message('just arrived'));
    const [event] = await until(
      () => eventsOf(t, org, 'account.message_received'),
      (items) => items.some((e: { data: { subject: string } }) => e.data.subject === 'just arrived'),
      10_000,
    );
    assert.ok(Date.now() - started < 5000, `announced after ${Date.now() - started} ms`);
    assert.equal(event.data.folder, 'INBOX');
    assert.equal(event.data.account_id, accountId);
    assert.ok((await subjects()).includes('just arrived'));
  });

  test('sending through the account’s SMTP: threaded as a reply, with a copy in Sent', async () => {
    const project = (await messages()).find((m) => m.subject === 'a project')!;
    const sent = await api('POST', `/v1/accounts/${accountId}/send`, {
      to: ['dave@elsewhere.test'],
      text: 'Thanks, looks good.',
      reply_to: project.id,
    });
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    assert.deepEqual(sent.body.accepted, ['dave@elsewhere.test']);
    assert.equal(sent.body.sent_folder, 'Sent');
    const [delivered] = await smtp.waitFor(1);
    assert.equal(delivered.mailFrom, USER);
    const raw = delivered.raw.toString();
    assert.match(raw, /^Subject: Re: a project$/m);
    assert.match(raw, /^In-Reply-To: <m\d+\.a-project@elsewhere\.test>$/m);
    assert.match(raw, /^References: <m2\.first@elsewhere\.test> <m\d+\.a-project@elsewhere\.test>$/m);
    // The copy in Sent on the server, synced back and threaded with what it answers.
    await syncNow();
    const copy = await until(
      async () => (await messages('Sent')).find((m) => m.subject === 'Re: a project'),
      (m) => !!m,
    );
    assert.equal(copy!.thread_id, project.thread_id);
    assert.ok(copy!.copies[0].flags.includes('\\Seen'));

    const nobody = await api('POST', `/v1/accounts/${accountId}/send`, { to: [], text: 'x' });
    assert.equal(nobody.status, 422);
    const unknownReply = await api('POST', `/v1/accounts/${accountId}/send`, {
      to: ['dave@elsewhere.test'],
      text: 'x',
      reply_to: '00000000-0000-7000-8000-000000000000',
    });
    assert.equal(unknownReply.status, 422);
  });

  test('flags changed and messages deleted on the server arrive with the next sync', async () => {
    await remote.mailboxOpen('INBOX');
    const first = (await remote.search({ header: { subject: 'first' } }, { uid: true })) as number[];
    await remote.messageFlagsAdd(String(first[0]), ['\\Seen', '\\Flagged'], { uid: true });
    await until(
      async () => (await messages('INBOX')).find((m) => m.subject === 'first')!.copies[0].flags,
      (flags) => flags.includes('\\Seen') && flags.includes('\\Flagged'),
    );
    const second = (await remote.search({ header: { subject: 'second' } }, { uid: true })) as number[];
    await remote.messageDelete(String(second[0]), { uid: true });
    await until(subjects, (s) => !s.includes('second'));
    const updates = await eventsOf(t, org, 'account.message_updated');
    assert.ok(updates.some((e: { data: { deleted: boolean } }) => e.data.deleted));
    // Another folder's changes come with a sync (its poll, or one asked for).
    await server.deliver(USER, message('another project'), 'Projects');
    await syncNow();
    await until(
      () => subjects('Projects'),
      (s) => s.includes('another project'),
    );
  });

  test('changes through the API are made on the server and recorded here', async () => {
    const first = (await messages('INBOX')).find((m) => m.subject === 'first')!;
    const unread = await api('PATCH', `/v1/accounts/${accountId}/messages/${first.id}`, { seen: false });
    assert.equal(unread.status, 200, JSON.stringify(unread.body));
    assert.ok(!unread.body.copies[0].flags.includes('\\Seen'));
    await remote.mailboxOpen('INBOX');
    const [onServer] = await remote.fetchAll(String(first.copies[0].uid), { flags: true }, { uid: true });
    assert.ok(!onServer.flags!.has('\\Seen'));

    const moved = await api('PATCH', `/v1/accounts/${accountId}/messages/${first.id}`, {
      folder: 'Projects',
    });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    assert.deepEqual(
      moved.body.copies.map((c: { folder: string }) => c.folder),
      ['Projects'],
    );
    await syncNow();
    // Known already: the move is not synced in as a second message.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await subjects()).filter((s) => s === 'first').length, 1);

    const gone = await api('DELETE', `/v1/accounts/${accountId}/messages/${first.id}?permanent=true`);
    assert.equal(gone.status, 204);
    assert.equal((await api('GET', `/v1/accounts/${accountId}/messages/${first.id}`)).status, 404);
    await remote.mailboxOpen('Projects');
    assert.ok(!((await remote.search({ header: { subject: 'first' } }, { uid: true })) as number[]).length);

    const missing = await api('PATCH', `/v1/accounts/${accountId}/messages/${first.id}`, { seen: true });
    assert.equal(missing.status, 404);
    const badFolder = await api('PATCH', `/v1/accounts/${accountId}/messages/${(await messages())[0].id}`, {
      folder: 'No such folder',
    });
    assert.equal(badFolder.status, 422);
  });

  test('a new UIDVALIDITY resyncs the folder without duplicates', async () => {
    const before = await subjects('INBOX');
    await server.resetUidValidity(USER, 'INBOX');
    await syncNow();
    await until(
      async () =>
        (await api('GET', `/v1/accounts/${accountId}/folders`)).body.items.find(
          (f: { path: string }) => f.path === 'INBOX',
        ),
      (f) => f.messages === before.length && f.uid_validity !== null,
    );
    await until(
      () => subjects('INBOX'),
      (s) => JSON.stringify(s) === JSON.stringify(before),
    );
  });

  test('a dropped connection is picked up again, with nothing lost or doubled', async () => {
    await server.doveadm(['kick', USER]);
    await server.deliver(USER, message('after the drop'));
    await until(subjects, (s) => s.includes('after the drop'), 20_000);
    const all = await subjects();
    assert.equal(all.length, new Set(all).size);
    await until(account, (a) => a.state === 'ready');
  });

  /** A second remote user with `count` messages in INBOX, connected through a faulty proxy. */
  async function troubledAccount(user: string, count: number) {
    await server.addUser(user, PASSWORD);
    const client = await imapClient(server.imapsPort, user, PASSWORD, { secure: true });
    for (let i = 0; i < count; i++) await client.append('INBOX', message(`${user} ${i}`));
    await client.logout();
    const proxy = await startFaultyProxy(server.imapPort);
    const created = await api('POST', '/v1/accounts', {
      address: user,
      password: PASSWORD,
      imap: { host: '127.0.0.1', port: proxy.port, security: 'none' },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    return { proxy, id: created.body.id as string };
  }
  const countOf = async (id: string) => {
    const res = await api('GET', `/v1/messages?account_id=${id}&page_size=1`);
    return res.body.total as number;
  };

  test('a server that drops the connection mid-sync: retried, nothing lost or doubled', async () => {
    const { proxy, id } = await troubledAccount('erin@remote.test', 80);
    proxy.cutAfter(12_000);
    await until(
      () => api('GET', `/v1/accounts/${id}`),
      (r) => r.body.state === 'ready',
      30_000,
    );
    assert.equal(proxy.faults, 1);
    assert.equal(await countOf(id), 80);
    const subjects = (await api('GET', `/v1/accounts/${id}/messages?page_size=100`)).body.items.map(
      (m: { subject: string }) => m.subject,
    );
    assert.equal(new Set(subjects).size, 80);
    const failures = await eventsOf(t, org, 'account.sync_failed');
    assert.ok(failures.some((e: { data: { account_id: string } }) => e.data.account_id === id));
    await proxy.close();
  });

  test('a server that answers what cannot be read: a clear error, then a clean retry', async () => {
    const { proxy, id } = await troubledAccount('frank@remote.test', 30);
    proxy.garbleOn(/UID FETCH/, '* 1 FETCH (UID 1 FLAGS (\\Seen BODY[] {12}\r\n((( broken\r\n');
    await until(
      () => api('GET', `/v1/accounts/${id}`),
      (r) => r.body.state === 'ready',
      30_000,
    );
    assert.equal(proxy.faults, 1);
    assert.equal(await countOf(id), 30);
    const failures = await eventsOf(t, org, 'account.sync_failed');
    const failure = failures.find((e: { data: { account_id: string } }) => e.data.account_id === id);
    assert.ok(failure, 'the failure was announced');
    assert.ok(failure.data.error.length > 0);
    await proxy.close();
  });

  test('Gmail: a message in several labels is stored once, with its labels', async () => {
    const user = 'gina@remote.test';
    await server.addUser(user, PASSWORD);
    await server.deliver(user, message('labelled twice'));
    await server.deliver(user, message('work only'), 'Work');
    const client = await imapClient(server.imapsPort, user, PASSWORD, { secure: true });
    await client.mailboxOpen('INBOX');
    await client.messageCopy('1:*', 'Work');
    const gmail = await startGmailProxy(server.imapPort);
    try {
      const created = await api('POST', '/v1/accounts', {
        address: user,
        password: PASSWORD,
        imap: { host: '127.0.0.1', port: gmail.port, security: 'none' },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const id = created.body.id;
      const ready = await until(
        () => api('GET', `/v1/accounts/${id}`),
        (r) => r.body.state === 'ready',
      );
      assert.ok(ready.body.capabilities.includes('X-GM-EXT-1'));
      const list = async () =>
        (await api('GET', `/v1/accounts/${id}/messages`)).body.items as {
          subject: string;
          copies: { folder: string; labels: string[] }[];
        }[];
      const both = (await list()).find((m) => m.subject === 'labelled twice')!;
      assert.equal((await list()).length, 2, 'stored once');
      assert.deepEqual(
        both.copies.map((c) => [c.folder, c.labels]),
        [
          ['INBOX', ['\\Inbox']],
          ['Work', ['Work']],
        ],
      );
      // Its label removed on one side (expunged from INBOX): the message stays, in Work.
      await client.messageDelete('1:*');
      await until(list, (items) => {
        const m = items.find((i) => i.subject === 'labelled twice');
        return !!m && m.copies.length === 1 && m.copies[0].folder === 'Work';
      });
    } finally {
      await client.logout();
      await gmail.close();
    }
  });

  test('a refused login moves the account to auth_failed with an event', async () => {
    await server.addUser(USER, 'a password changed elsewhere');
    await server.doveadm(['kick', USER]);
    await until(account, (a) => a.state === 'auth_failed', 20_000);
    const failed = await eventsOf(t, org, 'account.auth_failed');
    assert.equal(failed[0].data.account_id, accountId);
    // A new password that works puts it back to work.
    await server.addUser(USER, PASSWORD);
    // Dovecot rereads its users file when its modification time changes, which has whole seconds.
    await until(
      () =>
        imapClient(server.imapsPort, USER, PASSWORD, { secure: true }).then(
          (c) => c.logout().then(() => true),
          () => false,
        ),
      (ok) => ok,
    );
    const fixed = await api('PATCH', `/v1/accounts/${accountId}`, { password: PASSWORD });
    assert.equal(fixed.status, 200, JSON.stringify(fixed.body));
    await until(account, (a) => a.state === 'ready', 20_000);
  });
});
