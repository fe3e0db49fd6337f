// Mail intelligence's queries: the analysis queue, settings, what users taught the spam filter, the
// keyword statistics, and custom-category examples.
import type { Db } from '../../core/db.ts';
import { and, eq, inArray, sql } from '../../core/orm.ts';
import {
  categoryExamples,
  type IntelligenceSettingsRow,
  intelligenceSettings,
  type ReportSource,
  spamReports,
  termCorpus,
  type Verdict,
} from './tables.ts';

type Rows<T> = { rows: T[] };
const rowsOf = async <T>(q: Promise<unknown>) => ((await q) as Rows<T>).rows;

// ---- the queue -------------------------------------------------------------------------------------

export interface Queued {
  messageId: string;
  organizationId: string;
  act: boolean;
  jobId?: string | null;
}

/** Queues messages for analysis (again, when already queued: sooner, and acting if either asked to). */
export async function enqueue(tx: Db, rows: Queued[]): Promise<void> {
  if (!rows.length) return;
  await tx.execute(sql`
    insert into intelligence_queue (message_id, organization_id, act, job_id)
    select * from unnest(${sql.param(rows.map((r) => r.messageId))}::uuid[],
                         ${sql.param(rows.map((r) => r.organizationId))}::uuid[],
                         ${sql.param(rows.map((r) => r.act))}::boolean[],
                         ${sql.param(rows.map((r) => r.jobId ?? null))}::uuid[])
    on conflict (message_id) do update
      set act = intelligence_queue.act or excluded.act, due_at = now(),
          job_id = coalesce(excluded.job_id, intelligence_queue.job_id)`);
}

export interface Claimed extends Queued {
  attempts: number;
}

/**
 * Takes up to `limit` due messages for `leaseMs`: they come back to the queue if this worker dies before
 * it finishes them (SKIP LOCKED: any number of workers share it, each message goes to one).
 */
export async function claim(db: Db, limit: number, leaseMs: number): Promise<Claimed[]> {
  const rows = await rowsOf<{
    message_id: string;
    organization_id: string;
    act: boolean;
    job_id: string | null;
    attempts: number;
  }>(
    db.execute(sql`
      with due as (
        select message_id from intelligence_queue where due_at <= now()
         order by due_at limit ${limit} for update skip locked
      )
      update intelligence_queue q
         set due_at = now() + make_interval(secs => ${leaseMs / 1000}), attempts = q.attempts + 1
        from due where q.message_id = due.message_id
      returning q.message_id, q.organization_id, q.act, q.job_id, q.attempts`),
  );
  return rows.map((r) => ({
    messageId: r.message_id,
    organizationId: r.organization_id,
    act: r.act,
    jobId: r.job_id,
    attempts: r.attempts,
  }));
}

export async function dequeue(tx: Db, messageIds: string[]): Promise<void> {
  if (messageIds.length)
    await tx.execute(
      sql`delete from intelligence_queue where message_id = any(${sql.param(messageIds)}::uuid[])`,
    );
}

/** When the next queued message is due (null: none), for the worker's sleep. */
export async function nextDue(db: Db): Promise<Date | null> {
  const [row] = await rowsOf<{ at: Date | string | null }>(
    db.execute(sql`select min(due_at) as at from intelligence_queue`),
  );
  return row?.at ? new Date(row.at) : null;
}

export async function queuedForJob(db: Db, jobId: string): Promise<number> {
  const [row] = await rowsOf<{ n: number }>(
    db.execute(sql`select count(*)::int as n from intelligence_queue where job_id = ${jobId}`),
  );
  return row?.n ?? 0;
}

// ---- settings --------------------------------------------------------------------------------------

export async function settingsOf(
  db: Db,
  organizationIds: string[],
): Promise<Map<string, IntelligenceSettingsRow>> {
  if (!organizationIds.length) return new Map();
  const rows = await db
    .select()
    .from(intelligenceSettings)
    .where(inArray(intelligenceSettings.organizationId, organizationIds));
  return new Map(rows.map((r) => [r.organizationId, r]));
}

