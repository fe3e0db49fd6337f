// Every setting, parsed and validated once. Sources: the process environment, then `.env`
// in the working directory (the environment wins). See .env.example and docs/configuration.md.
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { z } from 'zod';
import { DEFAULT_ENDPOINTS } from './providers/oauth/providers.ts';

const port = z.coerce
  .number({ error: 'must be a port number' })
  .int('must be a whole number')
  .min(0, 'must be between 0 and 65535')
  .max(65535, 'must be between 0 and 65535');

/** A comma-separated list of host names or addresses, lower case. */
const hostList = z
  .string()
  .default('')
  .transform((v) =>
    v
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  );
const positiveInt = z.coerce.number({ error: 'must be a number' }).int('must be a whole number').positive();

const optionalString = z
  .string()
  .trim()
  .transform((v) => (v === '' ? undefined : v))
  .optional();

const dnsServer = z.string().refine(
  (entry) => {
    const { host, port: p } = splitHostPort(entry);
    return isIP(host) !== 0 && (p === undefined || (p > 0 && p < 65536));
  },
  { error: (issue) => `"${issue.input}" is not an ip[:port] address` },
);

const optionalUrl = optionalString.pipe(z.url('must be a URL').optional());

/** `host:port:security` (security tls, starttls or none): a mail server of an OAuth provider. */
const mailServerSetting = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx) => {
      const m = /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5}):(tls|starttls|none)$/.exec(v.trim());
      if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
        ctx.addIssue({ code: 'custom', message: `"${v}" is not host:port:security (tls, starttls or none)` });
        return z.NEVER;
      }
      return {
        host: m[1].replace(/^\[|\]$/g, '').toLowerCase(),
        port: Number(m[2]),
        security: m[3] as 'tls' | 'starttls' | 'none',
      };
    });

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "500ms", "30s", "5m", "2h", "7d" (a bare number is seconds) → milliseconds. */
export function parseDuration(value: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  if (!m) return null;
  const ms = Number(m[1]) * DURATION_UNITS[m[2] ?? 's'];
  return ms > 0 && Number.isFinite(ms) ? Math.round(ms) : null;
}

