// Folder commands: SELECT and EXAMINE (with CONDSTORE and QRESYNC), CREATE, DELETE, RENAME,
// SUBSCRIBE, LIST (LIST-EXTENDED, LIST-STATUS, SPECIAL-USE, CHILDREN), LSUB, STATUS, CLOSE, UNSELECT
// and APPEND (MULTIAPPEND, APPENDLIMIT).
import type { FolderRow } from '../../mailboxes/tables.ts';
import {
  decodeMailboxName,
  encodeMailboxName,
  listPatternMatcher,
  sequenceRanges,
  parseAppend,
  parseList,
  parseSelect,
  parseStatus,
} from '../protocol/arguments.ts';
import type { Command } from '../protocol/parser.ts';
import { flagList, indexOf, inRanges, largest, sequenceSetOf } from '../responses.ts';
import type { Entry, FolderStats } from '../service.ts';
import { bad, type CommandHandler, type ImapSession, no, type Selection } from '../session.ts';

const AUTHENTICATED = ['authenticated', 'selected'] as const;
const SYSTEM_FLAGS = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'];

/** The folder a command names (decoded by the parser, INBOX in upper case), which must exist. */
export async function namedFolder(
  session: ImapSession,
  name: string,
  missingCode = 'NONEXISTENT',
): Promise<FolderRow> {
  const user = session.user!;
  const folder = await session.backend.store.folder(user.organizationId, user.mailboxId, name);
  if (!folder) throw no(`No folder ${name}`, missingCode);
  return folder;
}

function mailboxArg(session: ImapSession, command: Command, index = 0): string {
  const token = command.args[index];
  if (!token) throw bad('A folder name is missing');
  return decodeMailboxName(token, session.utf8);
}

const wireName = (session: ImapSession, name: string) => encodeMailboxName(name, session.utf8);

async function select(session: ImapSession, command: Command, readOnly: boolean): Promise<string> {
  const request = parseSelect(command.args, { utf8: session.utf8 });
  if (request.qresync && !session.enabled.has('QRESYNC')) throw bad('ENABLE QRESYNC first');
  // The folder selected so far is closed first (RFC 7162 3.2.11), whether or not this one opens.
  if (session.selection) session.write('* OK [CLOSED] Previous folder closed\r\n');
  session.deselect();
  const folder = await namedFolder(session, request.mailbox);
  if (request.condstore) session.enabled.add('CONDSTORE');
  const { selection, entries } = await session.select(folder, readOnly);
  try {
    return await selected(session, request, folder, selection, entries, readOnly);
  } catch (err) {
    // A SELECT that fails leaves no folder selected (RFC 3501 6.3.1).
    session.deselect();
    throw err;
  }
}

async function selected(
  session: ImapSession,
  request: ReturnType<typeof parseSelect>,
  folder: FolderRow,
  selection: Selection,
  entries: Entry[],
  readOnly: boolean,
): Promise<string> {
  const keywords = await session.backend.store.keywords(folder.id);
  const flags = [...SYSTEM_FLAGS, ...keywords];
  const out = [
    `* FLAGS ${flagList(flags)}\r\n`,
    readOnly
      ? '* OK [PERMANENTFLAGS ()] Read-only\r\n'
      : `* OK [PERMANENTFLAGS ${flagList([...flags, '\\*'])}] Flags permitted\r\n`,
    `* ${entries.length} EXISTS\r\n`,
    `* ${entries.filter((e) => selection.isRecent(e.uid)).length} RECENT\r\n`,
  ];
  const firstUnseen = entries.findIndex((e) => !e.flags.includes('\\Seen'));
  if (firstUnseen >= 0) out.push(`* OK [UNSEEN ${firstUnseen + 1}] First unseen\r\n`);
  out.push(
    `* OK [UIDVALIDITY ${folder.uidValidity}] UIDs valid\r\n`,
    `* OK [UIDNEXT ${Math.max(folder.uidNext, (entries.at(-1)?.uid ?? 0) + 1)}] Predicted next UID\r\n`,
    `* OK [HIGHESTMODSEQ ${selection.knownModseq}] Highest\r\n`,
  );
  session.write(out.join(''));
  if (request.qresync && request.qresync.uidValidity === folder.uidValidity)
    await resynchronise(session, entries, request.qresync);
  return `[${readOnly ? 'READ-ONLY' : 'READ-WRITE'}] ${readOnly ? 'EXAMINE' : 'SELECT'} completed`;
}

/**
 * QRESYNC (RFC 7162 3.2.5): what the client missed since its modseq: the UIDs expunged (VANISHED
 * (EARLIER)) among those it knows, and the messages changed, with their flags.
 */
