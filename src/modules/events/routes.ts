import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authOf } from '../../core/auth.ts';
import { badRequest } from '../../core/errors.ts';
import { eventCatalogue, isValidEventFilter } from '../../core/events.ts';
import { uuidParam } from '../../core/ids.ts';
import { pageOf, pageQuery } from '../../core/pagination.ts';
import { type EventsService, eventView } from './service.ts';
import type { EventStreams } from './stream.ts';

export const eventSchema = z.object({
  id: z.uuid(),
  type: z.string(),
  organization_id: z.uuid(),
  created_at: z.string(),
  data: z.unknown(),
});

/** `?types=a.b,c.*`: a comma-separated filter of declared types or families. */
export const typesQuery = z
  .string()
  .max(2000)
  .optional()
  .describe('Comma-separated event types; `family.*` matches every type in a family')
  .transform((v, ctx) => {
    const types = (v ?? '')
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean);
    for (const t of types) {
      if (!isValidEventFilter(t)) {
        ctx.addIssue({ code: 'custom', message: `unknown event type "${t}"; see /v1/event-types` });
        return z.NEVER;
      }
    }
    return types;
  });

export function eventRoutes(events: EventsService, streams: EventStreams) {
  return async (fastify: FastifyInstance) => {
    const app = fastify.withTypeProvider<ZodTypeProvider>();
    const tags = ['events'];
    const read = { level: 'org', role: 'viewer', scope: 'events:read' } as const;

    app.get(
      '/v1/event-types',
      {
        schema: {
          tags,
          summary: 'The event catalogue: every type with a description and the JSON Schema of its data',
          response: {
            200: z.object({
              items: z.array(z.object({ type: z.string(), description: z.string(), schema: z.unknown() })),
            }),
          },
        },
        config: { access: { level: 'public' } },
      },
      async () => ({
        items: eventCatalogue().map((d) => ({
          type: d.type,
          description: d.description,
          schema: z.toJSONSchema(d.schema, { io: 'input' }),
        })),
      }),
    );

    app.get(
      '/v1/events',
      {
        schema: {
          tags,
          summary: "The organisation's events, newest first",
          querystring: z.strictObject({
            ...pageQuery,
            types: typesQuery,
            after: uuidParam.optional().describe('Only events after this event id'),
            since: z.iso.datetime({ offset: true }).optional(),
            until: z.iso.datetime({ offset: true }).optional(),
          }),
          response: { 200: pageOf(eventSchema) },
        },
        config: { access: read },
      },
      async (request) => {
        const { page, page_size, types, after, since, until } = request.query;
        return events.list(
          authOf(request).organizationId,
          {
            types,
            after,
            since: since ? new Date(since) : undefined,
            until: until ? new Date(until) : undefined,
          },
          { page, page_size },
        );
      },
    );

    app.get(
      '/v1/events/:id',
      {
        schema: {
          tags,
          summary: 'One event',
          params: z.strictObject({ id: uuidParam }),
          response: { 200: eventSchema },
        },
        config: { access: read },
      },
      async (request) => eventView(await events.get(authOf(request).organizationId, request.params.id)),
    );

    app.get(
      '/v1/events/stream',
      {
        websocket: true,
        schema: {
          tags,
          summary: 'Live events over a WebSocket',
          description:
            'Upgrade to a WebSocket; each message is one event (the same JSON as GET /v1/events/:id). ' +
            'With `after`, events after that id are replayed first, then live ones follow without gaps. ' +
            'Authenticate with the Authorization header, or, from a browser, offer the subprotocols ' +
            '`mailroom.bearer` and the token. The server pings every 30 s; a client that falls 8 MiB ' +
            'behind is closed with code 1013 and may reconnect with `after`.',
          querystring: z.strictObject({
            types: typesQuery,
            after: uuidParam.optional().describe('Replay events after this event id, then stream live'),
            organization_id: uuidParam.optional(),
          }),
        },
        config: { access: read },
      },
      (socket, request) => {
        const { types, after } = request.query as { types: string[]; after?: string };
        streams.attach(socket, authOf(request).organizationId, types, after);
      },
    );

    // A plain GET on the stream path (no upgrade) is a client mistake, not a server error.
    app.addHook('onRequest', async (request) => {
      if (
        request.routeOptions.url === '/v1/events/stream' &&
        request.headers.upgrade?.toLowerCase() !== 'websocket'
      ) {
        throw badRequest('This endpoint speaks WebSocket: send an Upgrade: websocket request');
      }
    });
  };
}
