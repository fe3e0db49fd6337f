// Mail intelligence with the outside engines an operator may configure, each a private real server
// started for this file: ClamAV's clamd (MAILROOM_CLAMD) finds the EICAR test file in an attachment of
// mail through the MX and the message is quarantined; rspamd (MAILROOM_RSPAMD_URL) gives its verdict
// and symbols for a GTUBE message.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { engine, eventsOf, type Org, signUpWithOrg, startTestApp, type TestApp } from '../../support/app.ts';
import { type Clamd, clamdSkip, startClamd } from '../../support/clamd.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';
import { imapClient } from '../../support/imap.ts';
import {
  type Composed,
  compose,
  EICAR,
  GTUBE,
  meetingAgenda,
  withAttachment,
} from '../../support/intelligence-mail.ts';
import { type Rspamd, rspamdSkip, startRspamd } from '../../support/rspamd.ts';
import { sendMail } from '../../support/smtp.ts';
import { until } from '../../support/until.ts';

const DOMAIN = 'engines.test';
const PASSWORD = 'a long mailbox password';
/** ClamAV marks signatures from outside its official databases `.UNOFFICIAL`; its own EICAR name may be built in. */
const EICAR_SIGNATURE = /^(Mailroom\.Test\.EICAR(\.UNOFFICIAL)?|Eicar-Test-Signature)$/;

const clamdMissing = clamdSkip();
const rspamdMissing = rspamdSkip();