const duration = z.string().transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === null) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration such as 30s, 5m, 2h or 7d` });
    return z.NEVER;
  }
  return ms;
});

const durationList = z.string().transform((v, ctx) => {
  const entries = v.split(',').map((e) => e.trim());
  const values = entries.map(parseDuration);
  if (entries.length > 50 || values.some((ms) => ms === null)) {
    ctx.addIssue({ code: 'custom', message: 'must be up to 50 comma-separated durations such as 5s,5m,2h' });
    return z.NEVER;
  }
  return values as number[];
});

const schema = z.object({
  MAILROOM_DATA_DIR: z.string().min(1).default('./data'),
  MAILROOM_PGLITE_SHARED_BUFFERS: z
    .string()
    .regex(/^[1-9][0-9]*(kB|MB|GB)$/, 'must be a size such as 128MB or 1GB')
    .default('128MB'),
  DATABASE_URL: optionalString.pipe(
    z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .optional(),
  ),
  REDIS_URL: optionalString.pipe(
    z
      .string()
      .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
      .optional(),
  ),
  MAILROOM_HTTP_HOST: z.string().min(1).default('127.0.0.1'),
  MAILROOM_HTTP_PORT: port.default(8080),
  MAILROOM_HOSTNAME: z
    .string()
    .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i, 'must be a host name')
    .default('localhost'),
  MAILROOM_SMTP_PORT: port.default(2525),
  MAILROOM_SUBMISSION_PORT: port.default(2587),
  MAILROOM_IMAP_PORT: port.default(2143),
  MAILROOM_IMAP_HOST: z.string().min(1).default('127.0.0.1'),
  MAILROOM_IMAP_TLS_PORT: port.optional(),
  MAILROOM_IMAP_ALLOW_INSECURE_AUTH: z.stringbool().default(false),
  MAILROOM_IMAP_APPEND_LIMIT: positiveInt.default(26_214_400),
  MAILROOM_IMAP_MAX_CONNECTIONS: positiveInt.default(20_000),
  MAILROOM_IMAP_MAX_CONNECTIONS_PER_IP: positiveInt.default(200),
  MAILROOM_IMAP_EXPUNGED_RETENTION: duration.default(30 * 86_400_000),
  MAILROOM_POP3_PORT: port.default(2110),
  MAILROOM_POP3_TLS_PORT: port.optional(),
  MAILROOM_DNS_SERVERS: optionalString.pipe(
    z
      .string()
      .transform((v) => v.split(',').map((s) => s.trim()))
      .pipe(z.array(dnsServer))
      .optional(),
  ),
  MAILROOM_OUTBOUND_PORT: port.default(25),
  MAILROOM_SECRET_KEY: optionalString.pipe(
    z
      .string()
      .refine((v) => decodeKey(v) !== null, 'must be 32 bytes, as 64 hex characters or base64')
      .optional(),
  ),
  MAILROOM_TLS_CERT: optionalString.pipe(z.string().refine(existsSync, 'file does not exist').optional()),
  MAILROOM_TLS_KEY: optionalString.pipe(z.string().refine(existsSync, 'file does not exist').optional()),
  MAILROOM_WEBHOOK_ALLOW_HOSTS: hostList,
  // Settings beyond DESIGN.md's table (documented in docs/configuration.md).
  MAILROOM_WEBHOOK_TIMEOUT: duration.default(15_000),
  MAILROOM_WEBHOOK_RETRY_SCHEDULE: durationList.default([5e3, 3e5, 18e5, 72e5, 18e6, 36e6, 36e6]),
  MAILROOM_WEBHOOK_DISABLE_AFTER: duration.default(5 * 86_400_000),
  MAILROOM_WEBHOOK_CONCURRENCY: positiveInt.max(256).default(16),
  MAILROOM_EVENT_RETENTION: duration.default(30 * 86_400_000),
  MAILROOM_DNS_TIMEOUT: duration.default(5_000),
  MAILROOM_DNS_TRIES: positiveInt.max(10).default(2),
  MAILROOM_DNS_VERIFY_CONCURRENCY: positiveInt.max(1024).default(8),
  // Blocklist monitoring (docs/blocklists.md).
  MAILROOM_OUTBOUND_IPS: hostList.transform((ips, ctx) => {
    const bad = ips.find((ip) => isIP(ip) === 0);
    if (bad) {
      ctx.addIssue({ code: 'custom', message: `"${bad}" is not an IPv4 or IPv6 address` });
      return z.NEVER;
    }
    // IPv6 in its compressed canonical form, as the API stores it.
    return ips.map((ip) => (isIP(ip) === 6 ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip));
  }),
  // Sending IPs and IP pools (docs/ip-pools.md): a HELO name per IP, the warmup curve of IPs in no pool,
  // how often each IP's reverse DNS is checked.
  MAILROOM_OUTBOUND_IP_HELO: hostList.transform((entries, ctx) => {
    const pairs = entries.map((e) =>
      /^([0-9a-f.:]+)=([a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)$/.exec(e),
    );
    const bad = entries.find((_, i) => !pairs[i] || isIP(pairs[i]![1]) === 0);
    if (bad !== undefined) {
      ctx.addIssue({ code: 'custom', message: `"${bad}" is not ip=host.name` });
      return z.NEVER;
    }
    return Object.fromEntries(
      pairs.map((m) => [
        isIP(m![1]) === 6 ? new URL(`http://[${m![1]}]/`).hostname.slice(1, -1) : m![1],
        m![2],
      ]),
    ) as Record<string, string>;
  }),
  MAILROOM_OUTBOUND_IP_WARMUP: z
    .string()
    .default('none')
    .transform((v, ctx) => {
      const value = v.trim().toLowerCase();
      if (['none', 'slow', 'normal', 'fast'].includes(value))
        return { curve: value as 'none' | 'slow' | 'normal' | 'fast', caps: null };
      const caps = value.split(',').map((e) => Number(e.trim()));
      if (!caps.length || caps.length > 365 || caps.some((n) => !Number.isInteger(n) || n < 1 || n > 1e9)) {
        ctx.addIssue({
          code: 'custom',
          message: 'must be none, slow, normal, fast or daily caps such as 50,100,200',
        });
        return z.NEVER;
      }
      return { curve: 'custom' as const, caps };
    }),
  MAILROOM_OUTBOUND_IP_CHECK_INTERVAL: duration.default(3_600_000),
  MAILROOM_BLOCKLISTS_EXTRA: hostList.transform((entries, ctx) => {
    const lists = entries.map((e) => /^(ip|domain):([a-z0-9-]+(\.[a-z0-9-]+)+)$/.exec(e));
    const bad = entries.find((_, i) => !lists[i]);
    if (bad !== undefined) {
      ctx.addIssue({ code: 'custom', message: `"${bad}" is not ip:<zone> or domain:<zone>` });
      return z.NEVER;
    }
    return lists.map((m) => ({ kind: m![1] as 'ip' | 'domain', zone: m![2] }));
  }),
  MAILROOM_BLOCKLISTS_INTERVAL: duration.default(6 * 3_600_000),
  MAILROOM_BLOCKLISTS_TIMEOUT: duration.default(3_000),
  MAILROOM_BLOCKLISTS_CONCURRENCY: positiveInt.max(1024).default(32),
  // SMS campaigns (docs/sms-campaigns.md): the largest contact CSV taken, and how many messages of one
  // campaign may wait in the SMS queue at once (it is fed as they go out).
  MAILROOM_SMS_IMPORT_LIMIT: positiveInt.default(64 * 1024 * 1024),
  MAILROOM_SMS_CAMPAIGN_IN_FLIGHT: positiveInt.max(1_000_000).default(10_000),
  // Warmup (docs/warmup.md).
  MAILROOM_WARMUP_SHARED_POOL: z.enum(['true', 'false']).default('false'),
  MAILROOM_WARMUP_MISSING_AFTER: duration.default(24 * 3_600_000),
  // SMS (docs/sms.md): the region of numbers written without a country code until an organisation sets
  // its own, the HELP reply until it writes its own, the retry schedule per gateway account, how long a
  // worker's claim lasts unrenewed, the longest idle wait between looks at the queue, the messages a
  // worker claims at once and holds at most, and how often a gateway client is checked against its account.
  MAILROOM_SMS_DEFAULT_REGION: z
    .string()
    .trim()
    .toUpperCase()
    .regex(/^[A-Z]{2}$/, 'must be an ISO 3166 alpha-2 code such as US or GB')
    .default('US'),
  MAILROOM_SMS_HELP_TEXT: z
    .string()
    .trim()
    .min(1)
    .max(640)
    .default('Reply STOP to unsubscribe, START to subscribe again. Msg & data rates may apply.'),
  MAILROOM_SMS_RETRY_SCHEDULE: durationList.default([3e4, 12e4, 6e5, 18e5, 36e5]),
  MAILROOM_SMS_LEASE: duration.default(60_000),
  MAILROOM_SMS_POLL_INTERVAL: duration.default(1_000),
  MAILROOM_SMS_CLAIM_BATCH: positiveInt.max(10_000).default(500),
  MAILROOM_SMS_MAX_HELD: positiveInt.max(100_000).default(1_500),
  MAILROOM_SMS_GATEWAY_RECHECK: duration.default(5_000),
  // Helpdesk (docs/helpdesk.md): mail one sender may file to a desk within an hour before the rest is
  // taken for a mail loop and ignored.
  MAILROOM_HELPDESK_LOOP_LIMIT: positiveInt.max(100_000).default(30),
  // Helpdesk insights (docs/helpdesk-insights.md): where the "Open ticket" button of Teams cards leads;
  // {id} and {number} are replaced. Default: the ticket in the API under MAILROOM_PUBLIC_URL.
  MAILROOM_HELPDESK_TICKET_URL: optionalString.pipe(
    z
      .string()
      .regex(/^https?:\/\/\S+$/, 'must be an http or https URL, with {id} or {number} where the ticket goes')
      .optional(),
  ),
  // Helpdesk knowledge base and chatbot (docs/helpdesk-kb.md): the installation's help centre (articles at
  // <url>/<slug> unless an organisation sets its own), and chat messages allowed a minute.
  MAILROOM_HELPDESK_KB_URL: optionalString.pipe(
    z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  ),
  MAILROOM_HELPDESK_CHAT_PER_MINUTE: positiveInt.max(100_000).default(20),
  MAILROOM_HELPDESK_CHAT_PER_IP_PER_MINUTE: positiveInt.max(1_000_000).default(300),
  // Mail intelligence (docs/intelligence.md): outside engines are optional; the built-in analysis always runs.
  MAILROOM_RSPAMD_URL: optionalString.pipe(
    z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL such as http://127.0.0.1:11333' })
      .optional(),
  ),
  MAILROOM_RSPAMD_PASSWORD: optionalString,
  MAILROOM_CLAMD: optionalString.pipe(
    z
      .string()
      .regex(
        /^(unix:)?\/.+$|^.+:\d{1,5}$/,
        'must be host:port or a unix socket path such as /run/clamav/clamd.ctl',
      )
      .optional(),
  ),
  MAILROOM_SPAM_THRESHOLD: z.coerce.number({ error: 'must be a number' }).gt(0).lt(1).default(0.7),
  MAILROOM_INTELLIGENCE_BATCH: positiveInt.max(5_000).default(200),
  // An OpenAI-compatible model for the chatbot (docs/helpdesk-kb.md): unset, answers come from search.
  MAILROOM_LLM_URL: optionalString.pipe(
    z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  ),
  MAILROOM_LLM_API_KEY: optionalString,
  MAILROOM_LLM_MODEL: optionalString.pipe(z.string().max(200).optional()),
  MAILROOM_LLM_TIMEOUT: duration.default(20_000),
  MAILROOM_LLM_TEMPERATURE: z.coerce.number({ error: 'must be a number' }).min(0).max(2).default(0.2),
  // Tokens the model may spend per organisation per UTC day (docs/chat.md); an organisation's own setting wins.
  MAILROOM_LLM_DAILY_TOKENS: positiveInt.max(1_000_000_000).default(200_000),
  // Mail chat (docs/chat.md): requests a minute per user or API key.
  MAILROOM_CHAT_PER_MINUTE: positiveInt.max(100_000).default(30),
  // Health scores and auto-repair (docs/health.md).
  MAILROOM_HEALTH_INTERVAL: duration.default(3_600_000),
  MAILROOM_HEALTH_TRIGGER_DELAY: duration.default(5_000),
  MAILROOM_HEALTH_WINDOW: duration.default(7 * 86_400_000),
  MAILROOM_HEALTH_MIN_SAMPLE: positiveInt.default(100),
  MAILROOM_HEALTH_BULK_DAILY: positiveInt.default(5_000),
  MAILROOM_HEALTH_HISTORY: duration.default(90 * 86_400_000),
  MAILROOM_DOMAIN_RECHECK_INTERVAL: duration.default(3_600_000),
  MAILROOM_DOMAIN_PENDING_RECHECK_INTERVAL: duration.default(300_000),
  MAILROOM_DOMAIN_VERIFY_WINDOW: duration.default(72 * 3_600_000),
  MAILROOM_DKIM_ROTATION_GRACE: duration.default(7 * 86_400_000),
  // Feedback loops (docs/feedback.md): `<local part>@<hosted domain>` takes ARF complaint reports, and
  // outbound mail's Feedback-ID header ends with the sender id (Gmail's Feedback Loop).
  MAILROOM_FEEDBACK_LOCALPART: z
    .string()
    .trim()
    .toLowerCase()
    .regex(/^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$/, 'must be a plain local part such as fbl')
    .refine((v) => !/^srs[01]/.test(v) && !v.includes('..'), 'must be a plain local part such as fbl')
    .default('fbl'),
  MAILROOM_FEEDBACK_SENDER_ID: optionalString.pipe(
    z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'must be letters, digits, dots, dashes or underscores')
      .optional(),
  ),
  MAILROOM_SPF_INCLUDE: optionalString.pipe(
    z
      .string()
      .regex(/^[a-z0-9_]([a-z0-9_-]*[a-z0-9])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9])?)+$/i, 'must be a host name')
      .optional(),
  ),
  MAILROOM_CLOUDFLARE_API_URL: z.url().default('https://api.cloudflare.com/client/v4'),
  MAILROOM_NAMECHEAP_API_URL: z.url().default('https://api.namecheap.com/xml.response'),
  MAILROOM_TWILIO_API_URL: z.url().default('https://api.twilio.com'),
  MAILROOM_SMS_GATEWAY_URL: z.url().default('https://api.sms-gate.app/3rdparty/v1'),
  MAILROOM_PROVIDER_TIMEOUT: duration.default(30_000),
  MAILROOM_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  MAILROOM_PUBLIC_URL: optionalString.pipe(z.url('must be a URL').optional()),
  MAILROOM_OAUTH_GOOGLE_CLIENT_ID: optionalString,
  MAILROOM_OAUTH_GOOGLE_CLIENT_SECRET: optionalString,
  MAILROOM_OAUTH_GOOGLE_AUTHORIZE_URL: optionalUrl,
  MAILROOM_OAUTH_GOOGLE_TOKEN_URL: optionalUrl,
  MAILROOM_OAUTH_GOOGLE_USERINFO_URL: optionalUrl,
  MAILROOM_OAUTH_GOOGLE_IMAP: mailServerSetting('imap.gmail.com:993:tls'),
  MAILROOM_OAUTH_GOOGLE_SMTP: mailServerSetting('smtp.gmail.com:465:tls'),
  MAILROOM_OAUTH_MICROSOFT_CLIENT_ID: optionalString,
  MAILROOM_OAUTH_MICROSOFT_CLIENT_SECRET: optionalString,
  MAILROOM_OAUTH_MICROSOFT_TENANT: z
    .string()
    .regex(/^[A-Za-z0-9.-]{1,100}$/, 'must be common, organizations, consumers, a tenant ID or a domain')
    .default('common'),
  MAILROOM_OAUTH_MICROSOFT_AUTHORIZE_URL: optionalUrl,
  MAILROOM_OAUTH_MICROSOFT_TOKEN_URL: optionalUrl,
  MAILROOM_OAUTH_MICROSOFT_USERINFO_URL: optionalUrl,
  MAILROOM_OAUTH_MICROSOFT_IMAP: mailServerSetting('outlook.office365.com:993:tls'),
  MAILROOM_OAUTH_MICROSOFT_SMTP: mailServerSetting('smtp.office365.com:587:starttls'),
  // External accounts' sync: folders other than INBOX (which IDLE watches) are looked at this often.
  MAILROOM_ACCOUNTS_POLL_SECONDS: positiveInt.default(300),
  // External accounts' servers on this server's own network (loopback, private, metadata) are refused
  // unless named here: an account is not a way to probe the inside.
  MAILROOM_ACCOUNTS_ALLOW_HOSTS: hostList,
  // A worker's hold on an account's connection; another worker takes it over once it runs out.
  MAILROOM_ACCOUNTS_LEASE_SECONDS: positiveInt.default(30),
  MAILROOM_ACCOUNTS_SYNC_BATCH: positiveInt.max(1000).default(200),
  MAILROOM_ACCOUNTS_MAX_BACKOFF_SECONDS: positiveInt.default(300),
  MAILROOM_CORS_ORIGINS: z
    .string()
    .default('*')
    .transform((v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  MAILROOM_REGISTRATION: z.enum(['open', 'invite', 'closed']).default('open'),
  MAILROOM_BODY_LIMIT: positiveInt.default(1_048_576),
  MAILROOM_HTTP_HEADER_TIMEOUT: duration.default(10_000),
  MAILROOM_HTTP_REQUEST_TIMEOUT: duration.default(300_000),
  MAILROOM_ACCESS_TOKEN_TTL: positiveInt.default(900),
  MAILROOM_REFRESH_TOKEN_TTL: positiveInt.default(30 * 24 * 3600),
  MAILROOM_RATE_LIMIT_PER_MINUTE: positiveInt.default(1200),
  MAILROOM_DB_POOL_SIZE: positiveInt.default(8),
  MAILROOM_SHUTDOWN_TIMEOUT: positiveInt.default(30),
  MAILROOM_SMTP_HOST: z.string().min(1).default('127.0.0.1'),
  MAILROOM_SMTP_MAX_MESSAGE_SIZE: positiveInt.default(26_214_400),
  MAILROOM_SMTP_MAX_RECIPIENTS: positiveInt.max(10_000).default(100),
  MAILROOM_SMTP_MAX_CONNECTIONS: positiveInt.default(1_000),
  MAILROOM_SMTP_MAX_CONNECTIONS_PER_IP: positiveInt.default(20),
  MAILROOM_SMTP_MESSAGES_PER_IP_PER_MINUTE: positiveInt.default(600),
  MAILROOM_SMTP_PROXY: z
    .string()
    .default('')
    .transform((v, ctx): boolean | string[] => {
      const value = v.trim();
      if (value === '' || value === 'false') return false;
      if (value === 'true') return true;
      const entries = value.split(',').map((e) => e.trim());
      const bad = entries.filter((e) => isIP(e) === 0);
      if (bad.length) ctx.addIssue({ code: 'custom', message: `"${bad.join(', ')}" is not an IP address` });
      return entries;
    }),
  MAILROOM_SRS_MAX_AGE: duration.default(21 * 86_400_000),
  MAILROOM_WORKER_THREADS: z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(0)
    .max(64)
    .optional(),
  MAILROOM_BACKLOG_MAX_PROCESSING: z.coerce.number().int().min(0).default(50_000),
  MAILROOM_BACKLOG_MAX_DELIVERY: z.coerce.number().int().min(0).default(200_000),
  MAILROOM_BACKLOG_CHECK_INTERVAL: duration.default(1_000),
  MAILROOM_PROCESSING_BATCH: positiveInt.max(1_000).default(64),
  MAILROOM_PROCESSING_CONCURRENCY: positiveInt.max(64).default(4),
  MAILROOM_INBOUND_DNS_CACHE: duration.default(60_000),
  MAILROOM_SUBMISSION_TLS_PORT: optionalString.pipe(
    z.coerce
      .number<string | undefined>({ error: 'must be a port number' })
      .int()
      .min(0)
      .max(65535)
      .optional(),
  ),
  MAILROOM_SUBMISSION_AUTH_FAILURES_PER_HOUR: positiveInt.default(10),
  MAILROOM_SUBMISSION_ALLOW_INSECURE_AUTH: z.stringbool().default(false),
  MAILROOM_OUTBOUND_RETRY_SCHEDULE: durationList.default([3e5, 9e5, 18e5, 36e5, 72e5, 144e5, 288e5]),
  MAILROOM_OUTBOUND_MAX_AGE: duration.default(2 * 86_400_000),
  MAILROOM_OUTBOUND_CONNECTIONS_PER_DOMAIN: positiveInt.max(1_000).default(10),
  MAILROOM_OUTBOUND_MESSAGES_PER_CONNECTION: positiveInt.default(100),
  MAILROOM_OUTBOUND_DOMAIN_RATE_PER_MINUTE: z.coerce.number().int().min(0).default(0),
  MAILROOM_OUTBOUND_CONCURRENCY: positiveInt.max(10_000).default(200),
  MAILROOM_OUTBOUND_CONNECT_TIMEOUT: duration.default(30_000),
  MAILROOM_OUTBOUND_COMMAND_TIMEOUT: duration.default(300_000),
  MAILROOM_OUTBOUND_IDLE_TIMEOUT: duration.default(10_000),
  MAILROOM_OUTBOUND_TLS_CA: optionalString.pipe(
    z.string().refine(existsSync, 'file does not exist').optional(),
  ),
  MAILROOM_MTA_STS_PORT: port.default(443),
  MAILROOM_SEND_BATCH_BODY_LIMIT: positiveInt.default(32 * 1_048_576),
  MAILROOM_SEND_LIMIT_MAILBOX_PER_DAY: z.coerce.number().int().min(0).default(2_000),
  MAILROOM_SEND_LIMIT_ORGANIZATION_PER_HOUR: z.coerce.number().int().min(0).default(10_000),
  MAILROOM_JOB_LEASE: duration.default(15_000),
  MAILROOM_PROVISION_VERIFY_BACKOFF: durationList.default([
    30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000,
  ]),
  MAILROOM_ORGANIZATION_MAX_DOMAINS: z.coerce.number().int().min(0).default(0),
  MAILROOM_ORGANIZATION_MAX_MAILBOXES: z.coerce.number().int().min(0).default(0),
  MAILROOM_EXPORT_SMTP_HOST: optionalString,
  MAILROOM_EXPORT_SMTP_PORT: port.optional(),
  MAILROOM_EXPORT_IMAP_HOST: optionalString,
  MAILROOM_EXPORT_IMAP_PORT: port.optional(),
  MAILROOM_EXPORT_PAGE_SIZE: z.coerce.number().int().min(1).max(10_000).default(1000),
  MAILROOM_BACKUP_UPLOAD_LIMIT: positiveInt.default(10 * 1024 * 1024 * 1024),
  MAILROOM_TRUST_PROXY: z
    .string()
    .default('false')
    .transform((v, ctx): boolean | number | string[] => {
      const value = v.trim();
      if (value === 'false' || value === '') return false;
      if (value === 'true') return true;
      if (/^\d+$/.test(value)) return Number(value);
      const entries = value.split(',').map((e) => e.trim());
      const bad = entries.filter((e) => isIP(e.split('/')[0]) === 0);
      if (bad.length) ctx.addIssue({ code: 'custom', message: `"${bad.join(', ')}" is not an IP or CIDR` });
      return entries;
    }),
});

