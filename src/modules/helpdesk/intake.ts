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
import { newId } from '../../core/ids.ts';
import { sql } from '../../core/orm.ts';
import { eventOf, type EventsService } from '../events/service.ts';
import type { MessageDetails } from '../messages/tables.ts';
import { type Actor, ticketCommented, ticketMailIgnored, ticketUpdated } from './events.ts';
import {
  commentEvent,
  type HelpdeskService,
  REOPENED_BY_CUSTOMER,
  snapshotOf,
  tagNumberOf,
} from './service.ts';
import * as store from './store.ts';
import type { CommentRow, TicketRow } from './tables.ts';

type Rows = { rows: unknown[] };

export const INTAKE_QUEUE = 'helpdesk.intake';

export interface IntakeOptions {
  db: Db;
  events: EventsService;
  helpdesk: HelpdeskService;
  log: Logger;
  clock: { now(): Date };
  /** Mail a sender may file to one desk within an hour before more is taken for a loop. */
  loopLimitPerHour: number;
  batchSize: number;
}

interface ReceivedMail {
  id: string;
  organization_id: string;
  mail_from: string;
  from_address: string | null;
  from_name: string | null;
  subject: string | null;
  message_id_header: string | null;
  in_reply_to: string | null;
  references: string[];
  body_text: string | null;
  details: MessageDetails | null;
  auth: { dmarc?: { result?: string } } | null;
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
      const mails = await loadMessages(
        tx,
        claimed.map((c) => c.messageId),
      );
      const done: Parameters<typeof store.finishIntake>[1] = [];
      for (const item of claimed) {
        const mail = mails.get(item.messageId);
        let outcome: Outcome;
        if (!mail) outcome = { status: 'ignored', reason: 'message gone' };
        else {
          try {
            // A savepoint: one message that cannot be filed does not undo the batch.
            outcome = await tx.transaction((sp) => this.#file(sp, item.deskId, mail));
          } catch (err) {
            this.#o.log.error({ err, message_id: item.messageId }, 'helpdesk could not file a message');
            outcome = { status: 'ignored', reason: `error: ${(err as Error).message}`.slice(0, 500) };
          }
        }
        if (outcome.status === 'ignored' && mail)
          await this.#o.events.emit(tx, ticketMailIgnored, item.organizationId, {
            desk_id: item.deskId,
            message_id: item.messageId,
            from: mail.from_address,
            reason: outcome.reason,
          });
        done.push({
          messageId: item.messageId,
          deskId: item.deskId,
          status: outcome.status,
          reason: outcome.status === 'ignored' ? outcome.reason : null,
          ticketId: outcome.ticketId ?? null,
        });
      }
      await store.finishIntake(tx, done);
      return claimed.length;
    });
  }

  async #file(tx: Db, deskId: string, mail: ReceivedMail): Promise<Outcome> {
    const org = mail.organization_id;
    const automatic = classify(mail);
    if (automatic) return { status: 'ignored', reason: automatic };
    const sender = mail.from_address!.toLowerCase();
    if (await isDeskAddress(tx, org, sender)) return { status: 'ignored', reason: 'loop: sent by a desk' };
    const hourAgo = new Date(this.#o.clock.now().getTime() - 3_600_000);
    if ((await store.recentFromSender(tx, org, deskId, sender, hourAgo)) >= this.#o.loopLimitPerHour)
      return { status: 'ignored', reason: 'loop: sender over the hourly limit' };

    const referenced = await store.ticketByMessageIds(tx, org, threadIds(mail));
    if (referenced?.kind === 'approval') return this.#approvalReply(tx, mail, referenced);
    const ticket = await this.#threadedTicket(tx, org, mail, referenced?.ticketId ?? null, sender);
    const actor: Actor = { type: 'customer', id: null, depth: 0 };
    const body = newText(mail.body_text ?? '');
    const attachments = (mail.details?.attachments ?? []).map((a) => ({
      filename: a.filename,
      content_type: a.content_type,
      size: a.size,
    }));
    if (ticket && ticket.status !== 'closed') {
      await this.#comment(tx, ticket, mail, sender, body, attachments, actor);
      return { status: 'filed', ticketId: ticket.id };
    }
    const created = await this.#o.helpdesk.createTicketIn(
      tx,
      org,
      {
        desk_id: deskId,
        subject: (mail.subject ?? '')
          .replace(/^((re|fwd?|aw|sv|wg)\s*:\s*)+/i, '')
          .replace(/\[#\d+\]\s*/, ''),
        requester: { email: sender, name: mail.from_name },
        body,
        from_customer: true,
        source: 'mail',
      },
      actor,
      { messageId: mail.id, messageIdHeader: mail.message_id_header, attachments },
    );
    return { status: 'filed', ticketId: created.id };
  }

  /** The ticket a mail continues: by its references, else by the subject tag from the same requester. */
  async #threadedTicket(
    tx: Db,
    org: string,
    mail: ReceivedMail,
    referencedId: string | null,
    sender: string,
  ): Promise<TicketRow | null> {
    let ticket: TicketRow | undefined;
    if (referencedId) ticket = await store.ticketOf(tx, org, referencedId, true);
    const tagged = tagNumberOf(mail.subject);
    if (!ticket && tagged !== null) {
      const candidate = await store.ticketByNumber(tx, org, tagged);
      if (candidate) {
        const [requester] = await store.contactsByIds(tx, org, [candidate.requesterId]);
        const domainOf = (a: string) => a.slice(a.lastIndexOf('@') + 1);
        if (requester && (requester.email === sender || domainOf(requester.email) === domainOf(sender)))
          ticket = await store.ticketOf(tx, org, candidate.id, true);
      }
    }
    // Mail for a merged ticket goes to the ticket it was merged into.
    for (let hops = 0; ticket?.mergedIntoId && hops < 10; hops++)
      ticket = await store.ticketOf(tx, org, ticket.mergedIntoId, true);
    return ticket ?? null;
  }

  async #comment(
    tx: Db,
    ticket: TicketRow,
    mail: ReceivedMail,
    sender: string,
    body: string,
    attachments: CommentRow['attachments'],
    actor: Actor,
  ): Promise<void> {
    const org = ticket.organizationId;
    const contact = await this.#o.helpdesk.contact(tx, org, sender, mail.from_name);
    const now = this.#o.clock.now();
    const comment = await store.insertComment(tx, {
      id: newId(),
      organizationId: org,
      ticketId: ticket.id,
      visibility: 'public',
      authorType: 'customer',
      authorContactId: contact.id,
      body,
      messageId: mail.id,
      messageIdHeader: mail.message_id_header,
      attachments,
      createdAt: now,
    });
    await store.extendSearch(tx, ticket.id, body);
    if (mail.message_id_header)
      await store.recordTicketMessages(tx, [
        { organizationId: org, messageIdHeader: mail.message_id_header, ticketId: ticket.id },
      ]);
    const reopen = REOPENED_BY_CUSTOMER.has(ticket.status);
    const row = await store.updateTicket(tx, ticket.id, {
      lastCustomerAt: now,
      updatedAt: now,
      ...(reopen && { status: 'open' as const, resolvedAt: null }),
    });
    const [requester] = await store.contactsByIds(tx, org, [row.requesterId]);
    const snapshot = snapshotOf(row, requester!);
    await this.#o.events.emitMany(tx, [
      eventOf(ticketCommented, org, { ticket: snapshot, actor, comment: commentEvent(comment) }),
      ...(reopen
        ? [
            eventOf(ticketUpdated, org, {
              ticket: snapshot,
              actor,
              changes: { status: [ticket.status, 'open'] },
            }),
          ]
        : []),
    ]);
  }

  /** A reply to an approval request: only the approver it was sent to decides, and only with a verdict. */
  async #approvalReply(
    tx: Db,
    mail: ReceivedMail,
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
    if (mail.auth?.dmarc?.result === 'fail')
      return { status: 'ignored', reason: 'approval reply failed DMARC', ticketId: request.ticketId };
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

