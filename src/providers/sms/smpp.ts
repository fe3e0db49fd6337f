// An SMPP 3.4 link to an operator's SMSC through the `smpp` package: one bind_transceiver session that
// submits and receives. Design (docs/sms-gateways.md):
// - submits are windowed: up to `window` submit_sm wait for their submit_sm_resp at once, and a send
//   beyond that waits for a slot, which is what lets one TCP connection carry thousands a second;
// - a long message goes as ONE submit_sm with the text in message_payload, not as UDH parts, so one
//   message has one message_id and one receipt and nothing has to remember which part ids belong
//   together across restarts; the SMSC splits it for the handset;
// - deliver_sm (receipts and received messages) are answered only after the handler has resolved; a
//   handler that fails gets a temporary error, so the SMSC delivers it again rather than losing it;
// - enquire_link keeps the link checked; a dropped link fails what was in flight as retryable and is
//   bound again with backoff.
import { isIP } from 'node:net';
import smpp, { type PDU, type Session } from 'smpp';
import { ProviderError } from '../errors.ts';
import type { OutgoingSms, SmsCapabilities, SmsProvider, SmsProviderEvent, SubmitResult } from './types.ts';
import { SmsSendError } from './types.ts';

export interface SmppCredentials {
  host: string;
  port: string | number;
  system_id: string;
  password: string;
  system_type?: string;
  /** The default sender: E.164 number, short code or alphanumeric sender id. */
  source_addr: string;
  /** 'true' for SMPP over TLS. */
  tls?: string | boolean;
}

export interface SmppOptions {
  /** Submits outstanding at once (the window). */
  window?: number;
  /** How often the link is checked with enquire_link. */
  enquireLinkMs?: number;
  /** How long a submit_sm or enquire_link may wait for its answer. */
  responseTimeoutMs?: number;
  /** How long connecting and binding may take. */
  connectTimeoutMs?: number;
  /** First and longest wait between reconnection attempts (doubling in between). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** The Retry-After given with a throttled submit (ESME_RTHROTTLED, ESME_RMSGQFUL). */
  throttleRetryMs?: number;
  /** How long the parts of a concatenated received message are awaited before what came is passed on. */
  partsTimeoutMs?: number;
  maxParts?: number;
  /** TLS details beyond `tls: 'true'` (a private CA, another server name). */
  tlsOptions?: { ca?: string | Buffer; servername?: string; rejectUnauthorized?: boolean };
  now?: () => Date;
}

/** submit_sm has no idempotency key: a PDU sent again is another message. */
export const IDEMPOTENT_SUBMIT = false;

const DEFAULTS = {
  window: 100,
  enquireLinkMs: 30_000,
  responseTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
  reconnectMinMs: 250,
  reconnectMaxMs: 30_000,
  throttleRetryMs: 1_000,
  partsTimeoutMs: 60_000,
  maxParts: 10,
};

const E = smpp.errors;
const { ESM_CLASS, MESSAGE_STATE, TON, NPI } = smpp.consts;
const STATUS_NAMES = new Map(Object.entries(E).map(([name, value]) => [value, name]));
const THROTTLED = new Set([E.ESME_RTHROTTLED, E.ESME_RMSGQFUL]);
/** Answers that say "not now" rather than "not this message". */
const TRANSIENT = new Set([E.ESME_RSYSERR, E.ESME_RINVBNDSTS, E.ESME_RX_T_APPN]);
const AUTH_REFUSED = new Set([E.ESME_RINVPASWD, E.ESME_RINVSYSID]);
const MESSAGE_TYPE_MASK = 0x3c;
/** GSM 03.38 characters that take an escape and a second septet. */
const GSM_EXTENDED = new Set('^{}\\[~]|€\f');

type ReceiptStatus = 'sent' | 'delivered' | 'failed' | 'undelivered';

const STATE_STATUS: Record<number, ReceiptStatus> = {
  [MESSAGE_STATE.SCHEDULED]: 'sent',
  [MESSAGE_STATE.ENROUTE]: 'sent',
  [MESSAGE_STATE.ACCEPTED]: 'sent',
  [MESSAGE_STATE.DELIVERED]: 'delivered',
  [MESSAGE_STATE.EXPIRED]: 'undelivered',
  [MESSAGE_STATE.DELETED]: 'undelivered',
  [MESSAGE_STATE.UNDELIVERABLE]: 'undelivered',
  [MESSAGE_STATE.UNKNOWN]: 'undelivered',
  [MESSAGE_STATE.REJECTED]: 'failed',
  [MESSAGE_STATE.SKIPPED]: 'failed',
};

