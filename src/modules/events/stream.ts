// Live event streams (WebSocket): each subscriber gets its organisation's events matching its filter,
// first those after its cursor (replay from the database), then live ones from the bus, without gaps
// or duplicates: live events that arrive during the replay are held and sent after it, minus any the
// replay already sent.
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { eventTypeMatches } from '../../core/events.ts';
import { newId } from '../../core/ids.ts';
import type { EventBus } from './bus.ts';
import { type EventRecord, type EventsService, eventView } from './service.ts';

const REPLAY_BATCH = 500;
/** A client this far behind is too slow to follow; it is closed and may reconnect with its cursor. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
const HEARTBEAT_MS = 30_000;

interface Subscriber {
  socket: WebSocket;
  organizationId: string;
  types: string[];
  /** The last event sent: where a replay resumes after the bus reconnects. */
  cursor: string;
  /** While replaying: live events held back, and ids the replay sent. */
  held: EventRecord[] | null;
  replayed: Set<string> | null;
  alive: boolean;
}

export class EventStreams {
  readonly #byOrganization = new Map<string, Set<Subscriber>>();
  readonly #events: EventsService;
  readonly #log: Logger;
  readonly #unsubscribe: (() => void)[];
  readonly #heartbeat: NodeJS.Timeout;
  // Serialised once per event, whatever the number of subscribers.
  readonly #wire = new WeakMap<EventRecord, string>();

  constructor(bus: EventBus, events: EventsService, log: Logger) {
    this.#events = events;
    this.#log = log;
    this.#unsubscribe = [bus.on((e) => this.#dispatch(e)), bus.onResync(() => this.#resyncAll())];
    this.#heartbeat = setInterval(() => this.#ping(), HEARTBEAT_MS);
    this.#heartbeat.unref();
  }

  get size(): number {
    let n = 0;
    for (const set of this.#byOrganization.values()) n += set.size;
    return n;
  }

  /** Starts streaming to `socket`: replays after `after` when given, then follows live events. */
  attach(socket: WebSocket, organizationId: string, types: string[], after?: string): void {
    const sub: Subscriber = {
      socket,
      organizationId,
      types,
      cursor: after ?? newId(),
      held: null,
      replayed: null,
      alive: true,
    };
    let set = this.#byOrganization.get(organizationId);
    if (!set) {
      set = new Set();
      this.#byOrganization.set(organizationId, set);
    }
    set.add(sub);
    socket.on('pong', () => {
      sub.alive = true;
    });
    socket.on('close', () => this.#detach(sub));
    socket.on('error', () => this.#detach(sub));
    if (after) void this.#replay(sub);
  }

  #detach(sub: Subscriber): void {
    const set = this.#byOrganization.get(sub.organizationId);
    set?.delete(sub);
    if (set?.size === 0) this.#byOrganization.delete(sub.organizationId);
  }

  async #replay(sub: Subscriber): Promise<void> {
    sub.held ??= [];
    sub.replayed = new Set();
    try {
      for (;;) {
        const batch = await this.#events.after(
          sub.organizationId,
          { types: sub.types, after: sub.cursor },
          REPLAY_BATCH,
        );
        for (const e of batch) {
          this.#send(sub, e);
          sub.replayed.add(e.id);
        }
        if (batch.length < REPLAY_BATCH || sub.socket.readyState !== sub.socket.OPEN) break;
      }
      const held = sub.held;
      const replayed = sub.replayed;
      sub.held = null;
      sub.replayed = null;
      for (const e of held) if (!replayed.has(e.id)) this.#send(sub, e);
    } catch (err) {
      this.#log.error({ err }, 'event stream replay failed');
      sub.socket.close(1011, 'replay failed');
    }
  }

  #dispatch(event: EventRecord): void {
    const set = this.#byOrganization.get(event.organizationId);
    if (!set) return;
    for (const sub of set) {
      if (!eventTypeMatches(sub.types, event.type)) continue;
      if (sub.held) sub.held.push(event);
      else this.#send(sub, event);
    }
  }

  #send(sub: Subscriber, event: EventRecord): void {
    if (sub.socket.readyState !== sub.socket.OPEN) return;
    if (sub.socket.bufferedAmount > MAX_BUFFERED_BYTES) {
      sub.socket.close(1013, 'client too slow; reconnect with ?after=<last event id>');
      return;
    }
    let wire = this.#wire.get(event);
    if (!wire) {
      wire = JSON.stringify(eventView(event));
      this.#wire.set(event, wire);
    }
    sub.socket.send(wire);
    if (event.id > sub.cursor) sub.cursor = event.id;
  }

  /** After the bus reconnects, each subscriber catches up from its cursor. */
  #resyncAll(): void {
    for (const set of this.#byOrganization.values()) {
      for (const sub of set) if (!sub.held) void this.#replay(sub);
    }
  }

  #ping(): void {
    for (const set of this.#byOrganization.values()) {
      for (const sub of set) {
        if (!sub.alive) {
          sub.socket.terminate();
          continue;
        }
        sub.alive = false;
        sub.socket.ping();
      }
    }
  }

  close(): void {
    clearInterval(this.#heartbeat);
    for (const fn of this.#unsubscribe) fn();
    for (const set of this.#byOrganization.values()) {
      for (const sub of set) sub.socket.close(1001, 'server shutting down');
    }
    this.#byOrganization.clear();
  }
}
