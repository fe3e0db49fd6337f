// Group commit for outbound mail. Every sender (the send API, its batch endpoint, SMTP submission)
// hands over a signed message and waits until it is queued; the messages that arrive while a batch is
// being written go together in the next one, as the MX does for inbound mail. A batch, step by step:
//   suppression   recipients on the suppression list are held, with the reason (one query)
//   paused        a paused sender's (domain or From address) recipients are held, 'sender_paused'
//   send limits   per sending address per day and per organisation per hour, counted for the whole
//                 batch in one statement when all of it fits (the common case), else message by message
//                 in one short transaction of its own: the counter rows are locked only for that, in key
//                 order, so no organisation's sends wait on one another's queueing
//   commit        idempotency keys first (a key already recorded takes its message out of the batch),
//                 then blobs, messages, one delivery per recipient, events and audit entries, and the
//                 events' NOTIFY: one statement, then the webhook fan-out, in one transaction
// A batch whose commit fails is committed again message by message, so one bad message cannot fail
// the others; counts taken for messages that were not queued are given back.
import type { BlobStore } from '../../core/blobs.ts';
import { executeTogether } from '../../core/bulk.ts';
import { batchTransaction, type Db } from '../../core/db.ts';
import { GroupCommit, type Pending } from '../../core/group-commit.ts';
import { newId } from '../../core/ids.ts';
import type { AuditInput, AuditService } from '../audit/service.ts';
import type { EventInput, EventsService } from '../events/service.ts';
import type { SuppressionsService } from '../suppressions/service.ts';
import type { OutboundAddress } from './compose.ts';
import { messageHeld, messageQueued } from './events.ts';
import * as store from './store.ts';
import type { HoldReason } from './tables.ts';

/** A signed message ready for the queue. */
export interface SignedMessage {
  id: string;
  organizationId: string;
  domain: { id: string; name: string };
  /** Whose daily limit the message counts against: the mailbox, or the From address. */
  senderAddress: string;
  /** That mailbox's own daily limit; null or absent: the installation's. */
  dailyLimit?: number | null;
  fromAddress: string;
  fromName: string | null;
  recipients: OutboundAddress[];
  /** The signed bytes. */
  raw: Buffer;
  /** The VERP envelope sender. */
  mailFrom: string;
  messageIdHeader: string;
  subject: string | null;
  to: string[];
  cc: string[];
  tags: string[];
  sendAt: Date | null;
  client: { remoteIp: string; helo: string; tls: boolean } | null;
  hasAttachments: boolean;
  text?: string | null;
  /** List mail by its headers, and whether it carries a one-click unsubscribe (list-headers.ts). */
  bulk?: boolean;
  oneClickUnsubscribe?: boolean;
  idempotency?: { key: string; requestHash: string };
  /** Written in the queueing transaction (the request's audit entry), with the message as its target. */
  audit?: Omit<AuditInput, 'targetId'>;
}

export interface SendResult {
  id: string;
  message_id: string;
  status: 'queued' | 'scheduled' | 'held';
  send_at: string | null;
  recipients: {
    delivery_id: string;
    address: string;
    status: 'queued' | 'held';
    hold_reason: HoldReason | null;
  }[];
}

/** Queued, or not queued because its idempotency key was recorded first by another request. */
export type QueueOutcome = { queued: true; result: SendResult } | { queued: false };

export interface QueueWriterOptions {
  db: Db;
  blobs: BlobStore;
  events: EventsService;
  audit: AuditService;
  suppressions: SuppressionsService;
  limits: { mailboxPerDay: number; organizationPerHour: number };
  /** The organisation's paused senders (cached briefly; the claim holds what a stale answer lets by). */
  pauses: (organizationId: string) => Promise<SenderPauses>;
  /** After every commit that queued mail (the local dispatcher wakes). */
  queued: () => void;
}

/** An organisation's paused senders, each with the pause's reason. */
export interface SenderPauses {
  domains: Map<string, string>;
  addresses: Map<string, string>;
}

interface Hold {
  reason: HoldReason;
  detail: string | null;
}

type Waiting = Pending<SignedMessage, QueueOutcome>;

/** A message of a batch with what the batch decided for it. */
interface Planned {
  waiting: Waiting;
  /** Why held recipients are held, by lower-case address. */
  holds: Map<string, Hold>;
  /** The counts taken for it (given back if it is not queued). */
  counted: store.CounterHit[];
  now: Date;
  blobId: string;
  /** One per recipient, in order. */
  deliveryIds: string[];
}

/** Most messages one transaction carries. */
const MAX_BATCH = 100;
/** Batches in flight at once: one counts its limits while another commits. */
const MAX_FLUSHES = 2;

