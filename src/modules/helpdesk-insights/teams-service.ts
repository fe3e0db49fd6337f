// Microsoft Teams notifications: channels (a Workflows incoming webhook each) told about ticket events of
// the desks they follow, as Adaptive Cards.
//
//   queue    inside the transaction that emits a ticket event, each matching channel gets a delivery row
//            and a job (so a card exists exactly when the change commits);
//   post     a worker takes the delivery's lease, builds the card from the ticket as the event saw it (the
//            desk's name and the assignee's address read at that moment), and posts it with the webhook
//            sender: its DNS lookup refuses private addresses (SSRF), redirects are not followed;
//   record   2xx succeeds; 4xx fails for good (Teams refuses the card); 5xx, 429 and network errors are
//            retried on MAILROOM_WEBHOOK_RETRY_SCHEDULE (or the receiver's Retry-After), then fail.
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.ts';
import type { Secrets } from '../../core/crypto.ts';
import type { Db } from '../../core/db.ts';
import { conflict, notFound, validationFailed } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { Jobs } from '../../core/jobs.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import { DestinationRefused } from '../../core/ssrf.ts';
import type { EventRecord } from '../events/service.ts';
import type { HelpdeskService } from '../helpdesk/service.ts';
import type { AttemptResult, WebhookSender } from '../../core/webhook-sender.ts';
import * as store from './store.ts';
import type { ChannelRow, DeliveryStatus, TeamsDeliveryRow, TeamsEventType } from './tables.ts';
import { TEAMS_EVENT_TYPES } from './tables.ts';
import { type TicketSnapshotLike, teamsCard } from './teams-card.ts';

export const TEAMS_QUEUE = 'helpdesk-teams.post';
export const TEAMS_SWEEP_QUEUE = 'helpdesk-teams.sweep';

const LEASE_MS = 60_000;
const RETRY_AFTER_MIN_MS = 1_000;
const RETRY_AFTER_MAX_MS = 24 * 3_600_000;
const RETENTION_BATCH = 5_000;

export interface TeamsOptions {
  db: Db;
  secrets: Secrets;
  jobs: Jobs;
  clock: Clock;
  sender: WebhookSender;
  helpdesk: HelpdeskService;
  log: Logger;
  /** Delay before each retry; its length is the number of retries. */
  retryScheduleMs: number[];
  /** The link of the card's "Open ticket" button. */
  ticketUrl: (ticket: { id: string; number: number }) => string;
}

export interface ChannelInput {
  name: string;
  webhook_url: string;
  desk_ids?: string[];
  event_types?: TeamsEventType[];
  enabled?: boolean;
}

/** The notification an event is, if any: `ticket.updated` counts when it gave the ticket an assignee. */
export function notificationOf(event: { type: string; data: unknown }): TeamsEventType | null {
  const data = event.data as { ticket?: { desk_id?: unknown }; changes?: Record<string, [unknown, unknown]> };
  if (!data || typeof data !== 'object' || typeof data.ticket?.desk_id !== 'string') return null;
  if (event.type === 'ticket.updated') {
    const change = data.changes?.assignee_id;
    return Array.isArray(change) && typeof change[1] === 'string' ? 'ticket.assigned' : null;
  }
  return (TEAMS_EVENT_TYPES as readonly string[]).includes(event.type) && event.type !== 'ticket.assigned'
    ? (event.type as TeamsEventType)
    : null;
}

/** What the API shows of a webhook URL (its query string and path are its credentials). */
export function urlHint(url: string): string {
  const u = new URL(url);
  const tail = `${u.pathname}${u.search}`.replace(/[^A-Za-z0-9]/g, '').slice(-4);
  return `${u.protocol}//${u.host}/…${tail}`;
}

export class TeamsService {
  readonly #o: TeamsOptions;

  constructor(options: TeamsOptions) {
    this.#o = options;
  }

  // ---- channels -------------------------------------------------------------------------------------

