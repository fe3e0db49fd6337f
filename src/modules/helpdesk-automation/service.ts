// Reply templates and automation rules for the helpdesk. Templates are Liquid, rendered against a real
// ticket (its requester, the agent, the desk). Rules react to ticket.created, ticket.updated and
// ticket.commented (a job per event, queued in the emitting transaction and run after it commits, so each
// event is evaluated once) or to time conditions (a sweep every minute); they act through the helpdesk
// service as an `automation` actor, one level deeper than what triggered them. Loops are stopped three
// ways: by depth, by never letting a rule act twice in one chain of changes, and by a per-ticket hourly cap.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Clock } from '../../core/clock.ts';
import { databaseErrorCode, type Db } from '../../core/db.ts';
import { AppError, conflict, notFound, validationFailed } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { Jobs } from '../../core/jobs.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import type { EventRecord, EventsService } from '../events/service.ts';
import type { Actor } from '../helpdesk/events.ts';
import { type HelpdeskService, snapshotOf, type TicketChanges, taggedSubject } from '../helpdesk/service.ts';
import type { TicketRow } from '../helpdesk/tables.ts';
import { checkConditions, matches, statusFilter, timeBounds } from './conditions.ts';
import { ticketAutomationNotify } from './events.ts';
import { checkTemplate, firstName, renderTemplate, type TemplateContext } from './liquid.ts';
import * as store from './store.ts';
import type { Action, AutomationRow, Condition, RunOutcome, TemplateRow, Trigger } from './tables.ts';

export const RUN_QUEUE = 'helpdesk.automation';
export const SWEEP_QUEUE = 'helpdesk.automation.sweep';
/** A rule's comments, queued in the transaction that applied it. */
export const COMMENT_QUEUE = 'helpdesk.automation.comments';

/** The comments an applied rule adds, each with the id it will have (a retried job adds and mails none twice). */
export interface CommentJob {
  run_id: string;
  organization_id: string;
  rule_id: string;
  ticket_id: string;
  depth: number;
  chain: string[];
  /** What the run's transaction did, completed with the comments' outcome. */
  taken: Record<string, unknown>[];
  comments: (
    | { type: 'note'; comment_id: string; body: string }
    | { type: 'reply_template'; comment_id: string; template_id: string }
  )[];
}

/** Changes made this many rules deep trigger no further rule. */
export const MAX_DEPTH = 3;
/** A rule acts on one ticket at most this often an hour (a backstop for loops through mail). */
export const HOURLY_CAP = 10;
/** Tickets one time rule looks at per sweep; the rest wait for the next minute. */
const SWEEP_BATCH = 200;
const RUN_RETENTION_DAYS = 30;
const HOUR = 3_600_000;

type EventTrigger = Exclude<Trigger, 'time'>;
const EVENT_TRIGGERS = new Set<string>(['ticket.created', 'ticket.updated', 'ticket.commented']);

/** One helpdesk event to evaluate: what the rules need of it, and the rules that led to it. */
export interface AutomationJob {
  event_id: string;
  trigger: EventTrigger;
  organization_id: string;
  ticket_id: string;
  depth: number;
  changes?: Record<string, [unknown, unknown]>;
  comment?: { author_type: string; visibility: string; body: string };
  /** Rules that acted, in order, in the chain of changes this event belongs to. */
  chain: string[];
}

export interface TemplateInput {
  name: string;
  subject?: string | null;
  body: string;
}

export interface AutomationInput {
  name: string;
  enabled?: boolean;
  position?: number;
  trigger: Trigger;
  conditions?: Condition[];
  actions: Action[];
}

export interface HelpdeskAutomationOptions {
  db: Db;
  clock: Clock;
  events: EventsService;
  jobs: Jobs;
  helpdesk: HelpdeskService;
}

interface Evaluation {
  ticketId: string;
  trigger: Trigger;
  eventId: string | null;
  depth: number;
  chain: string[];
  changes?: AutomationJob['changes'];
  comment?: AutomationJob['comment'];
}

