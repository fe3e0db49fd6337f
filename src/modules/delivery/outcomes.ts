// What happens with each outcome of a delivery: the results of attempts (recorded in batches, with the
// recipient's next state, events, suppressions and DSNs) and bounce reports that arrive later at a
// VERP return path.
import type { BlobStore } from '../../core/blobs.ts';
import { batchTransaction, type Db } from '../../core/db.ts';
import { newId } from '../../core/ids.ts';
import type { EventsService } from '../events/service.ts';
import { messages as messagesTable } from '../messages/tables.ts';
import type { SuppressionsService } from '../suppressions/service.ts';
import type { ParsedBounce } from './bounce-parse.ts';
import { type OutboundAddress, parseAddress } from './compose.ts';
import { buildDsn } from './dsn.ts';
import { messageBounced, messageDeferred, messageDelivered } from './events.ts';
import * as store from './store.ts';
import type { DeliveryRow } from './tables.ts';
import type { AttemptResult, RecipientResult } from './transport/types.ts';

export interface DeliveryOutcomesOptions {
  db: Db;
  blobs: BlobStore;
  events: EventsService;
  suppressions: SuppressionsService;
  hostname: string;
  retryScheduleMs: number[];
  maxAgeMs: number;
}

/** One recipient's result of one attempt, as the dispatcher reports it. */
export interface AttemptReport {
  delivery: store.ClaimedDelivery;
  result: RecipientResult;
  attempt: AttemptResult;
  /** The message as sent, for the headers a DSN returns. */
  raw: Buffer;
}

/** A permanent failure whose enhanced code says the address itself is bad (not the message or policy). */
const HARD_BOUNCE = /^5\.1\.\d+$|^5\.2\.1$|^5\.0\.0$/;

export class DeliveryOutcomes {
  readonly #o: DeliveryOutcomesOptions;

  constructor(options: DeliveryOutcomesOptions) {
    this.#o = options;
  }

  // ---- recording attempts -------------------------------------------------------------------------

  /** Writes a batch of attempt results: attempts, recipient states, message states, events, DSNs. */
  async record(reports: AttemptReport[]): Promise<void> {
    if (!reports.length) return;
    const now = new Date();
    const decided = reports.map((r) => ({ report: r, ...this.#decide(r, now) }));
    await batchTransaction(this.#o.db, async (tx) => {
      await store.insertAttempts(
        tx,
        decided.map(({ report: { delivery, result, attempt } }) => ({
          id: newId(),
          organizationId: delivery.organizationId,
          deliveryId: delivery.id,
          messageId: delivery.messageId,
          attemptedAt: attempt.startedAt,
          durationMs: Math.round(attempt.durationMs),
          outcome: result.outcome,
          mxHost: attempt.mx,
          ip: attempt.ip,
          sourceIp: attempt.localAddress ?? null,
          port: attempt.mx ? attempt.port : null,
          tls: attempt.tls,
          mtaSts: attempt.mtaSts,
          code: result.code,
          enhancedCode: result.enhanced,
          response: result.response,
        })),
      );
      const applied = new Set(
        await store.applyResults(
          tx,
          decided.map((d) => d.update),
        ),
      );
      // A delivery cancelled while it was being sent keeps its cancellation.
      const changed = decided.filter((d) => applied.has(d.report.delivery.id));
      await store.refreshMessageStatus(tx, [...new Set(changed.map((d) => d.report.delivery.messageId))]);
      const suppressed = await this.#suppressHardBounces(tx, changed);
      await this.#unsuppressDelivered(tx, changed);
      await this.#emitResults(tx, changed, suppressed);
      await this.#queueDsns(
        tx,
        changed.filter((d) => d.final && d.update.status !== 'delivered'),
      );
    });
  }

  #decide(report: AttemptReport, now: Date): Omit<Decided, 'report'> {
    const { delivery, result } = report;
    const base = {
      id: delivery.id,
      attempts: delivery.attempts,
      lastCode: result.code,
      lastResponse: result.response,
      nextAttemptAt: null,
    };
    if (result.outcome === 'delivered')
      return {
        final: true,
        expired: false,
        update: { ...base, status: 'delivered' as const, finished: true },
      };
    if (result.outcome === 'bounced')
      return { final: true, expired: false, update: { ...base, status: 'bounced' as const, finished: true } };
    const schedule = this.#o.retryScheduleMs;
    const delay = schedule[Math.min(delivery.attempts - 1, schedule.length - 1)];
    const next = new Date(now.getTime() + delay);
    if (next.getTime() - delivery.createdAt.getTime() > this.#o.maxAgeMs)
      return { final: true, expired: true, update: { ...base, status: 'failed' as const, finished: true } };
    return {
      final: false,
      expired: false,
      update: { ...base, status: 'queued' as const, nextAttemptAt: next, finished: false },
    };
  }

  async #suppressHardBounces(tx: Db, decided: Decided[]): Promise<Set<string>> {
    const byOrganization = new Map<string, { address: string; detail: string | null; messageId: string }[]>();
    for (const d of decided) {
      const { delivery, result } = d.report;
      if (d.update.status !== 'bounced' || !isHardBounce(result.enhanced, result.code)) continue;
      const list = byOrganization.get(delivery.organizationId) ?? [];
      list.push({ address: delivery.recipient, detail: result.response, messageId: delivery.messageId });
      byOrganization.set(delivery.organizationId, list);
    }
    const suppressed = new Set<string>();
    for (const [organizationId, list] of byOrganization) {
      await this.#o.suppressions.addHardBouncesIn(tx, organizationId, list);
      for (const b of list) suppressed.add(`${organizationId}:${b.address.toLowerCase()}`);
    }
    return suppressed;
  }

