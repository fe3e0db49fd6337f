// The mail-chat request grammar: intents, every date form (in the user's zone, across daylight saving
// changes and west of UTC), people, topics, folders, flags, metrics and reply instructions.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type ParseContext,
  type ParsedRequest,
  parseRequest,
} from '../../../src/modules/chat/intent/index.ts';

const KNOWN = [
  { name: 'Alice Smith', address: 'alice.smith@example.com' },
  { name: 'Bob Jones', address: 'bob@acme.com' },
  { name: 'Carol White', address: 'carol@example.org' },
  { name: 'Dan Brown', address: 'dan.brown@example.net' },
  { name: 'Mary Ann Lopez', address: 'maryann@example.com' },
];

/** Wednesday 17 June 2026, 12:00 in Berlin (CEST, UTC+2). */
const berlin: ParseContext = {
  now: new Date('2026-06-17T10:00:00Z'),
  timeZone: 'Europe/Berlin',
  selfAddresses: ['me@mailroom.test'],
  knownPeople: KNOWN,
};

function parse(text: string, context: Partial<ParseContext> = {}): ParsedRequest {
  return parseRequest(text, { ...berlin, ...context });
}

function range(text: string, context: Partial<ParseContext> = {}): { after?: string; before?: string } {
  const { after, before } = parse(text, context).params;
  return { ...(after ? { after } : {}), ...(before ? { before } : {}) };
}

describe('intents', () => {
  const cases: Array<[string, ParsedRequest['intent']]> = [
    ['pull up the mails Bob forwarded on Tuesday', 'search'],
    ['do I have anything from carol@example.org?', 'search'],
    ['contracts from Dan', 'search'],
    ['where is the invoice Alice sent me', 'search'],
    ['give me a rundown of the budget thread', 'summarize'],
    ['summarize my unread mail', 'summarize'],
    ['fill me in on the hiring discussion', 'summarize'],
    ['what was the conversation with Carol about?', 'summarize'],
    ['does Bob seem annoyed with me?', 'sentiment'],
    ['how was the mood in the emails from acme.com last month', 'sentiment'],
    ["check the tone of Carol's last three messages", 'sentiment'],
    ['how many messages are in my inbox?', 'analytics'],
    ['who writes to me the most', 'analytics'],
    ['what is my average reply time this month', 'analytics'],
    ['how much email do I get each day?', 'analytics'],
    ['please reply to Dan saying thanks', 'compose_reply'],
    ['write a short reply to Alice: see you there', 'compose_reply'],
    ['could you respond to the last email from bob@acme.com and confirm the time', 'compose_reply'],
    ['hello!', 'smalltalk'],
    ['thanks a lot, cheers', 'smalltalk'],
    ['how are you doing?', 'smalltalk'],
    ['is there tension in my thread with Dan?', 'sentiment'],
    ["who's been emailing me the most lately", 'analytics'],
    ['set up a meeting with Bob tomorrow', 'unknown'],
    ["what's the exchange rate for yen", 'unknown'],
    ['what time is it in Tokyo', 'unknown'],
    ['sing me a song', 'unknown'],
    ['', 'unknown'],
  ];
  for (const [text, intent] of cases) {
    it(`"${text}" is ${intent}`, () => {
      const parsed = parse(text);
      assert.equal(parsed.intent, intent);
      assert.ok(parsed.confidence > 0 && parsed.confidence <= 1);
    });
  }

  it('small talk and unknown requests carry no parameters', () => {
    assert.deepEqual(parse('thank you!').params, { people: [], topics: [] });
    assert.deepEqual(parse("what's the weather in Paris tomorrow").params, { people: [], topics: [] });
  });

  it('a greeting before a request does not hide it', () => {
    const parsed = parse('hi, show me unread emails from Bob');
    assert.equal(parsed.intent, 'search');
    assert.equal(parsed.params.unread, true);
    assert.deepEqual(parsed.params.people, [{ text: 'Bob', address: 'bob@acme.com', role: 'from' }]);
  });

  it('a question about a reply is a search, not a reply to write', () => {
    assert.equal(parse('did Carol ever reply to my proposal?').intent, 'search');
    assert.equal(parse('how quickly does Carol reply?').intent, 'analytics');
  });
});

