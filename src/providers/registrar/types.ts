// A registrar: where an organisation searches for and buys domain names, and points them at name
// servers. Names are lower case, punycode, without the trailing dot.

export interface DomainAvailability {
  name: string;
  available: boolean;
  premium: boolean;
  /** The price of one year's registration, when the registrar tells it (decimal string). */
  price: string | null;
  currency: string | null;
  /** Why the registrar could not answer for this name, if it could not. */
  error: string | null;
}

export interface RegistrantContact {
  first_name: string;
  last_name: string;
  organization?: string;
  address1: string;
  address2?: string;
  city: string;
  state_province: string;
  postal_code: string;
  /** ISO 3166-1 alpha-2. */
  country: string;
  /** `+<country code>.<number>`, e.g. `+1.6135550123`. */
  phone: string;
  email: string;
}

export interface RegistrationRequest {
  name: string;
  years: number;
  contact: RegistrantContact;
  /** Custom name servers; the registrar's defaults when absent. */
  nameservers?: string[];
}

export interface Registration {
  name: string;
  registered: boolean;
  /** The registrar's identifiers, kept for support and reconciliation. */
  domain_id: string;
  order_id: string;
  transaction_id: string;
  charged_amount: string;
}

export interface Registrar {
  readonly kind: string;
  /** Checks the credentials; throws ProviderError('provider_auth_failed') when refused. */
  verify(): Promise<void>;
  check(names: string[]): Promise<DomainAvailability[]>;
  register(request: RegistrationRequest): Promise<Registration>;
  setNameservers(name: string, nameservers: string[]): Promise<void>;
}
