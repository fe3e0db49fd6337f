// A webhook receiver on loopback that verifies each request with the `standardwebhooks` package (what
// an integrator would use), answers as the test scripts it, and lets a test wait for messages.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface ReceivedMessage {
  id: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: any;
  /** Which of the receiver's secrets verified the signature (null: none did). */
  verifiedWith: string | null;
  at: number;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  /** Wait this long before answering (timeouts). */
  delayMs?: number;
}

export interface WebhookReceiver {
  port: number;
  /** URL with the given host name (resolved through the test DNS server) and path. */
  url(host: string, path?: string): string;
  received: ReceivedMessage[];
  /** Secrets to verify with; set once the endpoint exists. */
  secrets: string[];
  /** Decides each reply; default 204. */
  reply: (message: ReceivedMessage, index: number) => Reply;
  /** Resolves once `count` messages (in total) have arrived. */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedMessage[]>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const waiters: { count: number; resolve: () => void }[] = [];
  const receiver: WebhookReceiver = {
    port: 0,
    url: (host, path = '/hook') => `http://${host}:${receiver.port}${path}`,
    received: [],
    secrets: [],
    reply: () => ({ status: 204 }),
    waitFor(count, timeoutMs = 20_000) {
      if (receiver.received.length >= count) return Promise.resolve(receiver.received);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`expected ${count} webhook messages, got ${receiver.received.length}`)),
          timeoutMs,
        );
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve(receiver.received);
          },
        });
      });
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const headers = {
        'webhook-id': String(req.headers['webhook-id']),
        'webhook-timestamp': String(req.headers['webhook-timestamp']),
        'webhook-signature': String(req.headers['webhook-signature']),
      };
      const verifiedWith =
        receiver.secrets.find((secret) => {
          try {
            new Webhook(secret).verify(body, headers);
            return true;
          } catch {
            return false;
          }
        }) ?? null;
      const message: ReceivedMessage = {
        id: headers['webhook-id'],
        headers: req.headers,
        body,
        json: JSON.parse(body),
        verifiedWith,
        at: Date.now(),
      };
      const index = receiver.received.length;
      const reply = receiver.reply(message, index);
      const answer = () => {
        receiver.received.push(message);
        for (const w of waiters.splice(0)) {
          if (receiver.received.length >= w.count) w.resolve();
          else waiters.push(w);
        }
        if (!res.destroyed) {
          res.writeHead(reply.status, reply.headers);
          res.end(reply.body ?? '');
        }
      };
      if (reply.delayMs) setTimeout(answer, reply.delayMs);
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.port = (server.address() as AddressInfo).port;
  return receiver;
}
