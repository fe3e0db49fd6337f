// Several workers on one PostgreSQL share the backlogs without getting in each other's way: one
// instance runs the MX and the API with no workers, so mail accepted and queued waits; then three
// worker instances start on the same database. Every accepted message is filed exactly once in each
// mailbox it is for, each folder's UIDs are 1, 2, 3… without gaps or repeats, and a remote domain
// limited to 5 connections never sees more than 5 from the three of them together.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { engine, signUpWithOrg, startTestApp, type TestApp } from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';
import { type SmtpSink, startSmtpSink } from '../../support/smtp-sink.ts';
import { sendMail } from '../../support/smtp.ts';
import { until } from '../../support/until.ts';

const INBOUND = 120;
const OUTBOUND = 40;

describe('three workers on one database', { skip: engine !== 'postgres' }, () => {
  let dns: TestDnsServer | undefined;
  let sink: SmtpSink | undefined;
  const apps: TestApp[] = [];
  after(async () => {
    for (const a of apps.reverse()) await a.close();
    await sink?.close();
    await dns?.close();
  });

  test('share the processing and delivery backlogs: filed once, gap-free UIDs, at most 5 connections', async () => {
    dns = await startDnsServer();
    sink = await startSmtpSink();
    dns.set('far.test', { MX: [{ exchange: 'mx.far.test', priority: 10 }] });
    dns.set('mx.far.test', { A: ['127.0.0.1'] });
    const env = {
      MAILROOM_DNS_SERVERS: dns.address,
      MAILROOM_DNS_TIMEOUT: '300ms',
      MAILROOM_DNS_TRIES: '1',
      MAILROOM_OUTBOUND_PORT: String(sink.port),
      MAILROOM_OUTBOUND_CONNECTIONS_PER_DOMAIN: '5',
      // Small claims, so that every worker gets a share of both backlogs.
      MAILROOM_OUTBOUND_CONCURRENCY: '8',
      MAILROOM_PROCESSING_BATCH: '5',
      MAILROOM_SMTP_MESSAGES_PER_IP_PER_MINUTE: '100000',
      MAILROOM_SEND_LIMIT_MAILBOX_PER_DAY: '0',
    };
    const front = await startTestApp({ env, smtp: true });
    apps.push(front);
    const org = await signUpWithOrg(front, 'workers@example.com', 'Workers');
    await verifiedDomain(front, org.token, 'many.test', [dns]);
    const api = (method: string, url: string, body?: unknown) =>
      front.call(method, url, { token: org.token, body });
    const boxes = [];
    for (const address of ['one@many.test', 'two@many.test']) {
      const res = await api('POST', '/v1/mailboxes', { address });
      assert.equal(res.status, 201);
      boxes.push(res.body.id as string);
    }
    // Mail to both@ lands in both mailboxes; mail about projects to one@ goes to its Archive.
    assert.equal(
      (
        await api('POST', '/v1/aliases', {
          address: 'both@many.test',
          targets: ['one@many.test', 'two@many.test'],
        })
      ).status,
      201,
    );
    const rule = await api('POST', '/v1/rules', {
      domain_id: (await api('GET', '/v1/domains')).body.items[0].id,
      name: 'projects',
      recipient: 'one',
      conditions: [{ field: 'subject', op: 'contains', value: 'project' }],
      action: 'store',
      folder: 'Archive',
    });
    assert.equal(rule.status, 201, JSON.stringify(rule.body));

    const recipients = ['one@many.test', 'two@many.test', 'both@many.test'];
    let next = 0;
    const sender = async () => {
      for (let n = next++; n < INBOUND; n = next++) {
        await sendMail(front.smtpPort, {
          from: 'someone@origin.test',
          to: recipients[n % 3],
          subject: n % 4 === 0 ? `project ${n}` : `note ${n}`,
        });
      }
    };
    await Promise.all([sender(), sender(), sender(), sender()]);
    for (let n = 0; n < OUTBOUND; n++) {
      // Slow replies keep connections busy, so each worker would open all 5 of its own.
      sink.delayData(`r${n}@far.test`, 100);
      const sent = await api('POST', '/v1/messages/send', {
        from: 'one@many.test',
        to: [`r${n}@far.test`],
        subject: `out ${n}`,
        text: 'hello',
      });
      assert.equal(sent.status, 202, JSON.stringify(sent.body));
    }

    for (let i = 0; i < 3; i++) {
      apps.push(await startTestApp({ env, workers: true, databaseUrl: front.env.DATABASE_URL }));
    }
    const db = front.app.database;
    await until(
      async () =>
        (
          await db.query<{ waiting: number }>(
            `select (select count(*)::int from inbound_queue) +
                    (select count(*)::int from deliveries where status in ('queued', 'sending')) as waiting`,
          )
        ).rows[0].waiting,
      (waiting) => waiting === 0,
      60_000,
    );
    await sink.waitFor(OUTBOUND);

    // Filed once: one copy per mailbox each message is for.
    const copies = await db.query<{ subject: string; mailboxes: number; copies: number }>(
      `select m.subject, count(distinct mm.mailbox_id)::int as mailboxes, count(mm.id)::int as copies
         from messages m left join mailbox_messages mm on mm.message_id = m.id
        where m.direction = 'inbound' group by m.id, m.subject`,
    );
    assert.equal(copies.rows.length, INBOUND);
    for (const r of copies.rows) {
      const n = Number(r.subject.split(' ')[1]);
      const expected = n % 3 === 2 ? 2 : 1;
      assert.deepEqual([r.mailboxes, r.copies], [expected, expected], r.subject);
    }
    // Gap-free UIDs per folder: exactly 1..n, and the folder's next UID is n + 1.
    const folders = await db.query<{ name: string; uids: number[]; uid_next: number }>(
      `select f.name || '@' || f.mailbox_id as name, array_agg(mm.uid order by mm.uid) as uids, f.uid_next
         from mailbox_folders f join mailbox_messages mm on mm.folder_id = f.id
        group by f.id`,
    );
    assert.equal(folders.rows.length, 3, 'INBOX of both, and one@’s Archive');
    for (const f of folders.rows) {
      const uids = f.uids.map(Number);
      assert.deepEqual(
        uids,
        Array.from({ length: uids.length }, (_, i) => i + 1),
        `${f.name} has gap-free UIDs`,
      );
      assert.equal(Number(f.uid_next), uids.length + 1, `${f.name} gives out UID ${uids.length + 1} next`);
    }

    // Delivery: each message once, and never more than 5 connections at once from the three workers.
    const outbound = sink.messages.filter((m) => m.rcptTo.some((r) => r.endsWith('@far.test')));
    assert.equal(new Set(outbound.map((m) => m.rcptTo[0])).size, OUTBOUND);
    assert.ok(sink.maxConcurrent <= 5, `at most 5 connections at once, saw ${sink.maxConcurrent}`);
  });
});
