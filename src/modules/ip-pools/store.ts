import type { Db } from '../../core/db.ts';
import { and, asc, count, eq, inArray, ne, sql } from '../../core/orm.ts';
import type { CurveKind } from './curves.ts';
import {
  type IpPoolRow,
  ipPoolDomains,
  ipPoolIps,
  ipPoolMailboxes,
  ipPools,
  type PtrFinding,
  type PtrStatus,
  sendingIps,
} from './tables.ts';

interface Rows<T> {
  rows: T[];
}

// ---- pools ----------------------------------------------------------------------------------------------

export interface PoolRecord extends IpPoolRow {
  ips: string[];
}

export async function insertPool(
  tx: Db,
  row: typeof ipPools.$inferInsert,
  ips: string[],
): Promise<PoolRecord | null> {
  const [inserted] = await tx.insert(ipPools).values(row).onConflictDoNothing().returning();
  if (!inserted) return null;
  await setPoolIps(tx, inserted.id, inserted.organizationId, ips);
  return { ...inserted, ips: [...ips].sort() };
}

/** Replaces the pool's members; IPs that stay keep their `added_at`. */
export async function setPoolIps(
  tx: Db,
  poolId: string,
  organizationId: string,
  ips: string[],
): Promise<void> {
  await tx
    .delete(ipPoolIps)
    .where(
      ips.length
        ? and(eq(ipPoolIps.poolId, poolId), sql`${ipPoolIps.ip} <> all(${toTextArray(ips)})`)
        : eq(ipPoolIps.poolId, poolId),
    );
  if (ips.length) {
    await tx
      .insert(ipPoolIps)
      .values(ips.map((ip) => ({ poolId, organizationId, ip })))
      .onConflictDoNothing();
  }
}

export async function updatePool(
  tx: Db,
  organizationId: string,
  id: string,
  set: Partial<Pick<IpPoolRow, 'name' | 'warmup' | 'warmupCaps' | 'isDefault'>>,
): Promise<IpPoolRow | null> {
  const [row] = await tx
    .update(ipPools)
    .set({ ...set, updatedAt: sql`now()` })
    .where(and(eq(ipPools.organizationId, organizationId), eq(ipPools.id, id)))
    .returning();
  return row ?? null;
}

/** Another pool of the organisation is no longer its default; answers the one that was. */
export async function clearDefault(tx: Db, organizationId: string, exceptId: string): Promise<string | null> {
  const [row] = await tx
    .update(ipPools)
    .set({ isDefault: false, updatedAt: sql`now()` })
    .where(
      and(eq(ipPools.organizationId, organizationId), eq(ipPools.isDefault, true), ne(ipPools.id, exceptId)),
    )
    .returning({ id: ipPools.id });
  return row?.id ?? null;
}

export async function nameTaken(
  tx: Db,
  organizationId: string,
  name: string,
  exceptId?: string,
): Promise<boolean> {
  const rows = await tx
    .select({ id: ipPools.id })
    .from(ipPools)
    .where(
      and(
        eq(ipPools.organizationId, organizationId),
        eq(ipPools.name, name),
        exceptId ? ne(ipPools.id, exceptId) : undefined,
      ),
    )
    .limit(1);
  return rows.length > 0;
}

/** Locks the pool's row (changes to one pool, and its assignments, one at a time). */
export async function lockPool(tx: Db, organizationId: string, id: string): Promise<IpPoolRow | null> {
  const [row] = await tx
    .select()
    .from(ipPools)
    .where(and(eq(ipPools.organizationId, organizationId), eq(ipPools.id, id)))
    .for('update');
  return row ?? null;
}

export async function deletePool(tx: Db, organizationId: string, id: string): Promise<void> {
  await tx.delete(ipPools).where(and(eq(ipPools.organizationId, organizationId), eq(ipPools.id, id)));
}

async function withIps(db: Db, pools: IpPoolRow[]): Promise<PoolRecord[]> {
  if (!pools.length) return [];
  const members = await db
    .select({ poolId: ipPoolIps.poolId, ip: ipPoolIps.ip })
    .from(ipPoolIps)
    .where(
      inArray(
        ipPoolIps.poolId,
        pools.map((p) => p.id),
      ),
    )
    .orderBy(asc(ipPoolIps.ip));
  const byPool = Map.groupBy(members, (m) => m.poolId);
  return pools.map((p) => ({ ...p, ips: (byPool.get(p.id) ?? []).map((m) => m.ip) }));
}

