// Walks every operation in /openapi.json with malformed bodies, parameters and queries, signed in as an
// organisation owner, and asserts that nothing answers 5xx and every refusal is problem+json.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, it } from 'node:test';
import { type CallResult, signUpWithOrg, startTestApp, type TestApp } from './support/app.ts';

let t: TestApp;
let owner: Awaited<ReturnType<typeof signUpWithOrg>>;
before(async () => {
  t = await startTestApp({ env: { MAILROOM_BODY_LIMIT: '65536' } });
  owner = await signUpWithOrg(t, 'walker@malformed.test', 'Walker');
});
after(() => t.close());

interface Operation {
  method: string;
  path: string;
  op: {
    parameters?: { name: string; in: string; schema?: { type?: string } }[];
    requestBody?: { content: Record<string, { schema: JsonSchema }> };
  };
}
interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
}

const GARBAGE_IDS = [
  'not-a-uuid',
  "1' or '1'='1",
  '%00',
  '9'.repeat(300),
  '00000000-0000-0000-0000-00000000000g',
];
const GARBAGE_VALUES: unknown[] = [
  null,
  42,
  -1,
  1e308,
  true,
  'x'.repeat(5000),
  [],
  {},
  [{}],
  '\u0000',
  'NaN',
];
const GARBAGE_QUERY = [
  '-1',
  '0',
  'abc',
  '1e400',
  '%ZZ',
  'x'.repeat(3000),
  "' or 1=1 --",
  '2024-13-45T99:99:99Z',
];

function wrongFor(schema: JsonSchema | undefined): unknown[] {
  const type = Array.isArray(schema?.type) ? schema?.type[0] : schema?.type;
  switch (type) {
    case 'string':
      return [123, null, ['a'], { a: 1 }, '', 'x'.repeat(10_000), 'nul\u0000byte', '\ud800 lone surrogate'];
    case 'number':
    case 'integer':
      return ['12', 1.5, -999999999999, null];
    case 'boolean':
      return ['true', 0, null];
    case 'array':
      return ['a', { a: 1 }, [null, 1, 'x', {}], Array.from({ length: 500 }, (_, i) => `v${i}`)];
    default:
      return ['a', 1, null, []];
  }
}

function bodiesFor(schema: JsonSchema | undefined): { raw?: string; json?: unknown; type?: string }[] {
  const bodies: { raw?: string; json?: unknown; type?: string }[] = [
    { raw: '{bad json' },
    { raw: '' },
    { raw: 'null' },
    { raw: '"just a string"' },
    { raw: '[1,2,3]' },
    { raw: '{"__proto__":{"admin":true}}' },
    { raw: 'x'.repeat(70_000) },
    { raw: 'a=b', type: 'application/x-www-form-urlencoded' },
    { raw: '<xml/>', type: 'application/xml' },
    { json: { unknown_field: 1 } },
  ];
  for (const value of GARBAGE_VALUES) bodies.push({ json: value });
  for (const [name, prop] of Object.entries(schema?.properties ?? {})) {
    for (const wrong of wrongFor(prop)) bodies.push({ json: { [name]: wrong } });
  }
  return bodies;
}

function fillPath(path: string, values: Record<string, string>): string {
  return path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(values[name] ?? randomUUID()));
}

function assertNoServerError(what: string, res: CallResult) {
  assert.ok(res.status < 500, `${what} answered ${res.status}: ${JSON.stringify(res.body)}`);
  if (res.status >= 400) {
    assert.match(
      String(res.headers['content-type']),
      /application\/problem\+json/,
      `${what} is problem+json`,
    );
    assert.equal(typeof res.body.detail, 'string', `${what} explains itself`);
  }
}

