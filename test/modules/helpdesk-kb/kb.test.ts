// The knowledge base and the chatbot through the public surface: categories and articles (slugs,
// publishing, ranked full-text search with snippets), the chatbot answering from published articles with
// links to its sources, escalating to a ticket with the transcript (asked for, or after unanswered
// questions, asking for the customer's address when it has none), the same with an OpenAI-compatible
// model (a local server implementing the Chat Completions contract) and its failures falling back to
// search; bad input, rate limits, API-key scopes and isolation between organisations.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { OpenAiCompatibleLlm } from '../../../src/providers/llm/openai-compatible.ts';
import { LlmError } from '../../../src/providers/llm/types.ts';
import {
  addDomain,
  engine,
  eventsOf,
  type Org,
  signUpWithOrg,
  startTestApp,
  type TestApp,
} from '../../support/app.ts';
import { startLlmServer, type TestLlmServer } from '../../support/llm-server.ts';

const PASSWORD_ARTICLE = {
  title: 'Resetting your password',
  tags: ['account', 'login'],
  status: 'published',
  body: [
    '# Passwords',
    '',
    'Your account is protected by a password that only you know.',
    '',
    '## Reset it',
    '',
    'To reset your password, open the sign-in page and choose **Forgot password**. We email you a link that works for one hour.',
    '',
    'Two-factor codes are not affected.',
  ].join('\n'),
};
const INVOICE_ARTICLE = {
  title: 'Invoices and refunds',
  tags: ['billing'],
  status: 'published',
  body: 'Invoices are sent on the first day of each month.\n\nA refund reaches your card within five working days of the request.',
};
const DRAFT_ARTICLE = {
  title: 'Shipping to Mars',
  status: 'draft',
  body: 'Rockets leave every Tuesday. Shipping to Mars takes seven months.',
};

interface Tenant extends Org {
  deskId: string;
}

/** An organisation with a desk (on a mailbox of its own domain). */
async function tenant(t: TestApp, label: string): Promise<Tenant> {
  const owner = await signUpWithOrg(t, `${label}-owner@example.com`, `${label} Co`);
  const org = { token: owner.token, orgId: owner.orgId };
  const domain = `${label}.test`;
  await addDomain(t, org, domain);
  const mailbox = await t.call('POST', '/v1/mailboxes', {
    token: org.token,
    body: { address: `help@${domain}` },
  });
  assert.equal(mailbox.status, 201, JSON.stringify(mailbox.body));
  const desk = await t.call('POST', '/v1/helpdesk/desks', {
    token: org.token,
    body: { name: 'Support', addresses: [`help@${domain}`] },
  });
  assert.equal(desk.status, 201, JSON.stringify(desk.body));
  return { ...org, deskId: desk.body.id };
}

function client(t: TestApp, as: { token: string }) {
  const api = (method: string, url: string, body?: unknown, token = as.token) =>
    t.call(method, url, { token, body });
  const ok = async (method: string, url: string, body?: unknown, status = 200) => {
    const res = await api(method, url, body);
    assert.equal(res.status, status, `${method} ${url}: ${JSON.stringify(res.body)}`);
    return res.body;
  };
  return { api, ok };
}

