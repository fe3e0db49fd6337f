// Helpdesk templates and automation through the public surface: Liquid templates previewed against a
// real ticket; rules on ticket creation (assign, tag, set fields; a failing action logged), on a
// customer's mail (a templated reply that reaches the customer's MX with its fields filled), two rules
// that would ping-pong forever and a chain that runs too deep (both stopped and logged), a time rule on a
// simulated clock (pending three days → closed, a Teams notification, once per window); bad input on
// every endpoint and isolation between organisations.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import { engine, eventsOf, type Org, signUpWithOrg, startTestApp, type TestApp } from '../../support/app.ts';
import { startDnsServer, type TestDnsServer } from '../../support/dns-server.ts';
import { verifiedDomain } from '../../support/domains.ts';
import { type SmtpSink, startSmtpSink } from '../../support/smtp-sink.ts';
import { sendMail } from '../../support/smtp.ts';
import { until } from '../../support/until.ts';
import { ManualClock } from '../../../src/core/clock.ts';

const HOUR = 3_600_000;

describe(`helpdesk automation on ${engine}`, () => {
  let t: TestApp;
  let dns: TestDnsServer;
  let outside: SmtpSink;
  let org: Org & { id: string };
  let other: Org & { id: string };
  let desk: any;
  const clock = new ManualClock();

  const api = (method: string, url: string, body?: unknown, as: Org = org) =>
    t.call(method, url, { token: as.token, body });
  const ok = async (method: string, url: string, body?: unknown, status = 200, as: Org = org) => {
    const res = await api(method, url, body, as);
    assert.equal(res.status, status, `${method} ${url}: ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const refused = async (method: string, url: string, body: unknown, status: number, as: Org = org) => {
    const res = await api(method, url, body, as);
    assert.equal(res.status, status, `${method} ${url} ${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const newTicket = (subject: string, extra: Record<string, unknown> = {}) =>
    ok(
      'POST',
      '/v1/tickets',
      {
        desk_id: desk.id,
        subject,
        requester: { email: 'dora@customer.test', name: 'Dora Explorer' },
        body: 'Hello',
        ...extra,
      },
      201,
    );
  const rule = (body: Record<string, unknown>) => ok('POST', '/v1/helpdesk/automations', body, 201);
  /** The rule's runs (newest first), once `check` holds. */
  const runsOf = (ruleId: string, check: (runs: any[]) => boolean, ticketId?: string) =>
    until(
      async () =>
        (
          await ok(
            'GET',
            `/v1/helpdesk/automations/${ruleId}/runs?page_size=200${ticketId ? `&ticket_id=${ticketId}` : ''}`,
          )
        ).items as any[],
      check,
      20_000,
    );
  const ticket = (id: string) => ok('GET', `/v1/tickets/${id}`);

  before(async () => {
    dns = await startDnsServer();
    outside = await startSmtpSink();
    for (const domain of ['customer.test', 'example.com']) {
      dns.set(domain, { MX: [{ exchange: `mx.${domain}`, priority: 10 }] });
      dns.set(`mx.${domain}`, { A: ['127.0.0.1'] });
    }
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
    const owner = await signUpWithOrg(t, 'automation-owner@example.com', 'Support Co');
    org = { token: owner.token, orgId: owner.orgId, id: owner.id };
    const stranger = await signUpWithOrg(t, 'automation-other@example.com', 'Other Co');
    other = { token: stranger.token, orgId: stranger.orgId, id: stranger.id };
    await verifiedDomain(t, org.token, 'support.test', [dns]);
    await ok('POST', '/v1/mailboxes', { address: 'help@support.test' }, 201);
    await ok('PUT', `/v1/helpdesk/agents/${org.id}`, { role: 'supervisor' });
    desk = await ok(
      'POST',
      '/v1/helpdesk/desks',
      {
        name: 'Support',
        addresses: ['help@support.test'],
        auto_reply: false,
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

  test('templates are checked when saved and previewed against a real ticket', async () => {
    const body =
      'Hi {{ requester.first_name }},\n{{ agent.email }} here about {{ ticket.tagged_subject }} ({{ ticket.priority }}, plan {{ ticket.custom_fields.plan | default: "none" }}).\n{{ desk.name }} <{{ desk.address }}>';
    const template = await ok(
      'POST',
      '/v1/helpdesk/templates',
      { name: 'Greeting', subject: 'About {{ ticket.subject | upcase }}', body },
      201,
    );
    const found = await newTicket('Printer jam', { priority: 'high', custom_fields: { plan: 'pro' } });
    const preview = await ok('POST', `/v1/helpdesk/templates/${template.id}/preview`, {
      ticket_id: found.id,
    });
    assert.equal(preview.subject, 'About PRINTER JAM');
    assert.equal(
      preview.body,
      `Hi Dora,\nautomation-owner@example.com here about [#${found.number}] Printer jam (high, plan pro).\nSupport <help@support.test>`,
    );
    // A draft renders the same way; a template that cannot parse is refused when saved or previewed.
    const draft = await ok('POST', '/v1/helpdesk/templates/preview', {
      body: '{{ requester.email }}',
      ticket_id: found.id,
    });
    assert.deepEqual(draft, { subject: null, body: 'dora@customer.test' });
    const bad = await refused('POST', '/v1/helpdesk/templates', { name: 'Broken', body: 'Hi {% if %}' }, 422);
    assert.match(bad.detail, /body: not a valid Liquid template/);
    await refused(
      'POST',
      '/v1/helpdesk/templates',
      { name: 'Filter', body: '{{ x | no_such_filter }}' },
      422,
    );
    await refused(
      'POST',
      '/v1/helpdesk/templates',
      { name: 'Files', body: '{% include "/etc/passwd" %}' },
      422,
    );
    await refused('PATCH', `/v1/helpdesk/templates/${template.id}`, { subject: '{{ oops' }, 422);
    const renamed = await ok('PATCH', `/v1/helpdesk/templates/${template.id}`, { name: 'Greeting 2' });
    assert.equal(renamed.body, body);
    assert.equal((await ok('GET', '/v1/helpdesk/templates')).total, 1);
  });

  test('a creation rule assigns, tags and sets fields; one that cannot act is logged as failed', async () => {
    const triage = await rule({
      name: 'Invoices to the owner',
      trigger: 'ticket.created',
      conditions: [
        { field: 'subject', op: 'contains', value: 'invoice' },
        { field: 'requester_email', op: 'equals', value: 'DORA@customer.test' },
      ],
      actions: [
        { type: 'assign', assignee_id: org.id },
        { type: 'add_tags', tags: ['Billing'] },
        { type: 'set_fields', priority: 'urgent', custom_fields: { plan: 'pro' } },
      ],
    });
    const broken = await rule({
      name: 'Undefined field',
      trigger: 'ticket.created',
      position: 5,
      conditions: [{ field: 'subject', op: 'contains', value: 'invoice' }],
      actions: [{ type: 'set_fields', custom_fields: { region: 'eu' } }],
    });
    const matching = await newTicket('Invoice 42 is wrong');
    const other = await newTicket('Password reset');
    const [run] = await runsOf(triage.id, (r) => r.length >= 1, matching.id);
    assert.equal(run.outcome, 'applied');
    assert.equal(run.matched, true);
    assert.equal(run.trigger, 'ticket.created');
    assert.equal(run.ticket_number, matching.number);
    assert.equal(run.depth, 0);
    assert.deepEqual(
      run.actions.map((a: any) => a.type),
      ['assign', 'add_tags', 'set_fields'],
    );
    const after1 = await ticket(matching.id);
    assert.equal(after1.assignee_id, org.id);
    assert.deepEqual(after1.tags, ['billing']);
    assert.equal(after1.priority, 'urgent');
    assert.deepEqual(after1.custom_fields, { plan: 'pro' });
    const updates = await until(
      () => eventsOf(t, org, 'ticket.updated'),
      (e) => e.some((x: any) => x.data.ticket.id === matching.id),
    );
    const byRule = updates.find((x: any) => x.data.ticket.id === matching.id);
    assert.deepEqual(byRule.data.actor, { type: 'automation', id: triage.id, depth: 1 });

    const [skipped] = await runsOf(triage.id, (r) => r.length >= 1, other.id);
    assert.equal(skipped.outcome, 'not_matched');
    assert.equal(skipped.matched, false);
    assert.equal((await ticket(other.id)).assignee_id, null);

    const [failed] = await runsOf(broken.id, (r) => r.length >= 1, matching.id);
    assert.equal(failed.outcome, 'failed');
    assert.match(failed.error, /custom_fields\.region/);
  });

  test('a customer’s mail gets a templated reply that reaches the customer with its fields filled', async () => {
    const template = await ok(
      'POST',
      '/v1/helpdesk/templates',
      {
        name: 'Got it',
        body: 'Hello {{ requester.first_name }}, we got your message about "{{ ticket.subject }}" (ticket {{ ticket.number }}). {{ agent.email }} will answer.\n{{ desk.name }}',
      },
      201,
    );
    const replier = await rule({
      name: 'Answer customers',
      trigger: 'ticket.commented',
      conditions: [
        { field: 'comment.author_type', op: 'equals', value: 'customer' },
        { field: 'comment.body', op: 'contains', value: 'urgent' },
      ],
      actions: [
        { type: 'reply_template', template_id: template.id },
        { type: 'assign', assignee_id: org.id },
      ],
    });
    await sendMail(t.smtpPort, {
      from: 'Carol Customer <carol@customer.test>',
      to: 'help@support.test',
      subject: 'Order 77 missing',
      text: 'Where is my order?',
    });
    const [opened] = await until(
      async () => (await ok('GET', '/v1/tickets?q=carol%40customer.test')).items as any[],
      (items) => items.length === 1,
    );
    await sendMail(t.smtpPort, {
      from: 'carol@customer.test',
      to: 'help@support.test',
      subject: `Re: [#${opened.number}] Order 77 missing`,
      text: 'This is urgent, please.',
    });
    // The run is complete once its reply has gone (comments come after the rule's field changes).
    const runs = await runsOf(replier.id, (r) => r.some((x) => x.actions.length === 2), opened.id);
    const applied = runs.find((x) => x.outcome === 'applied');
    assert.deepEqual(
      applied.actions.map((a: any) => a.type),
      ['assign', 'reply_template'],
    );
    const [mail] = await until(
      async () =>
        Promise.all(
          outside.messages
            .filter((m) => m.rcptTo.includes('carol@customer.test'))
            .map((m) => simpleParser(m.raw)),
        ),
      (list) => list.length >= 1,
    );
    assert.equal(mail!.subject, `Re: [#${opened.number}] Order 77 missing`);
    assert.equal(mail!.from!.value[0]!.address, 'help@support.test');
    assert.equal(
      mail!.text!.trim(),
      `Hello Carol, we got your message about "Order 77 missing" (ticket ${opened.number}). automation-owner@example.com will answer.\nSupport`,
    );
    const comments = (await ok('GET', `/v1/tickets/${opened.id}/comments`)).items;
    const reply = comments.find((c: any) => c.id === applied.actions[1].comment_id);
    assert.equal(reply.author_type, 'system');
    assert.equal(reply.visibility, 'public');
    // The reply is a comment too, but not a customer's: the rule does not answer itself.
    await runsOf(replier.id, (r) => r.filter((x) => x.outcome === 'not_matched').length >= 1, opened.id);
    // The comments job run again (a worker that died after the send): no second comment, no second mail.
    const mailsBefore = outside.messages.filter((m) => m.rcptTo.includes('carol@customer.test')).length;
    await t.app.services.helpdeskAutomation.runComments({
      run_id: applied.id,
      organization_id: org.orgId,
      rule_id: replier.id,
      ticket_id: opened.id,
      depth: 1,
      chain: [replier.id],
      taken: [applied.actions[0]],
      comments: [{ type: 'reply_template', comment_id: reply.id, template_id: template.id }],
    });
    assert.equal((await ok('GET', `/v1/tickets/${opened.id}/comments`)).total, comments.length);
    assert.equal(
      outside.messages.filter((m) => m.rcptTo.includes('carol@customer.test')).length,
      mailsBefore,
    );

    // An agent can send the same template by hand.
    const sent = await ok(
      'POST',
      `/v1/tickets/${opened.id}/reply-with-template`,
      { template_id: template.id },
      201,
    );
    assert.equal(sent.visibility, 'public');
    assert.ok(sent.message_id_header);
    assert.match(sent.body, /^Hello Carol,/);
  });

  test('rules that would loop are stopped and logged: a ping-pong pair and a chain too deep', async () => {
    const ping = await rule({
      name: 'Ping',
      trigger: 'ticket.updated',
      conditions: [{ field: 'tags', op: 'changed_to', value: 'ping' }],
      actions: [
        { type: 'remove_tags', tags: ['ping'] },
        { type: 'add_tags', tags: ['pong'] },
      ],
    });
    const pong = await rule({
      name: 'Pong',
      trigger: 'ticket.updated',
      conditions: [{ field: 'tags', op: 'changed_to', value: 'pong' }],
      actions: [
        { type: 'remove_tags', tags: ['pong'] },
        { type: 'add_tags', tags: ['ping'] },
      ],
    });
    const table = await newTicket('Ping pong');
    await ok('PATCH', `/v1/tickets/${table.id}`, { add_tags: ['ping'] });
    // Ping acts on the agent's change, Pong on Ping's; Ping would act on Pong's, but it already acted in
    // this chain. Every event of the chain has been evaluated once both rules logged the last one.
    const pingRuns = await runsOf(ping.id, (r) => r.some((x) => x.outcome === 'loop_stopped'), table.id);
    const pongRuns = await runsOf(pong.id, (r) => r.length >= 3, table.id);
    assert.deepEqual(pingRuns.map((r) => [r.outcome, r.depth]).reverse(), [
      ['applied', 0],
      ['not_matched', 1],
      ['loop_stopped', 2],
    ]);
    assert.match(pingRuns[0].error, /already acted on this ticket in this chain/);
    assert.deepEqual(pingRuns[0].chain, [ping.id, pong.id]);
    assert.deepEqual(pongRuns.map((r) => [r.outcome, r.depth]).reverse(), [
      ['not_matched', 0],
      ['applied', 1],
      ['not_matched', 2],
    ]);
    assert.deepEqual((await ticket(table.id)).tags, ['ping']);
    const changes = (await eventsOf(t, org, 'ticket.updated')).filter(
      (e: any) => e.data.ticket.id === table.id,
    );
    assert.deepEqual(changes.map((e: any) => [e.data.actor.type, e.data.actor.depth]).reverse(), [
      ['user', 0],
      ['automation', 1],
      ['automation', 2],
    ]);
    for (const r of [ping, pong]) await ok('PATCH', `/v1/helpdesk/automations/${r.id}`, { enabled: false });

    // Four different rules in a row: the fourth would act on a change made three rules deep.
    const steps = ['a', 'b', 'c', 'd', 'e'];
    const chain = [];
    for (let i = 0; i < 4; i++)
      chain.push(
        await rule({
          name: `Step ${steps[i]}`,
          trigger: 'ticket.updated',
          conditions: [{ field: 'tags', op: 'changed_to', value: `step-${steps[i]}` }],
          actions: [{ type: 'add_tags', tags: [`step-${steps[i + 1]}`] }],
        }),
      );
    const deep = await newTicket('Deep chain');
    await ok('PATCH', `/v1/tickets/${deep.id}`, { add_tags: ['step-a'] });
    const [stopped] = await runsOf(chain[3].id, (r) => r.some((x) => x.outcome !== 'not_matched'), deep.id);
    assert.equal(stopped.outcome, 'loop_stopped');
    assert.equal(stopped.depth, 3);
    assert.match(stopped.error, /rules act up to 3 deep/);
    assert.deepEqual((await ticket(deep.id)).tags, ['step-a', 'step-b', 'step-c', 'step-d']);
    for (const r of chain) await ok('PATCH', `/v1/helpdesk/automations/${r.id}`, { enabled: false });

    // Whatever the chains, a rule acts on one ticket at most ten times an hour.
    const busy = await rule({
      name: 'Busy',
      trigger: 'ticket.updated',
      conditions: [{ field: 'priority', op: 'changed' }],
      actions: [{ type: 'add_tags', tags: ['touched'] }],
    });
    const flapping = await newTicket('Flapping');
    for (let i = 0; i < 11; i++)
      await ok('PATCH', `/v1/tickets/${flapping.id}`, { priority: i % 2 ? 'low' : 'high' });
    // Eleven agent changes (depth 0) evaluated; the rule's own tag changes (depth 1) match nothing.
    const busyRuns = await runsOf(busy.id, (r) => r.filter((x) => x.depth === 0).length >= 11, flapping.id);
    assert.equal(busyRuns.filter((r) => r.outcome === 'applied').length, 10);
    const capped = busyRuns.find((r) => r.outcome === 'loop_stopped');
    assert.match(capped.error, /acted on this ticket 10 times in the last hour/);
    await ok('PATCH', `/v1/helpdesk/automations/${busy.id}`, { enabled: false });
  });

  test('a time rule closes tickets pending for three days, once per window, on a simulated clock', async () => {
    const closer = await rule({
      name: 'Close stale pending',
      trigger: 'time',
      conditions: [
        { field: 'status', op: 'equals', value: 'pending' },
        { field: 'hours_since_update', op: 'gte', value: 72 },
        { field: 'tags', op: 'contains', value: 'waiting' },
      ],
      actions: [
        { type: 'note', body: 'Closed after {{ ticket.status }} for 3 days without an answer.' },
        { type: 'close' },
        { type: 'notify_teams', message: 'Closed #{{ ticket.number }} for {{ requester.email }}' },
      ],
    });
    const stale = await newTicket('Waiting for the customer', { tags: ['waiting'] });
    const open = await newTicket('Still open', { tags: ['waiting'] });
    const untagged = await newTicket('Pending, not waiting');
    await ok('PATCH', `/v1/tickets/${stale.id}`, { status: 'pending' });
    await ok('PATCH', `/v1/tickets/${untagged.id}`, { status: 'pending' });
    const automation = t.app.services.helpdeskAutomation;
    const runs = async () => (await ok('GET', `/v1/helpdesk/automations/${closer.id}/runs`)).items as any[];

    clock.advance(71 * HOUR); // pending for 71 hours: not yet
    await automation.sweep();
    assert.equal((await ticket(stale.id)).status, 'pending');
    assert.deepEqual(await runs(), []);
    clock.advance(2 * HOUR); // 73 hours
    await automation.sweep();
    assert.equal((await ticket(stale.id)).status, 'closed');
    assert.equal((await ticket(open.id)).status, 'open', 'not pending');
    assert.equal((await ticket(untagged.id)).status, 'pending', 'not tagged');
    // The note comes from the comments job queued with the run.
    const [run] = await until(runs, (list) => list[0]?.actions.length === 3);
    assert.equal(run.outcome, 'applied');
    assert.equal(run.trigger, 'time');
    assert.equal(run.ticket_id, stale.id);
    assert.equal(run.event_id, null);
    assert.deepEqual(
      run.actions.map((a: any) => a.type),
      ['close', 'notify_teams', 'note'],
    );
    const notes = (await ok('GET', `/v1/tickets/${stale.id}/comments`)).items;
    assert.equal(notes.at(-1).body, 'Closed after closed for 3 days without an answer.');
    assert.equal(notes.at(-1).visibility, 'internal');
    const [notice] = (await eventsOf(t, org, 'ticket.automation_notify')).filter(
      (e: any) => e.data.ticket.id === stale.id,
    );
    assert.equal(notice.data.rule_id, closer.id);
    assert.equal(notice.data.rule_name, 'Close stale pending');
    assert.equal(notice.data.ticket_number, stale.number);
    assert.equal(notice.data.subject, 'Waiting for the customer');
    assert.equal(notice.data.message, `Closed #${stale.number} for dora@customer.test`);
    assert.deepEqual(notice.data.actor, { type: 'automation', id: closer.id, depth: 1 });

    // Once per window: the next sweeps fire nothing more on the same ticket...
    await automation.sweep();
    clock.advance(HOUR);
    await automation.sweep();
    assert.equal((await runs()).length, 1);
    // ...until it changes: pending again, it is closed again three days later.
    await ok('PATCH', `/v1/tickets/${stale.id}`, { status: 'pending' });
    clock.advance(73 * HOUR);
    await automation.sweep();
    assert.equal((await ticket(stale.id)).status, 'closed');
    assert.deepEqual(
      (await runs()).map((r) => [r.ticket_id, r.outcome]),
      [
        [stale.id, 'applied'],
        [stale.id, 'applied'],
      ],
    );
    await ok('PATCH', `/v1/helpdesk/automations/${closer.id}`, { enabled: false });
  });

  test('bad input gets a 4xx on every endpoint', async () => {
    const template = await ok('POST', '/v1/helpdesk/templates', { name: 'Bad input', body: 'x' }, 201);
    const someTicket = await newTicket('Bad input');
    const base = { name: 'Bad', trigger: 'ticket.created', actions: [{ type: 'close' }] };
    // Templates.
    await refused('POST', '/v1/helpdesk/templates', { name: 'No body' }, 400);
    await refused('POST', '/v1/helpdesk/templates', { name: 'Bad input', body: 'y' }, 409);
    await refused('POST', '/v1/helpdesk/templates', { name: 'x', body: 'y', extra: 1 }, 400);
    await refused('GET', '/v1/helpdesk/templates/not-a-uuid', undefined, 400);
    await refused('GET', '/v1/helpdesk/templates?page_size=1000', undefined, 400);
    await refused('PATCH', `/v1/helpdesk/templates/${template.id}`, { body: '' }, 400);
    await refused('DELETE', '/v1/helpdesk/templates/not-a-uuid', undefined, 400);
    await refused('POST', `/v1/helpdesk/templates/${template.id}/preview`, {}, 400);
    // Names of the object prototype are not fields.
    for (const field of ['constructor', '__proto__', 'toString'])
      await refused(
        'POST',
        '/v1/helpdesk/automations',
        { ...base, conditions: [{ field, op: 'equals', value: 'x' }] },
        422,
      );
    await refused('POST', `/v1/helpdesk/templates/${template.id}/preview`, { ticket_id: template.id }, 422);
    await refused('POST', '/v1/helpdesk/templates/preview', { body: '{{ x', ticket_id: someTicket.id }, 422);
    await refused(
      'POST',
      '/v1/helpdesk/templates/preview',
      { body: '{% for i in (1..10000000) %}xxxxxxxxxx{% endfor %}', ticket_id: someTicket.id },
      422,
    );
    await refused(
      'POST',
      `/v1/tickets/${someTicket.id}/reply-with-template`,
      { template_id: someTicket.id },
      422,
    );
    await refused(
      'POST',
      `/v1/tickets/${template.id}/reply-with-template`,
      { template_id: template.id },
      404,
    );
    await refused(
      'POST',
      `/v1/tickets/${someTicket.id}/reply-with-template`,
      { template_id: template.id, visibility: 'loud' },
      400,
    );
    // Rules: shape, then meaning.
    await refused('POST', '/v1/helpdesk/automations', { ...base, trigger: 'ticket.deleted' }, 400);
    await refused('POST', '/v1/helpdesk/automations', { ...base, actions: [] }, 400);
    await refused('POST', '/v1/helpdesk/automations', { ...base, actions: [{ type: 'explode' }] }, 400);
    await refused(
      'POST',
      '/v1/helpdesk/automations',
      { ...base, actions: [{ type: 'assign', assignee_id: 'me' }] },
      400,
    );
    await refused(
      'POST',
      '/v1/helpdesk/automations',
      { ...base, conditions: [{ field: 'status', op: 'like', value: 'x' }] },
      400,
    );
    const meaning: [unknown, RegExp][] = [
      [
        { ...base, conditions: [{ field: 'colour', op: 'equals', value: 'red' }] },
        /conditions\[0\]\.field: unknown field/,
      ],
      [{ ...base, conditions: [{ field: 'status', op: 'equals', value: 'sleeping' }] }, /must be one of/],
      [{ ...base, conditions: [{ field: 'tags', op: 'gt', value: 1 }] }, /tags takes/],
      [{ ...base, conditions: [{ field: 'status', op: 'changed' }] }, /only for ticket.updated rules/],
      [{ ...base, conditions: [{ field: 'desk_id', op: 'is_empty', value: 'x' }] }, /takes no value/],
      [{ ...base, conditions: [{ field: 'status', op: 'in', value: [] }] }, /list of 1 to 100/],
      [
        { ...base, conditions: [{ field: 'comment.body', op: 'contains', value: 'x' }] },
        /only known to ticket.commented/,
      ],
      [
        { ...base, trigger: 'ticket.updated', conditions: [{ field: 'desk_id', op: 'changed' }] },
        /does not change/,
      ],
      [
        { ...base, trigger: 'time', conditions: [{ field: 'status', op: 'equals', value: 'pending' }] },
        /a time rule needs/,
      ],
      [{ ...base, actions: [{ type: 'assign' }] }, /assign needs/],
      [
        { ...base, actions: [{ type: 'assign', assignee_id: other.id }] },
        /actions\[0\]\.assignee_id: not agents/,
      ],
      [{ ...base, actions: [{ type: 'set_fields' }] }, /at least one field/],
      [{ ...base, actions: [{ type: 'set_fields', status: 'approved' }] }, /approval decisions/],
      [{ ...base, actions: [{ type: 'reply_template', template_id: someTicket.id }] }, /no such template/],
      [{ ...base, actions: [{ type: 'note', body: '{% if %}' }] }, /actions\[0\]\.body: not a valid Liquid/],
      [{ ...base, actions: [{ type: 'notify_teams', message: '{{ a | nope }}' }] }, /actions\[0\]\.message/],
    ];
    for (const [body, message] of meaning) {
      const problem = await refused('POST', '/v1/helpdesk/automations', body, 422);
      assert.match(problem.detail, message);
    }
    const ok1 = await rule({
      ...base,
      name: 'Uses template',
      actions: [{ type: 'reply_template', template_id: template.id }],
    });
    await refused('POST', '/v1/helpdesk/automations', { ...base, name: 'Uses template' }, 409);
    await refused(
      'PATCH',
      `/v1/helpdesk/automations/${ok1.id}`,
      { conditions: [{ field: 'nope', op: 'equals', value: 1 }] },
      422,
    );
    await refused('PATCH', `/v1/helpdesk/automations/${ok1.id}`, { position: -1 }, 400);
    await refused('DELETE', `/v1/helpdesk/templates/${template.id}`, undefined, 409);
    await refused('GET', `/v1/helpdesk/automations/${ok1.id}/runs?outcome=maybe`, undefined, 400);
    await refused('GET', '/v1/helpdesk/automations?trigger=never', undefined, 400);
    await refused('DELETE', '/v1/helpdesk/automations/not-a-uuid', undefined, 400);
    await ok('DELETE', `/v1/helpdesk/automations/${ok1.id}`, undefined, 204);
    await ok('DELETE', `/v1/helpdesk/templates/${template.id}`, undefined, 204);
  });

  test('another organisation’s templates and rules are invisible', async () => {
    const template = await ok('POST', '/v1/helpdesk/templates', { name: 'Private', body: 'secret' }, 201);
    const mine = await rule({
      name: 'Private rule',
      trigger: 'ticket.created',
      enabled: false,
      actions: [{ type: 'close' }],
    });
    const someTicket = await newTicket('Private ticket');
    for (const [method, url, body] of [
      ['GET', `/v1/helpdesk/templates/${template.id}`, undefined],
      ['PATCH', `/v1/helpdesk/templates/${template.id}`, { name: 'Mine now' }],
      ['DELETE', `/v1/helpdesk/templates/${template.id}`, undefined],
      ['POST', `/v1/helpdesk/templates/${template.id}/preview`, { ticket_id: someTicket.id }],
      ['GET', `/v1/helpdesk/automations/${mine.id}`, undefined],
      ['PATCH', `/v1/helpdesk/automations/${mine.id}`, { enabled: true }],
      ['DELETE', `/v1/helpdesk/automations/${mine.id}`, undefined],
      ['GET', `/v1/helpdesk/automations/${mine.id}/runs`, undefined],
      ['POST', `/v1/tickets/${someTicket.id}/reply-with-template`, { template_id: template.id }],
    ] as const)
      await refused(method, url, body, 404, other);
    assert.equal((await ok('GET', '/v1/helpdesk/templates', undefined, 200, other)).total, 0);
    assert.equal((await ok('GET', '/v1/helpdesk/automations', undefined, 200, other)).total, 0);
    // Nor can they be named: another organisation's template or ticket is no such thing.
    const theirs = await ok('POST', '/v1/helpdesk/templates', { name: 'Theirs', body: 'x' }, 201, other);
    await refused(
      'POST',
      '/v1/helpdesk/automations',
      {
        name: 'Borrow',
        trigger: 'ticket.created',
        actions: [{ type: 'reply_template', template_id: template.id }],
      },
      422,
      other,
    );
    await refused(
      'POST',
      `/v1/helpdesk/templates/${theirs.id}/preview`,
      { ticket_id: someTicket.id },
      422,
      other,
    );
    assert.equal((await ok('GET', `/v1/helpdesk/templates/${template.id}`)).name, 'Private');
    assert.equal((await ok('GET', `/v1/helpdesk/automations/${mine.id}`)).enabled, false);
  });
});
