// The SLA's rules: calendars and policies, the timers of each ticket's targets (kept in step with the
// helpdesk's events inside the transactions that emit them), the sweep that turns passed warning and due
// instants into events and escalation steps exactly once, and the ticket's SLA state for the API.
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.ts';
import type { Db } from '../../core/db.ts';
import { AppError, conflict, notFound, validationFailed } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { Jobs } from '../../core/jobs.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import type { OutboundService } from '../delivery/service.ts';
import { type EventInput, type EventRecord, eventOf, type EventsService } from '../events/service.ts';
import type { Actor, TicketSnapshot } from '../helpdesk/events.ts';
import type { HelpdeskService, TicketChanges } from '../helpdesk/service.ts';
import { PRIORITIES, type Priority, type TicketStatus } from '../helpdesk/tables.ts';
import { isTimeZone } from '../../core/zoned-time.ts';
import {
  type BusinessInterval,
  hoursProblem,
  type PreparedCalendar,
  prepareCalendar,
} from './business-hours.ts';
import { ticketSlaBreached, ticketSlaWarning } from './events.ts';
import * as store from './store.ts';
import {
  type CalendarRow,
  type EscalationAction,
  type EscalationStep,
  type PolicyRow,
  type SlaTicketRow,
  TARGETS,
  type Target,
  type TimerRow,
} from './tables.ts';
import {
  elapsedMs,
  finish,
  newTimer,
  pause,
  recalendar,
  resume,
  retarget,
  targetMinutesOf,
} from './timers.ts';

export const NOTIFY_QUEUE = 'helpdesk-sla.notify';

/** Timers one sweep transaction claims. */
const SWEEP_BATCH = 2_000;
const MINUTE = 60_000;
const SYSTEM: Actor = { type: 'system', id: null, depth: 0 };
const DONE = new Set<TicketStatus>(['resolved', 'closed']);
/** Helpdesk events that move a ticket's timers (each carries the ticket after the change). */
const TICKET_EVENTS = new Set([
  'ticket.created',
  'ticket.updated',
  'ticket.commented',
  'ticket.merged',
  'ticket.split',
  'ticket.approval_decided',
]);
/** Fields whose change may make another policy apply. */
const POLICY_FIELDS = ['priority', 'category_id', 'customer_id'];

export interface SlaOptions {
  db: Db;
  clock: Clock;
  events: EventsService;
  jobs: Jobs;
  outbound: OutboundService;
  helpdesk: HelpdeskService;
  log: Logger;
}

export interface CalendarInput {
  name: string;
  time_zone: string;
  hours: BusinessInterval[];
  holidays?: string[];
}

export interface PolicyInput {
  name: string;
  position?: number;
  enabled?: boolean;
  conditions?: { priorities?: Priority[]; category_ids?: string[]; customer_ids?: string[] };
  targets: { first_response?: number | null; next_response?: number | null; resolution?: number | null };
  calendar_id?: string | null;
  warn_at?: number | null;
  escalations?: EscalationStep[];
}

/** A mail an escalation step asked for, queued in the sweep's transaction and sent by a worker. */
export interface SlaNotification {
  organization_id: string;
  ticket_id: string;
  desk_id: string;
  to: string[];
  subject: string;
  text: string;
  key: string;
}

/** What one ticket's events change, loaded once per emitting transaction. */
interface TicketState {
  row: SlaTicketRow;
  timers: Map<Target, TimerRow>;
  removed: Set<Target>;
}

interface OrgContext {
  policies: Map<string, PolicyRow[]>;
  calendars: Map<string, PreparedCalendar>;
}

export class HelpdeskSlaService {
  readonly #o: SlaOptions;

  constructor(options: SlaOptions) {
    this.#o = options;
  }

  // ---- calendars ---------------------------------------------------------------------------------------

