// IMAP across restarts and processes: UIDVALIDITY and UIDs survive a restart on either engine; on
// PostgreSQL, a `mailroom imap` process announces to its IDLE sessions mail that another process's MX
// and workers filed, and flag changes made through the other process's API, within a second.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { ImapFlow } from 'imapflow';
import { engine, type Org, orgMaker, startTestApp, type TestApp } from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';
import { imapClient } from '../../support/imap.ts';
import { serve } from '../../support/process.ts';
import { sendMail } from '../../support/smtp.ts';
import { until } from '../../support/until.ts';

const PASSWORD = 'a long mailbox password';

describe(`IMAP across restarts and processes on ${engine}`, () => {
  const freshOrg = orgMaker('imapprocs');
  const cleanups: (() => Promise<void>)[] = [];
  const clients: ImapFlow[] = [];
  after(async () => {
    for (const c of clients) await c.logout().catch(() => c.close());
    for (const c of cleanups.reverse()) await c();
  });

  const newMailbox = async (t: TestApp, org: Org, address: string) => {
    const res = await t.call('POST', '/v1/mailboxes', {
      token: org.token,
      body: { address, password: PASSWORD },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.id as string;
  };

  test('UIDVALIDITY, UIDs and UIDNEXT are the same after a restart', async () => {
    const dns: TestDnsServer = await startDnsServer();
    cleanups.push(() => dns.close());
    const first = await startTestApp({ imap: true, env: { MAILROOM_DNS_SERVERS: dns.address } });
    // Closed by the second's clean-up order: the second app first, then the data.
    cleanups.push(() => first.close());
    const org = await freshOrg(first);
    await verifiedDomain(first, org.token, 'restart.test', [dns]);
    await newMailbox(first, org, 'keep@restart.test');
    const client = await imapClient(first.imapPort, 'keep@restart.test', PASSWORD);
    for (let i = 1; i <= 3; i++) await client.append('Archive', `Subject: kept ${i}\r\n\r\nbody\r\n`);
    const before = await client.status('Archive', { uidValidity: true, uidNext: true, messages: true });
    await client.logout();
    const { env } = first;
    // The same data: the data dir on the embedded engine, the database on PostgreSQL.
    await first.app.close();
    const second = await startTestApp({
      imap: true,
      env: { MAILROOM_SECRET_KEY: env.MAILROOM_SECRET_KEY, MAILROOM_DNS_SERVERS: dns.address },
      ...(env.DATABASE_URL ? { databaseUrl: env.DATABASE_URL } : { dataDir: env.MAILROOM_DATA_DIR }),
    });
    cleanups.push(() => second.close());
    const again = await imapClient(second.imapPort, 'keep@restart.test', PASSWORD);
    clients.push(again);
    assert.deepEqual(
      await again.status('Archive', { uidValidity: true, uidNext: true, messages: true }),
      before,
    );
    await again.mailboxOpen('Archive');
    const uids: number[] = [];
    for await (const m of again.fetch('1:*', { uid: true })) uids.push(m.uid);
    assert.deepEqual(uids, [1, 2, 3]);
    const appended = await again.append('Archive', 'Subject: after\r\n\r\nbody\r\n');
    assert.equal(appended ? appended.uid : null, 4);
  });

  test('an IMAP process announces what another process filed and changed', {
    skip: engine !== 'postgres',
  }, async () => {
    const dns: TestDnsServer = await startDnsServer();
    cleanups.push(() => dns.close());
    const front = await startTestApp({
      smtp: true,
      workers: true,
      env: { MAILROOM_DNS_SERVERS: dns.address, MAILROOM_HOSTNAME: 'mx.procs.test' },
    });
    cleanups.push(() => front.close());
    const org = await freshOrg(front);
    await verifiedDomain(front, org.token, 'procs.test', [dns]);
    const mailboxId = await newMailbox(front, org, 'idle@procs.test');
    const imap = await serve(
      ['imap'],
      {
        DATABASE_URL: front.env.DATABASE_URL,
        MAILROOM_SECRET_KEY: front.env.MAILROOM_SECRET_KEY,
        MAILROOM_LOG_LEVEL: 'info',
      },
      cleanups,
    );
    const client = await imapClient(imap.imapPort!, 'idle@procs.test', PASSWORD);
    clients.push(client);
    await client.mailboxOpen('INBOX');
    const exists: { count: number; at: number }[] = [];
    const flags: string[][] = [];
    client.on('exists', (e) => exists.push({ count: e.count, at: Date.now() }));
    client.on('flags', (e) => flags.push([...(e.flags ?? [])]));
    void client.idle();
    await until(
      async () => (client as any).idling as boolean,
      (idling) => idling,
    );
    const sentAt = Date.now();
    await sendMail(front.smtpPort, {
      from: 'someone@outside.example',
      to: 'idle@procs.test',
      subject: 'Across',
    });
    await until(
      async () => exists.length,
      (n) => n === 1,
    );
    assert.ok(exists[0].at - sentAt < 1_000, `announced after ${exists[0].at - sentAt} ms`);
    const folders = await front.call('GET', `/v1/mailboxes/${mailboxId}/folders`, { token: org.token });
    const inbox = folders.body.items.find((f: any) => f.name === 'INBOX');
    const flagged = await front.call(
      'POST',
      `/v1/mailboxes/${mailboxId}/folders/${inbox.id}/messages/flags`,
      {
        token: org.token,
        body: { uids: [1], add: ['\\Flagged'] },
      },
    );
    assert.equal(flagged.status, 200);
    await until(
      async () => flags.length,
      (n) => n >= 1,
    );
    assert.ok(flags[0].includes('\\Flagged'), JSON.stringify(flags));
  });
});
