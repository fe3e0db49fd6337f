import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type AnalysisInput, analysisInputFromRaw } from '../../../src/modules/intelligence/input.ts';
import {
  categorize,
  trainCustomCategories,
} from '../../../src/modules/intelligence/understanding/category.ts';
import {
  extractAmounts,
  extractDates,
  extractEntities,
  extractPhones,
} from '../../../src/modules/intelligence/understanding/entities.ts';
import {
  type DocumentFrequencies,
  messageTerms,
  summarizeMessage,
  summarizeThread,
  understand,
} from '../../../src/modules/intelligence/understanding/index.ts';
import {
  extractKeywords,
  STOPWORDS,
  termsForFrequencies,
  textTerms,
  tokenize,
} from '../../../src/modules/intelligence/understanding/keywords.ts';
import { detectLanguage } from '../../../src/modules/intelligence/understanding/language.ts';
import { estimatePriority } from '../../../src/modules/intelligence/understanding/priority.ts';
import { analyzeSentiment } from '../../../src/modules/intelligence/understanding/sentiment.ts';
import {
  extractBodyText,
  MAX_ANALYSED_CHARS,
  splitSentences,
} from '../../../src/modules/intelligence/understanding/text.ts';

function message(fields: {
  from: string;
  subject: string;
  text: string;
  headers?: Record<string, string>;
  to?: string[];
  cc?: string[];
  date?: Date;
}): AnalysisInput {
  const [, name = '', address = fields.from] = /^(.*?)\s*<([^>]+)>$/.exec(fields.from) ?? [];
  return {
    headers: Object.entries(fields.headers ?? {}).map(([key, value]) => ({ name: key, value })),
    from: { name: name.trim(), address: address.toLowerCase() },
    replyTo: [],
    to: (fields.to ?? ['sam@example.org']).map((a) => ({ name: '', address: a })),
    cc: (fields.cc ?? []).map((a) => ({ name: '', address: a })),
    returnPath: null,
    subject: fields.subject,
    date: fields.date ?? new Date('2025-03-05T10:00:00Z'),
    text: fields.text,
    html: null,
    attachments: [],
    authentication: {},
  };
}

function frequencies(documents: number, table: Record<string, number>): DocumentFrequencies {
  return { documents, frequency: (term) => table[term] ?? 0 };
}

