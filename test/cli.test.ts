// The `mailroom` command as an operator runs it: real processes, real ports, signals.
import assert from 'node:assert/strict';
import { type ChildProcess, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { createPostgresDatabase, engine } from './support/app.ts';
import { BIN, serve as serveProcess } from './support/process.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** Environment for one installation: its own data dir, or its own PostgreSQL database. */
async function installation(): Promise<Record<string, string>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'mailroom-cli-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    MAILROOM_DATA_DIR: dir,
    MAILROOM_HTTP_PORT: '0',
    MAILROOM_LOG_LEVEL: 'info',
  };
  delete env.DATABASE_URL;
  if (engine === 'postgres') {
    env.DATABASE_URL = await createPostgresDatabase(cleanups);
    env.MAILROOM_SECRET_KEY = randomBytes(32).toString('hex');
  }
  return env;
}

function run(args: string[], env: Record<string, string>) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    env,
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 64 << 20,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function serve(args: string[], env: Record<string, string>) {
  return serveProcess(args, env, cleanups);
}

/** The first file to appear in `dir` (password reset mail is written by a job, after the reply). */
async function waitForFile(dir: string): Promise<string> {
  const first = () => (existsSync(dir) ? readdirSync(dir).find((f) => f.endsWith('.eml')) : undefined);
  for (let i = 0; i < 600 && !first(); i++) {
    if (existsSync(dir)) {
      await new Promise<void>((resolve) => {
        const w = watch(dir, () => {
          w.close();
          resolve();
        });
        setTimeout(() => {
          w.close();
          resolve();
        }, 100).unref();
      });
    } else await new Promise((r) => setTimeout(r, 50));
  }
  const found = first();
  if (!found) throw new Error(`no mail in ${dir}`);
  return found;
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

describe(`mailroom command on ${engine}`, () => {
  it('prints usage and refuses unknown commands', () => {
    const help = spawnSync(process.execPath, [BIN, 'help'], { encoding: 'utf8' });
    assert.equal(help.status, 0);
    assert.match(help.stdout, /create-admin/);
    const bad = spawnSync(process.execPath, [BIN, 'frobnicate'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
  });

  it('reports invalid settings clearly and exits 1', () => {
    const r = spawnSync(process.execPath, [BIN, 'migrate'], {
      encoding: 'utf8',
      env: { ...process.env, MAILROOM_HTTP_PORT: 'abc', DATABASE_URL: '' },
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /MAILROOM_HTTP_PORT: must be a port number/);
  });

  it('migrate, create-admin, start, sign in, and shut down gracefully on SIGTERM', async () => {
    const env = await installation();
    const migrated = run(['migrate'], env);
    assert.equal(migrated.status, 0, migrated.stderr);
    assert.match(migrated.stdout, /applied: 0001_foundation/);
    assert.match(run(['migrate'], env).stdout, /up to date/);

    const admin = run(
      [
        'create-admin',
        '--email',
        'root@example.com',
        '--password',
        'a long admin password',
        '--organization',
        'HQ',
      ],
      env,
    );
    assert.equal(admin.status, 0, admin.stderr);
    assert.match(admin.stdout, /administrator root@example\.com .* owns organisation HQ/);

    const { child, port, logs } = await serve(['start'], env);
    const base = `http://127.0.0.1:${port}`;
    if (engine === 'pglite') {
      const second = run(['migrate'], env);
      assert.equal(second.status, 1, 'a second process on one embedded database is refused');
      assert.match(second.stderr, /in use by process \d+/);
    }
    assert.equal((await fetch(`${base}/ready`)).status, 200);
    const login = await fetch(`${base}/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'root@example.com', password: 'a long admin password' }),
    });
    const tokens = (await login.json()) as { access_token: string };
    const orgs = (await (
      await fetch(`${base}/v1/organizations`, { headers: { authorization: `Bearer ${tokens.access_token}` } })
    ).json()) as {
      items: { name: string; role: string }[];
    };
    assert.deepEqual(
      orgs.items.map((o) => [o.name, o.role]),
      [['HQ', 'owner']],
    );

    // System mail goes to the outbox as .eml files readable only by the server's user; logs say where.
    const reset = await fetch(`${base}/v1/auth/password-reset`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'root@example.com' }),
    });
    assert.equal(reset.status, 202);
    const outbox = path.join(env.MAILROOM_DATA_DIR, 'outbox');
    const mail = await waitForFile(outbox);
    assert.equal(statSync(path.join(outbox, mail)).mode & 0o777, 0o600);
    const text = readFileSync(path.join(outbox, mail), 'utf8');
    assert.match(text, /^To: root@example\.com\r\nSubject: Reset your Mailroom password/);
    const token = /token: (\S+)/.exec(text)![1];
    assert.ok(!logs.join('\n').includes(token), 'the token is not in the log');

    const exited = exitOf(child);
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });

  it('runs the API and a worker as separate processes on one database', {
    skip: engine !== 'postgres',
  }, async () => {
    const env = await installation();
    const api = await serve(['api'], env);
    const worker = await serve(['worker'], env);
    assert.equal((await fetch(`http://127.0.0.1:${api.port}/ready`)).status, 200);
    for (const p of [api.child, worker.child]) {
      const exited = exitOf(p);
      p.kill('SIGTERM');
      assert.equal(await exited, 0);
    }
  });

  it('writes the OpenAPI document', async () => {
    const env = await installation();
    const out = path.join(env.MAILROOM_DATA_DIR, 'openapi.json');
    const r = run(['openapi', '--out', out], env);
    assert.equal(r.status, 0, r.stderr);
    const doc = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(doc.openapi, '3.1.0');
    assert.ok(doc.paths['/v1/auth/register']);
    // To a pipe as well: the whole document (well over a pipe buffer) arrives before the process exits.
    const piped = run(['openapi'], env);
    assert.equal(piped.status, 0, piped.stderr);
    assert.deepEqual(JSON.parse(piped.stdout), doc);
  });
});
