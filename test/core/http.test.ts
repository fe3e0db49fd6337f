import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { signUp, startTestApp, type TestApp } from '../support/app.ts';

let t: TestApp;
before(async () => {
  t = await startTestApp({
    env: { MAILROOM_BODY_LIMIT: '2048', MAILROOM_CORS_ORIGINS: 'https://app.example.com' },
  });
});
after(() => t.close());

describe('operations endpoints', () => {
  it('/health is alive and /ready checks the database and the queue', async () => {
    assert.deepEqual((await t.call('GET', '/health')).body, { status: 'ok' });
    const ready = await t.call('GET', '/ready');
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body, { status: 'ready', checks: { database: true, queue: true } });
  });

  it('/metrics counts requests and latency per route', async () => {
    await t.call('GET', '/health');
    await t.call('GET', '/v1/auth/me');
    const res = await t.call('GET', '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.body, /mailroom_http_requests_total\{method="GET",route="\/health",status="200"\} \d+/);
    assert.match(
      res.body,
      /mailroom_http_requests_total\{method="GET",route="\/v1\/auth\/me",status="401"\} \d+/,
    );
    assert.match(
      res.body,
      /mailroom_http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/health"/,
    );
    assert.match(res.body, /mailroom_process_resident_memory_bytes/);
  });

  it('serves OpenAPI 3.1 with every route documented and secured, and the docs UI', async () => {
    const doc = (await t.call('GET', '/openapi.json')).body;
    assert.equal(doc.openapi, '3.1.0');
    assert.ok(doc.paths['/v1/auth/login'].post.requestBody);
    assert.deepEqual(doc.paths['/v1/organizations'].get.security, [{ bearerAuth: [] }]);
    assert.equal(doc.paths['/v1/auth/login'].post.security, undefined);
    for (const [path, item] of Object.entries<Record<string, { summary?: string }>>(doc.paths)) {
      for (const [method, op] of Object.entries(item))
        assert.ok(op.summary, `${method} ${path} has a summary`);
    }
    const ui = await t.call('GET', '/docs/');
    assert.equal(ui.status, 200);
    assert.match(ui.body, /swagger/i);
  });
});