describe('body text', () => {
  test('a top-posted reply loses the quoted original and the "On … wrote:" line', () => {
    const body = extractBodyText(
      'Thanks, CSV works for us.\n\nOn Mon, 3 Mar 2025 at 09:12, Sam Doe <sam@example.org> wrote:\n> Would CSV be acceptable?\n> We cannot produce Parquet.',
    );
    assert.equal(body.text, 'Thanks, CSV works for us.');
    assert.equal(body.quoted, true);
  });

  test('a header wrapped over two lines, an unmarked original and the German form are all cut', () => {
    assert.equal(
      extractBodyText(
        'Sounds good.\n\nOn Mon, 3 Mar 2025 at 09:12, Sam Doe <\nsam@example.org> wrote:\n\nOld text.',
      ).text,
      'Sounds good.',
    );
    assert.equal(
      extractBodyText(
        'Passt.\n\nAm 03.03.2025 um 09:12 schrieb Laura Schmidt <laura@x.de>:\n> Geht Mittwoch?',
      ).text,
      'Passt.',
    );
  });

  test('interleaved answers stay while the quoted questions go', () => {
    const body = extractBodyText(
      'See inline.\n\n> First question?\nAnswer one.\n\n> Second question?\nAnswer two.',
    );
    assert.equal(body.text, 'See inline.\nAnswer one.\nAnswer two.');
  });

  test('Outlook originals are cut at "-----Original Message-----" and at a From:/Sent: block', () => {
    assert.equal(
      extractBodyText(
        'Approved.\n\n-----Original Message-----\nFrom: Ben\nSent: Monday\nSubject: budget\n\nPlease approve.',
      ).text,
      'Approved.',
    );
    assert.equal(
      extractBodyText(
        'Approved too.\n\n________________________________\nFrom: Ben Carter <ben@x.org>\nSent: Monday, 3 March 2025 10:00\nTo: Sam\n\nold text',
      ).text,
      'Approved too.',
    );
  });

  test('signatures: the "-- " delimiter, a closing formula with a name under it, a mobile footer', () => {
    const delimited = extractBodyText('Here is the file.\n-- \nSam Doe\nExample Org');
    assert.equal(delimited.text, 'Here is the file.');
    assert.equal(delimited.signature, 'Sam Doe\nExample Org');
    const closing = extractBodyText(
      'Great, thanks for the quick fix!\n\nBest regards,\nSam Doe\n+49 151 2345 6789',
    );
    assert.equal(closing.text, 'Great, thanks for the quick fix!');
    assert.match(closing.signature, /Sam Doe/);
    assert.equal(extractBodyText('Call me.\n\nSent from my iPhone').text, 'Call me.');
    // A message that is only "Thanks!" keeps it: there is no body above it to be a signature of.
    assert.equal(extractBodyText('Thanks!').text, 'Thanks!');
  });

  test('whitespace is collapsed: wrapped lines joined, paragraphs kept apart', () => {
    assert.equal(
      extractBodyText('First   line\twrapped\nacross lines.\n\n\n\nSecond paragraph.').text,
      'First line wrapped across lines.\nSecond paragraph.',
    );
  });

  test('the analysed text is capped at a word boundary', () => {
    const body = extractBodyText('word '.repeat(3000));
    assert.ok(body.text.length <= MAX_ANALYSED_CHARS);
    assert.ok(body.text.length > MAX_ANALYSED_CHARS - 10);
    assert.ok(body.text.endsWith('word'));
    assert.equal(body.truncated, true);
  });

  test('sentences split at . ! ? but not after titles, initials or inside numbers', () => {
    assert.deepEqual(
      splitSentences(
        'Dr. Ahmed will see you at 3.30 today. Is that fine? J. R. Smith agreed!\nNew paragraph',
      ),
      ['Dr. Ahmed will see you at 3.30 today.', 'Is that fine?', 'J. R. Smith agreed!', 'New paragraph'],
    );
  });
});

describe('language', () => {
  const samples: Record<string, string> = {
    en: 'Could you send me the signed contract before Friday? The finance team needs it to release the first payment, and I would rather not delay the project again.',
    de: 'Kannst du mir den unterschriebenen Vertrag bis Freitag schicken? Die Buchhaltung braucht ihn, um die erste Zahlung freizugeben, und ich möchte das Projekt nicht noch einmal verzögern.',
    fr: "Pourrais-tu m'envoyer le contrat signé avant vendredi ? L'équipe financière en a besoin pour débloquer le premier paiement, et je préfère ne pas retarder encore le projet.",
    es: '¿Podrías enviarme el contrato firmado antes del viernes? El equipo de finanzas lo necesita para liberar el primer pago y preferiría no retrasar otra vez el proyecto.',
    it: 'Potresti mandarmi il contratto firmato entro venerdì? Il reparto finanziario ne ha bisogno per sbloccare il primo pagamento e preferirei non ritardare di nuovo il progetto.',
    pt: 'Bom dia a todos, escrevo para confirmar que a reunião de amanhã foi adiada para as dez horas. Por favor tragam os documentos do projeto e as notas da última vez.',
    nl: 'Goedemorgen allemaal, ik schrijf om te bevestigen dat de vergadering van morgen is verplaatst naar tien uur. Neem alsjeblieft de documenten van het project mee.',
    ru: 'Не могла бы ты прислать мне подписанный договор до пятницы? Финансовому отделу он нужен, чтобы провести первый платёж, и я не хочу снова задерживать проект.',
    ja: '金曜日までに署名済みの契約書を送っていただけますか？経理チームが最初の支払いを行うために必要としています。',
    zh: '你能在星期五之前把签好的合同发给我吗？财务部门需要它来支付第一笔款项，我不想再推迟这个项目了。',
  };
  for (const [code, text] of Object.entries(samples)) {
    test(`recognises ${code}`, () => {
      const result = detectLanguage(text);
      assert.equal(result.code, code);
      assert.ok(result.confidence > 0.3 && result.confidence <= 1, `confidence ${result.confidence}`);
    });
  }

  test('short or letterless text is undetermined', () => {
    assert.deepEqual(detectLanguage('ok thx'), { code: 'und', confidence: 0 });
    assert.equal(detectLanguage('https://example.org/a/b 12345 +49 30 1234').code, 'und');
  });

  test('links and addresses do not make text English', () => {
    const text = `${samples.de} https://example.com/download/the/latest/release/notes jane.doe@example.com`;
    assert.equal(detectLanguage(text).code, 'de');
  });
});

