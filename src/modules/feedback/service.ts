// Feedback loops: complaint reports (ARF) that mailbox providers send about mail an organisation sent.
// Inbound processing hands over every message that reaches a VERP return path or a hosted domain's
// feedback address (`MAILROOM_FEEDBACK_LOCALPART@<domain>`) and reads as a report; it is recorded in
// processing's transaction, step by step:
//   match      the message: the VERP address the report reached, else a VERP address the report
//              returned (Original-Mail-From, the original's Return-Path), else the original's Message-ID
//              among the organisation's outbound messages
//   recipient  who complained: the address the report names (Original-Rcpt-To, the receiving system's
//              X-HmXmrOriginalRecipient / X-Apparently-To / Delivered-To ...), else the one recipient the
//              returned To and Cc name, else the message's only recipient; it must be one the message
//              was delivered to
//   record     one complaint row (a repeated report about the same recipient of the same message is a
//              duplicate and changes nothing)
//   suppress   a matched complaint of a complaining type (abuse, fraud, virus or none) suppresses the
//              recipient through the suppressions service; not-spam and other types are recorded only
//   announce   complaint.received
// An unmatched report is recorded (visible by API) and suppresses nothing: without proof that the
// organisation sent that message to that address, a report could suppress anyone.
import type { Db } from '../../core/db.ts';
import { notFound } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import type { EventsService } from '../events/service.ts';
import type { HealthInput, HealthInputProvider } from '../health/inputs/types.ts';
import type { FeedbackArrival, FeedbackHooks, FeedbackReading } from '../inbound/service.ts';
import type { SuppressionsService } from '../suppressions/service.ts';
import { type FeedbackReport, parseFeedbackReport } from './arf.ts';
import { complaintReceived } from './events.ts';
import { complaintsInput } from './health.ts';
import * as store from './store.ts';
import {
  COMPLAINING_TYPES,
  type ComplaintRates,
  type ComplaintRow,
  type MatchMethod,
  type RateCount,
} from './tables.ts';

export interface FeedbackServiceOptions {
  db: Db;
  events: EventsService;
  suppressions: SuppressionsService;
  /** The outbound message a VERP return address names, when its MAC is genuine (the delivery module's). */
  verpTarget(address: string): { messageId: string; domain: string } | null;
  /** MAILROOM_FEEDBACK_LOCALPART: `<local part>@<hosted domain>` takes reports. */
  localPart: string;
  /** The complaint rate's health input: MAILROOM_HEALTH_WINDOW and MAILROOM_HEALTH_MIN_SAMPLE. */
  health: { windowMs: number; minSample: number };
}

/** Outbound messages sharing a Message-ID that are looked at (resubmissions of one message). */
const MESSAGE_ID_CANDIDATES = 10;

type Match =
  | {
      matched: true;
      method: MatchMethod;
      message: store.OutboundRef;
      delivery: store.DeliveryRef;
      how: string;
    }
  | { matched: false; message: store.OutboundRef | null; recipient: string | null; why: string };

/** Whether a Feedback-Type says the recipient complains (and so is suppressed). */
export function complains(feedbackType: string | null): boolean {
  return feedbackType === null || COMPLAINING_TYPES.includes(feedbackType);
}

export class FeedbackService implements FeedbackHooks, HealthInputProvider {
  readonly #o: FeedbackServiceOptions;

  constructor(options: FeedbackServiceOptions) {
    this.#o = options;
  }

  /** The complaint rate, scored by the health module (health.ts). */
  healthInputs(): HealthInput[] {
    return [
      complaintsInput({
        rates: (organizationId, window) => this.rates(organizationId, window),
        ...this.#o.health,
      }),
    ];
  }

  isFeedbackAddress(localPart: string): boolean {
    return localPart === this.#o.localPart;
  }

  async readReport(raw: Buffer): Promise<FeedbackReading | null> {
    const report = await parseFeedbackReport(raw);
    if (!report) return null;
    return { recordIn: (tx, arrival) => this.recordIn(tx, report, arrival) };
  }

