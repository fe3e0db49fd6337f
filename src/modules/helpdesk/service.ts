// The helpdesk's rules: desks and their addresses, tickets (opened by mail, API, chat or a split), their
// comments (public replies go out as mail from the desk, threaded with the customer's), merge, split,
// bulk changes and approvals. Times come from the clock so SLA timers can run on simulated days.
import type { Clock } from '../../core/clock.ts';
import type { Db } from '../../core/db.ts';
import { conflict, forbidden, notFound, validationFailed } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { Jobs } from '../../core/jobs.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import { eventOf, type EventInput, type EventsService } from '../events/service.ts';
import type { OutboundService } from '../delivery/service.ts';
import type { MailboxesService } from '../mailboxes/service.ts';
import type { Directory } from './directory.ts';
import {
  type Actor,
  type TicketSnapshot,
  ticketApprovalDecided,
  ticketApprovalRequested,
  ticketCommented,
  ticketCreated,
  ticketMentioned,
  ticketMerged,
  ticketSplit,
  ticketUpdated,
} from './events.ts';
import { type HelpdeskMail, MAIL_QUEUE } from './mail-queue.ts';
import * as store from './store.ts';
import type {
  CategoryRow,
  CommentRow,
  ContactRow,
  CustomFieldDefinition,
  DeskAddressRow,
  DeskRow,
  helpdeskComments,
  helpdeskTickets,
  Priority,
  TicketRow,
  TicketSource,
  TicketStatus,
} from './tables.ts';

export interface HelpdeskOptions {
  db: Db;
  clock: Clock;
  events: EventsService;
  jobs: Jobs;
  outbound: OutboundService;
  mailboxes: MailboxesService;
  directory: Directory;
}

export interface DeskInput {
  name: string;
  addresses: string[];
  team_id?: string | null;
  default_priority?: Priority;
  custom_fields?: CustomFieldDefinition[];
  signature?: string | null;
  auto_reply?: boolean;
}

export interface NewTicket {
  desk_id: string;
  subject: string;
  requester: { email: string; name?: string | null };
  body: string;
  /** Whether the first comment is the customer's words (mail, chat) or an agent's note about them. */
  from_customer?: boolean;
  priority?: Priority;
  category_id?: string | null;
  department_id?: string | null;
  team_id?: string | null;
  assignee_id?: string | null;
  tags?: string[];
  custom_fields?: Record<string, unknown>;
  due_at?: string | null;
  source?: TicketSource;
}

export interface TicketChanges {
  subject?: string;
  status?: TicketStatus;
  priority?: Priority;
  category_id?: string | null;
  department_id?: string | null;
  customer_id?: string | null;
  team_id?: string | null;
  assignee_id?: string | null;
  tags?: string[];
  add_tags?: string[];
  remove_tags?: string[];
  custom_fields?: Record<string, unknown>;
  due_at?: string | null;
}

export interface NewComment {
  /**
   * The comment's id when the caller chose it: a second call with the same id returns the comment the
   * first one added and mails nothing (a retried job).
   */
  id?: string;
  body: string;
  visibility: 'public' | 'internal';
  attachments?: { filename: string; content: string; content_type?: string | null }[];
  /** Agents to tell; `@name@example.com` mentions in the body are found too. */
  mentions?: string[];
}

/** The stored mail a ticket's first comment came in as. */
export interface MailOrigin {
  /** The mail asked not to be answered automatically (X-Auto-Response-Suppress): no acknowledgement. */
  suppressAutoReply?: boolean;
  messageId: string;
  messageIdHeader: string | null;
  attachments: CommentRow['attachments'];
}

interface TicketDraft {
  row: typeof helpdeskTickets.$inferInsert & { id: string };
  comment: typeof helpdeskComments.$inferInsert & { id: string };
  searchText: string;
  requester: ContactRow;
  category: CategoryRow | undefined;
  desk: DeskRow;
  fromCustomer: boolean;
  source: TicketSource | undefined;
  suppressAutoReply: boolean;
}

/** The ticket's mail thread as the requester sees it: what a reply must name to continue it. */
interface ThreadHeaders {
  inReplyTo: string | null;
  references: string[];
}

