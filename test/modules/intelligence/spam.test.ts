import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { analysisInputFromRaw } from '../../../src/modules/intelligence/input.ts';
import {
  applyLearned,
  DEFAULT_SPAM_THRESHOLD,
  DOCUMENT_COUNT_HASH,
  deserialiseModel,
  emptyLearnedCounts,
  learn,
  learnedCountsFromRows,
  loadShippedModel,
  type SpamModel,
  scoreSpam,
  serialiseModel,
  type TrainingExample,
  tokenHash,
  train,
} from '../../../src/modules/intelligence/spam/classifier.ts';
import { isHeldOut, messageBody, splitCorpus } from '../../../src/modules/intelligence/spam/corpus-split.ts';
import { extractSpamFeatures } from '../../../src/modules/intelligence/spam/features.ts';

async function features(raw: string): Promise<string[]> {
  return extractSpamFeatures(await analysisInputFromRaw(raw));
}

const moneySpam = `From: "Financial Freedom" <success777@hotmail.com>
To: undisclosed-recipients:;
Subject: Make $5,000 a week from home - GUARANTEED!!!
Message-ID: <x91a@hotmail.com>
MIME-Version: 1.0
Content-Type: text/html; charset="iso-8859-1"
X-Priority: 1

<html><body><font size=4 color=red><b>EARN CASH FROM HOME!!!</b></font><br>
Dear Friend,<br>This is NOT a scam. You can make <b>$5,000 per week</b> working from home with our
proven system. No experience needed! Thousands of people are already earning money. Order now and
receive a FREE bonus report. 100% satisfaction guaranteed or your money back!<br>
<a href="http://www.cash-system-4u.biz/order.html">CLICK HERE TO ORDER NOW</a><br>
To be removed from our mailing list, <a href="http://www.cash-system-4u.biz/remove.html">click here</a>.
</body></html>
`;

const pharmacySpam = `From: Online Pharmacy <deals@cheap-meds-online.info>
To: friend@example.com
Subject: Lowest prices on prescription medications - no prescription needed
Message-ID: <k8s7@cheap-meds-online.info>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Save up to 80% on your prescription medications!

Viagra, weight loss pills and more, shipped discreetly to your door. No doctor visit
required, no prescription needed. Our licensed online pharmacy offers the lowest prices
on the internet.

Order today: http://www.cheap-meds-online.info/?id=4471

You are receiving this email because you opted in to receive special offers.
To unsubscribe, reply with REMOVE in the subject line.
`;

const advanceFeeSpam = `From: "Dr. James Okoro" <jamesokoro2@yahoo.com>
Reply-To: jokoro_private@mail.com
To: you@example.com
Subject: URGENT BUSINESS PROPOSAL - STRICTLY CONFIDENTIAL
Message-ID: <abc1@yahoo.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

DEAR SIR,

I AM DR. JAMES OKORO, A DIRECTOR IN THE CONTRACT AWARD COMMITTEE OF THE MINISTRY. I GOT YOUR
CONTACT IN MY SEARCH FOR A RELIABLE AND TRUSTWORTHY PERSON TO ASSIST IN THE TRANSFER OF
US$25,500,000.00 (TWENTY FIVE MILLION FIVE HUNDRED THOUSAND UNITED STATES DOLLARS) INTO YOUR
BANK ACCOUNT. YOU WILL RECEIVE 30% OF THE TOTAL SUM FOR YOUR ASSISTANCE. THIS TRANSACTION IS
100% RISK FREE. PLEASE TREAT THIS AS STRICTLY CONFIDENTIAL AND REPLY URGENTLY WITH YOUR
PRIVATE TELEPHONE AND FAX NUMBERS.

YOURS FAITHFULLY,
DR. JAMES OKORO
`;

function codeReviewReply(body: string, id: string): string {
  return `From: Priya Raman <priya@example.org>
To: Tom Baker <tom@example.org>
Subject: Re: review of the retry patch for the delivery worker
Message-ID: <${id}@example.org>
In-Reply-To: <xyz789@example.org>
References: <xyz789@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
User-Agent: Mutt/2.2.12

Hi Tom,

${body}

Thanks,
Priya
`;
}

const codeReview = codeReviewReply(
  `I read through the patch. The backoff looks right, but I think the retry counter should be reset
when the remote server answers with a 4xx after a successful connection; otherwise a flaky MX makes
us give up too early. I also left two comments on the test: it sleeps instead of waiting for the
queue event, which is why it failed on the CI machine yesterday.

Can we go through it after the standup tomorrow?

> I pushed the new version to the branch, tests pass locally.`,
  'abc123',
);

