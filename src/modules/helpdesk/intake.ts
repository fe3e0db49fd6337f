// Mail to a desk address becomes a ticket or a comment. The MX's filing transaction records an intake
// row per (message, desk) (`recordIntake`, through the events fan-out), and a worker files them in
// batches, each message in its own savepoint, in these steps:
//
//   classify   bounces (null sender, delivery reports), auto-replies (Auto-Submitted, Precedence, the
//              usual vendor headers) and our own desks' mail never open or join tickets; neither does a
//              sender writing more than the loop limit within the hour
//   approval   a reply to an approval request, from the approver it went to, decides the approval
//   thread     In-Reply-To/References naming a mail of a ticket, else a [#123] tag in the subject from
//              the ticket's requester (or their domain), finds the ticket; a merged ticket's successor
//              takes it
//   file       a comment on that ticket (re-opening it when it was pending or resolved; a closed ticket
//              gets a new one), or a new ticket
//
// Filing is idempotent: an intake row is filed once, in the transaction that writes the ticket.
import type { Logger } from 'pino';
import type { Db } from '../../core/db.ts';
import { AppError } from '../../core/errors.ts';
import { eventOf, type EventsService } from '../events/service.ts';
import type { MessagesService, ReceivedMessage } from '../messages/service.ts';
import { type Actor, ticketMailIgnored } from './events.ts';
import { type HelpdeskService, type MailOrigin, type NewTicket, tagNumberOf } from './service.ts';
import * as store from './store.ts';
import type { TicketRow } from './tables.ts';

export const INTAKE_QUEUE = 'helpdesk.intake';

export interface IntakeOptions {
  db: Db;
  events: EventsService;
  helpdesk: HelpdeskService;
  messages: MessagesService;
  log: Logger;
  clock: { now(): Date };
  /** Mail a sender may file to one desk within an hour before more is taken for a loop. */
  loopLimitPerHour: number;
  batchSize: number;
}

type ClaimedIntake = Awaited<ReturnType<typeof store.claimIntake>>[number];

interface Candidate {
  item: ClaimedIntake;
  mail: ReceivedMessage;
  /** The From address, lower case. */
  sender: string;
}

const CUSTOMER: Actor = { type: 'customer', id: null, depth: 0 };

/** What one batch decided about each intake row. */
class Batch {
  readonly done: Parameters<typeof store.finishIntake>[1] = [];
  readonly ignored: { item: ClaimedIntake; mail: ReceivedMessage | undefined; reason: string }[] = [];
  readonly passed: Candidate[] = [];

  readonly claimed: ClaimedIntake[];
  readonly mails: Map<string, ReceivedMessage>;

  constructor(claimed: ClaimedIntake[], mails: Map<string, ReceivedMessage>) {
    this.claimed = claimed;
    this.mails = mails;
  }

  ignore(
    item: ClaimedIntake,
    mail: ReceivedMessage | undefined,
    reason: string,
    ticketId: string | null = null,
  ) {
    this.ignored.push({ item, mail, reason });
    this.done.push({
      messageId: item.messageId,
      deskId: item.deskId,
      status: 'ignored',
      reason,
      ticketId,
      sender: null,
    });
  }

  file(c: Candidate, ticketId: string) {
    this.done.push({
      messageId: c.item.messageId,
      deskId: c.item.deskId,
      status: 'filed',
      reason: null,
      ticketId,
      sender: c.sender,
    });
  }
}

