// The clamd scanner against a real clamd (Debian's clamav-daemon) started for this file with a
// signature database the test writes: EICAR inside a mail attachment, a signature of our own split
// across INSTREAM chunks, clean content, StreamMaxLength, both address forms, PING and VERSION; and,
// against small local servers, what a silent, absent or confused scanner turns into.
import assert from 'node:assert/strict';
import net from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { ClamdScanner, parseClamdAddress } from '../../src/providers/antivirus/clamd.ts';
import { AntivirusError, type AntivirusErrorCode } from '../../src/providers/antivirus/types.ts';
import { type Clamd, clamdSkip, startClamd } from '../support/clamd.ts';

/** The standard antivirus test file (eicar.org), 68 bytes. */
const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';
const MARKER = 'MAILROOM-CLAMD-TEST-MARKER-5c0ffee';
/** ClamAV marks signatures from outside its official databases `.UNOFFICIAL`; its own EICAR name may be built in. */
const EICAR_SIGNATURE = /^(Mailroom\.Test\.EICAR(\.UNOFFICIAL)?|Eicar-Test-Signature)$/;

function mailWithAttachment(name: string, content: string): Buffer {
  const attachment = Buffer.from(content).toString('base64');
  return Buffer.from(
    [
      'From: Alice <alice@example.com>',
      'To: bob@example.org',
      'Subject: the file you asked for',
      'Message-ID: <attachment-1@example.com>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="mailroom-boundary"',
      '',
      '--mailroom-boundary',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Here it is.',
      '--mailroom-boundary',
      `Content-Type: application/octet-stream; name="${name}"`,
      'Content-Transfer-Encoding: base64',
      `Content-Disposition: attachment; filename="${name}"`,
      '',
      attachment,
      '--mailroom-boundary--',
      '',
    ].join('\r\n'),
  );
}

/** `size` bytes of plain text, produced in 100 KiB pieces as a stream. */
function textStream(size: number): Readable {
  return Readable.from(
    (function* () {
      const piece = Buffer.alloc(100 * 1024, 'lorem ipsum dolor sit amet ');
      for (let left = size; left > 0; left -= piece.length)
        yield piece.subarray(0, Math.min(left, piece.length));
    })(),
  );
}

async function rejectsWith(promise: Promise<unknown>, code: AntivirusErrorCode, message?: RegExp) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof AntivirusError, `expected an AntivirusError, got ${error}`);
    assert.equal(error.code, code, error.message);
    if (message) assert.match(error.message, message);
    return true;
  });
}

