// External accounts on several workers (PostgreSQL): each account's connection is held by one worker,
// the accounts are spread evenly, and when a worker dies (SIGKILL) another takes its accounts over within
// a lease and syncs what arrives for them.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { engine, eventsOf, orgMaker, startTestApp } from '../../support/app.ts';
import { DOVECOT_MISSING, startDovecot } from '../../support/dovecot.ts';
import { exited, serve } from '../../support/process.ts';
import { until } from '../../support/until.ts';

const PASSWORD = 'remote password';
const cleanups: (() => Promise<void>)[] = [];
const dovecot = engine === 'postgres' ? await startDovecot() : null;

describe('external accounts on two workers', {
  skip: engine !== 'postgres' ? 'two processes share only PostgreSQL' : dovecot ? false : DOVECOT_MISSING,
}, () => {
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    await dovecot?.stop();
  });

  test('spread evenly; a killed worker’s accounts move to the other within a lease', async () => {
    const front = await startTestApp();
    cleanups.push(() => front.close());
    const org = await orgMaker('workers')(front);
    const env = {
      DATABASE_URL: front.env.DATABASE_URL,
      MAILROOM_SECRET_KEY: front.env.MAILROOM_SECRET_KEY,
      MAILROOM_LOG_LEVEL: 'info',
      MAILROOM_ACCOUNTS_LEASE_SECONDS: '3',
      MAILROOM_ACCOUNTS_ALLOW_HOSTS: '127.0.0.1',
    };
    const workers = [await serve(['worker'], env, cleanups), await serve(['worker'], env, cleanups)];
    const users = ['w1@remote.test', 'w2@remote.test', 'w3@remote.test', 'w4@remote.test'];
    const ids: string[] = [];
    for (const user of users) {
      await dovecot!.addUser(user, PASSWORD);
      const res = await front.call('POST', '/v1/accounts', {
        token: org.token,
        body: {
          address: user,
          password: PASSWORD,
          imap: { host: '127.0.0.1', port: dovecot!.imapPort, security: 'none' },
        },
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      ids.push(res.body.id);
    }
    const accounts = async () =>
      (await front.call('GET', '/v1/accounts', { token: org.token })).body.items as {
        id: string;
        address: string;
        state: string;
        worker: string | null;
      }[];
    const spread = await until(
      accounts,
      (items) => {
        const held = new Map<string, number>();
        for (const a of items)
          if (a.state === 'ready' && a.worker) held.set(a.worker, (held.get(a.worker) ?? 0) + 1);
        return held.size === 2 && [...held.values()].every((n) => n === 2);
      },
      30_000,
    );
    // Each worker logs the name it holds leases under.
    const nameOf = (w: (typeof workers)[number]) =>
      w.logs.map((l) => /"worker":"([^"]+)"/.exec(l)?.[1]).find(Boolean);
    const victim = workers[0];
    const victimName = nameOf(victim);
    assert.ok(victimName && spread.some((a) => a.worker === victimName), 'the first worker holds accounts');
    const orphaned = spread.filter((a) => a.worker === victimName).map((a) => a.address);
    process.kill(-victim.child.pid!, 'SIGKILL');
    await exited(victim.child);
    const killedAt = Date.now();
    const survivor = nameOf(workers[1]);
    await until(
      accounts,
      (items) => items.every((a) => a.worker === survivor && a.state === 'ready'),
      60_000,
    );
    const tookOver = Date.now() - killedAt;
    assert.ok(tookOver < 60_000, `taken over after ${tookOver} ms`);
    // The survivor syncs what arrives for an account the dead worker held.
    await dovecot!.deliver(
      orphaned[0],
      'From: x@elsewhere.test\r\nSubject: after the takeover\r\n\r\nHi\r\n',
    );
    await until(
      () => eventsOf(front, org, 'account.message_received'),
      (events) => events.some((e: { data: { subject: string } }) => e.data.subject === 'after the takeover'),
      20_000,
    );
  });
});
