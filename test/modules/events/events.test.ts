// Events: the catalogue, the outbox written with each change, the events API and the live stream.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  createPostgresDatabase,
  engine,
  signUp,
  signUpWithOrg,
  startTestApp,
  type TestApp,
} from '../../support/app.ts';
import { serve } from '../../support/process.ts';
import { openStream } from '../../support/stream-client.ts';

async function eventsOf(t: TestApp, token: string, query = '') {
  const res = await t.call('GET', `/v1/events${query}`, { token });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

describe(`events on ${engine}`, () => {
  let t: TestApp;
  let base: string;

  before(async () => {
    t = await startTestApp();
    const { http } = await t.app.listen();
    base = `ws://127.0.0.1:${http}`;
  });
  after(async () => t?.close());

  test('the catalogue lists each type with its JSON Schema, also in the OpenAPI document', async () => {
    const res = await t.call('GET', '/v1/event-types');
    assert.equal(res.status, 200);
    const types = res.body.items.map((i: any) => i.type);
    for (const type of [
      'organization.created',
      'organization.updated',
      'member.added',
      'api_key.created',
      'security.event_recorded',
      'webhook.endpoint_disabled',
    ]) {
      assert.ok(types.includes(type), type);
    }
    const updated = res.body.items.find((i: any) => i.type === 'organization.updated');
    assert.deepEqual(updated.schema.required, ['organization_id', 'name', 'slug']);

    const doc = (await t.call('GET', '/openapi.json')).body;
    assert.equal(doc.openapi, '3.1.0');
    assert.ok(doc.webhooks['organization.updated'].post.requestBody);
    assert.ok(doc.components.schemas['EventData.organization.updated'].properties.name);
  });

  test("the foundation's changes emit events in their transaction; a refused change emits none", async () => {
    const owner = await signUpWithOrg(t, 'ev-owner@example.com', 'Events Org');
    const org = owner.orgId;
    await t.call('PATCH', `/v1/organizations/${org}`, { token: owner.token, body: { name: 'Events Org 2' } });
    const invite = await t.call('POST', `/v1/organizations/${org}/invitations`, {
      token: owner.token,
      body: { email: 'ev-member@example.com', role: 'member' },
    });
    assert.equal(invite.status, 201);
    const member = await signUp(t, 'ev-member@example.com');
    const token = t.mailer.tokenFor('ev-member@example.com', /invited/);
    assert.equal(
      (await t.call('POST', '/v1/invitations/accept', { token: member.token, body: { token } })).status,
      200,
    );
    await t.call('PATCH', `/v1/organizations/${org}/members/${member.id}`, {
      token: owner.token,
      body: { role: 'viewer' },
    });
    await t.call('DELETE', `/v1/organizations/${org}/members/${member.id}`, { token: owner.token });
    const key = await t.call('POST', `/v1/organizations/${org}/api-keys`, {
      token: owner.token,
      body: { name: 'reader', scopes: ['events:read'] },
    });
    // The key reads events, but using it on members is outside its scope: a security event.
    assert.equal(
      (await t.call('GET', `/v1/organizations/${org}/members`, { token: key.body.key })).status,
      403,
    );
    await t.call('DELETE', `/v1/organizations/${org}/api-keys/${key.body.id}`, { token: owner.token });

    const listed = await eventsOf(t, owner.token, '?page_size=50');
    const types = listed.items.map((e: any) => e.type).reverse();
    assert.deepEqual(types, [
      'organization.created',
      'organization.updated',
      'invitation.created',
      'member.added',
      'member.role_changed',
      'member.removed',
      'api_key.created',
      'security.event_recorded',
      'api_key.revoked',
    ]);
    const byType = Object.fromEntries(listed.items.map((e: any) => [e.type, e]));
    assert.deepEqual(byType['member.role_changed'].data, {
      user_id: member.id,
      role: 'viewer',
      previous_role: 'member',
    });
    assert.equal(byType['security.event_recorded'].data.kind, 'api_key_misuse');
    assert.ok(!JSON.stringify(listed).includes(key.body.key), 'no secret in any event');

    // A change that fails leaves no event behind (the event is in the same transaction).
    const other = await signUpWithOrg(t, 'ev-other@example.com', 'Taken Slug Org');
    const otherSlug = (await t.call('GET', `/v1/organizations/${other.orgId}`, { token: other.token })).body
      .slug;
    const clash = await t.call('PATCH', `/v1/organizations/${org}`, {
      token: owner.token,
      body: { slug: otherSlug },
    });
    assert.equal(clash.status, 409);
    assert.equal((await eventsOf(t, owner.token, '?types=organization.updated')).total, 1);

    // Filters: families, a cursor, time bounds; and another organisation sees none of this.
    const members = await eventsOf(t, owner.token, '?types=member.*');
    assert.deepEqual(members.items.map((e: any) => e.type).sort(), [
      'member.added',
      'member.removed',
      'member.role_changed',
    ]);
    const created = byType['api_key.created'];
    const afterKey = await eventsOf(t, owner.token, `?after=${created.id}`);
    assert.deepEqual(afterKey.items.map((e: any) => e.type).reverse(), [
      'security.event_recorded',
      'api_key.revoked',
    ]);
    assert.equal(
      (await eventsOf(t, owner.token, `?until=${encodeURIComponent('2000-01-01T00:00:00Z')}`)).total,
      0,
    );
    assert.equal((await eventsOf(t, owner.token, '?page_size=2&page=2')).items.length, 2);
    assert.equal((await t.call('GET', `/v1/events/${created.id}`, { token: other.token })).status, 404);
    assert.equal((await t.call('GET', '/v1/events?types=nope', { token: owner.token })).status, 400);
  });

  test('the stream sends live events matching its filter, only for its organisation', async () => {
    const a = await signUpWithOrg(t, 'ws-a@example.com', 'Stream A');
    const b = await signUpWithOrg(t, 'ws-b@example.com', 'Stream B');
    const all = await openStream(`${base}/v1/events/stream`, { token: a.token });
    const keysOnly = await openStream(`${base}/v1/events/stream?types=api_key.*`, { token: a.token });

    await t.call('PATCH', `/v1/organizations/${b.orgId}`, { token: b.token, body: { name: 'B renamed' } });
    await t.call('PATCH', `/v1/organizations/${a.orgId}`, { token: a.token, body: { name: 'A renamed' } });
    const key = await t.call('POST', `/v1/organizations/${a.orgId}/api-keys`, {
      token: a.token,
      body: { name: 'k', scopes: ['events:read'] },
    });

    const first = await all.next();
    assert.equal(first.type, 'organization.updated');
    assert.equal(first.organization_id, a.orgId, "b's event is not in a's stream");
    assert.equal(first.data.name, 'A renamed');
    assert.equal((await all.next()).type, 'api_key.created');
    const onlyKey = await keysOnly.next();
    assert.equal(onlyKey.type, 'api_key.created');
    assert.equal(keysOnly.pending().length, 0);

    // An API key with events:read streams too; the event matches what the API returns.
    const byKey = await openStream(`${base}/v1/events/stream`, { token: key.body.key });
    await t.call('PATCH', `/v1/organizations/${a.orgId}`, { token: a.token, body: { name: 'A again' } });
    const live = await byKey.next();
    const stored = await t.call('GET', `/v1/events/${live.id}`, { token: a.token });
    assert.deepEqual(live, stored.body);
    for (const c of [all, keysOnly, byKey]) c.close();
  });

  test('the stream replays from an event id, then continues live without gaps or repeats', async () => {
    const a = await signUpWithOrg(t, 'ws-replay@example.com', 'Replay');
    for (let i = 0; i < 5; i++) {
      await t.call('PATCH', `/v1/organizations/${a.orgId}`, { token: a.token, body: { name: `R${i}` } });
    }
    const listed = (await eventsOf(t, a.token, '?types=organization.updated')).items.reverse();
    const stream = await openStream(
      `${base}/v1/events/stream?types=organization.updated&after=${listed[1].id}`,
      {
        token: a.token,
      },
    );
    await t.call('PATCH', `/v1/organizations/${a.orgId}`, { token: a.token, body: { name: 'R5' } });
    const names = [];
    for (let i = 0; i < 4; i++) names.push((await stream.next()).data.name);
    assert.deepEqual(names, ['R2', 'R3', 'R4', 'R5']);
    stream.close();
  });

  test('browsers authenticate with the bearer subprotocol; bad requests are refused before the upgrade', async () => {
    const a = await signUpWithOrg(t, 'ws-browser@example.com', 'Browser');
    const browser = await openStream(`${base}/v1/events/stream?organization_id=${a.orgId}`, {
      protocols: ['mailroom.bearer', a.token],
    });
    assert.equal(browser.socket.protocol, 'mailroom.bearer');
    await t.call('PATCH', `/v1/organizations/${a.orgId}`, { token: a.token, body: { name: 'Seen' } });
    assert.equal((await browser.next()).data.name, 'Seen');
    browser.close();

    await assert.rejects(openStream(`${base}/v1/events/stream`), { status: 401 });
    await assert.rejects(openStream(`${base}/v1/events/stream`, { token: 'not-a-token' }), { status: 401 });
    await assert.rejects(openStream(`${base}/v1/events/stream?types=bogus`, { token: a.token }), {
      status: 400,
    });
    await assert.rejects(openStream(`${base}/v1/events/stream?after=nope`, { token: a.token }), {
      status: 400,
    });
    const stranger = await signUpWithOrg(t, 'ws-stranger@example.com', 'Stranger');
    await assert.rejects(
      openStream(`${base}/v1/events/stream`, { token: stranger.token, organizationId: a.orgId }),
      { status: 404 },
    );
    const key = await t.call('POST', `/v1/organizations/${a.orgId}/api-keys`, {
      token: a.token,
      body: { name: 'no events', scopes: ['members:read'] },
    });
    await assert.rejects(openStream(`${base}/v1/events/stream`, { token: key.body.key }), { status: 403 });
    const plain = await t.call('GET', '/v1/events/stream', { token: a.token });
    assert.equal(plain.status, 400);
  });
});

describe('events across processes (PostgreSQL)', { skip: engine !== 'postgres' }, () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  test('stream clients on two API processes both receive an event written by a third', async () => {
    const databaseUrl = await createPostgresDatabase(cleanups);
    const secretKey = randomBytes(32).toString('hex');
    // The third process (this one) migrates and writes; two `mailroom api` processes serve streams.
    const writer = await startTestApp({ databaseUrl, env: { MAILROOM_SECRET_KEY: secretKey } });
    cleanups.push(() => writer.close());
    const dir = mkdtempSync(path.join(tmpdir(), 'mailroom-ev-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const env = {
      ...(process.env as Record<string, string>),
      DATABASE_URL: databaseUrl,
      MAILROOM_SECRET_KEY: secretKey,
      MAILROOM_DATA_DIR: dir,
      MAILROOM_HTTP_PORT: '0',
      MAILROOM_LOG_LEVEL: 'info',
    };
    const [one, two] = await Promise.all([serve(['api'], env, cleanups), serve(['api'], env, cleanups)]);

    const owner = await signUpWithOrg(writer, 'multi@example.com', 'Multi');
    const clients = await Promise.all(
      [one.port, two.port].map((port) =>
        openStream(`ws://127.0.0.1:${port}/v1/events/stream`, { token: owner.token }),
      ),
    );
    const res = await writer.call('PATCH', `/v1/organizations/${owner.orgId}`, {
      token: owner.token,
      body: { name: 'Written elsewhere' },
    });
    assert.equal(res.status, 200);
    // A process whose poll had not yet passed the organisation's creation when its client connected
    // sends that event first (a stream gives what is written from about the time it opens); the update
    // follows it.
    const updated = async (c: (typeof clients)[number]) => {
      for (let i = 0; i < 5; i++) {
        const e = await c.next();
        if (e.type === 'organization.updated') return e;
        assert.equal(e.type, 'organization.created', 'only the creation may come first');
      }
      throw new Error('no organization.updated');
    };
    const received = await Promise.all(clients.map(updated));
    for (const e of received) {
      assert.equal(e.type, 'organization.updated');
      assert.equal(e.data.name, 'Written elsewhere');
    }
    assert.equal(received[0].id, received[1].id);
    for (const c of clients) c.close();
  });
});
