// Authentication and authorisation, decided here and nowhere else. A route declares what it needs in
// `config.access`; the hooks below establish who is calling (onRequest) and whether they may (preHandler,
// after validation, so ids are well-formed). Modules supply the lookups through `AuthBackend`.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError, forbidden, notFound, unauthorized } from './errors.ts';
import { BEARER_SUBPROTOCOL } from './http.ts';
import { isUuid } from './ids.ts';
import { enforce, type RateLimiter } from './ratelimit.ts';

export const ROLES = ['viewer', 'member', 'admin', 'owner'] as const;
export type Role = (typeof ROLES)[number];

export interface UserPrincipal {
  kind: 'user';
  userId: string;
  sessionId: string;
  isSuperadmin: boolean;
}

export interface ApiKeyPrincipal {
  kind: 'api_key';
  keyId: string;
  organizationId: string;
  scopes: string[];
}

export type Principal = UserPrincipal | ApiKeyPrincipal;

export interface AuthContext {
  principal: Principal;
  /** Set for organisation-scoped routes. */
  organizationId?: string;
  /** The caller's role in that organisation; API keys act as `admin`, bounded by their scopes. */
  role?: Role;
}

export type Access =
  | { level: 'public' }
  /** Any signed-in user (a session, not an API key). */
  | { level: 'user' }
  | { level: 'superadmin' }
  /**
   * A member of the organisation in scope with at least `role`. API keys need `scope` and act as admins:
   * a route without a scope, or one that needs the owner role, refuses them. With `mfaWithinSeconds`, a
   * user who has MFA on must have passed a TOTP check on this session that recently (step-up; keys have
   * no second factor and are bounded by their scope instead).
   */
  | { level: 'org'; role: Role; scope?: string; mfaWithinSeconds?: number };

export interface AuthBackend {
  /** Resolves a bearer token (JWT or API key) to a principal, or throws 401. */
  authenticate(token: string, request: FastifyRequest): Promise<Principal>;
  membershipRole(organizationId: string, userId: string): Promise<Role | null>;
  /** The user's organisations, to pick the only one when the request names none. */
  soleOrganization(userId: string): Promise<string | null>;
  /** Records a refused key use (scope or organisation mismatch). */
  recordKeyMisuse(principal: ApiKeyPrincipal, request: FastifyRequest, reason: string): Promise<void>;
  /** Whether the user has MFA on, and when this session last passed a TOTP check. */
  mfaState(principal: UserPrincipal): Promise<{ enabled: boolean; verifiedAt: Date | null }>;
}

export interface AuthHooksOptions {
  backend: AuthBackend;
  limiter: RateLimiter;
  /** Requests per minute per principal (user session or API key). */
  perMinute: number;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    auth?: AuthContext;
  }
}

export const ORGANIZATION_HEADER = 'x-organization-id';

export function roleAtLeast(role: Role, minimum: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(minimum);
}

/** `write` implies `read`; `domains:*` and `*` are wildcards. */
export function scopeAllows(scopes: string[], needed: string): boolean {
  const [resource, action] = needed.split(':');
  return scopes.some((s) => {
    if (s === '*' || s === needed) return true;
    const [r, a] = s.split(':');
    return r === resource && (a === '*' || (a === 'write' && action === 'read'));
  });
}

