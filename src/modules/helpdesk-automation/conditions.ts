// Conditions of automation rules: which fields a rule may test, with which operators and values (checked
// when the rule is saved), and their evaluation against a ticket and the change or comment that
// triggered the rule. All of a rule's conditions must hold.
import { validationFailed } from '../../core/errors.ts';
import { PRIORITIES, STATUSES, type TicketRow } from '../helpdesk/tables.ts';
import { type Condition, type Op, OPS, type Trigger } from './tables.ts';

type Kind = 'enum' | 'id' | 'text' | 'tags' | 'custom' | 'hours';

interface FieldSpec {
  kind: Kind;
  values?: readonly string[];
  /** Only for rules of this trigger. */
  trigger?: Trigger;
  /** Whether ticket.updated reports changes of it (changed, changed_to, changed_from). */
  changes?: boolean;
}

const FIELDS: Record<string, FieldSpec> = {
  status: { kind: 'enum', values: STATUSES, changes: true },
  priority: { kind: 'enum', values: PRIORITIES, changes: true },
  source: { kind: 'enum', values: ['mail', 'api', 'chat', 'split'] },
  desk_id: { kind: 'id' },
  category_id: { kind: 'id', changes: true },
  department_id: { kind: 'id', changes: true },
  team_id: { kind: 'id', changes: true },
  assignee_id: { kind: 'id', changes: true },
  customer_id: { kind: 'id', changes: true },
  requester_id: { kind: 'id' },
  subject: { kind: 'text', changes: true },
  requester_email: { kind: 'text' },
  tags: { kind: 'tags', changes: true },
  'comment.author_type': {
    kind: 'enum',
    values: ['customer', 'agent', 'system'],
    trigger: 'ticket.commented',
  },
  'comment.visibility': { kind: 'enum', values: ['public', 'internal'], trigger: 'ticket.commented' },
  'comment.body': { kind: 'text', trigger: 'ticket.commented' },
  hours_since_created: { kind: 'hours' },
  hours_since_update: { kind: 'hours' },
  hours_since_customer_reply: { kind: 'hours' },
  hours_since_agent_reply: { kind: 'hours' },
};

export const CONDITION_FIELDS = [...Object.keys(FIELDS), 'custom_fields.<key>'];

const CUSTOM = /^custom_fields\.([a-z][a-z0-9_]{0,63})$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const CHANGE_OPS: Op[] = ['changed', 'changed_to', 'changed_from'];
const OPS_BY_KIND: Record<Kind, Op[]> = {
  enum: ['equals', 'not_equals', 'in', 'not_in', 'is_empty', 'is_not_empty', ...CHANGE_OPS],
  id: ['equals', 'not_equals', 'in', 'not_in', 'is_empty', 'is_not_empty', ...CHANGE_OPS],
  text: ['equals', 'not_equals', 'contains', 'not_contains', 'is_empty', 'is_not_empty', ...CHANGE_OPS],
  tags: ['contains', 'not_contains', 'is_empty', 'is_not_empty', ...CHANGE_OPS],
  // A custom field may hold any kind of value: every operator applies.
  custom: [...OPS],
  hours: ['gt', 'gte', 'lt', 'lte'],
};
const NO_VALUE: Op[] = ['is_empty', 'is_not_empty', 'changed'];
const NUMERIC: Op[] = ['gt', 'gte', 'lt', 'lte'];

function specOf(field: string): FieldSpec | null {
  // Own keys only: `constructor` or `__proto__` are not fields.
  if (Object.hasOwn(FIELDS, field)) return FIELDS[field]!;
  if (CUSTOM.test(field)) return { kind: 'custom', changes: true };
  return null;
}

/** One scalar value as the field holds it. */
function checkScalar(at: string, spec: FieldSpec, value: unknown): void {
  const fail = (what: string) => {
    throw validationFailed(at, what);
  };
  switch (spec.kind) {
    case 'enum':
      if (typeof value !== 'string' || !spec.values!.includes(value))
        fail(`must be one of ${spec.values!.join(', ')}`);
      return;
    case 'id':
      if (typeof value !== 'string' || !UUID.test(value)) fail('must be a UUID');
      return;
    case 'text':
    case 'tags':
      if (typeof value !== 'string' || !value.trim() || value.length > 1000)
        fail('must be a non-empty string of at most 1,000 characters');
      return;
    case 'custom':
      if (!['string', 'number', 'boolean'].includes(typeof value))
        fail('must be a string, number or boolean');
      return;
    case 'hours':
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 24 * 3650)
        fail('must be a number of hours (0 to 87,600)');
  }
}

