// Cloudflare as a DNS provider, through the official SDK and an API token (Zone:Read and DNS:Edit).
// Every SDK failure becomes a ProviderError whose message carries Cloudflare's own words and never
// the token.
import Cloudflare, { APIConnectionError, APIConnectionTimeoutError, APIError } from 'cloudflare';
import { quoteTxt, unquoteTxt } from '../../core/txt.ts';
import { ProviderError } from '../errors.ts';
import type { DnsProvider, DnsRecordSpec, DnsRecordType, DnsZone, ProviderRecord } from './types.ts';

export interface CloudflareCredentials {
  api_token: string;
}

export interface CloudflareOptions {
  /** The API root, `https://api.cloudflare.com/client/v4` unless set (tests point it elsewhere). */
  baseURL?: string;
  /** Per attempt. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const RECORDS_PER_PAGE = 100;
// The SDK retries a 429 once after sleeping for Retry-After; beyond this many seconds the caller
// hears about the rate limit at once instead of holding a request open for minutes.
const MAX_RETRY_WAIT_SECONDS = 5;
// Error codes Cloudflare answers with when the token itself is the problem, some of them with 400:
// 1000 invalid token (verify), 6102/6103/6111 malformed auth headers, 9106 missing auth headers,
// 9109 invalid token or not allowed from this address, 10000 token without permission.
const AUTH_ERROR_CODES = [1000, 6102, 6103, 6111, 9106, 9109, 10000];
const RECORD_NOT_FOUND = 81044;

interface CloudflareErrorItem {
  code?: number;
  message?: string;
  error_chain?: CloudflareErrorItem[];
}

/** The fields Mailroom reads from any of the SDK's per-type record shapes. */
interface CloudflareRecordFields {
  id: string;
  type: string;
  name: string;
  content?: string;
  ttl: number;
  priority?: number;
  comment?: string | null;
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date), or null. */
function retryAfterSeconds(headers: Headers | undefined): number | null {
  const value = headers?.get('retry-after')?.trim();
  if (!value) return null;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.ceil(Number(value));
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

/** Fetch that tells the SDK not to retry a 429 whose Retry-After is too long to wait out. */
async function fetchWithBoundedRetryWait(url: string | URL | Request, init?: RequestInit): Promise<Response> {
  const response = await fetch(url, init);
  if (response.status !== 429) return response;
  const wait = retryAfterSeconds(response.headers);
  if (wait === null || wait <= MAX_RETRY_WAIT_SECONDS) return response;
  const headers = new Headers(response.headers);
  headers.set('x-should-retry', 'false');
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

function errorItems(error: APIError): CloudflareErrorItem[] {
  return (error.errors ?? []) as CloudflareErrorItem[];
}

/** Cloudflare's messages with their codes; a validation error's chain says what was actually wrong. */
function describeErrors(items: CloudflareErrorItem[]): string {
  const described = items.flatMap((item) => (item.error_chain?.length ? item.error_chain : [item]));
  return described.map((item) => `${item.message ?? 'unknown error'} (code ${item.code ?? '?'})`).join('; ');
}

/** Whether any error, or any link of an error's chain, has one of the codes. */
function hasCode(items: CloudflareErrorItem[], ...codes: number[]): boolean {
  return items.some(
    (item) =>
      (item.code !== undefined && codes.includes(item.code)) ||
      (item.error_chain ?? []).some((link) => link.code !== undefined && codes.includes(link.code)),
  );
}

/** The ProviderError for an SDK failure; anything else is returned unchanged. */
function toProviderError(error: unknown, subject: string): unknown {
  if (error instanceof ProviderError) return error;
  if (error instanceof APIConnectionTimeoutError)
    return new ProviderError('provider_unavailable', `Cloudflare did not answer in time (${subject})`);
  if (error instanceof APIConnectionError) {
    const cause = error.cause instanceof Error ? (error.cause.cause ?? error.cause) : undefined;
    const reason = cause instanceof Error && cause.message ? `: ${cause.message}` : '';
    return new ProviderError('provider_unavailable', `Cloudflare could not be reached (${subject})${reason}`);
  }
  if (!(error instanceof APIError) || error.status === undefined) return error;

  const items = errorItems(error);
  const details = items.length > 0 ? describeErrors(items) : `HTTP ${error.status}`;
  if (error.status === 401 || error.status === 403 || hasCode(items, ...AUTH_ERROR_CODES))
    return new ProviderError(
      'provider_auth_failed',
      `Cloudflare refused the API token: ${details}. Check that it is active and has Zone Read and DNS Edit permission for the zone.`,
    );
  if (error.status === 429) {
    const wait = retryAfterSeconds(error.headers);
    const when = wait === null ? '' : `; retry in ${wait} s`;
    return new ProviderError('provider_rate_limited', `Cloudflare rate limit reached${when}`, wait);
  }
  if (error.status >= 500)
    return new ProviderError('provider_unavailable', `Cloudflare failed on ${subject}: ${details}`);
  return new ProviderError('provider_rejected', `Cloudflare refused ${subject}: ${details}`);
}

async function call<T>(subject: string, request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (error) {
    throw toProviderError(error, subject);
  }
}

/** A host name as Mailroom compares it: lower case, no trailing dot (a lone `.` is the null MX). */
function hostName(name: string): string {
  const lower = name.trim().toLowerCase();
  return lower.length > 1 ? lower.replace(/\.$/, '') : lower;
}

function toProviderRecord(raw: CloudflareRecordFields): ProviderRecord {
  const type = raw.type as DnsRecordType;
  const content = raw.content ?? '';
  const record: ProviderRecord = {
    id: raw.id,
    type,
    name: hostName(raw.name),
    content: type === 'TXT' ? unquoteTxt(content) : hostName(content),
    ttl: raw.ttl,
    comment: raw.comment ?? null,
  };
  if (type === 'MX' && raw.priority !== undefined) record.priority = raw.priority;
  return record;
}

/** The request body for a record; TXT is written already split into quoted 255-byte strings. */
function recordBody(record: DnsRecordSpec, comment: string) {
  const common = { name: hostName(record.name), ttl: record.ttl, comment };
  switch (record.type) {
    case 'TXT':
      return { ...common, type: 'TXT' as const, content: quoteTxt(record.content) };
    case 'MX':
      return { ...common, type: 'MX' as const, content: record.content, priority: record.priority };
    case 'CNAME':
      // Proxying would make Cloudflare answer with its own addresses instead of the target.
      return { ...common, type: 'CNAME' as const, content: record.content, proxied: false };
  }
}

/** The domain itself, then each parent down to two labels: `a.example.co.uk`, `example.co.uk`, `co.uk`. */
function zoneCandidates(domain: string): string[] {
  const labels = hostName(domain).split('.');
  const candidates: string[] = [];
  for (let i = 0; i <= labels.length - 2; i++) candidates.push(labels.slice(i).join('.'));
  return candidates;
}

export function cloudflareProvider(
  credentials: CloudflareCredentials,
  options: CloudflareOptions = {},
): DnsProvider {
  const client = new Cloudflare({
    apiToken: credentials.api_token,
    // Explicit nulls keep CLOUDFLARE_* environment variables from adding other credentials.
    apiKey: null,
    apiEmail: null,
    userServiceKey: null,
    baseURL: options.baseURL,
    maxRetries: 1,
    timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    fetch: fetchWithBoundedRetryWait,
    // The SDK's own logging could print request details; failures reach callers as ProviderErrors.
    logLevel: 'off',
  });

  return {
    kind: 'cloudflare',

    async verify() {
      const token = await call('the token check', () => client.user.tokens.verify());
      if (token.status !== 'active')
        throw new ProviderError('provider_auth_failed', `Cloudflare says the API token is ${token.status}`);
    },

    async findZone(domain) {
      for (const name of zoneCandidates(domain)) {
        const page = await call(`the zone lookup for ${name}`, () => client.zones.list({ name }));
        // The filter is Cloudflare's; the exact comparison guards against a looser match.
        const zone = page.result.find((z) => z.name.toLowerCase() === name);
        if (zone) return { id: zone.id, name: zone.name.toLowerCase() };
      }
      throw new ProviderError('zone_not_found', `no Cloudflare zone for ${hostName(domain)} in this account`);
    },

    async ensureZone(domain) {
      const name = hostName(domain);
      const page = await call(`the zone lookup for ${name}`, () => client.zones.list({ name }));
      const existing = page.result.find((z) => z.name.toLowerCase() === name);
      if (existing)
        return {
          zone: { id: existing.id, name },
          nameservers: existing.name_servers.map(hostName),
          created: false,
        };
      // A zone belongs to an account: the one the token can see (a token made for one account sees one).
      const accounts = await call('the account lookup', () => client.accounts.list());
      const account = accounts.result[0];
      if (!account)
        throw new ProviderError(
          'provider_rejected',
          'the Cloudflare API token sees no account to create the zone in',
        );
      const created = await call(`the creation of the zone ${name}`, () =>
        client.zones.create({ account: { id: account.id }, name, type: 'full' }),
      );
      return {
        zone: { id: created.id, name },
        nameservers: created.name_servers.map(hostName),
        created: true,
      };
    },

    async listRecords(zone: DnsZone, name: string, type: DnsRecordType) {
      const wanted = hostName(name);
      const subject = `the ${type} record listing for ${wanted}`;
      const records: ProviderRecord[] = [];
      let page = await call(subject, () =>
        client.dns.records.list({
          zone_id: zone.id,
          type,
          name: { exact: wanted },
          per_page: RECORDS_PER_PAGE,
        }),
      );
      for (;;) {
        for (const raw of page.result) {
          const record = toProviderRecord(raw as CloudflareRecordFields);
          // Only exact matches count, whatever the filter let through.
          if (record.name === wanted && record.type === type) records.push(record);
        }
        // total_pages saves the extra request the SDK makes to find an empty page.
        const info = page.result_info as { page?: number; total_pages?: number };
        const more =
          info.page !== undefined && info.total_pages !== undefined
            ? info.page < info.total_pages
            : page.hasNextPage();
        if (!more) return records;
        const current = page;
        page = await call(subject, () => current.getNextPage());
      }
    },

    async createRecord(zone, record, comment) {
      const created = await call(`the ${record.type} record for ${hostName(record.name)}`, () =>
        client.dns.records.create({ zone_id: zone.id, ...recordBody(record, comment) }),
      );
      return toProviderRecord(created as CloudflareRecordFields);
    },

    async updateRecord(zone, id, record, comment) {
      // PUT overwrites the whole record, comment included, so nothing of the old one lingers.
      const updated = await call(`the ${record.type} record for ${hostName(record.name)}`, () =>
        client.dns.records.update(id, { zone_id: zone.id, ...recordBody(record, comment) }),
      );
      return toProviderRecord(updated as CloudflareRecordFields);
    },

    async deleteRecord(zone, id) {
      try {
        await client.dns.records.delete(id, { zone_id: zone.id });
      } catch (error) {
        // Already gone is what a delete wants.
        if (error instanceof APIError && error.status === 404 && hasCode(errorItems(error), RECORD_NOT_FOUND))
          return;
        throw toProviderError(error, `the deletion of record ${id}`);
      }
    },
  };
}