describe(`helpdesk knowledge base and chatbot on ${engine}, search only`, () => {
  let t: TestApp;
  let org: Tenant;
  let other: Tenant;
  let api: ReturnType<typeof client>['api'];
  let ok: ReturnType<typeof client>['ok'];
  let password: any;
  let invoices: any;
  let draft: any;
  let accounts: any;

  before(async () => {
    t = await startTestApp({ env: { MAILROOM_PUBLIC_URL: 'https://mailroom.example.com' } });
    [org, other] = await Promise.all([tenant(t, 'kb-alpha'), tenant(t, 'kb-beta')]);
    ({ api, ok } = client(t, org));
  });
  after(async () => {
    await t?.close();
  });

  test('categories and articles: slugs, publishing, filters, ranked search with snippets, events', async () => {
    accounts = await ok('POST', '/v1/helpdesk/kb/categories', { name: 'Accounts', position: 1 }, 201);
    const billing = await ok(
      'POST',
      '/v1/helpdesk/kb/categories',
      { name: 'Billing', description: 'Money', position: 2 },
      201,
    );
    password = await ok(
      'POST',
      '/v1/helpdesk/kb/articles',
      { ...PASSWORD_ARTICLE, category_id: accounts.id },
      201,
    );
    assert.equal(password.slug, 'resetting-your-password');
    assert.equal(password.status, 'published');
    assert.ok(password.published_at);
    assert.deepEqual(password.tags, ['account', 'login']);
    assert.equal(password.url, `https://mailroom.example.com/v1/helpdesk/kb/articles/${password.id}`);
    invoices = await ok(
      'POST',
      '/v1/helpdesk/kb/articles',
      { ...INVOICE_ARTICLE, category_id: billing.id, slug: 'invoices' },
      201,
    );
    draft = await ok('POST', '/v1/helpdesk/kb/articles', DRAFT_ARTICLE, 201);
    assert.equal(draft.status, 'draft');
    assert.equal(draft.published_at, null);
    // The same title again gets the next free slug.
    const again = await ok(
      'POST',
      '/v1/helpdesk/kb/articles',
      { title: 'Shipping to Mars!', body: 'Again.' },
      201,
    );
    assert.equal(again.slug, 'shipping-to-mars-2');

    const categories = await ok('GET', '/v1/helpdesk/kb/categories');
    assert.deepEqual(
      categories.items.map((c: any) => [c.name, c.articles]),
      [
        ['Accounts', 1],
        ['Billing', 1],
      ],
    );
    assert.equal((await ok('GET', `/v1/helpdesk/kb/categories/${billing.id}`)).description, 'Money');
    assert.equal(
      (await ok('PATCH', `/v1/helpdesk/kb/categories/${billing.id}`, { name: 'Payments' })).name,
      'Payments',
    );

    // Filters.
    assert.equal((await ok('GET', '/v1/helpdesk/kb/articles?status=draft')).total, 2);
    assert.equal(
      (await ok('GET', `/v1/helpdesk/kb/articles?category_id=${accounts.id}`)).items[0].id,
      password.id,
    );
    assert.equal((await ok('GET', '/v1/helpdesk/kb/articles?tag=billing')).items[0].id, invoices.id);
    assert.equal((await ok('GET', '/v1/helpdesk/kb/articles?page_size=2&page=2')).items.length, 2);

    // Search: stemmed ("passwords" finds "password"), ranked (the title match first), with a snippet.
    const found = await ok('GET', `/v1/helpdesk/kb/articles?q=${encodeURIComponent('reset passwords')}`);
    assert.equal(found.total, 1);
    assert.equal(found.items[0].id, password.id);
    assert.ok(found.items[0].score > 0);
    assert.match(found.items[0].snippet, /\*\*reset\*\*/i);
    const either = await ok('GET', `/v1/helpdesk/kb/articles?q=${encodeURIComponent('password or refund')}`);
    assert.deepEqual(either.items.map((a: any) => a.id).sort(), [password.id, invoices.id].sort());
    const titled = await ok('GET', `/v1/helpdesk/kb/articles?q=invoices`);
    assert.equal(titled.items[0].id, invoices.id);
    const excluded = await ok('GET', `/v1/helpdesk/kb/articles?q=${encodeURIComponent('mars -rockets')}`);
    assert.deepEqual(
      excluded.items.map((a: any) => a.id),
      [again.id],
    );
    assert.equal(
      (await ok('GET', '/v1/helpdesk/kb/articles?q=the')).total,
      0,
      'stop words alone match nothing',
    );

    // Changes: the search follows the text; publishing stamps published_at; events tell of it all.
    const changed = await ok('PATCH', `/v1/helpdesk/kb/articles/${again.id}`, {
      body: 'Teleportation is not offered.',
      status: 'published',
    });
    assert.ok(changed.published_at);
    assert.equal((await ok('GET', '/v1/helpdesk/kb/articles?q=teleportation')).items[0].id, again.id);
    assert.equal((await ok('GET', '/v1/helpdesk/kb/articles?q=rockets')).total, 1);
    await ok('DELETE', `/v1/helpdesk/kb/articles/${again.id}`, undefined, 204);
    await ok('GET', `/v1/helpdesk/kb/articles/${again.id}`, undefined, 404);
    const updated = await eventsOf(t, org, 'kb_article.updated');
    assert.deepEqual(updated[0].data.changes, ['body', 'published_at', 'status']);
    assert.equal((await eventsOf(t, org, 'kb_article.created')).length, 4);
    assert.equal((await eventsOf(t, org, 'kb_article.deleted'))[0].data.article.id, again.id);

    // A deleted category leaves its articles uncategorised.
    await ok('DELETE', `/v1/helpdesk/kb/categories/${billing.id}`, undefined, 204);
    assert.equal((await ok('GET', `/v1/helpdesk/kb/articles/${invoices.id}`)).category_id, null);
  });

  test('the chatbot answers from the published articles, with links to its sources', async () => {
    const first = await ok('POST', '/v1/helpdesk/chat', {
      desk_id: org.deskId,
      message: 'Hi! How can I reset my password?',
      customer: { name: 'Alice' },
    });
    assert.equal(first.answered_by, 'search');
    assert.equal(first.escalated, false);
    assert.equal(first.status, 'open');
    // The passage that matches, not the article's first paragraph.
    assert.match(first.answer, /^To reset your password, open the sign-in page and choose Forgot password\./);
    assert.ok(first.answer.includes(password.url), 'links to the article');
    assert.equal(first.sources[0].article_id, password.id);
    assert.equal(first.sources[0].url, password.url);
    assert.equal(first.sources[0].score, 1);
    assert.equal(first.sources[0].cited, true);

    const second = await ok('POST', '/v1/helpdesk/chat', {
      conversation_id: first.conversation_id,
      message: 'When does a refund reach my card?',
    });
    assert.equal(second.conversation_id, first.conversation_id);
    assert.match(second.answer, /A refund reaches your card within five working days/);
    assert.equal(second.sources[0].article_id, invoices.id);

    // Draft articles never answer.
    const mars = await ok('POST', '/v1/helpdesk/chat', {
      conversation_id: first.conversation_id,
      message: 'Shipping to Mars?',
    });
    assert.equal(mars.answered_by, null);
    assert.deepEqual(mars.sources, []);
    assert.match(mars.answer, /could not find an answer/);
    assert.equal(mars.escalated, false, 'one unanswered question is not enough');

    const transcript = await ok('GET', `/v1/helpdesk/chat/${first.conversation_id}`);
    assert.equal(transcript.desk_id, org.deskId);
    assert.equal(transcript.messages.length, 6);
    assert.deepEqual(
      transcript.messages.map((m: any) => m.role),
      ['customer', 'bot', 'customer', 'bot', 'customer', 'bot'],
    );
    assert.equal(transcript.messages[1].answered_by, 'search');
    assert.equal(transcript.messages[1].sources[0].article_id, password.id);
    assert.equal(transcript.unanswered, 1);
    assert.deepEqual(transcript.customer, { email: null, name: 'Alice' });
    // An answer resets the count of unanswered questions in a row.
    await ok('POST', '/v1/helpdesk/chat', { conversation_id: first.conversation_id, message: 'Invoices?' });
    assert.equal((await ok('GET', `/v1/helpdesk/chat/${first.conversation_id}`)).unanswered, 0);

    // The organisation's help centre: links go to <public_url>/<slug>.
    const settings = await ok('PUT', '/v1/helpdesk/kb/settings', {
      public_url: 'https://help.alpha.test/kb',
    });
    assert.equal(settings.public_url, 'https://help.alpha.test/kb');
    assert.equal(settings.llm_configured, false);
    const linked = await ok('POST', '/v1/helpdesk/chat', { desk_id: org.deskId, message: 'forgot password' });
    assert.equal(linked.sources[0].url, 'https://help.alpha.test/kb/resetting-your-password');
    assert.equal(
      (await ok('GET', `/v1/helpdesk/kb/articles/${password.id}`)).url,
      'https://help.alpha.test/kb/resetting-your-password',
    );
    await ok('PUT', '/v1/helpdesk/kb/settings', { public_url: null });
  });

  test('asking for a person opens a ticket with the transcript; later messages are told where it is', async () => {
    const start = await ok('POST', '/v1/helpdesk/chat', {
      desk_id: org.deskId,
      message: 'How do I reset my password?',
      customer: { email: 'Carol@Customer.test', name: 'Carol' },
    });
    assert.equal(start.answered_by, 'search');
    const person = await ok('POST', '/v1/helpdesk/chat', {
      conversation_id: start.conversation_id,
      message: 'That did not work. I want to talk to a human please',
    });
    assert.equal(person.escalated, true);
    assert.equal(person.status, 'escalated');
    assert.ok(person.ticket_id);
    assert.match(person.answer, new RegExp(`ticket #${person.ticket_number}.*carol@customer\\.test`));

    const ticket = await ok('GET', `/v1/tickets/${person.ticket_id}`);
    assert.equal(ticket.source, 'chat');
    assert.equal(ticket.desk_id, org.deskId);
    assert.equal(ticket.subject, 'Chat: How do I reset my password?');
    assert.equal(ticket.status, 'open');
    const [comment] = (await ok('GET', `/v1/tickets/${person.ticket_id}/comments`)).items;
    assert.equal(comment.author_type, 'customer');
    assert.match(comment.body, /Carol <carol@customer\.test>/);
    assert.match(comment.body, /Customer: How do I reset my password\?/);
    assert.match(comment.body, /Bot: To reset your password/);
    assert.match(comment.body, new RegExp(`source: Resetting your password \\(.*${password.id}\\)`));
    assert.match(comment.body, /Customer: That did not work\. I want to talk to a human please/);
    const [escalated] = await eventsOf(t, org, 'helpdesk_chat.escalated');
    assert.equal(escalated.data.ticket_id, person.ticket_id);
    assert.equal(escalated.data.reason, 'requested');

    const later = await ok('POST', '/v1/helpdesk/chat', {
      conversation_id: start.conversation_id,
      message: 'Any news?',
    });
    assert.equal(later.escalated, true);
    assert.equal(later.ticket_id, person.ticket_id);
    assert.match(later.answer, new RegExp(`ticket #${person.ticket_number}`));
    const transcript = await ok('GET', `/v1/helpdesk/chat/${start.conversation_id}`);
    assert.equal(transcript.messages.length, 6);
    assert.equal(transcript.escalation_reason, 'requested');
    assert.equal(transcript.messages.at(-2).body, 'Any news?');
    assert.equal((await ok('GET', `/v1/tickets?requester_id=${ticket.requester_id}`)).total, 1, 'one ticket');
    // What the customer writes after the hand-over joins the ticket as their comment; a closed ticket
    // keeps it in the chat's transcript only.
    assert.match(later.answer, /added this to ticket/);
    const comments = await ok('GET', `/v1/tickets/${person.ticket_id}/comments`);
    const last = comments.items.at(-1);
    assert.equal(last.body, 'Any news?');
    assert.equal(last.author_type, 'customer');
    assert.equal(last.visibility, 'public');
    await ok('PATCH', `/v1/tickets/${person.ticket_id}`, { status: 'closed' });
    const afterClose = await ok('POST', '/v1/helpdesk/chat', {
      conversation_id: start.conversation_id,
      message: 'Hello again?',
    });
    assert.doesNotMatch(afterClose.answer, /added this/);
    assert.equal((await ok('GET', `/v1/tickets/${person.ticket_id}/comments`)).total, comments.total);
  });

  test('unanswered questions escalate; without an address the bot asks for one and takes it from the chat', async () => {
    const q1 = await ok('POST', '/v1/helpdesk/chat', {
      desk_id: org.deskId,
      message: 'Do you sell garden gnomes?',
    });
    assert.equal(q1.answered_by, null);
    assert.equal(q1.needs_email, false);
    const q2 = await ok('POST', '/v1/helpdesk/chat', {
      conversation_id: q1.conversation_id,
      message: 'What about purple garden gnomes?',
    });
    assert.equal(q2.escalated, false);
    assert.equal(q2.needs_email, true);
    assert.equal(q2.status, 'awaiting_email');
    assert.match(q2.answer, /email address/);
    const given = await ok('POST', '/v1/helpdesk/chat', {
      conversation_id: q1.conversation_id,
      message: 'Sure, it is dave@customer.test.',
    });
    assert.equal(given.escalated, true);
    const ticket = await ok('GET', `/v1/tickets/${given.ticket_id}`);
    assert.equal(ticket.subject, 'Chat: Do you sell garden gnomes?');
    const [comment] = (await ok('GET', `/v1/tickets/${given.ticket_id}/comments`)).items;
    assert.match(comment.body, /purple garden gnomes/);
    assert.match(comment.body, /dave@customer\.test/);
    const conversation = await ok('GET', `/v1/helpdesk/chat/${q1.conversation_id}`);
    assert.equal(conversation.customer.email, 'dave@customer.test');
    assert.equal(conversation.escalation_reason, 'unanswered');

    // Asked for a person with no address: the address may also come in `customer` of the next call.
    const ask = await ok('POST', '/v1/helpdesk/chat', {
      desk_id: org.deskId,
      message: 'Can I speak to an agent?',
    });
    assert.equal(ask.needs_email, true);
    assert.equal(ask.answered_by, null);
    const with_ = await ok('POST', '/v1/helpdesk/chat', {
      conversation_id: ask.conversation_id,
      message: 'Here you go',
      customer: { email: 'erin@customer.test' },
    });
    assert.equal(with_.escalated, true);
    assert.equal(
      (await eventsOf(t, org, 'helpdesk_chat.escalated'))[0].data.customer_email,
      'erin@customer.test',
    );
  });

  test('API keys: helpdesk:write may chat; helpdesk:read may read transcripts only', async () => {
    const key = async (scopes: string[]) =>
      (await ok('POST', `/v1/organizations/${org.orgId}/api-keys`, { name: scopes.join(' '), scopes }, 201))
        .key as string;
    const writer = await key(['helpdesk:write']);
    const reader = await key(['helpdesk:read']);
    const chat = await api(
      'POST',
      '/v1/helpdesk/chat',
      { desk_id: org.deskId, message: 'reset password' },
      writer,
    );
    assert.equal(chat.status, 200, JSON.stringify(chat.body));
    assert.equal(chat.body.answered_by, 'search');
    assert.equal(
      (await api('POST', '/v1/helpdesk/chat', { desk_id: org.deskId, message: 'x' }, reader)).status,
      403,
    );
    assert.equal(
      (await api('GET', `/v1/helpdesk/chat/${chat.body.conversation_id}`, undefined, reader)).status,
      200,
    );
    assert.equal(
      (await api('POST', '/v1/helpdesk/kb/articles', { title: 'x', body: 'y' }, reader)).status,
      403,
    );
  });

  test('bad input to every endpoint is a 4xx that says what is wrong', async () => {
    const bad = async (method: string, url: string, body: unknown, status: number, detail?: RegExp) => {
      const res = await api(method, url, body);
      assert.equal(
        res.status,
        status,
        `${method} ${url} ${JSON.stringify(body)}: ${JSON.stringify(res.body)}`,
      );
      assert.match(String(res.headers['content-type']), /application\/problem\+json/);
      if (detail) assert.match(res.body.detail, detail);
    };
    const missing = '01890a5d-ac96-774b-bcce-b302099a8057';
    // categories
    await bad('POST', '/v1/helpdesk/kb/categories', {}, 400, /name/);
    await bad('POST', '/v1/helpdesk/kb/categories', { name: 'Accounts' }, 409, /exists/);
    await bad('POST', '/v1/helpdesk/kb/categories', { name: 'x', position: -1 }, 400, /position/);
    await bad('POST', '/v1/helpdesk/kb/categories', { name: 'x', color: 'red' }, 400, /color/);
    await bad('GET', '/v1/helpdesk/kb/categories?page_size=0', undefined, 400, /page_size/);
    await bad('GET', '/v1/helpdesk/kb/categories/not-a-uuid', undefined, 400, /id/);
    await bad('GET', `/v1/helpdesk/kb/categories/${missing}`, undefined, 404);
    await bad('PATCH', `/v1/helpdesk/kb/categories/${accounts.id}`, { name: '' }, 400, /name/);
    await bad('PATCH', `/v1/helpdesk/kb/categories/${missing}`, { name: 'y' }, 404);
    await bad('DELETE', `/v1/helpdesk/kb/categories/${missing}`, undefined, 404);
    // articles
    await bad('POST', '/v1/helpdesk/kb/articles', { title: 'No body' }, 400, /body/);
    await bad('POST', '/v1/helpdesk/kb/articles', { title: 'x', body: 'y', slug: 'Not A Slug' }, 400, /slug/);
    await bad('POST', '/v1/helpdesk/kb/articles', { title: 'x', body: 'y', status: 'live' }, 400, /status/);
    await bad(
      'POST',
      '/v1/helpdesk/kb/articles',
      { title: 'x', body: 'y', category_id: missing },
      422,
      /category_id/,
    );
    await bad('POST', '/v1/helpdesk/kb/articles', { title: 'x', body: 'nul\u0000byte' }, 400, /NUL/);
    await bad('POST', '/v1/helpdesk/kb/articles', { title: 'x', body: 'y', slug: 'invoices' }, 409, /slug/);
    await bad('POST', '/v1/helpdesk/kb/articles', { title: 'x', body: 'y', tags: [''] }, 400, /tags/);
    await bad('GET', '/v1/helpdesk/kb/articles?q=', undefined, 400, /q/);
    await bad('GET', `/v1/helpdesk/kb/articles?q=${'x'.repeat(600)}`, undefined, 400, /q/);
    await bad('GET', '/v1/helpdesk/kb/articles?status=live', undefined, 400, /status/);
    await bad('GET', '/v1/helpdesk/kb/articles?category_id=nope', undefined, 400, /category_id/);
    await bad('GET', '/v1/helpdesk/kb/articles?sort=title', undefined, 400, /sort/);
    await bad('GET', '/v1/helpdesk/kb/articles/nope', undefined, 400);
    await bad('GET', `/v1/helpdesk/kb/articles/${missing}`, undefined, 404);
    await bad('PATCH', `/v1/helpdesk/kb/articles/${password.id}`, { slug: 'invoices' }, 409, /slug/);
    await bad(
      'PATCH',
      `/v1/helpdesk/kb/articles/${password.id}`,
      { category_id: missing },
      422,
      /category_id/,
    );
    await bad('PATCH', `/v1/helpdesk/kb/articles/${password.id}`, { title: 42 }, 400, /title/);
    await bad('PATCH', `/v1/helpdesk/kb/articles/${missing}`, { title: 'y' }, 404);
    await bad('DELETE', `/v1/helpdesk/kb/articles/${missing}`, undefined, 404);
    // settings
    await bad('PUT', '/v1/helpdesk/kb/settings', { min_score: 2 }, 400, /min_score/);
    await bad('PUT', '/v1/helpdesk/kb/settings', { escalate_after: 0 }, 400, /escalate_after/);
    await bad('PUT', '/v1/helpdesk/kb/settings', { public_url: 'ftp://help.example.com' }, 400, /public_url/);
    await bad('PUT', '/v1/helpdesk/kb/settings', { use_llm: 'yes' }, 400, /use_llm/);
    // chat
    await bad('POST', '/v1/helpdesk/chat', { message: 'hello' }, 422, /desk_id/);
    await bad('POST', '/v1/helpdesk/chat', { desk_id: missing, message: 'hello' }, 422, /desk_id/);
    await bad('POST', '/v1/helpdesk/chat', { desk_id: other.deskId, message: 'hello' }, 422, /desk_id/);
    await bad('POST', '/v1/helpdesk/chat', { desk_id: org.deskId, message: '   ' }, 400, /message/);
    await bad(
      'POST',
      '/v1/helpdesk/chat',
      { desk_id: org.deskId, message: 'x'.repeat(4001) },
      400,
      /message/,
    );
    await bad('POST', '/v1/helpdesk/chat', { desk_id: org.deskId, message: 'a\u0000b' }, 400, /NUL/);
    await bad(
      'POST',
      '/v1/helpdesk/chat',
      { desk_id: org.deskId, message: 'hi', customer: { email: 'nope' } },
      400,
      /email/,
    );
    await bad(
      'POST',
      '/v1/helpdesk/chat',
      { desk_id: org.deskId, message: 'hi', mood: 'angry' },
      400,
      /mood/,
    );
    await bad('POST', '/v1/helpdesk/chat', { conversation_id: missing, message: 'hello' }, 404);
    await bad(
      'POST',
      '/v1/helpdesk/chat',
      { conversation_id: 'nope', message: 'hello' },
      400,
      /conversation_id/,
    );
    const conv = await ok('POST', '/v1/helpdesk/chat', { desk_id: org.deskId, message: 'hello' });
    await bad(
      'POST',
      '/v1/helpdesk/chat',
      { conversation_id: conv.conversation_id, desk_id: missing, message: 'x' },
      422,
      /desk_id/,
    );
    await bad('GET', '/v1/helpdesk/chat/nope', undefined, 400);
    await bad('GET', `/v1/helpdesk/chat/${missing}`, undefined, 404);
    await bad('POST', '/v1/helpdesk/chat', undefined, 400);
  });

  test("one organisation's articles, categories and conversations are invisible to another", async () => {
    const their = client(t, other);
    const conv = await ok('POST', '/v1/helpdesk/chat', { desk_id: org.deskId, message: 'reset password' });
    for (const url of [
      `/v1/helpdesk/kb/articles/${password.id}`,
      `/v1/helpdesk/kb/categories/${accounts.id}`,
      `/v1/helpdesk/chat/${conv.conversation_id}`,
    ])
      assert.equal((await their.api('GET', url)).status, 404, url);
    assert.equal(
      (await their.api('PATCH', `/v1/helpdesk/kb/articles/${password.id}`, { title: 'Pwned' })).status,
      404,
    );
    assert.equal((await their.api('DELETE', `/v1/helpdesk/kb/articles/${password.id}`)).status, 404);
    assert.equal(
      (await their.api('PATCH', `/v1/helpdesk/kb/categories/${accounts.id}`, { name: 'Pwned' })).status,
      404,
    );
    assert.equal((await their.api('DELETE', `/v1/helpdesk/kb/categories/${accounts.id}`)).status, 404);
    assert.equal((await their.ok('GET', '/v1/helpdesk/kb/articles')).total, 0);
    assert.equal((await their.ok('GET', '/v1/helpdesk/kb/articles?q=password')).total, 0);
    assert.equal((await their.ok('GET', '/v1/helpdesk/kb/categories')).total, 0);
    // Continuing another organisation's conversation, or starting one on its desk, is refused.
    assert.equal(
      (await their.api('POST', '/v1/helpdesk/chat', { conversation_id: conv.conversation_id, message: 'hi' }))
        .status,
      404,
    );
    assert.equal(
      (await their.api('POST', '/v1/helpdesk/chat', { desk_id: org.deskId, message: 'hi' })).status,
      422,
    );
    // Their bot knows only their articles.
    const theirs = await their.ok('POST', '/v1/helpdesk/chat', {
      desk_id: other.deskId,
      message: 'How do I reset my password?',
    });
    assert.equal(theirs.answered_by, null);
    assert.deepEqual(theirs.sources, []);
    await their.ok(
      'POST',
      '/v1/helpdesk/kb/articles',
      {
        title: 'Beta passwords',
        body: 'Beta resets passwords by phone.',
        status: 'published',
        slug: 'resetting-your-password',
      },
      201,
    );
    const own = await their.ok('POST', '/v1/helpdesk/chat', {
      desk_id: other.deskId,
      message: 'How do I reset my password?',
    });
    assert.match(own.answer, /Beta resets passwords by phone\./);
    const mine = await ok('POST', '/v1/helpdesk/chat', {
      desk_id: org.deskId,
      message: 'How do I reset my password?',
    });
    assert.deepEqual(
      mine.sources.map((s: any) => s.article_id),
      [password.id],
    );
    // The same slug is free per organisation; their settings are theirs.
    assert.equal((await their.ok('GET', '/v1/helpdesk/kb/settings')).public_url, null);
  });
});