export class QueueWriter {
  readonly #o: QueueWriterOptions;
  readonly #batches = new GroupCommit<SignedMessage, QueueOutcome>({
    maxBatch: MAX_BATCH,
    maxFlushes: MAX_FLUSHES,
    write: (batch) => this.#write(batch),
  });

  constructor(options: QueueWriterOptions) {
    this.#o = options;
  }

  /** Resolves once the message is committed to the queue (or found to be a repeated idempotent request). */
  queue(message: SignedMessage): Promise<QueueOutcome> {
    return this.#batches.add(message);
  }

  async #write(batch: Waiting[]): Promise<void> {
    let planned: Planned[];
    try {
      planned = await this.#plan(batch);
    } catch (err) {
      for (const w of batch) w.reject(err);
      return;
    }
    try {
      await this.#commit(planned);
      return;
    } catch (err) {
      if (planned.length === 1) {
        await this.#giveBack(planned);
        planned[0].waiting.reject(err);
        return;
      }
    }
    for (const p of planned) {
      await this.#commit([p]).catch(async (err) => {
        await this.#giveBack([p]);
        p.waiting.reject(err);
      });
    }
  }

  /** suppression, paused senders and send limits: why each held recipient is held, and the counts taken. */
  async #plan(batch: Waiting[]): Promise<Planned[]> {
    const planned: Planned[] = batch.map((waiting) => ({
      waiting,
      holds: new Map(),
      counted: [],
      now: new Date(),
      blobId: newId(),
      deliveryIds: waiting.item.recipients.map(() => newId()),
    }));
    const byOrganization = new Map<string, Planned[]>();
    for (const p of planned) {
      const list = byOrganization.get(p.waiting.item.organizationId) ?? [];
      list.push(p);
      byOrganization.set(p.waiting.item.organizationId, list);
    }
    for (const [organizationId, list] of byOrganization) {
      const suppressed = await this.#o.suppressions.suppressedAmong(
        this.#o.db,
        organizationId,
        list.flatMap((p) => p.waiting.item.recipients.map((r) => r.address)),
      );
      for (const p of list) {
        for (const r of p.waiting.item.recipients) {
          const row = suppressed.get(r.address.toLowerCase());
          if (row) p.holds.set(r.address.toLowerCase(), { reason: 'suppressed', detail: row.reason });
        }
      }
      // A paused sender's mail is held whole (recipients held already keep their own reason).
      const pauses = await this.#o.pauses(organizationId);
      if (!pauses.domains.size && !pauses.addresses.size) continue;
      for (const p of list) {
        const m = p.waiting.item;
        const why = pauses.domains.get(m.domain.id) ?? pauses.addresses.get(m.fromAddress.toLowerCase());
        if (why === undefined) continue;
        for (const r of m.recipients) {
          const key = r.address.toLowerCase();
          if (!p.holds.has(key)) p.holds.set(key, { reason: 'sender_paused', detail: why });
        }
      }
    }
    await this.#countAgainstLimits(planned);
    return planned;
  }

  /**
   * Counts each message's sending recipients against both limits, in batch order: a message that would
   * pass either limit is held whole and counts nothing.
   */
  async #countAgainstLimits(planned: Planned[]): Promise<void> {
    const { mailboxPerDay, organizationPerHour } = this.#o.limits;
    const ownLimits = planned.some((p) => p.waiting.item.dailyLimit != null);
    if (mailboxPerDay <= 0 && organizationPerHour <= 0 && !ownLimits) return;
    const wanted = planned.map((p) => {
      const m = p.waiting.item;
      const sending = m.recipients.filter((r) => !p.holds.has(r.address.toLowerCase())).length;
      return { p, sending, hits: sending ? limitHits(m, sending, p.now, this.#o.limits) : [] };
    });
    const keys = wanted.flatMap((w) => w.hits.map((h) => h.hit));
    if (!keys.length) return;
    if (await store.addIfAllFit(this.#o.db, sumsOf(wanted))) {
      for (const { p, hits } of wanted) p.counted.push(...hits.map(({ hit }) => hit));
      return;
    }
    await this.#o.db.transaction(async (tx) => {
      const counts = await store.lockSendCounters(tx, keys);
      const admitted: typeof wanted = [];
      for (const w of wanted) {
        const { p, sending, hits } = w;
        if (!hits.length) continue;
        const over = hits.find(({ hit }) => (counts.get(store.counterKey(hit)) ?? 0) + sending > hit.limit);
        if (over) {
          for (const r of p.waiting.item.recipients) {
            if (!p.holds.has(r.address.toLowerCase())) p.holds.set(r.address.toLowerCase(), over.over);
          }
          continue;
        }
        for (const { hit } of hits) {
          const key = store.counterKey(hit);
          counts.set(key, (counts.get(key) ?? 0) + sending);
          p.counted.push(hit);
        }
        admitted.push(w);
      }
      await store.addToSendCounters(tx, sumsOf(admitted));
    });
  }

  async #giveBack(planned: Planned[]): Promise<void> {
    const hits = planned.flatMap((p) => p.counted);
    if (!hits.length) return;
    await store.giveBackSendCounts(this.#o.db, hits).catch(() => {
      // Logged by the caller's error; a lost give-back only holds mail early, it never sends more.
    });
    for (const p of planned) p.counted = [];
  }

  /** commit: idempotency keys first, then every row of the batch's messages. */
  async #commit(planned: Planned[]): Promise<void> {
    const outcomes = await batchTransaction(this.#o.db, async (tx) => {
      const results = planned.map(resultOf);
      const duplicates = await this.#recordKeys(tx, planned, results);
      const queued = planned.flatMap((p, i) => (duplicates.has(i) ? [] : [{ p, result: results[i] }]));
      const events = this.#o.events.prepare(queued.flatMap(({ p, result }) => eventsOf(p, result)));
      const blobs = queued.map(({ p }) => ({
        organizationId: p.waiting.item.organizationId,
        id: p.blobId,
        data: p.waiting.item.raw,
      }));
      // Every row of the batch in one statement where the blob store is in the database (one round trip,
      // not one per kind of row); blobs kept elsewhere are stored first.
      const blobsInsert = this.#o.blobs.insertStatement?.(blobs);
      if (blobsInsert === undefined) await this.#o.blobs.put(tx, blobs);
      await executeTogether(
        tx,
        [
          blobsInsert ?? null,
          store.outboundMessagesInsert(queued.map(({ p }) => messageRow(p))),
          store.deliveriesInsert(queued.flatMap(({ p, result }) => deliveryRows(p, result))),
          events.insert,
          this.#o.audit.insertStatement(
            queued.flatMap(({ p }) => {
              const audit = p.waiting.item.audit;
              return audit ? [{ ...audit, targetId: p.waiting.item.id }] : [];
            }),
          ),
        ],
        events.notify,
      );
      await this.#o.events.fanOut(tx, events.records);
      return planned.map(
        (_, i): QueueOutcome =>
          duplicates.has(i) ? { queued: false } : { queued: true, result: results[i] },
      );
    });
    const repeated = planned.filter((_, i) => !outcomes[i].queued);
    await this.#giveBack(repeated);
    if (outcomes.some((o) => o.queued)) this.#o.queued();
    planned.forEach((p, i) => {
      p.waiting.resolve(outcomes[i]);
    });
  }

  /**
   * Records the batch's idempotency keys; returns the indexes of messages whose key was recorded before
   * (by an earlier or a concurrent request, or by an earlier message of this batch).
   */
  async #recordKeys(tx: Db, planned: Planned[], results: SendResult[]): Promise<Set<number>> {
    const duplicates = new Set<number>();
    const first = new Map<string, number>();
    const rows: { index: number; row: store.NewSendRequest }[] = [];
    planned.forEach((p, i) => {
      const m = p.waiting.item;
      if (!m.idempotency) return;
      const key = `${m.organizationId}\n${m.idempotency.key}`;
      if (first.has(key)) {
        duplicates.add(i);
        return;
      }
      first.set(key, i);
      rows.push({
        index: i,
        row: {
          organizationId: m.organizationId,
          idempotencyKey: m.idempotency.key,
          requestHash: m.idempotency.requestHash,
          messageId: m.id,
          response: results[i],
        },
      });
    });
    if (!rows.length) return duplicates;
    const recorded = await store.recordSendRequests(
      tx,
      rows.map((r) => r.row),
    );
    for (const { index, row } of rows) {
      if (!recorded.has(`${row.organizationId}\n${row.idempotencyKey}`)) duplicates.add(index);
    }
    return duplicates;
  }
}