type Result = 'gone' | 'skipped' | 'not_matched' | 'loop_stopped' | 'failed' | 'applied';

/** The rules acting right now in this async context: events they cause carry them on to the next job. */
const chainContext = new AsyncLocalStorage<string[]>();

/** A rule's comment actions, each given the id its comment will have. */
function commentsOf(actions: Action[]): CommentJob['comments'] {
  const comments: CommentJob['comments'] = [];
  for (const a of actions)
    if (a.type === 'note') comments.push({ type: 'note', comment_id: newId(), body: a.body });
    else if (a.type === 'reply_template')
      comments.push({ type: 'reply_template', comment_id: newId(), template_id: a.template_id });
  return comments;
}

const FIELD_ACTIONS = new Set<Action['type']>(['assign', 'set_fields', 'add_tags', 'remove_tags', 'close']);
const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err)).slice(0, 1000);

export class HelpdeskAutomationService {
  readonly #o: HelpdeskAutomationOptions;

  constructor(options: HelpdeskAutomationOptions) {
    this.#o = options;
  }

  // ---- templates -----------------------------------------------------------------------------------------

  async listTemplates(organizationId: string, page: PageRequest) {
    const { rows, total } = await store.listTemplates(this.#o.db, organizationId, page);
    return toPage(rows, total, page);
  }

  async template(organizationId: string, id: string): Promise<TemplateRow> {
    const row = await store.templateOf(this.#o.db, organizationId, id);
    if (!row) throw notFound('Template');
    return row;
  }

  async createTemplate(organizationId: string, input: TemplateInput): Promise<TemplateRow> {
    checkTemplateInput(input);
    const now = this.#o.clock.now();
    return this.#unique(input.name, () =>
      this.#o.db.transaction((tx) =>
        store.insertTemplate(tx, {
          id: newId(),
          organizationId,
          name: input.name,
          subject: input.subject ?? null,
          body: input.body,
          createdAt: now,
          updatedAt: now,
        }),
      ),
    );
  }

