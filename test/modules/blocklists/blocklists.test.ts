// DNS blocklist monitoring through the API, against a loopback DNS server that serves listings,
// non-listings (NXDOMAIN) and error answers for each list.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { expandIpv6, queryName } from '../../../src/modules/blocklists/dnsbl.ts';
import {
  addDomain,
  engine,
  eventsOf,
  orgMaker,
  startTestApp,
  type Org,
  type TestApp,
} from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';

const SETTINGS_IP = '192.0.2.10';
const API_IP = '192.0.2.20';
const V6 = '2001:db8::1';
const v6Name = (zone: string) => `${expandIpv6(V6).split('').reverse().join('.')}.${zone}`;

describe(`blocklists on ${engine}`, () => {
  let t: TestApp;
  let dns: TestDnsServer;
  let org: Org;
  const newOrg = orgMaker('blocklists');

  before(async () => {
    dns = await startDnsServer({
      // The settings IP: two ZEN codes (SBL and XBL), SpamCop, the extra list; not on Barracuda.
      '10.2.0.192.zen.spamhaus.org': { A: ['127.0.0.2', '127.0.0.4'] },
      '10.2.0.192.bl.spamcop.net': { A: ['127.0.0.2'] },
      '10.2.0.192.list.example.org': { A: ['127.0.0.3'] },
      // The API IP: Spamhaus refuses (error code), Barracuda's answer is a hijacked NXDOMAIN, SpamCop never answers.
      '20.2.0.192.zen.spamhaus.org': { A: ['127.255.255.254'] },
      '20.2.0.192.b.barracudacentral.org': { A: ['198.51.100.7'] },
      '20.2.0.192.bl.spamcop.net': { timeout: true },
      [v6Name('zen.spamhaus.org')]: { A: ['127.0.0.10'] },
      'spam.test.dbl.spamhaus.org': { A: ['127.0.1.2'] },
      'spam.test.multi.surbl.org': { A: ['127.0.0.24'] },
      'spam.test.multi.uribl.com': { A: ['127.0.0.6'] },
      'refused.test.dbl.spamhaus.org': { A: ['127.255.255.252'] },
      'refused.test.multi.surbl.org': { A: ['127.0.0.1'] },
      'refused.test.multi.uribl.com': { A: ['127.0.0.1'] },
      'abused.test.dbl.spamhaus.org': { A: ['127.0.1.103'] },
    });
    t = await startTestApp({
      env: {
        MAILROOM_DNS_SERVERS: dns.address,
        MAILROOM_OUTBOUND_IPS: SETTINGS_IP,
        MAILROOM_BLOCKLISTS_EXTRA: 'ip:list.example.org',
        MAILROOM_BLOCKLISTS_TIMEOUT: '300ms',
      },
    });
    org = await newOrg(t);
    for (const name of ['spam.test', 'clean.test', 'refused.test', 'abused.test'])
      await addDomain(t, org, name);
  });
  after(async () => {
    await t?.close();
    await dns?.close();
  });

  const api = (method: string, url: string, body?: unknown, token = org.token) =>
    t.call(method, url, { token, body });
  const resultOf = (status: any, target: string, list: string) =>
    status.items.find((i: any) => i.target === target)?.results.find((r: any) => r.list === list);

  test('query names: reversed octets, reversed IPv6 nibbles, domain under the zone', () => {
    assert.equal(queryName('127.0.0.2', 'ip', 'zen.spamhaus.org'), '2.0.0.127.zen.spamhaus.org');
    assert.equal(
      queryName('2001:db8::1', 'ip', 'zen.spamhaus.org'),
      '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.spamhaus.org',
    );
    assert.equal(queryName('example.org', 'domain', 'dbl.spamhaus.org'), 'example.org.dbl.spamhaus.org');
  });

  test('the catalogue lists the built-in and extra lists with their delisting links', async () => {
    const res = await api('GET', '/v1/blocklists');
    assert.equal(res.status, 200);
    const zones = res.body.items.map((l: any) => l.zone);
    for (const z of [
      'zen.spamhaus.org',
      'b.barracudacentral.org',
      'bl.spamcop.net',
      'dbl.spamhaus.org',
      'multi.surbl.org',
      'multi.uribl.com',
      'list.example.org',
    ]) {
      assert.ok(zones.includes(z), z);
    }
    assert.ok(
      res.body.items.find((l: any) => l.zone === 'zen.spamhaus.org').delist_url.startsWith('https://'),
    );
  });

  test('IPs are validated; bad ones get 422', async () => {
    assert.equal((await api('POST', '/v1/blocklists/ips', { ip: 'not-an-ip' })).status, 422);
    assert.equal((await api('POST', '/v1/blocklists/ips', { ip: '1.2.3.256' })).status, 422);
    assert.equal((await api('POST', '/v1/blocklists/ips', { ip: API_IP })).status, 201);
    assert.equal((await api('POST', '/v1/blocklists/ips', { ip: API_IP })).status, 409);
    const v6 = await api('POST', '/v1/blocklists/ips', { ip: '2001:DB8:0:0::1' });
    assert.equal(v6.status, 201);
    assert.equal(v6.body.ip, V6);
    const listed = await api('GET', '/v1/blocklists/ips');
    assert.equal(listed.status, 200);
    assert.deepEqual(
      listed.body.items.map((i: any) => i.ip),
      [API_IP, V6].sort(),
    );
  });

  test('a check reads each list’s codes; errors are never listings', async () => {
    const res = await api('POST', '/v1/blocklists/check', {});
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const s = res.body;

    const zen = resultOf(s, SETTINGS_IP, 'zen.spamhaus.org');
    assert.equal(zen.status, 'listed');
    assert.equal(zen.code, '127.0.0.2,127.0.0.4');
    assert.match(zen.meaning, /SBL/);
    assert.match(zen.meaning, /XBL/);
    assert.ok(zen.listed_since);
    assert.equal(resultOf(s, SETTINGS_IP, 'b.barracudacentral.org').status, 'clear');
    assert.equal(resultOf(s, SETTINGS_IP, 'bl.spamcop.net').status, 'listed');
    assert.equal(resultOf(s, SETTINGS_IP, 'list.example.org').status, 'listed');
    assert.equal(s.items.find((i: any) => i.target === SETTINGS_IP).source, 'settings');

    // Spamhaus's 127.255.255.254, an answer outside 127/8, a timeout: errors, not listed.
    const refused = resultOf(s, API_IP, 'zen.spamhaus.org');
    assert.deepEqual([refused.status, refused.listed, refused.code], ['error', false, '127.255.255.254']);
    assert.match(refused.error, /public or open resolver/);
    const hijacked = resultOf(s, API_IP, 'b.barracudacentral.org');
    assert.deepEqual([hijacked.status, hijacked.listed], ['error', false]);
    assert.match(hijacked.error, /outside 127/);
    const timedOut = resultOf(s, API_IP, 'bl.spamcop.net');
    assert.deepEqual([timedOut.status, timedOut.listed], ['error', false]);
    assert.equal(s.items.find((i: any) => i.target === API_IP).listed, false);

    // IPv6: the nibble query; lists without IPv6 support are not asked.
    const v6 = s.items.find((i: any) => i.target === V6);
    assert.deepEqual(v6.results.map((r: any) => r.list).sort(), ['list.example.org', 'zen.spamhaus.org']);
    assert.match(resultOf(s, V6, 'zen.spamhaus.org').meaning, /PBL/);

    // Domain lists: DBL codes, SURBL and URIBL bitmasks.
    assert.equal(resultOf(s, 'spam.test', 'dbl.spamhaus.org').meaning, 'spam domain');
    assert.equal(
      resultOf(s, 'abused.test', 'dbl.spamhaus.org').meaning,
      'abused legitimate domain: spammed redirector or URL shortener',
    );
    assert.equal(resultOf(s, 'spam.test', 'multi.surbl.org').meaning, 'PH: phishing, MW: malware');
    assert.equal(
      resultOf(s, 'spam.test', 'multi.uribl.com').meaning,
      'black: actively used by spammers, grey: seen in unsolicited bulk mail',
    );
    for (const list of ['dbl.spamhaus.org', 'multi.surbl.org', 'multi.uribl.com']) {
      assert.equal(resultOf(s, 'clean.test', list).status, 'clear');
      const r = resultOf(s, 'refused.test', list);
      assert.deepEqual([r.status, r.listed], ['error', false], list);
    }
    assert.equal(s.items.find((i: any) => i.target === 'clean.test').kind, 'domain');
    assert.equal(resultOf(s, 'clean.test', 'zen.spamhaus.org'), undefined);

    // The status endpoint answers the same as of the last check.
    const status = await api('GET', '/v1/blocklists/status');
    assert.equal(resultOf(status.body, SETTINGS_IP, 'zen.spamhaus.org').code, '127.0.0.2,127.0.0.4');
  });

  test('listing then delisting emits exactly one listed and one delisted event', async () => {
    const target = 'flap.test';
    await addDomain(t, org, target);
    const listedOf = async () =>
      (await eventsOf(t, org, 'blocklist.listed')).filter((e) => e.data.target === target);
    const delistedOf = async () =>
      (await eventsOf(t, org, 'blocklist.delisted')).filter((e) => e.data.target === target);
    const check = async () => {
      const res = await api('POST', '/v1/blocklists/check', { targets: [target] });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(
        res.body.items.map((i: any) => i.target),
        [target],
      );
      return res.body;
    };

    await check();
    dns.set(`${target}.dbl.spamhaus.org`, { A: ['127.0.1.4'] });
    await check();
    await check();
    const listed = await listedOf();
    assert.equal(listed.length, 1);
    assert.deepEqual(listed[0].data, {
      target,
      kind: 'domain',
      list: 'dbl.spamhaus.org',
      code: '127.0.1.4',
      meaning: 'phishing domain',
      delist_url: 'https://check.spamhaus.org/',
    });
    // An error while listed changes nothing: no delisting.
    dns.set(`${target}.dbl.spamhaus.org`, { servfail: true });
    const failing = await check();
    assert.deepEqual(
      [
        resultOf(failing, target, 'dbl.spamhaus.org').status,
        resultOf(failing, target, 'dbl.spamhaus.org').listed,
      ],
      ['error', true],
    );
    assert.equal((await delistedOf()).length, 0);

    dns.delete(`${target}.dbl.spamhaus.org`);
    await check();
    await check();
    const delisted = await delistedOf();
    assert.equal(delisted.length, 1);
    assert.equal(delisted[0].data.code, '127.0.1.4');
    assert.equal(delisted[0].data.meaning, 'phishing domain');
    assert.equal((await listedOf()).length, 1);
  });

  test('another organisation cannot see, check or delete; the sweep checks organisations with domains', async () => {
    const other = await newOrg(t);
    const seen = await api('GET', '/v1/blocklists/status', undefined, other.token);
    assert.deepEqual(
      seen.body.items.map((i: any) => i.target),
      [SETTINGS_IP],
    );
    assert.deepEqual(seen.body.items[0].results, []);
    assert.equal((await api('DELETE', `/v1/blocklists/ips/${API_IP}`, undefined, other.token)).status, 404);
    assert.equal((await api('POST', '/v1/blocklists/check', { targets: [API_IP] }, other.token)).status, 422);

    await addDomain(t, other, 'other-spam.test');
    dns.set('other-spam.test.dbl.spamhaus.org', { A: ['127.0.1.2'] });
    assert.ok((await t.app.services.blocklists.checkDue()) >= 1);
    const swept = (await api('GET', '/v1/blocklists/status', undefined, other.token)).body;
    assert.equal(resultOf(swept, 'other-spam.test', 'dbl.spamhaus.org').status, 'listed');
    assert.equal(resultOf(swept, SETTINGS_IP, 'zen.spamhaus.org').status, 'listed');
    assert.equal(
      (await eventsOf(t, other, 'blocklist.listed')).some((e) => e.data.target === API_IP),
      false,
    );
    // Checked just now: not due again until the interval has passed.
    assert.equal(await t.app.services.blocklists.checkDue(), 0);

    assert.equal((await api('DELETE', `/v1/blocklists/ips/${API_IP}`)).status, 204);
    assert.equal((await api('DELETE', `/v1/blocklists/ips/${API_IP}`)).status, 404);
    const after = (await api('GET', '/v1/blocklists/status')).body;
    assert.equal(
      after.items.some((i: any) => i.target === API_IP),
      false,
    );
  });

  test('the domains the organisation’s mail links to are checked too, from text and from HTML-only mail', async () => {
    const sender = await newOrg(t);
    const domain = await verifiedDomain(t, sender.token, 'links-sender.test', [dns]);
    dns.set('linked-spam.test.dbl.spamhaus.org', { A: ['127.0.1.2'] });
    const send = async (body: Record<string, unknown>) => {
      const res = await api(
        'POST',
        '/v1/messages/send',
        { from: `news@${domain.name}`, to: ['reader@elsewhere.test'], subject: 'Offer', ...body },
        sender.token,
      );
      assert.equal(res.status, 202, JSON.stringify(res.body));
    };
    await send({ text: 'See https://shop.linked-spam.test/offer?id=1 and http://links-sender.test/about' });
    await send({
      html: '<p><a href="https://click.tracker-clean.test/r/abc">Read</a> <img src="https://cdn.images.test/x.png"></p>',
    });

    const res = await api('POST', '/v1/blocklists/check', {}, sender.token);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const links = res.body.items.filter((i: any) => i.source === 'link').map((i: any) => i.target);
    // Registrable domains of every URL (filters look up image sources too); the organisation's own
    // domain stays a domain target.
    assert.deepEqual(links.sort(), ['images.test', 'linked-spam.test', 'tracker-clean.test']);
    assert.equal(resultOf(res.body, 'linked-spam.test', 'dbl.spamhaus.org').status, 'listed');
    assert.equal(resultOf(res.body, 'tracker-clean.test', 'dbl.spamhaus.org').status, 'clear');
    const listed = await eventsOf(t, sender, 'blocklist.listed');
    assert.ok(listed.some((e) => e.data.target === 'linked-spam.test'));
    // Another organisation's mail is not its business.
    const other = (await api('GET', '/v1/blocklists/status')).body.items;
    assert.equal(
      other.some((i: any) => i.target === 'linked-spam.test'),
      false,
    );
  });
});
