import type { SQL } from 'drizzle-orm';
import type { Db } from '../../core/db.ts';
import { and, asc, count, desc, eq, sql } from '../../core/orm.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import {
  type ArticleRow,
  type ArticleStatus,
  type CategoryRow,
  type ChatMessageRow,
  type ConversationRow,
  chatConversations as cc,
  chatMessages as cm,
  kbArticles as a,
  kbCategories as c,
  kbSettings,
  type SettingsRow,
} from './tables.ts';

// ---- categories ------------------------------------------------------------------------------------------

export async function insertCategory(tx: Db, row: typeof c.$inferInsert): Promise<CategoryRow | undefined> {
  const [inserted] = await tx.insert(c).values(row).onConflictDoNothing().returning();
  return inserted;
}

export async function category(db: Db, organizationId: string, id: string): Promise<CategoryRow | undefined> {
  const [row] = await db
    .select()
    .from(c)
    .where(and(eq(c.organizationId, organizationId), eq(c.id, id)));
  return row;
}

export async function listCategories(db: Db, organizationId: string, page: PageRequest) {
  const where = eq(c.organizationId, organizationId);
  const [rows, [total]] = await Promise.all([
    db
      .select({
        category: c,
        articles: sql<number>`(select count(*)::int from helpdesk_kb_articles x where x.category_id = helpdesk_kb_categories.id)`,
      })
      .from(c)
      .where(where)
      .orderBy(asc(c.position), asc(c.name), asc(c.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ n: count() }).from(c).where(where),
  ]);
  return { rows, total: total?.n ?? 0 };
}

export async function articleCount(db: Db, categoryId: string): Promise<number> {
  const [row] = await db.select({ n: count() }).from(a).where(eq(a.categoryId, categoryId));
  return row?.n ?? 0;
}

/** Null when another category of the organisation has the name. */
export async function updateCategory(
  tx: Db,
  organizationId: string,
  id: string,
  changes: Partial<CategoryRow>,
): Promise<CategoryRow | null | undefined> {
  try {
    const [row] = await tx
      .update(c)
      .set(changes)
      .where(and(eq(c.organizationId, organizationId), eq(c.id, id)))
      .returning();
    return row;
  } catch (err) {
    if (uniqueViolation(err)) return null;
    throw err;
  }
}

export async function deleteCategory(tx: Db, organizationId: string, id: string): Promise<boolean> {
  const rows = await tx
    .delete(c)
    .where(and(eq(c.organizationId, organizationId), eq(c.id, id)))
    .returning({ id: c.id });
  return rows.length > 0;
}

// ---- articles --------------------------------------------------------------------------------------------

/** The article's search vector, from its own columns: title weighs A, tags B, body C (English stemming). */
async function refreshSearch(tx: Db, id: string): Promise<void> {
  await tx.execute(sql`
    update helpdesk_kb_articles
       set search = setweight(to_tsvector('english', title), 'A')
                 || setweight(to_tsvector('english', array_to_string(tags, ' ')), 'B')
                 || setweight(to_tsvector('english', body), 'C')
     where id = ${id}`);
}

/** Undefined when the slug is taken in the organisation. */
export async function insertArticle(tx: Db, row: typeof a.$inferInsert): Promise<ArticleRow | undefined> {
  const [inserted] = await tx.insert(a).values(row).onConflictDoNothing().returning();
  if (inserted) await refreshSearch(tx, inserted.id);
  return inserted;
}

export async function article(
  db: Db,
  organizationId: string,
  id: string,
  lock = false,
): Promise<ArticleRow | undefined> {
  const query = db
    .select()
    .from(a)
    .where(and(eq(a.organizationId, organizationId), eq(a.id, id)));
  const [row] = lock ? await query.for('update') : await query;
  return row;
}

/** Null when the new slug is taken. */
export async function updateArticle(
  tx: Db,
  id: string,
  changes: Partial<ArticleRow>,
): Promise<ArticleRow | null> {
  try {
    const [row] = await tx.update(a).set(changes).where(eq(a.id, id)).returning();
    if (changes.title !== undefined || changes.body !== undefined || changes.tags !== undefined)
      await refreshSearch(tx, id);
    return row!;
  } catch (err) {
    if (uniqueViolation(err)) return null;
    throw err;
  }
}

export async function deleteArticle(
  tx: Db,
  organizationId: string,
  id: string,
): Promise<ArticleRow | undefined> {
  const [row] = await tx
    .delete(a)
    .where(and(eq(a.organizationId, organizationId), eq(a.id, id)))
    .returning();
  return row;
}

/** Slugs of the organisation equal to `base` or `base-<n>`, to pick a free one. */
export async function slugsLike(db: Db, organizationId: string, base: string): Promise<string[]> {
  const rows = await db
    .select({ slug: a.slug })
    .from(a)
    .where(
      and(eq(a.organizationId, organizationId), sql`(${a.slug} = ${base} or ${a.slug} like ${`${base}-%`})`),
    );
  return rows.map((r) => r.slug);
}

export interface ArticleFilter {
  q?: string;
  category_id?: string;
  status?: ArticleStatus;
  tag?: string;
}

/** The query a `q` is read as: PostgreSQL's web search syntax over the English configuration. */
const webQuery = (q: string) => sql`websearch_to_tsquery('english', ${q})`;

/**
 * Articles by filter; with `q`, only those matching it, best first (ts_rank_cd, normalised to 0..1)
 * with a highlighted snippet of the body.
 */