describe('sentiment', () => {
  test('positive, negative and neutral English', () => {
    assert.equal(
      analyzeSentiment('Great work on the launch, the customers love it!', 'en').label,
      'positive',
    );
    assert.equal(
      analyzeSentiment('The delivery was late again and the box was damaged.', 'en').label,
      'negative',
    );
    assert.equal(
      analyzeSentiment('The meeting moved to Thursday at 3pm in room 204.', 'en').label,
      'neutral',
    );
  });

  test('negation flips a word a few words back, within its clause only', () => {
    const notGood = analyzeSentiment('The results are not good.', 'en');
    assert.equal(notGood.label, 'negative');
    assert.ok(notGood.score < 0);
    assert.equal(analyzeSentiment("It wasn't bad at all.", 'en').label, 'positive');
    assert.equal(analyzeSentiment('I am not very happy with this.', 'en').label, 'negative');
    // "not" belongs to the first clause; "great" in the second stays positive.
    assert.equal(analyzeSentiment('Not what we planned, but the result is great.', 'en').label, 'positive');
  });

  test("AFINN's phrases are scored as phrases", () => {
    assert.equal(analyzeSentiment("The export still doesn't work.", 'en').label, 'negative');
    assert.equal(analyzeSentiment('I am fed up with these delays.', 'en').label, 'negative');
  });

  test('salutations and closing formulas are not sentiment', () => {
    const result = analyzeSentiment('Dear Maria, please find the report attached. Kind regards, Sam', 'en');
    assert.equal(result.label, 'neutral');
    assert.equal(result.score, 0);
  });

  test('emoji count', () => {
    assert.equal(analyzeSentiment('Shipped the release 👍😊', 'en').label, 'positive');
  });

  test('scores are normalised to -1..1 with a per-word comparative', () => {
    const result = analyzeSentiment(
      'Excellent, wonderful, amazing, fantastic, brilliant, perfect work!',
      'en',
    );
    assert.ok(result.score > 0.9 && result.score <= 1);
    assert.ok(result.comparative > 0);
    assert.equal(result.supported, true);
  });

  test('other languages are unsupported and neutral rather than guessed', () => {
    assert.deepEqual(analyzeSentiment('Das ist wirklich schlecht.', 'de'), {
      score: 0,
      label: 'neutral',
      comparative: 0,
      language: 'de',
      supported: false,
    });
  });
});

