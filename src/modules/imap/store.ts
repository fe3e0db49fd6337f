// The queries of the message store as IMAP, POP3 and the folders API see it: folders with their UIDs
// and modification sequences, the messages in a folder with their flags, and every change to them.
// A change to a folder takes the folder's next modseq (one per statement, shared by the messages it
// changes, as Dovecot does) and is announced at commit (mailboxes/changes.ts).
import type { SQL } from 'drizzle-orm';
import type { Db } from '../../core/db.ts';
import { uuidArrayLiteral } from '../../core/ids.ts';
import { and, asc, eq, inArray, sql } from '../../core/orm.ts';
import { notifyFolders } from '../mailboxes/changes.ts';
import { type FolderRow, mailboxFolders, mailboxMessages } from '../mailboxes/tables.ts';

export interface FolderStats {
  messages: number;
  /** Arrived since a session last claimed the folder's new mail (\Recent). */
  recent: number;
  unseen: number;
  deleted: number;
  bytes: number;
}

/** A message copy as a session tracks it. */
export interface Entry {
  uid: number;
  flags: string[];
  modseq: number;
}

/** What FETCH reads of a message copy. */
export interface FetchRow extends Entry {
  size: number;
  internalDate: Date;
  messageId: string;
  blobId: string;
  structure: unknown;
}

type Rows<T> = { rows: T[] };
const rowsOf = async <T>(query: Promise<unknown>): Promise<T[]> => ((await query) as Rows<T>).rows;
const bigintArray = (values: number[]) => `{${values.join(',')}}`;
const textArray = (values: string[]) =>
  `{${values.map((v) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`;

// ---- folders ---------------------------------------------------------------------------------------

export function folders(db: Db, organizationId: string, mailboxId: string): Promise<FolderRow[]> {
  return db
    .select()
    .from(mailboxFolders)
    .where(and(eq(mailboxFolders.organizationId, organizationId), eq(mailboxFolders.mailboxId, mailboxId)))
    .orderBy(asc(mailboxFolders.name));
}

export async function folderByName(
  db: Db,
  organizationId: string,
  mailboxId: string,
  name: string,
): Promise<FolderRow | null> {
  const [row] = await db
    .select()
    .from(mailboxFolders)
    .where(
      and(
        eq(mailboxFolders.organizationId, organizationId),
        eq(mailboxFolders.mailboxId, mailboxId),
        eq(mailboxFolders.name, name),
      ),
    );
  return row ?? null;
}

export async function folderById(db: Db, organizationId: string, id: string): Promise<FolderRow | null> {
  const [row] = await db
    .select()
    .from(mailboxFolders)
    .where(and(eq(mailboxFolders.organizationId, organizationId), eq(mailboxFolders.id, id)));
  return row ?? null;
}

/** Message counts per folder of a mailbox (STATUS, LIST-STATUS, the API). */
export async function folderStats(
  db: Db,
  organizationId: string,
  folderIds: string[],
): Promise<Map<string, FolderStats>> {
  if (!folderIds.length) return new Map();
  const rows = await rowsOf<{ folder_id: string } & FolderStats>(
    db.execute(sql`
      select mm.folder_id, count(*)::int as messages,
             (count(*) filter (where mm.uid > f.recent_uid))::int as recent,
             (count(*) filter (where not ('\\Seen' = any(mm.flags))))::int as unseen,
             (count(*) filter (where '\\Deleted' = any(mm.flags)))::int as deleted,
             coalesce(sum(mm.size), 0)::float8 as bytes
        from mailbox_messages mm join mailbox_folders f on f.id = mm.folder_id
       where mm.organization_id = ${organizationId} and mm.folder_id = any(${uuidArrayLiteral(folderIds)}::uuid[])
       group by mm.folder_id`),
  );
  return new Map(rows.map(({ folder_id, ...stats }) => [folder_id, stats]));
}

/**
 * Inserts folders. A new folder's UIDVALIDITY is the time in seconds, and above every other of its
 * mailbox's, deleted ones included: a folder deleted and created again within a second must not reuse
 * the old one's.
 */
