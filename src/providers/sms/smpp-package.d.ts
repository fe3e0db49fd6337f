// Types for the parts of the `smpp` package (node-smpp) that Mailroom uses; it ships none. Parameter and
// TLV names are the SMPP specification's, so PDUs are open records.
declare module 'smpp' {
  import type { EventEmitter } from 'node:events';
  import type { Server as NetServer, Socket } from 'node:net';

  interface PDU {
    command: string;
    command_id: number;
    command_status: number;
    sequence_number: number;
    isResponse(): boolean;
    /** The response to this request, with the same sequence number. */
    response(options?: Record<string, unknown>): PDU;
    [param: string]: any;
  }

  type ResponseCallback = (pdu: PDU) => void;
  type Operation = (
    options: Record<string, unknown>,
    onResponse?: ResponseCallback,
    onSent?: ResponseCallback,
  ) => boolean;

  interface Session extends EventEmitter {
    socket: Socket;
    /** False when the socket is no longer writable. */
    send(pdu: PDU, onResponse?: ResponseCallback, onSent?: ResponseCallback): boolean;
    close(callback?: () => void): void;
    destroy(callback?: () => void): void;
    pause(): void;
    resume(): void;
    bind_transceiver: Operation;
    submit_sm: Operation;
    deliver_sm: Operation;
    enquire_link: Operation;
    unbind: Operation;
  }

  interface Server extends NetServer {
    sessions: Session[];
  }

  interface ConnectOptions {
    host: string;
    port: number;
    /** TLS (tls.connect takes the remaining options: ca, servername, rejectUnauthorized). */
    tls?: boolean;
    [option: string]: unknown;
  }

  interface Smpp {
    connect(options: ConnectOptions, listener?: () => void): Session;
    createServer(listener: (session: Session) => void): Server;
    createServer(options: { key?: string; cert?: string }, listener: (session: Session) => void): Server;
    PDU: new (command: string, options?: Record<string, unknown>) => PDU;
    /** command_status names by value: ESME_ROK, ESME_RTHROTTLED ... */
    errors: Record<string, number>;
    consts: {
      ESM_CLASS: Record<string, number>;
      MESSAGE_STATE: Record<string, number>;
      TON: Record<string, number>;
      NPI: Record<string, number>;
      ENCODING: Record<string, number>;
      REGISTERED_DELIVERY: Record<string, number>;
    };
  }

  const smpp: Smpp;
  export type { ConnectOptions, PDU, Server, Session };
  export default smpp;
}
