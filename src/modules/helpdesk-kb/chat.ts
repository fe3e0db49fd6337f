// The chatbot, as named steps per customer message: find the conversation (or check the desk of a new
// one), note the customer's address, decide whether a person is wanted, answer from the published
// articles (the model, grounded on them, when one is configured; else, or when it fails, the passage of
// the best article that matches the question), count unanswered questions, and hand the conversation to a
// person when asked or after too many unanswered questions: a ticket on the desk with the transcript.
// The answer is worked out outside any transaction (a model can take seconds); the turn is then written
// under the conversation's row lock, so two messages at once never open two tickets.
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.ts';
import type { Db } from '../../core/db.ts';
import { AppError, notFound, validationFailed } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { LlmProvider } from '../../providers/llm/types.ts';
import { type EventsService, eventOf } from '../events/service.ts';
import type { HelpdeskService } from '../helpdesk/service.ts';
import {
  asksForPerson,
  emailIn,
  extractiveAnswer,
  groundedPrompt,
  meaningful,
  passagesOf,
  readModelReply,
  subjectOf,
  transcript,
} from './answer.ts';
import { chatEscalated } from './events.ts';
import type { KbService, KbSettings } from './service.ts';
import * as store from './store.ts';
import type { AnsweredBy, ChatMessageRow, ConversationRow, SourceLink } from './tables.ts';

export interface ChatOptions {
  db: Db;
  clock: Clock;
  events: EventsService;
  kb: KbService;
  helpdesk: HelpdeskService;
  /** The configured model, or null: answers come from search alone. */
  llm: LlmProvider | null;
  log: Logger;
}

export interface ChatInput {
  conversation_id?: string;
  desk_id?: string;
  message: string;
  customer?: { email?: string | null; name?: string | null };
}

export interface ChatReply {
  conversation_id: string;
  status: ConversationRow['status'];
  answer: string;
  answered_by: AnsweredBy | null;
  sources: (SourceLink & { cited: boolean })[];
  escalated: boolean;
  ticket_id: string | null;
  ticket_number: number | null;
  /** A person was asked for and the customer's address is needed to open the ticket. */
  needs_email: boolean;
}

/** Articles the answer is looked for in (and that the model is given). */
const RETRIEVE = 3;
const EMAIL_SHAPE = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

interface Answer {
  text: string;
  by: AnsweredBy;
  sources: (SourceLink & { cited: boolean })[];
}

const SYSTEM_ACTOR = { type: 'system' as const, id: null, depth: 0 };
const CUSTOMER_ACTOR = { type: 'customer' as const, id: null, depth: 0 };

export class ChatService {
  readonly #o: ChatOptions;

  constructor(options: ChatOptions) {
    this.#o = options;
  }

  get llmConfigured(): boolean {
    return this.#o.llm !== null;
  }

  async message(organizationId: string, input: ChatInput): Promise<ChatReply> {
    const existing = await this.#conversation(organizationId, input);
    const settings = await this.#o.kb.settings(organizationId);
    const given = this.#customerEmail(input);
    const email =
      given ??
      existing?.customerEmail ??
      (existing?.status === 'awaiting_email' ? emailIn(input.message) : null);
    const name = input.customer?.name?.trim() || existing?.customerName || null;

    if (existing?.status === 'escalated')
      return this.#afterEscalation(organizationId, existing, input.message);

    // A person was wanted and the address has come: hand over now, without looking for an answer.
    const pending = existing?.status === 'awaiting_email' ? (existing.escalationReason ?? 'requested') : null;
    const wantsPerson = asksForPerson(input.message);
    const answer =
      wantsPerson || (pending && email)
        ? null
        : await this.#answer(organizationId, input.message, existing, settings);
    // Unanswered questions in a row: an answer resets the count; asking for a person or giving the
    // address is not a question.
    const unanswered = answer ? 0 : (existing?.unanswered ?? 0) + (wantsPerson || (pending && email) ? 0 : 1);
    const reason: 'requested' | 'unanswered' | null =
      pending ?? (wantsPerson ? 'requested' : unanswered >= settings.escalateAfter ? 'unanswered' : null);

    return this.#o.db.transaction(async (tx) => {
      const now = this.#o.clock.now();
      let conv = existing
        ? (await store.conversation(tx, organizationId, existing.id, true))!
        : await store.insertConversation(tx, {
            id: newId(),
            organizationId,
            deskId: input.desk_id!,
            status: 'open',
            customerEmail: email,
            customerName: name,
            createdAt: now,
            updatedAt: now,
          });
      // Escalated by a message that overtook this one: this one joins the transcript only.
      if (conv.status === 'escalated')
        return this.#afterEscalationIn(tx, organizationId, conv, input.message);
      const customerMessage = this.#messageRow(
        organizationId,
        conv.id,
        'customer',
        input.message,
        null,
        [],
        now,
      );
      const escalate = reason !== null;

