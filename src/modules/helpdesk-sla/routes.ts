import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import { PRIORITIES } from '../helpdesk/tables.ts';
import type { HelpdeskSlaService } from './service.ts';
import { type CalendarRow, type PolicyRow, TARGETS, type TimerRow } from './tables.ts';

const id = z.uuid();
const iso = (d: Date | null) => d?.toISOString() ?? null;
const hhmm = z.string().regex(/^([01]\d|2[0-4]):[0-5]\d$/, 'a time HH:MM');

const interval = z.strictObject({
  day: z.number().int().min(0).max(6).describe('0 Sunday .. 6 Saturday'),
  start: hhmm,
  end: hhmm.describe('After start; 24:00 ends the day'),
});

const calendarBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  time_zone: z.string().min(1).max(100).describe('IANA time zone, e.g. Europe/Berlin'),
  hours: z.array(interval).min(1).max(70).describe('Weekly working hours, local time'),
  holidays: z
    .array(z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a date YYYY-MM-DD'))
    .max(1000)
    .optional()
    .describe('Local dates without working hours'),
});

const calendarSchema = z.object({
  id,
  name: z.string(),
  time_zone: z.string(),
  hours: z.array(z.object({ day: z.number(), start: z.string(), end: z.string() })),
  holidays: z.array(z.string()),
  created_at: z.string(),
  updated_at: z.string(),
});

function calendarView(c: CalendarRow) {
  return {
    id: c.id,
    name: c.name,
    time_zone: c.timeZone,
    hours: c.hours,
    holidays: c.holidays,
    created_at: c.createdAt.toISOString(),
    updated_at: c.updatedAt.toISOString(),
  };
}

const minutes = z.number().int().min(1).max(525_600).nullish();
const target = z.enum(TARGETS);

const action = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('reassign'),
    assignee_id: z.uuid().nullish().describe('An agent'),
    team_id: z.uuid().nullish(),
  }),
  z.strictObject({ type: z.literal('raise_priority').describe('One step: low → normal → high → urgent') }),
  z.strictObject({
    type: z.literal('notify_email'),
    to: z.array(z.email()).min(1).max(20).describe('Sent from the ticket desk’s first address'),
  }),
  z.strictObject({
    type: z.literal('notify_teams').describe('Marks the event for the Teams notification module'),
  }),
]);

const escalationStep = z.strictObject({
  at: z.enum(['warning', 'breach']),
  target: z.enum([...TARGETS, 'any']),
  actions: z.array(action).min(1).max(10),
});

const policyBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  position: z.number().int().min(0).max(1_000_000).optional().describe('Lower is tried first; default last'),
  enabled: z.boolean().optional(),
  conditions: z
    .strictObject({
      priorities: z.array(z.enum(PRIORITIES)).max(4).optional(),
      category_ids: z.array(id).max(200).optional(),
      customer_ids: z.array(id).max(1000).optional(),
    })
    .optional()
    .describe('Each list that is not empty must contain the ticket’s value; none: every ticket'),
  targets: z
    .strictObject({ first_response: minutes, next_response: minutes, resolution: minutes })
    .describe('Minutes of business time; null or absent: no such target'),
  calendar_id: z.uuid().nullish().describe('Business hours; null: 24/7'),
  warn_at: z
    .number()
    .gt(0)
    .lt(1)
    .nullish()
    .describe('Share of a target after which it warns (default 0.8); null: no warnings'),
  escalations: z.array(escalationStep).max(20).optional(),
});

const policySchema = z.object({
  id,
  name: z.string(),
  position: z.number().int(),
  enabled: z.boolean(),
  conditions: z.object({
    priorities: z.array(z.string()),
    category_ids: z.array(z.uuid()),
    customer_ids: z.array(z.uuid()),
  }),
  targets: z.object({
    first_response: z.number().int().nullable(),
    next_response: z.number().int().nullable(),
    resolution: z.number().int().nullable(),
  }),
  calendar_id: z.uuid().nullable(),
  warn_at: z.number().nullable(),
  escalations: z.array(escalationStep),
  created_at: z.string(),
  updated_at: z.string(),
});