const meeting = `From: Sarah Collins <sarah.collins@example.com>
To: Team <team@example.com>
Subject: Agenda for Thursday's planning meeting
Message-ID: <m1@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Hi all,

For Thursday's planning meeting I'd like to cover three things: the status of the migration to the
new build server, who is on call over the holidays, and whether we move the release to the week
after. If you have anything else, reply to this thread before Wednesday evening and I'll add it.

The meeting is in the usual room; I'll send the notes afterwards.

Sarah
`;

const personal = `From: Mark <mark.obrien@example.net>
To: Dave <dave@example.net>
Subject: Re: weekend
Message-ID: <p1@example.net>
In-Reply-To: <p0@example.net>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Sounds good. I can pick you up around ten on Saturday, the forecast says it should stay dry
until the afternoon. Bring the spare tent poles if you still have them, mine are bent.

> Are we still on for the hike this weekend?

Mark
`;

/** One message of a cold-outreach campaign: same pitch, different recipient, company, day and sending domain. */
function outreach(i: number): string {
  const people = [
    'Alice',
    'Bob',
    'Carol',
    'Dave',
    'Erin',
    'Frank',
    'Grace',
    'Heidi',
    'Ivan',
    'Judy',
    'Mallory',
    'Niaj',
  ];
  const companies = ['Northwind', 'Contoso', 'Fabrikam', 'Tailspin', 'Wingtip', 'Litware'];
  const company = companies[i % companies.length];
  return `From: Daniel Reyes <daniel.reyes@${['getleadflow.io', 'leadflow-mail.com', 'leadflowhq.net'][i % 3]}>
To: ${people[i].toLowerCase()}@${company.toLowerCase()}.example
Subject: Re: ${company} + LeadFlow
Message-ID: <${7000 + i}.${i * 31}@mail.leadflow.example>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Hi ${people[i]},

Following up on my note from last week. I work with sales leaders at companies like ${company}
to book more qualified meetings: our team handles prospect research, outreach sequences and
calendar scheduling, and you only pay per meeting held.

Would it make sense to talk for ${10 + (i % 3) * 5} minutes on ${['Tuesday', 'Wednesday', 'Thursday'][i % 3]}? If you're not the right person,
could you point me to whoever owns pipeline generation?

Thanks,
Daniel Reyes
LeadFlow | Pipeline on autopilot
`;
}

describe('spam features', () => {
  test('leave out what the corpus collector added: Received hops, Delivered-To, X-Spam-*, list headers, rewritten addresses, years', async () => {
    const raw = `From exmh-workers-admin@redhat.com  Thu Aug 22 12:36:23 2002
Return-Path: <exmh-workers-admin@spamassassin.taint.org>
Delivered-To: zzzz@localhost.netnoteinc.com
Received: from localhost (localhost [127.0.0.1]) by phobos.labs.netnoteinc.com (Postfix) for <zzzz@localhost>; Thu, 22 Aug 2002 07:36:16 -0400
Received: from listman.spamassassin.taint.org by dogma.slashnull.org (8.11.6/8.11.6) for <zzzz-exmh@spamassassin.taint.org>; Thu, 22 Aug 2002 12:34:53 +0100
From: Robert Elz <kre@munnari.OZ.AU>
To: qqqqqqqqqq-exmh@spamassassin.taint.org
Cc: exmh-workers@spamassassin.taint.org
Reply-To: exmh-workers@spamassassin.taint.org
Subject: Re: New Sequences Window
Date: Thu, 22 Aug 2002 18:26:25 +0700
Message-Id: <13258.1030015585@munnari.OZ.AU>
X-Spam-Status: No, hits=-2.0 required=5.0
X-Spam-Level:
List-Id: Discussion list for EXMH developers <exmh-workers.spamassassin.taint.org>
Precedence: bulk
Content-Type: text/plain; charset=us-ascii

In August 2002 zzzz@spamassassin.taint.org wrote that the sequences window redraws too often;
see http://spamassassin.taint.org/archive and yyyy's patch.
`;
    const found = await features(raw);
    assert.ok(found.includes('from:munnari.oz.au'), 'the real sender domain is a feature');
    assert.ok(found.includes('body:sequences'));
    for (const feature of found) {
      assert.doesNotMatch(
        feature,
        /taint|netnoteinc|slashnull|zzzz|yyyy|qqqq|localhost|fetchmail|x-spam|list-id|precedence|delivered|received|2002|august 22/i,
        feature,
      );
    }
  });

  test('words, sender, links and structure become prefixed features, each once', async () => {
    const found = await features(moneySpam);
    assert.equal(new Set(found).size, found.length);
    for (const expected of [
      'subj:guaranteed',
      'subj:#money',
      'subj-shape:exclamation',
      'from:hotmail.com',
      'from-local:digits',
      'url:cash-system-4u.biz',
      'html:only',
      'priority:1',
      'charset:iso-8859-1',
      'to:missing',
      'body:#percent',
    ]) {
      assert.ok(found.includes(expected), `${expected} in ${found.join(' ')}`);
    }
  });
});

