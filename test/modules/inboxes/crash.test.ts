// A generation job survives a crash: a real `mailroom start` is killed with SIGKILL while the job is
// halfway, then started again; the job resumes from where it stood and ends with every planned mailbox
// made exactly once.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { addDomain, engine, signUpWithOrg, startTestApp } from '../../support/app.ts';
import { callServed, exited, serve, takeoverEnv } from '../../support/process.ts';
import { until } from '../../support/until.ts';

const cleanups: (() => Promise<void>)[] = [];
const TOTAL = 1_200;

describe(`generation crash safety on ${engine}`, () => {
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  test('SIGKILL halfway: the job resumes after a restart and makes each mailbox once', async () => {
    const setup = await startTestApp({
      // A short lease: the killed process's job is taken over within seconds.
      env: { MAILROOM_SECRET_KEY: randomBytes(32).toString('hex'), MAILROOM_JOB_LEASE: '3s' },
    });
    const org = await signUpWithOrg(setup, 'crash-gen@example.com', 'Crash generation');
    const domain = await addDomain(setup, org, 'crash-gen.test');
    const processEnv = takeoverEnv(setup.env);
    await setup.app.close();

    const call = (port: number, method: string, path: string, body?: unknown) =>
      callServed(port, org.token, method, path, body);

    const first = await serve(['start'], processEnv, cleanups);
    const started = await call(first.port!, 'POST', '/v1/inboxes/generate', {
      domains: [{ domain_id: domain.id, count: TOTAL }],
      pattern: '{first}.{last}{n}',
    });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const jobId = started.body.id;
    const halfway = await until(
      async () => (await call(first.port!, 'GET', `/v1/jobs/${jobId}`)).body,
      (job) => job.done >= 200,
      60_000,
    );
    process.kill(-first.child.pid!, 'SIGKILL');
    await exited(first.child, setup.env.MAILROOM_DATA_DIR);
    assert.ok(halfway.done < TOTAL, 'killed before the end');

    const second = await serve(['start'], processEnv, cleanups);
    const done = await until(
      async () => (await call(second.port!, 'GET', `/v1/jobs/${jobId}`)).body,
      (job) => job.state !== 'queued' && job.state !== 'running',
      120_000,
    );
    assert.equal(done.state, 'succeeded', JSON.stringify(done));
    assert.equal(done.done, TOTAL);
    assert.equal(done.error_count, 0, JSON.stringify(done.errors));
    const mailboxes = await call(second.port!, 'GET', `/v1/mailboxes?domain_id=${domain.id}&page_size=1`);
    assert.equal(mailboxes.body.total, TOTAL);
    const events = await call(second.port!, 'GET', '/v1/events?types=mailbox.created&page_size=1');
    assert.equal(events.body.total, TOTAL, 'one mailbox.created event per mailbox, none twice');
    process.kill(-second.child.pid!, 'SIGKILL');
    await exited(second.child, setup.env.MAILROOM_DATA_DIR);
  });
});
