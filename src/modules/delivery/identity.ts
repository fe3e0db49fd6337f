// Who is sending: the principal behind an outbound message, whose rights decide which sender addresses
// it may use (see OutboundService.checkSender).
export type SenderIdentity =
  /** The HTTP API (a user or an API key of the organisation): any address on its proven domains. */
  | { kind: 'api'; organizationId: string }
  /** A hosted mailbox logged in to submission: its own address and the aliases that point to it. */
  | { kind: 'mailbox'; organizationId: string; mailboxId: string; address: string }
  /** An organisation's SMTP credential: any address on its domain, or on every domain when unscoped. */
  | { kind: 'credential'; organizationId: string; credentialId: string; domainId: string | null };

/** A refusal in SMTP terms (the HTTP API maps it to 422). */
export interface SendRefusal {
  ok: false;
  code: number;
  /** Enhanced status code and text, e.g. `5.7.1 Sender address not allowed`. */
  message: string;
}