describe('dates, Europe/Berlin, now Wednesday 2026-06-17 12:00', () => {
  const cases: Array<[string, { after?: string; before?: string }]> = [
    ['emails from today', { after: '2026-06-16T22:00:00.000Z', before: '2026-06-17T22:00:00.000Z' }],
    ["yesterday's mail", { after: '2026-06-15T22:00:00.000Z', before: '2026-06-16T22:00:00.000Z' }],
    ['mail this week', { after: '2026-06-14T22:00:00.000Z', before: '2026-06-21T22:00:00.000Z' }],
    ['mail last week', { after: '2026-06-07T22:00:00.000Z', before: '2026-06-14T22:00:00.000Z' }],
    ['mail this month', { after: '2026-05-31T22:00:00.000Z', before: '2026-06-30T22:00:00.000Z' }],
    ['mail last month', { after: '2026-04-30T22:00:00.000Z', before: '2026-05-31T22:00:00.000Z' }],
    ['mail this year', { after: '2025-12-31T23:00:00.000Z', before: '2026-12-31T23:00:00.000Z' }],
    ['mail last year', { after: '2024-12-31T23:00:00.000Z', before: '2025-12-31T23:00:00.000Z' }],
    ['mail in the last 5 days', { after: '2026-06-11T22:00:00.000Z' }],
    ['mail from the last 2 weeks', { after: '2026-06-02T22:00:00.000Z' }],
    ['mail over the past 10 days', { after: '2026-06-06T22:00:00.000Z' }],
    ['mail in the last three months', { after: '2026-03-16T23:00:00.000Z' }],
    ['mail since 1 June', { after: '2026-05-31T22:00:00.000Z' }],
    ['mail since March', { after: '2026-02-28T23:00:00.000Z' }],
    ['mail before Monday', { before: '2026-06-14T22:00:00.000Z' }],
    ['mail after 2026-06-01', { after: '2026-06-01T22:00:00.000Z' }],
    ['mail on Monday', { after: '2026-06-14T22:00:00.000Z', before: '2026-06-15T22:00:00.000Z' }],
    ['mail last Friday', { after: '2026-06-11T22:00:00.000Z', before: '2026-06-12T22:00:00.000Z' }],
    ['mail in March', { after: '2026-02-28T23:00:00.000Z', before: '2026-03-31T22:00:00.000Z' }],
    ['mail in March 2025', { after: '2025-02-28T23:00:00.000Z', before: '2025-03-31T22:00:00.000Z' }],
    ['mail in September', { after: '2025-08-31T22:00:00.000Z', before: '2025-09-30T22:00:00.000Z' }],
    ['mail on 3 March', { after: '2026-03-02T23:00:00.000Z', before: '2026-03-03T23:00:00.000Z' }],
    ['mail from March 3rd', { after: '2026-03-02T23:00:00.000Z', before: '2026-03-03T23:00:00.000Z' }],
    ['mail on 2026-03-03', { after: '2026-03-02T23:00:00.000Z', before: '2026-03-03T23:00:00.000Z' }],
    [
      'mail between 1 May and 15 May',
      { after: '2026-04-30T22:00:00.000Z', before: '2026-05-15T22:00:00.000Z' },
    ],
    [
      'mail between December and February',
      { after: '2025-11-30T23:00:00.000Z', before: '2026-02-28T23:00:00.000Z' },
    ],
    ['mail received recently', { after: '2026-06-02T22:00:00.000Z' }],
    ['what has Dan sent lately', { after: '2026-06-02T22:00:00.000Z' }],
    ['mail this morning', { after: '2026-06-16T22:00:00.000Z', before: '2026-06-17T10:00:00.000Z' }],
    ['mail from two weeks ago', { after: '2026-05-31T22:00:00.000Z', before: '2026-06-07T22:00:00.000Z' }],
    ['mail in the last 6 hours', { after: '2026-06-17T04:00:00.000Z' }],
    ['mail from 2025', { after: '2024-12-31T23:00:00.000Z', before: '2025-12-31T23:00:00.000Z' }],
    ['mail in the last month', { after: '2026-05-16T22:00:00.000Z' }],
    [
      'mail from the previous month',
      { after: '2026-04-30T22:00:00.000Z', before: '2026-05-31T22:00:00.000Z' },
    ],
    ['mail between 3 and 5 June', { after: '2026-06-02T22:00:00.000Z', before: '2026-06-05T22:00:00.000Z' }],
    ['mail from June 3 to 5', { after: '2026-06-02T22:00:00.000Z', before: '2026-06-05T22:00:00.000Z' }],
    ['mail from 22 May to 5 June', { after: '2026-05-21T22:00:00.000Z', before: '2026-06-05T22:00:00.000Z' }],
    ['mail older than a week', { before: '2026-06-09T22:00:00.000Z' }],
    ['mail less than 3 days old', { after: '2026-06-13T22:00:00.000Z' }],
    ['mail over the weekend', { after: '2026-06-12T22:00:00.000Z', before: '2026-06-14T22:00:00.000Z' }],
    ['mail from 12/05', { after: '2026-05-11T22:00:00.000Z', before: '2026-05-12T22:00:00.000Z' }],
    ['mail from 5/22/2026', { after: '2026-05-21T22:00:00.000Z', before: '2026-05-22T22:00:00.000Z' }],
  ];
  for (const [text, expected] of cases) {
    it(text, () => assert.deepEqual(range(text), expected));
  }

  it('keeps what the user typed as dateText', () => {
    assert.equal(parse('emails from Bob since Monday').params.dateText, 'since Monday');
    assert.equal(parse('invoices in March 2025').params.dateText, 'March 2025');
    assert.equal(parse("summarise yesterday's emails").params.dateText, 'yesterday');
  });

  it('does not read "may" the verb as a month', () => {
    const parsed = parse('may I see the emails from Bob');
    assert.equal(parsed.params.after, undefined);
    assert.equal(parse('emails from may').params.after, '2026-04-30T22:00:00.000Z');
  });

  it('rejects a day that does not exist', () => {
    assert.deepEqual(range('mail on 31 February'), {});
  });
});

