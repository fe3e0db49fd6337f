// The account's state as its sync sees it, kept on the account row and announced: syncing while the first
// sync runs, ready once it finished, error (retried with backoff) or auth_failed (waits for a person).
import { accountAuthFailed, accountRef, accountSyncFailed } from '../events.ts';
import * as accountStore from '../store.ts';
import type { MailAccountRow } from '../tables.ts';
import type { SyncContext } from './context.ts';

const MAX_ERROR_CHARS = 500;

export async function markSyncing(ctx: SyncContext, account: MailAccountRow): Promise<void> {
  await accountStore.setSyncState(ctx.db, account.id, { state: 'syncing' });
}

export async function markReady(
  ctx: SyncContext,
  account: MailAccountRow,
  capabilities: string[],
): Promise<void> {
  await accountStore.setSyncState(ctx.db, account.id, {
    state: 'ready',
    capabilities,
    lastSyncedAt: new Date(),
    lastError: null,
    lastErrorAt: null,
  });
}

export function markError(ctx: SyncContext, account: MailAccountRow, error: string, attempt: number) {
  // One event per run of failures, not one per retry.
  return markFailed(
    ctx,
    account,
    'error',
    error,
    attempt === 1 ? { event: accountSyncFailed, attempt } : null,
  );
}

/** The login was refused: nothing is tried again until the account gets a new password or grant. */
export function markAuthFailed(ctx: SyncContext, account: MailAccountRow, error: string) {
  return markFailed(ctx, account, 'auth_failed', error, { event: accountAuthFailed });
}

async function markFailed(
  ctx: SyncContext,
  account: MailAccountRow,
  state: 'error' | 'auth_failed',
  error: string,
  announce: { event: typeof accountSyncFailed | typeof accountAuthFailed; attempt?: number } | null,
): Promise<void> {
  const message = error.slice(0, MAX_ERROR_CHARS);
  await ctx.db.transaction(async (tx) => {
    const changed = await accountStore.setSyncState(tx, account.id, {
      state,
      lastError: message,
      lastErrorAt: new Date(),
    });
    if (changed && announce)
      await ctx.events.emitMany(tx, [
        {
          definition: announce.event,
          organizationId: account.organizationId,
          data: {
            ...accountRef(account),
            error: message,
            ...(announce.attempt ? { attempt: announce.attempt } : {}),
          },
        },
      ]);
  });
}
