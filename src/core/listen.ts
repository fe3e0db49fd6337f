// LISTEN on PostgreSQL channels: how one process learns, at commit time, what another wrote.
// PostgreSQL needs a connection of its own, outside the pool, that is re-established when it drops;
// `onReconnect` then tells the listeners that notifications may have been missed meanwhile. One
// connection serves every channel a process listens on.
// The embedded engine serves a single process, so its notifications never leave it.
import type { Logger } from 'pino';
import type { Database } from './db.ts';

export interface Listener {
  /** Starts listening on `channel`; `onPayload` gets each notification's payload. */
  subscribe(channel: string, onPayload: (payload: string) => void): Promise<void>;
  /** Called after the connection was lost and regained: notifications may have been missed. */
  onReconnect(fn: () => void): void;
  close(): Promise<void>;
}

const RECONNECT_MAX_MS = 30_000;

export async function listen(database: Database, log: Logger): Promise<Listener> {
  const raw = database.raw;
  if (raw.kind === 'pglite') {
    const unlisteners: (() => Promise<void>)[] = [];
    return {
      async subscribe(channel, onPayload) {
        unlisteners.push(await raw.pglite.listen(channel, onPayload));
      },
      onReconnect() {},
      async close() {
        for (const unlisten of unlisteners.splice(0)) await unlisten();
      },
    };
  }
  return listenPostgres(raw.url, log);
}

async function listenPostgres(url: string, log: Logger): Promise<Listener> {
  const { default: pg } = await import('pg');
  const channels = new Map<string, (payload: string) => void>();
  const reconnected: (() => void)[] = [];
  let client: InstanceType<typeof pg.Client> | null = null;
  let closed = false;
  let delay = 250;
  let retry: NodeJS.Timeout | undefined;

  const connect = async (): Promise<void> => {
    const c = new pg.Client({ connectionString: url, application_name: `mailroom-listen ${process.pid}` });
    c.on('notification', (msg) => {
      const onPayload = channels.get(msg.channel);
      if (onPayload && msg.payload !== undefined) onPayload(msg.payload);
    });
    c.on('error', () => {}); // 'end' follows and reconnects
    c.on('end', () => {
      if (client !== c || closed) return;
      client = null;
      log.warn({ channels: [...channels.keys()] }, 'lost the LISTEN connection; reconnecting');
      scheduleReconnect();
    });
    await c.connect();
    for (const channel of channels.keys()) await c.query(`LISTEN ${channel}`);
    client = c;
  };

  const scheduleReconnect = () => {
    retry = setTimeout(async () => {
      try {
        await connect();
        delay = 250;
        for (const fn of reconnected) fn();
      } catch (err) {
        log.warn({ err }, 'LISTEN reconnect failed');
        delay = Math.min(delay * 2, RECONNECT_MAX_MS);
        if (!closed) scheduleReconnect();
      }
    }, delay);
    retry.unref();
  };

  await connect();
  return {
    async subscribe(channel, onPayload) {
      if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`bad channel name ${channel}`);
      channels.set(channel, onPayload);
      // While reconnecting, the new connection listens on every channel when it is made.
      await client?.query(`LISTEN ${channel}`);
    },
    onReconnect(fn) {
      reconnected.push(fn);
    },
    async close() {
      closed = true;
      clearTimeout(retry);
      const c = client;
      client = null;
      await c?.end().catch(() => {});
    },
  };
}
