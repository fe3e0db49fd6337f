// Inbound processing: accepted messages are taken from the processing queue in batches and filed, many
// messages per transaction. Processing is idempotent: a batch's effects commit together with the marks
// that its messages were processed, and the statement that sets the marks skips any message another run
// finished first, so a crash at any point repeats the work at most, never its effects.
//
// A batch, step by step:
//   claim     due queue rows (a lease that counts an attempt; an expired lease falls due again)
//   read      the raw bytes of the batch in one query
//   parse     MIME structure and search pieces, in worker threads (core/threads.ts)
//   thread    one lookup for the batch's In-Reply-To/References, then within the batch
//   route     per recipient (routing.ts), through cached lookups; VERP return paths take bounce and
//             feedback reports, feedback addresses (fbl@) feedback reports
//   forward   each external copy: SRS envelope sender, Delivered-To, ARC seal
//   commit    one transaction: outcomes (search vectors built in the same statement), routes, forwards,
//             events, rule counters, the queue rows, and filing last (mailbox and folder rows: UIDs, bytes)
// A batch whose commit fails is committed again message by message, so one bad message cannot hold up
// the others; a message that fails is tried again later, and after its last attempt marked failed.
import type { Logger } from 'pino';
import { sealMessage } from 'mailauth';
import type { BlobStore } from '../../core/blobs.ts';
import type { Secrets } from '../../core/crypto.ts';
import { batchTransaction, type Db } from '../../core/db.ts';
import { newId } from '../../core/ids.ts';
import type { ThreadPool } from '../../core/threads.ts';
import type { EventsService } from '../events/service.ts';
import type { ParsedBounce } from '../delivery/bounce-parse.ts';
import type { MessageAuth, MessageStatus } from '../messages/tables.ts';
import { messageReceived } from './events.ts';
import type { PreparedMessage, parseTasks } from './parse.ts';
import { domainOf, parseRecipient } from './address.ts';
import { type Delivery, type RouteDecision, Router, type RoutingLookups } from './routing.ts';
import type { FeedbackHooks, FeedbackReading, FiledListener, OutboundHooks } from './service.ts';
import type { Srs } from './srs.ts';
import { threadBatch } from './threading.ts';
import {
  activeKeyOf,
  type ClaimedMessage,
  claimQueued,
  countRuleMatches,
  deferQueued,
  dequeue,
  extendClaims,
  type Filing,
  fileInMailboxes,
  finishProcessing,
  insertMessages,
  insertRoutes,
  markFailed,
  type NewMessage,
  nextQueuedAt,
  type ProcessedFields,
  processedFieldsOf,
  releaseClaims,
} from './store.ts';

export interface ProcessorOptions {
  db: Db;
  blobs: BlobStore;
  outbound: OutboundHooks;
  feedback: FeedbackHooks;
  events: EventsService;
  secrets: Secrets;
  srs: Srs;
  hostname: string;
  lookups: RoutingLookups;
  parser: ThreadPool<typeof parseTasks>;
  /** Messages per batch (per transaction). */
  batchSize: number;
  /** Batches in flight at once: one parses while another commits. */
  concurrency: number;
  /** No other worker can exist (the embedded database): claims left from before are taken back at start. */
  soleWorker: boolean;
  log: Logger;
  /** Longest idle sleep between looks at the queue (another process may have queued mail). */
  pollMs?: number;
  /** Told, in the commit's transaction, of the messages filed into mailboxes (InboundService.filed). */
  filed: FiledListener;
}

/**
 * How long a claim lasts without renewal. Claims of batches still in this worker are renewed every third
 * of it, so only a dead worker's claims expire, and its messages are taken over within this time.
 */
const LEASE_MS = 15_000;
/** After a batch that was not full, the wait before claiming again (latency traded for shared work). */
const GATHER_MS = 20;
/** Attempts before a message is given up on and shown as failed. */
export const MAX_ATTEMPTS = 6;
/** Delay before attempt n + 1: 10 s, doubling, at most 5 minutes. */
const retryDelay = (attempts: number) => Math.min(300_000, 10_000 * 2 ** (attempts - 1));