const TAG = /\[#(\d{1,9})\]/;

export const subjectTag = (number: number) => `[#${number}]`;

/** A subject carrying the ticket tag once, before the customer's own words. */
export function taggedSubject(number: number, subject: string): string {
  const bare = subject.replace(TAG, '').replace(/\s+/g, ' ').trim();
  return `${subjectTag(number)} ${bare || '(no subject)'}`;
}

export function tagNumberOf(subject: string | null): number | null {
  const match = subject ? TAG.exec(subject) : null;
  return match ? Number(match[1]) : null;
}

/** Statuses that stop the clock on the customer's side, and statuses a customer's mail re-opens. */
const REOPENED_BY_CUSTOMER = new Set<TicketStatus>(['pending', 'resolved']);

export class HelpdeskService {
  readonly #o: HelpdeskOptions;

  constructor(options: HelpdeskOptions) {
    this.#o = options;
  }

  get directory(): Directory {
    return this.#o.directory;
  }

  // ---- desks -------------------------------------------------------------------------------------------

  async createDesk(organizationId: string, input: DeskInput): Promise<DeskView> {
    const id = newId();
    await this.#o.db.transaction(async (tx) => {
      await this.#checkDeskRefs(tx, organizationId, input);
      const inserted = await this.#o.directory.insertDesk(tx, {
        id,
        organizationId,
        name: input.name,
        teamId: input.team_id ?? null,
        defaultPriority: input.default_priority ?? 'normal',
        customFields: validFieldDefinitions(input.custom_fields ?? []),
        signature: input.signature ?? null,
        autoReply: input.auto_reply ?? true,
      });
      if (!inserted) throw conflict(`a desk named "${input.name}" exists`);
      await this.#bindAddresses(tx, organizationId, id, input.addresses);
    });
    return this.desk(organizationId, id);
  }

  async updateDesk(organizationId: string, id: string, input: Partial<DeskInput>): Promise<DeskView> {
    await this.#o.db.transaction(async (tx) => {
      const desk = await store.deskOf(tx, organizationId, id);
      if (!desk) throw notFound('Desk');
      await this.#checkDeskRefs(tx, organizationId, input);
      const changed = await this.#o.directory.updateDesk(tx, id, {
        ...(input.name !== undefined && { name: input.name }),
        ...(input.team_id !== undefined && { teamId: input.team_id }),
        ...(input.default_priority !== undefined && { defaultPriority: input.default_priority }),
        ...(input.custom_fields !== undefined && {
          customFields: validFieldDefinitions(input.custom_fields),
        }),
        ...(input.signature !== undefined && { signature: input.signature }),
        ...(input.auto_reply !== undefined && { autoReply: input.auto_reply }),
      });
      if (!changed) throw conflict(`a desk named "${input.name}" exists`);
      if (input.addresses) {
        await this.#o.directory.unbindAddresses(tx, id);
        await this.#bindAddresses(tx, organizationId, id, input.addresses);
      }
    });
    return this.desk(organizationId, id);
  }

  async #checkDeskRefs(tx: Db, organizationId: string, input: Partial<DeskInput>): Promise<void> {
    if (input.team_id) await this.#o.directory.team(organizationId, input.team_id, tx, 'team_id');
  }

  async #bindAddresses(tx: Db, organizationId: string, deskId: string, addresses: string[]): Promise<void> {
    const wanted = [...new Set(addresses.map((a) => a.trim().toLowerCase()))];
    if (!wanted.length) throw validationFailed('addresses', 'a desk needs at least one address');
    const owners = await this.#o.mailboxes.addressOwners(tx, organizationId, wanted);
    const missing = wanted.filter((a) => !owners.some((o) => o.address === a));
    if (missing.length)
      throw validationFailed(
        'addresses',
        `not a mailbox or alias of this organisation: ${missing.join(', ')}`,
      );
    const bound = await this.#o.directory.bindAddresses(
      tx,
      wanted.map((address, position) => {
        const owner = owners.find((o) => o.address === address)!;
        return {
          organizationId,
          address,
          deskId,
          mailboxId: owner.mailbox_id,
          aliasId: owner.mailbox_id ? null : owner.alias_id,
          position,
        };
      }),
    );
    if (bound < wanted.length) throw conflict('an address is already bound to another desk');
  }

  /** A desk; pass `db` to read inside an open transaction. */
  async desk(organizationId: string, id: string, db: Db = this.#o.db): Promise<DeskView> {
    const desk = await store.deskOf(db, organizationId, id);
    if (!desk) throw notFound('Desk');
    return deskView(desk, await store.deskAddresses(db, organizationId, [id]));
  }

  async listDesks(organizationId: string, page: PageRequest) {
    const { rows, total } = await this.#o.directory.listDesks(organizationId, page);
    const addresses = await store.deskAddresses(
      this.#o.db,
      organizationId,
      rows.map((d) => d.id),
    );
    return toPage(
      rows.map((d) =>
        deskView(
          d,
          addresses.filter((a) => a.deskId === d.id),
        ),
      ),
      total,
      page,
    );
  }

  async deleteDesk(organizationId: string, id: string): Promise<void> {
    const deleted = await this.#o.directory.deleteDesk(organizationId, id);
    if (deleted === 'missing') throw notFound('Desk');
    if (deleted === 'in_use')
      throw conflict('the desk has tickets: close them or move them to another desk first');
  }

  // ---- tickets -----------------------------------------------------------------------------------------

  async createTicket(organizationId: string, input: NewTicket, actor: Actor): Promise<TicketRow> {
    return this.#o.db.transaction((tx) => this.createTicketIn(tx, organizationId, input, actor));
  }

  /** Opens a ticket inside `tx`. */
  async createTicketIn(
    tx: Db,
    organizationId: string,
    input: NewTicket,
    actor: Actor,
    mail?: MailOrigin,
  ): Promise<TicketRow> {
    const [ticket] = await this.createTicketsIn(tx, organizationId, [{ input, mail }], actor);
    return ticket!;
  }

  /**
   * Opens tickets inside `tx` with a fixed number of statements however many there are (the mail
   * intake opens a batch at once): requesters, numbers, tickets, first comments, Message-IDs, events and
   * queued mail are each written in one statement. Only team assignment goes ticket by ticket.
   */
  async createTicketsIn(
    tx: Db,
    organizationId: string,
    items: { input: NewTicket; mail?: MailOrigin }[],
    actor: Actor,
  ): Promise<TicketRow[]> {
    if (!items.length) return [];
    const desks = await store.desksOf(tx, organizationId, [...new Set(items.map((i) => i.input.desk_id))]);
    const categories = new Map<string, Awaited<ReturnType<Directory['checkRefs']>>['category']>();
    for (const { input } of items) {
      if (!desks.has(input.desk_id)) throw validationFailed('desk_id', 'no such desk');
      const refs = await this.#o.directory.checkRefs(tx, organizationId, input);
      if (refs.category) categories.set(refs.category.id, refs.category);
    }
    const requesters = await this.contacts(
      tx,
      organizationId,
      items.map((i) => i.input.requester),
    );
    const firstNumber = await store.reserveTicketNumbers(tx, organizationId, items.length);
    const now = this.#o.clock.now();
    const tickets: TicketDraft[] = [];
    for (const [n, { input, mail }] of items.entries()) {
      const desk = desks.get(input.desk_id)!;
      const category = input.category_id ? categories.get(input.category_id) : undefined;
      const requester = requesters.get(input.requester.email.trim().toLowerCase())!;
      const teamId = input.team_id ?? category?.teamId ?? desk.teamId;
      const status: TicketStatus = category?.needsApproval ? 'approval-pending' : 'open';
      const fromCustomer = input.from_customer ?? true;
      const row = {
        id: newId(),
        organizationId,
        number: firstNumber + n,
        deskId: desk.id,
        subject: input.subject.trim() || '(no subject)',
        requesterId: requester.id,
        customerId: requester.customerId,
        categoryId: input.category_id ?? null,
        departmentId: input.department_id ?? null,
        teamId,
        assigneeId:
          input.assignee_id ??
          (teamId && status === 'open'
            ? await this.#o.directory.nextAssignee(tx, organizationId, teamId)
            : null),
        priority: input.priority ?? desk.defaultPriority,
        status,
        tags: normalTags(input.tags ?? []),
        customFields: validCustomFields(desk.customFields, input.custom_fields ?? {}, true),
        dueAt: input.due_at ? new Date(input.due_at) : null,
        source: input.source ?? 'api',
        comments: 1,
        lastCustomerAt: fromCustomer ? now : null,
        createdAt: now,
        updatedAt: now,
      } satisfies typeof helpdeskTickets.$inferInsert;
      const comment = {
        id: newId(),
        organizationId,
        ticketId: row.id,
        visibility: fromCustomer ? ('public' as const) : ('internal' as const),
        authorType: fromCustomer ? ('customer' as const) : ('agent' as const),
        authorContactId: fromCustomer ? requester.id : null,
        authorUserId: !fromCustomer && actor.type === 'user' ? actor.id : null,
        body: input.body,
        messageId: mail?.messageId ?? null,
        messageIdHeader: mail?.messageIdHeader ?? null,
        attachments: mail?.attachments ?? [],
        createdAt: now,
      };
      const searchText = `${input.subject} ${requester.email} ${requester.name ?? ''} ${input.body.slice(0, 20_000)}`;
      tickets.push({
        row,
        comment,
        searchText,
        requester,
        category,
        desk,
        fromCustomer,
        source: input.source,
        suppressAutoReply: mail?.suppressAutoReply ?? false,
      });
    }
    const inserted = await store.insertTickets(
      tx,
      tickets.map((d) => ({ row: d.row, searchText: d.searchText })),
    );
    await store.insertComments(
      tx,
      tickets.map((d) => d.comment),
    );
    await store.recordTicketMessages(
      tx,
      tickets
        .filter((d) => d.comment.messageIdHeader)
        .map((d) => ({ organizationId, messageIdHeader: d.comment.messageIdHeader!, ticketId: d.row.id })),
    );
    const events: EventInput[] = [];
    const mails: HelpdeskMail[] = [];
    for (const [n, d] of tickets.entries()) {
      const snapshot = snapshotOf(inserted[n]!, d.requester);
      events.push(eventOf(ticketCreated, organizationId, { ticket: snapshot, actor }));
      if (d.category?.needsApproval) {
        events.push(
          eventOf(ticketApprovalRequested, organizationId, {
            ticket: snapshot,
            actor,
            approver_ids: d.category.approverIds,
          }),
        );
        for (const approverId of d.category.approverIds)
          mails.push({
            kind: 'approval_request',
            organization_id: organizationId,
            ticket_id: d.row.id,
            user_id: approverId,
          });
      }
      if (d.fromCustomer && d.desk.autoReply && d.source === 'mail' && !d.suppressAutoReply)
        mails.push({
          kind: 'acknowledgement',
          organization_id: organizationId,
          ticket_id: d.row.id,
          comment_id: d.comment.id,
        });
    }
    await this.#o.events.emitMany(tx, events);
    await this.#queueMail(tx, mails);
    return inserted;
  }

  /** Requesters by address (lower case), each created on first sight, in one statement. */
  async contacts(
    tx: Db,
    organizationId: string,
    people: { email: string; name?: string | null }[],
  ): Promise<Map<string, ContactRow>> {
    const wanted = new Map<string, string | null>();
    for (const p of people) {
      const address = p.email.trim().toLowerCase();
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(address))
        throw validationFailed('requester.email', 'not an address');
      if (!wanted.get(address)) wanted.set(address, p.name?.trim() || null);
    }
    const rows = await store.contactsFor(
      tx,
      organizationId,
      [...wanted].map(([email, name]) => ({ id: newId(), email, name })),
    );
    return new Map(rows.map((r) => [r.email, r]));
  }

  async contact(tx: Db, organizationId: string, email: string, name: string | null): Promise<ContactRow> {
    const found = await this.contacts(tx, organizationId, [{ email, name }]);
    return found.get(email.trim().toLowerCase())!;
  }

  /** A ticket; pass `db` to read inside an open transaction. */
  async ticket(organizationId: string, id: string, db: Db = this.#o.db): Promise<TicketRow> {
    const row = await store.ticketOf(db, organizationId, id);
    if (!row) throw notFound('Ticket');
    return row;
  }

  async ticketByNumber(organizationId: string, number: number): Promise<TicketRow> {
    const row = await store.ticketByNumber(this.#o.db, organizationId, number);
    if (!row) throw notFound('Ticket');
    return row;
  }

  /** Tickets as the events describe them (the requester's address included). */
  async snapshots(organizationId: string, tickets: TicketRow[]): Promise<TicketSnapshot[]> {
    const contacts = await store.contactsByIds(this.#o.db, organizationId, [
      ...new Set(tickets.map((t) => t.requesterId)),
    ]);
    return tickets.map((t) => snapshotOf(t, contacts.find((c) => c.id === t.requesterId)!));
  }

  async listTickets(
    organizationId: string,
    filter: store.TicketFilter,
    sort: { by: store.TicketSort; order: 'asc' | 'desc' },
    page: PageRequest,
  ) {
    const { rows, total, exact } = await store.listTickets(this.#o.db, organizationId, filter, sort, page);
    return { ...toPage(rows, total, page), total_exact: exact };
  }

  async updateTicket(
    organizationId: string,
    id: string,
    changes: TicketChanges,
    actor: Actor,
  ): Promise<TicketRow> {
    return this.#o.db.transaction(async (tx) => {
      const [ticket] = await this.updateTicketsIn(tx, organizationId, [id], changes, actor);
      if (!ticket) throw notFound('Ticket');
      return ticket;
    });
  }

  async bulkUpdate(organizationId: string, ids: string[], changes: TicketChanges, actor: Actor) {
    return this.#o.db.transaction(async (tx) => {
      const updated = await this.updateTicketsIn(tx, organizationId, ids, changes, actor);
      if (updated.length < new Set(ids).size) throw notFound('Ticket');
      return updated;
    });
  }

  /** Applies the same changes to several tickets (locked in id order), one ticket.updated event each. */
  async updateTicketsIn(
    tx: Db,
    organizationId: string,
    ids: string[],
    changes: TicketChanges,
    actor: Actor,
  ): Promise<TicketRow[]> {
    const tickets = await store.ticketsByIds(tx, organizationId, [...new Set(ids)], true);
    if (!tickets.length) return [];
    await this.#o.directory.checkRefs(tx, organizationId, changes);
    const now = this.#o.clock.now();
    const events: EventInput[] = [];
    const mails: HelpdeskMail[] = [];
    const updated: TicketRow[] = [];
    const contacts = await store.contactsByIds(tx, organizationId, [
      ...new Set(tickets.map((t) => t.requesterId)),
    ]);
    for (const ticket of tickets) {
      const desk = (await store.deskOf(tx, organizationId, ticket.deskId))!;
      const set = changeSet(ticket, changes, desk.customFields, now);
      const fields = Object.keys(set.diff);
      if (!fields.length) {
        updated.push(ticket);
        continue;
      }
      if (set.row.status === 'approved' || set.row.status === 'rejected')
        throw validationFailed('status', 'approval decisions are made through /approval');
      // Waiting for approval: only the approvers move it on (or it is withdrawn by closing it).
      if (
        ticket.status === 'approval-pending' &&
        ((set.row.status !== undefined && set.row.status !== 'closed') || set.row.categoryId !== undefined)
      )
        throw conflict('the ticket waits for approval: its approvers decide through /approval');
      const row = await store.updateTicket(tx, ticket.id, { ...set.row, updatedAt: now });
      const requester = contacts.find((c) => c.id === row.requesterId)!;
      events.push(
        eventOf(ticketUpdated, organizationId, {
          ticket: snapshotOf(row, requester),
          actor,
          changes: set.diff,
        }),
      );
      if (set.row.status === 'resolved')
        mails.push({ kind: 'resolution', organization_id: organizationId, ticket_id: row.id });
      updated.push(row);
    }
    await this.#o.events.emitMany(tx, events);
    await this.#queueMail(tx, mails);
    return updated;
  }

  // ---- comments ----------------------------------------------------------------------------------------

  async comments(organizationId: string, ticketId: string, page: PageRequest) {
    const ticket = await this.ticket(organizationId, ticketId);
    const rows = await store.commentsOf(this.#o.db, organizationId, ticketId, page);
    return toPage(rows, ticket.comments, page);
  }

  /** The ticket a customer's message joins, locked: a merged one forwards to the ticket it went into. */
  async liveTicketIn(tx: Db, organizationId: string, id: string): Promise<TicketRow | null> {
    let ticket = await store.ticketOf(tx, organizationId, id, true);
    for (let hops = 0; ticket?.mergedIntoId && hops < 10; hops++)
      ticket = await store.ticketOf(tx, organizationId, ticket.mergedIntoId, true);
    return ticket ?? null;
  }

  /**
   * A customer's message on their ticket (a reply by mail, a chat message after the hand-over): a public
   * comment that re-opens a ticket waiting on them or resolved. In the caller's transaction.
   */
  async customerCommentIn(
    tx: Db,
    ticket: TicketRow,
    message: {
      email: string;
      name: string | null;
      body: string;
      attachments?: CommentRow['attachments'];
      /** The mail it came in, if it came by mail. */
      messageId?: string | null;
      messageIdHeader?: string | null;
    },
    actor: Actor,
  ): Promise<CommentRow> {
    const org = ticket.organizationId;
    const contact = await this.contact(tx, org, message.email, message.name);
    const now = this.#o.clock.now();
    const comment = await store.insertComment(tx, {
      id: newId(),
      organizationId: org,
      ticketId: ticket.id,
      visibility: 'public',
      authorType: 'customer',
      authorContactId: contact.id,
      body: message.body,
      messageId: message.messageId ?? null,
      messageIdHeader: message.messageIdHeader ?? null,
      attachments: message.attachments ?? [],
      createdAt: now,
    });
    await store.extendSearch(tx, ticket.id, message.body);
    if (message.messageIdHeader)
      await store.recordTicketMessages(tx, [
        { organizationId: org, messageIdHeader: message.messageIdHeader, ticketId: ticket.id },
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
    return comment;
  }

  /**
   * An agent's comment. A public one is sent to the requester from the desk's address, threaded with
   * the conversation, before anything is written: a send the pipeline refuses (an unverified or paused
   * sender) leaves no comment, no event and no met SLA target behind.
   */
  async addComment(
    organizationId: string,
    ticketId: string,
    input: NewComment,
    actor: Actor,
  ): Promise<CommentRow> {
    if (input.id) {
      const [added] = await store.commentsByIds(this.#o.db, organizationId, ticketId, [input.id]);
      if (added) return added;
    }
    const commentId = input.id ?? newId();
    const sent =
      input.visibility === 'public'
        ? await this.#sendReply(organizationId, ticketId, commentId, input, actor)
        : null;
    return this.#o.db.transaction(async (tx) => {
      const ticket = await store.ticketOf(tx, organizationId, ticketId, true);
      if (!ticket) throw notFound('Ticket');
      if (ticket.mergedIntoId) throw conflict('the ticket was merged into another; comment there');
      const mentions = await this.#o.directory.mentionedAgents(
        tx,
        organizationId,
        input.body,
        input.mentions ?? [],
      );
      const now = this.#o.clock.now();
      const comment = await store.insertComment(tx, {
        id: commentId,
        organizationId,
        ticketId,
        visibility: input.visibility,
        authorType: actor.type === 'automation' || actor.type === 'system' ? 'system' : 'agent',
        authorUserId: actor.type === 'user' ? actor.id : null,
        body: input.body,
        messageId: sent?.id ?? null,
        messageIdHeader: sent?.messageIdHeader ?? null,
        attachments: (input.attachments ?? []).map((a) => ({
          filename: a.filename,
          content_type: a.content_type ?? 'application/octet-stream',
          size: Buffer.byteLength(a.content, 'base64'),
        })),
        mentions,
        createdAt: now,
      });
      if (sent)
        await store.recordTicketMessages(tx, [
          { organizationId, messageIdHeader: sent.messageIdHeader, ticketId },
        ]);
      await store.extendSearch(tx, ticketId, input.body);
      const changes: Partial<TicketRow> = sent
        ? {
            lastAgentAt: now,
            firstResponseAt: ticket.firstResponseAt ?? now,
            // An answered ticket that was waiting for the first look is being worked on.
            ...(ticket.status === 'open' && { status: 'in-progress' as const }),
          }
        : {};
      const row = await store.updateTicket(tx, ticketId, { ...changes, updatedAt: now });
      const [requester] = await store.contactsByIds(tx, organizationId, [row.requesterId]);
      const snapshot = snapshotOf(row, requester!);
      const events: EventInput[] = [
        eventOf(ticketCommented, organizationId, { ticket: snapshot, actor, comment: commentEvent(comment) }),
      ];
      if (changes.status)
        events.push(
          eventOf(ticketUpdated, organizationId, {
            ticket: snapshot,
            actor,
            changes: { status: [ticket.status, changes.status] },
          }),
        );
      if (mentions.length) {
        events.push(
          eventOf(ticketMentioned, organizationId, {
            ticket: snapshot,
            actor,
            comment_id: comment.id,
            user_ids: mentions,
          }),
        );
        await this.#queueMail(
          tx,
          mentions.map((userId) => ({
            kind: 'mention' as const,
            organization_id: organizationId,
            ticket_id: ticketId,
            comment_id: comment.id,
            user_id: userId,
          })),
        );
      }
      await this.#o.events.emitMany(tx, events);
      return comment;
    });
  }

  /**
   * Sends an agent's public comment to the requester (idempotently, under the comment's id). Mail that
   * automation or the system writes is marked automatic (RFC 3834), so auto-responders do not answer it.
   */
  async #sendReply(
    organizationId: string,
    ticketId: string,
    commentId: string,
    input: NewComment,
    actor: Actor,
  ): Promise<{ id: string; messageIdHeader: string }> {
    const ticket = await this.ticket(organizationId, ticketId);
    if (ticket.mergedIntoId) throw conflict('the ticket was merged into another; comment there');
    // Checked before the mail goes: a comment naming someone who is not an agent is refused unsent.
    await this.#o.directory.mentionedAgents(this.#o.db, organizationId, input.body, input.mentions ?? []);
    const [requester] = await store.contactsByIds(this.#o.db, organizationId, [ticket.requesterId]);
    const desk = await this.desk(organizationId, ticket.deskId);
    const thread = await this.threadHeaders(ticket.id);
    const automatic = actor.type === 'automation' || actor.type === 'system';
    const { result } = await this.#o.outbound.send(
      organizationId,
      {
        from: { address: desk.addresses[0]!.address, name: desk.name },
        to: [requester!.email],
        subject: `Re: ${taggedSubject(ticket.number, ticket.subject)}`,
        text: desk.signature ? `${input.body}\n\n-- \n${desk.signature}` : input.body,
        attachments: input.attachments ?? null,
        headers: { ...threadingHeaders(thread), ...(automatic && AUTOMATIC) },
        tags: ['helpdesk'],
      },
      `helpdesk:comment:${commentId}`,
    );
    return { id: result.id, messageIdHeader: bareId(result.message_id) };
  }

  /** The newest mail of the ticket's conversation and every Message-ID before it, oldest first. */
  async threadHeaders(ticketId: string): Promise<ThreadHeaders> {
    const ids = await this.#o.directory.conversationIds(ticketId);
    return { inReplyTo: ids.at(-1) ?? null, references: ids.slice(-20) };
  }

  // ---- merge and split ---------------------------------------------------------------------------------

  async merge(organizationId: string, id: string, intoId: string, actor: Actor): Promise<TicketRow> {
    if (id === intoId) throw validationFailed('into_id', 'a ticket cannot be merged into itself');
    return this.#o.db.transaction(async (tx) => {
      const [a, b] = await store.ticketsByIds(tx, organizationId, [id, intoId], true);
      const source = [a, b].find((t) => t?.id === id);
      const target = [a, b].find((t) => t?.id === intoId);
      if (!source) throw notFound('Ticket');
      if (!target) throw validationFailed('into_id', 'no such ticket');
      if (source.mergedIntoId) throw conflict('the ticket was already merged');
      if (target.mergedIntoId) throw validationFailed('into_id', 'that ticket was merged into another');
      const moved = await store.moveComments(tx, source.id, target.id, null);
      for (const m of moved) await store.extendSearch(tx, target.id, m.body);
      const now = this.#o.clock.now();
      const closed = await store.updateTicket(tx, source.id, {
        status: 'closed',
        closedAt: now,
        mergedIntoId: target.id,
        updatedAt: now,
      });
      const into = await store.updateTicket(tx, target.id, {
        tags: normalTags([...target.tags, ...source.tags]),
        updatedAt: now,
      });
      const contacts = await store.contactsByIds(tx, organizationId, [closed.requesterId, into.requesterId]);
      const snap = (t: TicketRow) => snapshotOf(t, contacts.find((c) => c.id === t.requesterId)!);
      await this.#o.events.emitMany(tx, [
        eventOf(ticketMerged, organizationId, { ticket: snap(closed), actor, into: snap(into) }),
      ]);
      return into;
    });
  }

  async split(organizationId: string, id: string, commentIds: string[], actor: Actor): Promise<TicketRow> {
    return this.#o.db.transaction(async (tx) => {
      const source = await store.ticketOf(tx, organizationId, id, true);
      if (!source) throw notFound('Ticket');
      const comments = await store.commentsByIds(tx, organizationId, id, [...new Set(commentIds)]);
      if (comments.length !== new Set(commentIds).size)
        throw validationFailed('comment_ids', 'each must be a comment of this ticket');
      if (comments.length >= source.comments)
        throw validationFailed('comment_ids', 'at least one comment must stay on the ticket');
      const first = comments.sort((x, y) => x.createdAt.getTime() - y.createdAt.getTime())[0]!;
      const now = this.#o.clock.now();
      const [requester] = await store.contactsByIds(tx, organizationId, [source.requesterId]);
      const created = await store.insertTicket(
        tx,
        {
          id: newId(),
          organizationId,
          number: await store.nextTicketNumber(tx, organizationId),
          deskId: source.deskId,
          subject: source.subject,
          requesterId: source.requesterId,
          customerId: source.customerId,
          categoryId: source.categoryId,
          departmentId: source.departmentId,
          teamId: source.teamId,
          assigneeId: source.assigneeId,
          priority: source.priority,
          status: 'open',
          tags: source.tags,
          customFields: source.customFields,
          source: 'split',
          lastCustomerAt: first.authorType === 'customer' ? first.createdAt : null,
          createdAt: now,
          updatedAt: now,
        },
        `${source.subject} ${requester!.email} ${comments
          .map((c) => c.body)
          .join(' ')
          .slice(0, 20_000)}`,
      );
      await store.moveComments(
        tx,
        source.id,
        created.id,
        comments.map((c) => c.id),
      );
      const after = (await store.ticketOf(tx, organizationId, created.id))!;
      const snapshot = snapshotOf(after, requester!);
      await this.#o.events.emitMany(tx, [
        eventOf(ticketCreated, organizationId, { ticket: snapshot, actor }),
        eventOf(ticketSplit, organizationId, {
          ticket: snapshotOf(source, requester!),
          actor,
          new_ticket: snapshot,
        }),
      ]);
      return after;
    });
  }

  // ---- approvals ---------------------------------------------------------------------------------------

  async decide(
    organizationId: string,
    ticketId: string,
    approverId: string,
    decision: 'approved' | 'rejected',
    comment: string | null,
    via: 'api' | 'mail',
    actor: Actor,
  ) {
    return this.#o.db.transaction((tx) =>
      this.decideIn(tx, organizationId, ticketId, approverId, decision, comment, via, actor),
    );
  }

  async decideIn(
    tx: Db,
    organizationId: string,
    ticketId: string,
    approverId: string,
    decision: 'approved' | 'rejected',
    comment: string | null,
    via: 'api' | 'mail',
    actor: Actor,
  ) {
    {
      const ticket = await store.ticketOf(tx, organizationId, ticketId, true);
      if (!ticket) throw notFound('Ticket');
      if (ticket.status !== 'approval-pending')
        throw conflict(`the ticket is ${ticket.status}, not approval-pending`);
      const category = ticket.categoryId
        ? await this.#o.directory.category(organizationId, ticket.categoryId, tx)
        : null;
      if (!category?.approverIds.includes(approverId))
        throw forbidden('you are not an approver of this ticket');
      const approval = await this.#o.directory.insertApproval(tx, {
        id: newId(),
        organizationId,
        ticketId,
        approverId,
        decision,
        comment,
        via,
        createdAt: this.#o.clock.now(),
      });
      const now = this.#o.clock.now();
      const row = await store.updateTicket(tx, ticketId, { status: decision, updatedAt: now });
      const note = await store.insertComment(tx, {
        id: newId(),
        organizationId,
        ticketId,
        visibility: 'internal',
        authorType: 'agent',
        authorUserId: approverId,
        body: `${decision === 'approved' ? 'Approved' : 'Rejected'}${comment ? `: ${comment}` : ''}`,
        attachments: [],
        createdAt: now,
      });
      const [requester] = await store.contactsByIds(tx, organizationId, [row.requesterId]);
      const snapshot = snapshotOf(row, requester!);
      await this.#o.events.emitMany(tx, [
        eventOf(ticketApprovalDecided, organizationId, {
          ticket: snapshot,
          actor,
          approval: {
            id: approval.id,
            approver_id: approverId,
            decision,
            comment,
            via,
          },
        }),
        eventOf(ticketUpdated, organizationId, {
          ticket: snapshot,
          actor,
          changes: { status: [ticket.status, decision] },
        }),
        eventOf(ticketCommented, organizationId, { ticket: snapshot, actor, comment: commentEvent(note) }),
      ]);
      await this.#queueMail(tx, [
        {
          kind: 'approval_decision',
          organization_id: organizationId,
          ticket_id: ticketId,
          approval_id: approval.id,
        },
      ]);
      return { ticket: row, approval };
    }
  }

  async approvals(organizationId: string, ticketId: string) {
    await this.ticket(organizationId, ticketId);
    return this.#o.directory.approvalsOf(organizationId, ticketId);
  }

  async #queueMail(tx: Db, mails: HelpdeskMail[]): Promise<void> {
    if (mails.length) await this.#o.jobs.sendMany(MAIL_QUEUE, mails, { tx });
  }

  /** Desks whose address a reply from the helpdesk goes out from (for the intake's loop check). */
  deskAddressOf(desk: DeskView): string {
    return desk.addresses[0]!.address;
  }
}

