// SMS templates (Liquid, preview with encoding and parts), contacts (E.164, unique per organisation),
// lists and their members, through the HTTP API; organisations never see each other's.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engine, orgMaker, startTestApp, type Org, type TestApp } from '../../support/app.ts';

const newOrg = orgMaker('smscontacts');

describe(`SMS templates, contacts and lists on ${engine}`, () => {
  let t: TestApp;
  let org: Org;
  before(async () => {
    t = await startTestApp();
    org = await newOrg(t);
  });
  after(() => t.close());

  const call = (method: string, url: string, body?: unknown, as: Org = org) =>
    t.call(method, url, { token: as.token, body });

  test('templates: Liquid placeholders, preview with encoding and parts, unparsable refused', async () => {
    const bad = await call('POST', '/v1/sms/templates', { name: 'Broken', body: 'Hi {{ contact.name ' });
    assert.equal(bad.status, 422, JSON.stringify(bad.body));
    assert.match(bad.body.detail, /body: not a valid Liquid template/);
    const fileTag = await call('POST', '/v1/sms/templates', { name: 'Files', body: "{% include 'x' %}" });
    assert.equal(fileTag.status, 422, JSON.stringify(fileTag.body));

    const created = await call('POST', '/v1/sms/templates', {
      name: 'Welcome',
      body: 'Hi {{ contact.first_name }}, your code is {{ contact.fields.code }}. {{ organization.name }}',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const again = await call('POST', '/v1/sms/templates', { name: 'Welcome', body: 'x' });
    assert.equal(again.status, 409);

    const contact = await call('POST', '/v1/sms/contacts', {
      phone: '+44 7911 123456',
      name: 'Ada Lovelace',
      fields: { code: 'X1' },
    });
    assert.equal(contact.status, 201, JSON.stringify(contact.body));
    const preview = await call('POST', `/v1/sms/templates/${created.body.id}/preview`, {
      contact_id: contact.body.id,
    });
    assert.equal(preview.status, 200, JSON.stringify(preview.body));
    assert.equal(preview.body.text, 'Hi Ada, your code is X1. smscontacts 1');
    assert.equal(preview.body.encoding, 'gsm7');
    assert.equal(preview.body.parts, 1);

    // Given variables instead of a contact; an emoji makes it UCS-2, and 71 units take two parts.
    const long = await call('POST', '/v1/sms/templates/preview', {
      body: `{{ contact.name }} ${'x'.repeat(60)} 🎉`,
      variables: { contact: { name: 'Grace' } },
    });
    assert.equal(long.status, 200, JSON.stringify(long.body));
    assert.equal(long.body.encoding, 'ucs2');
    assert.equal(long.body.units, 5 + 1 + 60 + 1 + 2);
    assert.equal(long.body.parts, 1);
    const twoParts = await call('POST', '/v1/sms/templates/preview', { body: `€${'a'.repeat(159)}` });
    assert.equal(twoParts.body.encoding, 'gsm7');
    assert.equal(twoParts.body.units, 161, 'an extension-table character counts twice');
    assert.equal(twoParts.body.parts, 2);
    const unparsable = await call('POST', '/v1/sms/templates/preview', { body: '{% if %}' });
    assert.equal(unparsable.status, 422);

    const changed = await call('PATCH', `/v1/sms/templates/${created.body.id}`, {
      body: 'Bye {{ contact.name }}',
    });
    assert.equal(changed.status, 200);
    assert.equal(changed.body.body, 'Bye {{ contact.name }}');
    const badChange = await call('PATCH', `/v1/sms/templates/${created.body.id}`, { body: '{{' });
    assert.equal(badChange.status, 422);
    const listed = await call('GET', '/v1/sms/templates?search=welc');
    assert.equal(listed.body.total, 1);
  });

  test('contacts: E.164, unique per organisation, filters, search, pages; isolated between organisations', async () => {
    const other = await newOrg(t);
    const made: any[] = [];
    for (const [i, phone] of ['+1 415 555 0101', '(415) 555-0102', '+14155550103'].entries()) {
      const res = await call('POST', '/v1/sms/contacts', {
        phone,
        name: `Person ${i}`,
        tags: i === 0 ? ['vip', 'west'] : ['west'],
        fields: { city: i === 2 ? 'Oakland' : 'San Francisco' },
        default_region: 'US',
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      made.push(res.body);
    }
    assert.equal(made[1].phone, '+14155550102', 'a national number is read in the default region');
    const duplicate = await call('POST', '/v1/sms/contacts', { phone: '+1 (415) 555-0101' });
    assert.equal(duplicate.status, 409);
    assert.equal(duplicate.body.contact_id, made[0].id);
    const invalid = await call('POST', '/v1/sms/contacts', { phone: '+1 000' });
    assert.equal(invalid.status, 422);
    assert.match(invalid.body.detail, /\+1 000/);
    const badRegion = await call('POST', '/v1/sms/contacts', { phone: '555', default_region: 'ZZ' });
    assert.equal(badRegion.status, 422);
    const badField = await call('POST', '/v1/sms/contacts', {
      phone: '+14155550199',
      fields: { 'Bad Key': 'x' },
    });
    assert.equal(badField.status, 400);

    // The same number is another organisation's own contact.
    const theirs = await call('POST', '/v1/sms/contacts', { phone: '+14155550101', name: 'Theirs' }, other);
    assert.equal(theirs.status, 201);

    const vip = await call('GET', '/v1/sms/contacts?tag=vip,west');
    assert.deepEqual(
      vip.body.items.map((c: any) => c.id),
      [made[0].id],
    );
    const byField = await call('GET', '/v1/sms/contacts?field=city:Oakland');
    assert.deepEqual(
      byField.body.items.map((c: any) => c.phone),
      ['+14155550103'],
    );
    const byDigits = await call('GET', '/v1/sms/contacts?search=0102');
    assert.deepEqual(
      byDigits.body.items.map((c: any) => c.id),
      [made[1].id],
    );
    const paged = await call('GET', '/v1/sms/contacts?tag=west&page=2&page_size=2');
    assert.equal(paged.body.total, 3);
    assert.equal(paged.body.total_pages, 2);
    assert.equal(paged.body.items.length, 1);

    const patched = await call('PATCH', `/v1/sms/contacts/${made[0].id}`, {
      name: 'Renamed',
      fields: { city: null, plan: 'gold' },
      tags: ['b', 'a', 'a'],
    });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.deepEqual(patched.body.fields, { plan: 'gold' });
    assert.deepEqual(patched.body.tags, ['a', 'b']);
    const taken = await call('PATCH', `/v1/sms/contacts/${made[0].id}`, { phone: '+14155550102' });
    assert.equal(taken.status, 409);

    // Another organisation: 404 for every route, and its lists show none of these.
    for (const [method, url, body] of [
      ['GET', `/v1/sms/contacts/${made[0].id}`],
      ['PATCH', `/v1/sms/contacts/${made[0].id}`, { name: 'x' }],
      ['DELETE', `/v1/sms/contacts/${made[0].id}`],
    ] as const) {
      const res = await call(method, url, body, other);
      assert.equal(res.status, 404, `${method} ${url}`);
    }
    const theirList = await call('GET', '/v1/sms/contacts', undefined, other);
    assert.deepEqual(
      theirList.body.items.map((c: any) => c.name),
      ['Theirs'],
    );

    const removed = await call('DELETE', `/v1/sms/contacts/${made[2].id}`);
    assert.equal(removed.status, 204);
    assert.equal((await call('GET', `/v1/sms/contacts/${made[2].id}`)).status, 404);
  });

  test('lists: members added and removed by ids or by filter; counts; isolation', async () => {
    const as = await newOrg(t);
    const other = await newOrg(t);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await call(
        'POST',
        '/v1/sms/contacts',
        { phone: `+1415555${String(1000 + i)}`, name: `M${i}`, tags: i % 2 ? ['odd'] : ['even'] },
        as,
      );
      assert.equal(res.status, 201, JSON.stringify(res.body));
      ids.push(res.body.id);
    }
    const list = await call('POST', '/v1/sms/lists', { name: 'Customers' }, as);
    assert.equal(list.status, 201);
    assert.equal((await call('POST', '/v1/sms/lists', { name: 'Customers' }, as)).status, 409);
    const L = `/v1/sms/lists/${list.body.id}`;

    const byIds = await call('POST', `${L}/members`, { contact_ids: ids.slice(0, 2) }, as);
    assert.deepEqual(byIds.body, { count: 2 });
    const byFilter = await call('POST', `${L}/members`, { filter: { tags: ['even'] } }, as);
    assert.deepEqual(byFilter.body, { count: 2 }, 'contact 0 was a member already');
    assert.equal((await call('GET', L, undefined, as)).body.members, 4);
    const members = await call('GET', `${L}/members?page_size=10`, undefined, as);
    assert.deepEqual(members.body.items.map((c: any) => c.name).sort(), ['M0', 'M1', 'M2', 'M4']);
    const filtered = await call('GET', `/v1/sms/contacts?list_id=${list.body.id}&tag=odd`, undefined, as);
    assert.deepEqual(
      filtered.body.items.map((c: any) => c.name),
      ['M1'],
    );

    const removed = await call('POST', `${L}/members/remove`, { filter: { tags: ['even'] } }, as);
    assert.deepEqual(removed.body, { count: 3 });
    const one = await call('DELETE', `${L}/members/${ids[1]}`, undefined, as);
    assert.equal(one.status, 204);
    assert.equal((await call('DELETE', `${L}/members/${ids[1]}`, undefined, as)).status, 404);
    assert.equal((await call('GET', L, undefined, as)).body.members, 0);

    // Neither both nor none of ids and filter; ids of another organisation are unknown here.
    assert.equal((await call('POST', `${L}/members`, {}, as)).status, 422);
    const foreign = await call('POST', '/v1/sms/contacts', { phone: '+14155559999' }, other);
    const refused = await call('POST', `${L}/members`, { contact_ids: [foreign.body.id] }, as);
    assert.equal(refused.status, 422);
    assert.equal((await call('POST', `${L}/members`, { contact_ids: [foreign.body.id] }, other)).status, 404);
    assert.equal((await call('GET', `${L}/members`, undefined, other)).status, 404);

    const created = await call(
      'POST',
      '/v1/sms/contacts',
      { phone: '+14155551111', list_ids: [list.body.id] },
      as,
    );
    assert.equal(created.status, 201);
    assert.equal((await call('GET', L, undefined, as)).body.members, 1);
    assert.equal((await call('DELETE', L, undefined, as)).status, 204);
    assert.equal((await call('GET', `/v1/sms/contacts/${created.body.id}`, undefined, as)).status, 200);
  });
});
