// Outbound mail: the rules between a sender (the send API, SMTP submission, inbound forwarding) and the
// delivery queue, and the queue API. What becomes of each attempt and bounce report is outcomes.ts.
//
// Queueing a message, step by step (as Postal's outgoing processor reads):
//   check sender      the envelope sender and From are on a proven, active domain the identity may use
//   recipients        plain addresses only, each once
//   headers           Message-ID and Date when missing, Feedback-ID (feedback-id.ts); the envelope
//                     sender becomes a VERP address
//   sign              DKIM-Signature per active key of the sender's domain (RSA and Ed25519)
//   suppression       recipients on the suppression list are held, with the reason
//   send limits       per sending address per day and per organisation per hour: over a limit, held
//   commit            blob, message, one delivery per recipient, events: one transaction
// The dispatcher (dispatcher.ts) then delivers due recipients and hands each result to `record`
// (outcomes.ts: the recipient's next state, events, suppression, DSNs).
import { createHash, createPrivateKey } from 'node:crypto';
import type { Logger } from 'pino';
import type { BlobStore } from '../../core/blobs.ts';
import type { Secrets } from '../../core/crypto.ts';
import type { Db } from '../../core/db.ts';
import { TtlCache } from '../../core/cache.ts';
import { AppError, notFound, validationFailed } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import type { EventsService } from '../events/service.ts';
import type { AuditService } from '../audit/service.ts';
import type { MessageRow } from '../messages/tables.ts';
import type { SuppressionsService } from '../suppressions/service.ts';
import { type ParsedBounce, parseBounce } from './bounce-parse.ts';
import type { ThreadPool } from '../../core/threads.ts';
import {
  type ComposeInput,
  completeHeaders,
  fromAddresses,
  type OutboundAddress,
  parseAddress,
  readHeaders,
} from './compose.ts';
import type { SigningKey } from './dkim.ts';
import type { signingTasks } from './signing.ts';
import { messageCancelled, messageHeld } from './events.ts';
import { listHeadersOf } from './list-headers.ts';
import type { SenderPolicy } from '../mailboxes/service.ts';
import type { SendRefusal, SenderIdentity } from './identity.ts';
import { type AttemptReport, DeliveryOutcomes } from './outcomes.ts';
import { QueueWriter, type SendResult, type SenderPauses, type SignedMessage } from './queueing.ts';
import { campaignOf, feedbackId, hasFeedbackId } from './feedback-id.ts';
import * as store from './store.ts';
import type { DeliveryRow } from './tables.ts';
import { Verp } from './verp.ts';

export interface OutboundServiceOptions {
  db: Db;
  blobs: BlobStore;
  events: EventsService;
  audit: AuditService;
  suppressions: SuppressionsService;
  secrets: Secrets;
  verp: Verp;
  /** Composing and signing, in worker threads. */
  signer: ThreadPool<typeof signingTasks>;
  hostname: string;
  /** MAILROOM_FEEDBACK_SENDER_ID: the last field of every Feedback-ID header (feedback-id.ts). */
  feedbackSenderId: string;
  limits: { mailboxPerDay: number; organizationPerHour: number };
  /** The status and send limit of the organisation's mailbox at an address (null: no mailbox there). */
  senderPolicy: (organizationId: string, address: string) => Promise<SenderPolicy | null>;
  /** The largest message accepted for sending (the MX's limit: what remote servers commonly take). */
  maxMessageSize: number;
  retryScheduleMs: number[];
  maxAgeMs: number;
  log: Logger;
}

export interface SendInput {
  from: string | { address: string; name?: string | null };
  to?: string[] | null;
  cc?: string[] | null;
  bcc?: string[] | null;
  reply_to?: string[] | null;
  subject: string;
  text?: string | null;
  html?: string | null;
  attachments?:
    | { filename: string; content: string; content_type?: string | null; content_id?: string | null }[]
    | null;
  headers?: Record<string, string> | null;
  tags?: string[] | null;
  send_at?: string | null;
}

export type { SendResult } from './queueing.ts';

