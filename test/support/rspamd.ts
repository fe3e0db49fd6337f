// A private rspamd (Debian's rspamd package) for the spam engine's tests: the packaged rules from
// /etc/rspamd with our own top-level config, overrides, database, run and log directories under a temp
// dir, one scanner worker on a free loopback port, in the foreground as the current user. The system
// service is never touched.
//
// Nothing may reach the network: modules that need Redis or look things up over DNS or HTTP are
// disabled, and the resolver is a closed loopback port with a short timeout, so whatever lookup is left
// fails at once instead of hanging a scan. rspamd compiles the public suffix list for URL detection at
// start-up, which takes about 20 s for the packaged list; the instance gets the top-level suffixes only
// (a sixth of the list, about 2 s).
import { type ChildProcess, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
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

export interface Rspamd {
  /** The scanner worker's root: `${url}/checkv2` takes messages. */
  url: string;
  /** rspamd's log so far: one line per scan with what it read of the envelope (qid, ip, from, rcpts). */
  log(): string;
  /** Stops rspamd and removes its temp dir. */
  stop(): Promise<void>;
}

export const RSPAMD_MISSING =
  'rspamd is not installed (Debian package rspamd, which .ci/run installs); under CI=true this fails';

const PACKAGED_CONFDIR = '/etc/rspamd';
const PACKAGED_SUFFIXES = [
  '/usr/share/rspamd/effective_tld_names.dat',
  '/usr/local/share/rspamd/effective_tld_names.dat',
];
const START_TIMEOUT_MS = 60_000;

/** Modules that need Redis, which the instance does not have. */
const REDIS_MODULES = ['greylist', 'ratelimit', 'neural', 'reputation', 'replies', 'history_redis', 'bimi'];
/** Modules that query DNS, remote maps or outside services, which a test must not depend on. */
const NETWORK_MODULES = [
  'rbl',
  'spf',
  'dkim',
  'dmarc',
  'arc',
  'asn',
  'hfilter',
  'fuzzy_check',
  'dcc',
  'emails',
  'mx_check',
  'url_redirector',
  'phishing',
  'whitelist',
  'multimap',
  'rspamd_update',
  'p0f',
  'external_services',
  'antivirus',
  'clickhouse',
  'elastic',
  'metadata_exporter',
  'spamtrap',
];

/**
 * The reason to skip when rspamd is not installed, false when it is. Throws under CI=true, where a
 * missing server is a broken environment.
 */
export function rspamdSkip(): string | false {
  if (findProgram('rspamd') && existsReadable(path.join(PACKAGED_CONFDIR, 'common.conf'))) return false;
  if (process.env.CI === 'true') throw new Error(RSPAMD_MISSING);
  return RSPAMD_MISSING;
}

/** Starts a private rspamd and resolves once /checkv2 answers. Throws when rspamd is not installed. */
export async function startRspamd(): Promise<Rspamd> {
  const program = findProgram('rspamd');
  if (!program) throw new Error(RSPAMD_MISSING);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mailroom-rspamd-'));
  trackDaemonDir(dir);
  try {
    for (const sub of ['db', 'run', 'log', 'override.d']) mkdirSync(path.join(dir, sub));
    writeOverrides(dir);
    const { child, url } = await launch(program, dir);
    return {
      url,
      log: () => readFileSync(path.join(dir, 'log', 'rspamd.log'), 'utf8'),
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

/** Turns off the modules the instance cannot use and writes the short suffix list. */
function writeOverrides(dir: string): void {
  for (const module of [...REDIS_MODULES, ...NETWORK_MODULES])
    writeFileSync(path.join(dir, 'override.d', `${module}.conf`), 'enabled = false;\n');
  const suffixes = PACKAGED_SUFFIXES.find(existsReadable);
  if (!suffixes) return;
  // Public suffix list lines are rules, `//` comments or blank; top-level rules have no dot.
  const topLevel = readFileSync(suffixes, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('//') && !/[.!*]/.test(line));
  writeFileSync(path.join(dir, 'tld.dat'), `${topLevel.join('\n')}\n`);
}

/**
 * Our options. A key repeated in the same section does not replace the packaged options.inc's, so they
 * go in through an include at priority 10.
 */
function writeOptions(dir: string, dnsPort: number): void {
  const tld = path.join(dir, 'tld.dat');
  writeFileSync(
    path.join(dir, 'override.d', 'options.inc'),
    `${existsReadable(tld) ? `url_tld = "${tld}";\n` : ''}tempdir = "${dir}/run";
dns {
  # A closed port: every lookup fails at once.
  nameserver = ["127.0.0.1:${dnsPort}"];
  timeout = 0.1s;
  retransmits = 1;
}
`,
  );
}

/** The top-level config: the packaged rules and options, our overrides at a higher priority. */
function rspamdConf(dir: string, port: number): string {
  return `# A test instance written by test/support/rspamd.ts; it writes nothing outside ${dir}.
.include "$CONFDIR/common.conf"

options {
  pidfile = "$RUNDIR/rspamd.pid";
  .include "$CONFDIR/options.inc"
  .include(priority=10) "$LOCAL_CONFDIR/override.d/options.inc"
}

logging {
  type = "file";
  filename = "$LOGDIR/rspamd.log";
  .include "$CONFDIR/logging.inc"
}

worker "normal" {
  bind_socket = "127.0.0.1:${port}";
  count = 1;
  .include "$CONFDIR/worker-normal.inc"
}
`;
}

/**
 * Runs rspamd until /checkv2 answers. The ports are free when picked, but another process may take
 * one before rspamd binds it: that start is retried.
 */
async function launch(program: string, dir: string): Promise<{ child: ChildProcess; url: string }> {
  for (let attempt = 1; ; attempt++) {
    const [port] = await freeTcpPorts();
    const dnsPort = await freeUdpPort();
    const conf = path.join(dir, 'rspamd.conf');
    writeOptions(dir, dnsPort);
    writeFileSync(conf, rspamdConf(dir, port));
    const vars = {
      CONFDIR: PACKAGED_CONFDIR,
      LOCAL_CONFDIR: dir,
      DBDIR: path.join(dir, 'db'),
      RUNDIR: path.join(dir, 'run'),
      LOGDIR: path.join(dir, 'log'),
    };
    // -f: stay in the foreground; -i: allow workers to run as root, which is who runs the tests in
    // containers (as another user rspamd just keeps that user). Its own process group, so stop() also
    // reaches the workers.
    const args = [
      '-f',
      '-i',
      '-c',
      conf,
      ...Object.entries(vars).flatMap(([name, value]) => ['--var', `${name}=${value}`]),
    ];
    const child = spawn(program, args, { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    trackDaemon(child);
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const url = `http://127.0.0.1:${port}`;
    try {
      await answering(child, url);
      return { child, url };
    } catch (err) {
      await stopDaemon(child);
      const log = logTail(path.join(dir, 'log', 'rspamd.log'), 30);
      if (attempt < 3 && /Address already in use/.test(stderr + log)) continue;
      throw new Error(`rspamd did not start: ${(err as Error).message}\n${stderr}\n${log}`);
    }
  }
}

/** Resolves once /checkv2 answers a scan with JSON; rejects if rspamd exits first or takes too long. */
async function answering(child: ChildProcess, url: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  const probe = Buffer.from('From: probe@mailroom.test\r\nSubject: probe\r\n\r\nprobe\r\n');
  while (child.exitCode === null && child.signalCode === null) {
    try {
      const response = await fetch(`${url}/checkv2`, {
        method: 'POST',
        body: probe,
        signal: AbortSignal.timeout(5_000),
      });
      if (response.ok && typeof ((await response.json()) as { score?: unknown }).score === 'number') return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`/checkv2 did not answer within ${START_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`rspamd exited with ${child.exitCode ?? child.signalCode}`);
}

/** A UDP port nothing listens on now, for the resolver that must fail. */
function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

function existsReadable(file: string): boolean {
  try {
    accessSync(file, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}
