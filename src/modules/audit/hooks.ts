// Every mutating request leaves an audit entry. Routes name their action in `config.audit`; a mutating
// route without one is refused at start-up, so nothing slips through unrecorded. A read that declares an
// action (an export) is recorded too.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { metaOf } from '../../core/http.ts';
import type { Metrics } from '../../core/metrics.ts';
import type { AuditInput, AuditService } from './service.ts';

export interface AuditDeclaration {
  /** e.g. `organization.create` */
  action: string;
  targetType?: string;
  /** Path parameter that names the target; defaults to `id`. */
  targetParam?: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    audit?: AuditDeclaration;
  }
  interface FastifyRequest {
    /** Set by handlers when the target or actor is only known after the work (creation, login). */
    auditTarget?: { id: string; organizationId?: string; actorId?: string };
    /** Set by handlers that wrote the request's audit entry themselves, in their own transaction. */
    auditRecorded?: boolean;
  }
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function registerAuditHooks(app: FastifyInstance, audit: AuditService, metrics: Metrics): void {
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (methods.some((m) => MUTATING.has(m)) && !route.config?.audit) {
      throw new Error(`${methods.join(',')} ${route.url} declares no audit action`);
    }
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const declared = request.routeOptions.config.audit;
    // 401 and 429 are refusals before any work; they are security events, not changes.
    if (!declared || reply.statusCode === 401 || reply.statusCode === 429) return payload;
    if (request.auditRecorded && reply.statusCode < 400) return payload;
    const entry = auditEntryOf(request, reply.statusCode);
    // A refused request from nobody in particular changed nothing and names no one: not worth a row
    // (and unbounded anonymous garbage must not grow the table).
    if (!entry) return payload;
    try {
      await audit.record(entry);
    } catch (err) {
      // Never silent: counted for /metrics and logged as an error with what was not recorded.
      metrics.auditWriteFailures.inc();
      request.log.error(
        { err, action: entry.action, target_id: entry.targetId, status: entry.status },
        'could not write audit entry',
      );
    }
    return payload;
  });
}

/**
 * The audit entry for a request answered with `status`, or null when there is nothing to record (a
 * refused request from nobody in particular). Handlers that write the entry in their own transaction
 * take it from here and set `request.auditRecorded`.
 */
export function auditEntryOf(request: FastifyRequest, status: number): AuditInput | null {
  const declared = request.routeOptions.config.audit;
  if (!declared) return null;
  const principal = request.auth?.principal;
  const target = request.auditTarget;
  if (!principal && !target && status >= 400) return null;
  const params = (request.params ?? {}) as Record<string, string>;
  const actorId =
    principal?.kind === 'user' ? principal.userId : principal?.kind === 'api_key' ? principal.keyId : null;
  return {
    // Only an organisation the caller was authorised for: a refused attempt on another organisation's
    // id must not land in that organisation's trail (it would reveal the caller to them).
    organizationId: target?.organizationId ?? request.auth?.organizationId ?? null,
    actorType: principal?.kind ?? (target?.actorId ? 'user' : 'anonymous'),
    actorId: actorId ?? target?.actorId ?? null,
    action: declared.action,
    targetType: declared.targetType ?? null,
    targetId: target?.id ?? params[declared.targetParam ?? 'id'] ?? null,
    status,
    meta: metaOf(request),
  };
}