it('no operation answers 5xx to malformed input', async () => {
  const doc = (await t.call('GET', '/openapi.json')).body;
  const operations: Operation[] = [];
  for (const [path, item] of Object.entries<Record<string, Operation['op']>>(doc.paths)) {
    for (const [method, op] of Object.entries(item))
      operations.push({ method: method.toUpperCase(), path, op });
  }
  assert.ok(operations.length >= 35, `found ${operations.length} operations`);
  let requests = 0;

  for (const { method, path, op } of operations) {
    // A fresh session per operation: logout and password changes must not end the walk early.
    const login = await t.call('POST', '/v1/auth/login', {
      body: { email: 'walker@malformed.test', password: owner.password },
    });
    const token = login.body.access_token as string;
    const pathParams = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name);
    // Real ids only where the walk must get past authorisation; never on DELETE, which would end the walk.
    const real: Record<string, string> = method === 'DELETE' ? {} : { organization_id: owner.orgId };

    for (const name of pathParams) {
      for (const garbage of GARBAGE_IDS) {
        const url = fillPath(path, { ...real, [name]: garbage });
        assertNoServerError(`${method} ${url}`, await t.call(method, url, { token }));
        requests++;
      }
    }

    for (const q of (op.parameters ?? []).filter((p) => p.in === 'query')) {
      for (const garbage of GARBAGE_QUERY) {
        const url = `${fillPath(path, real)}?${q.name}=${garbage}`;
        assertNoServerError(`${method} ${url}`, await t.call(method, url, { token }));
        requests++;
      }
    }
    const unknownQuery = `${fillPath(path, real)}?definitely_unknown=1`;
    assertNoServerError(`${method} ${unknownQuery}`, await t.call(method, unknownQuery, { token }));

    if (method === 'POST' || method === 'PATCH' || method === 'PUT') {
      const schema = op.requestBody?.content['application/json']?.schema;
      for (const body of bodiesFor(schema)) {
        const url = fillPath(path, real);
        const res =
          body.raw !== undefined
            ? await t.call(method, url, {
                token,
                rawBody: body.raw,
                headers: { 'content-type': body.type ?? 'application/json' },
              })
            : await t.call(method, url, { token, body: body.json });
        assertNoServerError(`${method} ${url} with ${JSON.stringify(body).slice(0, 80)}`, res);
        requests++;
      }
    }
  }
  assert.ok(requests > 500, `sent ${requests} malformed requests`);
});

it('validation errors name the field', async () => {
  const res = await t.call('POST', `/v1/organizations/${owner.orgId}/api-keys`, {
    token: owner.token,
    body: { name: 5, scopes: 'all', extra: true },
  });
  assert.equal(res.status, 400);
  const fields = res.body.errors.map((e: { field: string }) => e.field).sort();
  assert.deepEqual(fields, ['body.extra', 'body.name', 'body.scopes']);
});

it('a refused request writes nothing', async () => {
  const before = (await t.call('GET', `/v1/organizations/${owner.orgId}/api-keys`, { token: owner.token }))
    .body.total;
  const res = await t.call('POST', `/v1/organizations/${owner.orgId}/api-keys`, {
    token: owner.token,
    body: { name: 'half', scopes: ['organization:read', 'bogus:scope'] },
  });
  assert.equal(res.status, 422);
  const afterCount = (
    await t.call('GET', `/v1/organizations/${owner.orgId}/api-keys`, { token: owner.token })
  ).body.total;
  assert.equal(afterCount, before);
});

it('a NUL byte in a path parameter is refused, and the attempt is in the audit trail, escaped', async () => {
  for (const url of ['/v1/mailboxes/%00', '/v1/mailboxes/a%00b', '/v1/suppressions/x%00%40y.test']) {
    const res = await t.call('DELETE', url, { token: owner.token });
    assert.ok(res.status >= 400 && res.status < 500, `${url} answered ${res.status}`);
  }
  // Read from the table: refusals before the organisation was resolved are filed under none.
  const rows = await t.app.database.query<{ target_id: string }>(
    `select target_id from audit_log where action in ('mailbox.delete', 'suppression.delete') and status >= 400`,
  );
  const targets = rows.rows.map((r) => r.target_id);
  assert.ok(targets.includes('\\u0000'), JSON.stringify(targets));
  assert.ok(targets.includes('a\\u0000b'), JSON.stringify(targets));
  assert.ok(targets.includes('x\\u0000@y.test'), JSON.stringify(targets));
  const metrics = await t.call('GET', '/metrics');
  assert.match(metrics.body, /^mailroom_audit_write_failures_total 0$/m);
});
