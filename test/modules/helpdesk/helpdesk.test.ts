// The helpdesk through the public surface: customers write to a desk address through the real MX, agents
// answer through the API and the answer reaches the customer's MX threaded; replies, subject tags,
// auto-replies, bounces and loops; approvals by API and by replying to the approval mail; the
// organisation of the work (teams with round-robin and least-loaded assignment, categories, customer
// organisations, custom fields); list, search, bulk, merge and split; bad input and isolation.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import {
  engine,
  eventsOf,
  type Org,
  signUp,
  signUpWithOrg,
  startTestApp,
  type TestApp,
} from '../../support/app.ts';
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
  const commentsOf = async (ticketId: string) =>
    (await ok('GET', `/v1/tickets/${ticketId}/comments?page_size=200`)).items;
  /** Mail the outside MX received for an address, parsed. */
  const mailTo = async (address: string, count: number) =>
    until(
      async () =>
        Promise.all(
          outside.messages
            .filter((m: SinkMessage) => m.rcptTo.includes(address))
            .map((m) => simpleParser(m.raw)),
        ),
      (list) => list.length >= count,
      20_000,
    );

  /** A member of the organisation (invited, signed up, accepted). */
  const member = async (email: string) => {
    await ok('POST', `/v1/organizations/${org.orgId}/invitations`, { email, role: 'member' }, 201);
    const user = await signUp(t, email);
    const token = t.mailer.tokenFor(email, /invited/);
    await ok('POST', '/v1/invitations/accept', { token }, 200, { token: user.token, orgId: org.orgId });
    return user;
  };

  before(async () => {
    dns = await startDnsServer();
    outside = await startSmtpSink();
    for (const domain of ['customer.test', 'example.com', 'other-customer.test']) {
      // Mail from these domains comes from this host (SPF), so it passes DMARC (policy none: bounces still arrive).
      dns.set(domain, {
        MX: [{ exchange: `mx.${domain}`, priority: 10 }],
        TXT: ['v=spf1 ip4:127.0.0.1 -all'],
      });
      dns.set(`mx.${domain}`, { A: ['127.0.0.1'] });
      dns.set(`_dmarc.${domain}`, { TXT: ['v=DMARC1; p=none'] });
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
    assert.deepEqual(
      desk.addresses.map((a: any) => [a.address, a.mailbox_id !== null]),
      [
        ['help@support.test', true],
        ['billing@support.test', false],
      ],
    );
    assert.equal(desk.addresses[0].mailbox_id, mailboxId);
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
    const note = await ok(
      'POST',
      `/v1/tickets/${ticket.id}/comments`,
      { body: 'Internal: call the fire brigade', visibility: 'internal' },
      201,
    );
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
    const comments = await until(
      () => commentsOf(ticket.id),
      (c) => c.length >= 5,
      20_000,
    );
    const last = comments.at(-1);
    assert.equal(last.author_type, 'customer');
    assert.equal(last.body, 'Done, I am outside.');
    assert.equal((await ticketsOf('alice@customer.test', 1)).length, 1, 'no second ticket');
    assert.equal((await eventsOf(t, org, 'ticket.created')).length >= 1, true);
  });

  test('the subject tag threads mail without headers; auto-replies, bounces and loops open nothing', async () => {
    await mx({
      from: 'bob@customer.test',
      to: 'billing@support.test',
      subject: 'Invoice 42',
      text: 'Wrong amount',
    });
    const [ticket] = await ticketsOf('bob@customer.test', 1);
    await mx({
      from: 'bob@customer.test',
      to: 'billing@support.test',
      subject: `Fwd: [#${ticket.number}] Invoice 42`,
      text: 'More details',
    });
    const comments = await until(
      () => commentsOf(ticket.id),
      (c) => c.some((x: any) => x.body === 'More details'),
      20_000,
    );
    assert.ok(comments);
    // Neither a stranger nor someone else at the same (public) mail domain joins a ticket by its number.
    await mx({
      from: 'eve@customer.test',
      to: 'help@support.test',
      subject: `[#${ticket.number}] me too`,
      text: 'hi',
    });
    await ticketsOf('eve@customer.test', 1);
    // Mail that asks not to be answered automatically is still a person's mail: it files, unanswered.
    await mx({
      from: 'olga@customer.test',
      to: 'help@support.test',
      subject: 'From Outlook',
      text: 'Please call me',
      headers: { 'X-Auto-Response-Suppress': 'OOF, AutoReply' },
    });
    await ticketsOf('olga@customer.test', 1);
    await mx({
      from: 'mallory@other-customer.test',
      to: 'help@support.test',
      subject: `[#${ticket.number}] hi`,
      text: 'let me in',
    });
    await ticketsOf('mallory@other-customer.test', 1);

    const before = (await eventsOf(t, org, 'ticket.mail_ignored')).length;
    await mx({
      from: 'bob@customer.test',
      to: 'help@support.test',
      subject: 'Out of office',
      text: 'Away',
      headers: { 'Auto-Submitted': 'auto-replied' },
    });
    await mx({
      from: 'list@customer.test',
      to: 'help@support.test',
      subject: 'News',
      text: 'Bulk',
      headers: { Precedence: 'bulk' },
    });
    await mx({
      from: 'MAILER-DAEMON@customer.test',
      to: 'help@support.test',
      subject: 'Undelivered',
      text: 'bounce',
      envelope: { from: '', to: ['help@support.test'] },
    });
    const ignored = await until(
      () => eventsOf(t, org, 'ticket.mail_ignored'),
      (e) => e.length >= before + 3,
      20_000,
    );
    const reasons = ignored
      .slice(0, 3)
      .map((e: any) => e.data.reason)
      .sort();
    assert.deepEqual(
      reasons.map((r: string) => r.split(':')[0]),
      ['auto-reply', 'auto-reply', 'bounce'],
    );
    // A sender over the loop limit (6 an hour in this suite) opens nothing more.
    for (let n = 0; n < 8; n++)
      await mx({ from: 'robot@customer.test', to: 'help@support.test', subject: `Alert ${n}`, text: 'x' });
    await until(
      () => eventsOf(t, org, 'ticket.mail_ignored'),
      (e) => e.some((x: any) => x.data.reason.includes('hourly limit')),
      20_000,
    );
    assert.equal((await ok('GET', '/v1/tickets?q=robot%40customer.test&page_size=50')).total, 6);
  });

  test('approvals: by API and by replying to the approval mail; only the category’s approvers decide', async () => {
    const approver = await member('approver@example.com');
    await ok('PUT', `/v1/helpdesk/agents/${approver.id}`, { role: 'approver' });
    const category = await ok(
      'POST',
      '/v1/helpdesk/categories',
      { name: 'Purchases', needs_approval: true, approver_ids: [approver.id] },
      201,
    );
    const viaApi = await ok(
      'POST',
      '/v1/tickets',
      {
        desk_id: desk.id,
        subject: 'New laptop',
        requester: { email: 'carol@customer.test' },
        body: 'Mine broke',
        category_id: category.id,
      },
      201,
    );
    assert.equal(viaApi.status, 'approval-pending');
    // The owner is an agent but not an approver of this category.
    const notYours = await api('POST', `/v1/tickets/${viaApi.id}/approval`, { decision: 'approved' });
    assert.equal(notYours.status, 403);
    const decided = await ok(
      'POST',
      `/v1/tickets/${viaApi.id}/approval`,
      { decision: 'rejected', comment: 'Budget is spent' },
      200,
      { token: approver.token, orgId: org.orgId },
    );
    assert.equal(decided.status, 'rejected');
    const again = await api(
      'POST',
      `/v1/tickets/${viaApi.id}/approval`,
      { decision: 'approved' },
      { token: approver.token, orgId: org.orgId },
    );
    assert.equal(again.status, 409);
    // The requester is told.
    const told = await mailTo('carol@customer.test', 1);
    assert.ok(told[0]!.text!.includes('rejected'));
    assert.ok(told[0]!.text!.includes('Budget is spent'));

    // By mail: the approver answers the approval request.
    const viaMail = await ok(
      'POST',
      '/v1/tickets',
      {
        desk_id: desk.id,
        subject: 'New phone',
        requester: { email: 'dave@customer.test' },
        body: 'Please',
        category_id: category.id,
      },
      201,
    );
    const requests = await until(
      async () =>
        (await mailTo('approver@example.com', 1)).filter((m) => m.subject!.includes(`[#${viaMail.number}]`)),
      (list) => list.length === 1,
      20_000,
    );
    const request = requests[0]!;
    // Only its approvers move a waiting ticket on.
    assert.equal((await api('PATCH', `/v1/tickets/${viaMail.id}`, { status: 'open' })).status, 409);
    assert.equal((await api('PATCH', `/v1/tickets/${viaMail.id}`, { category_id: null })).status, 409);
    assert.ok(request.subject!.startsWith('Approval needed'));
    // Someone else replying to the request decides nothing.
    await mx({
      from: 'mallory@other-customer.test',
      to: 'help@support.test',
      subject: `Re: ${request.subject}`,
      text: 'APPROVE',
      inReplyTo: request.messageId!,
    });
    await mx({
      from: 'approver@example.com',
      to: 'help@support.test',
      subject: `Re: ${request.subject}`,
      text: 'Approve - fine, the cheap one.\n\nOn Mon, 7 Dec 2026 Support wrote:\n> New phone',
      inReplyTo: request.messageId!,
      references: [request.messageId!],
    });
    const approved = await until(
      () => ok('GET', `/v1/tickets/${viaMail.id}`),
      (tk) => tk.status === 'approved',
      20_000,
    );
    assert.equal(approved.status, 'approved');
    const approvals = (await ok('GET', `/v1/tickets/${viaMail.id}/approvals`)).items;
    assert.equal(approvals.length, 1);
    assert.equal(approvals[0].via, 'mail');
    assert.equal(approvals[0].comment, '- fine, the cheap one.');
    const decisions = await eventsOf(t, org, 'ticket.approval_decided');
    assert.equal(decisions.filter((e: any) => e.data.ticket.id === viaMail.id).length, 1);
    const ignored = await eventsOf(t, org, 'ticket.mail_ignored');
    assert.ok(ignored.some((e: any) => e.data.reason === 'approval reply not from its approver'));
  });

  test('teams assign round-robin and least-loaded; customer organisations match by domain; custom fields are checked', async () => {
    const agents: string[] = [];
    for (const name of ['ann', 'ben', 'cat']) {
      const user = await member(`${name}@example.com`);
      await ok('PUT', `/v1/helpdesk/agents/${user.id}`, { role: 'agent' });
      agents.push(user.id);
    }
    const rr = await ok(
      'POST',
      '/v1/helpdesk/teams',
      { name: 'Tier 1', assignment: 'round_robin', member_ids: agents },
      201,
    );
    assert.deepEqual([...rr.member_ids].sort(), [...agents].sort());
    const open = async (subject: string, team_id: string, extra: Record<string, unknown> = {}) =>
      ok(
        'POST',
        '/v1/tickets',
        { desk_id: desk.id, subject, requester: { email: 'erin@acme.test' }, body: 'x', team_id, ...extra },
        201,
      );
    const assigned = [];
    for (let n = 0; n < 6; n++) assigned.push((await open(`RR ${n}`, rr.id)).assignee_id);
    const sorted = [...agents].sort();
    assert.deepEqual(assigned, [...sorted, ...sorted]);

    const ll = await ok(
      'POST',
      '/v1/helpdesk/teams',
      { name: 'Tier 2', assignment: 'least_loaded', member_ids: agents },
      201,
    );
    // Resolve the first agent's work: they have the least open tickets now.
    const mine = (await ok('GET', `/v1/tickets?assignee_id=${sorted[0]}&page_size=50`)).items;
    await ok('POST', '/v1/tickets/bulk', {
      ids: mine.map((x: any) => x.id),
      changes: { status: 'resolved' },
    });
    assert.equal((await open('LL', ll.id)).assignee_id, sorted[0]);

    const acme = await ok('POST', '/v1/helpdesk/customers', { name: 'Acme', domains: ['ACME.test'] }, 201);
    assert.deepEqual(acme.domains, ['acme.test']);
    const fresh = await ok(
      'POST',
      '/v1/tickets',
      { desk_id: desk.id, subject: 'From Acme', requester: { email: 'zed@acme.test' }, body: 'y' },
      201,
    );
    assert.equal(fresh.customer_id, acme.id);

    const withField = await ok('PATCH', `/v1/tickets/${fresh.id}`, {
      custom_fields: { plan: 'pro' },
      priority: 'urgent',
      add_tags: ['VIP'],
    });
    assert.deepEqual(withField.custom_fields, { plan: 'pro' });
    assert.deepEqual(withField.tags, ['vip']);
    assert.equal(
      (await api('PATCH', `/v1/tickets/${fresh.id}`, { custom_fields: { plan: 'gold' } })).status,
      422,
    );
    assert.equal(
      (await api('PATCH', `/v1/tickets/${fresh.id}`, { custom_fields: { colour: 'red' } })).status,
      422,
    );
    const updated = await eventsOf(t, org, 'ticket.updated');
    const change = updated.find((e: any) => e.data.ticket.id === fresh.id);
    assert.deepEqual(change.data.changes.priority, ['normal', 'urgent']);
  });

  test('list filters, sorts and searches; bulk is all or none; merge and split move the conversation', async () => {
    const a = await ok(
      'POST',
      '/v1/tickets',
      {
        desk_id: desk.id,
        subject: 'Quarterly xylophone report',
        requester: { email: 'fay@customer.test' },
        body: 'numbers look odd',
        priority: 'high',
      },
      201,
    );
    const b = await ok(
      'POST',
      '/v1/tickets',
      {
        desk_id: desk.id,
        subject: 'Another question',
        requester: { email: 'fay@customer.test' },
        body: 'about the xylophone',
        priority: 'low',
      },
      201,
    );
    await ok(
      'POST',
      `/v1/tickets/${b.id}/comments`,
      { body: 'Looking into the marimba', visibility: 'internal' },
      201,
    );
    const found = await ok('GET', '/v1/tickets?q=xylophone&sort=priority&order=desc');
    assert.equal(found.total_exact, true);
    assert.deepEqual(
      found.items.map((x: any) => x.id),
      [a.id, b.id],
    );
    assert.deepEqual(
      (await ok('GET', '/v1/tickets?q=marimba')).items.map((x: any) => x.id),
      [b.id],
    );
    assert.deepEqual(
      (await ok('GET', `/v1/tickets?q=xylophone&priority=low`)).items.map((x: any) => x.id),
      [b.id],
    );
    const page = await ok('GET', '/v1/tickets?page_size=2&page=1&sort=number&order=asc');
    assert.equal(page.items.length, 2);
    assert.ok(page.items[0].number < page.items[1].number);
    assert.ok(page.total >= 10);

    // Bulk: one unknown id and nothing changes.
    const bad = await api('POST', '/v1/tickets/bulk', {
      ids: [a.id, '01a25093-0000-7000-8000-000000000000'],
      changes: { status: 'pending' },
    });
    assert.equal(bad.status, 404);
    assert.equal((await ok('GET', `/v1/tickets/${a.id}`)).status, 'open');
    const bulk = await ok('POST', '/v1/tickets/bulk', {
      ids: [a.id, b.id],
      changes: { status: 'pending', add_tags: ['q4'] },
    });
    assert.deepEqual(
      bulk.items.map((x: any) => x.status),
      ['pending', 'pending'],
    );

    const merged = await ok('POST', `/v1/tickets/${b.id}/merge`, { into_id: a.id });
    assert.equal(merged.id, a.id);
    assert.equal(merged.comments, 3);
    const gone = await ok('GET', `/v1/tickets/${b.id}`);
    assert.equal(gone.status, 'closed');
    assert.equal(gone.merged_into_id, a.id);
    assert.equal(
      (await api('POST', `/v1/tickets/${b.id}/comments`, { body: 'x', visibility: 'internal' })).status,
      409,
    );
    assert.deepEqual(
      (await ok('GET', '/v1/tickets?q=marimba')).items.map((x: any) => x.id).sort(),
      [a.id, b.id].sort(),
    );

    const comments = await commentsOf(a.id);
    const split = await ok('POST', `/v1/tickets/${a.id}/split`, { comment_ids: [comments.at(-1).id] }, 201);
    assert.equal(split.comments, 1);
    assert.equal(split.source, 'split');
    assert.equal((await ok('GET', `/v1/tickets/${a.id}`)).comments, 2);
    assert.equal(
      (
        await api('POST', `/v1/tickets/${a.id}/split`, {
          comment_ids: comments.slice(0, 2).map((c: any) => c.id),
        })
      ).status,
      422,
    );
    assert.equal((await ok('GET', `/v1/tickets/by-number/${split.number}`)).id, split.id);
  });

  test('bad input is a 4xx; another organisation sees nothing; keys need the tickets scope', async () => {
    const cases: [string, string, unknown, number][] = [
      ['POST', '/v1/helpdesk/desks', { name: 'X', addresses: ['nobody@support.test'] }, 422],
      ['POST', '/v1/helpdesk/desks', { name: 'X', addresses: ['help@support.test'] }, 409],
      ['POST', '/v1/helpdesk/desks', { name: 'Support', addresses: [] }, 400],
      [
        'POST',
        '/v1/helpdesk/desks',
        { name: 'Y', addresses: ['x@y.z'], custom_fields: [{ key: 'Bad Key', label: 'x', type: 'text' }] },
        400,
      ],
      [
        'POST',
        '/v1/tickets',
        { desk_id: desk.id, subject: 'x', requester: { email: 'not-an-address' }, body: 'x' },
        422,
      ],
      [
        'POST',
        '/v1/tickets',
        { desk_id: desk.id, subject: '', requester: { email: 'a@b.test' }, body: 'x' },
        400,
      ],
      [
        'POST',
        '/v1/tickets',
        { desk_id: desk.id, subject: 's', requester: { email: 'a@b.test' }, body: 'x', priority: 'meh' },
        400,
      ],
      [
        'POST',
        '/v1/tickets',
        {
          desk_id: '01a25093-0000-7000-8000-000000000000',
          subject: 's',
          requester: { email: 'a@b.test' },
          body: 'x',
        },
        422,
      ],
      [
        'POST',
        '/v1/tickets',
        {
          desk_id: desk.id,
          subject: 's',
          requester: { email: 'a@b.test' },
          body: 'x',
          team_id: '01a25093-0000-7000-8000-000000000000',
        },
        422,
      ],
      ['GET', '/v1/tickets?status=nope', undefined, 400],
      ['GET', '/v1/tickets?sort=colour', undefined, 400],
      ['GET', '/v1/tickets/not-a-uuid', undefined, 400],
      ['PATCH', '/v1/tickets/01a25093-0000-7000-8000-000000000000', { priority: 'low' }, 404],
      [
        'POST',
        '/v1/helpdesk/teams',
        { name: 'T', member_ids: ['01a25093-0000-7000-8000-000000000000'] },
        422,
      ],
      ['POST', '/v1/helpdesk/customers', { name: 'C', domains: ['not a domain'] }, 422],
      ['PUT', '/v1/helpdesk/agents/01a25093-0000-7000-8000-000000000000', { role: 'agent' }, 404],
      ['PUT', `/v1/helpdesk/agents/${org.id}`, { role: 'boss' }, 400],
    ];
    for (const [method, url, body, status] of cases) {
      const res = await api(method, url, body);
      assert.equal(
        res.status,
        status,
        `${method} ${url} ${JSON.stringify(body)}: ${JSON.stringify(res.body)}`,
      );
    }
    const [ticket] = await ticketsOf('alice@customer.test', 1);
    for (const [method, url, body] of [
      ['GET', `/v1/tickets/${ticket.id}`],
      ['GET', `/v1/tickets/${ticket.id}/comments`],
      ['PATCH', `/v1/tickets/${ticket.id}`, { priority: 'low' }],
      ['POST', `/v1/tickets/${ticket.id}/comments`, { body: 'hi', visibility: 'public' }],
      ['GET', `/v1/helpdesk/desks/${desk.id}`],
      ['GET', `/v1/tickets/by-number/${ticket.number}`],
    ] as [string, string, unknown][]) {
      const res = await api(method, url, body, other);
      assert.equal(res.status, 404, `${method} ${url}`);
    }
    assert.equal((await ok('GET', '/v1/tickets', undefined, 200, other)).total, 0);
    // Another organisation cannot bind our mailbox to its desk.
    assert.equal(
      (await api('POST', '/v1/helpdesk/desks', { name: 'Steal', addresses: ['help@support.test'] }, other))
        .status,
      422,
    );

    const key = await ok(
      'POST',
      `/v1/organizations/${org.orgId}/api-keys`,
      { name: 'read', scopes: ['tickets:read'] },
      201,
    );
    const asKey = { token: key.key, orgId: org.orgId };
    assert.equal((await api('GET', '/v1/tickets', undefined, asKey)).status, 200);
    assert.equal((await api('PATCH', `/v1/tickets/${ticket.id}`, { priority: 'low' }, asKey)).status, 403);
    assert.equal((await api('GET', '/v1/helpdesk/desks', undefined, asKey)).status, 403);
  });
});
