// Campaigns: a template sent to a list, within send windows and a daily limit, driven by a tracked job
// (runner.ts). The state machine:
//
//   draft ──start──▶ scheduled ──(start_at reached: recipients taken)──▶ active ──(all final)──▶ completed
//                                                         active ◀──resume── paused ◀──pause── active
//   draft, scheduled, active, paused ──cancel──▶ cancelled
//
// Every move locks the campaign's row, so the runner's hand-over of a chunk and a pause or cancel never
// interleave: a pause either comes after a chunk (and withdraws it) or before it (and the chunk is not
// taken). Recipients follow the sms module's events in the transactions that emit them.
import type { Clock } from '../../core/clock.ts';
import type { Db } from '../../core/db.ts';
import { AppError, conflict, notFound, validationFailed } from '../../core/errors.ts';
import { eventOf, type EventInput, type EventRecord, type EventsService } from '../events/service.ts';
import { newId } from '../../core/ids.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import type { JobRow, TrackedJobsService } from '../jobs/service.ts';
import type { ProviderAccountsService } from '../provider-accounts/service.ts';
import type { SmsService } from '../sms/service.ts';
import {
  type CampaignSnapshot,
  campaignCancelled,
  campaignCompleted,
  campaignCreated,
  campaignPaused,
  campaignResumed,
  campaignStarted,
} from './events.ts';
import { compile } from './liquid.ts';
import type { SmsContactsService } from './service.ts';
import * as store from './store.ts';
import type { CampaignRow, CampaignStatus, RecipientRow, RecipientStatus } from './tables.ts';
import { isTimeZone } from '../../core/zoned-time.ts';

export const CAMPAIGN_KIND = 'sms.campaign';

/** Recipient statuses after which nothing more is done for a recipient. */
export const FINAL: readonly RecipientStatus[] = [
  'sent',
  'delivered',
  'failed',
  'undelivered',
  'skipped',
  'cancelled',
];

export interface CampaignInput {
  name: string;
  template_id: string;
  list_id: string;
  sender?: string | null;
  provider_account_id?: string | null;
  route_id?: string | null;
  tags?: string[];
  time_zone?: string | null;
  window?: { days?: number[]; start?: string; end?: string } | null;
  daily_limit?: number | null;
  start_at?: string | null;
}

export type CampaignChanges = Partial<CampaignInput>;

export interface CampaignView {
  row: CampaignRow;
  progress: Record<string, number>;
}

export interface CampaignsOptions {
  db: Db;
  clock: Clock;
  events: EventsService;
  jobs: TrackedJobsService;
  sms: SmsService;
  contacts: SmsContactsService;
  providerAccounts: ProviderAccountsService;
  /** The organisation's time zone for campaigns that name none (its SMS settings). */
  defaultTimeZone: (organizationId: string) => Promise<string>;
}

/** What the sms module's events about a campaign message carry (the fields read here). */
interface SmsEventData {
  message_id: string;
  campaign_id?: string;
  status?: string;
  error_code?: string | null;
  error?: string | null;
  reason?: string;
}

/** Messages (or opt-outs) read from the sms module a page at a time. */
const RECONCILE_PAGE = 1_000;

const ALL_DAYS = [0, 1, 2, 3, 4, 5, 6];

/** `HH:MM` as minutes after midnight; `24:00` is the end of the day. */
export function minutesOf(field: string, text: string): number {
  const m = /^(\d{2}):(\d{2})$/.exec(text);
  const minutes = m ? Number(m[1]) * 60 + Number(m[2]) : Number.NaN;
  if (!m || Number(m[2]) > 59 || minutes > 1440)
    throw validationFailed(field, 'a time as HH:MM, 00:00 to 24:00');
  return minutes;
}