describe(`helpdesk chatbot with an OpenAI-compatible model on ${engine}`, () => {
  const KEY = 'sk-test-4f1c9a8e2b7d';
  const MODEL = 'test-model-1';
  let llm: TestLlmServer;
  let t: TestApp;
  let org: Tenant;
  let ok: ReturnType<typeof client>['ok'];
  let api: ReturnType<typeof client>['api'];
  let password: any;
  let invoices: any;

  before(async () => {
    llm = await startLlmServer({ apiKey: KEY, model: MODEL });
    t = await startTestApp({
      env: {
        MAILROOM_LLM_URL: llm.url,
        MAILROOM_LLM_API_KEY: KEY,
        MAILROOM_LLM_MODEL: MODEL,
        MAILROOM_LLM_TIMEOUT: '400ms',
        MAILROOM_HELPDESK_KB_URL: 'https://help.example.com/articles/',
        MAILROOM_HELPDESK_CHAT_PER_MINUTE: '8',
      },
    });
    org = await tenant(t, 'kb-llm');
    ({ ok, api } = client(t, org));
    password = await ok('POST', '/v1/helpdesk/kb/articles', PASSWORD_ARTICLE, 201);
    invoices = await ok('POST', '/v1/helpdesk/kb/articles', INVOICE_ARTICLE, 201);
  });
  after(async () => {
    await t?.close();
    await llm?.close();
  });

  test('the model answers, grounded on the retrieved articles, which are the sources', async () => {
    const reply = await ok('POST', '/v1/helpdesk/chat', {
      desk_id: org.deskId,
      message: 'How do I reset my password?',
    });
    assert.equal(reply.answered_by, 'llm');
    assert.equal(reply.answer, 'Your account is protected by a password that only you know. [1]');
    assert.deepEqual(
      reply.sources.map((s: any) => [s.article_id, s.url, s.cited]),
      [[password.id, 'https://help.example.com/articles/resetting-your-password', true]],
    );
    const [sent] = llm.requests.slice(-1);
    assert.equal(sent!.authorization, `Bearer ${KEY}`);
    assert.equal(sent!.body.model, MODEL);
    assert.equal(typeof sent!.body.temperature, 'number');
    const [system, ...rest] = sent!.body.messages;
    assert.equal(system!.role, 'system');
    assert.match(system!.content, /only the numbered help articles/);
    assert.match(system!.content, /NO_ANSWER/);
    assert.match(
      system!.content,
      /\[1\] Resetting your password\nURL: https:\/\/help\.example\.com\/articles\/resetting-your-password/,
    );
    assert.ok(system!.content.includes('choose **Forgot password**'), 'the article text is in the prompt');
    assert.ok(!system!.content.includes('refund'), 'articles that do not match stay out');
    assert.deepEqual(rest, [{ role: 'user', content: 'How do I reset my password?' }]);

    // A follow-up carries the conversation so far.
    const follow = await ok('POST', '/v1/helpdesk/chat', {
      conversation_id: reply.conversation_id,
      message: 'And the refund for my invoice?',
    });
    assert.equal(follow.answered_by, 'llm');
    assert.equal(follow.sources[0].article_id, invoices.id);
    const history = llm.requests.at(-1)!.body.messages.slice(1);
    assert.deepEqual(
      history.map((m) => m.role),
      ['user', 'assistant', 'user'],
    );
    assert.equal(history[1]!.content, reply.answer);
    const transcript = await ok('GET', `/v1/helpdesk/chat/${reply.conversation_id}`);
    assert.equal(transcript.messages[1].answered_by, 'llm');
  });

  test('NO_ANSWER from the model is an unanswered question; a person is offered after two', async () => {
    llm.replyNext('NO_ANSWER');
    const first = await ok('POST', '/v1/helpdesk/chat', {
      desk_id: org.deskId,
      message: 'Can my password be an emoji?',
    });
    assert.equal(first.answered_by, null);
    assert.deepEqual(first.sources, []);
    llm.replyNext('NO_ANSWER');
    const second = await ok('POST', '/v1/helpdesk/chat', {
      conversation_id: first.conversation_id,
      message: 'Can my password be a poem?',
      customer: { email: 'frank@customer.test' },
    });
    assert.equal(second.escalated, true);
    const [comment] = (await ok('GET', `/v1/tickets/${second.ticket_id}/comments`)).items;
    assert.match(comment.body, /Can my password be a poem\?/);
    // No article matches at all: the model is not asked.
    const before = llm.requests.length;
    const none = await ok('POST', '/v1/helpdesk/chat', {
      desk_id: org.deskId,
      message: 'Weather on Jupiter',
    });
    assert.equal(none.answered_by, null);
    assert.equal(llm.requests.length, before);
  });

  test('when the model fails, times out or answers garbage, the answer comes from search', async () => {
    for (const mode of ['unavailable', 'hang', 'malformed'] as const) {
      llm.failNext(mode);
      const reply = await ok('POST', '/v1/helpdesk/chat', {
        desk_id: org.deskId,
        message: 'How do I reset my password?',
      });
      assert.equal(reply.answered_by, 'search', mode);
      assert.match(reply.answer, /^To reset your password/, mode);
      assert.equal(reply.sources[0].article_id, password.id, mode);
    }
    // The organisation may turn the model off.
    await ok('PUT', '/v1/helpdesk/kb/settings', { use_llm: false });
    const before = llm.requests.length;
    const plain = await ok('POST', '/v1/helpdesk/chat', { desk_id: org.deskId, message: 'refund' });
    assert.equal(plain.answered_by, 'search');
    assert.equal(llm.requests.length, before);
    assert.equal((await ok('GET', '/v1/helpdesk/kb/settings')).llm_configured, true);
    await ok('PUT', '/v1/helpdesk/kb/settings', { use_llm: true });
  });

  test('a conversation is rate-limited', async () => {
    const start = await ok('POST', '/v1/helpdesk/chat', { desk_id: org.deskId, message: 'refund' });
    const statuses: number[] = [];
    for (let i = 0; i < 9; i++)
      statuses.push(
        (
          await api('POST', '/v1/helpdesk/chat', {
            conversation_id: start.conversation_id,
            message: 'refund',
          })
        ).status,
      );
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200, 200, 200, 429]);
    // Other conversations go on.
    assert.equal(
      (await api('POST', '/v1/helpdesk/chat', { desk_id: org.deskId, message: 'refund' })).status,
      200,
    );
  });

  test('the provider follows the Chat Completions contract and keeps its key out of errors', async () => {
    const provider = (o: Partial<ConstructorParameters<typeof OpenAiCompatibleLlm>[0]>) =>
      new OpenAiCompatibleLlm({ baseUrl: llm.url, apiKey: KEY, model: MODEL, timeoutMs: 2000, ...o });
    const answer = await provider({}).complete([
      {
        role: 'system',
        content: 'Articles:\n\n[1] Tea\nURL: https://x.test/tea\nTea is brewed at 80 degrees. Always.',
      },
      { role: 'user', content: 'At what temperature is tea brewed?' },
    ]);
    assert.equal(answer, 'Tea is brewed at 80 degrees. [1]');
    const refused = async (
      p: OpenAiCompatibleLlm,
      code: string,
      status: number | null,
      messages = [{ role: 'user' as const, content: 'hi' }],
      temperature?: number,
    ) => {
      const err = await p.complete(messages, { temperature }).then(
        () => assert.fail('expected an error'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof LlmError);
      assert.equal(err.code, code);
      assert.equal(err.status, status);
      assert.ok(!err.message.includes(KEY) && !err.message.includes('sk-wrong-key-123'), err.message);
      return err;
    };
    await refused(provider({ apiKey: 'sk-wrong-key-123' }), 'llm_rejected', 401);
    await refused(provider({ apiKey: undefined }), 'llm_rejected', 401);
    await refused(provider({ model: 'nope' }), 'llm_rejected', 404);
    await refused(provider({}), 'llm_rejected', 400, [], undefined);
    await refused(provider({}), 'llm_rejected', 400, undefined, 5);
    llm.failNext('unavailable');
    await refused(provider({}), 'llm_unavailable', 500);
    llm.failNext('malformed');
    await refused(provider({}), 'llm_malformed', null);
    llm.failNext('hang');
    await refused(provider({ timeoutMs: 200 }), 'llm_timeout', null);
    await refused(provider({ baseUrl: 'http://127.0.0.1:1/v1' }), 'llm_unavailable', null);
  });
});
