// The event bus: every committed event, in every process, in commit order. Built on LISTEN/NOTIFY,
// which is transactional (an event is announced only when its transaction commits), so subscribers
// never see an event that was rolled back, whichever process wrote it.
import type { Logger } from 'pino';
import type { Listener } from '../../core/listen.ts';
import { type EventRecord, type EventsService, parseNotification } from './service.ts';
import { NOTIFY_CHANNEL } from './store.ts';

export class EventBus {
  readonly #listeners = new Set<(event: EventRecord) => void>();
  readonly #resyncListeners = new Set<() => void>();
  readonly #events: EventsService;
  readonly #log: Logger;
  // Events announced by reference are loaded from the database; the chain keeps delivery in order.
  #chain: Promise<void> = Promise.resolve();

  private constructor(events: EventsService, log: Logger) {
    this.#events = events;
    this.#log = log;
  }

  /** Listens for committed events on the process's LISTEN connection. */
  static async start(listener: Listener, events: EventsService, log: Logger): Promise<EventBus> {
    const bus = new EventBus(events, log);
    await listener.subscribe(NOTIFY_CHANNEL, (payload) => bus.#receive(payload));
    listener.onReconnect(() => {
      for (const fn of bus.#resyncListeners) fn();
    });
    return bus;
  }

  /** Every event committed from now on, in any process. */
  on(fn: (event: EventRecord) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Called after the connection to the bus was lost and regained: events may have been missed. */
  onResync(fn: () => void): () => void {
    this.#resyncListeners.add(fn);
    return () => this.#resyncListeners.delete(fn);
  }

  #receive(payload: string): void {
    const parsed = parseNotification(payload);
    if (!parsed) return;
    if (!('ref' in parsed)) {
      this.#chain = this.#chain.then(() => this.#publish(parsed));
      return;
    }
    this.#chain = this.#chain.then(async () => {
      try {
        const [event] = await this.#events.byIds([parsed.ref]);
        if (event) this.#publish(event);
      } catch (err) {
        this.#log.error({ err, event_id: parsed.ref }, 'could not load an announced event');
      }
    });
  }

  #publish(event: EventRecord): void {
    for (const fn of this.#listeners) {
      try {
        fn(event);
      } catch (err) {
        this.#log.error({ err }, 'event listener failed');
      }
    }
  }
}