/** Checks a rule's conditions for its trigger; a time rule needs a lower bound on some elapsed time. */
export function checkConditions(trigger: Trigger, conditions: Condition[]): void {
  conditions.forEach((c, i) => {
    const at = `conditions[${i}]`;
    const spec = specOf(c.field);
    if (!spec) throw validationFailed(`${at}.field`, `unknown field; one of ${CONDITION_FIELDS.join(', ')}`);
    if (spec.trigger && spec.trigger !== trigger)
      throw validationFailed(`${at}.field`, `${c.field} is only known to ${spec.trigger} rules`);
    if (!OPS_BY_KIND[spec.kind].includes(c.op))
      throw validationFailed(`${at}.op`, `${c.field} takes ${OPS_BY_KIND[spec.kind].join(', ')}`);
    if (CHANGE_OPS.includes(c.op)) {
      if (trigger !== 'ticket.updated')
        throw validationFailed(`${at}.op`, `${c.op} is only for ticket.updated rules`);
      if (!spec.changes) throw validationFailed(`${at}.op`, `${c.field} does not change`);
    }
    if (NO_VALUE.includes(c.op)) {
      if (c.value !== undefined) throw validationFailed(`${at}.value`, `${c.op} takes no value`);
      return;
    }
    if (c.op === 'in' || c.op === 'not_in') {
      if (!Array.isArray(c.value) || !c.value.length || c.value.length > 100)
        throw validationFailed(`${at}.value`, 'must be a list of 1 to 100 values');
      for (const v of c.value) checkScalar(`${at}.value`, spec, v);
      return;
    }
    if (NUMERIC.includes(c.op)) {
      if (typeof c.value !== 'number' || !Number.isFinite(c.value))
        throw validationFailed(`${at}.value`, 'must be a number');
      if (spec.kind === 'hours') checkScalar(`${at}.value`, spec, c.value);
      return;
    }
    if ((c.op === 'contains' || c.op === 'not_contains') && spec.kind === 'custom') {
      if (typeof c.value !== 'string' || !c.value) throw validationFailed(`${at}.value`, 'must be a string');
      return;
    }
    checkScalar(`${at}.value`, spec, c.value);
  });
  if (trigger === 'time' && !timeBounds(conditions).length)
    throw validationFailed(
      'conditions',
      'a time rule needs a condition such as {"field": "hours_since_update", "op": "gte", "value": 72}',
    );
}

const TIME_COLUMNS = {
  hours_since_created: 'created_at',
  hours_since_update: 'updated_at',
  hours_since_customer_reply: 'last_customer_at',
  hours_since_agent_reply: 'last_agent_at',
} as const;
export type TimeColumn = (typeof TIME_COLUMNS)[keyof typeof TIME_COLUMNS];

/** A rule's lower bounds on elapsed time: the ticket's `column` must lie `hours` in the past (or more). */
export function timeBounds(
  conditions: Condition[],
): { column: TimeColumn; hours: number; strict: boolean }[] {
  return conditions
    .filter((c) => Object.hasOwn(TIME_COLUMNS, c.field) && (c.op === 'gt' || c.op === 'gte'))
    .map((c) => ({
      column: TIME_COLUMNS[c.field as keyof typeof TIME_COLUMNS],
      hours: c.value as number,
      strict: c.op === 'gt',
    }));
}

/** The statuses a rule's conditions allow (for narrowing the time sweep's candidates), or null for any. */
export function statusFilter(conditions: Condition[]): string[] | null {
  let allowed: string[] | null = null;
  for (const c of conditions) {
    if (c.field !== 'status') continue;
    const these = c.op === 'equals' ? [c.value as string] : c.op === 'in' ? (c.value as string[]) : null;
    if (these) allowed = allowed ? allowed.filter((s) => these.includes(s)) : these;
  }
  return allowed;
}

// ---- evaluation ------------------------------------------------------------------------------------------

export interface Facts {
  ticket: TicketRow;
  requesterEmail: string;
  now: Date;
  /** ticket.updated: each changed field as [before, after]. */
  changes?: Record<string, [unknown, unknown]>;
  /** ticket.commented: the comment. */
  comment?: { author_type: string; visibility: string; body: string };
}