const header = (mail: ReceivedMail, name: string) =>
  mail.details?.headers
    .find((h) => h.name.toLowerCase() === name)
    ?.value.trim()
    .toLowerCase() ?? null;

/** Why a mail is automatic (and so never opens or joins a ticket), or null for a person's mail. */
export function classify(mail: ReceivedMail): string | null {
  if (!mail.mail_from || !mail.from_address) return 'bounce: null sender';
  if (/^(mailer-daemon|postmaster)@/i.test(mail.from_address)) return 'bounce: from a mailer daemon';
  const contentType = header(mail, 'content-type');
  if (contentType?.startsWith('multipart/report')) return 'bounce: delivery report';
  const autoSubmitted = header(mail, 'auto-submitted');
  if (autoSubmitted && autoSubmitted !== 'no') return `auto-reply: Auto-Submitted ${autoSubmitted}`;
  const precedence = header(mail, 'precedence');
  if (precedence && ['bulk', 'junk', 'list', 'auto_reply'].includes(precedence))
    return `auto-reply: Precedence ${precedence}`;
  for (const name of ['x-autoreply', 'x-autorespond', 'x-auto-response-suppress'])
    if (header(mail, name)) return `auto-reply: ${name}`;
  if (/^(auto(matic)? reply|out of office|autosvar|abwesenheitsnotiz)\b/i.test(mail.subject ?? ''))
    return 'auto-reply: subject';
  return null;
}

/** In-Reply-To first, then References from the newest: the nearest mail of a known ticket wins. */
function threadIds(mail: ReceivedMail): string[] {
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

async function loadMessages(db: Db, ids: string[]): Promise<Map<string, ReceivedMail>> {
  const { rows } = (await db.execute(sql`
    select id, organization_id, mail_from, from_address, from_name, subject, message_id_header, in_reply_to,
           "references", body_text, details, auth
      from messages where id = any(${sql.param(ids)}::uuid[])`)) as { rows: ReceivedMail[] };
  return new Map(rows.map((r) => [r.id, r]));
}

async function isDeskAddress(db: Db, organizationId: string, address: string): Promise<boolean> {
  const { rows } = (await db.execute(sql`
    select 1 from helpdesk_desk_addresses where organization_id = ${organizationId} and address = ${address}`)) as Rows;
  return rows.length > 0;
}
