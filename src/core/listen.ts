// LISTEN on a PostgreSQL channel: how one process learns, at commit time, what another wrote.
// PostgreSQL needs a connection of its own, outside the pool, that is re-established when it drops;
// `onReconnect` then tells the listener that notifications may have been missed meanwhile.
// The embedded engine serves a single process, so its notifications never leave it.
import type { Logger } from 'pino';
import type { Database } from './db.ts';

export interface Listener {
  close(): Promise<void>;
}

export interface ListenOptions {
  channel: string;
  onPayload: (payload: string) => void;
  onReconnect: () => void;
  log: Logger;
}

const RECONNECT_MAX_MS = 30_000;

export async function listen(database: Database, options: ListenOptions): Promise<Listener> {
  const raw = database.raw;
  if (raw.kind === 'pglite') {
    const unlisten = await raw.pglite.listen(options.channel, options.onPayload);
    return { close: () => unlisten() };
  }
  return listenPostgres(raw.url, options);
}

async function listenPostgres(url: string, options: ListenOptions): Promise<Listener> {
  const { default: pg } = await import('pg');
  let client: InstanceType<typeof pg.Client> | null = null;
  let closed = false;
  let delay = 250;
  let retry: NodeJS.Timeout | undefined;

  const connect = async (): Promise<void> => {
    const c = new pg.Client({ connectionString: url, application_name: 'mailroom-listen' });
    c.on('notification', (msg) => {
      if (msg.channel === options.channel && msg.payload !== undefined) options.onPayload(msg.payload);
    });
    c.on('error', () => {}); // 'end' follows and reconnects
    c.on('end', () => {
      if (client !== c || closed) return;
      client = null;
      options.log.warn({ channel: options.channel }, 'lost the LISTEN connection; reconnecting');
      scheduleReconnect();
    });
    await c.connect();
    await c.query(`LISTEN ${options.channel}`);
    client = c;
  };

  const scheduleReconnect = () => {
    retry = setTimeout(async () => {
      try {
        await connect();
        delay = 250;
        options.onReconnect();
      } catch (err) {
        options.log.warn({ err, channel: options.channel }, 'LISTEN reconnect failed');
        delay = Math.min(delay * 2, RECONNECT_MAX_MS);
        if (!closed) scheduleReconnect();
      }
    }, delay);
    retry.unref();
  };

  await connect();
  return {
    async close() {
      closed = true;
      clearTimeout(retry);
      const c = client;
      client = null;
      await c?.end().catch(() => {});
    },
  };
}
