// The Cloudflare DNS adapter through the official SDK against a local server that keeps Cloudflare's
// API contract: what it stores, what it asks for, and how each kind of refusal reaches the caller.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { ProviderError, type ProviderErrorCode } from '../../src/providers/errors.ts';
import { cloudflareProvider } from '../../src/providers/dns/cloudflare.ts';
import type { DnsProvider, DnsZone } from '../../src/providers/dns/types.ts';
import { type CloudflareServer, startCloudflareServer } from '../support/cloudflare-server.ts';

// A 2048-bit DKIM public key is about this long: too long for one TXT string.
const DKIM_VALUE = `v=DKIM1; k=rsa; p=${'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'.repeat(9)}`.slice(
  0,
  400,
);

let server: CloudflareServer;
let provider: DnsProvider;

before(async () => {
  server = await startCloudflareServer();
  provider = cloudflareProvider({ api_token: server.token }, { baseURL: server.baseURL });
});

after(() => server.close());

let zoneCounter = 0;
/** A zone of its own for each test, so records never leak between tests. */
async function freshZone(): Promise<DnsZone> {
  zoneCounter++;
  const name = `zone${zoneCounter}.example`;
  return { id: server.addZone(name), name };
}

async function rejectsWith(
  promise: Promise<unknown>,
  code: ProviderErrorCode,
  message?: RegExp,
): Promise<ProviderError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ProviderError, `expected a ProviderError, got ${error}`);
    assert.equal(error.code, code, error.message);
    if (message) assert.match(error.message, message);
    assert.ok(!error.message.includes(server.token), 'the token leaked into an error message');
    return error;
  }
  assert.fail(`expected ${code}`);
}

function writes(since: number) {
  return server.requests.slice(since).filter((r) => r.method !== 'GET');
}

test('verify accepts the configured token', async () => {
  await provider.verify();
  assert.equal(server.requests.at(-1)?.path, '/user/tokens/verify');
});

test('verify refuses a wrong token and a malformed one as provider_auth_failed', async () => {
  const wrong = cloudflareProvider({ api_token: 'x'.repeat(40) }, { baseURL: server.baseURL });
  const error = await rejectsWith(wrong.verify(), 'provider_auth_failed', /Invalid API Token \(code 1000\)/);
  assert.ok(!error.message.includes('x'.repeat(40)));
  // Cloudflare answers a malformed Authorization header with 400, not 401.
  const malformed = cloudflareProvider({ api_token: 'not a token!' }, { baseURL: server.baseURL });
  await rejectsWith(malformed.verify(), 'provider_auth_failed', /Invalid format for Authorization header/);
  // The other endpoints refuse a wrong token with 403.
  await rejectsWith(
    wrong.findZone('example.com'),
    'provider_auth_failed',
    /Invalid access token \(code 9109\)/,
  );
});

test('findZone finds the zone of an apex and of a subdomain, asking longest name first', async () => {
  const id = server.addZone('findme.co.uk');
  assert.deepEqual(await provider.findZone('findme.co.uk'), { id, name: 'findme.co.uk' });

  const start = server.requests.length;
  assert.deepEqual(await provider.findZone('Mail.FindMe.co.uk.'), { id, name: 'findme.co.uk' });
  const asked = server.requests.slice(start).map((r) => r.query.name);
  assert.deepEqual(asked, ['mail.findme.co.uk', 'findme.co.uk']);
});

test('findZone prefers a delegated subzone over its parent', async () => {
  server.addZone('parent.example');
  const childId = server.addZone('child.parent.example');
  assert.deepEqual(await provider.findZone('mail.child.parent.example'), {
    id: childId,
    name: 'child.parent.example',
  });
});

test('findZone without a matching zone is zone_not_found', async () => {
  await rejectsWith(
    provider.findZone('mail.nowhere.example'),
    'zone_not_found',
    /^no Cloudflare zone for mail\.nowhere\.example in this account$/,
  );
});

