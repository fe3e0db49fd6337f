// One interface for every SMS gateway: SMS Gateway for Android, Twilio and an SMPP 3.4 link.
// The sms module queues, throttles and records; an adapter only submits and translates what the
// gateway reports (receipts, received messages) into the events below.

export type SmsProviderName = 'android-sms-gateway' | 'twilio' | 'smpp';

export interface SmsCapabilities {
  /** The gateway reports delivery (DLR) for what it accepted. */
  receipts: boolean;
  /** The gateway passes on messages sent to our numbers. */
  inbound: boolean;
  /** The most concatenated parts one message may have on this gateway. */
  maxParts: number;
  /** How many submits may be outstanding at once (the SMPP window; 1 for one-at-a-time HTTP). */
  window: number;
  /**
   * The gateway takes our message id as its idempotency key: a submit sent again after a crash or an
   * unknown outcome is not delivered twice. Where it is false such a message is failed, not resent.
   */
  idempotentSubmit: boolean;
}

export interface OutgoingSms {
  /** Our message id: the gateway's idempotency key where it has one, and its client reference. */
  id: string;
  /** E.164. */
  to: string;
  /** A sender id or E.164 number; the account's default when absent. */
  from?: string;
  body: string;
  /** GSM-7 or UCS-2, as measured by the sms module; an adapter picks its data coding from it. */
  encoding: 'gsm7' | 'ucs2';
}

export interface SubmitResult {
  /** The gateway's id for the message, which its receipts name. */
  providerId: string;
  /** `sent` when the gateway has handed it on already; `sending` when only accepted. */
  status: 'sending' | 'sent';
  price?: { amount: string; currency: string };
}

/** What a gateway reports after a submit, or about messages sent to our numbers. */
export type SmsProviderEvent =
  | {
      type: 'receipt';
      providerId: string;
      status: 'sent' | 'delivered' | 'failed' | 'undelivered';
      errorCode?: string;
      price?: { amount: string; currency: string };
      at: Date;
    }
  | {
      type: 'inbound';
      providerId?: string;
      /** E.164 of the sender. */
      from: string;
      /** Our number or sender id that received it. */
      to: string;
      body: string;
      at: Date;
    };

/** A webhook call as the HTTP layer received it, for signature checks over the exact bytes. */
export interface SmsWebhookRequest {
  /** The full public URL the gateway called (Twilio signs it). */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  rawBody: Buffer;
}

export interface SmsProvider {
  readonly name: SmsProviderName;
  readonly capabilities: SmsCapabilities;
  /** Checks the credentials against the gateway (a cheap authenticated call, or a bind). */
  verify(): Promise<void>;
  /** Submits one message. Throws SmsSendError; never resolves without a provider id. */
  send(message: OutgoingSms): Promise<SubmitResult>;
  /**
   * Verifies a webhook's signature and returns what it reports; throws SmsWebhookRejected on a forged
   * or malformed call. Absent for gateways that report over their own connection (SMPP).
   */
  parseWebhook?(request: SmsWebhookRequest): SmsProviderEvent[];
  /**
   * Subscribes to what the gateway reports over its own connection (SMPP `deliver_sm`). The promise
   * the handler returns is awaited before the gateway is acknowledged, so nothing reported is lost.
   */
  onEvent?(handler: (event: SmsProviderEvent) => Promise<void>): void;
  /** Closes connections (SMPP unbind). */
  close(): Promise<void>;
}

/** A submit the gateway refused or could not take. */
export class SmsSendError extends Error {
  // A declared field rather than a constructor parameter property: Node's type stripping refuses those.
  readonly options: {
    /** Worth trying again later (429, 503, throttled, connection lost). */
    retryable: boolean;
    /** The gateway's `Retry-After`, when it named one. */
    retryAfterMs?: number;
    /** The gateway's own error code (Twilio's 21211, SMPP's command_status). */
    code?: string;
    /**
     * The request may have reached the gateway before it failed (a timeout, a connection lost after it
     * was written): sending it again could send it twice, unless the gateway dedupes by our id.
     */
    maybeTaken?: boolean;
  };

  constructor(message: string, options: SmsSendError['options']) {
    super(message);
    this.name = 'SmsSendError';
    this.options = options;
  }
}

/** A webhook whose signature or content did not check out. */
export class SmsWebhookRejected extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SmsWebhookRejected';
  }
}