const hoursSince = (now: Date, at: Date | null) => (at ? (now.getTime() - at.getTime()) / 3_600_000 : null);

function fieldValue(field: string, f: Facts): unknown {
  const t = f.ticket;
  const custom = CUSTOM.exec(field);
  if (custom) return t.customFields[custom[1]!] ?? null;
  switch (field) {
    case 'status':
      return t.status;
    case 'priority':
      return t.priority;
    case 'source':
      return t.source;
    case 'desk_id':
      return t.deskId;
    case 'category_id':
      return t.categoryId;
    case 'department_id':
      return t.departmentId;
    case 'team_id':
      return t.teamId;
    case 'assignee_id':
      return t.assigneeId;
    case 'customer_id':
      return t.customerId;
    case 'requester_id':
      return t.requesterId;
    case 'subject':
      return t.subject;
    case 'requester_email':
      return f.requesterEmail;
    case 'tags':
      return t.tags;
    case 'comment.author_type':
      return f.comment?.author_type ?? null;
    case 'comment.visibility':
      return f.comment?.visibility ?? null;
    case 'comment.body':
      return f.comment?.body ?? null;
    case 'hours_since_created':
      return hoursSince(f.now, t.createdAt);
    case 'hours_since_update':
      return hoursSince(f.now, t.updatedAt);
    case 'hours_since_customer_reply':
      return hoursSince(f.now, t.lastCustomerAt);
    case 'hours_since_agent_reply':
      return hoursSince(f.now, t.lastAgentAt);
  }
  return null;
}

const norm = (v: unknown) => (typeof v === 'string' ? v.trim().toLowerCase() : v);
const same = (a: unknown, b: unknown) => norm(a) === norm(b);
const empty = (v: unknown) => v === null || v === undefined || v === '' || (Array.isArray(v) && !v.length);

/** [before, after] of a field in a ticket.updated change set, or null when it did not change. */
function changeOf(field: string, changes: Facts['changes']): [unknown, unknown] | null {
  if (!changes) return null;
  const custom = CUSTOM.exec(field);
  if (custom) {
    const pair = changes.custom_fields as [Record<string, unknown>, Record<string, unknown>] | undefined;
    if (!pair) return null;
    const before = pair[0]?.[custom[1]!] ?? null;
    const after = pair[1]?.[custom[1]!] ?? null;
    return JSON.stringify(before) === JSON.stringify(after) ? null : [before, after];
  }
  return changes[field] ?? null;
}

function holds(c: Condition, f: Facts): boolean {
  const value = fieldValue(c.field, f);
  const tags = c.field === 'tags';
  switch (c.op) {
    case 'equals':
      return same(value, c.value);
    case 'not_equals':
      return !same(value, c.value);
    case 'in':
      return (c.value as unknown[]).some((v) => same(value, v));
    case 'not_in':
      return !(c.value as unknown[]).some((v) => same(value, v));
    case 'contains':
    case 'not_contains': {
      const needle = norm(c.value) as string;
      const found = Array.isArray(value)
        ? value.some((v) => same(v, needle))
        : typeof value === 'string' && value.toLowerCase().includes(needle);
      return c.op === 'contains' ? found : !found;
    }
    case 'is_empty':
      return empty(value);
    case 'is_not_empty':
      return !empty(value);
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte': {
      if (typeof value !== 'number') return false;
      const limit = c.value as number;
      return c.op === 'gt'
        ? value > limit
        : c.op === 'gte'
          ? value >= limit
          : c.op === 'lt'
            ? value < limit
            : value <= limit;
    }
    case 'changed':
      return changeOf(c.field, f.changes) !== null;
    case 'changed_to':
    case 'changed_from': {
      const change = changeOf(c.field, f.changes);
      if (!change) return false;
      const [before, after] = c.op === 'changed_to' ? change : [change[1], change[0]];
      if (tags) {
        const tag = norm(c.value);
        const had = ((before as string[] | null) ?? []).includes(tag as string);
        const has = ((after as string[] | null) ?? []).includes(tag as string);
        // changed_to: the tag was added; changed_from: it was removed.
        return has && !had;
      }
      return same(after, c.value);
    }
  }
  return false;
}

export function matches(conditions: Condition[], facts: Facts): boolean {
  return conditions.every((c) => holds(c, facts));
}
