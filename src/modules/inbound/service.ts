// Inbound mail: the rules behind the MX. Recipients are checked at RCPT time; an accepted message is
// authenticated, committed with its envelope and its place in the processing queue in one transaction
// (only then does the MX answer 250), and processed afterwards, in batches (processing.ts).
import type { Logger } from 'pino';
import type { BlobStore } from '../../core/blobs.ts';
import { TtlCache } from '../../core/cache.ts';
import type { Db } from '../../core/db.ts';
import { newId } from '../../core/ids.ts';
import type { ParsedBounce } from '../delivery/bounce-parse.ts';
import type { AttemptResult, OutboundEnvelope, RecipientOutcome } from '../delivery/transport/types.ts';
import type { MessageAuth } from '../messages/tables.ts';
import type { ThreadPool } from '../../core/threads.ts';
import type { parseTasks, PreparedMessage } from './parse.ts';
import { isSrsLocalPart, parseRecipient, type Recipient } from './address.ts';
import { authenticateMessage } from './authenticate.ts';
import { type Accepted, CommitQueue } from './commit-queue.ts';
import type { MailauthResolver } from '../../core/resolver.ts';
import type { RoutingLookups } from './routing.ts';
import type { Srs } from './srs.ts';
import { threadBatch } from './threading.ts';
import {
  type DirectoryEntry,
  directoryEntry,
  finishProcessing,
  insertMessages,
  localTarget,
  processedFieldsOf,
  queueDepth,
  rulesFor,
} from './store.ts';
import { traceHeaders, withoutForgedResults } from './trace.ts';

/** What inbound needs from the outbound side (the delivery module's OutboundService provides it). */
export interface OutboundHooks {
  /** The original message a VERP return address names, when the address is genuine. */
  verpTarget(address: string): { messageId: string; domain: string } | null;
  parseReport(raw: Buffer): Promise<ParsedBounce | null>;
  recordReportIn(
    tx: Db,
    organizationId: string,
    originalMessageId: string,
    reportMessageId: string,
    report: ParsedBounce,
  ): Promise<number>;
  /** Queues forwarded copies (stored as outbound messages) for delivery, inside processing's transaction. */
  queueForwardsIn(tx: Db, copies: { id: string; organizationId: string; rcptTo: string[] }[]): Promise<void>;
  /** After a commit that queued copies: the local dispatcher looks at the queue. */
  notifyQueued(): void;
}

/** What inbound needs from the feedback module: complaint reports (ARF) at VERP and feedback addresses. */
export interface FeedbackHooks {
  /** Whether `localPart` (lower case, without a +tag) is the feedback address every hosted domain has. */
  isFeedbackAddress(localPart: string): boolean;
  /** The message read as a feedback report; null when it is none. Read once, before processing's commit. */
  readReport(raw: Buffer): Promise<FeedbackReading | null>;
}

/** A feedback report read from an accepted message. */
export interface FeedbackReading {
  /** Records it inside processing's transaction; the complaint and a line for the message's routes. */
  recordIn(tx: Db, arrival: FeedbackArrival): Promise<{ complaintId: string; detail: string }>;
}

/** Where a feedback report arrived. */
export interface FeedbackArrival {
  organizationId: string;
  /** The accepted message that carries the report. */
  reportMessageId: string;
  /** The hosted domain it arrived at (for a VERP return path, the domain the path belongs to). */
  domain: string;
  /** Set when it reached a VERP return path: the message that address names (its MAC verified). */
  verp: { messageId: string } | null;
}

export interface InboundServiceOptions {
  db: Db;
  outbound: OutboundHooks;
  feedback: FeedbackHooks;
  blobs: BlobStore;
  srs: Srs;
  resolver: MailauthResolver;
  hostname: string;
  log: Logger;
  /** MIME parsing and search tokenising off the event loop (processing, and messages clients store). */
  parser: ThreadPool<typeof parseTasks>;
}

/** A message a mail client stores in a folder (IMAP APPEND), parsed by `prepareStored`. */
export interface StoredMessage {
  id: string;
  organizationId: string;
  blobId: string;
  size: number;
  receivedAt: Date;
  prepared: PreparedMessage;
}

/** The answer to RCPT TO. */
export type RecipientCheck =
  | { accepted: true; recipient: Recipient; entry: DirectoryEntry }
  | { accepted: false; code: number; message: string };