  async updateTemplate(
    organizationId: string,
    id: string,
    input: Partial<TemplateInput>,
  ): Promise<TemplateRow> {
    checkTemplateInput(input);
    const row = await this.#unique(input.name, () =>
      this.#o.db.transaction((tx) =>
        store.updateTemplate(tx, organizationId, id, {
          ...(input.name !== undefined && { name: input.name }),
          ...(input.subject !== undefined && { subject: input.subject }),
          ...(input.body !== undefined && { body: input.body }),
          updatedAt: this.#o.clock.now(),
        }),
      ),
    );
    if (!row) throw notFound('Template');
    return row;
  }

  async deleteTemplate(organizationId: string, id: string): Promise<void> {
    await this.#o.db.transaction(async (tx) => {
      if (!(await store.templateOf(tx, organizationId, id))) throw notFound('Template');
      const users = await store.rulesUsingTemplate(tx, organizationId, id);
      if (users.length) throw conflict(`automation rules reply with this template: ${users.join(', ')}`);
      await store.deleteTemplate(tx, organizationId, id);
    });
  }

  /** The template rendered for a real ticket; the agent is the caller when an agent asks, else the assignee. */
  async preview(organizationId: string, templateId: string, ticketId: string, callerId: string | null) {
    const template = await this.template(organizationId, templateId);
    return this.previewDraft(organizationId, template, ticketId, callerId);
  }

  /** A template not saved yet, rendered for a real ticket. */
  async previewDraft(
    organizationId: string,
    template: { subject?: string | null; body: string },
    ticketId: string,
    callerId: string | null,
  ): Promise<{ subject: string | null; body: string }> {
    checkTemplateInput(template);
    const ticket = await this.#ticketOrInvalid(organizationId, ticketId);
    const context = await this.#context(this.#o.db, organizationId, ticket, callerId ?? ticket.assigneeId);
    return {
      subject: template.subject ? renderTemplate('subject', template.subject, context) : null,
      body: renderTemplate('body', template.body, context),
    };
  }

  /** Sends the template, rendered, as a reply (public: by mail to the requester) or an internal note. */
  async replyWithTemplate(
    organizationId: string,
    ticketId: string,
    templateId: string,
    visibility: 'public' | 'internal',
    actor: Actor,
  ) {
    const ticket = await this.#o.helpdesk.ticket(organizationId, ticketId);
    const template = await store.templateOf(this.#o.db, organizationId, templateId);
    if (!template) throw validationFailed('template_id', 'no such template');
    const agentId = actor.type === 'user' ? actor.id : ticket.assigneeId;
    const context = await this.#context(this.#o.db, organizationId, ticket, agentId);
    const body = renderTemplate('body', template.body, context);
    return this.#o.helpdesk.addComment(organizationId, ticketId, { body, visibility }, actor);
  }

  async #ticketOrInvalid(organizationId: string, ticketId: string): Promise<TicketRow> {
    try {
      return await this.#o.helpdesk.ticket(organizationId, ticketId);
    } catch (err) {
      if (err instanceof AppError && err.status === 404)
        throw validationFailed('ticket_id', 'no such ticket');
      throw err;
    }
  }

  async #context(
    db: Db,
    organizationId: string,
    ticket: TicketRow,
    agentId: string | null,
  ): Promise<TemplateContext> {
    const f = await store.renderFacts(db, organizationId, ticket, agentId);
    return {
      ticket: {
        id: ticket.id,
        number: ticket.number,
        subject: ticket.subject,
        tagged_subject: taggedSubject(ticket.number, ticket.subject),
        status: ticket.status,
        priority: ticket.priority,
        tags: ticket.tags,
        custom_fields: ticket.customFields,
        source: ticket.source,
        comments: ticket.comments,
        created_at: ticket.createdAt.toISOString(),
        updated_at: ticket.updatedAt.toISOString(),
        due_at: ticket.dueAt?.toISOString() ?? null,
      },
      requester: {
        email: f.requester_email,
        name: f.requester_name ?? '',
        first_name: firstName(f.requester_name, f.requester_email),
      },
      agent: f.agent_email
        ? {
            id: agentId,
            email: f.agent_email,
            name: f.agent_name ?? '',
            first_name: firstName(f.agent_name, f.agent_email),
          }
        : { id: null, email: '', name: '', first_name: '' },
      desk: {
        id: ticket.deskId,
        name: f.desk_name,
        address: f.desk_address ?? '',
        signature: f.desk_signature ?? '',
      },
    };
  }

  async #unique<T>(name: string | undefined, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (err) {
      if (databaseErrorCode(err) === '23505') throw conflict(`the name "${name}" is taken`);
      throw err;
    }
  }

  // ---- rules ---------------------------------------------------------------------------------------------

  async list(organizationId: string, filter: { trigger?: Trigger; enabled?: boolean }, page: PageRequest) {
    const { rows, total } = await store.listRules(this.#o.db, organizationId, filter, page);
    return toPage(rows, total, page);
  }

  async get(organizationId: string, id: string): Promise<AutomationRow> {
    const row = await store.ruleOf(this.#o.db, organizationId, id);
    if (!row) throw notFound('Automation');
    return row;
  }

  async create(organizationId: string, input: AutomationInput): Promise<AutomationRow> {
    const conditions = input.conditions ?? [];
    await this.#checkRule(organizationId, input.trigger, conditions, input.actions);
    const now = this.#o.clock.now();
    return this.#unique(input.name, () =>
      this.#o.db.transaction((tx) =>
        store.insertRule(tx, {
          id: newId(),
          organizationId,
          name: input.name,
          enabled: input.enabled ?? true,
          position: input.position ?? 0,
          trigger: input.trigger,
          conditions,
          actions: input.actions,
          createdAt: now,
          updatedAt: now,
        }),
      ),
    );
  }

  async update(organizationId: string, id: string, input: Partial<AutomationInput>): Promise<AutomationRow> {
    const current = await this.get(organizationId, id);
    const trigger = input.trigger ?? current.trigger;
    const conditions = input.conditions ?? current.conditions;
    const actions = input.actions ?? current.actions;
    if (input.trigger !== undefined || input.conditions !== undefined || input.actions !== undefined)
      await this.#checkRule(organizationId, trigger, conditions, actions);
    const row = await this.#unique(input.name, () =>
      this.#o.db.transaction((tx) =>
        store.updateRule(tx, organizationId, id, {
          ...(input.name !== undefined && { name: input.name }),
          ...(input.enabled !== undefined && { enabled: input.enabled }),
          ...(input.position !== undefined && { position: input.position }),
          trigger,
          conditions,
          actions,
          updatedAt: this.#o.clock.now(),
        }),
      ),
    );
    if (!row) throw notFound('Automation');
    return row;
  }

  async remove(organizationId: string, id: string): Promise<void> {
    const deleted = await this.#o.db.transaction((tx) => store.deleteRule(tx, organizationId, id));
    if (!deleted) throw notFound('Automation');
  }

  async runs(
    organizationId: string,
    id: string,
    filter: { ticket_id?: string; outcome?: RunOutcome },
    page: PageRequest,
  ) {
    await this.get(organizationId, id);
    const { rows, total } = await store.listRuns(this.#o.db, organizationId, id, filter, page);
    return toPage(rows, total, page);
  }

  /** Checks conditions for the trigger, and every action's references and templates. */
  async #checkRule(organizationId: string, trigger: Trigger, conditions: Condition[], actions: Action[]) {
    checkConditions(trigger, conditions);
    if (!actions.length) throw validationFailed('actions', 'a rule needs at least one action');
    for (const [i, a] of actions.entries()) {
      const at = `actions[${i}]`;
      const refs = async (r: Parameters<HelpdeskService['directory']['checkRefs']>[2]) => {
        try {
          await this.#o.helpdesk.directory.checkRefs(this.#o.db, organizationId, r);
        } catch (err) {
          const e = err instanceof AppError ? err.errors?.[0] : undefined;
          if (e) throw validationFailed(`${at}.${e.field}`, e.message);
          throw err;
        }
      };
      switch (a.type) {
        case 'assign':
          if (a.assignee_id === undefined && a.team_id === undefined)
            throw validationFailed(at, 'assign needs assignee_id or team_id');
          await refs(a);
          break;
        case 'set_fields': {
          const { type: _, ...fields } = a;
          if (!Object.keys(fields).length) throw validationFailed(at, 'set_fields needs at least one field');
          if (a.status === 'approved' || a.status === 'rejected')
            throw validationFailed(`${at}.status`, 'approval decisions are made by approvers');
          await refs(a);
          break;
        }
        case 'reply_template':
          if (!(await store.templateOf(this.#o.db, organizationId, a.template_id)))
            throw validationFailed(`${at}.template_id`, 'no such template');
          break;
        case 'note':
          checkTemplate(`${at}.body`, a.body);
          break;
        case 'notify_teams':
          checkTemplate(`${at}.message`, a.message);
          break;
      }
    }
  }

  // ---- the engine ----------------------------------------------------------------------------------------

  /**
   * In the transaction that emits helpdesk events: a job per event for which the organisation has an
   * enabled rule of that trigger. Nothing runs here; the job evaluates after the commit.
   */
  async onEmitted(tx: Db, records: EventRecord[]): Promise<void> {
    const relevant = records.filter((r) => EVENT_TRIGGERS.has(r.type));
    if (!relevant.length) return;
    const active = await store.activeTriggers(tx, [...new Set(relevant.map((r) => r.organizationId))]);
    const chain = chainContext.getStore();
    const jobs: AutomationJob[] = [];
    for (const r of relevant) {
      if (!active.has(`${r.organizationId}:${r.type}`)) continue;
      const data = r.data as {
        ticket: { id: string };
        actor: { type: string; id: string | null; depth: number };
        changes?: AutomationJob['changes'];
        comment?: AutomationJob['comment'];
      };
      jobs.push({
        event_id: r.id,
        trigger: r.type as EventTrigger,
        organization_id: r.organizationId,
        ticket_id: data.ticket.id,
        depth: data.actor.depth,
        ...(data.changes && { changes: data.changes }),
        ...(data.comment && {
          comment: {
            author_type: data.comment.author_type,
            visibility: data.comment.visibility,
            body: data.comment.body,
          },
        }),
        // A rule's own changes carry its chain; anything else starts one (an automation actor outside a
        // rule's run still names the rule).
        chain: chain ?? (data.actor.type === 'automation' && data.actor.id ? [data.actor.id] : []),
      });
    }
    if (jobs.length) await this.#o.jobs.sendMany(RUN_QUEUE, jobs, { tx });
  }

  /** Evaluates one event against the organisation's rules of its trigger, in order. */
  async runEvent(job: AutomationJob): Promise<void> {
    const rules = await store.enabledRules(this.#o.db, job.organization_id, job.trigger);
    if (!rules.length) return;
    const done = await store.rulesDoneFor(this.#o.db, job.event_id);
    const chain = [...job.chain];
    for (const rule of rules) {
      if (done.has(rule.id)) continue;
      const result = await this.#run(rule, {
        ticketId: job.ticket_id,
        trigger: job.trigger,
        eventId: job.event_id,
        depth: job.depth,
        chain: [...chain],
        changes: job.changes,
        comment: job.comment,
      });
      if (result === 'gone') return;
      // Later rules see what earlier ones did, as part of the same chain.
      if (result === 'applied' || result === 'failed') chain.push(rule.id);
    }
  }

  /** Evaluates every enabled time rule against the tickets whose elapsed times have come due. */
  async sweep(): Promise<{ rules: number; evaluated: number; applied: number }> {
    const rules = await store.timeRules(this.#o.db);
    let evaluated = 0;
    let applied = 0;
    for (const rule of rules) {
      const now = this.#o.clock.now().getTime();
      const bounds = timeBounds(rule.conditions).map((b) => ({
        column: b.column,
        before: new Date(now - b.hours * HOUR),
        strict: b.strict,
      }));
      const candidates = await store.timeCandidates(
        this.#o.db,
        rule,
        bounds,
        statusFilter(rule.conditions),
        SWEEP_BATCH,
      );
      for (const ticketId of candidates) {
        const result = await this.#run(rule, {
          ticketId,
          trigger: 'time',
          eventId: null,
          depth: 0,
          chain: [],
        });
        if (result !== 'skipped' && result !== 'gone') evaluated++;
        if (result === 'applied') applied++;
      }
    }
    const cutoff = new Date(this.#o.clock.now().getTime() - RUN_RETENTION_DAYS * 24 * HOUR);
    await this.#o.db.transaction((tx) => store.deleteRunsBefore(tx, cutoff, 5_000));
    return { rules: rules.length, evaluated, applied };
  }

  /**
   * One rule on one ticket: under the ticket's lock, evaluate, check for loops, record the run and apply
   * the field changes and notifications in one transaction; then add its comments (a public reply is
   * mailed) and complete the run with what they did.
   */
  async #run(rule: AutomationRow, ev: Evaluation): Promise<Result> {
    const org = rule.organizationId;
    const now = this.#o.clock.now();
    const runId = newId();
    const chain = [...ev.chain, rule.id];
    const actor: Actor = { type: 'automation', id: rule.id, depth: ev.depth + 1 };
    let seen: TicketRow | null = null;
    const base = (ticket: TicketRow) => ({
      id: runId,
      organizationId: org,
      automationId: rule.id,
      ticketId: ticket.id,
      ticketNumber: ticket.number,
      trigger: ev.trigger,
      eventId: ev.eventId,
      depth: ev.depth,
      chain: ev.chain,
      createdAt: now,
      actions: [],
    });
    let taken: Record<string, unknown>[] = [];
    let outcome: Result;
    try {
      outcome = await chainContext.run(chain, () =>
        this.#o.db.transaction(async (tx): Promise<Result> => {
          const ticket = await store.lockTicket(tx, org, ev.ticketId);
          if (!ticket || ticket.mergedIntoId) return 'gone';
          seen = ticket;
          if (
            ev.trigger === 'time' &&
            !(await store.claimWindow(tx, rule.id, ticket.id, ticket.updatedAt, now))
          )
            return 'skipped';
          const facts = await store.renderFacts(tx, org, ticket, ticket.assigneeId);
          const matched = matches(rule.conditions, {
            ticket,
            requesterEmail: facts.requester_email,
            now,
            changes: ev.changes,
            comment: ev.comment,
          });
          if (!matched) {
            // Time rules log only what fired: they look at every due ticket every minute.
            if (ev.trigger !== 'time') await store.insertRun(tx, { ...base(ticket), outcome: 'not_matched' });
            return 'not_matched';
          }
          const stop = await this.#loopStop(tx, rule, ticket, ev, now);
          if (stop) {
            await store.insertRun(tx, { ...base(ticket), outcome: 'loop_stopped', error: stop });
            return 'loop_stopped';
          }
          if (!(await store.insertRun(tx, { ...base(ticket), outcome: 'applied' }))) return 'skipped';
          const changes = ticketChanges(rule.actions);
          let row = ticket;
          if (changes) {
            [row = ticket] = await this.#o.helpdesk.updateTicketsIn(tx, org, [ticket.id], changes, actor);
            taken = rule.actions.filter((a) => FIELD_ACTIONS.has(a.type)) as Record<string, unknown>[];
          }
          for (const a of rule.actions) {
            if (a.type !== 'notify_teams') continue;
            const context = await this.#context(tx, org, row, row.assigneeId);
            const message = renderTemplate('message', a.message, context);
            const requester = {
              id: row.requesterId,
              organizationId: org,
              email: facts.requester_email,
              name: facts.requester_name,
              customerId: row.customerId,
              createdAt: row.createdAt,
            };
            await this.#o.events.emit(tx, ticketAutomationNotify, org, {
              ticket: snapshotOf(row, requester),
              actor,
              rule_id: rule.id,
              rule_name: rule.name,
              ticket_number: row.number,
              subject: row.subject,
              message,
            });
            taken.push({ type: 'notify_teams', message });
          }
          await store.finishRun(tx, runId, { outcome: 'applied', actions: taken, error: null });
          const comments = commentsOf(rule.actions);
          if (comments.length)
            await this.#o.jobs.send<CommentJob>(
              COMMENT_QUEUE,
              {
                run_id: runId,
                organization_id: org,
                rule_id: rule.id,
                ticket_id: ticket.id,
                depth: ev.depth + 1,
                chain,
                taken,
                comments,
              },
              { tx },
            );
          return 'applied';
        }),
      );
    } catch (err) {
      // A rule that cannot act (a field the desk does not define, an assignee no longer an agent, a
      // template that fails to render) is logged as failed; anything else is retried with the job.
      const ticket = seen as TicketRow | null;
      if (!(err instanceof AppError) || !ticket) throw err;
      await this.#o.db.transaction(async (tx) => {
        if (ev.trigger === 'time') await store.claimWindow(tx, rule.id, ticket.id, ticket.updatedAt, now);
        await store.insertRun(tx, { ...base(ticket), outcome: 'failed', error: errorText(err) });
      });
      return 'failed';
    }
    return outcome;
  }

  /**
   * The comments of an applied rule (a public reply is mailed), after its transaction committed; each
   * has its id from that transaction, so a retried job neither adds nor mails one twice. The run is
   * completed with what they did.
   */
  async runComments(job: CommentJob): Promise<void> {
    const org = job.organization_id;
    const actor: Actor = { type: 'automation', id: job.rule_id, depth: job.depth };
    const taken = [...job.taken];
    const errors: string[] = [];
    await chainContext.run(job.chain, async () => {
      for (const a of job.comments) {
        try {
          const ticket = await this.#o.helpdesk.ticket(org, job.ticket_id);
          const context = await this.#context(this.#o.db, org, ticket, ticket.assigneeId);
          if (a.type === 'note') {
            const body = renderTemplate('body', a.body, context);
            const c = await this.#o.helpdesk.addComment(
              org,
              ticket.id,
              { id: a.comment_id, body, visibility: 'internal' },
              actor,
            );
            taken.push({ type: 'note', comment_id: c.id });
          } else {
            const template = await store.templateOf(this.#o.db, org, a.template_id);
            if (!template) throw validationFailed('template_id', 'the template was deleted');
            const body = renderTemplate('body', template.body, context);
            const c = await this.#o.helpdesk.addComment(
              org,
              ticket.id,
              { id: a.comment_id, body, visibility: 'public' },
              actor,
            );
            taken.push({ type: 'reply_template', template_id: a.template_id, comment_id: c.id });
          }
        } catch (err) {
          // A refusal (the ticket or template gone, a send refused) is the run's failure; anything else
          // (a lost connection) retries the job.
          if (!(err instanceof AppError)) throw err;
          errors.push(`${a.type}: ${errorText(err)}`);
        }
      }
    });
    await this.#o.db.transaction((tx) =>
      store.finishRun(tx, job.run_id, {
        outcome: errors.length ? 'failed' : 'applied',
        actions: taken,
        error: errors.length ? errors.join('; ') : null,
      }),
    );
  }

  /** Why the rule must not act now, or null. */
  async #loopStop(
    tx: Db,
    rule: AutomationRow,
    ticket: TicketRow,
    ev: Evaluation,
    now: Date,
  ): Promise<string | null> {
    if (ev.depth >= MAX_DEPTH)
      return `the change was made ${ev.depth} rules deep; rules act up to ${MAX_DEPTH} deep`;
    if (ev.chain.includes(rule.id)) return 'the rule already acted on this ticket in this chain of changes';
    const recent = await store.appliedSince(tx, rule.id, ticket.id, new Date(now.getTime() - HOUR));
    if (recent >= HOURLY_CAP) return `the rule acted on this ticket ${recent} times in the last hour`;
    return null;
  }
}

