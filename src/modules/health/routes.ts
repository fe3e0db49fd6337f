import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import type { Actor, HealthService, SubjectDetail, SubjectKind } from './service.ts';
import type { HealthActionRow, HealthScoreRow } from './tables.ts';

const iso = (d: Date | null) => d?.toISOString() ?? null;
const band = z.enum(['good', 'fair', 'poor', 'critical']);
const kind = z.enum(['domain', 'mailbox']);
const actionKind = z.enum(['pause', 'slow_warmup', 'dns_republish', 'dkim_rotate']);
const actionState = z.enum(['applied', 'failed', 'undone']);

const findingSchema = z.object({
  code: z.string().describe('Stable, dotted: dns.spf_missing, bounces.rate_high …'),
  input: z.string().describe('The input that found it: dns, blocklists, bounces, unsubscribe …'),
  severity: z.enum(['info', 'warning', 'critical']),
  title: z.string(),
  evidence: z.record(z.string(), z.unknown()).describe('What was seen'),
  fix: z.string().describe('What to do about it'),
  penalty: z.number().describe("Points it takes from the score (before its input's weight caps them)"),
});

const subjectSchema = z.object({
  id: z.uuid().describe('The domain or the mailbox'),
  kind,
  name: z.string().describe('The domain name or the mailbox address'),
  domain_id: z.uuid(),
  score: z.number().int().nullable().describe('0-100; null until first computed'),
  band: band.nullable().describe('good ≥ 90, fair ≥ 75, poor ≥ 50, critical below'),
  findings_count: z.number().int(),
  paused: z.boolean().describe('Its mail is held (paused by the policy or by hand)'),
  warmup_slowed: z.boolean(),
  computed_at: z.string().nullable(),
  changed_at: z.string().nullable().describe('When the band or the findings last changed'),
  next_at: z.string().describe('When it is due to be computed again'),
});

const detailSchema = subjectSchema.extend({
  findings: z.array(findingSchema),
  inputs: z.array(
    z.object({
      name: z.string(),
      title: z.string(),
      weight: z.number().describe('The most points its findings together take'),
      penalty: z.number().describe('Points taken now'),
      findings: z.number().int(),
    }),
  ),
  paused_action_id: z.uuid().nullable(),
  slowed_action_id: z.uuid().nullable(),
  history: z.array(z.object({ at: z.string(), score: z.number().int(), band, codes: z.array(z.string()) })),
  domain: z
    .object({
      id: z.uuid(),
      name: z.string(),
      score: z.number().int().nullable(),
      band: band.nullable(),
      paused: z.boolean(),
    })
    .nullable()
    .describe("For a mailbox: its domain's health (a domain's pause holds the mailbox's mail too)"),
});

const actionSchema = z.object({
  id: z.uuid(),
  kind,
  subject_id: z.uuid(),
  domain_id: z.uuid(),
  name: z.string(),
  action: actionKind,
  automatic: z.boolean().describe('Taken by the policy (true) or asked for (false)'),
  reason: z.string(),
  score: z.number().int().nullable(),
  state: actionState,
  error: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
  actor_id: z.uuid().nullable(),
  created_at: z.string(),
  undone_at: z.string().nullable(),
  undone_by: z.uuid().nullable(),
  undo_reason: z.string().nullable(),
});

const policySchema = z.object({
  enabled: z.boolean().describe('Auto-repair at all (scores are computed either way)'),
  pause_below: z.number().int().min(0).max(100).describe('Below this score the sender is paused (mail held)'),
  slow_warmup_below: z.number().int().min(0).max(100).describe('Below this score its warmup is slowed'),
  auto_resume: z.boolean().describe("Lift the policy's own pauses once the score is back at resume_at"),
  resume_at: z.number().int().min(0).max(100),
  republish_dns: z.boolean().describe("Publish drifted records again through the domain's DNS provider"),
  notify_email: z.boolean().describe('Email owners and admins about each automatic action'),
});

function subjectView(r: HealthScoreRow) {
  return {
    id: r.subjectId,
    kind: r.kind,
    name: r.name,
    domain_id: r.domainId,
    score: r.score,
    band: r.band,
    findings_count: r.findings.length,
    paused: r.pausedActionId !== null,
    warmup_slowed: r.slowedActionId !== null,
    computed_at: iso(r.computedAt),
    changed_at: iso(r.changedAt),
    next_at: r.dueAt.toISOString(),
  };
}

