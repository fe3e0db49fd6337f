// Warmup's rules: who may enrol, with which ramp and window, pausing and resuming, the statistics of
// where warmup mail landed, and organisations' own templates. The engine (engine.ts) does the sending
// and receiving; this is what the API and other modules call.
import type { Clock } from '../../core/clock.ts';
import type { Db } from '../../core/db.ts';
import { AppError, conflict, notFound, validationFailed } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import type { MailauthResolver } from '../../core/resolver.ts';
import type { AccountsService } from '../accounts/service.ts';
import type { OutboundService } from '../delivery/service.ts';
import { type EventInput, type EventRecord, type EventsService, eventOf } from '../events/service.ts';
import type { HealthInput } from '../health/inputs/types.ts';
import type { MailboxesService } from '../mailboxes/service.ts';
import { addDays, isTimeZone, localTime } from '../../core/zoned-time.ts';
import { checkTemplate } from './content.ts';
import type { WarmupEngine } from './engine.ts';
import { warmupEnrolled, warmupPaused, warmupRemoved, warmupResumed } from './events.ts';
import { warmupInput } from './health.ts';
import { providerOf } from './providers.ts';
import { CURVES, type CurveName, dailyQuota, MAX_DAILY, phase, type Ramp } from './ramps.ts';
import * as store from './store.ts';
import type { EnrollmentRow, PausedReason, WarmupPool } from './tables.ts';

export interface ScheduleInput {
  weekdays?: number[];
  start_hour?: number;
  end_hour?: number;
  time_zone?: string;
}

export type RampInput = CurveName | { start: number; increase: number; target: number; days: number };

export interface EnrollInput {
  mailbox_id?: string | null;
  account_id?: string | null;
  ramp?: RampInput;
  schedule?: ScheduleInput;
  reply_rate?: number;
  pool?: WarmupPool;
}

export interface EnrollmentChanges {
  ramp?: RampInput;
  schedule?: ScheduleInput;
  reply_rate?: number;
}

export interface WarmupServiceOptions {
  db: Db;
  clock: Clock;
  events: EventsService;
  mailboxes: MailboxesService;
  accounts: AccountsService;
  outbound: OutboundService;
  resolver: MailauthResolver;
  engine: WarmupEngine;
  sharedPool: boolean;
}

const DEFAULT_SCHEDULE = { weekdays: [1, 2, 3, 4, 5], start_hour: 8, end_hour: 18, time_zone: 'UTC' };
const DEFAULT_REPLY_RATE = 0.3;
const MAX_STATS_DAYS = 366;
const MAX_TEMPLATES = 200;

export class WarmupService {
  readonly #o: WarmupServiceOptions;

  constructor(options: WarmupServiceOptions) {
    this.#o = options;
  }

  get engine(): WarmupEngine {
    return this.#o.engine;
  }