describe('keywords', () => {
  const text =
    'The purchase order for the new office chairs is attached. Please check the purchase order before Friday; the chairs must arrive before the office opens.';
  const stats = frequencies(100, { office: 60, friday: 40, chairs: 2, purchase: 5, order: 20 });

  test('words the organisation rarely uses rank above the ones it uses all the time', () => {
    const keywords = extractKeywords(text, 'en', stats, 10);
    const rank = (term: string) => keywords.findIndex((k) => k.term === term);
    assert.ok(rank('chairs') !== -1 && rank('office') !== -1);
    assert.ok(rank('chairs') < rank('office'), JSON.stringify(keywords));
    assert.ok(keywords.every((k, i) => i === 0 || keywords[i - 1]!.score >= k.score));
  });

  test('a repeated phrase becomes one keyword that covers its words', () => {
    const keywords = extractKeywords(text, 'en', stats, 10).map((k) => k.term);
    assert.ok(keywords.includes('purchase order'), keywords.join(', '));
    assert.ok(!keywords.includes('purchase'));
  });

  test('stopwords never appear and the limit holds', () => {
    const keywords = extractKeywords(text, 'en', stats, 3);
    assert.equal(keywords.length, 3);
    for (const { term } of keywords) for (const word of term.split(' ')) assert.ok(!STOPWORDS.en.has(word));
    const german = extractKeywords(
      'Die Rechnung für die Lieferung und die Rechnung für den Versand',
      'de',
      stats,
      5,
    );
    assert.ok(german.every((k) => !['die', 'für', 'und', 'den'].includes(k.term)));
    assert.equal(german[0]!.term, 'rechnung');
  });

  test('with an empty table, keywords rank by frequency in the message', () => {
    const keywords = extractKeywords(
      'Invoice invoice invoice, payment payment, receipt.',
      'en',
      frequencies(0, {}),
      3,
    );
    assert.deepEqual(
      keywords.map((k) => k.term),
      ['invoice', 'payment', 'receipt'],
    );
  });

  test('the terms a message adds to the table are distinct words and adjacent pairs', () => {
    const terms = termsForFrequencies('New office chairs; new office desks.', 'en');
    assert.deepEqual(
      terms.sort(),
      ['new', 'office', 'new office', 'chairs', 'office chairs', 'desks', 'office desks'].sort(),
    );
    // What keywords and summaries look up: the words, and only the pair said twice.
    assert.deepEqual(
      textTerms('New office chairs; new office desks.', 'en').asked.sort(),
      ['new', 'office', 'chairs', 'desks', 'new office'].sort(),
    );
    assert.deepEqual(tokenize("Maria's team isn't ready"), ['maria', 'team', "isn't", 'ready']);
  });
});

describe('entities', () => {
  const reference = new Date('2025-03-05T10:00:00Z'); // a Wednesday

  test("people and organisations from compromise's lexicon, deduplicated", () => {
    const entities = extractEntities(
      'Hi Maria,\nI spoke with John Smith from Acme Corporation and Dr. Ahmed at Deutsche Bank. John Smith will call Google tomorrow. Helen Ortiz agreed.',
    );
    assert.deepEqual(entities.people, ['Maria', 'John Smith', 'Dr Ahmed', 'Helen Ortiz']);
    assert.deepEqual(entities.organizations, ['Acme Corporation', 'Deutsche Bank', 'Google']);
  });

  test('amounts in the usual notations, with ISO currency codes', () => {
    const amounts = extractAmounts(
      'Totals: $1,234.56 and 1.234,56 € and EUR 50 and £20 and 50 EUR (again EUR 50), 1 234,50 € and US$ 1.5 million. Try 5 times.',
    );
    assert.deepEqual(
      amounts.map((a) => [a.text, a.value, a.currency]),
      [
        ['$1,234.56', 1234.56, 'USD'],
        ['1.234,56 €', 1234.56, 'EUR'],
        ['EUR 50', 50, 'EUR'],
        ['£20', 20, 'GBP'],
        ['1 234,50 €', 1234.5, 'EUR'],
        ['US$ 1.5 million', 1500000, 'USD'],
      ],
    );
  });

  test('phone numbers: international and US formats, labelled national numbers; not order numbers or dates', () => {
    const phones = extractPhones(
      'Call +1 (415) 555-0132 or 415.555.0199 or (212) 555 0100, London +44 (0)20 7946 0958, Berlin Tel. 030 1234567. Order 204-5567812-3349102, waybill 1234567890, on 2025-01-15, ref 0049.',
    );
    assert.deepEqual(phones, [
      '+14155550132',
      '+14155550199',
      '+12125550100',
      '+442079460958',
      '030 1234567',
    ]);
  });

  test('dates: absolute forms with ISO dates, relative ones resolved against the message date', () => {
    const dates = extractDates(
      'Kick-off on Tuesday, March 11, 2025, review 14 April, deploy 2025-04-16, invoice due 03/04/2025, call me tomorrow or next Friday. Report for May 2025.',
      { referenceDate: reference },
    );
    assert.deepEqual(dates, [
      { text: 'Tuesday, March 11, 2025', iso: '2025-03-11' },
      { text: '14 April', iso: '2025-04-14' },
      { text: '2025-04-16', iso: '2025-04-16' },
      { text: '03/04/2025', iso: '2025-03-04' },
      { text: 'tomorrow', iso: '2025-03-06' },
      { text: 'next Friday', iso: '2025-03-07' },
      { text: 'May 2025', iso: '2025-05' },
    ]);
    assert.deepEqual(extractDates('Termin am 14.04.2025 und am 03/04/2025', { dayFirst: true }), [
      { text: '14.04.2025', iso: '2025-04-14' },
      { text: '03/04/2025', iso: '2025-04-03' },
    ]);
    // Without a reference date a yearless or relative date has no ISO form.
    assert.deepEqual(extractDates('See you Friday, 3 March'), [{ text: 'Friday, 3 March' }]);
  });

  test('links and e-mail addresses, deduplicated, and their digits are not phones or dates', () => {
    const entities = extractEntities(
      'Docs at https://example.com/a?b=1 (mirror: www.example.org/docs). Mail Jane.Doe@Example.com or jane.doe@example.com. Build https://ci.example.com/runs/4155550132/2025-01-15.',
    );
    assert.deepEqual(entities.links, [
      'https://example.com/a?b=1',
      'www.example.org/docs',
      'https://ci.example.com/runs/4155550132/2025-01-15',
    ]);
    assert.deepEqual(entities.emails, ['jane.doe@example.com']);
    assert.deepEqual(entities.phones, []);
    assert.deepEqual(entities.dates, []);
  });
});

