// Messages: the read side of the message store that the inbound pipeline (and outbound delivery)
// write: lists, full-text search, one message with its routing and forwards, the raw bytes, threads,
// statistics, and the two changes an operator may make by hand (status, deletion).
//
// Search, newest first, must stay fast for words in almost every message and for words in a handful.
// Two ways to find a page of matches; the planner's estimates (from the column statistics, which
// migration 0004 makes detailed for `search`) choose the cheaper:
//   walk      read the organisation's messages newest first (messages_org_received) and stop at the
//             page's last match: about needed × messages / matches rows, cheap for common words;
//   all       the GIN index finds every match, and they are sorted: about `matches` rows, cheap for
//             rare words; the exact count comes with them.
// A match read from the index costs about MATCH_COST walked rows (a random heap page each, where
// the walk reads neighbouring rows; measured on PostgreSQL over a million messages), so the walk is
// chosen when MATCH_COST × matches > needed × messages / matches. It is bounded (WALK_SLACK times the
// expected rows): when the words turn out rarer among recent messages, every match is read instead.
// `total` is exact when every match was read, or when the planner expects at most EXACT_COUNT_BELOW
// (then counted); otherwise it is the planner's estimate (`total_exact: false`): counting a word in
// most of a million messages means reading most of a million rows.
import type { BlobStore } from '../../core/blobs.ts';
import type { Db } from '../../core/db.ts';
import { notFound, validationFailed } from '../../core/errors.ts';
import { offsetOf, type Page, type PageRequest, toPage } from '../../core/pagination.ts';
import type { OutboundService } from '../delivery/service.ts';
import type { DomainsService } from '../domains/service.ts';
import type { EventsService } from '../events/service.ts';
import { messageDeleted, messageStatusChanged } from './events.ts';
import * as store from './store.ts';
import { type Direction, MESSAGE_STATUSES, type MessageStatus } from './tables.ts';

export {
  type MessageFilterQuery,
  messageFilterOf,
  messageFilterQuery,
} from './filters.ts';
export type {
  AnalysisFilter,
  AnalysisScope,
  AnalysisSource,
  LogCursor,
  MessageFilter,
  MessageSummaryRow,
  NewMessageAnalysis,
  ReceivedMessage,
} from './store.ts';

/** What reading one match through the GIN index costs, in rows of the walk. */
const MATCH_COST = 4;
/** How many times the expected rows a walk may read before it gives up. */
const WALK_SLACK = 4;
/** Planner estimates up to this many matches are counted exactly. */
const EXACT_COUNT_BELOW = 1000;
const EXACT_COUNT_CAP = 10_000;
const THREAD_LIMIT = 1000;
const TOP = 10;
const DAY_MS = 86_400_000;
/** The longest range a daily series covers. */
export const MAX_RANGE_DAYS = 366;
const DEFAULT_RANGE_DAYS = 30;

/** The statuses an operator may set by hand; pending, processing and bounced belong to the pipeline. */
export const MANUAL_STATUSES = ['delivered', 'failed', 'rejected', 'quarantined'] as const;

export interface MessagesOptions {
  db: Db;
  blobs: BlobStore;
  events: EventsService;
  /** For the domain statistics: the domain must be the organisation's. */
  domains: DomainsService;
  /** An outbound message's recipients with their delivery attempts (the delivery module's). */
  recipientsOf: OutboundService['recipientsOf'];
}

export interface SearchPage extends Page<store.MessageSummaryRow> {
  /** False when `total` is the planner's estimate. */
  total_exact: boolean;
}

export type StatusCounts = Record<MessageStatus, number>;

export interface MessageStats {
  since: Date | null;
  total: number;
  total_size_bytes: number;
  inbound: number;
  outbound: number;
  by_status: StatusCounts;
}

export interface Range {
  since: Date;
  until: Date;
}

const zeroCounts = (): StatusCounts =>
  Object.fromEntries(MESSAGE_STATUSES.map((s) => [s, 0])) as StatusCounts;

