// A local SMSC for tests, built with the `smpp` package's server and keeping SMPP 3.4's contract:
// bind_transceiver with a password check, submit_sm answered with message ids (or refused with the
// spec's command_status for malformed ones), delivery receipts and received messages as deliver_sm,
// enquire_link and unbind. It can throttle, hold answers back, drop connections, and counts submits.
import type { AddressInfo } from 'node:net';
import smpp, { type PDU, type Server, type Session } from 'smpp';

const E = smpp.errors;
const { ESM_CLASS, MESSAGE_STATE, TON } = smpp.consts;

export interface SmppSubmit {
  messageId: string;
  sourceAddr: string;
  sourceTon: number;
  destinationAddr: string;
  destinationTon: number;
  dataCoding: number;
  text: string;
  /** The text came in message_payload rather than short_message. */
  payload: boolean;
  registeredDelivery: number;
  /** Which bind (1 for the first) the submit came over. */
  bind: number;
}

export interface DeliverResult {
  /** The ESME's deliver_sm_resp command_status. */
  status: number;
  /** When the answer came (Date.now()). */
  at: number;
}

export interface SmppServerOptions {
  systemId?: string;
  password?: string;
  /** TLS key and certificate: the server speaks SMPP over TLS. */
  tls?: { key: string; cert: string };
}

export interface SmppServer {
  host: string;
  port: number;
  systemId: string;
  password: string;
  submits: SmppSubmit[];
  /** Successful binds so far. */
  binds: number;
  /** Every bind attempt with the command_status it got. */
  bindAttempts: { systemId: string; status: number }[];
  enquireLinks: number;
  /** Open connections. */
  readonly connections: number;
  /** When false, submits are recorded but not answered (in-flight submits for drop tests). */
  answerSubmits: boolean;
  /** Send a DELIVRD receipt for each submit that asked for one, right after answering it. */
  autoReceipts: boolean;
  /** The next `count` submits are refused with `status` (ESME_RTHROTTLED unless given). */
  throttleNext(count: number, status?: number): void;
  /** A delivery receipt for a submitted message; resolves with the ESME's answer. */
  sendReceipt(
    messageId: string,
    options?: { stat?: string; err?: string; tlvs?: boolean; state?: number },
  ): Promise<DeliverResult>;
  /** A received message; several parts when `parts` > 1 (UDH concatenation). Resolves with each part's answer. */
  sendInbound(message: {
    from: string;
    to: string;
    text: string;
    encoding?: 'gsm7' | 'ucs2';
    parts?: number;
  }): Promise<DeliverResult[]>;
  /** Cuts every connection without an unbind. */
  dropConnections(): void;
  close(): Promise<void>;
}

function smppAddress(value: string): { ton: number; addr: string } {
  return value.startsWith('+')
    ? { ton: TON.INTERNATIONAL, addr: value.slice(1) }
    : { ton: TON.UNKNOWN, addr: value };
}

function textOf(field: unknown): string {
  if (!field) return '';
  if (Buffer.isBuffer(field)) return field.toString('latin1');
  const message = (field as { message?: unknown }).message;
  if (Buffer.isBuffer(message)) return message.toString('latin1');
  return typeof message === 'string' ? message : '';
}

function smppDate(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return (
    pad(date.getUTCFullYear() % 100) +
    pad(date.getUTCMonth() + 1) +
    pad(date.getUTCDate()) +
    pad(date.getUTCHours()) +
    pad(date.getUTCMinutes())
  );
}

const STAT_STATE: Record<string, number> = {
  DELIVRD: MESSAGE_STATE.DELIVERED,
  EXPIRED: MESSAGE_STATE.EXPIRED,
  DELETED: MESSAGE_STATE.DELETED,
  UNDELIV: MESSAGE_STATE.UNDELIVERABLE,
  ACCEPTD: MESSAGE_STATE.ACCEPTED,
  UNKNOWN: MESSAGE_STATE.UNKNOWN,
  REJECTD: MESSAGE_STATE.REJECTED,
  ENROUTE: MESSAGE_STATE.ENROUTE,
};

