// Starts a real Mailroom for a test: embedded PGlite (a copy of a migrated template, for speed) or, with
// MAILROOM_TEST_ENGINE=postgres, a fresh database on the PostgreSQL server named by DATABASE_URL.
import { randomBytes, randomInt } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createMailroom, type Mailroom, type MailroomOptions } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import type { Clock } from '../../src/core/clock.ts';
import { MemoryMailer } from './mailer.ts';

export const engine = process.env.MAILROOM_TEST_ENGINE === 'postgres' ? 'postgres' : 'pglite';

export interface TestApp {
  app: Mailroom;
  mailer: MemoryMailer;
  env: Record<string, string>;
  /** The MX's port on 127.0.0.1 (started with `smtp: true`). */
  smtpPort: number;
  /** The submission server's STARTTLS port on 127.0.0.1 (started with `submission: true`). */
  submissionPort: number;
  /** Its implicit TLS port, when MAILROOM_SUBMISSION_TLS_PORT is set (0 picks one); else 0. */
  submissionTlsPort: number;
  /** The IMAP server's STARTTLS port on 127.0.0.1 (started with `imap: true`); its implicit TLS port when MAILROOM_IMAP_TLS_PORT is set. */
  imapPort: number;
  imapTlsPort: number;
  /** The POP3 server's STLS port (started with `imap: true`); its implicit TLS port when MAILROOM_POP3_TLS_PORT is set. */
  pop3Port: number;
  pop3TlsPort: number;
  /** Fastify inject with JSON in and out. */
  call(method: string, url: string, options?: CallOptions): Promise<CallResult>;
  close(): Promise<void>;
}

export interface CallOptions {
  token?: string;
  body?: unknown;
  /** Sent as-is (no JSON encoding). */
  rawBody?: string;
  headers?: Record<string, string>;
  ip?: string;
}

export interface CallResult {
  status: number;
  body: any;
  headers: Record<string, unknown>;
}

export interface StartOptions {
  env?: Record<string, string>;
  workers?: boolean;
  /** Start the MX on a free loopback port. */
  smtp?: boolean;
  /** Start the submission server on a free loopback port. */
  submission?: boolean;
  /** Start the IMAP and POP3 servers on free loopback ports. */
  imap?: boolean;
  /** Reuse this database (for multi-process tests) instead of creating one. */
  databaseUrl?: string;
  /** Reuse this data dir (restart tests on the embedded engine). */
  dataDir?: string;
  /** The clock scheduled work reads (a ManualClock runs simulated days). */
  clock?: Clock;
}

export async function startTestApp(options: StartOptions = {}): Promise<TestApp> {
  const cleanups: (() => Promise<void>)[] = [];
  const env: Record<string, string> = {
    MAILROOM_HTTP_PORT: '0',
    MAILROOM_LOG_LEVEL: 'silent',
    MAILROOM_SECRET_KEY: randomBytes(32).toString('hex'),
    MAILROOM_RATE_LIMIT_PER_MINUTE: '100000',
    MAILROOM_SMTP_PORT: '0',
    MAILROOM_SUBMISSION_PORT: '0',
    MAILROOM_IMAP_PORT: '0',
    MAILROOM_POP3_PORT: '0',
    // The remote servers of external-account tests (Dovecot, sinks) are on loopback.
    MAILROOM_ACCOUNTS_ALLOW_HOSTS: '127.0.0.1',
    ...options.env,
  };
  if (engine === 'postgres' || options.databaseUrl) {
    const url = options.databaseUrl ?? (await createPostgresDatabase(cleanups));
    env.DATABASE_URL = url;
  } else {
    env.MAILROOM_DATA_DIR = options.dataDir ?? preparePgliteDir(cleanups);
  }
  const config = loadConfig(env, null);
  const mailer = new MemoryMailer();
  const mailroomOptions: MailroomOptions = {
    http: true,
    workers: options.workers ?? false,
    smtp: options.smtp ?? false,
    submission: options.submission ?? false,
    imap: options.imap ?? false,
    mailer,
    clock: options.clock,
  };
  const app = await createMailroom(config, mailroomOptions);
  const http = app.http!;
  const smtpPort = app.smtp ? await app.smtp.listen() : 0;
  const submissionPorts = app.submission ? await app.submission.listen() : null;
  const imapPorts = app.imap ? await app.imap.listen() : null;
  const pop3Ports = app.pop3 ? await app.pop3.listen() : null;
  return {
    app,
    mailer,
    env,
    smtpPort,
    submissionPort: submissionPorts?.port ?? 0,
    submissionTlsPort: submissionPorts?.tlsPort ?? 0,
    imapPort: imapPorts?.port ?? 0,
    imapTlsPort: imapPorts?.tlsPort ?? 0,
    pop3Port: pop3Ports?.port ?? 0,
    pop3TlsPort: pop3Ports?.tlsPort ?? 0,
    async call(method, url, o = {}) {
      const headers: Record<string, string> = { ...o.headers };
      if (o.token) headers.authorization = `Bearer ${o.token}`;
      let payload: string | undefined;
      if (o.rawBody !== undefined) payload = o.rawBody;
      else if (o.body !== undefined) {
        payload = JSON.stringify(o.body);
        headers['content-type'] ??= 'application/json';
      }
      const res = await http.inject({
        method: method as 'GET',
        url,
        headers,
        payload,
        remoteAddress: o.ip ?? '127.0.0.1',
      });
      let body: any = res.body;
      const type = String(res.headers['content-type'] ?? '');
      if (type.includes('json') && res.body) body = JSON.parse(res.body);
      return { status: res.statusCode, body, headers: res.headers };
    },
    async close() {
      await app.close();
      for (const c of cleanups.reverse()) await c();
    },
  };
}

