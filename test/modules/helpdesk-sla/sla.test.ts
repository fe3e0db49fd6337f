// SLA timers through the public surface on a ManualClock: a Mon–Fri 09:00–17:00 Europe/Berlin calendar
// with a holiday, policies chosen by priority, tickets opened on a Friday afternoon, warnings at 80 %,
// breaches, escalation (raise priority, reassign, mail, Teams flag) firing once with two sweepers (two
// app instances on PostgreSQL; two concurrent sweeps on the embedded engine, which one process owns),
// pending pausing the clock, the next-response target started by the customer's mail, a re-chosen policy,
// bad input and isolation.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import { ManualClock } from '../../../src/core/clock.ts';
import { engine, eventsOf, type Org, signUpWithOrg, startTestApp, type TestApp } from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';
import { type SmtpSink, startSmtpSink } from '../../support/smtp-sink.ts';
import { sendMail } from '../../support/smtp.ts';
import { until } from '../../support/until.ts';

/** Friday 2027-01-08, 16:00 in Berlin (UTC+1 in winter). Monday 2027-01-11 is the calendar's holiday. */
const FRIDAY_1600 = '2027-01-08T15:00:00Z';

describe(`helpdesk SLA on ${engine}`, () => {
  const clock = new ManualClock(FRIDAY_1600);
  let t: TestApp;
  let second: TestApp | null = null;
  let dns: TestDnsServer;
  let outside: SmtpSink;
  let org: Org & { id: string };
  let other: Org;
  let desk: any;
  let team: any;
  let calendar: any;
  let standard: any;
  let urgent: any;
  let t1: any;
  let t2: any;

  const api = (method: string, url: string, body?: unknown, as: Org = org) =>
    t.call(method, url, { token: as.token, body });
  const ok = async (method: string, url: string, body?: unknown, status = 200, as: Org = org) => {
    const res = await api(method, url, body, as);
    assert.equal(res.status, status, `${method} ${url}: ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const slaOf = (ticketId: string) => ok('GET', `/v1/tickets/${ticketId}/sla`);
  const timer = (sla: any, target: string) => sla.timers.find((x: any) => x.target === target);
  const slaEvents = async (
    type: 'ticket.sla_warning' | 'ticket.sla_breached',
    ticketId: string,
    target: string,
  ) =>
    (await eventsOf(t, org, type)).filter(
      (e: any) => e.data.ticket.id === ticketId && e.data.sla.target === target,
    );
  const sweep = () => t.app.services.helpdeskSla.sweep();
  const openTicket = async (subject: string, requester: string, extra: Record<string, unknown> = {}) =>
    ok(
      'POST',
      '/v1/tickets',
      { desk_id: desk.id, subject, requester: { email: requester }, body: 'Help', ...extra },
      201,
    );

  before(async () => {
    dns = await startDnsServer();
    outside = await startSmtpSink();
    dns.set('customer.test', { MX: [{ exchange: 'mx.customer.test', priority: 10 }] });
    dns.set('mx.customer.test', { A: ['127.0.0.1'] });
    t = await startTestApp({
      workers: true,
      smtp: true,
      clock,
      env: {
        MAILROOM_HOSTNAME: 'mx.support.test',
        MAILROOM_DNS_SERVERS: dns.address,
        MAILROOM_OUTBOUND_PORT: String(outside.port),
      },
    });
    const owner = await signUpWithOrg(t, 'sla-owner@example.com', 'SLA Co');
    org = { token: owner.token, orgId: owner.orgId, id: owner.id };
    other = await signUpWithOrg(t, 'sla-other@example.com', 'Other Co');
    await verifiedDomain(t, org.token, 'support.test', [dns]);
    await ok('POST', '/v1/mailboxes', { address: 'help@support.test' }, 201);
    await ok('PUT', `/v1/helpdesk/agents/${org.id}`, { role: 'supervisor' });
    desk = await ok('POST', '/v1/helpdesk/desks', { name: 'Support', addresses: ['help@support.test'] }, 201);
    team = await ok('POST', '/v1/helpdesk/teams', { name: 'Escalations' }, 201);
    calendar = await ok(
      'POST',
      '/v1/helpdesk/calendars',
      {
        name: 'Berlin office',
        time_zone: 'Europe/Berlin',
        hours: [1, 2, 3, 4, 5].map((day) => ({ day, start: '09:00', end: '17:00' })),
        holidays: ['2027-01-11'],
      },
      201,
    );
    // Urgent tickets: 24/7, warned at half the target. Everything else: business hours, 80 %.
    urgent = await ok(
      'POST',
      '/v1/helpdesk/sla-policies',
      {
        name: 'Urgent',
        position: 0,
        conditions: { priorities: ['urgent'] },
        targets: { first_response: 60, resolution: 480 },
        calendar_id: null,
        warn_at: 0.5,
      },
      201,
    );
    standard = await ok(
      'POST',
      '/v1/helpdesk/sla-policies',
      {
        name: 'Standard',
        position: 1,
        targets: { first_response: 240, next_response: 120, resolution: 960 },
        calendar_id: calendar.id,
        warn_at: 0.8,
        escalations: [
          { at: 'warning', target: 'first_response', actions: [{ type: 'notify_teams' }] },
          {
            at: 'breach',
            target: 'first_response',
            actions: [
              { type: 'raise_priority' },
              { type: 'reassign', team_id: team.id, assignee_id: org.id },
              { type: 'notify_email', to: ['lead@customer.test'] },
              { type: 'notify_teams' },
            ],
          },
        ],
      },
      201,
    );
    // The second instance is the same installation (settings, secret key), as a second worker host is.
    if (engine === 'postgres')
      second = await startTestApp({ databaseUrl: t.env.DATABASE_URL, workers: true, clock, env: t.env });
  });
  after(async () => {
    await second?.close();
    await t?.close();
    await outside?.close();
    await dns?.close();
  });

  test('a ticket opened Friday 16:00 is due after the holiday Monday, counted in business hours', async () => {
    t1 = await openTicket('Printer on fire', 'alice@customer.test');
    const sla = await slaOf(t1.id);
    assert.equal(sla.policy.name, 'Standard');
    assert.equal(sla.paused, false);
    const first = timer(sla, 'first_response');
    assert.equal(first.state, 'running');
    assert.equal(first.target_minutes, 240);
    // 1 h on Friday, Monday is a holiday, 3 h on Tuesday: Tuesday 12:00 Berlin.
    assert.equal(first.due_at, '2027-01-12T11:00:00.000Z');
    // 80 % = 192 min: 60 on Friday, 132 on Tuesday → 11:12 Berlin.
    assert.equal(first.warn_at, '2027-01-12T10:12:00.000Z');
    // 16 h: 1 on Friday, 8 on Tuesday, 7 on Wednesday → Wednesday 16:00 Berlin.
    assert.equal(timer(sla, 'resolution').due_at, '2027-01-13T15:00:00.000Z');
    assert.equal(timer(sla, 'next_response'), undefined, 'no next response before the first');

    // The weekend and the holiday count nothing.
    clock.set('2027-01-12T08:00:00Z'); // Tuesday 09:00 Berlin
    assert.equal(timer(await slaOf(t1.id), 'first_response').elapsed_minutes, 60);
    clock.set('2027-01-12T10:00:00Z'); // 11:00
    await sweep();
    assert.equal(timer(await slaOf(t1.id), 'first_response').elapsed_minutes, 180);
    assert.equal((await slaEvents('ticket.sla_warning', t1.id, 'first_response')).length, 0);
  });

  test('the warning fires at 80 % once; the breach escalates once with two sweepers at the same time', async () => {
    clock.set('2027-01-12T10:15:00Z');
    await sweep();
    await sweep();
    const warnings = await slaEvents('ticket.sla_warning', t1.id, 'first_response');
    assert.equal(warnings.length, 1);
    assert.deepEqual(warnings[0].data.escalation, { actions: ['notify_teams'], notify_teams: true });
    assert.equal(warnings[0].data.sla.policy_name, 'Standard');
    assert.equal(warnings[0].data.sla.due_at, '2027-01-12T11:00:00.000Z');
    assert.equal(warnings[0].data.ticket.number, t1.number);
    assert.equal(warnings[0].data.ticket.subject, 'Printer on fire');
    assert.equal((await slaEvents('ticket.sla_breached', t1.id, 'first_response')).length, 0);

    clock.set('2027-01-12T11:01:00Z');
    const sweepers = second ? [t.app, second.app] : [t.app, t.app];
    const results = await Promise.all(
      [...sweepers, ...sweepers].map((app) => app.services.helpdeskSla.sweep()),
    );
    assert.equal(
      results.reduce((n, r) => n + r.breaches, 0) <= 1,
      true,
      'no two sweeps fired the same breach',
    );
    const breaches = await slaEvents('ticket.sla_breached', t1.id, 'first_response');
    assert.equal(breaches.length, 1);
    const breach = breaches[0].data;
    assert.deepEqual(breach.escalation.actions, [
      'raise_priority',
      'reassign',
      'notify_email',
      'notify_teams',
    ]);
    assert.equal(breach.ticket.priority, 'high', 'the event shows the ticket after the steps');
    assert.equal(breach.ticket.team_id, team.id);

    const ticket = await ok('GET', `/v1/tickets/${t1.id}`);
    assert.equal(ticket.priority, 'high');
    assert.equal(ticket.team_id, team.id);
    assert.equal(ticket.assignee_id, org.id);
    const updates = (await eventsOf(t, org, 'ticket.updated')).filter(
      (e: any) => e.data.ticket.id === t1.id && e.data.actor.type === 'system',
    );
    assert.equal(updates.length, 1, 'one escalation change');
    assert.deepEqual(updates[0].data.changes.priority, ['normal', 'high']);
    const sla = await slaOf(t1.id);
    assert.equal(sla.breached, true);
    assert.equal(timer(sla, 'first_response').breached, true);
    assert.equal(timer(sla, 'first_response').breached_at, '2027-01-12T11:01:00.000Z');
    assert.equal(sla.policy.name, 'Standard', 'high is still the standard policy');

    // The escalation mail, from the desk, once.
    const mails = await until(
      async () => outside.messages.filter((m) => m.rcptTo.includes('lead@customer.test')),
      (list) => list.length >= 1,
      20_000,
    );
    const mail = await simpleParser(mails[0]!.raw);
    assert.equal(mail.from!.value[0]!.address, 'help@support.test');
    assert.equal(mail.subject, `[SLA breached] #${t1.number} Printer on fire`);
    assert.match(mail.text!, /first response target of ticket #\d+ was missed/);

    await sweep();
    assert.equal((await slaEvents('ticket.sla_breached', t1.id, 'first_response')).length, 1);
    assert.equal(outside.messages.filter((m) => m.rcptTo.includes('lead@customer.test')).length, 1);

    // The agent answers late: the first response is met (late), nothing fires again.
    clock.set('2027-01-12T11:30:00Z');
    await ok('POST', `/v1/tickets/${t1.id}/comments`, { body: 'On it.', visibility: 'public' }, 201);
    const answered = timer(await slaOf(t1.id), 'first_response');
    assert.equal(answered.state, 'met');
    assert.equal(answered.met_at, '2027-01-12T11:30:00.000Z');
    assert.equal(answered.elapsed_minutes, 270);
    assert.equal(answered.remaining_minutes, -30);
  });

  test('pending pauses the clock; the customer’s mail resumes it and starts the next-response target', async () => {
    clock.set('2027-01-12T12:00:00Z'); // Tuesday 13:00 Berlin
    t2 = await openTicket('VPN down', 'bob@customer.test');
    clock.set('2027-01-12T12:30:00Z');
    const reply = await ok(
      'POST',
      `/v1/tickets/${t2.id}/comments`,
      { body: 'Which client?', visibility: 'public' },
      201,
    );
    let sla = await slaOf(t2.id);
    assert.equal(timer(sla, 'first_response').state, 'met');
    assert.equal(timer(sla, 'first_response').elapsed_minutes, 30);
    assert.equal(timer(sla, 'first_response').breached, false);

    clock.set('2027-01-12T13:00:00Z'); // 14:00: waiting on the customer
    await ok('PATCH', `/v1/tickets/${t2.id}`, { status: 'pending' });
    sla = await slaOf(t2.id);
    assert.equal(sla.paused, true);
    assert.equal(timer(sla, 'resolution').state, 'paused');
    assert.equal(timer(sla, 'resolution').due_at, null);

    // Without the pause the resolution (16 h from Tuesday 13:00) was due Thursday 13:00 Berlin.
    clock.set('2027-01-14T13:00:00Z'); // Thursday 14:00 Berlin
    await sweep();
    sla = await slaOf(t2.id);
    assert.equal(timer(sla, 'resolution').elapsed_minutes, 60, 'two days pending counted nothing');
    assert.equal(timer(sla, 'resolution').warned, false);
    assert.equal((await slaEvents('ticket.sla_warning', t2.id, 'resolution')).length, 0);

    // The customer answers by mail: the ticket reopens, the clock runs again.
    await sendMail(t.smtpPort, {
      from: 'bob@customer.test',
      to: 'help@support.test',
      subject: `Re: [#${t2.number}] VPN down`,
      text: 'The Windows one.',
      inReplyTo: `<${reply.message_id_header}>`,
    });
    sla = await until(
      async () => {
        await t.app.services.helpdeskIntake.drain();
        return slaOf(t2.id);
      },
      (s) => s.paused === false,
      20_000,
    );
    assert.equal((await ok('GET', `/v1/tickets/${t2.id}`)).status, 'open');
    // 900 minutes left from Thursday 14:00: 3 h Thursday, 8 h Friday, 4 h Monday → Monday 13:00 Berlin.
    assert.equal(timer(sla, 'resolution').state, 'running');
    assert.equal(timer(sla, 'resolution').due_at, '2027-01-18T12:00:00.000Z');
    const next = timer(sla, 'next_response');
    assert.equal(next.state, 'running');
    assert.equal(next.started_at, '2027-01-14T13:00:00.000Z');
    assert.equal(next.due_at, '2027-01-14T15:00:00.000Z'); // 16:00 Berlin
    assert.equal(next.warn_at, '2027-01-14T14:36:00.000Z'); // 96 min

    // Missed while nobody swept: the warning and the breach both fire, once each, with no steps.
    clock.set('2027-01-14T15:01:00Z');
    await Promise.all([sweep(), sweep()]);
    const warned = await slaEvents('ticket.sla_warning', t2.id, 'next_response');
    const breached = await slaEvents('ticket.sla_breached', t2.id, 'next_response');
    assert.equal(warned.length, 1);
    assert.equal(breached.length, 1);
    assert.deepEqual(breached[0].data.escalation, { actions: [], notify_teams: false });
    assert.equal((await ok('GET', `/v1/tickets/${t2.id}`)).priority, 'normal', 'no step for next response');

    // The agent answers and resolves: next response and resolution are met.
    clock.set('2027-01-14T15:30:00Z');
    await ok('POST', `/v1/tickets/${t2.id}/comments`, { body: 'Fixed.', visibility: 'public' }, 201);
    await ok('PATCH', `/v1/tickets/${t2.id}`, { status: 'resolved' });
    sla = await slaOf(t2.id);
    assert.equal(timer(sla, 'next_response').state, 'met');
    assert.equal(timer(sla, 'resolution').state, 'met');
    assert.equal(timer(sla, 'resolution').breached, false);
    assert.equal(timer(sla, 'resolution').elapsed_minutes, 60 + 150);
  });

  test('a priority change picks another policy: time counted so far stays counted', async () => {
    clock.set('2027-01-16T18:00:00Z'); // Saturday 19:00 Berlin
    const t3 = await openTicket('Site down', 'carol@customer.test', { priority: 'urgent' });
    let sla = await slaOf(t3.id);
    assert.equal(sla.policy.name, 'Urgent');
    assert.equal(timer(sla, 'first_response').due_at, '2027-01-16T19:00:00.000Z', '24/7');
    assert.equal(timer(sla, 'first_response').warn_at, '2027-01-16T18:30:00.000Z', 'at half');
    assert.equal(timer(sla, 'next_response'), undefined);

    clock.set('2027-01-16T18:10:00Z');
    await ok('PATCH', `/v1/tickets/${t3.id}`, { priority: 'normal' });
    sla = await slaOf(t3.id);
    assert.equal(sla.policy.id, standard.id);
    const first = timer(sla, 'first_response');
    assert.equal(first.target_minutes, 240);
    assert.equal(first.elapsed_minutes, 10);
    // 230 business minutes left from Saturday evening: Monday 09:00 + 3 h 50 → 12:50 Berlin.
    assert.equal(first.due_at, '2027-01-18T11:50:00.000Z');
    assert.equal(first.calendar_id, calendar.id);

    // Back to urgent: 10 min counted 24/7, the weekend not; 50 min left from now.
    clock.set('2027-01-16T19:00:00Z');
    await ok('PATCH', `/v1/tickets/${t3.id}`, { priority: 'urgent' });
    sla = await slaOf(t3.id);
    assert.equal(sla.policy.id, urgent.id);
    assert.equal(timer(sla, 'first_response').due_at, '2027-01-16T19:50:00.000Z');
    assert.equal(timer(sla, 'first_response').warned, false);
  });

  test('changing a calendar moves running timers; a policy without matching tickets changes nothing', async () => {
    clock.set('2027-01-18T08:00:00Z'); // Monday 09:00 Berlin
    const t4 = await openTicket('Invoice', 'dave@customer.test');
    assert.equal(timer(await slaOf(t4.id), 'first_response').due_at, '2027-01-18T12:00:00.000Z');
    await ok('PATCH', `/v1/helpdesk/calendars/${calendar.id}`, { holidays: ['2027-01-11', '2027-01-18'] });
    // Monday became a holiday: four hours from Tuesday 09:00.
    assert.equal(timer(await slaOf(t4.id), 'first_response').due_at, '2027-01-19T12:00:00.000Z');
    await ok('PATCH', `/v1/helpdesk/calendars/${calendar.id}`, { holidays: ['2027-01-11'] });
    assert.equal(timer(await slaOf(t4.id), 'first_response').due_at, '2027-01-18T12:00:00.000Z');
  });

  test('bad input is a 4xx; other organisations see 404; API keys need the helpdesk scopes', async () => {
    const hours = [{ day: 1, start: '09:00', end: '17:00' }];
    const bad = async (url: string, body: unknown, status: number, pattern?: RegExp) => {
      const res = await api('POST', url, body);
      assert.equal(res.status, status, `${url} ${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
      if (pattern) assert.match(res.body.detail, pattern);
    };
    await bad('/v1/helpdesk/calendars', { name: 'x', time_zone: 'Mars/Olympus', hours }, 422, /time zone/);
    await bad(
      '/v1/helpdesk/calendars',
      { name: 'x', time_zone: 'UTC', hours: [{ day: 1, start: '17:00', end: '09:00' }] },
      422,
      /not after/,
    );
    await bad(
      '/v1/helpdesk/calendars',
      { name: 'x', time_zone: 'UTC', hours: [{ day: 9, start: '09:00', end: '17:00' }] },
      400,
    );
    await bad(
      '/v1/helpdesk/calendars',
      { name: 'x', time_zone: 'UTC', hours, holidays: ['2027-02-30'] },
      422,
      /not a date/,
    );
    await bad('/v1/helpdesk/calendars', { name: 'Berlin office', time_zone: 'UTC', hours }, 409);
    const policy = (extra: Record<string, unknown>) => ({
      name: 'p',
      targets: { first_response: 60 },
      ...extra,
    });
    await bad('/v1/helpdesk/sla-policies', { name: 'p', targets: {} }, 422, /at least one/);
    await bad(
      '/v1/helpdesk/sla-policies',
      policy({ calendar_id: crypto.randomUUID() }),
      422,
      /no such calendar/,
    );
    await bad('/v1/helpdesk/sla-policies', policy({ warn_at: 1.5 }), 400);
    await bad('/v1/helpdesk/sla-policies', policy({ targets: { first_response: 0 } }), 400);
    await bad(
      '/v1/helpdesk/sla-policies',
      policy({ conditions: { category_ids: [crypto.randomUUID()] } }),
      422,
      /no such category/,
    );
    await bad(
      '/v1/helpdesk/sla-policies',
      policy({ escalations: [{ at: 'breach', target: 'any', actions: [{ type: 'reassign' }] }] }),
      422,
      /assignee_id or team_id/,
    );
    await bad(
      '/v1/helpdesk/sla-policies',
      policy({
        escalations: [
          { at: 'breach', target: 'any', actions: [{ type: 'reassign', team_id: crypto.randomUUID() }] },
        ],
      }),
      422,
      /no such team/,
    );
    await bad(
      '/v1/helpdesk/sla-policies',
      policy({
        escalations: [{ at: 'breach', target: 'resolution', actions: [{ type: 'raise_priority' }] }],
      }),
      422,
      /no resolution target/,
    );
    await bad(
      '/v1/helpdesk/sla-policies',
      policy({
        escalations: [
          { at: 'breach', target: 'any', actions: [{ type: 'notify_email', to: ['not an address'] }] },
        ],
      }),
      400,
    );
    await bad(
      '/v1/helpdesk/sla-policies',
      policy({
        escalations: [{ at: 'warning', target: 'any', actions: [{ type: 'notify_teams' }] }],
        warn_at: null,
      }),
      422,
      /no warning/,
    );
    await bad('/v1/helpdesk/sla-policies', { ...policy({}), name: 'Standard' }, 409);
    assert.equal((await api('DELETE', `/v1/helpdesk/calendars/${calendar.id}`)).status, 409, 'in use');

    // Another organisation: nothing of ours exists for it, and our calendar cannot be named in its policies.
    assert.equal((await api('GET', `/v1/helpdesk/calendars/${calendar.id}`, undefined, other)).status, 404);
    assert.equal(
      (await api('PATCH', `/v1/helpdesk/sla-policies/${standard.id}`, { warn_at: 0.5 }, other)).status,
      404,
    );
    assert.equal(
      (await api('DELETE', `/v1/helpdesk/sla-policies/${standard.id}`, undefined, other)).status,
      404,
    );
    assert.equal((await api('GET', `/v1/tickets/${t1.id}/sla`, undefined, other)).status, 404);
    assert.equal(
      (await api('POST', '/v1/helpdesk/sla-policies', policy({ calendar_id: calendar.id }), other)).status,
      422,
    );
    assert.equal((await ok('GET', '/v1/helpdesk/sla-policies', undefined, 200, other)).total, 0);
    const ours = await ok('GET', '/v1/helpdesk/sla-policies');
    assert.deepEqual(
      ours.items.map((p: any) => p.name),
      ['Urgent', 'Standard'],
    );
    assert.equal(ours.items[1].warn_at, 0.8);

    const key = await ok(
      'POST',
      `/v1/organizations/${org.orgId}/api-keys`,
      { name: 'sla', scopes: ['helpdesk:read', 'tickets:read'] },
      201,
    );
    const asKey = { token: key.key, orgId: org.orgId };
    assert.equal((await api('GET', '/v1/helpdesk/calendars', undefined, asKey)).status, 200);
    assert.equal((await api('GET', `/v1/tickets/${t1.id}/sla`, undefined, asKey)).status, 200);
    assert.equal(
      (await api('POST', '/v1/helpdesk/calendars', { name: 'k', time_zone: 'UTC', hours }, asKey)).status,
      403,
    );
    assert.equal(
      (await api('PATCH', `/v1/helpdesk/sla-policies/${standard.id}`, { warn_at: 0.5 }, asKey)).status,
      403,
    );

    // A policy that is deleted stops its timers; its tickets have no policy until one is chosen again.
    const temp = await ok(
      'POST',
      '/v1/helpdesk/sla-policies',
      { name: 'Low', position: 0, conditions: { priorities: ['low'] }, targets: { resolution: 30 } },
      201,
    );
    const low = await openTicket('Typo', 'erin@customer.test', { priority: 'low' });
    assert.equal((await slaOf(low.id)).policy.name, 'Low');
    await ok('DELETE', `/v1/helpdesk/sla-policies/${temp.id}`, undefined, 204);
    const gone = await slaOf(low.id);
    assert.equal(gone.policy, null);
    assert.deepEqual(gone.timers, []);
    await ok('PATCH', `/v1/tickets/${low.id}`, { priority: 'normal' });
    assert.equal((await slaOf(low.id)).policy.name, 'Standard');
  });
});
