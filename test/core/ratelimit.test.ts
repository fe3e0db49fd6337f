// With REDIS_URL, API processes count rate limits together.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, it } from 'node:test';
import { startTestApp, type TestApp } from '../support/app.ts';

const REDIS_URL = process.env.MAILROOM_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
let one: TestApp;
let two: TestApp;
before(async () => {
  one = await startTestApp({ env: { REDIS_URL } });
  // The second process shares the first one's database and Redis.
  two = await startTestApp({
    env: { REDIS_URL, MAILROOM_SECRET_KEY: one.env.MAILROOM_SECRET_KEY },
    ...(one.env.DATABASE_URL ? { databaseUrl: one.env.DATABASE_URL } : {}),
  });
});
after(async () => {
  await two.close();
  await one.close();
});

it('login attempts on one process count against the limit on another', async () => {
  const email = `shared-${randomBytes(4).toString('hex')}@example.com`;
  const statuses: number[] = [];
  for (let i = 0; i < 11; i++) {
    const app = i % 2 === 0 ? one : two;
    const res = await app.call('POST', '/v1/auth/login', {
      body: { email, password: 'wrong password' },
      ip: `10.9.${i}.1`,
    });
    statuses.push(res.status);
  }
  assert.deepEqual(statuses.slice(0, 10), Array(10).fill(401));
  assert.equal(statuses[10], 429);
});
