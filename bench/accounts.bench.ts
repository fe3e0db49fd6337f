// External accounts (issue 17), synced by `mailroom start` in its own process from a private Dovecot
// (test/support/dovecot.ts) on loopback, over implicit TLS:
//   first  the first sync of BENCH_ACCOUNTS_MESSAGES (10,000) messages of about 2 KB in one INBOX:
//          messages/s from connecting the account (POST /v1/accounts) until all are stored and the account
//          is ready; the server's peak RSS
//   idle   BENCH_ACCOUNTS_IDLE (200) accounts, each in IDLE on its INBOX: the server's RSS growth per
//          account; then one message to each, BENCH_ACCOUNTS_RATE (20) per second, saved by doveadm: from
//          doveadm's return to the account.message_received event's time (p50, p99)
// BENCH_ACCOUNTS_PHASES picks phases (first,idle).
import { ImapFlow } from 'imapflow';
import { type Dovecot, startDovecot } from '../test/support/dovecot.ts';
import {
  benchAccount,
  benchEngines,
  benchInstallation,
  type Engine,
  json,
  peakRssMb,
  percentile,
  type Row,
  rssMb,
  serverSet,
} from './support.ts';

const MESSAGES = Number(process.env.BENCH_ACCOUNTS_MESSAGES ?? 10_000);
const IDLE = Number(process.env.BENCH_ACCOUNTS_IDLE ?? 200);
const RATE = Number(process.env.BENCH_ACCOUNTS_RATE ?? 20);
const PHASES = new Set((process.env.BENCH_ACCOUNTS_PHASES ?? 'first,idle').split(','));
const PASSWORD = 'bench remote password';
const APPENDERS = 4;
const PROFILE_DIR = '/tmp/prof-accounts';

/** About 2 KB: a newsletter-like plain message, each with its own Message-ID and subject. */
function remoteMessage(n: number, to: string): Buffer {
  const line = 'The quarterly report and the meeting schedule are attached to the team update. ';
  return Buffer.from(
    `From: "News Desk" <news@sender.bench.example>\r\nTo: ${to}\r\nSubject: Update ${n}\r\n` +
      `Message-ID: <a${n}.${Date.now()}@sender.bench.example>\r\nDate: ${new Date().toUTCString()}\r\n` +
      `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${`${line}\r\n`.repeat(24)}`,
  );
}

/** Fills a user's INBOX over a few IMAP connections (APPEND; dates within the sync window). */
async function fill(dovecot: Dovecot, user: string, count: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: APPENDERS }, async () => {
      const client = new ImapFlow({
        host: '127.0.0.1',
        port: dovecot.imapPort,
        secure: false,
        doSTARTTLS: false,
        auth: { user, pass: PASSWORD },
        logger: false,
      });
      await client.connect();
      while (next < count) await client.append('INBOX', remoteMessage(next++, user));
      await client.logout();
    }),
  );
}

