// A campaign survives a crash: a real `mailroom start` is killed with SIGKILL halfway through its
// recipients, then started again on the same database; the campaign's runner is taken over and goes on
// from where it stopped, and at the SMSC every recipient has exactly one message.
//
// The kill comes when the SMS queue has nothing in flight: every message handed over is submitted and
// answered, and waits for its receipt (the SMSC holds them back), so the campaign waits at its in-flight
// limit. A kill in the middle of a submit would leave its outcome unknown, which the sms module settles by
// failing it rather than risking a second copy (docs/sms.md); that is its crash rule, not the campaign's.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { engine, signUpWithOrg, startTestApp } from '../../support/app.ts';
import { callServed, exited, serve, takeoverEnv } from '../../support/process.ts';
import { type SmppServer, startSmppServer } from '../../support/smpp-server.ts';
import { until } from '../../support/until.ts';

const cleanups: (() => Promise<void>)[] = [];
const TOTAL = 1_500;
/** Messages of the campaign waiting in the queue at once (MAILROOM_SMS_CAMPAIGN_IN_FLIGHT). */
const IN_FLIGHT = 300;

describe(`SMS campaign crash safety on ${engine}`, () => {
  let smsc: SmppServer | undefined;
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    await smsc?.close();
  });

  test('SIGKILL mid-campaign: after a restart every recipient is sent exactly once', async (t) => {
    smsc = await startSmppServer();
    const setup = await startTestApp({
      workers: true,
      // Short leases: the killed process's runner and its claimed messages are taken over within seconds.
      env: {
        MAILROOM_SECRET_KEY: randomBytes(32).toString('hex'),
        MAILROOM_JOB_LEASE: '3s',
        MAILROOM_SMS_LEASE: '2s',
      },
    });
    const org = await signUpWithOrg(setup, 'crash-sms@example.com', 'Crash SMS');
    const call = (method: string, url: string, body?: unknown) =>
      setup.call(method, url, { token: org.token, body });
    const account = await call('POST', '/v1/provider-accounts', {
      provider: 'smpp',
      name: 'SMSC',
      credentials: {
        host: smsc.host,
        port: String(smsc.port),
        system_id: smsc.systemId,
        password: smsc.password,
        source_addr: 'Mailroom',
      },
    });
    assert.equal(account.status, 201, JSON.stringify(account.body));
    const template = await call('POST', '/v1/sms/templates', { name: 'T', body: 'Hello {{ contact.name }}' });
    const list = await call('POST', '/v1/sms/lists', { name: 'All' });
    const phones = Array.from({ length: TOTAL }, (_, i) => `1415556${String(i).padStart(4, '0')}`);
    const csv = ['phone,name', ...phones.map((p, i) => `+${p},P${i}`)].join('\n');
    const imported = await setup.call('POST', `/v1/sms/contacts/imports?list_id=${list.body.id}`, {
      token: org.token,
      rawBody: csv,
      headers: { 'content-type': 'text/csv' },
    });
    assert.equal(imported.status, 202, JSON.stringify(imported.body));
    await until(
      async () => (await call('GET', `/v1/sms/lists/${list.body.id}`)).body.members,
      (n) => n === TOTAL,
      60_000,
    );
    const campaign = await call('POST', '/v1/sms/campaigns', {
      name: 'Crash',
      template_id: template.body.id,
      list_id: list.body.id,
      provider_account_id: account.body.id,
    });
    assert.equal(campaign.status, 201, JSON.stringify(campaign.body));
    const processEnv = { ...takeoverEnv(setup.env), MAILROOM_SMS_CAMPAIGN_IN_FLIGHT: String(IN_FLIGHT) };
    await setup.app.close();

    const C = `/v1/sms/campaigns/${campaign.body.id}`;
    const first = await serve(['start'], processEnv, cleanups);
    const started = await callServed(first.port!, org.token, 'POST', `${C}/start`, {});
    assert.equal(started.status, 200, JSON.stringify(started.body));
    // Halfway: the campaign has handed over its in-flight limit, every one of them is submitted and its
    // answer recorded (a provider id), and no receipt has come.
    const messages = async () => {
      const all: any[] = [];
      for (let page = 1; ; page++) {
        const res = await callServed(
          first.port!,
          org.token,
          'GET',
          `/v1/sms/messages?campaign_id=${campaign.body.id}&page_size=200&page=${page}`,
        );
        all.push(...res.body.items);
        if (page >= res.body.total_pages) return all;
      }
    };
    await until(
      async () => (await callServed(first.port!, org.token, 'GET', C)).body.progress,
      (p) => p.queued === IN_FLIGHT && p.pending === TOTAL - IN_FLIGHT,
      60_000,
    );
    await until(
      messages,
      (all) => all.length === IN_FLIGHT && all.every((m) => m.provider_id !== null),
      60_000,
    );
    assert.equal(smsc.submits.length, IN_FLIGHT);
    const bindsBefore = smsc.binds;
    process.kill(-first.child.pid!, 'SIGKILL');
    await exited(first.child, setup.env.MAILROOM_DATA_DIR);

    const second = await serve(['start'], processEnv, cleanups);
    // The receipts of what was sent before the kill reach the new process; the rest get theirs at once.
    // Bound, not only connected: a receipt needs the new process's transceiver.
    await until(
      async () => smsc!.binds,
      (n) => n > bindsBefore,
      30_000,
    );
    smsc.autoReceipts = true;
    for (const submit of [...smsc.submits])
      assert.equal((await smsc.sendReceipt(submit.messageId)).status, 0);
    const done = await until(
      async () => (await callServed(second.port!, org.token, 'GET', C)).body,
      (c) => c.status === 'completed',
      120_000,
    );
    const seen = new Map<string, number>();
    for (const s of smsc.submits) seen.set(s.destinationAddr, (seen.get(s.destinationAddr) ?? 0) + 1);
    const missing = phones.filter((p) => !seen.has(p));
    const twice = phones.filter((p) => (seen.get(p) ?? 0) > 1);
    t.diagnostic(`${IN_FLIGHT} submitted before the kill, ${smsc.submits.length} in all`);
    assert.deepEqual(missing, [], 'every recipient reached the SMSC');
    assert.deepEqual(twice, [], 'none twice');
    assert.equal(smsc.submits.length, TOTAL);
    assert.equal(done.progress.delivered, TOTAL, JSON.stringify(done.progress));
    const job = await callServed(second.port!, org.token, 'GET', `/v1/jobs/${done.job.id}`);
    assert.equal(job.body.id, started.body.job.id, 'the same runner job, taken over');
    process.kill(-second.child.pid!, 'SIGKILL');
    await exited(second.child, setup.env.MAILROOM_DATA_DIR);
  });
});
