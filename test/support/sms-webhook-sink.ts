// A loopback HTTP endpoint that keeps each webhook call exactly as it came (URL, headers, raw bytes),
// for handing to an SMS adapter's parseWebhook the way the sms module's route will.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SinkRequest {
  /** The full URL as called, query included. */
  url: string;
  method: string;
  headers: http.IncomingHttpHeaders;
  rawBody: Buffer;
}

export interface WebhookSink {
  url(path?: string): string;
  requests: SinkRequest[];
  /** The status each call is answered with; 200 unless set. */
  answer: (request: SinkRequest) => number;
  /** Resolves once `count` calls (in total) have come. */
  waitFor(count: number, timeoutMs?: number): Promise<SinkRequest[]>;
  close(): Promise<void>;
}

export async function startWebhookSink(): Promise<WebhookSink> {
  const waiters: { count: number; resolve: () => void }[] = [];
  let port = 0;
  const sink: WebhookSink = {
    url: (path = '/v1/sms/webhooks/test') => `http://127.0.0.1:${port}${path}`,
    requests: [],
    answer: () => 200,
    waitFor(count, timeoutMs = 20_000) {
      if (sink.requests.length >= count) return Promise.resolve(sink.requests);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`expected ${count} webhook calls, got ${sink.requests.length}`)),
          timeoutMs,
        );
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve(sink.requests);
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
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request: SinkRequest = {
        url: `http://127.0.0.1:${port}${req.url}`,
        method: req.method ?? 'GET',
        headers: req.headers,
        rawBody: Buffer.concat(chunks),
      };
      sink.requests.push(request);
      res.writeHead(sink.answer(request)).end();
      for (const waiter of [...waiters]) {
        if (sink.requests.length >= waiter.count) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve();
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  return sink;
}
