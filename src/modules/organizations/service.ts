// Organisations, memberships with roles, and invitations by mailed token.
import { type Role, roleAtLeast } from '../../core/auth.ts';
import { randomToken, sha256 } from '../../core/crypto.ts';
import { databaseErrorCode, type Db } from '../../core/db.ts';
import { AppError, badRequest, conflict, forbidden, notFound } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { Mailer } from '../../core/mailer.ts';
import { type PageRequest, toPage } from '../../core/pagination.ts';
import type { EventsService } from '../events/service.ts';
import { type IdentityService, normalizeEmail } from '../identity/service.ts';
import {
  invitationCreated,
  invitationRevoked,
  memberAdded,
  memberRemoved,
  memberRoleChanged,
  organizationCreated,
  organizationDeleted,
  organizationUpdated,
} from './events.ts';
import * as store from './store.ts';
import type { InvitationRow, OrganizationRow } from './tables.ts';

const INVITATION_TTL = 7 * 24 * 3600;
const UNIQUE_VIOLATION = '23505';
// API keys act as admins bounded by their scopes; letting one mint admins would lift that bound.
const KEYS_CANNOT_ADMINISTER = 'An API key cannot grant, change or remove the admin or owner role';

/** Who is acting: a member (userId) or an API key (userId null), with the role they act with. */
export interface Actor {
  userId: string | null;
  role: Role;
}
/** How long a membership lookup is trusted in this process; changes made here apply at once. */
const ROLE_CACHE_MS = 5_000;

export interface OrganizationsOptions {
  db: Db;
  mailer: Mailer;
  identity: IdentityService;
  events: EventsService;
  publicUrl: string;
  /** Told after an organisation is deleted (caches elsewhere forget it). */
  onDeleted?: (organizationId: string) => void;
}

export class OrganizationsService {
  readonly #o: OrganizationsOptions;
  readonly #roles = new Map<string, { role: Role | null; until: number }>();

  constructor(options: OrganizationsOptions) {
    this.#o = options;
  }

