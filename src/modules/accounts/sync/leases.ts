// Which worker holds which account's connection. A worker announces itself each tick; the accounts that
// want a connection are shared evenly among the workers seen within a lease: a worker renews the
// leases it holds, gives back what is above its share, and takes expired or unowned ones up to it. A
// worker that dies stops renewing, and its accounts go to the others when their leases run out.
import type { Db } from '../../../core/db.ts';
import { sql } from '../../../core/orm.ts';
import type { MailAccountRow } from '../tables.ts';
import { mailAccounts } from '../tables.ts';

type Rows<T> = { rows: T[] };

/** States in which an account wants a connection. */
const WANTED = sql`state in ('connecting', 'syncing', 'ready', 'error')`;

/** Announces the worker; returns how many workers (this one included) are alive. */
export async function heartbeat(db: Db, workerId: string, leaseMs: number): Promise<number> {
  const result = (await db.execute(sql`
    with seen as (
      insert into account_workers (id, seen_at) values (${workerId}, now())
      on conflict (id) do update set seen_at = now()
    ), gone as (
      delete from account_workers where seen_at < now() - make_interval(secs => ${(leaseMs * 4) / 1000})
    )
    select count(*)::int as alive from account_workers
     where id <> ${workerId} and seen_at >= now() - make_interval(secs => ${leaseMs / 1000})`)) as unknown as Rows<{
    alive: number;
  }>;
  return (result.rows[0]?.alive ?? 0) + 1;
}

/** The accounts that want a connection, all workers together. */
export async function wantedCount(db: Db): Promise<number> {
  const result = (await db.execute(
    sql`select count(*)::int as n from mail_accounts where ${WANTED}`,
  )) as unknown as Rows<{ n: number }>;
  return result.rows[0]?.n ?? 0;
}

/** Renews this worker's leases on accounts that still want a connection; returns those accounts. */
export async function renew(db: Db, workerId: string, leaseMs: number): Promise<MailAccountRow[]> {
  return db
    .update(mailAccounts)
    .set({ leaseUntil: sql`now() + make_interval(secs => ${leaseMs / 1000})` })
    .where(sql`lease_owner = ${workerId} and ${WANTED}`)
    .returning();
}

/** Takes up to `limit` accounts whose lease ran out or that nobody holds. */
export async function claim(
  db: Db,
  workerId: string,
  leaseMs: number,
  limit: number,
): Promise<MailAccountRow[]> {
  if (limit <= 0) return [];
  return db
    .update(mailAccounts)
    .set({ leaseOwner: workerId, leaseUntil: sql`now() + make_interval(secs => ${leaseMs / 1000})` })
    .where(
      sql`id in (select id from mail_accounts
                  where ${WANTED} and (lease_owner is null or lease_until < now())
                  order by created_at, id limit ${limit} for update skip locked)`,
    )
    .returning();
}

/** Gives accounts back (above this worker's share, or when it stops). */
export async function release(db: Db, workerId: string, ids: string[]): Promise<void> {
  if (!ids.length) return;
  await db.execute(sql`
    update mail_accounts set lease_owner = null, lease_until = null
     where lease_owner = ${workerId} and id = any(${`{${ids.join(',')}}`}::uuid[])`);
}

/** Leases held on accounts that no longer want a connection (paused, auth_failed) are let go. */
export async function releaseUnwanted(db: Db, workerId: string): Promise<void> {
  await db.execute(sql`
    update mail_accounts set lease_owner = null, lease_until = null
     where lease_owner = ${workerId} and not (${WANTED})`);
}