export async function insertFolders(
  tx: Db,
  rows: { id: string; organizationId: string; mailboxId: string; name: string; specialUse: string | null }[],
): Promise<void> {
  if (!rows.length) return;
  await tx.execute(sql`
    insert into mailbox_folders (id, organization_id, mailbox_id, name, special_use, uid_validity)
    select r.id, r.organization_id, r.mailbox_id, r.name, r.special_use,
           greatest(extract(epoch from now())::bigint,
                    (select coalesce(max(uid_validity), 0) + 1 from mailbox_folders where mailbox_id = r.mailbox_id),
                    (select last_uid_validity + 1 from mailboxes where id = r.mailbox_id))
      from jsonb_to_recordset(${JSON.stringify(
        rows.map((r) => ({
          id: r.id,
          organization_id: r.organizationId,
          mailbox_id: r.mailboxId,
          name: r.name,
          special_use: r.specialUse,
        })),
      )}::jsonb) as r(id uuid, organization_id uuid, mailbox_id uuid, name text, special_use text)
    on conflict (mailbox_id, name) do nothing`);
}

/** Renames a folder and everything under it (`a` → `b` makes `a/x` → `b/x`); the names it took. */
export async function renameFolder(
  tx: Db,
  organizationId: string,
  mailboxId: string,
  from: string,
  to: string,
): Promise<number> {
  const rows = await rowsOf<{ id: string }>(
    tx.execute(sql`
      update mailbox_folders set name = ${to} || substr(name, char_length(${from}::text) + 1)
       where organization_id = ${organizationId} and mailbox_id = ${mailboxId}
         and (name = ${from} or starts_with(name, ${`${from}/`}))
      returning id`),
  );
  return rows.length;
}

/** Deletes a folder with its messages, giving their bytes back to the mailbox. */
export async function deleteFolder(tx: Db, organizationId: string, folder: FolderRow): Promise<void> {
  await tx.execute(sql`
    with freed as (
      select coalesce(sum(size), 0) as bytes from mailbox_messages where folder_id = ${folder.id}
    )
    update mailboxes set used_bytes = greatest(0, used_bytes - freed.bytes), updated_at = now(),
           last_uid_validity = greatest(last_uid_validity, ${folder.uidValidity})
      from freed where id = ${folder.mailboxId} and organization_id = ${organizationId}`);
  await tx.execute(
    sql`delete from mailbox_folders where id = ${folder.id} and organization_id = ${organizationId}`,
  );
}

export async function setSubscribed(
  db: Db,
  organizationId: string,
  folderId: string,
  subscribed: boolean,
): Promise<void> {
  await db
    .update(mailboxFolders)
    .set({ subscribed })
    .where(and(eq(mailboxFolders.organizationId, organizationId), eq(mailboxFolders.id, folderId)));
}

/**
 * Takes the folder's new arrivals as \Recent for one session: the UIDs above the folder's mark, which
 * moves to the newest. Returns the first UID that is \Recent to this session.
 */
export async function claimRecent(db: Db, folderId: string): Promise<number> {
  const [row] = await rowsOf<{ first: string }>(
    db.execute(sql`
      update mailbox_folders f set recent_uid = f.uid_next - 1
        from (select recent_uid from mailbox_folders where id = ${folderId} for update) old
       where f.id = ${folderId}
      returning old.recent_uid + 1 as first`),
  );
  return row ? Number(row.first) : Number.MAX_SAFE_INTEGER;
}

// ---- messages --------------------------------------------------------------------------------------

const entryOf = (r: { uid: string | number; flags: string[]; modseq: string | number }): Entry => ({
  uid: Number(r.uid),
  flags: r.flags,
  modseq: Number(r.modseq),
});

/** Every message of a folder, in UID order (SELECT). */
export async function entries(db: Db, folderId: string): Promise<Entry[]> {
  const rows = await rowsOf<{ uid: string; flags: string[]; modseq: string }>(
    db.execute(
      sql`select uid, flags, modseq from mailbox_messages where folder_id = ${folderId} order by uid`,
    ),
  );
  return rows.map(entryOf);
}

export interface FolderChanges {
  /** The folder's highest modseq in the same snapshot: every change up to it is in this answer. */
  highestModseq: number;
  uidNext: number;
  /** Messages added or changed after the modseq, in UID order. */
  changed: Entry[];
  /** UIDs expunged after it. */
  expunged: number[];
}

/**
 * What changed in a folder after `modseq`, read in one statement (one snapshot): a change committed
 * between two reads could otherwise be seen by one and missed by the other. With `claimRecent`, new
 * arrivals are claimed as \Recent for the reading session in the same statement. Null: no such folder.
 */
