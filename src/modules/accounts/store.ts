// The queries of external accounts; every one scoped by organisation.
import type { Db } from '../../core/db.ts';
import { and, asc, count, eq, ne } from '../../core/orm.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import { type MailAccountRow, mailAccounts, type NewMailAccount } from './tables.ts';

export async function insertAccount(db: Db, row: NewMailAccount): Promise<MailAccountRow> {
  const [created] = await db.insert(mailAccounts).values(row).returning();
  return created;
}

export async function accountById(
  db: Db,
  organizationId: string,
  id: string,
): Promise<MailAccountRow | null> {
  const [row] = await db
    .select()
    .from(mailAccounts)
    .where(and(eq(mailAccounts.organizationId, organizationId), eq(mailAccounts.id, id)));
  return row ?? null;
}

export async function accountByAddress(
  db: Db,
  organizationId: string,
  address: string,
): Promise<MailAccountRow | null> {
  const [row] = await db
    .select()
    .from(mailAccounts)
    .where(and(eq(mailAccounts.organizationId, organizationId), eq(mailAccounts.address, address)));
  return row ?? null;
}

export async function listAccounts(
  db: Db,
  organizationId: string,
  page: PageRequest,
): Promise<{ rows: MailAccountRow[]; total: number }> {
  const where = eq(mailAccounts.organizationId, organizationId);
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(mailAccounts)
      .where(where)
      .orderBy(asc(mailAccounts.address))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(mailAccounts).where(where),
  ]);
  return { rows, total };
}

export async function updateAccount(
  db: Db,
  organizationId: string,
  id: string,
  set: Partial<NewMailAccount>,
): Promise<MailAccountRow | null> {
  const [row] = await db
    .update(mailAccounts)
    .set({ ...set, updatedAt: new Date() })
    .where(and(eq(mailAccounts.organizationId, organizationId), eq(mailAccounts.id, id)))
    .returning();
  return row ?? null;
}

export async function deleteAccount(
  db: Db,
  organizationId: string,
  id: string,
): Promise<MailAccountRow | null> {
  const [row] = await db
    .delete(mailAccounts)
    .where(and(eq(mailAccounts.organizationId, organizationId), eq(mailAccounts.id, id)))
    .returning();
  return row ?? null;
}

/**
 * Sets what the sync learnt (state, last error, capabilities) unless the account was paused or deleted
 * meanwhile; false when nothing was set. Leaves updated_at alone: it dates changes people make.
 */
export async function setSyncState(
  db: Db,
  id: string,
  set: Pick<Partial<NewMailAccount>, 'state' | 'lastError' | 'lastErrorAt' | 'capabilities' | 'lastSyncedAt'>,
): Promise<boolean> {
  const rows = await db
    .update(mailAccounts)
    .set(set)
    .where(and(eq(mailAccounts.id, id), ne(mailAccounts.state, 'paused')))
    .returning({ id: mailAccounts.id });
  return rows.length > 0;
}