/** A copy of the migrated template that scripts/test.ts prepared, or an empty dir when run alone. */
export function preparePgliteDir(cleanups: (() => Promise<void>)[]): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'mailroom-test-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const template = process.env.MAILROOM_TEST_PGLITE_TEMPLATE;
  if (template && existsSync(path.join(template, 'pgdata'))) {
    cpSync(path.join(template, 'pgdata'), path.join(dir, 'pgdata'), { recursive: true });
  }
  return dir;
}

export function adminDatabaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('MAILROOM_TEST_ENGINE=postgres needs DATABASE_URL');
  return url;
}

/** A new, empty database on the server; dropped again when the test app closes. */
export async function createPostgresDatabase(cleanups: (() => Promise<void>)[]): Promise<string> {
  const admin = adminDatabaseUrl();
  const name = `mailroom_t_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  cleanups.push(async () => {
    const c = new pg.Client({ connectionString: admin });
    await c.connect();
    await c.query(`drop database if exists ${name} with (force)`);
    await c.end();
  });
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Registers a user and returns their id and access token. */
export async function signUp(t: TestApp, email: string, password = 'correct horse battery staple') {
  // Each sign-up from its own address, so the per-IP registration limit does not bite test set-up.
  const res = await t.call('POST', '/v1/auth/register', { body: { email, password }, ip: randomTestIp() });
  if (res.status !== 201) throw new Error(`register ${email}: ${res.status} ${JSON.stringify(res.body)}`);
  return {
    id: res.body.user.id as string,
    token: res.body.tokens.access_token as string,
    tokens: res.body.tokens,
    password,
  };
}

/** A user who owns a fresh organisation. */
export async function signUpWithOrg(t: TestApp, email: string, orgName = 'Org') {
  const user = await signUp(t, email);
  const org = await t.call('POST', '/v1/organizations', { token: user.token, body: { name: orgName } });
  if (org.status !== 201) throw new Error(`create org: ${org.status} ${JSON.stringify(org.body)}`);
  return { ...user, orgId: org.body.id as string };
}

export interface Org {
  token: string;
  orgId: string;
}

/** Signs up a new user with a new organisation at each call, named after `label`. */
export function orgMaker(label: string): (t: TestApp) => Promise<Org> {
  let made = 0;
  return (t) => {
    made++;
    return signUpWithOrg(t, `${label}${made}@example.com`, `${label} ${made}`);
  };
}

/** Adds a domain to the organisation (with an Ed25519 key: quick to make) and returns its id and name. */
export async function addDomain(t: TestApp, as: Org, name: string): Promise<{ id: string; name: string }> {
  const res = await t.call('POST', '/v1/domains', {
    token: as.token,
    body: { name, dkim: { algorithm: 'ed25519' } },
  });
  if (res.status !== 201) throw new Error(`add domain ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  return { id: res.body.id as string, name: res.body.name as string };
}

/** The events of `type` the organisation sees, newest page of 200. */
export async function eventsOf(t: TestApp, as: Org, type: string): Promise<any[]> {
  const res = await t.call('GET', `/v1/events?types=${type}&page_size=200`, { token: as.token });
  if (res.status !== 200) throw new Error(`events: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.items;
}

// A random start per process: with Redis, per-address limits outlive the run, and a counter from
// zero met the same addresses again in every run (and their registration limit with them).
let ipCounter = randomInt(1 << 17);
/** A distinct address from 198.18.0.0/15 (reserved for benchmarking) per call. */
export function randomTestIp(): string {
  ipCounter = (ipCounter + 1) % (1 << 17);
  return `198.${18 + (ipCounter >> 16)}.${(ipCounter >> 8) & 255}.${ipCounter & 255}`;
}