describe('categories', () => {
  const inputs = {
    primary: message({
      from: 'Dana Whitfield <dana@northwind-logistics.com>',
      subject: 'Warehouse visit',
      text: 'Hi Sam,\n\nare you still free to walk through the warehouse with me next Tuesday? I would like to show you the new racking.\n\nDana',
    }),
    social: message({
      from: 'LinkedIn <invitations@linkedin.com>',
      subject: 'Priya wants to connect',
      headers: { 'list-unsubscribe': '<https://www.linkedin.com/unsub>' },
      text: 'Priya Raman has invited you to connect. Accept the invitation to grow your network.',
    }),
    promotions: message({
      from: 'TechMart <deals@techmart.example>',
      subject: 'Weekend sale: 40% off laptops',
      headers: { 'list-unsubscribe': '<mailto:unsub@techmart.example>', precedence: 'bulk' },
      text: 'Save 40% on every laptop this weekend only. Use code WEEKEND40 at checkout. Free shipping on all orders. Shop now!',
    }),
    updates: message({
      from: 'Parcelly <no-reply@parcelly.example>',
      subject: 'Your order has shipped',
      text: 'Your order #4471 has shipped and will arrive Thursday. Track your package with tracking number 1Z999.',
    }),
    forums: message({
      from: 'Alice Wong <alice@example.net>',
      subject: '[pfx] Re: relay restrictions on submission',
      headers: {
        'list-id': 'Postfix users <postfix-users.postfix.org>',
        'list-post': '<mailto:postfix-users@postfix.org>',
        precedence: 'list',
      },
      text: 'You do not need permit_sasl_authenticated there if you override it in master.cf. Post your postconf -n output and we can take a look.',
    }),
  };
  for (const [expected, input] of Object.entries(inputs)) {
    test(`a typical ${expected} message`, () => {
      const result = categorize(input);
      assert.equal(result.category, expected, JSON.stringify(result));
      assert.ok(result.confidence > 0.5 && result.confidence <= 1);
      assert.ok(result.reasons.length > 0);
    });
  }

  test('without headers, the text model and the sender still place clear cases', () => {
    const receipt = message({
      from: 'Billing <billing@cloudhost.example>',
      subject: 'Receipt for your payment',
      text: 'Thanks for your payment. Amount charged to your card: $49.00. Your subscription will renew on 1 April.',
    });
    assert.equal(categorize(receipt).category, 'updates');
  });

  test('an organisation trains its own category by example and it wins when confident', () => {
    const invoice = (n: number, amount: string) =>
      message({
        from: 'Accounts <accounts@steelworks-supply.example>',
        subject: `Invoice SW-${n} for your order`,
        text: `Please find invoice SW-${n} for the steel delivery, amount ${amount}, payable within 30 days to our account at Nordbank.`,
      });
    const model = trainCustomCategories([
      { category: 'supplier-invoices', input: invoice(101, '€4,200') },
      { category: 'supplier-invoices', input: invoice(102, '€3,950') },
      { category: 'supplier-invoices', input: invoice(103, '€5,100') },
      { category: 'supplier-invoices', input: invoice(104, '€2,800') },
    ]);
    const fresh = invoice(105, '€4,480');
    const result = categorize(fresh, model);
    assert.equal(result.category, 'supplier-invoices');
    assert.ok(result.confidence >= model.threshold);
    assert.match(result.reasons[0]!, /custom category "supplier-invoices"/);
    // A message unlike the examples keeps its built-in category.
    assert.equal(categorize(inputs.social, model).category, 'social');
    assert.equal(categorize(inputs.primary, model).category, 'primary');
    // The model is plain JSON: stored and loaded, it decides the same way.
    const reloaded = JSON.parse(JSON.stringify(model));
    assert.deepEqual(categorize(fresh, reloaded), result);
  });

  test('category names are checked when training', () => {
    assert.throws(() => trainCustomCategories([{ category: ' ', input: inputs.primary }]), /non-empty/);
  });
});