export async function changesSince(
  db: Db,
  folderId: string,
  modseq: number,
  claimRecent = false,
): Promise<FolderChanges | null> {
  const rows = await rowsOf<{
    highest_modseq: string;
    uid_next: string;
    uid: string | null;
    flags: string[] | null;
    modseq: string | null;
    gone: boolean | null;
  }>(
    db.execute(sql`
      with claimed as (
        update mailbox_folders set recent_uid = uid_next - 1
         where id = ${folderId} and ${claimRecent}::boolean and recent_uid < uid_next - 1
           and highest_modseq > ${modseq}
      )
      select f.highest_modseq, f.uid_next, c.uid, c.flags, c.modseq, c.gone
        from mailbox_folders f
        left join lateral (
          select uid, flags, modseq, false as gone from mailbox_messages
           where folder_id = f.id and modseq > ${modseq} and f.highest_modseq > ${modseq}
          union all
          select uid, null, modseq, true from mailbox_expunged
           where folder_id = f.id and modseq > ${modseq} and f.highest_modseq > ${modseq}
        ) c on true
       where f.id = ${folderId}
       order by c.uid`),
  );
  if (!rows.length) return null;
  const changes: FolderChanges = {
    highestModseq: Number(rows[0].highest_modseq),
    uidNext: Number(rows[0].uid_next),
    changed: [],
    expunged: [],
  };
  for (const r of rows) {
    if (r.uid === null) continue;
    if (r.gone) changes.expunged.push(Number(r.uid));
    else changes.changed.push(entryOf(r as { uid: string; flags: string[]; modseq: string }));
  }
  return changes;
}

/**
 * Expunged UIDs after `modseq` (QRESYNC's VANISHED (EARLIER)). From a modseq older than what the folder
 * still remembers, every UID below UIDNEXT that it no longer holds.
 */
export async function expungedSince(db: Db, folderId: string, modseq: number): Promise<number[]> {
  const rows = await rowsOf<{ uid: string }>(
    db.execute(sql`
      select uid from mailbox_expunged where folder_id = ${folderId} and modseq > ${modseq}
      union
      select g.uid from mailbox_folders f, generate_series(1::bigint, f.uid_next - 1) as g(uid)
       where f.id = ${folderId} and f.expunged_floor > ${modseq}
         and not exists (select 1 from mailbox_messages c where c.folder_id = f.id and c.uid = g.uid)
      order by uid`),
  );
  return rows.map((r) => Number(r.uid));
}

/**
 * Forgets up to `limit` expunged UIDs recorded before `before`, raising each folder's floor to the
 * highest modseq forgotten; how many went.
 */
export async function pruneExpunged(db: Db, before: Date, limit: number): Promise<number> {
  const rows = await rowsOf<{ n: number }>(
    db.execute(sql`
      with gone as (
        delete from mailbox_expunged
         where ctid = any(array(select ctid from mailbox_expunged
                                 where expunged_at < ${before.toISOString()}::timestamptz limit ${limit}))
        returning folder_id, modseq
      ), raised as (
        update mailbox_folders f set expunged_floor = greatest(f.expunged_floor, g.modseq)
          from (select folder_id, max(modseq) as modseq from gone group by folder_id) g
         where f.id = g.folder_id
      )
      select count(*)::int as n from gone`),
  );
  return rows[0]?.n ?? 0;
}

/** The copies FETCH reads, with their message's stored structure, in UID order. */
export async function fetchRows(db: Db, folderId: string, uids: number[]): Promise<FetchRow[]> {
  if (!uids.length) return [];
  const rows = await rowsOf<{
    uid: string;
    flags: string[];
    modseq: string;
    size: number;
    created_at: string | Date;
    message_id: string;
    blob_id: string;
    structure: unknown;
  }>(
    db.execute(sql`
      select mm.uid, mm.flags, mm.modseq, mm.size, mm.created_at, mm.message_id, m.blob_id, m.structure
        from mailbox_messages mm join messages m on m.id = mm.message_id
       where mm.folder_id = ${folderId} and mm.uid = any(${bigintArray(uids)}::bigint[])
       order by mm.uid`),
  );
  return rows.map((r) => ({
    ...entryOf(r),
    size: r.size,
    internalDate: new Date(r.created_at),
    messageId: r.message_id,
    blobId: r.blob_id,
    structure: r.structure,
  }));
}

