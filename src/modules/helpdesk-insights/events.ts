import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';
import { actorSchema, ticketSnapshot } from '../helpdesk/events.ts';

export const ticketCsatRated = defineEvent(
  'ticket.csat_rated',
  'The requester rated a resolution from the satisfaction link of the resolution mail (or changed the rating)',
  z.object({
    ticket: ticketSnapshot,
    actor: actorSchema,
    survey_id: z.uuid(),
    rating: z.enum(['good', 'bad']),
    previous_rating: z.enum(['good', 'bad']).nullable(),
  }),
);
