// Storing what a sync fetched: each new message parsed as processing parses mail, threaded, written with
// its raw bytes and its copy on the server in one transaction per batch. A Gmail message already stored
// from another label only gains a copy. A message received after the account's first sync is announced.
import { newId } from '../../../core/ids.ts';
import type { PreparedMessage } from '../../inbound/parse.ts';
import { accountMessageReceived, accountRef } from '../events.ts';
import type { MailAccountRow } from '../tables.ts';
import type { SyncContext } from './context.ts';
import * as store from './store.ts';
import type { AccountFolderRow } from './tables.ts';

export interface FetchedMessage {
  uid: number;
  source: Buffer;
  flags: string[];
  internalDate: Date | null;
  modseq: bigint | null;
  emailId: string | null;
  labels: string[];
}

interface NewMessage {
  fetched: FetchedMessage;
  id: string;
  blobId: string;
  prepared: PreparedMessage;
}

/** Stores a batch of one folder; `announce` emits account.message_received for the new messages. */
export async function storeFetched(
  ctx: SyncContext,
  account: MailAccountRow,
  folder: AccountFolderRow,
  fetched: FetchedMessage[],
  announce: boolean,
): Promise<void> {
  if (!fetched.length) return;
  const emailIds = fetched.map((f) => f.emailId).filter((id): id is string => !!id);
  const known = await store.messagesByEmailId(ctx.db, account.id, emailIds);
  const fresh = fetched.filter((f) => !f.emailId || !known.has(f.emailId));
  const prepared = await Promise.all(fresh.map((f) => ctx.inbound.prepareStored(f.source)));
  const created: NewMessage[] = fresh.map((f, i) => ({
    fetched: f,
    id: newId(),
    blobId: newId(),
    prepared: prepared[i],
  }));
  // Two copies of one Gmail message in a batch are stored once.
  const byEmailId = new Map(known);
  for (const m of created) if (m.fetched.emailId) byEmailId.set(m.fetched.emailId, m.id);
  const organizationId = account.organizationId;
  await ctx.db.transaction(async (tx) => {
    await ctx.blobs.put(
      tx,
      created.map((m) => ({ organizationId, id: m.blobId, data: m.fetched.source })),
    );
    await ctx.inbound.insertStored(
      tx,
      created.map((m) => ({
        id: m.id,
        organizationId,
        blobId: m.blobId,
        size: m.fetched.source.length,
        receivedAt: m.fetched.internalDate ?? new Date(),
        prepared: m.prepared,
      })),
      { direction: 'synced', accountId: account.id },
    );
    const ids = new Map(created.map((m) => [m.fetched.uid, m.id]));
    await store.insertCopies(
      tx,
      fetched.map((f) => ({
        organizationId,
        accountId: account.id,
        folderId: folder.id,
        uid: f.uid,
        messageId: ids.get(f.uid) ?? byEmailId.get(f.emailId!)!,
        flags: f.flags,
        modseq: f.modseq,
        emailId: f.emailId,
        labels: f.labels,
      })),
    );
    if (announce && created.length)
      await ctx.events.emitMany(
        tx,
        created.map((m) => ({
          definition: accountMessageReceived,
          organizationId,
          data: {
            ...accountRef(account),
            message_id: m.id,
            folder: folder.path,
            uid: m.fetched.uid,
            flags: m.fetched.flags,
            message_id_header: m.prepared.parsed.messageId,
            from_address: m.prepared.parsed.fromAddress,
            subject: m.prepared.parsed.subject,
          },
        })),
      );
  });
}