describe('shipped spam model', () => {
  const model = loadShippedModel();

  test('flags clear spam', async () => {
    for (const raw of [moneySpam, pharmacySpam, advanceFeeSpam]) {
      const result = scoreSpam(model, await features(raw));
      assert.ok(
        result.probability >= DEFAULT_SPAM_THRESHOLD,
        `${result.probability} for ${raw.slice(0, 80)}`,
      );
      assert.ok(result.score > 0);
      assert.ok(result.topFeatures.length > 0 && result.topFeatures[0].weight > 0);
    }
  });

  test('passes clear ham', async () => {
    for (const raw of [codeReview, meeting, personal]) {
      const result = scoreSpam(model, await features(raw));
      assert.ok(result.probability < DEFAULT_SPAM_THRESHOLD, `${result.probability} for ${raw.slice(0, 80)}`);
      assert.ok(result.probability >= 0 && result.score < 0);
    }
  });

  test('reports the strongest features first, and scores the same features the same in any order', async () => {
    const found = await features(pharmacySpam);
    const result = scoreSpam(model, found);
    const magnitudes = result.topFeatures.map((f) => Math.abs(f.weight));
    assert.deepEqual(
      magnitudes,
      [...magnitudes].sort((a, b) => b - a),
    );
    assert.ok(result.topFeatures.every((f) => found.includes(f.feature)));
    const reversed = scoreSpam(model, [...found].reverse());
    assert.equal(reversed.score, result.score);
    assert.deepEqual(reversed.topFeatures, result.topFeatures);
    // A feature listed twice is still one document's worth of evidence.
    assert.equal(scoreSpam(model, [...found, ...found]).score, result.score);
  });
});

