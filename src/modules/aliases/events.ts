import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';

const alias = z.object({ alias_id: z.uuid(), domain_id: z.uuid(), address: z.string() });

export const aliasCreated = defineEvent(
  'alias.created',
  'An alias was created: mail to its address goes to its targets',
  alias.extend({ targets: z.array(z.string()) }),
);
export const aliasUpdated = defineEvent(
  'alias.updated',
  "An alias's targets, description, state or expiry changed",
  alias.extend({ changes: z.array(z.string()) }),
);
export const aliasDeleted = defineEvent('alias.deleted', 'An alias was deleted', alias);