describe('dates across daylight saving changes in Europe/Berlin', () => {
  it('the week clocks went forward (Sunday 29 March 2026) is 167 hours long', () => {
    const r = range('emails last week', { now: new Date('2026-04-01T10:00:00Z') });
    assert.deepEqual(r, { after: '2026-03-22T23:00:00.000Z', before: '2026-03-29T22:00:00.000Z' });
    assert.equal((Date.parse(r.before!) - Date.parse(r.after!)) / 3_600_000, 167);
  });

  it('this week starts after the change, at midnight summer time', () => {
    assert.deepEqual(range('emails this week', { now: new Date('2026-04-01T10:00:00Z') }), {
      after: '2026-03-29T22:00:00.000Z',
      before: '2026-04-05T22:00:00.000Z',
    });
  });

  it('yesterday was the 23-hour day', () => {
    assert.deepEqual(range('emails yesterday', { now: new Date('2026-03-30T10:00:00Z') }), {
      after: '2026-03-28T23:00:00.000Z',
      before: '2026-03-29T22:00:00.000Z',
    });
  });

  it('the week clocks went back (Sunday 25 October 2026) is 169 hours long', () => {
    const r = range('emails last week', { now: new Date('2026-10-28T10:00:00Z') });
    assert.deepEqual(r, { after: '2026-10-18T22:00:00.000Z', before: '2026-10-25T23:00:00.000Z' });
    assert.equal((Date.parse(r.before!) - Date.parse(r.after!)) / 3_600_000, 169);
  });
});

