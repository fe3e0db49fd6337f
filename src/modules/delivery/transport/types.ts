// What the transport is given and what it reports: shared by the transport, its sessions and the
// code that reads SMTP replies, so that none of them imports another for its types.

export interface OutboundEnvelope {
  domain: string;
  mailFrom: string;
  recipients: string[];
  raw: Buffer;
  /**
   * The local addresses the message may leave from (MAILROOM_OUTBOUND_IPS, chosen by the IP pools);
   * absent or null: the system picks, as when no sending IPs are configured.
   */
  source?: MessageSource | null;
}
/**
 * The local addresses a message may leave from, per family, the preferred one first (its capacity is
 * already taken): an IPv4 MX address is reached from an IPv4 one, an IPv6 one from an IPv6 one; an MX
 * address whose family has none is not used.
 */
export interface MessageSource {
  ipv4: readonly string[];
  ipv6: readonly string[];
  /** Takes the address's capacity (warmup caps) for this message; false when it has none left today. */
  take(ip: string): Promise<boolean>;
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
  /** The local address the connection was bound to (null or absent: the system chose, or none was reached). */
  localAddress?: string | null;
  port: number;
  tls: { version: string; cipher: string; authorized: boolean } | null;
  mtaSts: 'enforce' | 'testing' | 'none';
  startedAt: Date;
  durationMs: number;
  /** Set when the transport shut down before the message was started: no attempt was made. */
  notAttempted?: true;
}
