// SMS: the send API and its rules (numbers normalised to E.164, bodies measured in parts, a route or
// account chosen, opted-out numbers refused, idempotency), routing rules, settings and gateway throttles,
// the opt-out list, received messages and their keywords, receipts, conversations and statistics. The
// queue itself is worked by the dispatcher (dispatcher.ts); this file decides what goes into it.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.ts';
import type { Db } from '../../core/db.ts';
import { AppError, conflict, notFound, validationFailed } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import type { SmsProviderEvent } from '../../providers/sms/types.ts';
import { type EventInput, type EventsService, eventOf } from '../events/service.ts';
import type { ProviderAccountsService } from '../provider-accounts/service.ts';
import { smsOptedIn, smsOptedOut, smsReceived } from './events.ts';
import { isRegion, normalizeNumber, parseNumber } from './numbers.ts';
import { measure } from './segments.ts';
import * as store from './store.ts';
import type {
  SmsConversationRow,
  SmsKeyword,
  SmsMessageRow,
  SmsOptOutRow,
  SmsRouteRow,
  SmsSettingsRow,
  SmsStatus,
  SmsThrottleRow,
} from './tables.ts';
import { cancelledEvent, messageView, queuedEvent, type SmsMessageView, statusEvent } from './views.ts';
import { isTimeZone } from '../../core/zoned-time.ts';

export type { SmsMessageView } from './views.ts';
/** An open transaction (or the database): the caller's work and the queueing commit together. */
export type Tx = Db;

export interface SmsSendInput {
  to: string;
  body: string;
  sender?: string;
  providerAccountId?: string;
  routeId?: string;
  sendAt?: Date;
  tags?: string[];
  campaignId?: string;
  campaignRecipientId?: string;
}

/** The gateways SMS can go through (provider accounts of these providers). */
export const SMS_PROVIDERS = ['android-sms-gateway', 'twilio', 'smpp'] as const;

export const MAX_BATCH = 1_000;
const MAX_TAGS = 20;
const MAX_BODY = 5_000;
/** Keywords of the CTIA set (case-insensitive, the whole message). */
const KEYWORDS: Record<string, SmsKeyword> = {
  STOP: 'stop',
  STOPALL: 'stop',
  UNSUBSCRIBE: 'stop',
  CANCEL: 'stop',
  END: 'stop',
  QUIT: 'stop',
  START: 'start',
  UNSTOP: 'start',
  YES: 'start',
  HELP: 'help',
  INFO: 'help',
};
const SETTINGS_TTL_MS = 5_000;
/** NUL (which text columns cannot hold) and unpaired surrogates (which are not text). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is what the test is for
const NOT_TEXT = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export function isText(value: string): boolean {
  return !NOT_TEXT.test(value);
}

/** The keyword a received message is, if it is one. */
export function keywordOf(body: string): SmsKeyword | null {
  const word = body
    .trim()
    .replace(/[.!]+$/, '')
    .toUpperCase();
  return KEYWORDS[word] ?? null;
}

export interface SmsSettings {
  defaultRegion: string;
  defaultSender: string | null;
  maxParts: number;
  quietHours: { start: string; end: string } | null;
  timeZone: string;
  helpText: string;
  updatedAt: Date | null;
}

export interface SmsSettingsInput {
  default_region?: string;
  default_sender?: string | null;
  max_parts?: number;
  quiet_hours?: { start: string; end: string } | null;
  time_zone?: string;
  help_text?: string;
  throttles?: {
    provider_account_id: string;
    per_second?: number | null;
    daily_limit?: number | null;
    min_interval_seconds?: number;
    max_interval_seconds?: number;
  }[];
}

export interface SmsRouteInput {
  name: string;
  prefix: string;
  provider_account_id: string;
  failover_account_id?: string | null;
}

/** A message that could not be queued: its code, and the status the API answers. */
export class SendRefused extends AppError {}

export interface SmsServiceOptions {
  db: Db;
  accounts: ProviderAccountsService;
  clock: Clock;
  events: EventsService;
  log: Logger;
  defaults: { region: string; helpText: string; maxParts: number };
  /** How far ahead send_at may be. */
  maxScheduleMs: number;
}

/** A message ready to insert, or why it cannot be. */
type Prepared = { row: store.NewSmsMessage } | { refused: AppError };

/** What a batch of gateway reports did, for the metrics (counts by provider). */
export interface ReportTally {
  sent: Map<string, number>;
  delivered: Map<string, number>;
  failed: Map<string, number>;
  received: Map<string, number>;
}

export interface GatewayReport {
  account: { id: string; organizationId: string; provider: string };
  event: SmsProviderEvent;
}

const count = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);

export class SmsService {
  readonly #o: SmsServiceOptions;
  readonly #db: Db;
  readonly #settings = new Map<string, { at: number; settings: SmsSettings }>();
  readonly #throttles = new Map<string, { at: number; throttle: SmsThrottleRow | null }>();
  #onQueued: () => void = () => {};

  constructor(options: SmsServiceOptions) {
    this.#o = options;
    this.#db = options.db;
  }

  /** Called after messages were queued by this process outside a caller's transaction. */
  onQueued(fn: () => void): void {
    this.#onQueued = fn;
  }