  async create(userId: string, input: { name: string; slug?: string }): Promise<OrganizationRow> {
    for (let attempt = 1; ; attempt++) {
      try {
        const org = await this.#o.db.transaction(async (tx) => {
          const slug = input.slug ?? (await this.#freeSlug(tx, input.name));
          if (input.slug && (await store.slugTaken(tx, input.slug))) {
            throw conflict(`The slug "${input.slug}" is taken`);
          }
          const created = await store.insertOrganization(tx, { id: newId(), name: input.name, slug });
          await store.insertMembership(tx, { organizationId: created.id, userId, role: 'owner' });
          await this.#o.events.emit(tx, organizationCreated, created.id, organizationData(created));
          return created;
        });
        this.#forgetRoles(org.id, userId);
        return org;
      } catch (err) {
        // Two creations raced for the same free slug: pick again (a slug the caller chose is theirs to change).
        if (input.slug || attempt >= 5 || databaseErrorCode(err) !== UNIQUE_VIOLATION) throw err;
      }
    }
  }

  async listForUser(userId: string, page: PageRequest) {
    const { rows, total } = await store.organizationsOfUser(this.#o.db, userId, page);
    return toPage(
      rows.map((r) => ({ ...r.org, role: r.role })),
      total,
      page,
    );
  }

  async get(organizationId: string): Promise<OrganizationRow> {
    const org = await store.organizationById(this.#o.db, organizationId);
    if (!org) throw notFound('Organization');
    return org;
  }

  async update(organizationId: string, changes: { name?: string; slug?: string }): Promise<OrganizationRow> {
    if (changes.slug) {
      const current = await this.get(organizationId);
      if (current.slug !== changes.slug && (await store.slugTaken(this.#o.db, changes.slug))) {
        throw conflict(`The slug "${changes.slug}" is taken`);
      }
    }
    return this.#o.db.transaction(async (tx) => {
      const org = await store.updateOrganization(tx, organizationId, changes);
      if (!org) throw notFound('Organization');
      await this.#o.events.emit(tx, organizationUpdated, org.id, organizationData(org));
      return org;
    });
  }

  async delete(organizationId: string): Promise<void> {
    await this.#o.db.transaction(async (tx) => {
      await store.deleteOrganization(tx, organizationId);
      await this.#o.events.emit(tx, organizationDeleted, organizationId, { organization_id: organizationId });
    });
    this.#forgetRoles(organizationId);
    this.#o.onDeleted?.(organizationId);
  }

  /** Asked on every organisation-scoped request, so answers are cached briefly. */
  async membershipRole(organizationId: string, userId: string): Promise<Role | null> {
    const key = `${organizationId}:${userId}`;
    const now = Date.now();
    const cached = this.#roles.get(key);
    if (cached && cached.until > now) return cached.role;
    const role = await store.membershipRole(this.#o.db, organizationId, userId);
    if (this.#roles.size > 50_000) this.#roles.clear();
    this.#roles.set(key, { role, until: now + ROLE_CACHE_MS });
    return role;
  }

  #forgetRoles(organizationId: string, userId?: string): void {
    if (userId) this.#roles.delete(`${organizationId}:${userId}`);
    else
      for (const key of this.#roles.keys()) if (key.startsWith(`${organizationId}:`)) this.#roles.delete(key);
  }

  soleOrganization(userId: string): Promise<string | null> {
    return store.soleOrganization(this.#o.db, userId);
  }

  // ---- members -----------------------------------------------------------------------------------

  async listMembers(organizationId: string, page: PageRequest) {
    const { rows, total } = await store.listMembers(this.#o.db, organizationId, page);
    return toPage(rows, total, page);
  }

  async getMember(organizationId: string, userId: string) {
    const m = await store.member(this.#o.db, organizationId, userId);
    if (!m) throw notFound('Member');
    return m;
  }

  /** Admins manage members below owner; only owners grant, change or remove the owner role. */
  async changeRole(organizationId: string, actor: Actor, userId: string, role: Role) {
    await this.#o.db.transaction(async (tx) => {
      const target = await store.member(tx, organizationId, userId);
      if (!target) throw notFound('Member');
      if ((target.role === 'owner' || role === 'owner') && actor.role !== 'owner') {
        throw forbidden('Only an owner can grant or change the owner role');
      }
      if (actor.userId === null && (roleAtLeast(target.role, 'admin') || roleAtLeast(role, 'admin'))) {
        throw forbidden(KEYS_CANNOT_ADMINISTER);
      }
      if (target.role === 'owner' && role !== 'owner') await this.#keepAnOwner(tx, organizationId);
      await store.setRole(tx, organizationId, userId, role);
      await this.#o.events.emit(tx, memberRoleChanged, organizationId, {
        user_id: userId,
        role,
        previous_role: target.role,
      });
    });
    this.#forgetRoles(organizationId, userId);
    return this.getMember(organizationId, userId);
  }

  /** Removing yourself (leaving) needs no role; removing others needs admin (owner for owners). */
  async removeMember(organizationId: string, actor: Actor, userId: string) {
    await this.#o.db.transaction(async (tx) => {
      const target = await store.member(tx, organizationId, userId);
      if (!target) throw notFound('Member');
      const self = actor.userId === userId;
      if (!self && !roleAtLeast(actor.role, 'admin'))
        throw forbidden('Removing members needs the admin role');
      if (!self && target.role === 'owner' && actor.role !== 'owner')
        throw forbidden('Only an owner can remove an owner');
      if (actor.userId === null && roleAtLeast(target.role, 'admin')) throw forbidden(KEYS_CANNOT_ADMINISTER);
      if (target.role === 'owner') await this.#keepAnOwner(tx, organizationId);
      await store.deleteMembership(tx, organizationId, userId);
      await this.#o.events.emit(tx, memberRemoved, organizationId, {
        user_id: userId,
        role: target.role,
        by_self: self,
      });
    });
    this.#forgetRoles(organizationId, userId);
  }

  async #keepAnOwner(tx: Db, organizationId: string) {
    if ((await store.ownerCountForUpdate(tx, organizationId)) <= 1) {
      throw new AppError(
        409,
        'last_owner',
        'An organisation needs at least one owner; make someone else owner first',
      );
    }
  }

  // ---- invitations -------------------------------------------------------------------------------

  async invite(
    organizationId: string,
    inviter: Actor,
    input: { email: string; role: Role },
  ): Promise<InvitationRow> {
    if (input.role === 'owner' && inviter.role !== 'owner')
      throw forbidden('Only an owner can invite an owner');
    if (inviter.userId === null && roleAtLeast(input.role, 'admin')) throw forbidden(KEYS_CANNOT_ADMINISTER);
    const email = normalizeEmail(input.email);
    const existing = await this.#o.identity.userByEmail(email);
    if (existing && (await store.membershipRole(this.#o.db, organizationId, existing.id))) {
      throw conflict('That person is already a member');
    }
    const org = await this.get(organizationId);
    const token = randomToken(32);
    const invitation = await this.#o.db.transaction(async (tx) => {
      const created = await store.insertInvitation(tx, {
        id: newId(),
        organizationId,
        email,
        role: input.role,
        tokenHash: sha256(token),
        invitedBy: inviter.userId,
        expiresAt: new Date(Date.now() + INVITATION_TTL * 1000),
      });
      await this.#o.events.emit(tx, invitationCreated, organizationId, {
        invitation_id: created.id,
        email,
        role: input.role,
        expires_at: created.expiresAt.toISOString(),
      });
      return created;
    });
    await this.#o.mailer.send({
      to: email,
      subject: `You are invited to ${org.name} on Mailroom`,
      text: `You have been invited to join ${org.name} as ${input.role}.\n\nSigned in, send this token to POST ${this.#o.publicUrl}/v1/invitations/accept, or create an account with POST ${this.#o.publicUrl}/v1/auth/register and pass it as invitation_token.\n\ntoken: ${token}\n\nIt expires in 7 days.`,
    });
    return invitation;
  }

  async listInvitations(organizationId: string, page: PageRequest) {
    const { rows, total } = await store.listInvitations(this.#o.db, organizationId, page);
    return toPage(rows, total, page);
  }

  async revokeInvitation(organizationId: string, id: string): Promise<void> {
    await this.#o.db.transaction(async (tx) => {
      if (!(await store.revokeInvitation(tx, organizationId, id))) throw notFound('Invitation');
      await this.#o.events.emit(tx, invitationRevoked, organizationId, { invitation_id: id });
    });
  }

  async invitationIsValid(token: string, email: string): Promise<boolean> {
    const inv = await store.liveInvitationByHash(this.#o.db, sha256(token));
    return Boolean(inv && inv.email === normalizeEmail(email));
  }

  /** The invitation must be for the accepting user's own email address. */
  async acceptInvitation(token: string, userId: string): Promise<{ organizationId: string; role: Role }> {
    const user = await this.#o.identity.getUser(userId);
    const accepted = await this.#o.db.transaction((tx) => this.acceptInvitationIn(tx, token, user));
    this.#forgetRoles(accepted.organizationId, userId);
    return accepted;
  }

  /** Accepts inside the caller's transaction (registration with an invitation token). */
  async acceptInvitationIn(
    tx: Db,
    token: string,
    user: { id: string; email: string },
  ): Promise<{ organizationId: string; role: Role }> {
    const inv = await store.liveInvitationByHash(tx, sha256(token));
    if (!inv) throw badRequest('The invitation is invalid, used, revoked or expired');
    if (inv.email !== user.email) throw forbidden('This invitation was sent to a different email address');
    if (await store.membershipRole(tx, inv.organizationId, user.id)) {
      throw conflict('You are already a member of this organisation');
    }
    await store.insertMembership(tx, { organizationId: inv.organizationId, userId: user.id, role: inv.role });
    await store.markInvitationAccepted(tx, inv.id, user.id);
    await this.#o.events.emit(tx, memberAdded, inv.organizationId, {
      user_id: user.id,
      role: inv.role,
      invitation_id: inv.id,
    });
    return { organizationId: inv.organizationId, role: inv.role };
  }

  /** Where to tell an organisation about something that needs a person (owners and admins). */
  adminEmails(organizationId: string): Promise<string[]> {
    return store.adminEmails(this.#o.db, organizationId);
  }

  async #freeSlug(db: Db, name: string): Promise<string> {
    const base =
      name
        .normalize('NFKD')
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, '-')
        .replace(/^-+|-+$/g, '')
        .slice(0, 40) || 'org';
    if (!(await store.slugTaken(db, base))) return base;
    for (;;) {
      const candidate = `${base}-${randomToken(4)
        .toLowerCase()
        .replace(/[^a-z0-9]/g, '')}`;
      if (!(await store.slugTaken(db, candidate))) return candidate;
    }
  }
}

function organizationData(org: OrganizationRow) {
  return { organization_id: org.id, name: org.name, slug: org.slug };
}
