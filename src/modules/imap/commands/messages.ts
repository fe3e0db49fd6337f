// Message commands: FETCH (every data item, CHANGEDSINCE and VANISHED), STORE (UNCHANGEDSINCE),
// SEARCH (ESEARCH's RETURN), COPY, MOVE, EXPUNGE and UID EXPUNGE. Each works on the session's view of
// the selected folder: sequence numbers are positions in it, and UIDs it has not been told of are
// left alone until it has.
import { renderBodyStructure, renderEnvelope } from '../mime/render.ts';
import { applyPartial, binaryBytes, sectionBytes } from '../mime/section.ts';
import {
  type FetchItem,
  formatDateTime,
  parseCopyMove,
  parseFetch,
  parseSearch,
  parseStore,
  parseUidExpunge,
  type SearchKey,
  sequenceRanges,
} from '../protocol/arguments.ts';
import type { Command } from '../protocol/parser.ts';
import { indexOf, inRanges, largest, literal, sequenceSetOf, smallest } from '../responses.ts';
import type { FetchedCopy } from '../service.ts';
import { bad, type CommandHandler, type ImapSession, no, type Selection } from '../session.ts';
import type { SequenceSet } from '../types.ts';
import { namedFolder } from './folders.ts';

const SELECTED = ['selected'] as const;
/** Messages fetched per round trip to the database (and per write to the socket). */
const FETCH_CHUNK = 250;
/** Message bytes one chunk holds at most (a large message alone is one chunk). */
const CONTENT_BYTES = 8 * 1024 * 1024;
/** Data items that read the message's bytes. */
const NEEDS_CONTENT = new Set<FetchItem['kind']>([
  'rfc822',
  'rfc822.header',
  'rfc822.text',
  'section',
  'binary',
  'binary.size',
]);
/** Data items that set \Seen unless PEEK (RFC 3501 6.4.5). */
const SETS_SEEN = new Set<FetchItem['kind']>(['rfc822', 'rfc822.text', 'section', 'binary']);

const selectionOf = (session: ImapSession): Selection => session.selection!;

// ---- FETCH -----------------------------------------------------------------------------------------

async function fetch(session: ImapSession, command: Command): Promise<void> {
  const selection = selectionOf(session);
  const request = parseFetch(command.args, { uid: command.uid });
  if (
    request.vanished &&
    !(command.uid && session.enabled.has('QRESYNC') && request.changedSince !== undefined)
  )
    throw bad('VANISHED needs UID FETCH, QRESYNC and CHANGEDSINCE');
  const items = [...request.items];
  if (command.uid && !items.some((i) => i.kind === 'uid')) items.unshift({ kind: 'uid', label: 'UID' });
  // CHANGEDSINCE and MODSEQ turn CONDSTORE on (RFC 7162 3.1); every FETCH then reports MODSEQ.
  if (request.changedSince !== undefined || items.some((i) => i.kind === 'modseq'))
    session.enabled.add('CONDSTORE');
  const uids = selection.resolve(request.sequence, command.uid);
  if (request.vanished) await reportVanished(session, request.sequence, request.changedSince!);
  const needsContent = items.some((i) => NEEDS_CONTENT.has(i.kind));
  const marksSeen = !selection.readOnly && items.some((i) => SETS_SEEN.has(i.kind) && !i.peek);
  const { store } = session.backend;
  const organizationId = session.user!.organizationId;
  // A chunk's rows (and bytes) are read while the one before is written: the database and the socket
  // work at the same time. With message bytes, a chunk holds at most CONTENT_BYTES of them.
  const load = async (from: number) => {
    const fetched = await store.fetch(
      organizationId,
      selection.folder.id,
      uids.slice(from, from + FETCH_CHUNK),
      needsContent ? CONTENT_BYTES : 0,
    );
    const last = fetched.copies.at(-1);
    const next = needsContent && last ? uids.indexOf(last.uid, from) + 1 : from + FETCH_CHUNK;
    const { changedSince } = request;
    const copies =
      changedSince === undefined ? fetched.copies : fetched.copies.filter((c) => c.modseq > changedSince);
    return { copies, content: fetched.content, next };
  };
  let next: ReturnType<typeof load> | null = uids.length ? load(0) : null;
  while (next) {
    const { copies, content, next: following } = await next;
    next = following < uids.length ? load(following) : null;
    // A failed read ahead is reported by the await above on the next turn, not left unhandled.
    next?.catch(() => {});
    if (!copies.length) continue;
    const seen = marksSeen ? await markSeen(session, copies) : new Set<number>();
    const out: (string | Buffer)[] = [];
    for (const copy of copies) {
      const seq = selection.seqOf(copy.uid);
      if (seq === 0) continue;
      const raw = content?.get(copy.blobId) ?? Buffer.alloc(0);
      const fetched = fetchItems(session, copy, items, raw, seen.has(copy.uid));
      out.push(`* ${seq} FETCH (`, ...fetched, ')\r\n');
    }
    session.write(out);
    await session.drain();
  }
}