/** The answer to the sender: each recipient's delivery and whether it is held. */
function resultOf(p: Planned): SendResult {
  const m = p.waiting.item;
  const recipients = m.recipients.map((r, i) => {
    const hold = p.holds.get(r.address.toLowerCase()) ?? null;
    return {
      delivery_id: p.deliveryIds[i],
      address: r.address,
      status: hold ? ('held' as const) : ('queued' as const),
      hold_reason: hold?.reason ?? null,
    };
  });
  const held = recipients.filter((r) => r.status === 'held').length;
  return {
    id: m.id,
    message_id: m.messageIdHeader,
    status: held === recipients.length ? 'held' : m.sendAt ? 'scheduled' : 'queued',
    send_at: m.sendAt?.toISOString() ?? null,
    recipients,
  };
}

function messageRow(p: Planned): store.NewOutboundMessage {
  const m = p.waiting.item;
  return {
    id: m.id,
    organizationId: m.organizationId,
    domainId: m.domain.id,
    blobId: p.blobId,
    size: m.raw.length,
    mailFrom: m.mailFrom,
    rcptTo: m.recipients.map((r) => r.address),
    remoteIp: m.client?.remoteIp ?? null,
    helo: m.client?.helo ?? null,
    tls: m.client?.tls ?? false,
    messageIdHeader: m.messageIdHeader,
    fromAddress: m.fromAddress.toLowerCase(),
    fromName: m.fromName,
    toAddresses: m.to,
    ccAddresses: m.cc,
    subject: m.subject,
    sentAt: m.sendAt ?? p.now,
    hasAttachments: m.hasAttachments,
    bodyText: m.text ? m.text.slice(0, 100_000) : null,
    tags: m.tags,
    bulk: m.bulk ?? false,
    oneClickUnsubscribe: m.oneClickUnsubscribe ?? false,
  };
}