/** The receipt text's `stat:` (SMPP 3.4 appendix B), by prefix: SMSCs spell some in full. */
const STAT_STATUS: [string, ReceiptStatus][] = [
  ['DELIV', 'delivered'],
  ['UNDEL', 'undelivered'],
  ['EXPIR', 'undelivered'],
  ['DELET', 'undelivered'],
  ['UNKNOWN', 'undelivered'],
  ['REJECT', 'failed'],
  ['SKIP', 'failed'],
  ['ACCEPT', 'sent'],
  ['ENROUTE', 'sent'],
];

function statusCode(status: number): string {
  return `0x${status.toString(16).padStart(8, '0')}`;
}

function statusName(status: number): string {
  return STATUS_NAMES.get(status) ?? `command_status ${statusCode(status)}`;
}

/** A connection or bind that did not come up. */
class LinkFailed extends Error {
  readonly status: number | null;

  constructor(message: string, status: number | null = null) {
    super(message);
    this.status = status;
  }
}

function linkSendError(error: unknown): unknown {
  if (!(error instanceof LinkFailed)) return error;
  const refused = error.status !== null && AUTH_REFUSED.has(error.status);
  return new SmsSendError(error.message, {
    retryable: !refused,
    code: error.status === null ? 'link_down' : statusCode(error.status),
  });
}

function linkProviderError(error: unknown): unknown {
  if (!(error instanceof LinkFailed)) return error;
  if (error.status === null) return new ProviderError('provider_unavailable', error.message);
  if (AUTH_REFUSED.has(error.status)) return new ProviderError('provider_auth_failed', error.message);
  return new ProviderError('provider_rejected', error.message);
}

/** TON, NPI and digits for an address: E.164 is international, digits unknown, anything else alphanumeric. */
function address(value: string): { ton: number; npi: number; addr: string } {
  if (/^\+\d{1,15}$/.test(value)) return { ton: TON.INTERNATIONAL, npi: NPI.ISDN, addr: value.slice(1) };
  if (/^\d{1,20}$/.test(value)) return { ton: TON.UNKNOWN, npi: NPI.ISDN, addr: value };
  return { ton: TON.ALPHANUMERIC, npi: NPI.UNKNOWN, addr: value };
}

function addressText(ton: number, addr: string): string {
  return ton === TON.INTERNATIONAL && /^\d+$/.test(addr) ? `+${addr}` : addr;
}

/** Whether the body fits one short_message (160 GSM-7 septets or 70 UCS-2 units). */
function fitsOnePart(body: string, encoding: OutgoingSms['encoding']): boolean {
  if (encoding === 'ucs2') return body.length <= 70;
  let septets = 0;
  for (const char of body) septets += GSM_EXTENDED.has(char) ? 2 : 1;
  return septets <= 160;
}

/** A deliver_sm's text and user data header elements; message_payload wins over an empty short_message. */
function messageOf(pdu: PDU): { text: string; udh: Buffer[] } {
  const field = pdu.message_payload ?? pdu.short_message;
  const decoded = field && !Buffer.isBuffer(field) && typeof field === 'object' ? field : { message: field };
  const message = decoded.message;
  const text = Buffer.isBuffer(message)
    ? message.toString('latin1')
    : typeof message === 'string'
      ? message
      : '';
  return { text, udh: Array.isArray(decoded.udh) ? decoded.udh : [] };
}

interface PartInfo {
  ref: string;
  total: number;
  seq: number;
}

/** Concatenation from the UDH (8- or 16-bit reference) or the sar_* TLVs; null for a whole message. */
function partOf(pdu: PDU, udh: Buffer[]): PartInfo | null {
  let part: PartInfo | null = null;
  for (const ie of udh) {
    if (ie[0] === 0x00 && ie[1] === 3) part = { ref: String(ie[2]), total: ie[3], seq: ie[4] };
    else if (ie[0] === 0x08 && ie[1] === 4)
      part = { ref: String(ie.readUInt16BE(2)), total: ie[4], seq: ie[5] };
  }
  if (!part && pdu.sar_msg_ref_num !== undefined && pdu.sar_total_segments !== undefined)
    part = { ref: String(pdu.sar_msg_ref_num), total: pdu.sar_total_segments, seq: pdu.sar_segment_seqnum };
  if (!part || part.total < 2 || !(part.seq >= 1 && part.seq <= part.total)) return null;
  return part;
}