export type Config = ReturnType<typeof finish>;

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = problems;
  }
}

/** Reads `.env` (if present) under the process environment and validates everything. */
export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  envFile: string | null = '.env',
): Config {
  const fromFile = envFile && existsSync(envFile) ? parseDotenv(readFileSync(envFile)) : {};
  const merged: Record<string, string | undefined> = { ...fromFile };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) merged[k] = v;
  const result = schema.safeParse(merged);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => `${String(i.path[0])}: ${i.message}`));
  }
  const problems: string[] = [];
  const c = result.data;
  if (Boolean(c.MAILROOM_TLS_CERT) !== Boolean(c.MAILROOM_TLS_KEY)) {
    problems.push('MAILROOM_TLS_CERT and MAILROOM_TLS_KEY: set both or neither');
  }
  if (c.DATABASE_URL && !c.MAILROOM_SECRET_KEY) {
    problems.push(
      'MAILROOM_SECRET_KEY: required when DATABASE_URL is set (every process must share it); generate one with `openssl rand -hex 32`',
    );
  }
  for (const provider of ['GOOGLE', 'MICROSOFT'] as const) {
    const id = `MAILROOM_OAUTH_${provider}_CLIENT_ID` as const;
    const secret = `MAILROOM_OAUTH_${provider}_CLIENT_SECRET` as const;
    if (Boolean(c[id]) !== Boolean(c[secret])) problems.push(`${id} and ${secret}: set both or neither`);
  }
  const unknownHelo = Object.keys(c.MAILROOM_OUTBOUND_IP_HELO).filter(
    (ip) => !c.MAILROOM_OUTBOUND_IPS.includes(ip),
  );
  if (unknownHelo.length)
    problems.push(`MAILROOM_OUTBOUND_IP_HELO: ${unknownHelo.join(', ')} not in MAILROOM_OUTBOUND_IPS`);
  if (c.MAILROOM_LLM_URL && !c.MAILROOM_LLM_MODEL)
    problems.push(
      'MAILROOM_LLM_MODEL: required when MAILROOM_LLM_URL is set (the model to ask, e.g. gpt-4o-mini)',
    );
  if (problems.length) throw new ConfigError(problems);
  return finish(c);
}