/** The ticket a mail opens: its subject without Re:/Fwd: and the tag, its new words, its attachments. */
function ticketOfMail(c: Pick<Candidate, 'item' | 'mail' | 'sender'>): {
  input: NewTicket;
  mail: MailOrigin;
} {
  return {
    input: {
      desk_id: c.item.deskId,
      subject: (c.mail.subject ?? '')
        .replace(/^((re|fwd?|aw|sv|wg)\s*:\s*)+/i, '')
        .replace(/\[#\d+\]\s*/, ''),
      requester: { email: c.sender, name: c.mail.from_name },
      body: newText(c.mail.body_text ?? ''),
      from_customer: true,
      source: 'mail',
    },
    mail: {
      suppressAutoReply: header(c.mail, 'x-auto-response-suppress') !== null,
      messageId: c.mail.id,
      messageIdHeader: c.mail.message_id_header,
      attachments: (c.mail.details?.attachments ?? []).map((a) => ({
        filename: a.filename,
        content_type: a.content_type,
        size: a.size,
      })),
    },
  };
}

type Outcome =
  | { status: 'filed'; ticketId: string }
  | { status: 'ignored'; reason: string; ticketId?: string | null };

export class MailIntake {
  readonly #o: IntakeOptions;

  constructor(options: IntakeOptions) {
    this.#o = options;
  }

  /** Files pending intake until none is left; returns how many were taken. */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.#batch();
      total += n;
      if (n < this.#o.batchSize) return total;
    }
  }

  async #batch(): Promise<number> {
    return this.#o.db.transaction(async (tx) => {
      const claimed = await store.claimIntake(tx, this.#o.batchSize);
      if (!claimed.length) return 0;
      const mails = await this.#o.messages.received(
        tx,
        claimed.map((c) => c.messageId),
      );
      const batch = new Batch(claimed, mails);
      await this.#screen(tx, batch);
      const { fresh, threaded } = await this.#sort(tx, batch);
      await this.#openTickets(tx, batch, fresh);
      for (const item of threaded) await this.#fileOne(tx, batch, item);
      await this.#o.events.emitMany(
        tx,
        batch.ignored.map(({ item, mail, reason }) =>
          eventOf(ticketMailIgnored, item.organizationId, {
            desk_id: item.deskId,
            message_id: item.messageId,
            from: mail?.from_address ?? null,
            reason,
          }),
        ),
      );
      await store.finishIntake(tx, batch.done);
      return claimed.length;
    });
  }

  /** classify and loop checks for the whole batch: bounces, automatic mail, desks' own mail, floods. */
  async #screen(tx: Db, batch: Batch): Promise<void> {
    const candidates: Candidate[] = [];
    for (const item of batch.claimed) {
      const mail = batch.mails.get(item.messageId);
      const reason = mail ? classify(mail) : 'message gone';
      if (reason) batch.ignore(item, mail, reason);
      else candidates.push({ item, mail: mail!, sender: mail!.from_address!.toLowerCase() });
    }
    const orgs = [...new Set(candidates.map((c) => c.item.organizationId))];
    const deskAddresses = await store.deskAddressesOf(tx, orgs);
    const since = new Date(this.#o.clock.now().getTime() - 3_600_000);
    const recent = await store.recentFiledCounts(
      tx,
      candidates.map((c) => ({
        organizationId: c.item.organizationId,
        deskId: c.item.deskId,
        sender: c.sender,
      })),
      since,
    );
    for (const c of candidates) {
      const key = `${c.item.organizationId}:${c.item.deskId}:${c.sender}`;
      const filed = recent.get(key) ?? 0;
      if (deskAddresses.has(`${c.item.organizationId}:${c.sender}`))
        batch.ignore(c.item, c.mail, 'loop: sent by a desk');
      else if (filed >= this.#o.loopLimitPerHour)
        batch.ignore(c.item, c.mail, 'loop: sender over the hourly limit');
      else {
        recent.set(key, filed + 1);
        batch.passed.push(c);
      }
    }
  }

  /**
   * Mail that names nothing known (no referenced Message-ID of a ticket, no subject tag, no reply to mail
   * of this batch) opens tickets in bulk; the rest is filed one by one.
   */
  async #sort(tx: Db, batch: Batch): Promise<{ fresh: Candidate[]; threaded: Candidate[] }> {
    const known = await store.knownMessageIds(
      tx,
      batch.passed.flatMap((c) =>
        threadIds(c.mail).map((id) => ({ organizationId: c.item.organizationId, id })),
      ),
    );
    const inBatch = new Set(
      batch.passed
        .filter((c) => c.mail.message_id_header)
        .map((c) => `${c.item.organizationId}:${c.mail.message_id_header}`),
    );
    const fresh: Candidate[] = [];
    const threaded: Candidate[] = [];
    for (const c of batch.passed) {
      const names = threadIds(c.mail).map((id) => `${c.item.organizationId}:${id}`);
      const continues =
        tagNumberOf(c.mail.subject) !== null || names.some((n) => known.has(n) || inBatch.has(n));
      (continues ? threaded : fresh).push(c);
    }
    return { fresh, threaded };
  }

  /** file, in bulk: new tickets for fresh mail, per organisation; one by one if the bulk write fails. */
  async #openTickets(tx: Db, batch: Batch, fresh: Candidate[]): Promise<void> {
    const byOrg = new Map<string, Candidate[]>();
    for (const c of fresh) byOrg.set(c.item.organizationId, [...(byOrg.get(c.item.organizationId) ?? []), c]);
    for (const [org, candidates] of byOrg) {
      try {
        const created = await tx.transaction((sp) =>
          this.#o.helpdesk.createTicketsIn(
            sp,
            org,
            candidates.map((c) => ticketOfMail(c)),
            CUSTOMER,
          ),
        );
        for (const [n, c] of candidates.entries()) batch.file(c, created[n]!.id);
      } catch (err) {
        this.#o.log.warn(
          { err, count: candidates.length },
          'helpdesk: a bulk filing failed; filing one by one',
        );
        for (const c of candidates) await this.#fileOne(tx, batch, c);
      }
    }
  }

  /** file, one message in its own savepoint: one that cannot be filed does not undo the batch. */
  async #fileOne(tx: Db, batch: Batch, c: Candidate): Promise<void> {
    try {
      const outcome = await tx.transaction((sp) => this.#file(sp, c.item.deskId, c.mail, c.sender));
      if (outcome.status === 'filed') batch.file(c, outcome.ticketId);
      else batch.ignore(c.item, c.mail, outcome.reason, outcome.ticketId ?? null);
    } catch (err) {
      // A message that cannot be filed (a 4xx of the rules) is recorded as such; anything else (a lost
      // connection, a deadlock) rolls the batch back for the job to try again: accepted mail is not dropped.
      if (!(err instanceof AppError)) throw err;
      this.#o.log.warn({ err, message_id: c.item.messageId }, 'helpdesk could not file a message');
      batch.ignore(c.item, c.mail, `refused: ${err.message}`.slice(0, 500));
    }
  }

  async #file(tx: Db, deskId: string, mail: ReceivedMessage, sender: string): Promise<Outcome> {
    const org = mail.organization_id;
    const referenced = await store.ticketByMessageIds(tx, org, threadIds(mail));
    if (referenced?.kind === 'approval') return this.#approvalReply(tx, mail, referenced);
    const ticket = await this.#threadedTicket(tx, org, mail, referenced?.ticketId ?? null, sender);
    const { input, mail: origin } = ticketOfMail({ item: { deskId } as ClaimedIntake, mail, sender });
    if (ticket && ticket.status !== 'closed') {
      await this.#o.helpdesk.customerCommentIn(
        tx,
        ticket,
        {
          email: sender,
          name: mail.from_name,
          body: input.body,
          attachments: origin.attachments,
          messageId: mail.id,
          messageIdHeader: mail.message_id_header,
        },
        CUSTOMER,
      );
      return { status: 'filed', ticketId: ticket.id };
    }
    const created = await this.#o.helpdesk.createTicketIn(tx, org, input, CUSTOMER, origin);
    return { status: 'filed', ticketId: created.id };
  }

  /** The ticket a mail continues: by its references, else by the subject tag from the same requester. */
  async #threadedTicket(
    tx: Db,
    org: string,
    mail: ReceivedMessage,
    referencedId: string | null,
    sender: string,
  ): Promise<TicketRow | null> {
    let ticketId = referencedId;
    const tagged = tagNumberOf(mail.subject);
    if (!ticketId && tagged !== null) {
      const candidate = await store.ticketByNumber(tx, org, tagged);
      if (candidate) {
        const [requester] = await store.contactsByIds(tx, org, [candidate.requesterId]);
        // Numbers are easy to guess: the requester, or a colleague at a domain of their customer
        // organisation (never merely the same public mail domain), may continue a ticket by its tag.
        const customer = requester?.customerId
          ? await store.customerOf(tx, org, requester.customerId)
          : undefined;
        const senderDomain = sender.slice(sender.lastIndexOf('@') + 1);
        if (requester && (requester.email === sender || customer?.domains.includes(senderDomain)))
          ticketId = candidate.id;
      }
    }
    return ticketId ? this.#o.helpdesk.liveTicketIn(tx, org, ticketId) : null;
  }

  /** A reply to an approval request: only the approver it was sent to decides, and only with a verdict. */
  async #approvalReply(
    tx: Db,
    mail: ReceivedMessage,
    request: { ticketId: string; approverId: string | null },
  ): Promise<Outcome> {
    const org = mail.organization_id;
    const approver = await this.#o.helpdesk.directory.agent(org, request.approverId!, tx).catch(() => null);
    if (!approver || approver.email.toLowerCase() !== mail.from_address!.toLowerCase())
      return {
        status: 'ignored',
        reason: 'approval reply not from its approver',
        ticketId: request.ticketId,
      };
    // A From address is easy to forge: a decision needs the approver's domain to vouch for it.
    if (mail.auth?.dmarc?.result !== 'pass')
      return { status: 'ignored', reason: 'approval reply without DMARC pass', ticketId: request.ticketId };
    const { decision, comment } = verdictOf(mail.body_text ?? '');
    if (!decision)
      return {
        status: 'ignored',
        reason: 'approval reply without APPROVE or REJECT',
        ticketId: request.ticketId,
      };
    // The decision commits with this intake row (the savepoint), or not at all.
    await this.#o.helpdesk.decideIn(tx, org, request.ticketId, approver.userId, decision, comment, 'mail', {
      type: 'user',
      id: approver.userId,
      depth: 0,
    });
    return { status: 'filed', ticketId: request.ticketId };
  }
}

