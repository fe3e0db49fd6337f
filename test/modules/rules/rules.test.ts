// Routing rules through the public surface: conditions, actions and the targets or folder each action
// needs, ordering, and isolation between organisations.
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

const freshOrg = orgMaker('rules');

const ALL_CONDITIONS = [
  { field: 'sender', op: 'equals', value: 'boss@corp.example' },
  { field: 'sender', op: 'contains', value: 'corp' },
  { field: 'sender_domain', op: 'equals', value: 'corp.example' },
  { field: 'subject', op: 'contains', value: 'invoice' },
  { field: 'size', op: 'above', value: 1048576 },
  { field: 'has_attachments', op: 'equals', value: true },
];

describe(`rules on ${engine}`, () => {
  let t: TestApp;
  let org: Org;
  let domain: { id: string; name: string };

  const addDomain = (name: string, as: Org) => addOrgDomain(t, as, name);
  const create = async (body: Record<string, unknown>, as = org) => {
    const res = await t.call('POST', '/v1/rules', {
      token: as.token,
      body: { domain_id: domain.id, ...body },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };
  const patch = (id: string, body: Record<string, unknown>, as = org) =>
    t.call('PATCH', `/v1/rules/${id}`, { token: as.token, body });
  const eventsOf = (type: string, as = org) => orgEvents(t, as, type);

  before(async () => {
    t = await startTestApp();
    org = await freshOrg(t);
    domain = await addDomain('rules.example', org);
  });
  after(async () => t?.close());

  test('create, get, update and delete a forwarding rule', async () => {
    const rule = await create({
      name: ' Invoices to accounting ',
      recipient: 'Billing',
      conditions: ALL_CONDITIONS,
      action: 'forward',
      targets: ['Accounting@Elsewhere.Example'],
    });
    assert.equal(rule.name, 'Invoices to accounting');
    assert.equal(rule.domain_id, domain.id);
    assert.equal(rule.recipient, 'billing');
    assert.equal(rule.priority, 100);
    assert.deepEqual(rule.conditions, ALL_CONDITIONS);
    assert.equal(rule.action, 'forward');
    assert.deepEqual(rule.targets, ['accounting@elsewhere.example']);
    assert.equal(rule.folder, null);
    assert.equal(rule.is_enabled, true);
    assert.equal(rule.match_count, 0);
    assert.equal(rule.last_matched_at, null);

    const got = await t.call('GET', `/v1/rules/${rule.id}`, { token: org.token });
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, rule);

    const updated = await patch(rule.id, { priority: 5, recipient: null, is_enabled: false, conditions: [] });
    assert.equal(updated.status, 200, JSON.stringify(updated.body));
    assert.equal(updated.body.priority, 5);
    assert.equal(updated.body.recipient, null);
    assert.equal(updated.body.is_enabled, false);
    assert.deepEqual(updated.body.conditions, []);
    assert.deepEqual(updated.body.targets, ['accounting@elsewhere.example']);

    assert.equal((await t.call('DELETE', `/v1/rules/${rule.id}`, { token: org.token })).status, 204);
    assert.equal((await t.call('GET', `/v1/rules/${rule.id}`, { token: org.token })).status, 404);

    assert.ok((await eventsOf('rule.created')).some((e) => e.data.rule_id === rule.id));
    const updates = (await eventsOf('rule.updated')).filter((e) => e.data.rule_id === rule.id);
    assert.deepEqual(
      updates.map((e) => e.data.changes),
      [['recipient', 'priority', 'conditions', 'is_enabled']],
    );
    assert.ok((await eventsOf('rule.deleted')).some((e) => e.data.rule_id === rule.id));
  });

  test('each action takes the targets or folder it needs, and nothing else', async () => {
    const stored = await create({ name: 'store', action: 'store' });
    assert.equal(stored.folder, 'INBOX');
    assert.deepEqual(stored.targets, []);
    assert.equal((await create({ name: 'junk', action: 'store', folder: 'Junk' })).folder, 'Junk');
    const redirect = await create({ name: 'redirect', action: 'redirect', targets: ['a@b.example'] });
    assert.deepEqual(redirect.targets, ['a@b.example']);
    for (const action of ['block', 'drop']) {
      const rule = await create({ name: action, action, targets: [], folder: null });
      assert.deepEqual([rule.targets, rule.folder], [[], null]);
    }

    const refused = async (body: Record<string, unknown>, status = 422) => {
      const res = await t.call('POST', '/v1/rules', {
        token: org.token,
        body: { domain_id: domain.id, name: 'bad', ...body },
      });
      assert.equal(res.status, status, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
      return res.body;
    };
    assert.match((await refused({ action: 'forward' })).detail, /needs at least one target/);
    await refused({ action: 'redirect', targets: [] });
    assert.match((await refused({ action: 'store', targets: ['a@b.example'] })).detail, /takes no targets/);
    await refused({ action: 'drop', targets: ['a@b.example'] });
    assert.match(
      (await refused({ action: 'forward', targets: ['a@b.example'], folder: 'INBOX' })).detail,
      /folder/,
    );
    await refused({ action: 'block', folder: 'Junk' });
    await refused({ action: 'forward', targets: ['a@b.example', 'A@B.example'] });
    await refused({ action: 'forward', targets: ['not an address'] });
    await refused({ action: 'forward', targets: ['a%b@b.example'] });
    for (const recipient of ['a%b', 'a!b', '"a@b"', '.a', 'a..b', 'sales@rules.example']) {
      await refused({ action: 'drop', recipient });
    }
    // Malformed input fails the request schema: 400 validation_failed, as everywhere in the API.
    for (const body of [
      { action: 'store', folder: 'Spam' },
      { action: 'bounce' },
      { action: 'drop', conditions: [{ field: 'body', op: 'contains', value: 'x' }] },
      { action: 'drop', conditions: [{ field: 'size', op: 'equals', value: 10 }] },
      { action: 'drop', conditions: [{ field: 'size', op: 'above', value: 'big' }] },
      { action: 'drop', conditions: [{ field: 'sender', op: 'equals', value: 'a', extra: 1 }] },
      { action: 'drop', conditions: Array.from({ length: 21 }, () => ALL_CONDITIONS[0]) },
      { action: 'drop', priority: 1.5 },
    ]) {
      const res = await refused(body, 400);
      assert.equal(res.code, 'validation_failed');
    }
    const count = await t.app.database.query<{ n: number }>(
      "select count(*)::int as n from rules where name = 'bad'",
    );
    assert.equal(count.rows[0].n, 0);
  });

  test('changing the action keeps only the targets and folder the new action uses', async () => {
    const rule = await create({ name: 'switch', action: 'store', folder: 'Archive' });
    const toForward = await patch(rule.id, { action: 'forward' });
    assert.equal(toForward.status, 422);
    const forwarded = await patch(rule.id, { action: 'forward', targets: ['x@y.example'] });
    assert.equal(forwarded.status, 200, JSON.stringify(forwarded.body));
    assert.deepEqual([forwarded.body.targets, forwarded.body.folder], [['x@y.example'], null]);
    const redirected = await patch(rule.id, { action: 'redirect' });
    assert.deepEqual(redirected.body.targets, ['x@y.example']);
    assert.equal((await patch(rule.id, { folder: 'Junk' })).status, 422);
    const stored = await patch(rule.id, { action: 'store' });
    assert.deepEqual([stored.body.targets, stored.body.folder], [[], 'INBOX']);
    assert.equal((await patch(rule.id, { folder: 'Trash' })).body.folder, 'Trash');
    assert.equal((await patch(rule.id, { targets: ['x@y.example'] })).status, 422);
    const dropped = await patch(rule.id, { action: 'drop' });
    assert.deepEqual([dropped.body.targets, dropped.body.folder], [[], null]);

    const changes = (await eventsOf('rule.updated'))
      .filter((e) => e.data.rule_id === rule.id)
      .map((e) => e.data.changes)
      .reverse();
    assert.deepEqual(changes, [
      ['action', 'targets', 'folder'],
      ['action'],
      ['action', 'targets', 'folder'],
      ['folder'],
      ['action', 'folder'],
    ]);
  });

  test('domain_id must be one of the organisation’s domains (404)', async () => {
    const other = await freshOrg(t);
    const theirs = await addDomain('rules-theirs.example', other);
    const res = await t.call('POST', '/v1/rules', {
      token: org.token,
      body: { domain_id: theirs.id, name: 'x', action: 'drop' },
    });
    assert.equal(res.status, 404);
    const rule = await create({ name: 'moving', action: 'drop' });
    assert.equal((await patch(rule.id, { domain_id: theirs.id })).status, 404);
    const second = await addDomain('rules-second.example', org);
    const moved = await patch(rule.id, { domain_id: second.id });
    assert.equal(moved.status, 200);
    assert.equal(moved.body.domain_id, second.id);
  });

  test('list is ordered by domain, priority and age, and filters by domain', async () => {
    const mine = await freshOrg(t);
    const one = await addDomain('rules-list-one.example', mine);
    const two = await addDomain('rules-list-two.example', mine);
    const add = (d: { id: string }, name: string, priority?: number) =>
      create({ domain_id: d.id, name, action: 'drop', priority }, mine);
    await add(one, 'one-late', 200);
    await add(one, 'one-default');
    await add(one, 'one-first', 1);
    await add(one, 'one-default-later');
    await add(two, 'two-first', 0);
    const names = async (query = '') =>
      (await t.call('GET', `/v1/rules?page_size=200${query}`, { token: mine.token })).body.items.map(
        (r: any) => r.name,
      );
    const oneNames = ['one-first', 'one-default', 'one-default-later', 'one-late'];
    assert.deepEqual(await names(`&domain_id=${one.id}`), oneNames);
    assert.deepEqual(await names(`&domain_id=${two.id}`), ['two-first']);
    const all = await names();
    assert.equal(all.length, 5);
    assert.deepEqual(
      all.filter((n: string) => n.startsWith('one')),
      oneNames,
    );
    const page = await t.call('GET', '/v1/rules?page_size=2&page=2', { token: mine.token });
    assert.equal(page.body.total, 5);
    assert.equal(page.body.total_pages, 3);
    assert.equal(page.body.items.length, 2);
  });

  test("another organisation's rules answer 404; a read-only key cannot write", async () => {
    const rule = await create({ name: 'private', action: 'drop' });
    const other = await freshOrg(t);
    for (const [method, body] of [
      ['GET', undefined],
      ['PATCH', { name: 'pwned' }],
      ['DELETE', undefined],
    ] as const) {
      const res = await t.call(method, `/v1/rules/${rule.id}`, { token: other.token, body });
      assert.equal(res.status, 404, `${method}: ${JSON.stringify(res.body)}`);
    }
    assert.equal((await t.call('GET', '/v1/rules', { token: other.token })).body.total, 0);

    const key = await t.call('POST', `/v1/organizations/${org.orgId}/api-keys`, {
      token: org.token,
      body: { name: 'rule reader', scopes: ['rules:read'] },
    });
    assert.equal(key.status, 201, JSON.stringify(key.body));
    assert.equal((await t.call('GET', '/v1/rules', { token: key.body.key })).status, 200);
    const write = await t.call('POST', '/v1/rules', {
      token: key.body.key,
      body: { domain_id: domain.id, name: 'x', action: 'drop' },
    });
    assert.equal(write.status, 403);
    assert.equal((await patch(rule.id, { name: 'renamed' }, { ...org, token: key.body.key })).status, 403);
  });

  test('the OpenAPI document describes the three resources', async () => {
    const doc = (await t.call('GET', '/openapi.json')).body;
    for (const path of [
      '/v1/mailboxes',
      '/v1/mailboxes/{id}',
      '/v1/aliases',
      '/v1/aliases/{id}',
      '/v1/rules',
      '/v1/rules/{id}',
    ]) {
      assert.ok(doc.paths[path], path);
    }
    for (const type of ['mailbox.created', 'alias.updated', 'rule.deleted'])
      assert.ok(doc.webhooks[type], type);
  });
});