/** Stores computed structures (the first FETCH that needs one computes it). */
export async function saveStructures(
  db: Db,
  structures: { id: string; structure: unknown }[],
): Promise<void> {
  if (!structures.length) return;
  await db.execute(sql`
    update messages m set structure = s.structure
      from jsonb_to_recordset(${JSON.stringify(structures)}::jsonb) as s(id uuid, structure jsonb)
     where m.id = s.id`);
}

export type FlagChange = 'set' | 'add' | 'remove';

/** The new flags of a row, as an SQL expression over its `flags` (kept sorted, so equal sets compare equal). */
function changedFlags(mode: FlagChange, flags: string[]): SQL {
  const given = sql`${textArray(flags)}::text[]`;
  if (mode === 'set') return sql`array(select distinct f from unnest(${given}) f order by f)`;
  if (mode === 'add') return sql`array(select distinct f from unnest(flags || ${given}) f order by f)`;
  return sql`array(select f from unnest(flags) f where f <> all(${given}) order by f)`;
}

export interface StoreOutcome extends Entry {
  /** Whether this statement changed the copy (else its flags already were so). */
  changed: boolean;
  /** Refused by UNCHANGEDSINCE: changed after that modseq. */
  modified: boolean;
}

/**
 * Changes the flags of the copies with these UIDs; those changed take the folder's next modseq.
 * With `unchangedSince`, copies changed after it are left alone and reported as modified.
 */
export async function storeFlags(
  tx: Db,
  folderId: string,
  uids: number[],
  mode: FlagChange,
  flags: string[],
  unchangedSince: number | null,
): Promise<StoreOutcome[]> {
  if (!uids.length) return [];
  const guard = unchangedSince === null ? sql`true` : sql`t.modseq <= ${unchangedSince}`;
  const rows = await rowsOf<{
    uid: string;
    flags: string[];
    modseq: string;
    changed: boolean;
    modified: boolean;
  }>(
    tx.execute(sql`
      with target as (
        select id, uid, flags, modseq, ${changedFlags(mode, flags)} as wanted from mailbox_messages
         where folder_id = ${folderId} and uid = any(${bigintArray(uids)}::bigint[])
         order by uid for update
      ), changing as (
        select t.* from target t where t.wanted is distinct from t.flags and ${guard}
      ), bump as (
        update mailbox_folders set highest_modseq = highest_modseq + 1
         where id = ${folderId} and exists (select 1 from changing)
        returning highest_modseq
      ), done as (
        update mailbox_messages mm set flags = c.wanted, modseq = b.highest_modseq
          from changing c, bump b where mm.id = c.id
        returning mm.uid, mm.flags, mm.modseq
      )
      select t.uid, coalesce(d.flags, t.flags) as flags, coalesce(d.modseq, t.modseq) as modseq,
             d.uid is not null as changed, not (${guard}) as modified
        from target t left join done d on d.uid = t.uid
       order by t.uid`),
  );
  if (rows.some((r) => r.changed)) await notify(tx, [folderId]);
  return rows.map((r) => ({ ...entryOf(r), changed: r.changed, modified: r.modified }));
}

/**
 * Two CTEs for a statement that takes copies out of a folder: the folder's next modseq (when any went)
 * and the UIDs of `gone` (a CTE with a `uid` column) remembered as expunged under it.
 */
function expungeLogged(organizationId: string, folderId: string, gone: 'gone' | 'moved'): SQL {
  const from = sql.raw(gone);
  return sql`bump as (
      update mailbox_folders set highest_modseq = highest_modseq + 1
       where id = ${folderId} and exists (select 1 from ${from})
      returning highest_modseq
    ), logged as (
      insert into mailbox_expunged (organization_id, folder_id, uid, modseq)
      select ${organizationId}, ${folderId}, g.uid, b.highest_modseq from ${from} g, bump b
    )`;
}

export interface Removed {
  uid: number;
  messageId: string;
}

/**
 * Removes copies from a folder (EXPUNGE, MOVE's source, DELE): with `deletedOnly`, only those flagged
 * \Deleted. Their UIDs are remembered with the folder's next modseq and their bytes given back.
 */
