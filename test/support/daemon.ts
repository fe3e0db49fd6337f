// What the tests' private daemons share (clamd, rspamd and Dovecot: Debian's packages, each started in
// its own process group on loopback ports with a config and temp dir of its own): finding the program,
// free ports, the tail of its log, and stopping it, also when the test process exits without doing so.
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** Live daemons' processes and temp dirs, killed and removed if the test process exits first. */
const children = new Set<ChildProcess>();
const dirs = new Set<string>();
process.once('exit', () => {
  for (const child of children) killGroup(child);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A daemon's process, to be killed if the test process exits before `stopDaemon`. */
export function trackDaemon(child: ChildProcess): void {
  children.add(child);
}

/** A daemon's temp dir, to be removed if the test process exits before `removeDaemonDir`. */
export function trackDaemonDir(dir: string): void {
  dirs.add(dir);
}

export function removeDaemonDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  dirs.delete(dir);
}

/** Kills the daemon's whole process group at once: its state is thrown away, and no graceful shutdown is waited for. */
export async function stopDaemon(child: ChildProcess): Promise<void> {
  children.delete(child);
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  killGroup(child);
  await exited;
}

export function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** A program on PATH or in the sbin directories, which a normal user's PATH often lacks (Debian puts clamd there). */
export function findProgram(name: string): string | null {
  const searched = [
    ...(process.env.PATH ?? '').split(path.delimiter),
    '/usr/sbin',
    '/usr/local/sbin',
    '/sbin',
  ];
  for (const dir of searched.filter(Boolean)) {
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

/** `count` TCP ports on 127.0.0.1 that the kernel hands out now (all held at once, so distinct). */
export async function freeTcpPorts(count = 1): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** The last `lines` lines of a daemon's log, for an error message. */
export function logTail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
