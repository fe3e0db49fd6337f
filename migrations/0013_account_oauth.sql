-- OAuth sign-in for external accounts (issue 17): an authorization request between its start and the
-- provider's callback. It is found by the SHA-256 of its state (the state itself is only in the
-- browser's round trip), its PKCE verifier is sealed (AES-256-GCM under MAILROOM_SECRET_KEY), and it is
-- deleted by its first use; one older than expires_at is refused.
create table account_oauth_requests (
  state_hash text primary key,              -- hex SHA-256 of the state sent to the provider
  organization_id uuid not null references organizations(id) on delete cascade,
  user_id uuid,                             -- who started it; null for an API key
  provider text not null check (provider in ('google', 'microsoft')),
  -- set when an existing account is authorised again: the callback renews its tokens
  account_id uuid references mail_accounts(id) on delete cascade,
  code_verifier text not null,              -- sealed
  name text,                                -- the new account's name
  redirect_to text,                         -- where the callback sends the browser; null: it answers JSON
  expires_at timestamptz not null,
  created_at timestamptz not null default now()
);
create index account_oauth_requests_expiry on account_oauth_requests (expires_at);
