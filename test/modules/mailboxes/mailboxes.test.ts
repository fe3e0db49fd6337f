// Hosted mailboxes through the public surface: addresses of the organisation's domains, their folders,
// argon2id passwords that never leave the server, and isolation between organisations.
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

const freshOrg = orgMaker('mailboxes');

describe(`mailboxes on ${engine}`, () => {
  let t: TestApp;
  let org: Org;
  let domain: { id: string; name: string };

  const addDomain = (name: string, as: Org) => addOrgDomain(t, as, name);
  const create = async (body: Record<string, unknown>, as = org) => {
    const res = await t.call('POST', '/v1/mailboxes', { token: as.token, body });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };
  const eventsOf = (type: string, as = org) => orgEvents(t, as, type);

  before(async () => {
    t = await startTestApp();
    org = await freshOrg(t);
    domain = await addDomain('mbx.example', org);
  });
  after(async () => t?.close());

  test('creating a mailbox creates its folders; the password is stored as argon2id and never shown', async () => {
    const password = 'a long enough secret';
    const mailbox = await create({ address: 'Sales@MBX.Example', display_name: ' Sales ', password });
    assert.equal(mailbox.address, 'sales@mbx.example');
    assert.equal(mailbox.domain_id, domain.id);
    assert.equal(mailbox.display_name, 'Sales');
    assert.equal(mailbox.quota_bytes, 1073741824);
    assert.equal(mailbox.used_bytes, 0);
    assert.equal(mailbox.is_active, true);
    assert.equal(mailbox.has_password, true);
    assert.ok(!('password' in mailbox) && !('password_hash' in mailbox));
    assert.ok(!JSON.stringify(mailbox).includes(password));
    assert.ok(!JSON.stringify(mailbox).includes('argon2'));
    assert.deepEqual(
      mailbox.folders.map((f: any) => [f.name, f.special_use, f.messages, f.uid_next]),
      [
        ['INBOX', '\\Inbox', 0, 1],
        ['Sent', '\\Sent', 0, 1],
        ['Drafts', '\\Drafts', 0, 1],
        ['Junk', '\\Junk', 0, 1],
        ['Trash', '\\Trash', 0, 1],
        ['Archive', '\\Archive', 0, 1],
      ],
    );
    for (const f of mailbox.folders) assert.ok(f.uid_validity > 0 && f.uid_validity < 2 ** 32);

    const stored = await t.app.database.query<{ password_hash: string }>(
      'select password_hash from mailboxes where id = $1',
      [mailbox.id],
    );
    assert.match(stored.rows[0].password_hash, /^\$argon2id\$/);

    const got = await t.call('GET', `/v1/mailboxes/${mailbox.id}`, { token: org.token });
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, mailbox);
    assert.ok(!JSON.stringify(got.body).includes('argon2'));

    const created = await eventsOf('mailbox.created');
    assert.ok(
      created.some((e) => e.data.mailbox_id === mailbox.id && e.data.address === 'sales@mbx.example'),
    );
  });

  test('folders count the messages they hold', async () => {
    const mailbox = await create({ address: 'counted@mbx.example' });
    const inbox = mailbox.folders.find((f: any) => f.name === 'INBOX');
    const blobId = '01900000-0000-7000-8000-00000000b10b';
    const messageId = '01900000-0000-7000-8000-0000000000e1';
    await t.app.database.query('insert into blobs (id, organization_id, data) values ($1, $2, $3)', [
      blobId,
      org.orgId,
      Buffer.from('Subject: hi\r\n\r\nhello\r\n'),
    ]);
    await t.app.database.query(
      `insert into messages (id, organization_id, domain_id, direction, status, blob_id, size, mail_from, rcpt_to)
       values ($1, $2, $3, 'inbound', 'delivered', $4, 22, 'a@b.example', array['counted@mbx.example'])`,
      [messageId, org.orgId, domain.id, blobId],
    );
    await t.app.database.query(
      `insert into mailbox_messages (id, organization_id, mailbox_id, folder_id, message_id, uid, size)
       values ($1, $2, $3, $4, $5, 1, 22)`,
      ['01900000-0000-7000-8000-0000000000f1', org.orgId, mailbox.id, inbox.id, messageId],
    );
    const got = await t.call('GET', `/v1/mailboxes/${mailbox.id}`, { token: org.token });
    assert.deepEqual(
      got.body.folders.map((f: any) => [f.name, f.messages]),
      [
        ['INBOX', 1],
        ['Sent', 0],
        ['Drafts', 0],
        ['Junk', 0],
        ['Trash', 0],
        ['Archive', 0],
      ],
    );
  });

  test('list filters by domain and address and paginates', async () => {
    const mine = await freshOrg(t);
    const one = await addDomain('list-one.example', mine);
    const two = await addDomain('list-two.example', mine);
    for (const address of ['alpha@list-one.example', 'beta@list-one.example', 'alpha@list-two.example']) {
      await create({ address }, mine);
    }
    const all = await t.call('GET', '/v1/mailboxes?page_size=2', { token: mine.token });
    assert.equal(all.status, 200);
    assert.equal(all.body.total, 3);
    assert.equal(all.body.total_pages, 2);
    assert.deepEqual(
      all.body.items.map((m: any) => m.address),
      ['alpha@list-one.example', 'alpha@list-two.example'],
    );
    assert.equal(all.body.items[0].folders, undefined);
    const byDomain = await t.call('GET', `/v1/mailboxes?domain_id=${one.id}`, { token: mine.token });
    assert.deepEqual(
      byDomain.body.items.map((m: any) => m.address),
      ['alpha@list-one.example', 'beta@list-one.example'],
    );
    const byText = await t.call('GET', '/v1/mailboxes?q=ALPHA', { token: mine.token });
    assert.equal(byText.body.total, 2);
    const wildcard = await t.call('GET', '/v1/mailboxes?q=%25', { token: mine.token });
    assert.equal(wildcard.body.total, 0);
    const both = await t.call('GET', `/v1/mailboxes?domain_id=${two.id}&q=beta`, { token: mine.token });
    assert.equal(both.body.total, 0);
  });

  test('update changes only what is given; a null password stops logins', async () => {
    const mailbox = await create({ address: 'patch@mbx.example', password: 'first password!' });
    const renamed = await t.call('PATCH', `/v1/mailboxes/${mailbox.id}`, {
      token: org.token,
      body: { display_name: 'Patched', quota_bytes: 5 * 1024 * 1024, is_active: false },
    });
    assert.equal(renamed.status, 200, JSON.stringify(renamed.body));
    assert.equal(renamed.body.display_name, 'Patched');
    assert.equal(renamed.body.quota_bytes, 5 * 1024 * 1024);
    assert.equal(renamed.body.is_active, false);
    assert.equal(renamed.body.has_password, true);
    assert.equal(renamed.body.folders.length, 6);

    const before = await t.app.database.query<{ password_hash: string }>(
      'select password_hash from mailboxes where id = $1',
      [mailbox.id],
    );
    const changed = await t.call('PATCH', `/v1/mailboxes/${mailbox.id}`, {
      token: org.token,
      body: { password: 'second password!' },
    });
    assert.equal(changed.status, 200);
    const afterChange = await t.app.database.query<{ password_hash: string }>(
      'select password_hash from mailboxes where id = $1',
      [mailbox.id],
    );
    assert.match(afterChange.rows[0].password_hash, /^\$argon2id\$/);
    assert.notEqual(afterChange.rows[0].password_hash, before.rows[0].password_hash);

    const cleared = await t.call('PATCH', `/v1/mailboxes/${mailbox.id}`, {
      token: org.token,
      body: { password: null },
    });
    assert.equal(cleared.body.has_password, false);

    const short = await t.call('PATCH', `/v1/mailboxes/${mailbox.id}`, {
      token: org.token,
      body: { password: 'short' },
    });
    assert.equal(short.status, 422);
    const tiny = await t.call('PATCH', `/v1/mailboxes/${mailbox.id}`, {
      token: org.token,
      body: { quota_bytes: 1000 },
    });
    assert.equal(tiny.status, 400);
    const unknown = await t.call('PATCH', `/v1/mailboxes/${mailbox.id}`, {
      token: org.token,
      body: { address: 'moved@mbx.example' },
    });
    assert.equal(unknown.status, 400);

    const updates = (await eventsOf('mailbox.updated')).filter((e) => e.data.mailbox_id === mailbox.id);
    assert.deepEqual(
      updates.map((e) => e.data.changes),
      [['password'], ['password'], ['display_name', 'quota_bytes', 'is_active']],
    );
    assert.ok(!JSON.stringify(updates).includes('second password'));
  });

  test('bad local parts, foreign domains and bad passwords are refused with 422', async () => {
    for (const address of [
      'a%b@mbx.example',
      'a!b@mbx.example',
      '"a@b"@mbx.example',
      '"ab"@mbx.example',
      '.a@mbx.example',
      'a.@mbx.example',
      'a..b@mbx.example',
      'a b@mbx.example',
      '@mbx.example',
      `${'x'.repeat(65)}@mbx.example`,
      'no-at-sign',
      'sales@not-ours.example',
      'sales@',
    ]) {
      const res = await t.call('POST', '/v1/mailboxes', { token: org.token, body: { address } });
      assert.equal(res.status, 422, `${address}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.code, 'validation_failed');
    }
    const other = await freshOrg(t);
    const theirs = await addDomain('theirs-mbx.example', other);
    const foreign = await t.call('POST', '/v1/mailboxes', {
      token: org.token,
      body: { address: `sales@${theirs.name}` },
    });
    assert.equal(foreign.status, 422);
    assert.match(foreign.body.detail, /not one of this organisation's domains/);

    const weak = await t.call('POST', '/v1/mailboxes', {
      token: org.token,
      body: { address: 'weak@mbx.example', password: 'too short' },
    });
    assert.equal(weak.status, 422);
    const tooLong = await t.call('POST', '/v1/mailboxes', {
      token: org.token,
      body: { address: 'weak@mbx.example', password: 'x'.repeat(257) },
    });
    assert.equal(tooLong.status, 422);
    const quota = await t.call('POST', '/v1/mailboxes', {
      token: org.token,
      body: { address: 'weak@mbx.example', quota_bytes: 1024 },
    });
    assert.equal(quota.status, 400);

    const fine = await create({
      address: "o'neil+tag-1#x=y.z@mbx.example",
      quota_bytes: 1024 * 1024,
      password: null,
      display_name: null,
    });
    assert.equal(fine.address, "o'neil+tag-1#x=y.z@mbx.example");
    assert.equal(fine.has_password, false);
    const remaining = await t.app.database.query<{ n: number }>(
      "select count(*)::int as n from mailboxes where address = 'weak@mbx.example'",
    );
    assert.equal(remaining.rows[0].n, 0);
  });

  test('an address is taken once per domain (409), case-insensitively', async () => {
    await create({ address: 'dup@mbx.example' });
    for (const address of ['dup@mbx.example', 'DUP@Mbx.Example']) {
      const res = await t.call('POST', '/v1/mailboxes', { token: org.token, body: { address } });
      assert.equal(res.status, 409, JSON.stringify(res.body));
    }
    const alias = await t.call('POST', '/v1/aliases', {
      token: org.token,
      body: { address: 'aliased@mbx.example', targets: ['someone@elsewhere.example'] },
    });
    assert.equal(alias.status, 201, JSON.stringify(alias.body));
    const clash = await t.call('POST', '/v1/mailboxes', {
      token: org.token,
      body: { address: 'aliased@mbx.example' },
    });
    assert.equal(clash.status, 409);
    assert.match(clash.body.detail, /alias/);
  });

  test("another organisation's mailboxes answer 404 and are not listed", async () => {
    const mailbox = await create({ address: 'private@mbx.example' });
    const other = await freshOrg(t);
    for (const [method, body] of [
      ['GET', undefined],
      ['PATCH', { display_name: 'x' }],
      ['DELETE', undefined],
    ] as const) {
      const res = await t.call(method, `/v1/mailboxes/${mailbox.id}`, { token: other.token, body });
      assert.equal(res.status, 404, `${method}: ${JSON.stringify(res.body)}`);
    }
    const list = await t.call('GET', '/v1/mailboxes', { token: other.token });
    assert.equal(list.body.total, 0);
    const filtered = await t.call('GET', `/v1/mailboxes?domain_id=${domain.id}`, { token: other.token });
    assert.equal(filtered.body.total, 0);
    assert.equal((await t.call('GET', `/v1/mailboxes/${mailbox.id}`, { token: org.token })).status, 200);
  });

  test('delete removes the mailbox and its folders', async () => {
    const mailbox = await create({ address: 'gone@mbx.example' });
    const res = await t.call('DELETE', `/v1/mailboxes/${mailbox.id}`, { token: org.token });
    assert.equal(res.status, 204);
    assert.equal((await t.call('GET', `/v1/mailboxes/${mailbox.id}`, { token: org.token })).status, 404);
    assert.equal((await t.call('DELETE', `/v1/mailboxes/${mailbox.id}`, { token: org.token })).status, 404);
    const folders = await t.app.database.query<{ n: number }>(
      'select count(*)::int as n from mailbox_folders where mailbox_id = $1',
      [mailbox.id],
    );
    assert.equal(folders.rows[0].n, 0);
    const deleted = await eventsOf('mailbox.deleted');
    assert.ok(deleted.some((e) => e.data.mailbox_id === mailbox.id && e.data.address === 'gone@mbx.example'));
    // The address is free again.
    await create({ address: 'gone@mbx.example' });
  });

  test('API keys need the mailboxes scope; a read-only key cannot write', async () => {
    const key = await t.call('POST', `/v1/organizations/${org.orgId}/api-keys`, {
      token: org.token,
      body: { name: 'mailbox reader', scopes: ['mailboxes:read'] },
    });
    assert.equal(key.status, 201, JSON.stringify(key.body));
    assert.equal((await t.call('GET', '/v1/mailboxes', { token: key.body.key })).status, 200);
    const write = await t.call('POST', '/v1/mailboxes', {
      token: key.body.key,
      body: { address: 'scoped@mbx.example' },
    });
    assert.equal(write.status, 403);
    const otherScope = await t.call('POST', `/v1/organizations/${org.orgId}/api-keys`, {
      token: org.token,
      body: { name: 'domains only', scopes: ['domains:read'] },
    });
    assert.equal((await t.call('GET', '/v1/mailboxes', { token: otherScope.body.key })).status, 403);
  });

  test('mutations are audited', async () => {
    const mailbox = await create({ address: 'audited@mbx.example' });
    const log = await t.call('GET', `/v1/organizations/${org.orgId}/audit-log?page_size=200`, {
      token: org.token,
    });
    assert.equal(log.status, 200, JSON.stringify(log.body));
    assert.ok(
      log.body.items.some((e: any) => e.action === 'mailbox.create' && e.target_id === mailbox.id),
      JSON.stringify(log.body.items.slice(0, 3)),
    );
  });
});