/** What the submission server hands over after DATA. */
export interface SubmitInput {
  identity: SenderIdentity;
  mailFrom: string;
  rcptTo: string[];
  raw: Buffer;
  remoteIp: string;
  helo: string;
  tls: boolean;
}

/** Headers the send API sets itself; `headers` may not override them. */
const RESERVED_HEADERS = new Set([
  'from',
  'to',
  'cc',
  'bcc',
  'reply-to',
  'subject',
  'date',
  'message-id',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
  'dkim-signature',
  'return-path',
  'received',
  'sender',
]);
const HEADER_NAME = /^[\x21-\x39\x3b-\x7e]{1,76}$/;
const MAX_RECIPIENTS = 1_000;
const SIGNING_KEY_CACHE_MS = 60_000;
const DOMAIN_CACHE_MS = 30_000;
/** Paused senders are read again this often at most (pausing clears it here; the claim holds the rest). */
const PAUSE_CACHE_MS = 5_000;

export class OutboundService {
  readonly #o: OutboundServiceOptions;
  readonly #keys = new TtlCache<SigningKey[]>(SIGNING_KEY_CACHE_MS);
  readonly #hosted = new TtlCache<boolean>(DOMAIN_CACHE_MS);
  readonly #domains = new TtlCache<SendingDomain | null>(DOMAIN_CACHE_MS);
  readonly #senders = new TtlCache<SenderPolicy | null>(DOMAIN_CACHE_MS);
  readonly #pauses = new TtlCache<SenderPauses>(PAUSE_CACHE_MS);
  #onQueued: () => void = () => {};
  readonly #outcomes: DeliveryOutcomes;
  readonly #writer: QueueWriter;