export async function removeCopies(
  tx: Db,
  organizationId: string,
  folder: { id: string; mailboxId: string },
  uids: number[] | null,
  deletedOnly: boolean,
): Promise<Removed[]> {
  const which = uids === null ? sql`true` : sql`uid = any(${bigintArray(uids)}::bigint[])`;
  const flagged = deletedOnly ? sql`'\\Deleted' = any(flags)` : sql`true`;
  const rows = await rowsOf<{ uid: string; message_id: string }>(
    tx.execute(sql`
      with gone as (
        delete from mailbox_messages where folder_id = ${folder.id} and ${which} and ${flagged}
        returning uid, size, message_id
      ), ${expungeLogged(organizationId, folder.id, 'gone')}, freed as (
        update mailboxes set used_bytes = greatest(0, used_bytes - (select sum(size) from gone)), updated_at = now()
         where id = ${folder.mailboxId} and exists (select 1 from gone)
      )
      select uid, message_id from gone order by uid`),
  );
  if (rows.length) await notify(tx, [folder.id]);
  return rows.map((r) => ({ uid: Number(r.uid), messageId: r.message_id }));
}

/**
 * Messages a client stored (APPEND) that no folder holds any more: deleted; their blob ids are returned
 * for the blob store to delete. Mail that flowed stays in the message log.
 */
export async function dropUnfiledStored(
  tx: Db,
  organizationId: string,
  messageIds: string[],
): Promise<string[]> {
  if (!messageIds.length) return [];
  const rows = await rowsOf<{ blob_id: string }>(
    tx.execute(sql`
      delete from messages m
       where m.organization_id = ${organizationId} and m.id = any(${uuidArrayLiteral(messageIds)}::uuid[])
         and m.direction = 'stored'
         and not exists (select 1 from mailbox_messages mm where mm.message_id = m.id)
      returning m.blob_id`),
  );
  return rows.map((r) => r.blob_id);
}

/** A copied or moved message: its UID where it was and where it is now (COPYUID). */
export interface Placed {
  from: number;
  to: number;
}

/** Locks the mailbox row (every change of its folders takes it first, in the same order as filing). */
export async function lockMailbox(
  tx: Db,
  organizationId: string,
  mailboxId: string,
): Promise<{ quotaBytes: number; usedBytes: number; saveSent: boolean } | null> {
  const [row] = await rowsOf<{ quota_bytes: string; used_bytes: string; save_sent: boolean }>(
    tx.execute(sql`select quota_bytes, used_bytes, save_sent from mailboxes
                    where id = ${mailboxId} and organization_id = ${organizationId} for update`),
  );
  return row
    ? { quotaBytes: Number(row.quota_bytes), usedBytes: Number(row.used_bytes), saveSent: row.save_sent }
    : null;
}

/** The mailbox's folder for sent mail: special use \Sent (whatever it is called now). */
export async function sentFolder(
  tx: Db,
  organizationId: string,
  mailboxId: string,
): Promise<{ id: string } | null> {
  const [row] = await rowsOf<{ id: string }>(
    tx.execute(sql`select id from mailbox_folders
                    where organization_id = ${organizationId} and mailbox_id = ${mailboxId}
                      and special_use = '\\Sent' order by created_at limit 1`),
  );
  return row ?? null;
}

/** The bytes of the copies with these UIDs. */
export async function sizeOf(db: Db, folderId: string, uids: number[]): Promise<number> {
  const [row] = await rowsOf<{ bytes: number }>(
    db.execute(sql`select coalesce(sum(size), 0)::float8 as bytes from mailbox_messages
                    where folder_id = ${folderId} and uid = any(${bigintArray(uids)}::bigint[])`),
  );
  return row?.bytes ?? 0;
}

/** The messages of the copies with these UIDs in a folder. */
export async function messageIdsOf(db: Db, folderId: string, uids: number[]): Promise<string[]> {
  const rows = await rowsOf<{ message_id: string }>(
    db.execute(sql`select message_id from mailbox_messages
                    where folder_id = ${folderId} and uid = any(${bigintArray(uids)}::bigint[])`),
  );
  return rows.map((r) => r.message_id);
}

/**
 * Copies (or moves) the copies with these UIDs to another folder of the mailbox, in UID order, taking
 * new UIDs there. A move changes the rows in place (their ids, and delivery's mark, stay) and
 * remembers the old UIDs as expunged from the source.
 */
