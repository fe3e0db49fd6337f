// The analysis worker's view of an organisation's term statistics: counts kept in memory until a flush
// (seen by its own reads meanwhile), written when due or forced, put back when writing fails; frequencies
// read from the table remembered for a while, with the worker's own writes added.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import type { Db } from '../../../src/core/db.ts';
import { TermStatistics } from '../../../src/modules/intelligence/term-statistics.ts';
import { engine, type Org, signUpWithOrg, startTestApp, type TestApp } from '../../support/app.ts';

describe(`term statistics on ${engine}`, () => {
  let t: TestApp;
  let db: Db;
  let org: Org;
  let other: Org;

  before(async () => {
    t = await startTestApp();
    db = t.app.database.db;
    org = await signUpWithOrg(t, 'terms@example.com', 'Terms');
    other = await signUpWithOrg(t, 'other-terms@example.com', 'Other');
  });
  after(() => t.close());

  const inTable = async (organizationId: string, term: string) => {
    const rows = (await t.app.database.query(
      'select documents from term_documents where organization_id = $1 and term = $2',
      [organizationId, term],
    )) as { rows: Array<{ documents: number }> };
    return rows.rows[0]?.documents ?? 0;
  };

  test('counts are seen at once by the worker that made them, and written when due or forced', async () => {
    let now = 1_000_000;
    const stats = new TermStatistics(() => now);
    stats.add(
      org.orgId,
      3,
      new Map([
        ['invoice', 2],
        ['meeting', 1],
      ]),
    );
    const before = await stats.read(db, org.orgId, ['invoice', 'meeting', 'unknown']);
    assert.equal(before.documents, 3);
    assert.deepEqual(
      [...before.frequency],
      [
        ['invoice', 2],
        ['meeting', 1],
        ['unknown', 0],
      ],
    );
    assert.equal(await inTable(org.orgId, 'invoice'), 0, 'nothing written yet');

    await db.transaction((tx) => stats.flush(tx));
    assert.equal(await inTable(org.orgId, 'invoice'), 0, 'not due a moment later');
    now += 5_000;
    await db.transaction((tx) => stats.flush(tx));
    assert.equal(await inTable(org.orgId, 'invoice'), 2);
    assert.equal(await inTable(org.orgId, 'meeting'), 1);

    // Remembered values now hold what was written, and are not counted twice.
    const after = await stats.read(db, org.orgId, ['invoice', 'meeting']);
    assert.equal(after.documents, 3);
    assert.deepEqual(
      [...after.frequency],
      [
        ['invoice', 2],
        ['meeting', 1],
      ],
    );

    stats.add(org.orgId, 1, new Map([['invoice', 1]]));
    await db.transaction((tx) => stats.flush(tx, true));
    assert.equal(await inTable(org.orgId, 'invoice'), 3);
    // Another organisation's statistics are its own.
    assert.equal(await inTable(other.orgId, 'invoice'), 0);
    const theirs = await new TermStatistics(() => now).read(db, other.orgId, ['invoice']);
    assert.equal(theirs.documents, 0);
    assert.equal(theirs.frequency.get('invoice'), 0);
  });

  test("another worker's writes are read once what was remembered is two minutes old", async () => {
    let now = 2_000_000;
    const mine = new TermStatistics(() => now);
    const theirs = new TermStatistics(() => now);
    assert.equal((await mine.read(db, org.orgId, ['contract'])).frequency.get('contract'), 0);
    theirs.add(org.orgId, 4, new Map([['contract', 4]]));
    await db.transaction((tx) => theirs.flush(tx, true));
    const soon = await mine.read(db, org.orgId, ['contract']);
    assert.equal(soon.frequency.get('contract'), 0, 'remembered');
    assert.ok(soon.documents >= 4, 'the corpus size is read every time');
    now += 120_001;
    assert.equal((await mine.read(db, org.orgId, ['contract'])).frequency.get('contract'), 4);
  });

  test('counts that could not be written are kept for the next flush', async () => {
    const stats = new TermStatistics();
    stats.add(org.orgId, 1, new Map([['quarterly', 1]]));
    await assert.rejects(
      db.transaction(async (tx) => {
        // A statement failed before: the transaction takes no more, and the flush's write fails.
        await tx.execute(sql`select no_such_column from term_documents`).catch(() => {});
        await stats.flush(tx, true);
      }),
    );
    assert.equal(await inTable(org.orgId, 'quarterly'), 0);
    await db.transaction((tx) => stats.flush(tx, true));
    assert.equal(await inTable(org.orgId, 'quarterly'), 1, 'written by the next flush');
  });
});