  async createCalendar(organizationId: string, input: CalendarInput): Promise<CalendarRow> {
    const row = checkedCalendar(input);
    const now = this.#o.clock.now();
    return this.#o.db.transaction(async (tx) => {
      const inserted = await store.insertCalendar(tx, {
        id: newId(),
        organizationId,
        name: row.name!,
        timeZone: row.timeZone!,
        hours: row.hours!,
        holidays: row.holidays ?? [],
        createdAt: now,
        updatedAt: now,
      });
      if (!inserted) throw conflict(`a calendar named "${input.name}" exists`);
      return inserted;
    });
  }

  /**
   * Changes a calendar. Running timers under it keep the business time they counted and take the new
   * hours and holidays from now on: their due times move in the same transaction.
   */
  async updateCalendar(
    organizationId: string,
    id: string,
    input: Partial<CalendarInput>,
  ): Promise<CalendarRow> {
    const changes = checkedCalendar(input);
    const now = this.#o.clock.now();
    return this.#o.db.transaction(async (tx) => {
      const before = await store.calendarOf(tx, organizationId, id, true);
      if (!before) throw notFound('Calendar');
      if (
        changes.name &&
        changes.name !== before.name &&
        (await store.calendarNamed(tx, organizationId, changes.name))
      )
        throw conflict(`a calendar named "${changes.name}" exists`);
      const after = (await store.updateCalendar(tx, organizationId, id, { ...changes, updatedAt: now }))!;
      if (changes.timeZone || changes.hours || changes.holidays) {
        const oldCal = prepareCalendar(before);
        const newCal = prepareCalendar(after);
        const timers = await store.runningTimersOfCalendar(tx, id);
        for (const timer of timers) recalendar(timer, now, oldCal, newCal);
        const write = store.upsertTimers(timers);
        if (write) await tx.execute(write);
      }
      return after;
    });
  }

  async calendar(organizationId: string, id: string): Promise<CalendarRow> {
    const row = await store.calendarOf(this.#o.db, organizationId, id);
    if (!row) throw notFound('Calendar');
    return row;
  }

  async listCalendars(organizationId: string, page: PageRequest) {
    const { rows, total } = await store.listCalendars(this.#o.db, organizationId, page);
    return toPage(rows, total, page);
  }

  async deleteCalendar(organizationId: string, id: string): Promise<void> {
    await this.#o.db.transaction(async (tx) => {
      if (!(await store.calendarOf(tx, organizationId, id, true))) throw notFound('Calendar');
      if (await store.calendarInUse(tx, id))
        throw conflict('SLA policies use the calendar: change them first');
      await store.deleteCalendar(tx, organizationId, id);
    });
  }

  // ---- policies ----------------------------------------------------------------------------------------

  async createPolicy(organizationId: string, input: PolicyInput): Promise<PolicyRow> {
    const now = this.#o.clock.now();
    return this.#o.db.transaction(async (tx) => {
      const fields = await this.#checkedPolicy(tx, organizationId, input, null);
      const inserted = await store.insertPolicy(tx, {
        id: newId(),
        organizationId,
        name: input.name,
        position: input.position ?? (await store.nextPosition(tx, organizationId)),
        enabled: input.enabled ?? true,
        priorities: [],
        categoryIds: [],
        customerIds: [],
        warnAt: 0.8,
        escalations: [],
        ...fields,
        createdAt: now,
        updatedAt: now,
      });
      if (!inserted) throw conflict(`a policy named "${input.name}" exists`);
      return inserted;
    });
  }

  /** Changes a policy; tickets take the change when their policy is next chosen (see docs/helpdesk-sla.md). */
  async updatePolicy(organizationId: string, id: string, input: Partial<PolicyInput>): Promise<PolicyRow> {
    const now = this.#o.clock.now();
    return this.#o.db.transaction(async (tx) => {
      const before = await store.policyOf(tx, organizationId, id);
      if (!before) throw notFound('Policy');
      const fields = await this.#checkedPolicy(tx, organizationId, input, before);
      if (
        input.name &&
        input.name !== before.name &&
        (await store.policyNamed(tx, organizationId, input.name))
      )
        throw conflict(`a policy named "${input.name}" exists`);
      return (await store.updatePolicy(tx, organizationId, id, { ...fields, updatedAt: now }))!;
    });
  }

  async policy(organizationId: string, id: string): Promise<PolicyRow> {
    const row = await store.policyOf(this.#o.db, organizationId, id);
    if (!row) throw notFound('Policy');
    return row;
  }

  async listPolicies(organizationId: string, page: PageRequest) {
    const { rows, total } = await store.listPolicies(this.#o.db, organizationId, page);
    return toPage(rows, total, page);
  }

  async deletePolicy(organizationId: string, id: string): Promise<void> {
    const deleted = await this.#o.db.transaction((tx) => store.deletePolicy(tx, organizationId, id));
    if (!deleted) throw notFound('Policy');
  }

  /** The row's fields from API input, every reference checked against the organisation. */
  async #checkedPolicy(
    tx: Db,
    organizationId: string,
    input: Partial<PolicyInput>,
    before: PolicyRow | null,
  ): Promise<Partial<PolicyRow>> {
    const row: Partial<PolicyRow> = {};
    if (input.name !== undefined) row.name = input.name.trim();
    if (row.name === '') throw validationFailed('name', 'must not be empty');
    if (input.position !== undefined) row.position = input.position;
    if (input.enabled !== undefined) row.enabled = input.enabled;
    const directory = this.#o.helpdesk.directory;
    const refs = async (field: string, ids: string[], ref: 'category_id' | 'customer_id') => {
      for (const id of ids)
        await directory.checkRefs(tx, organizationId, { [ref]: id }).catch((err: unknown) => {
          throw err instanceof AppError
            ? validationFailed(field, `no such ${ref.split('_')[0]}: ${id}`)
            : err;
        });
    };
    if (input.conditions !== undefined) {
      row.priorities = [...new Set(input.conditions.priorities ?? [])];
      row.categoryIds = [...new Set(input.conditions.category_ids ?? [])];
      row.customerIds = [...new Set(input.conditions.customer_ids ?? [])];
      await refs('conditions.category_ids', row.categoryIds, 'category_id');
      await refs('conditions.customer_ids', row.customerIds, 'customer_id');
    }
    if (input.targets !== undefined) {
      row.firstResponseMinutes = input.targets.first_response ?? null;
      row.nextResponseMinutes = input.targets.next_response ?? null;
      row.resolutionMinutes = input.targets.resolution ?? null;
      if (
        row.firstResponseMinutes === null &&
        row.nextResponseMinutes === null &&
        row.resolutionMinutes === null
      )
        throw validationFailed('targets', 'at least one of first_response, next_response, resolution');
    } else if (!before) throw validationFailed('targets', 'required');
    if (input.calendar_id !== undefined) {
      row.calendarId = input.calendar_id;
      if (input.calendar_id && !(await store.calendarOf(tx, organizationId, input.calendar_id)))
        throw validationFailed('calendar_id', 'no such calendar');
    }
    if (input.warn_at !== undefined) row.warnAt = input.warn_at;
    if (input.escalations !== undefined) {
      const targets = {
        first_response: row.firstResponseMinutes ?? (input.targets ? null : before?.firstResponseMinutes),
        next_response: row.nextResponseMinutes ?? (input.targets ? null : before?.nextResponseMinutes),
        resolution: row.resolutionMinutes ?? (input.targets ? null : before?.resolutionMinutes),
      };
      for (const [i, step] of input.escalations.entries()) {
        const field = `escalations.${i}`;
        if (step.target !== 'any' && (targets[step.target] ?? null) === null)
          throw validationFailed(`${field}.target`, `the policy has no ${step.target} target`);
        if (
          step.at === 'warning' &&
          (row.warnAt ?? before?.warnAt ?? (input.warn_at === undefined ? 0.8 : null)) === null
        )
          throw validationFailed(`${field}.at`, 'the policy has no warning (warn_at is null)');
        for (const [j, action] of step.actions.entries())
          if (action.type === 'reassign') {
            if (!action.assignee_id && !action.team_id)
              throw validationFailed(`${field}.actions.${j}`, 'reassign needs assignee_id or team_id');
            await directory
              .checkRefs(tx, organizationId, { assignee_id: action.assignee_id, team_id: action.team_id })
              .catch((err: unknown) => {
                throw err instanceof AppError
                  ? validationFailed(`${field}.actions.${j}`, err.errors?.[0]?.message ?? err.message)
                  : err;
              });
          }
      }
      row.escalations = input.escalations;
    } else if (input.targets !== undefined && before) {
      // Targets changed under existing steps: each step must still name a target the policy has.
      for (const [i, step] of before.escalations.entries())
        if (
          step.target !== 'any' &&
          targetMinutesOf({ ...before, ...row } as PolicyRow, step.target) === null
        )
          throw validationFailed(
            `escalations.${i}.target`,
            `the policy has no ${step.target} target any more`,
          );
    }
    return row;
  }

  // ---- a ticket's SLA ----------------------------------------------------------------------------------

  async ticketSla(organizationId: string, ticketId: string) {
    await this.#o.helpdesk.ticket(organizationId, ticketId);
    const row = await store.slaTicketOf(this.#o.db, organizationId, ticketId);
    const timers = row ? await store.timersOfTickets(this.#o.db, [ticketId]) : [];
    const policy = row?.policyId ? await store.policyOf(this.#o.db, organizationId, row.policyId) : undefined;
    const context = await this.#context(this.#o.db, [organizationId]);
    const now = this.#o.clock.now();
    return {
      ticketId,
      policy: policy ? { id: policy.id, name: policy.name } : null,
      paused: row?.status === 'pending',
      timers: TARGETS.flatMap((target) => {
        const t = timers.find((x) => x.target === target);
        if (!t) return [];
        const elapsed = elapsedMs(t, now, calendarOf(context, t.calendarId));
        return [{ timer: t, elapsedMinutes: Math.floor(elapsed / MINUTE) }];
      }),
    };
  }

  // ---- following the helpdesk --------------------------------------------------------------------------

  /** Moves the timers of the tickets the events are about, inside the transaction that emits them. */
  async react(tx: Db, records: EventRecord[]): Promise<void> {
    const relevant = records.filter((r) => TICKET_EVENTS.has(r.type));
    if (!relevant.length) return;
    const now = this.#o.clock.now();
    const ids = [
      ...new Set(
        relevant.flatMap((r) => {
          const d = r.data as { ticket: TicketSnapshot; into?: TicketSnapshot; new_ticket?: TicketSnapshot };
          return [d.ticket.id, ...(d.into ? [d.into.id] : [])];
        }),
      ),
    ];
    const rows = await store.slaTicketsByIds(tx, ids);
    const timers = await store.timersOfTickets(tx, ids);
    const states = new Map<string, TicketState>();
    for (const row of rows) states.set(row.ticketId, { row, timers: new Map(), removed: new Set() });
    for (const t of timers) states.get(t.ticketId)?.timers.set(t.target, t);
    const context = await this.#context(tx, [...new Set(relevant.map((r) => r.organizationId))]);
    const touched = new Set<TicketState>();

    for (const record of relevant) {
      const data = record.data as {
        ticket: TicketSnapshot;
        into?: TicketSnapshot;
        changes?: Record<string, unknown>;
        comment?: { visibility: string; author_type: string };
      };
      const snap = data.ticket;
      let state = states.get(snap.id);
      if (record.type === 'ticket.created' && !state) {
        state = {
          row: {
            ticketId: snap.id,
            organizationId: record.organizationId,
            policyId: null,
            status: snap.status,
            responded: false,
            awaitingSince: null,
            createdAt: new Date(snap.created_at),
            snapshot: snap,
            updatedAt: now,
          },
          timers: new Map(),
          removed: new Set(),
        };
        states.set(snap.id, state);
        this.#choosePolicy(state, context, now, true);
        touched.add(state);
        continue;
      }
      if (data.into) {
        const into = states.get(data.into.id);
        if (into) {
          into.row.snapshot = data.into;
          touched.add(into);
        }
      }
      if (!state) continue; // a ticket from before the SLA existed
      touched.add(state);
      state.row.snapshot = snap;
      this.#moveTo(state, snap.status, context, now);
      if (record.type === 'ticket.commented' && data.comment?.visibility === 'public') {
        if (data.comment.author_type === 'agent') this.#agentReplied(state, context, now);
        else if (data.comment.author_type === 'customer') this.#customerWrote(state, context, now);
      }
      if (record.type === 'ticket.updated' && POLICY_FIELDS.some((f) => data.changes && f in data.changes))
        this.#choosePolicy(state, context, now, false);
    }

    if (!touched.size) return;
    const tickets = [...touched];
    for (const s of tickets) s.row.updatedAt = now;
    await store.saveState(
      tx,
      tickets.map((s) => s.row),
      tickets.flatMap((s) => [...s.timers.values()]),
      tickets.flatMap((s) => [...s.removed].map((target) => ({ ticketId: s.row.ticketId, target }))),
    );
  }

  /** The organisations' policies (in order) and calendars. */
  async #context(db: Db, organizationIds: string[]): Promise<OrgContext> {
    const [policies, calendars] = [
      await store.policiesOf(db, organizationIds),
      await store.calendarsOf(db, organizationIds),
    ];
    const byOrg = new Map<string, PolicyRow[]>();
    for (const p of policies) byOrg.set(p.organizationId, [...(byOrg.get(p.organizationId) ?? []), p]);
    return { policies: byOrg, calendars: new Map(calendars.map((c) => [c.id, prepareCalendar(c)])) };
  }

  /** Picks the first matching policy; a different one than before retargets, starts or drops timers. */
  #choosePolicy(state: TicketState, context: OrgContext, now: Date, initial: boolean): void {
    const { row } = state;
    const snap = row.snapshot;
    const policy =
      (context.policies.get(row.organizationId) ?? []).find(
        (p) =>
          p.enabled &&
          (!p.priorities.length || p.priorities.includes(snap.priority)) &&
          (!p.categoryIds.length ||
            (snap.category_id !== null && p.categoryIds.includes(snap.category_id))) &&
          (!p.customerIds.length || (snap.customer_id !== null && p.customerIds.includes(snap.customer_id))),
      ) ?? null;
    if (!initial && (policy?.id ?? null) === row.policyId) return;
    row.policyId = policy?.id ?? null;
    const newCal = policy ? calendarOf(context, policy.calendarId) : null;
    for (const target of TARGETS) {
      const existing = state.timers.get(target);
      const minutes = policy ? targetMinutesOf(policy, target) : null;
      if (minutes === null || !policy) {
        if (existing) {
          state.timers.delete(target);
          state.removed.add(target);
        }
        continue;
      }
      if (existing) {
        retarget(existing, policy, now, calendarOf(context, existing.calendarId), newCal);
        continue;
      }
      if (DONE.has(row.status)) continue;
      // A target still open starts from when it began: the ticket's creation, or the customer's comment.
      const startedAt =
        target === 'next_response'
          ? row.responded && row.awaitingSince
            ? row.awaitingSince
            : null
          : target === 'first_response' && row.responded
            ? null
            : row.createdAt;
      if (!startedAt) continue;
      const timer = newTimer(row, target, policy, startedAt, newCal);
      if (row.status === 'pending') pause(timer, now, newCal);
      state.timers.set(target, timer);
      state.removed.delete(target);
    }
  }

  /** Status changes: pending pauses, leaving it resumes; resolving meets or stops; reopening resumes. */
  #moveTo(state: TicketState, next: TicketStatus, context: OrgContext, now: Date): void {
    const before = state.row.status;
    if (before === next) return;
    state.row.status = next;
    const cal = (t: TimerRow) => calendarOf(context, t.calendarId);
    const timers = [...state.timers.values()];
    if (DONE.has(next) && !DONE.has(before)) {
      for (const t of timers) finish(t, now, cal(t), t.target === 'resolution' ? 'met' : 'stopped');
      return;
    }
    if (DONE.has(before) && !DONE.has(next))
      for (const t of timers)
        if (t.state === 'stopped' || (t.target === 'resolution' && t.state === 'met')) resume(t, now, cal(t));
    if (next === 'pending') for (const t of timers) pause(t, now, cal(t));
    else if (before === 'pending') for (const t of timers) if (t.state === 'paused') resume(t, now, cal(t));
  }

  #agentReplied(state: TicketState, context: OrgContext, now: Date): void {
    state.row.responded = true;
    state.row.awaitingSince = null;
    for (const target of ['first_response', 'next_response'] as const) {
      const t = state.timers.get(target);
      if (t && (t.state === 'running' || t.state === 'paused'))
        finish(t, now, calendarOf(context, t.calendarId), 'met');
    }
  }

  /** A customer's public comment: after an agent's reply, the next-response target starts. */
  #customerWrote(state: TicketState, context: OrgContext, now: Date): void {
    const { row } = state;
    row.awaitingSince ??= now;
    if (!row.responded || !row.policyId || DONE.has(row.status)) return;
    const current = state.timers.get('next_response');
    if (current && (current.state === 'running' || current.state === 'paused')) return;
    const policy = (context.policies.get(row.organizationId) ?? []).find((p) => p.id === row.policyId);
    if (!policy || policy.nextResponseMinutes === null) return;
    const cal = calendarOf(context, policy.calendarId);
    const timer = newTimer(row, 'next_response', policy, now, cal);
    if (row.status === 'pending') pause(timer, now, cal);
    state.timers.set('next_response', timer);
    state.removed.delete('next_response');
  }

  // ---- the sweep ---------------------------------------------------------------------------------------

  /**
   * Fires every warning and breach whose instant has passed, each once across all workers: timers are
   * claimed with FOR UPDATE SKIP LOCKED and their flags set in the transaction that emits the events,
   * runs the escalation steps and queues the mails.
   */
  async sweep(): Promise<{ warnings: number; breaches: number }> {
    const totals = { warnings: 0, breaches: 0 };
    for (;;) {
      const claimed = await this.#o.db.transaction(async (tx) => {
        const now = this.#o.clock.now();
        const due = await store.claimDue(tx, now, SWEEP_BATCH);
        if (due.length) await this.#fire(tx, due, totals);
        return due.length;
      });
      if (claimed < SWEEP_BATCH) return totals;
    }
  }

  async #fire(tx: Db, due: store.DueTimer[], totals: { warnings: number; breaches: number }): Promise<void> {
    type Firing = {
      timer: store.DueTimer;
      at: 'warning' | 'breach';
      actions: EscalationAction[];
      steps: number[];
    };
    const firings: Firing[] = [];
    for (const timer of due)
      for (const at of ['warning', 'breach'] as const) {
        if (at === 'warning' ? !timer.warn : !timer.breach) continue;
        const steps = timer.escalations
          .map((s, i) => [s, i] as const)
          .filter(([s]) => s.at === at && (s.target === 'any' || s.target === timer.target));
        firings.push({
          timer,
          at,
          actions: steps.flatMap(([s]) => s.actions),
          steps: steps.flatMap(([s, i]) => s.actions.map(() => i)),
        });
        if (at === 'warning') totals.warnings++;
        else totals.breaches++;
      }

    // Ticket changes, per ticket in the order the steps name them.
    const changes = new Map<
      string,
      { organizationId: string; snapshot: TicketSnapshot; set: TicketChanges; raise: number }
    >();
    for (const f of firings)
      for (const action of f.actions) {
        if (action.type !== 'reassign' && action.type !== 'raise_priority') continue;
        const c = changes.get(f.timer.ticketId) ?? {
          organizationId: f.timer.organizationId,
          snapshot: f.timer.snapshot,
          set: {},
          raise: 0,
        };
        changes.set(f.timer.ticketId, c);
        if (action.type === 'raise_priority') c.raise++;
        else {
          if (action.assignee_id !== undefined) c.set.assignee_id = action.assignee_id;
          if (action.team_id !== undefined) c.set.team_id = action.team_id;
        }
      }
    for (const [ticketId, c] of changes) {
      const from = PRIORITIES.indexOf(c.snapshot.priority);
      const priority = PRIORITIES[Math.min(from + c.raise, PRIORITIES.length - 1)]!;
      if (priority !== c.snapshot.priority) c.set.priority = priority;
      if (!Object.keys(c.set).length) continue;
      try {
        // A savepoint: a step that no longer applies (its agent left) fails alone, not the sweep.
        await tx.transaction((sp) =>
          this.#o.helpdesk.updateTicketsIn(sp as unknown as Db, c.organizationId, [ticketId], c.set, SYSTEM),
        );
      } catch (err) {
        this.#o.log.warn({ err, ticketId }, 'an SLA escalation step could not change the ticket');
      }
    }

    // The events carry the tickets as the steps left them.
    const snapshots = changes.size ? await store.snapshotsOf(tx, [...changes.keys()]) : new Map();
    const events: EventInput[] = [];
    const mails: SlaNotification[] = [];
    for (const f of firings) {
      const t = f.timer;
      const ticket = snapshots.get(t.ticketId) ?? t.snapshot;
      const dueAt = (t.dueAt ?? t.startedAt).toISOString();
      const sla = {
        policy_id: t.policyId,
        policy_name: t.policyName,
        target: t.target,
        target_minutes: t.targetMinutes,
        started_at: t.startedAt.toISOString(),
        warn_at: t.warnAt?.toISOString() ?? null,
        due_at: dueAt,
        calendar_id: t.calendarId,
      };
      const actions = f.actions.map((a) => a.type);
      events.push(
        eventOf(f.at === 'warning' ? ticketSlaWarning : ticketSlaBreached, t.organizationId, {
          ticket,
          actor: SYSTEM,
          sla,
          escalation: { actions, notify_teams: actions.includes('notify_teams') },
        }),
      );
      for (const [n, action] of f.actions.entries())
        if (action.type === 'notify_email') {
          const what = f.at === 'warning' ? 'SLA warning' : 'SLA breached';
          const label = t.target.replace('_', ' ');
          mails.push({
            organization_id: t.organizationId,
            ticket_id: t.ticketId,
            desk_id: ticket.desk_id,
            to: action.to,
            subject: `[${what}] #${ticket.number} ${ticket.subject}`,
            text: [
              `${what}: the ${label} target of ticket #${ticket.number} ${f.at === 'warning' ? 'is due soon' : 'was missed'}.`,
              '',
              `Ticket: #${ticket.number} ${ticket.subject}`,
              `Requester: ${ticket.requester_email}`,
              `Priority: ${ticket.priority}; status: ${ticket.status}`,
              `Policy: ${t.policyName ?? '(deleted)'}; target: ${label}, ${t.targetMinutes} minutes`,
              `Due: ${dueAt}`,
            ].join('\n'),
            key: `helpdesk-sla:${t.ticketId}:${t.target}:${t.startedAt.getTime()}:${f.at}:${f.steps[n]}:${n}`,
          });
        }
    }
    await this.#o.events.emitMany(tx, events);
    if (mails.length) await this.#o.jobs.sendMany(NOTIFY_QUEUE, mails, { tx });
  }

  /** Sends an escalation mail from the ticket's desk (the worker's side of `notify_email`). */
  async notify(mail: SlaNotification): Promise<void> {
    let desk: Awaited<ReturnType<HelpdeskService['desk']>>;
    try {
      desk = await this.#o.helpdesk.desk(mail.organization_id, mail.desk_id);
    } catch (err) {
      if (err instanceof AppError && err.status === 404) return; // the desk is gone: nobody to send as
      throw err;
    }
    await this.#o.outbound.send(
      mail.organization_id,
      {
        from: { address: this.#o.helpdesk.deskAddressOf(desk), name: desk.name },
        to: mail.to,
        subject: mail.subject,
        text: mail.text,
        tags: ['helpdesk'],
      },
      mail.key,
    );
  }
}

