// The DNS resolver mailauth asks (SPF, DKIM keys, DMARC, ARC): MAILROOM_DNS_SERVERS, with a short cache in
// front as a local caching resolver would give a real MX. A busy sender's SPF and DMARC records are then
// looked up once a minute rather than once per message.
import { Resolver } from 'node:dns/promises';

export type MailauthResolver = (name: string, rrtype: string) => Promise<unknown>;

export interface ResolverOptions {
  servers: string[];
  timeoutMs: number;
  tries: number;
  /** How long answers (and "no such record") are reused; 0 turns the cache off. */
  cacheMs: number;
  maxEntries?: number;
}

const NEGATIVE = new Set(['ENOTFOUND', 'ENODATA']);

export function cachedResolver(options: ResolverOptions): MailauthResolver {
  const resolver = new Resolver({ timeout: options.timeoutMs, tries: options.tries });
  if (options.servers.length) resolver.setServers(options.servers);
  const cache = new Map<string, { until: number; answer: Promise<unknown> }>();
  const maxEntries = options.maxEntries ?? 10_000;

  const lookup = (name: string, rrtype: string): Promise<unknown> => resolver.resolve(name, rrtype as 'TXT');

  return (name, rrtype) => {
    if (!options.cacheMs) return lookup(name, rrtype);
    const key = `${rrtype}:${name.toLowerCase()}`;
    const now = Date.now();
    const hit = cache.get(key);
    if (hit && hit.until > now) return hit.answer;
    const answer = lookup(name, rrtype);
    cache.set(key, { until: now + options.cacheMs, answer });
    // Only answers are cached: a timeout or SERVFAIL is asked again next time.
    answer.catch((err: NodeJS.ErrnoException) => {
      if (!NEGATIVE.has(err.code ?? '')) cache.delete(key);
    });
    if (cache.size > maxEntries) {
      for (const [k, v] of cache) if (v.until <= now || cache.size > maxEntries) cache.delete(k);
    }
    return answer;
  };
}
