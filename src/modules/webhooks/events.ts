import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';

export const webhookEndpointDisabled = defineEvent(
  'webhook.endpoint_disabled',
  'A webhook endpoint failed for longer than MAILROOM_WEBHOOK_DISABLE_AFTER and was disabled',
  z.object({ endpoint_id: z.uuid(), url: z.string(), failing_since: z.string(), reason: z.string() }),
);

export const webhookTest = defineEvent(
  'webhook.test',
  'A test message sent with POST /v1/webhooks/{id}/test (to that endpoint only)',
  z.object({ endpoint_id: z.uuid(), message: z.string() }),
);