export async function getPool(db: Db, organizationId: string, id: string): Promise<PoolRecord | null> {
  const rows = await db
    .select()
    .from(ipPools)
    .where(and(eq(ipPools.organizationId, organizationId), eq(ipPools.id, id)));
  return (await withIps(db, rows))[0] ?? null;
}

export async function listPools(
  db: Db,
  organizationId: string,
  limit: number,
  offset: number,
): Promise<{ rows: PoolRecord[]; total: number }> {
  const where = eq(ipPools.organizationId, organizationId);
  const [rows, [{ total }]] = await Promise.all([
    db.select().from(ipPools).where(where).orderBy(asc(ipPools.name)).limit(limit).offset(offset),
    db.select({ total: count() }).from(ipPools).where(where),
  ]);
  return { rows: await withIps(db, rows), total };
}

export async function allPools(db: Db, organizationId: string): Promise<PoolRecord[]> {
  const rows = await db
    .select()
    .from(ipPools)
    .where(eq(ipPools.organizationId, organizationId))
    .orderBy(asc(ipPools.name));
  return withIps(db, rows);
}

/** How many domains and mailboxes each pool is assigned to. */
export async function assignmentCounts(
  db: Db,
  poolIds: string[],
): Promise<Map<string, { domains: number; mailboxes: number }>> {
  const counts = new Map(poolIds.map((id) => [id, { domains: 0, mailboxes: 0 }]));
  if (!poolIds.length) return counts;
  const [domains, mailboxes] = await Promise.all([
    db
      .select({ poolId: ipPoolDomains.poolId, n: count() })
      .from(ipPoolDomains)
      .where(inArray(ipPoolDomains.poolId, poolIds))
      .groupBy(ipPoolDomains.poolId),
    db
      .select({ poolId: ipPoolMailboxes.poolId, n: count() })
      .from(ipPoolMailboxes)
      .where(inArray(ipPoolMailboxes.poolId, poolIds))
      .groupBy(ipPoolMailboxes.poolId),
  ]);
  for (const d of domains) counts.get(d.poolId)!.domains = d.n;
  for (const m of mailboxes) counts.get(m.poolId)!.mailboxes = m.n;
  return counts;
}

// ---- assignments ------------------------------------------------------------------------------------

export interface Assignment {
  id: string;
  name: string;
  poolId: string;
  createdAt: Date;
}

/** Assigns the pool to the domain (replacing another pool's assignment); the previous pool or null. */
export async function assignDomain(
  tx: Db,
  row: { domainId: string; organizationId: string; poolId: string; name: string },
): Promise<string | null> {
  const [previous] = await tx
    .select({ poolId: ipPoolDomains.poolId })
    .from(ipPoolDomains)
    .where(eq(ipPoolDomains.domainId, row.domainId))
    .for('update');
  await tx
    .insert(ipPoolDomains)
    .values(row)
    .onConflictDoUpdate({
      target: ipPoolDomains.domainId,
      set: { poolId: row.poolId, createdAt: sql`now()` },
    });
  return previous?.poolId ?? null;
}

export async function assignMailbox(
  tx: Db,
  row: { mailboxId: string; organizationId: string; poolId: string; address: string },
): Promise<string | null> {
  const [previous] = await tx
    .select({ poolId: ipPoolMailboxes.poolId })
    .from(ipPoolMailboxes)
    .where(eq(ipPoolMailboxes.mailboxId, row.mailboxId))
    .for('update');
  await tx
    .insert(ipPoolMailboxes)
    .values(row)
    .onConflictDoUpdate({
      target: ipPoolMailboxes.mailboxId,
      set: { poolId: row.poolId, createdAt: sql`now()` },
    });
  return previous?.poolId ?? null;
}

