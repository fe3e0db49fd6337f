import { z } from 'zod';
import { defineEvent } from '../../core/events.ts';

const listing = z.object({
  target: z.string().describe('The IP address or domain name'),
  kind: z.enum(['ip', 'domain']),
  list: z.string().describe("The list's DNS zone, e.g. zen.spamhaus.org"),
  code: z.string().nullable().describe('The return code(s), e.g. 127.0.0.2'),
  meaning: z.string().nullable(),
  delist_url: z.string().nullable().describe('Where to ask for removal'),
});

export const blocklistListed = defineEvent(
  'blocklist.listed',
  'A sending IP or a domain was found on a DNS blocklist (it was not listed at the previous check)',
  listing,
);
export const blocklistDelisted = defineEvent(
  'blocklist.delisted',
  'A sending IP or a domain listed on a DNS blocklist is no longer listed; code and meaning are those of the listing',
  listing,
);