export interface AcceptInput {
  raw: Buffer;
  mailFrom: string;
  recipients: { recipient: Recipient; entry: DirectoryEntry }[];
  remoteIp: string;
  helo: string;
  tls: boolean;
  /** The SMTP transaction id, for the Received header. */
  sessionId: string;
}

export type AcceptResult =
  | { accepted: true; messageIds: string[]; queueId: string }
  | { accepted: false; code: number; message: string };

const DIRECTORY_CACHE_MS = 30_000;
const DIRECTORY_CACHE_SIZE = 100_000;
/** Events after which RCPT answers may differ. */
export const ROUTING_EVENT = /^(domain|mailbox|alias|rule)\./;

/** A message filed from outside (see InboundService.onFiled). */
export interface FiledMessage {
  id: string;
  organizationId: string;
}
export type FiledListener = (tx: Db, messages: FiledMessage[]) => Promise<void>;

export class InboundService {
  readonly #o: InboundServiceOptions;
  readonly #commits: CommitQueue;
  /**
   * RCPT answers per address and routing's lookups, for DIRECTORY_CACHE_MS: a busy MX and its workers
   * would otherwise ask the database the same questions for every message. Any change to domains,
   * mailboxes, aliases or rules clears it (see `forgetRecipients`), so it only ever delays quota
   * accounting.
   */
  readonly #lookupCache = new TtlCache(DIRECTORY_CACHE_MS, DIRECTORY_CACHE_SIZE);
  /** The SRS codec forwarding uses (the processor rewrites senders with the same one). */
  get srs(): Srs {
    return this.#o.srs;
  }

  /** Feedback reports (the processor hands them over with the same hooks). */
  get feedback(): FeedbackHooks {
    return this.#o.feedback;
  }

  /** Routing's lookups, through the same cache (the processor routes with them). */
  readonly lookups: RoutingLookups = {
    localTarget: (organizationId, domain, localPart) =>
      this.#lookupCache.get(`t:${organizationId}:${localPart}@${domain}`, () =>
        localTarget(this.#o.db, organizationId, domain, localPart),
      ),
    rules: (domainId) => this.#lookupCache.get(`r:${domainId}`, () => rulesFor(this.#o.db, [domainId])),
  };

  constructor(options: InboundServiceOptions) {
    this.#o = options;
    this.#commits = new CommitQueue(options.db, options.blobs, () => this.#committed());
  }

  #committed: () => void = () => {};
  readonly #filed: FiledListener[] = [];

  /** Called after every commit that queued messages for processing (this process's processor wakes). */
  onCommitted(listener: () => void): void {
    this.#committed = listener;
  }

  /**
   * Called inside the transaction that files mail from outside into mailboxes: the MX's (messages with
   * a mailbox copy) and an external account's sync. Mail a client stored itself (APPEND) is not reported.
   */
  onFiled(listener: FiledListener): void {
    this.#filed.push(listener);
  }

