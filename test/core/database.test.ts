import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'drizzle-orm';
import { pino } from 'pino';
import { openDatabase } from '../../src/core/db.ts';
import { Jobs } from '../../src/core/jobs.ts';
import { migrate } from '../../src/core/migrate.ts';
import { engine, startTestApp, type TestApp } from '../support/app.ts';

let t: TestApp;
before(async () => {
  t = await startTestApp();
});
after(() => t.close());

const silent = pino({ level: 'silent' });

describe(`database on ${engine}`, () => {
  it('migrations are recorded and re-running them changes nothing', async () => {
    const { rows } = await t.app.database.query<{ version: string }>('select version from schema_migrations');
    assert.ok(rows.some((r) => r.version === '0001_foundation'));
    assert.deepEqual(await migrate(t.app.database), { applied: [] });
  });

  it('concurrent migrations from several connections apply each file once', {
    skip: engine !== 'postgres',
  }, async () => {
    const { createPostgresDatabase } = await import('../support/app.ts');
    const cleanups: (() => Promise<void>)[] = [];
    const url = await createPostgresDatabase(cleanups);
    const dbs = await Promise.all([1, 2, 3].map(() => openDatabase({ url })));
    try {
      const results = await Promise.all(dbs.map((d) => migrate(d)));
      const applied = results.flatMap((r) => r.applied);
      assert.deepEqual(applied.filter((v) => v === '0001_foundation').length, 1);
    } finally {
      for (const d of dbs) await d.close();
      for (const c of cleanups) await c();
    }
  });

  it('a failed transaction leaves nothing behind', async () => {
    await assert.rejects(
      t.app.database.db.transaction(async (tx) => {
        await tx.execute(
          sql`insert into organizations (id, name, slug) values (gen_random_uuid(), 'Half', 'half-written')`,
        );
        throw new Error('boom');
      }),
    );
    const { rows } = await t.app.database.query("select 1 from organizations where slug = 'half-written'");
    assert.equal(rows.length, 0);
  });

  it('copyRows gives every byte of a value back as it is stored, NULL as null', {
    skip: engine !== 'postgres',
  }, async () => {
    const copyRows = t.app.database.copyRows!;
    const everyByte = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const big = Buffer.alloc(300_000, 0xff); // larger than a COPY data message and a socket read
    const rows = await copyRows(`
      select 'é'::text, '\\x${everyByte.toString('hex')}'::bytea, null::bytea
      union all select '', '\\x${big.toString('hex')}'::bytea, ''::bytea`);
    assert.equal(rows.length, 2);
    assert.equal(rows[0][0]!.toString(), 'é');
    assert.deepEqual(rows[0][1], everyByte);
    assert.equal(rows[0][2], null);
    assert.equal(rows[1][0]!.length, 0);
    assert.deepEqual(rows[1][1], big);
    assert.deepEqual(rows[1][2], Buffer.alloc(0));
  });

  it('a failing copyRows is an error, and the pool goes on working', {
    skip: engine !== 'postgres',
  }, async () => {
    const copyRows = t.app.database.copyRows!;
    await assert.rejects(copyRows('select 1/0'), /division by zero/);
    await assert.rejects(copyRows('select * from no_such_table'), /does not exist/);
    const rows = await copyRows('select 42::int4');
    assert.equal(rows[0][0]!.readInt32BE(0), 42);
    assert.equal((await t.app.database.query<{ n: number }>('select 1 as n')).rows[0].n, 1);
  });
});

describe(`jobs on ${engine}`, () => {
  it('enqueues inside a transaction: rolled back means never run, committed means run', async () => {
    const jobs = new Jobs(t.app.database, silent);
    const seen: string[] = [];
    const { promise: finished, resolve: done } = Promise.withResolvers<void>();
    jobs.define<{ tag: string }>('test.tx', {
      handler: async ({ tag }) => {
        seen.push(tag);
        if (tag === 'committed') done();
      },
    });
    await jobs.start({ work: true });
    try {
      await assert.rejects(
        t.app.database.db.transaction(async (tx) => {
          await jobs.send('test.tx', { tag: 'rolled-back' }, { tx });
          throw new Error('abort');
        }),
      );
      await t.app.database.db.transaction(async (tx) => {
        await jobs.send('test.tx', { tag: 'committed' }, { tx });
      });
      jobs.wake('test.tx');
      await finished;
      assert.deepEqual(seen, ['committed']);
    } finally {
      await jobs.stop(5);
    }
  });

  it('retries a failing job with backoff until it succeeds', async () => {
    const jobs = new Jobs(t.app.database, silent);
    const attempts: number[] = [];
    const { promise: finished, resolve: done } = Promise.withResolvers<void>();
    jobs.define('test.retry', {
      retryLimit: 3,
      retryDelay: 1,
      retryBackoff: true,
      handler: async () => {
        attempts.push(Date.now());
        if (attempts.length < 3) throw new Error(`attempt ${attempts.length} fails`);
        done();
      },
    });
    await jobs.start({ work: true });
    try {
      await jobs.send('test.retry', {});
      await finished;
      assert.equal(attempts.length, 3);
      const gaps = [attempts[1] - attempts[0], attempts[2] - attempts[1]];
      assert.ok(gaps[0] >= 900, `first retry waited ${gaps[0]} ms`);
      assert.ok(gaps[1] >= gaps[0], `backoff grows: ${gaps.join(', ')} ms`);
    } finally {
      await jobs.stop(5);
    }
  });

  it('registers cron schedules', async () => {
    const schedules = await t.app.jobs.boss.getSchedules();
    const cleanup = schedules.find((s) => s.name === 'identity.cleanup');
    assert.equal(cleanup?.cron, '17 3 * * *');
  });

  it('a graceful stop lets the running job finish', async () => {
    const jobs = new Jobs(t.app.database, silent);
    const { promise: running, resolve: started } = Promise.withResolvers<void>();
    let finished = false;
    jobs.define('test.graceful', {
      handler: async () => {
        started();
        await new Promise((r) => setTimeout(r, 300));
        finished = true;
      },
    });
    await jobs.start({ work: true });
    await jobs.send('test.graceful', {});
    await running;
    await jobs.stop(10);
    assert.equal(finished, true, 'stop waited for the job');
    const stats = await t.app.jobs.boss.findJobs('test.graceful');
    assert.equal(stats[0].state, 'completed');
  });
});
