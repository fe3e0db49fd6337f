// A private Dovecot (Debian's dovecot-imapd) as the remote server of external mail accounts: its own
// config, sockets, state, users and maildirs under a temp dir, on free loopback ports. The system
// service is never touched. Dovecot refuses mail access as root and will not run imap-login as root, so
// when the tests run as root the whole instance (and every doveadm) runs as `nobody`, in Dovecot's
// rootless mode; otherwise it runs as the current user.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  accessSync,
  chownSync,
  constants,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { findProgram, freeTcpPorts, killGroup, logTail, stopDaemon } from './daemon.ts';
import { promisify } from 'node:util';
import { createTestTls, type TestTls } from './test-tls.ts';
import { until } from './until.ts';

export interface DovecotUser {
  username: string;
  password: string;
}

export interface Dovecot {
  host: '127.0.0.1';
  /** Plain IMAP offering STARTTLS (self-signed certificate); plaintext LOGIN is allowed too. */
  imapPort: number;
  /** Implicit TLS. */
  imapsPort: number;
  /** Adds a user (password stored as {SSHA512}) with an empty maildir INBOX and the special-use folders. */
  addUser(username: string, password: string): Promise<DovecotUser>;
  /**
   * Delivers a message as the provider's MX would: through dovecot-lda, so the instance's Sieve script
   * (`sieveBefore`) files it. Needs Debian's dovecot-sieve.
   */
  deliverWithSieve(username: string, raw: string | Buffer): Promise<void>;
  /** Puts a message into a user's folder (default INBOX) as if delivered, creating the folder if needed. */
  deliver(username: string, raw: string | Buffer, folder?: string): Promise<void>;
  /**
   * Gives a folder a new UIDVALIDITY and every message in it a new UID, as a server that rebuilt its
   * index would: the messages (flags and dates kept) are moved out to a holding folder and back, which
   * numbers them from the old UIDNEXT on, then `doveadm mailbox update --uid-validity` sets the old value
   * plus one. Works for INBOX too.
   */
  resetUidValidity(username: string, folder: string): Promise<void>;
  /** Runs doveadm against this instance (as the instance's account); resolves with its stdout. */
  doveadm(args: string[]): Promise<string>;
  /** Stops Dovecot (with any IMAP sessions still open) and removes its temp dir. */
  stop(): Promise<void>;
}

export interface DovecotOptions {
  /**
   * Also accept SASL XOAUTH2 and OAUTHBEARER, for users added with addUser, with an access token that
   * this RFC 7662 introspection endpoint answers `active: true` for, with the user's name as `email`
   * (Dovecot's oauth2 passdb; see test/support/oauth-server.ts). Passwords keep working.
   */
  oauth?: { introspectionUrl: string };
  /** A Sieve script run for every message delivered with deliverWithSieve (Pigeonhole's sieve_before). */
  sieveBefore?: string;
}

/** The reason to give `describe(..., { skip })` when startDovecot returned null. */
export const DOVECOT_MISSING =
  'Dovecot is not installed (Debian package dovecot-imapd, which .ci/run installs); under CI=true this fails';

const execFileAsync = promisify(execFile);
const SPECIAL_USE = {
  Drafts: '\\Drafts',
  Sent: '\\Sent',
  Trash: '\\Trash',
  Junk: '\\Junk',
  Archive: '\\Archive',
};
const HOLDING_FOLDER = 'mailroom-uidvalidity-reset';
const USERNAME = /^[A-Za-z0-9._@+-]+$/;

/** The account the instance runs as. */
interface Account {
  user: string;
  group: string;
  uid: number;
  gid: number;
  /** Spawn options: set when the tests run as root and must drop to `nobody`. */
  spawnAs: { uid: number; gid: number } | Record<string, never>;
}

interface Programs {
  dovecot: string;
  doveadm: string;
}

/** Debian installs the delivery agent outside PATH. */
const LDA = '/usr/lib/dovecot/dovecot-lda';
const SIEVE_PLUGIN = '/usr/lib/dovecot/modules/lib90_sieve_plugin.so';

