import type { SQL } from 'drizzle-orm';
import type { Db } from '../../core/db.ts';
import { and, count, desc, eq, inArray, like } from '../../core/orm.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import { type SuppressionReason, type SuppressionRow, suppressions } from './tables.ts';

export type NewSuppression = typeof suppressions.$inferInsert;

/** Inserts the rows whose address is not suppressed yet; returns those inserted. */
export async function insertSuppressions(tx: Db, rows: NewSuppression[]): Promise<SuppressionRow[]> {
  if (!rows.length) return [];
  return tx
    .insert(suppressions)
    .values(rows)
    .onConflictDoNothing({ target: [suppressions.organizationId, suppressions.address] })
    .returning();
}

export interface SuppressionFilter {
  q?: string;
  reason?: SuppressionReason;
}

export async function listSuppressions(
  db: Db,
  organizationId: string,
  filter: SuppressionFilter,
  page: PageRequest,
) {
  const conditions: SQL[] = [eq(suppressions.organizationId, organizationId)];
  if (filter.q) {
    conditions.push(like(suppressions.address, `%${filter.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`));
  }
  if (filter.reason) conditions.push(eq(suppressions.reason, filter.reason));
  const where = and(...conditions);
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(suppressions)
      .where(where)
      .orderBy(desc(suppressions.createdAt), desc(suppressions.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(suppressions).where(where),
  ]);
  return { rows, total };
}

export async function suppressionByAddress(
  db: Db,
  organizationId: string,
  address: string,
): Promise<SuppressionRow | null> {
  const [row] = await db
    .select()
    .from(suppressions)
    .where(and(eq(suppressions.organizationId, organizationId), eq(suppressions.address, address)));
  return row ?? null;
}

/** The suppressed ones among `addresses` (lower case). */
export async function suppressedAmong(
  db: Db,
  organizationId: string,
  addresses: string[],
): Promise<SuppressionRow[]> {
  if (!addresses.length) return [];
  return db
    .select()
    .from(suppressions)
    .where(and(eq(suppressions.organizationId, organizationId), inArray(suppressions.address, addresses)));
}

export async function deleteSuppressions(
  tx: Db,
  organizationId: string,
  addresses: string[],
): Promise<SuppressionRow[]> {
  if (!addresses.length) return [];
  return tx
    .delete(suppressions)
    .where(and(eq(suppressions.organizationId, organizationId), inArray(suppressions.address, addresses)))
    .returning();
}
