import type { TestRecords } from '../test/support/dns-server.ts';
import { zoneOf } from '../test/support/domains.ts';
import {
  ask,
  benchEngines,
  withBenchApp,
  type Engine,
  json,
  peakRssMb,
  type Row,
  forkDnsServer,
} from './support.ts';

const DOMAINS = Number(process.env.BENCH_DOMAINS ?? 1000);
const CONCURRENCY = process.env.MAILROOM_DNS_VERIFY_CONCURRENCY ?? '8';
const HOST = 'mx.bench.example';

async function verifyDomains(engine: Engine): Promise<Row> {
  const { dns, address } = await forkDnsServer();
  try {
    return await withBenchApp(
      engine,
      {
        MAILROOM_HOSTNAME: HOST,
        MAILROOM_DNS_SERVERS: address,
        MAILROOM_DNS_VERIFY_CONCURRENCY: CONCURRENCY,
      },
      {},
      async ({ app, port, token }) => {
        // Set up: the domains, and their records on the DNS server.
        const zone: [string, TestRecords][] = [];
        for (let i = 0; i < DOMAINS; i++) {
          const body = { name: `d${i}.bench.example`, dkim: { algorithm: 'ed25519' } };
          const created = await json(port!, 'POST', '/v1/domains', body, token);
          const { records } = await json(
            port!,
            'GET',
            `/v1/domains/${created.id}/dns-records`,
            undefined,
            token,
          );
          zone.push(...zoneOf(records));
        }
        await ask(dns, { zone });
        await app.database.query("update domains set next_check_at = now() - interval '1 second'");
        const before = (await ask<{ queries: { udp: number; tcp: number } }>(dns, { report: true })).queries;

        const started = performance.now();
        const checked = await app.services.domains.recheckDue();
        const seconds = (performance.now() - started) / 1000;

        const after = (await ask<{ queries: { udp: number; tcp: number } }>(dns, { report: true })).queries;
        const queries = after.udp + after.tcp - before.udp - before.tcp;
        const verified = await app.database.query<{ n: string }>(
          "select count(*) as n from domains where status = 'verified'",
        );
        return {
          benchmark: `verify domains (${engine})`,
          workload: `${checked} domains × 9 records, concurrency ${CONCURRENCY}, 1 resolver; ${verified.rows[0].n} verified; ${queries.toLocaleString('en')} DNS queries`,
          throughput: `${seconds.toFixed(2)} s total; ${Math.round(checked / seconds)} domains/s; ${Math.round(queries / seconds).toLocaleString('en')} queries/s`,
          p50: '–',
          p99: '–',
          peakRss: `${Math.round(peakRssMb(process.pid))} MB`,
          target: `< 10 s for 1,000 ${seconds < 10 ? '✔' : '✘'}`,
        };
      },
    );
  } finally {
    dns.kill();
  }
}

export async function run(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const engine of benchEngines()) rows.push(await verifyDomains(engine));
  return rows;
}