/** Sets \Seen on the copies that lack it; the UIDs it set it on (their FETCH reports FLAGS). */
async function markSeen(session: ImapSession, copies: FetchedCopy[]): Promise<Set<number>> {
  const unseen = copies.filter((c) => !c.flags.includes('\\Seen'));
  if (!unseen.length) return new Set();
  const selection = selectionOf(session);
  const outcome = await session.backend.store.storeFlags(
    session.user!.organizationId,
    selection.folder,
    unseen.map((c) => c.uid),
    'add',
    ['\\Seen'],
  );
  const byUid = new Map(outcome.map((o) => [o.uid, o]));
  for (const copy of unseen) {
    const changed = byUid.get(copy.uid);
    if (!changed) continue;
    copy.flags = changed.flags;
    copy.modseq = changed.modseq;
    selection.own.add(changed.modseq);
  }
  return new Set(unseen.map((c) => c.uid));
}

function fetchItems(
  session: ImapSession,
  copy: FetchedCopy,
  items: FetchItem[],
  raw: Buffer,
  seenNow: boolean,
): (string | Buffer)[] {
  const out: (string | Buffer)[] = [];
  const add = (...parts: (string | Buffer)[]) => {
    if (out.length) out.push(' ');
    out.push(...parts);
  };
  const utf8 = session.utf8;
  let flagsSent = false;
  for (const item of items) {
    switch (item.kind) {
      case 'uid':
        add(`UID ${copy.uid}`);
        break;
      case 'flags':
        add(session.flagsItem(copy.uid, copy.flags));
        flagsSent = true;
        break;
      case 'internaldate':
        add(`INTERNALDATE "${formatDateTime(copy.internalDate)}"`);
        break;
      case 'size':
        add(`RFC822.SIZE ${copy.size}`);
        break;
      case 'envelope':
        add(`ENVELOPE ${renderEnvelope(copy.structure, { utf8 })}`);
        break;
      case 'bodystructure':
        add(`BODYSTRUCTURE ${renderBodyStructure(copy.structure, true, { utf8 })}`);
        break;
      case 'body':
        add(`BODY ${renderBodyStructure(copy.structure, false, { utf8 })}`);
        break;
      case 'modseq':
        add(`MODSEQ (${copy.modseq})`);
        break;
      case 'rfc822':
        add('RFC822 ', ...literal(raw));
        break;
      case 'rfc822.header':
        add('RFC822.HEADER ', ...literal(sectionBytes(raw, copy.structure, { part: [], text: 'HEADER' })));
        break;
      case 'rfc822.text':
        add('RFC822.TEXT ', ...literal(sectionBytes(raw, copy.structure, { part: [], text: 'TEXT' })));
        break;
      case 'section': {
        const bytes = applyPartial(sectionBytes(raw, copy.structure, item.section!), item.partial);
        add(`${item.label} `, ...literal(bytes));
        break;
      }
      case 'binary': {
        const decoded = binaryBytes(raw, copy.structure, item.section?.part ?? []);
        if (decoded === null) throw no('Unknown Content-Transfer-Encoding', 'UNKNOWN-CTE');
        const bytes = applyPartial(decoded, item.partial);
        add(`${item.label} `, ...literal(bytes, bytes.includes(0)));
        break;
      }
      case 'binary.size': {
        const decoded = binaryBytes(raw, copy.structure, item.section?.part ?? []);
        if (decoded === null) throw no('Unknown Content-Transfer-Encoding', 'UNKNOWN-CTE');
        add(`${item.label} ${decoded.length}`);
        break;
      }
    }
  }
  if (seenNow && !flagsSent) add(session.flagsItem(copy.uid, copy.flags));
  // With CONDSTORE on, every FETCH carries UID and MODSEQ (RFC 7162 3.1).
  if (session.condstore && !items.some((i) => i.kind === 'uid')) add(`UID ${copy.uid}`);
  if (session.condstore && !items.some((i) => i.kind === 'modseq')) add(`MODSEQ (${copy.modseq})`);
  return out;
}

