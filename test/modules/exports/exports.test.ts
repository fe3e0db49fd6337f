// CSV exports through the public surface: every file parsed back (RFC 4180, by the parser below) and
// checked column by column; presets and chosen columns; passwords only for mailboxes created with
// export enabled; formula-injection names neutralised; who may export (roles, API key scopes, a recent
// TOTP check for credentials); the audit entry with the row count, also for an export cut short; the
// domains and message log exports; and isolation between organisations.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { Secret, TOTP } from 'otpauth';
import { newId } from '../../../src/core/ids.ts';
import {
  addDomain,
  engine,
  type Org,
  orgMaker,
  signUp,
  signUpWithOrg,
  startTestApp,
  type TestApp,
} from '../../support/app.ts';
import { parseCsv } from '../../support/csv.ts';
import { until } from '../../support/until.ts';

const SMTP_HOST = 'smtp.exports.test';
const IMAP_HOST = 'imap.exports.test';
const INSTALLATION_DAILY_LIMIT = 300;
const ALICE_PASSWORD = 'alice has a long password';
const CAROL_PASSWORD = '-carol=starts+with@dash';
const INJECTION = '=HYPERLINK("http://x")';
const AWKWARD_NAME = 'Carol, "CJ"\r\nthe Second';

const GENERIC_HEADERS = [
  'email',
  'first_name',
  'last_name',
  'display_name',
  'smtp_host',
  'smtp_port',
  'smtp_username',
  'smtp_password',
  'smtp_security',
  'imap_host',
  'imap_port',
  'imap_username',
  'imap_password',
  'imap_security',
  'daily_limit',
  'warmup_enabled',
];

/** The header and the records as objects by header, every record as wide as the header. */
function table(text: string): { headers: string[]; rows: Record<string, string>[] } {
  const [headers, ...records] = parseCsv(text);
  for (const r of records) assert.equal(r.length, headers.length, JSON.stringify(r));
  return {
    headers,
    rows: records.map((r) => Object.fromEntries(headers.map((h, i) => [h, r[i]]))),
  };
}

function totp(secret: string, offsetSteps = 0): string {
  const gen = new TOTP({ secret: Secret.fromBase32(secret), digits: 6, period: 30, algorithm: 'SHA1' });
  return gen.generate({ timestamp: Date.now() + offsetSteps * 30_000 });
}

const today = () => new Date().toISOString().slice(0, 10);