  /** Warmup's input to health scores: placement and volume against the ramp (health.ts). */
  healthInputs(): HealthInput[] {
    return [warmupInput(this.#o.db)];
  }

  /**
   * Follows health's repairs, in their transaction: a paused sender's warmup pauses too (reason
   * `health`) and resumes when the pause is undone; a slowed one sends half its ramp until restored.
   * Warmup paused by a person stays paused whatever health does.
   */
  async followHealth(tx: Db, records: EventRecord[]): Promise<void> {
    const events: EventInput[] = [];
    for (const r of records) {
      if (r.type !== 'health.repair') continue;
      const data = r.data as {
        kind: 'domain' | 'mailbox';
        subject_id: string;
        action: string;
        state: string;
      };
      if (data.state === 'failed' || (data.action !== 'pause' && data.action !== 'slow_warmup')) continue;
      const applied = data.state === 'applied';
      for (const row of await store.enrollmentsOfSubject(tx, r.organizationId, data.kind, data.subject_id)) {
        if (data.action === 'slow_warmup') {
          if (row.slowed !== applied) await store.updateEnrollment(tx, row.id, { slowed: applied });
        } else if (applied && row.status === 'active') {
          await store.cancelPlanned(tx, row.id);
          await store.updateEnrollment(tx, row.id, {
            status: 'paused',
            pausedReason: 'health',
            planTimes: [],
            nextSendAt: null,
          });
          events.push(eventOf(warmupPaused, row.organizationId, { ...ref(row), reason: 'health' }));
        } else if (
          !applied &&
          row.status === 'paused' &&
          row.pausedReason === 'health' &&
          // Another pause (the domain's, or the mailbox's own) may still hold its mail.
          !(await this.#o.outbound.senderPausedIn(tx, row.organizationId, row.address, row.domainId))
        ) {
          await store.updateEnrollment(tx, row.id, this.#resumed(row));
          events.push(eventOf(warmupResumed, row.organizationId, ref(row)));
        }
      }
    }
    if (events.length) await this.#o.events.emitMany(tx, events);
  }

  /** One tick of the engine (the `warmup.tick` job). */
  tick() {
    return this.#o.engine.tick();
  }

  async enroll(organizationId: string, input: EnrollInput): Promise<EnrollmentRow> {
    const { db } = this.#o;
    if (Boolean(input.mailbox_id) === Boolean(input.account_id))
      throw validationFailed('mailbox_id', 'give exactly one of mailbox_id and account_id');
    const pool = input.pool ?? 'organization';
    if (pool === 'shared' && !this.#o.sharedPool)
      throw new AppError(
        409,
        'shared_pool_off',
        'This installation has no shared warmup pool (MAILROOM_WARMUP_SHARED_POOL is off)',
      );
    const who = await this.#sender(organizationId, input);
    const ramp = rampOf(input.ramp ?? 'normal');
    const schedule = scheduleOf({ ...DEFAULT_SCHEDULE, ...input.schedule });
    const replyRate = replyRateOf(input.reply_rate ?? DEFAULT_REPLY_RATE);
    const provider = await providerOf(this.#o.resolver, who.address);
    return db.transaction(async (tx) => {
      const row = await store.insertEnrollment(tx, {
        id: newId(),
        organizationId,
        mailboxId: input.mailbox_id ?? null,
        accountId: input.account_id ?? null,
        address: who.address,
        name: who.name,
        pool,
        status: 'active',
        ramp,
        weekdays: schedule.weekdays,
        startHour: schedule.start_hour,
        endHour: schedule.end_hour,
        timeZone: schedule.time_zone,
        replyRate,
        provider,
        // Due now: today is planned at the next tick (what is left of today's window).
        nextPlanAt: this.#o.clock.now(),
      });
      if (!row) throw conflict(`${who.address} is already enrolled in warmup`);
      await this.#o.events.emitMany(tx, [
        eventOf(warmupEnrolled, organizationId, { ...ref(row), pool, curve: ramp.curve }),
      ]);
      return row;
    });
  }

  /** The mailbox or account to enrol: the organisation's, and able to send. */
  async #sender(organizationId: string, input: EnrollInput): Promise<{ address: string; name: string }> {
    if (input.mailbox_id) {
      const mailbox = await this.#o.mailboxes.get(organizationId, input.mailbox_id);
      if (mailbox.status !== 'active' || !mailbox.isActive)
        throw new AppError(409, 'mailbox_inactive', 'A suspended or disabled mailbox cannot warm up');
      const name = mailbox.displayName || [mailbox.firstName, mailbox.lastName].filter(Boolean).join(' ');
      return { address: mailbox.address, name };
    }
    const account = await this.#o.accounts.get(organizationId, input.account_id!);
    if (!account.smtp)
      throw new AppError(409, 'no_smtp', 'The account has no SMTP server: warmup sends through it');
    return { address: account.address, name: account.name };
  }

  async list(organizationId: string, page: PageRequest) {
    const { items, total } = await store.listEnrollments(this.#o.db, organizationId, page);
    return toPage(
      items.map((e) => this.view(e)),
      total,
      page,
    );
  }

  async get(organizationId: string, id: string): Promise<EnrollmentRow> {
    const row = await store.enrollmentOf(this.#o.db, organizationId, id);
    if (!row) throw notFound('Warmup enrolment');
    return row;
  }

  /** The enrolment as the API shows it, with where its ramp stands today. */
  view(e: EnrollmentRow) {
    const today = localTime(this.#o.clock.now(), e.timeZone).date;
    // Once today is planned, warm_days counts it; before, today would be the next day.
    const day = e.plannedOn === today ? e.warmDays : e.warmDays + 1;
    return {
      id: e.id,
      mailbox_id: e.mailboxId,
      account_id: e.accountId,
      address: e.address,
      pool: e.pool,
      status: e.status,
      paused_reason: e.pausedReason,
      slowed: e.slowed,
      ramp: e.ramp,
      schedule: { weekdays: e.weekdays, start_hour: e.startHour, end_hour: e.endHour, time_zone: e.timeZone },
      reply_rate: e.replyRate,
      provider: e.provider,
      warm_day: Math.max(1, day),
      phase: phase(e.ramp, Math.max(1, day)),
      daily_quota: dailyQuota(e.ramp, Math.max(1, day), e.slowed),
      planned_today: e.plannedOn === today ? e.planTimes.length : 0,
      planned_on: e.plannedOn,
      created_at: e.createdAt.toISOString(),
      updated_at: e.updatedAt.toISOString(),
    };
  }

  async update(organizationId: string, id: string, changes: EnrollmentChanges): Promise<EnrollmentRow> {
    const row = await this.get(organizationId, id);
    const schedule = changes.schedule
      ? scheduleOf({
          weekdays: row.weekdays,
          start_hour: row.startHour,
          end_hour: row.endHour,
          time_zone: row.timeZone,
          ...changes.schedule,
        })
      : null;
    return store.updateEnrollment(this.#o.db, row.id, {
      ...(changes.ramp !== undefined ? { ramp: rampOf(changes.ramp) } : {}),
      ...(changes.reply_rate !== undefined ? { replyRate: replyRateOf(changes.reply_rate) } : {}),
      ...(schedule
        ? {
            weekdays: schedule.weekdays,
            startHour: schedule.start_hour,
            endHour: schedule.end_hour,
            timeZone: schedule.time_zone,
            // A new zone may start the local day sooner.
            nextPlanAt: this.#o.clock.now(),
          }
        : {}),
    });
  }

  /** Stops sending, answers included (what is planned is cancelled); receiving and rescuing go on. */
  async pause(organizationId: string, id: string, reason: PausedReason = 'manual'): Promise<EnrollmentRow> {
    const row = await this.get(organizationId, id);
    return this.#o.db.transaction(async (tx) => {
      await store.cancelPlanned(tx, row.id);
      const paused = await store.updateEnrollment(tx, row.id, {
        status: 'paused',
        pausedReason: reason,
        planTimes: [],
        nextSendAt: null,
      });
      if (row.status !== 'paused')
        await this.#o.events.emitMany(tx, [eventOf(warmupPaused, organizationId, { ...ref(row), reason })]);
      return paused;
    });
  }

  async resume(organizationId: string, id: string): Promise<EnrollmentRow> {
    const row = await this.get(organizationId, id);
    if (row.status === 'active') return row;
    return this.#o.db.transaction(async (tx) => {
      const resumed = await store.updateEnrollment(tx, row.id, this.#resumed(row));
      await this.#o.events.emitMany(tx, [eventOf(warmupResumed, organizationId, ref(row))]);
      return resumed;
    });
  }

  /**
   * Active again; what is left of today's quota is planned at the next tick (its earlier plan went with
   * the pause). The ramp stays where it is: a day it already counted is not counted again.
   */
  #resumed(row: EnrollmentRow) {
    const today = localTime(this.#o.clock.now(), row.timeZone).date;
    return {
      status: 'active' as const,
      pausedReason: null,
      plannedOn: row.plannedOn === today ? addDays(today, -1) : row.plannedOn,
      nextPlanAt: this.#o.clock.now(),
    };
  }

  async remove(organizationId: string, id: string): Promise<void> {
    const row = await this.get(organizationId, id);
    await this.#o.db.transaction(async (tx) => {
      await store.deleteEnrollment(tx, row.id);
      await this.#o.events.emitMany(tx, [eventOf(warmupRemoved, organizationId, ref(row))]);
    });
  }

