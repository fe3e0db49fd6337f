// What a backup needs to know that the database catalogue does not say: which tables are the
// installation's rather than an organisation's, which tables without organization_id an organisation's
// rows need, which columns hold sealed secrets, and what a restore does where a row would clash with the
// target's rows on a unique key that spans organisations. Everything else is discovered (catalogue.ts):
// a new module's tables with an organization_id column are in every backup without a change here, and
// the tests fail when a new table or column needs a decision from this file.

/** Tables of the installation, never in a backup (with why). Other schemas (pg-boss's) are never read. */
export const INSTALLATION_TABLES: Record<string, string> = {
  schema_migrations: 'which migrations ran: the target has its own',
  sessions: 'logins: a restored user signs in again',
  refresh_tokens: 'logins: a restored user signs in again',
  user_tokens: 'one-time tokens mailed to a user (verification, password reset): short-lived',
  account_workers: 'the sync workers of this installation that are alive now',
  outbound_slots: 'installation-wide connection slots of the delivery workers',
  outbound_rate: 'installation-wide send rate reservations of the delivery workers',
  sending_ips: 'the installation’s sending IPs (MAILROOM_OUTBOUND_IPS) and their PTR checks',
  sending_ip_usage: 'daily use of the installation’s sending IPs (their warmup)',
  backup_archives: 'backups themselves: a backup never contains another',
  backup_archive_chunks: 'backups themselves: a backup never contains another',
};

/** Tables that carry organization_id but are left out on purpose (with why). */
export const EXCLUDED_TENANT_TABLES: Record<string, string> = {
  account_oauth_requests:
    'an OAuth sign-in in flight (minutes): its state only works with the browser round trip that started it',
};

/**
 * Tables without organization_id that the organisation's rows need, with the rows taken: the
 * organisation itself, the users its rows name (members, and users a NOT NULL foreign key requires), and
 * those users' recovery codes.
 */
export const RELATED_TABLES = ['organizations', 'users', 'mfa_recovery_codes'] as const;

/**
 * Columns holding values sealed with `Secrets.encrypt` (AES-256-GCM under MAILROOM_SECRET_KEY). An
 * archive keeps them sealed under the source installation's key, exactly as they are at rest; a restore
 * under another key opens each with the source key and seals it again under the target's.
 */
export const ENCRYPTED_COLUMNS: Record<string, readonly string[]> = {
  users: ['mfa_secret', 'mfa_pending_secret'],
  mailboxes: ['export_password'],
  domain_dkim_keys: ['private_key'],
  provider_accounts: ['credentials'],
  webhook_endpoints: ['secret', 'previous_secret'],
  mail_accounts: ['secret'],
  // Not backed up (EXCLUDED_TENANT_TABLES), listed so that every sealed column is named here.
  account_oauth_requests: ['code_verifier'],
};

/** What `Secrets.encrypt` writes: `v1.<iv>.<tag>.<ciphertext>`, base64url (a 12-byte IV, a 16-byte tag). */
export const SEALED_VALUE = /^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]*$/;

/**
 * A unique key that spans organisations (none of its columns is organization_id, and not all are ids,
 * which a restore as a new organisation makes anew). A restored row that would clash with a row already
 * in the target gets `set` instead of its own values: `clash` and the expressions are SQL over the
 * incoming row `v`. Keyed by the unique index's name.
 */
export interface UniquePolicy {
  table: string;
  clash: string;
  set: Record<string, string>;
  why: string;
}

const randomHex = (length: number) => `substr(md5(gen_random_uuid()::text), 1, ${length})`;
const randomHash = `encode(sha256(convert_to(gen_random_uuid()::text || clock_timestamp()::text, 'UTF8')), 'hex')`;

export const UNIQUE_POLICIES: Record<string, UniquePolicy> = {
  organizations_slug_key: {
    table: 'organizations',
    clash: 'exists (select 1 from organizations o where o.slug = v.slug)',
    set: { slug: `left(v.slug, 56) || '-' || ${randomHex(6)}` },
    why: 'another organisation has the slug: the restored one gets it with a random suffix',
  },
  domains_owner: {
    table: 'domains',
    clash:
      'v.ownership_verified and exists (select 1 from domains d where d.name = v.name and d.ownership_verified)',
    set: { ownership_verified: 'false', status: `'pending'`, verified_at: 'null', next_check_at: 'now()' },
    why: 'another organisation holds the verified name: the restored domain is unverified until it proves ownership again',
  },
  api_keys_key_hash_key: {
    table: 'api_keys',
    clash: 'exists (select 1 from api_keys k where k.key_hash = v.key_hash)',
    set: { key_hash: randomHash, revoked_at: 'coalesce(v.revoked_at, now())' },
    why: 'the same key must not open two organisations: the copy is kept, revoked',
  },
  invitations_token_hash_key: {
    table: 'invitations',
    clash: 'exists (select 1 from invitations i where i.token_hash = v.token_hash)',
    set: { token_hash: randomHash, revoked_at: 'coalesce(v.revoked_at, now())' },
    why: 'one mailed token must not join two organisations: the copy is kept, revoked',
  },
  smtp_credentials_username_key: {
    table: 'smtp_credentials',
    clash: 'exists (select 1 from smtp_credentials c where c.username = v.username)',
    set: { username: `'smtp_' || ${randomHex(24)}` },
    why: 'a login names no organisation: the copy gets a new username (its password is unchanged)',
  },
  mailbox_app_passwords_password_hash_key: {
    table: 'mailbox_app_passwords',
    clash: 'exists (select 1 from mailbox_app_passwords p where p.password_hash = v.password_hash)',
    set: { password_hash: randomHash },
    why: 'an app password must open one mailbox: the copy is kept, with a password nobody knows',
  },
  helpdesk_csat_surveys_token_hash_key: {
    table: 'helpdesk_csat_surveys',
    clash: 'exists (select 1 from helpdesk_csat_surveys c where c.token_hash = v.token_hash)',
    set: { token_hash: randomHash },
    why: 'a mailed survey link must answer one ticket: the copy’s link is one nobody has',
  },
  // Users are matched by email instead (an existing user is the same person): see restore.ts.
  users_email_key: {
    table: 'users',
    clash: 'false',
    set: {},
    why: 'users are matched by email: an existing user is reused, not restored',
  },
};