/** Whether Sieve delivery works here (dovecot-sieve installed). */
export function sieveAvailable(): boolean {
  try {
    accessSync(LDA, constants.X_OK);
    accessSync(SIEVE_PLUGIN, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** Live instances, killed if the test process exits without stopping them. */
const running = new Set<{ child: ChildProcess; dir: string }>();
process.once('exit', () => {
  for (const { child, dir } of running) {
    killGroup(child);
    rmSync(dir, { recursive: true, force: true });
  }
});

let tlsMaterial: Promise<TestTls> | undefined;
let account: Promise<Account> | undefined;

/**
 * Starts a private Dovecot on free loopback ports. Null when Dovecot is not installed and CI is not
 * 'true'; throws under CI=true, where a missing server is a broken environment.
 */
export async function startDovecot(options: DovecotOptions = {}): Promise<Dovecot | null> {
  const programs = findPrograms();
  if (!programs) {
    if (process.env.CI === 'true') throw new Error(DOVECOT_MISSING);
    return null;
  }
  tlsMaterial ??= createTestTls(['127.0.0.1', 'localhost']);
  account ??= findAccount();
  const [tls, who] = await Promise.all([tlsMaterial, account]);
  const dir = prepareDir(who, tls, options);
  try {
    const { child, ports } = await launch(programs, who, dir, options);
    return instance(programs, who, dir, child, ports);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

function findPrograms(): Programs | null {
  const dovecot = findProgram('dovecot');
  const doveadm = findProgram('doveadm');
  return dovecot && doveadm ? { dovecot, doveadm } : null;
}

/** `nobody` when root, else the current user; names from `id` so NSS (LDAP) accounts resolve too. */
async function findAccount(): Promise<Account> {
  const root = process.getuid?.() === 0;
  const { stdout } = await execFileAsync('id', root ? ['nobody'] : []);
  const m = /uid=(\d+)\(([^)]+)\) gid=(\d+)\(([^)]+)\)/.exec(stdout);
  if (!m) throw new Error(`cannot read the account from id: ${stdout}`);
  const uid = Number(m[1]);
  const gid = Number(m[3]);
  return { user: m[2], uid, group: m[4], gid, spawnAs: root ? { uid, gid } : {} };
}

/** The temp dir with the certificate and the directories Dovecot writes, owned by the instance's account. */
function prepareDir(who: Account, tls: TestTls, options: DovecotOptions): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mailroom-dovecot-'));
  for (const sub of ['mail', 'home']) mkdirSync(path.join(dir, sub));
  writeFileSync(path.join(dir, 'cert.pem'), tls.cert);
  writeFileSync(path.join(dir, 'key.pem'), tls.key, { mode: 0o600 });
  writeFileSync(path.join(dir, 'users'), '');
  writeFileSync(path.join(dir, 'before.sieve'), options.sieveBefore ?? '');
  // Dovecot's oauth2 passdb settings (doc.dovecot.org/2.3/configuration_manual/authentication/oauth2/).
  writeFileSync(
    path.join(dir, 'oauth2.conf'),
    options.oauth
      ? [
          `introspection_url = ${options.oauth.introspectionUrl}`,
          'introspection_mode = post',
          'username_attribute = email',
          'active_attribute = active',
          'active_value = true',
          '',
        ].join('\n')
      : '',
  );
  for (const name of ['', 'mail', 'home', 'cert.pem', 'key.pem', 'users', 'oauth2.conf', 'before.sieve'])
    own(path.join(dir, name), who);
  return dir;
}

function own(file: string, who: Account): void {
  if ('uid' in who.spawnAs) chownSync(file, who.uid, who.gid);
}

/**
 * Starts `dovecot -F` on two free ports and resolves once IMAP accepts connections. Ports are found by
 * binding port 0, so another process may take one before Dovecot binds it: that start is retried.
 */
async function launch(
  programs: Programs,
  who: Account,
  dir: string,
  options: DovecotOptions,
): Promise<{ child: ChildProcess; ports: { imap: number; imaps: number } }> {
  for (let attempt = 1; ; attempt++) {
    const [imap, imaps] = await freeTcpPorts(2);
    const conf = path.join(dir, 'dovecot.conf');
    writeFileSync(conf, dovecotConf(dir, who, { imap, imaps }, options));
    own(conf, who);
    // Its own process group, so stop() also reaches sessions the master leaves behind.
    const child = spawn(programs.dovecot, ['-F', '-c', conf], {
      ...who.spawnAs,
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    try {
      await listening(child, imap);
      return { child, ports: { imap, imaps } };
    } catch {
      const log = logTail(path.join(dir, 'dovecot.log'));
      if (attempt < 3 && /Address already in use/.test(stderr + log)) continue;
      throw new Error(`dovecot did not start: ${stderr}\n${log}`);
    }
  }
}

/** Resolves once the port accepts a connection; rejects if Dovecot exits first. */
async function listening(child: ChildProcess, port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (child.exitCode === null && child.signalCode === null) {
    if (await accepts(port)) return;
    if (Date.now() > deadline) {
      killGroup(child);
      throw new Error(`port ${port} never accepted a connection`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`dovecot exited with ${child.exitCode ?? child.signalCode}`);
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function dovecotConf(
  dir: string,
  who: Account,
  ports: { imap: number; imaps: number },
  options: DovecotOptions,
): string {
  // With OAuth, a token is checked only by the oauth2 passdb and a password only by the users file.
  const oauthPassdb = options.oauth
    ? `passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = ${dir}/oauth2.conf
}
`
    : '';
  const folders = Object.entries(SPECIAL_USE).map(
    ([name, flag]) => `  mailbox ${name} {\n    special_use = ${flag}\n    auto = subscribe\n  }`,
  );
  return `# A test instance written by test/support/dovecot.ts; nothing outside ${dir} is used.
instance_name = ${path.basename(dir)}
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
# Hundreds of accounts in IDLE at once (the accounts bench): one imap process, and over TLS one login
# process, per connection; the defaults allow 100 processes per service.
default_process_limit = 1000
default_client_limit = 10000

# Rootless mode: every service runs as the one account that owns ${dir}.
default_internal_user = ${who.user}
default_internal_group = ${who.group}
default_login_user = ${who.user}
first_valid_uid = ${who.uid}
first_valid_gid = ${who.gid}

ssl = yes
ssl_cert = <${dir}/cert.pem
ssl_key = <${dir}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login${options.oauth ? ' xoauth2 oauthbearer' : ''}
# Tests check refusals: a failed login is answered at the auth process's next 500 ms check, not after 2 s.
auth_failure_delay = 0

mail_location = maildir:${dir}/mail/%u
mail_fsync = never
# IDLE learns of new mail through inotify; this is the fallback where inotify is unavailable.
mailbox_idle_check_interval = 1 secs

${oauthPassdb}passdb {
  driver = passwd-file
  args = username_format=%u ${dir}/users${options.oauth ? '\n  mechanisms = plain login' : ''}
}
userdb {
  driver = passwd-file
  args = username_format=%u ${dir}/users
}

namespace inbox {
  inbox = yes
  separator = /
${folders.join('\n')}
}

${
  options.sieveBefore
    ? `protocol lda {
  mail_plugins = $mail_plugins sieve
}
plugin {
  sieve_before = ${dir}/before.sieve
}

`
    : ''
}protocol imap {
  # Sync tests open several sessions per user from one address; the default allows 10.
  mail_max_userip_connections = 100
}

service imap-login {
  # chroot needs root, which the instance does not have.
  chroot =
  inet_listener imap {
    port = ${ports.imap}
  }
  inet_listener imaps {
    port = ${ports.imaps}
    ssl = yes
  }
}
service anvil {
  chroot =
  # Without this socket the auth process keeps no per-address penalty, which would hold a login for
  # up to 15 s after a test's deliberate failures.
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
`;
}

function instance(
  programs: Programs,
  who: Account,
  dir: string,
  child: ChildProcess,
  ports: { imap: number; imaps: number },
): Dovecot {
  const conf = path.join(dir, 'dovecot.conf');
  const users = new Map<string, string>();
  const entry = { child, dir };
  running.add(entry);

  const doveadm = (args: string[], input?: string | Buffer) =>
    run(programs.doveadm, ['-c', conf, ...args], who, dir, input);

  /** Creates and subscribes a folder unless it exists (`mailbox list` with a name echoes it back either way). */
  async function ensureFolder(username: string, folder: string): Promise<void> {
    try {
      await doveadm(['mailbox', 'create', '-s', '-u', username, folder]);
    } catch (err) {
      if (!/Mailbox already exists/.test((err as Error).message)) throw err;
    }
  }

  async function uidValidity(username: string, folder: string): Promise<number> {
    const out = await doveadm(['-f', 'flow', 'mailbox', 'status', '-u', username, 'uidvalidity', folder]);
    return Number(/uidvalidity=(\d+)/.exec(out)?.[1]);
  }

  /** Moves every message of `from` into `to`; doveadm exits 68 when there is none, which is fine here. */
  async function moveAll(username: string, to: string, from: string): Promise<void> {
    try {
      await doveadm(['move', '-u', username, to, 'mailbox', from, 'all']);
    } catch (err) {
      if ((err as { code?: number }).code !== 68) throw err;
    }
  }

  return {
    host: '127.0.0.1',
    imapPort: ports.imap,
    imapsPort: ports.imaps,

    async addUser(username, password) {
      if (!USERNAME.test(username)) throw new Error(`unusable test username: ${username}`);
      users.set(
        username,
        `${username}:${ssha512(password)}:${who.uid}:${who.gid}::${dir}/home/${username}::`,
      );
      writeUsers(dir, who, [...users.values()]);
      // Listing opens the mail store, which creates the maildir and the auto-subscribed folders. The auth
      // process looks at the users file at most once a second: a user added within the second of the
      // last look is unknown until the next one.
      await until(
        () =>
          doveadm(['mailbox', 'list', '-u', username]).then(
            () => true,
            (err: Error) => {
              if (/User doesn't exist/.test(err.message)) return false;
              throw err;
            },
          ),
        (listed) => listed,
        5_000,
      );
      return { username, password };
    },

    async deliverWithSieve(username, raw) {
      await run(LDA, ['-c', conf, '-d', username], who, dir, raw);
    },

    async deliver(username, raw, folder = 'INBOX') {
      if (folder !== 'INBOX') await ensureFolder(username, folder);
      await doveadm(['save', '-u', username, '-m', folder], raw);
    },

    async resetUidValidity(username, folder) {
      const before = await uidValidity(username, folder);
      await doveadm(['mailbox', 'create', '-u', username, HOLDING_FOLDER]);
      await moveAll(username, HOLDING_FOLDER, folder);
      await moveAll(username, folder, HOLDING_FOLDER);
      await doveadm(['mailbox', 'delete', '-u', username, HOLDING_FOLDER]);
      const next = (before % 0xffffffff) + 1;
      await doveadm(['mailbox', 'update', '-u', username, '--uid-validity', String(next), folder]);
    },

    doveadm: (args) => doveadm(args),

    async stop() {
      running.delete(entry);
      await stopDaemon(child);
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}

/** Written whole and renamed into place: Dovecot rereads the file when it changes, never half of it. */
function writeUsers(dir: string, who: Account, lines: string[]): void {
  const file = path.join(dir, 'users');
  writeFileSync(`${file}.new`, `${lines.join('\n')}\n`);
  own(`${file}.new`, who);
  renameSync(`${file}.new`, file);
}

/** Dovecot's {SSHA512}: base64 of SHA-512(password + salt) followed by the salt. */
function ssha512(password: string): string {
  const salt = randomBytes(8);
  const digest = createHash('sha512').update(password).update(salt).digest();
  return `{SSHA512}${Buffer.concat([digest, salt]).toString('base64')}`;
}

/** Runs a program as the instance's account; rejects with its stderr (and exit code as `code`). */
function run(program: string, args: string[], who: Account, dir: string, input?: string | Buffer) {
  return new Promise<string>((resolve, reject) => {
    const child = spawn(program, args, {
      ...who.spawnAs,
      // HOME in the temp dir, which the account can use (as `nobody`, root's home is off limits).
      env: { ...process.env, HOME: dir },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) return resolve(stdout);
      const err = new Error(`${path.basename(program)} ${args.join(' ')} exited ${code}: ${stderr.trim()}`);
      reject(Object.assign(err, { code }));
    });
    child.stdin.end(input);
  });
}