  /** Records a report that arrived for an organisation, inside the caller's (processing's) transaction. */
  async recordIn(
    tx: Db,
    report: FeedbackReport,
    arrival: FeedbackArrival,
  ): Promise<{ complaintId: string; detail: string }> {
    const { organizationId } = arrival;
    const match = await this.#match(tx, organizationId, report, arrival.verp?.messageId ?? null);
    const suppresses = match.matched && complains(report.feedbackType);
    const message = match.message;
    const recipient = match.matched ? match.delivery.recipient.toLowerCase() : match.recipient;
    const kind = report.feedbackType ?? 'no Feedback-Type, read as abuse';
    const detail = match.matched
      ? `${kind} from ${recipient}, matched by ${match.how}${suppresses ? '; recipient suppressed' : '; not a complaint type, nothing suppressed'}`
      : `unmatched: ${match.why}; nothing suppressed`;
    const row = await store.insertComplaint(tx, {
      id: newId(),
      organizationId,
      reportMessageId: arrival.reportMessageId,
      receivedVia: arrival.verp ? 'verp' : 'feedback_address',
      matched: match.matched,
      matchMethod: match.matched ? match.method : null,
      messageId: message?.id ?? null,
      deliveryId: match.matched ? match.delivery.id : null,
      domainId: message?.domainId ?? null,
      domain: message?.domain ?? arrival.domain,
      sender: match.matched
        ? (match.delivery.countedSubject ?? message?.fromAddress?.toLowerCase() ?? null)
        : null,
      recipient,
      feedbackType: report.feedbackType,
      suppressed: suppresses,
      userAgent: report.userAgent,
      reporter: report.reporter,
      sourceIp: report.sourceIp,
      originalMailFrom: report.originalMailFrom,
      originalRcptTo: report.originalRcptTo,
      originalMessageId: report.original?.messageId ?? null,
      reportedDomain: report.reportedDomain,
      arrivalDate: report.arrivalDate,
      detail,
    });
    if (!row) {
      // Matched before: the first report stands (its suppression and event were made then).
      const first = await store.matchedComplaint(tx, organizationId, message!.id, recipient!);
      return {
        complaintId: first!.id,
        detail: `feedback report repeating complaint ${first!.id} (${recipient}): recorded once`,
      };
    }
    if (suppresses) {
      await this.#o.suppressions.addComplaintsIn(tx, organizationId, [
        {
          address: row.recipient!,
          detail: `complaint (${report.feedbackType ?? 'abuse'}) reported by ${report.userAgent ?? report.reporter ?? 'a feedback loop'}`,
          messageId: row.messageId!,
        },
      ]);
    }
    await this.#o.events.emit(tx, complaintReceived, organizationId, {
      complaint_id: row.id,
      matched: row.matched,
      match_method: row.matchMethod,
      message_id: row.messageId,
      recipient: row.recipient,
      domain: row.domain,
      sender: row.sender,
      feedback_type: row.feedbackType,
      suppressed: row.suppressed,
      received_via: row.receivedVia,
      user_agent: row.userAgent,
    });
    return { complaintId: row.id, detail: `feedback report recorded as complaint ${row.id}: ${detail}` };
  }

  // ---- match ---------------------------------------------------------------------------------------

  /** The message and recipient a report is about, or why it names none this organisation sent to. */
  async #match(
    db: Db,
    organizationId: string,
    report: FeedbackReport,
    verpMessageId: string | null,
  ): Promise<Match> {
    const named = this.#named(report)[0] ?? null;
    let messageId = verpMessageId;
    for (const address of [report.originalMailFrom, report.original?.returnPath]) {
      if (messageId || !address) continue;
      messageId = this.#o.verpTarget(address)?.messageId ?? null;
    }
    if (messageId) {
      const message = await store.outboundMessage(db, organizationId, messageId);
      if (!message)
        return {
          matched: false,
          message: null,
          recipient: named,
          why: 'its VERP address names no message this organisation sent',
        };
      return this.#recipient(db, organizationId, report, message, 'verp');
    }
    const id = report.original?.messageId;
    if (!id)
      return {
        matched: false,
        message: null,
        recipient: named,
        why: 'it carries neither a VERP address of ours nor the Message-ID of the message',
      };
    const bare = id.replace(/^<|>$/g, '');
    const candidates = await store.outboundByMessageIdHeader(
      db,
      organizationId,
      [`<${bare}>`, bare],
      MESSAGE_ID_CANDIDATES,
    );
    if (!candidates.length)
      return {
        matched: false,
        message: null,
        recipient: named,
        why: `no message this organisation sent has the Message-ID ${id}`,
      };
    let first: Match | null = null;
    for (const message of candidates) {
      const found = await this.#recipient(db, organizationId, report, message, 'message_id');
      if (found.matched) return found;
      first ??= found;
    }
    return first!;
  }

  /** Addresses the report names as the recipient: its Original-Rcpt-To, then the receiving system's. */
  #named(report: FeedbackReport): string[] {
    return [...new Set([...report.originalRcptTo, ...(report.original?.receivers ?? [])])];
  }

  /** Which recipient of `message` complained; it must be one the message was delivered to. */
  async #recipient(
    db: Db,
    organizationId: string,
    report: FeedbackReport,
    message: store.OutboundRef,
    method: MatchMethod,
  ): Promise<Match> {
    const deliveries = await store.deliveriesOf(db, organizationId, message.id);
    const byAddress = new Map(deliveries.map((d) => [d.recipient.toLowerCase(), d]));
    const among = (addresses: string[]) => [
      ...new Set(addresses.map((a) => byAddress.get(a)).filter((d) => d !== undefined)),
    ];
    const unmatched = (recipient: string | null, why: string): Match => ({
      matched: false,
      message,
      recipient,
      why,
    });
    const named = this.#named(report);
    let delivery: store.DeliveryRef;
    let how: string;
    if (named.length) {
      // The report says who: that address and no other (a forged report names someone else).
      const hits = among(named);
      if (hits.length !== 1)
        return unmatched(
          named[0],
          hits.length
            ? `it names ${hits.length} recipients of message ${message.id}`
            : `it names ${named.join(', ')}, not a recipient of message ${message.id}`,
        );
      delivery = hits[0];
      how = `${method === 'verp' ? 'VERP' : 'Message-ID'} and the recipient the report names`;
    } else {
      const original = report.original;
      const hits = among([...(original?.to ?? []), ...(original?.cc ?? [])]);
      if (hits.length === 1) {
        delivery = hits[0];
        how = `${method === 'verp' ? 'VERP' : 'Message-ID'} and the returned message's To/Cc`;
      } else if (hits.length > 1) {
        return unmatched(
          null,
          `it names no recipient, and the returned message's To and Cc hold ${hits.length} recipients of message ${message.id}`,
        );
      } else if (deliveries.length === 1) {
        delivery = deliveries[0];
        how = `${method === 'verp' ? 'VERP' : 'Message-ID'} and the message's only recipient`;
      } else {
        return unmatched(
          null,
          `it does not say which of the ${deliveries.length} recipients of message ${message.id} complained`,
        );
      }
    }
    if (delivery.status !== 'delivered')
      return unmatched(
        delivery.recipient.toLowerCase(),
        `message ${message.id} was not delivered to ${delivery.recipient} (${delivery.status})`,
      );
    return { matched: true, method, message, delivery, how };
  }

  // ---- the API -------------------------------------------------------------------------------------

  async list(organizationId: string, filter: store.ComplaintFilter, page: PageRequest) {
    const { rows, total } = await store.listComplaints(
      this.#o.db,
      organizationId,
      {
        ...filter,
        recipient: filter.recipient?.trim().toLowerCase(),
        domain: filter.domain?.trim().toLowerCase().replace(/\.$/, ''),
      },
      page,
    );
    return toPage(rows, total, page);
  }

  async get(organizationId: string, id: string): Promise<ComplaintRow> {
    const row = await store.complaintById(this.#o.db, organizationId, id);
    if (!row) throw notFound('Complaint');
    return row;
  }

  // ---- complaint rates -----------------------------------------------------------------------------

  /**
   * Complaints and delivered recipients over a window, for the organisation, per sending domain and per
   * sending mailbox: what a health score reads. Delivered counts the recipients of mail queued in the
   * window that were delivered; complaints count matched reports of a complaining type recorded in it.
   */
  async rates(organizationId: string, window: { since: Date; until?: Date }): Promise<ComplaintRates> {
    const until = window.until ?? new Date();
    const [delivered, complained] = await Promise.all([
      store.deliveredCounts(this.#o.db, organizationId, window.since, until),
      store.complaintCounts(this.#o.db, organizationId, window.since, until),
    ]);
    const domains = new Map<
      string,
      { domainId: string | null; domain: string | null; c: number; d: number }
    >();
    const mailboxes = new Map<string, { address: string; domain: string | null; c: number; d: number }>();
    const add = (row: store.RateRow, field: 'c' | 'd') => {
      const domainKey = row.domain_id ?? `name:${row.domain ?? ''}`;
      const domain = domains.get(domainKey) ?? { domainId: row.domain_id, domain: row.domain, c: 0, d: 0 };
      domain[field] += row.n;
      domains.set(domainKey, domain);
      if (!row.sender) return;
      const mailbox = mailboxes.get(row.sender) ?? { address: row.sender, domain: row.domain, c: 0, d: 0 };
      mailbox[field] += row.n;
      mailboxes.set(row.sender, mailbox);
    };
    for (const row of delivered) add(row, 'd');
    for (const row of complained) add(row, 'c');
    const count = (c: number, d: number): RateCount => ({
      complaints: c,
      delivered: d,
      rate: d > 0 ? c / d : null,
    });
    const sum = (rows: store.RateRow[]) => rows.reduce((n, r) => n + r.n, 0);
    return {
      since: window.since,
      until,
      organization: count(sum(complained), sum(delivered)),
      domains: [...domains.values()]
        .map((x) => ({ domainId: x.domainId, domain: x.domain, ...count(x.c, x.d) }))
        .sort((a, b) => (a.domain ?? '').localeCompare(b.domain ?? '')),
      mailboxes: [...mailboxes.values()]
        .map((x) => ({ address: x.address, domain: x.domain, ...count(x.c, x.d) }))
        .sort((a, b) => a.address.localeCompare(b.address)),
    };
  }
}