  constructor(options: OutboundServiceOptions) {
    this.#o = options;
    this.#outcomes = new DeliveryOutcomes(options);
    this.#writer = new QueueWriter({
      ...options,
      pauses: (organizationId) => this.#senderPauses(organizationId),
      queued: () => this.#onQueued(),
    });
  }

  /** Called after every commit that queued mail (the local dispatcher wakes up). */
  onQueued(listener: () => void): void {
    this.#onQueued = listener;
  }

  // ---- check sender --------------------------------------------------------------------------------

  /** May `identity` send as `address`? The envelope sender and every From address must pass. */
  async checkSender(
    identity: SenderIdentity,
    address: string,
  ): Promise<{ ok: true; domain: SendingDomain } | SendRefusal> {
    const refused = (why: string): SendRefusal => ({
      ok: false,
      code: 553,
      message: `5.7.1 <${address}>: ${why}`,
    });
    const parsed = parseAddress(address);
    if (!parsed) return refused('not a valid sender address');
    const domain = await this.#sendingDomain(identity.organizationId, parsed.domain);
    if (!domain) return refused('sender domain is not a verified domain of this organisation');
    const normalized = parsed.address.toLowerCase();
    // A suspended mailbox sends nothing: not as itself, not through its aliases, not through the API.
    const mailboxes =
      identity.kind === 'mailbox' ? [normalized, identity.address.toLowerCase()] : [normalized];
    for (const mailbox of mailboxes) {
      if ((await this.#senderPolicy(identity.organizationId, mailbox))?.status === 'suspended')
        return refused('the mailbox is suspended');
    }
    if (identity.kind === 'mailbox') {
      if (normalized === identity.address.toLowerCase()) return { ok: true, domain };
      if (
        await store.aliasTargets(
          this.#o.db,
          identity.organizationId,
          normalized,
          identity.address.toLowerCase(),
        )
      )
        return { ok: true, domain };
      return refused('this mailbox may send only as itself or an alias that delivers to it');
    }
    if (identity.kind === 'credential' && identity.domainId && identity.domainId !== domain.id)
      return refused('this credential may not send for that domain');
    return { ok: true, domain };
  }

  /** The mailbox policy for a sender address (cached briefly; mailbox events clear it). */
  #senderPolicy(organizationId: string, address: string): Promise<SenderPolicy | null> {
    return this.#senders.get(`${organizationId}:${address}`, () =>
      this.#o.senderPolicy(organizationId, address),
    );
  }

  /** The Feedback-ID value for mail from `senderAddress` (its mailbox's id, when it is a mailbox). */
  async #feedbackId(
    organizationId: string,
    campaign: string | null,
    mailboxId: string | null,
    senderAddress: string,
  ): Promise<string> {
    return feedbackId({
      campaign,
      mailboxId:
        mailboxId ?? (await this.#senderPolicy(organizationId, senderAddress.toLowerCase()))?.id ?? null,
      organizationId,
      senderId: this.#o.feedbackSenderId,
    });
  }

  /** The daily limit of the mailbox a message counts against, when it has one of its own. */
  async #dailyLimitOf(organizationId: string, senderAddress: string): Promise<number | null> {
    return (await this.#senderPolicy(organizationId, senderAddress.toLowerCase()))?.dailySendLimit ?? null;
  }

  /** The organisation's sending domain of this name (cached briefly; domain events clear it). */
  #sendingDomain(organizationId: string, name: string): Promise<SendingDomain | null> {
    return this.#domains.get(`${organizationId}:${name}`, () =>
      store.sendingDomain(this.#o.db, organizationId, name),
    );
  }

  // ---- SMTP submission -------------------------------------------------------------------------------

  async submit(input: SubmitInput): Promise<{ ok: true; messageId: string } | SendRefusal> {
    const headers = readHeaders(input.raw);
    const authors = fromAddresses(headers);
    if (!authors.length)
      return { ok: false, code: 550, message: '5.6.0 The message needs exactly one From header' };
    const checks = [];
    for (const author of authors) {
      const check = await this.checkSender(input.identity, author);
      if (!check.ok) return check;
      checks.push(check);
    }
    // The first author's domain signs (RFC 5322 allows several authors; DMARC aligns with the first).
    const { domain } = checks[0];
    const envelope = await this.checkSender(input.identity, input.mailFrom);
    if (!envelope.ok) return envelope;
    const recipients = uniqueRecipients(input.rcptTo);
    if ('error' in recipients) return { ok: false, code: 550, message: `5.1.3 ${recipients.error}` };
    const sender = parseAddress(authors[0])!;
    const id = newId();
    const completed = completeHeaders(input.raw, headers, () => `<${id}@${domain.name}>`, new Date());
    const senderAddress = input.identity.kind === 'mailbox' ? input.identity.address : sender.address;
    // Gmail's Feedback-ID, inside what DKIM signs; an author's own is kept as written.
    const raw = hasFeedbackId(headers.map((h) => h.name))
      ? completed.raw
      : Buffer.concat([
          Buffer.from(
            `Feedback-ID: ${await this.#feedbackId(
              input.identity.organizationId,
              campaignOf(headers.map((h) => [h.name, h.value])),
              input.identity.kind === 'mailbox' ? input.identity.mailboxId : null,
              senderAddress,
            )}\r\n`,
          ),
          completed.raw,
        ]);
    const queued = await this.#queue({
      id,
      organizationId: input.identity.organizationId,
      domain,
      senderAddress,
      dailyLimit: await this.#dailyLimitOf(input.identity.organizationId, senderAddress),
      fromAddress: sender.address,
      fromName: null,
      recipients: recipients.list,
      content: { raw },
      messageIdHeader: completed.messageId,
      subject: headers.find((h) => h.name === 'subject')?.value ?? null,
      to: [],
      cc: [],
      tags: [],
      sendAt: null,
      client: { remoteIp: input.remoteIp, helo: input.helo, tls: input.tls },
      hasAttachments: false,
    });
    if (!queued.queued) throw new Error('a submitted message has no idempotency key to repeat');
    return { ok: true, messageId: queued.result.id };
  }

  // ---- the send API -------------------------------------------------------------------------------

  /**
   * Queues one message. `audit` is the request's audit entry, written in the queueing transaction (the
   * message is its target); a replayed request writes none here.
   */
  async send(
    organizationId: string,
    input: SendInput,
    idempotencyKey?: string,
    audit?: SignedMessage['audit'],
  ): Promise<{ result: SendResult; replayed: boolean }> {
    // Only a keyed request is compared with an earlier one.
    const requestHash = idempotencyKey
      ? createHash('sha256').update(JSON.stringify(input)).digest('hex')
      : '';
    if (idempotencyKey) {
      const earlier = await this.#replay(organizationId, idempotencyKey, requestHash);
      if (earlier) return { result: earlier, replayed: true };
    }
    const prepared = await this.#prepareApiMessage(organizationId, input);
    const outcome = await this.#queue({
      ...prepared,
      idempotency: idempotencyKey ? { key: idempotencyKey, requestHash } : undefined,
      audit,
    });
    if (outcome.queued) return { result: outcome.result, replayed: false };
    // A concurrent request with the same key was recorded first: its answer is this one's.
    const earlier = await this.#replay(organizationId, idempotencyKey!, requestHash);
    if (!earlier) throw new Error('an idempotency key was recorded but cannot be read back');
    return { result: earlier, replayed: true };
  }

  /**
   * Queues many messages, each checked and answered on its own: its result (202, or 200 when its
   * idempotency key repeats an earlier request), or the problem that refused it. The accepted ones are
   * queued together (the queue writer commits them in as few transactions as it can).
   */
  async sendBatch(
    organizationId: string,
    items: { input: SendInput; idempotencyKey?: string }[],
    audit?: SignedMessage['audit'],
  ): Promise<({ result: SendResult; replayed: boolean } | { error: unknown })[]> {
    // A key repeated within the batch: the first message with it is sent, the later ones answer as
    // repetitions of it once it is queued (in index order, whatever order the signing threads finish in).
    const firsts = new Map<string, Promise<unknown>>();
    return Promise.all(
      items.map(async (item) => {
        const key = item.idempotencyKey;
        const first = key ? firsts.get(key) : undefined;
        if (first) await first.catch(() => {});
        const sent = this.send(organizationId, item.input, key, audit);
        if (key && !first) firsts.set(key, sent);
        return sent.catch((error: unknown) => ({ error }));
      }),
    );
  }

  async #replay(organizationId: string, key: string, requestHash: string): Promise<SendResult | null> {
    const earlier = await store.sendRequest(this.#o.db, organizationId, key);
    if (!earlier) return null;
    if (earlier.requestHash !== requestHash) {
      throw new AppError(
        422,
        'idempotency_key_reused',
        'This Idempotency-Key was used with a different request',
      );
    }
    return earlier.response as SendResult;
  }

  async #prepareApiMessage(organizationId: string, input: SendInput): Promise<QueueInput> {
    const fromField = typeof input.from === 'string' ? { address: input.from, name: null } : input.from;
    const from = parseAddress(fromField.address);
    if (!from) throw validationFailed('from', 'must be a plain address such as news@example.com');
    const check = await this.checkSender({ kind: 'api', organizationId }, from.address);
    if (!check.ok) throw validationFailed('from', check.message.replace(/^5\.7\.1 /, ''));
    const { domain } = check;
    const to = addressList('to', input.to);
    const cc = addressList('cc', input.cc);
    const bcc = addressList('bcc', input.bcc);
    const replyTo = addressList('reply_to', input.reply_to);
    const recipients = uniqueRecipients([...to, ...cc, ...bcc].map((a) => a.address));
    if ('error' in recipients) throw validationFailed('to', recipients.error);
    if (!input.text && !input.html) throw validationFailed('text', 'give text, html or both');
    const headers = customHeaders(input.headers ?? {});
    if (!hasFeedbackId(Object.keys(headers)))
      headers['Feedback-ID'] = await this.#feedbackId(
        organizationId,
        campaignOf(Object.entries(headers)),
        null,
        from.address,
      );
    const sendAt = input.send_at ? new Date(input.send_at) : null;
    if (sendAt && sendAt.getTime() > Date.now() + 30 * 86_400_000)
      throw validationFailed('send_at', 'may be at most 30 days ahead');
    const id = newId();
    const messageIdHeader = `<${id}@${domain.name}>`;
    const attachments = (input.attachments ?? []).map((a, i) => ({
      filename: a.filename,
      content: decodeBase64(a.content, `attachments.${i}.content`),
      contentType: a.content_type,
      contentId: a.content_id,
    }));
    const message: ComposeInput = {
      from: { address: from.address, name: fromField.name },
      to: to.map((a) => a.address),
      cc: cc.map((a) => a.address),
      replyTo: replyTo.map((a) => a.address),
      subject: input.subject,
      text: input.text,
      html: input.html,
      attachments,
      headers,
      messageId: messageIdHeader,
      date: sendAt && sendAt > new Date() ? sendAt : new Date(),
    };
    return {
      id,
      organizationId,
      domain,
      senderAddress: from.address,
      dailyLimit: await this.#dailyLimitOf(organizationId, from.address),
      fromAddress: from.address,
      fromName: fromField.name ?? null,
      recipients: recipients.list,
      content: { message },
      messageIdHeader,
      subject: input.subject,
      to: to.map((a) => a.address),
      cc: cc.map((a) => a.address),
      tags: [...new Set(input.tags ?? [])],
      sendAt: sendAt && sendAt > new Date() ? sendAt : null,
      client: null,
      hasAttachments: attachments.length > 0,
      text: input.text ?? null,
    };
  }

  // ---- queueing ---------------------------------------------------------------------------------------

  /**
   * Composes (send API) and signs (DKIM, one signature per active key) the message in a signing thread,
   * then hands it to the queue writer.
   */
  async #queue(input: QueueInput) {
    const keys = await this.#signingKeys(input.domain.id);
    const sign = { domain: input.domain.name, keys };
    let raw: Buffer;
    if ('message' in input.content) {
      const composed = await this.#o.signer.run('compose', { ...sign, message: input.content.message });
      if (composed.size > this.#o.maxMessageSize) {
        throw new AppError(
          413,
          'message_too_large',
          `The message is ${composed.size} bytes; at most ${this.#o.maxMessageSize} can be sent`,
        );
      }
      raw = asBuffer(composed.raw);
    } else {
      // A thread gets a copy of just these bytes (a view would carry its whole underlying buffer).
      const bytes = this.#o.signer.size > 0 ? new Uint8Array(input.content.raw) : input.content.raw;
      raw = asBuffer(await this.#o.signer.run('sign', { ...sign, raw: bytes }));
    }
    const list = listHeadersOf(readHeaders(raw));
    return this.#writer.queue({
      ...input,
      raw,
      mailFrom: this.#o.verp.address(input.id, input.domain.name),
      bulk: list.bulk,
      oneClickUnsubscribe: list.oneClickUnsubscribe,
    });
  }

  /** The domain's active keys, decrypted and parsed into key objects once (cached briefly). */
  #signingKeys(domainId: string): Promise<SigningKey[]> {
    return this.#keys.get(domainId, async () =>
      (await store.signingKeysOf(this.#o.db, domainId)).map((k) => ({
        selector: k.selector,
        algorithm: k.algorithm as SigningKey['algorithm'],
        key: createPrivateKey(this.#o.secrets.decrypt(k.privateKey)),
      })),
    );
  }

  /**
   * Whether mail for `domain` stays on this installation: a hosted domain, or the VERP return-path
   * host under one. Cached briefly; any domain event clears it (`forgetDomains`).
   */
  isHosted(domain: string): Promise<boolean> {
    const name = domain.startsWith(`${Verp.LABEL}.`) ? domain.slice(Verp.LABEL.length + 1) : domain;
    return this.#hosted.get(name, () => store.isHostedDomain(this.#o.db, name));
  }

  /** Forgets cached hosted domains and signing keys (a domain or its DKIM keys changed). */
  forgetDomains(): void {
    this.#senders.clear();
    this.#keys.clear();
    this.#hosted.clear();
    this.#domains.clear();
  }

  /** Queues inbound forwarding's copies (already stored as outbound messages) inside its transaction. */
  async queueForwardsIn(
    tx: Db,
    copies: Pick<MessageRow, 'id' | 'organizationId' | 'rcptTo'>[],
  ): Promise<void> {
    const rows: store.NewDelivery[] = [];
    for (const copy of copies) {
      for (const rcpt of copy.rcptTo) {
        const address = parseAddress(rcpt);
        rows.push({
          id: newId(),
          organizationId: copy.organizationId,
          messageId: copy.id,
          recipient: address?.address ?? rcpt,
          domain: address?.domain ?? rcpt.slice(rcpt.lastIndexOf('@') + 1).toLowerCase(),
          status: 'queued',
        });
      }
    }
    await store.insertDeliveries(tx, rows);
  }

  /** Wakes this process's dispatcher after a commit that queued forwards. */
  notifyQueued(): void {
    this.#onQueued();
  }

  // ---- paused senders -------------------------------------------------------------------------------

  /**
   * Pauses a sender inside the caller's transaction: its queued recipients are held now, later mail is
   * held when it is queued, and whatever reaches the queue anyway is held when it falls due (the claim).
   * Returns whether it was not paused already, and how many recipients were held.
   */
  async pauseSenderIn(
    tx: Db,
    organizationId: string,
    sender: store.PausedSender,
    reason: string,
  ): Promise<{ paused: boolean; held: number }> {
    const normalized = normalizedSender(sender);
    const paused = await store.insertPause(tx, { id: newId(), organizationId, sender: normalized, reason });
    const held = await store.holdQueuedOf(tx, organizationId, normalized, reason);
    await this.#o.events.emitMany(
      tx,
      held.map((d) => ({
        definition: messageHeld,
        organizationId,
        data: {
          message_id: d.messageId,
          delivery_id: d.id,
          recipient: d.recipient,
          reason: 'sender_paused' as const,
          detail: reason,
        },
      })),
    );
    this.#pauses.clear();
    return { paused, held: held.length };
  }

  /**
   * Resumes a sender inside the caller's transaction: its recipients held for the pause are queued
   * again (unless another pause still covers them; with `release: false`, they stay held for a person to
   * release or cancel through the queue API). Call `notifyQueued` after the commit.
   */
  async resumeSenderIn(
    tx: Db,
    organizationId: string,
    sender: store.PausedSender,
    options: { release?: boolean } = {},
  ): Promise<{ resumed: boolean; released: number }> {
    const normalized = normalizedSender(sender);
    const resumed = await store.deletePause(tx, organizationId, normalized);
    const released =
      options.release === false ? 0 : await store.releaseHeldOf(tx, organizationId, normalized);
    this.#pauses.clear();
    return { resumed, released };
  }

  /** The organisation's paused senders. */
  pausedSenders(organizationId: string) {
    return store.pausesOf(this.#o.db, organizationId);
  }

  /** Whether mail from this address (of this domain) is paused, read in `tx`. */
  async senderPausedIn(tx: Db, organizationId: string, address: string, domainId: string): Promise<boolean> {
    const pauses = await store.pausesOf(tx, organizationId);
    const lower = address.toLowerCase();
    return pauses.some((p) => p.domainId === domainId || p.address?.toLowerCase() === lower);
  }

  /** Forgets the cached paused senders (a sender was paused or resumed, here or in another process). */
  forgetPauses(): void {
    this.#pauses.clear();
  }

  /** Announces recipients the dispatcher's claim held because their sender is paused. */
  async recordHeld(held: store.HeldAtClaim[]): Promise<void> {
    if (!held.length) return;
    await this.#o.db.transaction((tx) =>
      this.#o.events.emitMany(
        tx,
        held.map((d) => ({
          definition: messageHeld,
          organizationId: d.organizationId,
          data: {
            message_id: d.messageId,
            delivery_id: d.id,
            recipient: d.recipient,
            reason: 'sender_paused' as const,
            detail: d.detail,
          },
        })),
      ),
    );
  }

  #senderPauses(organizationId: string): Promise<SenderPauses> {
    return this.#pauses.get(organizationId, async () => {
      const pauses: SenderPauses = { domains: new Map(), addresses: new Map() };
      for (const p of await store.pausesOf(this.#o.db, organizationId)) {
        if (p.domainId) pauses.domains.set(p.domainId, p.reason);
        if (p.address) pauses.addresses.set(p.address, p.reason);
      }
      return pauses;
    });
  }

  // ---- outcomes (outcomes.ts) ---------------------------------------------------------------------------

  /** Writes a batch of attempt results (the dispatcher's). */
  record(reports: AttemptReport[]): Promise<void> {
    return this.#outcomes.record(reports);
  }

  /** Attaches a bounce report that reached a VERP address, inside inbound processing's transaction. */
  recordReportIn(
    tx: Db,
    organizationId: string,
    originalMessageId: string,
    reportMessageId: string,
    report: ParsedBounce,
  ): Promise<number> {
    return this.#outcomes.recordReportIn(tx, organizationId, originalMessageId, reportMessageId, report);
  }

  // ---- bounces arriving at a VERP address --------------------------------------------------------------

  /** Parses a message that reached a VERP return path; null when it is no bounce (an auto-reply, spam). */
  parseReport(raw: Buffer): Promise<ParsedBounce | null> {
    return parseBounce(raw).catch(() => null);
  }

  /** The organisation and message a VERP address names, when it is genuine. */
  verpTarget(address: string): { messageId: string; domain: string } | null {
    const parsed = this.#o.verp.parse(address);
    return parsed ? { messageId: parsed.deliveryId, domain: parsed.domain } : null;
  }

  // ---- the queue API -----------------------------------------------------------------------------------

  async listQueue(organizationId: string, filter: store.QueueFilter, page: PageRequest) {
    const { rows, total } = await store.listQueue(this.#o.db, organizationId, filter, page);
    return toPage(rows, total, page);
  }

  /** How many queued recipients are due, and since when the oldest has been (back-pressure). */
  dueDepth() {
    return store.dueDepth(this.#o.db);
  }

  /** A message's recipients, each with its attempts and bounce reports, for GET /v1/messages/:id. */
  async recipientsOf(organizationId: string, messageId: string) {
    const [deliveries, attempts, reports] = await Promise.all([
      store.deliveriesOfMessage(this.#o.db, organizationId, messageId),
      store.attemptsOf(this.#o.db, organizationId, messageId),
      store.bouncesOf(this.#o.db, organizationId, messageId),
    ]);
    return deliveries.map((delivery) => ({
      delivery,
      attempts: attempts.filter((a) => a.deliveryId === delivery.id),
      bounces: reports.filter((b) => b.deliveryId === delivery.id),
    }));
  }

  /** Tries queued (deferred or scheduled) recipients now. */
  retry(organizationId: string, ids: QueueSelection) {
    return this.#change(organizationId, ids, ['queued'], { nextAttemptAt: new Date() }, null);
  }

  /** Sends held recipients now, past suppression and send limits: the operator decided. */
  release(organizationId: string, ids: QueueSelection) {
    return this.#change(
      organizationId,
      ids,
      ['held'],
      { status: 'queued', holdReason: null, holdDetail: null, nextAttemptAt: new Date() },
      null,
    );
  }

  /** Gives up on queued or held recipients; what they counted against the send limits is given back. */
  cancel(organizationId: string, ids: QueueSelection) {
    return this.#change(
      organizationId,
      ids,
      ['queued', 'held'],
      {
        status: 'cancelled',
        finishedAt: new Date(),
        lastResponse: 'cancelled through the queue API',
        countedSubject: null,
        countedAt: null,
      },
      messageCancelled,
    );
  }

  async #change(
    organizationId: string,
    selection: QueueSelection,
    from: DeliveryRow['status'][],
    changes: Partial<store.NewDelivery>,
    event: typeof messageCancelled | null,
  ): Promise<DeliveryRow[]> {
    const changed = await this.#o.db.transaction(async (tx) => {
      const ids =
        'messageId' in selection
          ? (await store.deliveriesOfMessage(tx, organizationId, selection.messageId)).map((d) => d.id)
          : selection.deliveryIds;
      const rows = await store.lockDeliveries(tx, organizationId, ids);
      if (!rows.length) throw notFound('Queued message');
      const eligible = rows.filter((r) => from.includes(r.status));
      if (!eligible.length) {
        throw new AppError(409, 'conflict', `Nothing to do: the recipients are not ${from.join(' or ')}`);
      }
      await store.updateDeliveries(
        tx,
        eligible.map((r) => r.id),
        changes,
      );
      if (event === messageCancelled) await store.giveBackSendCounts(tx, countsOf(organizationId, eligible));
      await store.refreshMessageStatus(tx, [...new Set(eligible.map((r) => r.messageId))]);
      if (event) {
        await this.#o.events.emitMany(
          tx,
          eligible.map((r) => ({
            definition: event,
            organizationId,
            data: { message_id: r.messageId, delivery_id: r.id, recipient: r.recipient },
          })),
        );
      }
      return eligible.map((r) => ({ ...r, ...changes }) as DeliveryRow);
    });
    this.#onQueued();
    return changed;
  }

  /** Idempotency keys are kept a day, as Stripe does. */
  forgetOldSendRequests(): Promise<number> {
    return store.forgetSendRequests(this.#o.db, new Date(Date.now() - 86_400_000));
  }
}

