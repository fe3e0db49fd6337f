// One folder's sync over an open IMAP connection, in named steps:
//   validity  a new UIDVALIDITY means every UID changed: the folder's copies are dropped and it is synced
//             again from scratch (messages kept in other folders stay)
//   first     the window's UIDs (SINCE n days ago), newest first, in batches; UIDs stored already (a sync
//             cut short) are skipped, so nothing is stored twice
//   arrivals  UIDs from the folder's UIDNEXT on, announced
//   changes   flags changed since the last HIGHESTMODSEQ (CONDSTORE), or every kept copy's flags
//   removals  kept UIDs the server no longer has (one UID SEARCH), removed with the messages no other
//             copy keeps
// Progress is saved after each step, so a connection that drops loses at most the batch in flight.
import type { FetchMessageObject, FetchQueryObject, ImapFlow } from 'imapflow';
import type { BlobStore } from '../../../core/blobs.ts';
import type { Db } from '../../../core/db.ts';
import { accountMessageUpdated, accountRef } from '../events.ts';
import type { MailAccountRow } from '../tables.ts';
import type { SyncContext } from './context.ts';
import { type FetchedMessage, storeFetched } from './ingest.ts';
import * as store from './store.ts';
import type { AccountFolderRow } from './tables.ts';

const DAY_MS = 86_400_000;

export interface FolderSession {
  ctx: SyncContext;
  client: ImapFlow;
  account: MailAccountRow;
  /** The server offers Gmail's extension (labels, message and thread ids). */
  gmail: boolean;
  condstore: boolean;
}

/** What the sync writes per copy, as strings (IMAP flags, labels). */
const flagsOf = (set: Set<string> | undefined) => [...(set ?? [])].sort();

/** Syncs one folder; the caller holds no mailbox lock. */
export async function syncFolder(s: FolderSession, folder: AccountFolderRow): Promise<void> {
  const selected = s.client.mailbox && s.client.mailbox.path === folder.path;
  const lock = await s.client.getMailboxLock(folder.path, { description: 'sync' });
  try {
    // The selected folder's UIDNEXT and HIGHESTMODSEQ date from its SELECT: selecting again reads them now.
    if (selected) await s.client.mailboxOpen(folder.path);
    const box = s.client.mailbox;
    if (!box) throw new Error(`${folder.path} could not be selected`);
    const uidValidity = Number(box.uidValidity);
    // Read now: a message that arrives during this sync has a UID from here on, for the next one to find.
    const uidNext = Number(box.uidNext);
    let current = folder;
    if (folder.uidValidity !== null && folder.uidValidity !== uidValidity) current = await reset(s, folder);
    if (current.uidValidity === null || current.lastSyncedAt === null)
      current = await firstSync(s, current, uidValidity, uidNext);
    else {
      // The kept UIDs, read once: arrivals skips them, removals looks for them on the server (what
      // arrives now is on the server, so it need not be among them).
      const known = await store.knownUids(s.ctx.db, folder.id);
      const arrived = await arrivals(s, current, new Set(known));
      await changes(s, current, box.highestModseq ?? null);
      await removals(s, current, known, arrived);
    }
    await store.saveProgress(s.ctx.db, folder.id, {
      uidValidity,
      uidNext: Math.max(current.uidNext, uidNext),
      highestModseq: box.highestModseq ?? null,
      lastSyncedAt: new Date(),
    });
  } finally {
    lock.release();
  }
}

/** validity: the folder's copies go; the messages only they kept go with them. */
async function reset(s: FolderSession, folder: AccountFolderRow): Promise<AccountFolderRow> {
  s.ctx.log.info({ account: s.account.id, folder: folder.path }, 'UIDVALIDITY changed: resyncing the folder');
  await s.ctx.db.transaction(async (tx) => {
    const held = await store.clearFolder(tx, folder.id);
    await removeOrphans(s.ctx.blobs, s.account, tx, held);
    await store.saveProgress(tx, folder.id, {
      uidValidity: null,
      uidNext: 1,
      highestModseq: null,
      lowUid: 1,
      lastSyncedAt: null,
    });
  });
  return { ...folder, uidValidity: null, uidNext: 1, highestModseq: null, lowUid: 1, lastSyncedAt: null };
}

/** first: the window, newest first; the folder counts as synced only once all of it is stored. */
async function firstSync(
  s: FolderSession,
  folder: AccountFolderRow,
  uidValidity: number,
  uidNext: number,
): Promise<AccountFolderRow> {
  const since = new Date(Date.now() - s.account.syncDays * DAY_MS);
  const found = (await s.client.search({ since }, { uid: true })) || [];
  const known = new Set(await store.knownUids(s.ctx.db, folder.id));
  const wanted = found.filter((uid) => !known.has(uid)).sort((a, b) => b - a);
  // The window's oldest UID: older messages are the server's alone, and never looked at again.
  const lowUid = found.length ? Math.min(...found) : uidNext;
  await store.saveProgress(s.ctx.db, folder.id, { uidValidity, lowUid });
  await fetchAndStore(s, folder, wanted, false);
  return { ...folder, uidValidity, lowUid, uidNext };
}

/** arrivals: everything from UIDNEXT on. */
/** Returns how many arrivals it asked for. */
async function arrivals(s: FolderSession, folder: AccountFolderRow, known: Set<number>): Promise<number> {
  const box = s.client.mailbox;
  if (box && Number(box.uidNext) <= folder.uidNext) return 0;
  const found = (await s.client.search({ uid: `${folder.uidNext}:*` }, { uid: true })) || [];
  // `n:*` always matches the last message, even when its UID is below n.
  const fresh = found.filter((uid) => uid >= folder.uidNext && !known.has(uid)).sort((a, b) => a - b);
  await fetchAndStore(s, folder, fresh, true);
  return fresh.length;
}

