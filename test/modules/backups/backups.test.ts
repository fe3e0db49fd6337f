// Backup and restore through the public surface: an organisation filled through the API and the MX
// (domains with DKIM keys, mailboxes with exportable passwords and app passwords, aliases, rules, a
// webhook with its secret, API keys, SMTP credentials, a second member with MFA, mail with attachments,
// queued outbound mail), backed up by a job, downloaded, uploaded to a fresh installation with another
// key and restored there with its ids, and restored as a new organisation beside the source. Every table
// is compared row by row (ids mapped for the copy, sealed values compared opened) and every raw message
// byte by byte. Also: what the catalogue must classify, that an archive holds nothing of another
// organisation and no secret in clear, 4xx for bad input everywhere, and platform administrators only.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import { Secret, TOTP } from 'otpauth';
import { Secrets } from '../../../src/core/crypto.ts';
import {
  ARCHIVE_VERSION,
  type ArchiveHeader,
  ArchiveWriter,
  CopyCutter,
  dataRows,
  readArchive,
} from '../../../src/modules/backups/archive.ts';
import { cyclicTables } from '../../../src/modules/backups/catalogue.ts';
import { ENCRYPTED_COLUMNS, SEALED_VALUE, UNIQUE_POLICIES } from '../../../src/modules/backups/registry.ts';
import { uniqueIndexes } from '../../../src/modules/backups/store.ts';
import {
  createPostgresDatabase,
  engine,
  preparePgliteDir,
  signUp,
  signUpWithOrg,
  startTestApp,
  type TestApp,
} from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';
import { sendMail } from '../../support/smtp.ts';
import { until } from '../../support/until.ts';

const HOST = 'mx.backups.test';
const MESSAGES = 24;
const WEBHOOK_URL = 'http://127.0.0.1:9/hooks';

interface Org {
  token: string;
  orgId: string;
  id: string;
  password: string;
}

function totp(secret: string): string {
  return new TOTP({ secret: Secret.fromBase32(secret), digits: 6, period: 30, algorithm: 'SHA1' }).generate();
}

/** Rows in the archive's row format (binary COPY rows, each value its text or null). */
function encodeRows(rows: (string | null)[][]): Buffer {
  const parts: Buffer[] = [];
  for (const row of rows) {
    const head = Buffer.alloc(2);
    head.writeInt16BE(row.length);
    parts.push(head);
    for (const value of row) {
      const bytes = value === null ? null : Buffer.from(value);
      const length = Buffer.alloc(4);
      length.writeInt32BE(bytes ? bytes.length : -1);
      parts.push(length, ...(bytes ? [bytes] : []));
    }
  }
  return Buffer.concat(parts);
}

