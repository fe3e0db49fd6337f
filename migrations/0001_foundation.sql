-- Foundation: identity, organisations, API keys, audit and security events.

create table users (
  id uuid primary key,
  email text not null unique,               -- stored lower-cased
  name text not null default '',
  password_hash text not null,              -- argon2id
  email_verified_at timestamptz,
  is_superadmin boolean not null default false,
  mfa_secret text,                          -- AES-256-GCM under MAILROOM_SECRET_KEY
  mfa_pending_secret text,                  -- during set-up, until the first code verifies
  mfa_enabled_at timestamptz,
  mfa_last_step bigint,                     -- last accepted TOTP time step (no code reuse)
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table mfa_recovery_codes (
  id uuid primary key,
  user_id uuid not null references users(id) on delete cascade,
  code_hash text not null,
  used_at timestamptz,
  created_at timestamptz not null default now()
);
create index mfa_recovery_codes_user on mfa_recovery_codes (user_id);

-- A session is one login; its refresh tokens form one rotation family.
create table sessions (
  id uuid primary key,
  user_id uuid not null references users(id) on delete cascade,
  ip text,
  user_agent text,
  created_at timestamptz not null default now(),
  last_used_at timestamptz not null default now(),
  expires_at timestamptz not null,
  revoked_at timestamptz,
  revoked_reason text
);
create index sessions_user on sessions (user_id, created_at desc);

create table refresh_tokens (
  id uuid primary key,
  session_id uuid not null references sessions(id) on delete cascade,
  token_hash text not null unique,
  expires_at timestamptz not null,
  used_at timestamptz,
  created_at timestamptz not null default now()
);
create index refresh_tokens_session on refresh_tokens (session_id);

-- Single-use tokens mailed to a user: email verification and password reset.
create table user_tokens (
  id uuid primary key,
  user_id uuid not null references users(id) on delete cascade,
  purpose text not null check (purpose in ('verify_email', 'reset_password')),
  token_hash text not null unique,
  expires_at timestamptz not null,
  used_at timestamptz,
  created_at timestamptz not null default now()
);
create index user_tokens_user on user_tokens (user_id, purpose);

create table organizations (
  id uuid primary key,
  name text not null,
  slug text not null unique,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table memberships (
  organization_id uuid not null references organizations(id) on delete cascade,
  user_id uuid not null references users(id) on delete cascade,
  role text not null check (role in ('owner', 'admin', 'member', 'viewer')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (organization_id, user_id)
);
create index memberships_user on memberships (user_id);

create table invitations (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  email text not null,
  role text not null check (role in ('owner', 'admin', 'member', 'viewer')),
  token_hash text not null unique,
  invited_by uuid references users(id) on delete set null,
  expires_at timestamptz not null,
  accepted_at timestamptz,
  accepted_by uuid references users(id) on delete set null,
  revoked_at timestamptz,
  created_at timestamptz not null default now()
);
create index invitations_org on invitations (organization_id, created_at desc);

create table api_keys (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  name text not null,
  prefix text not null,                     -- shown in lists to recognise a key
  key_hash text not null unique,            -- SHA-256 of the whole key
  scopes text[] not null,
  expires_at timestamptz,
  last_used_at timestamptz,
  created_by uuid references users(id) on delete set null,
  revoked_at timestamptz,
  created_at timestamptz not null default now()
);
create index api_keys_org on api_keys (organization_id, created_at desc);

-- No foreign keys: the trail outlives what it describes.
create table audit_log (
  id uuid primary key,
  organization_id uuid,
  actor_type text not null check (actor_type in ('user', 'api_key', 'anonymous', 'system')),
  actor_id uuid,
  action text not null,
  target_type text,
  target_id text,
  status integer not null,
  ip text,
  request_id text,
  created_at timestamptz not null default now()
);
create index audit_log_org_time on audit_log (organization_id, created_at desc);
create index audit_log_actor_time on audit_log (actor_id, created_at desc);

create table security_events (
  id uuid primary key,
  organization_id uuid,
  user_id uuid,
  api_key_id uuid,
  kind text not null,
  ip text,
  request_id text,
  details jsonb not null default '{}',
  created_at timestamptz not null default now()
);
create index security_events_org_time on security_events (organization_id, created_at desc);
create index security_events_user_time on security_events (user_id, created_at desc);
