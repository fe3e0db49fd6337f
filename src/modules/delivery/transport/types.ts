// What the transport is given and what it reports: shared by the transport, its sessions and the
// code that reads SMTP replies, so that none of them imports another for its types.

export interface OutboundEnvelope {
  domain: string;
  mailFrom: string;
  recipients: string[];
  raw: Buffer;
}
export type RecipientOutcome = 'delivered' | 'deferred' | 'bounced';
export interface RecipientResult {
  address: string;
  outcome: RecipientOutcome;
  code: number | null;
  enhanced: string | null;
  response: string;
}
export interface AttemptResult {
  recipients: RecipientResult[]; // one per envelope recipient, same order
  mx: string | null; // MX host name used (null when none was reached)
  ip: string | null;
  port: number;
  tls: { version: string; cipher: string; authorized: boolean } | null;
  mtaSts: 'enforce' | 'testing' | 'none';
  startedAt: Date;
  durationMs: number;
  /** Set when the transport shut down before the message was started: no attempt was made. */
  notAttempted?: true;
}