export type QueueSelection = { messageId: string } | { deliveryIds: string[] };
export type { PausedSender } from './store.ts';

/** Addresses are kept in lower case, as outbound messages keep their From address. */
const normalizedSender = (sender: store.PausedSender): store.PausedSender =>
  'address' in sender ? { address: sender.address.trim().toLowerCase() } : sender;

/** What counted recipients took from the send limits' windows (daily per address, hourly per organisation). */
function countsOf(organizationId: string, rows: DeliveryRow[]): store.CounterHit[] {
  return rows.flatMap((r) => {
    if (!r.countedSubject || !r.countedAt) return [];
    const at = r.countedAt.getTime();
    const base = { organizationId, limit: 0, n: 1 };
    return [
      {
        ...base,
        scope: 'mailbox_day',
        subject: r.countedSubject,
        windowStart: new Date(at - (at % 86_400_000)),
      },
      { ...base, scope: 'organization_hour', subject: '', windowStart: new Date(at - (at % 3_600_000)) },
    ];
  });
}

/** A message to sign and queue: what the queue takes, with what to sign instead of the signed bytes. */
type QueueInput = Omit<SignedMessage, 'raw' | 'mailFrom'> & {
  /** What to sign: a send request's fields to compose, or a submitted message as it is. */
  content: { message: ComposeInput } | { raw: Buffer };
};

