// Inbound mail: the rules behind the MX. Recipients are checked at RCPT time; an accepted message is
// authenticated, committed with its envelope and its processing job in one transaction (only then does
// the MX answer 250), and processed afterwards. Processing is idempotent: its effects commit together
// with the mark that it ran, so a crash at any point repeats the work at most, never its effects.
//
// Processing, step by step:
//   claim     mark the message processing (skipped when another run already finished it)
//   read      fetch the raw bytes and parse the MIME structure
//   thread    join the thread its In-Reply-To/References name
//   route     decide per recipient (see routing.ts)
//   forward   prepare each external copy: SRS envelope sender, Delivered-To, ARC seal
//   commit    status, routes, mailbox copies, queued forwards, rule counters, event: one transaction
import type { Logger } from 'pino';
import { sealMessage } from 'mailauth';
import type { BlobStore } from '../../core/blobs.ts';
import { TtlCache } from '../../core/cache.ts';
import type { Secrets } from '../../core/crypto.ts';
import type { Db } from '../../core/db.ts';
import { newId } from '../../core/ids.ts';
import type { Jobs } from '../../core/jobs.ts';
import type { EventsService } from '../events/service.ts';
import type { MessageAuth, MessageRow, MessageStatus } from '../messages/tables.ts';
import { isSrsLocalPart, parseRecipient, type Recipient } from './address.ts';
import { authenticateMessage } from './authenticate.ts';
import { type Accepted, CommitQueue, PROCESS_QUEUE } from './commit-queue.ts';
import { messageReceived } from './events.ts';
import type { ParsedBounce } from '../delivery/bounce-parse.ts';
import type { AttemptResult, OutboundEnvelope, RecipientOutcome } from '../delivery/transport/transport.ts';
import { parseMessage, type ParsedMessage } from './parse.ts';
import type { MailauthResolver } from './resolver.ts';
import { type Delivery, type RouteDecision, Router, type RoutingLookups } from './routing.ts';
import type { Srs } from './srs.ts';
import {
  activeKeyOf,
  claimForProcessing,
  countRuleMatches,
  type DirectoryEntry,
  directoryEntry,
  fileInMailbox,
  finishProcessing,
  insertMessages,
  insertRoutes,
  localTarget,
  rulesFor,
  type NewMessage,
  threadOf,
  unprocessedIds,
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

export interface InboundServiceOptions {
  db: Db;
  outbound: OutboundHooks;
  blobs: BlobStore;
  jobs: Jobs;
  events: EventsService;
  secrets: Secrets;
  srs: Srs;
  resolver: MailauthResolver;
  hostname: string;
  log: Logger;
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

class AlreadyProcessed extends Error {}

const DIRECTORY_CACHE_MS = 30_000;
const DIRECTORY_CACHE_SIZE = 100_000;
/** Events after which RCPT answers may differ. */
export const ROUTING_EVENT = /^(domain|mailbox|alias|rule)\./;

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
  readonly #lookups: RoutingLookups = {
    localTarget: (organizationId, domain, localPart) =>
      this.#lookupCache.get(`t:${organizationId}:${localPart}@${domain}`, () =>
        localTarget(this.#o.db, organizationId, domain, localPart),
      ),
    rules: (domainId) => this.#lookupCache.get(`r:${domainId}`, () => rulesFor(this.#o.db, [domainId])),
  };

  constructor(options: InboundServiceOptions) {
    this.#o = options;
    this.#commits = new CommitQueue(options.db, options.blobs, options.jobs);
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

  async process(messageId: string): Promise<void> {
    const message = await claimForProcessing(this.#o.db, messageId);
    if (!message) return;
    const raw = await this.#o.blobs.get(message.organizationId, message.blobId);
    if (!raw) throw new Error(`message ${messageId} has no stored body`);
    const parsed = await parseMessage(raw);
    const threadId = await this.#threadOf(message, parsed);
    const router = new Router(this.#lookups, message.organizationId, this.#o.srs, {
      sender: parsed.fromAddress ?? message.mailFrom,
      subject: parsed.subject ?? '',
      size: message.size,
      hasAttachments: parsed.hasAttachments,
      deliveredTo: parsed.deliveredTo,
      receivedHops: parsed.receivedHops,
    });
    const quarantine = message.auth?.action === 'quarantine';
    const decisions: RouteDecision[] = [];
    const reports: BounceReport[] = [];
    for (const rcpt of message.rcptTo) {
      const target = this.#o.outbound.verpTarget(rcpt);
      if (target) reports.push({ rcpt, ...target, parsed: await this.#o.outbound.parseReport(raw) });
      else decisions.push(...(await router.route(rcpt, quarantine)));
    }
    const forwards = await this.#prepareForwards(message, raw, parsed, decisions);
    const status = statusOf(decisions, quarantine);
    try {
      await this.#o.db.transaction(async (tx) => {
        const finished = await finishProcessing(tx, message.id, {
          status,
          error: failureOf(decisions),
          messageIdHeader: parsed.messageId,
          inReplyTo: parsed.inReplyTo,
          references: parsed.references,
          threadId,
          fromAddress: parsed.fromAddress,
          fromName: parsed.fromName,
          toAddresses: parsed.to,
          ccAddresses: parsed.cc,
          subject: parsed.subject,
          sentAt: parsed.date,
          hasAttachments: parsed.hasAttachments,
          bodyText: parsed.text,
          details: parsed.details,
          searchText: [
            parsed.subject,
            parsed.fromName,
            parsed.fromAddress,
            message.mailFrom,
            ...parsed.to,
            ...parsed.cc,
            ...message.rcptTo,
            parsed.text,
          ]
            .filter(Boolean)
            .join(' '),
        });
        if (!finished) throw new AlreadyProcessed();
        decisions.push(...(await this.#recordBounceReports(tx, message, reports)));
        await this.#commitDecisions(tx, message, decisions, forwards);
        await this.#o.events.emit(tx, messageReceived, message.organizationId, {
          message_id: message.id,
          domain_id: message.domainId,
          status,
          mail_from: message.mailFrom,
          rcpt_to: message.rcptTo,
          from: parsed.fromAddress,
          subject: parsed.subject,
          size: message.size,
          forwarded: forwards.length,
        });
        await countRuleMatches(tx, [...router.matchedRules].sort());
        await this.#fileInMailboxes(tx, message, decisions);
      });
    } catch (err) {
      if (err instanceof AlreadyProcessed) return;
      throw err;
    }
    if (forwards.length) this.#o.outbound.notifyQueued();
  }

  /** Attaches bounce reports that reached VERP addresses to the messages they name, as routes. */
  async #recordBounceReports(tx: Db, message: MessageRow, reports: BounceReport[]): Promise<RouteDecision[]> {
    const decisions: RouteDecision[] = [];
    for (const report of reports) {
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

  /** Gives up on a message whose processing failed every attempt, so it shows as failed, not stuck. */
  async markFailed(messageId: string, error: string): Promise<void> {
    await this.#o.db.transaction(async (tx) => {
      await finishProcessingFailed(tx, messageId, error);
    });
  }

  /** Queues processing again for accepted messages whose job was lost (a crash between steps). */
  async recover(olderThan: Date): Promise<number> {
    const ids = await unprocessedIds(this.#o.db, olderThan, 1_000);
    for (const id of ids) await this.#o.jobs.send(PROCESS_QUEUE, { message_id: id });
    return ids.length;
  }

  async #threadOf(message: MessageRow, parsed: ParsedMessage): Promise<string> {
    const parents = [...new Set([parsed.inReplyTo, ...parsed.references].filter((id): id is string => !!id))];
    return (await threadOf(this.#o.db, message.organizationId, parsed.messageId, parents)) ?? message.id;
  }

  /** One outbound copy per forward target, sealed for the hosted domain that forwards it. */
  async #prepareForwards(
    message: MessageRow,
    raw: Buffer,
    parsed: ParsedMessage,
    decisions: RouteDecision[],
  ): Promise<NewForward[]> {
    const forwards: NewForward[] = [];
    const seen = new Set<string>();
    for (const d of decisions) {
      if (d.delivery?.kind !== 'forward') continue;
      const key = `${d.delivery.address}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const deliveredTo = Buffer.from(`Delivered-To: ${d.recipient}\r\n`);
      const body = Buffer.concat([deliveredTo, raw]);
      const seal = await this.#seal(d.domainId, d.domain, body, message.auth);
      const copy = Buffer.concat([seal, body]);
      forwards.push({
        decision: d,
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
    return forwards;
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

  /**
   * Routes, queued forwards, the event and rule counters first; mailbox filing last. Filing takes the
   * folder's and the mailbox's row locks (next UID, used bytes), which every message to that mailbox
   * needs: taken last, they are held only until the commit right after. Mailboxes are filed in id order
   * so two messages to the same pair of mailboxes cannot deadlock.
   */
  async #commitDecisions(tx: Db, message: MessageRow, decisions: RouteDecision[], forwards: NewForward[]) {
    await insertRoutes(
      tx,
      decisions.map((d) => ({
        id: newId(),
        organizationId: message.organizationId,
        messageId: message.id,
        recipient: d.recipient,
        route: d.route,
        targetId: d.targetId,
        action: d.action,
        destination: d.destination,
        detail: d.detail,
      })),
    );
    await this.#o.blobs.put(
      tx,
      forwards.map((f) => ({ organizationId: message.organizationId, id: f.row.blobId, data: f.raw })),
    );
    await insertMessages(
      tx,
      forwards.map((f) => f.row),
    );
    await this.#o.outbound.queueForwardsIn(
      tx,
      forwards.map((f) => f.row),
    );
  }

  async #fileInMailboxes(tx: Db, message: MessageRow, decisions: RouteDecision[]) {
    const filings = decisions
      .map((d) => d.delivery)
      .filter((d): d is Extract<Delivery, { kind: 'mailbox' }> => d?.kind === 'mailbox')
      .sort((a, b) => a.mailboxId.localeCompare(b.mailboxId) || a.folder.localeCompare(b.folder));
    for (const d of filings) {
      await fileInMailbox(tx, {
        id: newId(),
        organizationId: message.organizationId,
        mailboxId: d.mailboxId,
        folder: d.folder,
        messageId: message.id,
        size: message.size,
      });
    }
  }
}

interface BounceReport {
  rcpt: string;
  messageId: string;
  domain: string;
  parsed: ParsedBounce | null;
}

interface NewForward {
  decision: RouteDecision;
  raw: Buffer;
  row: NewMessage & { blobId: string };
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

/** What processing can conclude; pending, processing and bounced belong to other stages. */
type ProcessedStatus = Extract<MessageStatus, 'delivered' | 'failed' | 'rejected' | 'quarantined'>;

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

async function finishProcessingFailed(tx: Db, id: string, error: string): Promise<void> {
  await finishProcessing(tx, id, {
    status: 'failed',
    error,
    messageIdHeader: null,
    inReplyTo: null,
    references: [],
    threadId: id,
    fromAddress: null,
    fromName: null,
    toAddresses: [],
    ccAddresses: [],
    subject: null,
    sentAt: null,
    hasAttachments: false,
    bodyText: '',
    details: { headers: [], parts: [], attachments: [] },
    searchText: '',
  });
}