describe(`backups on ${engine}`, () => {
  const cleanups: (() => Promise<void>)[] = [];
  let dns: TestDnsServer[];
  let storage: { dataDir?: string; databaseUrl?: string };
  let env: Record<string, string>;
  /** The source installation, without workers once it is filled (nothing changes under the comparisons). */
  let s: TestApp;
  let admin: { token: string; orgId: string };
  let alice: Org;
  let other: Org;
  const plaintext: string[] = [];

  const adminCall = (
    t: TestApp,
    as: { token: string; orgId: string },
    method: string,
    url: string,
    body?: unknown,
  ) => t.call(method, url, { token: as.token, body, headers: { 'x-organization-id': as.orgId } });

  async function makeAdmin(t: TestApp, email: string) {
    await t.app.services.identity.createAdmin({ email, password: 'administrator passphrase' });
    const login = await t.call('POST', '/v1/auth/login', {
      body: { email, password: 'administrator passphrase' },
    });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    const token: string = login.body.access_token;
    const org = await t.call('POST', '/v1/organizations', { token, body: { name: 'Platform' } });
    assert.equal(org.status, 201, JSON.stringify(org.body));
    return { token, orgId: org.body.id as string };
  }

  /** Runs a job here, as a worker would (the source and target run no workers during the comparisons). */
  async function runJob(t: TestApp, as: { token: string; orgId: string }, id: string) {
    await t.app.services.trackedJobs.run(id);
    const job = await adminCall(t, as, 'GET', `/v1/jobs/${id}`);
    assert.equal(job.status, 200);
    return job.body;
  }

  async function backupOf(t: TestApp, as: { token: string; orgId: string }, organizationId: string) {
    const started = await adminCall(t, as, 'POST', '/v1/admin/backups', { organization_id: organizationId });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const job = await runJob(t, as, started.body.job.id);
    assert.equal(job.state, 'succeeded', JSON.stringify(job));
    const archive = await download(t, as, started.body.id);
    return { id: started.body.id as string, archive, job };
  }

  async function download(t: TestApp, as: { token: string; orgId: string }, id: string): Promise<Buffer> {
    const res = await t.app.http!.inject({
      method: 'GET',
      url: `/v1/admin/backups/${id}/download`,
      headers: { authorization: `Bearer ${as.token}` },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers['content-type'], 'application/zstd');
    assert.equal(Number(res.headers['content-length']), res.rawPayload.length);
    return res.rawPayload;
  }

  async function upload(t: TestApp, as: { token: string }, bytes: Buffer, type = 'application/zstd') {
    const res = await t.app.http!.inject({
      method: 'POST',
      url: '/v1/admin/backups/uploads',
      headers: { authorization: `Bearer ${as.token}`, 'content-type': type },
      payload: bytes,
    });
    return { status: res.statusCode, body: JSON.parse(res.body) };
  }

  async function restore(
    t: TestApp,
    as: { token: string; orgId: string },
    body: Record<string, unknown>,
  ): Promise<Record<string, any>> {
    const res = await adminCall(t, as, 'POST', '/v1/admin/restores', body);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const job = await runJob(t, as, res.body.id);
    assert.equal(job.state, 'succeeded', JSON.stringify(job));
    assert.equal(job.done, job.total);
    return job.result;
  }

  before(async () => {
    dns = [await startDnsServer()];
    storage =
      engine === 'postgres'
        ? { databaseUrl: await createPostgresDatabase(cleanups) }
        : { dataDir: preparePgliteDir(cleanups) };
    env = {
      MAILROOM_SECRET_KEY: randomBytes(32).toString('hex'),
      MAILROOM_HOSTNAME: HOST,
      MAILROOM_DNS_SERVERS: dns.map((d) => d.address).join(','),
      MAILROOM_DNS_TIMEOUT: '300ms',
      MAILROOM_DNS_TRIES: '1',
      MAILROOM_WEBHOOK_ALLOW_HOSTS: '127.0.0.1',
    };
    // Filled with workers (the MX's mail is processed), then run without them.
    const filling = await startTestApp({ ...storage, env, workers: true, smtp: true });
    try {
      alice = { ...(await signUpWithOrg(filling, 'alice@backups.test', 'Alpha')), password: '' };
      other = { ...(await signUpWithOrg(filling, 'olga@other.test', 'Omega')), password: '' };
      const domain = await verifiedDomain(filling, alice.token, 'alpha.test', dns);
      const otherDomain = await verifiedDomain(filling, other.token, 'omega.test', dns);
      const api = async (as: Org, method: string, url: string, body?: unknown, status = 201) => {
        const res = await filling.call(method, url, { token: as.token, body });
        assert.equal(res.status, status, `${url}: ${JSON.stringify(res.body)}`);
        return res.body;
      };
      const boxPassword = 'alpha mailbox passphrase 1';
      plaintext.push(boxPassword);
      const box = await api(alice, 'POST', '/v1/mailboxes', {
        address: 'info@alpha.test',
        password: boxPassword,
        export_password: true,
        first_name: 'Info',
      });
      await api(alice, 'POST', '/v1/mailboxes', { address: 'sales@alpha.test' });
      const app = await api(alice, 'POST', `/v1/mailboxes/${box.id}/app-passwords`, { label: 'Thunderbird' });
      plaintext.push(app.password);
      await api(alice, 'POST', '/v1/aliases', { address: 'team@alpha.test', targets: ['info@alpha.test'] });
      await api(alice, 'POST', '/v1/rules', {
        domain_id: domain.id,
        name: 'Archive invoices',
        action: 'store',
        folder: 'Archive',
        conditions: [{ field: 'subject', op: 'contains', value: 'invoice' }],
      });
      const key = await api(alice, 'POST', `/v1/organizations/${alice.orgId}/api-keys`, {
        name: 'CI',
        scopes: ['domains:read'],
      });
      plaintext.push(key.key);
      const credential = await api(alice, 'POST', '/v1/smtp-credentials', {
        name: 'CRM',
        domain_id: domain.id,
      });
      plaintext.push(credential.password);
      // A second member, with MFA on (a sealed TOTP secret and recovery codes).
      await api(alice, 'POST', `/v1/organizations/${alice.orgId}/invitations`, {
        email: 'bob@backups.test',
        role: 'member',
      });
      const bob = await signUp(filling, 'bob@backups.test');
      const accepted = await filling.call('POST', '/v1/invitations/accept', {
        token: bob.token,
        body: { token: filling.mailer.tokenFor('bob@backups.test', /invited/) },
      });
      assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
      const setup = await filling.call('POST', '/v1/auth/mfa/setup', { token: bob.token });
      assert.equal(setup.status, 200);
      plaintext.push(setup.body.secret);
      const enabled = await filling.call('POST', '/v1/auth/mfa/enable', {
        token: bob.token,
        body: { code: totp(setup.body.secret), password: bob.password },
      });
      assert.equal(enabled.status, 200, JSON.stringify(enabled.body));
      // A pending invitation, whose token the copy must not share.
      await api(alice, 'POST', `/v1/organizations/${alice.orgId}/invitations`, {
        email: 'carol@backups.test',
        role: 'viewer',
      });

      // Mail through the MX, with attachments of random bytes; and one for the other organisation.
      await api(other, 'POST', '/v1/mailboxes', { address: 'olga@omega.test' });
      for (let i = 0; i < MESSAGES; i++) {
        await sendMail(filling.smtpPort, {
          from: `customer${i}@example.net`,
          to: i % 3 === 2 ? 'team@alpha.test' : 'info@alpha.test',
          subject: i % 4 === 0 ? `invoice ${i}` : `Question ${i}`,
          text: `Hello number ${i}\n${'lorem ipsum '.repeat(50 + i)}`,
          attachments: [{ filename: `file${i}.bin`, content: randomBytes(2000 + i * 300) }],
        });
      }
      await sendMail(filling.smtpPort, {
        from: 'someone@example.net',
        to: 'olga@omega.test',
        subject: 'OMEGA-SECRET-SUBJECT',
        text: 'for omega only',
      });
      await until(
        () =>
          filling.app.database.query<{ n: number }>(
            `select count(*)::int as n from messages where processed_at is not null and direction = 'inbound'`,
          ),
        (r) => r.rows[0].n >= MESSAGES + 1,
      );
      void otherDomain;
      // A backup run by a worker, as in production, watched through GET /v1/jobs/:id.
      admin = await makeAdmin(filling, 'root@backups.test');
      const started = await adminCall(filling, admin, 'POST', '/v1/admin/backups', {
        organization_id: other.orgId,
      });
      assert.equal(started.status, 202, JSON.stringify(started.body));
      const watched = await until(
        () => adminCall(filling, admin, 'GET', `/v1/jobs/${started.body.job.id}`),
        (r) => r.body.state !== 'queued' && r.body.state !== 'running',
      );
      assert.equal(watched.body.state, 'succeeded', JSON.stringify(watched.body));
      assert.equal(watched.body.done, watched.body.total);
      assert.equal(watched.body.result.links.download, `/v1/admin/backups/${started.body.id}/download`);
      assert.ok((await download(filling, admin, started.body.id)).length > 0);
    } finally {
      await filling.close();
    }
    s = await startTestApp({ ...storage, env });
    // Written with no workers running: queued outbound mail, and a webhook with its secret.
    const webhook = await s.call('POST', '/v1/webhooks', { token: alice.token, body: { url: WEBHOOK_URL } });
    assert.equal(webhook.status, 201, JSON.stringify(webhook.body));
    plaintext.push(webhook.body.secret);
    for (let i = 0; i < 3; i++) {
      const sent = await s.call('POST', '/v1/messages/send', {
        token: alice.token,
        body: {
          from: 'info@alpha.test',
          to: [`friend${i}@example.org`],
          subject: `Outbound ${i}`,
          text: 'hi',
        },
      });
      assert.equal(sent.status, 202, JSON.stringify(sent.body));
    }
  });

  after(async () => {
    await s?.close();
    for (const c of cleanups.reverse()) await c();
    for (const d of dns ?? []) await d.close();
  });

  // ---- comparing ------------------------------------------------------------------------------------

  type Rows = Map<string, Record<string, unknown>[]>;

  /** Every table of an archive's header, read from `t` for `organizationId`, with sealed values opened. */
  async function readTables(
    t: TestApp,
    tables: string[],
    organizationId: string,
    key: string,
  ): Promise<Rows> {
    const secrets = new Secrets(Buffer.from(key, 'hex'));
    const users = `select user_id from memberships where organization_id = $1`;
    const { classification } = await t.app.services.backups.catalogue();
    const out: Rows = new Map();
    for (const table of tables) {
      const child = classification.children.find((c) => c.table === table);
      const where =
        table === 'organizations'
          ? 'id = $1'
          : table === 'users'
            ? `id in (${users})`
            : table === 'mfa_recovery_codes'
              ? `user_id in (${users})`
              : child
                ? `"${child.column}" in (select "${child.parentColumn}" from "${child.parent}" where organization_id = $1)`
                : 'organization_id = $1';
      const { rows } = await t.app.database.query<Record<string, unknown>>(
        `select * from "${table}" where ${where}`,
        [organizationId],
      );
      for (const row of rows) {
        for (const column of ENCRYPTED_COLUMNS[table] ?? [])
          if (typeof row[column] === 'string')
            row[column] = `opened:${secrets.decrypt(row[column] as string)}`;
      }
      out.set(table, rows);
    }
    return out;
  }

  // Ids: a value that is a uuid (or `kind:uuid`), as the restore maps them; a uuid inside other text (a
  // Message-ID, a Received header) is the mail's own, kept as it was.
  const UUID = /(?<="(?:[a-z_]+:)?)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?=")/gi;

  /** A row as text: keys sorted, bytes as hex (all of them: compared byte by byte), dates as ISO. */
  function text(row: Record<string, unknown>, drop: string[] = []): string {
    const norm = (v: unknown): unknown =>
      Buffer.isBuffer(v) || v instanceof Uint8Array
        ? `bytes:${Buffer.from(v).toString('hex')}`
        : v instanceof Date
          ? v.toISOString()
          : Array.isArray(v)
            ? v.map(norm)
            : v && typeof v === 'object'
              ? Object.fromEntries(
                  Object.keys(v)
                    .sort()
                    .map((k) => [k, norm((v as Record<string, unknown>)[k])]),
                )
              : v;
    return JSON.stringify(
      Object.fromEntries(
        Object.keys(row)
          .filter((k) => !drop.includes(k))
          .sort()
          .map((k) => [k, norm(row[k])]),
      ),
    );
  }

  /**
   * The tables with every uuid replaced by a label given in a canonical order (tables in order, rows by
   * their content with the ids known so far), so that two copies whose ids differ by a consistent
   * mapping read alike, and any inconsistency shows.
   */
  function canonical(rows: Rows, order: string[], drop: Record<string, string[]>): Map<string, string[]> {
    const labels = new Map<string, string>();
    const texts = new Map(
      order.map((table) => [table, (rows.get(table) ?? []).map((r) => text(r, drop[table]))]),
    );
    const signature = (t: string) => t.replace(UUID, (u) => labels.get(u.toLowerCase()) ?? '?');
    const label = (t: string) => {
      for (const u of t.match(UUID) ?? []) {
        const id = u.toLowerCase();
        if (!labels.has(id)) labels.set(id, `#${labels.size}`);
      }
    };
    const sortedBySignature = (list: string[]) => {
      const signed = list.map((t) => ({ t, s: signature(t) }));
      return signed.sort((a, b) => a.s.localeCompare(b.s));
    };
    // Ids are labelled first from rows that no other row of their table resembles. Rows alike but for ids
    // not labelled yet (events written in one statement, in the same millisecond) would otherwise label
    // them in whatever order the database returned them, which a copy need not share.
    for (let grew = true; grew; ) {
      const before = labels.size;
      for (const table of order) {
        const signed = sortedBySignature(texts.get(table)!);
        const alike = new Map<string, number>();
        for (const { s } of signed) alike.set(s, (alike.get(s) ?? 0) + 1);
        for (const { t, s } of signed) if (alike.get(s) === 1 && s.includes('?')) label(t);
      }
      grew = labels.size > before;
    }
    const out = new Map<string, string[]>();
    for (const table of order) {
      for (const { t } of sortedBySignature(texts.get(table)!)) label(t);
      out.set(table, texts.get(table)!.map(signature).sort());
    }
    return out;
  }

  let backupA: { id: string; archive: Buffer };
  let header: { tables: { name: string; rows: number }[]; organization: { id: string } } & Record<
    string,
    any
  >;

  function lines(archive: Buffer): string {
    return zlib.zstdDecompressSync(archive).toString('latin1');
  }

  /** Every table's rows in an archive (values as text), read as a restore reads them. */
  async function archiveRows(archive: Buffer): Promise<Map<string, (string | null)[][]>> {
    const out = new Map<string, (string | null)[][]>();
    for await (const item of readArchive(Readable.from([archive])))
      if (item.type === 'rows') out.set(item.table.name, [...(out.get(item.table.name) ?? []), ...item.rows]);
    return out;
  }

  /** An archive made here, its counts and checksums as a backup writes them (so only its rows are wrong). */
  async function craftArchive(
    made: ArchiveHeader,
    rows: Record<string, (string | null)[][]>,
  ): Promise<Buffer> {
    const chunks: Buffer[] = [];
    const out = new Writable({
      write(chunk, _encoding, done) {
        chunks.push(chunk);
        done();
      },
    });
    const writer = new ArchiveWriter(out);
    await writer.header({
      ...made,
      tables: made.tables.map((t) => ({ ...t, rows: rows[t.name]?.length ?? 0 })),
    });
    for (const t of made.tables)
      if (rows[t.name]?.length) await writer.rows(t.name, rows[t.name].length, encodeRows(rows[t.name]), 0);
    await writer.end();
    return Buffer.concat(chunks);
  }

  // ---- the tests --------------------------------------------------------------------------------------

  test('every table is classified, none in a cycle, and every unique key across organisations has a policy', async () => {
    const { catalogue, classification } = await s.app.services.backups.catalogue();
    assert.deepEqual(
      classification.unclassified,
      [],
      'tables without organization_id need a line in registry.ts',
    );
    assert.ok(classification.tenant.includes('messages') && classification.tenant.includes('blobs'));
    assert.deepEqual(cyclicTables(catalogue, [...classification.tenant, ...classification.related]), []);
    const backedUp = new Set([
      ...classification.tenant,
      ...classification.related,
      ...classification.children.map((c) => c.table),
    ]);
    const missing = (await uniqueIndexes(s.app.database.db))
      .filter((i) => backedUp.has(i.table))
      .filter((i) => !i.columns.includes('organization_id'))
      .filter((i) => {
        const columns = catalogue.tables.get(i.table)!;
        // A key with an id in it cannot clash: a copy's ids are new.
        return !i.columns.some((c) => columns.find((col) => col.name === c)?.typname === 'uuid');
      })
      .filter((i) => !(i.name in UNIQUE_POLICIES))
      .map((i) => `${i.table}: ${i.name}`);
    assert.deepEqual(missing, [], 'a unique key spanning organisations needs a policy in registry.ts');
  });

  test('every sealed value is in a registered column', async () => {
    const { catalogue } = await s.app.services.backups.catalogue();
    const unregistered: string[] = [];
    for (const [table, columns] of catalogue.tables) {
      for (const c of columns) {
        if (c.typname !== 'text' || (ENCRYPTED_COLUMNS[table] ?? []).includes(c.name)) continue;
        const { rows } = await s.app.database.query<{ v: string }>(
          `select "${c.name}" as v from "${table}" where "${c.name}" is not null`,
        );
        if (rows.some((r) => SEALED_VALUE.test(r.v))) unregistered.push(`${table}.${c.name}`);
      }
    }
    assert.deepEqual(unregistered, [], 'columns holding Secrets.encrypt values must be in ENCRYPTED_COLUMNS');
    // The registry is not stale either: each registered column of a filled table holds sealed values.
    for (const [table, column] of [
      ['mailboxes', 'export_password'],
      ['domain_dkim_keys', 'private_key'],
      ['webhook_endpoints', 'secret'],
      ['users', 'mfa_secret'],
    ]) {
      const { rows } = await s.app.database.query<{ v: string }>(
        `select "${column}" as v from "${table}" where "${column}" is not null`,
      );
      assert.ok(rows.length && rows.every((r) => SEALED_VALUE.test(r.v)), `${table}.${column}`);
    }
  });

  test('a backup job writes the archive; it holds the organisation, nothing of another, and no secret in clear', async () => {
    backupA = await backupOf(s, admin, alice.orgId);
    const view = await adminCall(s, admin, 'GET', `/v1/admin/backups/${backupA.id}`);
    assert.equal(view.status, 200);
    assert.equal(view.body.state, 'complete');
    assert.equal(view.body.size, backupA.archive.length);
    assert.equal(view.body.job.state, 'succeeded');
    assert.equal(view.body.job.done, view.body.job.total);
    const all = lines(backupA.archive);
    header = JSON.parse(all.slice(0, all.indexOf('\n')));
    assert.equal(header.format, 'mailroom-backup');
    assert.equal(header.organization.id, alice.orgId);
    const names = header.tables.map((t) => t.name);
    for (const table of [
      'organizations',
      'users',
      'memberships',
      'domains',
      'domain_dkim_keys',
      'mailboxes',
      'blobs',
      'messages',
      'mailbox_messages',
      'aliases',
      'rules',
      'events',
      'audit_log',
      'webhook_endpoints',
      'deliveries',
      'api_keys',
      'helpdesk_tickets',
    ].filter((t) => t !== 'helpdesk_tickets' || names.includes(t)))
      assert.ok(names.includes(table), table);
    const count = (t: string) => header.tables.find((x) => x.name === t)!.rows;
    assert.equal(count('users'), 2);
    assert.ok(count('blobs') >= MESSAGES + 3, `blobs: ${count('blobs')}`);
    assert.ok(!names.includes('sessions') && !names.includes('schema_migrations'));
    // Nothing of the other organisation.
    const otherIds = [other.orgId, other.id];
    const { rows: otherRows } = await s.app.database.query<{ id: string }>(
      `select id::text from messages where organization_id = $1 union all select id::text from domains where organization_id = $1`,
      [other.orgId],
    );
    for (const needle of [
      ...otherIds,
      ...otherRows.map((r) => r.id),
      'omega.test',
      'OMEGA-SECRET-SUBJECT',
      'olga@',
    ])
      assert.ok(!all.includes(needle), `the archive holds ${needle}`);
    // No secret in clear.
    for (const secret of plaintext) assert.ok(!all.includes(secret), 'a secret is in the archive in clear');
    assert.ok(!all.includes('PRIVATE KEY'), 'a DKIM key is in the archive in clear');
    // A backup of the other organisation holds nothing of this one.
    const omega = await backupOf(s, admin, other.orgId);
    const omegaText = lines(omega.archive);
    for (const needle of [alice.orgId, alice.id, 'alpha.test', 'invoice'])
      assert.ok(!omegaText.includes(needle), `the other archive holds ${needle}`);
    const listed = await adminCall(s, admin, 'GET', `/v1/admin/backups?organization_id=${other.orgId}`);
    assert.equal(listed.status, 200);
    assert.equal(listed.body.total, 2);
    assert.equal(listed.body.items[0].id, omega.id);
  });

  test('restored into a fresh installation with another key: every row and every byte, ids kept', async () => {
    const target = await startTestApp();
    try {
      const targetAdmin = await makeAdmin(target, 'root@target.test');
      const uploaded = await upload(target, targetAdmin, backupA.archive);
      assert.equal(uploaded.status, 201, JSON.stringify(uploaded.body));
      assert.equal(uploaded.body.state, 'complete');
      assert.equal(uploaded.body.organization.id, alice.orgId);
      // Sealed under the source's key: the restore needs it, and only the right one.
      const noKey = await adminCall(target, targetAdmin, 'POST', '/v1/admin/restores', {
        backup_id: uploaded.body.id,
        mode: 'keep_ids',
      });
      assert.equal(noKey.status, 422);
      assert.equal(noKey.body.code, 'source_key_required');
      const wrongKey = await adminCall(target, targetAdmin, 'POST', '/v1/admin/restores', {
        backup_id: uploaded.body.id,
        mode: 'keep_ids',
        source_key: randomBytes(32).toString('hex'),
      });
      assert.equal(wrongKey.status, 422);
      assert.equal(wrongKey.body.code, 'source_key_mismatch');
      const result = await restore(target, targetAdmin, {
        backup_id: uploaded.body.id,
        mode: 'keep_ids',
        source_key: env.MAILROOM_SECRET_KEY,
      });
      assert.equal(result.organization.id, alice.orgId);
      assert.equal(result.secrets, 'resealed');
      assert.deepEqual(result.users, { created: 2, matched: 0 });
      const names = header.tables.map((t) => t.name);
      const before = await readTables(s, names, alice.orgId, env.MAILROOM_SECRET_KEY);
      const restored = await readTables(target, names, alice.orgId, target.env.MAILROOM_SECRET_KEY);
      for (const table of names) {
        const a = (before.get(table) ?? []).map((r) => text(r)).sort();
        const b = (restored.get(table) ?? []).map((r) => text(r)).sort();
        assert.equal(b.length, a.length, `${table}: rows`);
        assert.deepEqual(b, a, `${table} differs`);
      }
      // Sealed anew: the target's values differ from the source's, and open under the target's key.
      const sealed = await target.app.database.query<{ secret: string }>(
        'select secret from webhook_endpoints where organization_id = $1',
        [alice.orgId],
      );
      const original = await s.app.database.query<{ secret: string }>(
        'select secret from webhook_endpoints where organization_id = $1',
        [alice.orgId],
      );
      assert.notEqual(sealed.rows[0].secret, original.rows[0].secret);
      // The restored organisation works: its owner signs in and reads a raw message, byte for byte.
      const login = await target.call('POST', '/v1/auth/login', {
        body: { email: 'alice@backups.test', password: 'correct horse battery staple' },
      });
      assert.equal(login.status, 200, JSON.stringify(login.body));
      const list = await target.call('GET', '/v1/messages?page_size=1', { token: login.body.access_token });
      assert.equal(list.status, 200);
      const id = list.body.items[0].id;
      const raw = async (t: TestApp, token: string) =>
        (
          await t.app.http!.inject({
            method: 'GET',
            url: `/v1/messages/${id}/raw`,
            headers: { authorization: `Bearer ${token}` },
          })
        ).rawPayload;
      assert.ok((await raw(target, login.body.access_token)).equals(await raw(s, alice.token)));
      // The organisation is there now: the same restore again is refused before any work.
      const again = await adminCall(target, targetAdmin, 'POST', '/v1/admin/restores', {
        backup_id: uploaded.body.id,
        mode: 'keep_ids',
        source_key: env.MAILROOM_SECRET_KEY,
      });
      assert.equal(again.status, 409);
    } finally {
      await target.close();
    }
  });

  test('restored as a new organisation beside the source: every id new, consistently, nothing shared', async () => {
    const result = await restore(s, admin, {
      backup_id: backupA.id,
      mode: 'new_organization',
      name: 'Alpha copy',
    });
    const copy = result.organization;
    assert.notEqual(copy.id, alice.orgId);
    assert.equal(copy.name, 'Alpha copy');
    assert.equal(result.secrets, 'kept');
    assert.deepEqual(result.users, { created: 0, matched: 2 });
    const names = header.tables.map((t) => t.name);
    const key = env.MAILROOM_SECRET_KEY;
    const source = await readTables(s, names, alice.orgId, key);
    const restored = await readTables(s, names, copy.id, key);
    // What the policies change on a clash with the source (registry.ts), compared apart.
    const drop: Record<string, string[]> = {
      organizations: ['name', 'slug'],
      api_keys: ['key_hash', 'revoked_at'],
      invitations: ['token_hash', 'revoked_at'],
      smtp_credentials: ['username'],
      mailbox_app_passwords: ['password_hash'],
      domains: ['ownership_verified', 'status', 'verified_at', 'next_check_at'],
    };
    const a = canonical(source, names, drop);
    const b = canonical(restored, names, drop);
    for (const table of names) assert.deepEqual(b.get(table), a.get(table), `${table} differs`);
    // No id of the source is in the copy (users are the same people: matched, not copied).
    const sourceIds = new Set<string>();
    for (const table of names.filter((n) => n !== 'users' && n !== 'mfa_recovery_codes'))
      for (const row of source.get(table) ?? [])
        for (const u of text(row).match(UUID) ?? []) sourceIds.add(u);
    for (const userId of (source.get('users') ?? []).map((u) => u.id as string)) sourceIds.delete(userId);
    for (const table of names.filter((n) => n !== 'users' && n !== 'mfa_recovery_codes'))
      for (const row of restored.get(table) ?? [])
        for (const u of text(row).match(UUID) ?? [])
          assert.ok(!sourceIds.has(u), `${table} keeps the source's id ${u}`);
    // The policies: the domain is unverified in the copy, the API key and invitation revoked anew.
    const domains = restored.get('domains')!;
    assert.ok(domains.every((d) => d.ownership_verified === false && d.status === 'pending'));
    assert.ok(restored.get('api_keys')!.every((k) => k.revoked_at !== null));
    const usernames = new Set(source.get('smtp_credentials')!.map((c) => c.username));
    assert.ok(restored.get('smtp_credentials')!.every((c) => !usernames.has(c.username)));
    // Its members are the source's members, signed in as before.
    const orgs = await s.call('GET', '/v1/organizations', { token: alice.token });
    assert.ok(orgs.body.items.some((o: any) => o.id === copy.id));
    // And the copy's archive reads back the same, byte for byte in its messages.
    const blobsA = (source.get('blobs') ?? []).map((r) => text(r, ['id', 'organization_id'])).sort();
    const blobsB = (restored.get('blobs') ?? []).map((r) => text(r, ['id', 'organization_id'])).sort();
    assert.deepEqual(blobsB, blobsA);
  });

  test('a restore that fails leaves nothing behind', async () => {
    // One character changed: every row goes in, then the trailer's checksum refuses the archive.
    const damaged = zlib.zstdCompressSync(
      Buffer.from(lines(backupA.archive).replace('Question 1', 'Question Z'), 'latin1'),
    );
    const refused = await upload(s, admin, damaged);
    assert.equal(refused.status, 422);
    assert.match(refused.body.detail, /damaged/);
    const count = async () =>
      (
        await s.app.database.query(
          `select (select count(*) from organizations)::int as organizations, (select count(*) from messages)::int as messages,
                  (select count(*) from blobs)::int as blobs, (select count(*) from memberships)::int as memberships`,
        )
      ).rows[0];
    const before = await count();
    await assert.rejects(
      s.app.services.backups.restoreFrom(Readable.from([damaged]), { mode: 'new_organization' }),
      /damaged/,
    );
    assert.deepEqual(await count(), before);
    // A made-up archive naming another organisation in its rows writes nothing into that organisation.
    const text = lines(backupA.archive);
    const at = text.indexOf(alice.orgId, text.indexOf('\n'));
    const forged = zlib.zstdCompressSync(
      Buffer.from(`${text.slice(0, at)}${other.orgId}${text.slice(at + alice.orgId.length)}`, 'latin1'),
    );
    await assert.rejects(
      s.app.services.backups.restoreFrom(Readable.from([forged]), { mode: 'new_organization' }),
      /another organisation/,
    );
    assert.deepEqual(await count(), before);
    // The organisation of a keep_ids restore is here: refused before any work.
    const res = await adminCall(s, admin, 'POST', '/v1/admin/restores', {
      backup_id: backupA.id,
      mode: 'keep_ids',
    });
    assert.equal(res.status, 409);
  });

  test('a crafted archive cannot attach rows to another organisation’s, nor write what no backup holds', async () => {
    // The other organisation has a helpdesk rule and a ticket; a made-up organisation's archive names them
    // in helpdesk_automation_fires, a table without organization_id whose rows are its parents'.
    const call = async (method: string, url: string, body: unknown) => {
      const res = await s.call(method, url, { token: other.token, body });
      assert.equal(res.status, 201, `${url}: ${JSON.stringify(res.body)}`);
      return res.body;
    };
    const desk = await call('POST', '/v1/helpdesk/desks', {
      name: 'Omega desk',
      addresses: ['olga@omega.test'],
    });
    const ticket = await call('POST', '/v1/tickets', {
      desk_id: desk.id,
      subject: 'Omega ticket',
      requester: { email: 'customer@example.net' },
      body: 'hello',
    });
    const rule = await call('POST', '/v1/helpdesk/automations', {
      name: 'Close',
      trigger: 'ticket.created',
      actions: [{ type: 'close' }],
    });
    const full = header as unknown as ArchiveHeader;
    const source = await archiveRows(backupA.archive);
    const crafted = randomUUID();
    const orgTable = full.tables.find((t) => t.name === 'organizations')!;
    const orgRow = [...source.get('organizations')![0]];
    const column = (table: string, name: string) =>
      full.tables.find((t) => t.name === table)!.columns.findIndex((c) => c.name === name);
    orgRow[column('organizations', 'id')] = crafted;
    orgRow[column('organizations', 'slug')] = `crafted-${crafted.slice(-6)}`;
    const fires = full.tables.find((t) => t.name === 'helpdesk_automation_fires')!;
    const now = new Date().toISOString();
    const fire = fires.columns.map((c) =>
      c.name === 'automation_id' ? rule.id : c.name === 'ticket_id' ? ticket.id : now,
    );
    const count = async () =>
      (
        await s.app.database.query(
          `select (select count(*) from organizations)::int as organizations,
                  (select count(*) from helpdesk_automation_fires)::int as fires,
                  (select count(*) from mfa_recovery_codes)::int as codes`,
        )
      ).rows[0];
    const before = await count();
    const restoreCrafted = (tables: ArchiveHeader['tables'], rows: Record<string, (string | null)[][]>) =>
      craftArchive({ ...full, organization: { ...full.organization, id: crafted }, tables }, rows).then(
        (bytes) => s.app.services.backups.restoreFrom(Readable.from([bytes]), { mode: 'keep_ids' }),
      );
    await assert.rejects(
      restoreCrafted([orgTable, fires], { organizations: [orgRow], helpdesk_automation_fires: [fire] }),
      /helpdesk_automation_fires holds a row whose automation_id is no helpdesk_automations row of the organisation/,
    );
    // Recovery codes only of the archive's own users (not of a user this installation has).
    const codes = full.tables.find((t) => t.name === 'mfa_recovery_codes')!;
    const { rows: adminUser } = await s.app.database.query<{ id: string }>(
      `select id::text from users where email = 'root@backups.test'`,
    );
    const code = codes.columns.map((c) =>
      c.name === 'user_id'
        ? adminUser[0].id
        : c.name === 'id'
          ? randomUUID()
          : c.name === 'code_hash'
            ? 'x'
            : now,
    );
    await assert.rejects(
      restoreCrafted([orgTable, codes], { organizations: [orgRow], mfa_recovery_codes: [code] }),
      /a user the archive does not hold/,
    );
    // Nor a table of the installation.
    const sessions = { name: 'sessions', columns: [{ name: 'id', type: 'uuid' }], binary: [], rows: 0 };
    await assert.rejects(
      restoreCrafted([orgTable, sessions], { organizations: [orgRow] }),
      /no organisation's/,
    );
    assert.deepEqual(await count(), before);
  });

  test('the database’s bytes make the same batches however they arrive', () => {
    const width = 3;
    const rows = Array.from({ length: 40 }, (_, i) => [`row ${i}`, i % 3 ? null : 'x'.repeat(i * 7), `${i}`]);
    const body = encodeRows(rows);
    const copy = Buffer.concat([
      Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'),
      Buffer.alloc(8),
      body,
      Buffer.from([0xff, 0xff]),
    ]);
    for (const piece of [1, 2, 3, 5, 17, 64, 1000, copy.length]) {
      const cutter = new CopyCutter(width, 0, 100);
      const batches = [];
      for (let at = 0; at < copy.length; at += piece)
        batches.push(...cutter.push(copy.subarray(at, at + piece)));
      const last = cutter.end();
      if (last) batches.push(last);
      assert.equal(
        batches.reduce((n, b) => n + b.rows, 0),
        rows.length,
        `pieces of ${piece}`,
      );
      assert.ok(Buffer.concat(batches.map((b) => b.tuples)).equals(body), `pieces of ${piece}`);
    }
    const unended = new CopyCutter(width, 0, 1e9);
    unended.push(copy.subarray(0, copy.length - 2));
    assert.throws(() => unended.end(), /before its end mark/);
    const short = new CopyCutter(width, 0, 1e9);
    short.push(copy.subarray(0, copy.length - 5));
    assert.throws(() => short.end(), /ends inside a row/);
    const wide = new CopyCutter(width + 1, 0, 1e9);
    wide.push(copy);
    assert.throws(() => wide.end(), /fields/);
  });

  test('the embedded engine answers a FETCH as bytes, and an error as a query throws it', {
    skip: engine !== 'pglite' && 'the embedded engine only',
  }, async () => {
    const { raw } = s.app.database;
    if (raw.kind !== 'pglite') return;
    const rows = await raw.pglite.transaction(async (tx) => {
      await tx.query(`declare c binary no scroll cursor for select 'a'::text, '\\x0102'::bytea`);
      return tx.raw('fetch forward 5 from c');
    });
    const batch = dataRows(Buffer.from(rows), 2, 1);
    assert.equal(batch.rows, 1);
    assert.equal(batch.binaryBytes, 2);
    assert.ok(batch.tuples.equals(encodeRows([['a', '\u0001\u0002']])));
    await assert.rejects(
      raw.pglite.transaction((tx) => tx.raw('select 1/0')),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, '22012');
        assert.match(err.message, /division by zero/);
        return true;
      },
    );
    // The session goes on as before.
    assert.equal((await raw.pglite.query<{ n: number }>('select 1 as n')).rows[0].n, 1);
  });

  test('bad input to every endpoint is a 4xx', async () => {
    const id = '01900000-0000-7000-8000-000000000000';
    const cases: [string, string, unknown, number][] = [
      ['POST', '/v1/admin/backups', {}, 400],
      ['POST', '/v1/admin/backups', { organization_id: 'nope' }, 400],
      ['POST', '/v1/admin/backups', { organization_id: id }, 404],
      ['POST', '/v1/admin/backups', { organization_id: alice.orgId, extra: 1 }, 400],
      ['GET', '/v1/admin/backups?page_size=0', undefined, 400],
      ['GET', '/v1/admin/backups?organization_id=x', undefined, 400],
      ['GET', '/v1/admin/backups/nope', undefined, 400],
      ['GET', `/v1/admin/backups/${id}`, undefined, 404],
      ['GET', `/v1/admin/backups/${id}/download`, undefined, 404],
      ['DELETE', `/v1/admin/backups/${id}`, undefined, 404],
      ['POST', '/v1/admin/restores', {}, 400],
      ['POST', '/v1/admin/restores', { backup_id: id, mode: 'keep_ids' }, 404],
      ['POST', '/v1/admin/restores', { backup_id: backupA.id, mode: 'sideways' }, 400],
      [
        'POST',
        '/v1/admin/restores',
        { backup_id: backupA.id, mode: 'new_organization', slug: 'Bad Slug' },
        400,
      ],
      [
        'POST',
        '/v1/admin/restores',
        { backup_id: backupA.id, mode: 'new_organization', source_key: 'abc' },
        400,
      ],
      [
        'POST',
        '/v1/admin/restores',
        { backup_id: backupA.id, mode: 'new_organization', slug: 'platform' },
        409,
      ],
    ];
    for (const [method, url, body, status] of cases) {
      const res = await adminCall(s, admin, method, url, body);
      assert.equal(
        res.status,
        status,
        `${method} ${url} ${JSON.stringify(body)}: ${JSON.stringify(res.body)}`,
      );
      assert.equal(res.body.status, status);
    }
    // The job's organisation must be the administrator's.
    const notMine = await s.call('POST', '/v1/admin/backups', {
      token: admin.token,
      body: { organization_id: alice.orgId },
      headers: { 'x-organization-id': alice.orgId },
    });
    assert.equal(notMine.status, 404);
    // Uploads: not an archive, empty, JSON, cut short, the wrong format version.
    assert.equal((await upload(s, admin, Buffer.from('hello, world'))).status, 422);
    assert.equal((await upload(s, admin, Buffer.alloc(0))).status, 422);
    const json = await s.call('POST', '/v1/admin/backups/uploads', { token: admin.token, body: { a: 1 } });
    assert.equal(json.status, 415);
    const cut = await upload(s, admin, backupA.archive.subarray(0, Math.floor(backupA.archive.length / 2)));
    assert.equal(cut.status, 422);
    const text = lines(backupA.archive);
    const newer = zlib.gzipSync(
      Buffer.from(text.replace(`"version":${ARCHIVE_VERSION}`, '"version":99'), 'latin1'),
    );
    const refused = await upload(s, admin, newer, 'application/gzip');
    assert.equal(refused.status, 422);
    assert.match(refused.body.detail, /version 99/);
    const notJson = zlib.zstdCompressSync(Buffer.from('{"type":"header"\n'));
    assert.equal((await upload(s, admin, notJson)).status, 422);
    // A gzip archive is taken as well as Zstandard.
    const gzipped = await upload(
      s,
      admin,
      zlib.gzipSync(zlib.zstdDecompressSync(backupA.archive)),
      'application/gzip',
    );
    assert.equal(gzipped.status, 201, JSON.stringify(gzipped.body));
    const deleted = await adminCall(s, admin, 'DELETE', `/v1/admin/backups/${gzipped.body.id}`);
    assert.equal(deleted.status, 204);
    assert.equal((await adminCall(s, admin, 'GET', `/v1/admin/backups/${gzipped.body.id}`)).status, 404);
  });

  test('platform administrators only: others get 404, API keys 403', async () => {
    const key = await s.call('POST', `/v1/organizations/${alice.orgId}/api-keys`, {
      token: alice.token,
      body: { name: 'all', scopes: ['*'] },
    });
    assert.equal(key.status, 201);
    const calls: [string, string, unknown][] = [
      ['POST', '/v1/admin/backups', { organization_id: alice.orgId }],
      ['GET', '/v1/admin/backups', undefined],
      ['GET', `/v1/admin/backups/${backupA.id}`, undefined],
      ['GET', `/v1/admin/backups/${backupA.id}/download`, undefined],
      ['DELETE', `/v1/admin/backups/${backupA.id}`, undefined],
      ['POST', '/v1/admin/restores', { backup_id: backupA.id, mode: 'new_organization' }],
    ];
    for (const [method, url, body] of calls) {
      assert.equal((await s.call(method, url, { token: alice.token, body })).status, 404, `${method} ${url}`);
      assert.equal(
        (await s.call(method, url, { token: key.body.key, body })).status,
        403,
        `${method} ${url}`,
      );
      assert.equal((await s.call(method, url, { body })).status, 401, `${method} ${url}`);
    }
    const upload403 = await upload(s, { token: alice.token }, backupA.archive);
    assert.equal(upload403.status, 404);

    // The jobs are filed under the administrator's organisation, and are the installation's, not its
    // members': an API key of that organisation does not see them; the administrator does.
    const platformKey = await s.call('POST', `/v1/organizations/${admin.orgId}/api-keys`, {
      token: admin.token,
      body: { name: 'jobs', scopes: ['jobs:read', 'jobs:write'] },
    });
    assert.equal(platformKey.status, 201, JSON.stringify(platformKey.body));
    const asKey = (method: string, url: string) => s.call(method, url, { token: platformKey.body.key });
    const listed = await asKey('GET', '/v1/jobs?page_size=100');
    assert.equal(listed.status, 200);
    assert.deepEqual(
      listed.body.items.filter((j: { kind: string }) => j.kind.startsWith('backup')),
      [],
      'no backup or restore job listed',
    );
    assert.equal((await asKey('GET', `/v1/jobs/${backupA.id}`)).status, 404);
    assert.equal((await asKey('DELETE', `/v1/jobs/${backupA.id}`)).status, 404);
    const seen = await adminCall(s, admin, 'GET', '/v1/jobs?page_size=100');
    assert.ok(
      seen.body.items.some((j: { id: string }) => j.id === backupA.id),
      'the administrator sees it',
    );
    assert.equal((await adminCall(s, admin, 'GET', `/v1/jobs/${backupA.id}`)).status, 200);
  });
});