function policyView(p: PolicyRow) {
  return {
    id: p.id,
    name: p.name,
    position: p.position,
    enabled: p.enabled,
    conditions: { priorities: p.priorities, category_ids: p.categoryIds, customer_ids: p.customerIds },
    targets: {
      first_response: p.firstResponseMinutes,
      next_response: p.nextResponseMinutes,
      resolution: p.resolutionMinutes,
    },
    calendar_id: p.calendarId,
    // A real column: 0.8 comes back as 0.800000011920929 without rounding.
    warn_at: p.warnAt === null ? null : Math.round(p.warnAt * 1e6) / 1e6,
    escalations: p.escalations,
    created_at: p.createdAt.toISOString(),
    updated_at: p.updatedAt.toISOString(),
  };
}

const timerSchema = z.object({
  target,
  state: z.enum(['running', 'paused', 'met', 'stopped']).describe('stopped: the ticket was resolved first'),
  paused: z.boolean(),
  target_minutes: z.number().int(),
  calendar_id: z.uuid().nullable(),
  started_at: z.string(),
  warn_at: z.string().nullable().describe('Unknown (null) while paused'),
  due_at: z.string().nullable().describe('Unknown (null) while paused'),
  elapsed_minutes: z.number().int().describe('Business minutes counted'),
  remaining_minutes: z.number().int().describe('Negative once breached'),
  warned: z.boolean(),
  breached: z.boolean(),
  warned_at: z.string().nullable(),
  breached_at: z.string().nullable(),
  met_at: z.string().nullable(),
});

const slaSchema = z.object({
  ticket_id: id,
  policy: z.object({ id, name: z.string() }).nullable(),
  paused: z.boolean().describe('The ticket is pending on the customer'),
  breached: z.boolean().describe('Some target was breached'),
  timers: z.array(timerSchema),
});

function timerView(t: TimerRow, elapsedMinutes: number) {
  const paused = t.state === 'paused';
  return {
    target: t.target,
    state: t.state,
    paused,
    target_minutes: t.targetMinutes,
    calendar_id: t.calendarId,
    started_at: t.startedAt.toISOString(),
    warn_at: paused ? null : iso(t.warnAt),
    due_at: paused ? null : iso(t.dueAt),
    elapsed_minutes: elapsedMinutes,
    remaining_minutes: t.targetMinutes - elapsedMinutes,
    warned: t.warned,
    breached: t.breached,
    warned_at: iso(t.warnedAt),
    breached_at: iso(t.breachedAt),
    met_at: iso(t.metAt),
  };
}