describe('dates in a zone behind UTC', () => {
  // 02:00 UTC on the 17th is still Tuesday the 16th, 22:00, in New York.
  const ny: Partial<ParseContext> = { now: new Date('2026-06-17T02:00:00Z'), timeZone: 'America/New_York' };

  it('today and yesterday are the local days', () => {
    assert.deepEqual(range('emails today', ny), {
      after: '2026-06-16T04:00:00.000Z',
      before: '2026-06-17T04:00:00.000Z',
    });
    assert.deepEqual(range('emails yesterday', ny), {
      after: '2026-06-15T04:00:00.000Z',
      before: '2026-06-16T04:00:00.000Z',
    });
  });

  it('weeks, months and weekdays', () => {
    assert.deepEqual(range('emails this week', ny), {
      after: '2026-06-15T04:00:00.000Z',
      before: '2026-06-22T04:00:00.000Z',
    });
    assert.deepEqual(range('emails last month', ny), {
      after: '2026-05-01T04:00:00.000Z',
      before: '2026-06-01T04:00:00.000Z',
    });
    assert.deepEqual(range('emails on Monday', ny), {
      after: '2026-06-15T04:00:00.000Z',
      before: '2026-06-16T04:00:00.000Z',
    });
  });

  it('reads 12/05 month first in the Americas', () => {
    assert.deepEqual(range('emails on 12/05', ny), {
      after: '2025-12-05T05:00:00.000Z',
      before: '2025-12-06T05:00:00.000Z',
    });
  });

  it('the week US clocks went forward (Sunday 8 March 2026)', () => {
    assert.deepEqual(
      range('emails last week', { timeZone: 'America/New_York', now: new Date('2026-03-11T15:00:00Z') }),
      {
        after: '2026-03-02T05:00:00.000Z',
        before: '2026-03-09T04:00:00.000Z',
      },
    );
  });

  it('the week US clocks went back (Sunday 1 November 2026), in Los Angeles', () => {
    assert.deepEqual(
      range('emails last week', { timeZone: 'America/Los_Angeles', now: new Date('2026-11-04T18:00:00Z') }),
      { after: '2026-10-26T07:00:00.000Z', before: '2026-11-02T08:00:00.000Z' },
    );
  });
});

describe('people', () => {
  it('resolves first names and full names against known people, case-insensitively', () => {
    assert.deepEqual(parse('emails from carol').params.people, [
      { text: 'carol', address: 'carol@example.org', role: 'from' },
    ]);
    assert.deepEqual(parse('emails from Alice Smith').params.people, [
      { text: 'Alice Smith', address: 'alice.smith@example.com', role: 'from' },
    ]);
    assert.deepEqual(parse('messages to mary ann lopez').params.people, [
      { text: 'mary ann lopez', address: 'maryann@example.com', role: 'to' },
    ]);
  });

  it('leaves a first name two known people share unresolved', () => {
    const people = parse('emails from Sam', {
      knownPeople: [
        { name: 'Sam Reed', address: 'sam.reed@example.com' },
        { name: 'Sam Ortiz', address: 'sam@ortiz.dev' },
      ],
    }).params.people;
    assert.deepEqual(people, [{ text: 'Sam', role: 'from' }]);
  });

  it('keeps unknown names, capitalised or after a preposition', () => {
    assert.deepEqual(parse('mail from Jorge Alvarez').params.people, [
      { text: 'Jorge Alvarez', role: 'from' },
    ]);
    assert.deepEqual(parse('anything from jorge?').params.people, [{ text: 'jorge', role: 'from' }]);
  });

  it('reads addresses and domains', () => {
    assert.deepEqual(parse('emails to ops@example.net').params.people, [
      { text: 'ops@example.net', address: 'ops@example.net', role: 'to' },
    ]);
    assert.deepEqual(parse('newsletters from substack.com').params.people, [
      { text: 'substack.com', address: 'substack.com', role: 'from' },
    ]);
    assert.deepEqual(parse('anything from @acme.com').params.people, [
      { text: 'acme.com', address: 'acme.com', role: 'from' },
    ]);
  });

  it('takes the role from the words around the name', () => {
    const roles = (text: string) => parse(text).params.people.map((p) => `${p.text}:${p.role}`);
    assert.deepEqual(roles('emails from Bob to Carol'), ['Bob:from', 'Carol:to']);
    assert.deepEqual(roles('what did Dan send me'), ['Dan:from']);
    assert.deepEqual(roles('messages I sent Alice'), ['Alice:to']);
    assert.deepEqual(roles("Bob's emails"), ['Bob:from']);
    assert.deepEqual(roles("summarise Bob's thread"), ['Bob:any']);
    assert.deepEqual(roles('my conversation with Carol'), ['Carol:any']);
    assert.deepEqual(roles('emails between Alice, Bob and Dan'), ['Alice:any', 'Bob:any', 'Dan:any']);
    assert.deepEqual(roles('emails sent by Carol'), ['Carol:from']);
    assert.deepEqual(roles('reply to Dan'), ['Dan:from']);
    assert.deepEqual(roles('send Bob a quick reply saying thanks'), ['Bob:from']);
    assert.deepEqual(roles('what did Carol and Dan send'), ['Carol:from', 'Dan:from']);
    assert.deepEqual(roles('emails with invoices attached'), []);
  });

  it('"me", "my" and the user\'s own addresses are the user, and give the direction', () => {
    const fromMe = parse('emails from me to Bob').params;
    assert.deepEqual(fromMe.people, [{ text: 'Bob', address: 'bob@acme.com', role: 'to' }]);
    assert.equal(fromMe.direction, 'sent');
    const toMe = parse('emails to me@mailroom.test from Carol').params;
    assert.deepEqual(toMe.people, [{ text: 'Carol', address: 'carol@example.org', role: 'from' }]);
    assert.equal(toMe.direction, 'received');
    assert.equal(parse('what did I get from Dan').params.direction, 'received');
    assert.equal(parse('emails I wrote to Dan').params.direction, 'sent');
    assert.equal(parse('show me emails from Dan').params.direction, undefined);
  });

  it('a capitalised word after "the" is a thing, not a person', () => {
    const parsed = parse('emails about the Falcon launch from Bob');
    assert.deepEqual(parsed.params.people, [{ text: 'Bob', address: 'bob@acme.com', role: 'from' }]);
    assert.deepEqual(parsed.params.topics, ['falcon launch']);
  });
});