/** UID FETCH … (CHANGEDSINCE m VANISHED): UIDs of the set expunged after m (RFC 7162 3.2.6). */
async function reportVanished(session: ImapSession, set: SequenceSet, modseq: number): Promise<void> {
  const selection = selectionOf(session);
  const expunged = await session.backend.store.expungedSince(selection.folder.id, modseq);
  const max = largest(expunged, selection.uidNext - 1);
  const ranges = sequenceRanges(set, max);
  const named = expunged.filter((uid) => inRanges(ranges, uid));
  if (named.length) session.write(`* VANISHED (EARLIER) ${sequenceSetOf(named)}\r\n`);
}

// ---- STORE -----------------------------------------------------------------------------------------

async function storeCommand(session: ImapSession, command: Command): Promise<string | undefined> {
  const selection = selectionOf(session);
  if (selection.readOnly) throw no('The folder is read-only', 'READ-ONLY');
  const request = parseStore(command.args);
  if (request.unchangedSince !== undefined) session.enabled.add('CONDSTORE');
  const uids = selection.resolve(request.sequence, command.uid);
  const outcome = await session.backend.store.storeFlags(
    session.user!.organizationId,
    selection.folder,
    uids,
    request.mode,
    request.flags,
    request.unchangedSince ?? null,
  );
  const out: string[] = [];
  const modified: number[] = [];
  for (const o of outcome) {
    if (o.changed) selection.own.add(o.modseq);
    const seq = selection.seqOf(o.uid);
    if (seq === 0) continue;
    if (o.modified) {
      modified.push(command.uid ? o.uid : seq);
      continue;
    }
    const uid = command.uid || session.condstore ? ` UID ${o.uid}` : '';
    if (!request.silent)
      out.push(
        `* ${seq} FETCH (${session.flagsItem(o.uid, o.flags)}${uid}${session.modseqItem(o.modseq)})\r\n`,
      );
    // .SILENT still reports the new modseq to a CONDSTORE client (RFC 7162 3.2).
    else if (session.condstore && o.changed)
      out.push(`* ${seq} FETCH (${uid.trim() ? `${uid.trim()} ` : ''}MODSEQ (${o.modseq}))\r\n`);
  }
  session.write(out.join(''));
  if (modified.length)
    return `[MODIFIED ${sequenceSetOf(modified)}] Conditional STORE failed for some messages`;
}

// ---- SEARCH ----------------------------------------------------------------------------------------

function usesModseq(key: SearchKey): boolean {
  switch (key.op) {
    case 'modseq':
      return true;
    case 'and':
      return key.keys.some(usesModseq);
    case 'or':
      return usesModseq(key.left) || usesModseq(key.right);
    case 'not':
      return usesModseq(key.key);
    default:
      return false;
  }
}

