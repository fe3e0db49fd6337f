// Bulk inbox generation through the public surface: a job with progress at /v1/jobs/:id, names by
// pattern and locale, no collisions (with each other, mailboxes, aliases, reserved names), idempotency,
// cancellation, and the organisation's limit.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { addDomain, engine, type Org, orgMaker, startTestApp, type TestApp } from '../../support/app.ts';
import { until } from '../../support/until.ts';

describe(`inbox generation on ${engine}`, () => {
  const freshOrg = orgMaker('generate');
  let t: TestApp;
  let org: Org;

  const api = (method: string, url: string, body?: unknown, headers?: Record<string, string>, as = org) =>
    t.call(method, url, { token: as.token, body, headers });
  const generate = async (body: Record<string, unknown>, headers?: Record<string, string>, as = org) => {
    const res = await api('POST', '/v1/inboxes/generate', body, headers, as);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.headers.location, `/v1/jobs/${res.body.id}`);
    return res.body;
  };
  const finished = (id: string, as = org) =>
    until(
      async () => (await api('GET', `/v1/jobs/${id}`, undefined, undefined, as)).body,
      (job) => ['succeeded', 'failed', 'cancelled'].includes(job.state),
      60_000,
    );
  const mailboxesOf = async (domainId: string, as = org) => {
    const all: any[] = [];
    for (let page = 1; ; page++) {
      const res = await api(
        'GET',
        `/v1/mailboxes?domain_id=${domainId}&page=${page}&page_size=100`,
        undefined,
        undefined,
        as,
      );
      all.push(...res.body.items);
      if (page >= res.body.total_pages) return all;
    }
  };

  before(async () => {
    t = await startTestApp({ workers: true });
    org = await freshOrg(t);
  });
  after(async () => t?.close());

  test('1,000 mailboxes over three domains: no collisions, names kept, progress to the end, one event each', async () => {
    const domains = [];
    for (const name of ['gen-a.test', 'gen-b.test', 'gen-c.test'])
      domains.push(await addDomain(t, org, name));
    // Addresses a generated inbox must not take: an existing mailbox and an alias.
    const existing = await api('POST', '/v1/mailboxes', { address: 'john.smith@gen-a.test' });
    assert.equal(existing.status, 201);
    await api('POST', '/v1/mailboxes', { address: 'ops@gen-a.test' });
    const alias = await api('POST', '/v1/aliases', {
      address: 'jane.smith@gen-a.test',
      targets: ['ops@gen-a.test'],
    });
    assert.equal(alias.status, 201, JSON.stringify(alias.body));

    const job = await generate({
      domains: [
        { domain_id: domains[0].id, count: 400 },
        { domain: 'gen-b.test', count: 300 },
        { domain_id: domains[2].id, count: 300 },
      ],
      pattern: 'first.last',
    });
    assert.equal(job.kind, 'inboxes.generate');
    assert.equal(job.total, 1000);
    assert.ok(['queued', 'running'].includes(job.state));
    const done = await finished(job.id);
    assert.equal(done.state, 'succeeded', JSON.stringify(done));
    assert.equal(done.done, 1000);
    assert.equal(done.error_count, 0);
    assert.deepEqual(
      done.result.domains.map((d: any) => [d.name, d.links.mailboxes]),
      domains.map((d) => [d.name, `/v1/mailboxes?domain_id=${d.id}`]),
    );

    const counts = [];
    for (const domain of domains) {
      const mailboxes = await mailboxesOf(domain.id);
      counts.push(mailboxes.length);
      const addresses = new Set(mailboxes.map((m) => m.address));
      assert.equal(addresses.size, mailboxes.length, 'no two alike');
      for (const m of mailboxes) {
        if (m.address === 'john.smith@gen-a.test' || m.address === 'ops@gen-a.test') continue;
        assert.ok(m.first_name && m.last_name, JSON.stringify(m));
        assert.equal(m.display_name, `${m.first_name} ${m.last_name}`);
        assert.equal(m.password_exportable, true);
        assert.equal(m.has_password, true);
        const ascii = (s: string) =>
          s
            .normalize('NFKD')
            .replace(/\p{M}/gu, '')
            .toLowerCase()
            .replace(/[^a-z]/g, '');
        const base = `${ascii(m.first_name)}.${ascii(m.last_name)}`;
        assert.match(m.address.split('@')[0], new RegExp(`^${base.replace('.', '\\.')}\\d*$`), m.address);
      }
    }
    assert.deepEqual(counts, [402, 300, 300], 'the two mailboxes that were there, and the generated ones');
    const aliasStill = await api('GET', `/v1/aliases/${alias.body.id}`);
    assert.equal(aliasStill.body.address, 'jane.smith@gen-a.test');
    // One mailbox.created event per mailbox made (events are listed newest first).
    const events = await api('GET', '/v1/events?types=mailbox.created&page_size=1');
    assert.equal(events.body.total, 1002);
  });

  test('each pattern gives its shape; collisions get the smallest free number; reserved names are skipped', async () => {
    const domain = await addDomain(t, org, 'patterns.test');
    const names = { first: ['Zoë'], last: ['Müller-Lüdenscheidt'] };
    const expected: Record<string, string[]> = {
      'first.last': ['zoe.mullerludenscheidt', 'zoe.mullerludenscheidt2'],
      firstlast: ['zoemullerludenscheidt', 'zoemullerludenscheidt2'],
      first: ['zoe', 'zoe2'],
      'f.last': ['z.mullerludenscheidt', 'z.mullerludenscheidt2'],
      first_l: ['zoe_m', 'zoe_m2'],
      firstl: ['zoem', 'zoem2'],
      '{last}-{first}{n}': ['mullerludenscheidt-zoe', 'mullerludenscheidt-zoe2'],
    };
    for (const [pattern, locals] of Object.entries(expected)) {
      const job = await generate({ domains: [{ domain_id: domain.id, count: 2 }], pattern, names });
      assert.equal((await finished(job.id)).state, 'succeeded');
      const made = (await mailboxesOf(domain.id)).map((m) => m.address.split('@')[0]);
      for (const local of locals) assert.ok(made.includes(local), `${pattern}: ${local} in ${made}`);
    }
    // Names drawn again after a collision: each address is still made of its own mailbox's names.
    const redrawn = await generate({
      domains: [{ domain_id: domain.id, count: 8 }],
      pattern: 'first.last',
      names: { first: ['Ann', 'Bob', 'Cy', 'Dee', 'Eve', 'Flo', 'Gus', 'Hal'], last: ['Lee'] },
    });
    assert.equal((await finished(redrawn.id)).state, 'succeeded');
    const lees = (await mailboxesOf(domain.id)).filter((m) => m.last_name === 'Lee');
    assert.equal(lees.length, 8);
    for (const m of lees)
      assert.match(m.address, new RegExp(`^${m.first_name.toLowerCase()}\\.lee\\d*@`), JSON.stringify(m));
    // "admin" is reserved: a generator asked for it takes admin2 and on.
    const reserved = await generate({
      domains: [{ domain_id: domain.id, count: 2 }],
      pattern: 'first',
      names: { first: ['Admin'], last: ['X'] },
    });
    assert.equal((await finished(reserved.id)).state, 'succeeded');
    const made = (await mailboxesOf(domain.id)).map((m) => m.address.split('@')[0]);
    assert.ok(!made.includes('admin'));
    assert.ok(made.includes('admin2') && made.includes('admin3'), made.join());
  });

  test('a locale gives its names, written in Latin letters; bad requests are refused before any job', async () => {
    const domain = await addDomain(t, org, 'locale.test');
    const job = await generate({
      domains: [{ domain_id: domain.id, count: 20 }],
      locale: 'de',
      pattern: 'firstlast',
    });
    assert.equal((await finished(job.id)).state, 'succeeded');
    for (const m of await mailboxesOf(domain.id)) assert.match(m.address, /^[a-z0-9]+@locale\.test$/);

    const refusals: [Record<string, unknown>, number, RegExp][] = [
      [{ domains: [{ domain_id: domain.id, count: 1 }], locale: 'xx_NOPE' }, 422, /not a locale/],
      [{ domains: [{ domain_id: domain.id, count: 1 }], locale: '../../etc' }, 422, /not a locale/],
      [{ domains: [{ domain_id: domain.id, count: 1 }], pattern: '{first}@{last}' }, 422, /pattern/],
      [{ domains: [{ domain_id: domain.id, count: 1 }], pattern: 'static' }, 422, /pattern/],
      [{ domains: [{ domain: 'not-ours.test', count: 1 }] }, 422, /not one of this organisation/],
      [{ domains: [{ domain_id: domain.id, count: 5001 }] }, 400, /count/],
      [{ domains: [{ domain_id: domain.id, count: 1 }], password_policy: { length: 8 } }, 400, /length/],
      [{ domains: [{ domain_id: domain.id, domain: 'locale.test', count: 1 }] }, 400, /domain_id or domain/],
    ];
    for (const [body, status, detail] of refusals) {
      const res = await api('POST', '/v1/inboxes/generate', body);
      assert.equal(res.status, status, `${JSON.stringify(body)} → ${JSON.stringify(res.body)}`);
      assert.match(res.body.detail, detail);
    }
    const other = await freshOrg(t);
    const foreign = await api(
      'POST',
      '/v1/inboxes/generate',
      { domains: [{ domain_id: domain.id, count: 1 }] },
      undefined,
      other,
    );
    assert.equal(foreign.status, 404, 'another organisation’s domain');
  });

  test('the same Idempotency-Key answers the first job and creates nothing new; with another body, 422', async () => {
    const domain = await addDomain(t, org, 'idem.test');
    const body = { domains: [{ domain_id: domain.id, count: 30 }] };
    const first = await generate(body, { 'idempotency-key': 'gen-1' });
    await finished(first.id);
    const again = await api('POST', '/v1/inboxes/generate', body, { 'idempotency-key': 'gen-1' });
    assert.equal(again.status, 200);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.equal(again.body.id, first.id);
    assert.equal((await mailboxesOf(domain.id)).length, 30);
    const other = await api(
      'POST',
      '/v1/inboxes/generate',
      { ...body, pattern: 'firstlast' },
      { 'idempotency-key': 'gen-1' },
    );
    assert.equal(other.status, 422);
    assert.equal(other.body.code, 'idempotency_key_reused');
  });

  test('cancelling mid-job stops it: what was made stays, the rest is not made', async () => {
    const domain = await addDomain(t, org, 'cancel.test');
    const job = await generate({
      domains: [{ domain_id: domain.id, count: 5000 }],
      pattern: '{first}.{last}{n}',
    });
    await until(
      async () => (await api('GET', `/v1/jobs/${job.id}`)).body,
      (j) => j.done > 0,
      60_000,
    );
    const cancel = await api('DELETE', `/v1/jobs/${job.id}`);
    assert.equal(cancel.status, 202, JSON.stringify(cancel.body));
    assert.equal(cancel.body.cancel_requested, true);
    const ended = await finished(job.id);
    assert.equal(ended.state, 'cancelled');
    assert.ok(ended.done < 5000, `${ended.done} done`);
    assert.equal((await mailboxesOf(domain.id)).length, ended.done);
    const again = await api('DELETE', `/v1/jobs/${job.id}`);
    assert.equal(again.status, 409);
    const listed = await api('GET', '/v1/jobs?kind=inboxes.generate&page_size=100');
    assert.ok(listed.body.items.some((j: any) => j.id === job.id && j.state === 'cancelled'));
  });

  test('past the organisation’s mailbox limit the request is refused whole', async () => {
    const limited = await startTestApp({ workers: true, env: { MAILROOM_ORGANIZATION_MAX_MAILBOXES: '10' } });
    try {
      const owner = await freshOrg(limited);
      const domain = await addDomain(limited, owner, 'limit.test');
      const res = await limited.call('POST', '/v1/inboxes/generate', {
        token: owner.token,
        body: { domains: [{ domain_id: domain.id, count: 11 }] },
      });
      assert.equal(res.status, 403);
      assert.deepEqual(
        [res.body.code, res.body.limit, res.body.value, res.body.usage],
        ['limit_reached', 'mailboxes', 10, 0],
      );
      const jobs = await limited.call('GET', '/v1/jobs', { token: owner.token });
      assert.equal(jobs.body.total, 0);
    } finally {
      await limited.close();
    }
  });

  test('another organisation can neither see nor cancel a job', async () => {
    const domain = await addDomain(t, org, 'roles.test');
    const job = await generate({ domains: [{ domain_id: domain.id, count: 1 }] });
    await finished(job.id);
    const other = await freshOrg(t);
    assert.equal((await api('GET', `/v1/jobs/${job.id}`, undefined, undefined, other)).status, 404);
    assert.equal((await api('DELETE', `/v1/jobs/${job.id}`, undefined, undefined, other)).status, 404);
  });
});