  async create(organizationId: string, input: ChannelInput): Promise<ChannelRow> {
    await this.#checkUrl(input.webhook_url);
    const deskIds = await this.#checkDesks(organizationId, input.desk_ids ?? []);
    const channel = await store.insertChannel(this.#o.db, {
      id: newId(),
      organizationId,
      name: input.name,
      webhookUrl: this.#o.secrets.encrypt(input.webhook_url),
      urlHint: urlHint(input.webhook_url),
      deskIds,
      eventTypes: [...new Set(input.event_types ?? TEAMS_EVENT_TYPES)],
      enabled: input.enabled ?? true,
    });
    if (!channel) throw conflict(`a Teams channel named "${input.name}" exists`);
    return channel;
  }

  async list(organizationId: string, page: PageRequest) {
    const { rows, total } = await store.listChannels(this.#o.db, organizationId, page);
    return toPage(rows, total, page);
  }

  async get(organizationId: string, id: string): Promise<ChannelRow> {
    const channel = await store.channelById(this.#o.db, organizationId, id);
    if (!channel) throw notFound('Teams channel');
    return channel;
  }

  async update(organizationId: string, id: string, input: Partial<ChannelInput>): Promise<ChannelRow> {
    await this.get(organizationId, id);
    if (input.webhook_url !== undefined) await this.#checkUrl(input.webhook_url);
    const deskIds =
      input.desk_ids === undefined ? undefined : await this.#checkDesks(organizationId, input.desk_ids);
    const updated = await store.updateChannel(this.#o.db, organizationId, id, {
      name: input.name,
      ...(input.webhook_url !== undefined && {
        webhookUrl: this.#o.secrets.encrypt(input.webhook_url),
        urlHint: urlHint(input.webhook_url),
      }),
      deskIds,
      eventTypes: input.event_types ? [...new Set(input.event_types)] : undefined,
      enabled: input.enabled,
    });
    if (updated === 'conflict') throw conflict(`a Teams channel named "${input.name}" exists`);
    if (!updated) throw notFound('Teams channel');
    return updated;
  }

  async delete(organizationId: string, id: string): Promise<void> {
    if (!(await store.deleteChannel(this.#o.db, organizationId, id))) throw notFound('Teams channel');
  }

  async deliveries(
    organizationId: string,
    channelId: string,
    status: DeliveryStatus | undefined,
    page: PageRequest,
  ) {
    await this.get(organizationId, channelId);
    const { rows, total } = await store.listDeliveries(this.#o.db, organizationId, channelId, status, page);
    return toPage(rows, total, page);
  }

  async #checkUrl(url: string): Promise<void> {
    try {
      await this.#o.sender.guard.check(new URL(url));
    } catch (err) {
      if (err instanceof DestinationRefused) throw validationFailed('webhook_url', err.message);
      throw err;
    }
  }

  async #checkDesks(organizationId: string, ids: string[]): Promise<string[]> {
    const unique = [...new Set(ids.map((id) => id.toLowerCase()))];
    for (const id of unique) {
      await this.#o.helpdesk.desk(organizationId, id).catch((err: { status?: number }) => {
        if (err.status === 404) throw validationFailed('desk_ids', `no such desk: ${id}`);
        throw err;
      });
    }
    return unique;
  }

  // ---- fan-out: inside every emitting transaction ---------------------------------------------------

  readonly fanOut = async (tx: Db, events: EventRecord[]): Promise<void> => {
    const wanted = events.flatMap((event) => {
      const kind = notificationOf(event);
      return kind ? [{ event, kind }] : [];
    });
    if (wanted.length === 0) return;
    const channels = await store.enabledChannels(tx, [...new Set(wanted.map((w) => w.event.organizationId))]);
    if (channels.length === 0) return;
    const rows: typeof import('./tables.ts').teamsDeliveries.$inferInsert[] = [];
    for (const { event, kind } of wanted) {
      const data = event.data as Record<string, unknown> & { ticket: { id: string; desk_id: string } };
      for (const channel of channels) {
        if (channel.organizationId !== event.organizationId) continue;
        if (!channel.eventTypes.includes(kind)) continue;
        if (channel.deskIds.length && !channel.deskIds.includes(data.ticket.desk_id)) continue;
        rows.push({
          id: newId(),
          organizationId: event.organizationId,
          channelId: channel.id,
          eventId: event.id,
          kind,
          ticketId: data.ticket.id,
          data,
          nextAttemptAt: event.createdAt,
        });
      }
    }
    if (rows.length === 0) return;
    await store.insertDeliveries(tx, rows);
    await this.#o.jobs.sendMany(
      TEAMS_QUEUE,
      rows.map((r) => ({ delivery_id: r.id })),
      { tx },
    );
  };

  // ---- posting --------------------------------------------------------------------------------------

  /** The job: one attempt at one delivery; a retry is queued with the outcome. */
  async post(deliveryId: string): Promise<void> {
    const delivery = await store.claimDelivery(this.#o.db, deliveryId, LEASE_MS);
    if (!delivery) return; // finished, or another worker is posting it
    const channel = await store.channelById(this.#o.db, delivery.organizationId, delivery.channelId);
    if (!channel) return; // deleted with its deliveries
    const result: AttemptResult = channel.enabled
      ? await this.#send(channel, delivery)
      : failure('the channel is disabled');
    const outcome = this.#outcome(delivery, result);
    await this.#o.db.transaction(async (tx) => {
      await store.recordDelivery(tx, delivery.id, outcome);
      await store.recordChannelOutcome(
        tx,
        channel.id,
        result.outcome === 'succeeded',
        result.error ?? statusError(result),
      );
      if (outcome.status === 'pending')
        await this.#o.jobs.send(
          TEAMS_QUEUE,
          { delivery_id: delivery.id },
          { tx, startAfter: outcome.nextAttemptAt!, singletonKey: `${delivery.id}:${outcome.attempts}` },
        );
    });
  }

  /** Posts a test card now and reports the attempt (not retried). */
  async test(organizationId: string, channelId: string): Promise<TeamsDeliveryRow> {
    const channel = await this.get(organizationId, channelId);
    const id = newId();
    await store.insertDeliveries(this.#o.db, [
      {
        id,
        organizationId,
        channelId,
        kind: 'test',
        data: { message: `Channel "${channel.name}" receives helpdesk notifications from Mailroom.` },
        nextAttemptAt: null,
      },
    ]);
    const delivery = (await store.claimDelivery(this.#o.db, id, LEASE_MS))!;
    const result = await this.#send(channel, delivery);
    const outcome = this.#outcome(
      delivery,
      result.outcome === 'retry' ? { ...result, outcome: 'failed' } : result,
    );
    await this.#o.db.transaction(async (tx) => {
      await store.recordDelivery(tx, id, outcome);
      await store.recordChannelOutcome(
        tx,
        channel.id,
        result.outcome === 'succeeded',
        result.error ?? statusError(result),
      );
    });
    return { ...delivery, ...outcome, leaseUntil: null };
  }

  async #send(channel: ChannelRow, delivery: TeamsDeliveryRow): Promise<AttemptResult> {
    let url: string;
    try {
      url = this.#o.secrets.decrypt(channel.webhookUrl);
    } catch {
      return failure('the webhook URL cannot be decrypted (was MAILROOM_SECRET_KEY changed?)');
    }
    const card = await this.card(delivery);
    const body = JSON.stringify(card);
    const headers = {
      // A stable id per card (the same on every retry), so a flow can drop duplicates.
      'webhook-id': delivery.id,
      'webhook-timestamp': String(Math.floor(this.#o.clock.now().getTime() / 1000)),
    };
    return this.#o.sender.send(url, headers, body);
  }

  /** The card of a delivery: the ticket as its event saw it, with names read now. */
  async card(delivery: Pick<TeamsDeliveryRow, 'organizationId' | 'kind' | 'data'>) {
    const data = delivery.data;
    const ticket = (data.ticket ?? null) as TicketSnapshotLike | null;
    const org = delivery.organizationId;
    const directory = this.#o.helpdesk.directory;
    const agentEmail = async (userId: unknown) =>
      typeof userId === 'string'
        ? directory.agent(org, userId).then(
            (a) => a.email,
            () => null,
          )
        : null;
    const actor = data.actor as { type?: string; id?: unknown } | undefined;
    const [deskName, assignee, actorName] = await Promise.all([
      ticket
        ? this.#o.helpdesk.desk(org, ticket.desk_id).then(
            (d) => d.name,
            () => null,
          )
        : null,
      ticket ? agentEmail(ticket.assignee_id) : null,
      actor?.type === 'user' ? agentEmail(actor.id) : null,
    ]);
    return teamsCard(delivery.kind, data, ticket, {
      deskName,
      assignee,
      actor: actorName,
      ticketUrl: ticket ? this.#o.ticketUrl(ticket) : null,
    });
  }

  #outcome(delivery: TeamsDeliveryRow, result: AttemptResult): store.DeliveryOutcome {
    const now = new Date();
    const attempts = delivery.attempts + 1;
    const base = {
      attempts,
      lastAttemptAt: now,
      lastStatusCode: result.statusCode,
      lastError: result.error ?? statusError(result),
    };
    if (result.outcome === 'succeeded') return { ...base, status: 'succeeded', nextAttemptAt: null };
    const schedule = this.#o.retryScheduleMs;
    if (result.outcome === 'failed' || attempts > schedule.length)
      return { ...base, status: 'failed', nextAttemptAt: null };
    const delay =
      result.retryAfterMs !== null
        ? Math.min(Math.max(result.retryAfterMs, RETRY_AFTER_MIN_MS), RETRY_AFTER_MAX_MS)
        : schedule[attempts - 1]!;
    return { ...base, status: 'pending', nextAttemptAt: new Date(now.getTime() + delay) };
  }

  /** Safety net (cron): deliveries whose wake-up was lost get a new one. */
  async sweep(): Promise<void> {
    const ids = await store.strandedDeliveries(this.#o.db, 1000);
    if (ids.length)
      await this.#o.jobs.sendMany(
        TEAMS_QUEUE,
        ids.map((delivery_id) => ({ delivery_id })),
      );
  }

  async deleteOlderThan(before: Date): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await store.deleteFinishedBefore(this.#o.db, before, RETENTION_BATCH);
      total += n;
      if (n < RETENTION_BATCH) return total;
    }
  }
}

function failure(error: string): AttemptResult {
  return {
    outcome: 'failed',
    statusCode: null,
    durationMs: 0,
    responseBody: null,
    error,
    retryAfterMs: null,
  };
}

/** What a non-2xx answer said, for the delivery log. */
function statusError(result: AttemptResult): string | null {
  if (result.outcome === 'succeeded' || result.statusCode === null) return null;
  const said = result.responseBody?.trim().slice(0, 300);
  return `HTTP ${result.statusCode}${said ? `: ${said}` : ''}`;
}