// ---- shapes ------------------------------------------------------------------------------------------------

export interface DeskView extends DeskRow {
  addresses: { address: string; mailbox_id: string | null; alias_id: string | null }[];
}

function deskView(desk: DeskRow, addresses: DeskAddressRow[]): DeskView {
  return {
    ...desk,
    addresses: addresses.map((a) => ({ address: a.address, mailbox_id: a.mailboxId, alias_id: a.aliasId })),
  };
}

export function snapshotOf(t: TicketRow, requester: ContactRow): TicketSnapshot {
  return {
    id: t.id,
    number: t.number,
    desk_id: t.deskId,
    subject: t.subject,
    status: t.status,
    priority: t.priority,
    requester_id: t.requesterId,
    requester_email: requester.email,
    customer_id: t.customerId,
    category_id: t.categoryId,
    department_id: t.departmentId,
    team_id: t.teamId,
    assignee_id: t.assigneeId,
    tags: t.tags,
    custom_fields: t.customFields,
    due_at: t.dueAt?.toISOString() ?? null,
    source: t.source,
    first_response_at: t.firstResponseAt?.toISOString() ?? null,
    resolved_at: t.resolvedAt?.toISOString() ?? null,
    closed_at: t.closedAt?.toISOString() ?? null,
    created_at: t.createdAt.toISOString(),
    updated_at: t.updatedAt.toISOString(),
  };
}

