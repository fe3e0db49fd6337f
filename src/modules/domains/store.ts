import type { Db } from '../../core/db.ts';
import { and, asc, count, eq, gt, inArray, like, lte, ne, sql } from '../../core/orm.ts';
import { offsetOf, type PageRequest } from '../../core/pagination.ts';
import {
  type DkimKeyRow,
  type DkimKeyState,
  type DomainRow,
  type DomainStatus,
  dkimKeys,
  domains,
} from './tables.ts';

export type NewDomain = typeof domains.$inferInsert;
export type NewDkimKey = typeof dkimKeys.$inferInsert;

export async function insertDomain(db: Db, row: NewDomain): Promise<DomainRow> {
  const [created] = await db.insert(domains).values(row).returning();
  return created;
}

export interface DomainFilter {
  status?: DomainStatus;
  /** Names containing this text. */
  name?: string;
}

export async function listDomains(db: Db, organizationId: string, filter: DomainFilter, page: PageRequest) {
  const where = and(
    eq(domains.organizationId, organizationId),
    filter.status ? eq(domains.status, filter.status) : undefined,
    filter.name ? like(domains.name, `%${filter.name.replace(/[\\%_]/g, (c) => `\\${c}`)}%`) : undefined,
  );
  const [rows, [{ total }]] = await Promise.all([
    db
      .select()
      .from(domains)
      .where(where)
      .orderBy(asc(domains.name))
      .limit(page.page_size)
      .offset(offsetOf(page)),
    db.select({ total: count() }).from(domains).where(where),
  ]);
  return { rows, total };
}

/** The organisation's domains in name order after `after` (keyset pages: no OFFSET scans). */
export function domainsAfter(
  db: Db,
  organizationId: string,
  after: string | null,
  limit: number,
): Promise<DomainRow[]> {
  return db
    .select()
    .from(domains)
    .where(
      and(eq(domains.organizationId, organizationId), after === null ? undefined : gt(domains.name, after)),
    )
    .orderBy(asc(domains.name))
    .limit(limit);
}

export async function domainById(db: Db, organizationId: string, id: string): Promise<DomainRow | null> {
  const [row] = await db
    .select()
    .from(domains)
    .where(and(eq(domains.organizationId, organizationId), eq(domains.id, id)));
  return row ?? null;
}

export function domainsByIds(db: Db, organizationId: string, ids: string[]): Promise<DomainRow[]> {
  if (!ids.length) return Promise.resolve([]);
  return db
    .select()
    .from(domains)
    .where(and(eq(domains.organizationId, organizationId), inArray(domains.id, ids)));
}

/** Any organisation's domain by id, for the re-check sweep (which works across organisations). */
export async function domainForCheck(db: Db, id: string): Promise<DomainRow | null> {
  const [row] = await db.select().from(domains).where(eq(domains.id, id));
  return row ?? null;
}

/** The organisation's domain that holds `name` (its ownership verified), if any. */
export async function ownedDomain(db: Db, name: string): Promise<DomainRow | null> {
  const [row] = await db
    .select()
    .from(domains)
    .where(and(eq(domains.name, name), eq(domains.ownershipVerified, true)));
  return row ?? null;
}

/** The domain, locked for the rest of the transaction (verification and key changes serialise on it). */
export async function lockDomain(db: Db, id: string): Promise<DomainRow | null> {
  const [row] = await db.select().from(domains).where(eq(domains.id, id)).for('update');
  return row ?? null;
}

/** Namespace of the locks that serialise counting an organisation's domains against its limit. */
const LIMIT_LOCK = 0x646f6d6c; // 'doml'

/** Under the organisation's domain-limit lock (until the transaction ends): how many domains it has. */
export async function lockAndCountDomains(db: Db, organizationId: string): Promise<number> {
  await db.execute(sql`select pg_advisory_xact_lock(${LIMIT_LOCK}::integer, hashtext(${organizationId}))`);
  const [{ n }] = await db
    .select({ n: count() })
    .from(domains)
    .where(eq(domains.organizationId, organizationId));
  return Number(n);
}

