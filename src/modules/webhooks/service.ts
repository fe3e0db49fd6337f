// Webhooks: endpoints that receive the organisation's events, signed per Standard Webhooks.
//
// Delivery, per endpoint:
//   queue    every emitted event that matches an enabled endpoint becomes a delivery row, in the
//            emitting transaction, with a wake-up job for that endpoint;
//   lease    one worker at a time holds the endpoint's lease, so its messages go out in order;
//   send     due deliveries are sent oldest first over a kept-alive connection;
//   record   each attempt is written (status, duration, the start of the response) and the delivery
//            succeeds, fails (4xx), or waits for its next try (5xx, 429, network: backoff schedule,
//            or the receiver's Retry-After);
//   pause    after several retryable failures in a row the rest of the queue waits with the failed
//            message instead of hammering a receiver that is down;
//   disable  an endpoint with no success for MAILROOM_WEBHOOK_DISABLE_AFTER is disabled, with an
//            event and a mail to the organisation's admins.
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type { Secrets } from '../../core/crypto.ts';
import type { Db } from '../../core/db.ts';
import { AppError, conflict, notFound, validationFailed } from '../../core/errors.ts';
import { eventTypeMatches } from '../../core/events.ts';
import { newId } from '../../core/ids.ts';
import type { Jobs } from '../../core/jobs.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import { DestinationRefused } from '../../core/ssrf.ts';
import { type EventRecord, type EventsService, eventView } from '../events/service.ts';
import { webhookEndpointDisabled, webhookTest } from './events.ts';
import type { AttemptResult, WebhookSender } from '../../core/webhook-sender.ts';
import { generateWebhookSecret, signingKey, signWebhook } from './signature.ts';
import * as store from './store.ts';
import type { DeliveryRow, EndpointRow } from './tables.ts';

export const DELIVER_QUEUE = 'webhooks.deliver';
export const SWEEP_QUEUE = 'webhooks.sweep';

const BATCH = 100;
const LEASE_MS = 60_000;
/** A drain hands over (to a fresh wake-up job) after this long, well inside the job's expiry. */
const DRAIN_BUDGET_MS = 5 * 60_000;
/** Retryable failures in a row, within one drain, after which the rest of the queue waits. */
const PAUSE_AFTER_FAILURES = 5;
const RETRY_AFTER_MIN_MS = 1_000;
const RETRY_AFTER_MAX_MS = 24 * 3_600_000;
const RETENTION_BATCH = 5_000;

export interface WebhooksOptions {
  db: Db;
  secrets: Secrets;
  events: EventsService;
  jobs: Jobs;
  sender: WebhookSender;
  log: Logger;
  /** Delay before each retry; its length is the number of retries. */
  retryScheduleMs: number[];
  disableAfterMs: number;
  /** Endpoints this process drains at once when nudged by committed events. */
  concurrency: number;
  /** Tells an organisation's admins something happened to their webhooks (after commit). */
  notifyAdmins: (organizationId: string, subject: string, text: string) => Promise<void>;
}

export interface EndpointInput {
  url: string;
  description?: string;
  event_types?: string[];
  enabled?: boolean;
}

type DrainEnd = 'empty' | 'paused' | 'disabled';

/** How long a process trusts its list of an organisation's enabled endpoints (for nudges only). */
const ENDPOINT_LIST_MS = 1_000;

export class WebhooksService {
  readonly #o: WebhooksOptions;
  /** Drains this process started on a nudge; `true` means "look again when done". */
  readonly #nudged = new Map<string, boolean>();
  readonly #endpointLists = new Map<string, { ids: Promise<string[]>; until: number }>();
  readonly #running = new Set<Promise<void>>();
  #stopping = false;

  constructor(options: WebhooksOptions) {
    this.#o = options;
  }

  // ---- endpoints ---------------------------------------------------------------------------------