/** A mail server as clients are told of it: implicit TLS on its well-known port, STARTTLS elsewhere. */
function mailServer(host: string, port: number, implicitTlsPort: number) {
  return {
    host: host.toLowerCase(),
    port,
    security: port === implicitTlsPort ? ('SSL' as const) : ('STARTTLS' as const),
  };
}

/**
 * Sign-in with Google or Microsoft for external accounts: the installation's OAuth client (null: that
 * sign-in is off), the endpoints (the providers' own unless set; tests point them at a local server) and
 * the mail servers an account signed in this way uses.
 */
function oauthSettings(c: z.output<typeof schema>, publicUrl: string) {
  const client = (id: string | undefined, secret: string | undefined) =>
    id && secret ? { clientId: id, clientSecret: secret } : null;
  // A single-tenant Microsoft app signs in at its tenant's endpoints rather than at `common`.
  const tenant = (url: string) => url.replace('/common/', `/${c.MAILROOM_OAUTH_MICROSOFT_TENANT}/`);
  const google = DEFAULT_ENDPOINTS.google;
  const microsoft = DEFAULT_ENDPOINTS.microsoft;
  const userinfo = (url: string | undefined) => (url ? { userinfoUrl: url } : {});
  return {
    /** Where both providers send the browser back; register exactly this URL with each. */
    redirectUri: `${publicUrl}/v1/accounts/oauth/callback`,
    google: {
      client: client(c.MAILROOM_OAUTH_GOOGLE_CLIENT_ID, c.MAILROOM_OAUTH_GOOGLE_CLIENT_SECRET),
      endpoints: {
        authorizeUrl: c.MAILROOM_OAUTH_GOOGLE_AUTHORIZE_URL ?? google.authorizeUrl,
        tokenUrl: c.MAILROOM_OAUTH_GOOGLE_TOKEN_URL ?? google.tokenUrl,
        ...userinfo(c.MAILROOM_OAUTH_GOOGLE_USERINFO_URL ?? google.userinfoUrl),
      },
      imap: c.MAILROOM_OAUTH_GOOGLE_IMAP,
      smtp: c.MAILROOM_OAUTH_GOOGLE_SMTP,
    },
    microsoft: {
      client: client(c.MAILROOM_OAUTH_MICROSOFT_CLIENT_ID, c.MAILROOM_OAUTH_MICROSOFT_CLIENT_SECRET),
      endpoints: {
        authorizeUrl: c.MAILROOM_OAUTH_MICROSOFT_AUTHORIZE_URL ?? tenant(microsoft.authorizeUrl),
        tokenUrl: c.MAILROOM_OAUTH_MICROSOFT_TOKEN_URL ?? tenant(microsoft.tokenUrl),
        ...userinfo(c.MAILROOM_OAUTH_MICROSOFT_USERINFO_URL ?? microsoft.userinfoUrl),
      },
      imap: c.MAILROOM_OAUTH_MICROSOFT_IMAP,
      smtp: c.MAILROOM_OAUTH_MICROSOFT_SMTP,
    },
  };
}

