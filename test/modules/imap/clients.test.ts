// IMAP with the clients people script with: Python's imaplib over STARTTLS (folders with non-ASCII
// names in modified UTF-7, a large APPEND, a malformed message, SEARCH, STORE, COPY, EXPUNGE), and the
// extensions imapflow does not exercise (COMPRESS=DEFLATE, UTF8=ACCEPT, QUOTA, ID, NAMESPACE, UNSELECT,
// MULTIAPPEND) over raw sockets.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import tls from 'node:tls';
import { engine, type Org, orgMaker, startTestApp, type TestApp } from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';
import { ImapDialogue } from '../../support/imap.ts';

const PASSWORD = 'a long mailbox password';
const run = promisify(execFile);

/** Runs a Python script against the IMAP port; it prints one JSON object. */
async function python(script: string, env: Record<string, string>): Promise<any> {
  const { stdout } = await run('python3', ['-c', script], {
    env: { ...process.env, ...env },
    maxBuffer: 64 << 20,
  });
  return JSON.parse(stdout);
}

const IMAPLIB = `
import imaplib, json, os, ssl
out = {}
m = imaplib.IMAP4('127.0.0.1', int(os.environ['IMAP_PORT']))
m.starttls(ssl_context=ssl._create_unverified_context())
out['login'] = m.login(os.environ['IMAP_USER'], os.environ['IMAP_PASS'])[0]
out['create'] = m.create('"Entw&APw-rfe/&ZeVnLIqe-"')[0]
out['list'] = [l.decode() for l in m.list()[1]]
big = b'From: big@example.org\\r\\nSubject: big one\\r\\n\\r\\n' + (b'x' * 998 + b'\\r\\n') * 10000
out['append_big'] = m.append('INBOX', '(\\\\Flagged)', None, big)[0]
bad = b'Subject: =?broken\\r\\nContent-Type: multipart/mixed; boundary="never"\\r\\n\\r\\n--never\\r\\nno end'
out['append_bad'] = m.append('INBOX', None, None, bad)[0]
typ, data = m.select('INBOX')
out['exists'] = int(data[0])
typ, data = m.uid('FETCH', '1', '(RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
out['size'] = data[0][0].decode()
out['subject'] = data[0][1].decode().strip()
typ, data = m.fetch('1', '(BODY.PEEK[])')
out['big_ok'] = data[0][1] == big
typ, data = m.fetch('2', '(BODYSTRUCTURE)')
out['bad_structure'] = data[0].decode()
out['search'] = m.search(None, 'FLAGGED')[1][0].decode()
out['store'] = [d.decode() for d in m.store('2', '+FLAGS', '(\\\\Deleted)')[1]]
out['copy'] = m.copy('1', '"Entw&APw-rfe/&ZeVnLIqe-"')[0]
out['expunge'] = [d.decode() for d in m.expunge()[1] if d]
out['status'] = m.status('"Entw&APw-rfe/&ZeVnLIqe-"', '(MESSAGES UIDNEXT)')[1][0].decode()
m.logout()
print(json.dumps(out))
`;

