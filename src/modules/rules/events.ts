import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';

const rule = z.object({ rule_id: z.uuid(), domain_id: z.uuid(), name: z.string() });
const action = z.enum(['forward', 'redirect', 'store', 'block', 'drop']);

export const ruleCreated = defineEvent(
  'rule.created',
  'A routing rule was created for a domain',
  rule.extend({ action }),
);
export const ruleUpdated = defineEvent(
  'rule.updated',
  'A routing rule changed',
  rule.extend({ action, changes: z.array(z.string()) }),
);
export const ruleDeleted = defineEvent('rule.deleted', 'A routing rule was deleted', rule);