function calendarOf(context: OrgContext, id: string | null): PreparedCalendar | null {
  return id ? (context.calendars.get(id) ?? null) : null;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** The calendar's columns from API input, checked. */
function checkedCalendar(input: Partial<CalendarInput>): Partial<CalendarRow> {
  const row: Partial<CalendarRow> = {};
  if (input.name !== undefined) {
    row.name = input.name.trim();
    if (!row.name) throw validationFailed('name', 'must not be empty');
  }
  if (input.time_zone !== undefined) {
    if (!isTimeZone(input.time_zone))
      throw validationFailed('time_zone', `"${input.time_zone}" is not an IANA time zone`);
    row.timeZone = input.time_zone;
  }
  if (input.hours !== undefined) {
    const problem = hoursProblem(input.hours);
    if (problem) throw validationFailed('hours', problem);
    row.hours = input.hours.map((h) => ({ day: h.day, start: h.start, end: h.end }));
  }
  if (input.holidays !== undefined) {
    for (const d of input.holidays) {
      const parsed = new Date(`${d}T00:00:00Z`);
      if (!DATE.test(d) || Number.isNaN(parsed.getTime()) || parsed.toISOString().slice(0, 10) !== d)
        throw validationFailed('holidays', `"${d}" is not a date YYYY-MM-DD`);
    }
    row.holidays = [...new Set(input.holidays)].sort();
  }
  return row;
}
