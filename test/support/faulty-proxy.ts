// A TCP proxy in front of a test server that can misbehave once on cue: cut the connection, or send the
// client a malformed line, after a given number of bytes from the server. It stands for a remote server
// that drops the connection mid-sync or answers what cannot be read.
import { startTcpProxy } from './tcp-proxy.ts';

export interface FaultyProxy {
  port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** The first connection through which the server sends this many bytes is cut there (once). */
  cutAfter(bytes: number): void;
  /**
   * The first command (on any connection) matching `command` is not passed on: the client gets
   * `line` as the answer instead, and the connection is cut a moment later.
   */
  garbleOn(command: RegExp, line: string): void;
  /** Faults that happened. */
  readonly faults: number;
  close(): Promise<void>;
}

export async function startFaultyProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<FaultyProxy> {
  let fault: { after: number } | { command: RegExp; line: string } | null = null;
  let faults = 0;
  let connections = 0;
  const proxy = await startTcpProxy(targetPort, targetHost, (client, upstream) => {
    connections++;
    let sent = 0;
    upstream.on('data', (chunk: Buffer) => {
      const armed = fault;
      if (armed && 'after' in armed && sent + chunk.length >= armed.after) {
        fault = null;
        client.write(chunk.subarray(0, Math.max(0, armed.after - sent)));
        faults++;
        client.destroy();
        upstream.destroy();
        return;
      }
      sent += chunk.length;
      client.write(chunk);
    });
    client.on('data', (chunk: Buffer) => {
      const armed = fault;
      if (armed && 'command' in armed && armed.command.test(chunk.toString('latin1'))) {
        fault = null;
        faults++;
        client.write(armed.line);
        setTimeout(() => {
          client.destroy();
          upstream.destroy();
        }, 200);
        return;
      }
      upstream.write(chunk);
    });
  });
  return {
    port: proxy.port,
    get connections() {
      return connections;
    },
    cutAfter(bytes) {
      fault = { after: bytes };
    },
    garbleOn(command, line) {
      fault = { command, line };
    },
    get faults() {
      return faults;
    },
    close: () => proxy.close(),
  };
}
