import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';

export const apiKeyCreated = defineEvent(
  'api_key.created',
  'An API key was created (the key itself is never in an event)',
  z.object({
    api_key_id: z.uuid(),
    name: z.string(),
    prefix: z.string(),
    scopes: z.array(z.string()),
    expires_at: z.string().nullable(),
    created_by: z.uuid().nullable(),
  }),
);
export const apiKeyRevoked = defineEvent(
  'api_key.revoked',
  'An API key was revoked',
  z.object({ api_key_id: z.uuid(), name: z.string(), prefix: z.string() }),
);
