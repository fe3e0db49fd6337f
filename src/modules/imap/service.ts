// The message store as IMAP, POP3 and the folders API see it: folders (hierarchy with "/"), the
// messages in them with flags, UIDs and modification sequences, and every change to them. A change is
// one transaction that locks the mailbox row first (as filing does, so the two never deadlock), then
// its folders; it is announced at commit to this process's sessions at once and to other processes
// through NOTIFY. Delivery, the API and IMAP sessions change the same rows: there is one state.
import type { BlobStore } from '../../core/blobs.ts';
import type { Db } from '../../core/db.ts';
import { AppError, conflict, notFound } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { offsetOf, type PageRequest, toPage } from '../../core/pagination.ts';
import type { InboundService } from '../inbound/service.ts';
import type { FolderRow } from '../mailboxes/tables.ts';
import type { FolderHub } from './hub.ts';
import { analyseMessage, type MimeNode, STRUCTURE_VERSION } from './mime/structure.ts';
import type { SearchKey } from './protocol/arguments.ts';
import { type SearchContext, searchCondition } from './search.ts';
import * as store from './store.ts';

export type {
  Entry,
  FetchRow,
  FlagChange,
  FolderChanges,
  FolderStats,
  ListedCopy,
  Placed,
  StoreOutcome,
} from './store.ts';

/** Folders a mailbox may have, and how deep and long their names may be. */
export const MAX_FOLDERS = 1_000;
const MAX_FOLDER_NAME = 255;
const MAX_FOLDER_DEPTH = 16;
export const DELIMITER = '/';

export interface MailStoreOptions {
  db: Db;
  blobs: BlobStore;
  hub: FolderHub;
  inbound: InboundService;
}

/** A fetched copy with its message's MIME structure. */
export interface FetchedCopy extends store.FetchRow {
  structure: MimeNode;
}

export interface AppendInput {
  content: Buffer;
  flags: string[];
  date: Date | null;
}

interface StoredStructure {
  v: number;
  root: MimeNode;
}

export const overQuota = () => new AppError(403, 'over_quota', 'The mailbox is over its quota');
const cannot = (message: string) => new AppError(409, 'cannot', message);
const storedStructure = (raw: Buffer): StoredStructure => ({
  v: STRUCTURE_VERSION,
  root: analyseMessage(raw),
});
/** Bytes read at once to compute structures. */
const STRUCTURE_BYTES = 16 * 1024 * 1024;

/** How many of the first rows fit in `bytes` by their sizes (at least one). */
function prefixWithin(rows: readonly { size: number }[], bytes: number): number {
  let total = 0;
  let n = 0;
  for (const row of rows) {
    if (n > 0 && total + row.size > bytes) break;
    total += row.size;
    n++;
  }
  return n;
}

/** A folder name as stored: INBOX in upper case whatever the client wrote, hierarchy with "/". */
export function folderName(name: string): string {
  const normalised = /^inbox(\/|$)/i.test(name) ? `INBOX${name.slice(5)}` : name;
  if (!normalised || normalised.length > MAX_FOLDER_NAME)
    throw invalidName(`a folder name has 1 to ${MAX_FOLDER_NAME} characters`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f*%]/.test(normalised))
    throw invalidName('a folder name has no control characters, * or %');
  const levels = normalised.split(DELIMITER);
  if (levels.some((l) => l === '' || l.trim() !== l))
    throw invalidName('a folder name has no empty level, nor spaces around a level');
  if (levels.length > MAX_FOLDER_DEPTH) throw invalidName(`folders nest at most ${MAX_FOLDER_DEPTH} deep`);
  return normalised;
}

const invalidName = (message: string) => new AppError(400, 'invalid_folder_name', message);

/** The folder and the folders above it: `a/b/c` → `a`, `a/b`, `a/b/c`. */
function withParents(name: string): string[] {
  const levels = name.split(DELIMITER);
  return levels.map((_, i) => levels.slice(0, i + 1).join(DELIMITER));
}

/** Expunged UIDs one statement forgets. */
const PRUNE_BATCH = 10_000;