describe(`exports on ${engine}`, () => {
  const freshOrg = orgMaker('exports');
  let t: TestApp;
  let org: Awaited<ReturnType<typeof signUpWithOrg>>;
  let other: Org;
  let domain: { id: string; name: string };
  let second: { id: string; name: string };
  let otherDomain: { id: string; name: string };

  const api = (method: string, url: string, body?: unknown, as: { token: string } = org) =>
    t.call(method, url, { token: as.token, body });
  const createMailbox = async (body: Record<string, unknown>, as: Org = org) => {
    const res = await api('POST', '/v1/mailboxes', body, as);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  };
  const exportCsv = async (
    path: string,
    as: { token: string } = org,
    headers: Record<string, string> = {},
  ) => {
    const res = await t.call('GET', path, { token: as.token, headers });
    assert.equal(res.status, 200, `${path}: ${res.body}`);
    assert.equal(res.headers['content-type'], 'text/csv; charset=utf-8');
    assert.equal(res.headers['cache-control'], 'no-store');
    return res;
  };
  const auditOf = async (action: string, requestId: string) => {
    const found = await until(
      () => api('GET', `/v1/organizations/${org.orgId}/audit-log?action=${action}&page_size=200`),
      (res) => res.body.items.some((e: any) => e.request_id === requestId),
    );
    return found.body.items.find((e: any) => e.request_id === requestId);
  };
  /** A user with `role` in the organisation. */
  const member = async (email: string, role: string) => {
    const invited = await api('POST', `/v1/organizations/${org.orgId}/invitations`, { email, role });
    assert.equal(invited.status, 201, JSON.stringify(invited.body));
    const user = await signUp(t, email);
    const token = t.mailer.tokenFor(email, /invited/);
    const accepted = await api('POST', '/v1/invitations/accept', { token }, user);
    assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
    return user;
  };
  /** Turns MFA on for `user`; returns the TOTP secret and the code spent on it. */
  const enableMfa = async (user: { token: string; password: string }) => {
    const setup = await api('POST', '/v1/auth/mfa/setup', undefined, user);
    assert.equal(setup.status, 200);
    const secret: string = setup.body.secret;
    const code = totp(secret);
    const enabled = await api('POST', '/v1/auth/mfa/enable', { code, password: user.password }, user);
    assert.equal(enabled.status, 200, JSON.stringify(enabled.body));
    return { secret, spent: code };
  };

  before(async () => {
    t = await startTestApp({
      env: {
        MAILROOM_EXPORT_SMTP_HOST: SMTP_HOST,
        MAILROOM_EXPORT_SMTP_PORT: '465',
        MAILROOM_EXPORT_IMAP_HOST: IMAP_HOST,
        MAILROOM_EXPORT_IMAP_PORT: '143',
        MAILROOM_SEND_LIMIT_MAILBOX_PER_DAY: String(INSTALLATION_DAILY_LIMIT),
        // Two rows a query: every export here crosses several keyset pages.
        MAILROOM_EXPORT_PAGE_SIZE: '2',
      },
    });
    org = await signUpWithOrg(t, 'exports-owner@example.com', 'Exports');
    other = await freshOrg(t);
    domain = await addDomain(t, org, 'exports.test');
    second = await addDomain(t, org, 'second.test');
    otherDomain = await addDomain(t, other, 'other-org.test');
    await createMailbox({
      address: 'alice@exports.test',
      first_name: 'Alice',
      last_name: 'Smith',
      password: ALICE_PASSWORD,
      export_password: true,
      daily_send_limit: 40,
    });
    await createMailbox({
      address: 'bob@exports.test',
      first_name: INJECTION,
      last_name: '@Jones',
      password: 'bob has a password that stays',
    });
    await createMailbox({
      address: 'carol@exports.test',
      first_name: AWKWARD_NAME,
      last_name: '-Minus',
      display_name: 'Carol CJ',
      password: CAROL_PASSWORD,
      export_password: true,
    });
    await createMailbox({ address: 'dave@exports.test', first_name: 'Dave' });
    await createMailbox({
      address: 'erin@second.test',
      first_name: 'Erin',
      password: 'erin has a password too',
      export_password: true,
    });
    await createMailbox(
      {
        address: 'zed@other-org.test',
        first_name: 'Zed',
        password: 'another organisation’s secret',
        export_password: true,
      },
      other,
    );
  });
  after(async () => t?.close());

  test('the generic preset: every column, read back exactly, passwords only where export was enabled', async () => {
    const res = await exportCsv('/v1/exports/inboxes.csv');
    assert.equal(res.headers['content-disposition'], `attachment; filename="inboxes-generic-${today()}.csv"`);
    assert.ok(!res.body.startsWith('\uFEFF'), 'no byte order mark unless asked for');
    const { headers, rows } = table(res.body);
    assert.deepEqual(headers, GENERIC_HEADERS);
    assert.deepEqual(
      rows.map((r) => r.email),
      [
        'alice@exports.test',
        'bob@exports.test',
        'carol@exports.test',
        'dave@exports.test',
        'erin@second.test',
      ],
      'in address order, this organisation’s only',
    );
    assert.ok(!res.body.includes('another organisation’s secret') && !res.body.includes('zed@'));
    const [alice, bob, carol, dave] = rows;
    assert.deepEqual(alice, {
      email: 'alice@exports.test',
      first_name: 'Alice',
      last_name: 'Smith',
      display_name: 'Alice Smith',
      smtp_host: SMTP_HOST,
      smtp_port: '465',
      smtp_username: 'alice@exports.test',
      smtp_password: ALICE_PASSWORD,
      smtp_security: 'SSL',
      imap_host: IMAP_HOST,
      imap_port: '143',
      imap_username: 'alice@exports.test',
      imap_password: ALICE_PASSWORD,
      imap_security: 'STARTTLS',
      daily_limit: '40',
      warmup_enabled: 'false',
    });
    // A formula in a name is written so that a spreadsheet shows it as text.
    assert.equal(bob.first_name, `'${INJECTION}`);
    assert.equal(bob.last_name, "'@Jones");
    assert.equal(bob.smtp_password, '', 'created without export: no password');
    assert.equal(bob.imap_password, '');
    assert.equal(bob.daily_limit, String(INSTALLATION_DAILY_LIMIT), 'the installation’s limit');
    assert.ok(!res.body.includes('bob has a password that stays'));
    // Commas, quotes and line breaks survive the round trip; credentials are never prefixed.
    assert.equal(carol.first_name, AWKWARD_NAME);
    assert.equal(carol.last_name, "'-Minus");
    assert.equal(carol.display_name, 'Carol CJ');
    assert.equal(carol.smtp_password, CAROL_PASSWORD);
    assert.equal(carol.imap_password, CAROL_PASSWORD);
    assert.equal(dave.smtp_password, '', 'no password at all');
    assert.equal(dave.warmup_enabled, 'false');
  });

  test('Instantly and Smartlead presets use those tools’ field names', async () => {
    const instantly = table((await exportCsv('/v1/exports/inboxes.csv?preset=instantly')).body);
    assert.deepEqual(instantly.headers, [
      'email',
      'first_name',
      'last_name',
      'imap_username',
      'imap_password',
      'imap_host',
      'imap_port',
      'smtp_username',
      'smtp_password',
      'smtp_host',
      'smtp_port',
      'daily_limit',
    ]);
    assert.deepEqual(instantly.rows[0], {
      email: 'alice@exports.test',
      first_name: 'Alice',
      last_name: 'Smith',
      imap_username: 'alice@exports.test',
      imap_password: ALICE_PASSWORD,
      imap_host: IMAP_HOST,
      imap_port: '143',
      smtp_username: 'alice@exports.test',
      smtp_password: ALICE_PASSWORD,
      smtp_host: SMTP_HOST,
      smtp_port: '465',
      daily_limit: '40',
    });

    const res = await exportCsv('/v1/exports/inboxes.csv?preset=smartlead');
    assert.equal(
      res.headers['content-disposition'],
      `attachment; filename="inboxes-smartlead-${today()}.csv"`,
    );
    const smartlead = table(res.body);
    assert.deepEqual(smartlead.headers, [
      'from_name',
      'from_email',
      'user_name',
      'password',
      'smtp_host',
      'smtp_port',
      'imap_host',
      'imap_port',
      'warmup_enabled',
      'max_email_per_day',
    ]);
    assert.deepEqual(smartlead.rows[2], {
      from_name: 'Carol CJ',
      from_email: 'carol@exports.test',
      user_name: 'carol@exports.test',
      password: CAROL_PASSWORD,
      smtp_host: SMTP_HOST,
      smtp_port: '465',
      imap_host: IMAP_HOST,
      imap_port: '143',
      warmup_enabled: 'false',
      max_email_per_day: String(INSTALLATION_DAILY_LIMIT),
    });
    assert.equal(smartlead.rows[1].password, '');
  });

  test('columns= picks and orders columns under the preset’s names; unknown ones are refused', async () => {
    const picked = table(
      (await exportCsv('/v1/exports/inboxes.csv?preset=smartlead&columns=smtp_password,email,first_name'))
        .body,
    );
    assert.deepEqual(picked.headers, ['password', 'from_email', 'first_name']);
    assert.deepEqual(picked.rows[0], {
      password: ALICE_PASSWORD,
      from_email: 'alice@exports.test',
      first_name: 'Alice',
    });
    const generic = table(
      (await exportCsv('/v1/exports/inboxes.csv?columns=email,%20smtp_security,imap_security')).body,
    );
    assert.deepEqual(generic.headers, ['email', 'smtp_security', 'imap_security']);
    assert.deepEqual(generic.rows[0], {
      email: 'alice@exports.test',
      smtp_security: 'SSL',
      imap_security: 'STARTTLS',
    });

    const unknown = await api('GET', '/v1/exports/inboxes.csv?columns=email,password_hash');
    assert.equal(unknown.status, 422);
    assert.equal(unknown.headers['content-type'], 'application/problem+json');
    assert.equal(unknown.body.code, 'validation_failed');
    assert.match(unknown.body.detail, /unknown column password_hash/);
    const twice = await api('GET', '/v1/exports/inboxes.csv?columns=email,email');
    assert.equal(twice.status, 422);
    assert.match(twice.body.detail, /email named twice/);
    assert.equal((await api('GET', '/v1/exports/inboxes.csv?columns=,')).status, 422);
    assert.equal((await api('GET', '/v1/exports/inboxes.csv?preset=mailchimp')).status, 400);
  });

  test('domain_id narrows to one domain; another organisation’s domain is a 404', async () => {
    const one = table((await exportCsv(`/v1/exports/inboxes.csv?domain_id=${second.id}`)).body);
    assert.deepEqual(
      one.rows.map((r) => [r.email, r.smtp_password]),
      [['erin@second.test', 'erin has a password too']],
    );
    const foreign = await api('GET', `/v1/exports/inboxes.csv?domain_id=${otherDomain.id}`);
    assert.equal(foreign.status, 404);
    // The other organisation's export holds its own mailbox only.
    const theirs = table((await exportCsv('/v1/exports/inboxes.csv', other)).body);
    assert.deepEqual(
      theirs.rows.map((r) => [r.email, r.smtp_password]),
      [['zed@other-org.test', 'another organisation’s secret']],
    );
  });

  test('status= leaves suspended mailboxes out (or picks them)', async () => {
    const paused = await api('POST', '/v1/mailboxes', {
      address: 'paused@second.test',
      password: 'a paused mailbox password',
      export_password: true,
      status: 'suspended',
    });
    assert.equal(paused.status, 201, JSON.stringify(paused.body));
    try {
      const emails = async (query: string) =>
        table((await exportCsv(`/v1/exports/inboxes.csv?domain_id=${second.id}${query}`)).body).rows.map(
          (r) => r.email,
        );
      assert.deepEqual(await emails(''), ['erin@second.test', 'paused@second.test']);
      assert.deepEqual(await emails('&status=active'), ['erin@second.test']);
      assert.deepEqual(await emails('&status=suspended'), ['paused@second.test']);
      assert.equal((await api('GET', '/v1/exports/inboxes.csv?status=gone')).status, 400);
    } finally {
      await api('DELETE', `/v1/mailboxes/${paused.body.id}`);
    }
  });

  test('bom=true starts the file with a UTF-8 byte order mark', async () => {
    const res = await exportCsv('/v1/exports/inboxes.csv?bom=true&columns=email');
    assert.ok(res.body.startsWith('\uFEFFemail\r\n'));
    assert.deepEqual(parseCsv(res.body.slice(1))[1], ['alice@exports.test']);
  });

  test('viewers and members are refused; API keys need exports:read', async () => {
    const viewer = await member('viewer@exports.test', 'viewer');
    const plain = await member('member@exports.test', 'member');
    for (const [who, user] of [
      ['viewer', viewer],
      ['member', plain],
    ] as const) {
      for (const path of ['inboxes.csv', 'domains.csv', 'messages.csv']) {
        const res = await api('GET', `/v1/exports/${path}`, undefined, user);
        assert.equal(res.status, 403, `${who} ${path}`);
        assert.equal(res.body.code, 'forbidden');
        assert.match(res.body.detail, new RegExp(`needs the admin role; you are ${who}`));
      }
    }

    const key = async (scopes: string[]) => {
      const res = await api('POST', `/v1/organizations/${org.orgId}/api-keys`, { name: 'export', scopes });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return { token: res.body.key as string };
    };
    const exporter = await key(['exports:read']);
    const csv = table(
      (await exportCsv('/v1/exports/inboxes.csv?columns=email,smtp_password', exporter)).body,
    );
    assert.equal(csv.rows[0].smtp_password, ALICE_PASSWORD);
    assert.equal((await exportCsv('/v1/exports/domains.csv', exporter)).status, 200);
    const reader = await key(['mailboxes:read', 'messages:read', 'domains:read']);
    for (const path of ['inboxes.csv', 'domains.csv', 'messages.csv']) {
      const res = await api('GET', `/v1/exports/${path}`, undefined, reader);
      assert.equal(res.status, 403, path);
      assert.match(res.body.detail, /lacks the exports:read scope/);
    }
  });

  test('an admin with MFA needs a TOTP check within 10 minutes for credentials', async () => {
    const admin = await member('mfa-admin@exports.test', 'admin');
    const { secret, spent } = await enableMfa(admin);

    const refused = await api('GET', '/v1/exports/inboxes.csv', undefined, admin);
    assert.equal(refused.status, 403);
    assert.equal(refused.body.code, 'mfa_required');
    assert.match(refused.body.detail, /within the last 10 minutes: POST \/v1\/auth\/mfa\/verify/);
    // Domains and the message log carry no secrets: the admin role is enough.
    assert.equal((await api('GET', '/v1/exports/domains.csv', undefined, admin)).status, 200);

    const wrong = await api('POST', '/v1/auth/mfa/verify', { code: '000000' }, admin);
    assert.equal(wrong.status, 422);
    assert.equal(wrong.body.code, 'invalid_code');
    const replayed = await api('POST', '/v1/auth/mfa/verify', { code: spent }, admin);
    assert.equal(replayed.status, 422, 'the code that enabled MFA is spent');
    const verified = await api('POST', '/v1/auth/mfa/verify', { code: totp(secret, 1) }, admin);
    assert.equal(verified.status, 200, JSON.stringify(verified.body));
    assert.ok(Math.abs(Date.parse(verified.body.mfa_verified_at) - Date.now()) < 60_000);

    const allowed = table((await exportCsv('/v1/exports/inboxes.csv?columns=email', admin)).body);
    assert.equal(allowed.rows.length, 5);

    // Eleven minutes later the check is too old.
    await t.app.database.query(
      "update sessions set mfa_verified_at = now() - interval '11 minutes' where id = $1",
      [admin.tokens.session_id],
    );
    const stale = await api('GET', '/v1/exports/inboxes.csv', undefined, admin);
    assert.equal(stale.status, 403);
    assert.equal(stale.body.code, 'mfa_required');

    const noMfa = await api('POST', '/v1/auth/mfa/verify', { code: '123456' });
    assert.equal(noMfa.status, 409, 'the owner has no MFA to verify');
  });

  test('a login finished with a TOTP code counts as a recent check', async () => {
    const admin = await member('mfa-login@exports.test', 'admin');
    const { secret } = await enableMfa(admin);
    const login = await t.call('POST', '/v1/auth/login', {
      body: { email: 'mfa-login@exports.test', password: admin.password },
    });
    assert.equal(login.body.mfa_required, true);
    const challenge = await t.call('POST', '/v1/auth/mfa/challenge', {
      body: { mfa_token: login.body.mfa_token, code: totp(secret, 1) },
    });
    assert.equal(challenge.status, 200, JSON.stringify(challenge.body));
    const fresh = { token: challenge.body.access_token as string };
    assert.equal((await exportCsv('/v1/exports/inboxes.csv?columns=email', fresh)).status, 200);
    // The session it signed up with never passed a check.
    assert.equal((await api('GET', '/v1/exports/inboxes.csv', undefined, admin)).body.code, 'mfa_required');
  });

  test('every export is in the audit trail with its row count, never a password', async () => {
    await exportCsv('/v1/exports/inboxes.csv?preset=smartlead', org, { 'x-request-id': 'export-audit-1' });
    const entry = await auditOf('export.inboxes', 'export-audit-1');
    assert.equal(entry.status, 200);
    assert.equal(entry.actor_type, 'user');
    assert.equal(entry.actor_id, org.id);
    assert.deepEqual(entry.details, {
      preset: 'smartlead',
      columns: [
        'display_name',
        'email',
        'smtp_username',
        'smtp_password',
        'smtp_host',
        'smtp_port',
        'imap_host',
        'imap_port',
        'warmup_enabled',
        'daily_limit',
      ],
      passwords: 3,
      rows: 5,
      completed: true,
    });
    assert.ok(!JSON.stringify(entry).includes(ALICE_PASSWORD));

    await exportCsv(`/v1/exports/inboxes.csv?domain_id=${domain.id}&columns=email`, org, {
      'x-request-id': 'export-audit-2',
    });
    const narrowed = await auditOf('export.inboxes', 'export-audit-2');
    assert.deepEqual(narrowed.details, {
      preset: 'generic',
      columns: ['email'],
      domain_id: domain.id,
      passwords: 0,
      rows: 4,
      completed: true,
    });

    // A refusal is recorded too, with its status.
    const admin = await member('mfa-audit@exports.test', 'admin');
    await enableMfa(admin);
    const refused = await t.call('GET', '/v1/exports/inboxes.csv', {
      token: admin.token,
      headers: { 'x-request-id': 'export-audit-3' },
    });
    assert.equal(refused.status, 403);
    const refusal = await auditOf('export.inboxes', 'export-audit-3');
    assert.equal(refusal.status, 403);
    assert.equal(refusal.actor_id, admin.id);
    assert.equal(refusal.details, null);
  });

  test('an export the client abandons is recorded with the rows sent so far, not completed', async () => {
    const crowd = await freshOrg(t);
    await addDomain(t, crowd, 'crowd.test');
    for (let i = 0; i < 60; i++) await createMailbox({ address: `m${i}@crowd.test` }, crowd);
    const { http: port } = await t.app.listen();
    // Hang up as soon as the first bytes arrive: 30 pages are still to be read.
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          path: '/v1/exports/inboxes.csv',
          headers: { authorization: `Bearer ${crowd.token}`, 'x-request-id': 'export-abandoned' },
        },
        (res) => {
          assert.equal(res.statusCode, 200);
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        },
      );
      req.on('error', (err) => (err.message === 'socket hang up' ? undefined : reject(err)));
      req.end();
    });
    const log = await until(
      () => api('GET', `/v1/organizations/${crowd.orgId}/audit-log?action=export.inboxes`, undefined, crowd),
      (res) => res.body.items.some((e: any) => e.request_id === 'export-abandoned'),
    );
    const entry = log.body.items.find((e: any) => e.request_id === 'export-abandoned');
    assert.equal(entry.details.completed, false);
    assert.ok(entry.details.rows < 60, JSON.stringify(entry.details));
    assert.equal(entry.details.rows % 2, 0, 'whole pages');
  });

  test('domains.csv: every domain with its status and DNS flags', async () => {
    await t.app.database.query(
      `update domains set status = 'verified', ownership_verified = true, mx_verified = true,
         spf_verified = true, dkim_verified = false, dmarc_verified = true, return_path_verified = true,
         verified_at = '2025-03-04T05:06:07Z' where id = $1`,
      [second.id],
    );
    const res = await exportCsv('/v1/exports/domains.csv', org, { 'x-request-id': 'export-domains' });
    assert.equal(res.headers['content-disposition'], `attachment; filename="domains-${today()}.csv"`);
    const { headers, rows } = table(res.body);
    assert.deepEqual(headers, [
      'name',
      'unicode_name',
      'status',
      'is_active',
      'ownership_verified',
      'mx_verified',
      'spf_verified',
      'dkim_verified',
      'dmarc_verified',
      'return_path_verified',
      'last_checked_at',
      'verified_at',
      'created_at',
      'id',
    ]);
    assert.deepEqual(
      rows.map((r) => r.name),
      ['exports.test', 'second.test'],
    );
    const [pending, verified] = rows;
    assert.equal(pending.status, 'pending');
    assert.equal(pending.mx_verified, 'false');
    assert.equal(pending.verified_at, '');
    assert.equal(pending.id, domain.id);
    assert.deepEqual(
      [
        verified.status,
        verified.is_active,
        verified.ownership_verified,
        verified.mx_verified,
        verified.spf_verified,
        verified.dkim_verified,
        verified.dmarc_verified,
        verified.return_path_verified,
        verified.verified_at,
      ],
      ['verified', 'true', 'true', 'true', 'true', 'false', 'true', 'true', '2025-03-04T05:06:07.000Z'],
    );
    assert.ok(!Number.isNaN(Date.parse(verified.created_at)));
    const entry = await auditOf('export.domains', 'export-domains');
    assert.deepEqual(entry.details, { rows: 2, completed: true });
  });

  test('messages.csv: the filtered log newest first, as GET /v1/messages filters it', async () => {
    const seed = async (
      as: Org,
      fields: { receivedAt: string; direction?: string; subject: string; fromName?: string },
    ) => {
      const id = newId();
      const blobId = newId();
      await t.app.database.query('insert into blobs (id, organization_id, data) values ($1, $2, $3)', [
        blobId,
        as.orgId,
        Buffer.from('Subject: x\r\n\r\nx\r\n'),
      ]);
      await t.app.database.query(
        `insert into messages (id, organization_id, domain_id, direction, status, blob_id, size, mail_from,
           rcpt_to, from_address, from_name, to_addresses, subject, received_at)
         values ($1, $2, $3, $4, 'delivered', $5, 17, 'sender@example.net', $6, 'sender@example.net', $7,
           $6, $8, $9)`,
        [
          id,
          as.orgId,
          as === org ? domain.id : otherDomain.id,
          fields.direction ?? 'inbound',
          blobId,
          ['alice@exports.test', 'bob@exports.test'],
          fields.fromName ?? null,
          fields.subject,
          fields.receivedAt,
        ],
      );
      return id;
    };
    // Three messages within one millisecond: pages of two must resume between them without skipping.
    const first = await seed(org, { receivedAt: '2025-05-01T10:00:00.123456Z', subject: 'first' });
    const second_ = await seed(org, {
      receivedAt: '2025-05-01T10:00:00.123789Z',
      subject: '+1 (555) call me',
      fromName: '@boss',
    });
    const third = await seed(org, { receivedAt: '2025-05-01T10:00:00.123100Z', subject: 'third' });
    const outbound = await seed(org, {
      receivedAt: '2025-05-02T08:00:00Z',
      direction: 'outbound',
      subject: 'Re: "quotes", commas\nand lines',
    });
    await seed(other, { receivedAt: '2025-05-01T12:00:00Z', subject: 'another organisation’s mail' });

    const res = await exportCsv('/v1/exports/messages.csv', org, { 'x-request-id': 'export-messages' });
    assert.equal(res.headers['content-disposition'], `attachment; filename="messages-${today()}.csv"`);
    const { headers, rows } = table(res.body);
    assert.deepEqual(headers, [
      'id',
      'received_at',
      'direction',
      'status',
      'mail_from',
      'rcpt_to',
      'from_address',
      'from_name',
      'to_addresses',
      'cc_addresses',
      'subject',
      'size',
      'has_attachments',
      'message_id_header',
      'thread_id',
      'domain_id',
      'tags',
      'error',
    ]);
    assert.deepEqual(
      rows.map((r) => r.id),
      [outbound, second_, first, third],
      'newest first, none skipped inside the millisecond',
    );
    const listed = await api('GET', '/v1/messages?page_size=200');
    assert.deepEqual(
      rows.map((r) => r.id),
      listed.body.items.map((m: any) => m.id),
      'the same messages, in the same order, as the API lists',
    );
    assert.ok(!res.body.includes('another organisation’s mail'));
    const [out, call] = rows;
    assert.equal(out.subject, 'Re: "quotes", commas\nand lines');
    assert.equal(out.direction, 'outbound');
    assert.equal(out.received_at, '2025-05-02T08:00:00.000Z');
    assert.equal(call.subject, "'+1 (555) call me");
    assert.equal(call.from_name, "'@boss");
    assert.equal(call.rcpt_to, 'alice@exports.test, bob@exports.test');
    assert.equal(call.status, 'delivered');
    assert.equal(call.size, '17');
    assert.equal(call.has_attachments, 'false');
    assert.equal(call.domain_id, domain.id);
    assert.deepEqual([call.cc_addresses, call.tags, call.error, call.thread_id], ['', '', '', '']);

    const outboundOnly = table(
      (
        await exportCsv('/v1/exports/messages.csv?direction=outbound&since=2025-05-02', org, {
          'x-request-id': 'export-messages-filtered',
        })
      ).body,
    );
    assert.deepEqual(
      outboundOnly.rows.map((r) => r.id),
      [outbound],
    );
    const range = await api('GET', '/v1/exports/messages.csv?since=2025-05-02&until=2025-05-01');
    assert.equal(range.status, 422);

    const entry = await auditOf('export.messages', 'export-messages-filtered');
    assert.deepEqual(entry.details, {
      filter: { direction: 'outbound', since: '2025-05-02' },
      rows: 1,
      completed: true,
    });
  });
});
