import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';

const pool = z.object({
  pool_id: z.uuid(),
  name: z.string(),
  ips: z.array(z.string()),
  warmup: z.enum(['none', 'slow', 'normal', 'fast', 'custom']),
  warmup_caps: z.array(z.number().int()).describe('Daily caps from day 1; unlimited after the last'),
  is_default: z.boolean().describe('Used by mail whose domain and mailbox have no pool'),
});

const assignment = z.object({
  pool_id: z.uuid(),
  target: z.enum(['domain', 'mailbox']),
  target_id: z.uuid(),
  name: z.string().describe('The domain name or the mailbox address'),
});

export const ipPoolCreated = defineEvent('ip_pool.created', 'An IP pool was created', pool);
export const ipPoolUpdated = defineEvent(
  'ip_pool.updated',
  'An IP pool changed (name, member IPs, warmup curve or default)',
  pool,
);
export const ipPoolDeleted = defineEvent('ip_pool.deleted', 'An IP pool was deleted', pool);
export const ipPoolAssigned = defineEvent(
  'ip_pool.assigned',
  "A domain's or a mailbox's mail now leaves from an IP pool",
  assignment.extend({
    previous_pool_id: z.uuid().nullable().describe('The pool it was assigned before, if any'),
  }),
);
export const ipPoolUnassigned = defineEvent(
  'ip_pool.unassigned',
  'A domain or a mailbox no longer has an IP pool of its own',
  assignment,
);
export const ipPoolCapped = defineEvent(
  'ip_pool.capped',
  "Every sending IP a pool may use reached today's warmup cap: its mail waits (queued, not bounced) until a new UTC day",
  z.object({
    pool_id: z.uuid().nullable().describe('null: the installation’s IPs, used by mail with no pool'),
    pool_name: z.string().nullable(),
    day: z.string().describe('The UTC day, YYYY-MM-DD'),
    ips: z.array(
      z.object({
        ip: z.string(),
        warmup_day: z.number().int(),
        cap: z.number().int().describe("Today's cap"),
      }),
    ),
  }),
);

const ptrCheck = z.object({
  ip: z.string(),
  helo_name: z.string(),
  ptr_names: z.array(z.string()),
  findings: z.array(
    z.object({ code: z.string(), severity: z.enum(['error', 'warning']), message: z.string() }),
  ),
});

export const sendingIpPtrFailed = defineEvent(
  'sending_ip.ptr_failed',
  'A sending IP in one of the organisation’s pools failed its reverse DNS check (missing PTR, PTR not confirmed forward, or HELO name not the PTR name)',
  ptrCheck,
);
export const sendingIpPtrPassed = defineEvent(
  'sending_ip.ptr_passed',
  'A sending IP in one of the organisation’s pools that had failed its reverse DNS check passes it again',
  ptrCheck,
);
