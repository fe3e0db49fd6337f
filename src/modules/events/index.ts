// Events: the transactional event log, the bus that carries committed events to every process, and
// the live streams (SSE, WebSocket) that read it.
import type { MailroomModule } from '../../core/module.ts';
import { EventBus } from './bus.ts';
import { eventRoutes } from './routes.ts';
import { EventsService } from './service.ts';
import { EventStreams } from './stream.ts';

declare module '../../core/module.ts' {
  interface Services {
    events: EventsService;
  }
  interface Runtime {
    /** Every committed event, from any process (absent in one-shot command processes). */
    bus?: EventBus;
  }
}

export const eventsModule: MailroomModule = {
  name: 'events',
  create: ({ db }) => ({ events: new EventsService(db) }),
  async start(ctx) {
    if (!ctx.listener) return;
    ctx.runtime.bus = await EventBus.start(
      ctx.listener,
      ctx.services.events,
      ctx.log.child({ component: 'events' }),
    );
  },
  async routes(app, ctx) {
    const streams = new EventStreams(
      ctx.runtime.bus!,
      ctx.services.events,
      ctx.log.child({ component: 'streams' }),
    );
    // Open streams end before the server waits for its connections to close.
    app.addHook('preClose', async () => streams.close());
    await app.register(eventRoutes(ctx.services.events, streams));
  },
};