  // ---- settings and throttles ---------------------------------------------------------------------------

  /** The organisation's settings (defaults until it saves its own), cached a few seconds. */
  async settingsFor(organizationId: string, tx?: Tx): Promise<SmsSettings> {
    const cached = this.#settings.get(organizationId);
    if (!tx && cached && Date.now() - cached.at < SETTINGS_TTL_MS) return cached.settings;
    const row = await store.settingsOf(tx ?? this.#db, organizationId);
    const settings = row ? settingsOf(row) : this.#defaults();
    this.#settings.set(organizationId, { at: Date.now(), settings });
    return settings;
  }

  #defaults(): SmsSettings {
    const d = this.#o.defaults;
    return {
      defaultRegion: d.region,
      defaultSender: null,
      maxParts: d.maxParts,
      quietHours: null,
      timeZone: 'UTC',
      helpText: d.helpText,
      updatedAt: null,
    };
  }

  async settings(organizationId: string) {
    const [settings, throttles] = await Promise.all([
      this.settingsFor(organizationId, this.#db),
      store.throttlesOf(this.#db, organizationId),
    ]);
    return { settings, throttles };
  }

  async updateSettings(organizationId: string, input: SmsSettingsInput) {
    const current = await this.settingsFor(organizationId, this.#db);
    const next: SmsSettings = {
      ...current,
      defaultRegion: input.default_region?.toUpperCase() ?? current.defaultRegion,
      defaultSender: input.default_sender === undefined ? current.defaultSender : input.default_sender,
      maxParts: input.max_parts ?? current.maxParts,
      quietHours: input.quiet_hours === undefined ? current.quietHours : input.quiet_hours,
      timeZone: input.time_zone ?? current.timeZone,
      helpText: input.help_text ?? current.helpText,
    };
    if (!isRegion(next.defaultRegion))
      throw validationFailed(
        'default_region',
        `"${next.defaultRegion}" is not a region libphonenumber knows`,
      );
    if (!isTimeZone(next.timeZone))
      throw validationFailed('time_zone', `"${next.timeZone}" is not a time zone`);
    if (next.defaultSender !== null)
      next.defaultSender = senderOf(next.defaultSender, next.defaultRegion, 'default_sender');
    if (next.quietHours && next.quietHours.start === next.quietHours.end)
      throw validationFailed('quiet_hours', 'start and end must differ');
    const throttles = input.throttles ? await this.#throttleRows(organizationId, input.throttles) : undefined;
    await this.#db.transaction(async (tx) => {
      await store.upsertSettings(tx, {
        organizationId,
        defaultRegion: next.defaultRegion,
        defaultSender: next.defaultSender,
        maxParts: next.maxParts,
        quietStart: next.quietHours?.start ?? null,
        quietEnd: next.quietHours?.end ?? null,
        timeZone: next.timeZone,
        helpText: next.helpText,
      });
      if (throttles) await store.replaceThrottles(tx, organizationId, throttles);
    });
    this.#settings.delete(organizationId);
    for (const t of throttles ?? []) this.#throttles.delete(t.providerAccountId);
    return this.settings(organizationId);
  }

  async #throttleRows(organizationId: string, input: NonNullable<SmsSettingsInput['throttles']>) {
    const ids = input.map((t) => t.provider_account_id);
    if (new Set(ids).size !== ids.length)
      throw validationFailed('throttles', 'each provider account may have one throttle');
    await this.#requireAccounts(this.#db, organizationId, ids, 'throttles');
    return input.map((t, i): SmsThrottleRow => {
      const min = Math.round((t.min_interval_seconds ?? 0) * 1000);
      const max = Math.round((t.max_interval_seconds ?? t.min_interval_seconds ?? 0) * 1000);
      if (max < min)
        throw validationFailed(
          `throttles.${i}.max_interval_seconds`,
          'must not be below min_interval_seconds',
        );
      return {
        providerAccountId: t.provider_account_id,
        organizationId,
        perSecond: t.per_second ?? null,
        dailyLimit: t.daily_limit ?? null,
        minIntervalMs: min,
        maxIntervalMs: max,
      };
    });
  }

