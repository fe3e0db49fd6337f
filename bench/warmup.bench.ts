// Warmup scheduling at scale: 10,000 enrolled mailboxes on one organisation's pool, each planning its
// day at local midnight (its send times, spread over its window): the first day of the normal ramp
// (3 messages each) and a day at its target (40 each). Enrolments are written with SQL (10,000 API
// calls would measure the API, not planning); the plan runs through the engine's tick, as the
// `warmup.tick` job runs it.
import { ManualClock } from '../src/core/clock.ts';
import { benchEngines, type Engine, json, peakRssMb, type Row, withBenchApp } from './support.ts';

const MAILBOXES = Number(process.env.BENCH_WARMUP_MAILBOXES ?? 10_000);
/** A Monday at 00:00 UTC: every enrolment's day begins. */
const MONDAY = Date.parse('2027-01-04T00:00:00Z');

async function planDays(engine: Engine): Promise<Row[]> {
  const clock = new ManualClock(MONDAY);
  return withBenchApp(engine, {}, { clock }, async ({ app, port, token, org }) => {
    const domains = [];
    for (const name of ['warm-a.bench.example', 'warm-b.bench.example'])
      domains.push(await json(port!, 'POST', '/v1/domains', { name, dkim: { algorithm: 'ed25519' } }, token));
    await seed(
      app.database,
      org.id,
      domains.map((d) => d.id),
      MAILBOXES,
    );

    const rows: Row[] = [];
    for (const [label, warmDays, perMailbox] of [
      ['first day of the normal ramp', 0, 3],
      ['a day at the ramp’s target', 30, 40],
    ] as const) {
      await app.database.query('delete from warmup_messages');
      await app.database.query(
        `update warmup_enrollments
            set warm_days = ${warmDays}, planned_on = null, next_plan_at = $1, plan_times = '{}', next_send_at = null`,
        [new Date(MONDAY).toISOString()],
      );
      const started = performance.now();
      const report = await app.services.warmup.tick();
      const seconds = (performance.now() - started) / 1000;
      if (report.planned !== MAILBOXES * perMailbox)
        throw new Error(`planned ${report.planned}, expected ${MAILBOXES * perMailbox}`);
      rows.push({
        benchmark: `warmup planning (${engine})`,
        workload: `${MAILBOXES.toLocaleString('en')} mailboxes, ${label}: ${report.planned.toLocaleString('en')} send times planned`,
        throughput: `${seconds.toFixed(2)} s; ${Math.round(MAILBOXES / seconds).toLocaleString('en')} mailboxes/s`,
        p50: '–',
        p99: '–',
        peakRss: `${Math.round(peakRssMb(process.pid))} MB`,
        target: `< 10 s ${seconds < 10 ? '✔' : '✘'}`,
      });
    }
    return rows;
  });
}

/** Mailboxes spread over the domains, each enrolled on the normal ramp, Monday to Friday 8–18 UTC. */
async function seed(
  database: { query: (sql: string, params?: unknown[]) => Promise<unknown> },
  orgId: string,
  domainIds: string[],
  count: number,
) {
  await database.query(
    `insert into mailboxes (id, organization_id, domain_id, local_part, address, quota_bytes)
     select gen_random_uuid(), $1::uuid, d.id, 'm' || n, 'm' || n || '@' || d.name, 1073741824
       from generate_series(1, $2::int) n
       join lateral (select id, name from domains where id = any($3::uuid[])
                     order by id offset (n % array_length($3::uuid[], 1)) limit 1) d on true`,
    [orgId, count, domainIds],
  );
  await database.query(
    `insert into warmup_enrollments (id, organization_id, mailbox_id, address, pool, status, ramp, weekdays,
                                     start_hour, end_hour, time_zone, reply_rate, provider, next_plan_at)
     select gen_random_uuid(), organization_id, id, address, 'organization', 'active',
            '{"curve":"normal","start":3,"increase":2,"target":40,"days":30}'::jsonb, '{1,2,3,4,5}',
            8, 18, 'UTC', 0.3, 'other', now()
       from mailboxes where organization_id = $1::uuid`,
    [orgId],
  );
}

export async function run(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const engine of benchEngines()) rows.push(...(await planDays(engine)));
  return rows;
}
