// Crash safety of the outbound queue: a real `mailroom start` process is killed with SIGKILL while its
// queue is busy (messages waiting, messages half-way through a slow remote's DATA, messages deferred by
// a 451), then started again on the same database. Every message the send API accepted (202) must reach
// the remote MX and end 'delivered'. A message the remote took just before the kill, whose result was
// not recorded yet, may be sent twice: that is allowed (and counted), a lost message is not.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { createPostgresDatabase, engine, preparePgliteDir } from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { type DnsRecordView, publish } from '../../support/domains.ts';
import { exited, serve } from '../../support/process.ts';
import { type SinkMessage, type SmtpSink, startSmtpSink } from '../../support/smtp-sink.ts';
import { until } from '../../support/until.ts';

const cleanups: (() => Promise<void>)[] = [];

/** Messages accepted before the kill (at least), and how many loops send at once. */
const ACCEPTED_BEFORE_KILL = 40;
const SENDERS = 4;
const MAX_MESSAGES = 2_000;
/** The remote holds its reply to DATA this long for slow recipients (under the command timeout). */
const SLOW_MS = 300;
const recipient = (n: number) => `r${n}@remote.test`;
const slow = (n: number) => n % 5 === 1;
const busy = (n: number) => n % 5 === 2;

interface Accepted {
  n: number;
  id: string;
  messageId: string;
}

