import type { TestRecords } from '../test/support/dns-server.ts';
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

const TARGETS = Number(process.env.BENCH_BLOCKLIST_TARGETS ?? 1000);
const CONCURRENCY = process.env.MAILROOM_BLOCKLISTS_CONCURRENCY ?? '32';

async function checkTargets(engine: Engine): Promise<Row> {
  const { dns, address } = await forkDnsServer();
  try {
    return await withBenchApp(
      engine,
      { MAILROOM_DNS_SERVERS: address, MAILROOM_BLOCKLISTS_CONCURRENCY: CONCURRENCY },
      {},
      async ({ port, token }) => {
        const zone: [string, TestRecords][] = [];
        for (let i = 0; i < TARGETS; i++) {
          const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
          await json(port!, 'POST', '/v1/blocklists/ips', { ip }, token);
          await json(
            port!,
            'POST',
            '/v1/domains',
            { name: `d${i}.bench.example`, dkim: { algorithm: 'ed25519' } },
            token,
          );
          if (i % 10 === 0) {
            zone.push([`${ip.split('.').reverse().join('.')}.zen.spamhaus.org`, { A: ['127.0.0.2'] }]);
            zone.push([`d${i}.bench.example.dbl.spamhaus.org`, { A: ['127.0.1.2'] }]);
          }
        }
        await ask(dns, { zone });
        const before = (await ask<{ queries: { udp: number; tcp: number } }>(dns, { report: true })).queries;

        const started = performance.now();
        const status = await json(port!, 'POST', '/v1/blocklists/check', {}, token);
        const seconds = (performance.now() - started) / 1000;

        const after = (await ask<{ queries: { udp: number; tcp: number } }>(dns, { report: true })).queries;
        const queries = after.udp + after.tcp - before.udp - before.tcp;
        const listed = status.items.filter((i: { listed: boolean }) => i.listed).length;
        return {
          benchmark: `blocklist checks (${engine})`,
          workload: `${TARGETS} IPs × 3 lists + ${TARGETS} domains × 3 lists, concurrency ${CONCURRENCY}; ${listed} listed; ${queries.toLocaleString('en')} DNS queries`,
          throughput: `${seconds.toFixed(2)} s total; ${Math.round(queries / seconds).toLocaleString('en')} queries/s`,
          p50: '–',
          p99: '–',
          peakRss: `${Math.round(peakRssMb(process.pid))} MB`,
          target: `< 10 s for 1,000 + 1,000 ${seconds < 10 ? '✔' : '✘'}`,
        };
      },
    );
  } finally {
    dns.kill();
  }
}

export async function run(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const engine of benchEngines()) rows.push(await checkTargets(engine));
  return rows;
}