function finish(c: z.output<typeof schema>) {
  const dataDir = path.resolve(c.MAILROOM_DATA_DIR);
  const publicUrl = (
    c.MAILROOM_PUBLIC_URL ?? `http://${c.MAILROOM_HTTP_HOST}:${c.MAILROOM_HTTP_PORT}`
  ).replace(/\/$/, '');
  return {
    dataDir,
    databaseUrl: c.DATABASE_URL,
    pgliteSharedBuffers: c.MAILROOM_PGLITE_SHARED_BUFFERS,
    redisUrl: c.REDIS_URL,
    http: { host: c.MAILROOM_HTTP_HOST, port: c.MAILROOM_HTTP_PORT },
    hostname: c.MAILROOM_HOSTNAME.toLowerCase(),
    smtpPort: c.MAILROOM_SMTP_PORT,
    submissionPort: c.MAILROOM_SUBMISSION_PORT,
    imapPort: c.MAILROOM_IMAP_PORT,
    imap: {
      host: c.MAILROOM_IMAP_HOST,
      port: c.MAILROOM_IMAP_PORT,
      tlsPort: c.MAILROOM_IMAP_TLS_PORT ?? null,
      pop3Port: c.MAILROOM_POP3_PORT,
      pop3TlsPort: c.MAILROOM_POP3_TLS_PORT ?? null,
      allowInsecureAuth: c.MAILROOM_IMAP_ALLOW_INSECURE_AUTH,
      appendLimit: c.MAILROOM_IMAP_APPEND_LIMIT,
      maxConnections: c.MAILROOM_IMAP_MAX_CONNECTIONS,
      maxConnectionsPerIp: c.MAILROOM_IMAP_MAX_CONNECTIONS_PER_IP,
      expungedRetentionMs: c.MAILROOM_IMAP_EXPUNGED_RETENTION,
    },
    dnsServers: c.MAILROOM_DNS_SERVERS ?? [],
    secretKey: c.MAILROOM_SECRET_KEY ? decodeKey(c.MAILROOM_SECRET_KEY) : null,
    tls:
      c.MAILROOM_TLS_CERT && c.MAILROOM_TLS_KEY
        ? { cert: c.MAILROOM_TLS_CERT, key: c.MAILROOM_TLS_KEY }
        : null,
    webhooks: {
      allowHosts: c.MAILROOM_WEBHOOK_ALLOW_HOSTS,
      timeoutMs: c.MAILROOM_WEBHOOK_TIMEOUT,
      retryScheduleMs: c.MAILROOM_WEBHOOK_RETRY_SCHEDULE,
      disableAfterMs: c.MAILROOM_WEBHOOK_DISABLE_AFTER,
      concurrency: c.MAILROOM_WEBHOOK_CONCURRENCY,
    },
    eventRetentionMs: c.MAILROOM_EVENT_RETENTION,
    /** The local addresses outbound delivery binds to, and how IP pools use them (docs/ip-pools.md). */
    sendingIps: {
      addresses: c.MAILROOM_OUTBOUND_IPS,
      heloNames: c.MAILROOM_OUTBOUND_IP_HELO,
      warmup: c.MAILROOM_OUTBOUND_IP_WARMUP,
      checkIntervalMs: c.MAILROOM_OUTBOUND_IP_CHECK_INTERVAL,
    },
    blocklists: {
      outboundIps: c.MAILROOM_OUTBOUND_IPS,
      extra: c.MAILROOM_BLOCKLISTS_EXTRA,
      intervalMs: c.MAILROOM_BLOCKLISTS_INTERVAL,
      timeoutMs: c.MAILROOM_BLOCKLISTS_TIMEOUT,
      concurrency: c.MAILROOM_BLOCKLISTS_CONCURRENCY,
    },
    smsCampaigns: {
      importLimit: c.MAILROOM_SMS_IMPORT_LIMIT,
      inFlight: c.MAILROOM_SMS_CAMPAIGN_IN_FLIGHT,
    },
    sms: {
      defaultRegion: c.MAILROOM_SMS_DEFAULT_REGION,
      helpText: c.MAILROOM_SMS_HELP_TEXT,
      retryScheduleMs: c.MAILROOM_SMS_RETRY_SCHEDULE,
      leaseMs: Math.max(1_000, c.MAILROOM_SMS_LEASE),
      pollMs: c.MAILROOM_SMS_POLL_INTERVAL,
      claimBatch: c.MAILROOM_SMS_CLAIM_BATCH,
      maxHeld: Math.max(c.MAILROOM_SMS_MAX_HELD, c.MAILROOM_SMS_CLAIM_BATCH),
      gatewayRecheckMs: c.MAILROOM_SMS_GATEWAY_RECHECK,
    },
    warmup: {
      sharedPool: c.MAILROOM_WARMUP_SHARED_POOL === 'true',
      missingAfterMs: c.MAILROOM_WARMUP_MISSING_AFTER,
    },
    helpdesk: {
      loopLimitPerHour: c.MAILROOM_HELPDESK_LOOP_LIMIT,
      ticketUrl: c.MAILROOM_HELPDESK_TICKET_URL ?? `${publicUrl}/v1/tickets/{id}`,
    },
    helpdeskKb: {
      helpCentreUrl: c.MAILROOM_HELPDESK_KB_URL ?? null,
      chatPerConversationPerMinute: c.MAILROOM_HELPDESK_CHAT_PER_MINUTE,
      chatPerIpPerMinute: c.MAILROOM_HELPDESK_CHAT_PER_IP_PER_MINUTE,
    },
    intelligence: {
      rspamd: c.MAILROOM_RSPAMD_URL
        ? { url: c.MAILROOM_RSPAMD_URL, password: c.MAILROOM_RSPAMD_PASSWORD }
        : null,
      clamd: c.MAILROOM_CLAMD ?? null,
      spamThreshold: c.MAILROOM_SPAM_THRESHOLD,
      batchSize: c.MAILROOM_INTELLIGENCE_BATCH,
    },
    /** The chatbot's model; null: answers from search only. The key is a secret: never logged. */
    llm:
      c.MAILROOM_LLM_URL && c.MAILROOM_LLM_MODEL
        ? {
            url: c.MAILROOM_LLM_URL,
            apiKey: c.MAILROOM_LLM_API_KEY,
            model: c.MAILROOM_LLM_MODEL,
            timeoutMs: c.MAILROOM_LLM_TIMEOUT,
            temperature: c.MAILROOM_LLM_TEMPERATURE,
            dailyTokens: c.MAILROOM_LLM_DAILY_TOKENS,
          }
        : null,
    chat: {
      perMinute: c.MAILROOM_CHAT_PER_MINUTE,
    },
    feedback: {
      localPart: c.MAILROOM_FEEDBACK_LOCALPART,
      /** The last field of Feedback-ID: the same for all mail of this installation. */
      senderId: c.MAILROOM_FEEDBACK_SENDER_ID ?? c.MAILROOM_HOSTNAME.toLowerCase(),
    },
    health: {
      intervalMs: c.MAILROOM_HEALTH_INTERVAL,
      triggerDelayMs: c.MAILROOM_HEALTH_TRIGGER_DELAY,
      windowMs: c.MAILROOM_HEALTH_WINDOW,
      minSample: c.MAILROOM_HEALTH_MIN_SAMPLE,
      bulkDaily: c.MAILROOM_HEALTH_BULK_DAILY,
      historyRetentionMs: c.MAILROOM_HEALTH_HISTORY,
    },
    dns: { timeoutMs: c.MAILROOM_DNS_TIMEOUT, tries: c.MAILROOM_DNS_TRIES },
    domains: {
      verifyConcurrency: c.MAILROOM_DNS_VERIFY_CONCURRENCY,
      recheckIntervalMs: c.MAILROOM_DOMAIN_RECHECK_INTERVAL,
      pendingRecheckIntervalMs: c.MAILROOM_DOMAIN_PENDING_RECHECK_INTERVAL,
      verifyWindowMs: c.MAILROOM_DOMAIN_VERIFY_WINDOW,
      dkimRotationGraceMs: c.MAILROOM_DKIM_ROTATION_GRACE,
      // Who may send as a hosted domain: the operator's SPF include, or else this host's addresses.
      spfTerm: c.MAILROOM_SPF_INCLUDE
        ? `include:${c.MAILROOM_SPF_INCLUDE.toLowerCase()}`
        : `a:${c.MAILROOM_HOSTNAME.toLowerCase()}`,
    },
    jobLeaseMs: Math.max(1_000, c.MAILROOM_JOB_LEASE),
    provisioning: {
      verifyBackoffMs: c.MAILROOM_PROVISION_VERIFY_BACKOFF,
      // A provisioned domain waits for its DNS as long as a domain may stay unverified.
      verifyTimeoutMs: c.MAILROOM_DOMAIN_VERIFY_WINDOW,
    },
    // Per organisation, enforced when a domain or mailbox is created (0: no limit).
    organizationLimits: {
      domains: c.MAILROOM_ORGANIZATION_MAX_DOMAINS,
      mailboxes: c.MAILROOM_ORGANIZATION_MAX_MAILBOXES,
    },
    // What credential exports tell mail clients and sending tools: this host and its ports, unless the
    // public ones differ (a proxy, a port mapping).
    exports: {
      smtp: mailServer(
        c.MAILROOM_EXPORT_SMTP_HOST ?? c.MAILROOM_HOSTNAME,
        c.MAILROOM_EXPORT_SMTP_PORT ?? c.MAILROOM_SUBMISSION_PORT,
        465,
      ),
      imap: mailServer(
        c.MAILROOM_EXPORT_IMAP_HOST ?? c.MAILROOM_HOSTNAME,
        c.MAILROOM_EXPORT_IMAP_PORT ?? c.MAILROOM_IMAP_PORT,
        993,
      ),
      // Rows read per query while a CSV export streams: memory stays flat whatever the export's size.
      pageSize: c.MAILROOM_EXPORT_PAGE_SIZE,
    },
    // The largest archive POST /v1/admin/backups/uploads takes (backups: docs/backups.md).
    backups: { uploadLimit: c.MAILROOM_BACKUP_UPLOAD_LIMIT },
    providers: {
      cloudflareApiUrl: c.MAILROOM_CLOUDFLARE_API_URL,
      namecheapApiUrl: c.MAILROOM_NAMECHEAP_API_URL,
      twilioApiUrl: c.MAILROOM_TWILIO_API_URL,
      smsGatewayUrl: c.MAILROOM_SMS_GATEWAY_URL,
      // Gateways call back here, one path per provider account (the sms module serves it).
      smsWebhookUrl: `${publicUrl}/v1/sms/webhooks`,
      timeoutMs: c.MAILROOM_PROVIDER_TIMEOUT,
    },
    logLevel: c.MAILROOM_LOG_LEVEL,
    publicUrl,
    oauth: oauthSettings(c, publicUrl),
    /** Private hosts external accounts may use (an IMAP server on the operator's own network). */
    accountAllowHosts: c.MAILROOM_ACCOUNTS_ALLOW_HOSTS,
    accountSync: {
      pollMs: c.MAILROOM_ACCOUNTS_POLL_SECONDS * 1000,
      leaseMs: c.MAILROOM_ACCOUNTS_LEASE_SECONDS * 1000,
      batchSize: c.MAILROOM_ACCOUNTS_SYNC_BATCH,
      maxBackoffMs: c.MAILROOM_ACCOUNTS_MAX_BACKOFF_SECONDS * 1000,
    },
    corsOrigins: c.MAILROOM_CORS_ORIGINS,
    registration: c.MAILROOM_REGISTRATION,
    bodyLimit: c.MAILROOM_BODY_LIMIT,
    /** A request's headers must arrive within this, its whole body within the request timeout. */
    headerTimeoutMs: Math.min(c.MAILROOM_HTTP_HEADER_TIMEOUT, c.MAILROOM_HTTP_REQUEST_TIMEOUT),
    requestTimeoutMs: c.MAILROOM_HTTP_REQUEST_TIMEOUT,
    accessTokenTtl: c.MAILROOM_ACCESS_TOKEN_TTL,
    refreshTokenTtl: c.MAILROOM_REFRESH_TOKEN_TTL,
    rateLimitPerMinute: c.MAILROOM_RATE_LIMIT_PER_MINUTE,
    dbPoolSize: c.MAILROOM_DB_POOL_SIZE,
    shutdownTimeoutSeconds: c.MAILROOM_SHUTDOWN_TIMEOUT,
    trustProxy: c.MAILROOM_TRUST_PROXY,
    inbound: {
      host: c.MAILROOM_SMTP_HOST,
      maxMessageSize: c.MAILROOM_SMTP_MAX_MESSAGE_SIZE,
      maxRecipients: c.MAILROOM_SMTP_MAX_RECIPIENTS,
      maxConnections: c.MAILROOM_SMTP_MAX_CONNECTIONS,
      maxConnectionsPerIp: c.MAILROOM_SMTP_MAX_CONNECTIONS_PER_IP,
      messagesPerIpPerMinute: c.MAILROOM_SMTP_MESSAGES_PER_IP_PER_MINUTE,
      proxy: c.MAILROOM_SMTP_PROXY,
      srsMaxAgeDays: Math.max(1, Math.round(c.MAILROOM_SRS_MAX_AGE / 86_400_000)),
      dnsCacheMs: c.MAILROOM_INBOUND_DNS_CACHE,
    },
    /** Worker threads per pool of CPU work (MIME parsing; composing and signing); null: by roles (threadsFor). */
    threads: c.MAILROOM_WORKER_THREADS ?? null,
    backlog: {
      maxProcessing: c.MAILROOM_BACKLOG_MAX_PROCESSING,
      maxDelivery: c.MAILROOM_BACKLOG_MAX_DELIVERY,
      checkMs: c.MAILROOM_BACKLOG_CHECK_INTERVAL,
    },
    processing: {
      batchSize: c.MAILROOM_PROCESSING_BATCH,
      concurrency: c.MAILROOM_PROCESSING_CONCURRENCY,
    },
    submission: {
      host: c.MAILROOM_SMTP_HOST,
      port: c.MAILROOM_SUBMISSION_PORT,
      tlsPort: c.MAILROOM_SUBMISSION_TLS_PORT ?? null,
      maxMessageSize: c.MAILROOM_SMTP_MAX_MESSAGE_SIZE,
      maxRecipients: c.MAILROOM_SMTP_MAX_RECIPIENTS,
      authFailuresPerHour: c.MAILROOM_SUBMISSION_AUTH_FAILURES_PER_HOUR,
      allowInsecureAuth: c.MAILROOM_SUBMISSION_ALLOW_INSECURE_AUTH,
    },
    outbound: {
      port: c.MAILROOM_OUTBOUND_PORT,
      retryScheduleMs: c.MAILROOM_OUTBOUND_RETRY_SCHEDULE,
      maxAgeMs: c.MAILROOM_OUTBOUND_MAX_AGE,
      connectionsPerDomain: c.MAILROOM_OUTBOUND_CONNECTIONS_PER_DOMAIN,
      messagesPerConnection: c.MAILROOM_OUTBOUND_MESSAGES_PER_CONNECTION,
      ratePerDomainPerMinute: c.MAILROOM_OUTBOUND_DOMAIN_RATE_PER_MINUTE,
      concurrency: c.MAILROOM_OUTBOUND_CONCURRENCY,
      connectTimeoutMs: c.MAILROOM_OUTBOUND_CONNECT_TIMEOUT,
      commandTimeoutMs: c.MAILROOM_OUTBOUND_COMMAND_TIMEOUT,
      idleTimeoutMs: c.MAILROOM_OUTBOUND_IDLE_TIMEOUT,
      ca: c.MAILROOM_OUTBOUND_TLS_CA ? [readFileSync(c.MAILROOM_OUTBOUND_TLS_CA, 'utf8')] : [],
      mtaStsPort: c.MAILROOM_MTA_STS_PORT,
      batchBodyLimit: c.MAILROOM_SEND_BATCH_BODY_LIMIT,
      mailboxPerDay: c.MAILROOM_SEND_LIMIT_MAILBOX_PER_DAY,
      organizationPerHour: c.MAILROOM_SEND_LIMIT_ORGANIZATION_PER_HOUR,
    },
  };
}

function decodeKey(value: string): Buffer | null {
  if (/^[0-9a-f]{64}$/i.test(value)) return Buffer.from(value, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(value)) {
    const buf = Buffer.from(value, 'base64');
    return buf.length === 32 ? buf : null;
  }
  return null;
}

function splitHostPort(entry: string): { host: string; port?: number } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed) return { host: bracketed[1], port: bracketed[2] ? Number(bracketed[2]) : undefined };
  const parts = entry.split(':');
  if (parts.length === 2) return { host: parts[0], port: Number(parts[1]) };
  return { host: entry };
}
