// One gateway client per provider account in this process: an SMPP bind is a long-lived connection, and
// the HTTP clients keep their agents. A client is checked against its account every few seconds and made
// anew when its credentials changed or closed when it is gone; what the gateway reports over
// its own connection (SMPP receipts, received messages) goes to `onEvent`.
import type { Logger } from 'pino';
import type { SmsProvider, SmsProviderEvent } from '../../providers/sms/types.ts';

/** A provider account as the sms module needs to know it. */
export interface SmsAccount {
  id: string;
  organizationId: string;
  provider: string;
  /** Changes when the account's credentials change (not when it is merely used). */
  version: string;
}

/** Where accounts and their clients come from (the provider accounts module). */
export interface SmsAccountSource {
  /** The organisation's account; throws a 404 when it is not theirs. */
  get(organizationId: string, id: string): Promise<SmsAccount>;
  /** A new client for the account (its credentials opened); throws when it is not an SMS gateway. */
  open(organizationId: string, id: string): Promise<{ account: SmsAccount; provider: SmsProvider }>;
}

export type GatewayEventHandler = (
  account: { id: string; organizationId: string; provider: string },
  event: SmsProviderEvent,
) => Promise<void>;

interface Entry {
  organizationId: string;
  version: string;
  provider: SmsProvider;
  checkedAt: number;
}

/** A replaced client is closed this long after: submits in flight on it finish first. */
const CLOSE_GRACE_MS = 30_000;

export class SmsGateways {
  readonly #source: SmsAccountSource;
  readonly #log: Logger;
  readonly #revalidateMs: number;
  #onEvent: GatewayEventHandler | null = null;
  readonly #entries = new Map<string, Entry>();
  readonly #opening = new Map<string, Promise<Entry>>();
  readonly #closing = new Map<NodeJS.Timeout, SmsProvider>();
  #closed = false;

  constructor(options: { source: SmsAccountSource; log: Logger; revalidateMs?: number }) {
    this.#source = options.source;
    this.#log = options.log;
    this.#revalidateMs = options.revalidateMs ?? 5_000;
  }

  /** Where reports from the gateways' own connections go; set once, before any client is opened. */
  onEvent(handler: GatewayEventHandler): void {
    this.#onEvent = handler;
  }

  source(): SmsAccountSource {
    return this.#source;
  }

  /** The account's client, made (or remade, when the account changed) as needed. */
  async get(organizationId: string, accountId: string): Promise<SmsProvider> {
    if (this.#closed) throw new Error('the SMS gateways are closed');
    const entry = this.#entries.get(accountId);
    if (entry && entry.organizationId === organizationId) {
      if (Date.now() - entry.checkedAt < this.#revalidateMs) return entry.provider;
      const account = await this.#source.get(organizationId, accountId).catch((err) => {
        // Gone (or no longer an SMS account): its client is closed, and the caller learns why.
        this.#retire(accountId);
        throw err;
      });
      if (account.version === entry.version) {
        entry.checkedAt = Date.now();
        return entry.provider;
      }
    }
    return (await this.#open(organizationId, accountId)).provider;
  }

  #open(organizationId: string, accountId: string): Promise<Entry> {
    let opening = this.#opening.get(accountId);
    if (!opening) {
      opening = (async () => {
        const { account, provider } = await this.#source.open(organizationId, accountId);
        if (this.#closed) {
          await provider.close().catch(() => {});
          throw new Error('the SMS gateways are closed');
        }
        const entry: Entry = {
          organizationId,
          version: account.version,
          provider,
          checkedAt: Date.now(),
        };
        const handler = this.#onEvent;
        if (handler && provider.onEvent) {
          const who = { id: accountId, organizationId, provider: provider.name };
          provider.onEvent((event) => handler(who, event));
        }
        this.#retire(accountId);
        this.#entries.set(accountId, entry);
        return entry;
      })().finally(() => this.#opening.delete(accountId));
      this.#opening.set(accountId, opening);
    }
    return opening;
  }

  /** Closes the account's client after the grace period. */
  #retire(accountId: string): void {
    const old = this.#entries.get(accountId);
    if (!old) return;
    this.#entries.delete(accountId);
    const timer = setTimeout(() => {
      this.#closing.delete(timer);
      old.provider
        .close()
        .catch((err) => this.#log.warn({ err, account: accountId }, 'could not close SMS gateway'));
    }, CLOSE_GRACE_MS);
    timer.unref();
    this.#closing.set(timer, old.provider);
  }

  /** Closes the clients of one gateway kind whose accounts are not among `keep` (deleted accounts). */
  closeOthers(provider: string, keep: Set<string>): void {
    for (const [accountId, entry] of this.#entries)
      if (entry.provider.name === provider && !keep.has(accountId)) this.#retire(accountId);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const providers = [...this.#closing.values()];
    for (const timer of this.#closing.keys()) clearTimeout(timer);
    this.#closing.clear();
    await Promise.allSettled([...this.#opening.values()]);
    providers.push(...[...this.#entries.values()].map((e) => e.provider));
    this.#entries.clear();
    await Promise.all(
      providers.map((p) => p.close().catch((err) => this.#log.warn({ err }, 'could not close SMS gateway'))),
    );
  }
}