describe('clamd (a real clamd)', { skip: clamdSkip() }, () => {
  let clamd: Clamd;
  let scanner: ClamdScanner;

  before(async () => {
    clamd = await startClamd(
      [
        { name: 'Mailroom.Test.EICAR', file: EICAR },
        { name: 'Mailroom.Test.Custom', contains: MARKER },
      ],
      { streamMaxLength: 1024 * 1024 },
    );
    scanner = new ClamdScanner({ address: clamd.address, timeoutMs: 20_000 });
  });

  after(async () => {
    await clamd?.stop();
  });

  test('answers PING and VERSION', async () => {
    await scanner.ping();
    assert.match(await scanner.version(), /^ClamAV \d+\.\d+/);
  });

  test('finds EICAR in a mail attachment, and as a file of its own', async () => {
    const inMail = await scanner.scan(mailWithAttachment('eicar.com', EICAR));
    assert.equal(inMail.infected, true);
    assert.match(inMail.signature!, EICAR_SIGNATURE);

    const alone = await scanner.scan(Buffer.from(EICAR));
    assert.equal(alone.infected, true);
    assert.match(alone.signature!, EICAR_SIGNATURE);
  });

  test('finds our own signature, also when a stream splits it across chunks', async () => {
    const whole = await scanner.scan(Buffer.from(`Dear customer,\n\nplease find ${MARKER} below.\n`));
    assert.deepEqual(whole, { infected: true, signature: 'Mailroom.Test.Custom.UNOFFICIAL' });

    // 7-byte INSTREAM chunks, fed by a stream in uneven pieces: clamd sees the bytes, not the chunking.
    const chunky = new ClamdScanner({ address: clamd.address, timeoutMs: 20_000, chunkBytes: 7 });
    const text = `${'padding '.repeat(50)}${MARKER}${' trailing'.repeat(50)}`;
    const pieces = text.match(/.{1,13}/gs)!.map((piece) => Buffer.from(piece));
    assert.deepEqual(await chunky.scan(Readable.from(pieces)), {
      infected: true,
      signature: 'Mailroom.Test.Custom.UNOFFICIAL',
    });
  });

  test('passes clean content, empty content and a clean attachment', async () => {
    assert.deepEqual(await scanner.scan(Buffer.from('Lunch on Friday? The usual place.\n')), {
      infected: false,
      signature: null,
    });
    assert.deepEqual(await scanner.scan(Buffer.alloc(0)), { infected: false, signature: null });
    assert.deepEqual(await scanner.scan(mailWithAttachment('notes.txt', 'nothing to see here\n')), {
      infected: false,
      signature: null,
    });
    // Just under StreamMaxLength, streamed.
    assert.deepEqual(await scanner.scan(textStream(clamd.streamMaxLength - 1024)), {
      infected: false,
      signature: null,
    });
  });

  test('a stream larger than StreamMaxLength is refused with the size-limit code', async () => {
    const source = textStream(clamd.streamMaxLength + 3 * 1024 * 1024);
    await rejectsWith(scanner.scan(source), 'antivirus_size_limit', /StreamMaxLength/);
    assert.equal(source.destroyed, true);
    // The same limit set on our side refuses before clamd sees the excess.
    const limited = new ClamdScanner({ address: clamd.address, maxStreamBytes: clamd.streamMaxLength });
    await rejectsWith(limited.scan(textStream(clamd.streamMaxLength + 1)), 'antivirus_size_limit');
    // clamd is still there for the next scan.
    assert.equal((await scanner.scan(Buffer.from(EICAR))).infected, true);
  });

  test('reaches clamd through its unix socket', async () => {
    const overSocket = new ClamdScanner({ address: clamd.socketPath, timeoutMs: 20_000 });
    assert.deepEqual(overSocket.address, { path: clamd.socketPath });
    await overSocket.ping();
    assert.equal((await overSocket.scan(Buffer.from(EICAR))).infected, true);
    const prefixed = new ClamdScanner({ address: `unix:${clamd.socketPath}` });
    assert.deepEqual(await prefixed.scan(Buffer.from('clean\n')), { infected: false, signature: null });
  });
});

describe('clamd address settings', () => {
  test('host:port, [ipv6]:port and unix socket paths are parsed', () => {
    assert.deepEqual(parseClamdAddress('127.0.0.1:3310'), { host: '127.0.0.1', port: 3310 });
    assert.deepEqual(parseClamdAddress('clamav.internal:3310'), { host: 'clamav.internal', port: 3310 });
    assert.deepEqual(parseClamdAddress('[::1]:3310'), { host: '::1', port: 3310 });
    assert.deepEqual(parseClamdAddress('/run/clamav/clamd.ctl'), { path: '/run/clamav/clamd.ctl' });
    assert.deepEqual(parseClamdAddress('unix:/run/clamav/clamd.ctl'), { path: '/run/clamav/clamd.ctl' });
  });

  test('anything else is refused as misconfigured', () => {
    for (const setting of ['', 'clamd', '127.0.0.1', '127.0.0.1:0', 'host:70000', 'clamd.ctl', 'a b:3310']) {
      assert.throws(
        () => parseClamdAddress(setting),
        (error: unknown) => error instanceof AntivirusError && error.code === 'antivirus_misconfigured',
        setting,
      );
    }
  });
});

