// POP3 through the public surface: Python's poplib and raw sockets against the real server, mail
// delivered through the MX, and what a session changed checked through the folders API. A second
// server on the same store refuses logins before STLS and fails its store on purpose.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { MailStore } from '../../../src/modules/imap/service.ts';
import { Pop3Server } from '../../../src/modules/imap/pop3/server.ts';
import { transmission } from '../../../src/modules/imap/pop3/transfer.ts';
import { engine, type Org, orgMaker, startTestApp, type TestApp } from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';
import { sendMail } from '../../support/smtp.ts';
import { createTestTls } from '../../support/test-tls.ts';
import { until } from '../../support/until.ts';

const PASSWORD = 'a long mailbox password';
const DOMAIN = 'pop3.test';
const HOST = 'mx.pop3.test';
/** Failed logins per client address and per user name an hour; the limit test reaches it. */
const FAILURES_PER_HOUR = 6;
const INVALID = '-ERR [AUTH] Invalid credentials';

const run = promisify(execFile);

/** Helpers every poplib script starts with; a script fills `out`, printed as JSON at the end. */
const PRELUDE = `
import base64, json, os, poplib, ssl
port = int(os.environ['POP3_PORT'])
user = os.environ.get('POP3_USER', '')
password = os.environ.get('POP3_PASS', '')
unverified = ssl._create_unverified_context()
out = {}
def text(b): return b.decode('utf-8', 'replace')
def lines(r): return [text(l) for l in r[1]]
def message(r): return base64.b64encode(b'\\r\\n'.join(r[1]) + b'\\r\\n').decode()
def plain(u, p, z=''): return base64.b64encode((z + '\\0' + u + '\\0' + p).encode()).decode()
def connect(): return poplib.POP3('127.0.0.1', port, timeout=10)
def attempt(f, *args):
    try: return text(f(*args))
    except poplib.error_proto as e: return text(e.args[0]) if isinstance(e.args[0], bytes) else str(e)
def login(u, pw, p=None):
    p = p or connect()
    p.user(u)
    return p, attempt(p.pass_, pw)
`;

/** Runs a poplib script (indented as it reads in a test) and returns what it put in `out`. */
async function poplib(script: string, env: Record<string, string | number>): Promise<any> {
  const body = dedent(script);
  const { stdout } = await run('python3', ['-c', `${PRELUDE}\n${body}\nprint(json.dumps(out))`], {
    env: { ...process.env, ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])) },
    timeout: 30_000,
  });
  return JSON.parse(stdout);
}

function dedent(script: string): string {
  const lines = script.split('\n').filter((l, i, all) => l.trim() || (i > 0 && i < all.length - 1));
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => l.length - l.trimStart().length));
  return lines.map((l) => l.slice(indent)).join('\n');
}

const fromBase64 = (s: string) => Buffer.from(s, 'base64').toString('latin1');