  /** Placement by day and by the receiving provider, with totals, over `from`..`to` (local dates). */
  async stats(organizationId: string, id: string, range: { from?: string; to?: string }) {
    const row = await this.get(organizationId, id);
    const today = localTime(this.#o.clock.now(), row.timeZone).date;
    const to = range.to ?? today;
    const from = range.from ?? addDays(to, -29);
    if (from > to) throw validationFailed('from', 'from is after to');
    if (addDays(from, MAX_STATS_DAYS) < to) throw validationFailed('from', `at most ${MAX_STATS_DAYS} days`);
    const rows = await store.stats(this.#o.db, row.id, from, to);
    const byDay = new Map<string, store.StatsRow[]>();
    const byProvider = new Map<string, store.StatsRow[]>();
    for (const r of rows) {
      byDay.set(r.day, [...(byDay.get(r.day) ?? []), r]);
      byProvider.set(r.provider, [...(byProvider.get(r.provider) ?? []), r]);
    }
    return {
      mailbox_id: row.mailboxId,
      account_id: row.accountId,
      from,
      to,
      totals: summarise(rows),
      by_day: [...byDay].map(([day, list]) => ({
        day,
        ...summarise(list),
        by_provider: list.map((r) => ({ provider: r.provider, ...summarise([r]) })),
      })),
      by_provider: [...byProvider].map(([provider, list]) => ({ provider, ...summarise(list) })),
    };
  }

  async messages(organizationId: string, id: string, page: PageRequest) {
    const row = await this.get(organizationId, id);
    const { items, total } = await store.listMessages(this.#o.db, row.id, page);
    return toPage(items, total, page);
  }

  // ---- templates ----------------------------------------------------------------------------------------

  templates(organizationId: string) {
    return store.templatesOf(this.#o.db, organizationId);
  }

  async addTemplate(
    organizationId: string,
    input: { kind: 'opening' | 'reply'; subject?: string; body: string },
  ) {
    const subject = input.kind === 'opening' ? (input.subject ?? '') : '';
    if (input.kind === 'opening' && !subject.trim())
      throw validationFailed('subject', 'an opening needs a subject');
    for (const [field, text] of [
      ['subject', subject],
      ['body', input.body],
    ] as const) {
      try {
        checkTemplate(text);
      } catch (err) {
        throw validationFailed(field, `cannot be rendered: ${(err as Error).message}`);
      }
    }
    if ((await store.templatesOf(this.#o.db, organizationId)).length >= MAX_TEMPLATES)
      throw conflict(`An organisation has at most ${MAX_TEMPLATES} warmup templates`);
    return store.insertTemplate(this.#o.db, {
      id: newId(),
      organizationId,
      kind: input.kind,
      subject,
      body: input.body,
    });
  }

  async deleteTemplate(organizationId: string, id: string): Promise<void> {
    if (!(await store.deleteTemplate(this.#o.db, organizationId, id))) throw notFound('Template');
  }
}

const ref = (e: EnrollmentRow) => ({ mailbox_id: e.mailboxId, account_id: e.accountId, address: e.address });

function rampOf(input: RampInput): Ramp {
  if (typeof input === 'string') return CURVES[input];
  const { start, increase, target, days } = input;
  if (start < 1 || target < start)
    throw validationFailed('ramp', 'start must be at least 1 and at most target');
  if (target > MAX_DAILY) throw validationFailed('ramp', `target must be at most ${MAX_DAILY} a day`);
  if (increase < 0) throw validationFailed('ramp', 'increase must not be negative');
  if (days < 1) throw validationFailed('ramp', 'days must be at least 1');
  return { curve: 'custom', start, increase, target, days };
}

function scheduleOf(s: Required<ScheduleInput>): Required<ScheduleInput> {
  if (!isTimeZone(s.time_zone))
    throw validationFailed('schedule.time_zone', `unknown time zone ${s.time_zone}`);
  if (!s.weekdays.length) throw validationFailed('schedule.weekdays', 'at least one weekday');
  if (s.start_hour >= s.end_hour)
    throw validationFailed('schedule.start_hour', 'start_hour must be before end_hour');
  return { ...s, weekdays: [...new Set(s.weekdays)].sort() };
}

function replyRateOf(rate: number): number {
  if (!(rate >= 0 && rate <= 1)) throw validationFailed('reply_rate', 'between 0 and 1');
  return rate;
}

function summarise(rows: store.StatsRow[]) {
  const sum = (k: keyof Omit<store.StatsRow, 'day' | 'provider'>) => rows.reduce((n, r) => n + r[k], 0);
  const sent = sum('sent');
  const inbox = sum('inbox');
  const spam = sum('spam');
  const category = sum('category');
  const missing = sum('missing');
  const landed = inbox + spam + category + missing;
  const rate = (n: number) => (landed ? Math.round((n / landed) * 10_000) / 10_000 : null);
  return {
    planned: sum('planned'),
    sent,
    replies_sent: sum('replies_sent'),
    failed: sum('failed'),
    received: inbox + spam + category,
    inbox,
    spam,
    category,
    missing,
    inbox_rate: rate(inbox),
    spam_rate: rate(spam),
    category_rate: rate(category),
    rescued: sum('rescued'),
    replies: sum('replies'),
  };
}
