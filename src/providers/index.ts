// The providers Mailroom can drive, by name, and the credentials each needs.
import { z } from 'zod';
import { cloudflareProvider } from './dns/cloudflare.ts';
import type { DnsProvider } from './dns/types.ts';
import { namecheapRegistrar } from './registrar/namecheap.ts';
import type { Registrar } from './registrar/types.ts';
import {
  IDEMPOTENT_SUBMIT as ANDROID_IDEMPOTENT,
  androidSmsGatewayProvider,
} from './sms/android-sms-gateway.ts';
import { IDEMPOTENT_SUBMIT as SMPP_IDEMPOTENT, smppProvider } from './sms/smpp.ts';
import { IDEMPOTENT_SUBMIT as TWILIO_IDEMPOTENT, twilioProvider } from './sms/twilio.ts';
import type { SmsProvider, SmsProviderName } from './sms/types.ts';

export interface ProviderEndpoints {
  cloudflareApiUrl: string;
  namecheapApiUrl: string;
  /** Twilio's REST API root. */
  twilioApiUrl: string;
  /** SMS Gateway for Android's cloud API root, for accounts that name no base_url of their own. */
  smsGatewayUrl: string;
  /** Where gateways call back (`<public URL>/v1/sms/webhooks`); an account's calls go to `<this>/<account id>`. */
  smsWebhookUrl: string;
  timeoutMs: number;
}

const E164 = /^\+[1-9]\d{6,14}$/;
/** A GSM alphanumeric sender id: up to 11 letters, digits and spaces, at least one letter. */
const ALPHANUMERIC_SENDER = /^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$/;

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
  'android-sms-gateway': z.strictObject({
    base_url: z
      .url({ protocol: /^https?$/ })
      .max(300)
      .optional()
      .describe(
        "A local server (the phone's http://IP:8080) or private server API root; the cloud server if absent",
      ),
    username: z.string().trim().min(1).max(100),
    password: z.string().min(1).max(200),
    webhook_signing_key: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .describe("The app's Settings → Webhooks → Signing Key; without it webhooks are refused"),
  }),
  twilio: z
    .strictObject({
      account_sid: z
        .string()
        .trim()
        .regex(/^AC[0-9a-f]{32}$/, 'must be AC followed by 32 hexadecimal digits'),
      auth_token: z.string().trim().min(16).max(128),
      from: z
        .string()
        .trim()
        .refine(
          (v) => E164.test(v) || ALPHANUMERIC_SENDER.test(v),
          'must be an E.164 number or an alphanumeric sender id',
        )
        .optional(),
      messaging_service_sid: z
        .string()
        .trim()
        .regex(/^MG[0-9a-f]{32}$/, 'must be MG followed by 32 hexadecimal digits')
        .optional(),
    })
    .refine((c) => c.from || c.messaging_service_sid, {
      message: 'give a from number or a messaging_service_sid',
      path: ['from'],
    }),
  smpp: z.strictObject({
    host: z
      .string()
      .trim()
      .min(1)
      .max(253)
      .regex(/^[A-Za-z0-9.:-]+$/, 'must be a host name or IP address'),
    port: z
      .string()
      .trim()
      .regex(/^\d{1,5}$/, 'must be a port number')
      .refine((p) => Number(p) >= 1 && Number(p) <= 65535, 'must be a port number'),
    // SMPP 3.4 allows 15 characters of system_id and 12 of system_type.
    system_id: z.string().min(1).max(15),
    password: z.string().min(1).max(64),
    system_type: z.string().max(12).optional(),
    source_addr: z
      .string()
      .trim()
      .min(1)
      .max(20)
      .describe('The default sender: E.164, short code or sender id'),
    tls: z.enum(['true', 'false']).optional(),
  }),
};

export type ProviderName = keyof typeof credentialSchemas;
export type ProviderKind = 'dns' | 'registrar' | 'sms';
export const PROVIDER_KINDS: Record<ProviderName, ProviderKind> = {
  cloudflare: 'dns',
  namecheap: 'registrar',
  'android-sms-gateway': 'sms',
  twilio: 'sms',
  smpp: 'sms',
};
export const PROVIDER_NAMES = Object.keys(PROVIDER_KINDS) as [ProviderName, ...ProviderName[]];

/**
 * What tells accounts apart without giving a secret away: the last characters of a long secret, or
 * for SMS gateways whose passwords are short, the login and where it goes.
 */
export function credentialHint(provider: ProviderName, credentials: Record<string, string>): string {
  switch (provider) {
    case 'cloudflare':
      return `…${credentials.api_token.slice(-4)}`;
    case 'namecheap':
      return `…${credentials.api_key.slice(-4)}`;
    case 'twilio':
      return `…${credentials.auth_token.slice(-4)}`;
    case 'android-sms-gateway':
      return `${credentials.username}@${credentials.base_url ? new URL(credentials.base_url).host : 'cloud'}`;
    case 'smpp':
      return `${credentials.system_id}@${credentials.host}:${credentials.port}`;
  }
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

/**
 * The SMS gateways whose submits are idempotent (each adapter's `capabilities.idempotentSubmit`), by
 * provider name: what crash recovery needs before any adapter is built.
 */
const SUBMIT_IDEMPOTENT: Record<SmsProviderName, boolean> = {
  'android-sms-gateway': ANDROID_IDEMPOTENT,
  twilio: TWILIO_IDEMPOTENT,
  smpp: SMPP_IDEMPOTENT,
};
export const IDEMPOTENT_SMS_PROVIDERS: string[] = Object.entries(SUBMIT_IDEMPOTENT)
  .filter(([, idempotent]) => idempotent)
  .map(([name]) => name);

/**
 * An SMS gateway client for the credentials; null when the provider is not an SMS gateway.
 * `webhookUrl` is where this account's gateway calls back (Twilio gets it as each message's
 * StatusCallback). An SMPP provider holds a connection: keep it and close() it when done.
 */
export function smsProviderFor(
  provider: ProviderName,
  credentials: Record<string, string>,
  endpoints: ProviderEndpoints,
  account: { webhookUrl?: string } = {},
): SmsProvider | null {
  switch (provider) {
    case 'android-sms-gateway':
      return androidSmsGatewayProvider(credentialSchemas['android-sms-gateway'].parse(credentials), {
        cloudUrl: endpoints.smsGatewayUrl,
        timeoutMs: endpoints.timeoutMs,
      });
    case 'twilio':
      return twilioProvider(credentialSchemas.twilio.parse(credentials), {
        apiUrl: endpoints.twilioApiUrl,
        statusCallbackUrl: account.webhookUrl,
        timeoutMs: endpoints.timeoutMs,
      });
    case 'smpp':
      return smppProvider(credentialSchemas.smpp.parse(credentials), {
        connectTimeoutMs: endpoints.timeoutMs,
      });
    default:
      return null;
  }
}