function detailView(d: SubjectDetail) {
  return {
    ...subjectView(d.row),
    findings: d.row.findings.map((f) => ({
      code: f.code,
      input: f.input,
      severity: f.severity,
      title: f.title,
      evidence: f.evidence,
      fix: f.fix,
      penalty: f.penalty,
    })),
    inputs: d.inputs,
    paused_action_id: d.row.pausedActionId,
    slowed_action_id: d.row.slowedActionId,
    history: d.history.map((h) => ({
      at: h.at.toISOString(),
      score: h.score,
      band: h.band as z.infer<typeof band>,
      codes: h.codes,
    })),
    domain: d.domain
      ? {
          id: d.domain.subjectId,
          name: d.domain.name,
          score: d.domain.score,
          band: d.domain.band,
          paused: d.domain.pausedActionId !== null,
        }
      : null,
  };
}

function actionView(a: HealthActionRow) {
  return {
    id: a.id,
    kind: a.kind,
    subject_id: a.subjectId,
    domain_id: a.domainId,
    name: a.name,
    action: a.action,
    automatic: a.automatic,
    reason: a.reason,
    score: a.score,
    state: a.state,
    error: a.error,
    details: a.details,
    actor_id: a.actorId,
    created_at: a.createdAt.toISOString(),
    undone_at: iso(a.undoneAt),
    undone_by: a.undoneBy,
    undo_reason: a.undoReason,
  };
}

function actorOf(request: FastifyRequest): Actor {
  const { principal } = authOf(request);
  return { id: principal.kind === 'user' ? principal.userId : principal.keyId };
}

