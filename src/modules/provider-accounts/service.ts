// Provider accounts: an organisation's credentials for a DNS host, a registrar or an SMS gateway, sealed
// at rest and checked against the provider before they are kept. Other modules borrow a ready client by id.
import type { Secrets } from '../../core/crypto.ts';
import type { Db } from '../../core/db.ts';
import { notFound, validationFailed } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import type { DnsProvider } from '../../providers/dns/types.ts';
import { ProviderError, providerProblem } from '../../providers/errors.ts';
import {
  credentialHint,
  credentialSchemas,
  dnsProviderFor,
  PROVIDER_KINDS,
  type ProviderEndpoints,
  type ProviderName,
  registrarFor,
  smsProviderFor,
} from '../../providers/index.ts';
import type { Registrar } from '../../providers/registrar/types.ts';
import type { SmsProvider } from '../../providers/sms/types.ts';
import * as store from './store.ts';
import type { ProviderAccountRow } from './tables.ts';

export type { AccountRef } from './store.ts';

export interface ProviderAccountInput {
  provider: ProviderName;
  name: string;
  credentials: Record<string, string>;
}

/** Runs a provider call, turning its failures into problem+json answers. */
export async function viaProvider<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ProviderError) throw providerProblem(error);
    throw error;
  }
}

export class ProviderAccountsService {
  readonly #db: Db;
  readonly #secrets: Secrets;
  readonly #endpoints: ProviderEndpoints;

  constructor(db: Db, secrets: Secrets, endpoints: ProviderEndpoints) {
    this.#db = db;
    this.#secrets = secrets;
    this.#endpoints = endpoints;
  }

  async create(organizationId: string, userId: string | null, input: ProviderAccountInput) {
    const credentials = this.#validCredentials(input.provider, input.credentials);
    await this.#verify(input.provider, credentials);
    return store.insertAccount(this.#db, {
      id: newId(),
      organizationId,
      kind: PROVIDER_KINDS[input.provider],
      provider: input.provider,
      name: input.name,
      credentials: this.#secrets.encrypt(JSON.stringify(credentials)),
      hint: credentialHint(input.provider, credentials),
      createdBy: userId,
    });
  }

  /**
   * The organisation's accounts among `ids`, by id: owner and provider only. `db` may be a caller's
   * transaction (on the embedded engine's one connection, nothing else may be asked meanwhile).
   */
  async refs(db: Db, organizationId: string, ids: string[]): Promise<Map<string, store.AccountRef>> {
    const rows = ids.length ? await store.refsOf(db, organizationId, ids) : [];
    return new Map(rows.map((r) => [r.id, r]));
  }

  /** An account's owner and provider by id alone (a webhook names only its account). */
  refById(id: string): Promise<store.AccountRef | null> {
    return store.refById(this.#db, id);
  }

  /** Every account of a provider, across organisations (a worker binding one connection each). */
  refsOfProvider(provider: ProviderName): Promise<store.AccountRef[]> {
    return store.refsOfProvider(this.#db, provider);
  }

  async list(organizationId: string, page: PageRequest) {
    const { rows, total } = await store.listAccounts(this.#db, organizationId, page);
    return toPage(rows, total, page);
  }

  async get(organizationId: string, id: string): Promise<ProviderAccountRow> {
    const row = await store.accountById(this.#db, organizationId, id);
    if (!row) throw notFound('Provider account');
    return row;
  }

  /** Renames, or replaces the credentials (checked with the provider first). */
  async update(
    organizationId: string,
    id: string,
    input: { name?: string; credentials?: Record<string, string> },
  ) {
    const existing = await this.get(organizationId, id);
    const changes: Partial<ProviderAccountRow> = {};
    if (input.name !== undefined) changes.name = input.name;
    if (input.credentials) {
      const credentials = this.#validCredentials(existing.provider, input.credentials);
      await this.#verify(existing.provider, credentials);
      changes.credentials = this.#secrets.encrypt(JSON.stringify(credentials));
      changes.hint = credentialHint(existing.provider, credentials);
    }
    const row = await store.updateAccount(this.#db, organizationId, id, changes);
    if (!row) throw notFound('Provider account');
    return row;
  }

  async delete(organizationId: string, id: string): Promise<void> {
    if (!(await store.deleteAccount(this.#db, organizationId, id))) throw notFound('Provider account');
  }

  /** A DNS provider client for the organisation's account; 422 when the account is not a DNS host. */
  async dnsProvider(
    organizationId: string,
    id: string,
  ): Promise<{ account: ProviderAccountRow; provider: DnsProvider }> {
    const account = await this.get(organizationId, id);
    const provider = dnsProviderFor(account.provider, this.#open(account), this.#endpoints);
    if (!provider) throw validationFailed('provider_account_id', `${account.provider} is not a DNS provider`);
    await store.updateAccount(this.#db, organizationId, id, { lastUsedAt: new Date() });
    return { account, provider };
  }

  async registrar(
    organizationId: string,
    id: string,
  ): Promise<{ account: ProviderAccountRow; registrar: Registrar }> {
    const account = await this.get(organizationId, id);
    const registrar = registrarFor(account.provider, this.#open(account), this.#endpoints);
    if (!registrar) throw validationFailed('provider_account_id', `${account.provider} is not a registrar`);
    await store.updateAccount(this.#db, organizationId, id, { lastUsedAt: new Date() });
    return { account, registrar };
  }

  /**
   * An SMS gateway client for the organisation's account; 422 when the account is not an SMS gateway.
   * Its gateway calls back to `<MAILROOM_PUBLIC_URL>/v1/sms/webhooks/<account id>`. An SMPP provider holds
   * a connection: keep it while it is used and close() it after.
   */
  async smsProvider(
    organizationId: string,
    id: string,
  ): Promise<{ account: ProviderAccountRow; provider: SmsProvider }> {
    const account = await this.get(organizationId, id);
    const provider = smsProviderFor(account.provider, this.#open(account), this.#endpoints, {
      webhookUrl: `${this.#endpoints.smsWebhookUrl}/${account.id}`,
    });
    if (!provider) throw validationFailed('provider_account_id', `${account.provider} is not an SMS gateway`);
    await store.updateAccount(this.#db, organizationId, id, { lastUsedAt: new Date() });
    return { account, provider };
  }

  #validCredentials(provider: ProviderName, credentials: Record<string, string>): Record<string, string> {
    const parsed = credentialSchemas[provider].safeParse(credentials);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw validationFailed(`credentials.${issue.path.join('.')}`, issue.message);
    }
    return parsed.data as Record<string, string>;
  }

  /** Checks the credentials with the provider; an SMS gateway's connection (an SMPP bind) is closed after. */
  async #verify(provider: ProviderName, credentials: Record<string, string>): Promise<void> {
    const sms = smsProviderFor(provider, credentials, this.#endpoints);
    if (sms) {
      try {
        await viaProvider(() => sms.verify());
      } finally {
        await sms.close();
      }
      return;
    }
    const client = (dnsProviderFor(provider, credentials, this.#endpoints) ??
      registrarFor(provider, credentials, this.#endpoints))!;
    await viaProvider(() => client.verify());
  }

  #open(account: ProviderAccountRow): Record<string, string> {
    return JSON.parse(this.#secrets.decrypt(account.credentials));
  }
}
