import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import { FOLDER_NAMES } from '../mailboxes/service.ts';
import {
  DEFAULT_RULE_PRIORITY,
  MAX_RULE_CONDITIONS,
  MAX_RULE_TARGETS,
  RULE_ACTIONS,
  type RulesService,
  ruleConditionSchema,
} from './service.ts';
import type { RuleRow } from './tables.ts';

const ruleSchema = z.object({
  id: z.uuid(),
  domain_id: z.uuid(),
  name: z.string(),
  recipient: z
    .string()
    .nullable()
    .describe('The local part it applies to; null: every address of the domain'),
  priority: z.number().int(),
  conditions: z.array(ruleConditionSchema),
  action: z.enum(RULE_ACTIONS),
  targets: z.array(z.string()),
  folder: z.string().nullable(),
  is_enabled: z.boolean(),
  match_count: z.number().int(),
  last_matched_at: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});

function ruleView(r: RuleRow) {
  return {
    id: r.id,
    domain_id: r.domainId,
    name: r.name,
    recipient: r.recipient,
    priority: r.priority,
    conditions: r.conditions,
    action: r.action,
    targets: r.targets,
    folder: r.folder,
    is_enabled: r.isEnabled,
    match_count: r.matchCount,
    last_matched_at: r.lastMatchedAt?.toISOString() ?? null,
    created_at: r.createdAt.toISOString(),
    updated_at: r.updatedAt.toISOString(),
  };
}

const ruleFields = {
  domain_id: z.uuid().describe('One of the organisation’s domains'),
  name: z.string().max(200),
  recipient: z
    .string()
    .max(64)
    .nullish()
    .describe('A local part of the domain (e.g. `sales`); null or absent: every address of the domain'),
  priority: z
    .number()
    .int()
    .min(0)
    .max(1_000_000)
    .nullish()
    .describe(`Lower runs first; default ${DEFAULT_RULE_PRIORITY}`),
  conditions: z
    .array(ruleConditionSchema)
    .max(MAX_RULE_CONDITIONS)
    .nullish()
    .describe(`Up to ${MAX_RULE_CONDITIONS}; all must hold. Empty or absent: the rule always matches`),
  action: z.enum(RULE_ACTIONS),
  targets: z
    .array(z.string().max(320))
    .max(MAX_RULE_TARGETS)
    .nullish()
    .describe('forward and redirect: 1 or more addresses (required); other actions: empty or absent'),
  folder: z
    .enum(FOLDER_NAMES)
    .nullish()
    .describe('store: the folder (default INBOX); other actions: null or absent'),
  is_enabled: z.boolean().nullish().describe('Default true'),
};

export function ruleRoutes(rules: RulesService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['rules'];
    const read = { level: 'org', role: 'member', scope: 'rules:read' } as const;
    const write = { level: 'org', role: 'admin', scope: 'rules:write' } as const;
    const idParams = z.strictObject({ id: uuidParam });
    const audited = (action: string) => ({ action, targetType: 'rule', targetParam: 'id' });

    app.post(
      '/v1/rules',
      {
        schema: {
          tags,
          summary: 'Create a routing rule for a domain',
          body: z.strictObject(ruleFields),
          response: { 201: ruleSchema },
        },
        config: { access: write, audit: { action: 'rule.create', targetType: 'rule' } },
      },
      async (request, reply) => {
        const rule = await rules.create(authOf(request).organizationId, request.body);
        request.auditTarget = { id: rule.id };
        return reply.status(201).send(ruleView(rule));
      },
    );

    app.get(
      '/v1/rules',
      {
        schema: {
          tags,
          summary: 'Rules, by domain, then priority (lower first), then age',
          querystring: z.strictObject({ ...pageQuery, domain_id: z.uuid().optional() }),
          response: { 200: pageOf(ruleSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const { page, page_size, domain_id } = request.query;
        const found = await rules.list(
          authOf(request).organizationId,
          { domainId: domain_id },
          { page, page_size },
        );
        return { ...found, items: found.items.map(ruleView) };
      },
    );

    app.get(
      '/v1/rules/:id',
      {
        schema: { tags, summary: 'One rule', params: idParams, response: { 200: ruleSchema } },
        config: { access: read },
      },
      async (request) => ruleView(await rules.get(authOf(request).organizationId, request.params.id)),
    );

    app.patch(
      '/v1/rules/:id',
      {
        schema: {
          tags,
          summary: 'Change any field of a rule',
          description:
            'When the action changes and targets or folder are not given, they carry over only where the new action uses them.',
          params: idParams,
          body: z.strictObject({ ...ruleFields, action: ruleFields.action.nullish() }).partial(),
          response: { 200: ruleSchema },
        },
        config: { access: write, audit: audited('rule.update') },
      },
      async (request) => {
        const { action, ...rest } = request.body;
        return ruleView(
          await rules.update(authOf(request).organizationId, request.params.id, {
            ...rest,
            action: action ?? undefined,
          }),
        );
      },
    );

    app.delete(
      '/v1/rules/:id',
      {
        schema: { tags, summary: 'Delete a rule', params: idParams, response: { 204: z.null() } },
        config: { access: write, audit: audited('rule.delete') },
      },
      async (request, reply) => {
        await rules.delete(authOf(request).organizationId, request.params.id);
        return reply.status(204).send(null);
      },
    );
  };
}
