import type { SQL } from 'drizzle-orm';
import type { Db } from '../../core/db.ts';
import { uuidArrayLiteral } from '../../core/ids.ts';
import { and, asc, count, desc, eq, inArray, sql } from '../../core/orm.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import {
  type CampaignRow,
  type CampaignStatus,
  type ContactRow,
  type ImportRow,
  type ListRow,
  type OnDuplicate,
  type RecipientRow,
  type RecipientStatus,
  smsCampaignRecipients as r,
  smsCampaigns,
  smsContactImports,
  smsContacts as c,
  smsLists,
  smsTemplates,
  type TemplateRow,
} from './tables.ts';

type Rows<T> = { rows: T[] };

const likePattern = (text: string) => `%${text.replace(/[\\%_]/g, (m) => `\\${m}`)}%`;

// ---- templates -----------------------------------------------------------------------------------------

export async function insertTemplate(db: Db, row: typeof smsTemplates.$inferInsert): Promise<TemplateRow> {
  const [created] = await db.insert(smsTemplates).values(row).returning();
  return created;
}

export async function templateById(db: Db, organizationId: string, id: string): Promise<TemplateRow | null> {
  const [row] = await db
    .select()
    .from(smsTemplates)
    .where(and(eq(smsTemplates.organizationId, organizationId), eq(smsTemplates.id, id)));
  return row ?? null;
}

export async function listTemplates(
  db: Db,
  organizationId: string,
  search: string | undefined,
  page: PageRequest,
) {
  const where = and(
    eq(smsTemplates.organizationId, organizationId),
    search ? sql`${smsTemplates.name} ilike ${likePattern(search)}` : undefined,
  );
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(smsTemplates)
      .where(where)
      .orderBy(asc(smsTemplates.name))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(smsTemplates).where(where),
  ]);
  return { rows, total: Number(total) };
}

export async function updateTemplate(
  db: Db,
  organizationId: string,
  id: string,
  changes: Partial<Pick<TemplateRow, 'name' | 'body' | 'description'>>,
): Promise<TemplateRow | null> {
  const [row] = await db
    .update(smsTemplates)
    .set({ ...changes, updatedAt: sql`now()` })
    .where(and(eq(smsTemplates.organizationId, organizationId), eq(smsTemplates.id, id)))
    .returning();
  return row ?? null;
}

export async function deleteTemplate(db: Db, organizationId: string, id: string): Promise<boolean> {
  const rows = await db
    .delete(smsTemplates)
    .where(and(eq(smsTemplates.organizationId, organizationId), eq(smsTemplates.id, id)))
    .returning({ id: smsTemplates.id });
  return rows.length > 0;
}

/** Campaigns not yet started that use the template or list: they would lose it. */
export async function draftsUsing(
  db: Db,
  organizationId: string,
  what: { templateId?: string; listId?: string },
): Promise<{ id: string; name: string }[]> {
  return db
    .select({ id: smsCampaigns.id, name: smsCampaigns.name })
    .from(smsCampaigns)
    .where(
      and(
        eq(smsCampaigns.organizationId, organizationId),
        what.templateId ? eq(smsCampaigns.templateId, what.templateId) : undefined,
        what.listId ? eq(smsCampaigns.listId, what.listId) : undefined,
        what.listId ? inArray(smsCampaigns.status, ['draft', 'scheduled']) : eq(smsCampaigns.status, 'draft'),
      ),
    )
    .limit(10);
}

// ---- contacts ------------------------------------------------------------------------------------------

export interface ContactFilter {
  /** Part of the number (digits) or of the name. */
  search?: string;
  /** Contacts carrying every one of these tags. */
  tags?: string[];
  listId?: string;
  /** Custom fields with exactly these values. */
  fields?: Record<string, string>;
  ids?: string[];
}