describe(`mail intelligence with clamd and rspamd on ${engine}`, {
  skip: clamdMissing && rspamdMissing ? `${clamdMissing}; ${rspamdMissing}` : false,
}, () => {
  let t: TestApp;
  let dns: TestDnsServer;
  let clamd: Clamd | undefined;
  let rspamd: Rspamd | undefined;
  let org: Org;

  const call = async (method: string, url: string, body?: unknown, status = 200) => {
    const res = await t.call(method, url, { token: org.token, body });
    assert.equal(res.status, status, `${method} ${url}: ${JSON.stringify(res.body)}`);
    return res.body;
  };
  /** Sends through the MX and waits for the analysis; the message detail. */
  const deliver = async (mail: Composed) => {
    await sendMail(t.smtpPort, { from: mail.from, to: mail.to, raw: mail.raw });
    const { id } = await until(
      async () =>
        (await call('GET', `/v1/messages?recipient=${encodeURIComponent(mail.to)}&page_size=100`)).items.find(
          (m: any) => m.message_id_header === mail.messageId,
        ),
      (found) => found !== undefined,
    );
    return until(
      () => call('GET', `/v1/messages/${id}`),
      (m) => m.analysis !== null,
      30_000,
    );
  };
  /** How many messages with this subject each folder holds, as a new IMAP session sees them. */
  const foldersHolding = async (address: string, subject: string) => {
    const client = await imapClient(t.imapPort, address, PASSWORD);
    try {
      const found: Record<string, number> = {};
      for (const folder of ['INBOX', 'Junk', 'Trash', 'Archive']) {
        const lock = await client.getMailboxLock(folder);
        try {
          const uids = (await client.search({ subject }, { uid: true })) || [];
          if (uids.length) found[folder] = uids.length;
        } finally {
          lock.release();
        }
      }
      return found;
    } finally {
      await client.logout().catch(() => client.close());
    }
  };

  before(async () => {
    dns = await startDnsServer();
    const env: Record<string, string> = {
      MAILROOM_HOSTNAME: `mx.${DOMAIN}`,
      MAILROOM_DNS_SERVERS: dns.address,
    };
    const [startedClamd, startedRspamd] = await Promise.all([
      clamdMissing ? undefined : startClamd([{ name: 'Mailroom.Test.EICAR', file: EICAR }]),
      rspamdMissing ? undefined : startRspamd(),
    ]);
    clamd = startedClamd;
    rspamd = startedRspamd;
    if (clamd) env.MAILROOM_CLAMD = clamd.address;
    if (rspamd) env.MAILROOM_RSPAMD_URL = rspamd.url;
    t = await startTestApp({ smtp: true, imap: true, workers: true, env });
    org = await signUpWithOrg(t, 'engines-owner@example.com', 'Engines Co');
    await verifiedDomain(t, org.token, DOMAIN, [dns]);
    for (const local of ['files', 'spam'])
      await call('POST', '/v1/mailboxes', { address: `${local}@${DOMAIN}`, password: PASSWORD }, 201);
  });
  after(async () => {
    await t?.close();
    await clamd?.stop();
    await rspamd?.stop();
    await dns?.close();
  });

  test('clamd: the EICAR attachment is named, the message quarantined out of every folder, message.malware_detected', {
    skip: clamdMissing,
  }, async () => {
    const address = `files@${DOMAIN}`;
    const infectedMail = withAttachment(address, 'eicar-1', 'eicar.com', EICAR);
    const cleanMail = withAttachment(
      address,
      'clean-1',
      'notes.txt',
      'Notes from the meeting: nothing infectious.',
    );
    const [infected, clean] = await Promise.all([deliver(infectedMail), deliver(cleanMail)]);

    assert.match(infected.analysis.malware, EICAR_SIGNATURE);
    assert.equal(infected.status, 'quarantined');
    assert.deepEqual(await foldersHolding(address, infectedMail.subject), {});
    // Still there for an administrator.
    const raw = await t.call('GET', `/v1/messages/${infected.id}/raw`, { token: org.token });
    assert.equal(raw.status, 200);
    assert.match(raw.body, /eicar\.com/);

    const detected = (await eventsOf(t, org, 'message.malware_detected')).find(
      (e) => e.data.message_id === infected.id,
    );
    assert.ok(detected, 'message.malware_detected recorded');
    assert.deepEqual(detected.data, {
      message_id: infected.id,
      signature: infected.analysis.malware,
      quarantined: true,
    });
    const analysed = (await eventsOf(t, org, 'message.analyzed')).find(
      (e) => e.data.message_id === infected.id,
    );
    assert.equal(analysed?.data.malware, infected.analysis.malware);
    const changed = (await eventsOf(t, org, 'message.status_changed')).find(
      (e) => e.data.message_id === infected.id,
    );
    assert.equal(changed?.data.status, 'quarantined');

    // A clean attachment was scanned and left alone.
    assert.equal(clean.analysis.malware, null);
    assert.equal(clean.status, 'delivered');
    assert.deepEqual(await foldersHolding(address, cleanMail.subject), { INBOX: 1 });
    assert.equal(
      (await eventsOf(t, org, 'message.malware_detected')).some((e) => e.data.message_id === clean.id),
      false,
    );

    // With quarantine off, malware is named but the message stays where it was filed.
    await call('PATCH', '/v1/intelligence/settings', { quarantine_malware: false });
    try {
      const keptMail = withAttachment(address, 'eicar-2', 'eicar.com', EICAR);
      const kept = await deliver(keptMail);
      assert.match(kept.analysis.malware, EICAR_SIGNATURE);
      assert.equal(kept.status, 'delivered');
      assert.equal(
        Object.values(await foldersHolding(address, keptMail.subject)).reduce((a, b) => a + b, 0),
        1,
      );
      const event = (await eventsOf(t, org, 'message.malware_detected')).find(
        (e) => e.data.message_id === kept.id,
      );
      assert.equal(event?.data.quarantined, false);
    } finally {
      await call('PATCH', '/v1/intelligence/settings', { quarantine_malware: true });
    }
  });

  test('rspamd: a GTUBE message is spam by rspamd, with the GTUBE symbol, and goes to Junk; ordinary mail passes', {
    skip: rspamdMissing,
  }, async () => {
    const address = `spam@${DOMAIN}`;
    const gtubeMail = compose({
      from: 'sales@cheap-watches.example',
      to: address,
      subject: 'Cheap watches',
      id: 'gtube-1',
      body: `Buy now!\n\n${GTUBE}\n`,
    });
    const hamMail = meetingAgenda(address, 'rspamd-ham');
    const [gtube, ham] = await Promise.all([deliver(gtubeMail), deliver(hamMail)]);

    assert.equal(gtube.analysis.spam.engine, 'rspamd');
    assert.equal(gtube.analysis.spam.verdict, true);
    assert.ok(
      gtube.analysis.spam.symbols.some((s: any) => s.name === 'GTUBE'),
      JSON.stringify(gtube.analysis.spam.symbols),
    );
    assert.deepEqual(await foldersHolding(address, gtubeMail.subject), { Junk: 1 });

    assert.equal(ham.analysis.spam.engine, 'rspamd');
    assert.equal(ham.analysis.spam.verdict, false, JSON.stringify(ham.analysis.spam));
    assert.ok(ham.analysis.spam.symbols.length > 0);
    for (const s of ham.analysis.spam.symbols) assert.match(s.name, /^[A-Z0-9_]+$/);
    assert.deepEqual(await foldersHolding(address, hamMail.subject), { INBOX: 1 });
  });
});
