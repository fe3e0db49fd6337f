// The rspamd spam engine against a real rspamd (Debian's package) started for this file: GTUBE is
// rejected, an ordinary message passes with its symbols, and the envelope reaches rspamd as its
// documented headers; and, against small local servers, the exact request on the wire and what a
// silent, absent, confused or refusing engine turns into.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { RspamdSpamEngine } from '../../src/providers/spam/rspamd.ts';
import { SpamEngineError, type SpamEngineErrorCode } from '../../src/providers/spam/types.ts';
import { type Rspamd, rspamdSkip, startRspamd } from '../support/rspamd.ts';
import { until } from '../support/until.ts';

/** The Generic Test for Unsolicited Bulk Email string; rspamd answers it with reject. */
const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';

function message(options: { messageId: string; subject: string; body: string }): Buffer {
  const date = new Date().toUTCString().replace('GMT', '+0000');
  return Buffer.from(
    [
      'Received: from mail.example.com (mail.example.com [203.0.113.5])',
      `\tby mx.mailroom.test with ESMTPS id ${options.messageId}; ${date}`,
      'From: Alice Example <alice@example.com>',
      'To: Bob Example <bob@example.org>',
      `Subject: ${options.subject}`,
      `Message-ID: <${options.messageId}@example.com>`,
      `Date: ${date}`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 7bit',
      '',
      options.body,
      '',
    ].join('\r\n'),
  );
}

const ENVELOPE = {
  ip: '203.0.113.5',
  helo: 'mail.example.com',
  hostname: 'mail.example.com',
  from: 'alice@example.com',
  recipients: ['bob@example.org'],
};

async function rejectsWith(promise: Promise<unknown>, code: SpamEngineErrorCode, message?: RegExp) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof SpamEngineError, `expected a SpamEngineError, got ${error}`);
    assert.equal(error.code, code, error.message);
    if (message) assert.match(error.message, message);
    return true;
  });
}

describe('rspamd (a real rspamd)', { skip: rspamdSkip() }, () => {
  let rspamd: Rspamd;
  let engine: RspamdSpamEngine;

  before(async () => {
    rspamd = await startRspamd();
    engine = new RspamdSpamEngine({ url: rspamd.url });
  });

  after(async () => {
    await rspamd?.stop();
  });

  test('a GTUBE message is spam: reject, with the GTUBE symbol', async () => {
    const check = await engine.check(
      message({ messageId: 'gtube-1', subject: 'Cheap watches', body: `Buy now!\r\n\r\n${GTUBE}` }),
      { ...ENVELOPE, queueId: 'GTUBE1' },
    );
    assert.equal(check.action, 'reject');
    assert.equal(check.isSpam, true);
    assert.ok(check.score >= check.requiredScore, `score ${check.score} under ${check.requiredScore}`);
    assert.ok(
      check.symbols.some((s) => s.name === 'GTUBE'),
      JSON.stringify(check.symbols),
    );
    assert.equal(check.messageId, 'gtube-1@example.com');
  });

  test('an ordinary message passes with a low score and its symbols', async () => {
    const check = await engine.check(
      message({
        messageId: 'lunch-1',
        subject: 'Lunch on Friday',
        body: 'Hi Bob,\r\n\r\nShall we have lunch on Friday at noon? The usual place near the office.\r\n\r\nAlice',
      }),
      { ...ENVELOPE, queueId: 'LUNCH1' },
    );
    assert.equal(check.action, 'no action');
    assert.equal(check.isSpam, false);
    assert.ok(check.score < 2, `score ${check.score}: ${JSON.stringify(check.symbols)}`);
    assert.ok(check.requiredScore > check.score);
    assert.ok(check.symbols.length > 0);
    for (const symbol of check.symbols) {
      assert.match(symbol.name, /^[A-Z0-9_]+$/);
      assert.equal(typeof symbol.score, 'number');
    }
    // The envelope sender matched the From header, which rspamd only knows from our From header.
    assert.ok(
      check.symbols.some((s) => s.name === 'FROM_EQ_ENVFROM'),
      JSON.stringify(check.symbols),
    );
    assert.equal(check.messageId, 'lunch-1@example.com');
  });

  test('the envelope reaches rspamd: queue id, client, sender and every recipient', async () => {
    await engine.check(
      message({ messageId: 'envelope-1', subject: 'Minutes', body: 'Attached, as promised.' }),
      {
        ...ENVELOPE,
        recipients: ['bob@example.org', 'carol@example.org', 'dave@example.net'],
        queueId: 'ENVELOPE1',
      },
    );
    // rspamd logs one line per scan with what it took from the request headers.
    const line = await until(
      async () =>
        rspamd
          .log()
          .split('\n')
          .find((l) => l.includes('qid: <ENVELOPE1>')) ?? '',
      (found) => found !== '',
      10_000,
    );
    assert.match(line, /ip: 203\.0\.113\.5/);
    assert.match(line, /from: <alice@example\.com>/);
    assert.match(line, /rcpts: <bob@example\.org,carol@example\.org,dave@example\.net>/);
  });
});