/** A message of a batch on its way through the steps. */
interface Item {
  message: ClaimedMessage;
  raw: Buffer;
  prepared: PreparedMessage;
  threadId: string;
  decisions: RouteDecision[];
  reports: BounceReport[];
  /** Recipients (VERP return paths, feedback addresses) at which the message is a feedback report. */
  feedback: { rcpt: string; verp: { messageId: string; domain: string } | null }[];
  /** The message read as a feedback report: undefined until asked, null when it is none. */
  reading?: FeedbackReading | null;
  forwards: NewForward[];
  matchedRules: Set<string>;
  status: ProcessedStatus;
  error: string | null;
}

interface BounceReport {
  rcpt: string;
  messageId: string;
  domain: string;
  parsed: ParsedBounce | null;
}

interface NewForward {
  raw: Buffer;
  row: NewMessage & { blobId: string };
}

/** What processing can conclude; pending and bounced belong to other stages. */
type ProcessedStatus = Extract<MessageStatus, 'delivered' | 'failed' | 'rejected' | 'quarantined'>;

export class InboundProcessor {
  readonly #o: ProcessorOptions;
  #running = false;
  #loops: Promise<void>[] = [];
  readonly #sleepers = new Set<() => void>();
  #woken = false;
  /** Messages claimed by this worker and not yet finished or given back. */
  readonly #held = new Set<string>();
  #renewer: NodeJS.Timeout | null = null;