function receiptStatus(pdu: PDU, text: string): ReceiptStatus | undefined {
  if (typeof pdu.message_state === 'number' && STATE_STATUS[pdu.message_state])
    return STATE_STATUS[pdu.message_state];
  const stat = /\bstat:\s*(\w+)/i.exec(text)?.[1]?.toUpperCase();
  return stat ? STAT_STATUS.find(([prefix]) => stat.startsWith(prefix))?.[1] : undefined;
}

/** The receipt's error: the text's `err:` unless zero, else the network_error_code TLV (type:code). */
function receiptError(pdu: PDU, text: string): string | undefined {
  const err = /\berr:\s*(\w+)/i.exec(text)?.[1];
  if (err && !/^0+$/.test(err)) return err;
  const network = pdu.network_error_code;
  if (Buffer.isBuffer(network) && network.length === 3 && network.readUInt16BE(1) !== 0)
    return `${network[0]}:${network.readUInt16BE(1)}`;
  return undefined;
}

interface PendingSubmit {
  fail(error: SmsSendError): void;
}

interface PartBuffer {
  session: Session;
  event: Extract<SmsProviderEvent, { type: 'inbound' }>;
  total: number;
  texts: Map<number, string>;
  acks: ((status?: number) => void)[];
  timer: NodeJS.Timeout;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Unbinds politely, then closes; a peer that does not answer is cut off. */
function unbindAndClose(session: Session, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (session.socket.destroyed) return resolve();
    const timer = setTimeout(() => session.destroy(), timeoutMs);
    session.socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    const sent = session.unbind({}, () => session.close());
    if (!sent) session.destroy();
  });
}

class SmppProvider implements SmsProvider {
  readonly name = 'smpp' as const;
  readonly capabilities: SmsCapabilities;
  readonly #credentials: SmppCredentials;
  readonly #options: typeof DEFAULTS & Pick<SmppOptions, 'tlsOptions'>;
  readonly #now: () => Date;

  /** The bound link session, when there is one. */
  #session: Session | null = null;
  #connecting: Promise<Session> | null = null;
  #reconnectTimer: NodeJS.Timeout | null = null;
  #retryAt = 0;
  #backoffMs: number;
  #enquireTimer: NodeJS.Timeout | null = null;
  #closed = false;
  #handler: ((event: SmsProviderEvent) => Promise<void>) | null = null;
  readonly #pending = new Set<PendingSubmit>();
  readonly #parts = new Map<string, PartBuffer>();
  #inFlight = 0;
  readonly #slotWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];

  constructor(credentials: SmppCredentials, options: SmppOptions) {
    this.#credentials = credentials;
    const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    this.#options = { ...DEFAULTS, ...defined };
    this.#now = options.now ?? (() => new Date());
    this.#backoffMs = this.#options.reconnectMinMs;
    this.capabilities = {
      receipts: true,
      inbound: true,
      maxParts: this.#options.maxParts,
      window: this.#options.window,
      idempotentSubmit: IDEMPOTENT_SUBMIT,
    };
  }

