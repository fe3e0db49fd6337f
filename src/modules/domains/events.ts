import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';

const domain = z.object({ domain_id: z.uuid(), name: z.string() });
const flag = z.enum(['ownership', 'mx', 'spf', 'dkim', 'dmarc', 'return_path']);

export const domainCreated = defineEvent('domain.created', 'A domain was added', domain);
export const domainUpdated = defineEvent(
  'domain.updated',
  "A domain's activity, catch-all target, settings or DNS provider changed",
  domain.extend({ changes: z.array(z.string()) }),
);
export const domainDeleted = defineEvent('domain.deleted', 'A domain was deleted', domain);
export const domainVerified = defineEvent(
  'domain.verified',
  "Every required DNS record of a domain verified: its status is now 'verified'",
  domain,
);
export const domainFailed = defineEvent(
  'domain.failed',
  "A domain's status moved to 'failed': a required record stopped verifying, it never verified in time, or another organisation proved ownership",
  domain.extend({ reason: z.string(), records: z.array(flag) }),
);
export const domainDnsChanged = defineEvent(
  'domain.dns_changed',
  'A required DNS record of a domain started or stopped verifying',
  domain.extend({
    changes: z.array(
      z.object({ record: flag, verified: z.boolean(), host: z.string(), diagnosis: z.string() }),
    ),
    status: z.enum(['pending', 'verified', 'failed']),
  }),
);
export const domainDkimRotated = defineEvent(
  'domain.dkim_rotated',
  'A new DKIM key was created for a domain and awaits publication',
  domain.extend({ selector: z.string(), algorithm: z.enum(['rsa', 'ed25519']) }),
);
export const domainDkimActivated = defineEvent(
  'domain.dkim_activated',
  "A domain's new DKIM key verified in DNS and now signs; the previous key retires after the grace period",
  domain.extend({ selector: z.string(), previous_selector: z.string().nullable() }),
);
export const domainDkimRotationUndone = defineEvent(
  'domain.dkim_rotation_undone',
  'A DKIM rotation was undone: the new key is retired (before or after it started signing) and, when it had replaced one, the previous key signs again',
  domain.extend({ selector: z.string(), restored_selector: z.string().nullable() }),
);
