import type { Db } from '../../core/db.ts';
import { and, asc, eq, isNull, sql } from '../../core/orm.ts';
import { type ProvisionDomainRow, type ProvisionRow, provisionDomains, provisions } from './tables.ts';

export type NewProvisionDomain = typeof provisionDomains.$inferInsert;

export async function insertProvision(db: Db, row: typeof provisions.$inferInsert): Promise<void> {
  await db.insert(provisions).values(row);
}

export async function insertDomains(db: Db, rows: NewProvisionDomain[]): Promise<void> {
  await db.insert(provisionDomains).values(rows);
}

export async function provisionById(
  db: Db,
  organizationId: string,
  id: string,
): Promise<ProvisionRow | null> {
  const [row] = await db
    .select()
    .from(provisions)
    .where(and(eq(provisions.organizationId, organizationId), eq(provisions.id, id)));
  return row ?? null;
}

export function domainsOf(db: Db, provisionId: string): Promise<ProvisionDomainRow[]> {
  return db
    .select()
    .from(provisionDomains)
    .where(eq(provisionDomains.provisionId, provisionId))
    .orderBy(asc(provisionDomains.position));
}

export async function updateDomain(
  db: Db,
  id: string,
  set: Partial<NewProvisionDomain>,
): Promise<ProvisionDomainRow> {
  const [row] = await db
    .update(provisionDomains)
    .set({ ...set, updatedAt: new Date() })
    .where(eq(provisionDomains.id, id))
    .returning();
  return row;
}

/** Counts `n` more inboxes made for the domain (in the transaction that made them). */
export async function addInboxesDone(db: Db, id: string, n: number): Promise<void> {
  await db
    .update(provisionDomains)
    .set({
      detail: sql`jsonb_set(${provisionDomains.detail}, '{inboxes,done}', to_jsonb(coalesce((${provisionDomains.detail} #>> '{inboxes,done}')::integer, 0) + ${n}))`,
      updatedAt: new Date(),
    })
    .where(eq(provisionDomains.id, id));
}

/** Marks the outcome announced; false when it already was (the event is emitted once). */
export async function markAnnounced(db: Db, id: string): Promise<boolean> {
  const rows = await db
    .update(provisions)
    .set({ announcedAt: new Date() })
    .where(and(eq(provisions.id, id), isNull(provisions.announcedAt)))
    .returning({ id: provisions.id });
  return rows.length > 0;
}