async function search(session: ImapSession, command: Command): Promise<void> {
  const selection = selectionOf(session);
  const request = parseSearch(command.args);
  const found = await session.backend.store.search(selection.folder.id, request.key, {
    uids: selection.uids,
    recentFrom: selection.recentFrom,
    resolve: (key) => selection.resolve(key.set, key.op === 'uid'),
  });
  // Only the messages the session has been told of have sequence numbers.
  const known = found.filter((f) => indexOf(selection.uids, f.uid) >= 0);
  const numbers = known.map((f) => (command.uid ? f.uid : selection.seqOf(f.uid)));
  const modseq = usesModseq(request.key) && known.length ? largest(known.map((f) => f.modseq)) : null;
  if (modseq !== null) session.enabled.add('CONDSTORE');
  if (request.returnOptions === null) {
    const tail = modseq !== null ? ` (MODSEQ ${modseq})` : '';
    session.write(`* SEARCH${numbers.map((n) => ` ${n}`).join('')}${tail}\r\n`);
    return;
  }
  const options = request.returnOptions.length ? request.returnOptions : ['ALL'];
  const parts = [`* ESEARCH (TAG "${command.tag}")`];
  if (command.uid) parts.push('UID');
  if (options.includes('MIN') && numbers.length) parts.push(`MIN ${smallest(numbers)}`);
  if (options.includes('MAX') && numbers.length) parts.push(`MAX ${largest(numbers)}`);
  if (options.includes('COUNT')) parts.push(`COUNT ${numbers.length}`);
  if (options.includes('ALL') && numbers.length) parts.push(`ALL ${sequenceSetOf(numbers)}`);
  if (modseq !== null) parts.push(`MODSEQ ${modseq}`);
  session.write(`${parts.join(' ')}\r\n`);
}

// ---- COPY, MOVE, EXPUNGE ---------------------------------------------------------------------------

async function copyOrMove(
  session: ImapSession,
  command: Command,
  move: boolean,
): Promise<string | undefined> {
  const selection = selectionOf(session);
  if (move && selection.readOnly) throw no('The folder is read-only', 'READ-ONLY');
  const request = parseCopyMove(command.args, { utf8: session.utf8 });
  const target = await namedFolder(session, request.mailbox, 'TRYCREATE');
  const uids = selection.resolve(request.sequence, command.uid);
  const organizationId = session.user!.organizationId;
  const { store } = session.backend;
  const placed = move
    ? await store.move(organizationId, selection.folder, target, uids)
    : await store.copy(organizationId, selection.folder, target, uids);
  if (!placed.length) return;
  const copyUid = `[COPYUID ${target.uidValidity} ${sequenceSetOf(placed.map((p) => p.from))} ${sequenceSetOf(placed.map((p) => p.to))}]`;
  if (!move) return `${copyUid} COPY completed`;
  // RFC 6851: the COPYUID goes untagged, before the expunges.
  session.write(`* OK ${copyUid} Moved\r\n`);
  session.write(session.expunged(placed.map((p) => p.from)).join(''));
  return 'MOVE completed';
}

async function expunge(session: ImapSession, command: Command): Promise<void> {
  const selection = selectionOf(session);
  if (selection.readOnly) throw no('The folder is read-only', 'READ-ONLY');
  const uids = command.uid ? selection.resolve(parseUidExpunge(command.args), true) : null;
  if (!command.uid && command.args.length) throw bad('EXPUNGE takes no arguments');
  const removed = await session.backend.store.expunge(session.user!.organizationId, selection.folder, uids);
  session.write(session.expunged(removed).join(''));
}

export const MESSAGE_COMMANDS: Record<string, CommandHandler> = {
  FETCH: { states: SELECTED, uid: true, run: fetch },
  STORE: { states: SELECTED, uid: true, run: storeCommand },
  SEARCH: { states: SELECTED, uid: true, run: search },
  COPY: { states: SELECTED, uid: true, run: (s, c) => copyOrMove(s, c, false) },
  MOVE: { states: SELECTED, uid: true, run: (s, c) => copyOrMove(s, c, true) },
  EXPUNGE: { states: SELECTED, uid: true, run: expunge },
};