describe('priority', () => {
  const neutral = { score: 0, label: 'neutral' as const };

  test('an important, urgent message written to you by a known contact is high', () => {
    const input = message({
      from: 'Ben Carter <ben@example.org>',
      subject: 'URGENT: production database is down',
      headers: { importance: 'high', 'x-priority': '1 (Highest)' },
      text: 'The primary database stopped accepting writes. Please call me as soon as possible.',
    });
    const result = estimatePriority(input, {
      sentiment: neutral,
      category: { category: 'primary' },
      fromKnownContact: true,
      directlyAddressed: true,
    });
    assert.equal(result.level, 'high');
    assert.ok(result.score >= 0.7);
    assert.ok(result.reasons.some((r) => r.startsWith('marked important')));
    assert.ok(result.reasons.some((r) => r.includes('urgent wording in the subject')));
  });

  test('promotions are low even when they shout "today only"', () => {
    const input = message({
      from: 'TechMart <deals@techmart.example>',
      subject: 'Last chance: urgent savings end today',
      headers: { 'list-unsubscribe': '<mailto:u@techmart.example>' },
      text: 'Act immediately!',
    });
    assert.equal(
      estimatePriority(input, { sentiment: neutral, category: { category: 'promotions' } }).level,
      'low',
    );
  });

  test('an ordinary message is normal; being only in Cc or marked low lowers it', () => {
    const input = message({
      from: 'Rachel <rachel@example.org>',
      subject: 'Notes',
      text: 'Notes from today.',
    });
    const category = { category: 'primary' };
    assert.equal(estimatePriority(input, { sentiment: neutral, category }).level, 'normal');
    const copied = estimatePriority(input, { sentiment: neutral, category, directlyAddressed: false });
    const direct = estimatePriority(input, { sentiment: neutral, category, directlyAddressed: true });
    assert.ok(copied.score < direct.score);
    const marked = message({
      from: 'Rachel <rachel@example.org>',
      subject: 'Notes',
      text: 'Notes from today.',
      headers: { 'x-priority': '5' },
    });
    assert.ok(estimatePriority(marked, { sentiment: neutral, category }).score < direct.score);
  });

  test('security notices among updates are raised', () => {
    const input = message({
      from: 'Google <no-reply@accounts.google.com>',
      subject: 'Security alert',
      text: 'New sign-in to your account on a Linux device.',
    });
    const alert = estimatePriority(input, { sentiment: neutral, category: { category: 'updates' } });
    assert.ok(alert.reasons.some((r) => r.startsWith('security notice')));
    assert.notEqual(alert.level, 'low');
  });
});

