// A local stand-in for Namecheap's XML API (namecheap.com/support/api) on loopback: the global
// parameters and their checks, namecheap.domains.check / create / dns.setCustom and
// namecheap.users.getPricing / getBalances, answered as Namecheap does (HTTP 200 and Status="ERROR"
// with numbered <Error>s). Error numbers are Namecheap's documented ones, except "Invalid Command"
// (1010900), which Namecheap does not document. Parameter names are case-insensitive, as there.
import http from 'node:http';
import { type AddressInfo, isIPv4 } from 'node:net';

export const CONTACT_ROLES = ['Registrant', 'Tech', 'Admin', 'AuxBilling'] as const;
export type ContactRole = (typeof CONTACT_ROLES)[number];

const REQUIRED_CONTACT_FIELDS = [
  'FirstName',
  'LastName',
  'Address1',
  'City',
  'StateProvince',
  'PostalCode',
  'Country',
  'Phone',
  'EmailAddress',
];
const OPTIONAL_CONTACT_FIELDS = ['Address2', 'OrganizationName', 'JobTitle', 'PhoneExt', 'Fax'];

/** Namecheap's BasicDNS, which a domain registered without name servers gets. */
const DEFAULT_NAMESERVERS = ['dns1.registrar-servers.com', 'dns2.registrar-servers.com'];

const DEFAULT_PRICES: Record<string, string> = {
  com: '10.98',
  net: '12.98',
  org: '9.98',
  io: '34.98',
  'co.uk': '8.98',
};

export interface NamecheapServerOptions {
  apiUser?: string;
  apiKey?: string;
  /** The account the API user may act on (Namecheap's UserName); apiUser by default. */
  username?: string;
  /** ClientIp values the account accepts. */
  whitelist?: string[];
  /** One-year registration prices by TLD, replacing the defaults. */
  prices?: Record<string, string>;
  balance?: string;
}

export interface NamecheapRegistration {
  name: string;
  years: number;
  /** Each role's contact fields as received, keyed without the role prefix (`FirstName`, `Phone`...). */
  contacts: Record<ContactRole, Record<string, string>>;
  nameservers: string[];
  domainId: string;
  orderId: string;
  transactionId: string;
  chargedAmount: string;
}

export interface NamecheapRequest {
  method: string;
  command: string;
  /** Every parameter as sent (names as sent), with the API key replaced by `[redacted]`. */
  params: Record<string, string>;
}

export interface NamecheapServer {
  /** `http://127.0.0.1:<port>/xml.response`. */
  apiUrl: string;
  apiUser: string;
  apiKey: string;
  username: string;
  /** A whitelisted ClientIp. */
  clientIp: string;
  whitelist: Set<string>;
  /** Names registered anywhere: check answers Available="false" and create refuses them. */
  taken: Set<string>;
  /** Premium names and their registration price (USD). */
  premium: Map<string, string>;
  /** One-year registration price by TLD; TLDs not here are unsupported. */
  prices: Map<string, string>;
  /** Registrations made through this account, in order. */
  registrations: NamecheapRegistration[];
  /** Name servers of the domains in this account. */
  nameservers: Map<string, string[]>;
  requests: NamecheapRequest[];
  /** The next `count` requests are throttled: Namecheap's error 500000, or its bare HTTP 405. */
  throttleNext(count: number, how?: 'error' | 'http405'): void;
  close(): Promise<void>;
}

class NamecheapFault extends Error {
  readonly number: number;

