import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';

const credential = z.object({
  smtp_credential_id: z.uuid(),
  name: z.string(),
  username: z.string(),
  domain_id: z.uuid().nullable().describe('null: any domain of the organisation'),
});

export const smtpCredentialCreated = defineEvent(
  'smtp_credential.created',
  'An SMTP submission credential was created (its password is never sent)',
  credential,
);
export const smtpCredentialUpdated = defineEvent(
  'smtp_credential.updated',
  "An SMTP credential's name or state changed, or its password was reset (`changes` holds `password`; the password itself is never sent)",
  credential.extend({ changes: z.array(z.string()) }),
);
export const smtpCredentialDeleted = defineEvent(
  'smtp_credential.deleted',
  'An SMTP credential was deleted: it can no longer log in',
  credential,
);