export function healthRoutes(health: HealthService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['health'];
    const read = { level: 'org', role: 'member', scope: 'health:read' } as const;
    const write = { level: 'org', role: 'admin', scope: 'health:write' } as const;
    const idParams = z.strictObject({ id: uuidParam });
    const historyQuery = z.strictObject({
      history_days: z.coerce
        .number()
        .int()
        .min(1)
        .max(365)
        .default(30)
        .describe('Days of score history to include'),
    });
    const reasonBody = z
      .strictObject({ reason: z.string().trim().max(500).optional().describe('Recorded with the action') })
      .nullish();

    for (const k of ['domain', 'mailbox'] as const satisfies readonly SubjectKind[]) {
      const plural = k === 'domain' ? 'domains' : 'mailboxes';
      const Name = k === 'domain' ? 'Domain' : 'Mailbox';
      const audited = (action: string) => ({ action, targetType: k, targetParam: 'id' });

      app.get(
        `/v1/health/${plural}`,
        {
          schema: {
            tags,
            summary: `${Name}s with their health scores`,
            querystring: z.strictObject({
              ...pageQuery,
              sort: z
                .enum(['score', '-score', 'name', '-name', 'computed_at', '-computed_at'])
                .default('score')
                .describe('score: worst first; -score: best first'),
              band: band.optional(),
              paused: z
                .enum(['true', 'false'])
                .optional()
                .describe('Only paused (true) or not paused (false)'),
              ...(k === 'mailbox'
                ? { domain_id: z.uuid().optional().describe("Only this domain's mailboxes") }
                : {}),
            }),
            response: { 200: pageOf(subjectSchema) },
          },
          config: { access: read },
        },
        async (request) => {
          const { page, page_size, sort, band: onlyBand, paused, ...rest } = request.query;
          const domainId = (rest as { domain_id?: string }).domain_id;
          const result = await health.list(
            authOf(request).organizationId,
            k,
            {
              band: onlyBand,
              paused: paused === undefined ? undefined : paused === 'true',
              domainId,
            },
            sort,
            { page, page_size },
          );
          return { ...result, items: result.items.map(subjectView) };
        },
      );

      app.get(
        `/v1/health/${plural}/:id`,
        {
          schema: {
            tags,
            summary: `A ${k}'s health: its score, every finding with its evidence and fix, and its history`,
            params: idParams,
            querystring: historyQuery,
            response: { 200: detailSchema },
          },
          config: { access: read },
        },
        async (request) =>
          detailView(
            await health.detail(
              authOf(request).organizationId,
              k,
              request.params.id,
              request.query.history_days,
            ),
          ),
      );

      app.post(
        `/v1/health/${plural}/:id/check`,
        {
          schema: {
            tags,
            summary: `Recompute the ${k}'s health now${k === 'domain' ? ' (its DNS records are checked again first)' : ''}; the policy's repairs follow`,
            params: idParams,
            querystring: historyQuery,
            response: { 200: detailSchema },
          },
          config: { access: write, audit: audited(`health.${k}_check`) },
        },
        async (request) =>
          detailView(
            await health.check(
              authOf(request).organizationId,
              k,
              request.params.id,
              request.query.history_days,
            ),
          ),
      );

      app.post(
        `/v1/health/${plural}/:id/pause`,
        {
          schema: {
            tags,
            summary: `Pause the ${k}'s sending by hand: its mail is held (queued and new), never dropped, until it is resumed`,
            params: idParams,
            body: reasonBody,
            response: { 201: actionSchema },
          },
          config: { access: write, audit: audited(`health.${k}_pause`) },
        },
        async (request, reply) => {
          const action = await health.pause(
            authOf(request).organizationId,
            k,
            request.params.id,
            actorOf(request),
            request.body?.reason,
          );
          return reply.status(201).send(actionView(action));
        },
      );

      app.post(
        `/v1/health/${plural}/:id/resume`,
        {
          schema: {
            tags,
            summary: `Resume the ${k}'s sending: the pause is undone and its held mail is sent`,
            params: idParams,
            response: { 200: actionSchema },
          },
          config: { access: write, audit: audited(`health.${k}_resume`) },
        },
        async (request) =>
          actionView(
            await health.resume(authOf(request).organizationId, k, request.params.id, actorOf(request)),
          ),
      );
    }

    app.post(
      '/v1/health/domains/:id/rotate-dkim',
      {
        schema: {
          tags,
          summary:
            "Rotate the domain's DKIM key: a new key is created and, with a DNS provider account, published; it signs once a check sees it",
          params: idParams,
          body: z
            .strictObject({
              algorithm: z.enum(['rsa', 'ed25519']).optional(),
              bits: z.union([z.literal(1024), z.literal(2048), z.literal(4096)]).optional(),
              reason: z.string().trim().max(500).optional(),
            })
            .nullish(),
          response: { 201: actionSchema },
        },
        config: {
          access: write,
          audit: { action: 'health.dkim_rotate', targetType: 'domain', targetParam: 'id' },
        },
      },
      async (request, reply) => {
        const body = request.body ?? {};
        const action = await health.rotateDkim(
          authOf(request).organizationId,
          request.params.id,
          { algorithm: body.algorithm, bits: body.bits },
          actorOf(request),
          body.reason,
        );
        return reply.status(201).send(actionView(action));
      },
    );

    app.get(
      '/v1/health/policy',
      {
        schema: {
          tags,
          summary: "The organisation's auto-repair policy",
          response: { 200: policySchema.extend({ updated_at: z.string().nullable() }) },
        },
        config: { access: read },
      },
      async (request) => {
        const policy = await health.policy(authOf(request).organizationId);
        return { ...policy, updated_at: iso(policy.updated_at) };
      },
    );

    app.put(
      '/v1/health/policy',
      {
        schema: {
          tags,
          summary: "Replace the organisation's auto-repair policy",
          body: policySchema.strict(),
          response: { 200: policySchema.extend({ updated_at: z.string().nullable() }) },
        },
        config: { access: write, audit: { action: 'health.policy_update', targetType: 'health_policy' } },
      },
      async (request) => {
        const policy = await health.setPolicy(authOf(request).organizationId, request.body, actorOf(request));
        return { ...policy, updated_at: iso(policy.updated_at) };
      },
    );

    app.get(
      '/v1/health/actions',
      {
        schema: {
          tags,
          summary: 'Repair actions, newest first: automatic and asked for, applied, failed and undone',
          querystring: z.strictObject({
            ...pageQuery,
            kind: kind.optional(),
            subject_id: z.uuid().optional().describe('Only actions on this domain or mailbox'),
            action: actionKind.optional(),
            state: actionState.optional(),
          }),
          response: { 200: pageOf(actionSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const { page, page_size, kind: onlyKind, subject_id, action, state } = request.query;
        const result = await health.actions(
          authOf(request).organizationId,
          { kind: onlyKind, subjectId: subject_id, action, state },
          { page, page_size },
        );
        return { ...result, items: result.items.map(actionView) };
      },
    );

    app.get(
      '/v1/health/actions/:id',
      {
        schema: { tags, summary: 'A repair action', params: idParams, response: { 200: actionSchema } },
        config: { access: read },
      },
      async (request) => actionView(await health.action(authOf(request).organizationId, request.params.id)),
    );

    app.post(
      '/v1/health/actions/:id/undo',
      {
        schema: {
          tags,
          summary:
            'Undo an action: a pause is lifted and its held mail sent, a slowed warmup restored, re-published DNS records put back as they were, a DKIM rotation reversed',
          params: idParams,
          body: reasonBody,
          response: { 200: actionSchema },
        },
        config: {
          access: write,
          audit: { action: 'health.action_undo', targetType: 'health_action', targetParam: 'id' },
        },
      },
      async (request) =>
        actionView(
          await health.undo(
            authOf(request).organizationId,
            request.params.id,
            actorOf(request),
            request.body?.reason,
          ),
        ),
    );
  };
}
