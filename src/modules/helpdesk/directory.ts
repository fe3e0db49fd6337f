// The organisation of the helpdesk's work: agents (members of the organisation with a helpdesk role),
// teams and how they assign, departments, categories (some need approval) and customer organisations
// (matched to requesters by the domain of their address). Tickets name these; this checks the names.
import type { Db } from '../../core/db.ts';
import { conflict, notFound, validationFailed } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import * as store from './directory-store.ts';
import type { AgentRole, Assignment, CategoryRow, TeamRow } from './tables.ts';

export interface TeamInput {
  name: string;
  assignment?: Assignment;
  member_ids?: string[];
}

export interface CategoryInput {
  name: string;
  needs_approval?: boolean;
  approver_ids?: string[];
  team_id?: string | null;
}

export interface CustomerInput {
  name: string;
  domains?: string[];
  notes?: string | null;
}

const LABEL: Record<store.NamedKind, string> = {
  departments: 'Department',
  categories: 'Category',
  customers: 'Customer',
  teams: 'Team',
};

const MENTION = /(?:^|\s)@([^\s@]+@[^\s@]+\.[a-z0-9-]+)/gi;

export class Directory {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  // ---- agents ------------------------------------------------------------------------------------------

  async setAgent(organizationId: string, userId: string, input: { role: AgentRole; active?: boolean }) {
    await this.#db.transaction(async (tx) => {
      if (!(await store.organizationMembers(tx, organizationId, [userId])).length) throw notFound('Member');
      await store.upsertAgent(tx, { organizationId, userId, role: input.role, active: input.active ?? true });
    });
    return (await store.agentsOf(this.#db, organizationId, [userId]))[0]!;
  }

  agents(organizationId: string) {
    return store.agentsOf(this.#db, organizationId);
  }

  async agent(organizationId: string, userId: string, db: Db = this.#db) {
    const [agent] = await store.agentsOf(db, organizationId, [userId]);
    if (!agent) throw notFound('Agent');
    return agent;
  }

  async removeAgent(organizationId: string, userId: string): Promise<void> {
    const removed = await this.#db.transaction((tx) => store.deleteAgent(tx, organizationId, userId));
    if (!removed) throw notFound('Agent');
  }

  async #checkAgents(db: Db, organizationId: string, userIds: string[], field: string): Promise<void> {
    const found = await store.agentsOf(db, organizationId, userIds);
    const missing = userIds.filter((id) => !found.some((a) => a.userId === id));
    if (missing.length) throw validationFailed(field, `not agents of this helpdesk: ${missing.join(', ')}`);
  }

  // ---- departments, categories, customers, teams ---------------------------------------------------------

  async create(organizationId: string, kind: store.NamedKind, input: Record<string, unknown>) {
    const id = newId();
    await this.#db.transaction(async (tx) => {
      const row = await this.#rowOf(tx, organizationId, kind, input);
      const inserted = await store.insertNamed(tx, kind, { ...row, id, organizationId });
      if (!inserted) throw conflict(`a ${LABEL[kind].toLowerCase()} named "${input.name}" exists`);
      if (kind === 'teams' && input.member_ids)
        await store.setTeamMembers(tx, organizationId, id, [...new Set(input.member_ids as string[])]);
    });
    return this.get(organizationId, kind, id);
  }

  async update(organizationId: string, kind: store.NamedKind, id: string, input: Record<string, unknown>) {
    await this.#db.transaction(async (tx) => {
      const row = await this.#rowOf(tx, organizationId, kind, input);
      if (Object.keys(row).length) {
        const updated = await store.updateNamed(tx, kind, organizationId, id, row);
        if (updated === null) throw conflict(`a ${LABEL[kind].toLowerCase()} named "${input.name}" exists`);
        if (!updated) throw notFound(LABEL[kind]);
      } else if (!(await store.namedOf(tx, kind, organizationId, id))) throw notFound(LABEL[kind]);
      if (kind === 'teams' && input.member_ids)
        await store.setTeamMembers(tx, organizationId, id, [...new Set(input.member_ids as string[])]);
    });
    return this.get(organizationId, kind, id);
  }

  /** The row's own columns from API input, with every reference checked. */
  async #rowOf(tx: Db, organizationId: string, kind: store.NamedKind, input: Record<string, unknown>) {
    const row: Record<string, unknown> = {};
    if (input.name !== undefined) row.name = String(input.name).trim();
    if (row.name === '') throw validationFailed('name', 'must not be empty');
    if (kind === 'teams') {
      if (input.assignment !== undefined) row.assignment = input.assignment;
      if (input.member_ids)
        await this.#checkAgents(tx, organizationId, input.member_ids as string[], 'member_ids');
    }
    if (kind === 'categories') {
      if (input.needs_approval !== undefined) row.needsApproval = input.needs_approval;
      if (input.approver_ids !== undefined) {
        const ids = [...new Set(input.approver_ids as string[])];
        await this.#checkAgents(tx, organizationId, ids, 'approver_ids');
        row.approverIds = ids;
      }
      if (input.team_id !== undefined) {
        if (input.team_id) await this.team(organizationId, input.team_id as string, tx, 'team_id');
        row.teamId = input.team_id;
      }
    }
    if (kind === 'customers') {
      if (input.domains !== undefined) {
        const domains = [...new Set((input.domains as string[]).map((d) => d.trim().toLowerCase()))];
        for (const d of domains)
          if (!/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(d))
            throw validationFailed('domains', `"${d}" is not a domain`);
        row.domains = domains;
      }
      if (input.notes !== undefined) row.notes = input.notes;
    }
    return row;
  }

  async get(organizationId: string, kind: store.NamedKind, id: string) {
    const row = await store.namedOf(this.#db, kind, organizationId, id);
    if (!row) throw notFound(LABEL[kind]);
    if (kind !== 'teams') return row;
    const members = await store.teamMembers(this.#db, [id]);
    return { ...row, memberIds: members.map((m) => m.userId) };
  }

  async list(organizationId: string, kind: store.NamedKind, page: PageRequest) {
    const { rows, total } = await store.listNamed(this.#db, kind, organizationId, page);
    if (kind !== 'teams') return toPage(rows, total, page);
    const members = await store.teamMembers(
      this.#db,
      rows.map((r) => r.id as string),
    );
    return toPage(
      rows.map((r) => ({ ...r, memberIds: members.filter((m) => m.teamId === r.id).map((m) => m.userId) })),
      total,
      page,
    );
  }

  async remove(organizationId: string, kind: store.NamedKind, id: string): Promise<void> {
    const removed = await this.#db.transaction((tx) => store.deleteNamed(tx, kind, organizationId, id));
    if (!removed) throw notFound(LABEL[kind]);
  }

  async team(organizationId: string, id: string, db: Db = this.#db, field?: string): Promise<TeamRow> {
    const row = await store.namedOf(db, 'teams', organizationId, id);
    if (!row) throw field ? validationFailed(field, 'no such team') : notFound('Team');
    return row as unknown as TeamRow;
  }

  async category(organizationId: string, id: string, db: Db = this.#db): Promise<CategoryRow | undefined> {
    return (await store.namedOf(db, 'categories', organizationId, id)) as CategoryRow | undefined;
  }

  /** Checks that the ids a ticket names are the organisation's; the category is returned for its rules. */
  async checkRefs(
    tx: Db,
    organizationId: string,
    refs: {
      category_id?: string | null;
      department_id?: string | null;
      team_id?: string | null;
      customer_id?: string | null;
      assignee_id?: string | null;
    },
  ): Promise<{ category: CategoryRow | undefined }> {
    const check = async (kind: store.NamedKind, id: string | null | undefined, field: string) => {
      if (!id) return undefined;
      const row = await store.namedOf(tx, kind, organizationId, id);
      if (!row) throw validationFailed(field, `no such ${LABEL[kind].toLowerCase()}`);
      return row;
    };
    const category = (await check('categories', refs.category_id, 'category_id')) as CategoryRow | undefined;
    await check('departments', refs.department_id, 'department_id');
    await check('teams', refs.team_id, 'team_id');
    await check('customers', refs.customer_id, 'customer_id');
    if (refs.assignee_id) await this.#checkAgents(tx, organizationId, [refs.assignee_id], 'assignee_id');
    return { category };
  }

  /** The team's next agent by its rule (round-robin or least-loaded); null for manual teams. */
  async nextAssignee(tx: Db, organizationId: string, teamId: string): Promise<string | null> {
    const team = await store.teamForAssignment(tx, organizationId, teamId);
    if (!team || team.assignment === 'manual' || !team.agents.length) return null;
    let next: string;
    if (team.assignment === 'round_robin') {
      const after = team.agents.findIndex((id) => id > (team.last_assigned_user_id ?? ''));
      next = team.agents[after === -1 ? 0 : after]!;
    } else {
      const load = await store.openLoad(tx, organizationId, team.agents);
      next = team.agents.reduce((best, id) => ((load.get(id) ?? 0) < (load.get(best) ?? 0) ? id : best));
    }
    await store.setLastAssigned(tx, teamId, next);
    return next;
  }

  /** Agents named in `mentions` (checked) or as `@address` in the text. */
  async mentionedAgents(tx: Db, organizationId: string, body: string, explicit: string[]): Promise<string[]> {
    if (explicit.length) await this.#checkAgents(tx, organizationId, explicit, 'mentions');
    const emails = [...body.matchAll(MENTION)].map((m) => m[1]!.toLowerCase());
    const found = await store.agentsByEmail(tx, organizationId, emails);
    return [...new Set([...explicit, ...found])];
  }

  // ---- what the helpdesk service keeps through here -----------------------------------------------------

  insertDesk = store.insertDesk;
  updateDesk = store.updateDesk;
  bindAddresses = store.bindAddresses;
  unbindAddresses = store.unbindAddresses;
  insertApproval = store.insertApproval;

  listDesks(organizationId: string, page: PageRequest) {
    return store.listDesks(this.#db, organizationId, page);
  }

  async deleteDesk(organizationId: string, id: string): Promise<'deleted' | 'missing' | 'in_use'> {
    if (await store.deskHasTickets(this.#db, organizationId, id)) return 'in_use';
    return (await this.#db.transaction((tx) => store.deleteDesk(tx, organizationId, id)))
      ? 'deleted'
      : 'missing';
  }

  approvalsOf(organizationId: string, ticketId: string) {
    return store.approvalsOf(this.#db, organizationId, ticketId);
  }

  approval(id: string) {
    return store.approvalOf(this.#db, id);
  }

  conversationIds(ticketId: string) {
    return store.conversationIds(this.#db, ticketId);
  }
}