export async function startSmppServer(options: SmppServerOptions = {}): Promise<SmppServer> {
  const systemId = options.systemId ?? 'mailroom';
  const password = options.password ?? 'secret12';
  const bound = new Set<Session>();
  let throttle = { count: 0, status: E.ESME_RTHROTTLED };
  let nextId = 0x1000;
  let reference = 0;

  const transceiver = (): Session => {
    const session = [...bound].at(-1);
    if (!session) throw new Error('no ESME is bound');
    return session;
  };

  const deliver = (params: Record<string, unknown>): Promise<DeliverResult> => {
    const session = transceiver();
    return new Promise((resolve, reject) => {
      const sent = session.deliver_sm(params, (pdu) =>
        resolve({ status: pdu.command_status, at: Date.now() }),
      );
      if (!sent) reject(new Error('the ESME connection is not writable'));
    });
  };

  const state: SmppServer = {
    host: '127.0.0.1',
    port: 0,
    systemId,
    password,
    submits: [],
    binds: 0,
    bindAttempts: [],
    enquireLinks: 0,
    get connections() {
      return server.sessions.length;
    },
    answerSubmits: true,
    autoReceipts: false,
    throttleNext(count, status = E.ESME_RTHROTTLED) {
      throttle = { count, status };
    },
    sendReceipt(messageId, receipt = {}) {
      const submit = state.submits.find((s) => s.messageId === messageId);
      if (!submit) throw new Error(`no submit with message id ${messageId}`);
      const stat = receipt.stat ?? 'DELIVRD';
      const now = smppDate(new Date());
      const delivered = stat === 'DELIVRD' ? '001' : '000';
      const text =
        `id:${messageId} sub:001 dlvrd:${delivered} submit date:${now} done date:${now} ` +
        `stat:${stat} err:${receipt.err ?? '000'} text:${submit.text.slice(0, 20)}`;
      const tlvs =
        receipt.tlvs === false
          ? {}
          : {
              receipted_message_id: messageId,
              message_state: receipt.state ?? STAT_STATE[stat] ?? MESSAGE_STATE.UNKNOWN,
            };
      return deliver({
        source_addr_ton: submit.destinationTon,
        source_addr: submit.destinationAddr,
        dest_addr_ton: submit.sourceTon,
        destination_addr: submit.sourceAddr,
        esm_class: ESM_CLASS.MC_DELIVERY_RECEIPT,
        data_coding: 0,
        short_message: text,
        ...tlvs,
      });
    },
    async sendInbound(message) {
      const from = smppAddress(message.from);
      const to = smppAddress(message.to);
      const dataCoding = message.encoding === 'ucs2' ? 0x08 : 0x00;
      const count = message.parts ?? 1;
      const common = {
        source_addr_ton: from.ton,
        source_addr_npi: 1,
        source_addr: from.addr,
        dest_addr_ton: to.ton,
        dest_addr_npi: 1,
        destination_addr: to.addr,
        data_coding: dataCoding,
      };
      if (count === 1) return [await deliver({ ...common, esm_class: 0, short_message: message.text })];
      const ref = ++reference & 0xff;
      const size = Math.ceil(message.text.length / count);
      const parts = Array.from({ length: count }, (_, i) => message.text.slice(i * size, (i + 1) * size));
      // Each part is acknowledged separately; the ESME may hold the answers until it has them all.
      return Promise.all(
        parts.map((text, i) =>
          deliver({
            ...common,
            esm_class: 0,
            short_message: { udh: Buffer.from([0x05, 0x00, 0x03, ref, count, i + 1]), message: text },
          }),
        ),
      );
    },
    dropConnections() {
      for (const session of [...server.sessions]) session.destroy();
    },
    close: () =>
      new Promise((resolve) => {
        for (const session of [...server.sessions]) session.destroy();
        server.close(() => resolve());
      }),
  };

  const onSession = (session: Session) => {
    let ordinal = 0;
    session.on('error', () => {});
    session.on('close', () => bound.delete(session));
    const refuseBind = (pdu: PDU) => session.send(pdu.response({ command_status: E.ESME_RBINDFAIL }));
    session.on('bind_transmitter', refuseBind);
    session.on('bind_receiver', refuseBind);
    session.on('bind_transceiver', (pdu: PDU) => {
      let status = E.ESME_ROK;
      if (bound.has(session)) status = E.ESME_RALYBND;
      else if (pdu.system_id !== systemId) status = E.ESME_RINVSYSID;
      else if (pdu.password !== password) status = E.ESME_RINVPASWD;
      state.bindAttempts.push({ systemId: String(pdu.system_id), status });
      if (status !== E.ESME_ROK) {
        session.send(pdu.response({ command_status: status }));
        return;
      }
      bound.add(session);
      state.binds++;
      ordinal = state.binds;
      session.send(pdu.response({ system_id: 'MAILROOMSMSC' }));
    });
    session.on('enquire_link', (pdu: PDU) => {
      state.enquireLinks++;
      session.send(pdu.response());
    });
    session.on('unbind', (pdu: PDU) => {
      bound.delete(session);
      session.send(pdu.response(), () => session.close());
    });
    session.on('unknown', (pdu: PDU) => session.send(pdu.response()));
    session.on('submit_sm', (pdu: PDU) => {
      const refuse = (status: number) => session.send(pdu.response({ command_status: status }));
      if (!bound.has(session)) return refuse(E.ESME_RINVBNDSTS);
      const short = textOf(pdu.short_message);
      const payload = pdu.message_payload === undefined ? null : textOf(pdu.message_payload);
      if (!pdu.source_addr) return refuse(E.ESME_RINVSRCADR);
      if (!pdu.destination_addr) return refuse(E.ESME_RINVDSTADR);
      if (pdu.dest_addr_ton === TON.INTERNATIONAL && !/^\d{4,15}$/.test(pdu.destination_addr))
        return refuse(E.ESME_RINVDSTADR);
      // SMPP 3.4 §5.3.2.32: with message_payload, sm_length must be 0.
      if (payload !== null && short !== '') return refuse(E.ESME_RINVMSGLEN);
      if (payload === null && short === '') return refuse(E.ESME_RINVMSGLEN);
      if (![0x00, 0x01, 0x03, 0x08].includes(pdu.data_coding)) return refuse(E.ESME_RINVDCS);
      if (throttle.count > 0) {
        throttle.count--;
        return refuse(throttle.status);
      }
      const submit: SmppSubmit = {
        messageId: (nextId++).toString(16).padStart(10, '0'),
        sourceAddr: pdu.source_addr,
        sourceTon: pdu.source_addr_ton,
        destinationAddr: pdu.destination_addr,
        destinationTon: pdu.dest_addr_ton,
        dataCoding: pdu.data_coding,
        text: payload ?? short,
        payload: payload !== null,
        registeredDelivery: pdu.registered_delivery,
        bind: ordinal,
      };
      state.submits.push(submit);
      if (!state.answerSubmits) return;
      session.send(pdu.response({ message_id: submit.messageId }));
      if (state.autoReceipts && submit.registeredDelivery & 0x01)
        void state.sendReceipt(submit.messageId).catch(() => {});
    });
  };

  const server: Server = options.tls
    ? smpp.createServer({ key: options.tls.key, cert: options.tls.cert }, onSession)
    : smpp.createServer(onSession);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  return state;
}