export async function placeCopies(
  tx: Db,
  organizationId: string,
  from: { id: string; mailboxId: string },
  to: { id: string },
  uids: number[],
  ids: string[],
  move: boolean,
): Promise<Placed[]> {
  if (!uids.length) return [];
  // The rows are locked in a subquery: FOR UPDATE cannot go with the window function.
  const source = sql`
    select id, uid, message_id, flags, size, created_at, (row_number() over (order by uid))::int as k
      from (select * from mailbox_messages where folder_id = ${from.id} and uid = any(${bigintArray(uids)}::bigint[])
            order by uid for update) locked`;
  const taken = sql`
    taken as (
      update mailbox_folders f set uid_next = f.uid_next + n.c, highest_modseq = f.highest_modseq + 1
        from (select count(*) as c from src) n
       where f.id = ${to.id} and n.c > 0
      returning f.uid_next - n.c as first_uid, f.highest_modseq
    )`;
  const rows = move
    ? await rowsOf<{ from_uid: string; to_uid: string }>(
        tx.execute(sql`
          with src as (${source}), ${taken},
          moved as (
            update mailbox_messages mm set folder_id = ${to.id}, uid = t.first_uid + s.k - 1, modseq = t.highest_modseq
              from src s, taken t where mm.id = s.id
            returning s.uid as uid, mm.uid as to_uid
          ), ${expungeLogged(organizationId, from.id, 'moved')}
          select uid as from_uid, to_uid from moved order by uid`),
      )
    : await rowsOf<{ from_uid: string; to_uid: string }>(
        tx.execute(sql`
          with src as (${source}), ${taken},
          inserted as (
            insert into mailbox_messages (id, organization_id, mailbox_id, folder_id, message_id, uid, flags, size,
                                          modseq, created_at)
            select (${uuidArrayLiteral(ids)}::uuid[])[s.k], ${organizationId}, ${from.mailboxId}, ${to.id},
                   s.message_id, t.first_uid + s.k - 1, s.flags, s.size, t.highest_modseq, s.created_at
              from src s, taken t
            returning size
          ), used as (
            update mailboxes set used_bytes = used_bytes + (select sum(size) from inserted), updated_at = now()
             where id = ${from.mailboxId} and exists (select 1 from inserted)
          )
          select s.uid as from_uid, t.first_uid + s.k - 1 as to_uid from src s, taken t order by s.uid`),
      );
  if (rows.length) await notify(tx, move ? [from.id, to.id] : [to.id]);
  return rows.map((r) => ({ from: Number(r.from_uid), to: Number(r.to_uid) }));
}

/** Files one message copy (APPEND, a sent copy) with its flags and internal date; its UID. */
export async function fileCopy(
  tx: Db,
  input: {
    id: string;
    organizationId: string;
    mailboxId: string;
    folderId: string;
    messageId: string;
    flags: string[];
    size: number;
    internalDate: Date;
  },
): Promise<number> {
  const [row] = await rowsOf<{ uid: string }>(
    tx.execute(sql`
      with taken as (
        update mailbox_folders set uid_next = uid_next + 1, highest_modseq = highest_modseq + 1
         where id = ${input.folderId}
        returning uid_next - 1 as uid, highest_modseq
      ), used as (
        update mailboxes set used_bytes = used_bytes + ${input.size}, updated_at = now() where id = ${input.mailboxId}
      )
      insert into mailbox_messages (id, organization_id, mailbox_id, folder_id, message_id, uid, flags, size, modseq,
                                    created_at)
      select ${input.id}, ${input.organizationId}, ${input.mailboxId}, ${input.folderId}, ${input.messageId}, t.uid,
             array(select distinct f from unnest(${textArray(input.flags)}::text[]) f order by f), ${input.size},
             t.highest_modseq, ${input.internalDate.toISOString()}
        from taken t
      returning uid`),
  );
  await notify(tx, [input.folderId]);
  return Number(row.uid);
}

/** Announces at commit that these folders changed. */
export async function notify(tx: Db, folderIds: string[]): Promise<void> {
  await tx.execute(notifyFolders(sql`select unnest(${uuidArrayLiteral(folderIds)}::uuid[]) as id`));
}

// ---- search ----------------------------------------------------------------------------------------