// ---- the steps' rules --------------------------------------------------------------------------------------

const header = (mail: ReceivedMessage, name: string) =>
  mail.details?.headers
    .find((h) => h.name.toLowerCase() === name)
    ?.value.trim()
    .toLowerCase() ?? null;

/** Why a mail is automatic (and so never opens or joins a ticket), or null for a person's mail. */
export function classify(mail: ReceivedMessage): string | null {
  if (!mail.mail_from || !mail.from_address) return 'bounce: null sender';
  if (/^(mailer-daemon|postmaster)@/i.test(mail.from_address)) return 'bounce: from a mailer daemon';
  const contentType = header(mail, 'content-type');
  if (contentType?.startsWith('multipart/report')) return 'bounce: delivery report';
  const autoSubmitted = header(mail, 'auto-submitted');
  if (autoSubmitted && autoSubmitted !== 'no') return `auto-reply: Auto-Submitted ${autoSubmitted}`;
  const precedence = header(mail, 'precedence');
  if (precedence && ['bulk', 'junk', 'list', 'auto_reply'].includes(precedence))
    return `auto-reply: Precedence ${precedence}`;
  // (X-Auto-Response-Suppress asks us not to answer; people's own mail carries it too, so it files.)
  for (const name of ['x-autoreply', 'x-autorespond']) if (header(mail, name)) return `auto-reply: ${name}`;
  if (/^(auto(matic)? reply|out of office|autosvar|abwesenheitsnotiz)\b/i.test(mail.subject ?? ''))
    return 'auto-reply: subject';
  return null;
}