  async create(
    organizationId: string,
    input: EndpointInput,
  ): Promise<{ endpoint: EndpointRow; secret: string }> {
    await this.#checkUrl(input.url);
    const secret = generateWebhookSecret();
    const endpoint = await store.insertEndpoint(this.#o.db, {
      id: newId(),
      organizationId,
      url: input.url,
      description: input.description ?? '',
      eventTypes: input.event_types ?? [],
      enabled: input.enabled ?? true,
      secret: this.#o.secrets.encrypt(secret),
    });
    return { endpoint, secret };
  }

  async list(organizationId: string, page: PageRequest) {
    const { rows, total } = await store.listEndpoints(this.#o.db, organizationId, page);
    return toPage(rows, total, page);
  }

  async get(organizationId: string, id: string): Promise<EndpointRow> {
    const endpoint = await store.endpointById(this.#o.db, organizationId, id);
    if (!endpoint) throw notFound('Webhook endpoint');
    return endpoint;
  }

  async update(organizationId: string, id: string, input: Partial<EndpointInput>): Promise<EndpointRow> {
    if (input.url !== undefined) await this.#checkUrl(input.url);
    const reenabled = input.enabled === true;
    const endpoint = await store.updateEndpoint(this.#o.db, organizationId, id, {
      url: input.url,
      description: input.description,
      eventTypes: input.event_types,
      enabled: input.enabled,
      // Enabling starts afresh: the failure clock and the reason it was disabled are cleared.
      ...(reenabled ? { disabledAt: null, disabledReason: null, failingSince: null } : {}),
    });
    if (!endpoint) throw notFound('Webhook endpoint');
    if (reenabled) await this.#wake(endpoint.id);
    return endpoint;
  }

  async delete(organizationId: string, id: string): Promise<void> {
    if (!(await store.deleteEndpoint(this.#o.db, organizationId, id))) throw notFound('Webhook endpoint');
  }

  async secret(organizationId: string, id: string): Promise<string> {
    return this.#o.secrets.decrypt((await this.get(organizationId, id)).secret);
  }

  /** A new secret; the old one keeps signing (alongside) for the grace period. */
  async rotateSecret(
    organizationId: string,
    id: string,
    graceSeconds: number,
  ): Promise<{ endpoint: EndpointRow; secret: string }> {
    const current = await this.get(organizationId, id);
    const secret = generateWebhookSecret();
    const endpoint = await store.updateEndpoint(this.#o.db, organizationId, id, {
      secret: this.#o.secrets.encrypt(secret),
      previousSecret: graceSeconds > 0 ? current.secret : null,
      previousSecretExpiresAt: graceSeconds > 0 ? new Date(Date.now() + graceSeconds * 1000) : null,
    });
    if (!endpoint) throw notFound('Webhook endpoint');
    return { endpoint, secret };
  }

  async #checkUrl(url: string): Promise<void> {
    try {
      await this.#o.sender.guard.check(new URL(url));
    } catch (err) {
      if (err instanceof DestinationRefused) throw validationFailed('url', err.message);
      throw err;
    }
  }

  // ---- fan-out: runs inside every emitting transaction ---------------------------------------------

  readonly fanOut = async (tx: Db, events: EventRecord[]): Promise<void> => {
    const organizationIds = [...new Set(events.map((e) => e.organizationId))];
    const endpoints = await store.enabledEndpoints(tx, organizationIds);
    if (endpoints.length === 0) return;
    const rows: store.QueuedDelivery[] = [];
    const woken = new Set<string>();
    for (const event of events) {
      for (const endpoint of endpoints) {
        if (endpoint.organizationId !== event.organizationId) continue;
        if (!eventTypeMatches(endpoint.eventTypes, event.type)) continue;
        rows.push({
          id: newId(),
          organizationId: event.organizationId,
          endpointId: endpoint.id,
          eventId: event.id,
          eventType: event.type,
          nextAttemptAt: event.createdAt,
        });
        woken.add(endpoint.id);
      }
    }
    await store.insertDeliveries(tx, rows);
    for (const endpointId of woken) {
      await this.#o.jobs.send(DELIVER_QUEUE, { endpointId }, { tx, singletonKey: endpointId });
    }
  };

  // ---- delivery ----------------------------------------------------------------------------------

  /**
   * In worker processes, for every committed event: drain the organisation's endpoints now rather
   * than when the job queue next polls. The lease still decides who sends; the jobs remain the
   * guarantee (a nudge lost with a crashed process changes nothing).
   */
  async nudge(organizationId: string): Promise<void> {
    const now = Date.now();
    let list = this.#endpointLists.get(organizationId);
    if (!list || list.until < now) {
      const ids = store.enabledEndpoints(this.#o.db, [organizationId]).then((rows) => rows.map((r) => r.id));
      list = { ids, until: now + ENDPOINT_LIST_MS };
      if (this.#endpointLists.size > 10_000) this.#endpointLists.clear();
      this.#endpointLists.set(organizationId, list);
    }
    for (const endpointId of await list.ids) this.#drainNow(endpointId);
  }

  #drainNow(endpointId: string): void {
    if (this.#nudged.has(endpointId)) {
      this.#nudged.set(endpointId, true);
      return;
    }
    if (this.#stopping || this.#nudged.size >= this.#o.concurrency) return; // the job queue gets to it
    this.#nudged.set(endpointId, false);
    const run = (async () => {
      try {
        do {
          this.#nudged.set(endpointId, false);
          await this.drain(endpointId);
        } while (this.#nudged.get(endpointId));
      } catch (err) {
        this.#o.log.error({ err, endpoint_id: endpointId }, 'webhook drain failed; its job will retry');
      } finally {
        this.#nudged.delete(endpointId);
      }
    })();
    this.#running.add(run);
    void run.finally(() => this.#running.delete(run));
  }

  /** Shutdown: drains started by nudges stop after their current batch (what is left stays queued). */
  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(this.#running);
  }

  /** The job: sends the endpoint's due messages in order while holding its lease. */
  async drain(endpointId: string): Promise<void> {
    const owner = newId();
    for (;;) {
      const endpoint = await store.takeLease(this.#o.db, endpointId, owner, LEASE_MS);
      if (!endpoint) return; // another worker is draining; it looks again after letting go
      let end: DrainEnd;
      try {
        end = await this.#drainLeased(endpoint, owner);
      } finally {
        await store.releaseLease(this.#o.db, endpointId, owner);
      }
      // A wake-up that arrived while we held the lease found it taken: look once more after letting go.
      if (end !== 'empty' || (await store.dueDeliveries(this.#o.db, endpointId, 1)).length === 0) break;
    }
    await this.#wakeForNextRetry(endpointId);
  }

  async #drainLeased(first: EndpointRow, owner: string): Promise<DrainEnd> {
    let endpoint = first;
    let failuresInRow = 0;
    let cursor: string | undefined;
    const began = Date.now();
    for (;;) {
      if (!endpoint.enabled) return 'disabled';
      if (this.#stopping || Date.now() - began > DRAIN_BUDGET_MS) return 'paused';
      const due = await store.dueDeliveries(this.#o.db, endpoint.id, BATCH, cursor);
      if (due.length === 0) return 'empty';
      cursor = due.at(-1)!.delivery.id;
      const signing = this.#signingSecrets(endpoint);
      const results: { delivery: DeliveryRow; result: AttemptResult }[] = [];
      let leaseTakenAt = Date.now();
      for (const item of due) {
        const result = await this.#attempt(endpoint, signing, item);
        results.push({ delivery: item.delivery, result });
        failuresInRow = result.outcome === 'retry' ? failuresInRow + 1 : 0;
        if (failuresInRow >= PAUSE_AFTER_FAILURES) break;
        if (Date.now() - leaseTakenAt > LEASE_MS / 2) {
          if (!(await store.takeLease(this.#o.db, endpoint.id, owner, LEASE_MS))) break;
          leaseTakenAt = Date.now();
        }
      }
      const recorded = await this.#record(endpoint, results);
      if (failuresInRow >= PAUSE_AFTER_FAILURES) {
        await this.#pauseQueue(endpoint.id, recorded.at(-1)?.nextAttemptAt ?? null);
        return 'paused';
      }
      const renewed = await store.takeLease(this.#o.db, endpoint.id, owner, LEASE_MS);
      if (!renewed) return 'paused';
      endpoint = renewed;
    }
  }

  /** The keys to sign with: the current secret's, and the previous one's during its grace period. */
  #signingSecrets(endpoint: EndpointRow): KeyObject[] {
    const keys = [signingKey(this.#o.secrets.decrypt(endpoint.secret))];
    const previous = endpoint.previousSecret;
    if (previous && endpoint.previousSecretExpiresAt && endpoint.previousSecretExpiresAt > new Date()) {
      keys.push(signingKey(this.#o.secrets.decrypt(previous)));
    }
    return keys;
  }

  async #attempt(endpoint: EndpointRow, keys: KeyObject[], item: store.DueDelivery): Promise<AttemptResult> {
    const body = bodyOf(item);
    if (body === null) {
      return {
        outcome: 'failed',
        statusCode: null,
        durationMs: 0,
        responseBody: null,
        error: 'the event is older than the retention period and was deleted',
        retryAfterMs: null,
      };
    }
    const messageId = item.delivery.eventId ?? item.delivery.id;
    const headers = signWebhook(keys, messageId, Math.floor(Date.now() / 1000), body);
    return this.#o.sender.send(endpoint.url, headers, body);
  }

  /** Writes the batch's outcomes and attempts, and moves the endpoint's failure clock, in one transaction. */
  async #record(
    endpoint: EndpointRow,
    results: { delivery: DeliveryRow; result: AttemptResult }[],
  ): Promise<store.DeliveryOutcome[]> {
    const now = new Date();
    const outcomes = results.map(({ delivery, result }) => this.#outcome(delivery, result, now));
    let failingSince = endpoint.failingSince;
    for (const { result } of results) {
      if (result.outcome === 'succeeded') failingSince = null;
      else failingSince ??= now;
    }
    const disable = failingSince !== null && now.getTime() - failingSince.getTime() >= this.#o.disableAfterMs;
    await this.#o.db.transaction(async (tx) => {
      await store.updateDeliveries(tx, outcomes);
      await store.insertAttempts(
        tx,
        results.map(({ delivery, result }) => ({
          id: newId(),
          organizationId: delivery.organizationId,
          deliveryId: delivery.id,
          endpointId: delivery.endpointId,
          attemptedAt: now,
          durationMs: result.durationMs,
          statusCode: result.statusCode,
          responseBody: result.responseBody,
          error: result.error,
        })),
      );
      if (failingSince?.getTime() !== endpoint.failingSince?.getTime()) {
        await store.setFailingSince(tx, endpoint.id, failingSince);
      }
      if (disable) await this.#disable(tx, endpoint, failingSince!);
    });
    if (disable) {
      await this.#o
        .notifyAdmins(
          endpoint.organizationId,
          'A Mailroom webhook endpoint was disabled',
          `The webhook endpoint ${endpoint.url} (${endpoint.id}) has failed every delivery since ${failingSince!.toISOString()} and was disabled.\n\nFix the receiver, then enable it again with PATCH /v1/webhooks/${endpoint.id} {"enabled": true}; failed deliveries can be replayed with POST /v1/webhooks/deliveries/{id}/replay.`,
        )
        .catch((err) =>
          this.#o.log.error({ err, endpoint_id: endpoint.id }, 'could not notify about a disabled endpoint'),
        );
    }
    return outcomes;
  }

  #outcome(delivery: DeliveryRow, result: AttemptResult, now: Date): store.DeliveryOutcome {
    const attempts = delivery.attempts + 1;
    const base = {
      id: delivery.id,
      attempts,
      lastAttemptAt: now,
      lastStatusCode: result.statusCode,
      lastError: result.error,
    };
    if (result.outcome === 'succeeded') return { ...base, status: 'succeeded', nextAttemptAt: null };
    const schedule = this.#o.retryScheduleMs;
    if (result.outcome === 'failed' || attempts > schedule.length) {
      return { ...base, status: 'failed', nextAttemptAt: null };
    }
    const delay =
      result.retryAfterMs !== null
        ? Math.min(Math.max(result.retryAfterMs, RETRY_AFTER_MIN_MS), RETRY_AFTER_MAX_MS)
        : schedule[attempts - 1];
    return { ...base, status: 'pending', nextAttemptAt: new Date(now.getTime() + delay) };
  }

  async #disable(tx: Db, endpoint: EndpointRow, failingSince: Date): Promise<void> {
    const reason = `no successful delivery since ${failingSince.toISOString()}`;
    await store.updateEndpoint(tx, endpoint.organizationId, endpoint.id, {
      enabled: false,
      disabledAt: new Date(),
      disabledReason: reason,
    });
    await this.#o.events.emit(tx, webhookEndpointDisabled, endpoint.organizationId, {
      endpoint_id: endpoint.id,
      url: endpoint.url,
      failing_since: failingSince.toISOString(),
      reason,
    });
    this.#o.log.warn(
      { endpoint_id: endpoint.id, organization_id: endpoint.organizationId },
      'webhook endpoint disabled',
    );
  }

  /** The receiver looks down: what is still due waits until the failed message's next try. */
  async #pauseQueue(endpointId: string, until: Date | null): Promise<void> {
    if (until) await store.postponeDue(this.#o.db, endpointId, until);
  }

  async #wakeForNextRetry(endpointId: string): Promise<void> {
    const at = await store.earliestPending(this.#o.db, endpointId);
    if (!at) return;
    // One wake-up per distinct time: an earlier retry is never blocked by a later one already queued.
    await this.#o.jobs.send(
      DELIVER_QUEUE,
      { endpointId },
      { startAfter: at, singletonKey: `${endpointId}:${at.getTime()}` },
    );
  }

  async #wake(endpointId: string): Promise<void> {
    await this.#o.jobs.send(DELIVER_QUEUE, { endpointId }, { singletonKey: endpointId });
  }

  /** Safety net (cron): wakes endpoints with due messages that nobody is draining. */
  async sweep(): Promise<void> {
    for (const endpointId of await store.endpointsWithDueDeliveries(this.#o.db, 1000)) {
      await this.#wake(endpointId);
    }
  }

  async deleteOlderThan(before: Date): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await store.deleteDeliveriesBefore(this.#o.db, before, RETENTION_BATCH);
      total += n;
      if (n < RETENTION_BATCH) return total;
    }
  }

  // ---- test, replay, inspection ------------------------------------------------------------------

  /** Sends a `webhook.test` message now and returns the attempt (no retries). */
  async test(organizationId: string, endpointId: string) {
    const endpoint = await this.get(organizationId, endpointId);
    const id = newId();
    const now = new Date();
    const payload = eventView({
      id,
      type: webhookTest.type,
      organizationId,
      createdAt: now,
      data: webhookTest.schema.parse({ endpoint_id: endpoint.id, message: 'Test message from Mailroom' }),
    });
    const delivery = await store.insertDelivery(this.#o.db, {
      id,
      organizationId,
      endpointId: endpoint.id,
      eventType: webhookTest.type,
      payload,
      status: 'pending',
      nextAttemptAt: null,
    });
    const result = await this.#attempt(endpoint, this.#signingSecrets(endpoint), { delivery, event: null });
    // A test is one attempt: a retryable failure is reported, not retried.
    const final = result.outcome === 'retry' ? { ...result, outcome: 'failed' as const } : result;
    await this.#record(endpoint, [{ delivery, result: final }]);
    return this.delivery(organizationId, id);
  }

  /** Sends a delivery's message again, as a new delivery (same webhook-id, so receivers can de-duplicate). */
  async replay(organizationId: string, deliveryId: string): Promise<DeliveryRow> {
    const original = await store.deliveryById(this.#o.db, organizationId, deliveryId);
    if (!original) throw notFound('Webhook delivery');
    const endpoint = await this.get(organizationId, original.endpointId);
    if (!endpoint.enabled) throw conflict('The endpoint is disabled; enable it before replaying to it');
    if (original.status === 'pending') throw conflict('This delivery is still pending; it will be sent');
    if (original.eventId && !(await this.#o.events.exists(organizationId, original.eventId))) {
      throw new AppError(
        410,
        'event_expired',
        'The event is older than the retention period and was deleted',
      );
    }
    const replay = await this.#o.db.transaction(async (tx) => {
      const row = await store.insertDelivery(tx, {
        id: newId(),
        organizationId,
        endpointId: endpoint.id,
        eventId: original.eventId,
        eventType: original.eventType,
        payload: original.payload,
        replayOf: original.id,
        nextAttemptAt: new Date(),
      });
      await this.#o.jobs.send(DELIVER_QUEUE, { endpointId: endpoint.id }, { tx, singletonKey: endpoint.id });
      return row;
    });
    this.#o.jobs.wake(DELIVER_QUEUE);
    return replay;
  }

  async listDeliveries(organizationId: string, filter: store.DeliveryFilter, page: PageRequest) {
    if (filter.endpointId) await this.get(organizationId, filter.endpointId);
    const { rows, total } = await store.listDeliveries(this.#o.db, organizationId, filter, page);
    return toPage(rows, total, page);
  }

  async delivery(organizationId: string, id: string) {
    const delivery = await store.deliveryById(this.#o.db, organizationId, id);
    if (!delivery) throw notFound('Webhook delivery');
    return { delivery, attempts: await store.attemptsOf(this.#o.db, id) };
  }
}

function bodyOf(item: store.DueDelivery): string | null {
  if (item.delivery.payload) return JSON.stringify(item.delivery.payload);
  return item.event ? JSON.stringify(eventView(item.event)) : null;
}