/** Removes the domain's assignment to this pool; the removed row's name, or null when there was none. */
export async function unassignDomain(
  tx: Db,
  organizationId: string,
  poolId: string,
  domainId: string,
): Promise<string | null> {
  const [row] = await tx
    .delete(ipPoolDomains)
    .where(
      and(
        eq(ipPoolDomains.organizationId, organizationId),
        eq(ipPoolDomains.poolId, poolId),
        eq(ipPoolDomains.domainId, domainId),
      ),
    )
    .returning({ name: ipPoolDomains.name });
  return row?.name ?? null;
}

export async function unassignMailbox(
  tx: Db,
  organizationId: string,
  poolId: string,
  mailboxId: string,
): Promise<string | null> {
  const [row] = await tx
    .delete(ipPoolMailboxes)
    .where(
      and(
        eq(ipPoolMailboxes.organizationId, organizationId),
        eq(ipPoolMailboxes.poolId, poolId),
        eq(ipPoolMailboxes.mailboxId, mailboxId),
      ),
    )
    .returning({ address: ipPoolMailboxes.address });
  return row?.address ?? null;
}

export async function domainAssignments(
  db: Db,
  poolId: string,
  limit: number,
  offset: number,
): Promise<{ rows: Assignment[]; total: number }> {
  const where = eq(ipPoolDomains.poolId, poolId);
  const [rows, [{ total }]] = await Promise.all([
    db
      .select({
        id: ipPoolDomains.domainId,
        name: ipPoolDomains.name,
        poolId: ipPoolDomains.poolId,
        createdAt: ipPoolDomains.createdAt,
      })
      .from(ipPoolDomains)
      .where(where)
      .orderBy(asc(ipPoolDomains.name))
      .limit(limit)
      .offset(offset),
    db.select({ total: count() }).from(ipPoolDomains).where(where),
  ]);
  return { rows, total };
}

export async function mailboxAssignments(
  db: Db,
  poolId: string,
  limit: number,
  offset: number,
): Promise<{ rows: Assignment[]; total: number }> {
  const where = eq(ipPoolMailboxes.poolId, poolId);
  const [rows, [{ total }]] = await Promise.all([
    db
      .select({
        id: ipPoolMailboxes.mailboxId,
        name: ipPoolMailboxes.address,
        poolId: ipPoolMailboxes.poolId,
        createdAt: ipPoolMailboxes.createdAt,
      })
      .from(ipPoolMailboxes)
      .where(where)
      .orderBy(asc(ipPoolMailboxes.address))
      .limit(limit)
      .offset(offset),
    db.select({ total: count() }).from(ipPoolMailboxes).where(where),
  ]);
  return { rows, total };
}

/** What delivery needs to choose an organisation's pool: every pool, and every assignment. */
export interface PoolSnapshot {
  pools: {
    id: string;
    name: string;
    warmup: CurveKind;
    warmupCaps: number[] | null;
    isDefault: boolean;
    ips: string[];
  }[];
  domains: { domainId: string; poolId: string }[];
  mailboxes: { address: string; poolId: string }[];
}

export async function snapshot(db: Db, organizationId: string): Promise<PoolSnapshot> {
  const [pools, domains, mailboxes] = await Promise.all([
    allPools(db, organizationId),
    db
      .select({ domainId: ipPoolDomains.domainId, poolId: ipPoolDomains.poolId })
      .from(ipPoolDomains)
      .where(eq(ipPoolDomains.organizationId, organizationId)),
    db
      .select({ address: ipPoolMailboxes.address, poolId: ipPoolMailboxes.poolId })
      .from(ipPoolMailboxes)
      .where(eq(ipPoolMailboxes.organizationId, organizationId)),
  ]);
  return {
    pools: pools.map((p) => ({
      id: p.id,
      name: p.name,
      warmup: p.warmup,
      warmupCaps: p.warmupCaps,
      isDefault: p.isDefault,
      ips: p.ips,
    })),
    domains,
    mailboxes,
  };
}

/** Organisations with the IP in one of their pools (who hears about its PTR check). */
export async function organizationsWithIp(db: Db, ip: string): Promise<string[]> {
  const rows = await db
    .selectDistinct({ organizationId: ipPoolIps.organizationId })
    .from(ipPoolIps)
    .where(eq(ipPoolIps.ip, ip));
  return rows.map((r) => r.organizationId);
}

