// Organisation API keys: shown once, stored as SHA-256, scoped, expiring, with last-used time.
import type { ApiKeyPrincipal, Principal } from '../../core/auth.ts';
import { scopeAllows } from '../../core/auth.ts';
import { randomToken, sha256 } from '../../core/crypto.ts';
import type { Db } from '../../core/db.ts';
import { forbidden, notFound, tooManyRequests, unauthorized, validationFailed } from '../../core/errors.ts';
import type { Limit, RateLimiter } from '../../core/ratelimit.ts';
import type { RequestMeta } from '../../core/http.ts';
import { newId } from '../../core/ids.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import type { AuditService } from '../audit/service.ts';
import type { EventsService } from '../events/service.ts';
import { apiKeyCreated, apiKeyRevoked } from './events.ts';
import * as store from './store.ts';
import type { ApiKeyRow } from './tables.ts';

export const KEY_PREFIX = 'mrk_';
/** Resources a key can be granted, each as `<resource>:read` or `<resource>:write` (or `<resource>:*`). */
export const SCOPE_RESOURCES = [
  'organization',
  'members',
  'api_keys',
  'audit',
  'events',
  'webhooks',
  'domains',
  'providers',
  'mailboxes',
  'aliases',
  'rules',
  'messages',
  'suppressions',
  'complaints',
  'queue',
  'smtp_credentials',
  'exports',
  'jobs',
  'inboxes',
  'provisioning',
  'accounts',
  'ip_pools',
  'blocklists',
  'warmup',
  'health',
  'helpdesk',
  'tickets',
  'sms',
] as const;
/** How long a verified key is trusted in this process; revocations here apply at once. */
const KEY_CACHE_MS = 5_000;
/** last_used_at is written at most this often per key. */
const TOUCH_EVERY_MS = 60_000;
const FAILURES_PER_IP: Limit = { name: 'api_key_failures:ip', limit: 30, windowSeconds: 60 };
const MISUSE_EVENTS_PER_KEY: Limit = { name: 'api_key_misuse_events', limit: 10, windowSeconds: 60 };

export function isKnownScope(scope: string): boolean {
  if (scope === '*') return true;
  const [resource, action, ...rest] = scope.split(':');
  return (
    rest.length === 0 &&
    (SCOPE_RESOURCES as readonly string[]).includes(resource) &&
    ['read', 'write', '*'].includes(action)
  );
}

export class ApiKeysService {
  readonly #db: Db;
  readonly #audit: AuditService;
  readonly #limiter: RateLimiter;
  readonly #events: EventsService;
  readonly #cache = new Map<string, { row: ApiKeyRow; until: number }>();
  readonly #touched = new Map<string, number>();

  constructor(db: Db, audit: AuditService, limiter: RateLimiter, events: EventsService) {
    this.#db = db;
    this.#audit = audit;
    this.#limiter = limiter;
    this.#events = events;
  }

