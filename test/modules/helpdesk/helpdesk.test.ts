// The helpdesk through the public surface: customers write to a desk address through the real MX, agents
// answer through the API and the answer reaches the customer's MX threaded; replies, subject tags,
// auto-replies, bounces and loops; approvals by API and by replying to the approval mail; the
// organisation of the work (teams with round-robin and least-loaded assignment, categories, customer
// organisations, custom fields); list, search, bulk, merge and split; bad input and isolation.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import { engine, eventsOf, type Org, signUp, signUpWithOrg, startTestApp, type TestApp } from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';
import { type SinkMessage, type SmtpSink, startSmtpSink } from '../../support/smtp-sink.ts';
import { sendMail } from '../../support/smtp.ts';
import { until } from '../../support/until.ts';

describe(`helpdesk on ${engine}`, () => {
  let t: TestApp;
  let dns: TestDnsServer;
  let outside: SmtpSink;
  let org: Org & { id: string };
  let other: Org;
  let desk: any;
  let mailboxId: string;

  const api = (method: string, url: string, body?: unknown, as: Org = org) =>
    t.call(method, url, { token: as.token, body });
  const ok = async (method: string, url: string, body?: unknown, status = 200, as: Org = org) => {
    const res = await api(method, url, body, as);
    assert.equal(res.status, status, `${method} ${url}: ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const mx = (input: Parameters<typeof sendMail>[1]) => sendMail(t.smtpPort, input);
  /** The tickets of a requester, once the intake has filed what reached the desk. */
  const ticketsOf = async (requester: string, count: number) =>
    until(
      async () => {
        const contacts = await ok('GET', `/v1/tickets?q=${encodeURIComponent(requester)}&page_size=200`);
        return contacts.items as any[];
      },
      (items) => items.length >= count,
      20_000,
    );
  const commentsOf = async (ticketId: string) => (await ok('GET', `/v1/tickets/${ticketId}/comments?page_size=200`)).items;
  /** Mail the outside MX received for an address, parsed. */
  const mailTo = async (address: string, count: number) =>
    until(
      async () =>
        Promise.all(
          outside.messages.filter((m: SinkMessage) => m.rcptTo.includes(address)).map((m) => simpleParser(m.raw)),
        ),
      (list) => list.length >= count,
      20_000,
    );

  before(async () => {
    dns = await startDnsServer();
    outside = await startSmtpSink();
    for (const domain of ['customer.test', 'example.com', 'other-customer.test']) {
      dns.set(domain, { MX: [{ exchange: `mx.${domain}`, priority: 10 }] });
      dns.set(`mx.${domain}`, { A: ['127.0.0.1'] });
    }
    t = await startTestApp({
      workers: true,
      smtp: true,
      env: {
        MAILROOM_HOSTNAME: 'mx.support.test',
        MAILROOM_DNS_SERVERS: dns.address,
        MAILROOM_OUTBOUND_PORT: String(outside.port),
        MAILROOM_HELPDESK_LOOP_LIMIT: '6',
      },
    });
    const owner = await signUpWithOrg(t, 'helpdesk-owner@example.com', 'Support Co');
    org = { token: owner.token, orgId: owner.orgId, id: owner.id };
    other = await signUpWithOrg(t, 'helpdesk-other@example.com', 'Other Co');
    await verifiedDomain(t, org.token, 'support.test', [dns]);
    mailboxId = (await ok('POST', '/v1/mailboxes', { address: 'help@support.test' }, 201)).id;
    await ok('POST', '/v1/aliases', { address: 'billing@support.test', targets: ['help@support.test'] }, 201);
    await ok('PUT', `/v1/helpdesk/agents/${org.id}`, { role: 'supervisor' });
    desk = await ok(
      'POST',
      '/v1/helpdesk/desks',
      {
        name: 'Support',
        addresses: ['help@support.test', 'billing@support.test'],
        signature: 'The Support Co team',
        custom_fields: [{ key: 'plan', label: 'Plan', type: 'select', options: ['free', 'pro'] }],
      },
      201,
    );
  });
  after(async () => {
    await t?.close();
    await outside?.close();
    await dns?.close();
  });

  test('a customer’s mail opens a ticket; the agent’s reply reaches the customer threaded; the reply joins the ticket', async () => {
    await mx({
      from: 'Alice Customer <alice@customer.test>',
      to: 'help@support.test',
      subject: 'Printer on fire',
      text: 'The printer is on fire. Please help.',
      messageId: '<first-alice@customer.test>',
    });
    const [ticket] = await ticketsOf('alice@customer.test', 1);
    assert.equal(ticket.subject, 'Printer on fire');
    assert.equal(ticket.status, 'open');
    assert.equal(ticket.source, 'mail');
    assert.equal(ticket.desk_id, desk.id);
    const [first] = await commentsOf(ticket.id);
    assert.equal(first.author_type, 'customer');
    assert.equal(first.body, 'The printer is on fire. Please help.');
    assert.equal(first.message_id_header, 'first-alice@customer.test');

    // The acknowledgement: automatic, threaded, tagged.
    const [ack] = await mailTo('alice@customer.test', 1);
    assert.equal(ack!.subject, `Re: [#${ticket.number}] Printer on fire`);
    assert.equal(ack!.headers.get('auto-submitted'), 'auto-replied');
    assert.equal(ack!.inReplyTo, '<first-alice@customer.test>');

    const reply = await ok(
      'POST',
      `/v1/tickets/${ticket.id}/comments`,
      {
        body: 'Please step away from the printer.',
        visibility: 'public',
        attachments: [{ filename: 'steps.txt', content: Buffer.from('1. leave').toString('base64') }],
      },
      201,
    );
    assert.ok(reply.message_id_header);
    const note = await ok('POST', `/v1/tickets/${ticket.id}/comments`, { body: 'Internal: call the fire brigade', visibility: 'internal' }, 201);
    assert.equal(note.message_id_header, null);
    const mails = await mailTo('alice@customer.test', 2);
    const answer = mails.find((m) => m.messageId === `<${reply.message_id_header}>`)!;
    assert.ok(answer, 'the reply reached the customer’s MX');
    assert.equal(answer.from!.value[0]!.address, 'help@support.test');
    assert.equal(answer.subject, `Re: [#${ticket.number}] Printer on fire`);
    assert.ok(answer.text!.includes('Please step away from the printer.'));
    assert.ok(answer.text!.includes('The Support Co team'));
    assert.equal(answer.attachments[0]!.filename, 'steps.txt');
    assert.ok((answer.references as string[]).includes('<first-alice@customer.test>'));
    assert.ok(answer.headers.get('dkim-signature'), 'signed');
    assert.ok(!mails.some((m) => m.text?.includes('fire brigade')), 'internal notes are never sent');
    const after1 = await ok('GET', `/v1/tickets/${ticket.id}`);
    assert.equal(after1.status, 'in-progress');
    assert.ok(after1.first_response_at);

    // The customer answers the agent's mail: it joins the ticket.
    await mx({
      from: 'alice@customer.test',
      to: 'help@support.test',
      subject: answer.subject,
      text: 'Done, I am outside.\n\nOn Mon, 7 Dec 2026 Support wrote:\n> Please step away from the printer.',
      inReplyTo: answer.messageId!,
      references: [answer.messageId!],
    });
    const comments = await until(() => commentsOf(ticket.id), (c) => c.length >= 5, 20_000);
    const last = comments.at(-1);
    assert.equal(last.author_type, 'customer');
    assert.equal(last.body, 'Done, I am outside.');
    assert.equal((await ticketsOf('alice@customer.test', 1)).length, 1, 'no second ticket');
    assert.equal((await eventsOf(t, org, 'ticket.created')).length >= 1, true);
  });

  test('the subject tag threads mail without headers; auto-replies, bounces and loops open nothing', async () => {
    await mx({ from: 'bob@customer.test', to: 'billing@support.test', subject: 'Invoice 42', text: 'Wrong amount' });
    const [ticket] = await ticketsOf('bob@customer.test', 1);
    await mx({ from: 'bob@customer.test', to: 'billing@support.test', subject: `Fwd: [#${ticket.number}] Invoice 42`, text: 'More details' });
    const comments = await until(() => commentsOf(ticket.id), (c) => c.some((x: any) => x.body === 'More details'), 20_000);
    assert.ok(comments);
    // A stranger cannot join someone else's ticket by guessing its number.
    await mx({ from: 'mallory@other-customer.test', to: 'help@support.test', subject: `[#${ticket.number}] hi`, text: 'let me in' });
    await ticketsOf('mallory@other-customer.test', 1);

    const before = (await eventsOf(t, org, 'ticket.mail_ignored')).length;
    await mx({ from: 'bob@customer.test', to: 'help@support.test', subject: 'Out of office', text: 'Away', headers: { 'Auto-Submitted': 'auto-replied' } });
    await mx({ from: 'list@customer.test', to: 'help@support.test', subject: 'News', text: 'Bulk', headers: { Precedence: 'bulk' } });
    await mx({ from: 'MAILER-DAEMON@customer.test', to: 'help@support.test', subject: 'Undelivered', text: 'bounce', envelope: { from: '', to: ['help@support.test'] } });
    const ignored = await until(
      () => eventsOf(t, org, 'ticket.mail_ignored'),
      (e) => e.length >= before + 3,
      20_000,
    );
    const reasons = ignored.slice(0, 3).map((e: any) => e.data.reason).sort();
    assert.deepEqual(
      reasons.map((r: string) => r.split(':')[0]),
      ['auto-reply', 'auto-reply', 'bounce'],
    );
    // A sender over the loop limit (6 an hour in this suite) opens nothing more.
    for (let n = 0; n < 8; n++) await mx({ from: 'robot@customer.test', to: 'help@support.test', subject: `Alert ${n}`, text: 'x' });
    await until(
      () => eventsOf(t, org, 'ticket.mail_ignored'),
      (e) => e.some((x: any) => x.data.reason.includes('hourly limit')),
      20_000,
    );
    assert.equal((await ok('GET', '/v1/tickets?q=robot%40customer.test&page_size=50')).total, 6);
  });
});
