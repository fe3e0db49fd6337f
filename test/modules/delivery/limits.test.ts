// Per-destination limits held for the whole installation: three transports (as three workers would
// run them), each with its own connection to the shared store, deliver to one remote MX. Whatever each
// would allow on its own, the MX never sees more connections than the limit, and no window sees more
// message starts than the rate. Run against PostgreSQL and against Redis (the embedded engine has one
// worker, whose own limits are exact: there is nothing to share).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import {
  PostgresLimits,
  RedisLimits,
  type SharedLimits,
} from '../../../src/modules/delivery/transport/limits.ts';
import { Transport } from '../../../src/modules/delivery/transport/transport.ts';
import type { OutboundEnvelope } from '../../../src/modules/delivery/transport/types.ts';
import { cachedResolver } from '../../../src/core/resolver.ts';
import { engine, startTestApp, type TestApp } from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { type SmtpSink, startSmtpSink } from '../../support/smtp-sink.ts';

const log = pino({ level: 'silent' });
const WINDOW_MS = 1_000;
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

function envelope(domain: string, n: number): OutboundEnvelope {
  const to = `u${n}@${domain}`;
  return {
    domain,
    mailFrom: 'sender@origin.test',
    recipients: [to],
    raw: Buffer.from(`From: sender@origin.test\r\nTo: ${to}\r\nSubject: ${n}\r\n\r\nHello\r\n`),
  };
}