describe('clamd failures', () => {
  const servers: net.Server[] = [];

  /** A TCP server on a free loopback port that hands each connection to `onConnection`. */
  async function server(onConnection: (socket: net.Socket) => void): Promise<string> {
    const made = net.createServer((socket) => {
      socket.on('error', () => {});
      onConnection(socket);
    });
    servers.push(made);
    await new Promise<void>((resolve) => made.listen(0, '127.0.0.1', resolve));
    return `127.0.0.1:${(made.address() as net.AddressInfo).port}`;
  }

  /** A server that answers each connection's first bytes with `reply` and closes. */
  function answering(reply: string) {
    return server((socket) => {
      socket.once('data', () => socket.end(reply));
    });
  }

  // The scanner closes every connection it opens, so the servers close at once.
  after(() => {
    for (const made of servers) made.close();
  });

  test('a scanner that never replies times out', async () => {
    const address = await server((socket) => {
      socket.resume();
    });
    const silent = new ClamdScanner({ address, timeoutMs: 300 });
    const started = Date.now();
    await rejectsWith(silent.scan(Buffer.from('hello\n')), 'antivirus_timeout', /300 ms/);
    await rejectsWith(silent.ping(), 'antivirus_timeout');
    assert.ok(Date.now() - started < 5_000);
  });

  test('a closed port or a missing socket is unavailable', async () => {
    const closed = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    await rejectsWith(
      new ClamdScanner({ address: `127.0.0.1:${closed}` }).scan(Buffer.from('x')),
      'antivirus_unavailable',
      /ECONNREFUSED/,
    );
    await rejectsWith(
      new ClamdScanner({ address: '/nonexistent/mailroom/clamd.ctl' }).ping(),
      'antivirus_unavailable',
      /ENOENT/,
    );
  });

  test('a reply the protocol does not allow is malformed; an ERROR reply is a failed scan', async () => {
    await rejectsWith(
      new ClamdScanner({ address: await answering('HELLO\0') }).ping(),
      'antivirus_malformed',
      /HELLO/,
    );
    await rejectsWith(
      new ClamdScanner({ address: await answering('stream: maybe\0') }).scan(Buffer.from('x')),
      'antivirus_malformed',
    );
    await rejectsWith(
      new ClamdScanner({ address: await answering('x'.repeat(10_000)) }).scan(Buffer.from('x')),
      'antivirus_malformed',
    );
    await rejectsWith(
      new ClamdScanner({ address: await answering("stream: Can't allocate memory ERROR\0") }).scan(
        Buffer.from('x'),
      ),
      'antivirus_scan_failed',
      /allocate memory/,
    );
    await rejectsWith(
      new ClamdScanner({ address: await server((socket) => socket.end()) }).ping(),
      'antivirus_unavailable',
      /without a reply/,
    );
  });

  test('a scanner that dies mid-stream is unavailable, not a size limit', async () => {
    // Takes the command and a little data, then resets the connection and stops listening, so the
    // question that follows a cut-off (is this over StreamMaxLength?) finds nobody to answer it.
    const dying = net.createServer((socket) => {
      socket.on('error', () => {});
      socket.once('data', () => {
        dying.close();
        socket.resetAndDestroy();
      });
    });
    servers.push(dying);
    await new Promise<void>((resolve) => dying.listen(0, '127.0.0.1', resolve));
    const address = `127.0.0.1:${(dying.address() as net.AddressInfo).port}`;
    await rejectsWith(
      new ClamdScanner({ address, timeoutMs: 5_000 }).scan(textStream(4 * 1024 * 1024)),
      'antivirus_unavailable',
      /while the content was being sent/,
    );
  });

  test("an abort from the caller rejects with the caller's reason", async () => {
    const address = await server((socket) => {
      socket.resume();
    });
    const controller = new AbortController();
    const scanning = new ClamdScanner({ address, timeoutMs: 10_000 }).scan(Buffer.from('x'), {
      signal: controller.signal,
    });
    const reason = new Error('shutting down');
    controller.abort(reason);
    await assert.rejects(scanning, (error) => error === reason);
  });
});
