// Two organisations: no route lets one see or change the other's resources, and every attempt is a 404.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { signUpWithOrg, startTestApp, type TestApp } from './support/app.ts';

let t: TestApp;
before(async () => {
  t = await startTestApp();
});
after(() => t.close());

it("no route reaches another organisation's resources", async () => {
  const a = await signUpWithOrg(t, 'owner@a.test', 'Alpha');
  const b = await signUpWithOrg(t, 'owner@b.test', 'Beta');
  const A = `/v1/organizations/${a.orgId}`;
  const aKey = (await t.call('POST', `${A}/api-keys`, { token: a.token, body: { name: 'a', scopes: ['*'] } }))
    .body;
  const aInvite = (
    await t.call('POST', `${A}/invitations`, { token: a.token, body: { email: 'x@a.test', role: 'member' } })
  ).body;
  const bKey = (
    await t.call('POST', `/v1/organizations/${b.orgId}/api-keys`, {
      token: b.token,
      body: { name: 'b', scopes: ['*'] },
    })
  ).body.key;

  // Valid requests, so only authorisation can stop them.
  const bodies: Record<string, unknown> = {
    'PATCH /v1/organizations/{organization_id}': { name: 'Pwned' },
    'PATCH /v1/organizations/{organization_id}/members/{user_id}': { role: 'viewer' },
    'POST /v1/organizations/{organization_id}/invitations': { email: 'spy@b.test', role: 'owner' },
    'POST /v1/organizations/{organization_id}/api-keys': { name: 'spy', scopes: ['*'] },
  };
  const ids = (path: string): Record<string, string> => ({
    organization_id: a.orgId,
    user_id: a.id,
    id: path.includes('/api-keys/') ? aKey.id : aInvite.id,
  });

  const doc = (await t.call('GET', '/openapi.json')).body;
  let checked = 0;
  for (const [path, item] of Object.entries<Record<string, unknown>>(doc.paths)) {
    if (!path.includes('{organization_id}')) continue;
    for (const method of Object.keys(item).map((m) => m.toUpperCase())) {
      const url = path.replace(/\{(\w+)\}/g, (_, n: string) => ids(path)[n]);
      const body = bodies[`${method} ${path}`];
      for (const [who, token] of [
        ['user', b.token],
        ['key', bKey],
      ] as const) {
        const res = await t.call(method, url, { token, body });
        assert.equal(res.status, 404, `${who} of B: ${method} ${url} answered ${res.status}`);
        checked++;
      }
    }
  }
  assert.ok(checked >= 24, `checked ${checked} operations`);

  // B's session cannot end A's; the organisation header cannot smuggle A in either.
  assert.equal(
    (await t.call('DELETE', `/v1/auth/sessions/${a.tokens.session_id}`, { token: b.token })).status,
    404,
  );
  assert.equal(
    (await t.call('GET', A, { token: b.token, headers: { 'x-organization-id': a.orgId } })).status,
    404,
  );

  // Lists show only B's own.
  const bOrgs = await t.call('GET', '/v1/organizations', { token: b.token });
  assert.deepEqual(
    bOrgs.body.items.map((o: { id: string }) => o.id),
    [b.orgId],
  );

  // A is untouched.
  assert.equal((await t.call('GET', A, { token: a.token })).body.name, 'Alpha');
  assert.equal((await t.call('GET', A, { token: aKey.key })).status, 200);
  assert.equal((await t.call('GET', `${A}/members/${a.id}`, { token: a.token })).body.role, 'owner');
  assert.equal((await t.call('GET', `${A}/invitations`, { token: a.token })).body.total, 1);
  assert.equal((await t.call('GET', `${A}/api-keys`, { token: a.token })).body.total, 1);
  assert.equal((await t.call('GET', `${A}/members`, { token: a.token })).body.total, 1);
  const audit = await t.call('GET', `${A}/audit-log`, { token: a.token });
  assert.ok(audit.body.items.every((e: { actor_id: string }) => e.actor_id !== b.id));
});