  /** Drops a deleted organisation's keys from the cache at once. */
  forgetOrganization(organizationId: string): void {
    for (const [hash, entry] of this.#cache)
      if (entry.row.organizationId === organizationId) this.#cache.delete(hash);
  }

  static looksLikeKey(token: string): boolean {
    return token.startsWith(KEY_PREFIX);
  }

  async create(
    organizationId: string,
    creator: Principal,
    input: { name: string; scopes: string[]; expires_at?: string },
  ): Promise<{ row: ApiKeyRow; key: string }> {
    const scopes = [...new Set(input.scopes)];
    const unknown = scopes.filter((s) => !isKnownScope(s));
    if (unknown.length) throw validationFailed('body.scopes', `unknown scopes: ${unknown.join(', ')}`);
    // A key may mint keys, but never one that can do more than itself.
    if (creator.kind === 'api_key' && !scopes.every((s) => s !== '*' && scopeAllows(creator.scopes, s))) {
      throw forbidden('A key cannot create a key with scopes it does not have');
    }
    const expiresAt = input.expires_at ? new Date(input.expires_at) : null;
    if (expiresAt && expiresAt.getTime() <= Date.now())
      throw validationFailed('body.expires_at', 'must be in the future');
    const key = `${KEY_PREFIX}${randomToken(32)}`;
    const row = await this.#db.transaction(async (tx) => {
      const created = await store.insertKey(tx, {
        id: newId(),
        organizationId,
        name: input.name,
        prefix: key.slice(0, 12),
        keyHash: sha256(key),
        scopes,
        expiresAt,
        createdBy: creator.kind === 'user' ? creator.userId : null,
      });
      await this.#events.emit(tx, apiKeyCreated, organizationId, {
        api_key_id: created.id,
        name: created.name,
        prefix: created.prefix,
        scopes: created.scopes,
        expires_at: created.expiresAt?.toISOString() ?? null,
        created_by: created.createdBy,
      });
      return created;
    });
    return { row, key };
  }

  async list(organizationId: string, page: PageRequest) {
    const { rows, total } = await store.listKeys(this.#db, organizationId, page);
    return toPage(rows, total, page);
  }

  async get(organizationId: string, id: string): Promise<ApiKeyRow> {
    const row = await store.keyById(this.#db, organizationId, id);
    if (!row || row.revokedAt) throw notFound('API key');
    return row;
  }

  async revoke(organizationId: string, id: string): Promise<void> {
    const row = await this.#db.transaction(async (tx) => {
      const revoked = await store.revokeKey(tx, organizationId, id);
      if (!revoked) throw notFound('API key');
      await this.#events.emit(tx, apiKeyRevoked, organizationId, {
        api_key_id: revoked.id,
        name: revoked.name,
        prefix: revoked.prefix,
      });
      return revoked;
    });
    this.#cache.delete(row.keyHash);
  }

  /** Resolves a presented key; every refusal is a security event. */
  async authenticate(key: string, meta: RequestMeta): Promise<ApiKeyPrincipal> {
    const hash = sha256(key);
    const now = Date.now();
    const cached = this.#cache.get(hash);
    let row = cached && cached.until > now ? cached.row : undefined;
    if (!row) {
      row = await store.keyByHash(this.#db, hash);
      if (row && !row.revokedAt) {
        if (this.#cache.size > 50_000) this.#cache.clear();
        this.#cache.set(hash, { row, until: now + KEY_CACHE_MS });
      }
    }
    if (!row)
      return this.#refuse(meta, 'api_key_invalid', 'Invalid API key', null, { prefix: key.slice(0, 12) });
    if (row.revokedAt) return this.#refuse(meta, 'api_key_revoked', 'This API key has been revoked', row);
    if (row.expiresAt && row.expiresAt.getTime() <= now) {
      return this.#refuse(meta, 'api_key_expired', 'This API key has expired', row);
    }
    if ((this.#touched.get(row.id) ?? 0) + TOUCH_EVERY_MS <= now) {
      this.#touched.set(row.id, now);
      await store.touchKey(this.#db, row.id, new Date(now));
    }
    return { kind: 'api_key', keyId: row.id, organizationId: row.organizationId, scopes: row.scopes };
  }

  /**
   * A refused key is a security event, but an address that keeps presenting bad keys is answered 429
   * without writing more: a flood must not fill the table.
   */
  async #refuse(
    meta: RequestMeta,
    kind: 'api_key_invalid' | 'api_key_revoked' | 'api_key_expired',
    message: string,
    row: ApiKeyRow | null,
    details?: Record<string, unknown>,
  ): Promise<never> {
    const failures = await this.#limiter.hit(FAILURES_PER_IP, meta.ip);
    if (!failures.allowed) throw tooManyRequests(failures.retryAfterSeconds);
    await this.#audit.securityEvent({
      kind,
      meta,
      organizationId: row?.organizationId,
      apiKeyId: row?.id,
      details,
    });
    throw unauthorized(message);
  }

  /** Recorded at most MISUSE_EVENTS_PER_KEY times a minute per key. */
  async recordMisuse(principal: ApiKeyPrincipal, meta: RequestMeta, reason: string): Promise<void> {
    if (!(await this.#limiter.hit(MISUSE_EVENTS_PER_KEY, principal.keyId)).allowed) return;
    await this.#audit.securityEvent({
      kind: 'api_key_misuse',
      meta,
      organizationId: principal.organizationId,
      apiKeyId: principal.keyId,
      details: { reason },
    });
  }
}
