// A private clamd (Debian's clamav-daemon package) for the antivirus tests: its own clamd.conf, socket,
// log and temp files under a temp dir, on a free loopback port and a unix socket, in the foreground as
// the current user. The system service is never touched.
//
// ClamAV cannot download signatures here, so the test hands over the signatures it needs and they are
// written as a database of our own: a few signatures load in well under a second.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  findProgram,
  freeTcpPorts,
  logTail,
  removeDaemonDir,
  stopDaemon,
  trackDaemon,
  trackDaemonDir,
} from './daemon.ts';

export type TestSignature =
  /** Matches any content that contains these bytes anywhere (an .ndb body signature, any file type). */
  | { name: string; contains: string | Buffer }
  /** Matches content that is exactly these bytes, e.g. a decoded attachment (an .hdb MD5 signature). */
  | { name: string; file: string | Buffer };

export interface ClamdInstanceOptions {
  /** clamd's StreamMaxLength in bytes: a larger INSTREAM is refused. Default 1 MiB. */
  streamMaxLength?: number;
}

export interface Clamd {
  /** `127.0.0.1:<port>`. */
  address: string;
  /** The unix socket clamd also listens on. */
  socketPath: string;
  streamMaxLength: number;
  /** Stops clamd and removes its temp dir. */
  stop(): Promise<void>;
}

export const CLAMD_MISSING =
  'clamd is not installed (Debian package clamav-daemon, which .ci/run installs); under CI=true this fails';

const START_TIMEOUT_MS = 60_000;
/** The longest unix socket path Linux takes (sun_path is 108 bytes with the NUL). */
const MAX_SOCKET_PATH = 107;

/**
 * The reason to skip when clamd is not installed, false when it is. Throws under CI=true, where a
 * missing server is a broken environment.
 */
export function clamdSkip(): string | false {
  if (findProgram('clamd')) return false;
  if (process.env.CI === 'true') throw new Error(CLAMD_MISSING);
  return CLAMD_MISSING;
}

/**
 * Starts a private clamd with these signatures (or the database files in a directory) and resolves
 * once it answers PING. Throws when clamd is not installed.
 */
export async function startClamd(
  database: TestSignature[] | string,
  options: ClamdInstanceOptions = {},
): Promise<Clamd> {
  const program = findProgram('clamd');
  if (!program) throw new Error(CLAMD_MISSING);
  const streamMaxLength = options.streamMaxLength ?? 1024 * 1024;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mailroom-clamd-'));
  trackDaemonDir(dir);
  try {
    const socketPath = path.join(dir, 'clamd.sock');
    if (socketPath.length > MAX_SOCKET_PATH) throw new Error(`the socket path is too long: ${socketPath}`);
    mkdirSync(path.join(dir, 'tmp'));
    let databaseDir = database as string;
    if (Array.isArray(database)) {
      databaseDir = path.join(dir, 'db');
      mkdirSync(databaseDir);
      writeDatabase(databaseDir, database);
    }
    const { child, port } = await launch(program, dir, { databaseDir, socketPath, streamMaxLength });
    return {
      address: `127.0.0.1:${port}`,
      socketPath,
      streamMaxLength,
      async stop() {
        await stopDaemon(child);
        removeDaemonDir(dir);
      },
    };
  } catch (err) {
    removeDaemonDir(dir);
    throw err;
  }
}

/**
 * Writes the signatures in ClamAV's formats (clamav.net's signatures manual): `Name:0:*:hex` in
 * mailroom.ndb (target 0 = any file, offset * = anywhere), `md5:size:Name` in mailroom.hdb.
 */
function writeDatabase(databaseDir: string, signatures: TestSignature[]): void {
  const body: string[] = [];
  const hashes: string[] = [];
  for (const signature of signatures) {
    if (!/^[A-Za-z0-9._-]+$/.test(signature.name))
      throw new Error(`unusable signature name: ${signature.name}`);
    if ('contains' in signature) {
      const bytes = Buffer.from(signature.contains);
      if (bytes.length < 4) throw new Error(`${signature.name}: a body signature needs at least 4 bytes`);
      body.push(`${signature.name}:0:*:${bytes.toString('hex')}`);
    } else {
      const bytes = Buffer.from(signature.file);
      hashes.push(`${createHash('md5').update(bytes).digest('hex')}:${bytes.length}:${signature.name}`);
    }
  }
  if (body.length) writeFileSync(path.join(databaseDir, 'mailroom.ndb'), `${body.join('\n')}\n`);
  if (hashes.length) writeFileSync(path.join(databaseDir, 'mailroom.hdb'), `${hashes.join('\n')}\n`);
}

function clamdConf(
  dir: string,
  port: number,
  settings: { databaseDir: string; socketPath: string; streamMaxLength: number },
): string {
  return `# A test instance written by test/support/clamd.ts; it writes nothing outside ${dir}.
Foreground yes
LogFile ${dir}/clamd.log
LogTime yes
PidFile ${dir}/clamd.pid
TemporaryDirectory ${dir}/tmp
DatabaseDirectory ${settings.databaseDir}
TCPAddr 127.0.0.1
TCPSocket ${port}
LocalSocket ${settings.socketPath}
StreamMaxLength ${settings.streamMaxLength}
MaxThreads 4
# The database never changes while the instance runs.
SelfCheck 0
`;
}

/**
 * Runs clamd until it answers PING. The port is free when picked, but another process may take it
 * before clamd binds it: that start is retried.
 */
async function launch(
  program: string,
  dir: string,
  settings: { databaseDir: string; socketPath: string; streamMaxLength: number },
): Promise<{ child: ChildProcess; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const [port] = await freeTcpPorts();
    const conf = path.join(dir, 'clamd.conf');
    writeFileSync(conf, clamdConf(dir, port, settings));
    rmSync(settings.socketPath, { force: true });
    // Its own process group, so stop() reaches it however it forks.
    const child = spawn(program, [`--config-file=${conf}`], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    trackDaemon(child);
    let output = '';
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    try {
      await answering(child, port);
      return { child, port };
    } catch (err) {
      await stopDaemon(child);
      const log = logTail(path.join(dir, 'clamd.log'));
      if (attempt < 3 && /Address already in use/.test(output + log)) continue;
      throw new Error(`clamd did not start: ${(err as Error).message}\n${output}\n${log}`);
    }
  }
}

/** Resolves once clamd answers zPING with PONG; rejects if it exits first or takes too long. */
async function answering(child: ChildProcess, port: number): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (child.exitCode === null && child.signalCode === null) {
    if ((await ping(port)) === 'PONG') return;
    if (Date.now() > deadline) throw new Error(`PING was not answered within ${START_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`clamd exited with ${child.exitCode ?? child.signalCode}`);
}

/** One zPING; the reply without its NUL, or null when nothing listens yet. */
function ping(port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let reply = '';
    socket.setTimeout(2_000, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString();
    });
    socket.once('connect', () => socket.write('zPING\0'));
    socket.once('error', () => resolve(null));
    socket.once('close', () => resolve(reply.replace(/\0$/, '') || null));
  });
}