/** Records that the organisation was told its pool ran out of capacity today; false when it already was. */
export async function noteCapped(
  tx: Db,
  organizationId: string,
  pool: string,
  day: string,
): Promise<boolean> {
  const result = (await tx.execute(sql`
    insert into ip_pool_cap_notices (organization_id, pool, day) values (${organizationId}, ${pool}, ${day}::date)
    on conflict do nothing returning pool`)) as unknown as Rows<{ pool: string }>;
  return result.rows.length > 0;
}

// ---- sending IPs: warmup usage ------------------------------------------------------------------------

/** A row for every configured IP (installation-wide state lives there). */
export async function ensureSendingIps(db: Db, ips: string[]): Promise<void> {
  if (!ips.length) return;
  await db
    .insert(sendingIps)
    .values(ips.map((ip) => ({ ip, ptrNames: [], ptrConfirmed: [], ptrFindings: [] })))
    .onConflictDoNothing();
}

/** Each IP's first day of use (YYYY-MM-DD; null: never used). */
export async function firstUses(db: Db, ips: string[]): Promise<Map<string, string | null>> {
  if (!ips.length) return new Map();
  const result = (await db.execute(sql`
    select ip, first_used_on::text as first_used_on from sending_ips
     where ip = any(${toTextArray(ips)})`)) as unknown as Rows<{ ip: string; first_used_on: string | null }>;
  return new Map(result.rows.map((r) => [r.ip, r.first_used_on]));
}

/** Sets the IP's first day of use unless it has one; answers the one it has. */
export async function markFirstUse(db: Db, ip: string, day: string): Promise<string> {
  const result = (await db.execute(sql`
    insert into sending_ips (ip, first_used_on) values (${ip}, ${day}::date)
    on conflict (ip) do update set first_used_on = coalesce(sending_ips.first_used_on, excluded.first_used_on)
    returning first_used_on::text as first_used_on`)) as unknown as Rows<{ first_used_on: string }>;
  return result.rows[0].first_used_on;
}

/**
 * Takes up to `want` of the IP's capacity for `day` under `cap`, atomically across workers; answers what
 * was granted (0 when the cap is reached).
 */
export async function reserve(db: Db, ip: string, day: string, cap: number, want: number): Promise<number> {
  const result = (await db.execute(sql`
    insert into sending_ip_usage as u (ip, day, taken, granted)
    values (${ip}, ${day}::date, least(${want}::integer, ${cap}::integer), least(${want}::integer, ${cap}::integer))
    on conflict (ip, day) do update
      set granted = least(${want}::integer, greatest(${cap}::integer - u.taken, 0)),
          taken = u.taken + least(${want}::integer, greatest(${cap}::integer - u.taken, 0))
    returning granted`)) as unknown as Rows<{ granted: number }>;
  return Number(result.rows[0].granted);
}

/** Adds to each IP's day what counts against caps (`taken`: uncapped use) and what was `sent`. One statement. */
export async function addUsage(
  db: Db,
  rows: { ip: string; day: string; taken: number; sent: number }[],
): Promise<void> {
  if (!rows.length) return;
  await db.execute(sql`
    insert into sending_ip_usage as u (ip, day, taken, sent)
    select ip, day, taken, sent
      from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as r(ip text, day date, taken integer, sent integer)
    on conflict (ip, day) do update set taken = u.taken + excluded.taken, sent = u.sent + excluded.sent`);
}

/** Gives reserved capacity that was not used back to each IP's day (a worker stopping). */
export async function returnCapacity(
  db: Db,
  rows: { ip: string; day: string; units: number }[],
): Promise<void> {
  if (!rows.length) return;
  await db.execute(sql`
    update sending_ip_usage u set taken = greatest(u.taken - r.units, 0)
      from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as r(ip text, day date, units integer)
     where u.ip = r.ip and u.day = r.day`);
}

export async function usageOn(
  db: Db,
  ips: string[],
  day: string,
): Promise<Map<string, { taken: number; sent: number }>> {
  if (!ips.length) return new Map();
  const result = (await db.execute(sql`
    select ip, taken, sent from sending_ip_usage
     where day = ${day}::date and ip = any(${toTextArray(ips)})`)) as unknown as Rows<{
    ip: string;
    taken: number;
    sent: number;
  }>;
  return new Map(result.rows.map((r) => [r.ip, { taken: Number(r.taken), sent: Number(r.sent) }]));
}