/**
 * What a person did to mail through a client or the API that others learn from: a move between folders
 * (into or out of Junk), or flags changed. Listeners run inside the change's transaction.
 */
export type MailChange =
  | { kind: 'moved'; organizationId: string; from: FolderRow; to: FolderRow; messageIds: string[] }
  | {
      kind: 'flagged';
      organizationId: string;
      folder: FolderRow;
      mode: store.FlagChange;
      flags: string[];
      messageIds: string[];
    };

export interface MailChangeListener {
  /** Flag changes are reported only when they touch one of these flags (compared in lower case). */
  flags: string[];
  listener: (tx: Db, change: MailChange) => Promise<void>;
}

export class MailStore {
  readonly #o: MailStoreOptions;
  readonly #listeners: MailChangeListener[] = [];

  constructor(options: MailStoreOptions) {
    this.#o = options;
  }

  /** Called in the transaction of each move and each flag change a listener watches (see MailChange). */
  onChange(listener: MailChangeListener): void {
    this.#listeners.push(listener);
  }

  async #announceChange(tx: Db, change: MailChange): Promise<void> {
    for (const { flags, listener } of this.#listeners) {
      if (change.kind === 'flagged') {
        const watched = new Set(flags.map((f) => f.toLowerCase()));
        if (!change.flags.some((f) => watched.has(f.toLowerCase()))) continue;
      }
      if (change.messageIds.length) await listener(tx, change);
    }
  }

  get hub(): FolderHub {
    return this.#o.hub;
  }

  // ---- folders -------------------------------------------------------------------------------------

  folders(organizationId: string, mailboxId: string): Promise<FolderRow[]> {
    return store.folders(this.#o.db, organizationId, mailboxId);
  }

  folder(organizationId: string, mailboxId: string, name: string): Promise<FolderRow | null> {
    return store.folderByName(this.#o.db, organizationId, mailboxId, name);
  }

  async folderById(organizationId: string, mailboxId: string, id: string): Promise<FolderRow> {
    const row = await store.folderById(this.#o.db, organizationId, id);
    if (!row || row.mailboxId !== mailboxId) throw notFound('Folder');
    return row;
  }

  stats(organizationId: string, folderIds: string[]): Promise<Map<string, store.FolderStats>> {
    return store.folderStats(this.#o.db, organizationId, folderIds);
  }

  /** Creates a folder, and the folders above it that do not exist yet. */
  async createFolder(organizationId: string, mailboxId: string, name: string): Promise<FolderRow> {
    const wanted = folderName(name);
    return this.#change(organizationId, mailboxId, async (tx) => {
      const existing = await store.folders(tx, organizationId, mailboxId);
      const names = new Set(existing.map((f) => f.name));
      if (names.has(wanted)) throw conflict(`The folder ${wanted} exists`);
      const missing = withParents(wanted).filter((n) => !names.has(n));
      if (existing.length + missing.length > MAX_FOLDERS)
        throw new AppError(403, 'limit_reached', `A mailbox has at most ${MAX_FOLDERS} folders`);
      await store.insertFolders(
        tx,
        missing.map((n) => ({ id: newId(), organizationId, mailboxId, name: n, specialUse: null })),
      );
      return (await store.folderByName(tx, organizationId, mailboxId, wanted))!;
    });
  }

  /**
   * Renames a folder with the folders under it. Renaming INBOX moves its messages to a new folder of
   * that name and leaves INBOX empty (RFC 3501 6.3.5).
   */
  async renameFolder(organizationId: string, mailboxId: string, from: string, to: string): Promise<void> {
    const source = folderName(from);
    const target = folderName(to);
    if (target === source || target.startsWith(`${source}${DELIMITER}`))
      throw cannot('A folder cannot be renamed into itself');
    if (target === 'INBOX' || target.startsWith(`INBOX${DELIMITER}`))
      throw cannot('INBOX cannot be renamed to');
    const changed = await this.#change(organizationId, mailboxId, async (tx) => {
      const existing = await store.folders(tx, organizationId, mailboxId);
      const byName = new Map(existing.map((f) => [f.name, f]));
      const folder = byName.get(source);
      if (!folder) throw notFound('Folder');
      if (byName.has(target)) throw conflict(`The folder ${target} exists`);
      const parents = withParents(target)
        .slice(0, -1)
        .filter((n) => !byName.has(n));
      await store.insertFolders(
        tx,
        parents.map((n) => ({ id: newId(), organizationId, mailboxId, name: n, specialUse: null })),
      );
      if (source === 'INBOX') {
        const id = newId();
        await store.insertFolders(tx, [{ id, organizationId, mailboxId, name: target, specialUse: null }]);
        const uids = (await store.entries(tx, folder.id)).map((e) => e.uid);
        await store.placeCopies(tx, organizationId, folder, { id }, uids, [], true);
        return [folder.id, id];
      }
      await store.renameFolder(tx, organizationId, mailboxId, source, target);
      return [];
    });
    this.#o.hub.announce(changed);
  }

  /** Deletes a folder and its messages. INBOX stays; a folder with folders under it waits for them. */
  async deleteFolder(organizationId: string, mailboxId: string, name: string): Promise<void> {
    const wanted = folderName(name);
    if (wanted === 'INBOX') throw cannot('INBOX cannot be deleted');
    const folderId = await this.#change(organizationId, mailboxId, async (tx) => {
      const existing = await store.folders(tx, organizationId, mailboxId);
      const folder = existing.find((f) => f.name === wanted);
      if (!folder) throw notFound('Folder');
      if (existing.some((f) => f.name.startsWith(`${wanted}${DELIMITER}`)))
        throw cannot(`The folder ${wanted} has folders under it: delete them first`);
      const uids = (await store.entries(tx, folder.id)).map((e) => e.uid);
      const removed = await store.removeCopies(tx, organizationId, folder, uids, false);
      await this.#dropUnfiled(tx, organizationId, removed);
      await store.deleteFolder(tx, organizationId, folder);
      return folder.id;
    });
    this.#o.hub.announce([folderId]);
  }

  async subscribe(
    organizationId: string,
    mailboxId: string,
    name: string,
    subscribed: boolean,
  ): Promise<void> {
    const folder = await this.folder(organizationId, mailboxId, folderName(name));
    if (!folder) throw notFound('Folder');
    await store.setSubscribed(this.#o.db, organizationId, folder.id, subscribed);
  }

  // ---- reading -------------------------------------------------------------------------------------

  /** Every copy of a folder in UID order; with `claimRecent`, the first UID \Recent to this session. */
  async open(
    folderId: string,
    claimRecent: boolean,
  ): Promise<{ entries: store.Entry[]; recentFrom: number }> {
    const recentFrom = claimRecent ? await store.claimRecent(this.#o.db, folderId) : Number.MAX_SAFE_INTEGER;
    return { entries: await store.entries(this.#o.db, folderId), recentFrom };
  }

  /** Every copy of a folder with its size and content id, in UID order (POP3). */
  listing(folderId: string) {
    return store.listing(this.#o.db, folderId);
  }

  /** What changed after `modseq`; with `claimRecent`, new arrivals become \Recent to the caller. */
  changesSince(folderId: string, modseq: number, claimRecent = false) {
    return store.changesSince(this.#o.db, folderId, modseq, claimRecent);
  }

  expungedSince(folderId: string, modseq: number): Promise<number[]> {
    return store.expungedSince(this.#o.db, folderId, modseq);
  }

  /** Forgets expunged UIDs recorded before `before` (QRESYNC then reports by UIDNEXT); how many. */
  async pruneExpunged(before: Date): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await store.pruneExpunged(this.#o.db, before, PRUNE_BATCH);
      total += n;
      if (n < PRUNE_BATCH) return total;
    }
  }

  keywords(folderId: string): Promise<string[]> {
    return store.keywordsOf(this.#o.db, folderId);
  }

  /**
   * The copies with these UIDs, each with its message's MIME structure. With `contentBytes`, the raw
   * bytes too (by blob id) of the first copies whose sizes add up to at most that (at least one): the
   * caller takes that many and asks again for the rest, so no fetch holds more than a bounded amount.
   * A structure is computed once, on the first fetch that needs it, from the bytes read for it (or for
   * the fetch), and stored with the message.
   */
  async fetch(
    organizationId: string,
    folderId: string,
    uids: number[],
    contentBytes = 0,
  ): Promise<{ copies: FetchedCopy[]; content: Map<string, Buffer> | null }> {
    const rows = await store.fetchRows(this.#o.db, folderId, uids);
    const withContent = contentBytes > 0 ? rows.slice(0, prefixWithin(rows, contentBytes)) : [];
    const content = withContent.length
      ? await this.content(
          organizationId,
          withContent.map((r) => r.blobId),
        )
      : null;
    const missing = rows.filter((r) => (r.structure as StoredStructure | null)?.v !== STRUCTURE_VERSION);
    // Structures of copies whose bytes were not read for the fetch are computed from bounded reads.
    for (let i = 0; i < missing.length; ) {
      const rest = missing.slice(i);
      const read = rest.slice(0, prefixWithin(rest, STRUCTURE_BYTES));
      const known = read.every((r) => content?.has(r.blobId));
      const bytes = known
        ? content!
        : await this.content(
            organizationId,
            read.map((r) => r.blobId),
          );
      await this.#computeStructures(read, bytes);
      i += read.length;
    }
    return {
      copies: (contentBytes > 0 ? withContent : rows).map((r) => ({
        ...r,
        structure: (r.structure as StoredStructure).root,
      })),
      content,
    };
  }

  async #computeStructures(rows: store.FetchRow[], content: Map<string, Buffer>): Promise<void> {
    const computed = new Map<string, StoredStructure>();
    for (const row of rows) {
      const bytes = content.get(row.blobId) ?? Buffer.alloc(0);
      const structure = computed.get(row.messageId) ?? storedStructure(bytes);
      computed.set(row.messageId, structure);
      row.structure = structure;
    }
    await store.saveStructures(
      this.#o.db,
      [...computed].map(([id, structure]) => ({ id, structure })),
    );
  }

  /** A page of a folder's messages, newest first (the folders API). */
  async page(organizationId: string, mailboxId: string, folderId: string, page: PageRequest) {
    const folder = await this.folderById(organizationId, mailboxId, folderId);
    const { rows, total } = await store.pageOfCopies(this.#o.db, folder.id, page.page_size, offsetOf(page));
    return toPage(rows, total, page);
  }

  /** Raw messages by blob id. */
  content(organizationId: string, blobIds: string[]): Promise<Map<string, Buffer>> {
    return this.#o.blobs.getMany(blobIds.map((id) => ({ organizationId, id })));
  }

  /** The folder's copies that match, in UID order, with their modseqs. */
  search(
    folderId: string,
    key: SearchKey,
    context: SearchContext,
  ): Promise<{ uid: number; modseq: number }[]> {
    return store.searchUids(this.#o.db, folderId, searchCondition(key, context));
  }

  // ---- changing ------------------------------------------------------------------------------------

  async storeFlags(
    organizationId: string,
    folder: FolderRow,
    uids: number[],
    mode: store.FlagChange,
    flags: string[],
    unchangedSince: number | null = null,
  ): Promise<store.StoreOutcome[]> {
    const outcome = await this.#change(organizationId, folder.mailboxId, async (tx) => {
      const outcome = await store.storeFlags(tx, folder.id, uids, mode, flags, unchangedSince);
      const changed = outcome.filter((o) => o.changed).map((o) => o.uid);
      if (this.#listeners.length && changed.length) {
        const messageIds = await store.messageIdsOf(tx, folder.id, changed);
        await this.#announceChange(tx, { kind: 'flagged', organizationId, folder, mode, flags, messageIds });
      }
      return outcome;
    });
    if (outcome.some((o) => o.changed)) this.#o.hub.announce([folder.id]);
    return outcome;
  }

  /** Removes the copies flagged \Deleted (among `uids` when given); their UIDs. */
  async expunge(organizationId: string, folder: FolderRow, uids: number[] | null): Promise<number[]> {
    return this.#remove(organizationId, folder, uids, true);
  }

  /** Removes the copies with these UIDs whatever their flags (POP3's DELE, the API's delete). */
  async remove(organizationId: string, folder: FolderRow, uids: number[]): Promise<number[]> {
    return this.#remove(organizationId, folder, uids, false);
  }

  async #remove(organizationId: string, folder: FolderRow, uids: number[] | null, deletedOnly: boolean) {
    if (uids && !uids.length) return [];
    const removed = await this.#change(organizationId, folder.mailboxId, async (tx) => {
      const gone = await store.removeCopies(tx, organizationId, folder, uids, deletedOnly);
      await this.#dropUnfiled(tx, organizationId, gone);
      return gone;
    });
    if (removed.length) this.#o.hub.announce([folder.id]);
    return removed.map((r) => r.uid);
  }

  /** Copies to another folder of the mailbox, within its quota; the UIDs where they were and are. */
  async copy(
    organizationId: string,
    from: FolderRow,
    to: FolderRow,
    uids: number[],
  ): Promise<store.Placed[]> {
    if (!uids.length) return [];
    const placed = await this.#change(organizationId, from.mailboxId, async (tx, mailbox) => {
      await this.#stillThere(tx, organizationId, from.mailboxId, to);
      const bytes = await store.sizeOf(tx, from.id, uids);
      if (mailbox.usedBytes + bytes > mailbox.quotaBytes) throw overQuota();
      return store.placeCopies(
        tx,
        organizationId,
        from,
        to,
        uids,
        uids.map(() => newId()),
        false,
      );
    });
    if (placed.length) this.#o.hub.announce([to.id]);
    return placed;
  }

  /**
   * Moves the INBOX copies of these messages into their mailbox's Junk folder (special use \\Junk, else
   * the folder named Junk), as a filter files spam; not reported as a person's move. How many moved.
   */
  async fileAsJunk(organizationId: string, messageIds: string[]): Promise<number> {
    const copies = await store.copiesOfMessages(this.#o.db, organizationId, messageIds);
    let moved = 0;
    for (const [inbox, uids] of groupByFolder(copies.filter((c) => c.folder.name === 'INBOX'))) {
      const folders = await store.folders(this.#o.db, organizationId, inbox.mailboxId);
      const junk = folders.find((f) => f.specialUse === '\\Junk') ?? folders.find((f) => f.name === 'Junk');
      if (junk) moved += (await this.move(organizationId, inbox, junk, uids, { reported: false })).length;
    }
    return moved;
  }

  /** Takes every copy of these messages out of every folder (quarantine); how many copies. */
  async removeEverywhere(organizationId: string, messageIds: string[]): Promise<number> {
    const copies = await store.copiesOfMessages(this.#o.db, organizationId, messageIds);
    let removed = 0;
    for (const [folder, uids] of groupByFolder(copies))
      removed += (await this.remove(organizationId, folder, uids)).length;
    return removed;
  }

  /** Moves to another folder of the mailbox: new UIDs there, expunged here (RFC 6851). */
  async move(
    organizationId: string,
    from: FolderRow,
    to: FolderRow,
    uids: number[],
    options: { reported?: boolean } = {},
  ): Promise<store.Placed[]> {
    if (!uids.length) return [];
    if (from.id === to.id) throw cannot('A message cannot be moved to the folder it is in');
    const placed = await this.#change(organizationId, from.mailboxId, async (tx) => {
      await this.#stillThere(tx, organizationId, from.mailboxId, to);
      const placed = await store.placeCopies(tx, organizationId, from, to, uids, [], true);
      if (this.#listeners.length && placed.length && options.reported !== false) {
        const messageIds = await store.messageIdsOf(
          tx,
          to.id,
          placed.map((p) => p.to),
        );
        await this.#announceChange(tx, { kind: 'moved', organizationId, from, to, messageIds });
      }
      return placed;
    });
    if (placed.length) this.#o.hub.announce([from.id, to.id]);
    return placed;
  }

  /**
   * Stores messages a client gives (APPEND, MULTIAPPEND: all or none), within the mailbox's quota.
   * Each is parsed as processing parses mail, so the API and search see it like any other.
   */
  async append(organizationId: string, folder: FolderRow, messages: AppendInput[]): Promise<number[]> {
    const prepared = await Promise.all(messages.map((m) => this.#o.inbound.prepareStored(m.content)));
    const uids = await this.#change(organizationId, folder.mailboxId, async (tx, mailbox) => {
      const bytes = messages.reduce((sum, m) => sum + m.content.length, 0);
      if (mailbox.usedBytes + bytes > mailbox.quotaBytes) throw overQuota();
      const filed: number[] = [];
      for (const [i, message] of messages.entries()) {
        const id = newId();
        const blobId = newId();
        const receivedAt = message.date ?? new Date();
        await this.#o.blobs.put(tx, [{ organizationId, id: blobId, data: message.content }]);
        await this.#o.inbound.insertStored(tx, [
          { id, organizationId, blobId, size: message.content.length, receivedAt, prepared: prepared[i] },
        ]);
        await store.saveStructures(tx, [{ id, structure: storedStructure(message.content) }]);
        const uid = await store.fileCopy(tx, {
          id: newId(),
          organizationId,
          mailboxId: folder.mailboxId,
          folderId: folder.id,
          messageId: id,
          flags: message.flags,
          size: message.content.length,
          internalDate: receivedAt,
        });
        filed.push(uid);
      }
      return filed;
    });
    this.#o.hub.announce([folder.id]);
    return uids;
  }

  /**
   * Files a message the mailbox sent through submission in its Sent folder (flagged \Seen), unless
   * the mailbox keeps no sent copies or has no Sent folder.
   */
  async fileSentCopy(organizationId: string, mailboxId: string, messageId: string): Promise<void> {
    const folder = await this.#o.db.transaction(async (tx) => {
      const mailbox = await store.lockMailbox(tx, organizationId, mailboxId);
      if (!mailbox?.saveSent) return null;
      const sent = await store.sentFolder(tx, organizationId, mailboxId);
      const size = await store.messageSize(tx, organizationId, messageId);
      if (!sent || size === null) return null;
      await store.fileCopy(tx, {
        id: newId(),
        organizationId,
        mailboxId,
        folderId: sent.id,
        messageId,
        flags: ['\\Seen'],
        size,
        internalDate: new Date(),
      });
      return sent;
    });
    if (folder) this.#o.hub.announce([folder.id]);
  }

  /** Deletes the APPENDed messages of removed copies that no folder holds now, with their bytes. */
  async #dropUnfiled(tx: Db, organizationId: string, removed: store.Removed[]): Promise<void> {
    const blobIds = await store.dropUnfiledStored(
      tx,
      organizationId,
      removed.map((r) => r.messageId),
    );
    if (blobIds.length) await this.#o.blobs.delete(tx, organizationId, blobIds);
  }

  /** The target of a copy or move, read again under the mailbox's lock: deleted meanwhile, it is not there. */
  async #stillThere(tx: Db, organizationId: string, mailboxId: string, folder: FolderRow): Promise<void> {
    const row = await store.folderById(tx, organizationId, folder.id);
    if (!row || row.mailboxId !== mailboxId) throw notFound('Folder');
  }

  /** Runs a change in a transaction that holds the mailbox row (see the file's comment). */
  #change<T>(
    organizationId: string,
    mailboxId: string,
    change: (tx: Db, mailbox: { quotaBytes: number; usedBytes: number }) => Promise<T>,
  ): Promise<T> {
    return this.#o.db.transaction(async (tx) => {
      const mailbox = await store.lockMailbox(tx, organizationId, mailboxId);
      if (!mailbox) throw notFound('Mailbox');
      return change(tx, mailbox);
    });
  }
}

function groupByFolder(copies: Array<{ uid: number; folder: FolderRow }>): Map<FolderRow, number[]> {
  const byId = new Map<string, { folder: FolderRow; uids: number[] }>();
  for (const copy of copies) {
    const entry = byId.get(copy.folder.id) ?? { folder: copy.folder, uids: [] };
    entry.uids.push(copy.uid);
    byId.set(copy.folder.id, entry);
  }
  return new Map([...byId.values()].map((e) => [e.folder, e.uids]));
}