const accountBody = (dovecot: Dovecot, address: string) => ({
  address,
  password: PASSWORD,
  imap: { host: '127.0.0.1', port: dovecot.imapsPort, security: 'tls', verify_tls: false },
});

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function benchEngine(engine: Engine, dovecot: Dovecot): Promise<Row[]> {
  const rows: Row[] = [];
  const installation = await benchInstallation(engine);
  const servers = serverSet(PROFILE_DIR);
  try {
    const server = await servers.start(
      {
        ...installation.env,
        MAILROOM_ACCOUNTS_ALLOW_HOSTS: '127.0.0.1',
        MAILROOM_SMTP_PORT: '0',
        MAILROOM_SUBMISSION_PORT: '0',
      },
      'start',
      engine,
    );
    const { token } = await benchAccount(server.port);
    const call = (method: string, url: string, body?: unknown) => json(server.port, method, url, body, token);

    if (PHASES.has('first')) {
      const user = `bulk-${engine}@remote.bench`;
      await dovecot.addUser(user, PASSWORD);
      await fill(dovecot, user, MESSAGES);
      const began = performance.now();
      const account = await call('POST', '/v1/accounts', accountBody(dovecot, user));
      if (!account.id) throw new Error(`account not created: ${JSON.stringify(account)}`);
      await until(
        async () => (await call('GET', `/v1/accounts/${account.id}`)).state === 'ready',
        600_000,
        'the first sync',
      );
      const seconds = (performance.now() - began) / 1000;
      const stored = (await call('GET', `/v1/messages?account_id=${account.id}&page_size=1`)).total;
      if (stored !== MESSAGES) throw new Error(`first sync stored ${stored} of ${MESSAGES}`);
      rows.push({
        benchmark: `accounts first sync (${engine})`,
        workload: `${MESSAGES} msgs of 2 KB from Dovecot, TLS`,
        throughput: `${(MESSAGES / seconds).toFixed(0)} msg/s`,
        p50: '',
        p99: '',
        peakRss: `${peakRssMb(server.child.pid!).toFixed(0)} MB`,
        target: '≥ 500 msg/s',
      });
      await call('DELETE', `/v1/accounts/${account.id}`);
    }

    if (PHASES.has('idle')) {
      const users = Array.from({ length: IDLE }, (_, i) => `idle${i}-${engine}@remote.bench`);
      for (const user of users) await dovecot.addUser(user, PASSWORD);
      await new Promise((r) => setTimeout(r, 2000));
      const before = rssMb(server.child.pid!);
      const ids: string[] = [];
      for (const user of users) {
        const account = await call('POST', '/v1/accounts', accountBody(dovecot, user));
        if (!account.id) throw new Error(`account not created: ${JSON.stringify(account)}`);
        ids.push(account.id);
      }
      await until(
        async () => {
          let ready = 0;
          for (let page = 1; page <= Math.ceil(IDLE / 100); page++) {
            const found = await call('GET', `/v1/accounts?page_size=100&page=${page}`);
            ready += found.items.filter((a: { state: string }) => a.state === 'ready').length;
          }
          return ready === IDLE;
        },
        300_000,
        'every account ready',
      );
      // Settled: IDLE started everywhere, garbage collected as it would be over time.
      await new Promise((r) => setTimeout(r, 5000));
      const perAccountKb = ((rssMb(server.child.pid!) - before) * 1024) / IDLE;

      const savedAt = new Map<string, number>();
      for (const [i, user] of users.entries()) {
        const started = performance.now();
        await dovecot.deliver(user, remoteMessage(i, user));
        savedAt.set(ids[i], Date.now());
        const wait = 1000 / RATE - (performance.now() - started);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const events = async () => {
        const found: { created_at: string; data: { account_id: string } }[] = [];
        for (let page = 1; ; page++) {
          const res = await call(
            'GET',
            `/v1/events?types=account.message_received&page_size=100&page=${page}`,
          );
          found.push(...res.items);
          if (res.items.length < 100) return found;
        }
      };
      let received: Awaited<ReturnType<typeof events>> = [];
      await until(
        async () => {
          received = (await events()).filter((e) => savedAt.has(e.data.account_id));
          return received.length >= IDLE;
        },
        120_000,
        'an event for every arrival',
      );
      const latencies = received
        .map((e) => new Date(e.created_at).getTime() - savedAt.get(e.data.account_id)!)
        .sort((a, b) => a - b);
      rows.push({
        benchmark: `accounts idle (${engine})`,
        workload: `${IDLE} accounts in IDLE; 1 arrival each at ${RATE}/s`,
        throughput: `${perAccountKb.toFixed(0)} KB RSS/account`,
        p50: `${percentile(latencies, 50).toFixed(0)} ms`,
        p99: `${percentile(latencies, 99).toFixed(0)} ms`,
        peakRss: `${peakRssMb(server.child.pid!).toFixed(0)} MB`,
        target: '< 1 MB/account; p99 < 2 s',
      });
    }
  } finally {
    await servers.stopAll();
    await installation.cleanup();
  }
  return rows;
}

export async function run(): Promise<Row[]> {
  const dovecot = await startDovecot();
  if (!dovecot) throw new Error('the accounts bench needs Dovecot (Debian package dovecot-imapd)');
  try {
    const rows: Row[] = [];
    for (const engine of benchEngines()) rows.push(...(await benchEngine(engine, dovecot)));
    return rows;
  } finally {
    await dovecot.stop();
  }
}
