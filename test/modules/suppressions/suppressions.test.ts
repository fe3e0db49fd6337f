// The suppression list API: adding, listing, looking up and removing addresses, per organisation.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engine, eventsOf, orgMaker, startTestApp, type Org, type TestApp } from '../../support/app.ts';

describe(`suppression list on ${engine}`, () => {
  let t: TestApp;
  let org: Org;
  const newOrg = orgMaker('suppress');

  before(async () => {
    t = await startTestApp();
    org = await newOrg(t);
  });
  after(async () => {
    await t?.close();
  });

  const api = (method: string, url: string, body?: unknown, token = org.token) =>
    t.call(method, url, { token, body });

  test('addresses are added, listed, looked up case-insensitively and removed, with events', async () => {
    const added = await api('POST', '/v1/suppressions', {
      address: 'Someone@Example.ORG',
      detail: 'asked us',
    });
    assert.equal(added.status, 201, JSON.stringify(added.body));
    assert.equal(added.body.address, 'someone@example.org');
    assert.equal(added.body.reason, 'manual');
    assert.equal((await api('POST', '/v1/suppressions', { address: 'someone@example.org' })).status, 409);
    await api('POST', '/v1/suppressions', { address: 'complainer@example.org', reason: 'complaint' });

    const list = await api('GET', '/v1/suppressions');
    assert.equal(list.body.total, 2);
    assert.equal(
      (await api('GET', '/v1/suppressions?reason=complaint')).body.items[0].address,
      'complainer@example.org',
    );
    assert.equal((await api('GET', '/v1/suppressions?q=someone')).body.total, 1);
    assert.equal((await api('GET', '/v1/suppressions/SOMEONE@example.org')).body.detail, 'asked us');

    assert.equal((await api('DELETE', '/v1/suppressions/someone@example.org')).status, 204);
    assert.equal((await api('GET', '/v1/suppressions/someone@example.org')).status, 404);
    assert.equal((await api('DELETE', '/v1/suppressions/someone@example.org')).status, 404);
    const types = [
      ...(await eventsOf(t, org, 'suppression.created')),
      ...(await eventsOf(t, org, 'suppression.deleted')),
    ].map((e) => `${e.type}:${e.data.address}`);
    assert.ok(types.includes('suppression.created:someone@example.org'));
    assert.ok(types.includes('suppression.deleted:someone@example.org'));
  });

  test('bad input is refused; hard bounces are added only by delivery', async () => {
    assert.equal((await api('POST', '/v1/suppressions', { address: 'not an address' })).status, 422);
    assert.equal(
      (await api('POST', '/v1/suppressions', { address: 'a@b.test', reason: 'hard_bounce' })).status,
      400,
    );
    assert.equal((await api('POST', '/v1/suppressions', {})).status, 400);
  });

  test('another organisation sees nothing; API keys need the suppressions scope', async () => {
    await api('POST', '/v1/suppressions', { address: 'private@example.org' });
    const other = await newOrg(t);
    assert.equal((await api('GET', '/v1/suppressions', undefined, other.token)).body.total, 0);
    assert.equal(
      (await api('GET', '/v1/suppressions/private@example.org', undefined, other.token)).status,
      404,
    );
    assert.equal(
      (await api('DELETE', '/v1/suppressions/private@example.org', undefined, other.token)).status,
      404,
    );

    const key = await t.call('POST', `/v1/organizations/${org.orgId}/api-keys`, {
      token: org.token,
      body: { name: 'reader', scopes: ['suppressions:read'] },
    });
    assert.equal(key.status, 201, JSON.stringify(key.body));
    assert.equal((await api('GET', '/v1/suppressions', undefined, key.body.key)).status, 200);
    assert.equal(
      (await api('POST', '/v1/suppressions', { address: 'x@example.org' }, key.body.key)).status,
      403,
    );
    assert.equal((await api('GET', '/v1/queue', undefined, key.body.key)).status, 403);
  });
});
