// Routing rules: per domain, optionally per recipient local part, a list of conditions that must all
// hold and one action (forward, redirect, store in a folder, block, drop). Lower priority runs first.
import { z } from 'zod';
import type { Db } from '../../core/db.ts';
import { notFound, validationFailed } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import type { DomainsService } from '../domains/service.ts';
import type { EventsService } from '../events/service.ts';
import { FOLDER_NAMES, type FolderName, normaliseEmail, normaliseLocalPart } from '../mailboxes/service.ts';
import { ruleCreated, ruleDeleted, ruleUpdated } from './events.ts';
import * as store from './store.ts';
import type { RuleAction, RuleCondition, RuleRow } from './tables.ts';

export const RULE_ACTIONS = [
  'forward',
  'redirect',
  'store',
  'block',
  'drop',
] as const satisfies readonly RuleAction[];
export const MAX_RULE_CONDITIONS = 20;
export const MAX_RULE_TARGETS = 50;
export const DEFAULT_RULE_PRIORITY = 100;
export const DEFAULT_RULE_FOLDER: FolderName = 'INBOX';

/** One condition, as the API takes it; the same shape as `RuleCondition`. */
export const ruleConditionSchema = z.discriminatedUnion('field', [
  z.strictObject({
    field: z.literal('sender'),
    op: z.enum(['equals', 'contains']),
    value: z.string().min(1).max(320),
  }),
  z.strictObject({
    field: z.literal('sender_domain'),
    op: z.literal('equals'),
    value: z.string().min(1).max(253),
  }),
  z.strictObject({
    field: z.literal('subject'),
    op: z.literal('contains'),
    value: z.string().min(1).max(998),
  }),
  z.strictObject({
    field: z.literal('size'),
    op: z.literal('above'),
    value: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).describe('Bytes'),
  }),
  z.strictObject({ field: z.literal('has_attachments'), op: z.literal('equals'), value: z.boolean() }),
]);
export const ruleConditionsSchema = z.array(ruleConditionSchema).max(MAX_RULE_CONDITIONS);

// The schema and the table's type must describe the same conditions.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const _conditionsMatch: Same<z.infer<typeof ruleConditionSchema>, RuleCondition> = true;
void _conditionsMatch;

export interface RulesOptions {
  db: Db;
  events: EventsService;
  domains: DomainsService;
}

export interface RuleInput {
  domain_id: string;
  name: string;
  /** A local part of the domain; null or absent: every address of the domain. */
  recipient?: string | null;
  priority?: number | null;
  conditions?: RuleCondition[] | null;
  action: RuleAction;
  /** forward, redirect: required; otherwise empty. */
  targets?: string[] | null;
  /** store: the folder (default INBOX); otherwise null. */
  folder?: string | null;
  is_enabled?: boolean | null;
}

export type RuleChanges = Partial<RuleInput>;

export type RuleFilter = store.RuleFilter;

export class RulesService {
  readonly #o: RulesOptions;

  constructor(options: RulesOptions) {
    this.#o = options;
  }