function deliveryRows(p: Planned, result: SendResult): store.NewDelivery[] {
  const m = p.waiting.item;
  const counted = p.counted.length > 0;
  return result.recipients.map((r, i) => {
    const hold = p.holds.get(r.address.toLowerCase()) ?? null;
    return {
      id: r.delivery_id,
      organizationId: m.organizationId,
      messageId: m.id,
      recipient: r.address,
      domain: m.recipients[i].domain,
      status: r.status,
      holdReason: hold?.reason ?? null,
      holdDetail: hold?.detail ?? null,
      nextAttemptAt: m.sendAt ?? p.now,
      // A recipient sent for counts against the limits; cancelling it gives the count back.
      countedSubject: counted && !hold ? m.senderAddress.toLowerCase() : null,
      countedAt: counted && !hold ? p.now : null,
    };
  });
}

function eventsOf(p: Planned, result: SendResult): EventInput[] {
  const m = p.waiting.item;
  const held = result.recipients.filter((r) => r.status === 'held');
  return [
    {
      definition: messageQueued,
      organizationId: m.organizationId,
      data: {
        message_id: m.id,
        message_id_header: m.messageIdHeader,
        from: m.fromAddress,
        recipients: m.recipients.map((r) => r.address),
        held: held.length,
        send_at: m.sendAt?.toISOString() ?? null,
        tags: m.tags,
      },
    },
    ...held.map((r) => ({
      definition: messageHeld,
      organizationId: m.organizationId,
      data: {
        message_id: m.id,
        delivery_id: r.delivery_id,
        recipient: r.address,
        reason: r.hold_reason!,
        detail: p.holds.get(r.address.toLowerCase())?.detail ?? null,
      },
    })),
  ];
}

/** The batch's counts summed per counter: what the batch adds when every message fits. */
function sumsOf(wanted: { sending: number; hits: { hit: store.CounterHit }[] }[]): store.CounterHit[] {
  const sums = new Map<string, store.CounterHit>();
  for (const { sending, hits } of wanted) {
    for (const { hit } of hits) {
      const key = store.counterKey(hit);
      const sum = sums.get(key);
      sums.set(key, sum ? { ...sum, n: sum.n + sending } : { ...hit, n: sending });
    }
  }
  return [...sums.values()];
}

function limitHits(
  m: SignedMessage,
  n: number,
  now: Date,
  limits: QueueWriterOptions['limits'],
): { hit: store.CounterHit; over: Hold }[] {
  const at = now.getTime();
  const hits: { hit: store.CounterHit; over: Hold }[] = [];
  const perDay = m.dailyLimit ?? limits.mailboxPerDay;
  if (perDay > 0) {
    hits.push({
      hit: {
        organizationId: m.organizationId,
        scope: 'mailbox_day',
        subject: m.senderAddress.toLowerCase(),
        windowStart: new Date(at - (at % 86_400_000)),
        limit: perDay,
        n,
      },
      over: {
        reason: 'mailbox_daily_limit',
        detail: `${m.senderAddress} may send to ${perDay} recipients a day`,
      },
    });
  }
  if (limits.organizationPerHour > 0) {
    hits.push({
      hit: {
        organizationId: m.organizationId,
        scope: 'organization_hour',
        subject: '',
        windowStart: new Date(at - (at % 3_600_000)),
        limit: limits.organizationPerHour,
        n,
      },
      over: {
        reason: 'organization_hourly_limit',
        detail: `the organisation may send to ${limits.organizationPerHour} recipients an hour`,
      },
    });
  }
  return hits;
}