describe(`IMAP clients on ${engine}`, () => {
  const freshOrg = orgMaker('imapclients');
  let t: TestApp;
  let dns: TestDnsServer;
  let org: Org;
  let count = 0;
  const newMailbox = async () => {
    const address = `client${++count}@clients.test`;
    const res = await t.call('POST', '/v1/mailboxes', {
      token: org.token,
      body: { address, password: PASSWORD },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return { address, id: res.body.id as string };
  };
  /** A raw session logged in over implicit TLS. */
  const loggedIn = async (address: string) => {
    const { dialogue } = await ImapDialogue.open(t.imapTlsPort, true);
    assert.match((await dialogue.command(`LOGIN ${address} "${PASSWORD}"`)).reply, /OK/);
    return dialogue;
  };

  before(async () => {
    dns = await startDnsServer();
    t = await startTestApp({
      imap: true,
      env: { MAILROOM_DNS_SERVERS: dns.address, MAILROOM_IMAP_TLS_PORT: '0' },
    });
    org = await freshOrg(t);
    await verifiedDomain(t, org.token, 'clients.test', [dns]);
  });
  after(async () => {
    await t?.close();
    await dns?.close();
  });

  test('Python imaplib: STARTTLS, UTF-7 folders, a 10 MB and a malformed APPEND, SEARCH, STORE, COPY, EXPUNGE', async () => {
    const { address } = await newMailbox();
    const out = await python(IMAPLIB, {
      IMAP_PORT: String(t.imapPort),
      IMAP_USER: address,
      IMAP_PASS: PASSWORD,
    });
    assert.equal(out.login, 'OK');
    assert.equal(out.create, 'OK');
    assert.ok(
      out.list.some(
        (l: string) => l.endsWith('"Entw&APw-rfe/&ZeVnLIqe-"') || l.endsWith(' Entw&APw-rfe/&ZeVnLIqe-'),
      ),
      out.list.join('\n'),
    );
    assert.equal(out.append_big, 'OK');
    assert.equal(out.append_bad, 'OK');
    assert.equal(out.exists, 2);
    assert.match(out.size, /RFC822\.SIZE 100\d{4}/);
    assert.equal(out.subject, 'Subject: big one');
    assert.equal(out.big_ok, true);
    assert.match(out.bad_structure, /BODYSTRUCTURE/);
    assert.equal(out.search, '1');
    assert.match(out.store[0], /FLAGS \(\\Deleted/);
    assert.equal(out.copy, 'OK');
    assert.deepEqual(out.expunge, ['2']);
    assert.match(out.status, /MESSAGES 1 UIDNEXT 2/);
    // The folder's real name, decoded, is what the API shows.
    const mailboxes = await t.call('GET', `/v1/mailboxes?q=${encodeURIComponent(address)}`, {
      token: org.token,
    });
    const folders = await t.call('GET', `/v1/mailboxes/${mailboxes.body.items[0].id}/folders`, {
      token: org.token,
    });
    assert.ok(
      folders.body.items.some((f: any) => f.name === 'Entwürfe/日本語'),
      JSON.stringify(folders.body.items),
    );
  });

  test('ENABLE UTF8=ACCEPT: folder names travel as UTF-8; ID, NAMESPACE, QUOTA, MULTIAPPEND, UNSELECT', async () => {
    const { address } = await newMailbox();
    const dialogue = await loggedIn(address);
    try {
      assert.match((await dialogue.command('ENABLE UTF8=ACCEPT')).lines[0], /^\* ENABLED UTF8=ACCEPT/);
      assert.match((await dialogue.command('CREATE "Überweisungen"')).reply, /OK/);
      const list = await dialogue.command('LIST "" "*"');
      assert.ok(
        list.lines.some((l) => Buffer.from(l, 'latin1').toString('utf8').endsWith('"Überweisungen"')),
        list.lines.join('\n'),
      );
      assert.match((await dialogue.command('ID ("name" "test")')).lines[0], /^\* ID \("name" "Mailroom"/);
      assert.equal((await dialogue.command('NAMESPACE')).lines[0], '* NAMESPACE (("" "/")) NIL NIL');
      dialogue.send('m1 APPEND INBOX (\\Seen) {12+}\r\nSubject: a\r\n (\\Draft) {12+}\r\nSubject: b\r\n\r\n');
      const multi = await dialogue.until('m1');
      assert.match(multi.reply, /^m1 OK \[APPENDUID \d+ 1:2\]/);
      const quota = await dialogue.command('GETQUOTAROOT INBOX');
      assert.ok(quota.lines.includes('* QUOTAROOT INBOX ""'), quota.lines.join('\n'));
      assert.ok(
        quota.lines.some((l) => /^\* QUOTA "" \(STORAGE 1 1048576\)$/.test(l)),
        quota.lines.join('\n'),
      );
      await dialogue.command('SELECT INBOX');
      assert.match((await dialogue.command('UNSELECT')).reply, /OK/);
      assert.match((await dialogue.command('FETCH 1 FLAGS')).reply, /BAD/);
    } finally {
      dialogue.close();
    }
  });

  test('COMPRESS=DEFLATE: both directions compressed after the OK', async () => {
    const { address } = await newMailbox();
    const socket = tls.connect({ host: '127.0.0.1', port: t.imapTlsPort, rejectUnauthorized: false });
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    const plain: string[] = [];
    let text = '';
    const waitFor = async (pattern: RegExp) => {
      const deadline = Date.now() + 5_000;
      while (!pattern.test(text)) {
        if (Date.now() > deadline) throw new Error(`no ${pattern} in ${JSON.stringify(text)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    const onPlain = (chunk: Buffer) => {
      text += chunk.toString('latin1');
    };
    socket.on('data', onPlain);
    await waitFor(/\* OK/);
    socket.write(`a LOGIN ${address} "${PASSWORD}"\r\n`);
    await waitFor(/a OK/);
    socket.write('b COMPRESS DEFLATE\r\n');
    await waitFor(/b OK/);
    socket.removeListener('data', onPlain);
    const inflate = zlib.createInflateRaw();
    const deflate = zlib.createDeflateRaw();
    socket.on('data', (chunk: Buffer) => inflate.write(chunk));
    inflate.on('data', (chunk: Buffer) => {
      plain.push(chunk.toString('latin1'));
      text += chunk.toString('latin1');
    });
    deflate.on('data', (chunk: Buffer) => socket.write(chunk));
    deflate.write('c SELECT INBOX\r\nd NOOP\r\n');
    deflate.flush(zlib.constants.Z_SYNC_FLUSH);
    await waitFor(/d OK/);
    assert.match(plain.join(''), /\* 0 EXISTS[\s\S]*c OK \[READ-WRITE\]/);
    socket.destroy();
  });
});
