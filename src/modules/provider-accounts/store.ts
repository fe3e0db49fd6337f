import type { Db } from '../../core/db.ts';
import { and, asc, count, eq } from '../../core/orm.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import { type ProviderAccountRow, providerAccounts } from './tables.ts';

export async function insertAccount(
  db: Db,
  row: typeof providerAccounts.$inferInsert,
): Promise<ProviderAccountRow> {
  const [created] = await db.insert(providerAccounts).values(row).returning();
  return created;
}

export async function listAccounts(db: Db, organizationId: string, page: PageRequest) {
  const where = eq(providerAccounts.organizationId, organizationId);
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(providerAccounts)
      .where(where)
      .orderBy(asc(providerAccounts.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(providerAccounts).where(where),
  ]);
  return { rows, total };
}

export async function accountById(
  db: Db,
  organizationId: string,
  id: string,
): Promise<ProviderAccountRow | null> {
  const [row] = await db
    .select()
    .from(providerAccounts)
    .where(and(eq(providerAccounts.organizationId, organizationId), eq(providerAccounts.id, id)));
  return row ?? null;
}

export async function updateAccount(
  db: Db,
  organizationId: string,
  id: string,
  changes: Partial<typeof providerAccounts.$inferInsert>,
): Promise<ProviderAccountRow | null> {
  const [row] = await db
    .update(providerAccounts)
    .set({ ...changes, updatedAt: new Date() })
    .where(and(eq(providerAccounts.organizationId, organizationId), eq(providerAccounts.id, id)))
    .returning();
  return row ?? null;
}

export async function deleteAccount(db: Db, organizationId: string, id: string): Promise<boolean> {
  const deleted = await db
    .delete(providerAccounts)
    .where(and(eq(providerAccounts.organizationId, organizationId), eq(providerAccounts.id, id)))
    .returning({ id: providerAccounts.id });
  return deleted.length > 0;
}