/** The filter as a condition on sms_contacts (unaliased), always scoped to the organisation. */
export function contactCondition(organizationId: string, f: ContactFilter): SQL {
  const parts: SQL[] = [sql`${c.organizationId} = ${organizationId}`];
  if (f.search) {
    const digits = f.search.replace(/[^0-9]/g, '');
    const byName = sql`${c.name} ilike ${likePattern(f.search)}`;
    parts.push(digits ? sql`(${c.phone} like ${likePattern(digits)} or ${byName})` : byName);
  }
  if (f.tags?.length) parts.push(sql`${c.tags} @> ${sql.param(f.tags)}::text[]`);
  if (f.listId) parts.push(sql`${c.listIds} @> array[${f.listId}]::uuid[]`);
  if (f.fields && Object.keys(f.fields).length)
    parts.push(sql`${c.fields} @> ${JSON.stringify(f.fields)}::jsonb`);
  if (f.ids) parts.push(sql`${c.id} = any(${uuidArrayLiteral(f.ids)}::uuid[])`);
  return sql.join(parts, sql` and `);
}

export async function insertContact(db: Db, row: typeof c.$inferInsert): Promise<ContactRow | null> {
  const [created] = await db.insert(c).values(row).onConflictDoNothing().returning();
  return created ?? null;
}

export async function contactById(db: Db, organizationId: string, id: string): Promise<ContactRow | null> {
  const [row] = await db
    .select()
    .from(c)
    .where(and(eq(c.organizationId, organizationId), eq(c.id, id)));
  return row ?? null;
}

export async function contactByPhone(
  db: Db,
  organizationId: string,
  phone: string,
): Promise<ContactRow | null> {
  const [row] = await db
    .select()
    .from(c)
    .where(and(eq(c.organizationId, organizationId), eq(c.phone, phone)));
  return row ?? null;
}

export async function listContacts(db: Db, organizationId: string, filter: ContactFilter, page: PageRequest) {
  const where = contactCondition(organizationId, filter);
  const [rows, [{ total }]] = await Promise.all([
    db.select().from(c).where(where).orderBy(desc(c.id)).limit(page.page_size).offset(offsetOf(page)),
    db.select({ total: count() }).from(c).where(where),
  ]);
  return { rows, total: Number(total) };
}

export async function updateContact(
  db: Db,
  organizationId: string,
  id: string,
  changes: { phone?: string; name?: string | null; fields?: Record<string, string>; tags?: string[] },
): Promise<ContactRow | null> {
  const [row] = await db
    .update(c)
    .set({ ...changes, updatedAt: sql`now()` })
    .where(and(eq(c.organizationId, organizationId), eq(c.id, id)))
    .returning();
  return row ?? null;
}

export async function deleteContact(db: Db, organizationId: string, id: string): Promise<boolean> {
  const rows = await db
    .delete(c)
    .where(and(eq(c.organizationId, organizationId), eq(c.id, id)))
    .returning({ id: c.id });
  return rows.length > 0;
}

/** The ids among these that are not the organisation's contacts. */
export async function unknownContacts(db: Db, organizationId: string, ids: string[]): Promise<string[]> {
  if (!ids.length) return [];
  const found = await db
    .select({ id: c.id })
    .from(c)
    .where(and(eq(c.organizationId, organizationId), inArray(c.id, ids)));
  const known = new Set(found.map((f) => f.id));
  return ids.filter((id) => !known.has(id));
}

// ---- lists ---------------------------------------------------------------------------------------------

export type ListWithCount = ListRow & { members: number };

// Qualified by hand: inside the subquery the ORM's bare column names would mean the contact's columns.
const memberCount = sql<number>`(select count(*)::int from sms_contacts s
  where s.organization_id = sms_lists.organization_id and s.list_ids @> array[sms_lists.id])`;

export async function insertList(db: Db, row: typeof smsLists.$inferInsert): Promise<ListRow> {
  const [created] = await db.insert(smsLists).values(row).returning();
  return created;
}

export async function listById(db: Db, organizationId: string, id: string): Promise<ListWithCount | null> {
  const [row] = await db
    .select({ list: smsLists, members: memberCount })
    .from(smsLists)
    .where(and(eq(smsLists.organizationId, organizationId), eq(smsLists.id, id)));
  return row ? { ...row.list, members: Number(row.members) } : null;
}