describe('per-organisation learning', () => {
  const model = loadShippedModel();

  test('ten reports of a campaign move the next, different message of it above the threshold', async () => {
    const next = await features(outreach(11));
    const before = scoreSpam(model, next).probability;
    assert.ok(before < DEFAULT_SPAM_THRESHOLD, `the shipped model alone passes it (${before})`);
    const learned = emptyLearnedCounts();
    for (let i = 0; i < 10; i++) applyLearned(learned, learn(await features(outreach(i)), 'spam'));
    assert.equal(learned.spamDocuments, 10);
    const after = scoreSpam(model, next, learned);
    assert.ok(after.probability >= DEFAULT_SPAM_THRESHOLD, `after ten reports: ${after.probability}`);
    assert.ok(after.topFeatures.some((f) => f.feature === 'body:leadflow' && f.weight > 0));
  });

  test('one report does not flip a clearly-ham message, nor the next message of its thread', async () => {
    const reported = await features(codeReview);
    const nextInThread = await features(
      codeReviewReply(
        `I checked the new version: the retry counter is reset now and the test waits for the queue
event instead of sleeping. One more thing, the backoff should be capped so a long outage does not
push the next attempt past the message's expiry. Otherwise it looks right to me, merge when CI passes.`,
        'abc124',
      ),
    );
    const learned = applyLearned(emptyLearnedCounts(), learn(reported, 'spam'));
    for (const message of [reported, nextInThread]) {
      const before = scoreSpam(model, message);
      const after = scoreSpam(model, message, learned);
      assert.ok(after.score > before.score, 'the report counts');
      assert.ok(after.probability < DEFAULT_SPAM_THRESHOLD, `after one report: ${after.probability}`);
    }
  });

  test('ham reports bring a flagged newsletter back under the threshold, and can be taken back', async () => {
    // A retailer's newsletter the organisation signed up for: HTML, offers, links, an unsubscribe line.
    const seasons = ['spring', 'summer', 'autumn', 'winter'];
    const products = ['rain jackets', 'wool sweaters', 'hiking boots', 'trail shoes', 'tents', 'backpacks'];
    const newsletter = (i: number) => `From: Harbor Outfitters <news@harbor-outfitters.example>
To: member${i}@example.com
Subject: New arrivals for the ${seasons[i % 4]} season
Message-ID: <issue${i}@harbor-outfitters.example>
MIME-Version: 1.0
Content-Type: text/html; charset=iso-8859-1

<html><body><h2>New arrivals for ${seasons[i % 4]}</h2>
<p>Our ${seasons[i % 4]} collection of ${products[i % 6]}, ${products[(i + 1) % 6]} and ${products[(i + 2) % 6]} is in
stores now. Members save ${10 + (i % 3) * 5}% on their first order from the new collection and get free shipping
on orders over $50.</p>
<p><a href="http://harbor-outfitters.example/new?m=${i}">Shop the new arrivals</a></p>
<p>You are receiving this email because you joined Harbor Outfitters rewards.
<a href="http://harbor-outfitters.example/unsubscribe?m=${i}">Unsubscribe</a></p></body></html>
`;
    const next = await features(newsletter(99));
    assert.ok(scoreSpam(model, next).probability >= DEFAULT_SPAM_THRESHOLD, 'flagged before any report');
    const learned = emptyLearnedCounts();
    const reports = [];
    for (let i = 0; i < 10; i++) {
      const rows = learn(await features(newsletter(i)), 'ham');
      reports.push(rows);
      applyLearned(learned, rows);
    }
    assert.ok(
      scoreSpam(model, next, learned).probability < DEFAULT_SPAM_THRESHOLD,
      'passed after ten ham reports',
    );
    for (const rows of reports) applyLearned(learned, rows, -1);
    assert.equal(learned.hamDocuments, 0);
    assert.equal(learned.tokens.size, 0);
    assert.equal(scoreSpam(model, next, learned).score, scoreSpam(model, next).score);
  });

  test('learned counts are rows of (token hash, spam, ham) that a store can sum and read back', async () => {
    const found = await features(pharmacySpam);
    const rows = learn(found, 'spam');
    assert.deepEqual(rows[0], { tokenHash: DOCUMENT_COUNT_HASH, spam: 1, ham: 0 });
    assert.equal(rows.length, new Set(found.map(tokenHash)).size + 1);
    for (const row of rows) {
      assert.ok(Number.isInteger(row.tokenHash) && row.tokenHash >= -(2 ** 31) && row.tokenHash < 2 ** 31);
      assert.deepEqual([row.spam, row.ham], [1, 0]);
    }
    assert.equal(new Set(rows.map((r) => r.tokenHash)).size, rows.length);
    // What `INSERT ... ON CONFLICT (organization_id, token_hash) DO UPDATE SET spam = spam + ...` stores.
    const stored = new Map<number, { tokenHash: number; spam: number; ham: number }>();
    for (const report of [rows, rows, learn(found, 'ham')]) {
      for (const row of report) {
        const sum = stored.get(row.tokenHash) ?? { tokenHash: row.tokenHash, spam: 0, ham: 0 };
        stored.set(row.tokenHash, {
          tokenHash: row.tokenHash,
          spam: sum.spam + row.spam,
          ham: sum.ham + row.ham,
        });
      }
    }
    const fromRows = learnedCountsFromRows(stored.values());
    const inMemory = emptyLearnedCounts();
    applyLearned(inMemory, rows);
    applyLearned(inMemory, rows);
    applyLearned(inMemory, learn(found, 'ham'));
    assert.deepEqual(fromRows, inMemory);
    assert.equal(fromRows.spamDocuments, 2);
    assert.equal(fromRows.hamDocuments, 1);
    assert.notEqual(scoreSpam(model, found, fromRows).score, scoreSpam(model, found).score);
  });

  test('token hashes are stable signed 32-bit FNV-1a, never the document row', () => {
    assert.equal(tokenHash('a'), 0xe40c292c | 0);
    assert.equal(tokenHash('foobar'), 0xbf9cf968 | 0);
    assert.notEqual(tokenHash(''), DOCUMENT_COUNT_HASH);
  });
});

