import { and, count, desc, eq, isNull } from '../../core/orm.ts';
import type { Db } from '../../core/db.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import { type ApiKeyRow, apiKeys } from './tables.ts';

export async function insertKey(db: Db, key: typeof apiKeys.$inferInsert): Promise<ApiKeyRow> {
  const [row] = await db.insert(apiKeys).values(key).returning();
  return row;
}

export async function keyByHash(db: Db, keyHash: string): Promise<ApiKeyRow | undefined> {
  const [row] = await db.select().from(apiKeys).where(eq(apiKeys.keyHash, keyHash));
  return row;
}

export async function keyById(db: Db, organizationId: string, id: string): Promise<ApiKeyRow | undefined> {
  const [row] = await db
    .select()
    .from(apiKeys)
    .where(and(eq(apiKeys.id, id), eq(apiKeys.organizationId, organizationId)));
  return row;
}

export async function listKeys(db: Db, organizationId: string, page: PageRequest) {
  const where = and(eq(apiKeys.organizationId, organizationId), isNull(apiKeys.revokedAt));
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(apiKeys)
      .where(where)
      .orderBy(desc(apiKeys.createdAt))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(apiKeys).where(where),
  ]);
  return { rows, total };
}

export async function revokeKey(db: Db, organizationId: string, id: string): Promise<ApiKeyRow | undefined> {
  const [row] = await db
    .update(apiKeys)
    .set({ revokedAt: new Date() })
    .where(and(eq(apiKeys.id, id), eq(apiKeys.organizationId, organizationId), isNull(apiKeys.revokedAt)))
    .returning();
  return row;
}

export async function touchKey(db: Db, id: string, at: Date): Promise<void> {
  await db.update(apiKeys).set({ lastUsedAt: at }).where(eq(apiKeys.id, id));
}