type SendingDomain = { id: string; name: string };

const asBuffer = (data: Uint8Array) => Buffer.from(data.buffer, data.byteOffset, data.byteLength);

function uniqueRecipients(addresses: string[]): { list: OutboundAddress[] } | { error: string } {
  const seen = new Map<string, OutboundAddress>();
  for (const raw of addresses) {
    const parsed = parseAddress(raw);
    if (!parsed) return { error: `"${raw}" is not a plain email address` };
    if (!seen.has(parsed.address.toLowerCase())) seen.set(parsed.address.toLowerCase(), parsed);
  }
  if (!seen.size) return { error: 'give at least one recipient' };
  if (seen.size > MAX_RECIPIENTS) return { error: `at most ${MAX_RECIPIENTS} recipients per message` };
  return { list: [...seen.values()] };
}

function addressList(field: string, list: string[] | null | undefined): OutboundAddress[] {
  return (list ?? []).map((raw, i) => {
    const parsed = parseAddress(raw);
    if (!parsed) throw validationFailed(`${field}.${i}`, `"${raw}" is not a plain email address`);
    return parsed;
  });
}

function customHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!HEADER_NAME.test(name)) throw validationFailed(`headers.${name}`, 'is not a valid header name');
    if (RESERVED_HEADERS.has(name.toLowerCase()))
      throw validationFailed(`headers.${name}`, 'is set from the request fields and may not be given here');
    if (/[\r\n]/.test(value)) throw validationFailed(`headers.${name}`, 'may not contain line breaks');
    out[name] = value;
  }
  return out;
}

function decodeBase64(value: string, field: string): Buffer {
  const compact = value.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1)
    throw validationFailed(field, 'must be base64');
  return Buffer.from(compact, 'base64');
}