  /** Tells the listeners (see onFiled); processing calls it for the MX's mail. */
  async filed(tx: Db, messages: FiledMessage[]): Promise<void> {
    if (!messages.length) return;
    for (const listener of this.#filed) await listener(tx, messages);
  }

  get parser(): ThreadPool<typeof parseTasks> {
    return this.#o.parser;
  }

  /** Parses a message a client stores, as processing parses mail (on the parsing threads). */
  prepareStored(raw: Buffer): Promise<PreparedMessage> {
    return this.#o.parser.run('prepare', { raw, envelope: [] });
  }

  /**
   * Records messages that did not flow through the MX as processing records mail (fields, details,
   * search vector), delivered: `stored` ones a client put in a folder (IMAP APPEND; each its own
   * thread), `synced` ones copied from an external account (threaded like arriving mail). Filing them
   * is the caller's business.
   */
  async insertStored(
    tx: Db,
    batch: StoredMessage[],
    origin: { direction: 'stored' } | { direction: 'synced'; accountId: string } = { direction: 'stored' },
  ): Promise<void> {
    if (!batch.length) return;
    const threads =
      origin.direction === 'synced'
        ? await threadBatch(
            tx,
            batch.map((m) => ({ id: m.id, organizationId: m.organizationId, parsed: m.prepared.parsed })),
          )
        : batch.map((m) => m.id);
    await insertMessages(
      tx,
      batch.map((m) => ({
        id: m.id,
        organizationId: m.organizationId,
        direction: origin.direction,
        accountId: origin.direction === 'synced' ? origin.accountId : null,
        status: 'delivered' as const,
        blobId: m.blobId,
        size: m.size,
        mailFrom: '',
        rcptTo: [],
        receivedAt: m.receivedAt,
      })),
    );
    await finishProcessing(
      tx,
      batch.map((m, i) =>
        processedFieldsOf(m.id, m.prepared, { status: 'delivered', error: null, threadId: threads[i] }),
      ),
    );
    if (origin.direction === 'synced')
      await this.filed(
        tx,
        batch.map((m) => ({ id: m.id, organizationId: m.organizationId })),
      );
  }

  async checkRecipient(address: string): Promise<RecipientCheck> {
    const unknown = {
      accepted: false as const,
      code: 550,
      message: `5.1.1 <${address}>: recipient address rejected: no such user here`,
    };
    const bounce = await this.#checkBounceAddress(address);
    if (bounce) return bounce;
    const recipient = parseRecipient(address);
    if (!recipient) return unknown;
    const entry = await this.#lookupCache.get(`d:${recipient.address}`, () =>
      directoryEntry(this.#o.db, recipient.domain, recipient.localPart),
    );
    if (!entry) return unknown;
    // The feedback address takes reports whatever else is configured there (feedback loops give up on
    // an address that refuses them).
    if (this.#o.feedback.isFeedbackAddress(recipient.localPart)) return { accepted: true, recipient, entry };
    const { mailbox } = entry;
    if (mailbox) {
      if (!mailbox.isActive && !entry.aliasId && !entry.hasRule)
        return { accepted: false, code: 550, message: `5.2.1 <${address}>: mailbox disabled` };
      if (mailbox.isActive && mailbox.usedBytes >= mailbox.quotaBytes)
        return { accepted: false, code: 452, message: `4.2.2 <${address}>: mailbox full` };
      return { accepted: true, recipient, entry };
    }
    if (entry.aliasId || entry.hasRule || entry.catchAllTarget) return { accepted: true, recipient, entry };
    if (isSrsLocalPart(recipient.localPart) && this.#o.srs.reverse(recipient.localPart))
      return { accepted: true, recipient, entry };
    return unknown;
  }

  /**
   * A VERP return address (`b+<token>@bounces.<domain>`) of a hosted domain takes bounces for the
   * message it names; a forged or foreign token is an unknown user like any other.
   */
  async #checkBounceAddress(address: string): Promise<RecipientCheck | null> {
    const target = this.#o.outbound.verpTarget(address);
    if (!target) return null;
    const entry = await this.#lookupCache.get(`d:@${target.domain}`, () =>
      directoryEntry(this.#o.db, target.domain, ''),
    );
    if (!entry) return null;
    const at = address.lastIndexOf('@');
    const recipient: Recipient = {
      localPart: address.slice(0, at).toLowerCase(),
      tag: null,
      domain: address.slice(at + 1).toLowerCase(),
      address: address.toLowerCase(),
    };
    return { accepted: true, recipient, entry: { ...entry, mailbox: null, aliasId: null, hasRule: false } };
  }

  /** How many accepted messages wait for processing, and since when the oldest has (back-pressure). */
  queueDepth() {
    return queueDepth(this.#o.db);
  }

  /** Drops every cached RCPT answer: called whenever routing configuration changes, in any process. */
  forgetRecipients(): void {
    this.#lookupCache.clear();
  }

  /** Authenticates and commits an accepted message; resolves only once it is durable. */
  async accept(input: AcceptInput): Promise<AcceptResult> {
    let auth: MessageAuth;
    try {
      auth = await authenticateMessage(
        { raw: input.raw, ip: input.remoteIp, helo: input.helo, mailFrom: input.mailFrom },
        { hostname: this.#o.hostname, resolver: this.#o.resolver },
      );
    } catch (err) {
      this.#o.log.warn({ err }, 'authentication checks failed');
      return {
        accepted: false,
        code: 451,
        message: '4.7.0 Temporary failure checking the message, try again later',
      };
    }
    auth.action = dmarcAction(auth.action, input.recipients);
    if (auth.action === 'reject') {
      return {
        accepted: false,
        code: 550,
        message: '5.7.1 Rejected: the sender domain’s DMARC policy says reject',
      };
    }
    return this.#store(input, auth);
  }

  /** Stamps the trace headers and commits the message for processing, one record per organisation. */
  async #store(input: AcceptInput, auth: MessageAuth): Promise<AcceptResult> {
    const queueId = newId();
    const stamped = Buffer.concat([
      traceHeaders(input, auth, this.#o.hostname, queueId),
      withoutForgedResults(input.raw, this.#o.hostname),
    ]);
    const byOrganization = new Map<string, AcceptInput['recipients']>();
    for (const r of input.recipients) {
      const list = byOrganization.get(r.entry.organizationId) ?? [];
      list.push(r);
      byOrganization.set(r.entry.organizationId, list);
    }
    // Each organisation gets its own record and copy: nothing is shared across tenants.
    const rows: Accepted['rows'] = [...byOrganization].map(([organizationId, recipients]) => ({
      id: byOrganization.size === 1 ? queueId : newId(),
      organizationId,
      domainId: recipients[0].entry.domainId,
      blobId: newId(),
      size: stamped.length,
      mailFrom: input.mailFrom,
      rcptTo: recipients.map((r) => r.recipient.address),
      remoteIp: input.remoteIp,
      helo: input.helo,
      tls: input.tls,
      auth,
    }));
    try {
      await this.#commits.commit({ rows, raw: stamped });
    } catch (err) {
      this.#o.log.error({ err }, 'could not store an accepted message');
      return {
        accepted: false,
        code: 451,
        message: '4.3.0 Temporary failure storing the message, try again later',
      };
    }
    return { accepted: true, messageIds: rows.map((r) => r.id), queueId };
  }

  /**
   * Delivers an outbound message to recipients on domains hosted here, as the MX would accept it from
   * this server itself: each recipient is checked as at RCPT time, and the accepted ones are committed
   * for processing. The message comes from our own queue (signed by us or a DSN we wrote), so the
   * SPF/DKIM/DMARC checks that guard the MX against the outside world are not run.
   */
  async deliverLocally(envelope: OutboundEnvelope): Promise<AttemptResult> {
    const startedAt = new Date();
    const checks = await Promise.all(envelope.recipients.map((r) => this.checkRecipient(r)));
    const accepted = checks.flatMap((c) => (c.accepted ? [{ recipient: c.recipient, entry: c.entry }] : []));
    const stored = accepted.length
      ? await this.#store(
          {
            raw: envelope.raw,
            mailFrom: envelope.mailFrom,
            recipients: accepted,
            remoteIp: '127.0.0.1',
            helo: this.#o.hostname,
            tls: false,
            sessionId: newId(),
          },
          LOCAL_AUTH(this.#o.hostname),
        )
      : null;
    const reply = (address: string, code: number, text: string) => {
      const enhanced = /^\d\.\d{1,3}\.\d{1,3}/.exec(text)?.[0] ?? null;
      const outcome = code < 300 ? 'delivered' : code >= 500 ? 'bounced' : 'deferred';
      return { address, outcome: outcome as RecipientOutcome, code, enhanced, response: `${code} ${text}` };
    };
    return {
      recipients: envelope.recipients.map((address, i) => {
        const check = checks[i];
        if (!check.accepted) return reply(address, check.code, check.message);
        if (!stored?.accepted)
          return reply(address, stored?.code ?? 451, stored?.message ?? '4.3.0 not stored');
        return reply(address, 250, `2.0.0 delivered locally as ${stored.queueId}`);
      }),
      mx: this.#o.hostname,
      ip: null,
      port: 0,
      tls: null,
      mtaSts: 'none',
      startedAt,
      durationMs: Date.now() - startedAt.getTime(),
    };
  }
}

/** Mail from this server's own queue: nothing to check, and the header says so. */
const LOCAL_AUTH = (hostname: string): MessageAuth => ({
  spf: 'none',
  dkim: [],
  dmarc: { result: 'none', policy: null, domain: null },
  arc: 'none',
  authentication_results: `${hostname}; local delivery from this server`,
  action: 'accept',
});

/**
 * A DMARC reject applies when every recipient's domain chooses to reject such mail; when any chooses
 * quarantine, the message is kept (quarantined) for all, so nothing a recipient wants is refused.
 */
function dmarcAction(
  action: MessageAuth['action'],
  recipients: AcceptInput['recipients'],
): MessageAuth['action'] {
  if (action !== 'reject') return action;
  return recipients.every((r) => (r.entry.dmarcRejectAction ?? 'reject') === 'reject')
    ? 'reject'
    : 'quarantine';
}
