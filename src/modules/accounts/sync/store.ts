// The queries of account sync: folders and their progress, the copies of messages on the server, and
// the messages no copy names any more. Every statement names the account (or a folder of it).
import type { Db } from '../../../core/db.ts';
import { and, asc, eq, inArray, sql } from '../../../core/orm.ts';
import { type AccountFolderRow, accountFolders, accountMessages } from './tables.ts';

type Rows<T> = { rows: T[] };

export interface ListedFolder {
  path: string;
  delimiter: string | null;
  specialUse: string | null;
}

export function foldersOf(db: Db, accountId: string): Promise<AccountFolderRow[]> {
  return db
    .select()
    .from(accountFolders)
    .where(eq(accountFolders.accountId, accountId))
    .orderBy(asc(accountFolders.path));
}

export async function folderById(db: Db, accountId: string, id: string): Promise<AccountFolderRow | null> {
  const [row] = await db
    .select()
    .from(accountFolders)
    .where(and(eq(accountFolders.accountId, accountId), eq(accountFolders.id, id)));
  return row ?? null;
}

export async function insertFolders(
  db: Db,
  account: { id: string; organizationId: string },
  folders: (ListedFolder & { id: string })[],
): Promise<void> {
  if (!folders.length) return;
  await db
    .insert(accountFolders)
    .values(folders.map((f) => ({ ...f, accountId: account.id, organizationId: account.organizationId })))
    .onConflictDoNothing();
}

export async function updateFolderListing(db: Db, id: string, folder: ListedFolder): Promise<void> {
  await db
    .update(accountFolders)
    .set({ delimiter: folder.delimiter, specialUse: folder.specialUse })
    .where(eq(accountFolders.id, id));
}

/** Removes folders (and their copies); returns the messages they held, for removeOrphans. */
export async function deleteFolders(db: Db, ids: string[]): Promise<string[]> {
  if (!ids.length) return [];
  const held = await db
    .selectDistinct({ messageId: accountMessages.messageId })
    .from(accountMessages)
    .where(inArray(accountMessages.folderId, ids));
  await db.delete(accountFolders).where(inArray(accountFolders.id, ids));
  return held.map((r) => r.messageId);
}

export interface FolderProgress {
  uidValidity: number | null;
  uidNext: number;
  highestModseq: bigint | null;
  lowUid: number;
  lastSyncedAt: Date | null;
}

export async function saveProgress(db: Db, id: string, progress: Partial<FolderProgress>): Promise<void> {
  await db.update(accountFolders).set(progress).where(eq(accountFolders.id, id));
}

/** The UIDs of the folder's copies, ascending. */
export async function knownUids(db: Db, folderId: string): Promise<number[]> {
  const rows = await db
    .select({ uid: accountMessages.uid })
    .from(accountMessages)
    .where(eq(accountMessages.folderId, folderId))
    .orderBy(asc(accountMessages.uid));
  return rows.map((r) => r.uid);
}

export interface CopyState {
  uid: number;
  messageId: string;
  flags: string[];
  labels: string[];
}

export async function copiesOf(db: Db, folderId: string, uids: number[]): Promise<CopyState[]> {
  if (!uids.length) return [];
  return db
    .select({
      uid: accountMessages.uid,
      messageId: accountMessages.messageId,
      flags: accountMessages.flags,
      labels: accountMessages.labels,
    })
    .from(accountMessages)
    .where(and(eq(accountMessages.folderId, folderId), inArray(accountMessages.uid, uids)));
}

/** The message already stored for each of these Gmail message ids (one message in several labels). */
export async function messagesByEmailId(
  db: Db,
  accountId: string,
  emailIds: string[],
): Promise<Map<string, string>> {
  if (!emailIds.length) return new Map();
  const rows = await db
    .selectDistinct({ emailId: accountMessages.emailId, messageId: accountMessages.messageId })
    .from(accountMessages)
    .where(and(eq(accountMessages.accountId, accountId), inArray(accountMessages.emailId, emailIds)));
  return new Map(rows.map((r) => [r.emailId!, r.messageId]));
}

export interface NewCopy {
  organizationId: string;
  accountId: string;
  folderId: string;
  uid: number;
  messageId: string;
  flags: string[];
  modseq: bigint | null;
  emailId: string | null;
  labels: string[];
}

