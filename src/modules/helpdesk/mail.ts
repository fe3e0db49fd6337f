// Mail the helpdesk sends on its own, queued as jobs in the transaction of the change that causes it (so
// it goes exactly when that change commits) and sent through the delivery pipeline from the desk's
// address: the acknowledgement of a new ticket, approval requests to approvers and the decision to the
// requester, the resolution notice, and mentions to agents. Each send carries an idempotency key, so a
// retried job never sends twice.
import type { Db } from '../../core/db.ts';
import { newId } from '../../core/ids.ts';
import type { OutboundService } from '../delivery/service.ts';
import type { Directory } from './directory.ts';
import type { HelpdeskMail } from './mail-queue.ts';
import * as store from './store.ts';
import { AUTOMATIC, type HelpdeskService, taggedSubject, threadingHeaders } from './service.ts';

/** Adds lines to the resolution mail (the reports module's satisfaction link). */
export type ResolutionExtra = (organizationId: string, ticketId: string) => Promise<string | null>;

export interface HelpdeskMailerOptions {
  db: Db;
  outbound: OutboundService;
  directory: Directory;
  helpdesk: () => HelpdeskService;
}

export class HelpdeskMailer {
  readonly #o: HelpdeskMailerOptions;
  readonly #resolutionExtras: ResolutionExtra[] = [];

  constructor(options: HelpdeskMailerOptions) {
    this.#o = options;
  }

  onResolution(extra: ResolutionExtra): void {
    this.#resolutionExtras.push(extra);
  }

  async send(mail: HelpdeskMail): Promise<void> {
    const helpdesk = this.#o.helpdesk();
    const org = mail.organization_id;
    const ticket = await store.ticketOf(this.#o.db, org, mail.ticket_id);
    if (!ticket) return; // deleted since: nothing to tell anyone
    const desk = await helpdesk.desk(org, ticket.deskId);
    const [requester] = await store.contactsByIds(this.#o.db, org, [ticket.requesterId]);
    const from = { address: desk.addresses[0]!.address, name: desk.name };
    const subject = taggedSubject(ticket.number, ticket.subject);
    // One send per thing told: each mention's comment, each approver, each decision, each resolution.
    const key = [
      'helpdesk',
      mail.kind,
      ticket.id,
      'user_id' in mail ? mail.user_id : '',
      'comment_id' in mail ? mail.comment_id : '',
      'approval_id' in mail ? mail.approval_id : '',
      mail.kind === 'resolution' ? (ticket.resolvedAt?.getTime() ?? '') : '',
    ].join(':');
    const send = async (to: string, subj: string, text: string, headers: Record<string, string>) => {
      const { result } = await this.#o.outbound.send(
        org,
        { from, to: [to], subject: subj, text, headers, tags: ['helpdesk', `helpdesk-${mail.kind}`] },
        key,
      );
      return { id: result.id, messageIdHeader: result.message_id.replace(/^<|>$/g, '') };
    };
    const signature = desk.signature ? `\n\n-- \n${desk.signature}` : '';

    switch (mail.kind) {
      case 'acknowledgement': {
        const thread = await helpdesk.threadHeaders(ticket.id);
        const sent = await send(
          requester!.email,
          `Re: ${subject}`,
          `We received your request and opened ticket ${subject}.\n` +
            'Reply to this mail to add to it; keep the number in the subject.' +
            signature,
          // RFC 3834: an automatic answer, never to be answered automatically in turn.
          {
            ...threadingHeaders(thread),
            'Auto-Submitted': 'auto-replied',
            'X-Auto-Response-Suppress': 'All',
          },
        );
        await this.#recordSystemComment(org, ticket.id, sent, 'Acknowledgement sent to the requester.');
        return;
      }
      case 'approval_request': {
        const agent = await this.#o.directory.agent(org, mail.user_id).catch(() => null);
        if (!agent) return; // no longer an agent
        const first = await store.firstComment(this.#o.db, ticket.id);
        const sent = await send(
          agent.email,
          `Approval needed: ${subject}`,
          `${requester!.email} asks for:\n\n${first?.body ?? ticket.subject}\n\n` +
            'Reply to this mail with APPROVE or REJECT on the first line; anything below is your comment.' +
            signature,
          {},
        );
        await this.#o.db.transaction((tx) =>
          store.recordTicketMessages(tx, [
            {
              organizationId: org,
              messageIdHeader: sent.messageIdHeader,
              ticketId: ticket.id,
              kind: 'approval',
              approverId: mail.user_id,
            },
          ]),
        );
        return;
      }
      case 'approval_decision': {
        const approval = await this.#o.directory.approval(mail.approval_id);
        if (!approval) return;
        const thread = await helpdesk.threadHeaders(ticket.id);
        const sent = await send(
          requester!.email,
          `Re: ${subject}`,
          `Your request was ${approval.decision}.${approval.comment ? `\n\n${approval.comment}` : ''}${signature}`,
          { ...threadingHeaders(thread), ...AUTOMATIC },
        );
        await this.#recordSystemComment(
          org,
          ticket.id,
          sent,
          `The requester was told: ${approval.decision}.`,
        );
        return;
      }
      case 'resolution': {
        const extras = (await Promise.all(this.#resolutionExtras.map((f) => f(org, ticket.id)))).filter(
          Boolean,
        );
        const thread = await helpdesk.threadHeaders(ticket.id);
        const sent = await send(
          requester!.email,
          `Re: ${subject}`,
          `Your request was resolved. Reply to this mail if anything is still open.${extras.length ? `\n\n${extras.join('\n\n')}` : ''}${signature}`,
          { ...threadingHeaders(thread), 'Auto-Submitted': 'auto-generated' },
        );
        await this.#recordSystemComment(org, ticket.id, sent, 'Resolution notice sent to the requester.');
        return;
      }
      case 'mention': {
        const agent = await this.#o.directory.agent(org, mail.user_id).catch(() => null);
        const [comment] = await store.commentsByIds(this.#o.db, org, ticket.id, [mail.comment_id]);
        if (!agent || !comment) return;
        await send(
          agent.email,
          `You were mentioned on ${subject}`,
          `${comment.body}\n\n(ticket ${ticket.id}, comment ${comment.id})`,
          { 'Auto-Submitted': 'auto-generated' },
        );
        return;
      }
    }
  }

  /** The mail the helpdesk sent, on the ticket as a public system comment (once, however often retried). */
  async #recordSystemComment(
    organizationId: string,
    ticketId: string,
    sent: { id: string; messageIdHeader: string },
    body: string,
  ): Promise<void> {
    await this.#o.db.transaction(async (tx) => {
      const known = await store.ticketByMessageIds(tx, organizationId, [sent.messageIdHeader]);
      if (known) return;
      await store.insertComment(tx, {
        id: newId(),
        organizationId,
        ticketId,
        visibility: 'public',
        authorType: 'system',
        body,
        messageId: sent.id,
        messageIdHeader: sent.messageIdHeader,
        attachments: [],
      });
      await store.recordTicketMessages(tx, [
        { organizationId, messageIdHeader: sent.messageIdHeader, ticketId },
      ]);
    });
  }
}