for (const store of ['postgres', 'redis'] as const) {
  describe(`installation-wide destination limits in ${store}`, { skip: engine !== 'postgres' }, () => {
    let t: TestApp;
    let dns: TestDnsServer;
    let sink: SmtpSink;
    const closers: (() => Promise<void>)[] = [];
    const tag = Math.random().toString(36).slice(2, 8);

    before(async () => {
      t = await startTestApp();
      dns = await startDnsServer();
      sink = await startSmtpSink();
    });
    after(async () => {
      for (const close of closers.reverse()) await close();
      await sink.close();
      await dns.close();
      await t.close();
    });

    function limits(): SharedLimits {
      const options = { log, windowMs: WINDOW_MS, leaseMs: 3_000 };
      const shared =
        store === 'postgres'
          ? new PostgresLimits(t.app.database.db, options)
          : new RedisLimits(new Redis(REDIS_URL, { maxRetriesPerRequest: 2 }), options);
      closers.push(() => shared.close());
      return shared;
    }

    /** Three transports, as three workers: each alone would open `connections` and start `rate` a window. */
    function workers(connections: number, rate: number): Transport[] {
      return Array.from({ length: 3 }, () => {
        const transport = new Transport(
          {
            resolver: cachedResolver({ servers: [dns.address], timeoutMs: 1000, tries: 1, cacheMs: 0 }),
            port: sink.port,
            heloName: 'out.mailroom.test',
            mtaStsPort: 1,
            connectionsPerDomain: connections,
            messagesPerConnection: 100,
            ratePerDomainPerMinute: rate,
            connectTimeoutMs: 2_000,
            commandTimeoutMs: 5_000,
            idleTimeoutMs: 200,
            shared: limits(),
            log,
          },
          { rateWindowMs: WINDOW_MS },
        );
        closers.push(() => transport.close());
        return transport;
      });
    }

    /** Slots of `domain` that someone holds, read straight from the store. */
    async function heldSlots(domain: string): Promise<number> {
      if (store === 'postgres') {
        const result = await t.app.database.query(
          'select count(*)::int as n from outbound_slots where destination = $1 and holder is not null and expires_at > now()',
          [domain],
        );
        return Number(result.rows[0].n);
      }
      const redis = new Redis(REDIS_URL);
      const keys = await redis.keys(`mailroom:outbound:slot:${domain}:*`);
      await redis.quit();
      return keys.length;
    }

    function serve(domain: string) {
      dns.set(domain, { MX: [{ exchange: `mx.${domain}`, priority: 10 }] });
      dns.set(`mx.${domain}`, { A: ['127.0.0.1'] });
    }

    test('three workers limited to 5 connections never open more than 5 together', async () => {
      const domain = `slots-${tag}.test`;
      serve(domain);
      // Slow replies keep each connection busy, so every worker wants all of its own 5.
      for (let n = 0; n < 45; n++) sink.delayData(`u${n}@${domain}`, 150);
      const before = { connections: sink.connections };
      sink.maxConcurrent = 0;
      const three = workers(5, 0);
      const results = await Promise.all(
        Array.from({ length: 45 }, (_, n) => three[n % 3].deliver(envelope(domain, n))),
      );
      assert.ok(
        results.every((r) => r.recipients[0].outcome === 'delivered'),
        JSON.stringify(results.find((r) => r.recipients[0].outcome !== 'delivered')),
      );
      assert.ok(sink.maxConcurrent <= 5, `at most 5 at once, saw ${sink.maxConcurrent}`);
      assert.ok(sink.maxConcurrent >= 3, `the workers did share the slots, saw ${sink.maxConcurrent}`);
      assert.ok(sink.connections > before.connections);
    });

    test('three workers limited to 4 messages a window start at most 4 in any window', async () => {
      const domain = `rate-${tag}.test`;
      serve(domain);
      const three = workers(2, 4);
      const began = Date.now();
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, n) => three[n % 3].deliver(envelope(domain, n))),
      );
      assert.ok(results.every((r) => r.recipients[0].outcome === 'delivered'));
      const starts = results.map((r) => r.startedAt.getTime() + r.durationMs).sort((a, b) => a - b);
      // 12 at 4 a window: the last cannot have gone before two windows had passed.
      assert.ok(starts[11] - began >= 2 * WINDOW_MS, `all done after ${starts[11] - began} ms`);
      for (const [i, at] of starts.entries()) {
        const inWindow = starts.filter((s) => s >= at && s < at + WINDOW_MS - 50).length;
        assert.ok(inWindow <= 4, `${inWindow} finished within a window from message ${i}`);
      }
    });

    test('a worker that stops cleanly gives its slots back at once, not when their leases run out', async () => {
      const domain = `stop-${tag}.test`;
      serve(domain);
      const shared = limits();
      const transport = new Transport({
        resolver: cachedResolver({ servers: [dns.address], timeoutMs: 1000, tries: 1, cacheMs: 0 }),
        port: sink.port,
        heloName: 'out.mailroom.test',
        mtaStsPort: 1,
        connectionsPerDomain: 2,
        messagesPerConnection: 100,
        ratePerDomainPerMinute: 0,
        connectTimeoutMs: 2_000,
        commandTimeoutMs: 5_000,
        idleTimeoutMs: 10_000,
        shared,
        log,
      });
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, n) => transport.deliver(envelope(domain, n))),
      );
      assert.ok(results.every((r) => r.recipients[0].outcome === 'delivered'));
      // As a worker stops: the transport QUITs its pooled connections, then the limits close (and the
      // process would close its database right after).
      await transport.close();
      await shared.close();
      assert.equal(await heldSlots(domain), 0, 'nothing is held once the limits have closed');
      const began = Date.now();
      const next = limits();
      const releases = [
        await next.takeSlot(domain, 2, new AbortController().signal),
        await next.takeSlot(domain, 2, new AbortController().signal),
      ];
      assert.ok(Date.now() - began < 1_000, `both slots were free (${Date.now() - began} ms)`);
      for (const release of releases) release();
    });

    test('slots a stopped worker held come free once their lease runs out', async () => {
      const domain = `lease-${tag}.test`;
      // A worker that was killed holding both slots, its leases a second from running out.
      if (store === 'postgres') {
        await t.app.database.query(
          `insert into outbound_slots (destination, slot, holder, expires_at)
           values ($1, 0, 'dead', now() + interval '1 second'), ($1, 1, 'dead', now() + interval '1 second')`,
          [domain],
        );
      } else {
        const redis = new Redis(REDIS_URL);
        for (const slot of [0, 1])
          await redis.set(`mailroom:outbound:slot:${domain}:${slot}`, 'dead', 'PX', 1_000);
        await redis.quit();
      }
      const began = Date.now();
      const release = await limits().takeSlot(domain, 2, new AbortController().signal);
      assert.ok(Date.now() - began >= 800, `it waited for a lease to expire (${Date.now() - began} ms)`);
      release();
    });
  });
}
