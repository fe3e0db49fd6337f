import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';

const mailbox = z.object({ mailbox_id: z.uuid(), domain_id: z.uuid(), address: z.string() });

export const mailboxCreated = defineEvent(
  'mailbox.created',
  'A hosted mailbox was created, with its standard folders',
  mailbox,
);
export const mailboxUpdated = defineEvent(
  'mailbox.updated',
  "A mailbox's names, password, quota, activity, status (active or suspended) or send limit changed (the password itself is never sent)",
  mailbox.extend({ changes: z.array(z.string()) }),
);
export const mailboxDeleted = defineEvent(
  'mailbox.deleted',
  'A mailbox was deleted with its folders and stored messages',
  mailbox,
);
const appPassword = mailbox.extend({ app_password_id: z.uuid(), label: z.string() });
export const appPasswordCreated = defineEvent(
  'mailbox.app_password_created',
  'An app password was created for a mailbox (the password itself is never sent)',
  appPassword,
);
export const appPasswordRevoked = defineEvent(
  'mailbox.app_password_revoked',
  "A mailbox's app password was revoked (by itself, or with a password reset)",
  appPassword,
);
