import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';

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
