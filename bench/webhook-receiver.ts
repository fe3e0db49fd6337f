// A webhook receiver for the benchmark, in a process of its own (so it does not share Mailroom's CPU
// time): counts deliveries and records event-to-delivery latency (receipt time minus the event's
// created_at). Prints its port; answers a `report` message with the numbers.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const latencies: number[] = [];
let first = 0;
let last = 0;

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const now = Date.now();
    const event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { created_at: string };
    latencies.push(now - Date.parse(event.created_at));
    first ||= now;
    last = now;
    res.writeHead(204);
    res.end();
  });
});
server.keepAliveTimeout = 60_000;

server.listen(0, '127.0.0.1', () => {
  process.send!({ port: (server.address() as AddressInfo).port });
});

process.on('message', (message: string) => {
  if (message === 'report') process.send!({ count: latencies.length, first, last, latencies });
  if (message === 'reset') {
    latencies.length = 0;
    first = 0;
    last = 0;
  }
  if (message === 'exit') server.close(() => process.exit(0));
});
