// A spam filter behind one interface: a raw message and its SMTP envelope in, the engine's verdict out.
// Inbound mail asks it when the operator runs one (rspamd); Mailroom's own checks do not depend on it.

/** What the SMTP session knew about the message; every field is optional and sent only when set. */
export interface SpamEnvelope {
  /** The connecting client's IP address. */
  ip?: string;
  /** The client's HELO/EHLO name. */
  helo?: string;
  /** The client's verified reverse DNS name; without it the engine looks the IP up itself. */
  hostname?: string;
  /** MAIL FROM; null for the empty reverse-path (`<>`, bounces). */
  from?: string | null;
  /** RCPT TO, one per recipient. */
  recipients?: string[];
  /** The authenticated submitter, if any (engines skip inbound-only checks for them). */
  user?: string;
  /** Our id for the message, for the engine's logs. */
  queueId?: string;
}

export interface SpamSymbol {
  name: string;
  /** What the symbol added to the score (negative for ham signs). */
  score: number;
  description?: string;
  options?: string[];
}

export interface SpamCheck {
  score: number;
  /** The score at which the engine would reject. */
  requiredScore: number;
  /** 'no action' | 'greylist' | 'add header' | 'rewrite subject' | 'soft reject' | 'reject', or an action the operator configured. */
  action: string;
  /** The action marks the message as spam (add header, rewrite subject, reject, or a custom one), not ham or a deferral. */
  isSpam: boolean;
  symbols: SpamSymbol[];
  /** The Message-ID the engine read, if the message had one. */
  messageId?: string;
}

export interface SpamEngine {
  /**
   * The engine's verdict on one message; throws SpamEngineError when there is none. An abort through
   * `signal` rejects with the signal's reason.
   */
  check(raw: Buffer, envelope: SpamEnvelope, options?: { signal?: AbortSignal }): Promise<SpamCheck>;
}

export type SpamEngineErrorCode =
  /** Not reachable, the connection dropped, or it answered with a server error. */
  | 'spam_engine_unavailable'
  /** No complete answer within the timeout. */
  | 'spam_engine_timeout'
  /** Answered with something that is not a verdict (not HTTP, not JSON, wrong shape, too large). */
  | 'spam_engine_malformed'
  /** Refused the request (4xx: wrong password, bad request), or the envelope cannot be sent as given. */
  | 'spam_engine_rejected';

export class SpamEngineError extends Error {
  readonly code: SpamEngineErrorCode;
  /** The HTTP status, when the engine answered with one. */
  readonly status: number | null;

  constructor(code: SpamEngineErrorCode, message: string, status: number | null = null) {
    super(message);
    this.name = 'SpamEngineError';
    this.code = code;
    this.status = status;
  }
}