  async create(organizationId: string, input: RuleInput): Promise<RuleRow> {
    await this.#o.domains.get(organizationId, input.domain_id);
    const outcome = outcomeOf(input.action, input.targets ?? [], input.folder ?? null);
    const row: store.NewRule = {
      id: newId(),
      organizationId,
      domainId: input.domain_id,
      name: nameOf(input.name),
      recipient: recipientOf(input.recipient ?? null),
      priority: priorityOf(input.priority ?? DEFAULT_RULE_PRIORITY),
      conditions: conditionsOf(input.conditions ?? []),
      ...outcome,
      isEnabled: input.is_enabled ?? true,
    };
    return this.#o.db.transaction(async (tx) => {
      const rule = await store.insertRule(tx, row);
      await this.#o.events.emit(tx, ruleCreated, organizationId, {
        rule_id: rule.id,
        domain_id: rule.domainId,
        name: rule.name,
        action: rule.action,
      });
      return rule;
    });
  }

  async list(organizationId: string, filter: RuleFilter, page: PageRequest) {
    const { rows, total } = await store.listRules(this.#o.db, organizationId, filter, page);
    return toPage(rows, total, page);
  }

  async get(organizationId: string, id: string): Promise<RuleRow> {
    const rule = await store.ruleById(this.#o.db, organizationId, id);
    if (!rule) throw notFound('Rule');
    return rule;
  }

  /**
   * Changes any field. When the action changes and targets or folder are not given, they carry over
   * only where the new action uses them (targets for forward and redirect, the folder for store).
   */
  async update(organizationId: string, id: string, changes: RuleChanges): Promise<RuleRow> {
    const rule = await this.get(organizationId, id);
    const set: Partial<store.NewRule> = {};
    const changed: string[] = [];
    const given = <K extends keyof RuleChanges>(key: K) => changes[key] !== undefined;
    if (changes.domain_id != null && changes.domain_id !== rule.domainId) {
      await this.#o.domains.get(organizationId, changes.domain_id);
      set.domainId = changes.domain_id;
      changed.push('domain_id');
    }
    if (changes.name != null) {
      set.name = nameOf(changes.name);
      changed.push('name');
    }
    if (given('recipient')) {
      set.recipient = recipientOf(changes.recipient ?? null);
      changed.push('recipient');
    }
    if (changes.priority != null) {
      set.priority = priorityOf(changes.priority);
      changed.push('priority');
    }
    if (changes.conditions != null) {
      set.conditions = conditionsOf(changes.conditions);
      changed.push('conditions');
    }
    if (changes.is_enabled != null) {
      set.isEnabled = changes.is_enabled;
      changed.push('is_enabled');
    }
    if (changes.action != null || given('targets') || given('folder')) {
      const action = changes.action ?? rule.action;
      const targets = changes.targets ?? (action === 'forward' || action === 'redirect' ? rule.targets : []);
      const folder = given('folder') ? (changes.folder ?? null) : action === 'store' ? rule.folder : null;
      const outcome = outcomeOf(action, targets, folder);
      Object.assign(set, outcome);
      for (const key of ['action', 'targets', 'folder'] as const) {
        if (JSON.stringify(outcome[key]) !== JSON.stringify(rule[key])) changed.push(key);
      }
    }
    if (changed.length === 0) return rule;
    return this.#o.db.transaction(async (tx) => {
      const row = await store.updateRule(tx, organizationId, id, set);
      if (!row) throw notFound('Rule');
      await this.#o.events.emit(tx, ruleUpdated, organizationId, {
        rule_id: id,
        domain_id: row.domainId,
        name: row.name,
        action: row.action,
        changes: changed,
      });
      return row;
    });
  }

  async delete(organizationId: string, id: string): Promise<void> {
    await this.#o.db.transaction(async (tx) => {
      const deleted = await store.deleteRule(tx, organizationId, id);
      if (!deleted) throw notFound('Rule');
      await this.#o.events.emit(tx, ruleDeleted, organizationId, {
        rule_id: id,
        domain_id: deleted.domainId,
        name: deleted.name,
      });
    });
  }
}

function nameOf(input: string): string {
  const name = input.trim();
  if (!name || name.length > 200) throw validationFailed('name', 'must be 1 to 200 characters');
  return name;
}

function recipientOf(input: string | null): string | null {
  return input === null ? null : normaliseLocalPart(input, 'recipient');
}

function priorityOf(priority: number): number {
  if (!Number.isInteger(priority) || priority < 0 || priority > 1_000_000) {
    throw validationFailed('priority', 'must be a whole number from 0 to 1000000');
  }
  return priority;
}

function conditionsOf(input: RuleCondition[]): RuleCondition[] {
  const parsed = ruleConditionsSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw validationFailed(['conditions', ...issue.path].join('.'), issue.message);
  }
  return parsed.data;
}

/** The action with the targets and folder it needs, and nothing it does not. */
function outcomeOf(
  action: RuleAction,
  targets: string[],
  folder: string | null,
): Pick<store.NewRule, 'action' | 'targets' | 'folder'> {
  if (!RULE_ACTIONS.includes(action)) {
    throw validationFailed('action', `must be one of ${RULE_ACTIONS.join(', ')}`);
  }
  const forwards = action === 'forward' || action === 'redirect';
  if (forwards && targets.length === 0) {
    throw validationFailed('targets', `${action} needs at least one target address`);
  }
  if (!forwards && targets.length > 0) throw validationFailed('targets', `${action} takes no targets`);
  if (targets.length > MAX_RULE_TARGETS) {
    throw validationFailed('targets', `at most ${MAX_RULE_TARGETS} addresses`);
  }
  const seen = new Set<string>();
  targets.forEach((target, i) => {
    const normalised = normaliseEmail(target, `targets.${i}`);
    if (seen.has(normalised)) throw validationFailed(`targets.${i}`, `${normalised} is listed twice`);
    seen.add(normalised);
  });
  if (action !== 'store') {
    if (folder !== null) throw validationFailed('folder', `${action} takes no folder (only store does)`);
    return { action, targets: [...seen], folder: null };
  }
  const name = folder ?? DEFAULT_RULE_FOLDER;
  if (!FOLDER_NAMES.includes(name as FolderName)) {
    throw validationFailed('folder', `must be one of ${FOLDER_NAMES.join(', ')}`);
  }
  return { action, targets: [], folder: name };
}
