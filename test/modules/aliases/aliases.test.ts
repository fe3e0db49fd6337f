// Aliases through the public surface: addresses that deliver to other addresses, sharing the address
// space of their domain with mailboxes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  addDomain as addOrgDomain,
  engine,
  eventsOf as orgEvents,
  type Org,
  orgMaker,
  startTestApp,
  type TestApp,
} from '../../support/app.ts';

const freshOrg = orgMaker('aliases');

describe(`aliases on ${engine}`, () => {
  let t: TestApp;
  let org: Org;
  let domain: { id: string; name: string };

  const addDomain = (name: string, as: Org) => addOrgDomain(t, as, name);
  const create = async (body: Record<string, unknown>, as = org) => {
    const res = await t.call('POST', '/v1/aliases', { token: as.token, body });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };
  const eventsOf = (type: string, as = org) => orgEvents(t, as, type);
  const future = () => new Date(Date.now() + 86_400_000).toISOString();

  before(async () => {
    t = await startTestApp();
    org = await freshOrg(t);
    domain = await addDomain('alias.example', org);
  });
  after(async () => t?.close());

  test('create, get, update and delete an alias', async () => {
    const expires = future();
    const alias = await create({
      address: 'Team@Alias.Example',
      targets: ['Ann@Elsewhere.Example', 'bob@alias.example', 'carol@BÜCHER.example'],
      description: ' the team ',
      expires_at: expires,
    });
    assert.equal(alias.address, 'team@alias.example');
    assert.equal(alias.domain_id, domain.id);
    assert.deepEqual(alias.targets, [
      'ann@elsewhere.example',
      'bob@alias.example',
      'carol@xn--bcher-kva.example',
    ]);
    assert.equal(alias.description, 'the team');
    assert.equal(alias.is_enabled, true);
    assert.equal(alias.expires_at, expires);
    assert.equal(alias.expired, false);

    const got = await t.call('GET', `/v1/aliases/${alias.id}`, { token: org.token });
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, alias);

    const patched = await t.call('PATCH', `/v1/aliases/${alias.id}`, {
      token: org.token,
      body: { targets: ['dan@elsewhere.example'], is_enabled: false, expires_at: null },
    });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.deepEqual(patched.body.targets, ['dan@elsewhere.example']);
    assert.equal(patched.body.is_enabled, false);
    assert.equal(patched.body.expires_at, null);
    assert.equal(patched.body.description, 'the team');

    const nothing = await t.call('PATCH', `/v1/aliases/${alias.id}`, { token: org.token, body: {} });
    assert.equal(nothing.status, 200);
    assert.equal(nothing.body.updated_at, patched.body.updated_at);

    assert.equal((await t.call('DELETE', `/v1/aliases/${alias.id}`, { token: org.token })).status, 204);
    assert.equal((await t.call('GET', `/v1/aliases/${alias.id}`, { token: org.token })).status, 404);

    const created = (await eventsOf('alias.created')).find((e) => e.data.alias_id === alias.id);
    assert.deepEqual(created.data.targets, alias.targets);
    const updated = (await eventsOf('alias.updated')).filter((e) => e.data.alias_id === alias.id);
    assert.deepEqual(
      updated.map((e) => e.data.changes),
      [['targets', 'is_enabled', 'expires_at']],
    );
    assert.equal((await eventsOf('alias.deleted')).filter((e) => e.data.alias_id === alias.id).length, 1);
  });

  test('an alias is expired once expires_at has passed', async () => {
    const alias = await create({ address: 'temp@alias.example', targets: ['x@elsewhere.example'] });
    await t.app.database.query("update aliases set expires_at = now() - interval '1 minute' where id = $1", [
      alias.id,
    ]);
    const got = await t.call('GET', `/v1/aliases/${alias.id}`, { token: org.token });
    assert.equal(got.body.expired, true);
  });

  test('bad addresses, bad targets and past expiry are refused with 422', async () => {
    const refused = async (body: Record<string, unknown>, status = 422) => {
      const res = await t.call('POST', '/v1/aliases', {
        token: org.token,
        body: { address: 'ok@alias.example', targets: ['x@elsewhere.example'], ...body },
      });
      assert.equal(res.status, status, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
      return res.body;
    };
    for (const address of [
      'a%b@alias.example',
      'a!b@alias.example',
      '"a@b"@alias.example',
      '.a@alias.example',
      'a..b@alias.example',
      'sales@not-ours.example',
    ]) {
      await refused({ address });
    }
    for (const target of [
      'not-an-address',
      'a%b@elsewhere.example',
      'a!b@elsewhere.example',
      'x@-bad-.example',
    ]) {
      await refused({ targets: [target] });
    }
    assert.match((await refused({ targets: [] })).detail, /1 to 50/);
    assert.match(
      (await refused({ targets: ['x@elsewhere.example', 'X@Elsewhere.Example'] })).detail,
      /listed twice/,
    );
    assert.match((await refused({ targets: ['OK@alias.example'] })).detail, /must not target itself/);
    assert.match(
      (await refused({ expires_at: new Date(Date.now() - 1000).toISOString() })).detail,
      /in the future/,
    );
    await refused({ expires_at: 'tomorrow' }, 400);
    await refused({ targets: Array.from({ length: 51 }, (_, i) => `t${i}@elsewhere.example`) }, 400);
    await refused({ targets: 'x@elsewhere.example' }, 400);
    assert.equal((await t.call('GET', '/v1/aliases?q=ok@', { token: org.token })).body.total, 0);

    const alias = await create({ address: 'patched@alias.example', targets: ['x@elsewhere.example'] });
    for (const body of [
      { targets: ['patched@alias.example'] },
      { targets: [] },
      { expires_at: new Date(Date.now() - 1000).toISOString() },
    ]) {
      const res = await t.call('PATCH', `/v1/aliases/${alias.id}`, { token: org.token, body });
      assert.equal(res.status, 422, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
    }
  });

  test('an address is either a mailbox or an alias, once (409)', async () => {
    await create({ address: 'twice@alias.example', targets: ['x@elsewhere.example'] });
    const again = await t.call('POST', '/v1/aliases', {
      token: org.token,
      body: { address: 'TWICE@alias.example', targets: ['y@elsewhere.example'] },
    });
    assert.equal(again.status, 409);

    const mailbox = await t.call('POST', '/v1/mailboxes', {
      token: org.token,
      body: { address: 'boxed@alias.example' },
    });
    assert.equal(mailbox.status, 201, JSON.stringify(mailbox.body));
    const clash = await t.call('POST', '/v1/aliases', {
      token: org.token,
      body: { address: 'boxed@alias.example', targets: ['x@elsewhere.example'] },
    });
    assert.equal(clash.status, 409);
    assert.match(clash.body.detail, /mailbox/);
    const boxClash = await t.call('POST', '/v1/mailboxes', {
      token: org.token,
      body: { address: 'twice@alias.example' },
    });
    assert.equal(boxClash.status, 409);

    // Concurrent claims of one address: exactly one wins.
    const [a, b] = await Promise.all([
      t.call('POST', '/v1/aliases', {
        token: org.token,
        body: { address: 'race@alias.example', targets: ['x@elsewhere.example'] },
      }),
      t.call('POST', '/v1/mailboxes', { token: org.token, body: { address: 'race@alias.example' } }),
    ]);
    assert.deepEqual([a.status, b.status].sort(), [201, 409]);

    // The same local part in another domain is another address.
    const other = await addDomain('alias-two.example', org);
    await create({ address: `twice@${other.name}`, targets: ['x@elsewhere.example'] });
  });

  test('list filters by domain, text and state', async () => {
    const mine = await freshOrg(t);
    const one = await addDomain('alias-list-one.example', mine);
    await addDomain('alias-list-two.example', mine);
    await create({ address: 'a@alias-list-one.example', targets: ['x@elsewhere.example'] }, mine);
    await create(
      { address: 'b@alias-list-one.example', targets: ['x@elsewhere.example'], is_enabled: false },
      mine,
    );
    await create({ address: 'c@alias-list-two.example', targets: ['x@elsewhere.example'] }, mine);
    const list = async (query: string) => {
      const res = await t.call('GET', `/v1/aliases?${query}`, { token: mine.token });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body;
    };
    const page = await list('page_size=2');
    assert.equal(page.total, 3);
    assert.equal(page.total_pages, 2);
    assert.deepEqual(
      page.items.map((a: any) => a.address),
      ['a@alias-list-one.example', 'b@alias-list-one.example'],
    );
    assert.equal((await list(`domain_id=${one.id}`)).total, 2);
    assert.deepEqual(
      (await list('enabled=false')).items.map((a: any) => a.address),
      ['b@alias-list-one.example'],
    );
    assert.equal((await list('enabled=true')).total, 2);
    assert.equal((await list('q=LIST-TWO')).total, 1);
    assert.equal((await t.call('GET', '/v1/aliases?enabled=maybe', { token: mine.token })).status, 400);
  });

  test("another organisation's aliases answer 404; a read-only key cannot write", async () => {
    const alias = await create({ address: 'mine@alias.example', targets: ['x@elsewhere.example'] });
    const other = await freshOrg(t);
    for (const [method, body] of [
      ['GET', undefined],
      ['PATCH', { is_enabled: false }],
      ['DELETE', undefined],
    ] as const) {
      const res = await t.call(method, `/v1/aliases/${alias.id}`, { token: other.token, body });
      assert.equal(res.status, 404, `${method}: ${JSON.stringify(res.body)}`);
    }
    assert.equal((await t.call('GET', '/v1/aliases', { token: other.token })).body.total, 0);
    const foreign = await t.call('POST', '/v1/aliases', {
      token: other.token,
      body: { address: 'spy@alias.example', targets: ['x@elsewhere.example'] },
    });
    assert.equal(foreign.status, 422);

    const key = await t.call('POST', `/v1/organizations/${org.orgId}/api-keys`, {
      token: org.token,
      body: { name: 'alias reader', scopes: ['aliases:read'] },
    });
    assert.equal(key.status, 201, JSON.stringify(key.body));
    assert.equal((await t.call('GET', '/v1/aliases', { token: key.body.key })).status, 200);
    const write = await t.call('POST', '/v1/aliases', {
      token: key.body.key,
      body: { address: 'scoped@alias.example', targets: ['x@elsewhere.example'] },
    });
    assert.equal(write.status, 403);
    const del = await t.call('DELETE', `/v1/aliases/${alias.id}`, { token: key.body.key });
    assert.equal(del.status, 403);
  });
});
