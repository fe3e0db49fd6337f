import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';

export const securityEventRecorded = defineEvent(
  'security.event_recorded',
  'A security event concerning the organisation (refused, expired or revoked API keys, a key used outside its scopes or organisation)',
  z.object({
    security_event_id: z.uuid(),
    kind: z.string(),
    ip: z.string().nullable(),
    user_id: z.uuid().nullable(),
    api_key_id: z.uuid().nullable(),
    details: z.record(z.string(), z.unknown()),
  }),
);