  constructor(number: number, message: string) {
    super(message);
    this.number = number;
  }
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

function element(name: string, attributes: Record<string, string | number | boolean>, children = ''): string {
  const attrs = Object.entries(attributes)
    .map(([key, value]) => ` ${key}="${escapeXml(String(value))}"`)
    .join('');
  return children ? `<${name}${attrs}>${children}</${name}>` : `<${name}${attrs} />`;
}

function envelope(command: string, result: { errors: NamecheapFault[] } | { body: string }): string {
  const ok = 'body' in result;
  const errors = ok
    ? '<Errors />'
    : `<Errors>${result.errors.map((e) => element('Error', { Number: e.number }, escapeXml(e.message))).join('')}</Errors>`;
  return (
    '<?xml version="1.0" encoding="utf-8"?>\n' +
    `<ApiResponse Status="${ok ? 'OK' : 'ERROR'}" xmlns="http://api.namecheap.com/xml.response">` +
    `${errors}<Warnings /><RequestedCommand>${escapeXml(command)}</RequestedCommand>` +
    (ok ? element('CommandResponse', { Type: command }, result.body) : '') +
    '<Server>MAILROOM-TEST</Server><GMTTimeDifference>--5:00</GMTTimeDifference>' +
    '<ExecutionTime>0.001</ExecutionTime></ApiResponse>'
  );
}

const HOSTNAME =
  /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const PHONE = /^\+\d{1,3}\.\d{4,14}$/;
const COUNTRY = /^[A-Za-z]{2}$/;
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

function toCents(amount: string): number {
  return Math.round(Number(amount) * 100);
}

function fromCents(cents: number): string {
  return (cents / 100).toFixed(2);
}

/** Request parameters, looked up case-insensitively. */
class Params {
  readonly byName = new Map<string, string>();

  constructor(all: URLSearchParams) {
    for (const [name, value] of all) this.byName.set(name.toLowerCase(), value);
  }

  get(name: string): string | undefined {
    const value = this.byName.get(name.toLowerCase());
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  }

