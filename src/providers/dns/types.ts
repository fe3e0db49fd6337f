// A DNS provider: where an organisation's zones are hosted, so Mailroom can publish the records a
// domain needs. Names are fully qualified, lower case, without the trailing dot. TXT content is the
// logical value (unquoted, unsplit): each adapter writes it in its provider's split form and reads
// it back joined, so comparing values never depends on how a provider stores long strings.

export type DnsRecordType = 'TXT' | 'MX' | 'CNAME';

export interface DnsRecordSpec {
  type: DnsRecordType;
  name: string;
  /** TXT: the value; MX: the exchange host; CNAME: the target host. */
  content: string;
  ttl: number;
  /** MX preference. */
  priority?: number;
}

export interface ProviderRecord extends DnsRecordSpec {
  id: string;
  /** The provider's free-text note on the record; Mailroom marks the records it manages here. */
  comment: string | null;
}

export interface DnsZone {
  id: string;
  name: string;
}

export interface DnsProvider {
  readonly kind: string;
  /** Checks the credentials; throws ProviderError('provider_auth_failed') when refused. */
  verify(): Promise<void>;
  /** The zone that holds `domain` (the longest zone name that is the domain or a parent of it). */
  findZone(domain: string): Promise<DnsZone>;
  /**
   * The zone named exactly `domain`, created when the account has none, with the name servers the
   * provider serves it from (what the domain's registrar must point to).
   */
  ensureZone(domain: string): Promise<{ zone: DnsZone; nameservers: string[]; created: boolean }>;
  /** Records at exactly `name` of `type`. */
  listRecords(zone: DnsZone, name: string, type: DnsRecordType): Promise<ProviderRecord[]>;
  createRecord(zone: DnsZone, record: DnsRecordSpec, comment: string): Promise<ProviderRecord>;
  updateRecord(zone: DnsZone, id: string, record: DnsRecordSpec, comment: string): Promise<ProviderRecord>;
  deleteRecord(zone: DnsZone, id: string): Promise<void>;
}