export async function upsertSettings(
  tx: Db,
  organizationId: string,
  changes: Partial<Omit<IntelligenceSettingsRow, 'organizationId' | 'updatedAt'>>,
): Promise<IntelligenceSettingsRow> {
  const [row] = await tx
    .insert(intelligenceSettings)
    .values({ organizationId, ...changes })
    .onConflictDoUpdate({
      target: intelligenceSettings.organizationId,
      set: { ...changes, updatedAt: sql`now()` },
    })
    .returning();
  return row!;
}

// ---- what users taught the spam filter ----------------------------------------------------------------

export interface TokenRow {
  organizationId: string;
  token: number;
  spam: number;
  ham: number;
}

/** The learned counts of these tokens (token 0: the message counts), per organisation. */
export async function learnedTokens(db: Db, organizationId: string, tokens: number[]): Promise<TokenRow[]> {
  if (!tokens.length) return [];
  // A batch asks for tens of thousands of tokens: one array parameter, not one parameter per token (which
  // the ORM builds and the server binds one by one).
  const rows = await rowsOf<{ token: number; spam: number; ham: number }>(
    db.execute(sql`
      select token, spam, ham from spam_tokens
       where organization_id = ${organizationId} and token = any(${sql.param(tokens)}::int[])`),
  );
  return rows.map((r) => ({ organizationId, token: r.token, spam: r.spam, ham: r.ham }));
}

/**
 * Adds (or, negative, takes back) counts, one statement for a whole batch of reports. Only what was
 * learned is ever taken back, so a count never goes below zero.
 */
export async function addTokens(tx: Db, rows: TokenRow[]): Promise<void> {
  if (!rows.length) return;
  await tx.execute(sql`
    insert into spam_tokens (organization_id, token, spam, ham)
    select * from unnest(${sql.param(rows.map((r) => r.organizationId))}::uuid[],
                         ${sql.param(rows.map((r) => r.token))}::int[],
                         ${sql.param(rows.map((r) => r.spam))}::int[],
                         ${sql.param(rows.map((r) => r.ham))}::int[])
    on conflict (organization_id, token) do update
      set spam = spam_tokens.spam + excluded.spam, ham = spam_tokens.ham + excluded.ham`);
}

export async function report(
  tx: Db,
  row: {
    messageId: string;
    organizationId: string;
    verdict: Verdict;
    phishing: boolean;
    source: ReportSource;
    userId: string | null;
  },
): Promise<void> {
  await tx
    .insert(spamReports)
    .values(row)
    .onConflictDoUpdate({
      target: spamReports.messageId,
      set: {
        verdict: row.verdict,
        phishing: row.phishing,
        source: row.source,
        userId: row.userId,
        reportedAt: sql`now()`,
      },
    });
}

/** Reports in several messages at once (a client moving many to Junk), in one statement. */
export async function reportMany(
  tx: Db,
  organizationId: string,
  messageIds: string[],
  verdict: Verdict,
  source: ReportSource,
): Promise<void> {
  if (!messageIds.length) return;
  // Distinct: two copies of one message moved together would be two rows for one conflict target.
  await tx.execute(sql`
    insert into spam_reports (message_id, organization_id, verdict, source)
    select m, ${organizationId}::uuid, ${verdict}, ${source} from unnest(${sql.param([...new Set(messageIds)])}::uuid[]) m
    on conflict (message_id) do update set verdict = excluded.verdict, source = excluded.source, reported_at = now()`);
}

export interface Unlearned {
  messageId: string;
  organizationId: string;
  verdict: Verdict;
  learned: Verdict | null;
}

/** Reports whose verdict is not learned yet (or changed since), oldest first. */
export async function unlearned(db: Db, limit: number): Promise<Unlearned[]> {
  const rows = await rowsOf<{
    message_id: string;
    organization_id: string;
    verdict: Verdict;
    learned: Verdict | null;
  }>(
    db.execute(sql`select message_id, organization_id, verdict, learned from spam_reports
                    where learned is distinct from verdict order by reported_at limit ${limit}`),
  );
  return rows.map((r) => ({
    messageId: r.message_id,
    organizationId: r.organization_id,
    verdict: r.verdict,
    learned: r.learned,
  }));
}