describe(`outbound crash safety on ${engine}`, () => {
  let dns: TestDnsServer | undefined;
  let sink: SmtpSink | undefined;
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    await sink?.close();
    await dns?.close();
  });

  test('SIGKILL while the queue is busy loses no accepted message', async (t) => {
    const started = Date.now();
    dns = await startDnsServer({
      'remote.test': { MX: [{ exchange: 'mx.remote.test', priority: 10 }] },
      'mx.remote.test': { A: ['127.0.0.1'] },
    });
    sink = await startSmtpSink();
    const remote = sink;
    for (let n = 0; n < MAX_MESSAGES; n++) {
      if (slow(n)) remote.delayData(recipient(n), SLOW_MS);
      if (busy(n)) remote.onRecipient(recipient(n), { code: 451, message: '4.7.1 try again later' });
    }

    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      ...(engine === 'postgres'
        ? { DATABASE_URL: await createPostgresDatabase(cleanups) }
        : { MAILROOM_DATA_DIR: preparePgliteDir(cleanups) }),
      MAILROOM_SECRET_KEY: randomBytes(32).toString('hex'),
      MAILROOM_HTTP_PORT: '0',
      MAILROOM_SMTP_PORT: '0',
      MAILROOM_IMAP_PORT: '0',
      MAILROOM_LOG_LEVEL: 'info',
      MAILROOM_HOSTNAME: 'mx.hosted.test',
      MAILROOM_DNS_SERVERS: dns.address,
      MAILROOM_DNS_TIMEOUT: '300ms',
      MAILROOM_DNS_TRIES: '1',
      MAILROOM_RATE_LIMIT_PER_MINUTE: '1000000',
      MAILROOM_OUTBOUND_PORT: String(remote.port),
      MAILROOM_OUTBOUND_CONNECT_TIMEOUT: '500ms',
      MAILROOM_OUTBOUND_COMMAND_TIMEOUT: '1s',
      MAILROOM_OUTBOUND_RETRY_SCHEDULE: '1s,2s',
      // Few connections and claims at once, so that accepted mail also waits in the queue.
      MAILROOM_OUTBOUND_CONNECTIONS_PER_DOMAIN: '2',
      MAILROOM_OUTBOUND_CONCURRENCY: '10',
      MAILROOM_SEND_LIMIT_MAILBOX_PER_DAY: '1000000',
      MAILROOM_SEND_LIMIT_ORGANIZATION_PER_HOUR: '1000000',
    };
    // On the embedded engine the processes must not pick up a DATABASE_URL from the test run's environment.
    if (engine === 'pglite') delete env.DATABASE_URL;

    const first = await serve(['start'], env, cleanups);
    const api1 = client(first.port!);
    const token = await signUp(api1);
    await verifySendingDomain(api1, token, 'hosted.test', dns);

    // Loops send until the kill; only 202s count.
    const accepted = new Map<number, Accepted>();
    let next = 0;
    let killed = false;
    let firstError: unknown = null;
    const sender = async () => {
      while (!killed && next < MAX_MESSAGES) {
        const n = next++;
        try {
          const res = await api1('POST', '/v1/messages/send', token, {
            from: 'sender@hosted.test',
            to: [recipient(n)],
            subject: `crash ${n}`,
            text: `message ${n}`,
          });
          if (res.status === 202) accepted.set(n, { n, id: res.body.id, messageId: res.body.message_id });
          else if (!killed) firstError ??= new Error(`${res.status} ${JSON.stringify(res.body)}`);
        } catch (err) {
          if (!killed) firstError ??= err;
        }
      }
    };
    const senders = Array.from({ length: SENDERS }, sender);

    // The kill waits for a busy moment: enough accepted, some waiting untried, some deferred by a 451,
    // and some held mid-DATA by the slow remote (checked last, synchronously, just before the kill).
    const busyAt = await until(
      async () => {
        if (firstError || accepted.size < ACCEPTED_BEFORE_KILL) return null;
        const queue = await api1('GET', '/v1/queue?status=queued&page_size=200', token);
        const waiting = queue.body.items.filter((i: any) => i.attempts === 0 && !i.scheduled).length;
        const deferred = await deferredCount(
          api1,
          token,
          [...accepted.values()].filter((a) => busy(a.n)),
        );
        return { waiting, deferred, accepted: accepted.size };
      },
      (state) =>
        Boolean(firstError) ||
        (state !== null && state.waiting > 0 && state.deferred > 0 && remote.delayed.length > 0),
      30_000,
    );
    // Killed mid-transaction: the remote never answers these (it fails them, nothing kept), so only the
    // restarted process can deliver them.
    const midData = remote.abortDelayed().map(messageIdOf);
    killed = true;
    process.kill(-first.child.pid!, 'SIGKILL');
    const killedAt = Date.now();
    assert.equal(firstError, null, `a send failed before the kill: ${String(firstError)}`);
    await Promise.all(senders);
    await exited(first.child, env.MAILROOM_DATA_DIR);
    await until(
      async () => remote.delayed.length,
      (held) => held === 0,
    );
    const before = new Set(remote.messages.map(messageIdOf));
    assert.ok(!midData.some((id) => before.has(id)), 'the remote kept none of the messages it aborted');

    // Started again on the same database: the queue resumes by itself, and the remote is well again.
    const second = await serve(['start'], env, cleanups);
    const restartedAt = Date.now();
    for (let n = 0; n < next; n++) {
      remote.delayData(recipient(n), null);
      remote.onRecipient(recipient(n), null);
    }
    const api2 = client(second.port!);
    const all = [...accepted.values()];
    const copies = () => {
      const seen = new Map<string, number>();
      for (const m of remote.messages) {
        const id = messageIdOf(m);
        seen.set(id, (seen.get(id) ?? 0) + 1);
      }
      return seen;
    };
    const received = await until(
      async () => copies(),
      (seen) => all.every((a) => seen.has(a.messageId)),
      40_000,
    ).catch((err: Error) => {
      const seen = copies();
      const missing = all.filter((a) => !seen.has(a.messageId)).map((a) => a.n);
      throw new Error(
        `messages ${missing.join(', ')} never reached the remote; ${err.message.slice(0, 200)}`,
      );
    });
    const deliveredAt = Date.now();
    const duplicates = all.filter((a) => (received.get(a.messageId) ?? 0) > 1).map((a) => a.n);
    const summary =
      `${all.length} accepted; at the kill ${busyAt?.waiting} untried in the queue, ${busyAt?.deferred} deferred, ` +
      `${midData.length} mid-DATA; ${duplicates.length} sent twice (${duplicates.join(', ') || 'none'})`;

    // Every accepted message ends delivered in the API, each recipient too.
    const pending = new Set(all);
    const details = new Map<string, any>();
    await until(
      async () => {
        await Promise.all(
          [...pending].map(async (a) => {
            const res = await api2('GET', `/v1/messages/${a.id}`, token);
            assert.equal(res.status, 200, JSON.stringify(res.body));
            if (
              res.body.status === 'delivered' &&
              res.body.recipients.every((r: any) => r.status === 'delivered')
            ) {
              pending.delete(a);
              details.set(a.messageId, res.body);
            }
          }),
        );
        return [...pending].map((a) => a.n);
      },
      (left) => left.length === 0,
      20_000,
    );
    // The messages the remote was holding at the kill: it has them only because the restarted process
    // sent them again, and the attempt the crash cut short still counts.
    assert.ok(midData.length > 0, summary);
    for (const id of midData) {
      assert.ok(received.has(id), `${id} (mid-DATA at the kill): ${summary}`);
      const [r] = details.get(id)?.recipients ?? [];
      assert.ok(r?.attempts >= 2, `${id} (mid-DATA at the kill): ${JSON.stringify(r)}`);
      assert.equal(r.attempts_detail.at(-1).outcome, 'delivered', JSON.stringify(r));
    }
    assert.ok(all.length >= ACCEPTED_BEFORE_KILL, summary);
    t.diagnostic(summary);
    t.diagnostic(
      `restart took ${restartedAt - killedAt} ms, every message was at the remote ${deliveredAt - restartedAt} ms ` +
        `later; whole test ${Date.now() - started} ms`,
    );
  });
});