async function resynchronise(
  session: ImapSession,
  entries: Entry[],
  qresync: NonNullable<ReturnType<typeof parseSelect>['qresync']>,
): Promise<void> {
  const selection = session.selection!;
  const { store } = session.backend;
  let expunged = await store.expungedSince(selection.folder.id, qresync.modseq);
  if (qresync.knownUids) {
    const known = qresync.knownUids;
    const max = largest(expunged, selection.uidNext - 1) + 1;
    const ranges = sequenceRanges(known, max);
    expunged = expunged.filter((uid) => inRanges(ranges, uid));
  }
  const out: string[] = [];
  if (expunged.length) out.push(`* VANISHED (EARLIER) ${sequenceSetOf(expunged)}\r\n`);
  for (const entry of entries) {
    if (entry.modseq <= qresync.modseq) continue;
    out.push(
      `* ${indexOf(selection.uids, entry.uid) + 1} FETCH (UID ${entry.uid} ${session.flagsItem(entry.uid, entry.flags)} MODSEQ (${entry.modseq}))\r\n`,
    );
  }
  session.write(out.join(''));
}

async function list(session: ImapSession, command: Command, lsub: boolean): Promise<void> {
  const request = lsub
    ? {
        reference: decodeMailboxName(
          command.args[0] ?? bad('LSUB takes a reference and a pattern'),
          session.utf8,
        ),
        patterns: [
          decodeMailboxName(command.args[1] ?? bad('LSUB takes a reference and a pattern'), session.utf8),
        ],
        selection: ['SUBSCRIBED'],
        return: { subscribed: false, children: false, specialUse: false, status: undefined },
      }
    : parseList(command.args, { utf8: session.utf8 });
  const keyword = lsub ? 'LSUB' : 'LIST';
  // LIST "" "": the hierarchy delimiter and the root.
  if (request.patterns.length === 1 && request.patterns[0] === '') {
    session.write(`* ${keyword} (\\Noselect) "/" ""\r\n`);
    return;
  }
  const user = session.user!;
  const folders = await session.backend.store.folders(user.organizationId, user.mailboxId);
  const matchers = request.patterns.map((p) => listPatternMatcher(request.reference, p));
  const hasChildren = (name: string) => folders.some((f) => f.name.startsWith(`${name}/`));
  const subscribedOnly = request.selection.includes('SUBSCRIBED');
  const specialOnly = request.selection.includes('SPECIAL-USE');
  const recursive = request.selection.includes('RECURSIVEMATCH');
  const shown = folders.filter((f) => matchers.some((m) => m(f.name)));
  const lines: { folder: FolderRow; attributes: string[]; extra: string }[] = [];
  for (const folder of shown) {
    const attributes: string[] = [];
    if (!lsub) attributes.push(hasChildren(folder.name) ? '\\HasChildren' : '\\HasNoChildren');
    if (folder.specialUse && folder.specialUse !== '\\Inbox' && !lsub) attributes.push(folder.specialUse);
    if (folder.subscribed && (subscribedOnly || request.return.subscribed) && !lsub)
      attributes.push('\\Subscribed');
    let extra = '';
    if (subscribedOnly && !folder.subscribed) {
      // RECURSIVEMATCH: a parent shown because a folder under it is subscribed (CHILDINFO).
      const subscribedChild = folders.some((f) => f.subscribed && f.name.startsWith(`${folder.name}/`));
      if (!(recursive && subscribedChild)) continue;
      extra = ' ("CHILDINFO" ("SUBSCRIBED"))';
    }
    if (specialOnly && (!folder.specialUse || folder.specialUse === '\\Inbox')) continue;
    lines.push({ folder, attributes, extra });
  }
  const stats = request.return.status
    ? await session.backend.store.stats(
        user.organizationId,
        lines.map((l) => l.folder.id),
      )
    : null;
  const out: string[] = [];
  for (const { folder, attributes, extra } of lines) {
    out.push(`* ${keyword} ${flagList(attributes)} "/" ${wireName(session, folder.name)}${extra}\r\n`);
    if (stats && request.return.status)
      out.push(statusLine(session, folder, request.return.status, stats.get(folder.id)));
  }
  session.write(out.join(''));
}

function statusLine(
  session: ImapSession,
  folder: FolderRow,
  items: string[],
  stats: FolderStats | undefined,
): string {
  const s = stats ?? { messages: 0, recent: 0, unseen: 0, deleted: 0, bytes: 0 };
  const values: Record<string, number> = {
    MESSAGES: s.messages,
    RECENT: s.recent,
    UIDNEXT: folder.uidNext,
    UIDVALIDITY: folder.uidValidity,
    UNSEEN: s.unseen,
    HIGHESTMODSEQ: folder.highestModseq,
    SIZE: s.bytes,
    DELETED: s.deleted,
    APPENDLIMIT: session.options.appendLimit,
  };
  const pairs = items.map((item) => `${item} ${values[item]}`);
  return `* STATUS ${wireName(session, folder.name)} (${pairs.join(' ')})\r\n`;
}