  /** A delivered recipient is reachable: a suppression (released by hand) no longer applies. */
  async #unsuppressDelivered(tx: Db, decided: Decided[]): Promise<void> {
    const byOrganization = new Map<string, string[]>();
    for (const d of decided) {
      if (d.update.status !== 'delivered') continue;
      const list = byOrganization.get(d.report.delivery.organizationId) ?? [];
      list.push(d.report.delivery.recipient);
      byOrganization.set(d.report.delivery.organizationId, list);
    }
    for (const [organizationId, addresses] of byOrganization)
      await this.#o.suppressions.removeIn(tx, organizationId, addresses);
  }

  async #emitResults(tx: Db, decided: Decided[], suppressed: Set<string>): Promise<void> {
    await this.#o.events.emitMany(
      tx,
      decided.map(({ report: { delivery, result, attempt }, update, expired }) => {
        const common = {
          message_id: delivery.messageId,
          delivery_id: delivery.id,
          recipient: delivery.recipient,
          attempt: delivery.attempts,
          mx: attempt.mx,
          code: result.code,
          response: result.response,
        };
        const organizationId = delivery.organizationId;
        if (update.status === 'delivered')
          return {
            definition: messageDelivered,
            organizationId,
            data: { ...common, tls: Boolean(attempt.tls) },
          };
        if (update.status === 'queued')
          return {
            definition: messageDeferred,
            organizationId,
            data: { ...common, next_attempt_at: update.nextAttemptAt!.toISOString() },
          };
        return {
          definition: messageBounced,
          organizationId,
          data: {
            ...common,
            source: expired ? ('expired' as const) : ('smtp' as const),
            status: result.enhanced,
            suppressed: suppressed.has(`${organizationId}:${delivery.recipient.toLowerCase()}`),
          },
        };
      }),
    );
  }

  // ---- DSNs ------------------------------------------------------------------------------------------

  /** One DSN per message for its recipients that failed for good, to whoever should hear of it. */
  async #queueDsns(tx: Db, failed: Decided[]): Promise<void> {
    const byMessage = new Map<string, Decided[]>();
    for (const d of failed) {
      const list = byMessage.get(d.report.delivery.messageId) ?? [];
      list.push(d);
      byMessage.set(d.report.delivery.messageId, list);
    }
    for (const group of byMessage.values()) {
      const { delivery, raw } = group[0].report;
      const notify = dsnRecipient(delivery);
      if (!notify) continue;
      const dsnId = newId();
      const dsn = buildDsn({
        reportingMta: this.#o.hostname,
        from: `MAILER-DAEMON@${this.#o.hostname}`,
        to: notify.address,
        originalMessageId: delivery.messageIdHeader,
        arrivalDate: delivery.receivedAt,
        recipients: group.map(({ report: { result, attempt, delivery: d }, expired }) => ({
          address: d.recipient,
          action: 'failed' as const,
          status: result.enhanced ?? (expired ? '4.4.7' : '5.0.0'),
          remoteMta: attempt.mx,
          diagnostic: result.code ? `smtp; ${result.response}` : result.response,
          lastAttemptAt: attempt.startedAt,
        })),
        original: raw,
        messageId: `<${dsnId}@${this.#o.hostname}>`,
      });
      await this.#queueSystemMessage(tx, {
        id: dsnId,
        organizationId: delivery.organizationId,
        domainId: delivery.domainId,
        recipient: notify,
        raw: dsn,
        subject: 'Undelivered Mail Returned to Sender',
        messageIdHeader: `<${dsnId}@${this.#o.hostname}>`,
        parentId: delivery.messageId,
      });
      await store.updateDeliveries(
        tx,
        group.map((d) => d.report.delivery.id),
        { dsnMessageId: dsnId },
      );
    }
  }

  /** A message from this server itself (a DSN): null envelope sender, never signed, never bounced. */
  async #queueSystemMessage(
    tx: Db,
    m: {
      id: string;
      organizationId: string;
      domainId: string | null;
      recipient: OutboundAddress;
      raw: Buffer;
      subject: string;
      messageIdHeader: string;
      parentId: string;
    },
  ): Promise<void> {
    const blobId = newId();
    await this.#o.blobs.put(tx, [{ organizationId: m.organizationId, id: blobId, data: m.raw }]);
    await tx.insert(messagesTable).values({
      id: m.id,
      organizationId: m.organizationId,
      domainId: m.domainId,
      direction: 'outbound',
      status: 'pending',
      blobId,
      size: m.raw.length,
      mailFrom: '',
      rcptTo: [m.recipient.address],
      messageIdHeader: m.messageIdHeader,
      threadId: m.id,
      fromAddress: `mailer-daemon@${this.#o.hostname}`,
      toAddresses: [m.recipient.address],
      subject: m.subject,
      sentAt: new Date(),
      parentId: m.parentId,
    });
    await store.insertDeliveries(tx, [
      {
        id: newId(),
        organizationId: m.organizationId,
        messageId: m.id,
        recipient: m.recipient.address,
        domain: m.recipient.domain,
        status: 'queued',
      },
    ]);
  }

  // ---- bounce reports arriving at a VERP address ---------------------------------------------------

  /**
   * Attaches a parsed bounce to the original message's recipients, inside inbound processing's
   * transaction: each named recipient gets a bounce record, and a permanent one marks it bounced, puts
   * the address on the suppression list when the address itself is bad, and emits message.bounced.
   * Returns how many recipients it concerned.
   */
  async recordReportIn(
    tx: Db,
    organizationId: string,
    originalMessageId: string,
    reportMessageId: string,
    report: ParsedBounce,
  ): Promise<number> {
    const candidates = (await store.deliveriesForBounce(tx, originalMessageId)).filter(
      (d) => d.organizationId === organizationId,
    );
    if (!candidates.length) return 0;
    const matched: { delivery: DeliveryRow; entry: ParsedBounce['recipients'][number] | null }[] = [];
    for (const entry of report.recipients) {
      const delivery = candidates.find((d) => d.recipient.toLowerCase() === entry.address.toLowerCase());
      if (delivery) matched.push({ delivery, entry });
    }
    // A bounce that names no recipient we know still concerns a message sent to one address only.
    if (!matched.length && candidates.length === 1) {
      matched.push({ delivery: candidates[0], entry: report.recipients[0] ?? null });
    }
    if (!matched.length) return 0;
    await store.insertBounces(
      tx,
      matched.map(({ delivery, entry }) => ({
        id: newId(),
        organizationId,
        deliveryId: delivery.id,
        messageId: originalMessageId,
        reportMessageId,
        recipient: delivery.recipient,
        kind: report.kind,
        permanent: isPermanent(entry, report),
        status: entry?.status ?? null,
        action: entry?.action ?? null,
        diagnostic: entry?.diagnostic ?? null,
        remoteMta: entry?.remoteMta ?? null,
      })),
    );
    const permanent = matched.filter(({ entry }) => isPermanent(entry, report));
    if (!permanent.length) return matched.length;
    for (const { delivery, entry } of permanent) {
      await store.updateDeliveries(tx, [delivery.id], {
        status: 'bounced',
        finishedAt: new Date(),
        lockedUntil: null,
        lastCode: codeOf(entry?.diagnostic ?? null),
        lastResponse: entry?.diagnostic ?? 'bounce report',
      });
    }
    await store.refreshMessageStatus(tx, [originalMessageId]);
    const hard = permanent.filter(({ entry }) =>
      isHardBounce(entry?.status ?? null, codeOf(entry?.diagnostic ?? null)),
    );
    const added = await this.#o.suppressions.addHardBouncesIn(
      tx,
      organizationId,
      hard.map((p) => ({
        address: p.delivery.recipient,
        detail: p.entry?.diagnostic ?? null,
        messageId: originalMessageId,
      })),
    );
    const addedSet = new Set(added.map((a) => a.address));
    await this.#o.events.emitMany(
      tx,
      permanent.map(({ delivery, entry }) => ({
        definition: messageBounced,
        organizationId,
        data: {
          message_id: originalMessageId,
          delivery_id: delivery.id,
          recipient: delivery.recipient,
          attempt: delivery.attempts,
          mx: entry?.remoteMta ?? null,
          code: codeOf(entry?.diagnostic ?? null),
          response: entry?.diagnostic ?? 'bounce report',
          source: 'report' as const,
          status: entry?.status ?? null,
          suppressed: addedSet.has(delivery.recipient.toLowerCase()),
        },
      })),
    );
    return matched.length;
  }
}

