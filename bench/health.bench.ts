// Health recomputation: 10,000 mailboxes (and their domains) with a week of outbound mail behind them,
// seeded with bulk SQL, then every subject computed by one sweep (what the health.sweep job runs), cold
// and again an interval later. BENCH_PROF=1 writes a CPU profile of the run to /tmp/prof-health/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { ManualClock } from '../src/core/clock.ts';
import type { Database } from '../src/core/db.ts';
import { benchEngines, type Engine, json, peakRssMb, type Row, withBenchApp } from './support.ts';

const MAILBOXES = Number(process.env.BENCH_HEALTH_MAILBOXES ?? 10_000);
const DOMAINS = Number(process.env.BENCH_HEALTH_DOMAINS ?? 20);
/** Outbound messages per mailbox over the window, one recipient each. */
const MESSAGES_PER_MAILBOX = Number(process.env.BENCH_HEALTH_MESSAGES ?? 10);

async function recompute(engine: Engine): Promise<Row[]> {
  const clock = new ManualClock();
  // No workers: the sweep is run here, and nothing else computes meanwhile.
  return withBenchApp(engine, {}, { clock }, async ({ app, port, token, org }) => {
    const domainIds: string[] = [];
    for (let i = 0; i < DOMAINS; i++) {
      const d = await json(
        port!,
        'POST',
        '/v1/domains',
        { name: `d${i}.health.example`, dkim: { algorithm: 'ed25519' } },
        token,
      );
      domainIds.push(d.id);
    }
    const seedStarted = performance.now();
    await seed(app.database, org.id, domainIds);
    const seedSeconds = (performance.now() - seedStarted) / 1000;

    const rows: Row[] = [];
    for (const round of ['cold', 'an interval later']) {
      if (round !== 'cold') clock.advance(3_600_000 + 1_000);
      // The peak from here on is the computation's (seeding 100,000 messages took more on PGlite).
      try {
        writeFileSync('/proc/self/clear_refs', '5');
      } catch {
        // Not Linux, or not allowed: the peak then includes the seeding.
      }
      const profile = process.env.BENCH_PROF ? await startProfile() : null;
      const started = performance.now();
      const computed = await app.services.health.recomputeDue();
      const seconds = (performance.now() - started) / 1000;
      if (profile) await stopProfile(profile, `${engine}-${round.replace(/\s+/g, '-')}`);
      const findings = await app.database.query<{ n: number }>(
        `select count(*)::int as n from health_scores where organization_id = $1 and findings <> '[]'::jsonb`,
        [org.id],
      );
      rows.push({
        benchmark: `health recomputation (${engine}, ${round})`,
        workload: `${MAILBOXES.toLocaleString('en')} mailboxes + ${DOMAINS} domains, ${(MAILBOXES * MESSAGES_PER_MAILBOX).toLocaleString('en')} messages in the window; ${computed.toLocaleString('en')} computed, ${findings.rows[0].n.toLocaleString('en')} with findings (seeded in ${seedSeconds.toFixed(1)} s)`,
        throughput: `${seconds.toFixed(2)} s total; ${Math.round(computed / seconds).toLocaleString('en')} subjects/s`,
        p50: '–',
        p99: '–',
        peakRss: `${Math.round(peakRssMb(process.pid))} MB`,
        target: `< 10 s for 10,000 mailboxes ${seconds < 10 ? '✔' : '✘'}`,
      });
    }
    return rows;
  });
}

/**
 * The mailboxes, and their mail: per mailbox, MESSAGES_PER_MAILBOX outbound messages over the last six
 * days with one delivery each (every 25th bounced, every 3rd list mail, half of that without one-click).
 */
async function seed(database: Database, orgId: string, domainIds: string[]) {
  await database.query(
    `insert into mailboxes (id, organization_id, domain_id, local_part, address, quota_bytes)
     select gen_random_uuid(), $1, d.id, 'user' || g, 'user' || g || '@' || d.name, 1073741824
       from generate_series(0, $2 - 1) g
       join lateral (select id, name from domains where id = ($3::uuid[])[1 + g % array_length($3::uuid[], 1)]) d on true`,
    [orgId, MAILBOXES, domainIds],
  );
  await database.query(
    `insert into blobs (id, organization_id, data) values ('00000000-0000-7000-8000-000000000001', $1, '\\x00')`,
    [orgId],
  );
  await database.query(
    `insert into messages (id, organization_id, domain_id, direction, status, blob_id, size, mail_from, rcpt_to,
                           from_address, subject, received_at, bulk, one_click_unsubscribe)
     select gen_random_uuid(), $1, m.domain_id, 'outbound', 'delivered', '00000000-0000-7000-8000-000000000001', 1000,
            'b@bounces.example', array['r' || n || '@remote.example'], m.address, 'Hello',
            now() - make_interval(secs => (n * 3607) % (6 * 86400)), n % 3 = 0, n % 6 = 0
       from mailboxes m, generate_series(1, $2) n
      where m.organization_id = $1`,
    [orgId, MESSAGES_PER_MAILBOX],
  );
  await database.query(
    `insert into deliveries (id, organization_id, message_id, recipient, domain, status, attempts, created_at, finished_at)
     select gen_random_uuid(), $1, m.id, m.rcpt_to[1], 'remote.example',
            case when (hashtext(m.id::text) & 2147483647) % 25 = 0 then 'bounced' else 'delivered' end, 1,
            m.received_at, m.received_at
       from messages m where m.organization_id = $1 and m.direction = 'outbound'`,
    [orgId],
  );
  for (const table of ['mailboxes', 'messages', 'deliveries', 'health_scores'])
    await database.query(`analyze ${table}`);
}

async function startProfile(): Promise<Session> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return session;
}

async function stopProfile(session: Session, name: string): Promise<void> {
  const { profile } = await session.post('Profiler.stop');
  session.disconnect();
  mkdirSync('/tmp/prof-health', { recursive: true });
  writeFileSync(`/tmp/prof-health/${name}.cpuprofile`, JSON.stringify(profile));
}

export async function run(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const engine of benchEngines()) rows.push(...(await recompute(engine)));
  return rows;
}