export async function listLists(
  db: Db,
  organizationId: string,
  search: string | undefined,
  page: PageRequest,
) {
  const where = and(
    eq(smsLists.organizationId, organizationId),
    search ? sql`${smsLists.name} ilike ${likePattern(search)}` : undefined,
  );
  const [rows, [{ total }]] = await Promise.all([
    db
      .select({ list: smsLists, members: memberCount })
      .from(smsLists)
      .where(where)
      .orderBy(asc(smsLists.name))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(smsLists).where(where),
  ]);
  return { rows: rows.map((x) => ({ ...x.list, members: Number(x.members) })), total: Number(total) };
}

export async function updateList(
  db: Db,
  organizationId: string,
  id: string,
  changes: { name?: string; description?: string | null },
): Promise<boolean> {
  const rows = await db
    .update(smsLists)
    .set({ ...changes, updatedAt: sql`now()` })
    .where(and(eq(smsLists.organizationId, organizationId), eq(smsLists.id, id)))
    .returning({ id: smsLists.id });
  return rows.length > 0;
}

export async function deleteList(db: Db, organizationId: string, id: string): Promise<boolean> {
  await removeMembers(db, organizationId, id, {});
  const rows = await db
    .delete(smsLists)
    .where(and(eq(smsLists.organizationId, organizationId), eq(smsLists.id, id)))
    .returning({ id: smsLists.id });
  return rows.length > 0;
}

/** Adds the organisation's contacts that match to the list; how many were not members yet. */
export async function addMembers(db: Db, organizationId: string, listId: string, filter: ContactFilter) {
  const { rows } = (await db.execute(sql`
    with added as (
      update sms_contacts set list_ids = list_ids || ${listId}::uuid
       where ${contactCondition(organizationId, filter)} and not (list_ids @> array[${listId}]::uuid[])
      returning 1)
    select count(*)::int as n from added`)) as Rows<{ n: number }>;
  return rows[0].n;
}

/** Takes the organisation's contacts that match off the list; how many were on it. */
export async function removeMembers(db: Db, organizationId: string, listId: string, filter: ContactFilter) {
  const { rows } = (await db.execute(sql`
    with removed as (
      update sms_contacts set list_ids = array_remove(list_ids, ${listId}::uuid)
       where ${contactCondition(organizationId, filter)} and list_ids @> array[${listId}]::uuid[]
      returning 1)
    select count(*)::int as n from removed`)) as Rows<{ n: number }>;
  return rows[0].n;
}

// ---- imports -------------------------------------------------------------------------------------------

export async function insertImport(db: Db, row: typeof smsContactImports.$inferInsert): Promise<ImportRow> {
  const [created] = await db.insert(smsContactImports).values(row).returning();
  return created;
}

export async function importById(db: Db, organizationId: string, id: string): Promise<ImportRow | null> {
  const [row] = await db
    .select()
    .from(smsContactImports)
    .where(and(eq(smsContactImports.organizationId, organizationId), eq(smsContactImports.id, id)));
  return row ?? null;
}

export async function importByJob(db: Db, jobId: string): Promise<ImportRow | null> {
  const [row] = await db.select().from(smsContactImports).where(eq(smsContactImports.jobId, jobId));
  return row ?? null;
}

export async function listImports(db: Db, organizationId: string, page: PageRequest) {
  const where = eq(smsContactImports.organizationId, organizationId);
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(smsContactImports)
      .where(where)
      .orderBy(desc(smsContactImports.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(smsContactImports).where(where),
  ]);
  return { rows, total: Number(total) };
}

/**
 * An import of the same file that stands (its job did not fail and was not cancelled). The advisory
 * lock keeps two uploads of one file from both passing this check.
 */
export async function standingImportOf(
  tx: Db,
  organizationId: string,
  sha256: string,
): Promise<ImportRow | null> {
  await tx.execute(
    sql`select pg_advisory_xact_lock(hashtextextended(${`sms-import:${organizationId}:${sha256}`}, 0))`,
  );
  const { rows } = (await tx.execute(sql`
    select i.id from sms_contact_imports i join tracked_jobs j on j.id = i.job_id
     where i.organization_id = ${organizationId} and i.sha256 = ${sha256}
       and j.state not in ('failed', 'cancelled')
     order by i.id limit 1`)) as Rows<{ id: string }>;
  return rows[0] ? importById(tx, organizationId, rows[0].id) : null;
}

