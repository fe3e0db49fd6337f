import type { SQL } from 'drizzle-orm';
import type { Db } from '../../core/db.ts';
import { and, asc, count, eq } from '../../core/orm.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import { type RuleRow, rules } from './tables.ts';

export type NewRule = typeof rules.$inferInsert;

export async function insertRule(db: Db, row: NewRule): Promise<RuleRow> {
  const [created] = await db.insert(rules).values(row).returning();
  return created;
}

export interface RuleFilter {
  domainId?: string;
}

/** By domain, then priority (lower first), then age: the order routing applies them in. */
export async function listRules(db: Db, organizationId: string, filter: RuleFilter, page: PageRequest) {
  const conditions: SQL[] = [eq(rules.organizationId, organizationId)];
  if (filter.domainId) conditions.push(eq(rules.domainId, filter.domainId));
  const where = and(...conditions);
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(rules)
      .where(where)
      .orderBy(asc(rules.domainId), asc(rules.priority), asc(rules.createdAt), asc(rules.id))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(rules).where(where),
  ]);
  return { rows, total };
}

export async function ruleById(db: Db, organizationId: string, id: string): Promise<RuleRow | null> {
  const [row] = await db
    .select()
    .from(rules)
    .where(and(eq(rules.organizationId, organizationId), eq(rules.id, id)));
  return row ?? null;
}

export async function updateRule(
  db: Db,
  organizationId: string,
  id: string,
  changes: Partial<NewRule>,
): Promise<RuleRow | null> {
  const [row] = await db
    .update(rules)
    .set({ ...changes, updatedAt: new Date() })
    .where(and(eq(rules.organizationId, organizationId), eq(rules.id, id)))
    .returning();
  return row ?? null;
}

export async function deleteRule(db: Db, organizationId: string, id: string): Promise<RuleRow | null> {
  const [row] = await db
    .delete(rules)
    .where(and(eq(rules.organizationId, organizationId), eq(rules.id, id)))
    .returning();
  return row ?? null;
}
