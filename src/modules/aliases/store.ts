import type { SQL } from 'drizzle-orm';
import type { Db } from '../../core/db.ts';
import { and, asc, count, eq, like } from '../../core/orm.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import { type AliasRow, aliases } from './tables.ts';

export type NewAlias = typeof aliases.$inferInsert;

export async function insertAlias(db: Db, row: NewAlias): Promise<AliasRow> {
  const [created] = await db.insert(aliases).values(row).returning();
  return created;
}

export interface AliasFilter {
  domainId?: string;
  /** Addresses containing this text (lower case). */
  q?: string;
  enabled?: boolean;
}

export async function listAliases(db: Db, organizationId: string, filter: AliasFilter, page: PageRequest) {
  const conditions: SQL[] = [eq(aliases.organizationId, organizationId)];
  if (filter.domainId) conditions.push(eq(aliases.domainId, filter.domainId));
  if (filter.q) {
    conditions.push(like(aliases.address, `%${filter.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`));
  }
  if (filter.enabled !== undefined) conditions.push(eq(aliases.isEnabled, filter.enabled));
  const where = and(...conditions);
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(aliases)
      .where(where)
      .orderBy(asc(aliases.address), asc(aliases.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(aliases).where(where),
  ]);
  return { rows, total };
}

export async function aliasById(db: Db, organizationId: string, id: string): Promise<AliasRow | null> {
  const [row] = await db
    .select()
    .from(aliases)
    .where(and(eq(aliases.organizationId, organizationId), eq(aliases.id, id)));
  return row ?? null;
}

export async function updateAlias(
  db: Db,
  organizationId: string,
  id: string,
  changes: Partial<NewAlias>,
): Promise<AliasRow | null> {
  const [row] = await db
    .update(aliases)
    .set({ ...changes, updatedAt: new Date() })
    .where(and(eq(aliases.organizationId, organizationId), eq(aliases.id, id)))
    .returning();
  return row ?? null;
}

export async function deleteAlias(db: Db, organizationId: string, id: string): Promise<AliasRow | null> {
  const [row] = await db
    .delete(aliases)
    .where(and(eq(aliases.organizationId, organizationId), eq(aliases.id, id)))
    .returning();
  return row ?? null;
}