function summarise(rows: store.CountRow[]) {
  const byStatus = zeroCounts();
  const byDirection: Record<Direction, number> = { inbound: 0, outbound: 0, stored: 0, synced: 0 };
  let total = 0;
  let bytes = 0;
  for (const r of rows) {
    byStatus[r.status] = (byStatus[r.status] ?? 0) + r.messages;
    byDirection[r.direction] += r.messages;
    total += r.messages;
    bytes += r.bytes;
  }
  return { total, total_size_bytes: bytes, by_status: byStatus, by_direction: byDirection };
}

/** Every UTC date (YYYY-MM-DD) whose day overlaps [since, until). */
function datesOf(range: Range): string[] {
  const dates: string[] = [];
  const first = Math.floor(range.since.getTime() / DAY_MS) * DAY_MS;
  for (let t = first; t < range.until.getTime(); t += DAY_MS) {
    dates.push(new Date(t).toISOString().slice(0, 10));
  }
  return dates;
}

function checkRange(filter: store.MessageFilter): void {
  if (filter.since && filter.until && filter.since >= filter.until) {
    throw validationFailed('querystring.until', 'must be after since');
  }
}

export class MessagesService {
  readonly #o: MessagesOptions;

  constructor(options: MessagesOptions) {
    this.#o = options;
  }

  // ---- reading -----------------------------------------------------------------------------------

  /** Received messages by id, across organisations (a worker's batch), in the caller's transaction. */
  async received(db: Db, ids: string[]): Promise<Map<string, store.ReceivedMessage>> {
    const rows = ids.length ? await store.receivedByIds(db, ids) : [];
    return new Map(rows.map((r) => [r.id, r]));
  }