export async function domainInOrganization(db: Db, organizationId: string, name: string) {
  const [row] = await db
    .select({ id: domains.id })
    .from(domains)
    .where(and(eq(domains.organizationId, organizationId), eq(domains.name, name)));
  return row ?? null;
}

/** Another organisation's domain that holds `name` (its ownership verified), locked. */
export async function lockOtherOwner(
  db: Db,
  name: string,
  organizationId: string,
): Promise<DomainRow | null> {
  const [row] = await db
    .select()
    .from(domains)
    .where(
      and(
        eq(domains.name, name),
        eq(domains.ownershipVerified, true),
        ne(domains.organizationId, organizationId),
      ),
    )
    .for('update');
  return row ?? null;
}

export async function updateDomain(db: Db, id: string, changes: Partial<NewDomain>): Promise<DomainRow> {
  const [row] = await db
    .update(domains)
    .set({ ...changes, updatedAt: new Date() })
    .where(eq(domains.id, id))
    .returning();
  return row;
}

export async function deleteDomain(db: Db, organizationId: string, id: string): Promise<boolean> {
  const deleted = await db
    .delete(domains)
    .where(and(eq(domains.organizationId, organizationId), eq(domains.id, id)))
    .returning({ id: domains.id });
  return deleted.length > 0;
}

/**
 * Claims up to `limit` domains due for a re-check by pushing their next check past `leaseMs`, so
 * concurrent sweepers never take the same ones; the check itself sets the real next time.
 */
export async function claimDueDomains(db: Db, limit: number, leaseMs: number): Promise<DomainRow[]> {
  return db
    .update(domains)
    .set({ nextCheckAt: sql`now() + ${`${leaseMs} milliseconds`}::interval` })
    .where(
      inArray(
        domains.id,
        db
          .select({ id: domains.id })
          .from(domains)
          .where(lte(domains.nextCheckAt, sql`now()`))
          .orderBy(asc(domains.nextCheckAt))
          .limit(limit)
          .for('update', { skipLocked: true }),
      ),
    )
    .returning();
}

// ---- DKIM keys -----------------------------------------------------------------------------------

export async function insertKey(db: Db, row: NewDkimKey): Promise<DkimKeyRow> {
  const [created] = await db.insert(dkimKeys).values(row).returning();
  return created;
}

export function keysOf(db: Db, domainId: string, states: DkimKeyState[]): Promise<DkimKeyRow[]> {
  return db
    .select()
    .from(dkimKeys)
    .where(and(eq(dkimKeys.domainId, domainId), inArray(dkimKeys.state, states)))
    .orderBy(asc(dkimKeys.createdAt));
}

/** Published keys of many domains at once (the sweep's batch), by domain id. */
export async function publishedKeysOf(db: Db, domainIds: string[]): Promise<Map<string, DkimKeyRow[]>> {
  const rows = await db
    .select()
    .from(dkimKeys)
    .where(
      and(inArray(dkimKeys.domainId, domainIds), inArray(dkimKeys.state, ['pending', 'active', 'retiring'])),
    )
    .orderBy(asc(dkimKeys.createdAt));
  const byDomain = new Map<string, DkimKeyRow[]>(domainIds.map((id) => [id, []]));
  for (const row of rows) byDomain.get(row.domainId)!.push(row);
  return byDomain;
}

export async function selectorsOf(db: Db, domainId: string): Promise<Set<string>> {
  const rows = await db
    .select({ selector: dkimKeys.selector })
    .from(dkimKeys)
    .where(eq(dkimKeys.domainId, domainId));
  return new Set(rows.map((r) => r.selector));
}

export async function updateKey(db: Db, id: string, changes: Partial<NewDkimKey>): Promise<void> {
  await db.update(dkimKeys).set(changes).where(eq(dkimKeys.id, id));
}

export async function domainNamesByOrganization(
  db: Db,
  organizationIds: string[],
): Promise<Map<string, string[]>> {
  const names = new Map<string, string[]>(organizationIds.map((id) => [id, []]));
  if (!organizationIds.length) return names;
  const rows = await db
    .select({ organizationId: domains.organizationId, name: domains.name })
    .from(domains)
    .where(inArray(domains.organizationId, organizationIds));
  for (const row of rows) names.get(row.organizationId)?.push(row.name);
  return names;
}