/** The folder's copies where `condition` (over `mm`, the copy, and `m`, its message) holds, in UID order. */
export async function searchUids(
  db: Db,
  folderId: string,
  condition: SQL,
): Promise<{ uid: number; modseq: number }[]> {
  const rows = await rowsOf<{ uid: string; modseq: string }>(
    db.execute(sql`select mm.uid, mm.modseq from mailbox_messages mm join messages m on m.id = mm.message_id
                    where mm.folder_id = ${folderId} and (${condition}) order by mm.uid`),
  );
  return rows.map((r) => ({ uid: Number(r.uid), modseq: Number(r.modseq) }));
}

/** The keywords used in a folder (PERMANENTFLAGS and FLAGS list them). */
export async function keywordsOf(db: Db, folderId: string): Promise<string[]> {
  const rows = await rowsOf<{ flag: string }>(
    db.execute(sql`select distinct f as flag from mailbox_messages, unnest(flags) f
                    where folder_id = ${folderId} and f not like '\\%' order by 1 limit 200`),
  );
  return rows.map((r) => r.flag);
}

export interface ListedCopy extends Entry {
  size: number;
  internalDate: Date;
  messageId: string;
  subject: string | null;
  fromAddress: string | null;
  fromName: string | null;
  sentAt: Date | null;
}

/** A page of a folder's copies, newest (highest UID) first, and how many there are. */
export async function pageOfCopies(
  db: Db,
  folderId: string,
  limit: number,
  offset: number,
): Promise<{ rows: ListedCopy[]; total: number }> {
  const [rows, [count]] = await Promise.all([
    rowsOf<{
      uid: string;
      flags: string[];
      modseq: string;
      size: number;
      created_at: string | Date;
      message_id: string;
      subject: string | null;
      from_address: string | null;
      from_name: string | null;
      sent_at: string | Date | null;
    }>(
      db.execute(sql`
        select mm.uid, mm.flags, mm.modseq, mm.size, mm.created_at, mm.message_id,
               m.subject, m.from_address, m.from_name, m.sent_at
          from mailbox_messages mm join messages m on m.id = mm.message_id
         where mm.folder_id = ${folderId}
         order by mm.uid desc limit ${limit} offset ${offset}`),
    ),
    rowsOf<{ total: number }>(
      db.execute(sql`select count(*)::int as total from mailbox_messages where folder_id = ${folderId}`),
    ),
  ]);
  return {
    total: count?.total ?? 0,
    rows: rows.map((r) => ({
      ...entryOf(r),
      size: r.size,
      internalDate: new Date(r.created_at),
      messageId: r.message_id,
      subject: r.subject,
      fromAddress: r.from_address,
      fromName: r.from_name,
      sentAt: r.sent_at ? new Date(r.sent_at) : null,
    })),
  };
}

/** A message's size, or null when the organisation has no such message. */
export async function messageSize(db: Db, organizationId: string, messageId: string): Promise<number | null> {
  const [row] = await rowsOf<{ size: number }>(
    db.execute(
      sql`select size from messages where id = ${messageId} and organization_id = ${organizationId}`,
    ),
  );
  return row?.size ?? null;
}

/** Every copy of a folder with its size and raw content's id, in UID order (POP3's maildrop). */
export async function listing(
  db: Db,
  folderId: string,
): Promise<{ uid: number; flags: string[]; size: number; blobId: string }[]> {
  const rows = await rowsOf<{ uid: string; flags: string[]; size: number; blob_id: string }>(
    db.execute(sql`select mm.uid, mm.flags, mm.size, m.blob_id from mailbox_messages mm
                     join messages m on m.id = mm.message_id
                    where mm.folder_id = ${folderId} order by mm.uid`),
  );
  return rows.map((r) => ({ uid: Number(r.uid), flags: r.flags, size: r.size, blobId: r.blob_id }));
}

/** Every copy of these messages, with its folder. */
export async function copiesOfMessages(
  db: Db,
  organizationId: string,
  messageIds: string[],
): Promise<Array<{ messageId: string; uid: number; folder: FolderRow }>> {
  if (!messageIds.length) return [];
  const rows = await db
    .select({ messageId: mailboxMessages.messageId, uid: mailboxMessages.uid, folder: mailboxFolders })
    .from(mailboxMessages)
    .innerJoin(mailboxFolders, eq(mailboxFolders.id, mailboxMessages.folderId))
    .where(
      and(eq(mailboxMessages.organizationId, organizationId), inArray(mailboxMessages.messageId, messageIds)),
    );
  return rows;
}
