import { and, asc, count, desc, eq, inArray, isNull, sql } from '../../core/orm.ts';
import type { Role } from '../../core/auth.ts';
import type { Db } from '../../core/db.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import { users } from '../identity/tables.ts';
import { invitations, memberships, organizations } from './tables.ts';

export async function insertOrganization(db: Db, org: typeof organizations.$inferInsert) {
  const [row] = await db.insert(organizations).values(org).returning();
  return row;
}

function prepareOrganizationById(db: Db) {
  return db
    .select()
    .from(organizations)
    .where(eq(organizations.id, sql.placeholder('id')))
    .prepare('organization_by_id');
}
// The hottest read there is: its query is built once per database handle, not per request.
const organizationByIdQueries = new WeakMap<Db, ReturnType<typeof prepareOrganizationById>>();

export async function organizationById(db: Db, id: string) {
  let query = organizationByIdQueries.get(db);
  if (!query) {
    query = prepareOrganizationById(db);
    organizationByIdQueries.set(db, query);
  }
  const [row] = await query.execute({ id });
  return row;
}

export async function slugTaken(db: Db, slug: string): Promise<boolean> {
  const rows = await db
    .select({ id: organizations.id })
    .from(organizations)
    .where(eq(organizations.slug, slug));
  return rows.length > 0;
}

export async function updateOrganization(db: Db, id: string, changes: { name?: string; slug?: string }) {
  const [row] = await db
    .update(organizations)
    .set({ ...changes, updatedAt: new Date() })
    .where(eq(organizations.id, id))
    .returning();
  return row;
}

export async function deleteOrganization(db: Db, id: string) {
  await db.delete(organizations).where(eq(organizations.id, id));
}

export async function organizationsOfUser(db: Db, userId: string, page: PageRequest) {
  const where = eq(memberships.userId, userId);
  const [rows, [{ total }]] = await Promise.all([
    db
      .select({ org: organizations, role: memberships.role })
      .from(memberships)
      .innerJoin(organizations, eq(organizations.id, memberships.organizationId))
      .where(where)
      .orderBy(asc(organizations.name), asc(organizations.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(memberships).where(where),
  ]);
  return { rows, total };
}

/** The user's organisation if they belong to exactly one. */
export async function soleOrganization(db: Db, userId: string): Promise<string | null> {
  const rows = await db
    .select({ id: memberships.organizationId })
    .from(memberships)
    .where(eq(memberships.userId, userId))
    .limit(2);
  return rows.length === 1 ? rows[0].id : null;
}

export async function membershipRole(db: Db, organizationId: string, userId: string): Promise<Role | null> {
  const [row] = await db
    .select({ role: memberships.role })
    .from(memberships)
    .where(and(eq(memberships.organizationId, organizationId), eq(memberships.userId, userId)));
  return row?.role ?? null;
}

export async function insertMembership(db: Db, m: typeof memberships.$inferInsert) {
  await db.insert(memberships).values(m).onConflictDoNothing();
}

const memberColumns = {
  userId: memberships.userId,
  role: memberships.role,
  createdAt: memberships.createdAt,
  email: users.email,
  name: users.name,
};

export async function listMembers(db: Db, organizationId: string, page: PageRequest) {
  const where = eq(memberships.organizationId, organizationId);
  const [rows, [{ total }]] = await Promise.all([
    db
      .select(memberColumns)
      .from(memberships)
      .innerJoin(users, eq(users.id, memberships.userId))
      .where(where)
      .orderBy(asc(memberships.createdAt), asc(memberships.userId))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(memberships).where(where),
  ]);
  return { rows, total };
}

export async function member(db: Db, organizationId: string, userId: string) {
  const [row] = await db
    .select(memberColumns)
    .from(memberships)
    .innerJoin(users, eq(users.id, memberships.userId))
    .where(and(eq(memberships.organizationId, organizationId), eq(memberships.userId, userId)));
  return row;
}

export async function adminEmails(db: Db, organizationId: string): Promise<string[]> {
  const rows = await db
    .select({ email: users.email })
    .from(memberships)
    .innerJoin(users, eq(users.id, memberships.userId))
    .where(
      and(eq(memberships.organizationId, organizationId), inArray(memberships.role, ['owner', 'admin'])),
    );
  return rows.map((r) => r.email);
}

/** Locks the organisation's owner rows, so two demotions cannot both pass the last-owner check. */
export async function ownerCountForUpdate(db: Db, organizationId: string): Promise<number> {
  const rows = await db
    .select({ userId: memberships.userId })
    .from(memberships)
    .where(and(eq(memberships.organizationId, organizationId), eq(memberships.role, 'owner')))
    .for('update');
  return rows.length;
}

export async function setRole(db: Db, organizationId: string, userId: string, role: Role) {
  await db
    .update(memberships)
    .set({ role, updatedAt: new Date() })
    .where(and(eq(memberships.organizationId, organizationId), eq(memberships.userId, userId)));
}

export async function deleteMembership(db: Db, organizationId: string, userId: string) {
  await db
    .delete(memberships)
    .where(and(eq(memberships.organizationId, organizationId), eq(memberships.userId, userId)));
}

export async function insertInvitation(db: Db, inv: typeof invitations.$inferInsert) {
  const [row] = await db.insert(invitations).values(inv).returning();
  return row;
}

export async function listInvitations(db: Db, organizationId: string, page: PageRequest) {
  const where = and(
    eq(invitations.organizationId, organizationId),
    isNull(invitations.acceptedAt),
    isNull(invitations.revokedAt),
    sql`${invitations.expiresAt} > now()`,
  );
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(invitations)
      .where(where)
      .orderBy(desc(invitations.createdAt))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(invitations).where(where),
  ]);
  return { rows, total };
}

export async function revokeInvitation(db: Db, organizationId: string, id: string): Promise<boolean> {
  const rows = await db
    .update(invitations)
    .set({ revokedAt: new Date() })
    .where(
      and(
        eq(invitations.id, id),
        eq(invitations.organizationId, organizationId),
        isNull(invitations.acceptedAt),
        isNull(invitations.revokedAt),
      ),
    )
    .returning({ id: invitations.id });
  return rows.length === 1;
}

export async function liveInvitationByHash(db: Db, tokenHash: string) {
  const [row] = await db
    .select()
    .from(invitations)
    .where(
      and(
        eq(invitations.tokenHash, tokenHash),
        isNull(invitations.acceptedAt),
        isNull(invitations.revokedAt),
        sql`${invitations.expiresAt} > now()`,
      ),
    )
    .for('update');
  return row;
}

export async function markInvitationAccepted(db: Db, id: string, userId: string) {
  await db
    .update(invitations)
    .set({ acceptedAt: new Date(), acceptedBy: userId })
    .where(eq(invitations.id, id));
}
