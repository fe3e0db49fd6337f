// CPU accounting for benchmarks: the Mailroom processes, the PostgreSQL backends serving each (told apart
// by the process id in their application name, or by client port), the rest of PostgreSQL and the bench process itself, with samples of what the
// backends were doing (every 250 ms).
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type pg from 'pg';

const CLOCK_TICKS = 100;

function cpuSeconds(pid: number, file = `/proc/${pid}/stat`): number | null {
  try {
    const stat = readFileSync(file, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/** CPU seconds of a process's live threads by thread name (MainThread, WorkerThread, V8Worker: GC…). */
function threadCpuSeconds(pid: number): Map<string, number> {
  const byName = new Map<string, number>();
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return byName;
  }
  for (const task of tasks) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${task}/comm`, 'utf8').trim();
      const seconds = cpuSeconds(Number(task), `/proc/${pid}/task/${task}/stat`) ?? 0;
      byName.set(name, (byName.get(name) ?? 0) + seconds);
    } catch {}
  }
  return byName;
}

/** The sockets a process holds open (their inodes), for telling which process a database backend serves. */
function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      const link = (() => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`);
        } catch {
          return '';
        }
      })();
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m) inodes.add(m[1]);
    }
  } catch {}
  return inodes;
}

/** Socket inode → local TCP port, for every TCP socket on the machine. */
function localPortsByInode(): Map<string, number> {
  const ports = new Map<string, number>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const row of text.split('\n').slice(1)) {
      const cols = row.trim().split(/\s+/);
      if (cols.length < 10) continue;
      ports.set(cols[9], Number.parseInt(cols[1].split(':')[1], 16));
    }
  }
  return ports;
}

export interface Usage {
  seconds: number;
  /** CPU seconds by component: the Mailroom processes, their backends, the rest of PostgreSQL. */
  cpu: Map<string, number>;
  /** For each Mailroom process, CPU seconds by thread name. */
  threads: Map<string, Map<string, number>>;
  /** Samples of non-idle backends by owner, state and wait event. */
  waits: Map<string, number>;
  samples: number;
}

