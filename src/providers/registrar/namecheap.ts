// Namecheap's XML API (namecheap.com/support/api). Every command is one request to a single endpoint;
// Namecheap answers HTTP 200 even when it refuses, with Status="ERROR" and numbered <Error>s, and
// signals throttling either with error 500000 "Too many requests" or with HTTP 405.
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { getPublicSuffix } from 'tldts';
import { ProviderError } from '../errors.ts';
import type {
  DomainAvailability,
  RegistrantContact,
  Registrar,
  Registration,
  RegistrationRequest,
} from './types.ts';

export interface NamecheapCredentials {
  api_user: string;
  api_key: string;
  /** The account the commands act on; Namecheap's UserName, usually the same as api_user. */
  username?: string;
  /** The whitelisted IPv4 address Mailroom calls from (Namecheap's ClientIp). */
  client_ip: string;
}

export interface NamecheapOptions {
  apiUrl?: string;
  timeoutMs?: number;
}

const DEFAULT_API_URL = 'https://api.namecheap.com/xml.response';
// domains.create can take half a minute at Namecheap; a shorter limit would abandon real registrations.
const DEFAULT_TIMEOUT_MS = 60_000;
/** Namecheap refuses more names than this in one namecheap.domains.check (error 2011169). */
const CHECK_BATCH_SIZE = 50;

/** Global error numbers that mean the credentials, the account or the calling IP were refused. */
const AUTH_ERRORS = new Set([
  '1010101', // ApiUser missing
  '1010102', // ApiKey missing
  '1011102', // API key invalid or API access not enabled
  '1010105', // ClientIp missing
  '1011105', // ClientIp invalid
  '1011150', // request IP not whitelisted
  '1017150', // request IP disabled or locked
  '1017105', // ClientIp disabled or locked
  '1017101', // ApiUser disabled or locked
  '1017411', // too many login attempts
  '1019103', // UserName not available
  '1016103', // UserName unauthorized
  '1017103', // UserName disabled or locked
  '1030408', // unsupported authentication type
  '1050900', // unknown error validating ApiUser
]);
const THROTTLE_ERROR = '500000';

const CONTACT_ROLES = ['Registrant', 'Tech', 'Admin', 'AuxBilling'] as const;

// Elements that repeat; the parser would otherwise give a lone one as an object, not a list.
const REPEATED_ELEMENTS = new Set([
  'Error',
  'DomainCheckResult',
  'ProductType',
  'ProductCategory',
  'Product',
  'Price',
]);

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  removeNSPrefix: true,
  // Prices and ids stay strings: "10.90" must not become 10.9.
  parseTagValue: false,
  parseAttributeValue: false,
  isArray: (name) => REPEATED_ELEMENTS.has(name),
});

type XmlElement = Record<string, any>;

interface ApiError {
  number: string;
  text: string;
}

function list(value: unknown): XmlElement[] {
  if (Array.isArray(value)) return value;
  return value && typeof value === 'object' ? [value as XmlElement] : [];
}

/** A check result's per-name error number; "0" when Namecheap could answer for the name. */
function checkErrorNumber(result: XmlElement): string {
  return String(result['@_ErrorNo'] ?? '0');
}

function isTrue(value: unknown): boolean {
  return typeof value === 'string' && value.toLowerCase() === 'true';
}

function chunks<T>(items: T[], size: number): T[][] {
  const result: T[][] = [];
  for (let i = 0; i < items.length; i += size) result.push(items.slice(i, i + size));
  return result;
}

/** `example.co.uk` → SLD `example`, TLD `co.uk`, as Namecheap's DNS commands take them. */
function splitDomain(name: string): { sld: string; tld: string } {
  const tld = getPublicSuffix(name);
  const sld = tld && name.endsWith(`.${tld}`) ? name.slice(0, -(tld.length + 1)) : '';
  if (!sld || sld.includes('.')) {
    throw new ProviderError('provider_rejected', `${name} is not a registrable domain name`);
  }
  return { sld, tld: tld! };
}

function contactParams(contact: RegistrantContact): Record<string, string> {
  const fields: Record<string, string | undefined> = {
    FirstName: contact.first_name,
    LastName: contact.last_name,
    OrganizationName: contact.organization,
    Address1: contact.address1,
    Address2: contact.address2,
    City: contact.city,
    StateProvince: contact.state_province,
    PostalCode: contact.postal_code,
    Country: contact.country,
    Phone: contact.phone,
    EmailAddress: contact.email,
  };
  const params: Record<string, string> = {};
  for (const role of CONTACT_ROLES) {
    for (const [field, value] of Object.entries(fields)) {
      if (value !== undefined && value !== '') params[`${role}${field}`] = value;
    }
  }
  return params;
}

