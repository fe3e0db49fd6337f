// Mail-chat request parser (src/modules/chat/intent): per-intent precision and recall, and how many of
// the labelled parameters (people, topics, dates, folder, flags, metric, limit, direction, reply
// instruction) it extracts exactly. The first 170 labelled requests were written for the purpose before
// the grammar; every fourth of them per intent is held out and was scored only once the grammar was
// done. The last 55 (development) were written later, scored once as fresh checks, then tuned on.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseRequest } from '../src/modules/chat/intent/index.ts';
import type { ParseContext, PersonReference, RequestParams } from '../src/modules/chat/intent/index.ts';
import { type EvalRow, perLabelRows } from './metrics.ts';

export interface LabelledRequest {
  text: string;
  intent: string;
  /** Only the fields the request states; a field left out must come back empty. */
  params: Partial<RequestParams>;
  heldOut?: boolean;
}

/** The fixture's labels resolve dates for this moment and zone, and names against these people. */
export const FIXTURE_CONTEXT: ParseContext = {
  now: new Date('2026-06-17T10:00:00Z'),
  timeZone: 'Europe/Berlin',
  selfAddresses: ['me@mailroom.test'],
  knownPeople: [
    { name: 'Alice Smith', address: 'alice.smith@example.com' },
    { name: 'Bob Jones', address: 'bob@acme.com' },
    { name: 'Carol White', address: 'carol@example.org' },
    { name: 'Dan Brown', address: 'dan.brown@example.net' },
    { name: 'Eve Martin', address: 'eve@partner.io' },
    { name: 'Frank Miller', address: 'frank@acme.com' },
    { name: 'Grace Lee', address: 'grace.lee@example.com' },
    { name: 'Priya Patel', address: 'priya@vendor.co' },
  ],
};

export function loadLabelledRequests(): LabelledRequest[] {
  return JSON.parse(
    readFileSync(path.resolve('test/fixtures/chat/intents.json'), 'utf8'),
  ) as LabelledRequest[];
}

const FIELDS = [
  'people',
  'topics',
  'after',
  'before',
  'folder',
  'unread',
  'flagged',
  'hasAttachment',
  'metric',
  'limit',
  'replyInstruction',
  'direction',
] as const;
type Field = (typeof FIELDS)[number];

function personKey(p: PersonReference): string {
  return `${p.text.toLowerCase()}|${p.role}|${(p.address ?? '').toLowerCase()}`;
}

function present(params: Partial<RequestParams>, field: Field): boolean {
  const v = params[field];
  return Array.isArray(v) ? v.length > 0 : v !== undefined;
}

function sameField(expected: Partial<RequestParams>, actual: RequestParams, field: Field): boolean {
  if (field === 'people') {
    const a = (expected.people ?? []).map(personKey).sort();
    const b = actual.people.map(personKey).sort();
    return a.length === b.length && a.every((k, i) => k === b[i]);
  }
  if (field === 'topics') {
    const a = [...new Set((expected.topics ?? []).map((t) => t.toLowerCase()))].sort();
    const b = [...new Set(actual.topics.map((t) => t.toLowerCase()))].sort();
    return a.length === b.length && a.every((k, i) => k === b[i]);
  }
  return expected[field] === actual[field];
}

export interface FieldCheck {
  field: Field;
  labelled: boolean;
  produced: boolean;
  correct: boolean;
}

/** The fields a request is scored on: those labelled, and those the parser produced although unlabelled. */
export function checkFields(expected: Partial<RequestParams>, actual: RequestParams): FieldCheck[] {
  const checks: FieldCheck[] = [];
  for (const field of FIELDS) {
    const labelled = present(expected, field);
    const produced = present(actual, field);
    if (labelled || produced)
      checks.push({ field, labelled, produced, correct: sameField(expected, actual, field) });
  }
  return checks;
}

/** Mean CPU and wall time per request over a few warm passes (the first pass compiles the grammar). */
function timing(items: LabelledRequest[]): { cpuMs: number; wallMs: number } {
  const passes = 5;
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let p = 0; p < passes; p++) for (const item of items) parseRequest(item.text, FIXTURE_CONTEXT);
  const used = process.cpuUsage(cpu);
  const n = passes * items.length;
  return { cpuMs: (used.user + used.system) / 1000 / n, wallMs: (performance.now() - started) / n };
}

function scoreSet(set: string, items: LabelledRequest[]): EvalRow[] {
  const pairs: Array<{ predicted: string; actual: string }> = [];
  const checks: FieldCheck[] = [];
  for (const item of items) {
    const parsed = parseRequest(item.text, FIXTURE_CONTEXT);
    pairs.push({ predicted: parsed.intent, actual: item.intent });
    checks.push(...checkFields(item.params, parsed.params));
  }
  const speed = timing(items);
  const correct = checks.filter((c) => c.correct).length;
  const produced = checks.filter((c) => c.produced);
  const labelled = checks.filter((c) => c.labelled);
  const precision = produced.length === 0 ? 1 : produced.filter((c) => c.correct).length / produced.length;
  const recall = labelled.length === 0 ? 1 : labelled.filter((c) => c.correct).length / labelled.length;
  return [
    ...perLabelRows(set, pairs),
    {
      set,
      label: '(parameters)',
      n: checks.length,
      precision,
      recall,
      f1: precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall),
      note:
        `parameter accuracy ${((100 * correct) / checks.length).toFixed(1)}% (${correct}/${checks.length} fields exact); ` +
        `${speed.cpuMs.toFixed(3)} ms CPU, ${speed.wallMs.toFixed(3)} ms wall per request`,
    },
  ];
}

export async function run(): Promise<EvalRow[]> {
  const items = loadLabelledRequests();
  return [
    ...scoreSet(
      'intents (development)',
      items.filter((i) => !i.heldOut),
    ),
    ...scoreSet(
      'intents (held out)',
      items.filter((i) => i.heldOut),
    ),
  ];
}