/** One row of a file, ready to write. */
export interface ImportedContact {
  id: string;
  phone: string;
  name: string | null;
  fields: Record<string, string>;
  tags: string[];
}

/**
 * Writes a chunk of rows (numbers unique within it) in one statement: new numbers become contacts, known
 * ones are updated (name when given, fields merged, tags added) or left as they are, and every number of
 * the chunk joins the list when one is given (and still exists). How many were created and updated.
 */
export async function writeImportChunk(
  tx: Db,
  organizationId: string,
  rows: ImportedContact[],
  onDuplicate: OnDuplicate,
  listId: string | null,
): Promise<{ created: number; updated: number }> {
  if (!rows.length) return { created: 0, updated: 0 };
  // The list as an array of itself, or empty when it is gone.
  const lists = listId
    ? sql`coalesce((select array_agg(id) from sms_lists where id = ${listId} and organization_id = ${organizationId}), '{}')`
    : sql`'{}'::uuid[]`;
  const joinList = sql`case when sms_contacts.list_ids @> excluded.list_ids then sms_contacts.list_ids
                            else sms_contacts.list_ids || excluded.list_ids end`;
  const conflict =
    onDuplicate === 'update'
      ? sql`do update set name = coalesce(excluded.name, sms_contacts.name),
              fields = sms_contacts.fields || excluded.fields,
              tags = case when excluded.tags = '{}' then sms_contacts.tags
                          else (select array_agg(distinct t order by t) from unnest(sms_contacts.tags || excluded.tags) t) end,
              list_ids = ${joinList},
              updated_at = now()`
      : listId
        ? // Skipped numbers still join the list; nothing else of theirs changes.
          sql`do update set list_ids = ${joinList} where not (sms_contacts.list_ids @> excluded.list_ids)`
        : sql`do nothing`;
  const { rows: counts } = (await tx.execute(sql`
    with up as (
      insert into sms_contacts (id, organization_id, phone, name, fields, tags, list_ids)
      select v.id, ${organizationId}, v.phone, v.name, v.fields, v.tags, ${lists}
        from json_to_recordset(${JSON.stringify(rows)}::json)
          as v(id uuid, phone text, name text, fields jsonb, tags text[])
      on conflict (organization_id, phone) ${conflict}
      returning (xmax = 0) as inserted)
    select count(*) filter (where inserted)::int as created, count(*) filter (where not inserted)::int as updated
      from up`)) as Rows<{ created: number; updated: number }>;
  return onDuplicate === 'update' ? counts[0] : { created: counts[0].created, updated: 0 };
}

export async function addImportCounts(
  tx: Db,
  id: string,
  n: { rows: number; created: number; updated: number; skipped: number; failed: number },
): Promise<void> {
  await tx
    .update(smsContactImports)
    .set({
      rows: sql`${smsContactImports.rows} + ${n.rows}`,
      created: sql`${smsContactImports.created} + ${n.created}`,
      updated: sql`${smsContactImports.updated} + ${n.updated}`,
      skipped: sql`${smsContactImports.skipped} + ${n.skipped}`,
      failed: sql`${smsContactImports.failed} + ${n.failed}`,
    })
    .where(eq(smsContactImports.id, id));
}

// ---- campaigns -----------------------------------------------------------------------------------------

export async function insertCampaign(db: Db, row: typeof smsCampaigns.$inferInsert): Promise<CampaignRow> {
  const [created] = await db.insert(smsCampaigns).values(row).returning();
  return created;
}