async function append(session: ImapSession, command: Command): Promise<string> {
  const request = parseAppend(command.args, { utf8: session.utf8 });
  const folder = await namedFolder(session, request.mailbox, 'TRYCREATE');
  for (const message of request.messages) {
    if (message.content.length === 0) throw no('An empty message cannot be stored');
    if (message.content.length > session.options.appendLimit)
      throw no('The message is over APPENDLIMIT', 'TOOBIG');
    if (message.flags.includes('\\Recent')) throw bad('\\Recent cannot be stored');
  }
  const user = session.user!;
  const uids = await session.backend.store.append(user.organizationId, folder, request.messages);
  return `[APPENDUID ${folder.uidValidity} ${sequenceSetOf(uids)}] APPEND completed`;
}

export const FOLDER_COMMANDS: Record<string, CommandHandler> = {
  SELECT: { states: AUTHENTICATED, run: (s, c) => select(s, c, false) },
  EXAMINE: { states: AUTHENTICATED, run: (s, c) => select(s, c, true) },
  CREATE: {
    states: AUTHENTICATED,
    async run(session, command) {
      // A trailing delimiter says the folder will hold folders (RFC 3501 6.3.3); every folder can.
      const name = mailboxArg(session, command).replace(/\/+$/, '');
      const user = session.user!;
      await session.backend.store.createFolder(user.organizationId, user.mailboxId, name);
    },
  },
  DELETE: {
    states: AUTHENTICATED,
    async run(session, command) {
      const user = session.user!;
      const name = mailboxArg(session, command);
      if (session.selection?.folder.name === name) session.deselect();
      await session.backend.store.deleteFolder(user.organizationId, user.mailboxId, name);
    },
  },
  RENAME: {
    states: AUTHENTICATED,
    async run(session, command) {
      if (command.args.length !== 2) throw bad('RENAME takes two folder names');
      const user = session.user!;
      const from = mailboxArg(session, command, 0);
      const to = mailboxArg(session, command, 1);
      await session.backend.store.renameFolder(user.organizationId, user.mailboxId, from, to);
      // The selected folder may have a new name now.
      const selection = session.selection;
      if (
        selection &&
        (selection.folder.name === from || selection.folder.name.startsWith(`${from}/`)) &&
        from !== 'INBOX'
      ) {
        selection.folder = { ...selection.folder, name: to + selection.folder.name.slice(from.length) };
      }
    },
  },
  SUBSCRIBE: {
    states: AUTHENTICATED,
    async run(session, command) {
      const user = session.user!;
      await session.backend.store.subscribe(
        user.organizationId,
        user.mailboxId,
        mailboxArg(session, command),
        true,
      );
    },
  },
  UNSUBSCRIBE: {
    states: AUTHENTICATED,
    async run(session, command) {
      const user = session.user!;
      const name = mailboxArg(session, command);
      const folder = await session.backend.store.folder(user.organizationId, user.mailboxId, name);
      // Unsubscribing from a folder that is gone succeeds (its subscription went with it).
      if (folder) await session.backend.store.subscribe(user.organizationId, user.mailboxId, name, false);
    },
  },
  LIST: { states: AUTHENTICATED, run: (s, c) => list(s, c, false) },
  LSUB: { states: AUTHENTICATED, run: (s, c) => list(s, c, true) },
  STATUS: {
    states: AUTHENTICATED,
    async run(session, command) {
      const request = parseStatus(command.args, { utf8: session.utf8 });
      const folder = await namedFolder(session, request.mailbox);
      const stats = await session.backend.store.stats(session.user!.organizationId, [folder.id]);
      session.write(statusLine(session, folder, request.items, stats.get(folder.id)));
    },
  },
  APPEND: { states: AUTHENTICATED, run: append },
  CLOSE: {
    states: ['selected'],
    noSync: true,
    async run(session) {
      const selection = session.selection as Selection;
      // Expunged silently (RFC 3501 6.4.2); a read-only folder keeps everything.
      if (!selection.readOnly)
        await session.backend.store.expunge(session.user!.organizationId, selection.folder, null);
      session.deselect();
    },
  },
  UNSELECT: {
    states: ['selected'],
    noSync: true,
    async run(session) {
      session.deselect();
    },
  },
};
