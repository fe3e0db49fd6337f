import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';
import type { MailAccountRow } from './tables.ts';

/** What every account event says of its account. */
export const accountRef = (a: Pick<MailAccountRow, 'id' | 'provider' | 'address'>) => ({
  account_id: a.id,
  provider: a.provider,
  address: a.address,
});

const account = z.object({
  account_id: z.uuid(),
  provider: z.enum(['imap', 'google', 'microsoft']),
  address: z.string(),
});

export const accountConnected = defineEvent(
  'account.connected',
  'An external mail account was connected: its servers were reached and its login accepted',
  account,
);
export const accountUpdated = defineEvent(
  'account.updated',
  "An external account's name, servers, password or state (paused, resumed) changed (the password itself is never sent)",
  account.extend({ changes: z.array(z.string()), state: z.string() }),
);
export const accountDeleted = defineEvent(
  'account.deleted',
  'An external account was disconnected and deleted',
  account,
);
export const accountAuthFailed = defineEvent(
  'account.auth_failed',
  'The provider refused the account’s login or its OAuth grant (revoked, expired): it waits in auth_failed until re-authorised or given a new password',
  account.extend({ error: z.string() }),
);
export const accountSyncFailed = defineEvent(
  'account.sync_failed',
  'Syncing the account failed (the server is unreachable, dropped the connection, or answered what could not be read); it is retried with backoff',
  account.extend({ error: z.string(), attempt: z.number().int() }),
);
const syncedMessage = account.extend({
  message_id: z
    .uuid()
    .describe('The message in Mailroom (GET /v1/accounts/{account_id}/messages/{message_id})'),
  folder: z.string().describe('The folder on the account’s server'),
  uid: z.number().int(),
  flags: z.array(z.string()),
});
export const accountMessageReceived = defineEvent(
  'account.message_received',
  'A message arrived in a folder of the account after its first sync (the first sync’s messages are not announced one by one)',
  syncedMessage.extend({
    message_id_header: z.string().nullable(),
    from_address: z.string().nullable(),
    subject: z.string().nullable(),
  }),
);
export const accountMessageUpdated = defineEvent(
  'account.message_updated',
  'A synced message changed on the server or through the API: its flags, its folder, or it was deleted (`deleted: true`)',
  syncedMessage.extend({ deleted: z.boolean() }),
);