type Call = (
  method: string,
  url: string,
  token?: string,
  body?: unknown,
) => Promise<{ status: number; body: any }>;

/** JSON over the child's HTTP port. */
function client(port: number): Call {
  return async (method, url, token, body) => {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`http://127.0.0.1:${port}${url}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
}

/** A user who owns an organisation; their access token. */
async function signUp(api: Call): Promise<string> {
  const user = await api('POST', '/v1/auth/register', undefined, {
    email: 'crash@example.com',
    password: 'correct horse battery staple',
  });
  assert.equal(user.status, 201, JSON.stringify(user.body));
  const token = user.body.tokens.access_token as string;
  const org = await api('POST', '/v1/organizations', token, { name: 'Crash' });
  assert.equal(org.status, 201, JSON.stringify(org.body));
  return token;
}

/** Adds the domain, publishes its records in the test DNS server and verifies it. */
async function verifySendingDomain(api: Call, token: string, name: string, dns: TestDnsServer) {
  const created = await api('POST', '/v1/domains', token, { name, dkim: { algorithm: 'ed25519' } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const records = await api('GET', `/v1/domains/${created.body.id}/dns-records`, token);
  assert.equal(records.status, 200, JSON.stringify(records.body));
  publish([dns], records.body.records as DnsRecordView[]);
  const verified = await api('POST', `/v1/domains/${created.body.id}/verify`, token);
  assert.equal(verified.status, 200, JSON.stringify(verified.body));
  assert.equal(verified.body.status, 'verified', JSON.stringify(verified.body));
}

/** How many of these messages had an attempt deferred (the 451 at RCPT). */
async function deferredCount(api: Call, token: string, messages: Accepted[]): Promise<number> {
  // The oldest few are enough: they were tried first.
  const details = await Promise.all(
    messages.slice(0, 5).map((a) => api('GET', `/v1/messages/${a.id}`, token)),
  );
  return details.filter((d) =>
    d.body.recipients?.some((r: any) => r.attempts_detail.some((x: any) => x.outcome === 'deferred')),
  ).length;
}

/** The Message-ID header of a message the remote has. */
function messageIdOf(m: SinkMessage): string {
  const raw = m.raw.toString('latin1');
  const head = raw.slice(0, raw.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' ');
  return /^message-id:\s*(<[^>\r\n]+>)/im.exec(head)?.[1] ?? '';
}
