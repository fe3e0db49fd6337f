// Contact imports from CSV as jobs, through the HTTP API: column mapping (given or guessed from the
// header), numbers normalised, duplicates updated or skipped, per-row errors with row numbers on the job,
// a target list, a raw text/csv body or a multipart form, and the same file twice refused.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engine, orgMaker, startTestApp, type Org, type TestApp } from '../../support/app.ts';
import { until } from '../../support/until.ts';

const newOrg = orgMaker('smsimports');

describe(`SMS contact imports on ${engine}`, () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ workers: true });
  });
  after(() => t.close());

  const call = (as: Org, method: string, url: string, body?: unknown) =>
    t.call(method, url, { token: as.token, body });
  const upload = (as: Org, query: string, csv: string, type = 'text/csv') =>
    t.call('POST', `/v1/sms/contacts/imports${query}`, {
      token: as.token,
      rawBody: csv,
      headers: { 'content-type': type },
    });
  const finished = (as: Org, importId: string) =>
    until(
      async () => (await call(as, 'GET', `/v1/sms/contacts/imports/${importId}`)).body,
      (i) => i.job.state !== 'queued' && i.job.state !== 'running',
      60_000,
    );

  test('mapping, normalised numbers, per-row errors, a list, duplicates updated; the same file refused', async () => {
    const org = await newOrg(t);
    const list = await call(org, 'POST', '/v1/sms/lists', { name: 'Imported' });
    const csv = [
      'Mobile,Full name,Company,Labels,Ignored',
      '(415) 555-0101,Ada Lovelace,Analytical,vip;west,x',
      '+44 7911 123456,Alan Turing,Bletchley,,x',
      'not a number,Nobody,,,x',
      ',No Phone,,,x',
      '415-555-0102,Short row',
      '"415 555 0101","Ada, Countess",Engines,east,x',
      '+1 415 555 0103,"Grace ""Amazing"" Hopper",Navy,,x',
      '',
    ].join('\r\n');
    const mapping = JSON.stringify({
      phone: 'Mobile',
      name: 'Full name',
      tags: 'Labels',
      fields: { company: 'Company' },
    });
    const started = await upload(
      org,
      `?mapping=${encodeURIComponent(mapping)}&list_id=${list.body.id}&default_region=US&tags=imported&filename=people.csv`,
      csv,
    );
    assert.equal(started.status, 202, JSON.stringify(started.body));
    assert.equal(started.headers.location, `/v1/jobs/${started.body.job.id}`);
    assert.equal(started.body.job.total, 7);
    const done = await finished(org, started.body.id);
    assert.equal(done.job.state, 'succeeded', JSON.stringify(done));
    assert.deepEqual(
      {
        rows: done.rows,
        created: done.created,
        updated: done.updated,
        skipped: done.skipped,
        failed: done.failed,
      },
      { rows: 7, created: 3, updated: 1, skipped: 0, failed: 3 },
    );
    assert.equal(done.job.done, 7);
    assert.deepEqual(
      done.job.errors.map((e: any) => e.item),
      ['row 4', 'row 5', 'row 6'],
    );
    assert.match(done.job.errors[0].message, /not a number/);
    assert.match(done.job.errors[1].message, /no phone number/);
    assert.match(done.job.errors[2].message, /2 columns, the header 5/);
    const job = await call(org, 'GET', `/v1/jobs/${done.job.id}`);
    assert.equal(job.body.error_count, 3);

    const contacts = (await call(org, 'GET', '/v1/sms/contacts?page_size=10')).body.items;
    const byPhone = new Map(contacts.map((c: any) => [c.phone, c]));
    assert.deepEqual([...byPhone.keys()].sort(), ['+14155550101', '+14155550103', '+447911123456']);
    // The number's second row updated the first: name, fields merged, tags added.
    const ada: any = byPhone.get('+14155550101');
    assert.equal(ada.name, 'Ada, Countess');
    assert.deepEqual(ada.fields, { company: 'Engines' });
    assert.deepEqual(ada.tags, ['east', 'imported', 'vip', 'west']);
    assert.equal((byPhone.get('+14155550103') as any).name, 'Grace "Amazing" Hopper');
    assert.equal((await call(org, 'GET', `/v1/sms/lists/${list.body.id}`)).body.members, 3);

    // The same bytes again: refused, naming the first import.
    const again = await upload(org, `?mapping=${encodeURIComponent(mapping)}`, csv);
    assert.equal(again.status, 409, JSON.stringify(again.body));
    assert.equal(again.body.import_id, started.body.id);
    assert.match(again.body.detail, new RegExp(started.body.id));
    // Another organisation may import the same file.
    const other = await newOrg(t);
    const theirs = await upload(other, `?mapping=${encodeURIComponent(mapping)}&default_region=US`, csv);
    assert.equal(theirs.status, 202, JSON.stringify(theirs.body));
    assert.equal((await call(other, 'GET', `/v1/sms/contacts/imports/${started.body.id}`)).status, 404);
  });

  test('skip keeps existing contacts; the mapping is guessed from the header; a multipart form works', async () => {
    const org = await newOrg(t);
    const first = await call(org, 'POST', '/v1/sms/contacts', {
      phone: '+14155550111',
      name: 'Kept',
      fields: { plan: 'gold' },
    });
    assert.equal(first.status, 201);
    const csv =
      'phone,name,Plan Type\n+14155550111,Replaced,silver\n+14155550112,New,bronze\n+14155550112,Twice,x\n';
    const boundary = 'mailroomboundary42';
    const form = [
      `--${boundary}`,
      'Content-Disposition: form-data; name="on_duplicate"',
      '',
      'skip',
      `--${boundary}`,
      'Content-Disposition: form-data; name="file"; filename="skip.csv"',
      'Content-Type: text/csv',
      '',
      csv,
      `--${boundary}--`,
      '',
    ].join('\r\n');
    const started = await upload(org, '', form, `multipart/form-data; boundary=${boundary}`);
    assert.equal(started.status, 202, JSON.stringify(started.body));
    assert.equal(started.body.filename, 'skip.csv');
    assert.deepEqual(started.body.mapping, {
      phone: 'phone',
      name: 'name',
      tags: null,
      fields: { plan_type: 'Plan Type' },
    });
    const done = await finished(org, started.body.id);
    assert.equal(done.job.state, 'succeeded', JSON.stringify(done));
    assert.deepEqual(
      { created: done.created, updated: done.updated, skipped: done.skipped, failed: done.failed },
      { created: 1, updated: 0, skipped: 2, failed: 0 },
    );
    const kept = await call(org, 'GET', `/v1/sms/contacts/${first.body.id}`);
    assert.equal(kept.body.name, 'Kept');
    assert.deepEqual(kept.body.fields, { plan: 'gold' });
    const added = (await call(org, 'GET', '/v1/sms/contacts?search=0112')).body.items;
    assert.deepEqual(
      added.map((c: any) => [c.name, c.fields]),
      [['New', { plan_type: 'bronze' }]],
    );
    const listed = await call(org, 'GET', '/v1/sms/contacts/imports');
    assert.equal(listed.body.total, 1);
  });

  test('bad input is a 4xx and starts nothing', async () => {
    const org = await newOrg(t);
    const missingColumn = await upload(
      org,
      `?mapping=${encodeURIComponent(JSON.stringify({ phone: 'Telephone' }))}`,
      'phone,name\n+14155550101,A\n',
    );
    assert.equal(missingColumn.status, 422);
    assert.match(missingColumn.body.detail, /no column "Telephone"/);
    const noPhone = await upload(org, '', 'first,last\nA,B\n');
    assert.equal(noPhone.status, 422);
    assert.match(noPhone.body.detail, /give a mapping/);
    assert.equal((await upload(org, '', '')).status, 422);
    const badMapping = await upload(org, '?mapping=%7Bnot%20json', 'phone\n+14155550101\n');
    assert.equal(badMapping.status, 400);
    const badList = await upload(
      org,
      '?list_id=00000000-0000-7000-8000-000000000000',
      'phone\n+14155550101\n',
    );
    assert.equal(badList.status, 404);
    const json = await t.call('POST', '/v1/sms/contacts/imports', { token: org.token, body: { phone: 'x' } });
    assert.equal(json.status, 415);
    const badRegion = await upload(org, '?default_region=XX', 'phone\n4155550101\n');
    assert.equal(badRegion.status, 422);
    assert.equal((await call(org, 'GET', '/v1/sms/contacts/imports')).body.total, 0);
  });
});
