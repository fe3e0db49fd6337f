// Crash safety: messages are sent in a loop to a real `mailroom start` process, which is killed with
// SIGKILL mid-stream (while it accepts and processes), then started again. Every message that received
// 250 must be stored and processed exactly once: one record, one mailbox copy, one forwarded copy, one
// message.received event.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { engine, signUpWithOrg, startTestApp } from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';
import { exited, serve } from '../../support/process.ts';
import { sendMail } from '../../support/smtp.ts';
import { until } from '../../support/until.ts';

const cleanups: (() => Promise<void>)[] = [];

describe(`crash safety on ${engine}`, () => {
  let dns: TestDnsServer | undefined;
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    await dns?.close();
  });

  test('SIGKILL mid-stream loses no accepted message and processes none twice', async () => {
    dns = await startDnsServer();
    const env: Record<string, string> = {
      MAILROOM_HOSTNAME: 'mx.crash.test',
      MAILROOM_DNS_SERVERS: dns.address,
      MAILROOM_DNS_TIMEOUT: '300ms',
      MAILROOM_DNS_TRIES: '1',
      MAILROOM_SECRET_KEY: randomBytes(32).toString('hex'),
      MAILROOM_SMTP_MESSAGES_PER_IP_PER_MINUTE: '100000',
    };
    // Set-up through the API of an in-test instance, which then hands the database to the processes.
    const setup = await startTestApp({ env });
    const org = await signUpWithOrg(setup, 'crash@example.com', 'Crash');
    await verifiedDomain(setup, org.token, 'crash.test', [dns]);
    const box = await setup.call('POST', '/v1/mailboxes', {
      token: org.token,
      body: { address: 'box@crash.test' },
    });
    const alias = await setup.call('POST', '/v1/aliases', {
      token: org.token,
      body: { address: 'both@crash.test', targets: ['box@crash.test', 'away@remote.test'] },
    });
    assert.equal(alias.status, 201, JSON.stringify(alias.body));
    const processEnv: Record<string, string> = {
      ...(process.env as Record<string, string>),
      ...setup.env,
      MAILROOM_HTTP_PORT: '0',
      MAILROOM_SMTP_PORT: '0',
      MAILROOM_LOG_LEVEL: 'info',
    };
    // On the embedded engine the processes must not pick up a DATABASE_URL from the test run's environment.
    if (!setup.env.DATABASE_URL) delete processEnv.DATABASE_URL;
    // The in-test instance must let go of the embedded database; its files stay for the processes.
    await setup.app.close();

    const first = await serve(['start'], processEnv, cleanups);
    const accepted = new Set<string>();
    let sent = 0;
    let killed = false;
    let firstError: unknown = null;
    const sender = async () => {
      for (;;) {
        const n = sent++;
        if (n >= 400) return;
        try {
          await sendMail(first.smtpPort!, {
            from: 'loop@origin.test',
            to: 'both@crash.test',
            subject: `crash ${n}`,
          });
          accepted.add(`crash ${n}`);
        } catch (err) {
          if (killed) return;
          firstError ??= err;
        }
        if (accepted.size === 40 && !killed) {
          killed = true;
          process.kill(-first.child.pid!, 'SIGKILL');
        }
      }
    };
    await Promise.all([sender(), sender(), sender(), sender()]);
    assert.ok(killed && accepted.size >= 40, `accepted ${accepted.size}; first error: ${String(firstError)}`);
    await exited(first.child, engine === 'pglite' ? setup.env.MAILROOM_DATA_DIR : undefined);

    const second = await serve(['start'], processEnv, cleanups);
    const query = async (sql: string) => {
      const res = await fetch(`http://127.0.0.1:${second.port}${sql}`, {
        headers: { authorization: `Bearer ${org.token}` },
      });
      return res.json() as Promise<any>;
    };
    // Processing resumes by itself: the mailbox fills with every accepted message.
    const detail = await until(
      () => query(`/v1/mailboxes/${box.body.id}`),
      (b) => (b.folders?.find((f: any) => f.name === 'INBOX')?.messages ?? 0) >= accepted.size,
      60_000,
    );
    assert.ok(detail);
    process.kill(-second.child.pid!, 'SIGTERM');
    await new Promise((resolve) => second.child.once('exit', resolve));

    // Read the outcome directly from the database. The forwarded copies really leave now, and as the
    // remote domain does not exist their DSNs come back (null sender): those are not the test's mail.
    const check = await startTestApp({
      env,
      ...(engine === 'postgres'
        ? { databaseUrl: setup.env.DATABASE_URL }
        : { dataDir: setup.env.MAILROOM_DATA_DIR }),
    });
    cleanups.push(() => check.app.close());
    const rows = (
      await check.app.database.query<any>(
        `select m.subject, m.status, m.processed_at,
                (select count(*)::int from mailbox_messages mm where mm.message_id = m.id) as copies,
                (select count(*)::int from messages f where f.parent_id = m.id) as forwards,
                (select count(*)::int from message_routes r where r.message_id = m.id) as routes,
                (select count(*)::int from events e where e.type = 'message.received' and e.data->>'message_id' = m.id::text) as events
           from messages m where m.direction = 'inbound' and m.mail_from <> ''`,
      )
    ).rows;
    const bySubject = new Map<string, any[]>();
    for (const r of rows) bySubject.set(r.subject, [...(bySubject.get(r.subject) ?? []), r]);
    for (const subject of accepted) {
      const found = bySubject.get(subject) ?? [];
      assert.equal(found.length, 1, `${subject} stored once`);
      const [m] = found;
      assert.equal(m.status, 'delivered', subject);
      assert.deepEqual([m.copies, m.forwards, m.routes, m.events], [1, 1, 2, 1], `${subject} processed once`);
    }
    // Messages whose 250 was lost with the process may exist too (the client would send them again);
    // they are processed exactly once like the rest.
    for (const r of rows) assert.deepEqual([r.copies, r.forwards, r.events], [1, 1, 1], r.subject);
  });
});
