import type { Db } from '../../core/db.ts';
import { and, asc, count, eq, inArray } from '../../core/orm.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import type { ProviderName } from '../../providers/index.ts';
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

/** Who owns which accounts, and of which provider: a light read other modules check references with. */
export interface AccountRef {
  id: string;
  organizationId: string;
  provider: string;
}

const refColumns = {
  id: providerAccounts.id,
  organizationId: providerAccounts.organizationId,
  provider: providerAccounts.provider,
};

export function refsOf(db: Db, organizationId: string, ids: string[]): Promise<AccountRef[]> {
  return db
    .select(refColumns)
    .from(providerAccounts)
    .where(and(eq(providerAccounts.organizationId, organizationId), inArray(providerAccounts.id, ids)));
}

export async function refById(db: Db, id: string): Promise<AccountRef | null> {
  const [row] = await db.select(refColumns).from(providerAccounts).where(eq(providerAccounts.id, id));
  return row ?? null;
}

/** Every installation's account of a provider (workers that hold a connection per account). */
export function refsOfProvider(db: Db, provider: ProviderName): Promise<AccountRef[]> {
  return db.select(refColumns).from(providerAccounts).where(eq(providerAccounts.provider, provider));
}
