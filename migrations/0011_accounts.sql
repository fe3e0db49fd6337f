-- External mail accounts (issue 17): an organisation's mailboxes at other providers, reached over IMAP
-- and SMTP. Their password is sealed (AES-256-GCM under MAILROOM_SECRET_KEY), never stored in clear.
create table mail_accounts (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  provider text not null check (provider in ('imap', 'google', 'microsoft')),
  address text not null,                    -- lower case
  name text not null default '',
  username text not null,
  imap jsonb not null,                      -- {host, port, security, verify_tls}
  smtp jsonb,                               -- the same; null: the account does not send
  secret text not null,                     -- sealed JSON: {"password": …}
  state text not null default 'connecting'
    check (state in ('connecting', 'syncing', 'ready', 'paused', 'auth_failed', 'error')),
  last_error text,
  last_error_at timestamptz,
  created_by uuid,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (organization_id, address)
);