/** The campaign; `lock` takes its row lock (state changes serialise on it). */
export async function campaignById(
  db: Db,
  organizationId: string,
  id: string,
  lock = false,
): Promise<CampaignRow | null> {
  const query = db
    .select()
    .from(smsCampaigns)
    .where(and(eq(smsCampaigns.organizationId, organizationId), eq(smsCampaigns.id, id)));
  const [row] = lock ? await query.for('update') : await query;
  return row ?? null;
}

export async function campaignByJob(db: Db, jobId: string): Promise<CampaignRow | null> {
  const [row] = await db.select().from(smsCampaigns).where(eq(smsCampaigns.jobId, jobId));
  return row ?? null;
}

export async function listCampaigns(
  db: Db,
  organizationId: string,
  status: CampaignStatus | undefined,
  page: PageRequest,
) {
  const where = and(
    eq(smsCampaigns.organizationId, organizationId),
    status ? eq(smsCampaigns.status, status) : undefined,
  );
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(smsCampaigns)
      .where(where)
      .orderBy(desc(smsCampaigns.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(smsCampaigns).where(where),
  ]);
  return { rows, total: Number(total) };
}

export async function updateCampaign(
  db: Db,
  id: string,
  changes: Partial<typeof smsCampaigns.$inferInsert>,
): Promise<CampaignRow> {
  const [row] = await db
    .update(smsCampaigns)
    .set({ ...changes, updatedAt: sql`now()` })
    .where(eq(smsCampaigns.id, id))
    .returning();
  return row;
}

export async function deleteCampaign(db: Db, organizationId: string, id: string): Promise<void> {
  await db
    .delete(smsCampaigns)
    .where(and(eq(smsCampaigns.organizationId, organizationId), eq(smsCampaigns.id, id)));
}

/** Recipients by status, for each campaign. */
export async function progressOf(
  db: Db,
  campaignIds: string[],
): Promise<Map<string, Record<string, number>>> {
  const out = new Map<string, Record<string, number>>();
  if (!campaignIds.length) return out;
  const { rows } = (await db.execute(sql`
    select campaign_id, status, count(*)::int as n from sms_campaign_recipients
     where campaign_id = any(${uuidArrayLiteral(campaignIds)}::uuid[])
     group by 1, 2`)) as Rows<{ campaign_id: string; status: string; n: number }>;
  for (const row of rows) {
    const progress = out.get(row.campaign_id) ?? {};
    progress[row.status] = Number(row.n);
    out.set(row.campaign_id, progress);
  }
  return out;
}

/**
 * Takes the list's members as the campaign's recipients, numbered in the order they will be sent, less
 * the numbers in `excluded`. How many were taken.
 */
export async function snapshotRecipients(tx: Db, campaign: CampaignRow, excluded: string[]): Promise<number> {
  const { rows } = (await tx.execute(sql`
    with taken as (
      insert into sms_campaign_recipients (id, organization_id, campaign_id, seq, contact_id, phone, status)
      select sms_uuid_v7(), ${campaign.organizationId}, ${campaign.id},
             row_number() over (order by s.id), s.id, s.phone, 'pending'
        from sms_contacts s
       where s.organization_id = ${campaign.organizationId} and s.list_ids @> array[${campaign.listId}]::uuid[]
         ${excluded.length ? sql`and s.phone <> all(${sql.param(excluded)}::text[])` : sql``}
      returning 1)
    select count(*)::int as n from taken`)) as Rows<{ n: number }>;
  return rows[0].n;
}

/** Campaigns that should have a runner: scheduled or active. */
export async function unfinishedCampaigns(
  db: Db,
): Promise<{ id: string; organizationId: string; jobId: string | null }[]> {
  return db
    .select({ id: smsCampaigns.id, organizationId: smsCampaigns.organizationId, jobId: smsCampaigns.jobId })
    .from(smsCampaigns)
    .where(inArray(smsCampaigns.status, ['scheduled', 'active']));
}

/** Recipients handed over whose messages are not sent yet. */
export async function queuedCount(db: Db, campaignId: string): Promise<number> {
  const { rows } = (await db.execute(sql`
    select count(*)::int as n from sms_campaign_recipients
     where campaign_id = ${campaignId} and status = 'queued'`)) as Rows<{ n: number }>;
  return rows[0].n;
}