  /** The parameter's value, or Namecheap's "missing" error naming it. */
  required(name: string, number = 2010323): string {
    const value = this.get(name);
    if (value === undefined) throw new NamecheapFault(number, `Parameter ${name} is missing`);
    return value;
  }
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 1_000_000) throw new NamecheapFault(2010323, 'Request is too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function startNamecheapServer(options: NamecheapServerOptions = {}): Promise<NamecheapServer> {
  const apiUser = options.apiUser ?? 'mailroom';
  const whitelist = new Set(options.whitelist ?? ['203.0.113.10']);
  let throttle = { remaining: 0, how: 'error' as 'error' | 'http405' };
  let lastId = 9000;
  const nextId = () => String(++lastId);

  const state: NamecheapServer = {
    apiUrl: '',
    apiUser,
    apiKey: options.apiKey ?? 'nc-test-key-5f0c2a9e41d84b7c',
    username: options.username ?? apiUser,
    clientIp: [...whitelist][0] ?? '',
    whitelist,
    taken: new Set(),
    premium: new Map(),
    prices: new Map(Object.entries(options.prices ?? DEFAULT_PRICES)),
    registrations: [],
    nameservers: new Map(),
    requests: [],
    throttleNext(count, how = 'error') {
      throttle = { remaining: count, how };
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const balance = options.balance ?? '4932.96';

  /** The longest supported TLD the name ends with. */
  function supportedTld(name: string): string | undefined {
    return [...state.prices.keys()]
      .filter((tld) => name.endsWith(`.${tld}`) && name.length > tld.length + 1)
      .sort((a, b) => b.length - a.length)[0];
  }

  function checkGlobals(params: Params) {
    const user = params.required('ApiUser', 1010101);
    const key = params.required('ApiKey', 1010102);
    const clientIp = params.required('ClientIp', 1010105);
    if (user !== state.apiUser || key !== state.apiKey) {
      throw new NamecheapFault(1011102, 'API Key is invalid or API access has not been enabled');
    }
    if (params.get('UserName') !== state.username) {
      throw new NamecheapFault(1019103, 'Parameter UserName is not available');
    }
    // Namecheap takes IPv4 only.
    if (!isIPv4(clientIp) || !state.whitelist.has(clientIp)) {
      throw new NamecheapFault(1011150, `Invalid request IP: ${clientIp}`);
    }
  }

  function nameserverList(value: string): string[] {
    const nameservers = value.split(',').map((ns) => ns.trim().toLowerCase());
    if (nameservers.some((ns) => !HOSTNAME.test(ns))) {
      throw new NamecheapFault(2011168, 'Nameservers are not valid');
    }
    return nameservers;
  }

  function domainsCheck(params: Params): string {
    const names = params
      .required('DomainList', 2011169)
      .split(',')
      .map((n) => n.trim())
      .filter(Boolean);
    if (names.length > 50) {
      throw new NamecheapFault(2011169, 'Only 50 domains are allowed in a single check command');
    }
    return names
      .map((domain) => {
        const name = domain.toLowerCase();
        const premiumPrice = state.premium.get(name);
        const answer = {
          Domain: domain,
          Available: false,
          ErrorNo: '0',
          Description: '',
          IsPremiumName: premiumPrice !== undefined,
          PremiumRegistrationPrice: premiumPrice ?? '0',
          PremiumRenewalPrice: premiumPrice ?? '0',
          PremiumRestorePrice: '0',
          PremiumTransferPrice: premiumPrice ?? '0',
          IcannFee: '0',
          EapFee: '0.0',
        };
        if (!HOSTNAME.test(name))
          return element('DomainCheckResult', {
            ...answer,
            ErrorNo: '2030166',
            Description: 'Domain is invalid',
          });
        if (!supportedTld(name)) {
          return element('DomainCheckResult', {
            ...answer,
            IsPremiumName: false,
            ErrorNo: '2030280',
            Description: 'TLD is not supported in API',
          });
        }
        return element('DomainCheckResult', { ...answer, Available: !state.taken.has(name) });
      })
      .join('');
  }

  function usersGetPricing(params: Params): string {
    if (params.required('ProductType').toUpperCase() !== 'DOMAIN') {
      throw new NamecheapFault(2010323, 'Parameter ProductType is invalid');
    }
    const action = params.get('ActionName')?.toUpperCase() ?? 'REGISTER';
    const only = params.get('ProductName')?.toLowerCase();
    const products =
      action !== 'REGISTER'
        ? ''
        : [...state.prices]
            .filter(([tld]) => !only || tld === only)
            .map(([tld, price]) => {
              const durations = Array.from({ length: 10 }, (_, i) =>
                element('Price', {
                  Duration: i + 1,
                  DurationType: 'YEAR',
                  Price: price,
                  PricingType: 'MULTIPLE',
                  AdditionalCost: '0.18',
                  RegularPrice: price,
                  RegularPriceType: 'MULTIPLE',
                  YourPrice: price,
                  YourPriceType: 'MULTIPLE',
                  PromotionPrice: '0.0',
                  Currency: 'USD',
                }),
              ).join('');
              return element('Product', { Name: tld }, durations);
            })
            .join('');
    const category = products ? element('ProductCategory', { Name: 'register' }, products) : '';
    return `<UserGetPricingResult>${element('ProductType', { Name: 'domains' }, category)}</UserGetPricingResult>`;
  }

  function usersGetBalances(): string {
    return element('UserGetBalancesResult', {
      Currency: 'USD',
      AvailableBalance: balance,
      AccountBalance: balance,
      EarnedAmount: '0.00',
      WithdrawableAmount: '0.00',
      FundsRequiredForAutoRenew: '0.00',
    });
  }

  function domainsCreate(params: Params): string {
    const name = params.required('DomainName').toLowerCase();
    const yearsText = params.required('Years', 2015167);
    const years = Number(yearsText);
    if (!/^\d+$/.test(yearsText) || years < 1 || years > 10) {
      throw new NamecheapFault(2015167, 'Validation error from Years');
    }
    if (!HOSTNAME.test(name)) throw new NamecheapFault(2030166, 'Domain is invalid');
    const tld = supportedTld(name);
    if (!tld) throw new NamecheapFault(2030280, 'TLD is not supported in API');

    const contacts = {} as Record<ContactRole, Record<string, string>>;
    for (const role of CONTACT_ROLES) {
      const contact: Record<string, string> = {};
      for (const field of REQUIRED_CONTACT_FIELDS) contact[field] = params.required(`${role}${field}`);
      for (const field of OPTIONAL_CONTACT_FIELDS) {
        const value = params.get(`${role}${field}`);
        if (value !== undefined) contact[field] = value;
      }
      if (!PHONE.test(contact.Phone)) {
        throw new NamecheapFault(
          2015182,
          `Parameter ${role}Phone is invalid. The phone number format is +NNN.NNNNNNNNNN`,
        );
      }
      if (!COUNTRY.test(contact.Country))
        throw new NamecheapFault(2010323, `Parameter ${role}Country is invalid`);
      if (!EMAIL.test(contact.EmailAddress)) {
        throw new NamecheapFault(2010323, `Parameter ${role}EmailAddress is invalid`);
      }
      contacts[role] = contact;
    }
    const nameserversParam = params.get('Nameservers');
    const nameservers = nameserversParam ? nameserverList(nameserversParam) : DEFAULT_NAMESERVERS;

    if (state.taken.has(name)) throw new NamecheapFault(3019166, 'Domain not available');
    const premiumPrice = state.premium.get(name);
    const claimsPremium = params.get('IsPremiumDomain')?.toLowerCase() === 'true';
    if (claimsPremium !== (premiumPrice !== undefined)) {
      throw new NamecheapFault(
        2515623,
        'Domain is premium while considered regular or is regular while considered premium',
      );
    }
    if (premiumPrice !== undefined && toCents(params.get('PremiumPrice') ?? '') !== toCents(premiumPrice)) {
      throw new NamecheapFault(2515610, 'Prices do not match');
    }

    const yearly = premiumPrice ?? state.prices.get(tld)!;
    const registration: NamecheapRegistration = {
      name,
      years,
      contacts,
      nameservers,
      domainId: nextId(),
      orderId: nextId(),
      transactionId: nextId(),
      chargedAmount: fromCents(toCents(yearly) * years),
    };
    state.registrations.push(registration);
    state.taken.add(name);
    state.nameservers.set(name, nameservers);
    return element('DomainCreateResult', {
      Domain: name,
      Registered: true,
      ChargedAmount: registration.chargedAmount,
      DomainID: registration.domainId,
      OrderID: registration.orderId,
      TransactionID: registration.transactionId,
      WhoisguardEnable: false,
      NonRealTimeDomain: false,
    });
  }

  function domainsDnsSetCustom(params: Params): string {
    const sld = params.required('SLD');
    const tld = params.required('TLD');
    const nameservers = nameserverList(params.required('Nameservers'));
    const name = `${sld}.${tld}`.toLowerCase();
    const registration = state.registrations.find((r) => r.name === name);
    if (!registration) throw new NamecheapFault(2019166, 'Domain not found');
    registration.nameservers = nameservers;
    state.nameservers.set(name, nameservers);
    return element('DomainDNSSetCustomResult', { Domain: name, Updated: true });
  }

  const commands: Record<string, (params: Params) => string> = {
    'namecheap.domains.check': domainsCheck,
    'namecheap.users.getpricing': usersGetPricing,
    'namecheap.users.getbalances': usersGetBalances,
    'namecheap.domains.create': domainsCreate,
    'namecheap.domains.dns.setcustom': domainsDnsSetCustom,
  };

  async function answer(req: http.IncomingMessage, res: http.ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/xml.response') {
      res.writeHead(404).end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    const all = new URLSearchParams(url.search);
    let command = '';
    let reply: string;
    try {
      if (req.method === 'POST') {
        const body = await readBody(req);
        if (String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) {
          for (const [name, value] of new URLSearchParams(body)) all.set(name, value);
        }
      }
      const params = new Params(all);
      command = params.get('Command') ?? '';
      const logged = Object.fromEntries(
        [...all].map(([name, value]) => [name, name.toLowerCase() === 'apikey' ? '[redacted]' : value]),
      );
      state.requests.push({ method: req.method, command, params: logged });

      if (throttle.remaining > 0) {
        throttle.remaining--;
        if (throttle.how === 'http405') {
          res.writeHead(405).end();
          return;
        }
        throw new NamecheapFault(500000, 'Too many requests');
      }
      checkGlobals(params);
      params.required('Command', 1010104);
      const handler = commands[command.toLowerCase()];
      if (!handler) throw new NamecheapFault(1010900, 'Invalid Command');
      reply = envelope(command.toLowerCase(), { body: handler(params) });
    } catch (err) {
      if (!(err instanceof NamecheapFault)) throw err;
      reply = envelope(command.toLowerCase(), { errors: [err] });
    }
    res.writeHead(200, { 'content-type': 'text/xml; charset=utf-8' }).end(reply);
  }

  const server = http.createServer((req, res) => {
    answer(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/xml.response`;
  return state;
}