describe('rspamd requests and failures', () => {
  const servers: net.Server[] = [];

  async function listen<T extends net.Server>(made: T): Promise<string> {
    servers.push(made);
    await new Promise<void>((resolve) => made.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(made.address() as net.AddressInfo).port}`;
  }

  /** An HTTP server answering every request with this status and body. */
  function answering(status: number, body: string | Buffer, type = 'application/json') {
    return listen(
      http.createServer((request, response) => {
        request.resume();
        request.on('end', () => response.writeHead(status, { 'content-type': type }).end(body));
      }),
    );
  }

  after(async () => {
    for (const made of servers) {
      made.close();
      if (made instanceof http.Server) made.closeAllConnections();
    }
  });

  test('the envelope goes as rspamd documents it: one header each, one Rcpt per recipient, raw bytes', async () => {
    let seen: { method?: string; url?: string; headers: string[]; body: Buffer } | undefined;
    const url = await listen(
      http.createServer((request, response) => {
        const chunks: Buffer[] = [];
        request.on('data', (chunk: Buffer) => chunks.push(chunk));
        request.on('end', () => {
          seen = {
            method: request.method,
            url: request.url,
            headers: request.rawHeaders,
            body: Buffer.concat(chunks),
          };
          response.writeHead(200, { 'content-type': 'application/json' }).end(
            JSON.stringify({
              is_skipped: false,
              score: 7.5,
              required_score: 15,
              action: 'add header',
              symbols: {
                BAYES_SPAM: {
                  name: 'BAYES_SPAM',
                  score: 5.1,
                  metric_score: 5.1,
                  description: 'Likely spam',
                  options: ['99.9%'],
                },
                MIME_GOOD: {
                  name: 'MIME_GOOD',
                  score: -0.1,
                  metric_score: -0.1,
                  description: 'Known content-type',
                },
              },
              messages: {},
              'message-id': 'abc@example.com',
            }),
          );
        });
      }),
    );
    const raw = message({ messageId: 'wire-1', subject: 'Hello', body: 'Hello.' });
    const engine = new RspamdSpamEngine({ url: `${url}/`, password: 'scanner secret' });
    const check = await engine.check(raw, {
      ip: '2001:db8::25',
      helo: 'mx.example.com',
      hostname: 'mx.example.com',
      from: 'jürgen@例え.jp',
      recipients: ['bob@example.org', 'carol@example.org'],
      user: 'alice@mailroom.test',
      queueId: '0190f0c2-0000-7000-8000-000000000001',
    });
    assert.equal(seen?.method, 'POST');
    assert.equal(seen?.url, '/checkv2');
    assert.deepEqual(seen?.body, raw);
    /** The values of every `name` header of the last request, in order. */
    const values = (name: string) =>
      seen!.headers
        .flatMap((value, i, all) =>
          i % 2 === 0 && value.toLowerCase() === name.toLowerCase() ? [all[i + 1]] : [],
        )
        // Node reads header bytes as latin1; the engine sent UTF-8.
        .map((value) => Buffer.from(value, 'latin1').toString('utf8'));
    assert.deepEqual(values('IP'), ['2001:db8::25']);
    assert.deepEqual(values('Helo'), ['mx.example.com']);
    assert.deepEqual(values('Hostname'), ['mx.example.com']);
    assert.deepEqual(values('From'), ['jürgen@例え.jp']);
    assert.deepEqual(values('Rcpt'), ['bob@example.org', 'carol@example.org']);
    assert.deepEqual(values('User'), ['alice@mailroom.test']);
    assert.deepEqual(values('Queue-Id'), ['0190f0c2-0000-7000-8000-000000000001']);
    assert.deepEqual(values('Password'), ['scanner secret']);
    assert.deepEqual(values('Content-Length'), [String(raw.length)]);
    assert.deepEqual(check, {
      score: 7.5,
      requiredScore: 15,
      action: 'add header',
      isSpam: true,
      symbols: [
        { name: 'BAYES_SPAM', score: 5.1, description: 'Likely spam', options: ['99.9%'] },
        { name: 'MIME_GOOD', score: -0.1, description: 'Known content-type' },
      ],
      messageId: 'abc@example.com',
    });

    // The null reverse-path (a bounce) is `<>`; absent fields send no header at all.
    await engine.check(raw, { from: null });
    assert.deepEqual(values('From'), ['<>']);
    for (const name of ['IP', 'Helo', 'Hostname', 'Rcpt', 'User', 'Queue-Id'])
      assert.deepEqual(values(name), [], name);
  });

  test('a value that would break the header is refused before anything is sent', async () => {
    let requests = 0;
    const url = await listen(
      http.createServer((request, response) => {
        requests++;
        request.resume();
        response.end('{}');
      }),
    );
    const engine = new RspamdSpamEngine({ url });
    await rejectsWith(
      engine.check(Buffer.from('x'), { from: 'a@example.com\r\nX-Injected: yes' }),
      'spam_engine_rejected',
      /From/,
    );
    assert.equal(requests, 0);
  });

  test('an engine that never answers times out', async () => {
    const url = await listen(net.createServer((socket) => socket.resume()));
    const engine = new RspamdSpamEngine({ url, timeoutMs: 300 });
    const started = Date.now();
    await rejectsWith(engine.check(Buffer.from('x'), ENVELOPE), 'spam_engine_timeout', /300 ms/);
    assert.ok(Date.now() - started < 5_000);
  });

  test('a closed port is unavailable, and so is a server error', async () => {
    const closed = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    await rejectsWith(
      new RspamdSpamEngine({ url: `http://127.0.0.1:${closed}` }).check(Buffer.from('x'), ENVELOPE),
      'spam_engine_unavailable',
      /ECONNREFUSED/,
    );
    const failing = await answering(500, JSON.stringify({ error: 'task timeout' }));
    await assert.rejects(
      new RspamdSpamEngine({ url: failing }).check(Buffer.from('x'), ENVELOPE),
      (error: unknown) => {
        assert.ok(error instanceof SpamEngineError);
        assert.equal(error.code, 'spam_engine_unavailable');
        assert.equal(error.status, 500);
        assert.match(error.message, /task timeout/);
        return true;
      },
    );
  });

  test('a refusal (wrong password) is rejected', async () => {
    const refusing = await answering(403, JSON.stringify({ error: 'Unauthorized' }));
    await rejectsWith(
      new RspamdSpamEngine({ url: refusing, password: 'wrong' }).check(Buffer.from('x'), ENVELOPE),
      'spam_engine_rejected',
      /403.*Unauthorized/,
    );
  });

  test('garbage, non-JSON, the wrong shape and an oversized answer are malformed', async () => {
    const notHttp = await listen(
      net.createServer((socket) => {
        socket.on('error', () => {});
        socket.once('data', () => socket.end('220 mail.example.com ESMTP ready\r\n'));
      }),
    );
    await rejectsWith(
      new RspamdSpamEngine({ url: notHttp }).check(Buffer.from('x'), ENVELOPE),
      'spam_engine_malformed',
      /not HTTP/,
    );
    const html = await answering(200, '<html>proxy login</html>', 'text/html');
    await rejectsWith(
      new RspamdSpamEngine({ url: html }).check(Buffer.from('x'), ENVELOPE),
      'spam_engine_malformed',
      /JSON/,
    );
    const shapeless = await answering(200, JSON.stringify({ action: 'no action', symbols: {} }));
    await rejectsWith(
      new RspamdSpamEngine({ url: shapeless }).check(Buffer.from('x'), ENVELOPE),
      'spam_engine_malformed',
      /score/,
    );
    const badSymbol = await answering(
      200,
      JSON.stringify({ score: 1, required_score: 15, action: 'no action', symbols: { X: 3 } }),
    );
    await rejectsWith(
      new RspamdSpamEngine({ url: badSymbol }).check(Buffer.from('x'), ENVELOPE),
      'spam_engine_malformed',
      /X/,
    );
    const huge = await answering(
      200,
      JSON.stringify({ score: 1, required_score: 15, action: 'no action', pad: 'x'.repeat(100_000) }),
    );
    await rejectsWith(
      new RspamdSpamEngine({ url: huge, maxResponseBytes: 10_000 }).check(Buffer.from('x'), ENVELOPE),
      'spam_engine_malformed',
      /size limit/,
    );
  });

  test("an abort from the caller rejects with the caller's reason", async () => {
    const url = await listen(net.createServer((socket) => socket.resume()));
    const controller = new AbortController();
    const checking = new RspamdSpamEngine({ url, timeoutMs: 10_000 }).check(Buffer.from('x'), ENVELOPE, {
      signal: controller.signal,
    });
    const reason = new Error('shutting down');
    controller.abort(reason);
    await assert.rejects(checking, (error) => error === reason);
  });
});