/** Samples every 250 ms while a phase runs; `stop` returns the CPU used during it. */
export function watchUsage(db: pg.Client | null, roles: Record<string, number>) {
  const began = performance.now();
  const startCpu = new Map<string, number>();
  const startThreads = new Map<string, Map<string, number>>();
  for (const [role, pid] of Object.entries(roles)) {
    startCpu.set(role, cpuSeconds(pid) ?? 0);
    startThreads.set(role, threadCpuSeconds(pid));
  }
  const bench = process.cpuUsage();
  /** Every postgres process: first and last CPU reading; backends of this database: whose they are. */
  const pgFirst = new Map<number, number>();
  const pgLast = new Map<number, number>();
  const owner = new Map<number, string>();
  const waits = new Map<string, number>();
  let samples = 0;
  let self = 0;
  const postgresPids = () =>
    readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .map(Number)
      .filter((p) => {
        try {
          return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'postgres';
        } catch {
          return false;
        }
      });
  const readPostgres = (initial: boolean) => {
    for (const pid of postgresPids()) {
      const s = cpuSeconds(pid);
      if (s === null) continue;
      // A process started during the phase counts from zero.
      if (!pgFirst.has(pid)) pgFirst.set(pid, initial ? s : 0);
      pgLast.set(pid, s);
    }
  };
  readPostgres(true);
  let ports = new Map<string, number>();
  const whose = (port: number): string => {
    for (const [role, pid] of Object.entries(roles)) {
      for (const inode of socketInodes(pid)) if (ports.get(inode) === port) return role;
    }
    return 'other';
  };
  /** Mailroom names its sessions after its process (core/db.ts); others are told by client port. */
  const ownerOf = (backend: { application_name: string; client_port: number }): string => {
    const pid = Number(/^mailroom\S* .*?(\d+)$/.exec(backend.application_name)?.[1]);
    const role = Object.entries(roles).find(([, p]) => p === pid)?.[0];
    if (role) return role;
    ports = localPortsByInode();
    return whose(backend.client_port);
  };
  let busy = false;
  const sample = async () => {
    if (busy || !db) return;
    busy = true;
    try {
      if (!self) self = (await db.query('select pg_backend_pid() as pid')).rows[0].pid;
      const { rows } = await db.query(
        `select pid, client_port, application_name, state, wait_event_type, wait_event,
                left(regexp_replace(query, '\\s+', ' ', 'g'), 90) as query
           from pg_stat_activity
          where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'`,
      );
      samples++;
      for (const r of rows) {
        if (!owner.has(r.pid)) owner.set(r.pid, ownerOf(r));
        if (r.state === 'idle') continue;
        const waiting = r.wait_event_type ? `${r.wait_event_type}/${r.wait_event}` : 'on CPU';
        // What a backend waits for a lock in says which rows are contended.
        const what = r.wait_event_type === 'Lock' ? ` in: ${r.query}` : '';
        const key = `${owner.get(r.pid)}: ${r.state}, ${waiting}${what}`;
        waits.set(key, (waits.get(key) ?? 0) + 1);
      }
      readPostgres(false);
    } catch {
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void sample(), 250);
  void sample();
  return {
    async stop(): Promise<Usage> {
      clearInterval(timer);
      while (busy) await new Promise((r) => setTimeout(r, 5));
      await sample();
      const cpu = new Map<string, number>();
      const threads = new Map<string, Map<string, number>>();
      for (const [role, pid] of Object.entries(roles)) {
        cpu.set(role, (cpuSeconds(pid) ?? 0) - (startCpu.get(role) ?? 0));
        const before = startThreads.get(role) ?? new Map();
        const used = new Map<string, number>();
        for (const [name, seconds] of threadCpuSeconds(pid))
          used.set(name, seconds - (before.get(name) ?? 0));
        threads.set(role, used);
      }
      const used = process.cpuUsage(bench);
      cpu.set('bench process (load, sink)', (used.user + used.system) / 1e6);
      let rest = 0;
      for (const [pid, last] of pgLast) {
        const delta = last - (pgFirst.get(pid) ?? 0);
        const who = owner.get(pid);
        if (pid === self) continue;
        if (who && who !== 'other') {
          cpu.set(`postgres for ${who}`, (cpu.get(`postgres for ${who}`) ?? 0) + delta);
        } else rest += delta;
      }
      if (db) cpu.set('postgres, the rest (WAL writer, checkpointer, others)', rest);
      return { seconds: (performance.now() - began) / 1000, cpu, threads, waits, samples };
    },
  };
}

export function describeUsage(title: string, u: Usage): string {
  const lines = [`  ${title}: ${u.seconds.toFixed(1)} s wall, 2 cores = ${(2 * u.seconds).toFixed(1)} CPU-s`];
  const total = [...u.cpu.values()].reduce((a, b) => a + b, 0);
  const line = (indent: string, name: string, seconds: number) =>
    `${indent}${name.padEnd(62 - indent.length)} ${seconds.toFixed(1).padStart(6)} CPU-s  ${((100 * seconds) / u.seconds).toFixed(0)}% of a core`;
  for (const [k, v] of [...u.cpu].sort((a, b) => b[1] - a[1])) {
    lines.push(line('    ', k, v));
    // Its threads that used more than 2 % of a core (threads that ended during the phase are not here).
    for (const [name, seconds] of [...(u.threads.get(k) ?? [])].sort((a, b) => b[1] - a[1]))
      if (seconds > 0.02 * u.seconds) lines.push(line('        ', `thread ${name}`, seconds));
  }
  lines.push(line('    ', 'total', total));
  if (u.samples) {
    lines.push(`    database backends not idle, ${u.samples} samples (average backends in each state):`);
    for (const [k, v] of [...u.waits].sort((a, b) => b[1] - a[1]).slice(0, 10))
      lines.push(`      ${(v / u.samples).toFixed(2).padStart(6)}  ${k}`);
  }
  return lines.join('\n');
}