export function slaRoutes(sla: HelpdeskSlaService) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['helpdesk'];
    const read = { level: 'org', role: 'member', scope: 'helpdesk:read' } as const;
    const write = { level: 'org', role: 'admin', scope: 'helpdesk:write' } as const;
    const params = z.strictObject({ id });
    const org = (request: FastifyRequest) => authOf(request).organizationId;

    // ---- calendars --------------------------------------------------------------------------------------
    app.get(
      '/v1/helpdesk/calendars',
      {
        schema: {
          tags,
          summary: 'Business-hours calendars for SLA targets',
          querystring: z.strictObject(pageQuery),
          response: { 200: pageOf(calendarSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const page = await sla.listCalendars(org(request), request.query);
        return { ...page, items: page.items.map(calendarView) };
      },
    );
    app.post(
      '/v1/helpdesk/calendars',
      {
        schema: {
          tags,
          summary: 'Create a calendar: weekly business hours in a time zone, and holidays',
          body: calendarBody,
          response: { 201: calendarSchema },
        },
        config: {
          access: write,
          audit: { action: 'helpdesk_calendar.create', targetType: 'helpdesk_calendar' },
        },
      },
      async (request, reply) => {
        const calendar = await sla.createCalendar(org(request), request.body);
        request.auditTarget = { id: calendar.id };
        return reply.status(201).send(calendarView(calendar));
      },
    );
    app.get(
      '/v1/helpdesk/calendars/:id',
      {
        schema: { tags, summary: 'A calendar', params, response: { 200: calendarSchema } },
        config: { access: read },
      },
      async (request) => calendarView(await sla.calendar(org(request), request.params.id)),
    );
    app.patch(
      '/v1/helpdesk/calendars/:id',
      {
        schema: {
          tags,
          summary: 'Change a calendar',
          description:
            'Running timers keep the business time they counted; the rest of each moves to the new hours.',
          params,
          body: calendarBody.partial(),
          response: { 200: calendarSchema },
        },
        config: {
          access: write,
          audit: { action: 'helpdesk_calendar.update', targetType: 'helpdesk_calendar', targetParam: 'id' },
        },
      },
      async (request) =>
        calendarView(await sla.updateCalendar(org(request), request.params.id, request.body)),
    );
    app.delete(
      '/v1/helpdesk/calendars/:id',
      {
        schema: { tags, summary: 'Delete a calendar no policy uses', params, response: { 204: z.null() } },
        config: {
          access: write,
          audit: { action: 'helpdesk_calendar.delete', targetType: 'helpdesk_calendar', targetParam: 'id' },
        },
      },
      async (request, reply) => {
        await sla.deleteCalendar(org(request), request.params.id);
        return reply.status(204).send(null);
      },
    );

    // ---- policies ---------------------------------------------------------------------------------------
    app.get(
      '/v1/helpdesk/sla-policies',
      {
        schema: {
          tags,
          summary: 'SLA policies, in the order they are tried',
          querystring: z.strictObject(pageQuery),
          response: { 200: pageOf(policySchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const page = await sla.listPolicies(org(request), request.query);
        return { ...page, items: page.items.map(policyView) };
      },
    );
    app.post(
      '/v1/helpdesk/sla-policies',
      {
        schema: {
          tags,
          summary: 'Create an SLA policy',
          description:
            'The first enabled policy (by position) whose conditions match a ticket applies to it. Targets count business minutes of the calendar.',
          body: policyBody,
          response: { 201: policySchema },
        },
        config: {
          access: write,
          audit: { action: 'helpdesk_sla_policy.create', targetType: 'helpdesk_sla_policy' },
        },
      },
      async (request, reply) => {
        const policy = await sla.createPolicy(org(request), request.body);
        request.auditTarget = { id: policy.id };
        return reply.status(201).send(policyView(policy));
      },
    );
    app.get(
      '/v1/helpdesk/sla-policies/:id',
      {
        schema: { tags, summary: 'An SLA policy', params, response: { 200: policySchema } },
        config: { access: read },
      },
      async (request) => policyView(await sla.policy(org(request), request.params.id)),
    );
    app.patch(
      '/v1/helpdesk/sla-policies/:id',
      {
        schema: {
          tags,
          summary: 'Change an SLA policy',
          description:
            'Given `conditions` and `targets` replace the old ones whole. Tickets take the change when their policy is next chosen.',
          params,
          body: policyBody.partial(),
          response: { 200: policySchema },
        },
        config: {
          access: write,
          audit: {
            action: 'helpdesk_sla_policy.update',
            targetType: 'helpdesk_sla_policy',
            targetParam: 'id',
          },
        },
      },
      async (request) => policyView(await sla.updatePolicy(org(request), request.params.id, request.body)),
    );
    app.delete(
      '/v1/helpdesk/sla-policies/:id',
      {
        schema: {
          tags,
          summary: 'Delete an SLA policy (its timers stop)',
          params,
          response: { 204: z.null() },
        },
        config: {
          access: write,
          audit: {
            action: 'helpdesk_sla_policy.delete',
            targetType: 'helpdesk_sla_policy',
            targetParam: 'id',
          },
        },
      },
      async (request, reply) => {
        await sla.deletePolicy(org(request), request.params.id);
        return reply.status(204).send(null);
      },
    );

    // ---- a ticket's SLA ---------------------------------------------------------------------------------
    app.get(
      '/v1/tickets/:id/sla',
      {
        schema: {
          tags: ['tickets'],
          summary:
            'The ticket’s SLA: its policy, and per target the due time, business time counted and state',
          params,
          response: { 200: slaSchema },
        },
        config: { access: { level: 'org', role: 'member', scope: 'tickets:read' } },
      },
      async (request) => {
        const state = await sla.ticketSla(org(request), request.params.id);
        return {
          ticket_id: state.ticketId,
          policy: state.policy,
          paused: state.paused,
          breached: state.timers.some((t) => t.timer.breached),
          timers: state.timers.map((t) => timerView(t.timer, t.elapsedMinutes)),
        };
      },
    );
  };
}