test('a long TXT value is stored split into quoted strings and read back joined', async () => {
  const zone = await freshZone();
  const name = `mailroom._domainkey.${zone.name}`;
  const created = await provider.createRecord(
    zone,
    { type: 'TXT', name, content: DKIM_VALUE, ttl: 3600 },
    'managed by mailroom',
  );
  assert.deepEqual(created, {
    id: created.id,
    type: 'TXT',
    name,
    content: DKIM_VALUE,
    ttl: 3600,
    comment: 'managed by mailroom',
  });
  assert.match(created.id, /^[0-9a-f]{32}$/);

  const [stored] = server.records(zone.name);
  const strings = [...stored.content.matchAll(/"([^"]*)"/g)].map((m) => m[1]);
  assert.ok(strings.length > 1);
  assert.ok(strings.every((s) => Buffer.byteLength(s) <= 255));
  assert.equal(strings.join(''), DKIM_VALUE);

  assert.deepEqual(await provider.listRecords(zone, name, 'TXT'), [created]);
});

test('update overwrites content and comment; delete removes the record and tolerates a second delete', async () => {
  const zone = await freshZone();
  const name = `_dmarc.${zone.name}`;
  const created = await provider.createRecord(
    zone,
    { type: 'TXT', name, content: 'v=DMARC1; p=none', ttl: 1 },
    'old',
  );
  const updated = await provider.updateRecord(
    zone,
    created.id,
    { type: 'TXT', name, content: 'v=DMARC1; p=quarantine', ttl: 300 },
    'mailroom',
  );
  assert.deepEqual(updated, { ...created, content: 'v=DMARC1; p=quarantine', ttl: 300, comment: 'mailroom' });
  assert.deepEqual(await provider.listRecords(zone, name, 'TXT'), [updated]);
  assert.equal(
    server.requests.filter((r) => r.method === 'PUT').at(-1)?.path,
    `/zones/${zone.id}/dns_records/${created.id}`,
  );

  await provider.deleteRecord(zone, created.id);
  assert.deepEqual(await provider.listRecords(zone, name, 'TXT'), []);
  await provider.deleteRecord(zone, created.id);
});

test('MX records carry their priority and CNAME records are written unproxied', async () => {
  const zone = await freshZone();
  const mx = await provider.createRecord(
    zone,
    { type: 'MX', name: zone.name, content: 'mx1.mailroom.example', ttl: 3600, priority: 10 },
    'mailroom',
  );
  assert.equal(mx.priority, 10);
  const backup = await provider.createRecord(
    zone,
    { type: 'MX', name: zone.name, content: 'mx2.mailroom.example', ttl: 3600, priority: 20 },
    'mailroom',
  );
  const listed = await provider.listRecords(zone, zone.name, 'MX');
  assert.deepEqual(
    listed.sort((a, b) => (a.priority ?? 0) - (b.priority ?? 0)),
    [mx, backup],
  );

  const cname = await provider.createRecord(
    zone,
    { type: 'CNAME', name: `autoconfig.${zone.name}`, content: 'autoconfig.mailroom.example', ttl: 3600 },
    'mailroom',
  );
  assert.equal(cname.content, 'autoconfig.mailroom.example');
  assert.equal(cname.priority, undefined);
  assert.equal(server.records(zone.name).find((r) => r.id === cname.id)?.proxied, false);
  assert.deepEqual(await provider.listRecords(zone, `autoconfig.${zone.name}`, 'CNAME'), [cname]);
});

test('listRecords returns only records of that exact name and type', async () => {
  const zone = await freshZone();
  const name = `mail.${zone.name}`;
  const ours = server.addRecord(zone.name, { type: 'TXT', name: 'mail', content: '"v=spf1 -all"', ttl: 300 });
  server.addRecord(zone.name, { type: 'A', name: 'mail', content: '192.0.2.10' });
  server.addRecord(zone.name, { type: 'TXT', name: 'xmail', content: 'other' });
  server.addRecord(zone.name, { type: 'TXT', name: 'a.mail', content: 'deeper' });
  server.addRecord(zone.name, { type: 'TXT', name: '@', content: 'apex' });

  assert.deepEqual(await provider.listRecords(zone, name, 'TXT'), [
    { id: ours.id, type: 'TXT', name, content: 'v=spf1 -all', ttl: 300, comment: null },
  ]);
  assert.deepEqual(await provider.listRecords(zone, `nothing.${zone.name}`, 'TXT'), []);
});

test('listRecords reads every page and no more', async () => {
  const zone = await freshZone();
  const name = `many.${zone.name}`;
  for (let i = 0; i < 150; i++) server.addRecord(zone.name, { type: 'TXT', name, content: `value-${i}` });
  const start = server.requests.length;
  const records = await provider.listRecords(zone, name, 'TXT');
  assert.equal(records.length, 150);
  assert.equal(new Set(records.map((r) => r.content)).size, 150);
  assert.deepEqual(
    server.requests.slice(start).map((r) => r.query.page ?? '1'),
    ['1', '2'],
  );
});

