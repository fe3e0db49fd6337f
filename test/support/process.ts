// Mailroom as an operator runs it: the real `mailroom` command in a child process.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { until } from './until.ts';

export const BIN = path.resolve('bin/mailroom.js');

/**
 * Starts a long-running role and resolves with its HTTP port once it logs that it listens (null for a
 * worker-only process). `cleanups` gets a kill for the process. Needs MAILROOM_LOG_LEVEL=info.
 */
export function serve(
  args: string[],
  env: Record<string, string>,
  cleanups: (() => Promise<void>)[],
): Promise<{
  child: ChildProcess;
  port: number | null;
  smtpPort: number | null;
  imapPort: number | null;
  logs: string[];
}> {
  // Its own process group: the launcher runs Mailroom as a child, and SIGKILL cannot be forwarded, so
  // the whole group is killed at clean-up.
  const child = spawn(process.execPath, [BIN, ...args], {
    // `start` and `smtp` also run submission (and `start` IMAP and POP3): on free ports unless the test names them.
    env: { MAILROOM_SUBMISSION_PORT: '0', MAILROOM_IMAP_PORT: '0', MAILROOM_POP3_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const logs: string[] = [];
  cleanups.push(async () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  });
  return new Promise((resolve, reject) => {
    let buffer = '';
    let smtpPort: number | null = null;
    let imapPort: number | null = null;
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let nl = buffer.indexOf('\n');
      while (nl >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        logs.push(line);
        // The MX listens before the HTTP API, so its port is known when the API's line arrives.
        if (line.includes('MX listening')) {
          smtpPort = JSON.parse(line).port;
          if (args[0] === 'smtp') resolve({ child, port: null, smtpPort, imapPort, logs });
        }
        if (line.includes('IMAP listening')) {
          imapPort = JSON.parse(line).port;
          if (args[0] === 'imap') resolve({ child, port: null, smtpPort, imapPort, logs });
        }
        if (line.includes('HTTP API listening'))
          resolve({ child, port: JSON.parse(line).port, smtpPort, imapPort, logs });
        if (line.includes('workers running')) resolve({ child, port: null, smtpPort, imapPort, logs });
        nl = buffer.indexOf('\n');
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => logs.push(chunk.toString()));
    child.once('exit', (code) => reject(new Error(`exited ${code} before serving: ${logs.join('\n')}`)));
  });
}

/**
 * Resolves once a (killed) child is gone, and on the embedded engine once the process named in the
 * database's lock file is too: the data may not be opened again before.
 */
export async function exited(child: ChildProcess, dataDir?: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null)
    await new Promise((resolve) => child.once('exit', resolve));
  const lock = path.join(dataDir ?? '', 'pgdata.lock');
  if (!dataDir || !existsSync(lock)) return;
  const holder = Number(readFileSync(lock, 'utf8'));
  await until(
    async () => {
      try {
        process.kill(holder, 0);
        return true;
      } catch {
        return false;
      }
    },
    (alive) => !alive,
  );
}

/**
 * The environment for `mailroom` processes that take over a test app's database: its settings, free
 * ports and info logs (serve reads them); on the embedded engine no DATABASE_URL from the test run.
 */
export function takeoverEnv(appEnv: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    ...appEnv,
    MAILROOM_HTTP_PORT: '0',
    MAILROOM_SMTP_PORT: '0',
    MAILROOM_LOG_LEVEL: 'info',
  };
  if (!appEnv.DATABASE_URL) delete env.DATABASE_URL;
  return env;
}

/** A JSON request to a served process's API as the holder of `token`. */
export async function callServed(port: number, token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}