/** The one-year price of a getPricing answer's product named `tld`, with its currency. */
function oneYearPrice(result: XmlElement, tld: string): { price: string; currency: string | null } | null {
  for (const type of list(result?.ProductType)) {
    for (const category of list(type.ProductCategory)) {
      for (const product of list(category.Product)) {
        if (String(product['@_Name'] ?? '').toLowerCase() !== tld) continue;
        const price = list(product.Price).find(
          (p) => p['@_Duration'] === '1' && String(p['@_DurationType'] ?? '').toUpperCase() === 'YEAR',
        );
        // Price is Namecheap's final price for this account (regular, tier or promotional).
        const amount = price?.['@_Price'] || price?.['@_YourPrice'];
        if (amount) return { price: amount, currency: price['@_Currency'] || null };
      }
    }
  }
  return null;
}

export function namecheapRegistrar(
  credentials: NamecheapCredentials,
  options: NamecheapOptions = {},
): Registrar {
  const apiUrl = options.apiUrl ?? DEFAULT_API_URL;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const globalParams = {
    ApiUser: credentials.api_user,
    ApiKey: credentials.api_key,
    UserName: credentials.username || credentials.api_user,
    ClientIp: credentials.client_ip,
  };

  /** Provider text may echo request values; the key must never reach a message. */
  const redact = (text: string) =>
    credentials.api_key ? text.replaceAll(credentials.api_key, '[redacted]') : text;

  function refusal(errors: ApiError[]): ProviderError {
    const described = errors.map((e) =>
      e.number
        ? `${redact(e.text) || 'no reason given'} (error ${e.number})`
        : redact(e.text) || 'no reason given',
    );
    const message = `Namecheap refused: ${described.join('; ') || 'no reason given'}`;
    if (errors.some((e) => AUTH_ERRORS.has(e.number))) {
      return new ProviderError('provider_auth_failed', message);
    }
    if (errors.some((e) => e.number === THROTTLE_ERROR || /too many requests/i.test(e.text))) {
      return new ProviderError('provider_rate_limited', message);
    }
    return new ProviderError('provider_rejected', message);
  }

  /**
   * Runs one command and returns its <CommandResponse>. Everything goes as a POST form so the key
   * stays out of URLs (and so out of proxy and access logs); Namecheap accepts POST for every command.
   */
  async function call(command: string, params: Record<string, string>): Promise<XmlElement> {
    const body = new URLSearchParams({ ...globalParams, Command: command, ...params });
    let status: number;
    let text: string;
    try {
      const response = await fetch(apiUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/xml' },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      status = response.status;
      text = await response.text();
    } catch (err) {
      const error = err as Error & { cause?: { code?: string; message?: string } };
      if (error.name === 'TimeoutError' || error.name === 'AbortError') {
        // A registration that timed out may still complete at Namecheap; say so rather than invite a retry.
        const maybeDone =
          command === 'namecheap.domains.create'
            ? '; the registration may still have gone through, check the Namecheap account before retrying'
            : '';
        throw new ProviderError(
          'provider_unavailable',
          `Namecheap did not answer within ${timeoutMs / 1000}s${maybeDone}`,
        );
      }
      const reason = error.cause?.code ?? error.cause?.message ?? error.message;
      throw new ProviderError('provider_unavailable', `Namecheap could not be reached: ${redact(reason)}`);
    }

    if (status === 405) {
      throw new ProviderError('provider_rate_limited', 'Namecheap asked to slow down (HTTP 405)');
    }
    if (status !== 200) throw new ProviderError('provider_unavailable', `Namecheap answered HTTP ${status}`);
    if (XMLValidator.validate(text) !== true) {
      throw new ProviderError('provider_unavailable', 'Namecheap answered with something that is not XML');
    }
    const root: XmlElement | undefined = parser.parse(text)?.ApiResponse;
    if (!root || typeof root !== 'object') {
      throw new ProviderError('provider_unavailable', 'Namecheap answered without an ApiResponse');
    }
    // An <Error> without attributes parses to its bare text.
    const rawErrors: unknown = root.Errors?.Error;
    const errors = (Array.isArray(rawErrors) ? rawErrors : []).map((e: XmlElement | string) =>
      typeof e === 'string'
        ? { number: '', text: e.trim() }
        : { number: String(e['@_Number'] ?? ''), text: String(e['#text'] ?? '').trim() },
    );
    if (errors.length || String(root['@_Status']).toUpperCase() !== 'OK') throw refusal(errors);
    if (!root.CommandResponse || typeof root.CommandResponse !== 'object') {
      throw new ProviderError('provider_unavailable', `Namecheap answered ${command} without a result`);
    }
    return root.CommandResponse;
  }

  /** One-year registration prices by TLD; a TLD Namecheap will not price is left out. */
  async function registrationPrices(tlds: string[]) {
    const prices = new Map<string, { price: string; currency: string | null }>();
    for (const tld of tlds) {
      try {
        const response = await call('namecheap.users.getPricing', {
          ProductType: 'DOMAIN',
          ActionName: 'REGISTER',
          ProductName: tld,
        });
        const price = oneYearPrice(response.UserGetPricingResult, tld);
        if (price) prices.set(tld, price);
      } catch (err) {
        // A price is a courtesy in an availability answer; a refused lookup leaves it unknown.
        if (!(err instanceof ProviderError && err.code === 'provider_rejected')) throw err;
      }
    }
    return prices;
  }

  return {
    kind: 'namecheap',

    async verify() {
      const response = await call('namecheap.users.getBalances', {});
      if (!response.UserGetBalancesResult) {
        throw new ProviderError('provider_unavailable', 'Namecheap answered getBalances without balances');
      }
    },

    async check(names) {
      const results = new Map<string, XmlElement>();
      for (const batch of chunks([...new Set(names)], CHECK_BATCH_SIZE)) {
        const response = await call('namecheap.domains.check', { DomainList: batch.join(',') });
        for (const result of list(response.DomainCheckResult)) {
          results.set(String(result['@_Domain'] ?? '').toLowerCase(), result);
        }
      }

      const needPrice = names.filter((name) => {
        const r = results.get(name.toLowerCase());
        return r && checkErrorNumber(r) === '0' && isTrue(r['@_Available']) && !isTrue(r['@_IsPremiumName']);
      });
      const tlds = [...new Set(needPrice.map((name) => getPublicSuffix(name.toLowerCase()) ?? ''))].filter(
        Boolean,
      );
      const prices = await registrationPrices(tlds);

      return names.map((name): DomainAvailability => {
        const result = results.get(name.toLowerCase());
        const unknown = { name, available: false, premium: false, price: null, currency: null };
        if (!result) return { ...unknown, error: 'Namecheap did not answer for this name' };
        const errorNo = checkErrorNumber(result);
        if (errorNo !== '0') {
          const description = String(result['@_Description'] ?? '').trim();
          return {
            ...unknown,
            error: `${description || 'Namecheap could not check this name'} (error ${errorNo})`,
          };
        }
        const available = isTrue(result['@_Available']);
        const premium = isTrue(result['@_IsPremiumName']);
        if (!available) return { ...unknown, premium, error: null };
        if (premium) {
          // Premium prices come with the check itself and are in US dollars.
          const price = result['@_PremiumRegistrationPrice'] || null;
          return { name, available, premium, price, currency: price ? 'USD' : null, error: null };
        }
        const price = prices.get(getPublicSuffix(name.toLowerCase()) ?? '');
        return {
          name,
          available,
          premium,
          price: price?.price ?? null,
          currency: price?.currency ?? null,
          error: null,
        };
      });
    },

    async register(request: RegistrationRequest): Promise<Registration> {
      const params: Record<string, string> = {
        DomainName: request.name,
        Years: String(request.years),
        ...contactParams(request.contact),
      };
      if (request.nameservers?.length) params.Nameservers = request.nameservers.join(',');
      const response = await call('namecheap.domains.create', params);
      const result = list(response.DomainCreateResult)[0];
      if (!result || !isTrue(result['@_Registered'])) {
        throw new ProviderError('provider_rejected', `Namecheap did not register ${request.name}`);
      }
      return {
        name: String(result['@_Domain'] || request.name).toLowerCase(),
        registered: true,
        domain_id: String(result['@_DomainID'] ?? ''),
        order_id: String(result['@_OrderID'] ?? ''),
        transaction_id: String(result['@_TransactionID'] ?? ''),
        charged_amount: String(result['@_ChargedAmount'] ?? ''),
      };
    },

    async setNameservers(name, nameservers) {
      const { sld, tld } = splitDomain(name);
      const response = await call('namecheap.domains.dns.setCustom', {
        SLD: sld,
        TLD: tld,
        Nameservers: nameservers.join(','),
      });
      const result = list(response.DomainDNSSetCustomResult)[0];
      if (!result || !isTrue(result['@_Updated'])) {
        throw new ProviderError('provider_rejected', `Namecheap did not update the name servers of ${name}`);
      }
    },
  };
}