/**
 * Whether any recipient waits to be handed over (`pending`: 0 or 1), and how many handed over wait to be
 * sent, counted up to `cap`: a runner asks before every chunk, and must not count the whole list.
 */
export async function unfinishedRecipients(
  db: Db,
  campaignId: string,
  cap: number,
): Promise<{ pending: number; queued: number }> {
  const { rows } = (await db.execute(sql`
    select exists (select 1 from sms_campaign_recipients
                    where campaign_id = ${campaignId} and status = 'pending')::int as pending,
           (select count(*)::int from (select 1 from sms_campaign_recipients
             where campaign_id = ${campaignId} and status = 'queued' limit ${cap}) q) as queued`)) as Rows<{
    pending: number;
    queued: number;
  }>;
  return rows[0];
}

/** Recipients whose message was withdrawn for good (cancelled through the API, or the number opted out). */
export async function closeWithdrawn(
  tx: Db,
  withdrawn: { message_id: string; status: 'skipped' | 'cancelled'; error: string }[],
): Promise<string[]> {
  if (!withdrawn.length) return [];
  const { rows } = (await tx.execute(sql`
    update sms_campaign_recipients r
       set status = w.status, error = w.error, updated_at = now()
      from json_to_recordset(${JSON.stringify(withdrawn)}::json) as w(message_id uuid, status text, error text)
     where r.message_id = w.message_id and r.status = 'queued'
    returning r.campaign_id`)) as Rows<{ campaign_id: string }>;
  return [...new Set(rows.map((row) => row.campaign_id))];
}

/** A pending recipient with what its message is rendered from. */
export interface DueRecipient {
  id: string;
  seq: number;
  attempts: number;
  phone: string;
  contact_id: string | null;
  name: string | null;
  fields: Record<string, unknown> | null;
  tags: string[] | null;
}

/** The next pending recipients in order, locked until the transaction ends. */
export async function nextPending(tx: Db, campaignId: string, limit: number): Promise<DueRecipient[]> {
  const { rows } = (await tx.execute(sql`
    select x.id, x.seq, x.attempts, x.phone, x.contact_id, s.name, s.fields, s.tags
      from (select id, seq, attempts, phone, contact_id from sms_campaign_recipients
             where campaign_id = ${campaignId} and status = 'pending'
             order by seq limit ${limit} for update) x
      left join sms_contacts s on s.id = x.contact_id
     order by x.seq`)) as Rows<DueRecipient>;
  return rows.map((row) => ({
    ...row,
    fields: typeof row.fields === 'string' ? JSON.parse(row.fields) : row.fields,
  }));
}

export interface RecipientOutcome {
  id: string;
  status: 'queued' | 'failed' | 'skipped';
  message_id: string | null;
  error_code: string | null;
  error: string | null;
}

/** What became of a chunk handed to the queue, in one statement. */
export async function recordHandOver(tx: Db, outcomes: RecipientOutcome[], at: Date): Promise<void> {
  if (!outcomes.length) return;
  await tx.execute(sql`
    update sms_campaign_recipients r
       set status = o.status, message_id = o.message_id, error_code = o.error_code, error = o.error,
           attempts = r.attempts + (o.status = 'queued')::int,
           queued_at = case when o.status = 'queued' then ${at}::timestamptz else r.queued_at end,
           failed_at = case when o.status = 'failed' then ${at}::timestamptz else r.failed_at end,
           updated_at = now()
      from json_to_recordset(${JSON.stringify(outcomes)}::json)
        as o(id uuid, status text, message_id uuid, error_code text, error text)
     where r.id = o.id`);
}

/** Counts `n` more messages handed over on the campaign's local day `day`. */
export async function countForDay(tx: Db, campaignId: string, day: string, n: number): Promise<void> {
  await tx.execute(sql`
    update sms_campaigns
       set day_count = case when day = ${day}::date then day_count + ${n} else ${n} end, day = ${day}::date
     where id = ${campaignId}`);
}