/**
 * Marks reports learned, each only if it still says what was read (another worker, or a changed mind,
 * may have moved it on): the ones this call settled, whose counts the caller then applies.
 */
export async function settleReports(tx: Db, reports: Unlearned[]): Promise<Set<string>> {
  if (!reports.length) return new Set();
  const rows = await rowsOf<{ message_id: string }>(
    tx.execute(sql`
      update spam_reports r set learned = x.v
        from unnest(${sql.param(reports.map((r) => r.messageId))}::uuid[],
                    ${sql.param(reports.map((r) => r.verdict))}::text[],
                    ${sql.param(reports.map((r) => r.learned))}::text[]) as x(m, v, o)
       where r.message_id = x.m and r.verdict = x.v and r.learned is not distinct from x.o
      returning r.message_id`),
  );
  return new Set(rows.map((r) => r.message_id));
}

// ---- keyword statistics --------------------------------------------------------------------------------

export async function termStats(
  db: Db,
  organizationId: string,
  terms: string[],
): Promise<{ documents: number; frequency: Map<string, number> }> {
  const [corpus] = await db.select().from(termCorpus).where(eq(termCorpus.organizationId, organizationId));
  // Thousands of terms a batch: one array parameter (as learnedTokens).
  const rows = terms.length
    ? await rowsOf<{ term: string; documents: number }>(
        db.execute(sql`
          select term, documents from term_documents
           where organization_id = ${organizationId} and term = any(${sql.param(terms)}::text[])`),
      )
    : [];
  return { documents: corpus?.documents ?? 0, frequency: new Map(rows.map((r) => [r.term, r.documents])) };
}

/** Counts a batch of messages into the statistics: per term, how many of them hold it. */
export async function addTerms(
  tx: Db,
  organizationId: string,
  documents: number,
  counts: Map<string, number>,
): Promise<void> {
  if (!documents) return;
  await tx.execute(sql`
    insert into term_corpus (organization_id, documents) values (${organizationId}, ${documents})
    on conflict (organization_id) do update set documents = term_corpus.documents + excluded.documents`);
  if (!counts.size) return;
  // In the index's order: each row's leaf page is the last one's or the next (a batch's thousands of terms
  // otherwise land all over the index), and two workers' batches lock shared terms in the same order.
  await tx.execute(sql`
    insert into term_documents (organization_id, term, documents)
    select ${organizationId}::uuid, t, n from unnest(${sql.param([...counts.keys()])}::text[], ${sql.param([...counts.values()])}::int[]) as x(t, n)
     order by t
    on conflict (organization_id, term) do update set documents = term_documents.documents + excluded.documents`);
}

// ---- custom categories ---------------------------------------------------------------------------------

export async function addExamples(tx: Db, organizationId: string, category: string, messageIds: string[]) {
  if (!messageIds.length) return;
  await tx
    .insert(categoryExamples)
    .values([...new Set(messageIds)].map((messageId) => ({ organizationId, messageId, category })))
    .onConflictDoUpdate({
      target: [categoryExamples.organizationId, categoryExamples.messageId],
      set: { category, createdAt: sql`now()` },
    });
}

export async function removeCategory(tx: Db, organizationId: string, category: string): Promise<number> {
  const rows = await tx
    .delete(categoryExamples)
    .where(and(eq(categoryExamples.organizationId, organizationId), eq(categoryExamples.category, category)))
    .returning({ id: categoryExamples.messageId });
  return rows.length;
}

export async function examplesOf(db: Db, organizationId: string) {
  return db
    .select({ messageId: categoryExamples.messageId, category: categoryExamples.category })
    .from(categoryExamples)
    .where(eq(categoryExamples.organizationId, organizationId));
}
