import type { Db } from '../../core/db.ts';
import { and, asc, eq, inArray, isNull, lt, or, sql } from '../../core/orm.ts';
import {
  type BlocklistIpRow,
  type BlocklistResultRow,
  blocklistIps,
  blocklistLinks,
  blocklistOrganizations,
  blocklistResults,
} from './tables.ts';

const LOCK = 0x626c6b; // advisory lock namespace: one recording per organisation at a time

export async function ensureOrganization(db: Db, organizationId: string): Promise<void> {
  await db.insert(blocklistOrganizations).values({ organizationId }).onConflictDoNothing();
}

/** Claims up to `limit` organisations not checked since `dueBefore`, leasing them for `leaseMs`. */
export async function claimDue(db: Db, dueBefore: Date, leaseMs: number, limit: number): Promise<string[]> {
  const o = blocklistOrganizations;
  const rows = await db
    .update(o)
    .set({ leasedUntil: sql`now() + ${`${leaseMs} milliseconds`}::interval` })
    .where(
      inArray(
        o.organizationId,
        db
          .select({ id: o.organizationId })
          .from(o)
          .where(
            and(
              or(isNull(o.checkedAt), lt(o.checkedAt, dueBefore)),
              or(isNull(o.leasedUntil), lt(o.leasedUntil, sql`now()`)),
            ),
          )
          .orderBy(sql`${o.checkedAt} nulls first`)
          .limit(limit)
          .for('update', { skipLocked: true }),
      ),
    )
    .returning({ id: o.organizationId });
  return rows.map((r) => r.id);
}

export async function markChecked(tx: Db, organizationId: string, at: Date): Promise<void> {
  await tx
    .update(blocklistOrganizations)
    .set({ checkedAt: at, leasedUntil: null })
    .where(eq(blocklistOrganizations.organizationId, organizationId));
}

export async function insertIp(
  tx: Db,
  row: typeof blocklistIps.$inferInsert,
): Promise<BlocklistIpRow | null> {
  const [inserted] = await tx.insert(blocklistIps).values(row).onConflictDoNothing().returning();
  return inserted ?? null;
}

export function ipsOf(db: Db, organizationId: string): Promise<BlocklistIpRow[]> {
  return db
    .select()
    .from(blocklistIps)
    .where(eq(blocklistIps.organizationId, organizationId))
    .orderBy(asc(blocklistIps.ip));
}

/** Deletes a monitored IP and its results; false when the organisation does not monitor it. */
export async function deleteIp(tx: Db, organizationId: string, ip: string): Promise<boolean> {
  const removed = await tx
    .delete(blocklistIps)
    .where(and(eq(blocklistIps.organizationId, organizationId), eq(blocklistIps.ip, ip)))
    .returning({ id: blocklistIps.id });
  await tx
    .delete(blocklistResults)
    .where(and(eq(blocklistResults.organizationId, organizationId), eq(blocklistResults.target, ip)));
  return removed.length > 0;
}

/** Serialises recordings for one organisation, so a change of status is seen (and announced) once. */
export async function lockOrganization(tx: Db, organizationId: string): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(${LOCK}::integer, hashtext(${organizationId}))`);
}

export function resultsOf(db: Db, organizationId: string): Promise<BlocklistResultRow[]> {
  return db
    .select()
    .from(blocklistResults)
    .where(eq(blocklistResults.organizationId, organizationId))
    .orderBy(asc(blocklistResults.target), asc(blocklistResults.list));
}

export async function upsertResults(tx: Db, rows: BlocklistResultRow[]): Promise<void> {
  // Chunks keep each statement under PostgreSQL's 65,535 parameters.
  for (let i = 0; i < rows.length; i += 1_000) {
    await tx
      .insert(blocklistResults)
      .values(rows.slice(i, i + 1_000))
      .onConflictDoUpdate({
        target: [blocklistResults.organizationId, blocklistResults.target, blocklistResults.list],
        set: {
          kind: sql`excluded.kind`,
          listed: sql`excluded.listed`,
          code: sql`excluded.code`,
          meaning: sql`excluded.meaning`,
          error: sql`excluded.error`,
          checkedAt: sql`excluded.checked_at`,
          listedSince: sql`excluded.listed_since`,
        },
      });
  }
}

/** Drops results of targets no longer monitored (a deleted domain, an IP taken out of the settings). */
export async function deleteResults(tx: Db, organizationId: string, targets: string[]): Promise<void> {
  if (!targets.length) return;
  await tx
    .delete(blocklistResults)
    .where(
      and(eq(blocklistResults.organizationId, organizationId), inArray(blocklistResults.target, targets)),
    );
}

/** The newest outbound messages of the organisation since `since`: their stored text, or their blob. */
export async function recentOutbound(db: Db, organizationId: string, since: Date, limit: number) {
  const rows = (await db.execute(sql`
    select blob_id, body_text, received_at from messages
     where organization_id = ${organizationId} and direction = 'outbound' and received_at >= ${since}
     order by received_at desc
     limit ${limit}`)) as unknown as {
    rows: { blob_id: string; body_text: string | null; received_at: Date | string }[];
  };
  return rows.rows.map((r) => ({
    blobId: r.blob_id,
    bodyText: r.body_text,
    receivedAt: new Date(r.received_at),
  }));
}

/** Replaces the organisation's link domains with these (domain → the newest message linking to it). */
export async function replaceLinks(tx: Db, organizationId: string, links: Map<string, Date>): Promise<void> {
  const gone = await tx
    .delete(blocklistLinks)
    .where(eq(blocklistLinks.organizationId, organizationId))
    .returning({ domain: blocklistLinks.domain });
  const dropped = gone.map((g) => g.domain).filter((d) => !links.has(d));
  // Results of link domains no longer linked to go, unless the domain is one of the organisation's own.
  if (dropped.length)
    await tx.delete(blocklistResults).where(
      and(
        eq(blocklistResults.organizationId, organizationId),
        inArray(blocklistResults.target, dropped),
        sql`not exists (select 1 from domains d
                           where d.organization_id = ${organizationId} and d.name = ${blocklistResults.target})`,
      ),
    );
  if (!links.size) return;
  await tx
    .insert(blocklistLinks)
    .values([...links].map(([domain, seenAt]) => ({ organizationId, domain, seenAt })));
}

export function linksOf(db: Db, organizationId: string): Promise<{ domain: string }[]> {
  return db
    .select({ domain: blocklistLinks.domain })
    .from(blocklistLinks)
    .where(eq(blocklistLinks.organizationId, organizationId))
    .orderBy(asc(blocklistLinks.domain));
}
