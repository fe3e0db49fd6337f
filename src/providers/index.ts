// The providers Mailroom can drive, by name, and the credentials each needs.
import { z } from 'zod';
import { cloudflareProvider } from './dns/cloudflare.ts';
import type { DnsProvider } from './dns/types.ts';
import { namecheapRegistrar } from './registrar/namecheap.ts';
import type { Registrar } from './registrar/types.ts';

export interface ProviderEndpoints {
  cloudflareApiUrl: string;
  namecheapApiUrl: string;
  timeoutMs: number;
}

export const credentialSchemas = {
  cloudflare: z.strictObject({
    api_token: z
      .string()
      .trim()
      .min(20)
      .max(200)
      .describe('A Cloudflare API token with Zone:Read and DNS:Edit'),
  }),
  namecheap: z.strictObject({
    api_user: z.string().trim().min(1).max(100),
    api_key: z.string().trim().min(8).max(200),
    username: z.string().trim().min(1).max(100).optional(),
    client_ip: z.union([z.ipv4(), z.ipv6()]).describe("This server's public IP, whitelisted in Namecheap"),
  }),
};

export type ProviderName = keyof typeof credentialSchemas;
export const PROVIDER_KINDS: Record<ProviderName, 'dns' | 'registrar'> = {
  cloudflare: 'dns',
  namecheap: 'registrar',
};

/** The secret part of a provider's credentials, whose last characters tell accounts apart. */
export function credentialHint(provider: ProviderName, credentials: Record<string, string>): string {
  const secret = provider === 'cloudflare' ? credentials.api_token : credentials.api_key;
  return `…${secret.slice(-4)}`;
}

export function dnsProviderFor(
  provider: ProviderName,
  credentials: Record<string, string>,
  endpoints: ProviderEndpoints,
): DnsProvider | null {
  if (provider !== 'cloudflare') return null;
  return cloudflareProvider(credentialSchemas.cloudflare.parse(credentials), {
    baseURL: endpoints.cloudflareApiUrl,
    timeoutMs: endpoints.timeoutMs,
  });
}

export function registrarFor(
  provider: ProviderName,
  credentials: Record<string, string>,
  endpoints: ProviderEndpoints,
): Registrar | null {
  if (provider !== 'namecheap') return null;
  return namecheapRegistrar(credentialSchemas.namecheap.parse(credentials), {
    apiUrl: endpoints.namecheapApiUrl,
    timeoutMs: endpoints.timeoutMs,
  });
}
