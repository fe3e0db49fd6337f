// The mailbox provider behind an address, from its domain's MX hosts: placement is reported per
// provider because Gmail, Microsoft and Yahoo filter differently.
import type { MailauthResolver } from '../../core/resolver.ts';
import type { Provider } from './tables.ts';

const BY_MX: [RegExp, Provider][] = [
  [/(^|\.)(google\.com|googlemail\.com)\.?$/i, 'gmail'],
  [/(^|\.)(outlook\.com|hotmail\.com|protection\.outlook\.com)\.?$/i, 'microsoft'],
  [/(^|\.)(yahoodns\.net|yahoo\.com|aol\.com)\.?$/i, 'yahoo'],
];

export function providerOfMx(hosts: string[]): Provider {
  for (const host of hosts) for (const [pattern, provider] of BY_MX) if (pattern.test(host)) return provider;
  return 'other';
}

/** The provider of an address's domain; `other` when its MX cannot be read. */
export async function providerOf(resolver: MailauthResolver, address: string): Promise<Provider> {
  const domain = address.slice(address.lastIndexOf('@') + 1).toLowerCase();
  try {
    const records = (await resolver(domain, 'MX')) as { exchange: string }[];
    return providerOfMx(records.map((r) => r.exchange));
  } catch {
    return 'other';
  }
}