/** In-Reply-To first, then References from the newest: the nearest mail of a known ticket wins. */
function threadIds(mail: ReceivedMessage): string[] {
  const strip = (id: string) => id.replace(/^<|>$/g, '');
  return [
    ...new Set(
      [mail.in_reply_to, ...[...mail.references].reverse()].filter((x): x is string => !!x).map(strip),
    ),
  ];
}

/** The new words of a reply: what comes before the quoted earlier mail. */
export function newText(body: string): string {
  const lines = body.replace(/\r\n/g, '\n').split('\n');
  const cut = lines.findIndex(
    (line, i) =>
      /^On .{4,200} wrote:\s*$/.test(line) ||
      /^-{2,}\s*Original Message\s*-{2,}/i.test(line) ||
      /^_{5,}$/.test(line) ||
      (line.startsWith('>') && lines.slice(i).every((l) => l.startsWith('>') || !l.trim())),
  );
  const text = (cut === -1 ? lines : lines.slice(0, cut)).join('\n').trim();
  return text || body.trim() || '(empty message)';
}

/** APPROVE or REJECT on the first non-empty line; the rest of the new text is the comment. */
export function verdictOf(body: string): {
  decision: 'approved' | 'rejected' | null;
  comment: string | null;
} {
  const lines = newText(body).split('\n');
  const first = lines.findIndex((l) => l.trim());
  const word = /^\s*(approve|approved|reject|rejected)\b[.!:]?\s*(.*)$/i.exec(lines[first] ?? '');
  if (!word) return { decision: null, comment: null };
  const decision = word[1]!.toLowerCase().startsWith('approve') ? 'approved' : 'rejected';
  const comment = [word[2], ...lines.slice(first + 1)].join('\n').trim();
  return { decision, comment: comment || null };
}