  async verify(): Promise<void> {
    let session: Session;
    try {
      session = await this.#open(null);
    } catch (error) {
      throw linkProviderError(error);
    }
    await unbindAndClose(session, this.#options.responseTimeoutMs);
  }

  async send(message: OutgoingSms): Promise<SubmitResult> {
    await this.#acquireSlot();
    try {
      const session = await this.#bound();
      return await this.#submit(session, message);
    } finally {
      this.#releaseSlot();
    }
  }

  onEvent(handler: (event: SmsProviderEvent) => Promise<void>): void {
    this.#handler = handler;
    // deliver_sm only reaches a bound link, so subscribing brings the link up.
    if (!this.#session && !this.#connecting && !this.#reconnectTimer && !this.#closed)
      this.#connect().catch(() => {});
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    const closing = new SmsSendError('the SMPP provider was closed', { retryable: true, code: 'closed' });
    for (const waiter of this.#slotWaiters.splice(0)) waiter.reject(closing);
    await this.#connecting?.catch(() => null);
    const session = this.#session;
    this.#detach(closing);
    if (session) await unbindAndClose(session, this.#options.responseTimeoutMs);
  }

  /** Connects and binds one session; `onBound` runs before any PDU after bind_transceiver_resp is read. */
  #open(onBound: ((session: Session) => void) | null): Promise<Session> {
    const { host, system_id, password, system_type } = this.#credentials;
    const port = Number(this.#credentials.port);
    const tls = this.#credentials.tls === true || this.#credentials.tls === 'true';
    const where = `${host}:${port}`;
    return new Promise((resolve, reject) => {
      const session = smpp.connect({
        host,
        port,
        noDelay: true,
        keepAlive: true,
        ...(tls ? { tls: true, servername: isIP(host) ? undefined : host, ...this.#options.tlsOptions } : {}),
      });
      let settled = false;
      const fail = (error: LinkFailed) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        session.destroy();
        reject(error);
      };
      const timer = setTimeout(
        () =>
          fail(
            new LinkFailed(`the SMSC at ${where} did not bind within ${this.#options.connectTimeoutMs} ms`),
          ),
        this.#options.connectTimeoutMs,
      );
      // After the bind, a socket error is followed by 'close', which is where a lost link is handled.
      session.on('error', (error: Error) =>
        fail(new LinkFailed(`SMPP connection to ${where} failed: ${error.message}`)),
      );
      session.on('close', () => {
        if (!settled) fail(new LinkFailed(`the SMSC at ${where} closed the connection before the bind`));
        else this.#lost(session);
      });
      session.once(tls ? 'secureConnect' : 'connect', () => {
        session.bind_transceiver(
          { system_id, password, system_type: system_type ?? '', interface_version: 0x34 },
          (pdu) => {
            if (settled) return;
            if (pdu.command_status !== E.ESME_ROK) {
              fail(
                new LinkFailed(
                  `the SMSC at ${where} refused the bind: ${statusName(pdu.command_status)}`,
                  pdu.command_status,
                ),
              );
              return;
            }
            settled = true;
            clearTimeout(timer);
            this.#listen(session, onBound !== null);
            onBound?.(session);
            resolve(session);
          },
        );
      });
    });
  }

  /** Answers what the SMSC sends on its own; only the link passes deliver_sm on. */
  #listen(session: Session, isLink: boolean) {
    session.on('enquire_link', (pdu: PDU) => session.send(pdu.response()));
    session.on('unbind', (pdu: PDU) => {
      session.send(pdu.response());
      session.close();
    });
    session.on('unknown', (pdu: PDU) => session.send(pdu.response()));
    session.on('deliver_sm', (pdu: PDU) => {
      if (isLink) this.#onDeliver(session, pdu);
      else session.send(pdu.response({ command_status: E.ESME_RX_T_APPN }));
    });
  }

  #connect(): Promise<Session> {
    if (this.#connecting) return this.#connecting;
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    const attempt = this.#open((session) => {
      if (this.#closed) {
        void unbindAndClose(session, this.#options.responseTimeoutMs);
        return;
      }
      this.#session = session;
      this.#backoffMs = this.#options.reconnectMinMs;
      this.#enquireTimer = setInterval(() => this.#enquire(session), this.#options.enquireLinkMs);
    });
    this.#connecting = attempt.then(
      (session) => {
        this.#connecting = null;
        return session;
      },
      (error) => {
        this.#connecting = null;
        const wait = this.#backoffMs;
        this.#backoffMs = Math.min(this.#options.reconnectMaxMs, wait * 2);
        this.#scheduleReconnect(wait);
        throw error;
      },
    );
    return this.#connecting;
  }

  #scheduleReconnect(wait: number) {
    if (this.#closed || this.#reconnectTimer) return;
    this.#retryAt = Date.now() + wait;
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      this.#connect().catch(() => {});
    }, wait);
  }

