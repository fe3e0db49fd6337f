// What gateways report: receipts and received messages, from webhooks (signature checked by the
// adapter over the raw body) or over a gateway's own connection (SMPP deliver_sm). Reports that arrive
// together are written together (group commit: one transaction for many), and a report's caller is
// answered only once it is written: an SMPP deliver_sm is acknowledged, a webhook answered 2xx, after
// the commit, so a crash loses nothing the gateway considers delivered.
import type { Logger } from 'pino';
import type { Db } from '../../core/db.ts';
import { AppError, badRequest, notFound } from '../../core/errors.ts';
import { GroupCommit } from '../../core/group-commit.ts';
import {
  type SmsProviderEvent,
  SmsWebhookRejected,
  type SmsWebhookRequest,
} from '../../providers/sms/types.ts';
import type { SmsCounters } from './dispatcher.ts';
import type { SmsGateways } from './gateways.ts';
import type { GatewayReport, SmsService } from './service.ts';

const MAX_BATCH = 500;

export class SmsReports {
  readonly #db: Db;
  readonly #sms: SmsService;
  readonly #gateways: SmsGateways;
  readonly #counters: SmsCounters;
  readonly #log: Logger;
  readonly #commit: GroupCommit<GatewayReport, void>;
  #beforeReceipts: () => Promise<void> = async () => {};
  #onQueued: () => void = () => {};

  constructor(options: {
    db: Db;
    sms: SmsService;
    gateways: SmsGateways;
    counters: SmsCounters;
    log: Logger;
  }) {
    this.#db = options.db;
    this.#sms = options.sms;
    this.#gateways = options.gateways;
    this.#counters = options.counters;
    this.#log = options.log;
    // Two at once: one may wait for this process's outcomes to be written while the other commits.
    this.#commit = new GroupCommit({
      maxBatch: MAX_BATCH,
      maxFlushes: 2,
      write: (batch) => this.#write(batch),
    });
  }

  /** Runs before receipts are applied: this process's submit outcomes waiting to be written go first. */
  beforeReceipts(fn: () => Promise<void>): void {
    this.#beforeReceipts = fn;
  }

  /** Called after a HELP reply was queued. */
  onQueued(fn: () => void): void {
    this.#onQueued = fn;
  }

  /** Records one report; resolves once it is committed. */
  report(account: GatewayReport['account'], event: SmsProviderEvent): Promise<void> {
    return this.#commit.add({ account, event });
  }

  /**
   * A gateway's webhook call: the account's adapter checks its signature over the exact bytes and says
   * what it reports. Unknown accounts and gateways without webhooks are 404; a forged or malformed call
   * is refused (403, 400) and nothing of it is kept.
   */
  async webhook(
    accountId: string,
    request: SmsWebhookRequest,
  ): Promise<{ provider: string; events: number }> {
    const owner = await this.#sms.accountOwner(accountId);
    if (!owner || owner.provider === 'smpp') throw notFound('SMS webhook');
    let provider: Awaited<ReturnType<SmsGateways['get']>>;
    try {
      provider = await this.#gateways.get(owner.organizationId, accountId);
    } catch (err) {
      if (err instanceof AppError && err.status < 500) throw notFound('SMS webhook');
      throw err;
    }
    if (!provider.parseWebhook) throw notFound('SMS webhook');
    let events: SmsProviderEvent[];
    try {
      events = provider.parseWebhook(request);
    } catch (err) {
      if (err instanceof SmsWebhookRejected) {
        this.#log.warn({ account: accountId, reason: err.message }, 'SMS webhook refused');
        throw new AppError(403, 'webhook_rejected', err.message);
      }
      // The adapter could not read it: malformed, and answered as such (never a 5xx the gateway retries).
      throw badRequest(`The webhook could not be read: ${(err as Error).message}`);
    }
    const account = { id: accountId, organizationId: owner.organizationId, provider: provider.name };
    await Promise.all(events.map((event) => this.report(account, event)));
    return { provider: provider.name, events: events.length };
  }

  async #write(batch: { item: GatewayReport; resolve(): void; reject(err: unknown): void }[]): Promise<void> {
    const reports = batch.map((p) => p.item);
    if (reports.some((r) => r.event.type === 'receipt')) {
      await this.#beforeReceipts().catch((err) =>
        this.#log.warn({ err }, 'could not write SMS outcomes first'),
      );
    }
    const result = await this.#db.transaction((tx) => this.#sms.recordReports(tx as unknown as Db, reports));
    this.#counters.record(result);
    if (result.queued) this.#onQueued();
    for (const p of batch) p.resolve();
  }
}
