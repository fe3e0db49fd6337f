// The private Dovecot that external-account tests sync against (test/support/dovecot.ts): what the sync
// relies on, checked with imapflow over STARTTLS, implicit TLS and plaintext.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import type { ImapFlow } from 'imapflow';
import { DOVECOT_MISSING, startDovecot } from '../../support/dovecot.ts';
import { imapClient } from '../../support/imap.ts';

const USER = 'alice@remote.test';
const PASSWORD = 'a remote password';

const dovecot = await startDovecot();

function message(subject: string): string {
  return [
    'From: Bob <bob@elsewhere.test>',
    `To: ${USER}`,
    `Subject: ${subject}`,
    `Message-ID: <${subject.replaceAll(' ', '-')}@elsewhere.test>`,
    'Date: Mon, 01 Jan 2024 10:00:00 +0000',
    '',
    `Body of ${subject}.`,
    '',
  ].join('\r\n');
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

async function uidValidityOf(client: ImapFlow, folder: string): Promise<bigint | undefined> {
  const status = await client.status(folder, { uidValidity: true });
  return status ? status.uidValidity : undefined;
}

/** Subjects by UID of a folder's messages. */
async function subjects(client: ImapFlow, folder: string): Promise<Map<number, string>> {
  const lock = await client.getMailboxLock(folder);
  try {
    const found = new Map<number, string>();
    for await (const msg of client.fetch('1:*', { uid: true, envelope: true })) {
      found.set(msg.uid, msg.envelope!.subject!);
    }
    return found;
  } finally {
    lock.release();
  }
}

describe('a private Dovecot for external accounts', { skip: dovecot ? false : DOVECOT_MISSING }, () => {
  const server = dovecot!;
  const clients: ImapFlow[] = [];
  const login = async (port: number, options = {}) => {
    const client = await imapClient(port, USER, PASSWORD, options);
    clients.push(client);
    return client;
  };

  after(async () => {
    await Promise.all(clients.map((c) => c.logout().catch(() => {})));
    await dovecot?.stop();
  });

  test('a user with mail in INBOX and in a new folder', async () => {
    await server.addUser(USER, PASSWORD);
    await server.deliver(USER, message('first'));
    await server.deliver(USER, message('second'));
    await server.deliver(USER, Buffer.from(message('a project')), 'Projects');
  });

  test('STARTTLS, with the extensions the sync uses', async () => {
    const client = await login(server.imapPort, { doSTARTTLS: true });
    assert.equal(client.secureConnection, true);
    for (const cap of ['IDLE', 'CONDSTORE', 'QRESYNC', 'UIDPLUS', 'MOVE', 'SPECIAL-USE'])
      assert.ok(client.capabilities.has(cap), `${cap} missing`);
  });

  test('plaintext login without TLS is allowed', async () => {
    const client = await login(server.imapPort, { doSTARTTLS: false });
    assert.equal(client.secureConnection, false);
    assert.ok(client.authenticated);
  });

  test('folders: INBOX, the new one, and special-use ones', async () => {
    const client = await login(server.imapsPort, { secure: true });
    const folders = await client.list();
    const byPath = new Map(folders.map((f) => [f.path, f]));
    assert.ok(byPath.has('INBOX'));
    assert.ok(byPath.has('Projects'));
    for (const [name, flag] of [
      ['Sent', '\\Sent'],
      ['Drafts', '\\Drafts'],
      ['Trash', '\\Trash'],
      ['Junk', '\\Junk'],
      ['Archive', '\\Archive'],
    ]) {
      assert.equal(byPath.get(name)?.specialUse, flag, name);
      assert.ok(byPath.get(name)?.subscribed, `${name} not subscribed`);
    }
  });

  test('fetches the delivered messages over implicit TLS', async () => {
    const client = await login(server.imapsPort, { secure: true });
    assert.equal(client.secureConnection, true);
    assert.deepEqual([...(await subjects(client, 'INBOX')).values()], ['first', 'second']);
    assert.deepEqual([...(await subjects(client, 'Projects')).values()], ['a project']);
  });

  test('IDLE hears of a delivery', async () => {
    const client = await login(server.imapPort);
    await client.mailboxOpen('INBOX');
    const exists = new Promise<{ count: number }>((resolve) => client.once('exists', resolve));
    const idling = client.idle();
    await server.deliver(USER, message('third'));
    assert.equal((await exists).count, 3);
    await client.mailboxClose();
    await idling;
  });

  test('resetUidValidity gives the folder a new UIDVALIDITY and its messages new UIDs', async () => {
    const before = await login(server.imapPort);
    const uidValidity = await uidValidityOf(before, 'Projects');
    const uidsBefore = await subjects(before, 'Projects');
    await server.resetUidValidity(USER, 'Projects');
    // A session that had the folder selected is dropped at its next command; a new one sees the change.
    const after = await login(server.imapPort);
    assert.notEqual(await uidValidityOf(after, 'Projects'), uidValidity);
    const uidsAfter = await subjects(after, 'Projects');
    assert.deepEqual([...uidsAfter.values()], ['a project']);
    assert.ok(
      [...uidsAfter.keys()].every((uid) => !uidsBefore.has(uid)),
      'a UID survived',
    );
  });

  test('doveadm reaches the same mail', async () => {
    const out = await server.doveadm(['-f', 'flow', 'mailbox', 'status', '-u', USER, 'messages', 'INBOX']);
    assert.match(out, /messages=3/);
  });

  test('a wrong password is refused', async () => {
    await assert.rejects(imapClient(server.imapPort, USER, 'not the password'), {
      authenticationFailed: true,
    });
  });

  test('a second instance is independent, and gone once stopped', async () => {
    const other = (await startDovecot())!;
    try {
      assert.notEqual(other.imapPort, server.imapPort);
      await other.addUser(USER, 'another password');
      const out = await other.doveadm(['-f', 'flow', 'mailbox', 'status', '-u', USER, 'messages', 'INBOX']);
      assert.match(out, /messages=0/);
    } finally {
      await other.stop();
    }
    assert.equal(await refused(other.imapPort), true);
  });
});