  constructor(options: ProcessorOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    if (this.#o.soleWorker) {
      const released = await releaseClaims(this.#o.db);
      if (released) this.#o.log.warn({ released }, 'processing again messages a stopped process had claimed');
    }
    this.#renewer = setInterval(() => void this.#renewClaims(), LEASE_MS / 3);
    for (let i = 0; i < this.#o.concurrency; i++) {
      this.#loops.push(this.#loop(i).catch((err) => this.#o.log.error({ err }, 'inbound processor stopped')));
    }
  }

  /**
   * Look at the queue now (messages were committed). One sleeping loop wakes; one that then finds a
   * full batch wakes the next, so a trickle of commits does not send every loop to an empty queue.
   */
  wake(): void {
    this.#woken = true;
    this.#sleepers.values().next().value?.();
  }

  /** Stops claiming and lets the batches in flight finish. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#woken = true;
    for (const wake of [...this.#sleepers]) wake();
    await Promise.all(this.#loops);
    this.#loops = [];
    if (this.#renewer) clearInterval(this.#renewer);
    this.#renewer = null;
  }

  async #renewClaims(): Promise<void> {
    await extendClaims(this.#o.db, [...this.#held], LEASE_MS).catch((err) =>
      this.#o.log.error({ err }, 'could not renew processing claims'),
    );
  }

  /**
   * One of the batches in flight. While the queue is empty only the first loop looks at it from time to
   * time (for messages falling due again and mail another process committed without a wake-up); the
   * others sleep until woken, so an idle worker costs the database one look a poll interval, not one per
   * loop.
   */
  async #loop(index: number): Promise<void> {
    while (this.#running) {
      this.#woken = false;
      let claimed: ClaimedMessage[];
      try {
        claimed = await claimQueued(this.#o.db, this.#o.batchSize, LEASE_MS);
      } catch (err) {
        this.#o.log.error({ err }, 'could not claim queued messages');
        await this.#sleep(1_000);
        continue;
      }
      if (!claimed.length) {
        if (!this.#woken) await this.#sleep(index === 0 ? await this.#idleFor() : null);
        continue;
      }
      const full = claimed.length === this.#o.batchSize;
      if (full) this.wake();
      for (const m of claimed) this.#held.add(m.id);
      await this.#process(claimed).catch((err) => this.#o.log.error({ err }, 'inbound batch failed'));
      // Whatever was not finished or given back expires with its claim and is tried again.
      for (const m of claimed) this.#held.delete(m.id);
      // After a short batch, a moment for more to arrive: a batch's statements are then shared by many
      // messages rather than paid again for each one (most of the work on the embedded engine).
      if (!full && this.#running) await new Promise((r) => setTimeout(r, GATHER_MS));
    }
  }

  /** Until the next deferred message is due, within the poll interval. */
  async #idleFor(): Promise<number> {
    const poll = this.#o.pollMs ?? 1_000;
    const next = await nextQueuedAt(this.#o.db).catch(() => null);
    if (!next) return poll;
    return Math.max(5, Math.min(poll, next.getTime() - Date.now()));
  }

  /** Until woken, or `ms` at the most (null: until woken). */
  #sleep(ms: number | null): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        if (timer) clearTimeout(timer);
        this.#sleepers.delete(done);
        resolve();
      };
      const timer = ms === null ? null : setTimeout(done, ms);
      this.#sleepers.add(done);
    });
  }

  // ---- a batch -----------------------------------------------------------------------------------------

  async #process(claimed: ClaimedMessage[]): Promise<void> {
    const live: ClaimedMessage[] = [];
    for (const message of claimed) {
      if (message.attempts > MAX_ATTEMPTS) await this.#giveUp(message, 'processing never finished');
      else live.push(message);
    }
    const items = await this.#prepare(live);
    await this.#thread(items);
    for (const item of [...items]) {
      try {
        await this.#route(item);
        await this.#prepareForwards(item);
      } catch (err) {
        items.splice(items.indexOf(item), 1);
        await this.#failed(item.message, err);
      }
    }
    if (!items.length) return;
    try {
      await this.#commit(items);
    } catch (err) {
      if (items.length === 1) {
        await this.#failed(items[0].message, err);
        return;
      }
      this.#o.log.warn({ err, messages: items.length }, 'batch commit failed; committing one by one');
      for (const item of items) await this.#commit([item]).catch((e) => this.#failed(item.message, e));
    }
  }

  /** read and parse: the raw bytes in one query, then MIME parsing in the thread pool. */
  async #prepare(claimed: ClaimedMessage[]): Promise<Item[]> {
    if (!claimed.length) return [];
    const raws = await this.#o.blobs.getMany(
      claimed.map((m) => ({ organizationId: m.organizationId, id: m.blobId })),
    );
    const threaded = this.#o.parser.size > 0;
    const settled = await Promise.allSettled(
      claimed.map((m) => {
        const raw = raws.get(m.blobId);
        if (!raw) return Promise.reject(new Error(`message ${m.id} has no stored body`));
        const envelope = [m.mailFrom, ...m.rcptTo];
        if (!threaded) return this.#o.parser.run('prepare', { raw, envelope });
        // A thread gets a copy of just these bytes, moved rather than copied again (a view would carry
        // its whole underlying buffer).
        const copy = new Uint8Array(raw);
        return this.#o.parser.run('prepare', { raw: copy, envelope }, [copy.buffer]);
      }),
    );
    const items: Item[] = [];
    for (const [i, outcome] of settled.entries()) {
      const message = claimed[i];
      if (outcome.status === 'rejected') {
        await this.#failed(message, outcome.reason);
        continue;
      }
      items.push({
        message,
        raw: raws.get(message.blobId)!,
        prepared: outcome.value,
        threadId: message.id,
        decisions: [],
        reports: [],
        feedback: [],
        forwards: [],
        matchedRules: new Set(),
        status: 'failed',
        error: null,
      });
    }
    return items;
  }

  /** thread: see threading.ts; messages earlier in the batch count as known. */
  async #thread(items: Item[]): Promise<void> {
    const threads = await threadBatch(
      this.#o.db,
      items.map((item) => ({
        id: item.message.id,
        organizationId: item.message.organizationId,
        parsed: item.prepared.parsed,
      })),
    );
    items.forEach((item, i) => {
      item.threadId = threads[i];
    });
  }

  /** route: a decision per recipient; VERP return addresses take bounce reports instead. */
  async #route(item: Item): Promise<void> {
    const { message } = item;
    const { parsed } = item.prepared;
    const router = new Router(this.#o.lookups, message.organizationId, this.#o.srs, {
      sender: parsed.fromAddress ?? message.mailFrom,
      subject: parsed.subject ?? '',
      size: message.size,
      hasAttachments: parsed.hasAttachments,
      deliveredTo: parsed.deliveredTo,
      receivedHops: parsed.receivedHops,
    });
    const quarantine = message.auth?.action === 'quarantine';
    for (const rcpt of message.rcptTo) {
      const target = this.#o.outbound.verpTarget(rcpt);
      const local = target ? null : parseRecipient(rcpt);
      const feedbackAddress = local !== null && this.#o.feedback.isFeedbackAddress(local.localPart);
      if ((target || feedbackAddress) && (await this.#readFeedback(item))) {
        // A feedback report: recorded at commit. At a feedback address it also goes wherever mail to
        // that address goes (a mailbox, an alias to a person), if anywhere.
        item.feedback.push({ rcpt, verp: target });
        if (feedbackAddress) item.decisions.push(...routedSomewhere(await router.route(rcpt, quarantine)));
      } else if (target) {
        item.reports.push({ rcpt, ...target, parsed: await this.#o.outbound.parseReport(item.raw) });
      } else if (feedbackAddress) {
        // Not a report: it goes where mail to the address goes, or stays in the message log.
        const routed = routedSomewhere(await router.route(rcpt, quarantine));
        item.decisions.push(...(routed.length ? routed : [keptAtFeedbackAddress(rcpt, message)]));
      } else item.decisions.push(...(await router.route(rcpt, quarantine)));
    }
    item.matchedRules = router.matchedRules;
    // A feedback report is delivered to the feedback module (its route is added at commit).
    item.status = item.feedback.length && !quarantine ? 'delivered' : statusOf(item.decisions, quarantine);
    item.error = failureOf(item.decisions);
  }

  /** The message as a feedback report (read once, whichever recipients ask). */
  async #readFeedback(item: Item): Promise<FeedbackReading | null> {
    if (item.reading === undefined) item.reading = await this.#o.feedback.readReport(item.raw);
    return item.reading;
  }

  /** forward: one outbound copy per forward target, sealed for the hosted domain that forwards it. */
  async #prepareForwards(item: Item): Promise<void> {
    const { message, raw } = item;
    const { parsed } = item.prepared;
    const seen = new Set<string>();
    for (const d of item.decisions) {
      if (d.delivery?.kind !== 'forward' || seen.has(d.delivery.address)) continue;
      seen.add(d.delivery.address);
      const body = Buffer.concat([Buffer.from(`Delivered-To: ${d.recipient}\r\n`), raw]);
      const copy = Buffer.concat([await this.#seal(d.domainId, d.domain, body, message.auth), body]);
      item.forwards.push({
        raw: copy,
        row: {
          id: newId(),
          organizationId: message.organizationId,
          domainId: d.domainId,
          direction: 'outbound',
          status: 'pending',
          blobId: newId(),
          size: copy.length,
          mailFrom: d.delivery.bounce ? '' : this.#o.srs.rewrite(message.mailFrom, d.domain),
          rcptTo: [d.delivery.address],
          parentId: message.id,
          messageIdHeader: parsed.messageId,
          fromAddress: parsed.fromAddress,
          fromName: parsed.fromName,
          toAddresses: parsed.to,
          subject: parsed.subject,
        },
      });
    }
  }

  async #seal(domainId: string, domain: string, body: Buffer, auth: MessageAuth | null): Promise<Buffer> {
    const key = await activeKeyOf(this.#o.db, domainId);
    if (!key) return Buffer.alloc(0);
    const cv = auth?.arc === 'pass' ? 'pass' : auth?.arc === 'none' || !auth ? 'none' : 'fail';
    return sealMessage(body, {
      signingDomain: domain,
      selector: key.selector,
      privateKey: this.#o.secrets.decrypt(key.privateKey),
      algorithm: key.algorithm === 'ed25519' ? 'ed25519-sha256' : 'rsa-sha256',
      authResults: auth?.authentication_results ?? `${this.#o.hostname}; none`,
      cv,
    } as never);
  }

  /** commit: the batch's effects in one transaction; filing last, so its row locks are held briefly. */
  async #commit(items: Item[]): Promise<void> {
    const forwarded = await batchTransaction(this.#o.db, async (tx) => {
      const finished = await finishProcessing(tx, items.map(processedFields));
      const done = items.filter((item) => finished.has(item.message.id));
      for (const item of done) {
        item.decisions.push(...(await this.#recordBounceReports(tx, item)));
        item.decisions.push(...(await this.#recordFeedback(tx, item)));
      }
      await insertRoutes(tx, done.flatMap(routesOf));
      const forwards = done.flatMap((item) => item.forwards);
      await this.#o.blobs.put(
        tx,
        forwards.map((f) => ({ organizationId: f.row.organizationId, id: f.row.blobId, data: f.raw })),
      );
      await insertMessages(
        tx,
        forwards.map((f) => f.row),
      );
      await this.#o.outbound.queueForwardsIn(
        tx,
        forwards.map((f) => f.row),
      );
      await this.#o.events.emitMany(
        tx,
        done.map((item) => ({
          definition: messageReceived,
          organizationId: item.message.organizationId,
          data: {
            message_id: item.message.id,
            domain_id: item.message.domainId,
            status: item.status,
            mail_from: item.message.mailFrom,
            rcpt_to: item.message.rcptTo,
            from: item.prepared.parsed.fromAddress,
            subject: item.prepared.parsed.subject,
            size: item.message.size,
            forwarded: item.forwards.length,
          },
        })),
      );
      const matches = new Map<string, number>();
      for (const item of done)
        for (const id of item.matchedRules) matches.set(id, (matches.get(id) ?? 0) + 1);
      await countRuleMatches(tx, matches);
      await dequeue(
        tx,
        items.map((item) => item.message.id),
      );
      const filings = done.flatMap(filingsOf);
      await fileInMailboxes(tx, filings);
      const filed = new Map(filings.map((f) => [f.messageId, f.organizationId]));
      await this.#o.filed(
        tx,
        [...filed].map(([id, organizationId]) => ({ id, organizationId })),
      );
      return forwards.length;
    });
    if (forwarded) this.#o.outbound.notifyQueued();
  }

  /** Attaches bounce reports that reached VERP addresses to the messages they name, as routes. */
  async #recordBounceReports(tx: Db, item: Item): Promise<RouteDecision[]> {
    const { message } = item;
    const decisions: RouteDecision[] = [];
    for (const report of item.reports) {
      const concerned = report.parsed
        ? await this.#o.outbound.recordReportIn(
            tx,
            message.organizationId,
            report.messageId,
            message.id,
            report.parsed,
          )
        : 0;
      decisions.push({
        recipient: report.rcpt.toLowerCase(),
        route: 'bounce',
        targetId: report.messageId,
        action: 'drop',
        destination: report.messageId,
        detail: !report.parsed
          ? 'not a bounce report (an auto-reply or other mail to a return path): dropped'
          : concerned
            ? `bounce report (${report.parsed.kind}) for ${concerned} recipient(s) of the message`
            : 'bounce report naming no recipient of the message',
        delivery: null,
        domainId: message.domainId ?? '',
        domain: report.domain,
      });
    }
    return decisions;
  }

  /** Records a feedback report once per message, whichever of its recipients took it, as routes. */
  async #recordFeedback(tx: Db, item: Item): Promise<RouteDecision[]> {
    if (!item.feedback.length || !item.reading) return [];
    const { message } = item;
    const verp = item.feedback.find((f) => f.verp)?.verp ?? null;
    const recorded = await item.reading.recordIn(tx, {
      organizationId: message.organizationId,
      reportMessageId: message.id,
      domain: verp?.domain ?? domainOf(item.feedback[0].rcpt),
      verp: verp ? { messageId: verp.messageId } : null,
    });
    return item.feedback.map((f) => ({
      recipient: f.rcpt.toLowerCase(),
      route: 'feedback' as const,
      targetId: recorded.complaintId,
      action: 'drop' as const,
      destination: null,
      detail: recorded.detail,
      delivery: null,
      domainId: message.domainId ?? '',
      domain: f.verp?.domain ?? domainOf(f.rcpt),
    }));
  }

  /** A failed attempt: tried again later, or after the last attempt shown as failed. */
  async #failed(message: ClaimedMessage, err: unknown): Promise<void> {
    const error = err instanceof Error ? err.message : String(err);
    try {
      if (message.attempts >= MAX_ATTEMPTS) {
        await this.#giveUp(message, error);
        return;
      }
      this.#o.log.warn(
        { err, message_id: message.id, attempt: message.attempts },
        'processing failed; will retry',
      );
      await deferQueued(this.#o.db, message.id, retryDelay(message.attempts), error);
    } catch (e) {
      // The claim expires and the message is tried again.
      this.#o.log.error({ err: e, message_id: message.id }, 'could not record a processing failure');
    }
  }

  async #giveUp(message: ClaimedMessage, error: string): Promise<void> {
    this.#o.log.error({ message_id: message.id, error }, 'processing failed on every attempt');
    await this.#o.db.transaction(async (tx) => {
      await markFailed(tx, message.id, error);
      await dequeue(tx, [message.id]);
    });
  }
}