export function commentEvent(c: CommentRow) {
  return {
    id: c.id,
    visibility: c.visibility,
    author_type: c.authorType,
    author_user_id: c.authorUserId,
    body: c.body.slice(0, 2000),
  };
}

const bareId = (id: string) => id.replace(/^<|>$/g, '');

/** RFC 3834: an automatic answer, never to be answered automatically in turn. */
export const AUTOMATIC = { 'Auto-Submitted': 'auto-replied', 'X-Auto-Response-Suppress': 'All' };

export function threadingHeaders(thread: ThreadHeaders): Record<string, string> {
  if (!thread.inReplyTo) return {};
  return {
    'In-Reply-To': `<${thread.inReplyTo}>`,
    References: thread.references.map((r) => `<${r}>`).join(' '),
  };
}

export function normalTags(tags: string[]): string[] {
  const out = [...new Set(tags.map((t) => t.trim().toLowerCase()).filter(Boolean))];
  for (const tag of out)
    if (tag.length > 64) throw validationFailed('tags', 'a tag is at most 64 characters');
  return out.sort();
}

const FIELD_KEY = /^[a-z][a-z0-9_]{0,63}$/;

function validFieldDefinitions(defs: CustomFieldDefinition[]): CustomFieldDefinition[] {
  const keys = new Set<string>();
  for (const d of defs) {
    if (!FIELD_KEY.test(d.key)) throw validationFailed('custom_fields', `"${d.key}" is not a valid key`);
    if (keys.has(d.key)) throw validationFailed('custom_fields', `"${d.key}" is defined twice`);
    if (d.type === 'select' && !d.options?.length)
      throw validationFailed('custom_fields', `"${d.key}" is a select and needs options`);
    keys.add(d.key);
  }
  return defs;
}