  /** The bound link, connecting if needed; a reconnection due soon is waited for, a later one is not. */
  async #bound(): Promise<Session> {
    for (;;) {
      if (this.#closed)
        throw new SmsSendError('the SMPP provider was closed', { retryable: true, code: 'closed' });
      if (this.#session) return this.#session;
      if (this.#reconnectTimer && !this.#connecting) {
        const wait = Math.max(0, this.#retryAt - Date.now());
        if (wait > this.#options.responseTimeoutMs)
          throw new SmsSendError(`the SMPP link is down; the next bind attempt is in ${wait} ms`, {
            retryable: true,
            retryAfterMs: wait,
            code: 'link_down',
          });
        await delay(wait + 1);
        continue;
      }
      try {
        return await this.#connect();
      } catch (error) {
        throw linkSendError(error);
      }
    }
  }

  #enquire(session: Session) {
    // No answer in time means the link is dead even if TCP has not noticed: cut it and bind again.
    const timer = setTimeout(() => session.destroy(), this.#options.responseTimeoutMs);
    if (!session.enquire_link({}, () => clearTimeout(timer))) clearTimeout(timer);
  }

  /** The link went down: what waited on it fails as retryable, and binding starts again. */
  #lost(session: Session) {
    if (this.#session !== session) return;
    this.#detach(
      new SmsSendError(
        'the SMPP connection was lost before the SMSC answered; the message may or may not have been taken',
        { retryable: true, code: 'connection_lost', maybeTaken: true },
      ),
    );
    this.#scheduleReconnect(this.#backoffMs);
  }

  #detach(error: SmsSendError) {
    this.#session = null;
    if (this.#enquireTimer) clearInterval(this.#enquireTimer);
    this.#enquireTimer = null;
    for (const pending of [...this.#pending]) pending.fail(error);
    // Parts not yet acknowledged are delivered again by the SMSC on the next bind.
    for (const [key, buffer] of this.#parts) {
      clearTimeout(buffer.timer);
      this.#parts.delete(key);
    }
  }

  #acquireSlot(): Promise<void> {
    if (this.#inFlight < this.#options.window) {
      this.#inFlight++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => this.#slotWaiters.push({ resolve, reject }));
  }

  #releaseSlot() {
    // The slot passes straight to the next waiting send, so the count stays.
    const next = this.#slotWaiters.shift();
    if (next) next.resolve();
    else this.#inFlight--;
  }

  #submit(session: Session, message: OutgoingSms): Promise<SubmitResult> {
    const source = address(message.from || this.#credentials.source_addr);
    const destination = address(message.to);
    const body = message.body;
    const params: Record<string, unknown> = {
      source_addr_ton: source.ton,
      source_addr_npi: source.npi,
      source_addr: source.addr,
      dest_addr_ton: destination.ton,
      dest_addr_npi: destination.npi,
      destination_addr: destination.addr,
      // A final receipt, whether delivered or not.
      registered_delivery: 0x01,
      // 0: the SMSC's default alphabet, GSM 03.38; 8: UCS-2.
      data_coding: message.encoding === 'ucs2' ? 0x08 : 0x00,
      ...(fitsOnePart(body, message.encoding) ? { short_message: body } : { message_payload: body }),
    };
    const timeoutMs = this.#options.responseTimeoutMs;
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = () => {
        done = true;
        clearTimeout(timer);
        this.#pending.delete(pending);
      };
      const pending: PendingSubmit = {
        fail: (error) => {
          if (done) return;
          finish();
          reject(error);
        },
      };
      const timer = setTimeout(
        () =>
          pending.fail(
            new SmsSendError(`the SMSC did not answer the submit within ${timeoutMs} ms`, {
              retryable: true,
              code: 'timeout',
              maybeTaken: true,
            }),
          ),
        timeoutMs,
      );
      this.#pending.add(pending);
      let written: boolean;
      try {
        written = session.submit_sm(params, (pdu) => {
          if (done) return;
          finish();
          if (pdu.command_status === E.ESME_ROK && pdu.message_id)
            resolve({ providerId: String(pdu.message_id), status: 'sending' });
          else reject(this.#refusal(pdu.command_status));
        });
      } catch (error) {
        pending.fail(
          new SmsSendError(`the message could not be encoded for SMPP: ${(error as Error).message}`, {
            retryable: false,
            code: 'encoding',
          }),
        );
        return;
      }
      if (!written)
        pending.fail(
          new SmsSendError('the SMPP connection is closing', { retryable: true, code: 'connection_lost' }),
        );
    });
  }

  #refusal(status: number): SmsSendError {
    const code = statusCode(status);
    const name = statusName(status);
    if (status === E.ESME_ROK)
      return new SmsSendError('the SMSC accepted the submit without a message_id', {
        retryable: false,
        code,
      });
    if (THROTTLED.has(status))
      return new SmsSendError(`the SMSC throttled the submit (${name})`, {
        retryable: true,
        retryAfterMs: this.#options.throttleRetryMs,
        code,
      });
    if (TRANSIENT.has(status))
      return new SmsSendError(`the SMSC could not take the submit now (${name})`, { retryable: true, code });
    return new SmsSendError(`the SMSC refused the message (${name})`, { retryable: false, code });
  }

  #onDeliver(session: Session, pdu: PDU) {
    const ack = (status = E.ESME_ROK) =>
      session.send(pdu.response(status === E.ESME_ROK ? {} : { command_status: status }));
    const { text, udh } = messageOf(pdu);
    const type = (pdu.esm_class ?? 0) & MESSAGE_TYPE_MASK;
    const isReceipt =
      type === ESM_CLASS.MC_DELIVERY_RECEIPT ||
      type === ESM_CLASS.INTERMEDIATE_DELIVERY ||
      (typeof pdu.receipted_message_id === 'string' && pdu.receipted_message_id !== '');
    if (isReceipt) {
      const providerId = pdu.receipted_message_id || /\bid:\s*(\S+)/i.exec(text)?.[1];
      const status = receiptStatus(pdu, text);
      // A receipt that names no message or no state can never be matched: a permanent error stops resends.
      if (!providerId || !status) return ack(E.ESME_RX_P_APPN);
      const errorCode = receiptError(pdu, text);
      this.#dispatch(
        { type: 'receipt', providerId, status, ...(errorCode ? { errorCode } : {}), at: this.#now() },
        [ack],
      );
      return;
    }
    const event: Extract<SmsProviderEvent, { type: 'inbound' }> = {
      type: 'inbound',
      from: addressText(pdu.source_addr_ton, String(pdu.source_addr ?? '')),
      to: addressText(pdu.dest_addr_ton, String(pdu.destination_addr ?? '')),
      body: text,
      at: this.#now(),
    };
    if (!event.from) return ack(E.ESME_RX_P_APPN);
    const part = partOf(pdu, udh);
    if (part) this.#collect(session, event, part, text, ack);
    else this.#dispatch(event, [ack]);
  }

