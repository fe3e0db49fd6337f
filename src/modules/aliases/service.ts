// Aliases: an address of one of the organisation's domains that delivers to other addresses (hosted
// mailboxes, other aliases, or outside addresses). An alias and a mailbox never share an address.
import { databaseErrorCode, type Db } from '../../core/db.ts';
import { conflict, notFound, validationFailed } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import type { DomainsService } from '../domains/service.ts';
import type { EventsService } from '../events/service.ts';
import { hostedAddress, type MailboxesService, normaliseEmail } from '../mailboxes/service.ts';
import { aliasCreated, aliasDeleted, aliasUpdated } from './events.ts';
import * as store from './store.ts';
import type { AliasRow } from './tables.ts';

const UNIQUE_VIOLATION = '23505';
export const MAX_ALIAS_TARGETS = 50;

export interface AliasesOptions {
  db: Db;
  events: EventsService;
  domains: DomainsService;
  mailboxes: MailboxesService;
}

export interface AliasInput {
  address: string;
  targets: string[];
  description?: string | null;
  is_enabled?: boolean | null;
  /** ISO 8601; must be in the future. */
  expires_at?: string | null;
}

export interface AliasChanges {
  targets?: string[] | null;
  description?: string | null;
  is_enabled?: boolean | null;
  /** Null: never expires. */
  expires_at?: string | null;
}

export type AliasFilter = store.AliasFilter;

/** Whether the alias has expired (it then no longer receives mail). */
export const isExpired = (alias: AliasRow, now = new Date()): boolean =>
  alias.expiresAt !== null && alias.expiresAt.getTime() <= now.getTime();

export class AliasesService {
  readonly #o: AliasesOptions;

  constructor(options: AliasesOptions) {
    this.#o = options;
  }

  async create(organizationId: string, input: AliasInput): Promise<AliasRow> {
    const { domain, localPart, address } = await hostedAddress(
      this.#o.domains,
      organizationId,
      input.address,
    );
    const targets = targetsOf(input.targets, address);
    const expiresAt = expiryOf(input.expires_at ?? null);
    try {
      return await this.#o.db.transaction(async (tx) => {
        await this.#o.mailboxes.claimAddress(tx, organizationId, domain.id, localPart, address);
        const alias = await store.insertAlias(tx, {
          id: newId(),
          organizationId,
          domainId: domain.id,
          localPart,
          address,
          targets,
          description: (input.description ?? '').trim(),
          isEnabled: input.is_enabled ?? true,
          expiresAt,
        });
        await this.#o.events.emit(tx, aliasCreated, organizationId, {
          alias_id: alias.id,
          domain_id: domain.id,
          address,
          targets,
        });
        return alias;
      });
    } catch (error) {
      if (databaseErrorCode(error) === UNIQUE_VIOLATION) throw conflict(`${address} already exists`);
      throw error;
    }
  }

  async list(organizationId: string, filter: AliasFilter, page: PageRequest) {
    const { rows, total } = await store.listAliases(
      this.#o.db,
      organizationId,
      { ...filter, q: filter.q?.toLowerCase() },
      page,
    );
    return toPage(rows, total, page);
  }

  async get(organizationId: string, id: string): Promise<AliasRow> {
    const alias = await store.aliasById(this.#o.db, organizationId, id);
    if (!alias) throw notFound('Alias');
    return alias;
  }

  async update(organizationId: string, id: string, changes: AliasChanges): Promise<AliasRow> {
    const alias = await this.get(organizationId, id);
    const set: Partial<store.NewAlias> = {};
    const changed: string[] = [];
    if (changes.targets != null) {
      set.targets = targetsOf(changes.targets, alias.address);
      changed.push('targets');
    }
    if (changes.description != null) {
      set.description = changes.description.trim();
      changed.push('description');
    }
    if (changes.is_enabled != null) {
      set.isEnabled = changes.is_enabled;
      changed.push('is_enabled');
    }
    if (changes.expires_at !== undefined) {
      set.expiresAt = expiryOf(changes.expires_at);
      changed.push('expires_at');
    }
    if (changed.length === 0) return alias;
    return this.#o.db.transaction(async (tx) => {
      const row = await store.updateAlias(tx, organizationId, id, set);
      if (!row) throw notFound('Alias');
      await this.#o.events.emit(tx, aliasUpdated, organizationId, {
        alias_id: id,
        domain_id: row.domainId,
        address: row.address,
        changes: changed,
      });
      return row;
    });
  }

  async delete(organizationId: string, id: string): Promise<void> {
    await this.#o.db.transaction(async (tx) => {
      const deleted = await store.deleteAlias(tx, organizationId, id);
      if (!deleted) throw notFound('Alias');
      await this.#o.events.emit(tx, aliasDeleted, organizationId, {
        alias_id: id,
        domain_id: deleted.domainId,
        address: deleted.address,
      });
    });
  }
}

/** 1 to 50 distinct addresses, lower case, none of them the alias itself. */
function targetsOf(input: string[], address: string): string[] {
  if (input.length < 1 || input.length > MAX_ALIAS_TARGETS) {
    throw validationFailed('targets', `must list 1 to ${MAX_ALIAS_TARGETS} addresses`);
  }
  const seen = new Set<string>();
  input.forEach((target, i) => {
    const normalised = normaliseEmail(target, `targets.${i}`);
    if (normalised === address) throw validationFailed(`targets.${i}`, 'an alias must not target itself');
    if (seen.has(normalised)) throw validationFailed(`targets.${i}`, `${normalised} is listed twice`);
    seen.add(normalised);
  });
  return [...seen];
}

function expiryOf(input: string | null): Date | null {
  if (input === null) return null;
  const at = new Date(input);
  if (Number.isNaN(at.getTime())) throw validationFailed('expires_at', 'must be an ISO 8601 date and time');
  if (at.getTime() <= Date.now()) throw validationFailed('expires_at', 'must be in the future');
  return at;
}