/** Checks values against the desk's definitions; on creation, required fields must be there. */
export function validCustomFields(
  defs: CustomFieldDefinition[],
  values: Record<string, unknown>,
  creating: boolean,
): Record<string, unknown> {
  for (const [key, value] of Object.entries(values)) {
    const def = defs.find((d) => d.key === key);
    if (!def) throw validationFailed(`custom_fields.${key}`, 'the desk defines no such field');
    if (value === null) continue;
    const ok =
      def.type === 'text'
        ? typeof value === 'string' && value.length <= 10_000
        : def.type === 'number'
          ? typeof value === 'number' && Number.isFinite(value)
          : def.type === 'boolean'
            ? typeof value === 'boolean'
            : def.type === 'date'
              ? typeof value === 'string' && !Number.isNaN(Date.parse(value))
              : typeof value === 'string' && (def.options ?? []).includes(value);
    if (!ok)
      throw validationFailed(
        `custom_fields.${key}`,
        `must be a ${def.type}${def.options ? ` (${def.options.join(', ')})` : ''}`,
      );
  }
  if (creating)
    for (const def of defs)
      if (def.required && (values[def.key] === undefined || values[def.key] === null))
        throw validationFailed(`custom_fields.${def.key}`, 'is required');
  return values;
}

/** What changes on a ticket, as row fields and as [before, after] per API field. */
function changeSet(ticket: TicketRow, changes: TicketChanges, defs: CustomFieldDefinition[], now: Date) {
  const row: Partial<TicketRow> = {};
  const diff: Record<string, [unknown, unknown]> = {};
  const put = <K extends keyof TicketRow>(field: string, key: K, value: TicketRow[K]) => {
    const before = ticket[key];
    const same =
      Array.isArray(before) || (before && typeof before === 'object' && !(before instanceof Date))
        ? JSON.stringify(before) === JSON.stringify(value)
        : before instanceof Date || value instanceof Date
          ? (before as Date | null)?.getTime() === (value as Date | null)?.getTime()
          : before === value;
    if (same) return;
    row[key] = value;
    diff[field] = [
      before instanceof Date ? before.toISOString() : before,
      value instanceof Date ? value.toISOString() : value,
    ];
  };
  if (changes.subject !== undefined) put('subject', 'subject', changes.subject.trim() || ticket.subject);
  if (changes.priority !== undefined) put('priority', 'priority', changes.priority);
  if (changes.category_id !== undefined) put('category_id', 'categoryId', changes.category_id);
  if (changes.department_id !== undefined) put('department_id', 'departmentId', changes.department_id);
  if (changes.customer_id !== undefined) put('customer_id', 'customerId', changes.customer_id);
  if (changes.team_id !== undefined) put('team_id', 'teamId', changes.team_id);
  if (changes.assignee_id !== undefined) put('assignee_id', 'assigneeId', changes.assignee_id);
  if (changes.due_at !== undefined) put('due_at', 'dueAt', changes.due_at ? new Date(changes.due_at) : null);
  if (changes.tags !== undefined || changes.add_tags || changes.remove_tags) {
    const remove = new Set(normalTags(changes.remove_tags ?? []));
    const tags = normalTags([...(changes.tags ?? ticket.tags), ...(changes.add_tags ?? [])]).filter(
      (t) => !remove.has(t),
    );
    put('tags', 'tags', tags);
  }
  if (changes.custom_fields !== undefined) {
    const merged = { ...ticket.customFields, ...validCustomFields(defs, changes.custom_fields, false) };
    for (const [k, v] of Object.entries(merged)) if (v === null) delete merged[k];
    put('custom_fields', 'customFields', merged);
  }
  if (changes.status !== undefined && changes.status !== ticket.status) {
    put('status', 'status', changes.status);
    if (changes.status === 'resolved') row.resolvedAt = now;
    if (changes.status === 'closed') row.closedAt = now;
    if (changes.status !== 'resolved' && changes.status !== 'closed') {
      row.resolvedAt = null;
      row.closedAt = null;
    }
  }
  return { row, diff };
}
