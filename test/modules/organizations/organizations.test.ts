import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { signUp, signUpWithOrg, startTestApp, type TestApp } from '../../support/app.ts';

let t: TestApp;
before(async () => {
  t = await startTestApp();
});
after(() => t.close());

async function invite(owner: { token: string; orgId: string }, email: string, role: string) {
  const res = await t.call('POST', `/v1/organizations/${owner.orgId}/invitations`, {
    token: owner.token,
    body: { email, role },
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return t.mailer.tokenFor(email.toLowerCase(), /invited/);
}

/** A user with `role` in the owner's organisation. */
async function memberWithRole(owner: { token: string; orgId: string }, email: string, role: string) {
  const token = await invite(owner, email, role);
  const user = await signUp(t, email);
  const accept = await t.call('POST', '/v1/invitations/accept', { token: user.token, body: { token } });
  assert.equal(accept.status, 200);
  assert.equal(accept.body.role, role);
  return user;
}

describe('organisations and memberships', () => {
  it('creates an organisation with its creator as owner', async () => {
    const owner = await signUpWithOrg(t, 'founder@acme.test', 'Acme Corp');
    const list = await t.call('GET', '/v1/organizations', { token: owner.token });
    assert.equal(list.status, 200);
    assert.equal(list.body.total, 1);
    assert.deepEqual(
      { name: list.body.items[0].name, slug: list.body.items[0].slug, role: list.body.items[0].role },
      { name: 'Acme Corp', slug: 'acme-corp', role: 'owner' },
    );
    const again = await t.call('POST', '/v1/organizations', {
      token: owner.token,
      body: { name: 'Acme Corp' },
    });
    assert.equal(again.status, 201);
    assert.match(again.body.slug, /^acme-corp-[a-z0-9]+$/);
    const taken = await t.call('POST', '/v1/organizations', {
      token: owner.token,
      body: { name: 'X', slug: 'acme-corp' },
    });
    assert.equal(taken.status, 409);
  });

  it('enforces roles: viewer reads, member cannot administer, admin cannot touch owners', async () => {
    const owner = await signUpWithOrg(t, 'owner@roles.test', 'Roles');
    const viewer = await memberWithRole(owner, 'viewer@roles.test', 'viewer');
    const admin = await memberWithRole(owner, 'admin@roles.test', 'admin');
    const member = await memberWithRole(owner, 'member@roles.test', 'member');
    const org = `/v1/organizations/${owner.orgId}`;

    assert.equal((await t.call('GET', org, { token: viewer.token })).status, 200);
    assert.equal((await t.call('GET', `${org}/members`, { token: viewer.token })).body.total, 4);
    assert.equal((await t.call('PATCH', org, { token: viewer.token, body: { name: 'Nope' } })).status, 403);
    assert.equal((await t.call('PATCH', org, { token: member.token, body: { name: 'Nope' } })).status, 403);
    assert.equal(
      (await t.call('PATCH', org, { token: admin.token, body: { name: 'Renamed' } })).body.name,
      'Renamed',
    );
    assert.equal(
      (await t.call('POST', `${org}/invitations`, { token: member.token, body: { email: 'x@roles.test' } }))
        .status,
      403,
    );
    // Admins manage non-owners; only owners grant or change the owner role.
    assert.equal(
      (await t.call('PATCH', `${org}/members/${member.id}`, { token: admin.token, body: { role: 'viewer' } }))
        .body.role,
      'viewer',
    );
    assert.equal(
      (await t.call('PATCH', `${org}/members/${member.id}`, { token: admin.token, body: { role: 'owner' } }))
        .status,
      403,
    );
    assert.equal(
      (await t.call('PATCH', `${org}/members/${owner.id}`, { token: admin.token, body: { role: 'member' } }))
        .status,
      403,
    );
    assert.equal((await t.call('DELETE', `${org}/members/${owner.id}`, { token: admin.token })).status, 403);
    assert.equal((await t.call('DELETE', org, { token: admin.token })).status, 403);
    // Anyone may leave.
    assert.equal(
      (await t.call('DELETE', `${org}/members/${viewer.id}`, { token: viewer.token })).status,
      204,
    );
    assert.equal((await t.call('GET', org, { token: viewer.token })).status, 404);
  });

  it('keeps at least one owner', async () => {
    const owner = await signUpWithOrg(t, 'solo@owner.test', 'Solo');
    const org = `/v1/organizations/${owner.orgId}`;
    const demote = await t.call('PATCH', `${org}/members/${owner.id}`, {
      token: owner.token,
      body: { role: 'admin' },
    });
    assert.equal(demote.status, 409);
    assert.equal(demote.body.code, 'last_owner');
    assert.equal((await t.call('DELETE', `${org}/members/${owner.id}`, { token: owner.token })).status, 409);
  });

  it('invitations: mailed, single use, for the invited address only, revocable', async () => {
    const owner = await signUpWithOrg(t, 'owner@invite.test', 'Invites');
    const org = `/v1/organizations/${owner.orgId}`;
    const token = await invite(owner, 'Guest@Invite.test', 'member');
    const pending = await t.call('GET', `${org}/invitations`, { token: owner.token });
    assert.equal(pending.body.total, 1);
    assert.equal(pending.body.items[0].email, 'guest@invite.test');
    assert.ok(!JSON.stringify(pending.body).includes(token), 'the token is never listed');

    const stranger = await signUp(t, 'stranger@invite.test');
    assert.equal(
      (await t.call('POST', '/v1/invitations/accept', { token: stranger.token, body: { token } })).status,
      403,
    );
    const guest = await signUp(t, 'guest@invite.test');
    assert.equal(
      (await t.call('POST', '/v1/invitations/accept', { token: guest.token, body: { token } })).status,
      200,
    );
    assert.equal(
      (await t.call('POST', '/v1/invitations/accept', { token: guest.token, body: { token } })).status,
      400,
    );

    const token2 = await invite(owner, 'later@invite.test', 'viewer');
    const id = (await t.call('GET', `${org}/invitations`, { token: owner.token })).body.items[0].id;
    assert.equal((await t.call('DELETE', `${org}/invitations/${id}`, { token: owner.token })).status, 204);
    const later = await signUp(t, 'later@invite.test');
    assert.equal(
      (await t.call('POST', '/v1/invitations/accept', { token: later.token, body: { token: token2 } }))
        .status,
      400,
    );
  });

  it('an owner deletes the organisation', async () => {
    const owner = await signUpWithOrg(t, 'owner@delete.test', 'Doomed');
    assert.equal(
      (await t.call('DELETE', `/v1/organizations/${owner.orgId}`, { token: owner.token })).status,
      204,
    );
    assert.equal(
      (await t.call('GET', `/v1/organizations/${owner.orgId}`, { token: owner.token })).status,
      404,
    );
  });
});

describe('API keys', () => {
  it('shows the key once, stores only its hash, and accepts it as a bearer token', async () => {
    const owner = await signUpWithOrg(t, 'owner@keys.test', 'Keys');
    const base = `/v1/organizations/${owner.orgId}/api-keys`;
    const created = await t.call('POST', base, {
      token: owner.token,
      body: { name: 'ci', scopes: ['organization:read', 'members:read'] },
    });
    assert.equal(created.status, 201);
    const key = created.body.key as string;
    assert.match(key, /^mrk_/);
    assert.equal(created.body.prefix, key.slice(0, 12));

    const listed = await t.call('GET', base, { token: owner.token });
    assert.ok(!JSON.stringify(listed.body).includes(key));
    const stored = await t.app.database.query<{ key_hash: string }>('select key_hash from api_keys');
    assert.ok(stored.rows.every((r) => r.key_hash !== key && r.key_hash.length === 64));

    const org = await t.call('GET', `/v1/organizations/${owner.orgId}`, { token: key });
    assert.equal(org.status, 200);
    assert.equal(org.body.name, 'Keys');
    const got = await t.call('GET', `${base}/${created.body.id}`, { token: owner.token });
    assert.ok(got.body.last_used_at, 'last use is recorded');
  });

  it('enforces scopes and records misuse as a security event', async () => {
    const owner = await signUpWithOrg(t, 'owner@scopes.test', 'Scopes');
    const base = `/v1/organizations/${owner.orgId}`;
    const key = (
      await t.call('POST', `${base}/api-keys`, {
        token: owner.token,
        body: { name: 'ro', scopes: ['organization:read'] },
      })
    ).body.key;
    assert.equal((await t.call('PATCH', base, { token: key, body: { name: 'x' } })).status, 403);
    assert.equal((await t.call('GET', `${base}/members`, { token: key })).status, 403);
    assert.equal(
      (await t.call('DELETE', base, { token: key })).status,
      403,
      'owner-only operations need a person',
    );
    assert.equal((await t.call('GET', '/v1/auth/me', { token: key })).status, 403);
    const events = await t.call('GET', `${base}/security-events?kind=api_key_misuse`, { token: owner.token });
    assert.ok(events.body.total >= 3);

    const writer = (
      await t.call('POST', `${base}/api-keys`, {
        token: owner.token,
        body: { name: 'w', scopes: ['organization:write'] },
      })
    ).body.key;
    assert.equal((await t.call('GET', base, { token: writer })).status, 200, 'write implies read');
    assert.equal((await t.call('PATCH', base, { token: writer, body: { name: 'Scoped' } })).status, 200);

    const bad = await t.call('POST', `${base}/api-keys`, {
      token: owner.token,
      body: { name: 'x', scopes: ['root'] },
    });
    assert.equal(bad.status, 422);
  });

  it('a key cannot mint a more powerful key', async () => {
    const owner = await signUpWithOrg(t, 'owner@mint.test', 'Mint');
    const base = `/v1/organizations/${owner.orgId}/api-keys`;
    const minter = (
      await t.call('POST', base, { token: owner.token, body: { name: 'm', scopes: ['api_keys:write'] } })
    ).body.key;
    assert.equal(
      (await t.call('POST', base, { token: minter, body: { name: 'x', scopes: ['*'] } })).status,
      403,
    );
    assert.equal(
      (await t.call('POST', base, { token: minter, body: { name: 'x', scopes: ['members:write'] } })).status,
      403,
    );
    assert.equal(
      (await t.call('POST', base, { token: minter, body: { name: 'x', scopes: ['api_keys:read'] } })).status,
      201,
    );
  });

  it('refuses revoked, expired and unknown keys, each recorded', async () => {
    const owner = await signUpWithOrg(t, 'owner@revoke.test', 'Revoke');
    const base = `/v1/organizations/${owner.orgId}`;
    const made = (
      await t.call('POST', `${base}/api-keys`, { token: owner.token, body: { name: 'r', scopes: ['*'] } })
    ).body;
    assert.equal((await t.call('GET', base, { token: made.key })).status, 200);
    assert.equal((await t.call('DELETE', `${base}/api-keys/${made.id}`, { token: owner.token })).status, 204);
    assert.equal((await t.call('GET', base, { token: made.key })).status, 401);

    const soon = new Date(Date.now() + 60_000).toISOString();
    const exp = (
      await t.call('POST', `${base}/api-keys`, {
        token: owner.token,
        body: { name: 'e', scopes: ['*'], expires_at: soon },
      })
    ).body;
    await t.app.database.query(`update api_keys set expires_at = now() - interval '1 second' where id = $1`, [
      exp.id,
    ]);
    assert.equal((await t.call('GET', base, { token: exp.key })).status, 401);
    const past = await t.call('POST', `${base}/api-keys`, {
      token: owner.token,
      body: { name: 'p', scopes: ['*'], expires_at: '2001-01-01T00:00:00Z' },
    });
    assert.equal(past.status, 422);

    assert.equal((await t.call('GET', base, { token: 'mrk_definitely-not-a-key' })).status, 401);
    const kinds = (await t.call('GET', `${base}/security-events`, { token: owner.token })).body.items.map(
      (e: { kind: string }) => e.kind,
    );
    assert.ok(kinds.includes('api_key_revoked'));
    assert.ok(kinds.includes('api_key_expired'));
  });

  it('a key used on another organisation gets 404', async () => {
    const a = await signUpWithOrg(t, 'a@keyiso.test', 'A');
    const b = await signUpWithOrg(t, 'b@keyiso.test', 'B');
    const key = (
      await t.call('POST', `/v1/organizations/${a.orgId}/api-keys`, {
        token: a.token,
        body: { name: 'k', scopes: ['*'] },
      })
    ).body.key;
    assert.equal((await t.call('GET', `/v1/organizations/${b.orgId}`, { token: key })).status, 404);
  });
});

describe('audit trail', () => {
  it('records every mutating request with actor, action, target, IP and request id; filters work', async () => {
    const owner = await signUpWithOrg(t, 'owner@audit.test', 'Audited');
    const base = `/v1/organizations/${owner.orgId}`;
    const renamed = await t.call('PATCH', base, {
      token: owner.token,
      body: { name: 'Audited 2' },
      headers: { 'x-request-id': 'req-audit-1' },
    });
    assert.equal(renamed.headers['x-request-id'], 'req-audit-1');
    const key = (
      await t.call('POST', `${base}/api-keys`, {
        token: owner.token,
        body: { name: 'k', scopes: ['organization:write'] },
      })
    ).body;
    await t.call('PATCH', base, { token: key.key, body: { name: 'By key' } });
    await t.call('POST', '/v1/organizations', {
      token: owner.token,
      body: { name: 'Other', slug: 'taken-slug' },
    });
    const refused = await t.call('PATCH', base, { token: owner.token, body: { slug: 'taken-slug' } });
    assert.equal(refused.status, 409); // refused after authorisation: recorded with its status

    const all = await t.call('GET', `${base}/audit-log`, { token: owner.token });
    assert.equal(all.status, 200);
    const actions = all.body.items.map((e: { action: string }) => e.action);
    assert.ok(actions.includes('organization.create'));
    assert.ok(actions.includes('api_key.create'));

    const updates = await t.call('GET', `${base}/audit-log?action=organization.update`, {
      token: owner.token,
    });
    assert.equal(updates.body.total, 3);
    const byRequest = updates.body.items.find((e: { request_id: string }) => e.request_id === 'req-audit-1');
    assert.equal(byRequest.actor_type, 'user');
    assert.equal(byRequest.actor_id, owner.id);
    assert.equal(byRequest.target_id, owner.orgId);
    assert.equal(byRequest.ip, '127.0.0.1');
    assert.equal(byRequest.status, 200);
    assert.ok(
      updates.body.items.some(
        (e: { actor_type: string; actor_id: string }) => e.actor_type === 'api_key' && e.actor_id === key.id,
      ),
    );
    assert.ok(updates.body.items.some((e: { status: number }) => e.status === 409));

    const byActor = await t.call('GET', `${base}/audit-log?actor_id=${key.id}`, { token: owner.token });
    assert.equal(byActor.body.total, 1);
    const future = await t.call('GET', `${base}/audit-log?since=2999-01-01T00:00:00Z`, {
      token: owner.token,
    });
    assert.equal(future.body.total, 0);
  });

  it('platform administrators see the whole trail; others get 404', async () => {
    const admin = await t.app.services.identity.createAdmin({
      email: 'root@audit.test',
      password: 'administrator pass',
    });
    const login = await t.call('POST', '/v1/auth/login', {
      body: { email: admin.email, password: 'administrator pass' },
    });
    const res = await t.call('GET', '/v1/admin/audit-log?action=user.register', {
      token: login.body.access_token,
    });
    assert.equal(res.status, 200);
    assert.ok(res.body.total > 5);
    const user = await signUp(t, 'pleb@audit.test');
    assert.equal((await t.call('GET', '/v1/admin/audit-log', { token: user.token })).status, 404);
  });
});

describe('review fixes', () => {
  it('an API key cannot grant, change or remove admin and owner roles', async () => {
    const owner = await signUpWithOrg(t, 'owner@keyroles.test', 'KeyRoles');
    const base = `/v1/organizations/${owner.orgId}`;
    const admin = await memberWithRole(owner, 'admin@keyroles.test', 'admin');
    const member = await memberWithRole(owner, 'member@keyroles.test', 'member');
    const key = (
      await t.call('POST', `${base}/api-keys`, {
        token: owner.token,
        body: { name: 'm', scopes: ['members:write'] },
      })
    ).body.key;
    const invite = await t.call('POST', `${base}/invitations`, {
      token: key,
      body: { email: 'evil@keyroles.test', role: 'admin' },
    });
    assert.equal(invite.status, 403);
    assert.equal(
      (
        await t.call('POST', `${base}/invitations`, {
          token: key,
          body: { email: 'ok@keyroles.test', role: 'member' },
        })
      ).status,
      201,
    );
    assert.equal(
      (await t.call('PATCH', `${base}/members/${member.id}`, { token: key, body: { role: 'admin' } })).status,
      403,
    );
    assert.equal(
      (await t.call('PATCH', `${base}/members/${admin.id}`, { token: key, body: { role: 'viewer' } })).status,
      403,
    );
    assert.equal((await t.call('DELETE', `${base}/members/${admin.id}`, { token: key })).status, 403);
    assert.equal(
      (await t.call('PATCH', `${base}/members/${member.id}`, { token: key, body: { role: 'viewer' } }))
        .status,
      200,
    );
  });

  it('accepting an invitation when already a member is a conflict; expired invitations are not pending', async () => {
    const owner = await signUpWithOrg(t, 'owner@twice.test', 'Twice');
    const base = `/v1/organizations/${owner.orgId}`;
    const user = await memberWithRole(owner, 'twice@twice.test', 'viewer');
    const again = await invite(owner, 'twice2@twice.test', 'admin');
    await t.app.database.query(
      `update invitations set email = 'twice@twice.test' where email = 'twice2@twice.test'`,
    );
    const res = await t.call('POST', '/v1/invitations/accept', { token: user.token, body: { token: again } });
    assert.equal(res.status, 409);
    assert.equal(
      (await t.call('GET', `${base}/members/${user.id}`, { token: owner.token })).body.role,
      'viewer',
    );

    await invite(owner, 'late@twice.test', 'member');
    await t.app.database.query(
      `update invitations set expires_at = now() - interval '1 minute' where email = 'late@twice.test'`,
    );
    const pending = await t.call('GET', `${base}/invitations`, { token: owner.token });
    assert.ok(pending.body.items.every((i: { email: string }) => i.email !== 'late@twice.test'));
  });

  it('organisations created at once with the same name both get a slug', async () => {
    const user = await signUp(t, 'racer@slug.test');
    const results = await Promise.all(
      [1, 2, 3].map(() =>
        t.call('POST', '/v1/organizations', { token: user.token, body: { name: 'Same Name' } }),
      ),
    );
    assert.deepEqual(
      results.map((r) => r.status),
      [201, 201, 201],
    );
    assert.equal(new Set(results.map((r) => r.body.slug)).size, 3);
  });

  it('deleting an organisation ends its keys at once', async () => {
    const owner = await signUpWithOrg(t, 'owner@gone.test', 'Gone');
    const base = `/v1/organizations/${owner.orgId}`;
    const key = (
      await t.call('POST', `${base}/api-keys`, { token: owner.token, body: { name: 'k', scopes: ['*'] } })
    ).body.key;
    assert.equal((await t.call('GET', base, { token: key })).status, 200);
    assert.equal((await t.call('DELETE', base, { token: owner.token })).status, 204);
    assert.equal((await t.call('GET', base, { token: key })).status, 401);
  });

  it('an address presenting bad keys is throttled without filling the security log', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 32; i++) {
      statuses.push(
        (await t.call('GET', '/v1/organizations', { token: `mrk_bad-${i}`, ip: '192.0.2.77' })).status,
      );
    }
    assert.deepEqual(statuses.slice(0, 30), Array(30).fill(401));
    assert.deepEqual(statuses.slice(30), [429, 429]);
    const { rows } = await t.app.database.query<{ n: number }>(
      "select count(*)::int as n from security_events where kind = 'api_key_invalid' and ip = '192.0.2.77'",
    );
    assert.equal(rows[0].n, 30);
  });
});