describe('conventions', () => {
  it('answers unknown routes with problem+json 404', async () => {
    const res = await t.call('GET', '/v1/nothing-here');
    assert.equal(res.status, 404);
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    assert.equal(res.body.type, 'urn:mailroom:problem:not_found');
    assert.equal(res.body.status, 404);
    assert.equal(res.body.code, 'not_found');
  });

  it('generates a request id, or keeps a sane one from the client', async () => {
    const generated = await t.call('GET', '/health');
    assert.match(String(generated.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    assert.equal(
      (await t.call('GET', '/health', { headers: { 'x-request-id': 'trace-123' } })).headers['x-request-id'],
      'trace-123',
    );
    const hostile = await t.call('GET', '/health', { headers: { 'x-request-id': 'bad id\twith spaces' } });
    assert.notEqual(hostile.headers['x-request-id'], 'bad id\twith spaces');
    const problem = await t.call('GET', '/v1/auth/me', { headers: { 'x-request-id': 'trace-456' } });
    assert.equal(problem.body.request_id, 'trace-456');
  });

  it('sets security headers and CORS for the allowed origin only', async () => {
    const res = await t.call('GET', '/health', { headers: { origin: 'https://app.example.com' } });
    assert.equal(res.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.ok(res.headers['strict-transport-security']);
    assert.ok(res.headers['content-security-policy']);
    const other = await t.call('GET', '/health', { headers: { origin: 'https://evil.example' } });
    assert.equal(other.headers['access-control-allow-origin'], undefined);
    const preflight = await t.call('OPTIONS', '/v1/auth/login', {
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' },
    });
    assert.equal(preflight.status, 204);
  });

  it('limits body size with 413 and refuses malformed JSON with 400', async () => {
    const big = await t.call('POST', '/v1/auth/login', {
      rawBody: JSON.stringify({ email: 'a@b.c', password: 'x'.repeat(5000) }),
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(big.status, 413);
    assert.equal(big.body.code, 'body_too_large');
    const broken = await t.call('POST', '/v1/auth/login', {
      rawBody: '{"email":',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(broken.status, 400);
    assert.equal(broken.body.code, 'malformed_body');
    const wrongType = await t.call('POST', '/v1/auth/login', {
      rawBody: 'email=a',
      headers: { 'content-type': 'text/csv' },
    });
    assert.equal(wrongType.status, 415);
  });

  it('paginates lists with the standard envelope', async () => {
    const user = await signUp(t, 'pager@example.com');
    for (let i = 0; i < 3; i++)
      await t.call('POST', '/v1/organizations', { token: user.token, body: { name: `Org ${i}` } });
    const page = await t.call('GET', '/v1/organizations?page=2&page_size=2', { token: user.token });
    assert.deepEqual(
      {
        total: page.body.total,
        page: page.body.page,
        page_size: page.body.page_size,
        total_pages: page.body.total_pages,
        n: page.body.items.length,
      },
      { total: 3, page: 2, page_size: 2, total_pages: 2, n: 1 },
    );
    const bad = await t.call('GET', '/v1/organizations?page_size=1000', { token: user.token });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errors[0].field, 'query.page_size');
  });

  it('believes X-Forwarded-For only from a trusted proxy', async () => {
    const behind = await startTestApp({ env: { MAILROOM_TRUST_PROXY: '127.0.0.1' } });
    try {
      await behind.call('POST', '/v1/auth/login', {
        body: { email: 'x@example.com', password: 'wrong password!' },
        headers: { 'x-forwarded-for': '203.0.113.7' },
      });
      const direct = await t.call('POST', '/v1/auth/login', {
        body: { email: 'x@example.com', password: 'wrong password!' },
        headers: { 'x-forwarded-for': '203.0.113.7' },
      });
      assert.equal(direct.status, 401);
      const ips = async (app: TestApp) =>
        (
          await app.app.database.query<{ ip: string }>(
            "select ip from security_events where kind = 'login_failed'",
          )
        ).rows.map((r) => r.ip);
      assert.deepEqual(await ips(behind), ['203.0.113.7']);
      assert.ok(!(await ips(t)).includes('203.0.113.7'), 'an untrusted client cannot pick its address');
    } finally {
      await behind.close();
    }
  });

  it('limits requests per principal', async () => {
    const limited = await startTestApp({ env: { MAILROOM_RATE_LIMIT_PER_MINUTE: '5' } });
    try {
      const user = await signUp(limited, 'busy@example.com');
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++)
        statuses.push((await limited.call('GET', '/v1/auth/me', { token: user.token })).status);
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);
    } finally {
      await limited.close();
    }
  });
});

describe('the HTTP front door', () => {
  let door: TestApp;
  let port: number;
  before(async () => {
    door = await startTestApp({ env: { MAILROOM_HTTP_HEADER_TIMEOUT: '300ms' } });
    ({ http: port } = (await door.app.listen()) as { http: number });
  });
  after(() => door.close());

  /** Writes `request` to a fresh connection and reads until the server closes it. */
  function raw(request: string): Promise<{ head: string; body: any; ms: number }> {
    return new Promise((resolve, reject) => {
      const began = performance.now();
      const socket = net.connect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (c) => chunks.push(c));
      socket.on('error', reject);
      socket.on('close', () => {
        const text = Buffer.concat(chunks).toString();
        const at = text.indexOf('\r\n\r\n');
        resolve({
          head: text.slice(0, at),
          body: JSON.parse(text.slice(at + 4)),
          ms: performance.now() - began,
        });
      });
      socket.write(request);
    });
  }

  it('answers headers larger than Node accepts with problem+json 431, and closes', async () => {
    const res = await raw(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.match(res.head, /^HTTP\/1\.1 431 /);
    assert.match(res.head, /content-type: application\/problem\+json/i);
    assert.equal(res.body.status, 431);
    assert.equal(res.body.code, 'headers_too_large');
    assert.match(res.body.request_id, /^[0-9a-f-]{36}$/);
    const long = await raw(`GET /health?${'q'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.equal(long.body.status, 431);
  });

  it('answers a request that never finishes its headers with problem+json 408, soon', async () => {
    const res = await raw('GET /health HTTP/1.1\r\n');
    assert.match(res.head, /^HTTP\/1\.1 408 /);
    assert.equal(res.body.code, 'request_timeout');
    // The configured 300 ms, checked at least every 150 ms: nowhere near Node's default of a minute.
    assert.ok(res.ms < 3_000, `closed after ${Math.round(res.ms)} ms`);
  });

  it('answers bytes that are not HTTP with problem+json 400', async () => {
    const res = await raw('\x00\x01\x02 not http at all\r\n\r\n');
    assert.match(res.head, /^HTTP\/1\.1 400 /);
    assert.equal(res.body.code, 'bad_request');
  });
});