  /** The account's throttle (null: none), cached a few seconds. */
  async throttleFor(accountId: string): Promise<SmsThrottleRow | null> {
    const cached = this.#throttles.get(accountId);
    if (cached && Date.now() - cached.at < SETTINGS_TTL_MS) return cached.throttle;
    const throttle = (await store.throttleOf(this.#db, accountId)) ?? null;
    this.#throttles.set(accountId, { at: Date.now(), throttle });
    return throttle;
  }

  /** 404 unless every id is an SMS gateway account of the organisation. */
  async #requireAccounts(db: Db, organizationId: string, ids: string[], field: string): Promise<void> {
    const found = await this.#o.accounts.refs(db, organizationId, [...new Set(ids)]);
    for (const id of ids) {
      const account = found.get(id);
      if (!account) throw notFound('Provider account');
      if (!(SMS_PROVIDERS as readonly string[]).includes(account.provider))
        throw validationFailed(
          field,
          `provider account ${id} is a ${account.provider} account, not an SMS gateway`,
        );
    }
  }

  // ---- routes -------------------------------------------------------------------------------------------

  listRoutes(organizationId: string): Promise<SmsRouteRow[]> {
    return store.routesOf(this.#db, organizationId);
  }

  async route(organizationId: string, id: string): Promise<SmsRouteRow> {
    const row = await store.routeById(this.#db, organizationId, id);
    if (!row) throw notFound('SMS route');
    return row;
  }

  async createRoute(organizationId: string, input: SmsRouteInput): Promise<SmsRouteRow> {
    const route = this.#routeValues(input);
    await this.#requireAccounts(
      this.#db,
      organizationId,
      [route.providerAccountId, ...(route.failoverAccountId ? [route.failoverAccountId] : [])],
      'provider_account_id',
    );
    if ((await store.routesOf(this.#db, organizationId)).some((r) => r.prefix === route.prefix))
      throw conflict(`A route for prefix ${route.prefix} exists already`);
    return store.insertRoute(this.#db, { id: newId(), organizationId, ...route });
  }

  async updateRoute(organizationId: string, id: string, input: Partial<SmsRouteInput>): Promise<SmsRouteRow> {
    const existing = await this.route(organizationId, id);
    const route = this.#routeValues({
      name: input.name ?? existing.name,
      prefix: input.prefix ?? existing.prefix,
      provider_account_id: input.provider_account_id ?? existing.providerAccountId,
      failover_account_id:
        input.failover_account_id === undefined ? existing.failoverAccountId : input.failover_account_id,
    });
    await this.#requireAccounts(
      this.#db,
      organizationId,
      [route.providerAccountId, ...(route.failoverAccountId ? [route.failoverAccountId] : [])],
      'provider_account_id',
    );
    if (
      (await store.routesOf(this.#db, organizationId)).some((r) => r.prefix === route.prefix && r.id !== id)
    )
      throw conflict(`A route for prefix ${route.prefix} exists already`);
    const row = await store.updateRoute(this.#db, organizationId, id, route);
    if (!row) throw notFound('SMS route');
    return row;
  }

  async deleteRoute(organizationId: string, id: string): Promise<void> {
    if (!(await store.deleteRoute(this.#db, organizationId, id))) throw notFound('SMS route');
  }

  #routeValues(input: SmsRouteInput) {
    const prefix = input.prefix.trim().replace(/^\+/, '');
    if (prefix !== '*' && !/^[1-9]\d{0,14}$/.test(prefix))
      throw validationFailed('prefix', 'must be calling-code digits such as 44 or 1415, or * for any number');
    if (input.failover_account_id && input.failover_account_id === input.provider_account_id)
      throw validationFailed('failover_account_id', 'must differ from provider_account_id');
    return {
      name: input.name,
      prefix,
      providerAccountId: input.provider_account_id,
      failoverAccountId: input.failover_account_id ?? null,
    };
  }

  // ---- sending ------------------------------------------------------------------------------------------

  /** Queues one message. With an idempotency key already used for the same request, the earlier message. */
  async send(
    organizationId: string,
    input: SmsSendInput,
    opts: { idempotencyKey?: string; tx?: Tx } = {},
  ): Promise<SmsMessageView> {
    return (await this.submit(organizationId, input, opts)).message;
  }

  /** As send, telling whether the idempotency key repeated an earlier request (the API answers 200 then). */
  async submit(
    organizationId: string,
    input: SmsSendInput,
    opts: { idempotencyKey?: string; tx?: Tx } = {},
  ): Promise<{ message: SmsMessageView; replayed: boolean }> {
    const key = opts.idempotencyKey;
    const requestHash = key ? hashOf(input) : null;
    const run = async (tx: Tx) => {
      if (key) {
        const earlier = await this.#replay(tx, organizationId, key, requestHash!);
        if (earlier) return { message: earlier, replayed: true };
      }
      const [prepared] = await this.#prepare(tx, organizationId, [input]);
      if ('refused' in prepared) throw prepared.refused;
      prepared.row.idempotencyKey = key ?? null;
      prepared.row.requestHash = requestHash;
      const [row] = await this.#enqueue(tx, [prepared.row]);
      if (row) return { message: messageView(row), replayed: false };
      // The same key or campaign recipient was queued by a concurrent request: its message answers.
      const earlier = key
        ? await this.#replay(tx, organizationId, key, requestHash!)
        : (await store.messagesByRecipients(tx, organizationId, [input.campaignRecipientId!])).map(
            messageView,
          )[0];
      if (!earlier) throw new Error('a message was refused as a duplicate but its original cannot be read');
      return { message: earlier, replayed: true };
    };
    if (opts.tx) return run(opts.tx);
    const result = await this.#db.transaction((tx) => run(tx as unknown as Tx));
    if (!result.replayed) this.#onQueued();
    return result;
  }

  async #replay(
    tx: Tx,
    organizationId: string,
    key: string,
    requestHash: string,
  ): Promise<SmsMessageView | null> {
    const earlier = await store.messageByKey(tx, organizationId, key);
    if (!earlier) return null;
    if (earlier.requestHash !== requestHash)
      throw new AppError(
        422,
        'idempotency_key_reused',
        'This Idempotency-Key was used with a different request',
      );
    return messageView(earlier);
  }

  /**
   * Queues up to 1,000 messages in one insert, each checked on its own: the refused ones are named by
   * index with a code (invalid_number, opted_out, too_many_parts, no_route, not_found, validation_failed).
   * A message whose campaign recipient was queued before is accepted as that earlier message.
   */
  async sendBatch(
    organizationId: string,
    inputs: SmsSendInput[],
    opts: { tx?: Tx } = {},
  ): Promise<{ accepted: SmsMessageView[]; rejected: { index: number; code: string; detail: string }[] }> {
    const detailed = await this.sendBatchDetailed(organizationId, inputs, opts);
    return {
      accepted: detailed.flatMap((d) => ('message' in d ? [d.message] : [])),
      rejected: detailed.flatMap((d, index) =>
        'error' in d ? [{ index, code: d.error.code, detail: d.error.message }] : [],
      ),
    };
  }

  /** sendBatch with each input's answer at its index (the API's per-item statuses). */
  async sendBatchDetailed(
    organizationId: string,
    inputs: SmsSendInput[],
    opts: { tx?: Tx } = {},
  ): Promise<({ message: SmsMessageView; queued: boolean } | { error: AppError })[]> {
    if (inputs.length > MAX_BATCH)
      throw validationFailed('messages', `at most ${MAX_BATCH} messages at once`);
    const run = async (tx: Tx) => {
      const prepared = await this.#prepare(tx, organizationId, inputs);
      const rows = prepared.flatMap((p) => ('row' in p ? [p.row] : []));
      const inserted = new Map((await this.#enqueue(tx, rows)).map((r) => [r.id, r]));
      const repeated = rows.filter((r) => !inserted.has(r.id) && r.campaignRecipientId);
      const earlier = new Map(
        (
          await store.messagesByRecipients(
            tx,
            organizationId,
            repeated.map((r) => r.campaignRecipientId!),
          )
        ).map((m) => [m.campaignRecipientId!, m]),
      );
      return prepared.map((p) => {
        if ('refused' in p) return { error: p.refused };
        const row = inserted.get(p.row.id);
        if (row) return { message: messageView(row), queued: true };
        const before = p.row.campaignRecipientId ? earlier.get(p.row.campaignRecipientId) : undefined;
        if (before) return { message: messageView(before), queued: false };
        // Two messages of this batch for one campaign recipient: the first was queued.
        return {
          error: new SendRefused(
            409,
            'duplicate',
            'Another message of this batch has the same campaign recipient',
          ),
        };
      });
    };
    if (opts.tx) return run(opts.tx);
    const result = await this.#db.transaction((tx) => run(tx as unknown as Tx));
    if (result.some((r) => 'queued' in r && r.queued)) this.#onQueued();
    return result;
  }

  /** Checks and prepares messages (numbers, parts, route, opt-outs), each on its own. */
  async #prepare(tx: Tx, organizationId: string, inputs: SmsSendInput[]): Promise<Prepared[]> {
    const settings = await this.settingsFor(organizationId, tx);
    const now = this.#o.clock.now();
    const routes = await store.routesOf(tx, organizationId);
    const named = [...new Set(inputs.flatMap((i) => (i.providerAccountId ? [i.providerAccountId] : [])))];
    const accounts = await this.#o.accounts.refs(tx, organizationId, named);
    const checked = inputs.map((input, index): Prepared => {
      try {
        return {
          row: this.#checked(organizationId, input, settings, routes, accounts, now, index, inputs.length),
        };
      } catch (err) {
        if (err instanceof AppError) return { refused: err };
        throw err;
      }
    });
    const numbers = checked.flatMap((c) => ('row' in c ? [c.row.toNumber] : []));
    const optedOut = await store.optedOutAmong(tx, organizationId, [...new Set(numbers)]);
    return checked.map((c) =>
      'row' in c && optedOut.has(c.row.toNumber)
        ? {
            refused: new SendRefused(
              422,
              'opted_out',
              `to: ${c.row.toNumber} has opted out of this organisation's SMS`,
              {
                errors: [{ field: 'to', message: 'has opted out' }],
              },
            ),
          }
        : c,
    );
  }

  #checked(
    organizationId: string,
    input: SmsSendInput,
    settings: SmsSettings,
    routes: SmsRouteRow[],
    accounts: Map<string, { provider: string }>,
    now: Date,
    index: number,
    of: number,
  ): store.NewSmsMessage {
    const field = (name: string) => (of > 1 ? `messages.${index}.${name}` : name);
    if (typeof input.to !== 'string' || !input.to.trim()) throw validationFailed(field('to'), 'is required');
    if (typeof input.body !== 'string' || !input.body.length)
      throw validationFailed(field('body'), 'is required');
    if (input.body.length > MAX_BODY) throw validationFailed(field('body'), `at most ${MAX_BODY} characters`);
    if (!isText(input.body)) throw validationFailed(field('body'), 'holds a NUL or an unpaired surrogate');
    const tags = [...new Set(input.tags ?? [])];
    if (tags.length > MAX_TAGS || tags.some((t) => !t || t.length > 100 || !isText(t)))
      throw validationFailed(field('tags'), `up to ${MAX_TAGS} tags of 1 to 100 characters`);
    const parsed = parseNumber(input.to.trim(), settings.defaultRegion);
    if (!parsed) {
      const message = `"${input.to}" is not a valid phone number`;
      throw new SendRefused(422, 'invalid_number', `${field('to')}: ${message}`, {
        errors: [{ field: field('to'), message }],
        extensions: { number: input.to },
      });
    }
    const size = measure(input.body);
    if (size.parts > settings.maxParts) {
      throw new SendRefused(
        422,
        'too_many_parts',
        `${field('body')}: ${size.parts} parts (${size.encoding === 'gsm7' ? 'GSM-7' : 'UCS-2'}, ${size.units} ${
          size.encoding === 'gsm7' ? 'septets' : 'units'
        }); at most ${settings.maxParts} allowed`,
        {
          errors: [
            { field: field('body'), message: `takes ${size.parts} parts; the limit is ${settings.maxParts}` },
          ],
        },
      );
    }
    const sender =
      input.sender !== undefined && input.sender !== null
        ? senderOf(input.sender, settings.defaultRegion, field('sender'))
        : settings.defaultSender;
    const { accountId, failoverId, routeId } = this.#routeFor(input, parsed.e164, routes, accounts, field);
    const sendAt = input.sendAt ?? null;
    if (sendAt && Number.isNaN(sendAt.getTime())) throw validationFailed(field('send_at'), 'is not a time');
    if (sendAt && sendAt.getTime() > now.getTime() + this.#o.maxScheduleMs)
      throw validationFailed(
        field('send_at'),
        `may be at most ${Math.round(this.#o.maxScheduleMs / 86_400_000)} days ahead`,
      );
    const scheduled = sendAt !== null && sendAt.getTime() > now.getTime();
    return {
      id: newId(),
      organizationId,
      kind: 'standard',
      toNumber: parsed.e164,
      country: parsed.country,
      sender,
      body: input.body,
      encoding: size.encoding,
      characters: size.characters,
      parts: size.parts,
      tags,
      status: scheduled ? 'scheduled' : 'queued',
      routeId,
      providerAccountId: accountId,
      failoverAccountId: failoverId,
      campaignId: input.campaignId ?? null,
      campaignRecipientId: input.campaignRecipientId ?? null,
      sendAt: scheduled ? sendAt : null,
      nextAttemptAt: scheduled ? sendAt! : now,
      idempotencyKey: null,
      requestHash: null,
    };
  }

  /** The account a message goes through: the one named, the route named, or the route of its prefix. */
  #routeFor(
    input: SmsSendInput,
    e164: string,
    routes: SmsRouteRow[],
    accounts: Map<string, { provider: string }>,
    field: (name: string) => string,
  ): { accountId: string; failoverId: string | null; routeId: string | null } {
    if (input.providerAccountId) {
      const account = accounts.get(input.providerAccountId);
      if (!account) throw new SendRefused(404, 'not_found', 'Provider account not found');
      if (!(SMS_PROVIDERS as readonly string[]).includes(account.provider))
        throw validationFailed(
          field('provider_account_id'),
          `a ${account.provider} account is not an SMS gateway`,
        );
      return { accountId: input.providerAccountId, failoverId: null, routeId: null };
    }
    let route: SmsRouteRow | undefined;
    if (input.routeId) {
      route = routes.find((r) => r.id === input.routeId);
      if (!route) throw new SendRefused(404, 'not_found', 'SMS route not found');
    } else {
      const digits = e164.slice(1);
      // The longest prefix that matches wins; '*' matches every number.
      for (const r of routes) {
        if (r.prefix !== '*' && !digits.startsWith(r.prefix)) continue;
        if (!route || route.prefix === '*' || (r.prefix !== '*' && r.prefix.length > route.prefix.length))
          route = r;
      }
      if (!route) {
        throw new SendRefused(
          422,
          'no_route',
          `No SMS route for ${e164}: add a route for its prefix (or a * route), or name provider_account_id`,
        );
      }
    }
    return { accountId: route.providerAccountId, failoverId: route.failoverAccountId, routeId: route.id };
  }

  /** Inserts prepared messages and their sms.queued events, in `tx`; returns the rows inserted. */
  async #enqueue(tx: Tx, rows: store.NewSmsMessage[]): Promise<SmsMessageRow[]> {
    if (!rows.length) return [];
    const inserted = await store.insertMessages(tx, rows);
    if (inserted.length) await this.#o.events.emitMany(tx, inserted.map(queuedEvent));
    return inserted;
  }

  /** A number in E.164 by the organisation's default region, or a 422 naming it. */
  async normalize(organizationId: string, raw: string, field = 'number'): Promise<string> {
    const settings = await this.settingsFor(organizationId);
    return normalizeNumber(raw, settings.defaultRegion, field);
  }

  // ---- reading and cancelling ---------------------------------------------------------------------------

  async get(organizationId: string, id: string): Promise<SmsMessageView> {
    const row = await store.messageById(this.#db, organizationId, id);
    if (!row) throw notFound('SMS message');
    return messageView(row);
  }

  async list(organizationId: string, filter: store.MessageFilter, page: PageRequest) {
    const { rows, total } = await store.listMessages(this.#db, organizationId, filter, page);
    return toPage(rows.map(messageView), total, page);
  }

  /** Cancels a queued or scheduled message (409 once a worker has it or it is sent). */
  async cancel(organizationId: string, id: string): Promise<SmsMessageView> {
    return this.#db.transaction(async (tx) => {
      const existing = await store.messageById(tx, organizationId, id);
      if (!existing) throw notFound('SMS message');
      const [cancelled] = await store.cancelUnsent(
        tx,
        organizationId,
        { id },
        { code: 'cancelled', message: 'Cancelled through the API' },
      );
      if (!cancelled)
        throw new AppError(
          409,
          'not_cancellable',
          `The message is ${existing.status}: only queued or scheduled ones can be cancelled`,
        );
      await this.#o.events.emitMany(tx, [cancelledEvent(cancelled, 'cancelled')]);
      return messageView(cancelled);
    });
  }

  async isOptedOut(organizationId: string, e164: string, tx?: Tx): Promise<boolean> {
    return (await store.optedOutAmong(tx ?? this.#db, organizationId, [e164])).has(e164);
  }

  /**
   * Cancels a campaign's messages that no gateway has yet: queued, scheduled, or claimed by a worker
   * that has not begun their submit. Returns how many. No sms.cancelled event per message: the campaign
   * reports its own cancellation.
   */
  async cancelCampaignMessages(organizationId: string, campaignId: string, tx?: Tx): Promise<number> {
    const cancelled = await store.cancelUnsent(
      tx ?? this.#db,
      organizationId,
      { campaignId },
      { code: 'cancelled', message: 'The campaign was cancelled or paused' },
    );
    return cancelled.length;
  }

  // ---- opt-outs -----------------------------------------------------------------------------------------

  async listOptOuts(organizationId: string, page: PageRequest, number?: string) {
    const settings = number ? await this.settingsFor(organizationId) : null;
    const e164 = number && settings ? normalizeNumber(number, settings.defaultRegion, 'number') : undefined;
    const { rows, total } = await store.listOptOuts(this.#db, organizationId, page, e164);
    return toPage(rows, total, page);
  }

  /** Adds a number to the opt-out list (its queued messages are cancelled); `added` false if it was there. */
  async addOptOut(organizationId: string, raw: string): Promise<{ optOut: SmsOptOutRow; added: boolean }> {
    const settings = await this.settingsFor(organizationId);
    const number = normalizeNumber(raw, settings.defaultRegion, 'number');
    return this.#db.transaction(async (tx) => {
      const { added, events } = await this.#optOut(tx, organizationId, number, 'api', null);
      if (events.length) await this.#o.events.emitMany(tx, events);
      const [optOut] = (await store.listOptOuts(tx, organizationId, { page: 1, page_size: 1 }, number)).rows;
      return { optOut, added };
    });
  }

  async removeOptOut(organizationId: string, raw: string): Promise<void> {
    const settings = await this.settingsFor(organizationId);
    const number = normalizeNumber(raw, settings.defaultRegion, 'number');
    const removed = await this.#db.transaction(async (tx) => {
      const events = await this.#optIn(tx, organizationId, number, 'api', null);
      if (events.length) await this.#o.events.emitMany(tx, events);
      return events.length > 0;
    });
    if (!removed) throw notFound('Opt-out');
  }

  /** Opts a number out in `tx`: the list, and its queued messages cancelled; returns the events to emit. */
  async #optOut(
    tx: Tx,
    organizationId: string,
    number: string,
    source: 'keyword' | 'api',
    keyword: string | null,
  ): Promise<{ added: boolean; events: EventInput[] }> {
    const added = await store.optOut(tx, { organizationId, number, source, keyword });
    const cancelled = await store.cancelUnsent(
      tx,
      organizationId,
      { number, kind: 'standard' },
      { code: 'opted_out', message: 'The number opted out' },
    );
    const events: EventInput[] = cancelled.map((m) => cancelledEvent(m, 'opted_out'));
    if (added) {
      events.push(
        eventOf(smsOptedOut, organizationId, { number, source, keyword, cancelled: cancelled.length }),
      );
    }
    return { added, events };
  }

  async #optIn(
    tx: Tx,
    organizationId: string,
    number: string,
    source: 'keyword' | 'api',
    keyword: string | null,
  ): Promise<EventInput[]> {
    if (!(await store.optIn(tx, organizationId, number))) return [];
    return [eventOf(smsOptedIn, organizationId, { number, source, keyword })];
  }

  // ---- conversations and statistics ---------------------------------------------------------------------

  async conversations(organizationId: string, page: PageRequest) {
    const { rows, total } = await store.listConversations(this.#db, organizationId, page);
    const optedOut = await store.optedOutAmong(
      this.#db,
      organizationId,
      rows.map((r) => r.number),
    );
    return toPage(
      rows.map((r) => ({ ...r, optedOut: optedOut.has(r.number) })),
      total,
      page,
    );
  }

  /** One number's conversation: both directions, newest first. */
  async conversation(organizationId: string, raw: string, page: PageRequest) {
    const settings = await this.settingsFor(organizationId);
    const number = parseNumber(raw, settings.defaultRegion)?.e164;
    if (!number) throw notFound('Conversation');
    const [summary, thread, optedOut] = await Promise.all([
      store.conversationOf(this.#db, organizationId, number),
      store.thread(this.#db, organizationId, number, page),
      this.isOptedOut(organizationId, number),
    ]);
    if (thread.total === 0) throw notFound('Conversation');
    return {
      number,
      summary: summary ?? (null as SmsConversationRow | null),
      optedOut,
      page: toPage(thread.rows, thread.total, page),
    };
  }

  async stats(organizationId: string, window: { from: Date; to: Date }, by: store.StatsDimension[]) {
    const rows = await store.stats(this.#db, organizationId, window, by);
    // One item per group, its prices per currency.
    const groups = new Map<string, ReturnType<typeof emptyStats>>();
    for (const r of rows) {
      const key = `${r.day}|${r.provider_account_id}|${r.campaign_id}`;
      let g = groups.get(key);
      if (!g) {
        g = emptyStats(r);
        groups.set(key, g);
      }
      for (const k of ['queued', 'sent', 'delivered', 'failed', 'cancelled', 'parts'] as const)
        g[k] += Number(r[k]);
      if (r.currency && r.price !== null) g.price.push({ currency: r.currency, amount: r.price });
    }
    return [...groups.values()];
  }

  // ---- gateway reports: receipts and received messages --------------------------------------------------

  /**
   * Applies what gateways reported, in `tx`: receipts move messages on (never back), received messages
   * are stored and threaded, keywords opt numbers out or in or get the HELP reply (queued like any
   * message, exempt from opt-outs and quiet hours). Returns the counts for the metrics.
   */
  async recordReports(tx: Tx, reports: GatewayReport[]): Promise<ReportTally & { queued: boolean }> {
    const tally: ReportTally = {
      sent: new Map(),
      delivered: new Map(),
      failed: new Map(),
      received: new Map(),
    };
    const providerOf = new Map(reports.map((r) => [r.account.id, r.account.provider]));
    // One receipt per message: the one furthest along (a batch may hold `sent` and `delivered`).
    const receipts = new Map<string, store.Receipt>();
    for (const { account, event } of reports) {
      if (event.type !== 'receipt') continue;
      const key = `${account.id}\n${event.providerId}`;
      const seen = receipts.get(key);
      if (seen && RANK[seen.status] >= RANK[event.status]) continue;
      receipts.set(key, {
        organizationId: account.organizationId,
        accountId: account.id,
        providerId: event.providerId,
        status: event.status,
        errorCode: event.errorCode ?? null,
        price: event.price ?? null,
        at: event.at,
      });
    }
    const events: EventInput[] = [];
    for (const t of await store.applyReceipts(tx, [...receipts.values()])) {
      const event = statusEvent(t.message, t.message.status);
      if (event) events.push(event);
      const provider = providerOf.get(t.message.providerAccountId) || t.message.provider || 'unknown';
      const status = t.message.status;
      if (RANK[t.before] < RANK.sent && status !== 'failed') count(tally.sent, provider);
      if (status === 'delivered') count(tally.delivered, provider);
      if (status === 'failed' || status === 'undelivered') count(tally.failed, provider);
    }
    const inbound = reports.filter(
      (r): r is GatewayReport & { event: Extract<SmsProviderEvent, { type: 'inbound' }> } =>
        r.event.type === 'inbound',
    );
    const queued = inbound.length ? await this.#receive(tx, inbound, events, tally) : false;
    if (events.length) await this.#o.events.emitMany(tx, events);
    return { ...tally, queued };
  }

  async #receive(
    tx: Tx,
    inbound: (GatewayReport & { event: Extract<SmsProviderEvent, { type: 'inbound' }> })[],
    events: EventInput[],
    tally: ReportTally,
  ): Promise<boolean> {
    const rows: store.NewInbound[] = [];
    for (const { account, event } of inbound) {
      const settings = await this.settingsFor(account.organizationId, tx);
      rows.push({
        id: newId(),
        organizationId: account.organizationId,
        providerAccountId: account.id,
        providerId: event.providerId ?? null,
        // Gateways give E.164 as a rule; anything else is kept as it came (a short code, a sender id).
        fromNumber: parseNumber(event.from, settings.defaultRegion)?.e164 ?? event.from.slice(0, 64),
        toNumber: event.to.slice(0, 64),
        body: event.body.replaceAll('\u0000', ''),
        keyword: keywordOf(event.body),
        receivedAt: event.at,
      });
    }
    const inserted = await store.insertInbound(tx, rows);
    const fresh = rows.filter((r) => inserted.has(r.id));
    await store.touchConversations(tx, fresh);
    const help: store.NewSmsMessage[] = [];
    for (const r of fresh) {
      count(tally.received, inbound.find((i) => i.account.id === r.providerAccountId)!.account.provider);
      events.push(
        eventOf(smsReceived, r.organizationId, {
          inbound_id: r.id,
          from: r.fromNumber,
          to: r.toNumber,
          body: r.body,
          keyword: r.keyword,
          provider_account_id: r.providerAccountId,
          received_at: r.receivedAt.toISOString(),
        }),
      );
      const word = r.body.trim().toUpperCase();
      if (r.keyword === 'stop')
        events.push(...(await this.#optOut(tx, r.organizationId, r.fromNumber, 'keyword', word)).events);
      else if (r.keyword === 'start')
        events.push(...(await this.#optIn(tx, r.organizationId, r.fromNumber, 'keyword', word)));
      else if (r.keyword === 'help' && r.fromNumber.startsWith('+')) help.push(await this.#helpReply(tx, r));
    }
    if (help.length) await this.#enqueue(tx, help);
    return help.length > 0;
  }

  /** The HELP reply: the settings' text, from the number that was written to, through the same account. */
  async #helpReply(tx: Tx, received: store.NewInbound): Promise<store.NewSmsMessage> {
    const settings = await this.settingsFor(received.organizationId, tx);
    const size = measure(settings.helpText);
    return {
      id: newId(),
      organizationId: received.organizationId,
      kind: 'help',
      toNumber: received.fromNumber,
      country: parseNumber(received.fromNumber, settings.defaultRegion)?.country ?? null,
      sender: received.toNumber || settings.defaultSender,
      body: settings.helpText,
      encoding: size.encoding,
      characters: size.characters,
      parts: size.parts,
      tags: ['help'],
      status: 'queued',
      routeId: null,
      providerAccountId: received.providerAccountId,
      failoverAccountId: null,
      campaignId: null,
      campaignRecipientId: null,
      sendAt: null,
      nextAttemptAt: this.#o.clock.now(),
      idempotencyKey: null,
      requestHash: null,
    };
  }

  /** The organisation and provider of an account, by id alone (a webhook names only the account). */
  accountOwner(accountId: string) {
    return this.#o.accounts.refById(accountId);
  }

  /** SMPP accounts, whose binds receive what is sent to their numbers. */
  smppAccounts() {
    return this.#o.accounts.refsOfProvider('smpp');
  }

  /** Receipts that arrived before their message's provider id: applied once it is recorded. */
  async reconcileOrphans(): Promise<ReportTally | null> {
    return this.#db.transaction(async (tx) => {
      const orphans = await store.takeOrphans(tx);
      if (!orphans.length) return null;
      const reports: GatewayReport[] = orphans.map((o) => ({
        account: { id: o.accountId, organizationId: o.organizationId, provider: '' },
        event: {
          type: 'receipt',
          providerId: o.providerId,
          status: o.status,
          errorCode: o.errorCode ?? undefined,
          price: o.price ?? undefined,
          at: o.at,
        },
      }));
      return this.recordReports(tx as unknown as Tx, reports);
    });
  }

  /** Orphan receipts whose message never appeared are dropped after a day. */
  forgetOldOrphans(): Promise<number> {
    return store.forgetOrphans(this.#db, new Date(Date.now() - 86_400_000));
  }
}

const RANK: Record<SmsStatus, number> = {
  queued: 0,
  scheduled: 0,
  sending: 1,
  sent: 2,
  delivered: 3,
  failed: 3,
  undelivered: 3,
  cancelled: 3,
};

function emptyStats(r: store.StatsRow) {
  return {
    day: r.day,
    provider_account_id: r.provider_account_id,
    campaign_id: r.campaign_id,
    queued: 0,
    sent: 0,
    delivered: 0,
    failed: 0,
    cancelled: 0,
    parts: 0,
    price: [] as { currency: string; amount: string }[],
  };
}

function settingsOf(row: SmsSettingsRow): SmsSettings {
  return {
    defaultRegion: row.defaultRegion,
    defaultSender: row.defaultSender,
    maxParts: row.maxParts,
    quietHours: row.quietStart && row.quietEnd ? { start: row.quietStart, end: row.quietEnd } : null,
    timeZone: row.timeZone,
    helpText: row.helpText,
    updatedAt: row.updatedAt,
  };
}

/** A sender: a phone number (to E.164) or an alphanumeric sender id of up to 11 characters. */
function senderOf(raw: string, region: string, field: string): string {
  const value = raw.trim();
  if (/^\+?[\d\s().-]{5,}$/.test(value)) return normalizeNumber(value, region, field);
  if (/^[A-Za-z0-9 ]{1,11}$/.test(value) && /[A-Za-z]/.test(value)) return value;
  throw validationFailed(
    field,
    'must be a phone number or an alphanumeric sender id of up to 11 letters, digits or spaces',
  );
}

function hashOf(input: SmsSendInput): string {
  return createHash('sha256')
    .update(
      JSON.stringify({
        to: input.to,
        body: input.body,
        sender: input.sender ?? null,
        account: input.providerAccountId ?? null,
        route: input.routeId ?? null,
        send_at: input.sendAt?.toISOString() ?? null,
        tags: input.tags ?? [],
        campaign: input.campaignId ?? null,
        recipient: input.campaignRecipientId ?? null,
      }),
    )
    .digest('hex');
}
