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
  "A mailbox's display name, password, quota or activity changed (the password itself is never sent)",
  mailbox.extend({ changes: z.array(z.string()) }),
);
export const mailboxDeleted = defineEvent(
  'mailbox.deleted',
  'A mailbox was deleted with its folders and stored messages',
  mailbox,
);
