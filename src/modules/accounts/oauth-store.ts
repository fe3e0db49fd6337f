// The queries of OAuth sign-in: pending authorization requests, and the account row a token refresh
// locks. Requests are found by their state's hash only; an account always by organisation too.
import type { Db } from '../../core/db.ts';
import { and, eq, lt } from '../../core/orm.ts';
import {
  type AccountOAuthRequestRow,
  accountOAuthRequests,
  type MailAccountRow,
  mailAccounts,
} from './tables.ts';

export async function insertRequest(db: Db, row: AccountOAuthRequestRow): Promise<void> {
  await db.insert(accountOAuthRequests).values(row);
}

/** Removes and returns the request: whoever deletes it first has it, so a state works once. */
export async function takeRequest(db: Db, stateHash: string): Promise<AccountOAuthRequestRow | null> {
  const [row] = await db
    .delete(accountOAuthRequests)
    .where(eq(accountOAuthRequests.stateHash, stateHash))
    .returning();
  return row ?? null;
}

export async function deleteExpiredRequests(db: Db, now: Date): Promise<void> {
  await db.delete(accountOAuthRequests).where(lt(accountOAuthRequests.expiresAt, now));
}

/** The account, locked until the transaction ends (`select … for update`): one refresh at a time. */
export async function lockAccount(
  db: Db,
  organizationId: string,
  id: string,
): Promise<MailAccountRow | null> {
  const [row] = await db
    .select()
    .from(mailAccounts)
    .where(and(eq(mailAccounts.organizationId, organizationId), eq(mailAccounts.id, id)))
    .for('update');
  return row ?? null;
}

/** Stores refreshed tokens; the account's visible fields (and updated_at) stay as they are. */
export async function writeSecret(db: Db, organizationId: string, id: string, secret: string): Promise<void> {
  await db
    .update(mailAccounts)
    .set({ secret })
    .where(and(eq(mailAccounts.organizationId, organizationId), eq(mailAccounts.id, id)));
}
