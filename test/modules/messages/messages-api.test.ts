// The messages read API through the public surface. The message store is written by the inbound
// pipeline; here messages are seeded straight into the tables (with the `search` vector computed the
// way the pipeline computes it) so each case controls exactly what is stored.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { newId } from '../../../src/core/ids.ts';
import { engine, type Org, signUpWithOrg, startTestApp, type TestApp } from '../../support/app.ts';

interface Seed {
  direction?: 'inbound' | 'outbound';
  status?: string;
  domainId?: string | null;
  mailFrom?: string;
  rcptTo?: string[];
  fromAddress?: string | null;
  fromName?: string | null;
  toAddresses?: string[];
  subject?: string | null;
  body?: string;
  raw?: Buffer;
  receivedAt?: Date;
  threadId?: string | null;
  parentId?: string | null;
  details?: unknown;
  auth?: unknown;
}

const DAY = 86_400_000;
const HOUR = 3_600_000;
const dateOf = (d: Date) => d.toISOString().slice(0, 10);

describe(`messages API on ${engine}`, () => {
  let t: TestApp;
  let a: Org;
  let b: Org;
  let domainId: string;
  let bDomainId: string;
  const now = Date.now();
  let seq = 0;

  const query = (text: string, params: unknown[] = []) => t.app.database.query<any>(text, params);

  /** A message as the pipeline stores it: its raw bytes in a blob, its search vector filled in. */
  const seed = async (org: Org, s: Seed = {}): Promise<string> => {
    seq++;
    const id = newId();
    const blobId = newId();
    const raw = s.raw ?? Buffer.from(`Subject: ${s.subject ?? ''}\r\n\r\n${s.body ?? ''}\r\n`);
    const mailFrom = s.mailFrom ?? 'sender@example.net';
    const rcptTo = s.rcptTo ?? ['info@acme.test'];
    const fromAddress = s.fromAddress === undefined ? mailFrom : s.fromAddress;
    const toAddresses = s.toAddresses ?? rcptTo;
    const subject = s.subject === undefined ? `Message ${seq}` : s.subject;
    const body = s.body ?? '';
    await query('insert into blobs (id, organization_id, data) values ($1, $2, $3)', [
      blobId,
      org.orgId,
      raw,
    ]);
    await query(
      `insert into messages (id, organization_id, domain_id, direction, status, blob_id, size, mail_from,
         rcpt_to, remote_ip, helo, tls, message_id_header, thread_id, from_address, from_name, to_addresses,
         subject, body_text, details, auth, search, parent_id, received_at, processed_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, '192.0.2.7', 'mx.example.net', true, $10, $11, $12, $13,
         $14, $15, $16, $17, $18,
         to_tsvector('simple', coalesce($15, '') || ' ' || coalesce($12, '') || ' ' ||
           array_to_string($14::text[], ' ') || ' ' || $16),
         $19, $20, $20)`,
      [
        id,
        org.orgId,
        s.domainId === undefined ? (org === a ? domainId : null) : s.domainId,
        s.direction ?? 'inbound',
        s.status ?? 'delivered',
        blobId,
        raw.length,
        mailFrom,
        rcptTo,
        `<${id}@example.net>`,
        s.threadId ?? null,
        fromAddress,
        s.fromName ?? null,
        toAddresses,
        subject,
        body,
        s.details === undefined ? null : JSON.stringify(s.details),
        s.auth === undefined ? null : JSON.stringify(s.auth),
        s.parentId ?? null,
        (s.receivedAt ?? new Date(now - seq * 1000)).toISOString(),
      ],
    );
    return id;
  };

  const get = async (path: string, as: Org = a, status = 200) => {
    const res = await t.call('GET', path, { token: as.token });
    assert.equal(res.status, status, `${path}: ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const ids = (body: { items: { id: string }[] }) => body.items.map((m) => m.id);
  const addDomain = async (as: Org, name: string) => {
    const res = await t.call('POST', '/v1/domains', {
      token: as.token,
      body: { name, dkim: { algorithm: 'ed25519' } },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.id as string;
  };
  const eventsOf = async (as: Org, type: string) =>
    (await get(`/v1/events?types=${type}&page_size=200`, as)).items;

  before(async () => {
    t = await startTestApp();
    a = await signUpWithOrg(t, 'messages-a@example.com', 'Alpha');
    b = await signUpWithOrg(t, 'messages-b@example.com', 'Beta');
    domainId = await addDomain(a, 'acme.test');
    bDomainId = await addDomain(b, 'beta.test');
  });
  after(async () => t?.close());

  test('lists newest first, filtered and paginated', async () => {
    const org = await signUpWithOrg(t, 'list@example.com', 'List');
    const d1 = await addDomain(org, 'list-one.test');
    const d2 = await addDomain(org, 'list-two.test');
    const mailbox = await t.call('POST', '/v1/mailboxes', {
      token: org.token,
      body: { address: 'box@list-one.test' },
    });
    assert.equal(mailbox.status, 201, JSON.stringify(mailbox.body));
    const inbox = mailbox.body.folders.find((f: any) => f.name === 'INBOX');
    const at = (hoursAgo: number) => new Date(now - hoursAgo * HOUR);
    const m1 = await seed(org, {
      domainId: d1,
      receivedAt: at(50),
      mailFrom: 'Alice@Example.NET',
      status: 'failed',
    });
    const m2 = await seed(org, {
      domainId: d1,
      receivedAt: at(40),
      mailFrom: 'bounces@lists.example',
      fromAddress: 'bob@example.org',
      rcptTo: ['box@list-one.test'],
    });
    const m3 = await seed(org, {
      domainId: d2,
      receivedAt: at(30),
      direction: 'outbound',
      rcptTo: ['far@away.example'],
      toAddresses: ['Carol@Away.Example'],
    });
    const m4 = await seed(org, { domainId: d2, receivedAt: at(20), status: 'quarantined' });
    const m5 = await seed(org, { domainId: null, receivedAt: at(10) });
    // Two at the same instant: the later id first.
    const same = at(5);
    const m6 = await seed(org, { domainId: d1, receivedAt: same });
    const m7 = await seed(org, { domainId: d1, receivedAt: same });
    await query(
      `insert into mailbox_messages (id, organization_id, mailbox_id, folder_id, message_id, uid, size)
       values ($1, $2, $3, $4, $5, 1, 10), ($6, $2, $3, $4, $7, 2, 10)`,
      [newId(), org.orgId, mailbox.body.id, inbox.id, m2, newId(), m6],
    );

    const all = await get('/v1/messages', org);
    assert.deepEqual(ids(all), [m7, m6, m5, m4, m3, m2, m1]);
    assert.equal(all.total, 7);
    assert.equal(all.items[0].direction, 'inbound');
    assert.equal(all.items[0].body_text, undefined, 'lists carry no body');

    const paged = await get('/v1/messages?page=2&page_size=3', org);
    assert.deepEqual(ids(paged), [m4, m3, m2]);
    assert.deepEqual(
      { total: paged.total, page: paged.page, page_size: paged.page_size, total_pages: paged.total_pages },
      { total: 7, page: 2, page_size: 3, total_pages: 3 },
    );

    assert.deepEqual(ids(await get('/v1/messages?status=failed', org)), [m1]);
    assert.deepEqual(ids(await get('/v1/messages?status=quarantined', org)), [m4]);
    assert.deepEqual(ids(await get('/v1/messages?direction=outbound', org)), [m3]);
    assert.deepEqual(ids(await get(`/v1/messages?domain_id=${d2}`, org)), [m4, m3]);
    assert.deepEqual(ids(await get(`/v1/messages?mailbox_id=${mailbox.body.id}`, org)), [m6, m2]);
    assert.deepEqual(ids(await get('/v1/messages?sender=alice@example.net', org)), [m1]);
    assert.deepEqual(ids(await get('/v1/messages?sender=BOB@example.org', org)), [m2], 'From address');
    assert.deepEqual(ids(await get('/v1/messages?sender=bounces@lists.example', org)), [m2], 'envelope');
    assert.deepEqual(ids(await get('/v1/messages?recipient=BOX@list-one.test', org)), [m2]);
    assert.deepEqual(ids(await get('/v1/messages?recipient=carol@away.example', org)), [m3], 'To address');
    assert.deepEqual(ids(await get('/v1/messages?recipient=far@away.example', org)), [m3], 'envelope');
    const since = encodeURIComponent(at(35).toISOString());
    const until = encodeURIComponent(at(10).toISOString());
    assert.deepEqual(
      ids(await get(`/v1/messages?since=${since}&until=${until}`, org)),
      [m4, m3],
      'until exclusive',
    );
    assert.deepEqual(ids(await get(`/v1/messages?since=${encodeURIComponent(at(10).toISOString())}`, org)), [
      m7,
      m6,
      m5,
    ]);
    assert.deepEqual(
      ids(await get(`/v1/messages?domain_id=${d1}&status=delivered&mailbox_id=${mailbox.body.id}`, org)),
      [m6, m2],
    );
    assert.equal((await get('/v1/messages?status=sent', org, 400)).code, 'validation_failed');
    assert.equal((await get('/v1/messages?since=yesterday', org, 400)).code, 'validation_failed');
    await get(`/v1/messages?since=${until}&until=${since}`, org, 422);
  });

  test('full-text search: words, phrases, addresses, exclusions; hits and misses, newest first', async () => {
    const org = await signUpWithOrg(t, 'search@example.com', 'Search');
    const d = await addDomain(org, 'search.test');
    const at = (minutesAgo: number) => new Date(now - minutesAgo * 60_000);
    const quarterly = await seed(org, {
      domainId: d,
      receivedAt: at(60),
      subject: 'Quarterly report',
      body: 'Revenue grew in the northern region',
      mailFrom: 'cfo@finance.example',
    });
    const invoice = await seed(org, {
      domainId: d,
      receivedAt: at(50),
      subject: 'Invoice 4711',
      body: 'Please find the invoice for the quarterly retainer attached',
      mailFrom: 'billing@vendor.example',
    });
    const lunch = await seed(org, {
      domainId: d,
      receivedAt: at(40),
      subject: 'Lunch?',
      body: 'Shall we meet at the northern gate',
      mailFrom: 'friend@social.example',
    });
    const other = await seed(a, { subject: 'Quarterly report for Alpha', body: 'northern' });

    const search = (q: string, extra = '') =>
      get(`/v1/messages/search?q=${encodeURIComponent(q)}${extra}`, org);

    const quarterlyHits = await search('quarterly');
    assert.deepEqual(ids(quarterlyHits), [invoice, quarterly], 'subject and body, newest first');
    assert.equal(quarterlyHits.total, 2);
    assert.equal(quarterlyHits.total_exact, true);
    assert.ok(!ids(quarterlyHits).includes(other), "never another organisation's messages");
    assert.deepEqual(ids(await search('NORTHERN')), [lunch, quarterly], 'case-insensitive');
    assert.deepEqual(ids(await search('northern -gate')), [quarterly], 'exclusion');
    assert.deepEqual(ids(await search('"northern gate"')), [lunch], 'phrase');
    assert.deepEqual(ids(await search('"gate northern"')), [], 'phrase order matters');
    assert.deepEqual(ids(await search('lunch or revenue')), [lunch, quarterly], 'or');
    assert.deepEqual(ids(await search('invoice 4711')), [invoice], 'all words');
    assert.deepEqual(ids(await search('billing@vendor.example')), [invoice], 'an address');
    const miss = await search('nonexistentword');
    assert.deepEqual(miss.items, []);
    assert.equal(miss.total, 0);
    assert.equal(miss.total_pages, 0);

    assert.equal((await get('/v1/messages/search?q=', org, 400)).code, 'validation_failed');
    assert.equal((await get('/v1/messages/search?q=%20%20', org, 400)).code, 'validation_failed');
    assert.equal((await get('/v1/messages/search', org, 400)).code, 'validation_failed');
    assert.equal((await get('/v1/messages/search?q=!!!', org, 422)).code, 'validation_failed');
  });

  test('search pages: exact totals for a few matches, also past the last page', async () => {
    const org = await signUpWithOrg(t, 'search-pages@example.com', 'Search pages');
    const hits: string[] = [];
    for (let i = 0; i < 5; i++) {
      hits.unshift(
        await seed(org, {
          subject: `Status ${i}`,
          body: 'weekly digest',
          receivedAt: new Date(now - (10 - i) * 60_000),
        }),
      );
      await seed(org, {
        subject: `Noise ${i}`,
        body: 'nothing to see',
        receivedAt: new Date(now - (10 - i) * 60_000 + 1),
      });
    }
    const page = (n: number) => get(`/v1/messages/search?q=digest&page=${n}&page_size=2`, org);
    const seen: string[] = [];
    for (const n of [1, 2, 3]) {
      const p = await page(n);
      assert.equal(p.total, 5, `page ${n}`);
      assert.equal(p.total_pages, 3);
      assert.equal(p.total_exact, true);
      seen.push(...ids(p));
    }
    assert.deepEqual(seen, hits);
    const past = await page(4);
    assert.deepEqual(past.items, []);
    assert.equal(past.total, 5, 'a page past the end still counts');
  });

  test('search over many messages: common words by walking the newest, rare ones from the index', async () => {
    const org = await signUpWithOrg(t, 'search-bulk@example.com', 'Search bulk');
    // Message g (1..2000, 2000 the newest): every one says "common", the even ones "half", every
    // hundredth "scarce", and the oldest 1000 "vintage".
    await query(
      `insert into messages (id, organization_id, direction, status, blob_id, size, mail_from, rcpt_to,
         subject, body_text, search, received_at)
       select gen_random_uuid(), $1, 'inbound', 'delivered', gen_random_uuid(), 100, 'bulk@example.net',
         array['x@bulk.test'], 'Bulk ' || g, body, to_tsvector('simple', 'Bulk ' || g || ' ' || body),
         $2::timestamptz - (2000 - g) * interval '1 second'
       from (
         select g, 'common'
           || case when g % 2 = 0 then ' half' else '' end
           || case when g % 100 = 0 then ' scarce' else '' end
           || case when g <= 1000 then ' vintage' else '' end as body
         from generate_series(1, 2000) g
       ) s`,
      [org.orgId, new Date(now).toISOString()],
    );
    await query('analyze messages');
    const search = async (q: string, pageNumber = 1) => {
      const body = await get(`/v1/messages/search?q=${q}&page=${pageNumber}&page_size=5`, org);
      return { ...body, numbers: body.items.map((m: any) => Number(m.subject.slice(5))) };
    };

    const common = await search('common');
    assert.deepEqual(common.numbers, [2000, 1999, 1998, 1997, 1996]);
    assert.equal(common.total_exact, false, 'too many to count: estimated');
    assert.ok(common.total > 1000 && common.total < 2500, `estimate ${common.total}`);
    assert.deepEqual((await search('common', 3)).numbers, [1990, 1989, 1988, 1987, 1986]);

    const half = await search('half', 2);
    assert.deepEqual(half.numbers, [1990, 1988, 1986, 1984, 1982]);
    assert.equal(half.total, 1000, 'few enough to count');
    assert.equal(half.total_exact, true);

    const vintage = await search('vintage');
    assert.deepEqual(
      vintage.numbers,
      [1000, 999, 998, 997, 996],
      'none among the newest: read from the index',
    );
    assert.equal(vintage.total, 1000);
    assert.equal(vintage.total_exact, true);

    const scarce = await search('scarce', 2);
    assert.deepEqual(scarce.numbers, [1500, 1400, 1300, 1200, 1100]);
    assert.equal(scarce.total, 20);
    assert.equal(scarce.total_exact, true);
    assert.deepEqual((await search('scarce%20vintage')).numbers, [1000, 900, 800, 700, 600]);
  });

  test('stats count by status (every status present), direction and size', async () => {
    const org = await signUpWithOrg(t, 'stats@example.com', 'Stats');
    const raw = (n: number) => Buffer.alloc(n, 'x');
    await seed(org, {
      domainId: null,
      status: 'delivered',
      raw: raw(100),
      receivedAt: new Date(now - 3 * DAY),
    });
    await seed(org, { domainId: null, status: 'delivered', raw: raw(200) });
    await seed(org, { domainId: null, status: 'failed', raw: raw(300), direction: 'outbound' });
    await seed(org, { domainId: null, status: 'quarantined', raw: raw(400) });
    const stats = await get('/v1/messages/stats', org);
    assert.deepEqual(stats, {
      since: null,
      total: 4,
      total_size_bytes: 1000,
      inbound: 3,
      outbound: 1,
      by_status: {
        pending: 0,
        processing: 0,
        delivered: 2,
        failed: 1,
        bounced: 0,
        rejected: 0,
        quarantined: 1,
      },
    });
    const since = new Date(now - DAY).toISOString();
    const recent = await get(`/v1/messages/stats?since=${encodeURIComponent(since)}`, org);
    assert.equal(recent.since, since);
    assert.equal(recent.total, 3);
    assert.equal(recent.total_size_bytes, 900);
    assert.equal(recent.by_status.delivered, 1);

    const empty = await signUpWithOrg(t, 'stats-empty@example.com', 'Empty');
    const none = await get('/v1/messages/stats', empty);
    assert.equal(none.total, 0);
    assert.equal(none.total_size_bytes, 0);
    assert.deepEqual(Object.values(none.by_status), [0, 0, 0, 0, 0, 0, 0]);
  });

  test('recent: the newest, 20 by default, at most 100', async () => {
    const org = await signUpWithOrg(t, 'recent@example.com', 'Recent');
    const seeded: string[] = [];
    for (let i = 0; i < 25; i++)
      seeded.unshift(await seed(org, { domainId: null, receivedAt: new Date(now - (100 - i) * 1000) }));
    const recent = await get('/v1/messages/recent', org);
    assert.deepEqual(ids(recent), seeded.slice(0, 20));
    assert.deepEqual(ids(await get('/v1/messages/recent?limit=3', org)), seeded.slice(0, 3));
    await get('/v1/messages/recent?limit=101', org, 400);
    await get('/v1/messages/recent?limit=0', org, 400);
  });

  test('one message: summary, headers, parts, attachments, authentication, routes and forwards', async () => {
    const details = {
      headers: [
        { name: 'From', value: 'Dana <dana@example.org>' },
        { name: 'Subject', value: 'Contract' },
      ],
      parts: [
        { content_type: 'text/plain', size: 120, charset: 'utf-8' },
        { content_type: 'application/pdf', size: 5000, charset: null },
      ],
      attachments: [
        { filename: 'contract.pdf', content_type: 'application/pdf', size: 5000, content_id: null },
      ],
    };
    const auth = {
      spf: 'pass',
      dkim: [{ domain: 'example.org', selector: 's1', result: 'pass', aligned: true }],
      dmarc: { result: 'pass', policy: 'reject', domain: 'example.org' },
      arc: 'none',
      authentication_results: 'mx.acme.test; spf=pass; dkim=pass; dmarc=pass',
      action: 'accept',
    };
    const id = await seed(a, {
      mailFrom: 'dana@example.org',
      fromName: 'Dana',
      rcptTo: ['sales@acme.test', 'team@acme.test'],
      subject: 'Contract',
      body: 'Here is the signed contract.',
      details,
      auth,
    });
    const forward = await seed(a, {
      direction: 'outbound',
      status: 'failed',
      parentId: id,
      mailFrom: 'srs0=abc@acme.test',
      rcptTo: ['dana.private@example.com'],
    });
    await query(`update messages set error = '550 mailbox unavailable' where id = $1`, [forward]);
    await query(
      `insert into message_routes (id, organization_id, message_id, recipient, route, target_id, action,
         destination, detail)
       values ($1, $2, $3, 'sales@acme.test', 'mailbox', $4, 'store', 'INBOX', null),
              ($5, $2, $3, 'team@acme.test', 'alias', $6, 'forward', 'dana.private@example.com', 'alias team')`,
      [newId(), a.orgId, id, randomUUID(), newId(), randomUUID()],
    );

    const m = await get(`/v1/messages/${id}`);
    assert.equal(m.id, id);
    assert.equal(m.direction, 'inbound');
    assert.equal(m.status, 'delivered');
    assert.equal(m.domain_id, domainId);
    assert.equal(m.mail_from, 'dana@example.org');
    assert.deepEqual(m.rcpt_to, ['sales@acme.test', 'team@acme.test']);
    assert.equal(m.remote_ip, '192.0.2.7');
    assert.equal(m.helo, 'mx.example.net');
    assert.equal(m.tls, true);
    assert.equal(m.message_id_header, `<${id}@example.net>`);
    assert.equal(m.from_address, 'dana@example.org');
    assert.equal(m.from_name, 'Dana');
    assert.equal(m.subject, 'Contract');
    assert.equal(m.text, 'Here is the signed contract.');
    assert.equal(typeof m.received_at, 'string');
    assert.equal(m.error, null);
    assert.deepEqual(m.headers, details.headers);
    assert.deepEqual(m.parts, details.parts);
    assert.deepEqual(m.attachments, details.attachments);
    assert.deepEqual(m.authentication, auth);
    assert.deepEqual(
      m.routes.map((r: any) => [r.recipient, r.route, r.action, r.destination, r.detail]),
      [
        ['sales@acme.test', 'mailbox', 'store', 'INBOX', null],
        ['team@acme.test', 'alias', 'forward', 'dana.private@example.com', 'alias team'],
      ],
    );
    assert.equal(m.deliveries.length, 1);
    assert.deepEqual(
      { ...m.deliveries[0], created_at: undefined, updated_at: undefined },
      {
        id: forward,
        recipients: ['dana.private@example.com'],
        mail_from: 'srs0=abc@acme.test',
        status: 'failed',
        error: '550 mailbox unavailable',
        created_at: undefined,
        updated_at: undefined,
      },
    );
    const copy = await get(`/v1/messages/${forward}`);
    assert.equal(copy.parent_id, id);
    assert.deepEqual(copy.headers, []);
    assert.equal(copy.authentication, null);

    await get(`/v1/messages/${randomUUID()}`, a, 404);
    await get('/v1/messages/not-a-uuid', a, 400);
  });

  test('raw: the exact bytes as message/rfc822', async () => {
    const bytes = Buffer.concat([
      Buffer.from('From: x@example.org\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\r\n'),
      Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x0d, 0x0a, 0x2e, 0x0d, 0x0a]),
      Buffer.from('ünïcode\n'),
    ]);
    const id = await seed(a, { raw: bytes });
    const res = await t.app.http!.inject({
      method: 'GET',
      url: `/v1/messages/${id}/raw`,
      headers: { authorization: `Bearer ${a.token}` },
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'message/rfc822');
    assert.equal(res.headers['content-disposition'], `attachment; filename="${id}.eml"`);
    assert.ok(res.rawPayload.equals(bytes), 'byte for byte');

    await query('delete from blobs where id = (select blob_id from messages where id = $1)', [id]);
    await get(`/v1/messages/${id}/raw`, a, 404);
  });

  test('thread: oldest first; 404 for an unknown thread', async () => {
    const thread = randomUUID();
    const first = await seed(a, { threadId: thread, receivedAt: new Date(now - 3 * HOUR), subject: 'Plan' });
    const third = await seed(a, {
      threadId: thread,
      receivedAt: new Date(now - 1 * HOUR),
      subject: 'Re: Re: Plan',
    });
    const second = await seed(a, {
      threadId: thread,
      receivedAt: new Date(now - 2 * HOUR),
      subject: 'Re: Plan',
    });
    await seed(a, { threadId: randomUUID(), subject: 'Elsewhere' });
    const body = await get(`/v1/messages/thread/${thread}`);
    assert.equal(body.thread_id, thread);
    assert.deepEqual(ids(body), [first, second, third]);
    await get(`/v1/messages/thread/${randomUUID()}`, a, 404);
    await get(`/v1/messages/thread/${thread}`, b, 404);
  });

  test('status: set by hand to a final status, with an event; 422 for pipeline statuses', async () => {
    const id = await seed(a, { status: 'pending' });
    const res = await t.call('PATCH', `/v1/messages/${id}/status`, {
      token: a.token,
      body: { status: 'quarantined' },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'quarantined');
    assert.equal((await get(`/v1/messages/${id}`)).status, 'quarantined');
    const [event] = (await eventsOf(a, 'message.status_changed')).filter(
      (e: any) => e.data.message_id === id,
    );
    assert.deepEqual(event.data, {
      message_id: id,
      direction: 'inbound',
      status: 'quarantined',
      previous_status: 'pending',
    });

    for (const status of ['delivered', 'failed', 'rejected', 'quarantined']) {
      const ok = await t.call('PATCH', `/v1/messages/${id}/status`, { token: a.token, body: { status } });
      assert.equal(ok.status, 200, status);
      assert.equal(ok.body.status, status);
    }
    for (const status of ['pending', 'processing', 'bounced']) {
      const refused = await t.call('PATCH', `/v1/messages/${id}/status`, {
        token: a.token,
        body: { status },
      });
      assert.equal(refused.status, 422, status);
      assert.equal(refused.body.code, 'validation_failed');
    }
    assert.equal((await get(`/v1/messages/${id}`)).status, 'quarantined');
    const unknown = await t.call('PATCH', `/v1/messages/${id}/status`, {
      token: a.token,
      body: { status: 'sent' },
    });
    assert.equal(unknown.status, 400);
    const missing = await t.call('PATCH', `/v1/messages/${randomUUID()}/status`, {
      token: a.token,
      body: { status: 'failed' },
    });
    assert.equal(missing.status, 404);
  });

  test('delete: message, routes, mailbox copies (usage given back) and blob; forwards stay', async () => {
    const mailbox = await t.call('POST', '/v1/mailboxes', {
      token: a.token,
      body: { address: 'keeper@acme.test' },
    });
    assert.equal(mailbox.status, 201, JSON.stringify(mailbox.body));
    const other = await t.call('POST', '/v1/mailboxes', {
      token: a.token,
      body: { address: 'other@acme.test' },
    });
    const folderOf = (m: any) => m.folders.find((f: any) => f.name === 'INBOX').id;
    const id = await seed(a, {
      raw: Buffer.alloc(1500, 'm'),
      rcptTo: ['keeper@acme.test', 'other@acme.test'],
    });
    const kept = await seed(a, { raw: Buffer.alloc(700, 'k') });
    const forward = await seed(a, { direction: 'outbound', parentId: id });
    await query(
      `insert into mailbox_messages (id, organization_id, mailbox_id, folder_id, message_id, uid, size)
       values ($1, $2, $3, $4, $5, 1, 1500), ($6, $2, $3, $4, $7, 2, 700), ($8, $2, $9, $10, $5, 1, 1500)`,
      [
        newId(),
        a.orgId,
        mailbox.body.id,
        folderOf(mailbox.body),
        id,
        newId(),
        kept,
        newId(),
        other.body.id,
        folderOf(other.body),
      ],
    );
    await query(`update mailboxes set used_bytes = $2 where id = $1`, [mailbox.body.id, 2200]);
    await query(`update mailboxes set used_bytes = $2 where id = $1`, [other.body.id, 1000]);
    await query(
      `insert into message_routes (id, organization_id, message_id, recipient, route, target_id, action)
       values ($1, $2, $3, 'keeper@acme.test', 'mailbox', $4, 'store')`,
      [newId(), a.orgId, id, mailbox.body.id],
    );
    const {
      rows: [{ blob_id: blobId }],
    } = await query('select blob_id from messages where id = $1', [id]);

    const res = await t.call('DELETE', `/v1/messages/${id}`, { token: a.token });
    assert.equal(res.status, 204, JSON.stringify(res.body));
    await get(`/v1/messages/${id}`, a, 404);
    const count = async (sql: string, params: unknown[]) => Number((await query(sql, params)).rows[0].n);
    assert.equal(await count('select count(*) as n from blobs where id = $1', [blobId]), 0, 'blob');
    assert.equal(await count('select count(*) as n from mailbox_messages where message_id = $1', [id]), 0);
    assert.equal(await count('select count(*) as n from message_routes where message_id = $1', [id]), 0);
    assert.equal(await count('select count(*) as n from mailbox_messages where message_id = $1', [kept]), 1);
    assert.equal((await get(`/v1/mailboxes/${mailbox.body.id}`)).used_bytes, 700);
    assert.equal((await get(`/v1/mailboxes/${other.body.id}`)).used_bytes, 0, 'never below zero');
    const copy = await get(`/v1/messages/${forward}`);
    assert.equal(copy.parent_id, null, 'the forwarded copy stays, detached');
    assert.ok((await get(`/v1/messages/${kept}`)).id);
    const [event] = (await eventsOf(a, 'message.deleted')).filter((e: any) => e.data.message_id === id);
    assert.deepEqual(event.data, { message_id: id, direction: 'inbound', status: 'delivered' });
    assert.equal((await t.call('DELETE', `/v1/messages/${id}`, { token: a.token })).status, 404);
  });

  test("another organisation's messages and domains are 404, and it lists none of them", async () => {
    const id = await seed(a, { subject: 'Alpha secret', body: 'confidential' });
    const thread = randomUUID();
    await seed(a, { threadId: thread });
    for (const path of [
      `/v1/messages/${id}`,
      `/v1/messages/${id}/raw`,
      `/v1/messages/thread/${thread}`,
      `/v1/domains/${domainId}/stats`,
    ]) {
      await get(path, b, 404);
    }
    const patch = await t.call('PATCH', `/v1/messages/${id}/status`, {
      token: b.token,
      body: { status: 'failed' },
    });
    assert.equal(patch.status, 404);
    assert.equal((await t.call('DELETE', `/v1/messages/${id}`, { token: b.token })).status, 404);
    assert.equal((await get(`/v1/messages/${id}`)).status, 'delivered', 'unchanged');
    assert.ok(!ids(await get('/v1/messages?page_size=200', b)).includes(id));
    assert.ok(!ids(await get('/v1/messages/recent?limit=100', b)).includes(id));
    assert.equal((await get('/v1/messages/search?q=confidential', b)).total, 0);
    assert.deepEqual(ids(await get('/v1/messages/search?q=confidential', a)), [id]);
    assert.ok(!ids(await get(`/v1/messages?domain_id=${domainId}`, b)).includes(id));
  });

  test('an API key needs messages:write to change or delete, messages:read to read', async () => {
    const id = await seed(a);
    const key = async (scopes: string[]) => {
      const res = await t.call('POST', `/v1/organizations/${a.orgId}/api-keys`, {
        token: a.token,
        body: { name: scopes.join(' '), scopes },
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body.key as string;
    };
    const reader = await key(['messages:read']);
    const writer = await key(['messages:write']);
    const unrelated = await key(['domains:read']);
    assert.equal((await t.call('GET', `/v1/messages/${id}`, { token: reader })).status, 200);
    assert.equal((await t.call('GET', '/v1/messages', { token: unrelated })).status, 403);
    const patch = await t.call('PATCH', `/v1/messages/${id}/status`, {
      token: reader,
      body: { status: 'failed' },
    });
    assert.equal(patch.status, 403);
    assert.match(patch.body.detail, /messages:write/);
    assert.equal((await t.call('DELETE', `/v1/messages/${id}`, { token: reader })).status, 403);
    assert.equal((await get(`/v1/messages/${id}`)).status, 'delivered');
    const ok = await t.call('PATCH', `/v1/messages/${id}/status`, {
      token: writer,
      body: { status: 'failed' },
    });
    assert.equal(ok.status, 200);
    assert.equal((await t.call('DELETE', `/v1/messages/${id}`, { token: writer })).status, 204);
  });

  test('domain stats: by status and direction, size, per day with empty days', async () => {
    const org = await signUpWithOrg(t, 'domain-stats@example.com', 'Domain stats');
    const d = await addDomain(org, 'stats.test');
    const elsewhere = await addDomain(org, 'elsewhere.test');
    const day = (n: number) => new Date(now - n * DAY);
    await seed(org, { domainId: d, receivedAt: day(0), raw: Buffer.alloc(10) });
    await seed(org, {
      domainId: d,
      receivedAt: day(0),
      raw: Buffer.alloc(20),
      direction: 'outbound',
      status: 'bounced',
    });
    await seed(org, { domainId: d, receivedAt: day(2), raw: Buffer.alloc(30), status: 'rejected' });
    await seed(org, { domainId: d, receivedAt: day(40), raw: Buffer.alloc(40) });
    await seed(org, { domainId: elsewhere, receivedAt: day(1), raw: Buffer.alloc(50) });

    const stats = await get(`/v1/domains/${d}/stats`, org);
    assert.equal(stats.domain_id, d);
    assert.equal(stats.name, 'stats.test');
    assert.equal(stats.total, 3, 'the last 30 days');
    assert.equal(stats.total_size_bytes, 60);
    assert.deepEqual(stats.by_direction, { inbound: 2, outbound: 1 });
    assert.deepEqual(stats.by_status, {
      pending: 0,
      processing: 0,
      delivered: 1,
      failed: 0,
      bounced: 1,
      rejected: 1,
      quarantined: 0,
    });
    assert.equal(stats.daily.length, 30);
    assert.equal(stats.daily.at(-1).date, dateOf(day(0)));
    const perDay = Object.fromEntries(stats.daily.map((x: any) => [x.date, x.messages]));
    assert.equal(perDay[dateOf(day(0))], 2);
    assert.equal(perDay[dateOf(day(1))], 0);
    assert.equal(perDay[dateOf(day(2))], 1);

    const since = dateOf(day(45));
    const longer = await get(`/v1/domains/${d}/stats?since=${since}`, org);
    assert.equal(longer.total, 4);
    assert.equal(longer.daily[0].date, since);
    assert.equal(
      longer.daily.reduce((n: number, x: any) => n + x.messages, 0),
      4,
    );
    await get(`/v1/domains/${d}/stats?since=${dateOf(day(400))}`, org, 422);
    await get(`/v1/domains/${randomUUID()}/stats`, org, 404);
    await get(`/v1/domains/${bDomainId}/stats`, org, 404);
  });

  test('statistics: a daily series with empty days, the top domains and aliases', async () => {
    const org = await signUpWithOrg(t, 'statistics@example.com', 'Statistics');
    const d1 = await addDomain(org, 'busy.test');
    const d2 = await addDomain(org, 'quiet.test');
    const aliasOf = async (address: string) => {
      const res = await t.call('POST', '/v1/aliases', {
        token: org.token,
        body: { address, targets: ['someone@example.com'] },
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body.id as string;
    };
    const sales = await aliasOf('sales@busy.test');
    const help = await aliasOf('help@quiet.test');
    const at = (date: string, hour = 12) => new Date(`${date}T${String(hour).padStart(2, '0')}:00:00Z`);
    const route = async (messageId: string, aliasId: string, recipient: string) =>
      query(
        `insert into message_routes (id, organization_id, message_id, recipient, route, target_id, action)
         values ($1, $2, $3, $4, 'alias', $5, 'forward')`,
        [newId(), org.orgId, messageId, recipient, aliasId],
      );
    const m1 = await seed(org, { domainId: d1, receivedAt: at('2025-03-01', 0) });
    await route(m1, sales, 'sales@busy.test');
    await route(m1, help, 'help@quiet.test');
    const m2 = await seed(org, { domainId: d1, receivedAt: at('2025-03-01', 23), status: 'failed' });
    await route(m2, sales, 'sales@busy.test');
    await seed(org, { domainId: d1, receivedAt: at('2025-03-03'), direction: 'outbound', status: 'bounced' });
    await seed(org, { domainId: d2, receivedAt: at('2025-03-03'), status: 'quarantined' });
    await seed(org, { domainId: d2, receivedAt: at('2025-03-04'), status: 'rejected' });
    await seed(org, { domainId: d1, receivedAt: at('2025-03-05') }); // after the range
    await seed(org, { domainId: d1, receivedAt: at('2025-02-28', 23) }); // before it

    const s = await get('/v1/statistics?since=2025-03-01&until=2025-03-04', org);
    assert.equal(s.since, '2025-03-01T00:00:00.000Z');
    assert.equal(s.until, '2025-03-05T00:00:00.000Z', 'a date as the end means its end');
    assert.deepEqual(s.daily, [
      {
        date: '2025-03-01',
        inbound: 2,
        outbound: 0,
        delivered: 1,
        failed: 1,
        rejected: 0,
        quarantined: 0,
        bounced: 0,
      },
      {
        date: '2025-03-02',
        inbound: 0,
        outbound: 0,
        delivered: 0,
        failed: 0,
        rejected: 0,
        quarantined: 0,
        bounced: 0,
      },
      {
        date: '2025-03-03',
        inbound: 1,
        outbound: 1,
        delivered: 0,
        failed: 0,
        rejected: 0,
        quarantined: 1,
        bounced: 1,
      },
      {
        date: '2025-03-04',
        inbound: 1,
        outbound: 0,
        delivered: 0,
        failed: 0,
        rejected: 1,
        quarantined: 0,
        bounced: 0,
      },
    ]);
    assert.deepEqual(s.top_domains, [
      { domain_id: d1, name: 'busy.test', messages: 3 },
      { domain_id: d2, name: 'quiet.test', messages: 2 },
    ]);
    assert.deepEqual(s.top_aliases, [
      { alias_id: sales, address: 'sales@busy.test', messages: 2 },
      { alias_id: help, address: 'help@quiet.test', messages: 1 },
    ]);

    const defaults = await get('/v1/statistics', org);
    assert.equal(defaults.daily.length, 30);
    assert.equal(defaults.daily.at(-1).date, dateOf(new Date()));
    assert.ok(defaults.daily.every((x: any) => x.inbound === 0 && x.outbound === 0));
    assert.deepEqual(defaults.top_domains, []);

    await get('/v1/statistics?since=2024-01-01&until=2025-03-01', org, 422);
    await get('/v1/statistics?since=2025-03-02&until=2025-03-01', org, 422);
    const other = await get('/v1/statistics?since=2025-03-01&until=2025-03-04', b);
    assert.deepEqual(other.top_domains, []);
    assert.ok(other.daily.every((x: any) => x.inbound === 0));
  });
});