describe('topics', () => {
  const topics = (text: string) => parse(text).params.topics;

  it('takes what follows a topic marker, without stopwords', () => {
    assert.deepEqual(topics('emails about the annual budget'), ['annual budget']);
    assert.deepEqual(topics('messages regarding our lease'), ['lease']);
    assert.deepEqual(topics('re: kickoff agenda'), ['kickoff agenda']);
    assert.deepEqual(topics('mail on the subject of visas'), ['visas']);
    assert.deepEqual(topics('emails mentioning the audit'), ['audit']);
    assert.deepEqual(topics('messages containing the word refund'), ['refund']);
    assert.deepEqual(topics('anything related to the migration'), ['migration']);
  });

  it('keeps quoted strings as typed', () => {
    assert.deepEqual(topics('search for "Project Falcon"'), ['Project Falcon']);
    assert.deepEqual(topics("emails with subject 'Q3 numbers'"), ['Q3 numbers']);
  });

  it('splits coordinated topics', () => {
    assert.deepEqual(topics('emails about invoices and receipts'), ['invoices', 'receipts']);
  });

  it('keeps dates, people, folders and flags out of topics', () => {
    const parsed = parse('unread emails about the offsite from Bob in Archive since Monday with attachments');
    assert.deepEqual(parsed.params.topics, ['offsite']);
    assert.equal(parsed.params.people.length, 1);
    assert.equal(parsed.params.folder, 'Archive');
    assert.equal(parsed.params.after, '2026-06-14T22:00:00.000Z');
    assert.equal(parsed.params.hasAttachment, true);
    assert.equal(parsed.params.unread, true);
  });

  it('takes leftover content words of a terse request', () => {
    assert.deepEqual(topics('payslips from Dan last month'), ['payslips']);
    assert.deepEqual(topics('hotel booking emails'), ['hotel booking']);
    assert.deepEqual(topics('show me emails from Bob'), []);
    // Adjectives of the request's own words and after "anything" say nothing about the subject.
    assert.deepEqual(topics("what's the general mood of Bob's emails"), []);
    assert.deepEqual(topics('anything new from Dan?'), []);
  });

  it('"on" before a date is a date, before anything else a topic', () => {
    const parsed = parse('catch me up on the merger');
    assert.deepEqual(parsed.params.topics, ['merger']);
    assert.equal(parse('emails on Friday').params.topics.length, 0);
  });
});

