// Search vectors built in pieces (src/modules/messages/search-vector.ts) against the database's own
// to_tsvector('simple', …) over the whole text, on the engine under test: realistic mail text of every
// kind the default parser treats specially, and random strings over the characters the tokeniser
// here handles itself.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  SEARCH_VECTOR_SQL,
  searchParameters,
  searchPieces,
  vectorLiteral,
} from '../../../src/modules/messages/search-vector.ts';
import { engine, startTestApp, type TestApp } from '../../support/app.ts';

const HEADER = 'Quarterly report Alice Example alice@example.com bounces+x@example.org bob@example.net';

const BODIES = [
  'Hello Bob,\n\nThe quarterly report is attached. Numbers are up (again!) and the team did well.\n\nAlice',
  'Meeting at 10.30 tomorrow; see https://intranet.example.com/rooms/3?floor=2 for the room.\nThanks.',
  'On Mon, 1 Dec 2026, Alice Example <alice@example.com> wrote:\n> Can you send the file?\n> Sure...\nHere it is.',
  'Version 2.4.1 fixes the bug in /usr/local/lib/libfoo.so and C:\\temp\\x.txt; pi is 3.14159 and 1e-5 small.',
  'A well-known state-of-the-art co-operation, -5 degrees, +7 points, x-ray, e-mail and re-sent.',
  '<html><body><p>Hi <b>there</b></p><script>var hidden = 1;</script><style>.a{}</style>&amp; done</body></html>',
  'Multi-line <a\nhref="https://example.com/x">link\ntext</a> after a tag that spans lines\nand more words.',
  'An unclosed tag < here and words after it\nnext line words\nlast words.',
  'Ünïcödé wörds, 中文字符, emoji 🎉 and ÀÉÎÕÜ mixed with plain words.\nPlain line after.',
  'Ellipses... and dots . . . and "quotes" and \'single\' and (parentheses) [brackets] {braces} * = % # $ ^ | `',
  'Tabs\tand\r\nCRLF lines\r\nwith trailing spaces   \r\n\r\n\r\nand blank lines.',
  'Email me at first.last+tag@sub.example.co.uk or call 555-1234; host mail.example.org:8080 is up.',
  'Path ./relative/file and ../up/one and ~/home/file.txt and file.tar.gz here.',
  `${'word '.repeat(200)}\nthen ${'other '.repeat(100)} done.`,
  'x'.repeat(2047) + ' and ' + 'y'.repeat(2048) + ' long words.',
  '',
  '\n\n',
  'Only one line with no newline at the end',
];

/** Random strings over the safe characters, with letters and digits in runs. */
function fuzz(n: number): string[] {
  const safe = ' \t\r\n,;!?()[]{}"*=%#$^|`\'\\>.-';
  const alnum = 'abcXYZ019';
  let seed = 42;
  const random = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let s = '';
    const length = 1 + Math.floor(random() * 40);
    for (let k = 0; k < length; k++) {
      const r = random();
      s += r < 0.5 ? alnum[Math.floor(random() * alnum.length)] : safe[Math.floor(random() * safe.length)];
    }
    out.push(s);
  }
  return out;
}

describe(`search vectors on ${engine}`, () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
  });
  after(() => t.close());

  /** The texts whose pieced vector differs from to_tsvector over the whole text. */
  async function mismatches(cases: { header: string; body: string }[]): Promise<string[]> {
    const search = searchParameters(cases.map((c) => searchPieces(c.header, c.body)));
    const rows = cases.map((c, i) => ({
      i,
      whole: [c.header, c.body].filter(Boolean).join(' '),
      pieces: search.pieces[i],
    }));
    const result = await t.app.database.query<{ i: number; pieced: string; whole: string }>(
      `select r.i, (${SEARCH_VECTOR_SQL('r.pieces', '$2::tsvector[]')})::text as pieced,
              to_tsvector('simple', r.whole)::text as whole
         from jsonb_to_recordset($1::jsonb) as r(i integer, whole text, pieces jsonb)`,
      [JSON.stringify(rows), search.vectors],
    );
    return result.rows
      .filter((r) => r.pieced !== r.whole)
      .map((r) => `${JSON.stringify(rows[r.i].whole)}\n  pieced ${r.pieced}\n  whole  ${r.whole}`);
  }

  test('realistic mail text gives the vector to_tsvector gives the whole text', async () => {
    const cases = BODIES.flatMap((body) => [
      { header: HEADER, body },
      { header: '', body },
    ]);
    assert.deepEqual(await mismatches(cases), []);
  });

  test('pieces built here are literals; text the parser treats specially is left to to_tsvector', () => {
    const pieces = searchPieces(
      'Subject alice@example.com',
      'Plain words here.\nSee https://example.com now.\nMore plain words.',
    );
    assert.deepEqual(
      pieces.map((p) => ('v' in p ? 'literal' : 'text')),
      ['text', 'literal', 'text', 'literal'],
    );
    assert.equal(vectorLiteral('The the THE cat'), "'the':1,2,3 'cat':4");
  });

  test('random strings of the characters tokenised here match to_tsvector', async () => {
    const cases = fuzz(3000).map((body) => ({ header: '', body }));
    assert.deepEqual(await mismatches(cases), []);
  });

  test('positions stop at 16383 and a word keeps at most 255 of them, as to_tsvector does', async () => {
    const many = Array.from({ length: 17_000 }, (_, i) => `w${i % 3000}`).join(' ');
    const repeated = 'again '.repeat(400);
    assert.deepEqual(
      await mismatches([
        { header: '', body: many },
        { header: '', body: repeated },
      ]),
      [],
    );
  });
});
