// Message categories and sentiment of the understanding analysers, on labelled sets written for the purpose
// (test/fixtures/intelligence/). The built-in text model is trained only on the examples inside
// category.ts, so the whole category set is unseen by it; every third message of each category is also
// held out from the custom-category model that the last rows train on the other two thirds.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { AnalysisInput, MailAddress } from '../src/modules/intelligence/input.ts';
import { categorize, trainCustomCategories } from '../src/modules/intelligence/understanding/category.ts';
import { analyzeSentiment } from '../src/modules/intelligence/understanding/sentiment.ts';
import { type EvalRow, perLabelRows } from './metrics.ts';

export interface CategoryFixture {
  label: string;
  from: string;
  to?: string;
  cc?: string;
  subject: string;
  headers: Record<string, string>;
  text: string;
}

function parseAddress(value: string): MailAddress {
  const match = /^\s*"?(.*?)"?\s*<([^>]+)>\s*$/.exec(value);
  if (match) return { name: match[1]!.trim(), address: match[2]!.trim().toLowerCase() };
  return { name: '', address: value.trim().toLowerCase() };
}

function addressList(value: string | undefined): MailAddress[] {
  return value ? value.split(',').map(parseAddress) : [];
}

/** The parsed-message shape the analysers read, from a fixture's compact fields. */
export function fixtureInput(fixture: CategoryFixture): AnalysisInput {
  const headers = [
    { name: 'from', value: fixture.from },
    ...(fixture.to ? [{ name: 'to', value: fixture.to }] : []),
    ...(fixture.cc ? [{ name: 'cc', value: fixture.cc }] : []),
    { name: 'subject', value: fixture.subject },
    ...Object.entries(fixture.headers).map(([name, value]) => ({ name: name.toLowerCase(), value })),
  ];
  return {
    headers,
    from: parseAddress(fixture.from),
    replyTo: [],
    to: addressList(fixture.to),
    cc: addressList(fixture.cc),
    returnPath: null,
    subject: fixture.subject,
    date: null,
    text: fixture.text,
    html: null,
    attachments: [],
    authentication: {},
  };
}

function readFixture<T>(name: string): T {
  return JSON.parse(readFileSync(path.resolve('test/fixtures/intelligence', name), 'utf8')) as T;
}

export async function run(): Promise<EvalRow[]> {
  const fixtures = readFixture<CategoryFixture[]>('categories.json');
  // Every third message of each category, in file order, is held out.
  const seenPerLabel = new Map<string, number>();
  const split = fixtures.map((fixture) => {
    const index = seenPerLabel.get(fixture.label) ?? 0;
    seenPerLabel.set(fixture.label, index + 1);
    return { fixture, input: fixtureInput(fixture), heldOut: index % 3 === 2 };
  });
  const heldOut = split.filter((s) => s.heldOut);
  const training = split.filter((s) => !s.heldOut);

  const shipped = split.map((s) => ({ predicted: categorize(s.input).category, actual: s.fixture.label }));
  const shippedHeldOut = heldOut.map((s) => ({
    predicted: categorize(s.input).category,
    actual: s.fixture.label,
  }));
  const custom = trainCustomCategories(training.map((s) => ({ category: s.fixture.label, input: s.input })));
  const withCustom = heldOut.map((s) => ({
    predicted: categorize(s.input, custom).category,
    actual: s.fixture.label,
  }));

  // The same messages without their list and bulk headers: what the words and the sender alone achieve.
  const withoutHeaders = split.map((s) => ({
    predicted: categorize(fixtureInput({ ...s.fixture, headers: {} })).category,
    actual: s.fixture.label,
  }));

  const sentences = readFixture<Array<{ text: string; label: string }>>('sentiment.json');
  const sentiment = sentences.map((s) => ({
    predicted: analyzeSentiment(s.text, 'en').label,
    actual: s.label,
  }));

  return [
    ...perLabelRows(`categories, all (rules + built-in text model; none trained on this set)`, shipped),
    ...perLabelRows('categories, held-out third (rules + built-in text model)', shippedHeldOut),
    ...perLabelRows(
      `categories, held-out third (+ custom model trained on the other ${training.length})`,
      withCustom,
    ),
    ...perLabelRows(
      'categories, all, list and bulk headers removed (words + sender only)',
      withoutHeaders,
    ).slice(-1),
    ...perLabelRows('sentiment (English sentences, AFINN)', sentiment),
  ];
}