describe('folders and flags', () => {
  const params = (text: string) => parse(text).params;

  it('standard folders by name', () => {
    assert.equal(params('emails in archive').folder, 'Archive');
    assert.equal(params('show my inbox').folder, 'Inbox');
    assert.equal(params("what's in the junk folder").folder, 'Spam');
    assert.equal(params('messages in the bin').folder, 'Trash');
    assert.equal(params('emails in my sent folder').folder, 'Sent');
  });

  it('custom folders named with "folder" or "label"', () => {
    assert.equal(params('emails in the Receipts folder').folder, 'Receipts');
    assert.equal(params("mail in folder 'Client work'").folder, 'Client work');
    assert.equal(params('messages labelled Travel').folder, 'Travel');
  });

  it('"my sent emails" is a direction, not a folder; "draft a reply" is not Drafts', () => {
    const sent = params('my sent emails to Bob');
    assert.equal(sent.folder, undefined);
    assert.equal(sent.direction, 'sent');
    assert.equal(params('draft a reply to Bob').folder, undefined);
  });

  it('unread, flagged and attachments, and their negations', () => {
    assert.equal(params('unopened mail from Dan').unread, true);
    assert.equal(params("emails I haven't read").unread, true);
    assert.equal(params('starred emails').flagged, true);
    assert.equal(params('unflagged messages').flagged, false);
    assert.equal(params('emails that have attachments').hasAttachment, true);
    assert.equal(params('emails with a file from Bob').hasAttachment, true);
    assert.equal(params('emails with no attachments').hasAttachment, false);
    assert.equal(params('the email from Bob with the contract attached').hasAttachment, true);
  });
});

describe('limits and metrics', () => {
  it('limits', () => {
    assert.equal(parse('show the 3 latest emails from Bob').params.limit, 3);
    assert.equal(parse('the last 10 messages in Spam').params.limit, 10);
    assert.equal(parse('top 3 senders').params.limit, 3);
    assert.equal(parse('the most recent email from Dan').params.limit, 1);
    assert.equal(parse('emails from last week').params.limit, undefined);
  });

  it('metrics', () => {
    const metric = (text: string) => parse(text).params.metric;
    assert.equal(metric('how many emails did Bob send me'), 'count');
    assert.equal(metric('stats for acme.com'), 'count');
    assert.equal(metric('who are my top correspondents'), 'top_senders');
    assert.equal(metric('who sends me the most email'), 'top_senders');
    assert.equal(metric('how fast does Dan answer'), 'response_time');
    assert.equal(metric('what is my response time with Carol'), 'response_time');
    assert.equal(metric('how many emails per day did I get last month'), 'volume_by_day');
    assert.equal(metric('my busiest days'), 'volume_by_day');
    assert.equal(metric('volume of mail by weekday'), 'volume_by_day');
    assert.deepEqual(parse('volume of mail by weekday').params.people, []);
  });
});

describe('reply instructions', () => {
  const reply = (text: string) => parse(text).params;

  it('takes the instruction after "saying", "say", ":", "tell him", "that" and speech verbs', () => {
    assert.equal(reply('reply to Bob saying I agree').replyInstruction, 'I agree');
    assert.equal(reply('answer Carol and say no thanks').replyInstruction, 'no thanks');
    assert.equal(reply('reply to Dan: happy to help!').replyInstruction, 'happy to help');
    assert.equal(
      reply('reply to Alice and tell her that the report is ready').replyInstruction,
      'the report is ready',
    );
    assert.equal(reply('respond to Bob that we are in').replyInstruction, 'we are in');
    assert.equal(
      reply('draft a reply to Carol declining the invitation').replyInstruction,
      'declining the invitation',
    );
    assert.equal(reply('reply to Dan with "see you Monday"').replyInstruction, 'see you Monday');
  });

  it('reads nothing in the instruction as a filter', () => {
    const parsed = parse("reply to Bob's email from yesterday saying I'll send the deck to Carol on Friday");
    assert.equal(parsed.intent, 'compose_reply');
    assert.deepEqual(parsed.params.people, [{ text: 'Bob', address: 'bob@acme.com', role: 'from' }]);
    assert.equal(parsed.params.after, '2026-06-15T22:00:00.000Z');
    assert.equal(parsed.params.before, '2026-06-16T22:00:00.000Z');
    assert.equal(parsed.params.replyInstruction, "I'll send the deck to Carol on Friday");
    assert.deepEqual(parsed.params.topics, []);
  });

  it('a reply without an instruction has none', () => {
    const parsed = parse('help me answer the latest email from Dan');
    assert.equal(parsed.intent, 'compose_reply');
    assert.equal(parsed.params.replyInstruction, undefined);
    assert.equal(parsed.params.limit, 1);
  });
});