/** Usage older than `beforeDay` and notices older than `noticesBeforeDay` are deleted. */
export async function prune(db: Db, beforeDay: string, noticesBeforeDay: string): Promise<void> {
  await db.execute(sql`delete from sending_ip_usage where day < ${beforeDay}::date`);
  await db.execute(sql`delete from ip_pool_cap_notices where day < ${noticesBeforeDay}::date`);
}

// ---- sending IPs: PTR checks --------------------------------------------------------------------------

export interface SendingIpRecord {
  ip: string;
  firstUsedOn: string | null;
  ptrStatus: PtrStatus | null;
  ptrNames: string[];
  ptrConfirmed: string[];
  heloName: string | null;
  ptrFindings: PtrFinding[];
  ptrCheckedAt: Date | null;
}

export async function sendingIpRecords(db: Db, ips: string[]): Promise<Map<string, SendingIpRecord>> {
  if (!ips.length) return new Map();
  const result = (await db.execute(sql`
    select ip, first_used_on::text as first_used_on, ptr_status, ptr_names, ptr_confirmed, helo_name,
           ptr_findings, ptr_checked_at
      from sending_ips where ip = any(${toTextArray(ips)})`)) as unknown as Rows<Record<string, any>>;
  return new Map(
    result.rows.map((r) => [
      r.ip,
      {
        ip: r.ip,
        firstUsedOn: r.first_used_on,
        ptrStatus: r.ptr_status,
        ptrNames: r.ptr_names ?? [],
        ptrConfirmed: r.ptr_confirmed ?? [],
        heloName: r.helo_name,
        ptrFindings: typeof r.ptr_findings === 'string' ? JSON.parse(r.ptr_findings) : (r.ptr_findings ?? []),
        ptrCheckedAt: r.ptr_checked_at ? new Date(r.ptr_checked_at) : null,
      },
    ]),
  );
}

/** Claims the configured IPs whose reverse DNS was not checked since `dueBefore`, for `leaseMs`. */
export async function claimDueChecks(
  db: Db,
  ips: string[],
  dueBefore: Date,
  leaseMs: number,
): Promise<string[]> {
  if (!ips.length) return [];
  const result = (await db.execute(sql`
    update sending_ips s set leased_until = now() + make_interval(secs => ${leaseMs / 1000})
      from (select ip from sending_ips
             where ip = any(${toTextArray(ips)})
               and (ptr_checked_at is null or ptr_checked_at < ${dueBefore.toISOString()}::timestamptz)
               and (leased_until is null or leased_until < now())
             for update skip locked) due
     where s.ip = due.ip
    returning s.ip`)) as unknown as Rows<{ ip: string }>;
  return result.rows.map((r) => r.ip);
}

/** Locks the IP's row and answers its last definite PTR result (null: never had one). */
export async function lockSendingIp(tx: Db, ip: string): Promise<boolean | null> {
  const [row] = await tx
    .select({ passed: sendingIps.ptrPassed })
    .from(sendingIps)
    .where(eq(sendingIps.ip, ip))
    .for('update');
  return row?.passed ?? null;
}

export async function recordPtr(
  tx: Db,
  ip: string,
  result: {
    status: PtrStatus;
    names: string[];
    confirmed: string[];
    heloName: string;
    findings: PtrFinding[];
  },
): Promise<void> {
  // An error settles nothing: the names and the verdict last seen stay, beside the error's finding.
  const failed = result.status === 'error';
  await tx
    .update(sendingIps)
    .set({
      ptrStatus: result.status,
      ptrNames: failed ? sql`${sendingIps.ptrNames}` : result.names,
      ptrConfirmed: failed ? sql`${sendingIps.ptrConfirmed}` : result.confirmed,
      heloName: result.heloName,
      ptrFindings: result.findings,
      ptrCheckedAt: sql`now()`,
      ptrPassed: failed ? sql`${sendingIps.ptrPassed}` : result.status === 'pass',
      leasedUntil: null,
    })
    .where(eq(sendingIps.ip, ip));
}

function toTextArray(values: string[]) {
  return sql`array[${sql.join(
    values.map((v) => sql`${v}`),
    sql`, `,
  )}]::text[]`;
}