export const hhmm = (minutes: number) =>
  `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;

/** Every status with a count (0 when none). */
export function fullProgress(progress: Record<string, number> | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of ['pending', 'queued', 'sent', 'delivered', 'failed', 'undelivered', 'skipped', 'cancelled'])
    out[s] = progress?.[s] ?? 0;
  return out;
}

export function snapshotOf(row: CampaignRow, progress: Record<string, number>): CampaignSnapshot {
  return {
    id: row.id,
    name: row.name,
    status: row.status,
    template_id: row.templateId,
    list_id: row.listId,
    total: row.total,
    progress: fullProgress(progress),
  };
}

export class CampaignsService {
  readonly #o: CampaignsOptions;
  /** Told when a campaign changes (its runner waits on it); set by the runner. */
  onChange: (campaignId: string) => void = () => {};

  constructor(options: CampaignsOptions) {
    this.#o = options;
  }

  // ---- reading ---------------------------------------------------------------------------------------

  async get(organizationId: string, id: string): Promise<CampaignView> {
    const row = await store.campaignById(this.#o.db, organizationId, id);
    if (!row) throw notFound('Campaign');
    return { row, progress: fullProgress((await store.progressOf(this.#o.db, [id])).get(id)) };
  }

  async list(organizationId: string, status: CampaignStatus | undefined, page: PageRequest) {
    const { rows, total } = await store.listCampaigns(this.#o.db, organizationId, status, page);
    const progress = await store.progressOf(
      this.#o.db,
      rows.map((r) => r.id),
    );
    return toPage(
      rows.map((row) => ({ row, progress: fullProgress(progress.get(row.id)) })),
      total,
      page,
    );
  }

  async recipients(organizationId: string, id: string, filter: store.RecipientFilter, page: PageRequest) {
    await this.get(organizationId, id);
    const { rows, total } = await store.listRecipients(this.#o.db, organizationId, id, filter, page);
    return toPage<RecipientRow>(rows, total, page);
  }

  async job(organizationId: string, row: CampaignRow): Promise<JobRow | null> {
    return row.jobId ? this.#o.jobs.get(organizationId, row.jobId).catch(() => null) : null;
  }

  // ---- drafts ----------------------------------------------------------------------------------------

  async create(organizationId: string, input: CampaignInput): Promise<CampaignView> {
    const fields = await this.#checked(organizationId, input, null);
    return this.#o.db.transaction(async (tx) => {
      const row = await store.insertCampaign(tx, {
        id: newId(),
        organizationId,
        name: input.name,
        status: 'draft',
        templateId: input.template_id,
        listId: input.list_id,
        sender: input.sender ?? null,
        providerAccountId: input.provider_account_id ?? null,
        routeId: input.route_id ?? null,
        tags: input.tags ?? [],
        timeZone: fields.timeZone!,
        windowDays: fields.windowDays!,
        windowStart: fields.windowStart!,
        windowEnd: fields.windowEnd!,
        dailyLimit: input.daily_limit ?? null,
        startAt: input.start_at ? new Date(input.start_at) : null,
      });
      await this.#emit(tx, [eventOf(campaignCreated, organizationId, { campaign: snapshotOf(row, {}) })]);
      return { row, progress: fullProgress({}) };
    });
  }

  /** Changes a campaign that has not ended; what it sends and to whom only while it is a draft. */
  async update(organizationId: string, id: string, changes: CampaignChanges): Promise<CampaignView> {
    const current = await this.get(organizationId, id);
    const fields = await this.#checked(organizationId, changes, current.row);
    await this.#o.db.transaction(async (tx) => {
      const row = await this.#locked(tx, organizationId, id);
      if (row.status === 'completed' || row.status === 'cancelled')
        throw conflict(`A ${row.status} campaign cannot be changed`);
      const content = ['template_id', 'list_id'].filter((k) => k in changes);
      if (content.length && row.status !== 'draft')
        throw conflict(`${content.join(' and ')} can be changed only while the campaign is a draft`);
      if ('start_at' in changes && row.status !== 'draft' && row.status !== 'scheduled')
        throw conflict('start_at can be changed only before the campaign starts');
      await store.updateCampaign(tx, id, {
        ...fields,
        ...(changes.name !== undefined && { name: changes.name }),
        ...(changes.template_id !== undefined && { templateId: changes.template_id }),
        ...(changes.list_id !== undefined && { listId: changes.list_id }),
        ...('sender' in changes && { sender: changes.sender ?? null }),
        ...('provider_account_id' in changes && { providerAccountId: changes.provider_account_id ?? null }),
        ...('route_id' in changes && { routeId: changes.route_id ?? null }),
        ...(changes.tags !== undefined && { tags: changes.tags }),
        ...('daily_limit' in changes && { dailyLimit: changes.daily_limit ?? null }),
        ...('start_at' in changes && { startAt: changes.start_at ? new Date(changes.start_at) : null }),
      });
    });
    this.onChange(id);
    return this.get(organizationId, id);
  }

  async delete(organizationId: string, id: string): Promise<void> {
    await this.#o.db.transaction(async (tx) => {
      const row = await this.#locked(tx, organizationId, id);
      if (!['draft', 'completed', 'cancelled'].includes(row.status))
        throw conflict(`A ${row.status} campaign cannot be deleted; cancel it first`);
      await store.deleteCampaign(tx, organizationId, id);
    });
  }

  // ---- moves -----------------------------------------------------------------------------------------

  /**
   * Schedules a draft: it starts at `start_at` (now when absent or past), when its runner takes the
   * list's members as recipients. The template's body is taken now.
   */
  async start(organizationId: string, id: string, startAt?: string | null, createdBy: string | null = null) {
    await this.#o.db.transaction(async (tx) => {
      const row = await this.#locked(tx, organizationId, id);
      if (row.status !== 'draft') throw conflict(`A ${row.status} campaign cannot be started`);
      if (!row.templateId)
        throw validationFailed('template_id', 'the campaign has no template (it was deleted)');
      if (!row.listId) throw validationFailed('list_id', 'the campaign has no list (it was deleted)');
      const template = await store.templateById(tx, organizationId, row.templateId);
      if (!template) throw validationFailed('template_id', 'the campaign has no template (it was deleted)');
      compile('template_id', template.body);
      const list = await this.#o.contacts.getList(organizationId, row.listId, tx);
      const job = await this.#newJob(tx, organizationId, id, list.members, createdBy);
      const at = startAt ? new Date(startAt) : (row.startAt ?? this.#o.clock.now());
      await store.updateCampaign(tx, id, {
        status: 'scheduled',
        body: template.body,
        startAt: at,
        jobId: job.id,
      });
    });
    this.onChange(id);
    return this.get(organizationId, id);
  }

  /** Stops handing messages over and withdraws the queued ones not yet sent (their recipients wait again). */
  async pause(organizationId: string, id: string): Promise<CampaignView> {
    await this.#o.db.transaction(async (tx) => {
      const row = await this.#locked(tx, organizationId, id);
      if (row.status !== 'active') throw conflict(`A ${row.status} campaign cannot be paused`);
      const returned = await this.withdraw(tx, organizationId, id);
      const paused = await store.updateCampaign(tx, id, { status: 'paused', pausedAt: this.#o.clock.now() });
      await this.#emitWithProgress(tx, paused, (campaign) =>
        eventOf(campaignPaused, organizationId, { campaign, returned }),
      );
    });
    await this.reconcile(organizationId, id);
    this.onChange(id);
    return this.get(organizationId, id);
  }

  /** Goes on from where the campaign stopped, with a new runner. */
  async resume(organizationId: string, id: string, createdBy: string | null = null): Promise<CampaignView> {
    await this.#o.db.transaction(async (tx) => {
      const row = await this.#locked(tx, organizationId, id);
      if (row.status !== 'paused') throw conflict(`A ${row.status} campaign cannot be resumed`);
      const pending = (await store.progressOf(tx, [id])).get(id)?.pending ?? 0;
      const job = await this.#newJob(tx, organizationId, id, pending, createdBy);
      const resumed = await store.updateCampaign(tx, id, { status: 'active', pausedAt: null, jobId: job.id });
      await this.#emitWithProgress(tx, resumed, (campaign) =>
        eventOf(campaignResumed, organizationId, { campaign }),
      );
    });
    this.onChange(id);
    return this.get(organizationId, id);
  }

  /** Ends the campaign: queued messages not yet sent are withdrawn, and no recipient waits any more. */
  async cancel(organizationId: string, id: string): Promise<CampaignView> {
    await this.#o.db.transaction(async (tx) => {
      const row = await this.#locked(tx, organizationId, id);
      if (row.status === 'completed' || row.status === 'cancelled')
        throw conflict(`A ${row.status} campaign cannot be cancelled`);
      if (row.status === 'active' || row.status === 'paused') await this.withdraw(tx, organizationId, id);
      await store.cancelPending(tx, id);
      const cancelled = await store.updateCampaign(tx, id, {
        status: 'cancelled',
        cancelledAt: this.#o.clock.now(),
      });
      await this.#emitWithProgress(tx, cancelled, (campaign) =>
        eventOf(campaignCancelled, organizationId, { campaign }),
      );
    });
    await this.reconcile(organizationId, id);
    this.onChange(id);
    return this.get(organizationId, id);
  }

  // ---- following the sms module ---------------------------------------------------------------------

  /**
   * Withdraws the campaign's queued messages that no gateway has yet (in `tx`, which holds the campaign's
   * row lock); how many. Their recipients are released by `reconcile` once `tx` has committed.
   */
  withdraw(tx: Db, organizationId: string, id: string): Promise<number> {
    return this.#o.sms.cancelCampaignMessages(organizationId, id, tx);
  }

  /**
   * Recipients waiting on messages the sms module cancelled (withdrawn by a pause or a closing window)
   * go back to pending, or are cancelled when the campaign is. Reads the sms module outside any
   * transaction; a cancelled message stays cancelled, so this is safe at any time. How many.
   */
  async reconcile(organizationId: string, id: string): Promise<number> {
    const row = await store.campaignById(this.#o.db, organizationId, id);
    if (!row || (await store.queuedCount(this.#o.db, id)) === 0) return 0;
    const cancelled: string[] = [];
    for (let page = 1; ; page++) {
      const found = await this.#o.sms.list(
        organizationId,
        { campaignId: id, status: ['cancelled'] },
        { page, page_size: RECONCILE_PAGE },
      );
      cancelled.push(...found.items.map((m) => m.id));
      if (page >= found.total_pages) break;
    }
    const released = await store.releaseCancelled(
      this.#o.db,
      id,
      cancelled,
      row.status === 'cancelled' ? 'cancelled' : 'pending',
    );
    if (released) this.onChange(id);
    return released;
  }

  /**
   * In the transaction of the sms module's events: each campaign message's recipient takes its status
   * (sent, delivered, failed, undelivered); one cancelled by other hands (the API, an opt-out) ends as
   * cancelled or skipped. The campaigns touched.
   */
  async follow(tx: Db, records: EventRecord[]): Promise<string[]> {
    const reports: store.MessageStatus[] = [];
    const closed: Parameters<typeof store.closeWithdrawn>[1] = [];
    for (const record of records) {
      if (!record.type.startsWith('sms.')) continue;
      const d = record.data as SmsEventData;
      if (!d.campaign_id || !d.message_id) continue;
      const at = record.createdAt.toISOString();
      const base = { message_id: d.message_id, at, error_code: null, error: null };
      if (record.type === 'sms.sent') reports.push({ ...base, status: 'sent' });
      else if (record.type === 'sms.delivered') reports.push({ ...base, status: 'delivered' });
      else if (record.type === 'sms.failed')
        reports.push({
          ...base,
          status: d.status === 'undelivered' ? 'undelivered' : 'failed',
          error_code: d.error_code ?? null,
          error: d.error ?? null,
        });
      else if (record.type === 'sms.cancelled')
        closed.push(
          d.reason === 'opted_out'
            ? { message_id: d.message_id, status: 'skipped', error: 'the number opted out' }
            : { message_id: d.message_id, status: 'cancelled', error: 'the message was cancelled' },
        );
    }
    const touched = await store.applyMessageStatuses(tx, reports);
    touched.push(...(await store.closeWithdrawn(tx, closed)));
    return touched;
  }

  /** The organisation's opted-out numbers (read before a snapshot's transaction). */
  async optedOut(organizationId: string): Promise<string[]> {
    const numbers: string[] = [];
    for (let page = 1; ; page++) {
      const found = await this.#o.sms.listOptOuts(organizationId, { page, page_size: RECONCILE_PAGE });
      numbers.push(...found.items.map((o) => o.number));
      if (page >= found.total_pages) return numbers;
    }
  }

  // ---- for the runner --------------------------------------------------------------------------------

  /** The campaign row by id alone (the runner has the job's organisation). */
  async current(organizationId: string, id: string, db: Db = this.#o.db): Promise<CampaignRow | null> {
    return store.campaignById(db, organizationId, id);
  }

  /** Locks the campaign's row: the moves above and the runner's steps serialise on it. */
  async #locked(tx: Db, organizationId: string, id: string): Promise<CampaignRow> {
    const row = await store.campaignById(tx, organizationId, id, true);
    if (!row) throw notFound('Campaign');
    return row;
  }

  lock(tx: Db, organizationId: string, id: string): Promise<CampaignRow | null> {
    return store.campaignById(tx, organizationId, id, true);
  }

  /**
   * Scheduled → active: takes the list's members, less the numbers in `optedOut`, as recipients, in the
   * transaction that makes the campaign active.
   */
  async activate(tx: Db, row: CampaignRow, optedOut: string[]): Promise<CampaignRow> {
    const members = row.listId
      ? ((await store.listById(tx, row.organizationId, row.listId))?.members ?? 0)
      : 0;
    const total = row.listId ? await store.snapshotRecipients(tx, row, optedOut) : 0;
    const now = this.#o.clock.now();
    const active = await store.updateCampaign(tx, row.id, {
      status: 'active',
      total,
      excluded: members - total,
      snapshotAt: now,
      startedAt: now,
    });
    await this.#emitWithProgress(tx, active, (campaign) =>
      eventOf(campaignStarted, row.organizationId, { campaign, excluded: members - total }),
    );
    return active;
  }

  /** Active → completed, when every recipient is final. */
  async complete(tx: Db, row: CampaignRow): Promise<CampaignRow> {
    const done = await store.updateCampaign(tx, row.id, {
      status: 'completed',
      completedAt: this.#o.clock.now(),
    });
    await this.#emitWithProgress(tx, done, (campaign) =>
      eventOf(campaignCompleted, row.organizationId, { campaign }),
    );
    return done;
  }

  /** A new runner for an active or scheduled campaign whose job has ended (it failed, or was cancelled). */
  async revive(organizationId: string, id: string): Promise<void> {
    const before = await store.campaignById(this.#o.db, organizationId, id);
    const job = before?.jobId ? await this.#o.jobs.get(organizationId, before.jobId).catch(() => null) : null;
    if (!before || (job && (job.state === 'queued' || job.state === 'running'))) return;
    await this.#o.db.transaction(async (tx) => {
      const row = await this.#locked(tx, organizationId, id);
      if (row.status !== 'active' && row.status !== 'scheduled') return;
      // Another worker revived it meanwhile.
      if (row.jobId !== before.jobId) return;
      const pending = (await store.progressOf(tx, [id])).get(id)?.pending ?? 0;
      const next = await this.#newJob(tx, organizationId, id, pending, 'system');
      await store.updateCampaign(tx, id, { jobId: next.id });
    });
  }

  /** Campaigns that should have a runner. */
  unfinished(): Promise<{ id: string; organizationId: string; jobId: string | null }[]> {
    return store.unfinishedCampaigns(this.#o.db);
  }

  async #newJob(tx: Db, organizationId: string, id: string, total: number, createdBy: string | null) {
    const { job } = await this.#o.jobs.create(
      organizationId,
      { kind: CAMPAIGN_KIND, input: { campaign_id: id }, total, createdBy },
      tx,
    );
    return job;
  }

  async #emit(tx: Db, events: EventInput[]): Promise<EventRecord[]> {
    return this.#o.events.emitMany(tx, events);
  }

  async #emitWithProgress(
    tx: Db,
    row: CampaignRow,
    event: (campaign: CampaignSnapshot) => EventInput,
  ): Promise<void> {
    const progress = (await store.progressOf(tx, [row.id])).get(row.id) ?? {};
    await this.#emit(tx, [event(snapshotOf(row, progress))]);
  }

  // ---- validation ------------------------------------------------------------------------------------

  /** Checks what a create or update names; the window and zone as columns. */
  async #checked(organizationId: string, input: CampaignChanges, current: CampaignRow | null) {
    if (input.template_id)
      await this.#exists('template_id', () =>
        this.#o.contacts.getTemplate(organizationId, input.template_id!),
      );
    if (input.list_id)
      await this.#exists('list_id', () => this.#o.contacts.getList(organizationId, input.list_id!));
    if (input.provider_account_id)
      await this.#exists('provider_account_id', () =>
        this.#o.providerAccounts.get(organizationId, input.provider_account_id!),
      );
    if (input.route_id)
      await this.#exists('route_id', () => this.#o.sms.route(organizationId, input.route_id!));
    const out: { timeZone?: string; windowDays?: number[]; windowStart?: number; windowEnd?: number } = {};
    if (input.time_zone) {
      if (!isTimeZone(input.time_zone))
        throw validationFailed('time_zone', `${input.time_zone} is not an IANA time zone`);
      out.timeZone = input.time_zone;
    } else if (!current || 'time_zone' in input) out.timeZone = await this.#o.defaultTimeZone(organizationId);
    if (input.window !== undefined || !current) {
      const w = input.window ?? {};
      const days = [...new Set(w.days ?? ALL_DAYS)].sort();
      const start = minutesOf('window.start', w.start ?? '00:00');
      const end = minutesOf('window.end', w.end ?? '24:00');
      if (start >= end) throw validationFailed('window', 'start must be before end');
      if (!days.length) throw validationFailed('window.days', 'name at least one day');
      Object.assign(out, { windowDays: days, windowStart: start, windowEnd: end });
    }
    return out;
  }

  async #exists(field: string, get: () => Promise<unknown>): Promise<void> {
    try {
      await get();
    } catch (err) {
      if (err instanceof AppError && err.status === 404)
        throw validationFailed(field, 'no such resource in this organisation');
      throw err;
    }
  }
}
