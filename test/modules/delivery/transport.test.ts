// The outbound transport over real sockets: a DNS server on loopback serving the destination zones,
// smtp-sink as the remote MX, and a local HTTPS server serving MTA-STS policies. MX hosts point at
// 127.0.0.x addresses; the transport's remote port is the sink's port.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { cachedResolver } from '../../../src/core/resolver.ts';
import {
  Transport,
  type TransportOptions,
  type TransportTuning,
} from '../../../src/modules/delivery/transport/transport.ts';
import type { OutboundEnvelope } from '../../../src/modules/delivery/transport/types.ts';
import { startDnsServer, type TestDnsServer, type TestRecords } from '../../support/dns-server.ts';
import { type SmtpSink, startSmtpSink } from '../../support/smtp-sink.ts';
import { createTestTls, type TestTls } from '../../support/test-tls.ts';
import { until } from '../../support/until.ts';

const log = pino({ level: 'silent' });

const mxTo = (host: string, ip = '127.0.0.1'): Record<string, TestRecords> => ({
  [host]: { A: [ip] },
});
const domainWithMx = (domain: string, ip = '127.0.0.1'): Record<string, TestRecords> => ({
  [domain]: { MX: [{ exchange: `mx.${domain}`, priority: 10 }] },
  ...mxTo(`mx.${domain}`, ip),
});
const stsRecords = (domain: string, id = 'v1'): Record<string, TestRecords> => ({
  [`_mta-sts.${domain}`]: { TXT: [`v=STSv1; id=${id};`] },
  [`mta-sts.${domain}`]: { A: ['127.0.0.1'] },
});

/** A message with a line that starts with a dot, to see that dot-stuffing round-trips. */
function message(to: string, subject = 'Hello'): Buffer {
  return Buffer.from(
    `From: sender@origin.test\r\nTo: ${to}\r\nSubject: ${subject}\r\n\r\nHello.\r\n.leading dot\r\n..two dots\r\nBye\r\n`,
  );
}

function envelope(domain: string, recipients: string[], mailFrom = 'sender@origin.test'): OutboundEnvelope {
  return { domain, mailFrom, recipients, raw: message(recipients[0] ?? `nobody@${domain}`) };
}