describe('summaries', () => {
  test('a message summary picks the weightiest sentences, not just the first ones, in order', () => {
    const text = `Hi Sam,

I hope your week is going well. The weather here has been lovely.
The migration of the billing database is blocked because the billing export fails on invoices with credit notes. We need the billing export fixed before Friday or the migration slips a month.
Let me know if you have questions.

Thanks!
Maria`;
    const summary = summarizeMessage(text, { sentences: 2 });
    assert.equal(
      summary,
      'The migration of the billing database is blocked because the billing export fails on invoices with credit notes. We need the billing export fixed before Friday or the migration slips a month.',
    );
    assert.equal(summarizeMessage(text, { sentences: 1 }).split('. ').length, 1);
  });

  test('a thread summary says who said what, in order, with new content only', () => {
    const thread = [
      {
        from: 'Ingrid Solberg <ingrid@fjordtech.example>',
        date: new Date('2025-03-04T09:00:00Z'),
        text: 'Hi Sam,\n\nCould you move the cutover of the mail servers to Saturday? Our support team is short-staffed on Friday.\n\nIngrid',
      },
      {
        from: 'Sam Doe <sam@example.org>',
        date: new Date('2025-03-04T11:30:00Z'),
        text: 'Saturday works for the cutover. We will start at 8am and expect two hours of downtime.\n\nOn Tue, 4 Mar 2025 at 09:00, Ingrid Solberg <ingrid@fjordtech.example> wrote:\n> Could you move the cutover of the mail servers to Saturday? Our support team is short-staffed on Friday.',
      },
      {
        from: 'Ingrid Solberg <ingrid@fjordtech.example>',
        date: new Date('2025-03-04T12:05:00Z'),
        // This client quoted without ">" markers: the repeated sentence must not count as new.
        text: 'Perfect, I will tell the team about the two hours of downtime.\n\nSaturday works for the cutover. We will start at 8am and expect two hours of downtime.',
      },
    ];
    const summary = summarizeThread([thread[2]!, thread[0]!, thread[1]!]);
    const lines = summary.split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0]!, /^Ingrid Solberg \(2025-03-04 09:00 UTC\): Could you move the cutover/);
    assert.match(lines[1]!, /^Sam Doe \(2025-03-04 11:30 UTC\): .*Saturday/);
    assert.equal(
      lines[2],
      'Ingrid Solberg (2025-03-04 12:05 UTC): Perfect, I will tell the team about the two hours of downtime.',
    );
  });
});

describe('understand', () => {
  test('every analyser over one parsed message', async () => {
    const raw = [
      'From: Maria Lopez <maria@moves.example>',
      'To: Sam Doe <sam@example.org>',
      'Subject: Berlin office move: budget needed by Friday',
      'Date: Wed, 05 Mar 2025 09:00:00 +0000',
      'Message-ID: <move-1@moves.example>',
      'Importance: high',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Hi Sam,',
      '',
      'John Smith from Acme Corporation can start the fit-out on March 17th if we confirm the budget',
      'of $45,000 by Friday. The movers are booked for the weekend of March 22nd.',
      'Could you approve the budget today? Without it the move slips by a month, which would be bad.',
      '',
      'Best regards,',
      'Maria',
      '',
      '-- ',
      'Maria Lopez | Moves & More GmbH',
      'Tel. +49 30 1234 5678',
      '',
    ].join('\r\n');
    const input = await analysisInputFromRaw(raw);
    const stats = frequencies(50, { budget: 3, friday: 20, move: 4 });
    const result = understand(input, { frequencies: stats, fromKnownContact: true, directlyAddressed: true });
    assert.deepEqual(result.language.code, 'en');
    assert.equal(result.sentiment.supported, true);
    assert.ok(result.keywords.length > 0 && result.keywords.length <= 8);
    assert.ok(result.keywords.some((k) => k.term === 'budget'));
    assert.deepEqual(result.entities.people.slice(0, 2), ['Sam', 'John Smith']);
    assert.ok(result.entities.organizations.includes('Acme Corporation'));
    assert.ok(result.entities.organizations.includes('Moves & More GmbH'));
    assert.deepEqual(result.entities.amounts, [{ text: '$45,000', value: 45000, currency: 'USD' }]);
    assert.ok(result.entities.dates.some((d) => d.iso === '2025-03-17'));
    assert.ok(result.entities.dates.some((d) => d.text === 'Friday' && d.iso === '2025-03-07'));
    assert.deepEqual(result.entities.phones, ['+493012345678']);
    assert.equal(result.category.category, 'primary');
    assert.equal(result.priority.level, 'high');
    assert.ok(result.summary.length > 0 && !result.summary.includes('Best regards'));
    const terms = messageTerms(input);
    assert.ok(terms.includes('budget') && terms.includes('acme corporation'));
  });
});