/** An attempt's result and what it means for the recipient. */
interface Decided {
  report: AttemptReport;
  /** No further attempt will be made. */
  final: boolean;
  /** Retries ran out (the maximum age passed). */
  expired: boolean;
  update: store.DeliveryUpdate;
}

/** Who hears of a failure: a forwarded copy's SRS sender (routed back by our MX), else the author. */
function dsnRecipient(delivery: store.ClaimedDelivery): OutboundAddress | null {
  if (delivery.mailFrom === '') return null;
  if (delivery.parentId) return parseAddress(delivery.mailFrom);
  return delivery.fromAddress ? parseAddress(delivery.fromAddress) : null;
}

/**
 * A permanent failure that says the address itself is bad (unknown user, bad domain, disabled
 * mailbox), not the message (too big, mailbox full) or a policy (spam, authentication).
 */
function isHardBounce(enhanced: string | null, code: number | null): boolean {
  if (enhanced) return HARD_BOUNCE.test(enhanced);
  return code === 550 || code === 551 || code === 553;
}

function isPermanent(entry: ParsedBounce['recipients'][number] | null, report: ParsedBounce): boolean {
  if (!entry) return report.permanent;
  if (entry.action) return entry.action.toLowerCase() === 'failed';
  if (entry.status) return entry.status.startsWith('5');
  return report.permanent;
}

function codeOf(diagnostic: string | null): number | null {
  const m = /\b([245]\d\d)\b/.exec(diagnostic ?? '');
  return m ? Number(m[1]) : null;
}