      if (escalate && email) {
        const history = await store.messagesOf(tx, conv.id);
        const ticket = await this.#o.helpdesk.createTicketIn(
          tx,
          organizationId,
          {
            desk_id: conv.deskId,
            subject: subjectOf(history.find((m) => m.role === 'customer')?.body ?? input.message),
            requester: { email, name },
            body: transcript(conv.id, { email, name }, [...history, customerMessage]),
            from_customer: true,
            source: 'chat',
          },
          SYSTEM_ACTOR,
        );
        const text =
          `${!pending && reason === 'unanswered' ? 'I could not find an answer to that in our help articles. ' : ''}` +
          `I have passed our conversation to our team as ticket #${ticket.number}. They will reply to ${email}.`;
        await store.insertMessages(tx, [
          customerMessage,
          this.#messageRow(organizationId, conv.id, 'bot', text, null, [], now),
        ]);
        conv = await store.updateConversation(tx, conv.id, {
          status: 'escalated',
          customerEmail: email,
          customerName: name,
          ticketId: ticket.id,
          ticketNumber: ticket.number,
          escalationReason: reason,
          unanswered,
          messages: conv.messages + 2,
          updatedAt: now,
        });
        await this.#o.events.emitMany(tx, [
          eventOf(chatEscalated, organizationId, {
            conversation_id: conv.id,
            desk_id: conv.deskId,
            ticket_id: ticket.id,
            ticket_number: ticket.number,
            reason,
            customer_email: email,
          }),
        ]);
        return this.#reply(conv, text, null, [], ticket.number);
      }

      let text: string;
      let status: ConversationRow['status'] = conv.status;
      if (escalate) {
        status = 'awaiting_email';
        text =
          (answer
            ? `${answer.text}\n\n`
            : reason === 'unanswered' && !wantsPerson
              ? 'I could not find an answer to that in our help articles. '
              : '') +
          'A person from our team can help with this. Please tell me your email address so they can reply to you.';
      } else if (answer) {
        text = answer.text;
      } else {
        text =
          'I could not find an answer to that in our help articles. Could you put the question another way? ' +
          'You can also ask to talk to a person.';
      }
      await store.insertMessages(tx, [
        customerMessage,
        this.#messageRow(
          organizationId,
          conv.id,
          'bot',
          text,
          answer?.by ?? null,
          answer?.sources ?? [],
          now,
        ),
      ]);
      conv = await store.updateConversation(tx, conv.id, {
        status,
        customerEmail: email,
        customerName: name,
        unanswered,
        escalationReason: escalate ? reason : null,
        messages: conv.messages + 2,
        updatedAt: now,
      });
      return this.#reply(conv, text, answer, answer?.sources ?? [], null);
    });
  }

  /** The conversation named, or null for a new one (whose desk must exist). */
  async #conversation(organizationId: string, input: ChatInput): Promise<ConversationRow | null> {
    if (input.conversation_id) {
      const conv = await store.conversation(this.#o.db, organizationId, input.conversation_id);
      if (!conv) throw notFound('Conversation');
      if (input.desk_id && input.desk_id !== conv.deskId)
        throw validationFailed('desk_id', 'the conversation belongs to another desk');
      return conv;
    }
    if (!input.desk_id) throw validationFailed('desk_id', 'required to start a conversation');
    try {
      await this.#o.helpdesk.desk(organizationId, input.desk_id);
    } catch (err) {
      if (err instanceof AppError && err.status === 404) throw validationFailed('desk_id', 'no such desk');
      throw err;
    }
    return null;
  }

  #customerEmail(input: ChatInput): string | null {
    const email = input.customer?.email?.trim().toLowerCase();
    if (!email) return null;
    if (!EMAIL_SHAPE.test(email)) throw validationFailed('customer.email', 'not an address');
    return email;
  }

  /** The answer from the articles, or null when they hold none. */
  async #answer(
    organizationId: string,
    question: string,
    conv: ConversationRow | null,
    settings: KbSettings,
  ): Promise<Answer | null> {
    const lexemes = meaningful(await store.lexemesOf(this.#o.db, question));
    if (!lexemes.length) return null;
    const found = await store.retrieve(this.#o.db, organizationId, lexemes, RETRIEVE);
    if (!found.length) return null;
    const scored = found.map((f) => ({
      ...f,
      link: {
        article_id: f.article.id,
        title: f.article.title,
        url: this.#o.kb.urlOf(f.article, settings),
        // The share of the question's meaningful words the article holds; ties go to the better rank.
        score: Math.round((f.hits / lexemes.length) * 1000) / 1000,
      },
    }));
    if (this.#o.llm && settings.useLlm) {
      const history = conv ? await store.messagesOf(this.#o.db, conv.id, 50) : [];
      try {
        const reply = await this.#o.llm.complete(
          groundedPrompt(
            scored.map((s) => ({ title: s.article.title, url: s.link.url, body: s.article.body })),
            history,
            question,
          ),
        );
        const read = readModelReply(reply, scored.length);
        if (!read) return null;
        return {
          text: read.text,
          by: 'llm',
          sources: scored.map((s, i) => ({ ...s.link, cited: read.cited.includes(i + 1) })),
        };
      } catch (err) {
        // The model is an improvement, not a dependency: the search answer stands in.
        this.#o.log.warn(
          { code: (err as { code?: string }).code, reason: (err as Error).message },
          'LLM answer failed; answering from search',
        );
      }
    }
    const good = scored.filter((s) => s.link.score >= settings.minScore && s.hits > 0);
    const best = good[0];
    if (!best) return null;
    const passages = passagesOf(best.article.body);
    const hits = await store.passageHits(
      this.#o.db,
      passages.map((p) => p.search),
      lexemes,
    );
    return {
      text: extractiveAnswer(passages, hits, best.link),
      by: 'search',
      sources: good.map((s, i) => ({ ...s.link, cited: i === 0 })),
    };
  }

  async #afterEscalation(organizationId: string, conv: ConversationRow, message: string): Promise<ChatReply> {
    return this.#o.db.transaction(async (tx) => {
      const locked = (await store.conversation(tx, organizationId, conv.id, true))!;
      return this.#afterEscalationIn(tx, organizationId, locked, message);
    });
  }

  /**
   * A message after the hand-over: kept in the transcript and added to the ticket as the customer's
   * comment (while the ticket is not closed), answered with where the ticket is.
   */
  async #afterEscalationIn(
    tx: Db,
    organizationId: string,
    conv: ConversationRow,
    message: string,
  ): Promise<ChatReply> {
    const now = this.#o.clock.now();
    const ticket =
      conv.ticketId && conv.customerEmail
        ? await this.#o.helpdesk.liveTicketIn(tx, organizationId, conv.ticketId)
        : null;
    const joins = ticket !== null && ticket.status !== 'closed';
    if (joins)
      await this.#o.helpdesk.customerCommentIn(
        tx,
        ticket,
        { email: conv.customerEmail!, name: conv.customerName, body: message },
        CUSTOMER_ACTOR,
      );
    const text = joins
      ? `I have added this to ticket #${ticket.number}. Our team will reply to ${conv.customerEmail} by email.`
      : conv.ticketNumber !== null
        ? `Our team has this conversation as ticket #${conv.ticketNumber} and will reply to ${conv.customerEmail} by email.`
        : `Our team has this conversation and will reply to ${conv.customerEmail} by email.`;
    await store.insertMessages(tx, [
      this.#messageRow(organizationId, conv.id, 'customer', message, null, [], now),
      this.#messageRow(organizationId, conv.id, 'bot', text, null, [], now),
    ]);
    const updated = await store.updateConversation(tx, conv.id, {
      messages: conv.messages + 2,
      updatedAt: now,
    });
    return this.#reply(updated, text, null, [], conv.ticketNumber);
  }

  #messageRow(
    organizationId: string,
    conversationId: string,
    role: 'customer' | 'bot',
    body: string,
    answeredBy: AnsweredBy | null,
    sources: (SourceLink & { cited?: boolean })[],
    createdAt: Date,
  ): ChatMessageRow {
    return {
      id: newId(),
      organizationId,
      conversationId,
      role,
      body,
      answeredBy,
      sources: sources.map(({ article_id, title, url, score }) => ({ article_id, title, url, score })),
      createdAt,
    };
  }

  #reply(
    conv: ConversationRow,
    text: string,
    answer: Answer | null,
    sources: (SourceLink & { cited: boolean })[],
    ticketNumber: number | null,
  ): ChatReply {
    return {
      conversation_id: conv.id,
      status: conv.status,
      answer: text,
      answered_by: answer?.by ?? null,
      sources,
      escalated: conv.status === 'escalated',
      ticket_id: conv.ticketId,
      ticket_number: ticketNumber,
      needs_email: conv.status === 'awaiting_email',
    };
  }

  /** The conversation and its messages, oldest first. */
  async conversationWithMessages(organizationId: string, id: string) {
    const conv = await store.conversation(this.#o.db, organizationId, id);
    if (!conv) throw notFound('Conversation');
    return { conversation: conv, messages: await store.messagesOf(this.#o.db, id) };
  }
}