/** Records copies; one already recorded (a sync that ran twice) is left as it is. */
export async function insertCopies(db: Db, copies: NewCopy[]): Promise<void> {
  if (copies.length) await db.insert(accountMessages).values(copies).onConflictDoNothing();
}

export interface CopyChange {
  uid: number;
  flags: string[];
  labels: string[];
  modseq: bigint | null;
}

/** Sets flags (and labels) of copies, in one statement. */
export async function updateCopies(db: Db, folderId: string, changes: CopyChange[]): Promise<void> {
  if (!changes.length) return;
  const json = JSON.stringify(
    changes.map((c) => ({
      uid: c.uid,
      flags: c.flags,
      labels: c.labels,
      modseq: c.modseq?.toString() ?? null,
    })),
  );
  await db.execute(sql`
    update account_messages c set flags = r.flags, labels = r.labels, modseq = coalesce(r.modseq, c.modseq)
      from jsonb_to_recordset(${json}::jsonb) as r(uid bigint, flags text[], labels text[], modseq bigint)
     where c.folder_id = ${folderId} and c.uid = r.uid`);
}

/** Moves a copy to where the server put it (a MOVE through the API, with the UID the server gave). */
export async function moveCopy(
  db: Db,
  from: { folderId: string; uid: number },
  to: { folderId: string; uid: number },
): Promise<void> {
  await db
    .update(accountMessages)
    .set({ folderId: to.folderId, uid: to.uid })
    .where(and(eq(accountMessages.folderId, from.folderId), eq(accountMessages.uid, from.uid)));
}

/** Removes copies; returns the messages they were of, for removeOrphans. */
export async function deleteCopies(db: Db, folderId: string, uids: number[]): Promise<string[]> {
  if (!uids.length) return [];
  const rows = await db
    .delete(accountMessages)
    .where(and(eq(accountMessages.folderId, folderId), inArray(accountMessages.uid, uids)))
    .returning({ messageId: accountMessages.messageId });
  return rows.map((r) => r.messageId);
}

/** Removes every copy in a folder (its UIDVALIDITY changed); returns the messages they were of. */
export async function clearFolder(db: Db, folderId: string): Promise<string[]> {
  const rows = await db
    .delete(accountMessages)
    .where(eq(accountMessages.folderId, folderId))
    .returning({ messageId: accountMessages.messageId });
  return [...new Set(rows.map((r) => r.messageId))];
}

/**
 * Deletes those of the messages that no copy names any more; returns their blobs, for the blob store
 * to delete in the same transaction.
 */
export async function deleteOrphans(db: Db, accountId: string, messageIds: string[]): Promise<string[]> {
  if (!messageIds.length) return [];
  const result = (await db.execute(sql`
    delete from messages m
     where m.account_id = ${accountId} and m.id = any(${`{${[...new Set(messageIds)].join(',')}}`}::uuid[])
       and not exists (select 1 from account_messages c where c.message_id = m.id)
    returning m.blob_id`)) as unknown as Rows<{ blob_id: string }>;
  return result.rows.map((r) => r.blob_id);
}

/** The blobs of every message of the account (to delete with it). */
export async function blobsOfAccount(db: Db, accountId: string): Promise<string[]> {
  const result = (await db.execute(
    sql`select blob_id from messages where account_id = ${accountId}`,
  )) as unknown as Rows<{ blob_id: string }>;
  return result.rows.map((r) => r.blob_id);
}

export interface SyncedCopy {
  folderId: string;
  path: string;
  specialUse: string | null;
  uid: number;
  flags: string[];
  labels: string[];
}

/** Where a synced message is on the server: its copies, with their folders. */
export async function copiesOfMessage(db: Db, accountId: string, messageId: string): Promise<SyncedCopy[]> {
  return db
    .select({
      folderId: accountMessages.folderId,
      path: accountFolders.path,
      specialUse: accountFolders.specialUse,
      uid: accountMessages.uid,
      flags: accountMessages.flags,
      labels: accountMessages.labels,
    })
    .from(accountMessages)
    .innerJoin(accountFolders, eq(accountFolders.id, accountMessages.folderId))
    .where(and(eq(accountMessages.accountId, accountId), eq(accountMessages.messageId, messageId)))
    .orderBy(asc(accountFolders.path));
}

