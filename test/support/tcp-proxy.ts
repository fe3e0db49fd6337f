// A TCP proxy on a free loopback port for test servers that misbehave or speak an extension: each client
// gets its own connection to the target, and `wire` decides what passes between the two. Either side
// failing ends both.
import net from 'node:net';

export interface TcpProxy {
  port: number;
  close(): Promise<void>;
}

export async function startTcpProxy(
  targetPort: number,
  targetHost: string,
  wire: (client: net.Socket, upstream: net.Socket) => void,
): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, targetHost);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    upstream.on('end', () => client.end());
    client.on('end', () => upstream.end());
    wire(client, upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