describe('training and serialisation', () => {
  // A tiny labelled set: spam talks money and offers, ham talks code and meetings.
  const examples: TrainingExample[] = [];
  const spamWords = ['free', 'offer', 'money', 'click', 'winner', 'cash', 'prize', 'order'];
  const hamWords = ['patch', 'meeting', 'review', 'branch', 'agenda', 'tests', 'deploy', 'notes'];
  for (let i = 0; i < 12; i++) {
    examples.push({
      features: spamWords.filter((_, j) => (i + j) % 3 !== 0).map((w) => `body:${w}`),
      spam: true,
      key: `spam-${i}`,
    });
    examples.push({
      features: hamWords.filter((_, j) => (i + j) % 3 !== 0).map((w) => `body:${w}`),
      spam: false,
      key: `ham-${i}`,
    });
  }

  test('is deterministic and learns the set', () => {
    const first = train(examples);
    const second = train(examples);
    assert.equal(serialiseModel(first), serialiseModel(second));
    assert.equal(first.spamDocuments, 12);
    assert.equal(first.hamDocuments, 12);
    assert.deepEqual(first.features['body:free'], [8, 0]);
    assert.ok(first.calibration.slope > 0);
    const spammy = scoreSpam(first, ['body:free', 'body:cash', 'body:click', 'body:unknown']);
    const hammy = scoreSpam(first, ['body:patch', 'body:review', 'body:tests', 'body:unknown']);
    assert.ok(
      spammy.probability > 0.5 && hammy.probability < 0.5,
      `${spammy.probability} ${hammy.probability}`,
    );
    assert.equal(
      spammy.topFeatures.find((f) => f.feature === 'body:unknown'),
      undefined,
    );
  });

  test('leaves out features seen in fewer documents than asked', () => {
    const rare: TrainingExample[] = [...examples, { features: ['body:once'], spam: true }];
    assert.equal(train(rare, { minDocuments: 2 }).features['body:once'], undefined);
    assert.deepEqual(train(rare, { minDocuments: 1 }).features['body:once'], [1, 0]);
  });

  test('serialises and reads back to a model that scores the same', async () => {
    const shipped = loadShippedModel();
    const copy = deserialiseModel(serialiseModel(shipped));
    assert.deepEqual(copy, shipped);
    for (const raw of [moneySpam, codeReview]) {
      const found = await features(raw);
      assert.deepEqual(scoreSpam(copy, found), scoreSpam(shipped, found));
    }
    const tiny = train(examples);
    assert.deepEqual(deserialiseModel(serialiseModel(tiny)), tiny);
  });

  test('refuses what is not a model', () => {
    const good = JSON.parse(serialiseModel(train(examples))) as SpamModel;
    assert.throws(() => deserialiseModel('{"format":"other","version":1}'), /not a Mailroom spam model/);
    assert.throws(() => deserialiseModel(JSON.stringify({ ...good, spamDocuments: -1 })), /document counts/);
    assert.throws(
      () => deserialiseModel(JSON.stringify({ ...good, calibration: { slope: 'x' } })),
      /calibration/,
    );
    assert.throws(
      () => deserialiseModel(JSON.stringify({ ...good, features: { 'body:x': [1] } })),
      /bad counts for feature "body:x"/,
    );
  });
});

describe('corpus split', () => {
  test('holds out about a fifth by checksum, the same way every time', () => {
    const checksums = Array.from({ length: 2000 }, (_, i) => `checksum-${i}`);
    const held = checksums.filter(isHeldOut);
    assert.ok(held.length > 300 && held.length < 500, `${held.length} of 2000`);
    assert.deepEqual(checksums.filter(isHeldOut), held);
  });

  test('drops a held-out message whose body is also in training, keeps the rest', () => {
    const heldChecksums = Array.from({ length: 100 }, (_, i) => `c${i}`).filter(isHeldOut);
    const trainChecksum = Array.from({ length: 100 }, (_, i) => `t${i}`).find((c) => !isHeldOut(c))!;
    const body = 'Buy now, limited offer.\n';
    const trained = { checksum: trainChecksum, text: `Received: from a by b\nSubject: offer\n\n${body}` };
    // The same message delivered again: other Received line, CRLF line endings.
    const copy = {
      checksum: heldChecksums[0],
      text: `Received: from c by d\r\nSubject: offer\r\n\r\n${body.replace(/\n/g, '\r\n')}`,
    };
    const other = { checksum: heldChecksums[1], text: 'Subject: other\n\nSomething else entirely.\n' };
    assert.equal(messageBody(trained.text), messageBody(copy.text));
    const { train: training, heldOut, droppedDuplicates } = splitCorpus([trained, copy, other]);
    assert.deepEqual(training, [trained]);
    assert.deepEqual(heldOut, [other]);
    assert.deepEqual(droppedDuplicates, [copy]);
  });
});