export async function listArticles(db: Db, organizationId: string, filter: ArticleFilter, page: PageRequest) {
  const conditions: SQL[] = [eq(a.organizationId, organizationId)];
  if (filter.category_id) conditions.push(eq(a.categoryId, filter.category_id));
  if (filter.status) conditions.push(eq(a.status, filter.status));
  if (filter.tag) conditions.push(sql`${a.tags} @> array[${filter.tag}]::text[]`);
  if (filter.q) conditions.push(sql`search @@ ${webQuery(filter.q)}`);
  const where = and(...conditions);
  const rank = filter.q
    ? sql<number>`ts_rank_cd(search, ${webQuery(filter.q)}, 32)::float8`
    : sql<number>`null`;
  const snippet = filter.q
    ? sql<string>`ts_headline('english', ${a.body}, ${webQuery(filter.q)},
        'StartSel="**", StopSel="**", MaxWords=35, MinWords=12, MaxFragments=2, FragmentDelimiter=" … "')`
    : sql<string>`null`;
  const [rows, [total]] = await Promise.all([
    db
      .select({ article: a, rank, snippet })
      .from(a)
      .where(where)
      .orderBy(...(filter.q ? [desc(rank)] : []), desc(a.updatedAt), desc(a.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ n: count() }).from(a).where(where),
  ]);
  return { rows, total: total?.n ?? 0 };
}

/** The English stems of a text, as the articles' vectors hold them (stop words left out). */
export async function lexemesOf(db: Db, text: string): Promise<string[]> {
  const { rows } = (await db.execute(
    sql`select tsvector_to_array(to_tsvector('english', ${text})) as lexemes`,
  )) as { rows: { lexemes: string[] }[] };
  return rows[0]?.lexemes ?? [];
}

export interface Retrieved {
  article: ArticleRow;
  /** How many of the question's stems the article holds. */
  hits: number;
  /** ts_rank_cd of the any-stem query, normalised to 0..1. */
  rank: number;
}

/**
 * Published articles holding any of the stems, those holding the most first, then by ts_rank_cd (a
 * title match weighs most). `query` is the stems as one OR tsquery.
 */
export async function retrieve(
  db: Db,
  organizationId: string,
  lexemes: string[],
  limit: number,
): Promise<Retrieved[]> {
  if (!lexemes.length) return [];
  const query = sql`${lexemes.map(tsqueryLexeme).join(' | ')}::tsquery`;
  const hits = sql<number>`cardinality(array(
      select unnest(tsvector_to_array(search)) intersect select unnest(${sql.param(lexemes)}::text[])))`;
  const rank = sql<number>`ts_rank_cd(search, ${query}, 32)::float8`;
  const rows = await db
    .select({ article: a, hits, rank })
    .from(a)
    .where(and(eq(a.organizationId, organizationId), eq(a.status, 'published'), sql`search @@ ${query}`))
    .orderBy(desc(hits), desc(rank), desc(a.updatedAt))
    .limit(limit);
  return rows.map((r) => ({ article: r.article, hits: Number(r.hits), rank: Number(r.rank) }));
}

/** A stem quoted for tsquery input: quotes and backslashes doubled. */
function tsqueryLexeme(lexeme: string): string {
  return `'${lexeme.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** For each passage, how many of the stems it holds (in passage order). */
export async function passageHits(db: Db, passages: string[], lexemes: string[]): Promise<number[]> {
  if (!passages.length) return [];
  const { rows } = (await db.execute(sql`
    select p.ord::int as ord,
           cardinality(array(select unnest(tsvector_to_array(to_tsvector('english', p.t)))
                             intersect select unnest(${sql.param(lexemes)}::text[])))::int as hits
      from unnest(${sql.param(passages)}::text[]) with ordinality as p(t, ord)
     order by p.ord`)) as { rows: { ord: number; hits: number }[] };
  return rows.map((r) => Number(r.hits));
}

// ---- settings --------------------------------------------------------------------------------------------

export async function settings(db: Db, organizationId: string): Promise<SettingsRow | undefined> {
  const [row] = await db.select().from(kbSettings).where(eq(kbSettings.organizationId, organizationId));
  return row;
}

export async function putSettings(db: Db, row: typeof kbSettings.$inferInsert): Promise<SettingsRow> {
  const { organizationId: _, ...changes } = row;
  const [saved] = await db
    .insert(kbSettings)
    .values(row)
    .onConflictDoUpdate({ target: kbSettings.organizationId, set: changes })
    .returning();
  return saved!;
}

// ---- conversations ---------------------------------------------------------------------------------------

export async function conversation(
  db: Db,
  organizationId: string,
  id: string,
  lock = false,
): Promise<ConversationRow | undefined> {
  const query = db
    .select()
    .from(cc)
    .where(and(eq(cc.organizationId, organizationId), eq(cc.id, id)));
  const [row] = lock ? await query.for('update') : await query;
  return row;
}

export async function insertConversation(tx: Db, row: typeof cc.$inferInsert): Promise<ConversationRow> {
  const [inserted] = await tx.insert(cc).values(row).returning();
  return inserted!;
}

export async function updateConversation(
  tx: Db,
  id: string,
  changes: Partial<ConversationRow>,
): Promise<ConversationRow> {
  const [row] = await tx.update(cc).set(changes).where(eq(cc.id, id)).returning();
  return row!;
}

export async function insertMessages(tx: Db, rows: (typeof cm.$inferInsert)[]): Promise<void> {
  if (rows.length) await tx.insert(cm).values(rows);
}

/** The conversation's messages, oldest first (at most `limit`, the newest ones). */
export async function messagesOf(db: Db, conversationId: string, limit = 1000): Promise<ChatMessageRow[]> {
  const rows = await db
    .select()
    .from(cm)
    .where(eq(cm.conversationId, conversationId))
    .orderBy(desc(cm.createdAt), desc(cm.id))
    .limit(limit);
  return rows.reverse();
}

function uniqueViolation(err: unknown): boolean {
  for (let e = err as { code?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e)
    if (e.code === '23505') return true;
  return false;
}
