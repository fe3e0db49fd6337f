-- Outbound mail: per-recipient deliveries (the queue), every attempt, bounces, the suppression list,
-- SMTP submission credentials, send-API idempotency and send-limit counters.

-- One row per recipient of an outbound message: the delivery queue. A recipient is due when its status
-- is 'queued' and next_attempt_at has come (a scheduled send starts in the future); 'sending' rows are
-- claimed by a worker until locked_until, after which a crashed worker's claim is taken over.
create table deliveries (
  id uuid primary key,                      -- UUIDv7; also the VERP return-path token
  organization_id uuid not null references organizations(id) on delete cascade,
  message_id uuid not null references messages(id) on delete cascade,
  recipient text not null,
  domain text not null,                     -- the recipient's domain, lower case A-label: the pool key
  status text not null check (status in
    ('queued', 'held', 'sending', 'delivered', 'bounced', 'failed', 'cancelled')),
  hold_reason text,                         -- 'suppressed', 'mailbox_daily_limit', 'organization_hourly_limit'
  hold_detail text,
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  locked_until timestamptz,
  last_code integer,
  last_response text,
  dsn_message_id uuid,                      -- the DSN we sent the sender about this recipient
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  finished_at timestamptz
);
create index deliveries_due on deliveries (next_attempt_at) where status = 'queued';
create index deliveries_sending on deliveries (locked_until) where status = 'sending';
create index deliveries_message on deliveries (message_id);
create index deliveries_org_status on deliveries (organization_id, status, created_at);

-- Every delivery attempt: when, where, what the remote server said, and over what TLS.
create table delivery_attempts (
  id uuid primary key,
  organization_id uuid not null,
  delivery_id uuid not null references deliveries(id) on delete cascade,
  message_id uuid not null,
  attempted_at timestamptz not null,
  duration_ms integer not null,
  outcome text not null check (outcome in ('delivered', 'deferred', 'bounced')),
  mx_host text,
  ip text,
  port integer,
  tls jsonb,                                -- {version, cipher, authorized}; null: plain text
  mta_sts text,                             -- 'enforce', 'testing', 'none'
  code integer,
  enhanced_code text,
  response text not null
);
create index delivery_attempts_delivery on delivery_attempts (delivery_id, attempted_at);

-- Bounces that arrived later at a VERP return path (DSNs and non-standard bounce messages).
create table bounces (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  delivery_id uuid not null references deliveries(id) on delete cascade,
  message_id uuid not null,                 -- the original outbound message
  report_message_id uuid,                   -- the inbound message that carried the bounce
  recipient text not null,
  kind text not null check (kind in ('dsn', 'heuristic')),
  permanent boolean not null,
  status text,                              -- enhanced status code, e.g. 5.1.1
  action text,
  diagnostic text,
  remote_mta text,
  created_at timestamptz not null default now()
);
create index bounces_delivery on bounces (delivery_id);

create table suppressions (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  address text not null,                    -- lower case
  reason text not null check (reason in ('hard_bounce', 'manual', 'complaint')),
  detail text,
  message_id uuid,                          -- the message whose bounce added it
  created_at timestamptz not null default now(),
  unique (organization_id, address)
);

-- Credentials for SMTP submission that are not a mailbox's own login (applications, printers, CRMs).
create table smtp_credentials (
  id uuid primary key,
  organization_id uuid not null references organizations(id) on delete cascade,
  name text not null,
  username text not null unique,
  password_hash text not null,              -- argon2id
  domain_id uuid references domains(id) on delete cascade, -- null: any domain of the organisation
  is_enabled boolean not null default true,
  last_used_at timestamptz,
  last_used_ip text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index smtp_credentials_org on smtp_credentials (organization_id, created_at);

-- POST /v1/messages/send with an Idempotency-Key: the first request's answer, replayed for a retry.
create table send_requests (
  organization_id uuid not null references organizations(id) on delete cascade,
  idempotency_key text not null,
  request_hash text not null,
  message_id uuid not null,
  response jsonb not null,
  created_at timestamptz not null default now(),
  primary key (organization_id, idempotency_key)
);
create index send_requests_created on send_requests (created_at);

-- Messages sent per mailbox per day and per organisation per hour, for the send limits.
create table send_counters (
  organization_id uuid not null references organizations(id) on delete cascade,
  scope text not null check (scope in ('mailbox_day', 'organization_hour')),
  subject text not null,                    -- the mailbox address, or '' for the organisation
  window_start timestamptz not null,
  count integer not null,
  primary key (organization_id, scope, subject, window_start)
);

-- A bounce reaching a VERP return path is routed as 'bounce'.
alter table message_routes drop constraint message_routes_route_check;
alter table message_routes add constraint message_routes_route_check
  check (route in ('mailbox', 'alias', 'rule', 'catch_all', 'srs', 'bounce', 'none'));

-- Tags given to POST /v1/messages/send, for filtering and statistics.
alter table messages add column tags text[] not null default '{}';

-- A domain signs with one active key per algorithm: RSA and Ed25519 side by side (RFC 8463).
drop index domain_dkim_keys_signing;
create unique index domain_dkim_keys_signing on domain_dkim_keys (domain_id, algorithm) where state = 'active';