test('listing twice writes nothing', async () => {
  const zone = await freshZone();
  await provider.createRecord(
    zone,
    { type: 'TXT', name: zone.name, content: 'v=spf1 -all', ttl: 1 },
    'mailroom',
  );
  const start = server.requests.length;
  await provider.listRecords(zone, zone.name, 'TXT');
  await provider.listRecords(zone, zone.name, 'TXT');
  assert.deepEqual(writes(start), []);
});

test('a rate limit that outlasts the one retry is provider_rate_limited with Retry-After', async () => {
  const start = server.requests.length;
  server.rateLimitNext(2, 0);
  const error = await rejectsWith(provider.verify(), 'provider_rate_limited');
  assert.equal(error.retryAfterSeconds, 0);
  assert.equal(server.requests.length - start, 2, 'the SDK retries a 429 once');
});

test('a long Retry-After is reported at once instead of waited out', async () => {
  const start = server.requests.length;
  const began = Date.now();
  server.rateLimitNext(1, 120);
  const error = await rejectsWith(
    provider.findZone('example.com'),
    'provider_rate_limited',
    /retry in 120 s/,
  );
  assert.equal(error.retryAfterSeconds, 120);
  assert.equal(server.requests.length - start, 1);
  assert.ok(Date.now() - began < 5000);
});

test('a short rate limit is retried and the call succeeds', async () => {
  server.rateLimitNext(1, 0);
  await provider.verify();
});

test('records Cloudflare refuses are provider_rejected with its message and code', async () => {
  const zone = await freshZone();
  await rejectsWith(
    provider.createRecord(zone, { type: 'TXT', name: zone.name, content: 'v=spf1 -all', ttl: 5 }, 'mailroom'),
    'provider_rejected',
    /^Cloudflare refused the TXT record for zone\d+\.example: Invalid TTL.* \(code 9021\)$/,
  );
  await rejectsWith(
    provider.createRecord(
      zone,
      { type: 'MX', name: zone.name, content: 'mx.mailroom.example', ttl: 1 },
      'mailroom',
    ),
    'provider_rejected',
    /Priority must be set for MX records.* \(code 9100\)/,
  );
  await provider.createRecord(
    zone,
    { type: 'TXT', name: zone.name, content: 'v=spf1 -all', ttl: 1 },
    'mailroom',
  );
  await rejectsWith(
    provider.createRecord(zone, { type: 'TXT', name: zone.name, content: 'v=spf1 -all', ttl: 1 }, 'mailroom'),
    'provider_rejected',
    /An identical record already exists\. \(code 81058\)/,
  );
  await rejectsWith(
    provider.createRecord(
      zone,
      { type: 'CNAME', name: zone.name, content: 'elsewhere.example', ttl: 1 },
      'mailroom',
    ),
    'provider_rejected',
    /\(code 81053\)/,
  );
  await rejectsWith(
    provider.createRecord(zone, { type: 'TXT', name: zone.name, content: 'x', ttl: 1 }, 'c'.repeat(101)),
    'provider_rejected',
    /Comment must be at most 100 characters/,
  );
});

test('a zone Cloudflare does not know is provider_rejected', async () => {
  await rejectsWith(
    provider.listRecords({ id: 'f'.repeat(32), name: 'gone.example' }, 'gone.example', 'TXT'),
    'provider_rejected',
    /\(code 7003\)/,
  );
});

test('an unreachable API is provider_unavailable', async () => {
  const closed = net.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const { port } = closed.address() as net.AddressInfo;
  await new Promise<void>((resolve) => closed.close(() => resolve()));

  const unreachable = cloudflareProvider(
    { api_token: server.token },
    { baseURL: `http://127.0.0.1:${port}/client/v4` },
  );
  await rejectsWith(unreachable.verify(), 'provider_unavailable', /could not be reached/);
});

test('an API that does not answer in time is provider_unavailable', async () => {
  const sockets: net.Socket[] = [];
  const silent = net.createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const { port } = silent.address() as net.AddressInfo;
  try {
    const slow = cloudflareProvider(
      { api_token: server.token },
      { baseURL: `http://127.0.0.1:${port}/client/v4`, timeoutMs: 200 },
    );
    await rejectsWith(slow.verify(), 'provider_unavailable', /did not answer in time/);
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
});