  async list(organizationId: string, filter: store.MessageFilter, page: PageRequest) {
    checkRange(filter);
    const { rows, total } = await store.listMessages(this.#o.db, organizationId, filter, page);
    return toPage(rows, total, page);
  }

  /**
   * The filtered log newest first, after `cursor` (keyset pages, for exports that stream), with the
   * cursor of the next page (null after the last).
   */
  async pageBefore(
    organizationId: string,
    filter: store.MessageFilter,
    cursor: store.LogCursor | null,
    limit: number,
  ): Promise<{ rows: store.MessageSummaryRow[]; next: store.LogCursor | null }> {
    checkRange(filter);
    return store.messagesBefore(this.#o.db, organizationId, filter, cursor, limit);
  }

  /** Full-text search (websearch syntax), newest first; `analysis` narrows to what intelligence found. */
  async search(
    organizationId: string,
    q: string,
    page: PageRequest,
    analysis?: store.AnalysisFilter,
  ): Promise<SearchPage> {
    if (!/[\p{L}\p{N}]/u.test(q)) throw validationFailed('querystring.q', 'has no word to search for');
    const db = this.#o.db;
    if (store.analysisWhere(analysis)) {
      // Narrowed by analysis: the GIN index finds the word's matches, each checked against its analysis.
      const found = await store.searchAll(db, organizationId, q, page, analysis);
      const total = found.total ?? 0;
      return {
        ...toPage(await store.summariesByIds(db, organizationId, found.ids), total, page),
        total_exact: true,
      };
    }
    const offset = offsetOf(page);
    const needed = offset + page.page_size;
    const estimate = await store.searchEstimate(db, organizationId, q);
    const matches = Math.max(estimate.matches, 1);
    if (MATCH_COST * matches * matches > needed * estimate.messages) {
      const window = Math.ceil((WALK_SLACK * needed * estimate.messages) / matches);
      const recent = await store.searchRecent(db, organizationId, q, window, needed);
      if (recent.length >= needed) {
        let total = estimate.matches;
        let exact = false;
        if (estimate.matches <= EXACT_COUNT_BELOW) {
          total = await store.searchCount(db, organizationId, q, EXACT_COUNT_CAP + 1);
          exact = total <= EXACT_COUNT_CAP;
        }
        // However low an estimate, the matches already seen exist.
        if (!exact) total = Math.max(total, needed);
        const rows = await store.summariesByIds(db, organizationId, recent.slice(offset));
        return { ...toPage(rows, total, page), total_exact: exact };
      }
    }
    const all = await store.searchAll(db, organizationId, q, page);
    // A page past the last match: count them on their own.
    const total = all.total ?? (offset > 0 ? await store.searchCount(db, organizationId, q) : 0);
    const rows = await store.summariesByIds(db, organizationId, all.ids);
    return { ...toPage(rows, total, page), total_exact: true };
  }

  recent(organizationId: string, limit: number) {
    return store.recentMessages(this.#o.db, organizationId, limit);
  }

  async get(organizationId: string, id: string) {
    const message = await store.messageById(this.#o.db, organizationId, id);
    if (!message) throw notFound('Message');
    return message;
  }

  /**
   * The message with what routing did with it, the copies it was forwarded as, its deliveries, and what
   * mail intelligence found in it (null until analysed).
   */
  async detail(organizationId: string, id: string) {
    const message = await this.get(organizationId, id);
    const [routes, forwards, recipients, analysis] = await Promise.all([
      store.routesOf(this.#o.db, organizationId, id),
      store.forwardsOf(this.#o.db, organizationId, id),
      message.direction === 'outbound' ? this.#o.recipientsOf(organizationId, id) : [],
      store.analysisOf(this.#o.db, organizationId, id),
    ]);
    return { message, routes, forwards, recipients, analysis: analysis ?? null };
  }

  /** Messages with their raw content, for mail intelligence; those whose content is gone are left out. */
  async analysisSources(ids: string[]): Promise<Array<store.AnalysisSource & { raw: Buffer }>> {
    const rows = await store.analysisSourcesByIds(this.#o.db, ids);
    const raw = await this.#o.blobs.getMany(
      rows.map((r) => ({ organizationId: r.organization_id, id: r.blob_id })),
    );
    return rows.flatMap((r) => {
      const bytes = raw.get(r.blob_id);
      return bytes ? [{ ...r, raw: bytes }] : [];
    });
  }

  countInScope(organizationId: string, scope: store.AnalysisScope): Promise<number> {
    return store.countInScope(this.#o.db, organizationId, scope);
  }

  idsInScope(organizationId: string, scope: store.AnalysisScope, after: string | null, limit: number) {
    return store.idsInScope(this.#o.db, organizationId, scope, after, limit);
  }

  /** Writes the analyses of a batch of messages (mail intelligence), in the caller's transaction. */
  saveAnalyses(tx: Db, rows: store.NewMessageAnalysis[]): Promise<void> {
    return store.saveAnalyses(tx, rows);
  }

  /** The message as received, byte for byte. */
  async raw(organizationId: string, id: string): Promise<Buffer> {
    const message = await this.get(organizationId, id);
    const bytes = await this.#o.blobs.get(organizationId, message.blobId);
    if (!bytes) throw notFound('Message content');
    return bytes;
  }

  /** A thread's messages, oldest first (the first THREAD_LIMIT). */
  async thread(organizationId: string, threadId: string) {
    const rows = await store.threadMessages(this.#o.db, organizationId, threadId, THREAD_LIMIT);
    if (rows.length === 0) throw notFound('Thread');
    return rows;
  }

  // ---- changing ----------------------------------------------------------------------------------

  async setStatus(organizationId: string, id: string, status: MessageStatus) {
    if (!(MANUAL_STATUSES as readonly string[]).includes(status)) {
      throw validationFailed('body.status', `may be set to ${MANUAL_STATUSES.join(', ')} only`);
    }
    return this.#o.db.transaction(async (tx) => {
      const message = await store.lockMessage(tx, organizationId, id);
      if (!message) throw notFound('Message');
      if (message.status === status) return message;
      const updated = await store.updateStatus(tx, id, status);
      await this.#o.events.emit(tx, messageStatusChanged, organizationId, {
        message_id: id,
        direction: message.direction,
        status,
        previous_status: message.status,
      });
      return updated;
    });
  }

  /**
   * Deletes the message, its routes, its mailbox copies (their bytes given back to the mailboxes) and
   * its raw content, all or nothing. Forwarded copies remain, detached from it.
   */
  async delete(organizationId: string, id: string): Promise<void> {
    await this.#o.db.transaction(async (tx) => {
      await store.lockMailboxesOf(tx, organizationId, id);
      const message = await store.lockMessage(tx, organizationId, id);
      if (!message) throw notFound('Message');
      const shared = await store.blobSharedByCopies(tx, id, message.blobId);
      await store.deleteMessage(tx, organizationId, id);
      if (!shared) await this.#o.blobs.delete(tx, organizationId, [message.blobId]);
      await this.#o.events.emit(tx, messageDeleted, organizationId, {
        message_id: id,
        direction: message.direction,
        status: message.status,
      });
    });
  }

  // ---- statistics --------------------------------------------------------------------------------

  async stats(organizationId: string, since: Date | null): Promise<MessageStats> {
    const counts = summarise(
      await store.countsByStatus(this.#o.db, organizationId, { since: since ?? undefined }),
    );
    return {
      since,
      total: counts.total,
      total_size_bytes: counts.total_size_bytes,
      inbound: counts.by_direction.inbound,
      outbound: counts.by_direction.outbound,
      by_status: counts.by_status,
    };
  }

  /** [since, until): until defaults to now, since to the start of the UTC day 29 days before it. */
  range(since: Date | undefined, until: Date | undefined): Range {
    const end = until ?? new Date();
    const start =
      since ?? new Date(Math.floor(end.getTime() / DAY_MS) * DAY_MS - (DEFAULT_RANGE_DAYS - 1) * DAY_MS);
    if (start >= end) throw validationFailed('querystring.until', 'must be after since');
    if (end.getTime() - start.getTime() > MAX_RANGE_DAYS * DAY_MS) {
      throw validationFailed('querystring.since', `the range may cover at most ${MAX_RANGE_DAYS} days`);
    }
    return { since: start, until: end };
  }

  async domainStats(organizationId: string, domainId: string, since: Date | undefined) {
    const domain = await this.#o.domains.get(organizationId, domainId);
    const range = this.range(since, undefined);
    const [counts, days] = await Promise.all([
      store.countsByStatus(this.#o.db, organizationId, { ...range, domainId }),
      store.countsByDay(this.#o.db, organizationId, { ...range, domainId }),
    ]);
    const byDate = new Map(days.map((d) => [d.date, d.messages]));
    return {
      domain,
      range,
      ...summarise(counts),
      daily: datesOf(range).map((date) => ({ date, messages: byDate.get(date) ?? 0 })),
    };
  }

  async statistics(organizationId: string, since: Date | undefined, until: Date | undefined) {
    const range = this.range(since, until);
    const [days, domains, aliases] = await Promise.all([
      store.countsByDay(this.#o.db, organizationId, range),
      store.topDomains(this.#o.db, organizationId, range, TOP),
      store.topAliases(this.#o.db, organizationId, range, TOP),
    ]);
    const byDate = new Map(days.map((d) => [d.date, d]));
    const daily = datesOf(range).map((date) => {
      const d = byDate.get(date);
      return {
        date,
        inbound: d?.inbound ?? 0,
        outbound: d?.outbound ?? 0,
        delivered: d?.delivered ?? 0,
        failed: d?.failed ?? 0,
        rejected: d?.rejected ?? 0,
        quarantined: d?.quarantined ?? 0,
        bounced: d?.bounced ?? 0,
      };
    });
    return { range, daily, top_domains: domains, top_aliases: aliases };
  }
}