export function registerAuthHooks(app: FastifyInstance, options: AuthHooksOptions): void {
  const { backend, limiter, perMinute } = options;
  const generalLimit = { name: 'requests', limit: perMinute, windowSeconds: 60 };

  app.addHook('onRequest', async (request) => {
    const access = request.routeOptions.config.access;
    if (!access || access.level === 'public') return;
    const token = bearerToken(request);
    if (!token) throw unauthorized();
    const principal = await backend.authenticate(token, request);
    await enforce(limiter, generalLimit, principal.kind === 'user' ? principal.userId : principal.keyId);
    request.auth = { principal };
  });

  app.addHook('preHandler', async (request) => {
    const access = request.routeOptions.config.access;
    if (!access || access.level === 'public') return;
    const auth = request.auth!;
    const { principal } = auth;
    if (access.level === 'user' || access.level === 'superadmin') {
      if (principal.kind !== 'user') throw forbidden('This operation needs a signed-in user, not an API key');
      if (access.level === 'superadmin' && !principal.isSuperadmin) throw notFound();
      return;
    }
    const organizationId = await organizationInScope(request, principal, backend);
    if (principal.kind === 'api_key') {
      if (principal.organizationId !== organizationId) {
        await backend.recordKeyMisuse(principal, request, 'organization_mismatch');
        throw notFound();
      }
      const keysAllowed = access.scope !== undefined && access.role !== 'owner';
      if (!keysAllowed || !scopeAllows(principal.scopes, access.scope!)) {
        await backend.recordKeyMisuse(
          principal,
          request,
          `scope_denied:${keysAllowed ? access.scope : 'session_only'}`,
        );
        throw forbidden(
          keysAllowed
            ? `API key lacks the ${access.scope} scope`
            : 'This operation needs a signed-in user, not an API key',
        );
      }
      request.auth = { principal, organizationId, role: 'admin' };
      return;
    }
    const role = await backend.membershipRole(organizationId, principal.userId);
    // Not a member: the organisation does not exist as far as this caller can tell.
    if (!role) throw notFound('Organization');
    if (!roleAtLeast(role, access.role))
      throw forbidden(`This needs the ${access.role} role; you are ${role}`);
    // Set before the step-up check: a refusal for want of a recent check is filed under the organisation.
    request.auth = { principal, organizationId, role };
    if (access.mfaWithinSeconds !== undefined)
      await requireRecentMfa(backend, principal, access.mfaWithinSeconds);
  });
}

/** 403 `mfa_required` when the user has MFA on and this session's last TOTP check is older than `seconds`. */
async function requireRecentMfa(backend: AuthBackend, principal: UserPrincipal, seconds: number) {
  const { enabled, verifiedAt } = await backend.mfaState(principal);
  if (!enabled) return;
  if (verifiedAt && Date.now() - verifiedAt.getTime() <= seconds * 1000) return;
  const within = seconds % 60 === 0 ? `${seconds / 60} minutes` : `${seconds} seconds`;
  throw new AppError(
    403,
    'mfa_required',
    `This needs a TOTP check within the last ${within}: POST /v1/auth/mfa/verify with {"code": "<your current code>"}, then retry`,
  );
}

function bearerToken(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (!header) return webSocketToken(request);
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw unauthorized('Authorization must be "Bearer <token>"');
  return match[1];
}

/** A browser WebSocket offers `mailroom.bearer` and the token as its subprotocols (it cannot set headers). */
function webSocketToken(request: FastifyRequest): string | null {
  const offered = request.headers['sec-websocket-protocol'];
  if (typeof offered !== 'string' || request.headers.upgrade?.toLowerCase() !== 'websocket') return null;
  const protocols = offered.split(',').map((p) => p.trim());
  if (!protocols.includes(BEARER_SUBPROTOCOL)) return null;
  return protocols.find((p) => p !== BEARER_SUBPROTOCOL && p !== '') ?? null;
}

async function organizationInScope(
  request: FastifyRequest,
  principal: Principal,
  backend: AuthBackend,
): Promise<string> {
  const fromPath = (request.params as Record<string, string> | undefined)?.organization_id;
  const fromHeader = request.headers[ORGANIZATION_HEADER];
  // WebSocket clients in browsers cannot send headers; routes that allow it take it from the query.
  const fromQuery = (request.query as Record<string, unknown> | undefined)?.organization_id;
  const named =
    fromPath ??
    (typeof fromHeader === 'string' ? fromHeader : undefined) ??
    (typeof fromQuery === 'string' ? fromQuery : undefined);
  if (named !== undefined) {
    if (!isUuid(named)) throw notFound('Organization');
    return named.toLowerCase();
  }
  if (principal.kind === 'api_key') return principal.organizationId;
  const sole = await backend.soleOrganization(principal.userId);
  if (!sole) {
    throw new AppError(
      400,
      'organization_required',
      `Name the organisation with the ${ORGANIZATION_HEADER} header (you belong to none or several)`,
    );
  }
  return sole;
}

/** The auth context of a request that passed the hooks (for handlers). */
export function authOf(request: FastifyRequest): AuthContext & { organizationId: string } {
  const auth = request.auth;
  if (!auth) throw unauthorized();
  return auth as AuthContext & { organizationId: string };
}

export function userOf(request: FastifyRequest): UserPrincipal {
  const p = request.auth?.principal;
  if (p?.kind !== 'user') throw unauthorized();
  return p;
}