describe('outbound transport', () => {
  let dns: TestDnsServer;
  let sink: SmtpSink;
  let tlsSink: SmtpSink;
  let mxTls: TestTls;
  let stsTls: TestTls;
  let sts: https.Server;
  const policies = new Map<string, string>();
  const fetches = new Map<string, number>();
  const transports: Transport[] = [];
  const extraServers: net.Server[] = [];

  const zone: Record<string, TestRecords> = {
    ...domainWithMx('deliver.test'),
    'nullmx.test': { MX: [{ exchange: '', priority: 0 }] },
    'implicit.test': { A: ['127.0.0.1'] },
    'servfail.test': { servfail: true },
    'slow.test': { timeout: true },
    'fallback.test': {
      MX: [
        { exchange: 'mx1.fallback.test', priority: 10 },
        { exchange: 'mx2.fallback.test', priority: 20 },
        { exchange: 'mx3.fallback.test', priority: 30 },
      ],
    },
    // Nothing listens on 127.0.0.2; 127.0.0.3 greets with a refusal; 127.0.0.1 is the sink.
    ...mxTo('mx1.fallback.test', '127.0.0.2'),
    ...mxTo('mx2.fallback.test', '127.0.0.3'),
    ...mxTo('mx3.fallback.test', '127.0.0.1'),
    ...domainWithMx('dead.test', '127.0.0.2'),
    ...domainWithMx('tls.test'),
    ...domainWithMx('reuse.test'),
    ...domainWithMx('limit.test'),
    ...domainWithMx('rotate.test'),
    ...domainWithMx('rate.test'),
    ...domainWithMx('enforce.test'),
    ...stsRecords('enforce.test'),
    ...domainWithMx('notls.test'),
    ...stsRecords('notls.test'),
    ...domainWithMx('mismatch.test'),
    ...stsRecords('mismatch.test'),
    ...domainWithMx('badcert.test'),
    ...stsRecords('badcert.test'),
    ...domainWithMx('testing.test'),
    ...stsRecords('testing.test'),
    ...domainWithMx('nopolicy.test'),
    ...stsRecords('nopolicy.test'),
    ...domainWithMx('cache.test'),
    ...stsRecords('cache.test'),
    ...domainWithMx('idle.test'),
  };

  before(async () => {
    dns = await startDnsServer(zone);
    [mxTls, stsTls] = await Promise.all([
      createTestTls(['mx.tls.test', 'mx.enforce.test', 'mx.notls.test', 'mx.mismatch.test', 'mx.cache.test']),
      createTestTls([
        'mta-sts.enforce.test',
        'mta-sts.notls.test',
        'mta-sts.mismatch.test',
        'mta-sts.badcert.test',
        'mta-sts.testing.test',
        'mta-sts.cache.test',
      ]),
    ]);
    [sink, tlsSink] = await Promise.all([startSmtpSink(), startSmtpSink({ tls: mxTls })]);
    policies.set('enforce.test', policy('enforce', ['*.enforce.test']));
    policies.set('notls.test', policy('enforce', ['mx.notls.test']));
    policies.set('mismatch.test', policy('enforce', ['mx.elsewhere.test']));
    policies.set('badcert.test', policy('enforce', ['mx.badcert.test']));
    policies.set('testing.test', policy('testing', ['mx.elsewhere.test']));
    sts = https.createServer({ key: stsTls.key, cert: stsTls.cert }, (req, res) => {
      const domain = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^mta-sts\./, '');
      fetches.set(domain, (fetches.get(domain) ?? 0) + 1);
      const text = req.url === '/.well-known/mta-sts.txt' ? policies.get(domain) : undefined;
      res.writeHead(text ? 200 : 404, { 'content-type': 'text/plain' }).end(text ?? 'not found');
    });
    sts.listen(0, '127.0.0.1');
    await once(sts, 'listening');
  });

  after(async () => {
    await Promise.all(transports.map((t) => t.close()));
    await Promise.all([sink.close(), tlsSink.close(), dns.close()]);
    await Promise.all([sts, ...extraServers].map((s) => new Promise((resolve) => s.close(resolve))));
  });

  function policy(mode: string, mx: string[]): string {
    return ['version: STSv1', `mode: ${mode}`, ...mx.map((m) => `mx: ${m}`), 'max_age: 86400', ''].join(
      '\r\n',
    );
  }

  function transport(port: number, options: Partial<TransportOptions> = {}, tuning?: TransportTuning) {
    const t = new Transport(
      {
        resolver: cachedResolver({ servers: [dns.address], timeoutMs: 1000, tries: 1, cacheMs: 0 }),
        port,
        heloName: 'out.mailroom.test',
        mtaStsPort: (sts.address() as AddressInfo).port,
        ca: [mxTls.cert, stsTls.cert],
        connectionsPerDomain: 2,
        messagesPerConnection: 100,
        ratePerDomainPerMinute: 0,
        connectTimeoutMs: 2000,
        commandTimeoutMs: 5000,
        idleTimeoutMs: 5000,
        log,
        ...options,
      },
      tuning,
    );
    transports.push(t);
    return t;
  }

  test('delivers and reports the MX, the reply and the timing', async () => {
    const t = transport(sink.port);
    const before = sink.messages.length;
    const env = envelope('deliver.test', ['alice@deliver.test', 'Bob@Deliver.test']);
    const result = await t.deliver(env);
    assert.deepEqual(
      result.recipients.map((r) => [r.address, r.outcome, r.code, r.enhanced]),
      [
        ['alice@deliver.test', 'delivered', 250, '2.0.0'],
        ['Bob@Deliver.test', 'delivered', 250, '2.0.0'],
      ],
    );
    assert.match(result.recipients[0].response, /^250 2\.0\.0 Ok: queued/);
    assert.equal(result.mx, 'mx.deliver.test');
    assert.equal(result.ip, '127.0.0.1');
    assert.equal(result.port, sink.port);
    assert.equal(result.tls, null);
    assert.equal(result.mtaSts, 'none');
    assert.ok(result.startedAt instanceof Date);
    assert.ok(result.durationMs >= 0 && result.durationMs < 10_000);
    const [received] = (await sink.waitFor(before + 1)).slice(before);
    assert.equal(received.mailFrom, 'sender@origin.test');
    assert.deepEqual(received.rcptTo, ['alice@deliver.test', 'Bob@Deliver.test']);
    assert.equal(received.tls, false);
    assert.deepEqual(received.raw, env.raw, 'the message arrives byte for byte (dot-stuffing undone)');

    const bounce = await t.deliver({ ...envelope('deliver.test', ['carol@deliver.test']), mailFrom: '' });
    assert.equal(bounce.recipients[0].outcome, 'delivered');
    assert.equal(
      (await sink.waitFor(before + 2))[before + 1].mailFrom,
      '',
      'the null sender is MAIL FROM:<>',
    );
  });

  test('each refused recipient gets its own reply; the others are delivered', async () => {
    const t = transport(sink.port);
    sink.onRecipient('gone@deliver.test', { code: 550, message: '5.1.1 no such user' });
    sink.onRecipient('full@deliver.test', { code: 452, message: '4.2.2 mailbox full' });
    const before = sink.messages.length;
    const result = await t.deliver(
      envelope('deliver.test', [
        'gone@deliver.test',
        'ok@deliver.test',
        'full@deliver.test',
        'bad address@x',
      ]),
    );
    sink.onRecipient('gone@deliver.test', null);
    sink.onRecipient('full@deliver.test', null);
    assert.deepEqual(
      result.recipients.map((r) => [r.address, r.outcome, r.code, r.enhanced]),
      [
        ['gone@deliver.test', 'bounced', 550, '5.1.1'],
        ['ok@deliver.test', 'delivered', 250, '2.0.0'],
        ['full@deliver.test', 'deferred', 452, '4.2.2'],
        ['bad address@x', 'bounced', 553, '5.1.3'],
      ],
    );
    assert.match(result.recipients[0].response, /^550 5\.1\.1 no such user/);
    const received = (await sink.waitFor(before + 1))[before];
    assert.deepEqual(received.rcptTo, ['ok@deliver.test']);
  });

  test('every recipient refused: each keeps its reply, nothing is sent', async () => {
    const t = transport(sink.port);
    sink.onRecipient('x1@deliver.test', { code: 550, message: '5.1.1 no such user' });
    sink.onRecipient('x2@deliver.test', { code: 451, message: '4.3.0 try later' });
    const before = sink.messages.length;
    const result = await t.deliver(envelope('deliver.test', ['x1@deliver.test', 'x2@deliver.test']));
    sink.onRecipient('x1@deliver.test', null);
    sink.onRecipient('x2@deliver.test', null);
    assert.deepEqual(
      result.recipients.map((r) => [r.outcome, r.code, r.enhanced]),
      [
        ['bounced', 550, '5.1.1'],
        ['deferred', 451, '4.3.0'],
      ],
    );
    assert.equal(sink.messages.length, before);
  });

  test('a refusal at the end of DATA applies to the accepted recipients; the connection is reused after RSET', async () => {
    const fresh = await startSmtpSink();
    try {
      const t = transport(fresh.port, { connectionsPerDomain: 1 });
      fresh.onData('spam@deliver.test', { code: 554, message: '5.7.1 message looks like spam' });
      fresh.onRecipient('nouser@deliver.test', { code: 550, message: '5.1.1 no such user' });
      const rejected = await t.deliver(
        envelope('deliver.test', ['spam@deliver.test', 'nouser@deliver.test']),
      );
      assert.deepEqual(
        rejected.recipients.map((r) => [r.outcome, r.code, r.enhanced]),
        [
          ['bounced', 554, '5.7.1'],
          ['bounced', 550, '5.1.1'],
        ],
        'the refused recipient keeps its own RCPT reply',
      );
      fresh.onData('spam@deliver.test', { code: 451, message: '4.7.1 greylisted' });
      const deferred = await t.deliver(envelope('deliver.test', ['spam@deliver.test']));
      assert.deepEqual(
        deferred.recipients.map((r) => [r.outcome, r.code, r.enhanced]),
        [['deferred', 451, '4.7.1']],
      );
      fresh.onData('spam@deliver.test', null);
      const ok = await t.deliver(envelope('deliver.test', ['spam@deliver.test']));
      assert.equal(ok.recipients[0].outcome, 'delivered');
      assert.deepEqual((await fresh.waitFor(1))[0].rcptTo, ['spam@deliver.test']);
      assert.equal(fresh.connections, 1, 'refusals do not cost the connection');
      await t.close();
    } finally {
      await fresh.close();
    }
  });

  test('a refused sender applies to every recipient', async () => {
    const t = transport(sink.port);
    sink.onMailFrom('blocked@origin.test', { code: 550, message: '5.7.1 sender blocked' });
    const result = await t.deliver(
      envelope('deliver.test', ['a@deliver.test', 'b@deliver.test'], 'blocked@origin.test'),
    );
    sink.onMailFrom('blocked@origin.test', null);
    assert.deepEqual(
      result.recipients.map((r) => [r.outcome, r.code, r.enhanced]),
      [
        ['bounced', 550, '5.7.1'],
        ['bounced', 550, '5.7.1'],
      ],
    );
    assert.match(result.recipients[0].response, /sender blocked/);
  });

  test('a null MX bounces with 5.1.10; a domain that does not exist with 5.1.2', async () => {
    const t = transport(sink.port);
    const nullMx = await t.deliver(envelope('nullmx.test', ['a@nullmx.test', 'b@nullmx.test']));
    for (const r of nullMx.recipients) {
      assert.deepEqual([r.outcome, r.code, r.enhanced], ['bounced', 550, '5.1.10']);
      assert.match(r.response, /accepts no mail/);
    }
    assert.equal(nullMx.mx, null);
    const missing = await t.deliver(envelope('nowhere.test', ['a@nowhere.test']));
    assert.deepEqual(
      missing.recipients.map((r) => [r.outcome, r.code, r.enhanced]),
      [['bounced', 550, '5.1.2']],
    );
  });

  test('a DNS failure defers with 4.4.3', async () => {
    const t = transport(sink.port);
    const result = await t.deliver(envelope('servfail.test', ['a@servfail.test']));
    assert.deepEqual(
      result.recipients.map((r) => [r.outcome, r.code, r.enhanced]),
      [['deferred', null, '4.4.3']],
    );
  });

  test('a DNS timeout defers with 4.4.3', async () => {
    const resolver = cachedResolver({ servers: [dns.address], timeoutMs: 200, tries: 1, cacheMs: 0 });
    const t = transport(sink.port, { resolver });
    const result = await t.deliver(envelope('slow.test', ['a@slow.test']));
    assert.deepEqual(
      result.recipients.map((r) => [r.outcome, r.code, r.enhanced]),
      [['deferred', null, '4.4.3']],
    );
  });

  test('without MX records the domain’s own address is the MX (implicit MX)', async () => {
    const t = transport(sink.port);
    const before = sink.messages.length;
    const result = await t.deliver(envelope('implicit.test', ['a@implicit.test']));
    assert.equal(result.recipients[0].outcome, 'delivered');
    assert.equal(result.mx, 'implicit.test');
    assert.deepEqual((await sink.waitFor(before + 1))[before].rcptTo, ['a@implicit.test']);
  });

  test('an unreachable or refusing MX host is skipped for the next; none reachable defers', async () => {
    // 127.0.0.3 on the sink's port greets with a refusal.
    const refusing = net.createServer((socket) => socket.end('554 5.3.2 not accepting mail\r\n'));
    extraServers.push(refusing);
    refusing.listen(sink.port, '127.0.0.3');
    await once(refusing, 'listening');
    const t = transport(sink.port);
    const before = sink.messages.length;
    const result = await t.deliver(envelope('fallback.test', ['a@fallback.test']));
    assert.equal(result.recipients[0].outcome, 'delivered');
    assert.equal(result.mx, 'mx3.fallback.test');
    assert.equal(result.ip, '127.0.0.1');
    await sink.waitFor(before + 1);

    const dead = await t.deliver(envelope('dead.test', ['a@dead.test', 'b@dead.test']));
    for (const r of dead.recipients) {
      assert.deepEqual([r.outcome, r.code, r.enhanced], ['deferred', null, '4.4.1']);
      assert.match(r.response, /mx\.dead\.test \[127\.0\.0\.2\].*ECONNREFUSED/);
    }
    assert.equal(dead.mx, null);
    assert.equal(dead.ip, null);
  });

  test('STARTTLS is used when offered, without requiring a valid certificate', async () => {
    const before = tlsSink.messages.length;
    const untrusting = transport(tlsSink.port, { ca: [] });
    const result = await untrusting.deliver(envelope('tls.test', ['a@tls.test']));
    assert.equal(result.recipients[0].outcome, 'delivered');
    assert.ok(result.tls);
    assert.match(result.tls.version, /^TLSv1\.[23]$/);
    assert.ok(result.tls.cipher);
    assert.equal(result.tls.authorized, false, 'self-signed and not trusted, used all the same');
    assert.equal((await tlsSink.waitFor(before + 1))[before].tls, true);

    const trusting = transport(tlsSink.port);
    const verified = await trusting.deliver(envelope('tls.test', ['b@tls.test']));
    assert.equal(verified.tls?.authorized, true);
  });

  test('messages to one domain share a connection', async () => {
    const fresh = await startSmtpSink();
    try {
      const t = transport(fresh.port, { connectionsPerDomain: 1 });
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => t.deliver(envelope('reuse.test', [`u${i}@reuse.test`]))),
      );
      assert.ok(results.every((r) => r.recipients[0].outcome === 'delivered'));
      await fresh.waitFor(10);
      assert.equal(fresh.connections, 1);
      await t.close();
    } finally {
      await fresh.close();
    }
  });

  test('no more than connectionsPerDomain connections at once; FIFO beyond', async () => {
    const fresh = await startSmtpSink();
    try {
      const t = transport(fresh.port, { connectionsPerDomain: 3 });
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) => t.deliver(envelope('limit.test', [`u${i}@limit.test`]))),
      );
      assert.ok(results.every((r) => r.recipients[0].outcome === 'delivered'));
      await fresh.waitFor(30);
      assert.ok(fresh.maxConcurrent <= 3, `at most 3 at once, saw ${fresh.maxConcurrent}`);
      assert.ok(fresh.connections <= 3, `connections are reused, saw ${fresh.connections}`);
      await t.close();
    } finally {
      await fresh.close();
    }
  });

  test('an idle connection is closed with QUIT after idleTimeoutMs', async () => {
    const fresh = await startSmtpSink();
    try {
      const t = transport(fresh.port, { idleTimeoutMs: 200 });
      await t.deliver(envelope('idle.test', ['a@idle.test']));
      assert.equal(fresh.open, 1, 'kept open for the next message');
      await until(
        async () => fresh.open,
        (open) => open === 0,
        5000,
      );
      await t.deliver(envelope('idle.test', ['b@idle.test']));
      assert.equal(fresh.connections, 2);
      await t.close();
    } finally {
      await fresh.close();
    }
  });

  test('a connection carries at most messagesPerConnection messages, then a new one is opened', async () => {
    const fresh = await startSmtpSink();
    try {
      const t = transport(fresh.port, { connectionsPerDomain: 2, messagesPerConnection: 3 });
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => t.deliver(envelope('rotate.test', [`u${i}@rotate.test`]))),
      );
      const messages = await fresh.waitFor(10);
      const perConnection = new Map<string, number>();
      for (const m of messages)
        perConnection.set(m.connectionId, (perConnection.get(m.connectionId) ?? 0) + 1);
      assert.ok(
        [...perConnection.values()].every((n) => n <= 3),
        JSON.stringify([...perConnection.values()]),
      );
      assert.equal(fresh.connections, perConnection.size);
      assert.ok(fresh.maxConcurrent <= 2, `at most 2 at once, saw ${fresh.maxConcurrent}`);
      await t.close();
    } finally {
      await fresh.close();
    }
  });

  test('over the per-domain rate a message waits for the window instead of failing', async () => {
    const windowMs = 1000;
    const t = transport(sink.port, { ratePerDomainPerMinute: 3 }, { rateWindowMs: windowMs });
    const started = Date.now();
    const results = await Promise.all(
      Array.from({ length: 4 }, (_, i) => t.deliver(envelope('rate.test', [`u${i}@rate.test`]))),
    );
    assert.ok(results.every((r) => r.recipients[0].outcome === 'delivered'));
    const finished = results.map((r) => r.startedAt.getTime() + r.durationMs - started);
    assert.ok(finished[3] >= windowMs, `the 4th waited for the window (done after ${finished[3]} ms)`);
    assert.ok(
      finished.slice(0, 3).every((f) => f < finished[3]),
      `the first three went first: ${JSON.stringify(finished)}`,
    );
  });

  describe('MTA-STS', () => {
    test('enforce: an allowed MX with a valid certificate gets the message over verified TLS', async () => {
      const t = transport(tlsSink.port);
      const before = tlsSink.messages.length;
      const result = await t.deliver(envelope('enforce.test', ['a@enforce.test']));
      assert.equal(result.recipients[0].outcome, 'delivered', result.recipients[0].response);
      assert.equal(result.mtaSts, 'enforce');
      assert.equal(result.tls?.authorized, true);
      assert.equal((await tlsSink.waitFor(before + 1))[before].tls, true);
    });

    test('enforce: an MX without STARTTLS is never used in plaintext', async () => {
      const fresh = await startSmtpSink();
      try {
        const t = transport(fresh.port);
        const result = await t.deliver(envelope('notls.test', ['a@notls.test']));
        assert.equal(result.mtaSts, 'enforce');
        assert.deepEqual(
          [result.recipients[0].outcome, result.recipients[0].enhanced],
          ['deferred', '4.4.1'],
        );
        assert.match(result.recipients[0].response, /STARTTLS/i);
        assert.equal(fresh.messages.length, 0);
      } finally {
        await fresh.close();
      }
    });

    test('enforce: a certificate that does not match the MX name defers', async () => {
      // The sink's certificate does not name mx.badcert.test.
      const t = transport(tlsSink.port);
      const before = tlsSink.messages.length;
      const result = await t.deliver(envelope('badcert.test', ['a@badcert.test']));
      assert.deepEqual([result.recipients[0].outcome, result.recipients[0].enhanced], ['deferred', '4.4.1']);
      assert.equal(tlsSink.messages.length, before);
    });

    test('enforce: MX hosts the policy does not name are not used', async () => {
      const t = transport(tlsSink.port);
      const before = tlsSink.messages.length;
      const result = await t.deliver(envelope('mismatch.test', ['a@mismatch.test']));
      assert.deepEqual([result.recipients[0].outcome, result.recipients[0].code], ['deferred', null]);
      assert.match(
        result.recipients[0].response,
        /MTA-STS policy of mismatch\.test .*allows none of its MX hosts/,
      );
      assert.equal(result.mx, null);
      assert.equal(tlsSink.messages.length, before);
    });

    test('testing: delivered as usual and reported', async () => {
      const t = transport(sink.port);
      const result = await t.deliver(envelope('testing.test', ['a@testing.test']));
      assert.equal(result.recipients[0].outcome, 'delivered');
      assert.equal(result.mtaSts, 'testing');
    });

    test('a policy is cached, fetched again when its id changes, and kept when that fetch fails', async () => {
      policies.set('cache.test', policy('enforce', ['mx.cache.test']));
      const t = transport(tlsSink.port);
      const first = await t.deliver(envelope('cache.test', ['a@cache.test']));
      const second = await t.deliver(envelope('cache.test', ['b@cache.test']));
      assert.deepEqual([first.mtaSts, second.mtaSts], ['enforce', 'enforce']);
      assert.equal(fetches.get('cache.test'), 1, 'fetched once for both messages');

      dns.set('_mta-sts.cache.test', { TXT: ['v=STSv1; id=v2;'] });
      policies.set('cache.test', policy('testing', ['mx.cache.test']));
      const changed = await t.deliver(envelope('cache.test', ['c@cache.test']));
      assert.equal(changed.mtaSts, 'testing');
      assert.equal(fetches.get('cache.test'), 2, 'a new id is fetched');

      dns.set('_mta-sts.cache.test', { TXT: ['v=STSv1; id=v3;'] });
      policies.delete('cache.test');
      const failed = await t.deliver(envelope('cache.test', ['d@cache.test']));
      assert.equal(fetches.get('cache.test'), 3);
      assert.equal(failed.mtaSts, 'testing', 'the cached policy stays in force');
      assert.equal(failed.recipients[0].outcome, 'delivered');
    });

    test('a TXT record whose policy cannot be fetched: delivered as without MTA-STS', async () => {
      const t = transport(sink.port);
      const result = await t.deliver(envelope('nopolicy.test', ['a@nopolicy.test']));
      assert.equal(result.recipients[0].outcome, 'delivered');
      assert.equal(result.mtaSts, 'none');
    });
  });

  test('close waits for deliveries in flight and leaves no connection open', async () => {
    const fresh = await startSmtpSink();
    try {
      const t = transport(fresh.port, { connectionsPerDomain: 1 });
      const pending = Array.from({ length: 5 }, (_, i) =>
        t.deliver(envelope('reuse.test', [`c${i}@reuse.test`])),
      );
      await t.close();
      const results = await Promise.all(pending);
      assert.ok(results.every((r) => r.recipients[0].outcome === 'delivered'));
      assert.equal(fresh.connections, 1);
      await until(
        async () => fresh.open,
        (open) => open === 0,
        5000,
      );
      const late = await t.deliver(envelope('reuse.test', ['late@reuse.test']));
      assert.deepEqual([late.recipients[0].outcome, late.recipients[0].enhanced], ['deferred', '4.3.2']);
    } finally {
      await fresh.close();
    }
  });
});