/** A synced message as the accounts API shows it: its fields and where it is on the server. */
export interface SyncedMessageRow {
  id: string;
  thread_id: string | null;
  message_id_header: string | null;
  in_reply_to: string | null;
  references: string[];
  from_address: string | null;
  from_name: string | null;
  to_addresses: string[];
  cc_addresses: string[];
  subject: string | null;
  sent_at: string | null;
  received_at: string;
  size: number;
  has_attachments: boolean;
  copies: { folder: string; uid: number; flags: string[]; labels: string[] }[];
}

const SYNCED_FIELDS = sql`m.id, m.thread_id, m.message_id_header, m.in_reply_to, m."references", m.from_address,
  m.from_name, m.to_addresses, m.cc_addresses, m.subject, m.sent_at, m.received_at, m.size, m.has_attachments,
  (select coalesce(jsonb_agg(jsonb_build_object('folder', f.path, 'uid', c.uid, 'flags', c.flags,
                                                'labels', c.labels) order by f.path), '[]'::jsonb)
     from account_messages c join account_folders f on f.id = c.folder_id
    where c.message_id = m.id) as copies`;

const syncedView = (r: SyncedMessageRow & { sent_at: unknown; received_at: unknown }): SyncedMessageRow => ({
  ...r,
  sent_at: r.sent_at ? new Date(r.sent_at as string).toISOString() : null,
  received_at: new Date(r.received_at as string).toISOString(),
  size: Number(r.size),
});

/** The account's messages (in one folder when given), newest first. */
export async function listMessages(
  db: Db,
  accountId: string,
  folder: string | null,
  page: { page: number; page_size: number },
): Promise<{ rows: SyncedMessageRow[]; total: number }> {
  const inFolder = folder
    ? sql`and exists (select 1 from account_messages c join account_folders f on f.id = c.folder_id
                       where c.message_id = m.id and f.path = ${folder})`
    : sql``;
  const [rows, count] = await Promise.all([
    db.execute(sql`select ${SYNCED_FIELDS} from messages m where m.account_id = ${accountId} ${inFolder}
                    order by m.received_at desc, m.id desc
                    limit ${page.page_size} offset ${(page.page - 1) * page.page_size}`),
    db.execute(sql`select count(*)::int as n from messages m where m.account_id = ${accountId} ${inFolder}`),
  ]);
  return {
    rows: (rows as unknown as Rows<SyncedMessageRow>).rows.map(syncedView),
    total: (count as unknown as Rows<{ n: number }>).rows[0].n,
  };
}

export async function syncedMessage(db: Db, accountId: string, id: string): Promise<SyncedMessageRow | null> {
  const result = (await db.execute(
    sql`select ${SYNCED_FIELDS} from messages m where m.account_id = ${accountId} and m.id = ${id}`,
  )) as unknown as Rows<SyncedMessageRow>;
  return result.rows[0] ? syncedView(result.rows[0]) : null;
}

/** The account's folders with how many messages each keeps and how far their sync has come. */
export async function folderCounts(db: Db, accountId: string) {
  const result = (await db.execute(sql`
    select f.path, f.special_use, f.uid_validity, f.uid_next, f.last_synced_at,
           (select count(*)::int from account_messages c where c.folder_id = f.id) as messages,
           (select count(*)::int from account_messages c where c.folder_id = f.id
              and not ('\\Seen' = any(c.flags))) as unseen
      from account_folders f where f.account_id = ${accountId} order by f.path`)) as unknown as Rows<{
    path: string;
    special_use: string | null;
    uid_validity: string | number | null;
    uid_next: string | number;
    last_synced_at: string | Date | null;
    messages: number;
    unseen: number;
  }>;
  return result.rows.map((r) => ({
    path: r.path,
    special_use: r.special_use,
    uid_validity: r.uid_validity === null ? null : Number(r.uid_validity),
    uid_next: Number(r.uid_next),
    messages: r.messages,
    unseen: r.unseen,
    last_synced_at: r.last_synced_at ? new Date(r.last_synced_at).toISOString() : null,
  }));
}
