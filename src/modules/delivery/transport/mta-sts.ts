// MTA-STS (RFC 8461): a domain that publishes `_mta-sts.<domain>` TXT serves a policy over HTTPS naming
// the MX hosts that may receive its mail; in `enforce` mode only those, over verified TLS. Policies are
// cached until max_age and refetched when the TXT record's id changes. A policy that cannot be fetched
// leaves a cached one in force; without one, mail goes as if the domain had none (RFC 8461 5.1).
import https from 'node:https';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { parsePolicy } from 'mailauth/lib/mta-sts.js';
import type { Logger } from 'pino';
import type { MailauthResolver } from '../../../core/resolver.ts';
import { resolveAddresses } from './mx.ts';

export type StsMode = 'enforce' | 'testing' | 'none';

export interface StsPolicy {
  id: string;
  mode: StsMode;
  /** MX patterns: host names, or `*.example.com` for any single label in front. */
  mx: string[];
  expiresAt: number;
}

export interface MtaStsOptions {
  resolver: MailauthResolver;
  /** 443; tests point it at a local HTTPS server. */
  port: number;
  /** Trust anchors for the policy host's certificate: the system roots plus any extra; undefined: the roots. */
  trust: string[] | undefined;
  log: Logger;
  fetchTimeoutMs?: number;
  now?: () => number;
}

const FETCH_TIMEOUT_MS = 10_000;
const MAX_POLICY_BYTES = 64 * 1024;
/** After a failed fetch the same policy id is not asked for again for this long (every message would wait). */
const FAILED_FETCH_RETRY_MS = 5 * 60_000;
const MAX_CACHED = 10_000;
const NO_ANSWER = new Set(['ENOTFOUND', 'ENODATA']);

export class MtaStsPolicies {
  readonly #o: MtaStsOptions;
  readonly #now: () => number;
  readonly #cache = new Map<string, StsPolicy>();
  readonly #failed = new Map<string, { id: string; until: number }>();
  readonly #inFlight = new Map<string, Promise<StsPolicy | null>>();

  constructor(options: MtaStsOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** The policy in force for `domain`, or null when it has none. Never rejects. */
  policyFor(domain: string): Promise<StsPolicy | null> {
    const pending = this.#inFlight.get(domain);
    if (pending) return pending;
    const lookup = this.#lookup(domain).finally(() => this.#inFlight.delete(domain));
    this.#inFlight.set(domain, lookup);
    return lookup;
  }

  async #lookup(domain: string): Promise<StsPolicy | null> {
    const cached = this.#cached(domain);
    let id: string | null;
    try {
      id = await policyId(this.#o.resolver, domain);
    } catch (err) {
      this.#o.log.debug({ err, domain }, 'MTA-STS TXT lookup failed');
      return cached;
    }
    // No record: a cached policy stays in force until it expires (RFC 8461 5.1, 10.2).
    if (!id || cached?.id === id) return cached;
    const failed = this.#failed.get(domain);
    if (failed && failed.id === id && failed.until > this.#now()) return cached;
    try {
      const policy = await this.#fetch(domain, id);
      this.#remember(domain, policy);
      this.#failed.delete(domain);
      return policy;
    } catch (err) {
      this.#o.log.warn({ err, domain }, 'MTA-STS policy fetch failed');
      this.#failed.set(domain, { id, until: this.#now() + FAILED_FETCH_RETRY_MS });
      if (this.#failed.size > MAX_CACHED) this.#failed.delete(this.#failed.keys().next().value!);
      return cached;
    }
  }

  async #fetch(domain: string, id: string): Promise<StsPolicy> {
    const text = await fetchPolicyText(domain, this.#o);
    const parsed = parsePolicy(text);
    return {
      id,
      mode: parsed.mode,
      mx: parsed.mx ?? [],
      expiresAt: this.#now() + (parsed.maxAge ?? 0) * 1000,
    };
  }

  #cached(domain: string): StsPolicy | null {
    const policy = this.#cache.get(domain);
    if (!policy) return null;
    if (policy.expiresAt > this.#now()) return policy;
    this.#cache.delete(domain);
    return null;
  }

  #remember(domain: string, policy: StsPolicy): void {
    this.#cache.delete(domain);
    this.#cache.set(domain, policy);
    if (this.#cache.size > MAX_CACHED) this.#cache.delete(this.#cache.keys().next().value!);
  }
}

/** True when `mx` may receive mail under the policy; a wildcard stands for exactly one label. */
export function mxAllowed(policy: StsPolicy, mx: string): boolean {
  const host = mx.toLowerCase().replace(/\.$/, '');
  return policy.mx.some((pattern) => {
    const p = pattern.toLowerCase().replace(/\.$/, '');
    if (!p.startsWith('*.')) return p === host;
    const dot = host.indexOf('.');
    return dot > 0 && host.slice(dot) === p.slice(1);
  });
}

/**
 * The id of the domain's `v=STSv1` TXT record; null when there is none, several, or it is malformed
 * (all three mean "no policy", RFC 8461 3.1). Rejects on a DNS failure.
 */
async function policyId(resolver: MailauthResolver, domain: string): Promise<string | null> {
  let records: string[][];
  try {
    records = ((await resolver(`_mta-sts.${domain}`, 'TXT')) as string[][] | undefined) ?? [];
  } catch (err) {
    if (NO_ANSWER.has((err as NodeJS.ErrnoException).code ?? '')) return null;
    throw err;
  }
  const sts = records.map((strings) => strings.join('')).filter((r) => /^v=STSv1\s*(;|$)/.test(r));
  if (sts.length !== 1) return null;
  const fields = new Map(
    sts[0].split(';').map((field) => {
      const eq = field.indexOf('=');
      return [field.slice(0, eq).trim(), field.slice(eq + 1).trim()] as const;
    }),
  );
  const id = fields.get('id') ?? '';
  return /^[A-Za-z0-9]{1,32}$/.test(id) ? id : null;
}

/**
 * GET https://mta-sts.<domain>/.well-known/mta-sts.txt, the host resolved through our resolver and its
 * certificate verified for that name. No redirects (RFC 8461 3.3), a size cap and an overall timeout.
 */
async function fetchPolicyText(domain: string, o: MtaStsOptions): Promise<string> {
  const host = `mta-sts.${domain}`;
  const { addresses, error } = await resolveAddresses(o.resolver, host);
  if (!addresses.length) throw error ?? new Error(`${host} has no address`);
  return new Promise<string>((resolve, reject) => {
    const request = https.request(
      {
        host: addresses[0],
        port: o.port,
        path: '/.well-known/mta-sts.txt',
        method: 'GET',
        headers: { host: o.port === 443 ? host : `${host}:${o.port}`, connection: 'close' },
        servername: host,
        ca: o.trust,
        rejectUnauthorized: true,
        checkServerIdentity: (_name: string, cert: PeerCertificate) => checkServerIdentity(host, cert),
        // No keep-alive agent: the socket must not outlive the request.
        agent: false,
        signal: AbortSignal.timeout(o.fetchTimeoutMs ?? FETCH_TIMEOUT_MS),
      },
      (response) => {
        if (response.statusCode !== 200) {
          response.resume();
          reject(new Error(`https://${host}/.well-known/mta-sts.txt answered HTTP ${response.statusCode}`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_POLICY_BYTES)
            request.destroy(new Error(`policy larger than ${MAX_POLICY_BYTES} bytes`));
          else chunks.push(chunk);
        });
        response.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        response.once('error', reject);
      },
    );
    request.once('error', reject);
    request.end();
  });
}
