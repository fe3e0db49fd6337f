// For provisioning tests: a registrant, and a DNS that answers for a zone as delegation does.
import { type CloudflareServer, servedBy } from './cloudflare-server.ts';
import type { NamecheapServer } from './namecheap-server.ts';

export const CONTACT = {
  first_name: 'Ada',
  last_name: 'Lovelace',
  address1: '12 St James Square',
  city: 'London',
  state_province: 'London',
  postal_code: 'SW1Y 4JH',
  country: 'GB',
  phone: '+44.2070000000',
  email: 'ada@example.com',
};

/**
 * Answers from Cloudflare's zones only for names whose registration points at Cloudflare (or that are
 * delegated elsewhere), and only while `propagated()` holds.
 */
export function delegatedDns(
  cf: CloudflareServer,
  nc: NamecheapServer,
  delegatedElsewhere: Set<string>,
  propagated: () => boolean = () => true,
) {
  const served = servedBy(cf);
  return (name: string) => {
    if (!propagated()) return undefined;
    const domain = [...new Set([...nc.nameservers.keys(), ...delegatedElsewhere])].find(
      (d) => name === d || name.endsWith(`.${d}`),
    );
    if (!domain) return undefined;
    const ns = nc.nameservers.get(domain) ?? [];
    if (!delegatedElsewhere.has(domain) && !ns.every((n) => n.endsWith('.ns.cloudflare.com')))
      return undefined;
    return served(name);
  };
}