function checkTemplateInput(input: { subject?: string | null; body?: string }): void {
  if (input.subject) checkTemplate('subject', input.subject);
  if (input.body !== undefined) checkTemplate('body', input.body);
}

/** The field changes of a rule's actions, merged in order (a later action wins); null when none. */
export function ticketChanges(actions: Action[]): TicketChanges | null {
  const c: TicketChanges = {};
  let any = false;
  const without = (list: string[] | undefined, remove: string[]) => list?.filter((t) => !remove.includes(t));
  for (const a of actions) {
    switch (a.type) {
      case 'assign':
        if (a.assignee_id !== undefined) c.assignee_id = a.assignee_id;
        if (a.team_id !== undefined) c.team_id = a.team_id;
        break;
      case 'set_fields': {
        const { type: _, custom_fields, ...fields } = a;
        Object.assign(c, fields);
        if (custom_fields) c.custom_fields = { ...c.custom_fields, ...custom_fields };
        break;
      }
      case 'add_tags': {
        const tags = a.tags.map((t) => t.trim().toLowerCase());
        c.add_tags = [...(c.add_tags ?? []), ...tags];
        c.remove_tags = without(c.remove_tags, tags);
        break;
      }
      case 'remove_tags': {
        const tags = a.tags.map((t) => t.trim().toLowerCase());
        c.remove_tags = [...(c.remove_tags ?? []), ...tags];
        c.add_tags = without(c.add_tags, tags);
        break;
      }
      case 'close':
        c.status = 'closed';
        break;
      default:
        continue;
    }
    any = true;
  }
  return any ? c : null;
}