/** A raw POP3 connection: lines as the server sends them, for what clients never send. */
class Wire {
  readonly socket: net.Socket;
  #buffer = Buffer.alloc(0);
  #ended = false;
  #wake: (() => void) | null = null;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake?.();
    });
    socket.on('close', () => {
      this.#ended = true;
      this.#wake?.();
    });
    socket.on('error', () => {});
  }

  /** Connects and reads the greeting. */
  static async open(port: number, localAddress?: string): Promise<{ wire: Wire; greeting: string }> {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    const wire = new Wire(socket);
    return { wire, greeting: (await wire.line()) ?? '' };
  }

  /** The next line without its CRLF; null when the server closed the connection first. */
  async line(): Promise<string | null> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const end = this.#buffer.indexOf('\r\n');
      if (end >= 0) {
        const line = this.#buffer.subarray(0, end).toString('latin1');
        this.#buffer = this.#buffer.subarray(end + 2);
        return line;
      }
      if (this.#ended) return null;
      if (Date.now() > deadline)
        throw new Error(`no line from the server; have ${this.#buffer.length} bytes`);
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, 200);
      });
      this.#wake = null;
    }
  }

  /** Sends a command and reads the first line of the answer. */
  async command(line: string | Buffer): Promise<string | null> {
    this.send(line);
    return this.line();
  }

  /** Sends a command and reads a multi-line answer: its status line and the bytes up to ".\r\n". */
  async multiline(line: string): Promise<{ status: string; wire: string }> {
    const status = (await this.command(line)) ?? '';
    if (!status.startsWith('+OK')) return { status, wire: '' };
    const collected: string[] = [];
    for (;;) {
      const next = await this.line();
      if (next === null || next === '.') break;
      collected.push(`${next}\r\n`);
    }
    return { status, wire: collected.join('') };
  }

  send(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? `${data}\r\n` : data);
  }

  async closed(): Promise<boolean> {
    return (await this.line()) === null;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A plain-text message with the body given, CRLF line ends. */
function rawMessage(to: string, subject: string, body: string): string {
  return [
    'From: Sender <sender@outside.example>',
    `To: ${to}`,
    `Subject: ${subject}`,
    `Message-ID: <${randomUUID()}@outside.example>`,
    `Date: ${new Date().toUTCString()}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    body,
  ].join('\r\n');
}

/** What RETR puts on the wire for a CRLF message: lines that start with "." get one more. */
const stuffed = (raw: string) =>
  raw
    .split('\r\n')
    .slice(0, raw.endsWith('\r\n') ? -1 : undefined)
    .map((l) => `${l.startsWith('.') ? '.' : ''}${l}\r\n`)
    .join('');

/** TOP's answer as poplib returns it: the header, the blank line, and `n` lines of the body. */
function topOf(raw: string, n: number): string {
  const split = raw.indexOf('\r\n\r\n');
  const body = raw
    .slice(split + 4)
    .split('\r\n')
    .slice(0, n);
  return `${raw.slice(0, split)}\r\n\r\n${body.map((l) => `${l}\r\n`).join('')}`;
}

const DOTTED_BODY = 'first line\r\n.hidden line\r\n..two dots\r\n.\r\nafter a lone dot\r\nlast line\r\n';

test('what RETR and TOP send: CRLF line ends for any stored ones, dots doubled, a last line ended', () => {
  const sent = (stored: string, bodyLines: number | null = null) =>
    Buffer.concat([...transmission(Buffer.from(stored, 'latin1'), bodyLines)]).toString('latin1');
  assert.equal(sent(''), '.\r\n');
  assert.equal(sent('H: 1\n\n.a\nb\r\n.\nlast'), 'H: 1\r\n\r\n..a\r\nb\r\n..\r\nlast\r\n.\r\n');
  assert.equal(sent('H: 1\r\n\r\none\r\ntwo\r\n', 1), 'H: 1\r\n\r\none\r\n.\r\n');
  assert.equal(sent('H: 1\r\nH: 2\r\n', 0), 'H: 1\r\nH: 2\r\n.\r\n', 'no body: the header');
  const big = Buffer.alloc(999_999, '.x\n');
  const chunks = [...transmission(big)];
  assert.ok(chunks.length > 10 && chunks.every((c) => c.length < 80 * 1024), 'sent in chunks');
  assert.equal(Buffer.concat(chunks).toString('latin1'), `${'..x\r\n'.repeat(big.length / 3)}.\r\n`);
});

describe(`POP3 on ${engine}`, () => {
  const freshOrg = orgMaker('pop3');
  let t: TestApp;
  let dns: TestDnsServer;
  let org: Org;
  let mailboxCount = 0;

  interface Mailbox {
    address: string;
    id: string;
  }
  interface Copy {
    uid: number;
    flags: string[];
    size: number;
    raw: string;
  }

  const api = (method: string, url: string, body?: unknown) =>
    t.call(method, url, { token: org.token, body });
  const newMailbox = async (): Promise<Mailbox> => {
    const address = `user${++mailboxCount}@${DOMAIN}`;
    const res = await api('POST', '/v1/mailboxes', { address, password: PASSWORD });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return { address, id: res.body.id };
  };
  const inbox = async (mailbox: Mailbox) => {
    const res = await api('GET', `/v1/mailboxes/${mailbox.id}/folders`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.items.find((f: any) => f.name === 'INBOX');
  };
  /** The INBOX's messages in UID order, with their raw bytes from the messages API. */
  const copies = async (mailbox: Mailbox): Promise<Copy[]> => {
    const folder = await inbox(mailbox);
    const res = await api('GET', `/v1/mailboxes/${mailbox.id}/folders/${folder.id}/messages?page_size=100`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const items = [...res.body.items].sort((a: any, b: any) => a.uid - b.uid);
    return Promise.all(
      items.map(async (m: any) => ({
        uid: m.uid,
        flags: m.flags,
        size: m.size,
        raw: (await api('GET', `/v1/messages/${m.message_id}/raw`)).body,
      })),
    );
  };
  /** Delivers through the MX and waits until the INBOX holds `count` messages. */
  const deliver = async (mailbox: Mailbox, count: number, subject: string, body = 'Hello POP3\r\n') => {
    await sendMail(t.smtpPort, {
      from: 'sender@outside.example',
      to: mailbox.address,
      raw: rawMessage(mailbox.address, subject, body),
    });
    await until(
      () => inbox(mailbox),
      (f) => f?.messages === count,
    );
  };
  const as = (mailbox: Mailbox, port = t.pop3Port) => ({
    POP3_PORT: port,
    POP3_USER: mailbox.address,
    POP3_PASS: PASSWORD,
  });

  let reader: Mailbox;
  let reading: Copy[];

  before(async () => {
    dns = await startDnsServer();
    t = await startTestApp({
      imap: true,
      smtp: true,
      workers: true,
      env: {
        MAILROOM_HOSTNAME: HOST,
        MAILROOM_DNS_SERVERS: dns.address,
        MAILROOM_IMAP_ALLOW_INSECURE_AUTH: 'true',
        MAILROOM_POP3_TLS_PORT: '0',
        MAILROOM_SUBMISSION_AUTH_FAILURES_PER_HOUR: String(FAILURES_PER_HOUR),
      },
    });
    org = await freshOrg(t);
    await verifiedDomain(t, org.token, DOMAIN, [dns]);
    reader = await newMailbox();
    await deliver(reader, 1, 'Plain');
    await deliver(reader, 2, 'Dots', DOTTED_BODY);
    // Large enough to go out in many chunks and to fill the socket's buffers.
    const big = Array.from(
      { length: 6_000 },
      (_, i) => `${i % 7 === 0 ? '.' : ''}line ${i} ${'x'.repeat(60)}`,
    );
    await deliver(reader, 3, 'Big', `${big.join('\r\n')}\r\n`);
    reading = await copies(reader);
  });
  after(async () => {
    await t?.close();
    await dns?.close();
  });

  test('CAPA, USER/PASS, STAT, LIST, UIDL, RETR byte for byte (dot-stuffed lines too) and TOP', async () => {
    const out = await poplib(
      `
      p = connect()
      out['welcome'] = text(p.getwelcome())
      out['capa'] = p.capa()
      p, out['pass'] = login(user, password, p)
      out['capa_after'] = p.capa()
      out['stat'] = list(p.stat())
      out['list'] = lines(p.list())
      out['list2'] = text(p.list(2))
      out['uidl'] = lines(p.uidl())
      out['uidl3'] = text(p.uidl(3))
      out['retr'] = [message(p.retr(i)) for i in (1, 2, 3)]
      out['top'] = message(p.top(2, 3))
      out['top0'] = message(p.top(2, 0))
      out['top_all'] = message(p.top(2, 100))
      out['quit'] = text(p.quit())
      `,
      as(reader),
    );
    assert.equal(out.welcome, `+OK ${HOST} Mailroom POP3 ready`);
    const capabilities = {
      TOP: [],
      UIDL: [],
      'RESP-CODES': [],
      PIPELINING: [],
      'AUTH-RESP-CODE': [],
      USER: [],
      SASL: ['PLAIN'],
      STLS: [],
      IMPLEMENTATION: ['Mailroom'],
    };
    assert.deepEqual(out.capa, capabilities);
    assert.deepEqual(out.capa_after, capabilities, 'RFC 2449: the same in both states');
    assert.equal(
      out.pass,
      `+OK ${reader.address} has 3 messages (${reading.reduce((s, c) => s + c.size, 0)} octets)`,
    );

    const sizes = reading.map((c) => Buffer.byteLength(c.raw, 'latin1'));
    assert.deepEqual(
      reading.map((c) => c.size),
      sizes,
    );
    assert.deepEqual(out.stat, [3, sizes[0] + sizes[1] + sizes[2]]);
    assert.deepEqual(
      out.list,
      sizes.map((s, i) => `${i + 1} ${s}`),
    );
    assert.equal(out.list2, `+OK 2 ${sizes[1]}`);
    const { uid_validity } = await inbox(reader);
    assert.deepEqual(
      out.uidl,
      reading.map((c, i) => `${i + 1} ${uid_validity}.${c.uid}`),
    );
    assert.equal(out.uidl3, `+OK 3 ${uid_validity}.${reading[2].uid}`);

    assert.ok(reading[1].raw.includes(`\r\n\r\n${DOTTED_BODY}`), 'delivered as sent');
    assert.deepEqual(out.retr.map(fromBase64), [reading[0].raw, reading[1].raw, reading[2].raw]);
    assert.equal(fromBase64(out.top), topOf(reading[1].raw, 3));
    assert.equal(fromBase64(out.top0), topOf(reading[1].raw, 0));
    assert.equal(fromBase64(out.top_all), reading[1].raw);
    assert.match(out.quit, /^\+OK .*signing off \(3 messages left\)/);

    // What was retrieved is \Seen once the session quit.
    assert.ok((await copies(reader)).every((c) => c.flags.includes('\\Seen')));
  });

  test('AUTH PLAIN with an initial response and after a continuation; * cancels; UIDL is stable', async () => {
    const out = await poplib(
      `
      p = connect()
      out['initial'] = text(p._shortcmd('AUTH PLAIN ' + plain(user, password)))
      out['uidl'] = lines(p.uidl())
      p.quit()
      p = connect()
      p._putcmd('AUTH PLAIN')
      out['continue'] = text(p._getresp())
      out['cancel'] = attempt(p._shortcmd, '*')
      p._putcmd('AUTH PLAIN')
      p._getresp()
      out['second'] = text(p._shortcmd(plain(user, password)))
      out['stat'] = list(p.stat())
      p.quit()
      p = connect()
      out['mechanisms'] = lines(p._longcmd('AUTH'))
      out['as_other'] = attempt(p._shortcmd, 'AUTH PLAIN ' + plain(user, password, 'boss@pop3.test'))
      out['malformed'] = attempt(p._shortcmd, 'AUTH PLAIN !!!not-base64')
      out['login'] = attempt(p._shortcmd, 'AUTH LOGIN')
      out['still'] = text(p._shortcmd('AUTH PLAIN ' + plain(user, password, user)))
      p.quit()
      `,
      as(reader),
    );
    assert.match(out.initial, /^\+OK .* has 3 messages/);
    const { uid_validity } = await inbox(reader);
    assert.deepEqual(
      out.uidl,
      reading.map((c, i) => `${i + 1} ${uid_validity}.${c.uid}`),
    );
    assert.equal(out.continue, '+ ');
    assert.equal(out.cancel, '-ERR Authentication cancelled');
    assert.match(out.second, /^\+OK /);
    assert.equal(out.stat[0], 3);
    assert.deepEqual(out.mechanisms, ['PLAIN']);
    assert.equal(out.as_other, INVALID);
    assert.equal(out.malformed, '-ERR Malformed PLAIN response');
    assert.equal(out.login, '-ERR Unsupported mechanism; use PLAIN');
    assert.match(out.still, /^\+OK /, 'an authzid equal to the user is the user');
  });

  test('STLS on the plain port, and the implicit TLS port', async () => {
    assert.ok(t.pop3TlsPort > 0);
    const out = await poplib(
      `
      p = connect()
      out['stls'] = text(p.stls(unverified))
      out['capa'] = sorted(p.capa().keys())
      p, out['pass'] = login(user, password, p)
      out['stat'] = list(p.stat())
      out['again'] = attempt(p._shortcmd, 'STLS')
      p.quit()
      s = poplib.POP3_SSL('127.0.0.1', int(os.environ['POP3_TLS_PORT']), context=unverified, timeout=10)
      out['tls_capa'] = sorted(s.capa().keys())
      out['tls_stls'] = attempt(s._shortcmd, 'STLS')
      out['tls_auth'] = text(s._shortcmd('AUTH PLAIN ' + plain(user, password)))
      out['tls_retr'] = message(s.retr(2))
      s.quit()
      `,
      { ...as(reader), POP3_TLS_PORT: t.pop3TlsPort },
    );
    assert.equal(out.stls, '+OK Begin TLS negotiation');
    assert.ok(!out.capa.includes('STLS'));
    assert.ok(out.capa.includes('USER'));
    assert.match(out.pass, /^\+OK /);
    assert.equal(out.stat[0], 3);
    assert.equal(out.again, '-ERR Not valid in this state');
    assert.ok(!out.tls_capa.includes('STLS'));
    assert.match(out.tls_auth, /^\+OK /);
    assert.equal(out.tls_stls, '-ERR Already using TLS');
    assert.equal(fromBase64(out.tls_retr), reading[1].raw);
  });

  test('DELE hides a message for the session; RSET and a dropped connection remove nothing; QUIT removes', async () => {
    const mailbox = await newMailbox();
    for (let i = 1; i <= 3; i++) await deliver(mailbox, i, `Message ${i}`);
    const before = await copies(mailbox);
    const { uid_validity } = await inbox(mailbox);
    const ids = before.map((c) => `${uid_validity}.${c.uid}`);

    const out = await poplib(
      `
      p, _ = login(user, password)
      out['dele'] = text(p.dele(2))
      out['stat'] = list(p.stat())
      out['list'] = lines(p.list())
      out['uidl'] = lines(p.uidl())
      out['list2'] = attempt(p.list, 2)
      out['uidl2'] = attempt(p.uidl, 2)
      out['retr2'] = attempt(p.retr, 2)
      out['top2'] = attempt(p.top, 2, 0)
      out['dele2'] = attempt(p.dele, 2)
      out['rset'] = text(p.rset())
      out['after_rset'] = list(p.stat())
      p.quit()
      p, _ = login(user, password)
      p.dele(1)
      p.dele(3)
      p.sock.close()
      `,
      as(mailbox),
    );
    assert.equal(out.dele, '+OK Message 2 deleted');
    assert.deepEqual(out.stat, [2, before[0].size + before[2].size]);
    assert.deepEqual(out.list, [`1 ${before[0].size}`, `3 ${before[2].size}`]);
    assert.deepEqual(out.uidl, [`1 ${ids[0]}`, `3 ${ids[2]}`]);
    for (const key of ['list2', 'uidl2', 'retr2', 'top2', 'dele2'])
      assert.equal(out[key], '-ERR Message deleted', key);
    assert.match(out.rset, /^\+OK Maildrop has 3 messages/);
    assert.equal(out.after_rset[0], 3);
    assert.equal((await inbox(mailbox)).messages, 3, 'RSET, then a dropped connection: nothing removed');

    const removed = await poplib(
      `
      p, _ = login(user, password)
      p.retr(1)
      p.top(2, 0)
      p.retr(3)
      p.dele(3)
      out['quit'] = text(p.quit())
      p, _ = login(user, password)
      out['uidl'] = lines(p.uidl())
      p.quit()
      `,
      as(mailbox),
    );
    assert.match(removed.quit, /\(2 messages left\)$/);
    assert.deepEqual(removed.uidl, [`1 ${ids[0]}`, `2 ${ids[1]}`], 'the next session numbers what is left');
    const after = await copies(mailbox);
    assert.deepEqual(
      after.map((c) => c.uid),
      [before[0].uid, before[1].uid],
    );
    assert.ok(after[0].flags.includes('\\Seen'), 'retrieved: \\Seen');
    assert.ok(!after[1].flags.includes('\\Seen'), 'TOP does not mark a message read');
  });

  test('a session works on the INBOX as it was at login: new mail waits for the next one', async () => {
    const mailbox = await newMailbox();
    await deliver(mailbox, 1, 'Before');
    const { wire } = await Wire.open(t.pop3Port);
    try {
      assert.match((await wire.command(`USER ${mailbox.address}`)) ?? '', /^\+OK/);
      assert.match((await wire.command(`PASS ${PASSWORD}`)) ?? '', /has 1 messages/);
      await deliver(mailbox, 2, 'During');
      assert.match((await wire.command('STAT')) ?? '', /^\+OK 1 /);
      assert.equal(await wire.command('RETR 2'), '-ERR No such message');
      assert.match((await wire.command('QUIT')) ?? '', /\(1 messages left\)/);
    } finally {
      wire.close();
    }
    const next = await poplib(
      "p, _ = login(user, password)\nout['stat'] = list(p.stat())\np.quit()",
      as(mailbox),
    );
    assert.equal(next.stat[0], 2);
  });

  test('an open session ends when its mailbox is suspended; its DELEs are not applied', async () => {
    const mailbox = await newMailbox();
    await deliver(mailbox, 1, 'Kept');
    const { wire } = await Wire.open(t.pop3Port);
    try {
      assert.match((await wire.command(`USER ${mailbox.address}`)) ?? '', /^\+OK/);
      assert.match((await wire.command(`PASS ${PASSWORD}`)) ?? '', /has 1 messages/);
      assert.match((await wire.command('DELE 1')) ?? '', /^\+OK/);
      const paused = await api('PATCH', `/v1/mailboxes/${mailbox.id}`, { status: 'suspended' });
      assert.equal(paused.status, 200, JSON.stringify(paused.body));
      assert.equal(await wire.line(), '-ERR [SYS/PERM] The mailbox may no longer log in');
      assert.equal(await wire.line(), null, 'the server closed the connection');
    } finally {
      wire.close();
    }
    assert.equal((await api('PATCH', `/v1/mailboxes/${mailbox.id}`, { status: 'active' })).status, 200);
    const after = await poplib(
      "p, _ = login(user, password)\nout['stat'] = list(p.stat())\np.quit()",
      as(mailbox),
    );
    assert.equal(after.stat[0], 1);
  });

  test('refused logins: wrong password, unknown user, suspended mailbox, an SMTP credential', async () => {
    const suspended = await newMailbox();
    const paused = await api('PATCH', `/v1/mailboxes/${suspended.id}`, { status: 'suspended' });
    assert.equal(paused.status, 200, JSON.stringify(paused.body));
    const credential = await api('POST', '/v1/smtp-credentials', { name: 'CRM' });
    assert.equal(credential.status, 201, JSON.stringify(credential.body));
    const out = await poplib(
      `
      out['wrong'] = login(user, 'not the password')[1]
      out['unknown'] = login('nobody@pop3.test', password)[1]
      out['suspended'] = login(os.environ['SUSPENDED'], password)[1]
      out['credential'] = login(os.environ['CREDENTIAL_USER'], os.environ['CREDENTIAL_PASS'])[1]
      p = connect()
      out['pass_first'] = attempt(p.pass_, password)
      p, out['right'] = login(user, password, p)
      p.quit()
      `,
      {
        ...as(reader),
        SUSPENDED: suspended.address,
        CREDENTIAL_USER: credential.body.username,
        CREDENTIAL_PASS: credential.body.password,
      },
    );
    assert.deepEqual(
      [out.wrong, out.unknown, out.suspended, out.credential],
      [INVALID, INVALID, INVALID, INVALID],
    );
    assert.equal(out.pass_first, '-ERR Send USER first');
    assert.match(out.right, /^\+OK /, 'a failed login leaves the session in AUTHORIZATION');
  });

  test('too many failed logins from an address: [SYS/TEMP], even with the right password', async () => {
    const { wire } = await Wire.open(t.pop3Port, '127.0.0.9');
    try {
      for (let i = 1; i <= FAILURES_PER_HOUR; i++) {
        await wire.command(`USER guesser${i}@${DOMAIN}`);
        const answer = await wire.command('PASS guess');
        assert.equal(
          answer,
          i < FAILURES_PER_HOUR ? INVALID : '-ERR [SYS/TEMP] Too many failed logins; try again later',
        );
      }
      await wire.command(`USER ${reader.address}`);
      assert.equal(
        await wire.command(`PASS ${PASSWORD}`),
        '-ERR [SYS/TEMP] Too many failed logins; try again later',
      );
    } finally {
      wire.close();
    }
  });

  test('malformed input: commands out of state, garbage, pipelining, long lines; the server carries on', async () => {
    const { wire, greeting } = await Wire.open(t.pop3Port);
    try {
      assert.equal(greeting, `+OK ${HOST} Mailroom POP3 ready`);
      for (const command of ['STAT', 'LIST', 'RETR 1', 'DELE 1', 'RSET', 'UIDL', 'TOP 1 1'])
        assert.equal(await wire.command(command), '-ERR Not valid in this state', command);
      assert.equal(await wire.command('PASS nothing'), '-ERR Send USER first');
      assert.equal(await wire.command('FOO'), '-ERR Unknown command');
      assert.equal(await wire.command(''), '-ERR Unknown command');
      assert.equal(await wire.command('USER'), '-ERR USER takes a user name');
      assert.equal(
        await wire.command(Buffer.from([0, 0xff, 0xfe, 0x80, 0x0d, 0x41, 0x0d, 0x0a])),
        '-ERR Unknown command',
      );

      // Garbage of every byte value, lines of all lengths up to the limit: one -ERR a line.
      const garbage = Buffer.alloc(64 * 1024);
      for (let i = 0, x = 7; i < garbage.length; i++) {
        x = (x * 1103515245 + 12345) & 0x7fffffff;
        garbage[i] = x >> 16;
      }
      wire.send(Buffer.concat([garbage, Buffer.from('\r\nNOOP\r\n')]));
      let answer = await wire.line();
      while (answer?.startsWith('-ERR')) answer = await wire.line();
      assert.equal(answer, '+OK', 'after the garbage, NOOP');

      // Pipelined (RFC 2449 PIPELINING): answered in order.
      const pipelined = [`USER ${reader.address}`, `PASS ${PASSWORD}`, 'STAT', 'LIST 9', 'LIST x', 'TOP 1'];
      wire.send([...pipelined, 'DELE 0', 'UIDL 1 2', 'STAT 1', 'USER again', 'NOOP'].join('\r\n'));
      const answers = [];
      for (let i = 0; i < 11; i++) answers.push(await wire.line());
      assert.deepEqual(answers, [
        '+OK Send the password',
        `+OK ${reader.address} has 3 messages (${reading.reduce((s, c) => s + c.size, 0)} octets)`,
        `+OK 3 ${reading.reduce((s, c) => s + c.size, 0)}`,
        '-ERR No such message',
        '-ERR Expected a message number',
        '-ERR TOP takes a message number and a line count',
        '-ERR No such message',
        '-ERR Expected a message number',
        '-ERR STAT takes no arguments',
        '-ERR Not valid in this state',
        '+OK',
      ]);
      // On the wire, lines that start with "." are doubled, the lone "." too.
      const retr = await wire.multiline('RETR 2');
      assert.equal(retr.status, `+OK ${reading[1].size} octets`);
      assert.equal(retr.wire, stuffed(reading[1].raw));
      assert.ok(retr.wire.includes('\r\n..hidden line\r\n...two dots\r\n..\r\n'));
      // A dropped connection after reading changes nothing (no \Seen either: that is for QUIT).
    } finally {
      wire.close();
    }

    const long = await Wire.open(t.pop3Port);
    assert.equal(await long.wire.command(`NOOP ${'x'.repeat(10_000)}`), '-ERR Line too long');
    assert.ok(await long.wire.closed());
    const endless = await Wire.open(t.pop3Port);
    endless.wire.send(Buffer.alloc(100_000, 'y'));
    assert.equal(await endless.wire.line(), '-ERR Line too long');
    assert.ok(await endless.wire.closed());

    const fresh = await Wire.open(t.pop3Port);
    try {
      assert.equal(fresh.greeting, `+OK ${HOST} Mailroom POP3 ready`);
      assert.equal(await fresh.wire.command('NOOP'), '+OK');
      assert.match((await fresh.wire.command('QUIT')) ?? '', /^\+OK .*signing off/);
      assert.ok(await fresh.wire.closed());
    } finally {
      fresh.wire.close();
    }
  });

  describe('a server without plain-text logins, whose store fails on purpose', () => {
    let strict: Pop3Server;
    let port: number;

    before(async () => {
      const store = t.app.services.mailstore;
      const broken = async () => {
        throw new Error('the disk is on fire');
      };
      // The reads a session starts with work; reading content and removing fail.
      const failing = {
        folder: store.folder.bind(store),
        listing: store.listing.bind(store),
        storeFlags: store.storeFlags.bind(store),
        content: broken,
        remove: broken,
      } as unknown as MailStore;
      strict = new Pop3Server(
        {
          store: failing,
          authenticate: (username, password, ip, sessionId) =>
            t.app.services.submission.authenticate(username, password, ip, sessionId, 'pop3'),
        },
        t.app.log,
        {
          hostname: 'strict.pop3.test',
          host: '127.0.0.1',
          port: 0,
          tlsPort: null,
          tls: await createTestTls(['strict.pop3.test']),
          allowInsecureAuth: false,
          maxConnections: 100,
          maxConnectionsPerIp: 2,
        },
      );
      port = (await strict.listen()).port;
    });
    after(async () => {
      await strict?.close();
    });

    test('no USER, PASS nor AUTH before STLS; after it, store failures answer [SYS/TEMP] and the session goes on', async () => {
      const out = await poplib(
        `
        p = connect()
        out['capa'] = sorted(p.capa().keys())
        out['user'] = attempt(p.user, user)
        out['auth'] = attempt(p._shortcmd, 'AUTH PLAIN ' + plain(user, password))
        out['mechanisms'] = lines(p._longcmd('AUTH'))
        p.stls(unverified)
        out['tls_capa'] = sorted(p.capa().keys())
        p, out['pass'] = login(user, password, p)
        out['list'] = lines(p.list())
        out['retr'] = attempt(p.retr, 1)
        out['noop'] = text(p.noop())
        out['dele'] = text(p.dele(1))
        out['quit'] = attempt(p.quit)
        `,
        as(reader, port),
      );
      assert.deepEqual(out.capa, [
        'AUTH-RESP-CODE',
        'IMPLEMENTATION',
        'PIPELINING',
        'RESP-CODES',
        'STLS',
        'TOP',
        'UIDL',
      ]);
      assert.equal(out.user, '-ERR [AUTH] Log in over TLS: use STLS first');
      assert.equal(out.auth, '-ERR [AUTH] Log in over TLS: use STLS first');
      assert.deepEqual(out.mechanisms, []);
      assert.deepEqual(out.tls_capa, [
        'AUTH-RESP-CODE',
        'IMPLEMENTATION',
        'PIPELINING',
        'RESP-CODES',
        'SASL',
        'TOP',
        'UIDL',
        'USER',
      ]);
      assert.match(out.pass, /^\+OK /);
      assert.equal(out.list.length, 3);
      assert.equal(out.retr, '-ERR [SYS/TEMP] Temporary failure; try again later');
      assert.equal(out.noop, '+OK');
      assert.equal(out.dele, '+OK Message 1 deleted');
      assert.equal(out.quit, '-ERR [SYS/TEMP] Some deleted messages not removed');
      assert.equal((await inbox(reader)).messages, 3);
    });

    test('connections over the per-address limit are refused', async () => {
      const first = await Wire.open(port);
      const second = await Wire.open(port);
      const third = await Wire.open(port);
      try {
        assert.match(first.greeting, /^\+OK strict\.pop3\.test Mailroom POP3 ready/);
        assert.match(second.greeting, /^\+OK /);
        assert.equal(third.greeting, '-ERR [SYS/TEMP] Too many connections; try again later');
        assert.ok(await third.wire.closed());
      } finally {
        for (const c of [first, second, third]) c.wire.close();
      }
    });
  });
});
