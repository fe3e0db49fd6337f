// A WebSocket client for /v1/events/stream that queues what arrives, so a test can await the next event.
import WebSocket from 'ws';

export interface StreamClient {
  socket: WebSocket;
  /** The next event (waits for it). */
  next(timeoutMs?: number): Promise<any>;
  /** Events received and not yet taken with next(). */
  pending(): any[];
  close(): void;
}

export function openStream(
  url: string,
  options: { token?: string; organizationId?: string; protocols?: string[] } = {},
): Promise<StreamClient> {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.organizationId) headers['x-organization-id'] = options.organizationId;
  const socket = new WebSocket(url, options.protocols ?? [], { headers });
  const queue: any[] = [];
  const waiters: ((e: any) => void)[] = [];
  socket.on('message', (data) => {
    const event = JSON.parse(String(data));
    const waiter = waiters.shift();
    if (waiter) waiter(event);
    else queue.push(event);
  });
  const client: StreamClient = {
    socket,
    next(timeoutMs = 10_000) {
      if (queue.length) return Promise.resolve(queue.shift());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no event arrived on the stream')), timeoutMs);
        waiters.push((e) => {
          clearTimeout(timer);
          resolve(e);
        });
      });
    },
    pending: () => queue.splice(0),
    close: () => socket.close(),
  };
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve(client));
    socket.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () =>
        reject(
          Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode, body }),
        ),
      );
    });
    socket.once('error', reject);
  });
}