  /** Holds the parts of a concatenated message, unacknowledged, until all have come (or time is up). */
  #collect(
    session: Session,
    event: Extract<SmsProviderEvent, { type: 'inbound' }>,
    part: PartInfo,
    text: string,
    ack: (status?: number) => void,
  ) {
    const key = `${event.from}|${event.to}|${part.ref}|${part.total}`;
    let buffer = this.#parts.get(key);
    if (!buffer) {
      buffer = {
        session,
        event,
        total: part.total,
        texts: new Map(),
        acks: [],
        timer: setTimeout(() => this.#flushParts(key), this.#options.partsTimeoutMs),
      };
      this.#parts.set(key, buffer);
    }
    buffer.texts.set(part.seq, text);
    buffer.acks.push(ack);
    if (buffer.texts.size === buffer.total) this.#flushParts(key);
  }

  #flushParts(key: string) {
    const buffer = this.#parts.get(key);
    if (!buffer) return;
    this.#parts.delete(key);
    clearTimeout(buffer.timer);
    const parts: string[] = [];
    for (let seq = 1; seq <= buffer.total; seq++) parts.push(buffer.texts.get(seq) ?? '');
    this.#dispatch({ ...buffer.event, body: parts.join('') }, buffer.acks);
  }

  /** Hands an event to the subscriber; the SMSC hears back only once the subscriber is done with it. */
  #dispatch(event: SmsProviderEvent, acks: ((status?: number) => void)[]) {
    const handler = this.#handler;
    const answer = (status?: number) => {
      for (const ack of acks) ack(status);
    };
    if (!handler) return answer(E.ESME_RX_T_APPN);
    Promise.resolve()
      .then(() => handler(event))
      .then(
        () => answer(),
        () => answer(E.ESME_RX_T_APPN),
      );
  }
}

export function smppProvider(credentials: SmppCredentials, options: SmppOptions = {}): SmsProvider {
  return new SmppProvider(credentials, options);
}
