import { z } from 'zod';
import { ROLES } from '../../core/auth.ts';
import { defineEvent } from '../../core/events.ts';

const organization = z.object({ organization_id: z.uuid(), name: z.string(), slug: z.string() });
const role = z.enum(ROLES);

export const organizationCreated = defineEvent(
  'organization.created',
  'An organisation was created',
  organization,
);
export const organizationUpdated = defineEvent(
  'organization.updated',
  "An organisation's name or slug changed",
  organization,
);
export const organizationDeleted = defineEvent(
  'organization.deleted',
  'An organisation was deleted (its webhooks go with it; live streams and the event list see this)',
  z.object({ organization_id: z.uuid() }),
);
export const memberAdded = defineEvent(
  'member.added',
  'Someone joined the organisation (an invitation was accepted)',
  z.object({ user_id: z.uuid(), role, invitation_id: z.uuid().nullable() }),
);
export const memberRoleChanged = defineEvent(
  'member.role_changed',
  "A member's role changed",
  z.object({ user_id: z.uuid(), role, previous_role: role }),
);
export const memberRemoved = defineEvent(
  'member.removed',
  'A member left or was removed',
  z.object({ user_id: z.uuid(), role, by_self: z.boolean() }),
);
export const invitationCreated = defineEvent(
  'invitation.created',
  'Someone was invited to the organisation',
  z.object({ invitation_id: z.uuid(), email: z.string(), role, expires_at: z.string() }),
);
export const invitationRevoked = defineEvent(
  'invitation.revoked',
  'An invitation was revoked before it was accepted',
  z.object({ invitation_id: z.uuid() }),
);