/** changes: flags (and Gmail labels) that differ from the kept copies'. */
async function changes(
  s: FolderSession,
  folder: AccountFolderRow,
  highestModseq: bigint | null,
): Promise<void> {
  if (folder.uidNext <= folder.lowUid) return;
  const useModseq = s.condstore && folder.highestModseq !== null && highestModseq !== null;
  if (useModseq && highestModseq === folder.highestModseq) return;
  const query: FetchQueryObject = { uid: true, flags: true, labels: s.gmail };
  const seen: { uid: number; flags: string[]; labels: string[]; modseq: bigint | null }[] = [];
  for await (const m of s.client.fetch(
    `${folder.lowUid}:${folder.uidNext - 1}`,
    query,
    useModseq ? { uid: true, changedSince: folder.highestModseq! } : { uid: true },
  ))
    seen.push({ uid: m.uid, flags: flagsOf(m.flags), labels: flagsOf(m.labels), modseq: m.modseq ?? null });
  if (!seen.length) return;
  const kept = new Map(
    (
      await store.copiesOf(
        s.ctx.db,
        folder.id,
        seen.map((m) => m.uid),
      )
    ).map((c) => [c.uid, c]),
  );
  const changed = seen.filter((m) => {
    const copy = kept.get(m.uid);
    return copy && (copy.flags.join() !== m.flags.join() || copy.labels.join() !== m.labels.join());
  });
  if (!changed.length) return;
  await s.ctx.db.transaction(async (tx) => {
    await store.updateCopies(tx, folder.id, changed);
    await s.ctx.events.emitMany(
      tx,
      changed.map((m) =>
        updatedEvent(s.account, folder.path, kept.get(m.uid)!.messageId, m.uid, m.flags, false),
      ),
    );
  });
}

/** removals: kept UIDs the server does not list any more. */
async function removals(
  s: FolderSession,
  folder: AccountFolderRow,
  known: number[],
  arrived: number,
): Promise<void> {
  if (!known.length) return;
  const box = s.client.mailbox;
  // Nothing was expunged when the server holds as many messages as are kept (none older than the window).
  if (box && folder.lowUid <= 1 && box.exists === known.length + arrived) return;
  const present = new Set((await s.client.search({ uid: `${known[0]}:*` }, { uid: true })) || []);
  const gone = known.filter((uid) => !present.has(uid));
  if (!gone.length) return;
  const copies = await store.copiesOf(s.ctx.db, folder.id, gone);
  await s.ctx.db.transaction(async (tx) => {
    const held = await store.deleteCopies(tx, folder.id, gone);
    await removeOrphans(s.ctx.blobs, s.account, tx, held);
    await s.ctx.events.emitMany(
      tx,
      copies.map((c) => updatedEvent(s.account, folder.path, c.messageId, c.uid, c.flags, true)),
    );
  });
}

/**
 * Fetches the UIDs in batches (in the order given) and stores each; the next batch is fetched while the
 * last one is stored.
 */
async function fetchAndStore(
  s: FolderSession,
  folder: AccountFolderRow,
  uids: number[],
  announce: boolean,
): Promise<void> {
  const size = s.ctx.settings.batchSize;
  let storing: Promise<void> = Promise.resolve();
  try {
    for (let i = 0; i < uids.length; i += size) {
      const batch = await fetchBatch(s, uids.slice(i, i + size));
      await storing;
      storing = storeFetched(s.ctx, s.account, folder, batch, announce);
      // A failed store must not go unobserved while the next fetch runs.
      storing.catch(() => {});
    }
  } finally {
    await storing;
  }
}

async function fetchBatch(s: FolderSession, uids: number[]): Promise<FetchedMessage[]> {
  if (!uids.length) return [];
  const query: FetchQueryObject = {
    uid: true,
    flags: true,
    internalDate: true,
    source: true,
    labels: s.gmail,
    emailId: s.gmail,
  };
  const fetched: FetchedMessage[] = [];
  for await (const m of s.client.fetch(uids.join(','), query, { uid: true })) {
    // A message the server could not give (expunged meanwhile) is left for the next sync.
    if (!m.source) continue;
    fetched.push(fetchedOf(m));
  }
  return fetched;
}

function fetchedOf(m: FetchMessageObject): FetchedMessage {
  const date = m.internalDate ? new Date(m.internalDate) : null;
  return {
    uid: m.uid,
    source: m.source!,
    flags: flagsOf(m.flags),
    internalDate: date && !Number.isNaN(date.getTime()) ? date : null,
    modseq: m.modseq ?? null,
    emailId: m.emailId ?? null,
    labels: flagsOf(m.labels),
  };
}

/** Deletes the messages no copy keeps any more, with their bytes. */
export async function removeOrphans(
  blobStore: BlobStore,
  account: MailAccountRow,
  tx: Db,
  messageIds: string[],
): Promise<void> {
  const blobs = await store.deleteOrphans(tx, account.id, messageIds);
  if (blobs.length) await blobStore.delete(tx, account.organizationId, blobs);
}

export function updatedEvent(
  account: MailAccountRow,
  folder: string,
  messageId: string,
  uid: number,
  flags: string[],
  deleted: boolean,
) {
  return {
    definition: accountMessageUpdated,
    organizationId: account.organizationId,
    data: {
      ...accountRef(account),
      message_id: messageId,
      folder,
      uid,
      flags,
      deleted,
    },
  };
}