/** A status the sms module reports for a campaign's message. */
export interface MessageStatus {
  message_id: string;
  status: 'sent' | 'delivered' | 'failed' | 'undelivered';
  error_code: string | null;
  error: string | null;
  at: string;
}

/** How far along a status is: a report never moves a recipient back. */
const rank = (status: SQL) =>
  sql`(case ${status} when 'pending' then 0 when 'queued' then 1 when 'sent' then 2 else 3 end)`;

/**
 * The sms module's reports on campaign messages, in one statement (in the events' transaction): each
 * message's recipient takes its status. Campaigns touched.
 */
export async function applyMessageStatuses(tx: Db, reports: MessageStatus[]): Promise<string[]> {
  if (!reports.length) return [];
  const { rows } = (await tx.execute(sql`
    update sms_campaign_recipients r
       set status = m.status,
           error_code = coalesce(m.error_code, r.error_code),
           error = coalesce(m.error, r.error),
           sent_at = case when m.status = 'sent' then m.at
                          when m.status = 'delivered' then coalesce(r.sent_at, m.at) else r.sent_at end,
           delivered_at = case when m.status = 'delivered' then m.at else r.delivered_at end,
           failed_at = case when m.status in ('failed', 'undelivered') then m.at else r.failed_at end,
           updated_at = now()
      from (select distinct on (message_id) *
              from json_to_recordset(${JSON.stringify(reports)}::json)
                as x(message_id uuid, status text, error_code text, error text, at timestamptz)
             order by message_id, ${rank(sql`x.status`)} desc, x.at desc) m
     where r.message_id = m.message_id
       and r.status not in ('skipped', 'cancelled')
       and ${rank(sql`r.status`)} < ${rank(sql`m.status`)}
    returning r.campaign_id`)) as Rows<{ campaign_id: string }>;
  return [...new Set(rows.map((row) => row.campaign_id))];
}

/**
 * Recipients waiting on messages the sms module cancelled: back to pending (to be handed over again),
 * or cancelled with their campaign. How many.
 */
export async function releaseCancelled(
  db: Db,
  campaignId: string,
  messageIds: string[],
  to: 'pending' | 'cancelled',
): Promise<number> {
  if (!messageIds.length) return 0;
  const { rows } = (await db.execute(sql`
    with back as (
      update sms_campaign_recipients
         set status = ${to}, message_id = case when ${to} = 'pending' then null else message_id end,
             queued_at = case when ${to} = 'pending' then null else queued_at end, updated_at = now()
       where campaign_id = ${campaignId} and status = 'queued'
         and message_id = any(${uuidArrayLiteral(messageIds)}::uuid[])
      returning 1)
    select count(*)::int as n from back`)) as Rows<{ n: number }>;
  return rows[0].n;
}

/** Recipients never handed over (or handed back), cancelled with their campaign; how many. */
export async function cancelPending(tx: Db, campaignId: string): Promise<number> {
  const { rows } = (await tx.execute(sql`
    with gone as (
      update sms_campaign_recipients set status = 'cancelled', updated_at = now()
       where campaign_id = ${campaignId} and status = 'pending'
      returning 1)
    select count(*)::int as n from gone`)) as Rows<{ n: number }>;
  return rows[0].n;
}

export interface RecipientFilter {
  status?: RecipientStatus[];
  phone?: string;
}

export async function listRecipients(
  db: Db,
  organizationId: string,
  campaignId: string,
  filter: RecipientFilter,
  page: PageRequest,
): Promise<{ rows: RecipientRow[]; total: number }> {
  const where = and(
    eq(r.organizationId, organizationId),
    eq(r.campaignId, campaignId),
    filter.status?.length ? inArray(r.status, filter.status) : undefined,
    filter.phone ? sql`${r.phone} like ${likePattern(filter.phone.replace(/[^0-9]/g, ''))}` : undefined,
  );
  const [rows, [{ total }]] = await Promise.all([
    db.select().from(r).where(where).orderBy(asc(r.seq)).limit(page.page_size).offset(offsetOf(page)),
    db.select({ total: count() }).from(r).where(where),
  ]);
  return { rows, total: Number(total) };
}