function processedFields(item: Item): ProcessedFields {
  return processedFieldsOf(item.message.id, item.prepared, {
    status: item.status,
    error: item.error,
    threadId: item.threadId,
  });
}

function routesOf(item: Item) {
  return item.decisions.map((d) => ({
    id: newId(),
    organizationId: item.message.organizationId,
    messageId: item.message.id,
    recipient: d.recipient,
    route: d.route,
    targetId: d.targetId,
    action: d.action,
    destination: d.destination,
    detail: d.detail,
  }));
}

/** Mailbox copies in mailbox and folder order (the first decision for a mailbox files it). */
function filingsOf(item: Item): Filing[] {
  return item.decisions
    .map((d) => d.delivery)
    .filter((d): d is Extract<Delivery, { kind: 'mailbox' }> => d?.kind === 'mailbox')
    .sort((a, b) => a.mailboxId.localeCompare(b.mailboxId) || a.folder.localeCompare(b.folder))
    .map((d) => ({
      id: newId(),
      organizationId: item.message.organizationId,
      mailboxId: d.mailboxId,
      folder: d.folder,
      messageId: item.message.id,
      size: item.message.size,
    }));
}

/** The decisions for an address less routing's "nothing here" (a feedback address needs no mailbox). */
function routedSomewhere(decisions: RouteDecision[]): RouteDecision[] {
  return decisions.filter((d) => !(d.route === 'none' && d.action === 'fail'));
}

/** Mail at a feedback address that is no report and has nowhere else to go: kept, in the message log. */
function keptAtFeedbackAddress(rcpt: string, message: ClaimedMessage): RouteDecision {
  return {
    recipient: rcpt.toLowerCase(),
    route: 'feedback',
    targetId: null,
    action: 'store',
    destination: null,
    detail: 'not a feedback report (ARF): kept in the message log (GET /v1/messages/:id/raw)',
    delivery: null,
    domainId: message.domainId ?? '',
    domain: domainOf(rcpt),
  };
}

function statusOf(decisions: RouteDecision[], quarantine: boolean): ProcessedStatus {
  if (quarantine) return 'quarantined';
  const delivered = decisions.some((d) => ['store', 'forward', 'redirect', 'drop'].includes(d.action));
  if (delivered) return 'delivered';
  if (decisions.length && decisions.every((d) => d.action === 'block')) return 'rejected';
  return 'failed';
}

function failureOf(decisions: RouteDecision[]): string | null {
  const failures = decisions.filter((d) => d.action === 'fail' || d.action === 'loop');
  return failures.length ? failures.map((d) => `${d.recipient}: ${d.detail}`).join('; ') : null;
}
